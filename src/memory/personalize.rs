//! Memory-steered generation: which preferences steer the next answer, with which settings.

use super::relevance::{relevances, PreferenceUse, RELEVANT};
use super::{Memory, Preference, Response, Reward, Store};
use crate::align::{Method, Personalization, PersonalizationOverrides, Plan};
use crate::error::Result;
use crate::generate::GenerateOptions;
use crate::tokenizer::ChatMessage;

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
    /// Every stored preference with its relevance to the conversation and whether it steered.
    pub considered: Vec<PreferenceUse>,
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

/// Which stored preferences steer an answer to a conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection<'p> {
    /// The harmlessness principle, then the enabled preferences relevant to the conversation
    /// (`relevance::RELEVANT` or more), by relevance × weight (older first on a tie), at most
    /// `max_active` of them.
    pub steering: Vec<&'p Preference>,
    /// Every stored preference with its relevance and whether it is in `steering`.
    pub considered: Vec<PreferenceUse>,
}

/// The preferences that steer an answer to `messages` (see [`Selection`]). Without messages
/// only those about every request qualify.
pub fn select<'p>(preferences: &'p [Preference], max_active: usize, messages: &[ChatMessage]) -> Selection<'p> {
    let scored = relevances(preferences, messages);
    let mut mine: Vec<(&Preference, f32)> =
        scored.iter().copied().filter(|(p, r)| p.enabled && !p.is_universal() && *r >= RELEVANT).collect();
    let score = |(p, r): &(&Preference, f32)| f64::from(*r) * p.effective_weight();
    mine.sort_by(|a, b| score(b).total_cmp(&score(a)).then(a.0.created.cmp(&b.0.created)).then(a.0.id.cmp(&b.0.id)));
    mine.truncate(max_active);
    let mut steering: Vec<&Preference> = preferences.iter().filter(|p| p.is_universal()).take(1).collect();
    steering.extend(mine.into_iter().map(|(p, _)| p));
    let considered = scored
        .iter()
        .map(|(p, r)| PreferenceUse {
            id: p.id.clone(),
            text: p.text.clone(),
            relevance: *r,
            active: steering.iter().any(|s| s.id == p.id),
        })
        .collect();
    Selection { steering, considered }
}

impl<S: Store> Memory<S> {
    /// The preferences that would steer an answer to `messages` (see [`select`]).
    pub async fn active(&self, messages: &[ChatMessage]) -> Result<Vec<Preference>> {
        let profile = self.profile().await?;
        let prefs = self.preferences().await?.items;
        Ok(select(&prefs, profile.max_active, messages).steering.into_iter().cloned().collect())
    }

    /// [`personalize_with`](Self::personalize_with) where the request chooses nothing: the
    /// profile's method, β, k and `baseWithGuideline` apply.
    pub async fn personalize(&self, options: &GenerateOptions, messages: &[ChatMessage]) -> Result<Personalized> {
        self.personalize_with(options, PersonalizationOverrides::default(), messages).await
    }

    /// `options` steered by this memory for an answer to `messages`: the preferences relevant
    /// to it ([`select`]), with the method, β, k and `baseWithGuideline` the request chose
    /// (`request`), else the profile's. The other settings are the memory's
    /// (`memory_pad_settings`). Without a relevant enabled preference of the person's own, the
    /// answer is the base model's.
    pub async fn personalize_with(
        &self,
        options: &GenerateOptions,
        request: PersonalizationOverrides,
        messages: &[ChatMessage],
    ) -> Result<Personalized> {
        let profile = self.profile().await?;
        let prefs = self.preferences().await?.items;
        let Selection { steering: chosen, mut considered } = select(&prefs, profile.max_active, messages);
        let mut personalization = memory_pad_settings();
        request.or(profile.overrides()).apply(&mut personalization);
        if !chosen.iter().any(|p| !p.is_universal()) {
            personalization.method = Method::Base;
        }
        let used = if personalization.method == Method::Base { Vec::new() } else { chosen };
        for c in &mut considered {
            c.active = used.iter().any(|p| p.id == c.id);
        }
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
        Ok(Personalized { options, plan, considered })
    }
}
