//! Memory-steered generation: which preferences steer the next answer, with which settings.

use super::{Memory, Preference, Response, Reward, Store, HARMLESS_ID};
use crate::align::values::HARMLESS_PRINCIPLE;
use crate::align::{Method, Personalization};
use crate::error::{Error, ErrorCode, Result};
use crate::generate::GenerateOptions;

/// The PAD settings that stored preferences steer with, where they differ from the API's
/// defaults. The feedback loop (`memory::feedback`) learns from the rewards of these contexts:
/// its features were chosen, and its scripted-person scenario measured, on the guideline
/// template with a 0.1 candidate floor (BENCHMARKS.md, "Feedback"). On the system-message
/// contexts that became the API's default in EVAL.md's round 5, the features still tell the
/// shorter answer, but raising 'concise' over 'detailed' no longer shortens greedy answers
/// (BENCHMARKS.md, "Which feature of the rewards tells the concise answer").
fn memory_pad_settings() -> Personalization {
    Personalization {
        persrm_context: crate::align::ContextStyle::Guideline,
        candidate_min_p: 0.1,
        stop_candidate: false,
        ..Personalization::default()
    }
}

/// Generation options with the person's active preferences filled in, and which
/// preference each PersRM context (in order) stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct Personalized {
    pub options: GenerateOptions,
    pub contexts: Vec<String>,
}

impl Personalized {
    /// The response as feedback will see it: text, token count, and each context's reward
    /// and stop reward (`Generation::sequence_rewards`, `feedback::StopRewards`).
    pub fn response(&self, text: String, tokens: usize, rewards: &[f32], stop: &[f32]) -> Response {
        let named = |values: &[f32]| {
            self.contexts.iter().zip(values).map(|(id, &value)| Reward { preference: id.clone(), value }).collect()
        };
        Response { text, tokens: tokens.min(u32::MAX as usize) as u32, rewards: named(rewards), stop: named(stop) }
    }
}

/// The preferences that steer the next answer: the harmlessness principle, then the enabled
/// preferences, weightiest first (older first on a tie), at most `max_active` of them.
pub fn active(preferences: &[Preference], max_active: usize) -> Vec<&Preference> {
    let mut mine: Vec<&Preference> = preferences.iter().filter(|p| p.enabled && !p.is_universal()).collect();
    mine.sort_by(|a, b| {
        b.effective_weight().total_cmp(&a.effective_weight()).then(a.created.cmp(&b.created)).then(a.id.cmp(&b.id))
    });
    mine.truncate(max_active);
    let mut out: Vec<&Preference> = preferences.iter().filter(|p| p.is_universal()).take(1).collect();
    out.extend(mine);
    out
}

impl<S: Store> Memory<S> {
    /// The preferences that would steer the next answer (see [`active`]).
    pub async fn active(&self) -> Result<Vec<Preference>> {
        let profile = self.profile().await?;
        let prefs = self.preferences().await?.items;
        Ok(active(&prefs, profile.max_active).into_iter().cloned().collect())
    }

    /// `options` with the method, β, k and active preferences from this memory. Without an
    /// enabled preference of the person's own, the answer is the base model's.
    pub async fn personalize(&self, options: &GenerateOptions) -> Result<Personalized> {
        let profile = self.profile().await?;
        let prefs = self.preferences().await?.items;
        let chosen = active(&prefs, profile.max_active);
        let mut options = options.clone();
        let has_own = chosen.iter().any(|p| !p.is_universal());
        let method = if has_own { profile.method } else { Method::Base };
        let used: Vec<&&Preference> = if method == Method::Base { Vec::new() } else { chosen.iter().collect() };
        options.personalization = Personalization {
            method,
            preferences: used
                .iter()
                .map(|p| crate::align::Preference::new(p.text.clone(), p.effective_weight() as f32))
                .collect(),
            beta: profile.beta,
            candidates: profile.candidates,
            base_with_guideline: profile.base_with_guideline,
            ..memory_pad_settings()
        };
        // Which preference each reward context stands for: the person's own in order, and
        // the harmlessness principle where `reward_contexts` puts it (with at least its floor
        // weight, `align::values`).
        let mut own = used.iter().filter(|p| p.text != HARMLESS_PRINCIPLE).map(|p| p.id.clone());
        let contexts = if method == Method::Pad {
            options
                .personalization
                .reward_contexts()
                .iter()
                .map(|c| if c.label == HARMLESS_PRINCIPLE { Some(HARMLESS_ID.to_string()) } else { own.next() })
                .collect::<Option<Vec<String>>>()
                .ok_or_else(|| {
                    Error::new(ErrorCode::InvalidArgument, "the reward contexts do not match the active preferences")
                })?
        } else {
            Vec::new()
        };
        Ok(Personalized { options, contexts })
    }
}
