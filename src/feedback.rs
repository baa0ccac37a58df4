//! Feedback-based alignment: thumbs up/down and a choice between two answers move the
//! weights of the person's preferences.
//!
//! Every response generated with PAD carries, per preference p, its sequence reward
//! R_p(y) = Σ_t r_p(y_t) (`Generation::sequence_rewards`). The person is modelled as liking
//! a response y with probability σ(Σ_p w_p x_p(y)) — a logistic (Bradley–Terry) model whose
//! features come from those rewards — so one piece of feedback is one step of gradient
//! ascent on the log-likelihood of what the person said:
//!
//! - thumbs up on y:   w_p += η (1 − σ(w·x(y))) x_p(y)
//! - thumbs down on y: w_p −= η σ(w·x(y)) x_p(y)
//! - a over b:         w_p += η (1 − σ(w·(x(a) − x(b)))) (x_p(a) − x_p(b))
//!
//! The features are the rewards *minus what PAD's own choice puts into them*:
//! x_p(y) = R_p(y) − E_p(y), where E_p(y) = Σ_t E_{a∼softmax(score_t/T)}[r_p(a)] is recorded at
//! generation time too (`Generation::expected_rewards`). PAD picks tokens that the weightier
//! contexts reward, so raw rewards favour those contexts on *every* answer, and more so the
//! longer it is; learning from them teaches "whoever steered most, liked it" (measured on the
//! default model: a person who always chose the shorter answer made 'detailed' — the
//! weightiest — grow with per-token rewards, and 'concise' stall with summed ones). The
//! difference is zero on average for every context whatever the weights and the length, and
//! is large where the answer went where p would (or would not) have gone, e.g. stopping early.
//! Responses recorded without expected rewards fall back to rewards centred across the
//! preferences of the generation, R_p − mean_q R_q.
//!
//! Bounds: each step moves a weight by at most [`MAX_STEP`], and a preference's effective
//! weight (`weight + learned`) stays within [0, `MAX_WEIGHT`]. The harmlessness principle
//! takes part in w·x but feedback never changes its weight: universal values are not the
//! person's to tune (and so never fall below `HARMLESS_FLOOR_WEIGHT`).
//!
use serde::Serialize;

use crate::memory::{FeedbackEvent, FeedbackKind, Preference, Response, MAX_WEIGHT};

/// η: the step size of one piece of feedback.
pub const LEARNING_RATE: f64 = 0.25;
/// The most one piece of feedback moves one weight.
pub const MAX_STEP: f64 = 0.5;

/// How one preference's effective weight changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightChange {
    pub id: String,
    pub before: f64,
    pub after: f64,
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// The features of one response, per preference id: `rewards − expected` when the response
/// carries expected rewards, else the rewards centred across its preferences.
fn features(response: &Response) -> Vec<(&str, f64)> {
    if !response.expected.is_empty() && response.expected.len() == response.rewards.len() {
        return response
            .rewards
            .iter()
            .zip(&response.expected)
            .map(|(r, e)| (r.preference.as_str(), r.value as f64 - e.value as f64))
            .collect();
    }
    let n = response.rewards.len().max(1) as f64;
    let mean = response.rewards.iter().map(|r| r.value as f64).sum::<f64>() / n;
    response.rewards.iter().map(|r| (r.preference.as_str(), r.value as f64 - mean)).collect()
}

/// The feature vector of an event (per preference id) and whether it was liked. `None` when
/// the event carries nothing to learn from (an edit, or responses not generated with PAD).
fn observation(event: &FeedbackEvent) -> Option<(Vec<(&str, f64)>, bool)> {
    let usable = |x: &Vec<(&str, f64)>, r: &Response| !x.is_empty() && (r.expected.len() == r.rewards.len() || x.len() >= 2);
    match event.kind {
        FeedbackKind::ThumbsUp | FeedbackKind::ThumbsDown => {
            let r = event.responses.first()?;
            let x = features(r);
            usable(&x, r).then_some((x, event.kind == FeedbackKind::ThumbsUp))
        }
        FeedbackKind::Choice => {
            let (ra, rb) = (event.responses.first()?, event.responses.get(1)?);
            if ra.expected.is_empty() != rb.expected.is_empty() {
                return None; // one measured with expected rewards, one without: not comparable
            }
            let (a, b) = (features(ra), features(rb));
            // Only preferences that scored both answers can compare them.
            let x: Vec<(&str, f64)> = a
                .iter()
                .filter_map(|&(id, va)| b.iter().find(|(j, _)| *j == id).map(|&(_, vb)| (id, va - vb)))
                .collect();
            usable(&x, ra).then_some((x, true))
        }
        FeedbackKind::Edit => None,
    }
}

/// Applies one event to the preferences (their `learned` weights); returns what changed.
pub fn apply(preferences: &mut [Preference], event: &FeedbackEvent) -> Vec<WeightChange> {
    let Some((x, liked)) = observation(event) else { return Vec::new() };
    // Only preferences that still exist take part.
    let present: Vec<(usize, f64)> = x
        .iter()
        .filter_map(|&(id, v)| preferences.iter().position(|p| p.id == id).map(|i| (i, v)))
        .collect();
    let z: f64 = present.iter().map(|&(i, v)| preferences[i].effective_weight() * v).sum();
    let scale = if liked { 1.0 - sigmoid(z) } else { -sigmoid(z) };
    let mut changes = Vec::new();
    for (i, v) in present {
        let p = &mut preferences[i];
        if p.is_universal() {
            continue;
        }
        let before = p.effective_weight();
        let step = (LEARNING_RATE * scale * v).clamp(-MAX_STEP, MAX_STEP);
        p.learned = (p.learned + step).clamp(p.floor() - p.weight, MAX_WEIGHT - p.weight);
        let after = p.effective_weight();
        if after != before {
            changes.push(WeightChange { id: p.id.clone(), before, after });
        }
    }
    changes
}

/// The order the log replays in: the order the updates were applied (`seq`), then time, then id.
pub fn replay_order(a: &FeedbackEvent, b: &FeedbackEvent) -> std::cmp::Ordering {
    a.seq.cmp(&b.seq).then(a.time.cmp(&b.time)).then(a.id.cmp(&b.id))
}

/// Forgets every learned weight and replays `events` in [`replay_order`].
pub fn replay(preferences: &mut [Preference], events: &[FeedbackEvent]) -> Vec<WeightChange> {
    let before: Vec<f64> = preferences.iter().map(|p| p.effective_weight()).collect();
    for p in preferences.iter_mut() {
        p.learned = 0.0;
    }
    let mut order: Vec<&FeedbackEvent> = events.iter().collect();
    order.sort_by(|a, b| replay_order(a, b));
    for e in order {
        apply(preferences, e);
    }
    preferences
        .iter()
        .zip(before)
        .filter(|(p, b)| p.effective_weight() != *b)
        .map(|(p, before)| WeightChange { id: p.id.clone(), before, after: p.effective_weight() })
        .collect()
}
