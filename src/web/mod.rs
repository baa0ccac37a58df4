//! The JavaScript API (wasm-bindgen). Meant to run inside a Web Worker (see www/worker.js)
//! so the page never freezes; it also works on the main thread.
//!
//! ```js
//! const rt = await Runtime.load(bytes, fraction => ..., { backend: 'auto' });  // or 'webgpu', 'cpu'
//! rt.info().backend;         // 'webgpu' or 'cpu'; info().backendNotice says why when auto fell back
//! const r = await rt.generate('Hi!', { temperature: 0.5, seed: 1 }, (piece, id) => ...);
//! rt.cancel();
//! ```
//! Errors reject with a JS `Error` whose `code` is the stable `ErrorCode` string.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, JsFuture};

use crate::align::{Method, Plan};
use crate::backend::cpu::{quant, CpuBackend};
#[cfg(feature = "gpu")]
use crate::backend::gpu::GpuBackend;
use crate::backend::{Backend, BackendChoice};
use crate::error::{Error, ErrorCode};
use crate::generate::{now_seconds, one_turn, BestOfN, Engine, GenerateOptions, Generation, Sample, StopReason};
use crate::memory::feedback::StopRewards;
use crate::model::llama::Logits;
use crate::tokenizer::ChatMessage;

mod chat;
mod memory;
pub use memory::Memory;

/// A JS `Error` carrying the stable code as `err.code`.
pub(crate) fn js_error(e: Error) -> JsValue {
    let err = js_sys::Error::new(&e.message);
    err.set_name("PadlockError");
    let _ = js_sys::Reflect::set(&err, &"code".into(), &e.code.as_str().into());
    err.into()
}

pub(crate) fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| js_error(Error::new(ErrorCode::InvalidArgument, e.to_string())))
}

/// Lets the event loop run (so a `cancel` message reaches a worker) without the 4 ms
/// clamp of nested timers: a MessageChannel round trip.
async fn yield_to_event_loop() -> Result<(), JsValue> {
    let channel = web_sys::MessageChannel::new()?;
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        channel.port1().set_onmessage(Some(&resolve));
    });
    channel.port2().post_message(&JsValue::NULL)?;
    JsFuture::from(promise).await?;
    channel.port1().set_onmessage(None);
    Ok(())
}

/// The loaded engine on whichever backend was chosen; `with_engine!` runs one code path on either.
enum AnyEngine {
    Cpu(Box<Engine<CpuBackend>>),
    #[cfg(feature = "gpu")]
    Gpu(Box<Engine<GpuBackend>>),
}

macro_rules! with_engine {
    ($any:expr, $e:ident => $body:expr) => {
        match $any {
            AnyEngine::Cpu(boxed) => {
                let $e = &**boxed;
                $body
            }
            #[cfg(feature = "gpu")]
            AnyEngine::Gpu(boxed) => {
                let $e = &**boxed;
                $body
            }
        }
    };
}

pub(crate) struct Inner {
    engine: AnyEngine,
    /// Why the CPU runs although WebGPU was asked for or allowed (`auto`), if it does.
    backend_notice: Option<String>,
    cancel: Cell<bool>,
    busy: Cell<bool>,
}

impl Inner {
    /// Drops the caches the last chat turn kept; how many contexts there were.
    fn release_kept(&self) -> usize {
        with_engine!(&self.engine, e => e.release_kept())
    }
}

/// `Runtime.load`'s options: `{ backend: 'auto' | 'webgpu' | 'cpu' }`.
#[derive(serde::Deserialize, Default)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
struct LoadOptions {
    backend: BackendChoice,
}

/// `inspectModel(prefix, fileLength)`: what a model file needs, from its first bytes (the
/// header; a few MB), before the rest is downloaded: `{ architecture, parameters, weightBytes,
/// largestTensorBytes, contextLength, kvBytesPerPosition, tensorTypes }` (`model::inspect`).
/// Rejects as loading would for the header (`UNSUPPORTED_DTYPE`, …), with `GGUF_TRUNCATED`
/// when the prefix ends inside the header.
#[wasm_bindgen(js_name = inspectModel)]
pub fn inspect_model(prefix: Vec<u8>, file_length: f64) -> Result<JsValue, JsValue> {
    if !(file_length.is_finite() && file_length >= 0.0 && file_length <= usize::MAX as f64) {
        return Err(js_error(Error::new(ErrorCode::InvalidArgument, format!("file length {file_length}"))));
    }
    let summary = crate::model::inspect::inspect(prefix, file_length as usize).map_err(js_error)?;
    to_js(&summary)
}

