//! Text generation: a loaded model with its tokenizer (`Engine`), and a token-by-token
//! generation (`Generation`) that the command line drives in a loop and the web layer
//! drives with a pause between tokens (so a page can cancel).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::align::pad::pad_step;
use crate::align::sampler::{apply_repetition_penalty, logits_wanted, Sampler, SamplingParams};
use crate::align::{guideline_message, Method, Personalization};
use crate::backend::Backend;
use crate::error::Result;
use crate::model::gguf::GgufFile;
use crate::model::llama::{Llama, Logits, Sequence};
use crate::tokenizer::{ChatMessage, StreamDecoder, Tokenizer};

/// A model ready to generate: weights on a backend and the tokenizer from the same file.
pub struct Engine<B: Backend> {
    pub model: Llama<B>,
    pub tokenizer: Tokenizer,
}

impl<B: Backend> Engine<B> {
    /// Parses and validates a GGUF held in memory and prepares it on `backend`.
    pub fn load(backend: B, bytes: Arc<Vec<u8>>, progress: &mut dyn FnMut(f32)) -> Result<Self> {
        let file = GgufFile::parse(bytes)?;
        let tokenizer = Tokenizer::from_gguf(&file)?;
        let model = Llama::load(backend, &file, progress)?;
        if tokenizer.vocab_size() > model.config.vocab_size {
            crate::bail!(
                ModelConfig,
                "the tokenizer has {} tokens but the model only {}",
                tokenizer.vocab_size(),
                model.config.vocab_size
            );
        }
        Ok(Engine { model, tokenizer })
    }

    /// The token ids of a one-turn chat, rendered with the file's own chat template.
    pub fn chat_prompt(&self, user: &str, system: Option<&str>) -> Result<Vec<u32>> {
        let mut messages = Vec::new();
        if let Some(system) = system {
            messages.push(ChatMessage { role: "system".into(), content: system.into() });
        }
        messages.push(ChatMessage { role: "user".into(), content: user.into() });
        let text = self.tokenizer.apply_chat_template(&messages, true)?;
        self.tokenizer.encode(&text)
    }

    /// The prompts of every context a generation advances: the base context first, then
    /// (for PAD) one PersRM context per preference, or one for all when `combined`.
    pub fn contexts(&self, user: &str, options: &GenerateOptions) -> Result<Vec<Vec<u32>>> {
        let pers = &options.personalization;
        let texts: Vec<&str> = pers.preferences.iter().map(|p| p.text.as_str()).collect();
        let system = options.system.as_deref();
        let base_user = match pers.method {
            Method::Base => user.to_string(),
            Method::Prompt => guideline_message(&texts, user),
            Method::Pad if pers.base_with_guideline => guideline_message(&texts, user),
            Method::Pad => user.to_string(),
        };
        let mut contexts = vec![self.chat_prompt(&base_user, system)?];
        if pers.method == Method::Pad {
            if pers.combined {
                contexts.push(self.chat_prompt(&guideline_message(&texts, user), system)?);
            } else {
                for p in &texts {
                    contexts.push(self.chat_prompt(&guideline_message(&[p], user), system)?);
                }
            }
        }
        Ok(contexts)
    }

