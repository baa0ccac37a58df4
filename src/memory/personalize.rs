//! Memory-steered generation: which preferences steer the next answer, with which settings.

use super::{Memory, Preference, Response, Reward, Store};
use crate::align::{Method, Personalization, PersonalizationOverrides, Plan};
use crate::error::Result;
use crate::generate::GenerateOptions;

/// The PAD settings that stored preferences steer with, where they differ from the API's
/// defaults: the guideline template with a 0.1 candidate floor, on which feedback's features
/// were chosen and steer answers (BENCHMARKS.md, "Feedback" and "Which feature of the rewards
/// tells the concise answer").
fn memory_pad_settings() -> Personalization {
    Personalization {
        persrm_context: crate::align::ContextStyle::Guideline,
        candidate_min_p: 0.1,
        stop_candidate: false,
        ..Personalization::default()
    }
}

/// Generation options with the person's active preferences filled in, and their plan, whose
/// reward contexts name the stored preference each stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct Personalized {
    pub options: GenerateOptions,
    pub plan: Plan,
}

impl Personalized {
    /// The ids of the stored preferences whose contexts score the answer, in the order of
    /// its rewards (PAD answers only: the others carry no rewards for feedback).
    pub fn preference_ids(&self) -> Vec<String> {
        self.plan.contexts.iter().filter_map(|c| c.preference.clone()).collect()
    }

    /// The response as feedback will see it: text, token count, and each context's reward
    /// and stop reward (`Generation::sequence_rewards`, `feedback::StopRewards`).
    pub fn response(&self, text: String, tokens: usize, rewards: &[f32], stop: &[f32]) -> Response {
        let named = |values: &[f32]| {
            let ids = self.plan.contexts.iter().map(|c| c.preference.as_ref());
            ids.zip(values).filter_map(|(id, &value)| Some(Reward { preference: id?.clone(), value })).collect()
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

    /// [`personalize_with`](Self::personalize_with) where the request chooses nothing: the
    /// profile's method, β, k and `baseWithGuideline` apply.
    pub async fn personalize(&self, options: &GenerateOptions) -> Result<Personalized> {
        self.personalize_with(options, PersonalizationOverrides::default()).await
    }

    /// `options` steered by this memory: its active preferences, with the method, β, k and
    /// `baseWithGuideline` the request chose (`request`), else the profile's. The other
    /// settings are the memory's (`memory_pad_settings`). Without an enabled preference of
    /// the person's own, the answer is the base model's.
    pub async fn personalize_with(
        &self,
        options: &GenerateOptions,
        request: PersonalizationOverrides,
    ) -> Result<Personalized> {
        let profile = self.profile().await?;
        let prefs = self.preferences().await?.items;
        let chosen = active(&prefs, profile.max_active);
        let mut personalization = memory_pad_settings();
        request.or(profile.overrides()).apply(&mut personalization);
        if !chosen.iter().any(|p| !p.is_universal()) {
            personalization.method = Method::Base;
        }
        let used = if personalization.method == Method::Base { Vec::new() } else { chosen };
        personalization.preferences =
            used.iter().map(|p| crate::align::Preference::new(p.text.clone(), p.effective_weight() as f32)).collect();
        // Rewards name their preferences for PAD answers, what feedback learns from.
        let ids: Vec<String> = match personalization.method {
            Method::Pad => used.iter().map(|p| p.id.clone()).collect(),
            _ => Vec::new(),
        };
        let plan = Plan::for_stored(&personalization, &ids)?;
        let mut options = options.clone();
        options.personalization = personalization;
        Ok(Personalized { options, plan })
    }
}
