//! Token choice: greedy, temperature, top-k, top-p and repetition penalty, seeded.
//!
//! Reproducible on every target: the random stream is ChaCha8 from a u64 seed, the
//! candidate order is fully defined (logit, then id), and probabilities are computed in
//! f64 with `libm`, which is the same code natively and on wasm32.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::align::pad::PadParams;
use crate::error::Result;
use crate::logits::{argmax, top_candidates, LogitsWanted};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
pub struct SamplingParams {
    /// Always take the most likely token (ignores temperature, top-k, top-p, seed).
    pub greedy: bool,
    pub temperature: f32,
    /// Keep the k most likely tokens (0: all).
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches p (1: all).
    pub top_p: f32,
    /// Divides positive (multiplies negative) logits of tokens already in the context; 1 = off.
    pub repetition_penalty: f32,
    /// How many of the most recent tokens the penalty looks at.
    pub repetition_window: usize,
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            greedy: false,
            temperature: 0.7,
            top_k: 40,
            top_p: 0.9,
            repetition_penalty: 1.1,
            repetition_window: 64,
            seed: 42,
        }
    }
}

impl SamplingParams {
    pub fn greedy() -> Self {
        SamplingParams { greedy: true, repetition_penalty: 1.0, ..Default::default() }
    }

    pub fn validate(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            crate::bail!(InvalidArgument, "temperature must be a finite number ≥ 0, got {}", self.temperature);
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            crate::bail!(InvalidArgument, "top_p must be in (0, 1], got {}", self.top_p);
        }
        if !(MIN_REPETITION_PENALTY..=MAX_REPETITION_PENALTY).contains(&self.repetition_penalty) {
            crate::bail!(
                InvalidArgument,
                "repetition_penalty must be within [{MIN_REPETITION_PENALTY}, {MAX_REPETITION_PENALTY}], got {}",
                self.repetition_penalty
            );
        }
        if self.top_k > MAX_TOP_K {
            crate::bail!(InvalidArgument, "top_k must be within [0, {MAX_TOP_K}] (0: off), got {}", self.top_k);
        }
        if self.repetition_window > MAX_REPETITION_WINDOW {
            crate::bail!(
                InvalidArgument,
                "repetition_window must be within [0, {MAX_REPETITION_WINDOW}], got {}",
                self.repetition_window
            );
        }
        Ok(())
    }
}

/// The bounds of the sampling options: past them a penalty makes logits infinite, and a top-k
/// or window only costs memory (a vocabulary is far smaller).
pub const MIN_REPETITION_PENALTY: f32 = 0.1;
pub const MAX_REPETITION_PENALTY: f32 = 10.0;
pub const MAX_TOP_K: usize = 1 << 20;
pub const MAX_REPETITION_WINDOW: usize = 1 << 20;

pub struct Sampler {
    params: SamplingParams,
    rng: ChaCha8Rng,
}

impl Sampler {
    pub fn new(params: SamplingParams) -> Result<Self> {
        params.validate()?;
        let rng = ChaCha8Rng::seed_from_u64(params.seed);
        Ok(Sampler { params, rng })
    }

    pub fn params(&self) -> &SamplingParams {
        &self.params
    }

    /// Picks the next token from `logits`, given the tokens of the context so far.
    /// `logits` is modified (penalties applied).
    pub fn sample(&mut self, logits: &mut [f32], context: &[u32]) -> Result<u32> {
        if logits.is_empty() {
            crate::bail!(InvalidArgument, "no logits to sample from");
        }
        let p = &self.params;
        if p.repetition_penalty != 1.0 {
            apply_repetition_penalty(logits, context, p.repetition_window, p.repetition_penalty);
        }
        if p.greedy || p.temperature == 0.0 {
            return Ok(argmax(logits));
        }
        let cand = top_candidates(logits, p.top_k);
        let scores: Vec<f32> = cand.iter().map(|&(_, l)| l).collect();
        let i = self.sample_sorted(&scores);
        Ok(cand[i].0)
    }

    /// Samples an index from softmax(scores / T) restricted to the top-p nucleus;
    /// `scores` must be sorted best first (greedy: index 0). No penalties applied.
    pub fn sample_sorted(&mut self, scores: &[f32]) -> usize {
        let p = &self.params;
        if p.greedy || p.temperature == 0.0 || scores.len() <= 1 {
            return 0;
        }
        // Softmax at temperature T, in f64.
        let max = scores[0] as f64;
        let t = p.temperature as f64;
        let mut probs: Vec<f64> = scores.iter().map(|&l| libm::exp((l as f64 - max) / t)).collect();
        let sum: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|q| *q /= sum);
        // Nucleus: the shortest prefix whose mass reaches top_p.
        if p.top_p < 1.0 {
            let mut mass = 0.0;
            let mut keep = probs.len();
            for (i, q) in probs.iter().enumerate() {
                mass += q;
                if mass >= p.top_p as f64 {
                    keep = i + 1;
                    break;
                }
            }
            probs.truncate(keep);
        }
        let total: f64 = probs.iter().sum();
        let u = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * total;
        let mut acc = 0.0;
        for (i, q) in probs.iter().enumerate() {
            acc += q;
            if u < acc {
                return i;
            }
        }
        probs.len() - 1
    }
}

