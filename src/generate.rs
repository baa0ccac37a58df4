//! Text generation: a loaded model with its tokenizer (`Engine`), and a token-by-token
//! generation (`Generation`) that the command line drives in a loop and the web layer
//! drives with a pause between tokens (so a page can cancel).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::align::sampler::{Sampler, SamplingParams};
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
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions { max_tokens: 256, sampling: SamplingParams::default(), system: None }
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

/// One generated token and the text it completes (empty while a character is split).
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub id: u32,
    pub text: String,
}

/// A generation in progress. `start` runs the prompt; each `next` yields one token.
pub struct Generation<'e, B: Backend> {
    engine: &'e Engine<B>,
    seq: Sequence<B>,
    sampler: Sampler,
    max_tokens: usize,
    /// Prompt and generated ids: the context the repetition penalty looks at.
    context: Vec<u32>,
    prompt_len: usize,
    decoder: StreamDecoder,
    /// Logits for the next choice; `None` while the last token still has to be fed.
    logits: Option<Vec<f32>>,
    stop: Option<StopReason>,
}

impl<'e, B: Backend> Generation<'e, B> {
    /// Checks the request and runs the prompt through the model (prefill).
    pub async fn start(engine: &'e Engine<B>, prompt_ids: Vec<u32>, options: &GenerateOptions) -> Result<Self> {
        let ctx = engine.model.config.context_length;
        if prompt_ids.is_empty() {
            crate::bail!(InvalidArgument, "the prompt has no tokens");
        }
        // The prompt must leave room for at least one generated token.
        if prompt_ids.len() >= ctx {
            crate::bail!(PromptTooLong, "the prompt has {} tokens; the context holds {ctx}", prompt_ids.len());
        }
        let sampler = Sampler::new(options.sampling.clone())?;
        let mut seq = engine.model.new_sequence()?;
        let logits = engine.model.forward_one(&mut seq, &prompt_ids, Logits::Last).await?;
        Ok(Generation {
            engine,
            seq,
            sampler,
            max_tokens: options.max_tokens,
            prompt_len: prompt_ids.len(),
            context: prompt_ids,
            decoder: StreamDecoder::new(),
            logits: Some(logits),
            stop: (options.max_tokens == 0).then_some(StopReason::Length),
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
                let last = self.context[self.context.len() - 1];
                self.engine.model.forward_one(&mut self.seq, &[last], Logits::Last).await?
            }
        };
        let id = self.sampler.sample(&mut logits, &self.context)?;
        if self.engine.tokenizer.is_stop_token(id) {
            self.stop = Some(StopReason::Eos);
            return Ok(None);
        }
        self.context.push(id);
        if self.generated().len() >= self.max_tokens || self.context.len() >= self.engine.model.config.context_length {
            self.stop = Some(StopReason::Length);
        }
        let text = self.decoder.push(&self.engine.tokenizer, id)?;
        Ok(Some(Token { id, text }))
    }

    pub fn cancel(&mut self) {
        self.stop.get_or_insert(StopReason::Cancelled);
    }

    pub fn stop_reason(&self) -> Option<StopReason> {
        self.stop
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