#[wasm_bindgen]
pub struct Runtime {
    pub(crate) inner: Rc<Inner>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GenerateResult {
    pub(crate) prompt_ids: Vec<u32>,
    pub(crate) generated_ids: Vec<u32>,
    pub(crate) text: String,
    pub(crate) stop_reason: StopReason,
    pub(crate) prefill_tokens_per_second: f64,
    pub(crate) decode_tokens_per_second: f64,
    /// What each PersRM context is (preference text; the harmlessness principle included).
    pub(crate) reward_labels: Vec<String>,
    /// Σ_t r_p(y_t) per PersRM context (PAD; best-of-n: of the kept sample).
    pub(crate) sequence_rewards: Vec<f32>,
    /// PAD: per PersRM context, the end-of-turn token's reward if the answer ended there
    /// (else empty; see `feedback::StopRewards`).
    pub(crate) stop_rewards: Vec<f32>,
    /// Per context (base first), the prompt tokens prefill fed; the rest came from the
    /// caches the last chat turn kept.
    pub(crate) prefilled_tokens: Vec<usize>,
    /// Best-of-n: every sample with its reward, and which one was kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) samples: Option<Vec<Sample>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) best: Option<usize>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
struct Info {
    architecture: &'static str,
    layers: usize,
    hidden: usize,
    heads: usize,
    kv_heads: usize,
    vocab_size: usize,
    context_length: usize,
    /// "webgpu" or "cpu".
    backend: &'static str,
    /// The CPU kernel ("simd128"), or the WebGPU adapter's name.
    kernel: String,
    /// Why the CPU is used although WebGPU was allowed (no adapter, ...); null otherwise.
    backend_notice: Option<String>,
}

#[wasm_bindgen]
impl Runtime {
    /// Loads a GGUF model from its bytes. `on_progress(fraction)` is called while the
    /// weights are prepared. `options.backend`: 'auto' (default: WebGPU when the browser has
    /// an adapter, else the CPU), 'webgpu' (fails with GPU_UNAVAILABLE without one) or 'cpu'.
    pub async fn load(
        bytes: Vec<u8>,
        on_progress: Option<js_sys::Function>,
        options: JsValue,
    ) -> Result<Runtime, JsValue> {
        let options: LoadOptions = from_js(options, "load options")?;
        let mut progress = |f: f32| {
            if let Some(cb) = &on_progress {
                let _ = cb.call1(&JsValue::NULL, &JsValue::from_f64(f as f64));
            }
        };
        let bytes = Arc::new(bytes);
        let wanted = options.backend;
        let mut notice = None;
        if wanted != BackendChoice::Cpu {
            #[cfg(feature = "gpu")]
            match GpuBackend::new().await {
                Ok(gpu) => match Engine::load(gpu, bytes.clone(), &mut progress) {
                    Ok(engine) => return Ok(Runtime::new(AnyEngine::Gpu(Box::new(engine)), None)),
                    // What this GPU cannot hold (or read) the CPU may: auto still runs the model.
                    Err(e)
                        if wanted == BackendChoice::Auto
                            && matches!(e.code, ErrorCode::UnsupportedDtype | ErrorCode::GpuLimits) =>
                    {
                        notice = Some(format!("{}; running on the CPU", e.message))
                    }
                    Err(e) => return Err(js_error(e)),
                },
                Err(e) if wanted == BackendChoice::Auto => notice = Some(format!("{}; running on the CPU", e.message)),
                Err(e) => return Err(js_error(e)),
            }
            #[cfg(not(feature = "gpu"))]
            {
                let e = Error::new(ErrorCode::GpuUnavailable, "this build of padlock has no WebGPU backend");
                if wanted != BackendChoice::Auto {
                    return Err(js_error(e));
                }
                notice = Some(format!("{}; running on the CPU", e.message));
            }
        }
        let engine = Engine::load(CpuBackend::new(), bytes, &mut progress).map_err(js_error)?;
        Ok(Runtime::new(AnyEngine::Cpu(Box::new(engine)), notice))
    }

    fn new(engine: AnyEngine, backend_notice: Option<String>) -> Runtime {
        Runtime { inner: Rc::new(Inner { engine, backend_notice, cancel: Cell::new(false), busy: Cell::new(false) }) }
    }

    /// `{ architecture, layers, hidden, heads, kvHeads, vocabSize, contextLength, backend,
    /// kernel, backendNotice }`.
    pub fn info(&self) -> Result<JsValue, JsValue> {
        let (backend, kernel) = match &self.inner.engine {
            AnyEngine::Cpu(_) => ("cpu", quant::kernel_name().to_string()),
            #[cfg(feature = "gpu")]
            AnyEngine::Gpu(e) => ("webgpu", e.model.backend().info().name.clone()),
        };
        with_engine!(&self.inner.engine, e => {
            let c = &e.model.config;
            to_js(&Info {
                architecture: "llama",
                layers: c.n_layers,
                hidden: c.hidden,
                heads: c.n_heads,
                kv_heads: c.n_kv_heads,
                vocab_size: c.vocab_size,
                context_length: c.context_length,
                backend,
                kernel,
                backend_notice: self.inner.backend_notice.clone(),
            })
        })
    }

    /// Answers one chat message. `options` (all optional) is a `generate::GenerateOptions` in
    /// camelCase: `maxTokens`, `system`, `ignoreEos`, the fields of `align::sampler::SamplingParams`
    /// and those of `align::Personalization` (method, preferences, beta, candidates, ...), side by
    /// side; those types are the one definition of every option. `on_token(piece, id,
    /// explanation)` is called for every token; with PAD, `explanation` is `{ chosen, baseTop1,
    /// baseTop1Text, contributions, candidates }` (contributions in the order of the result's
    /// `rewardLabels`). Resolves to `{ promptIds, generatedIds, text, stopReason,
    /// prefillTokensPerSecond, decodeTokensPerSecond, rewardLabels, sequenceRewards }` (plus
    /// `samples` and `best` for best-of-n). A preference that tries to switch safety off
    /// rejects with code `UNSAFE_PREFERENCE`.
    pub fn generate(&self, prompt: String, options: JsValue, on_token: Option<js_sys::Function>) -> js_sys::Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let options = generate_options(options)?;
            let messages = one_turn(&prompt, options.system.as_deref());
            to_js(&generate_exclusive(&inner, &messages, false, &options, None, on_token.as_ref()).await?)
        })
    }

    /// Loads a value head (safetensors, see the README) under `name`, for preferences to
    /// name in `{ text, weight, head: name }`. Returns the file's metadata (e.g. the
    /// preference it was trained for and its held-out accuracy). A bad file rejects with
    /// `VALUE_HEAD` and loads nothing.
    #[wasm_bindgen(js_name = loadHead)]
    pub fn load_head(&self, name: &str, bytes: Vec<u8>) -> Result<JsValue, JsValue> {
        let meta = with_engine!(&self.inner.engine, e => e.load_head(name, &bytes)).map_err(js_error)?;
        to_js(&meta)
    }

    /// Forgets a loaded value head; true if there was one.
    #[wasm_bindgen(js_name = removeHead)]
    pub fn remove_head(&self, name: &str) -> bool {
        with_engine!(&self.inner.engine, e => e.remove_head(name))
    }

    /// The names of the loaded value heads.
    pub fn heads(&self) -> Vec<String> {
        with_engine!(&self.inner.engine, e => e.head_names())
    }

    /// Stops a running `generate` before its next token; it resolves with stopReason "cancelled".
    pub fn cancel(&self) {
        self.inner.cancel.set(true);
    }

    /// Logits (vocabSize floats) for the last of `ids`, from a fresh context.
    pub fn logits(&self, ids: Vec<u32>) -> js_sys::Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let logits = with_engine!(&inner.engine, e => {
                let mut seq = e.model.new_sequence().map_err(js_error)?;
                e.model.forward_one(&mut seq, &ids, Logits::Last).await.map_err(js_error)?
            });
            Ok(js_sys::Float32Array::from(logits.as_slice()).into())
        })
    }

    /// Token ids of `text` (special tokens parsed, no BOS).
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, JsValue> {
        with_engine!(&self.inner.engine, e => e.tokenizer.encode(text)).map_err(js_error)
    }
}

