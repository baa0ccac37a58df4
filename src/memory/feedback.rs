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
//! The feature of preference p for an answer y of n tokens is
//!
//!   f_p(y) = (R_p(y) − S_p(y)) / n + S_p(y),    x_p(y) = f_p(y) − mean_q f_q(y),
//!
//! where S_p(y) is p's reward for the end-of-turn token when the answer stopped by itself
//! (the last term of R_p, kept apart by [`StopRewards`]; 0 otherwise): the mean reward of the content tokens, which
//! does not grow with the length, plus the one decision to stop, which a mean would dilute.
//! Centred across the preferences of that answer, because all guideline contexts share a
//! large common part (they all agree with the tokens PAD picked) that says nothing about which
//! preference the person favours; the step then shifts weight *between* preferences.
//!
//! Why this feature rather than the summed rewards: before PAD's candidate floor, the summed
//! rewards mostly measured which preference steered the answer, and the decision to stop is
//! where "concise" shows (BENCHMARKS.md, "Which feature of the rewards tells the concise
//! answer", has the counts and the command).
//!
//! Bounds: each step moves a weight by at most [`MAX_STEP`], and a preference's effective
//! weight (`weight + learned`) stays within [0, `MAX_WEIGHT`]. The harmlessness principle
//! takes part in w·x but feedback never changes its weight: universal values are not the
//! person's to tune (and so never fall below `HARMLESS_FLOOR_WEIGHT`).
//!
use serde::Serialize;

use super::{FeedbackEvent, FeedbackKind, Preference, Response, MAX_WEIGHT};
use crate::backend::Backend;
use crate::error::Result;
use crate::generate::{Generation, StopReason, Token};

/// Keeps, while a generation runs, what [`Response::stop`] needs: each reward context's
/// reward for the end-of-turn token. That token's reward is the last term of
/// `Generation::sequence_rewards`; drive the generation through [`StopRewards::step`] and
/// [`StopRewards::finish`] tells it apart.
#[derive(Debug, Default)]
pub struct StopRewards {
    before_last_step: Vec<f32>,
}

impl StopRewards {
    /// `gen.next()`, remembering the sequence rewards before the step.
    pub async fn step<B: Backend>(&mut self, gen: &mut Generation<'_, B>) -> Result<Option<Token>> {
        self.before_last_step.clear();
        self.before_last_step.extend_from_slice(gen.sequence_rewards());
        gen.next().await
    }

    /// Once `step` has returned `None`: per reward context, the end-of-turn token's reward if
    /// the answer ended there, else empty.
    pub fn finish<B: Backend>(&self, gen: &Generation<'_, B>) -> Vec<f32> {
        if gen.stop_reason() != Some(StopReason::Eos) || self.before_last_step.len() != gen.sequence_rewards().len() {
            return Vec::new();
        }
        gen.sequence_rewards().iter().zip(&self.before_last_step).map(|(after, before)| after - before).collect()
    }
}

/// η: the step size of one piece of feedback.
pub const LEARNING_RATE: f64 = 1.0;
/// The most one piece of feedback moves one weight.
pub const MAX_STEP: f64 = 0.5;

/// How one preference's effective weight changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
pub struct WeightChange {
    pub id: String,
    pub before: f64,
    pub after: f64,
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// The features of one response, per preference id (see the module's documentation).
fn features(response: &Response) -> Vec<(&str, f64)> {
    let n = response.tokens.max(1) as f64;
    let stop = |i: usize| response.stop.get(i).map_or(0.0, |s| s.value as f64);
    let f: Vec<f64> =
        response.rewards.iter().enumerate().map(|(i, r)| (r.value as f64 - stop(i)) / n + stop(i)).collect();
    let mean = f.iter().sum::<f64>() / f.len().max(1) as f64;
    response.rewards.iter().zip(f).map(|(r, f)| (r.preference.as_str(), f - mean)).collect()
}

/// The feature vector of an event (per preference id) and whether it was liked. `None` when
/// the event carries nothing to learn from: an edit, or responses with fewer than two
/// preference contexts (centred, one context says nothing).
fn observation(event: &FeedbackEvent) -> Option<(Vec<(&str, f64)>, bool)> {
    match event.kind {
        FeedbackKind::ThumbsUp | FeedbackKind::ThumbsDown => {
            let x = features(event.responses.first()?);
            (x.len() >= 2).then_some((x, event.kind == FeedbackKind::ThumbsUp))
        }
        FeedbackKind::Choice => {
            let (a, b) = (features(event.responses.first()?), features(event.responses.get(1)?));
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
    // Only preferences that still exist take part (or the one a preference was merged into).
    let present: Vec<(usize, f64)> =
        x.iter().filter_map(|&(id, v)| preferences.iter().position(|p| p.answers_for(id)).map(|i| (i, v))).collect();
    let z: f64 = present.iter().map(|&(i, v)| preferences[i].effective_weight() * v).sum();
    let scale = if liked { 1.0 - sigmoid(z) } else { -sigmoid(z) };
    let mut changes = Vec::new();
    for (i, v) in present {
        let p = &mut preferences[i];
        if p.is_universal() || event.seq < p.learned_since {
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
