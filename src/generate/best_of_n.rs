//! Best-of-n: whole answers sampled from the base model, the one the preferences reward most kept.

use serde::Serialize;

use crate::align::plan::Plan;
use crate::align::Method;
use crate::backend::Backend;
use crate::error::Result;
use crate::generate::{check_conversation, one_turn, Engine, GenerateOptions, Generation, StopReason};
use crate::tokenizer::ChatMessage;

/// One answer sampled by best-of-n, with its reward.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    pub seed: u64,
    pub generated_ids: Vec<u32>,
    pub text: String,
    pub stop_reason: StopReason,
    /// Σ_t r_p(y_t) per reward context.
    pub rewards: Vec<f32>,
    /// Σ_p w_p Σ_t r_p(y_t): what best-of-n ranks by.
    pub reward: f32,
}

/// Best-of-n: `best_of` answers sampled from the base model (seeds `seed`, `seed + 1`, …),
/// each scored by its summed PersRM reward Σ_p w_p Σ_t r_p(y_t), the best kept. A sample is
/// a PAD generation at β = 0 (exactly the base model's sampling over its top-k candidates)
/// whose reward contexts only score.
pub struct BestOfN<'e, B: Backend> {
    engine: &'e Engine<B>,
    messages: Vec<ChatMessage>,
    options: GenerateOptions,
    /// The samples' plan (`Plan::best_of_n_samples`).
    plan: Plan,
    labels: Vec<String>,
    samples: Vec<Sample>,
}

impl<'e, B: Backend> BestOfN<'e, B> {
    pub fn new(engine: &'e Engine<B>, user: &str, options: &GenerateOptions) -> Result<Self> {
        Self::planned(engine, user, options, &Plan::new(&options.personalization)?)
    }

    /// [`new`](Self::new) with a plan made already: `options.personalization` is not read.
    pub fn planned(engine: &'e Engine<B>, user: &str, options: &GenerateOptions, plan: &Plan) -> Result<Self> {
        Self::conversation(engine, one_turn(user, options.system.as_deref()), options, plan)
    }

    /// [`planned`](Self::planned) answering the last user message of `messages`.
    pub fn conversation(
        engine: &'e Engine<B>,
        messages: Vec<ChatMessage>,
        options: &GenerateOptions,
        plan: &Plan,
    ) -> Result<Self> {
        check_conversation(&messages)?;
        if plan.personalization.method != Method::BestOfN {
            crate::bail!(InvalidArgument, "BestOfN needs method best-of-n");
        }
        if options.sampling.greedy || options.sampling.temperature == 0.0 {
            crate::bail!(InvalidArgument, "best-of-n samples its answers: greedy decoding would give n equal ones");
        }
        let samples = plan.best_of_n_samples()?;
        let mut options = options.clone();
        options.personalization = samples.personalization.clone();
        Ok(BestOfN { engine, messages, labels: samples.labels(), plan: samples, options, samples: Vec::new() })
    }

    /// The next sample (one whole answer), or `None` once all `best_of` are done.
    pub async fn next_sample(&mut self) -> Result<Option<&Sample>> {
        if self.samples.len() >= self.plan.personalization.best_of {
            return Ok(None);
        }
        let mut options = self.options.clone();
        options.sampling.seed = self.options.sampling.seed.wrapping_add(self.samples.len() as u64);
        let prompts = self.engine.conversation_prompts(&self.messages, &self.plan)?;
        let mut gen = Generation::start_planned(self.engine, prompts, &options, self.plan.clone()).await?;
        while gen.next().await?.is_some() {}
        let rewards = gen.sequence_rewards().to_vec();
        let reward = rewards.iter().zip(&self.plan.pad.weights).map(|(r, w)| r * w).sum();
        self.samples.push(Sample {
            seed: options.sampling.seed,
            generated_ids: gen.generated().to_vec(),
            text: gen.text()?,
            stop_reason: gen.stop_reason().unwrap_or(StopReason::Length),
            rewards,
            reward,
        });
        Ok(self.samples.last())
    }

    /// Runs every remaining sample.
    pub async fn run(&mut self) -> Result<()> {
        while self.next_sample().await?.is_some() {}
        Ok(())
    }

    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// Index of the sample with the highest reward (the first on a tie); `None` before any.
    pub fn best(&self) -> Option<usize> {
        (0..self.samples.len()).reduce(|b, i| if self.samples[i].reward > self.samples[b].reward { i } else { b })
    }

    pub fn reward_labels(&self) -> &[String] {
        &self.labels
    }
}