pub(crate) fn generate_options(options: JsValue) -> Result<GenerateOptions, JsValue> {
    let options: serde_json::Map<String, serde_json::Value> = from_js(options, "options")?;
    check_generate_keys(&options)?;
    serde_json::from_value(serde_json::Value::Object(options))
        .map_err(|e| js_error(Error::new(ErrorCode::InvalidArgument, format!("options: {e}"))))
}

/// Refuses a key `GenerateOptions` does not have. It flattens its parts, which serde cannot
/// combine with `deny_unknown_fields`: the keys it knows are those it writes.
pub(crate) fn check_generate_keys(options: &serde_json::Map<String, serde_json::Value>) -> Result<(), JsValue> {
    let Ok(serde_json::Value::Object(known)) = serde_json::to_value(GenerateOptions::default()) else {
        return Ok(());
    };
    match options.keys().find(|k| !known.contains_key(*k)) {
        None => Ok(()),
        Some(key) => {
            let known: Vec<&str> = known.keys().map(String::as_str).collect();
            Err(js_error(Error::new(
                ErrorCode::InvalidArgument,
                format!("options: unknown field `{key}`, expected one of {}", known.join(", ")),
            )))
        }
    }
}

/// A value from JavaScript (`T::default()` for undefined or null; a key set to undefined or
/// null counts as not given); a bad one rejects with INVALID_ARGUMENT naming `what`. It goes
/// through JSON's data model: serde-wasm-bindgen looks up only the fields a struct names, so
/// `deny_unknown_fields` would never see a misspelt key.
pub(crate) fn from_js<T: serde::de::DeserializeOwned + Default>(value: JsValue, what: &str) -> Result<T, JsValue> {
    if value.is_undefined() || value.is_null() {
        return Ok(T::default());
    }
    let invalid = |e: &dyn std::fmt::Display| js_error(Error::new(ErrorCode::InvalidArgument, format!("{what}: {e}")));
    let mut json: serde_json::Value = serde_wasm_bindgen::from_value(value).map_err(|e| invalid(&e))?;
    drop_null_keys(&mut json);
    serde_json::from_value(json).map_err(|e| invalid(&e))
}

