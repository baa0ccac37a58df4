//! Personalized generation: samplers, the PAD step, and the options that say how a
//! person's preferences steer an answer.

pub mod pad;
pub mod sampler;
pub mod values;

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// How preferences enter generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// The base model alone; preferences are ignored.
    #[default]
    Base,
    /// Preference prompting: the guideline in the base model's own prompt, no reward.
    Prompt,
    /// Personalized Alignment at Decoding-time: base proposes, PersRM contexts score.
    Pad,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preference {
    pub text: String,
    #[serde(default = "one")]
    pub weight: f32,
}

fn one() -> f32 {
    1.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Personalization {
    pub method: Method,
    pub preferences: Vec<Preference>,
    /// β: how strongly the rewards move the choice.
    pub beta: f32,
    /// k: how many of the base model's top tokens PAD considers.
    pub candidates: usize,
    /// Also put the guideline in the base context (as the PAD paper's code does).
    pub base_with_guideline: bool,
    /// One PersRM context holding every principle instead of one per preference.
    pub combined: bool,
}

impl Default for Personalization {
    fn default() -> Self {
        Personalization {
            method: Method::Base,
            preferences: Vec::new(),
            beta: 1.0,
            candidates: 10,
            base_with_guideline: false,
            combined: false,
        }
    }
}

impl Personalization {
    pub fn validate(&self) -> Result<()> {
        if self.method != Method::Base && self.preferences.is_empty() {
            crate::bail!(InvalidArgument, "method {:?} needs at least one preference", self.method);
        }
        if !self.beta.is_finite() || self.beta < 0.0 {
            crate::bail!(InvalidArgument, "β must be a finite number ≥ 0, got {}", self.beta);
        }
        if self.candidates == 0 {
            crate::bail!(InvalidArgument, "PAD needs at least one candidate token");
        }
        if let Some(p) = self.preferences.iter().find(|p| !p.weight.is_finite() || p.text.trim().is_empty()) {
            crate::bail!(InvalidArgument, "preference {:?} needs text and a finite weight", p.text);
        }
        for p in &self.preferences {
            values::screen_preference(&p.text)?;
        }
        Ok(())
    }
}

/// The PAD paper's preference-conditioned instruction.
pub fn guideline_message(principles: &[&str], instruction: &str) -> String {
    format!(
        "[Guidelines] Your task is to generate response by considering the following principle{}. \
         [Principles] {} [Instruction] {}",
        if principles.len() > 1 { "s" } else { "" },
        principles.join(" "),
        instruction
    )
}
