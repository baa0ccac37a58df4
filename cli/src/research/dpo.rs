//! Training a value head with a DPO objective on a frozen backbone (`padlock train-head`).
//!
//! The policy is the PersRM — the model on the preference's guideline context, its final
//! hidden state h_t through the head W, then the LM head — and the reference is the base
//! model on the plain context, both renormalised over the candidates PAD weighs at decode
//! time (the base top-k at that position, cut by the same min-p floor PAD uses, plus the
//! answer's own token when it is not among them). For an answer y the implicit reward is then exactly the sequence reward
//! PAD accumulates:
//!
//!   R_W(y) = Σ_t [ log softmax_{C_t}(E_{C_t}·W·h_t)_{y_t} − log softmax_{C_t}(ℓ_t)_{y_t} ]
//!
//! and the loss on a pair (chosen y_w, rejected y_l) is −log σ(β_dpo·(R_W(y_w) − R_W(y_l))).
//! At W = I, R is the training-free PersRM's reward, so training starts from it.
//!
//! The backbone runs once per answer ([`extract`]): h_t, the candidates and the base
//! log-probabilities are cached, and every epoch after that costs a few small matrix
//! products per token (W = I + U·V of rank r; see `head`), seconds on a CPU.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use padlock::align::head::LowRankHead;
use padlock::align::pad::{candidates, log_softmax_over};
use padlock::align::ContextStyle;
use padlock::backend::Backend;
use padlock::error::Result;
use padlock::generate::Engine;
use padlock::model::llama::Logits;

/// One answer to learn from.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub prompt: String,
    /// Generated ids; the end-of-turn token is appended as a last target when `eos`.
    pub ids: Vec<u32>,
    pub eos: bool,
}

/// A preference pair: the chosen answer should earn the higher reward.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainPair {
    pub chosen: Answer,
    pub rejected: Answer,
}

/// Cached backbone outputs for every target token of every answer.
#[derive(Debug, Clone, Default)]
pub struct Features {
    /// The settings the features were extracted with (a cache is reused only for the same).
    pub settings: String,
    pub hidden: usize,
    /// Candidate slots per position (k + 1; unused slots hold `u32::MAX`).
    pub slots: usize,
    /// `[positions, hidden]`: the PersRM's final normed hidden state before the head.
    pub h: Vec<f32>,
    /// `[positions, slots]`: the candidate ids C_t.
    pub candidates: Vec<u32>,
    /// The target token y_t of each position.
    pub target: Vec<u32>,
    /// log softmax_{C_t}(ℓ_t)_{y_t}: the base model's candidate log-probability of y_t.
    pub base_logprob: Vec<f32>,
    /// Per pair: the position ranges of (chosen, rejected).
    pub pairs: Vec<[std::ops::Range<usize>; 2]>,
}