fn drop_null_keys(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_null_keys);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(drop_null_keys),
        _ => {}
    }
}

/// One generation at a time per runtime (`BUSY` otherwise) answering the last user message
/// of `messages`, on `plan` (the memory's), or on the plan of `options.personalization`.
/// With `keep`, the contexts reuse the caches the last kept generation left and are kept
/// for the next (a chat's turns).
pub(crate) async fn generate_exclusive(
    inner: &Inner,
    messages: &[ChatMessage],
    keep: bool,
    options: &GenerateOptions,
    plan: Option<&Plan>,
    on_token: Option<&js_sys::Function>,
) -> Result<GenerateResult, JsValue> {
    if inner.busy.replace(true) {
        return Err(js_error(Error::new(ErrorCode::Busy, "a generation is already running")));
    }
    inner.cancel.set(false);
    let plan = match plan {
        Some(plan) => Ok(plan.clone()),
        None => Plan::new(&options.personalization).map_err(js_error),
    };
    let result = match plan {
        Ok(plan) => {
            with_engine!(&inner.engine, e => run_generation(e, &inner.cancel, messages, keep, options, plan, on_token).await)
        }
        Err(e) => Err(e),
    };
    inner.busy.set(false);
    result
}

async fn run_generation<B: Backend>(
    engine: &Engine<B>,
    cancel: &Cell<bool>,
    messages: &[ChatMessage],
    keep: bool,
    options: &GenerateOptions,
    plan: Plan,
    on_token: Option<&js_sys::Function>,
) -> Result<GenerateResult, JsValue> {
    if plan.personalization.method == Method::BestOfN {
        return run_best_of_n(engine, cancel, messages, options, &plan, on_token).await;
    }
    let t0 = now_seconds();
    let prompts = engine.conversation_prompts(messages, &plan).map_err(js_error)?;
    let mut gen = Generation::prepare(engine, prompts, options, plan, keep).map_err(js_error)?;
    // A long prompt is fed in parts, so that a cancel stops it between them.
    while !gen.prefill_step().await.map_err(js_error)? {
        yield_to_event_loop().await?;
        if cancel.get() {
            gen.cancel();
        }
    }
    let t1 = now_seconds();
    let mut stop = StopRewards::default();
    loop {
        yield_to_event_loop().await?;
        if cancel.get() {
            gen.cancel();
        }
        let Some(token) = stop.step(&mut gen).await.map_err(js_error)? else { break };
        if let Some(cb) = on_token {
            let explanation = match &token.explanation {
                Some(e) => to_js(e)?,
                None => JsValue::UNDEFINED,
            };
            cb.call3(&JsValue::NULL, &JsValue::from_str(&token.text), &JsValue::from(token.id), &explanation)?;
        }
    }
    let t2 = now_seconds();
    let n = gen.generated().len();
    Ok(GenerateResult {
        prompt_ids: gen.prompt_ids().to_vec(),
        generated_ids: gen.generated().to_vec(),
        text: gen.text().map_err(js_error)?,
        stop_reason: gen.stop_reason().unwrap_or(StopReason::Length),
        prefill_tokens_per_second: gen.prompt_ids().len() as f64 / (t1 - t0).max(1e-9),
        decode_tokens_per_second: n as f64 / (t2 - t1).max(1e-9),
        reward_labels: gen.reward_labels().to_vec(),
        sequence_rewards: gen.sequence_rewards().to_vec(),
        stop_rewards: stop.finish(&gen),
        prefilled_tokens: gen.prefilled().to_vec(),
        samples: None,
        best: None,
    })
}

