//! Text generation: a loaded model with its tokenizer (`Engine`), and a token-by-token
//! generation (`Generation`) that the command line drives in a loop and the web layer
//! drives with a pause between tokens (so a page can cancel).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::align::head::parse_head;
use crate::align::pad::{pad_step, PadParams};
use crate::align::plan::Plan;
use crate::align::sampler::{apply_repetition_penalty, logits_wanted, Sampler, SamplingParams};
use crate::align::{ContextStyle, Method, Personalization, RewardContext};
use crate::backend::Backend;
use crate::error::Result;
use crate::gguf::GgufFile;
use crate::model::llama::{Llama, Logits, Sequence, ValueHead};
use crate::tokenizer::{ChatMessage, StreamDecoder, Tokenizer};

mod best_of_n;
mod prompts;
pub use best_of_n::{BestOfN, Sample};
pub use prompts::{check_conversation, one_turn};

/// The most prompt tokens a context feeds in one prefill pass: between passes a page can
/// cancel, and the activations of one pass stay small.
pub const PREFILL_CHUNK: usize = 256;

/// A model ready to generate: weights on a backend, the tokenizer from the same file, and
/// the value heads loaded for it (by name; a preference names the head its PersRM uses).
pub struct Engine<B: Backend> {
    pub model: Llama<B>,
    pub tokenizer: Tokenizer,
    heads: Mutex<BTreeMap<String, LoadedHead<B>>>,
    /// The contexts the last kept generation left (`Generation::start_kept`), for the next
    /// one to reuse where its prompts start with their tokens.
    kept: Mutex<Vec<Sequence<B>>>,
}