    /// Logits at every position of `ids`, from a fresh context (row-major `[ids, vocab]`).
    pub async fn logits_all(&self, ids: &[u32]) -> Result<Vec<f32>> {
        let mut seq = self.model.new_sequence()?;
        self.model.forward_one(&mut seq, ids, Logits::All).await
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GenerateOptions {
    pub max_tokens: usize,
    #[serde(flatten)]
    pub sampling: SamplingParams,
    /// A system message; the chat template's default when absent.
    pub system: Option<String>,
    /// How the person's preferences steer the answer (none: the plain base model).
    #[serde(flatten)]
    pub personalization: Personalization,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_tokens: 256,
            sampling: SamplingParams::default(),
            system: None,
            personalization: Personalization::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StopReason {
    /// The model produced an end-of-turn or end-of-text token.
    Eos,
    /// `max_tokens` reached, or the context is full.
    Length,
    /// The caller stopped it.
    Cancelled,
}

/// What one PAD step decided, for the page's explanation view.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    pub chosen: u32,
    /// The base model's own top-1 at this step.
    pub base_top1: u32,
    /// β · w_p · r_p(chosen) for each preference context, in order.
    pub contributions: Vec<f32>,
}

/// One generated token and the text it completes, with PAD's explanation when PAD chose it.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub id: u32,
    pub text: String,
    pub explanation: Option<Explanation>,
}

/// A generation in progress over 1 + P contexts (the base context and, for PAD, the
/// PersRM contexts). `start` runs every prompt in one batched pass; each `next` advances
/// every context by the chosen token in one batched pass and yields that token.
pub struct Generation<'e, B: Backend> {
    engine: &'e Engine<B>,
    seqs: Vec<Sequence<B>>,
    sampler: Sampler,
    pad: Option<PadChoice>,
    max_tokens: usize,
    /// Base prompt and generated ids: the context the repetition penalty looks at.
    context: Vec<u32>,
    prompt_len: usize,
    decoder: StreamDecoder,
    /// Logits (one row per context) for the next choice; `None` while the last token still has to be fed.
    logits: Option<Vec<f32>>,
    stop: Option<StopReason>,
    /// Per PersRM context: Σ over generated tokens of r_p(chosen), what feedback learns from.
    rewards: Vec<f32>,
}

struct PadChoice {
    weights: Vec<f32>,
    beta: f32,
    candidates: usize,
}

impl<'e, B: Backend> Generation<'e, B> {
    /// Answers `user` as `options` say (plain, preference prompting or PAD).
    pub async fn chat(engine: &'e Engine<B>, user: &str, options: &GenerateOptions) -> Result<Self> {
        let contexts = engine.contexts(user, options)?;
        Self::start(engine, contexts, options).await
    }

    /// Checks the request and runs the prompts through the model (prefill). `prompts[0]` is
    /// the base context; PAD's contexts follow, one per entry of the personalization's weights.
    pub async fn start(engine: &'e Engine<B>, prompts: Vec<Vec<u32>>, options: &GenerateOptions) -> Result<Self> {
        let ctx = engine.model.config.context_length;
        let pers = &options.personalization;
        let pad = (pers.method == Method::Pad).then(|| PadChoice {
            weights: if pers.combined { vec![1.0] } else { pers.preferences.iter().map(|p| p.weight).collect() },
            beta: pers.beta,
            candidates: pers.candidates,
        });
        let expected = 1 + pad.as_ref().map_or(0, |p| p.weights.len());
        if prompts.len() != expected {
            crate::bail!(InvalidArgument, "{} prompts for {expected} contexts", prompts.len());
        }
        pers.validate()?;
        for p in &prompts {
            if p.is_empty() {
                crate::bail!(InvalidArgument, "a prompt has no tokens");
            }
            // The prompt must leave room for at least one generated token.
            if p.len() >= ctx {
                crate::bail!(PromptTooLong, "the prompt has {} tokens; the context holds {ctx}", p.len());
            }
        }
        let sampler = Sampler::new(options.sampling.clone())?;
        let mut seqs = prompts.iter().map(|_| engine.model.new_sequence()).collect::<Result<Vec<_>>>()?;
        let wanted = logits_wanted(sampler.params(), pad.as_ref().map(|p| p.candidates), &prompts[0]);
        let tokens: Vec<&[u32]> = prompts.iter().map(|p| p.as_slice()).collect();
        let logits = engine.model.forward_batch_wanting(&mut seqs, &tokens, &wanted).await?;
        let mut prompts = prompts;
        let base = prompts.swap_remove(0);
        Ok(Generation {
            engine,
            seqs,
            sampler,
            pad,
            max_tokens: options.max_tokens,
            prompt_len: base.len(),
            context: base,
            decoder: StreamDecoder::new(),
            logits: Some(logits),
            stop: (options.max_tokens == 0).then_some(StopReason::Length),
            rewards: vec![0.0; expected - 1],
        })
    }

