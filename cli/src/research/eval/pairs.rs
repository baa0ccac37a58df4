//! Preference pairs by contrastive prompting of the model itself: for a prompt x and a
//! dimension, the chosen answer is generated under the dimension's preference as a
//! guideline, the rejected one under its opposite, with the same sampling seed. The pairs
//! are what `padlock train-head` learns from.

use serde::{Deserialize, Serialize};

use crate::research::eval::dimensions::Dimension;
use padlock::align::sampler::SamplingParams;
use padlock::align::ContextStyle;
use padlock::backend::Backend;
use padlock::error::Result;
use padlock::generate::{Engine, GenerateOptions, Generation, StopReason};

/// One line of a pairs file (JSONL).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    pub dimension: String,
    /// The preference the chosen answer follows (the head's guideline).
    pub preference: String,
    /// Index of the prompt in the prompt list (the held-out split is by prompt).
    pub prompt_index: usize,
    pub prompt: String,
    /// How both answers' contexts carried the preference (and its opposite).
    #[serde(default)]
    pub context: ContextStyle,
    pub seed: u64,
    pub chosen: String,
    pub chosen_ids: Vec<u32>,
    /// Whether the chosen answer ended with the end-of-turn token (else it hit the limit).
    pub chosen_eos: bool,
    pub rejected: String,
    pub rejected_ids: Vec<u32>,
    pub rejected_eos: bool,
}

impl Pair {
    /// What identifies a pair in a file being resumed.
    pub fn key(&self) -> (String, usize, u64) {
        (self.dimension.clone(), self.prompt_index, self.seed)
    }
}

/// Decoding for pair generation: varied but sensible samples, or with seed 0 greedy decoding
/// (repetition penalty 1.1), as `padlock eval` and PAD's default decode, so that a head learns
/// from the kind of answer it will steer.
pub fn pair_sampling(seed: u64) -> SamplingParams {
    // Greedy decoding ignores temperature, top-k, top-p and the seed.
    SamplingParams {
        greedy: seed == 0,
        temperature: 0.7,
        top_p: 0.9,
        top_k: 40,
        repetition_penalty: 1.1,
        seed,
        ..Default::default()
    }
}

/// The answer to `prompt` conditioned on `guideline` alone, carried in `style` (no
/// harmlessness principle: the pairs contrast one preference with its opposite).
/// Returns the text, its token ids and whether it ended with the end-of-turn token.
pub async fn prompted_answer<B: Backend>(
    engine: &Engine<B>,
    prompt: &str,
    guideline: &str,
    style: ContextStyle,
    sampling: SamplingParams,
    max_tokens: usize,
) -> Result<(String, Vec<u32>, bool)> {
    let options = GenerateOptions { max_tokens, sampling, ..Default::default() };
    let context = engine.conditioned_prompt(style, &[guideline], prompt, None)?;
    let mut gen = Generation::start(engine, vec![context], &options).await?;
    while gen.next().await?.is_some() {}
    Ok((gen.text()?, gen.generated().to_vec(), gen.stop_reason() == Some(StopReason::Eos)))
}

/// Makes the pair for (dimension, prompt, seed).
pub async fn make_pair<B: Backend>(
    engine: &Engine<B>,
    dim: &Dimension,
    prompt_index: usize,
    prompt: &str,
    context: ContextStyle,
    seed: u64,
    max_tokens: usize,
) -> Result<Pair> {
    let (chosen, chosen_ids, chosen_eos) =
        prompted_answer(engine, prompt, dim.prefer, context, pair_sampling(seed), max_tokens).await?;
    let (rejected, rejected_ids, rejected_eos) =
        prompted_answer(engine, prompt, dim.opposite, context, pair_sampling(seed), max_tokens).await?;
    Ok(Pair {
        dimension: dim.name.into(),
        preference: dim.prefer.into(),
        prompt_index,
        prompt: prompt.into(),
        context,
        seed,
        chosen,
        chosen_ids,
        chosen_eos,
        rejected,
        rejected_ids,
        rejected_eos,
    })
}