/// A value head and the PersRM contexts it was trained on (its metadata's `persrm_context`,
/// as `padlock train-head` writes it): a head only means something on the hidden states it
/// learnt from, so PAD refuses to use it with the other style.
#[derive(Clone)]
struct LoadedHead<B: Backend> {
    head: ValueHead<B>,
    trained_for: Option<ContextStyle>,
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
        Ok(Engine { model, tokenizer, heads: Mutex::new(BTreeMap::new()), kept: Mutex::new(Vec::new()) })
    }

    /// Reads a value head (safetensors, see `align::head`) and keeps it under `name`,
    /// replacing any head of that name. Returns the file's metadata. A bad file changes nothing.
    pub fn load_head(&self, name: &str, bytes: &[u8]) -> Result<BTreeMap<String, String>> {
        if name.trim().is_empty() {
            crate::bail!(InvalidArgument, "a value head needs a name");
        }
        let file = parse_head(bytes, self.model.config.hidden)?;
        let trained_for = match file.metadata.get("persrm_context") {
            None => None,
            Some(name) => Some(ContextStyle::from_name(name).ok_or_else(|| {
                crate::Error::new(
                    crate::ErrorCode::ValueHead,
                    format!("the head's metadata names an unknown persrm_context {name:?}"),
                )
            })?),
        };
        let head = self.model.value_head(&file.matrix)?;
        self.heads.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), LoadedHead { head, trained_for });
        Ok(file.metadata)
    }

    /// Forgets the head called `name`; true if there was one.
    pub fn remove_head(&self, name: &str) -> bool {
        self.heads.lock().unwrap_or_else(|e| e.into_inner()).remove(name).is_some()
    }

    /// The names of the loaded heads.
    pub fn head_names(&self) -> Vec<String> {
        self.heads.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect()
    }

    /// The loaded head for each reward context (`None`: identity), for contexts in `style`.
    fn heads_for(&self, contexts: &[RewardContext], style: ContextStyle) -> Result<Vec<Option<ValueHead<B>>>> {
        let heads = self.heads.lock().unwrap_or_else(|e| e.into_inner());
        contexts
            .iter()
            .map(|c| {
                let Some(name) = &c.head else { return Ok(None) };
                let Some(loaded) = heads.get(name) else {
                    crate::bail!(InvalidArgument, "no value head called {name:?} is loaded");
                };
                match loaded.trained_for {
                    Some(trained) if trained != style => crate::bail!(
                        ValueHead,
                        "the value head {name:?} was trained on {:?} PersRM contexts; set the PersRM context style \
                         (persrmContext, --persrm-context) to {:?} to use it (it is {:?})",
                        trained.name(),
                        trained.name(),
                        style.name()
                    ),
                    _ => Ok(Some(loaded.head.clone())),
                }
            })
            .collect()
    }

    /// Drops the contexts the last kept generation left (the next chat turn starts fresh);
    /// returns how many there were.
    pub fn release_kept(&self) -> usize {
        self.take_kept().len()
    }

    fn take_kept(&self) -> Vec<Sequence<B>> {
        std::mem::take(&mut *self.kept.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// One sequence per prompt, with `heads[i]` on the i-th. With `reuse`, each takes the
    /// kept context sharing the longest start with its prompt, cut back to that start (and
    /// at least one token short of the prompt, which prefill must end on); the kept contexts
    /// left over are dropped.
    fn sequences(
        &self,
        prompts: &[Vec<u32>],
        heads: Vec<Option<ValueHead<B>>>,
        reuse: bool,
    ) -> Result<Vec<Sequence<B>>> {
        let mut kept = if reuse { self.take_kept() } else { Vec::new() };
        let mut seqs = Vec::with_capacity(prompts.len());
        for (prompt, head) in prompts.iter().zip(heads) {
            let shared = |s: &Sequence<B>| s.tokens().iter().zip(prompt).take_while(|(a, b)| a == b).count();
            let best = kept.iter().map(shared).enumerate().max_by_key(|&(i, n)| (n, std::cmp::Reverse(i)));
            let mut seq = match best {
                Some((i, n)) if n > 0 => {
                    let mut seq = kept.swap_remove(i);
                    self.model.truncate(&mut seq, n.min(prompt.len().saturating_sub(1)))?;
                    seq
                }
                _ => self.model.new_sequence()?,
            };
            seq.set_head(head);
            seqs.push(seq);
        }
        Ok(seqs)
    }

    /// The tokens a generation sets to −∞ before choosing: end-of-turn when it is ignored.
    fn banned(&self, ignore_eos: bool) -> &[u32] {
        if ignore_eos {
            self.tokenizer.stop_tokens()
        } else {
            &[]
        }
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
    /// Never end the turn before `max_tokens` (the stop tokens are never chosen; for benchmarks).
    pub ignore_eos: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_tokens: 256,
            sampling: SamplingParams::default(),
            system: None,
            personalization: Personalization::default(),
            ignore_eos: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
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
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
pub struct Explanation {
    pub chosen: u32,
    /// The base model's own top-1 at this step, and its text.
    pub base_top1: u32,
    pub base_top1_text: String,
    /// β · w_p · r_p(chosen) for each reward context, in the order of `reward_labels`.
    pub contributions: Vec<f32>,
    /// How many candidates the step weighed (k, or fewer after the restriction).
    pub candidates: usize,
}

/// One generated token and the text it completes, with PAD's explanation when PAD chose it.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub id: u32,
    pub text: String,
    pub explanation: Option<Explanation>,
}

/// A generation in progress over 1 + P contexts (the base context and, for PAD, the
/// PersRM contexts). `start` runs every prompt through the model in batched passes of at most
/// `PREFILL_CHUNK` tokens a context (`prepare` and `prefill_step` let a caller stop between
/// them); each `next` advances every context by the chosen token in one batched pass and
/// yields that token.
pub struct Generation<'e, B: Backend> {
    engine: &'e Engine<B>,
    seqs: Vec<Sequence<B>>,
    sampler: Sampler,
    pad: Option<PadParams>,
    labels: Vec<String>,
    ignore_eos: bool,
    max_tokens: usize,
    /// Base prompt and generated ids: the context the repetition penalty looks at.
    context: Vec<u32>,
    prompt_len: usize,
    decoder: StreamDecoder,
    /// Logits (one row per context) for the next choice; `None` while the last token still has to be fed.
    logits: Option<Vec<f32>>,
    /// Per context, the prompt tokens prefill has still to feed.
    pending: Vec<Vec<u32>>,
    stop: Option<StopReason>,
    /// Per PersRM context: Σ over generated tokens of r_p(chosen), what feedback learns from.
    rewards: Vec<f32>,
    /// Whether the last sequence is the unconditioned reference context.
    reference: bool,
    plan: Plan,
    /// Per context, the prompt tokens prefill has fed (the rest came from kept caches).
    prefilled: Vec<usize>,
    /// Whether the contexts go back to the engine for the next generation to reuse.
    keep: bool,
}

impl<'e, B: Backend> Generation<'e, B> {
    /// Answers `user` as `options` say (plain, preference prompting or PAD).
    pub async fn chat(engine: &'e Engine<B>, user: &str, options: &GenerateOptions) -> Result<Self> {
        let plan = Plan::new(&options.personalization)?;
        Self::chat_planned(engine, user, options, plan).await
    }

    /// [`chat`](Self::chat) with a plan made already (by `Memory::personalize`, or best-of-n):
    /// `options.personalization` is not read, the plan is.
    pub async fn chat_planned(
        engine: &'e Engine<B>,
        user: &str,
        options: &GenerateOptions,
        plan: Plan,
    ) -> Result<Self> {
        let prompts = engine.prompts(user, options.system.as_deref(), &plan)?;
        Self::start_planned(engine, prompts, options, plan).await
    }

    /// Answers the last user message of `messages` on `plan`, reusing the caches the last
    /// kept generation left where this conversation's prompts start with their tokens (the
    /// usual next turn of a chat: only the new tokens are prefilled), and keeping its own.
    pub async fn conversation(
        engine: &'e Engine<B>,
        messages: &[ChatMessage],
        options: &GenerateOptions,
        plan: Plan,
    ) -> Result<Self> {
        let prompts = engine.conversation_prompts(messages, &plan)?;
        Self::prepare(engine, prompts, options, plan, true)?.prefilled_all().await
    }

    /// Checks the request and runs the prompts through the model (prefill). `prompts[0]` is
    /// the base context; the reward contexts follow (`Personalization::reward_contexts`), then
    /// the reference context if there is one (`Engine::contexts` makes them all).
    /// Best-of-n is not one generation: see [`BestOfN`].
    pub async fn start(engine: &'e Engine<B>, prompts: Vec<Vec<u32>>, options: &GenerateOptions) -> Result<Self> {
        let plan = Plan::new(&options.personalization)?;
        Self::start_planned(engine, prompts, options, plan).await
    }

    /// [`start`](Self::start) with a plan made already (`Engine::prompts` makes its prompts).
    pub async fn start_planned(
        engine: &'e Engine<B>,
        prompts: Vec<Vec<u32>>,
        options: &GenerateOptions,
        plan: Plan,
    ) -> Result<Self> {
        Self::prepare(engine, prompts, options, plan, false)?.prefilled_all().await
    }

    /// [`start_planned`](Self::start_planned) before its prefill, on the engine's kept
    /// contexts when `keep`: call [`prefill_step`](Self::prefill_step) until it says done
    /// (or `next` does it), with a chance to [`cancel`](Self::cancel) between the steps.
    pub fn prepare(
        engine: &'e Engine<B>,
        prompts: Vec<Vec<u32>>,
        options: &GenerateOptions,
        plan: Plan,
        keep: bool,
    ) -> Result<Self> {
        if plan.personalization.method == Method::BestOfN {
            crate::bail!(InvalidArgument, "best-of-n runs several generations: use BestOfN");
        }
        let expected = 1 + plan.contexts.len() + plan.reference as usize;
        if prompts.len() != expected {
            crate::bail!(InvalidArgument, "{} prompts for {expected} contexts", prompts.len());
        }
        let heads = engine.heads_for(&plan.contexts, plan.personalization.persrm_context)?;
        let ctx = engine.model.config.context_length;
        for p in &prompts {
            if p.is_empty() {
                crate::bail!(InvalidArgument, "a prompt has no tokens");
            }
            // The prompt must leave room for at least one generated token.
            if p.len() >= ctx {
                crate::bail!(PromptTooLong, "the prompt has {} tokens; the context holds {ctx}", p.len());
            }
        }
        let pad = (plan.personalization.method == Method::Pad).then(|| PadParams {
            keep: if plan.personalization.stop_candidate {
                engine.tokenizer.stop_tokens().to_vec()
            } else {
                Vec::new()
            },
            ..plan.pad.clone()
        });
        let sampler = Sampler::new(options.sampling.clone())?;
        let mut all_heads = vec![None];
        all_heads.extend(heads);
        if plan.reference {
            all_heads.push(None);
        }
        let seqs = engine.sequences(&prompts, all_heads, keep)?;
        engine.model.check_kv_fits(&prompts, &seqs, options.max_tokens)?;
        let pending = prompts.iter().zip(&seqs).map(|(p, s)| p[s.len()..].to_vec()).collect();
        let mut prompts = prompts;
        let base = prompts.swap_remove(0);
        Ok(Generation {
            engine,
            seqs,
            sampler,
            pad,
            labels: plan.labels(),
            rewards: vec![0.0; plan.contexts.len()],
            reference: plan.reference,
            plan,
            ignore_eos: options.ignore_eos,
            max_tokens: options.max_tokens,
            prompt_len: base.len(),
            context: base,
            decoder: StreamDecoder::new(),
            logits: None,
            pending,
            stop: (options.max_tokens == 0).then_some(StopReason::Length),
            prefilled: vec![0; expected],
            keep,
        })
    }

    async fn prefilled_all(mut self) -> Result<Self> {
        while !self.prefill_step().await? {}
        Ok(self)
    }

    /// Feeds the next part of the prompts, at most `PREFILL_CHUNK` tokens a context; true once
    /// they are all in and the first token's logits are ready (or generation has stopped).
    /// Every context keeps at least one token for the last pass, which they all take together.
    pub async fn prefill_step(&mut self) -> Result<bool> {
        if self.stop.is_some() || self.pending.iter().all(Vec::is_empty) {
            return Ok(true);
        }
        if self.pending.iter().all(|p| p.len() <= PREFILL_CHUNK) {
            let wanted = self.logits_wanted();
            let tokens: Vec<&[u32]> = self.pending.iter().map(Vec::as_slice).collect();
            self.logits = Some(self.engine.model.forward_batch_wanting(&mut self.seqs, &tokens, &wanted).await?);
            for (fed, p) in self.prefilled.iter_mut().zip(std::mem::take(&mut self.pending)) {
                *fed += p.len();
            }
            return Ok(true);
        }
        let mut seqs = Vec::new();
        let mut tokens = Vec::new();
        for (seq, p) in self.seqs.iter_mut().zip(&self.pending) {
            if p.len() > PREFILL_CHUNK {
                seqs.push(seq);
                tokens.push(&p[..PREFILL_CHUNK]);
            }
        }
        self.engine.model.feed(&mut seqs, &tokens)?;
        for (fed, p) in self.prefilled.iter_mut().zip(&mut self.pending) {
            if p.len() > PREFILL_CHUNK {
                p.drain(..PREFILL_CHUNK);
                *fed += PREFILL_CHUNK;
            }
        }
        Ok(false)
    }

    /// The next token, or `None` once generation has stopped (see `stop_reason`).
    pub async fn next(&mut self) -> Result<Option<Token>> {
        while !self.prefill_step().await? {}
        if self.stop.is_some() {
            return Ok(None);
        }
        let mut logits = match self.logits.take() {
            Some(l) => l,
            None => {
                let last = [self.context[self.context.len() - 1]];
                let tokens = vec![&last[..]; self.seqs.len()];
                let wanted = self.logits_wanted();
                self.engine.model.forward_batch_wanting(&mut self.seqs, &tokens, &wanted).await?
            }
        };
        let vocab = logits.len() / self.seqs.len();
        for &s in self.engine.banned(self.ignore_eos) {
            if let Some(l) = logits.get_mut(s as usize) {
                *l = f32::NEG_INFINITY;
            }
        }
        let (base, rewards) = logits.split_at_mut(vocab);
        let (id, explanation) = match &self.pad {
            None => (self.sampler.sample(base, &self.context)?, None),
            Some(pad) => {
                let mut persrm: Vec<&[f32]> = rewards.chunks_exact(vocab).collect();
                // The reference policy: the unconditioned context's logits, or the base
                // context's own before the repetition penalty.
                let reference = if self.reference { persrm.pop().map(<[f32]>::to_vec) } else { None }
                    .unwrap_or_else(|| base.to_vec());
                let p = self.sampler.params();
                apply_repetition_penalty(base, &self.context, p.repetition_window, p.repetition_penalty);
                let step = pad_step(base, &reference, &persrm, pad)?;
                let mut order: Vec<usize> = (0..step.candidates.len()).collect();
                order.sort_by(|&a, &b| step.scores[b].total_cmp(&step.scores[a]).then(a.cmp(&b)));
                let sorted: Vec<f32> = order.iter().map(|&i| step.scores[i]).collect();
                let pick = order[self.sampler.sample_sorted(&sorted)];
                let contributions = step.contributions.iter().map(|c| c[pick]).collect();
                let chosen = step.candidates[pick];
                for (total, r) in self.rewards.iter_mut().zip(&step.rewards) {
                    *total += r[pick];
                }
                let base_top1 = step.candidates[0];
                let base_top1_text = self.engine.tokenizer.decode(&[base_top1])?;
                let candidates = step.candidates.len();
                (chosen, Some(Explanation { chosen, base_top1, base_top1_text, contributions, candidates }))
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

    /// The logits the next choice reads (the sampler's and PAD's candidates, the banned ids).
    fn logits_wanted(&self) -> crate::logits::LogitsWanted {
        logits_wanted(self.sampler.params(), self.pad.as_ref(), &self.context, self.engine.banned(self.ignore_eos))
    }

    pub fn cancel(&mut self) {
        self.stop.get_or_insert(StopReason::Cancelled);
    }

    pub fn stop_reason(&self) -> Option<StopReason> {
        self.stop
    }

    /// Per PersRM context (in the order of `reward_labels`), the summed token-level reward
    /// Σ_t r_p(y_t) of the tokens generated so far; empty unless the method is PAD.
    pub fn sequence_rewards(&self) -> &[f32] {
        &self.rewards
    }

    /// What each reward context is (the preference text; the harmlessness principle is
    /// among them), in the order of `sequence_rewards` and `Explanation::contributions`.
    pub fn reward_labels(&self) -> &[String] {
        &self.labels
    }

    /// What this generation does with the preferences.
    pub fn plan(&self) -> &Plan {
        &self.plan
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

    /// Per context (base first, in the order of the prompts), how many prompt tokens prefill
    /// fed; the others came from the caches a kept generation left.
    pub fn prefilled(&self) -> &[usize] {
        &self.prefilled
    }
}

impl<B: Backend> Drop for Generation<'_, B> {
    fn drop(&mut self) {
        if self.keep {
            *self.engine.kept.lock().unwrap_or_else(|e| e.into_inner()) = std::mem::take(&mut self.seqs);
        }
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