/// Best-of-n: the samples run one after another (the page can cancel between them), then
/// the kept answer is streamed token by token.
async fn run_best_of_n<B: Backend>(
    engine: &Engine<B>,
    cancel: &Cell<bool>,
    messages: &[ChatMessage],
    options: &GenerateOptions,
    plan: &Plan,
    on_token: Option<&js_sys::Function>,
) -> Result<GenerateResult, JsValue> {
    let t0 = now_seconds();
    let mut bon = BestOfN::conversation(engine, messages.to_vec(), options, plan).map_err(js_error)?;
    let mut cancelled = false;
    loop {
        yield_to_event_loop().await?;
        if cancel.get() {
            cancelled = true;
            break;
        }
        if bon.next_sample().await.map_err(js_error)?.is_none() {
            break;
        }
    }
    let seconds = (now_seconds() - t0).max(1e-9);
    let best = bon.best();
    let kept = best.map(|i| bon.samples()[i].clone());
    if let (Some(s), Some(cb)) = (&kept, on_token) {
        let mut decoder = crate::tokenizer::StreamDecoder::new();
        for &id in &s.generated_ids {
            let piece = decoder.push(&engine.tokenizer, id).map_err(js_error)?;
            cb.call3(&JsValue::NULL, &JsValue::from_str(&piece), &JsValue::from(id), &JsValue::UNDEFINED)?;
        }
    }
    let total: usize = bon.samples().iter().map(|s| s.generated_ids.len()).sum();
    Ok(GenerateResult {
        prompt_ids: engine.conversation_prompts(messages, plan).map_err(js_error)?.swap_remove(0),
        generated_ids: kept.as_ref().map(|s| s.generated_ids.clone()).unwrap_or_default(),
        text: kept.as_ref().map(|s| s.text.clone()).unwrap_or_default(),
        stop_reason: if cancelled {
            StopReason::Cancelled
        } else {
            kept.as_ref().map_or(StopReason::Length, |s| s.stop_reason)
        },
        prefill_tokens_per_second: 0.0,
        decode_tokens_per_second: total as f64 / seconds,
        reward_labels: bon.reward_labels().to_vec(),
        sequence_rewards: kept.as_ref().map(|s| s.rewards.clone()).unwrap_or_default(),
        stop_rewards: Vec::new(),
        prefilled_tokens: Vec::new(),
        samples: Some(bon.samples().to_vec()),
        best,
    })
}