pub fn apply_repetition_penalty(logits: &mut [f32], context: &[u32], window: usize, penalty: f32) {
    let recent = &context[context.len().saturating_sub(window)..];
    let mut seen = std::collections::BTreeSet::new();
    for &id in recent {
        let i = id as usize;
        if i < logits.len() && seen.insert(id) {
            let l = logits[i];
            logits[i] = if l > 0.0 { l / penalty } else { l * penalty };
        }
    }
}

/// The logits a choice can depend on, so that a backend need not read back the rest: the
/// base row's k best (k: 1 for greedy, `top_k` when sampling, PAD's candidates), plus as
/// many as the repetition penalty can push out of them, plus the penalized tokens themselves
/// (a penalty below 1 raises them), plus one per `banned` token (set to −∞ before the
/// choice, e.g. end-of-turn when it is ignored). The choice on logits that keep only these
/// (−∞ elsewhere) is exactly the choice on all of them. Sampling without a top-k and PAD's
/// nucleus restriction (`top_p` < 1, a share of the whole vocabulary's mass) need all of them.
pub fn logits_wanted(
    params: &SamplingParams,
    pad: Option<&PadParams>,
    context: &[u32],
    banned: &[u32],
) -> LogitsWanted {
    let k = match pad {
        Some(pad) if pad.top_p < 1.0 => return LogitsWanted::All,
        Some(pad) => pad.k,
        None if params.greedy || params.temperature == 0.0 => 1,
        None if params.top_k == 0 => return LogitsWanted::All,
        None => params.top_k,
    };
    let mut also = Vec::new();
    if params.repetition_penalty != 1.0 {
        let recent = &context[context.len().saturating_sub(params.repetition_window)..];
        let seen: std::collections::BTreeSet<u32> = recent.iter().copied().collect();
        also.extend(seen);
    }
    LogitsWanted::Top { k: k + also.len() + banned.len(), also }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_argmax_and_lowest_id_on_ties() {
        let mut s = Sampler::new(SamplingParams::greedy()).unwrap();
        assert_eq!(s.sample(&mut [0.0, 3.0, 1.0, 3.0], &[]).unwrap(), 1);
    }

    #[test]
    fn same_seed_same_tokens_different_seed_differs() {
        let logits: Vec<f32> = (0..50).map(|i| ((i * 37) % 11) as f32 * 0.3).collect();
        let run = |seed| {
            let params = SamplingParams {
                temperature: 1.5,
                top_k: 0,
                top_p: 1.0,
                repetition_penalty: 1.0,
                seed,
                ..Default::default()
            };
            let mut s = Sampler::new(params).unwrap();
            (0..64).map(|_| s.sample(&mut logits.clone(), &[]).unwrap()).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn options_past_their_bounds_are_refused() {
        let bad = [
            SamplingParams { top_k: u32::MAX as usize, ..Default::default() },
            SamplingParams { repetition_penalty: 1e-30, ..Default::default() },
            SamplingParams { repetition_penalty: 1e30, ..Default::default() },
            SamplingParams { repetition_penalty: f32::NAN, ..Default::default() },
            SamplingParams { repetition_window: usize::MAX, ..Default::default() },
        ];
        for p in bad {
            assert_eq!(Sampler::new(p.clone()).err().map(|e| e.code), Some(crate::ErrorCode::InvalidArgument), "{p:?}");
        }
        assert!(Sampler::new(SamplingParams { top_k: MAX_TOP_K, ..Default::default() }).is_ok());
        let pad = PadParams::new(vec![1.0], 1.0, usize::MAX);
        assert_eq!(pad.validate().unwrap_err().code, crate::ErrorCode::InvalidArgument);
    }

    #[test]
    fn top_k_and_top_p_restrict_the_choice() {
        let logits = vec![5.0, 4.0, 0.0, -1.0, 4.5];
        let params = SamplingParams {
            temperature: 1.0,
            top_k: 2,
            top_p: 1.0,
            repetition_penalty: 1.0,
            seed: 1,
            ..Default::default()
        };
        let mut s = Sampler::new(params).unwrap();
        for _ in 0..200 {
            let t = s.sample(&mut logits.clone(), &[]).unwrap();
            assert!(t == 0 || t == 4, "top-2 gave {t}");
        }
        // top_p so small that only the best token survives.
        let params = SamplingParams {
            temperature: 1.0,
            top_k: 0,
            top_p: 0.01,
            repetition_penalty: 1.0,
            seed: 1,
            ..Default::default()
        };
        let mut s = Sampler::new(params).unwrap();
        for _ in 0..50 {
            assert_eq!(s.sample(&mut logits.clone(), &[]).unwrap(), 0);
        }
    }

    #[test]
    fn repetition_penalty_lowers_seen_tokens() {
        let mut logits = vec![2.0, -2.0, 1.9];
        apply_repetition_penalty(&mut logits, &[0, 1, 0], 64, 2.0);
        assert_eq!(logits, vec![1.0, -4.0, 1.9]);
        assert_eq!(argmax(&logits), 2);
    }

    /// What a backend may return for `wanted`: the wanted entries, −∞ elsewhere.
    fn keep_only(logits: &[f32], rows: usize, wanted: &LogitsWanted) -> Vec<f32> {
        let vocab = logits.len() / rows;
        let mut out = vec![f32::NEG_INFINITY; logits.len()];
        for id in wanted.ids(&logits[..vocab]) {
            for r in 0..rows {
                out[r * vocab + id as usize] = logits[r * vocab + id as usize];
            }
        }
        out
    }

    #[test]
    fn choices_on_the_wanted_logits_alone_are_the_choices_on_all() {
        let mut seed = 1u32;
        let mut rnd = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            seed >> 8
        };
        let vocab = 300;
        for case in 0..400 {
            // Coarse values, so ties at the cut are common; a context full of high scorers.
            let mut logits: Vec<f32> = (0..vocab).map(|_| (rnd() % 40) as f32 * 0.25 - 4.0).collect();
            let context: Vec<u32> =
                (0..rnd() % 90).map(|_| if rnd() % 2 == 0 { rnd() % 20 } else { rnd() % vocab as u32 }).collect();
            for (i, l) in logits.iter_mut().enumerate().take(20) {
                *l = 5.0 + (i % 3) as f32;
            }
            let params = SamplingParams {
                greedy: case % 5 == 0,
                temperature: [0.0, 0.7, 1.3][case % 3],
                top_k: [1, 10, 40, 3][case % 4],
                top_p: [1.0, 0.9, 0.5][case % 3],
                repetition_penalty: [1.0, 1.1, 1.8, 0.7][case % 4],
                repetition_window: [64, 8][case % 2],
                seed: case as u64,
            };
            // A banned token (end-of-turn when it is ignored) is one of the high scorers.
            let banned = [(case % 20) as u32];
            let ban = |l: &mut Vec<f32>| l[banned[0] as usize] = f32::NEG_INFINITY;
            let wanted = logits_wanted(&params, None, &context, &banned);
            let mut kept = keep_only(&logits, 1, &wanted);
            let mut all = logits.clone();
            ban(&mut kept);
            ban(&mut all);
            let (mut a, mut b) = (Sampler::new(params.clone()).unwrap(), Sampler::new(params.clone()).unwrap());
            for _ in 0..5 {
                assert_eq!(
                    a.sample(&mut all.clone(), &context).unwrap(),
                    b.sample(&mut kept.clone(), &context).unwrap(),
                    "case {case}: {params:?}"
                );
            }
            // PAD: base row plus two reward rows, scored over the base candidates.
            let rows: Vec<f32> =
                logits.iter().copied().chain((0..2 * vocab).map(|_| (rnd() % 97) as f32 * 0.1)).collect();
            let pad = PadParams {
                min_p: [0.0, 0.1, 0.5][case % 3],
                ..PadParams::new(vec![1.0, 0.5], 1.5, [1, 10, 5][case % 3])
            };
            let wanted = logits_wanted(&params, Some(&pad), &context, &[]);
            let kept = keep_only(&rows, 3, &wanted);
            let step = |all: &[f32]| {
                let mut base = all[..vocab].to_vec();
                apply_repetition_penalty(&mut base, &context, params.repetition_window, params.repetition_penalty);
                let m: Vec<&[f32]> = all[vocab..].chunks(vocab).collect();
                crate::align::pad::pad_step(&base, &all[..vocab], &m, &pad).unwrap()
            };
            assert_eq!(step(&rows), step(&kept), "PAD case {case}");
        }
        let nucleus = PadParams { top_p: 0.9, ..PadParams::new(vec![1.0], 1.0, 10) };
        assert_eq!(logits_wanted(&SamplingParams::greedy(), Some(&nucleus), &[1, 2], &[]), LogitsWanted::All);
        assert_eq!(
            logits_wanted(&SamplingParams { top_k: 0, ..Default::default() }, None, &[1, 2], &[]),
            LogitsWanted::All
        );
        assert_eq!(
            logits_wanted(&SamplingParams::greedy(), None, &[1, 2], &[]),
            LogitsWanted::Top { k: 1, also: vec![] }
        );
    }

    #[test]
    fn bad_parameters_are_typed_errors() {
        for p in [
            SamplingParams { temperature: -1.0, ..Default::default() },
            SamplingParams { top_p: 0.0, ..Default::default() },
            SamplingParams { top_p: f32::NAN, ..Default::default() },
            SamplingParams { repetition_penalty: 0.0, ..Default::default() },
        ] {
            assert_eq!(Sampler::new(p).err().unwrap().code, crate::ErrorCode::InvalidArgument);
        }
    }
}
