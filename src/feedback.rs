//! Feedback-based alignment: thumbs up/down and a choice between two answers move the
//! weights of the person's preferences.
//!
//! Every response generated with PAD carries, per preference p, its sequence reward
//! R_p(y) = Σ_t r_p(y_t) (`Generation::sequence_rewards`). The person is modelled as liking
//! a response y with probability σ(Σ_p w_p x_p(y)) — a logistic (Bradley–Terry) model whose
//! features are the rewards — so one piece of feedback is one step of gradient ascent on the
//! log-likelihood of what the person said:
//!
//! - thumbs up on y:   w_p += η (1 − σ(w·x(y))) x_p(y)
//! - thumbs down on y: w_p −= η σ(w·x(y)) x_p(y)
//! - a over b:         w_p += η (1 − σ(w·(x(a) − x(b)))) (x_p(a) − x_p(b))
//!
//! The features are the rewards *centred across the preferences of that generation*:
//! x_p(y) = R_p(y) − mean_q R_q(y). Raw rewards share a large common part — every guideline
//! context agrees with PAD's own choice of tokens, so each R_p grows with the length of the
//! answer — which would move every weight up or down together and learn "longer" or
//! "shorter" instead of which preference the person favours. Centred, the step shifts weight
//! between preferences (it sums to zero before bounds apply).
//!
//! Bounds: each step moves a weight by at most [`MAX_STEP`], and a preference's effective
//! weight (`weight + learned`) stays within [floor, `MAX_WEIGHT`], where the floor of the
//! harmlessness principle is `HARMLESS_FLOOR_WEIGHT` — feedback can never switch it off.
//!
//! Only `learned` changes: the weight the person set stays as they set it. Replaying the
//! log from `learned = 0` in the order the updates were applied rebuilds the same weights
//! ([`replay`]), as long as the person did not change a weight in between (replay reads the
//! whole log against today's weights).

use serde::Serialize;

use crate::memory::{FeedbackEvent, FeedbackKind, Preference, Response, MAX_WEIGHT};

/// η: the step size of one piece of feedback.
pub const LEARNING_RATE: f32 = 0.1;
/// The most one piece of feedback moves one weight.
pub const MAX_STEP: f32 = 0.5;

/// How one preference's effective weight changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightChange {
    pub id: String,
    pub before: f32,
    pub after: f32,
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Centred rewards of one response, per preference id.
fn centred(response: &Response) -> Vec<(&str, f64)> {
    let n = response.rewards.len().max(1) as f64;
    let mean = response.rewards.iter().map(|r| r.value as f64).sum::<f64>() / n;
    response.rewards.iter().map(|r| (r.preference.as_str(), r.value as f64 - mean)).collect()
}

/// The feature vector of an event (per preference id) and the gradient's sign: +1 pushes the
/// weights towards agreeing with the features, −1 away. `None` when the event carries no
/// rewards to learn from (an edit, or a response not generated with PAD).
fn observation(event: &FeedbackEvent) -> Option<(Vec<(&str, f64)>, bool)> {
    match event.kind {
        FeedbackKind::ThumbsUp | FeedbackKind::ThumbsDown => {
            let x = centred(event.responses.first()?);
            (x.len() >= 2).then_some((x, event.kind == FeedbackKind::ThumbsUp))
        }
        FeedbackKind::Choice => {
            let (a, b) = (centred(event.responses.first()?), centred(event.responses.get(1)?));
            // Only preferences that scored both answers can compare them.
            let x: Vec<(&str, f64)> = a
                .iter()
                .filter_map(|&(id, va)| b.iter().find(|(j, _)| *j == id).map(|&(_, vb)| (id, va - vb)))
                .collect();
            (x.len() >= 2).then_some((x, true))
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
    let z: f64 = present.iter().map(|&(i, v)| preferences[i].effective_weight() as f64 * v).sum();
    let scale = if liked { 1.0 - sigmoid(z) } else { -sigmoid(z) };
    let mut changes = Vec::new();
    for (i, v) in present {
        let p = &mut preferences[i];
        let before = p.effective_weight();
        let step = ((LEARNING_RATE as f64 * scale * v) as f32).clamp(-MAX_STEP, MAX_STEP);
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
    let before: Vec<f32> = preferences.iter().map(|p| p.effective_weight()).collect();
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
