//! Flags shared by several commands. Their value types and defaults are the library's own
//! (`Personalization`, `BackendChoice`, `Kernels`): the command line declares no option twice.

use clap::Args;
use padlock::align::{ContextStyle, HarmlessMode, Method, Personalization, PersonalizationOverrides, Preference};
#[cfg(feature = "gpu")]
use padlock::backend::gpu::Kernels;
use padlock::backend::{Backend, BackendChoice};
use padlock::generate::Engine;
use padlock::{Error, ErrorCode, Result};

/// How preferences steer generation (shared by generate, bench and eval).
#[derive(Args, Clone)]
pub struct PersonalizationArgs {
    /// base: the model alone; prompt: preferences in its prompt; pad: decoding-time
    /// alignment; best-of-n: n samples, the best by PersRM reward.
    /// [default: base; with `generate --store`, the profile's]
    #[arg(long, value_enum)]
    pub method: Option<Method>,
    /// A preference, e.g. "Keep answers short." (repeat for several).
    #[arg(long = "prefer")]
    pub prefer: Vec<String>,
    /// The weight of each --prefer, in the same order (default 1).
    #[arg(long = "weight")]
    pub weight: Vec<f32>,
    /// A value head (safetensors) for the PersRM: once for every preference, or once per --prefer.
    #[arg(long = "head")]
    pub head: Vec<String>,
    /// PAD's β: how strongly the preferences move the choice.
    /// [default: the library's; with `generate --store`, the profile's]
    #[arg(long)]
    pub beta: Option<f32>,
    /// PAD: keep the candidates inside this much base probability (nucleus within the top-k; 1: off).
    #[arg(long, default_value_t = Personalization::default().candidate_top_p)]
    pub candidate_top_p: f32,
    /// PAD: drop candidates below this fraction of the base top-1's probability (0: off).
    #[arg(long, default_value_t = Personalization::default().candidate_min_p)]
    pub candidate_min_p: f32,
    /// PAD: the end-of-turn token stays a candidate whenever it is in the top-k (past the
    /// floor and the nucleus). `--stop-candidate false` turns it off.
    #[arg(long, num_args = 0..=1, default_value_t = Personalization::default().stop_candidate, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub stop_candidate: bool,
    /// Put the guideline in the base context too; the rewards are then measured against one
    /// more, unconditioned context (PAD).
    #[arg(long)]
    pub base_with_guideline: bool,
    /// How the PersRM contexts carry the preference: the PAD paper's guideline template
    /// around the question, or the preference as the system message (PAD).
    #[arg(long, value_enum, default_value_t = Personalization::default().persrm_context)]
    pub persrm_context: ContextStyle,
    /// One PersRM context for all preferences instead of one each (PAD).
    #[arg(long)]
    pub combined: bool,
    /// Where the harmlessness principle goes: its own PersRM context, or inside each guideline.
    #[arg(long, value_enum, default_value_t = Personalization::default().harmless)]
    pub harmless: HarmlessMode,
    /// Best-of-n: how many answers to sample.
    #[arg(long, default_value_t = Personalization::default().best_of)]
    pub n: usize,
}

#[derive(Args, Clone)]
pub struct BackendArgs {
    /// cpu: the SIMD CPU kernels; gpu: wgpu (Vulkan/Metal/DX12); auto: the GPU when an
    /// adapter exists (software ones such as lavapipe included), else the CPU.
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: BackendChoice,
    /// GPU: do not use subgroup operations even where the adapter offers them.
    #[arg(long)]
    pub no_subgroups: bool,
    /// GPU kernel family: auto (per-thread on a software adapter, else workgroup).
    #[cfg(feature = "gpu")]
    #[arg(long, value_enum, default_value = "auto")]
    pub kernels: Kernels,
}

impl PersonalizationArgs {
    /// The choices these flags make explicitly (`top_k`: `--top-k`, PAD's k), which win over a
    /// stored profile's (`generate --store`).
    pub fn overrides(&self, top_k: Option<usize>) -> PersonalizationOverrides {
        PersonalizationOverrides {
            method: self.method,
            beta: self.beta,
            candidates: top_k,
            base_with_guideline: self.base_with_guideline.then_some(true),
        }
    }

    /// The personalization these flags describe; value heads are loaded into `engine`
    /// under their path.
    pub fn resolve<B: Backend>(&self, engine: &Engine<B>, top_k: Option<usize>) -> Result<Personalization> {
        let invalid = |m: String| Error::new(ErrorCode::InvalidArgument, m);
        if self.weight.len() > self.prefer.len() {
            return Err(invalid("more --weight than --prefer".into()));
        }
        if self.head.len() > 1 && self.head.len() != self.prefer.len() {
            return Err(invalid(format!(
                "{} --head for {} --prefer: give one, or one per --prefer",
                self.head.len(),
                self.prefer.len()
            )));
        }
        for path in &self.head {
            let bytes = std::fs::read(path).map_err(|e| Error::new(ErrorCode::Io, format!("{path}: {e}")))?;
            engine.load_head(path, &bytes)?;
        }
        let preferences = self
            .prefer
            .iter()
            .enumerate()
            .map(|(i, text)| Preference {
                head: self.head.get(if self.head.len() == 1 { 0 } else { i }).cloned(),
                ..Preference::new(text.clone(), self.weight.get(i).copied().unwrap_or(1.0))
            })
            .collect();
        Ok(Personalization {
            method: self.method.unwrap_or_default(),
            preferences,
            beta: self.beta.unwrap_or(Personalization::default().beta),
            candidates: top_k.unwrap_or(Personalization::default().candidates),
            candidate_top_p: self.candidate_top_p,
            candidate_min_p: self.candidate_min_p,
            stop_candidate: self.stop_candidate,
            base_with_guideline: self.base_with_guideline,
            persrm_context: self.persrm_context,
            combined: self.combined,
            harmless: self.harmless,
            best_of: self.n,
        })
    }
}
