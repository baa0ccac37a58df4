//! The OpenAI-style chat completion request the package takes (`ChatRequest`): OpenAI's
//! field names, padlock's additions under `personalization`, turned into the one set of
//! generation options (`GenerateOptions`) every caller uses.

use serde::{Deserialize, Serialize};

use crate::align::plan::Plan;
use crate::align::sampler::SamplingParams;
use crate::align::{Method, Personalization, PersonalizationOverrides, Preference};
use crate::error::Result;
use crate::generate::{check_conversation, GenerateOptions};
use crate::tokenizer::ChatMessage;

/// An OpenAI-style chat completion request: OpenAI's field names and meanings, padlock's
/// additions under `personalization`. Unknown fields are refused (a typo changes nothing
/// silently).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
    /// Accepted for OpenAI compatibility and ignored: the loaded model answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The most tokens the answer may have (default 256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<usize>,
    /// Sampling temperature; 0 always takes the most likely token (default 0.7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Nucleus sampling: keep the smallest set of tokens whose probability reaches this (default 0.9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Stream the answer as chunks (the package's `create` then returns an async iterable).
    #[serde(default)]
    pub stream: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personalization: Option<ChatPersonalization>,
}

/// How a chat request is personalized: preferences given with the request, or the stored
/// ones (`memory: true`); an explicit method, β or k wins over the memory profile's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
pub struct ChatPersonalization {
    /// Steer with the preference memory's active preferences and its profile.
    pub memory: bool,
    pub preferences: Vec<Preference>,
    /// Default: `pad` when there are preferences (or memory), else `base`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beta: Option<f32>,
    /// k: how many of the base model's top tokens PAD weighs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidates: Option<usize>,
    /// Attach PAD's per-token explanation to every streamed chunk.
    pub explain: bool,
}

impl ChatPersonalization {
    /// The method, β and k this request chooses (each `None` where it leaves the choice).
    pub fn overrides(&self) -> PersonalizationOverrides {
        PersonalizationOverrides {
            method: self.method,
            beta: self.beta,
            candidates: self.candidates,
            ..Default::default()
        }
    }
}

impl ChatRequest {
    /// Checks the request and turns it into the generation options it asks for (its
    /// messages stay with the request), sampling as `defaults` where it says nothing. For a
    /// memory-steered request, `personalization` is the plain model's: the memory makes the
    /// plan (`Memory::personalize_with`).
    pub fn options(&self, defaults: &SamplingParams) -> Result<GenerateOptions> {
        check_conversation(&self.messages)?;
        let mut sampling = defaults.clone();
        match self.temperature {
            Some(t) if !(0.0..=10.0).contains(&t) => {
                crate::bail!(InvalidArgument, "temperature: {t} is outside [0, 10]")
            }
            Some(0.0) => sampling.greedy = true,
            Some(t) => {
                sampling.greedy = false;
                sampling.temperature = t;
            }
            None => {}
        }
        if let Some(p) = self.top_p {
            sampling.top_p = p;
        }
        if let Some(seed) = self.seed {
            sampling.seed = seed;
        }
        // The sampler's own checks (top_p in (0, 1], ...), before anything runs.
        sampling.validate()?;
        let mut options = GenerateOptions { sampling, ..GenerateOptions::default() };
        if let Some(n) = self.max_tokens {
            options.max_tokens = n;
        }
        let p = self.personalization.clone().unwrap_or_default();
        let overrides = p.overrides();
        overrides.validate()?;
        if p.memory && !p.preferences.is_empty() {
            crate::bail!(
                InvalidArgument,
                "personalization: give preferences or memory: true, not both (store them with memory.add)"
            );
        }
        if !p.memory {
            let mut personalization = Personalization {
                method: if p.preferences.is_empty() { Method::Base } else { Method::Pad },
                preferences: p.preferences,
                ..Personalization::default()
            };
            overrides.apply(&mut personalization);
            Plan::new(&personalization)?;
            options.personalization = personalization;
        }
        Ok(options)
    }

    /// Whether the stored preferences steer this request.
    pub fn uses_memory(&self) -> bool {
        self.personalization.as_ref().is_some_and(|p| p.memory)
    }
}
