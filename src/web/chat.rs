//! `Runtime.chat` and `Memory.chat`: an OpenAI-style chat completion (`crate::chat::ChatRequest`
//! in, `ChatCompletion` out), each turn reusing the caches the last one kept.

use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::{from_js, generate_exclusive, js_error, to_js, GenerateResult, Runtime};
use crate::align::sampler::SamplingParams;
use crate::align::Method;
use crate::chat::ChatRequest;
use crate::error::{Error, ErrorCode};
use crate::generate::{now_seconds, StopReason};
use crate::memory::{PreferenceUse, Response};
use crate::tokenizer::ChatMessage;

/// The answer in OpenAI's chat-completion shape, padlock's additions under `personalization`
/// and in `usage`.
#[derive(Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
pub(crate) struct ChatCompletion {
    id: String,
    object: &'static str,
    /// Seconds since 1970.
    created: u64,
    model: &'static str,
    choices: Vec<ChatChoice>,
    usage: ChatUsage,
    personalization: PersonalizationReport,
}

#[derive(Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
struct ChatChoice {
    index: usize,
    message: ChatMessage,
    /// "stop" (the model ended its turn), "length" (max_tokens or the context) or "cancelled".
    finish_reason: &'static str,
}

#[derive(Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
struct ChatUsage {
    prompt_tokens: usize,
    completion_tokens: usize,
    total_tokens: usize,
    /// Per context (the base context first, then each preference's), the prompt tokens this
    /// turn prefilled; the rest of each prompt came from the caches the last turn kept.
    prefilled_tokens: Vec<usize>,
    prefill_tokens_per_second: f64,
    decode_tokens_per_second: f64,
}

/// What steered the answer.
#[derive(Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
struct PersonalizationReport {
    method: Method,
    /// What each reward context is (the preference text; the harmlessness principle included).
    labels: Vec<String>,
    /// Σ_t r_p(y_t) per reward context, in the order of `labels`.
    rewards: Vec<f32>,
    /// Memory-steered answers: the ids of the stored preferences that steered it.
    #[serde(skip_serializing_if = "Option::is_none")]
    preferences: Option<Vec<String>>,
    /// Memory-steered answers: every stored preference with its relevance to the conversation
    /// and whether it steered.
    #[serde(skip_serializing_if = "Option::is_none")]
    considered: Option<Vec<PreferenceUse>>,
    /// Memory-steered answers: the response as `memory.feedback` takes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<Response>,
}

impl ChatCompletion {
    pub(crate) fn new(
        result: GenerateResult,
        method: Method,
        memory: Option<(Vec<String>, Vec<PreferenceUse>, Response)>,
    ) -> ChatCompletion {
        let created = (js_sys::Date::now() / 1000.0) as u64;
        let (preferences, considered, response) =
            memory.map_or((None, None, None), |(ids, c, r)| (Some(ids), Some(c), Some(r)));
        let prompt_tokens = result.prompt_ids.len();
        let completion_tokens = result.generated_ids.len();
        ChatCompletion {
            id: format!("chatcmpl-{created:x}{:x}", (now_seconds() * 1e6) as u64),
            object: "chat.completion",
            created,
            model: "padlock",
            choices: vec![ChatChoice {
                index: 0,
                message: ChatMessage { role: "assistant".into(), content: result.text },
                finish_reason: match result.stop_reason {
                    StopReason::Eos => "stop",
                    StopReason::Length => "length",
                    StopReason::Cancelled => "cancelled",
                },
            }],
            usage: ChatUsage {
                prompt_tokens,
                completion_tokens,
                total_tokens: prompt_tokens + completion_tokens,
                prefilled_tokens: result.prefilled_tokens,
                prefill_tokens_per_second: result.prefill_tokens_per_second,
                decode_tokens_per_second: result.decode_tokens_per_second,
            },
            personalization: PersonalizationReport {
                method,
                labels: result.reward_labels,
                rewards: result.sequence_rewards,
                preferences,
                considered,
                response,
            },
        }
    }
}

/// A chat request from JavaScript; unknown fields and bad values reject with INVALID_ARGUMENT.
pub(crate) fn chat_request(request: JsValue) -> Result<ChatRequest, JsValue> {
    from_js::<Option<ChatRequest>>(request, "chat request")?
        .ok_or_else(|| js_error(Error::new(ErrorCode::InvalidArgument, "chat request: an object is required")))
}

#[wasm_bindgen]
impl Runtime {
    /// Answers an OpenAI-style chat request `{ messages, max_tokens, temperature, top_p, seed,
    /// personalization: { preferences, method, beta, candidates } }` (see `crate::chat`).
    /// When the conversation extends the last chat turn's, only its new tokens are prefilled.
    /// `on_token(piece, id, explanation)` as for `generate`. Resolves to a chat completion.
    /// `personalization.memory` needs `Memory.chat`.
    pub fn chat(&self, request: JsValue, on_token: Option<js_sys::Function>) -> js_sys::Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let request = chat_request(request)?;
            if request.uses_memory() {
                return Err(js_error(Error::new(
                    ErrorCode::InvalidArgument,
                    "personalization.memory: steering by the stored preferences goes through Memory.chat",
                )));
            }
            let options = request.options(&SamplingParams::default()).map_err(js_error)?;
            let method = options.personalization.method;
            let result = generate_exclusive(&inner, &request.messages, true, &options, None, on_token.as_ref()).await?;
            to_js(&ChatCompletion::new(result, method, None))
        })
    }

    /// Frees the caches the last chat turn kept (the next turn starts fresh); returns how
    /// many contexts there were.
    #[wasm_bindgen(js_name = releaseCaches)]
    pub fn release_caches(&self) -> usize {
        self.inner.release_kept()
    }
}
