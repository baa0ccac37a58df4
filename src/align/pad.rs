//! One step of Personalized Alignment at Decoding-time (PAD), as in `DESIGN.md`:
//!
//! - candidates C = top-k of the base logits ℓ, optionally restricted to the base model's
//!   plausible tokens (a nucleus `top_p` of base probability inside the top-k, and/or a
//!   floor `min_p` relative to the top-1's probability; the top-1 always stays);
//! - for each preference p with PersRM logits m_p, the token-level reward
//!   r_p(a) = log softmax_C(m_p)_a − log softmax_C(ℓ_ref)_a  (softmax over C only), where
//!   ℓ_ref is the reference policy: the base model's own logits before any repetition
//!   penalty, or those of an unconditioned context when the base context itself holds the
//!   preferences (the paper's setting; the reward is then log π_p / π_ref, not zero);
//! - score(a) = ℓ_a + β · Σ_p w_p · r_p(a), ℓ being the base logits after the penalty;
//! - the choice is the argmax of the score, or a sample from softmax(score / T) over C.
//!
//! β = 0 therefore reproduces the base model's own greedy choice, the chosen token is
//! always in C, and adding a constant to any m_p changes nothing.

use crate::error::Result;
use crate::logits::top_candidates;

/// The largest β any caller may ask for (the profile, the APIs, the command line).
pub const MAX_BETA: f32 = 10.0;

/// The one check of β, for every caller: a finite number within [0, `MAX_BETA`].
pub fn check_beta(beta: f32) -> Result<()> {
    if !(beta.is_finite() && (0.0..=MAX_BETA).contains(&beta)) {
        crate::bail!(InvalidArgument, "β must be within [0, {MAX_BETA}], got {beta}");
    }
    Ok(())
}

/// The knobs of one PAD step.
#[derive(Debug, Clone, PartialEq)]
pub struct PadParams {
    /// w_p for each PersRM context, in order.
    pub weights: Vec<f32>,
    /// β: how strongly the rewards move the choice.
    pub beta: f32,
    /// k: the base model's top-k tokens are the candidates.
    pub k: usize,
    /// Keep the shortest prefix of the top-k whose base probability reaches `top_p` (1: off).
    pub top_p: f32,
    /// Keep candidates whose base probability is at least `min_p` × the top-1's (0: off).
    pub min_p: f32,
    /// Tokens that stay candidates whenever they are in the top-k, past `top_p` and `min_p`
    /// (the end-of-turn tokens with `Personalization::stop_candidate`).
    pub keep: Vec<u32>,
}

impl PadParams {
    pub fn new(weights: Vec<f32>, beta: f32, k: usize) -> Self {
        PadParams { weights, beta, k, top_p: 1.0, min_p: 0.0, keep: Vec::new() }
    }

    pub fn validate(&self) -> Result<()> {
        check_beta(self.beta)?;
        if self.weights.iter().any(|w| !w.is_finite()) {
            crate::bail!(InvalidArgument, "preference weights must be finite");
        }
        if !(1..=MAX_CANDIDATES).contains(&self.k) {
            crate::bail!(InvalidArgument, "PAD takes 1 to {MAX_CANDIDATES} candidate tokens (k), got {}", self.k);
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            crate::bail!(InvalidArgument, "candidate top-p must be in (0, 1], got {}", self.top_p);
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            crate::bail!(InvalidArgument, "candidate min-p must be in [0, 1], got {}", self.min_p);
        }
        Ok(())
    }
}

/// The most candidate tokens PAD scores per step (each is a reward read from every context).
pub const MAX_CANDIDATES: usize = 1024;

/// The scored candidates of one step (what the demo's explanation shows).
#[derive(Debug, Clone, PartialEq)]
pub struct PadStep {
    /// Candidate ids, ordered by base logit (best first).
    pub candidates: Vec<u32>,
    /// Base logit of each candidate.
    pub base_logits: Vec<f32>,
    /// `rewards[p][i]`: preference p's reward r_p for candidate i.
    pub rewards: Vec<Vec<f32>>,
    /// `contributions[p][i]`: β · w_p · r_p for candidate i (what the explanation shows).
    pub contributions: Vec<Vec<f32>>,
    /// `ℓ + β·Σ w·r` for each candidate.
    pub scores: Vec<f32>,
}