impl Features {
    /// The features as safetensors (so that training with other settings skips the backbone).
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        use safetensors::{tensor::TensorView, Dtype};
        let le32 = |v: &mut dyn Iterator<Item = [u8; 4]>| v.flatten().collect::<Vec<u8>>();
        let h = le32(&mut self.h.iter().map(|x| x.to_le_bytes()));
        let cand = le32(&mut self.candidates.iter().map(|x| x.to_le_bytes()));
        let target = le32(&mut self.target.iter().map(|x| x.to_le_bytes()));
        let lp = le32(&mut self.base_logprob.iter().map(|x| x.to_le_bytes()));
        let ranges = le32(
            &mut self
                .pairs
                .iter()
                .flat_map(|[c, r]| [c.start, c.end, r.start, r.end])
                .map(|x| (x as u32).to_le_bytes()),
        );
        let n = self.target.len();
        let err = |e: safetensors::SafeTensorError| padlock::Error::new(padlock::ErrorCode::Io, e.to_string());
        let tensors = vec![
            ("h", TensorView::new(Dtype::F32, vec![n, self.hidden], &h).map_err(err)?),
            ("candidates", TensorView::new(Dtype::U32, vec![n, self.slots], &cand).map_err(err)?),
            ("target", TensorView::new(Dtype::U32, vec![n], &target).map_err(err)?),
            ("base_logprob", TensorView::new(Dtype::F32, vec![n], &lp).map_err(err)?),
            ("pairs", TensorView::new(Dtype::U32, vec![self.pairs.len(), 4], &ranges).map_err(err)?),
        ];
        let metadata = std::collections::HashMap::from([("settings".to_string(), self.settings.clone())]);
        safetensors::serialize(tensors, Some(metadata)).map_err(err)
    }

    /// Reads what [`Features::to_safetensors`] wrote; anything else is an `INVALID_ARGUMENT` error.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Features> {
        let bad = |m: String| padlock::Error::new(padlock::ErrorCode::InvalidArgument, format!("feature cache: {m}"));
        let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
        let settings = safetensors::SafeTensors::read_metadata(bytes)
            .ok()
            .and_then(|(_, m)| m.metadata().as_ref().and_then(|m| m.get("settings").cloned()))
            .unwrap_or_default();
        let get = |name: &str| st.tensor(name).map_err(|e| bad(format!("{name}: {e}")));
        let u32s =
            |d: &[u8]| d.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect::<Vec<u32>>();
        let f32s =
            |d: &[u8]| d.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect::<Vec<f32>>();
        let (h, cand) = (get("h")?, get("candidates")?);
        let (hidden, slots) = (h.shape().get(1).copied().unwrap_or(0), cand.shape().get(1).copied().unwrap_or(0));
        let ranges = u32s(get("pairs")?.data());
        let f = Features {
            settings,
            hidden,
            slots,
            h: f32s(h.data()),
            candidates: u32s(cand.data()),
            target: u32s(get("target")?.data()),
            base_logprob: f32s(get("base_logprob")?.data()),
            pairs: ranges
                .chunks_exact(4)
                .map(|r| [r[0] as usize..r[1] as usize, r[2] as usize..r[3] as usize])
                .collect(),
        };
        let n = f.target.len();
        if hidden == 0
            || slots == 0
            || f.h.len() != n * hidden
            || f.candidates.len() != n * slots
            || f.base_logprob.len() != n
            || f.pairs.iter().flatten().any(|r| r.start > r.end || r.end > n)
        {
            return Err(bad("inconsistent shapes".into()));
        }
        Ok(f)
    }
}

/// What identifies an extraction's settings (a feature cache is reused only for the same).
pub fn settings(preference: &str, style: ContextStyle, pairs: usize, k: usize, min_p: f32) -> String {
    format!("preference={preference:?} context={style:?} pairs={pairs} k={k} min_p={min_p}")
}

/// Runs the backbone over every answer of `pairs`: the base model on the plain chat prompt
/// (candidates and reference log-probabilities) and the PersRM context for `preference`
/// (hidden states), carried in `style` as PAD will carry it. `progress(done, total)` after each pair.
pub async fn extract<B: Backend>(
    engine: &Engine<B>,
    preference: &str,
    style: ContextStyle,
    pairs: &[TrainPair],
    k: usize,
    min_p: f32,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Features> {
    let hidden = engine.model.config.hidden;
    let vocab = engine.model.config.vocab_size;
    let eos = engine.tokenizer.eos_token_id();
    let mut f = Features {
        settings: settings(preference, style, pairs.len(), k, min_p),
        hidden,
        slots: k + 1,
        ..Default::default()
    };
    for (i, pair) in pairs.iter().enumerate() {
        let mut ranges = Vec::with_capacity(2);
        for answer in [&pair.chosen, &pair.rejected] {
            let mut targets = answer.ids.clone();
            if answer.eos {
                targets.push(eos);
            }
            let start = f.target.len();
            if targets.is_empty() {
                ranges.push(start..start);
                continue;
            }
            let fed = &targets[..targets.len() - 1];
            let base_prompt = engine.chat_prompt(&answer.prompt, None)?;
            let pers_prompt = engine.conditioned_prompt(style, &[preference], &answer.prompt, None)?;
            let base_ids: Vec<u32> = base_prompt.iter().chain(fed).copied().collect();
            let pers_ids: Vec<u32> = pers_prompt.iter().chain(fed).copied().collect();
            let mut seq = engine.model.new_sequence()?;
            let logits = engine.model.forward_one(&mut seq, &base_ids, Logits::All).await?;
            let mut seq = engine.model.new_sequence()?;
            let h = engine.model.forward_one(&mut seq, &pers_ids, Logits::Hidden).await?;
            for (t, &y) in targets.iter().enumerate() {
                let row = &logits[(base_prompt.len() - 1 + t) * vocab..][..vocab];
                let mut cand: Vec<u32> = candidates(row, k, 1.0, min_p, &[]).iter().map(|c| c.0).collect();
                if !cand.contains(&y) {
                    cand.push(y);
                }
                let lp = log_softmax_over(row, &cand);
                let yi = cand.iter().position(|&c| c == y).unwrap_or(0);
                f.base_logprob.push(lp[yi] as f32);
                f.target.push(y);
                f.h.extend_from_slice(&h[(pers_prompt.len() - 1 + t) * hidden..][..hidden]);
                cand.resize(k + 1, u32::MAX);
                f.candidates.extend_from_slice(&cand);
            }
            ranges.push(start..f.target.len());
        }
        f.pairs.push([ranges[0].clone(), ranges[1].clone()]);
        progress(i + 1, pairs.len());
    }
    Ok(f)
}

/// The LM head as a host matrix (`[vocab, hidden]` f32), for scoring candidates in training.
pub struct LmHeadRows<'a> {
    pub rows: &'a [f32],
    pub hidden: usize,
}

