//! A generation's plan: what a [`Personalization`] asks for, worked out once per generation
//! (the contexts to advance with their labels, principles, weights, heads and the stored
//! preference each stands for, and PAD's parameters). Generation, best-of-n, the memory, the
//! wasm API and the explanation all read this one plan instead of deriving it again.

use crate::align::pad::PadParams;
use crate::align::{ContextStyle, Method, Personalization, RewardContext};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// What the plan was worked out from (checked).
    pub personalization: Personalization,
    /// The principles the base context holds, if any, and how.
    pub base: Option<(Vec<String>, ContextStyle)>,
    /// The PersRM contexts (PAD, best-of-n), in the order generation advances them after
    /// the base context.
    pub contexts: Vec<RewardContext>,
    /// Whether an unconditioned reference context follows them.
    pub reference: bool,
    /// PAD's parameters for `contexts`: their weights, β, k and the candidate restriction.
    /// `keep` is empty: a generation adds its end-of-turn tokens (`stop_candidate`).
    pub pad: PadParams,
}

impl Plan {
    /// Checks `personalization` and works out its plan.
    pub fn new(personalization: &Personalization) -> Result<Plan> {
        Plan::for_stored(personalization, &[])
    }

    /// [`Plan::new`] where `ids[i]` is the id of the stored preference that
    /// `personalization.preferences[i]` is (the memory's), so that each context says which
    /// one it stands for.
    pub fn for_stored(personalization: &Personalization, ids: &[String]) -> Result<Plan> {
        personalization.check()?;
        let contexts = personalization.reward_contexts_for(ids);
        let p = personalization;
        let pad = PadParams {
            weights: contexts.iter().map(|c| c.weight).collect(),
            beta: p.beta,
            k: p.candidates,
            top_p: p.candidate_top_p,
            min_p: p.candidate_min_p,
            keep: Vec::new(),
        };
        pad.validate()?;
        Ok(Plan {
            personalization: p.clone(),
            base: p.base_principles(),
            contexts,
            reference: p.uses_reference_context(),
            pad,
        })
    }

    pub fn method(&self) -> Method {
        self.personalization.method
    }

    /// The plan of best-of-n's samples: each a PAD generation at β = 0 (exactly the base
    /// model's sampling over its top-k candidates) whose reward contexts only score.
    pub fn best_of_n_samples(&self) -> Result<Plan> {
        Plan::new(&Personalization { method: Method::Pad, beta: 0.0, ..self.personalization.clone() })
    }

    /// What each reward context is called (the preference text; all of them when combined).
    pub fn labels(&self) -> Vec<String> {
        self.contexts.iter().map(|c| c.label.clone()).collect()
    }
}