impl PadStep {
    /// Index (into `candidates`) of the best score; the earlier (higher base logit) wins a tie.
    pub fn best(&self) -> usize {
        let mut best = 0;
        for (i, &s) in self.scores.iter().enumerate() {
            if s > self.scores[best] {
                best = i;
            }
        }
        best
    }
}

/// log softmax of `logits[ids]` renormalised over `ids` only, in f64.
pub fn log_softmax_over(logits: &[f32], ids: &[u32]) -> Vec<f64> {
    let vals: Vec<f64> = ids.iter().map(|&i| logits[i as usize] as f64).collect();
    let max = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let log_sum = max + libm::log(vals.iter().map(|v| libm::exp(v - max)).sum::<f64>());
    vals.iter().map(|v| v - log_sum).collect()
}

/// The base model's candidates: its top-k tokens as (id, logit), best first, cut to the
/// nucleus `top_p` and the floor `min_p` (both in full-vocabulary base probability); a
/// top-k token in `keep` stays whatever its probability.
pub fn candidates(base: &[f32], k: usize, top_p: f32, min_p: f32, keep: &[u32]) -> Vec<(u32, f32)> {
    let all = top_candidates(base, k);
    let mut top = all.clone();
    if top.is_empty() {
        return top;
    }
    let best = top[0].1 as f64;
    if min_p > 0.0 {
        // p_a ≥ min_p · p_top1  ⇔  ℓ_a ≥ ℓ_top1 + ln(min_p)
        let floor = best + libm::log(min_p as f64);
        top.retain(|&(_, l)| l as f64 >= floor);
    }
    if top_p < 1.0 {
        let log_z = best + libm::log(base.iter().map(|&l| libm::exp(l as f64 - best)).sum::<f64>());
        let mut mass = 0.0;
        let mut len = top.len();
        for (i, &(_, l)) in top.iter().enumerate() {
            mass += libm::exp(l as f64 - log_z);
            if mass >= top_p as f64 {
                len = i + 1;
                break;
            }
        }
        top.truncate(len);
    }
    if keep.iter().any(|id| !top.iter().any(|c| c.0 == *id)) {
        let kept: Vec<u32> = top.iter().map(|c| c.0).collect();
        top = all.into_iter().filter(|c| kept.contains(&c.0) || keep.contains(&c.0)).collect();
    }
    top
}