impl LmHeadRows<'_> {
    fn row(&self, id: u32) -> &[f32] {
        &self.rows[id as usize * self.hidden..][..self.hidden]
    }
}

/// Hyper-parameters of [`train`].
#[derive(Debug, Clone, PartialEq)]
pub struct DpoConfig {
    pub rank: usize,
    pub epochs: usize,
    pub learning_rate: f32,
    /// β of the DPO loss (how sharply reward differences turn into probabilities).
    pub beta: f32,
    /// Pairs per Adam step.
    pub batch: usize,
    pub seed: u64,
}

impl Default for DpoConfig {
    fn default() -> Self {
        DpoConfig { rank: 16, epochs: 10, learning_rate: 1e-3, beta: 0.1, batch: 8, seed: 1 }
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// R_W(y) for the positions `range`; with `grad`, also adds `coef · ∂R/∂(U, V)` into it.
fn answer_reward(
    f: &Features,
    lm: &LmHeadRows,
    head: Option<&LowRankHead>,
    range: std::ops::Range<usize>,
    mut grad: Option<(&mut [f32], &mut [f32], f32)>,
) -> f64 {
    let hd = f.hidden;
    let r = head.map_or(0, |h| h.rank);
    let (mut vx, mut z, mut g) = (vec![0f32; r], vec![0f32; hd], vec![0f32; hd]);
    let mut total = 0.0;
    for t in range {
        let h = &f.h[t * hd..(t + 1) * hd];
        match head {
            Some(head) => head.apply(h, &mut vx, &mut z),
            None => z.copy_from_slice(h),
        }
        let cand: Vec<u32> =
            f.candidates[t * f.slots..(t + 1) * f.slots].iter().copied().filter(|&c| c != u32::MAX).collect();
        let m: Vec<f32> = cand.iter().map(|&c| dot(lm.row(c), &z)).collect();
        let ids: Vec<u32> = (0..cand.len() as u32).collect();
        let lp = log_softmax_over(&m, &ids);
        let yi = cand.iter().position(|&c| c == f.target[t]).unwrap_or(0);
        total += lp[yi] - f.base_logprob[t] as f64;
        if let (Some((gu, gv, coef)), Some(head)) = (grad.as_mut(), head) {
            // ∂ log softmax(m)_y / ∂z = Σ_c (δ_cy − p_c) E_c
            g.iter_mut().for_each(|x| *x = 0.0);
            for (ci, &c) in cand.iter().enumerate() {
                let w = (if ci == yi { 1.0 } else { 0.0 }) - lp[ci].exp() as f32;
                for (gj, ej) in g.iter_mut().zip(lm.row(c)) {
                    *gj += w * ej;
                }
            }
            // z = h + U(Vh): ∂/∂U = g (Vh)ᵀ, ∂/∂V = (Uᵀg) hᵀ
            for i in 0..hd {
                let gi = *coef * g[i];
                for k in 0..r {
                    gu[i * r + k] += gi * vx[k];
                }
            }
            for k in 0..r {
                let utg: f32 = (0..hd).map(|i| head.up[i * r + k] * g[i]).sum::<f32>() * *coef;
                for (gvj, hj) in gv[k * hd..(k + 1) * hd].iter_mut().zip(h) {
                    *gvj += utg * hj;
                }
            }
        }
    }
    total
}

/// R_W of the chosen and the rejected answer of pair `p` (identity head when `None`).
pub fn pair_rewards(f: &Features, lm: &LmHeadRows, head: Option<&LowRankHead>, p: usize) -> (f64, f64) {
    let [c, r] = &f.pairs[p];
    (answer_reward(f, lm, head, c.clone(), None), answer_reward(f, lm, head, r.clone(), None))
}

/// Share of `pairs` whose chosen answer earns the higher reward (a tie counts half).
pub fn pairwise_accuracy(f: &Features, lm: &LmHeadRows, head: Option<&LowRankHead>, pairs: &[usize]) -> f64 {
    if pairs.is_empty() {
        return 0.0;
    }
    let won: f64 = pairs
        .iter()
        .map(|&p| {
            let (c, r) = pair_rewards(f, lm, head, p);
            if c > r {
                1.0
            } else if c == r {
                0.5
            } else {
                0.0
            }
        })
        .sum();
    won / pairs.len() as f64
}

/// Mean DPO loss over `pairs`.
pub fn dpo_loss(f: &Features, lm: &LmHeadRows, head: Option<&LowRankHead>, pairs: &[usize], beta: f32) -> f64 {
    let total: f64 = pairs
        .iter()
        .map(|&p| {
            let (c, r) = pair_rewards(f, lm, head, p);
            softplus(-(beta as f64) * (c - r))
        })
        .sum();
    total / pairs.len().max(1) as f64
}

fn softplus(x: f64) -> f64 {
    if x > 30.0 {
        x
    } else {
        libm::log1p(libm::exp(x))
    }
}

/// Trains a low-rank head on `train` (pair indices) with Adam; `on_epoch(epoch, loss)`
/// after each epoch (loss over the training pairs).
pub fn train(
    f: &Features,
    lm: &LmHeadRows,
    train: &[usize],
    cfg: &DpoConfig,
    on_epoch: &mut dyn FnMut(usize, f64, &LowRankHead),
) -> Result<LowRankHead> {
    if cfg.rank == 0
        || cfg.epochs == 0
        || cfg.batch == 0
        || cfg.learning_rate.is_nan()
        || cfg.learning_rate <= 0.0
        || cfg.beta.is_nan()
        || cfg.beta <= 0.0
    {
        padlock::bail!(InvalidArgument, "rank, epochs, batch, learning rate and β must be positive");
    }
    if train.is_empty() {
        padlock::bail!(InvalidArgument, "no training pairs");
    }
    let hd = f.hidden;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let scale = (3.0 / hd as f32).sqrt();
    let mut head =
        LowRankHead::identity(hd, cfg.rank, || ((rng.next_u32() >> 8) as f32 / (1 << 24) as f32 * 2.0 - 1.0) * scale);
    let n = hd * cfg.rank;
    let (mut mu, mut vu, mut mv, mut vv) = (vec![0f32; n], vec![0f32; n], vec![0f32; n], vec![0f32; n]);
    let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
    let mut step = 0i32;
    let mut order = train.to_vec();
    for epoch in 0..cfg.epochs {
        // Fisher–Yates with the seeded stream: the same run every time.
        for i in (1..order.len()).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        for batch in order.chunks(cfg.batch) {
            let (mut gu, mut gv) = (vec![0f32; n], vec![0f32; n]);
            for &p in batch {
                let (c, r) = pair_rewards(f, lm, Some(&head), p);
                // ∂loss/∂R_w = −β σ(−β Δ), ∂loss/∂R_l = +β σ(−β Δ)
                let s = 1.0 / (1.0 + libm::exp(cfg.beta as f64 * (c - r)));
                let coef = (cfg.beta as f64 * s / batch.len() as f64) as f32;
                let [cr, rr] = &f.pairs[p];
                answer_reward(f, lm, Some(&head), cr.clone(), Some((&mut gu, &mut gv, -coef)));
                answer_reward(f, lm, Some(&head), rr.clone(), Some((&mut gu, &mut gv, coef)));
            }
            step += 1;
            let (c1, c2) = (1.0 - b1.powi(step), 1.0 - b2.powi(step));
            for (w, g, m, v) in [(&mut head.up, &gu, &mut mu, &mut vu), (&mut head.down, &gv, &mut mv, &mut vv)] {
                for i in 0..n {
                    m[i] = b1 * m[i] + (1.0 - b1) * g[i];
                    v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
                    w[i] -= cfg.learning_rate * (m[i] / c1) / ((v[i] / c2).sqrt() + eps);
                }
            }
        }
        on_epoch(epoch + 1, dpo_loss(f, lm, Some(&head), train, cfg.beta), &head);
    }
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy problem: hidden 4, vocabulary 6, one candidate set; the chosen answers say
    /// token 1 where the rejected ones say token 2, but h points to neither: only a
    /// trained head can prefer the chosen ones.
    fn toy() -> (Features, Vec<f32>) {
        let hidden = 4;
        let rows: Vec<f32> = vec![
            1.0, 0.0, 0.0, 0.0, //
            0.0, 1.0, 0.0, 0.0, //
            0.0, 0.0, 1.0, 0.0, //
            0.0, 0.0, 0.0, 1.0, //
            0.5, 0.5, 0.0, 0.0, //
            0.0, 0.0, 0.5, 0.5,
        ];
        let mut f = Features { hidden, slots: 3, ..Default::default() };
        for i in 0..20 {
            let mut ranges = Vec::new();
            for y in [1u32, 2] {
                let start = f.target.len();
                let x = 0.1 * (i % 5) as f32;
                f.h.extend_from_slice(&[1.0, x, x, 0.3]);
                f.candidates.extend_from_slice(&[1, 2, 3]);
                f.target.push(y);
                f.base_logprob.push(-1.1);
                ranges.push(start..start + 1);
            }
            f.pairs.push([ranges[0].clone(), ranges[1].clone()]);
        }
        (f, rows)
    }

    #[test]
    fn identity_head_is_the_training_free_reward_and_training_learns_the_preference() {
        let (f, rows) = toy();
        let lm = LmHeadRows { rows: &rows, hidden: 4 };
        let all: Vec<usize> = (0..20).collect();
        // h gives tokens 1 and 2 equal logits: the identity head cannot tell them apart.
        assert_eq!(pairwise_accuracy(&f, &lm, None, &all), 0.5);
        let zero = LowRankHead::identity(4, 2, || 0.7);
        assert_eq!(pair_rewards(&f, &lm, None, 3), pair_rewards(&f, &lm, Some(&zero), 3), "U = 0 is the identity");
        let mut losses = Vec::new();
        let cfg = DpoConfig { rank: 2, epochs: 30, learning_rate: 0.05, beta: 1.0, batch: 4, seed: 3 };
        let head = train(&f, &lm, &all[..16], &cfg, &mut |_, loss, _| losses.push(loss)).unwrap();
        assert!(losses.last().unwrap() < &(0.5 * losses[0]), "loss {losses:?}");
        assert_eq!(pairwise_accuracy(&f, &lm, Some(&head), &all[16..]), 1.0);
    }

    #[test]
    fn features_round_trip_through_safetensors() {
        let (f, _) = toy();
        let g = Features::from_safetensors(&f.to_safetensors().unwrap()).unwrap();
        assert_eq!(
            (g.h, g.candidates, g.target, g.base_logprob, g.pairs),
            (f.h, f.candidates, f.target, f.base_logprob, f.pairs)
        );
        assert!(Features::from_safetensors(b"nope").is_err());
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let (f, rows) = toy();
        let lm = LmHeadRows { rows: &rows, hidden: 4 };
        let mut s = 9u32;
        let mut next = move || {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) as f32 / (1 << 24) as f32 - 0.5
        };
        let mut head = LowRankHead::identity(4, 2, &mut next);
        head.up.iter_mut().for_each(|u| *u = next());
        let range = f.pairs[2][0].clone();
        let (mut gu, mut gv) = (vec![0f32; 8], vec![0f32; 8]);
        answer_reward(&f, &lm, Some(&head), range.clone(), Some((&mut gu, &mut gv, 1.0)));
        let eps = 1e-3;
        for i in 0..8 {
            for (which, analytic) in [(0, gu[i]), (1, gv[i])] {
                let mut plus = head.clone();
                let mut minus = head.clone();
                let (p, m) = if which == 0 { (&mut plus.up, &mut minus.up) } else { (&mut plus.down, &mut minus.down) };
                p[i] += eps;
                m[i] -= eps;
                let numeric = (answer_reward(&f, &lm, Some(&plus), range.clone(), None)
                    - answer_reward(&f, &lm, Some(&minus), range.clone(), None))
                    / (2.0 * eps as f64);
                assert!((numeric as f32 - analytic).abs() < 2e-3, "param {which}/{i}: {numeric} vs {analytic}");
            }
        }
    }
}