    /// The next token, or `None` once generation has stopped (see `stop_reason`).
    pub async fn next(&mut self) -> Result<Option<Token>> {
        if self.stop.is_some() {
            return Ok(None);
        }
        let mut logits = match self.logits.take() {
            Some(l) => l,
            None => {
                let last = [self.context[self.context.len() - 1]];
                let tokens = vec![&last[..]; self.seqs.len()];
                let wanted = logits_wanted(self.sampler.params(), self.pad.as_ref().map(|p| p.candidates), &self.context);
                self.engine.model.forward_batch_wanting(&mut self.seqs, &tokens, &wanted).await?
            }
        };
        let vocab = logits.len() / self.seqs.len();
        let (base, rewards) = logits.split_at_mut(vocab);
        let (id, explanation) = match &self.pad {
            None => (self.sampler.sample(base, &self.context)?, None),
            Some(pad) => {
                let p = self.sampler.params();
                apply_repetition_penalty(base, &self.context, p.repetition_window, p.repetition_penalty);
                let persrm: Vec<&[f32]> = rewards.chunks_exact(vocab).collect();
                let step = pad_step(base, &persrm, &pad.weights, pad.beta, pad.candidates)?;
                let mut order: Vec<usize> = (0..step.candidates.len()).collect();
                order.sort_by(|&a, &b| step.scores[b].total_cmp(&step.scores[a]).then(a.cmp(&b)));
                let sorted: Vec<f32> = order.iter().map(|&i| step.scores[i]).collect();
                let pick = order[self.sampler.sample_sorted(&sorted)];
                let contributions =
                    step.rewards.iter().zip(&pad.weights).map(|(r, w)| pad.beta * w * r[pick]).collect();
                let chosen = step.candidates[pick];
                for (total, r) in self.rewards.iter_mut().zip(&step.rewards) {
                    *total += r[pick];
                }
                (chosen, Some(Explanation { chosen, base_top1: step.candidates[0], contributions }))
            }
        };
        if self.engine.tokenizer.is_stop_token(id) {
            self.stop = Some(StopReason::Eos);
            return Ok(None);
        }
        self.context.push(id);
        let longest = self.seqs.iter().map(|s| s.len()).max().unwrap_or(0);
        if self.generated().len() >= self.max_tokens || longest + 1 >= self.engine.model.config.context_length {
            self.stop = Some(StopReason::Length);
        }
        let text = self.decoder.push(&self.engine.tokenizer, id)?;
        Ok(Some(Token { id, text, explanation }))
    }

    pub fn cancel(&mut self) {
        self.stop.get_or_insert(StopReason::Cancelled);
    }

    pub fn stop_reason(&self) -> Option<StopReason> {
        self.stop
    }

    /// Per PersRM context (in preference order), the summed token-level reward
    /// Σ_t r_p(y_t) of the tokens generated so far; empty unless the method is PAD.
    pub fn sequence_rewards(&self) -> &[f32] {
        &self.rewards
    }

    pub fn prompt_ids(&self) -> &[u32] {
        &self.context[..self.prompt_len]
    }

    pub fn generated(&self) -> &[u32] {
        &self.context[self.prompt_len..]
    }

    /// All generated text, decoded in one piece.
    pub fn text(&self) -> Result<String> {
        self.engine.tokenizer.decode(self.generated())
    }
}

/// Seconds on a monotonic clock (performance.now() in the browser).
pub fn now_seconds() -> f64 {
    #[cfg(target_arch = "wasm32")]
    {
        js_sys::Reflect::get(&js_sys::global(), &"performance".into())
            .ok()
            .and_then(|p| js_sys::Reflect::get(&p, &"now".into()).ok().map(|f| (p, f)))
            .and_then(|(p, f)| js_sys::Function::from(f).call0(&p).ok())
            .and_then(|v| v.as_f64())
            .unwrap_or_else(js_sys::Date::now)
            / 1000.0
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::sync::OnceLock;
        use std::time::Instant;
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_secs_f64()
    }
}