/// Scores the base model's candidates with the rewards of each preference.
/// `base`: the logits the choice starts from (the repetition penalty already applied);
/// `reference`: the policy the rewards are measured against (the same logits without the
/// penalty — a penalty inside the reward would hand a repeated token back what the penalty
/// took, and at β·Σw > 1 reward it); `persrm[p]`: the PersRM logits for preference p.
pub fn pad_step(base: &[f32], reference: &[f32], persrm: &[&[f32]], params: &PadParams) -> Result<PadStep> {
    params.validate()?;
    if persrm.len() != params.weights.len() {
        crate::bail!(InvalidArgument, "{} reward contexts for {} weights", persrm.len(), params.weights.len());
    }
    if let Some(m) = persrm.iter().chain([&reference]).find(|m| m.len() != base.len()) {
        crate::bail!(InvalidArgument, "reward logits have {} entries, base logits {}", m.len(), base.len());
    }
    if base.is_empty() {
        crate::bail!(InvalidArgument, "PAD needs logits to choose from");
    }
    let top = candidates(base, params.k, params.top_p, params.min_p, &params.keep);
    if top.is_empty() || top.iter().any(|c| !c.1.is_finite()) {
        crate::bail!(Backend, "the model produced logits that are not finite (NaN or infinity)");
    }
    let candidates: Vec<u32> = top.iter().map(|&(id, _)| id).collect();
    let base_logits: Vec<f32> = top.iter().map(|&(_, l)| l).collect();
    let reference_lp = log_softmax_over(reference, &candidates);
    let rewards: Vec<Vec<f32>> = persrm
        .iter()
        .map(|m| {
            let lp = log_softmax_over(m, &candidates);
            lp.iter().zip(&reference_lp).map(|(a, b)| (a - b) as f32).collect()
        })
        .collect();
    let scores = (0..candidates.len())
        .map(|i| {
            let r: f64 = rewards.iter().zip(&params.weights).map(|(r, &w)| w as f64 * r[i] as f64).sum();
            (base_logits[i] as f64 + params.beta as f64 * r) as f32
        })
        .collect();
    let contributions =
        rewards.iter().zip(&params.weights).map(|(r, &w)| r.iter().map(|&r| params.beta * w * r).collect()).collect();
    Ok(PadStep { candidates, base_logits, rewards, contributions, scores })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logits::argmax;

    fn logits(seed: u32, n: usize) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 8) as f32 / (1 << 24) as f32 * 10.0 - 5.0
            })
            .collect()
    }

    #[test]
    fn logits_that_are_not_finite_are_an_error_not_a_panic() {
        let m = logits(3, 50);
        for bad in [f32::NAN, f32::INFINITY] {
            let mut base = logits(1, 50);
            base[7] = bad;
            let err = pad_step(&base, &base, &[&m], &PadParams::new(vec![1.0], 1.0, 10)).unwrap_err();
            assert_eq!(err.code, crate::ErrorCode::Backend);
        }
        let nan = vec![f32::NAN; 50];
        let params = PadParams { min_p: 0.2, ..PadParams::new(vec![1.0], 1.0, 10) };
        assert_eq!(pad_step(&nan, &nan, &[&m], &params).unwrap_err().code, crate::ErrorCode::Backend);
    }

    #[test]
    fn beta_zero_is_the_base_greedy_choice() {
        for seed in 0..50 {
            let base = logits(seed, 300);
            let m = logits(seed + 1000, 300);
            let step = pad_step(&base, &base, &[&m], &PadParams::new(vec![1.0], 0.0, 10)).unwrap();
            assert_eq!(step.candidates[step.best()], argmax(&base));
        }
    }

    #[test]
    fn choice_is_always_a_base_candidate() {
        for seed in 0..50 {
            let base = logits(seed, 300);
            let m = logits(seed + 7, 300);
            let step = pad_step(&base, &base, &[&m], &PadParams::new(vec![5.0], MAX_BETA, 10)).unwrap();
            let top10: Vec<u32> = top_candidates(&base, 10).iter().map(|c| c.0).collect();
            assert!(top10.contains(&step.candidates[step.best()]));
        }
    }

    #[test]
    fn a_constant_added_to_reward_logits_changes_nothing() {
        let base = logits(1, 300);
        let m = logits(2, 300);
        let shifted: Vec<f32> = m.iter().map(|v| v + 17.0).collect();
        let a = pad_step(&base, &base, &[&m], &PadParams::new(vec![1.0], 1.0, 10)).unwrap();
        let b = pad_step(&base, &base, &[&shifted], &PadParams::new(vec![1.0], 1.0, 10)).unwrap();
        assert_eq!(a.best(), b.best());
        for (x, y) in a.scores.iter().zip(&b.scores) {
            assert!((x - y).abs() < 1e-4);
        }
    }

    #[test]
    fn doubling_weights_and_halving_beta_is_the_same_choice() {
        for seed in 0..30 {
            let base = logits(seed, 300);
            let (m1, m2) = (logits(seed + 100, 300), logits(seed + 200, 300));
            let a = pad_step(&base, &base, &[&m1, &m2], &PadParams::new(vec![0.7, 0.3], 1.2, 10)).unwrap();
            for (p, w) in [0.7, 0.3].into_iter().enumerate() {
                let want: Vec<f32> = a.rewards[p].iter().map(|r| 1.2 * w * r).collect();
                assert_eq!(a.contributions[p], want, "β · w_p · r_p");
            }
            let b = pad_step(&base, &base, &[&m1, &m2], &PadParams::new(vec![1.4, 0.6], 0.6, 10)).unwrap();
            assert_eq!(a.best(), b.best());
        }
    }

    #[test]
    fn a_reward_model_that_agrees_with_base_gives_zero_reward() {
        let base = logits(3, 100);
        let step = pad_step(&base, &base, &[&base], &PadParams::new(vec![1.0], 2.0, 10)).unwrap();
        assert!(step.rewards[0].iter().all(|r| r.abs() < 1e-5));
    }

    #[test]
    fn the_rewards_are_measured_against_the_reference_not_the_penalized_base() {
        use crate::align::sampler::apply_repetition_penalty;
        for seed in 0..30 {
            let raw = logits(seed, 300);
            let m = logits(seed + 300, 300);
            let mut penalized = raw.clone();
            let seen: Vec<u32> = top_candidates(&raw, 4).iter().map(|c| c.0).collect();
            apply_repetition_penalty(&mut penalized, &seen, 64, 1.3);
            let params = PadParams::new(vec![1.0], 2.0, 10);
            let step = pad_step(&penalized, &raw, &[&m], &params).unwrap();
            // Each reward is the PersRM's preference over the reference on the same candidates:
            // the penalty moves a token's score by exactly its change in base logit.
            let reference = log_softmax_over(&raw, &step.candidates);
            let persrm = log_softmax_over(&m, &step.candidates);
            for (i, &id) in step.candidates.iter().enumerate() {
                assert!((step.rewards[0][i] as f64 - (persrm[i] - reference[i])).abs() < 1e-5);
                let want = penalized[id as usize] as f64 + 2.0 * (persrm[i] - reference[i]);
                assert!((step.scores[i] as f64 - want).abs() < 1e-3);
            }
        }
    }

    #[test]
    fn bad_arguments_are_typed_errors() {
        let base = logits(1, 10);
        let short = logits(2, 5);
        for r in [
            pad_step(&base, &base, &[&short], &PadParams::new(vec![1.0], 1.0, 3)),
            pad_step(&base, &short, &[&base], &PadParams::new(vec![1.0], 1.0, 3)),
            pad_step(&base, &base, &[&base], &PadParams::new(vec![], 1.0, 3)),
            pad_step(&base, &base, &[&base], &PadParams::new(vec![1.0], f32::NAN, 3)),
            pad_step(&base, &base, &[&base], &PadParams::new(vec![1.0], -0.5, 3)),
            pad_step(&base, &base, &[&base], &PadParams::new(vec![1.0], MAX_BETA + 0.5, 3)),
            pad_step(&base, &base, &[&base], &PadParams::new(vec![1.0], 1.0, 0)),
            pad_step(&base, &base, &[&base], &PadParams { top_p: 0.0, ..PadParams::new(vec![1.0], 1.0, 3) }),
            pad_step(&base, &base, &[&base], &PadParams { min_p: 1.5, ..PadParams::new(vec![1.0], 1.0, 3) }),
        ] {
            assert_eq!(r.unwrap_err().code, crate::ErrorCode::InvalidArgument);
        }
    }

    #[test]
    fn candidate_restriction_keeps_the_plausible_tokens() {
        // Probabilities (full vocabulary) 0.5, 0.25, 0.125, 0.0625, ... (logits ln 2 apart).
        let base: Vec<f32> = (0..12).map(|i| -(i as f32) * std::f32::consts::LN_2).collect();
        let ids = |c: Vec<(u32, f32)>| c.into_iter().map(|c| c.0).collect::<Vec<_>>();
        assert_eq!(ids(candidates(&base, 10, 1.0, 0.0, &[])), (0..10).collect::<Vec<_>>());
        // min_p 0.2: tokens with p ≥ 0.1 → 0.5, 0.25, 0.125.
        assert_eq!(ids(candidates(&base, 10, 1.0, 0.2, &[])), vec![0, 1, 2]);
        // top_p 0.8: 0.5 + 0.25 = 0.75 < 0.8, + 0.125 reaches it.
        assert_eq!(ids(candidates(&base, 10, 0.8, 0.0, &[])), vec![0, 1, 2]);
        assert_eq!(ids(candidates(&base, 10, 0.5, 0.0, &[])), vec![0]);
        assert_eq!(ids(candidates(&base, 10, 0.01, 0.9, &[])), vec![0], "the top-1 always stays");
        // A kept token in the top-k stays past the floor and the nucleus, in its place.
        assert_eq!(ids(candidates(&base, 10, 1.0, 0.2, &[5, 11])), vec![0, 1, 2, 5], "11 is not in the top-10");
        assert_eq!(ids(candidates(&base, 10, 0.5, 0.0, &[1])), vec![0, 1]);
    }

    #[test]
    fn restricted_choice_is_within_the_restricted_candidates() {
        for seed in 0..30 {
            let base = logits(seed, 300);
            let m = logits(seed + 55, 300);
            let params = PadParams { top_p: 0.3, min_p: 0.05, ..PadParams::new(vec![2.0], MAX_BETA, 10) };
            let step = pad_step(&base, &base, &[&m], &params).unwrap();
            let allowed: Vec<u32> = candidates(&base, 10, 0.3, 0.05, &[]).iter().map(|c| c.0).collect();
            assert_eq!(step.candidates, allowed);
            assert!(allowed.contains(&step.candidates[step.best()]));
        }
    }
}
