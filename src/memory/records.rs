//! The records a memory keeps (preferences, feedback events, the profile, value heads), their
//! ids and timestamps, and the checks every write and import relies on.

use serde::{Deserialize, Serialize};

use crate::align::sampler::SamplingParams;
use crate::align::screen::screen_preference;
use crate::align::values::{HARMLESS_FLOOR_WEIGHT, HARMLESS_PRINCIPLE, MAX_PREFERENCES, MAX_PREFERENCE_WEIGHT};
use crate::align::{Method, PersonalizationOverrides};
use crate::error::{Error, ErrorCode, Result};

/// The id of the built-in harmlessness principle (see `align::values`).
pub const HARMLESS_ID: &str = "harmless";
/// The longest preference text, in characters.
pub const MAX_PREFERENCE_CHARS: usize = 500;
/// Weights (set or learned) stay within [0, MAX_WEIGHT].
pub const MAX_WEIGHT: f64 = MAX_PREFERENCE_WEIGHT as f64;
/// The most preferences a memory keeps (besides harmlessness).
pub const MAX_STORED_PREFERENCES: usize = 1000;
/// The most feedback events and value heads an import brings.
pub const MAX_IMPORTED_EVENTS: usize = 100_000;
pub const MAX_VALUE_HEADS: usize = 16;
/// The weight a new preference gets when none is given.
pub const DEFAULT_WEIGHT: f64 = 1.0;

/// Where a preference came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
pub enum Source {
    /// The person wrote it ("remember this", the preferences panel, the command line).
    Explicit,
    /// Suggested from the person's own messages (`memory::suggest`) and confirmed by them.
    Inferred,
    /// Created from feedback.
    Feedback,
    /// The built-in harmlessness principle: cannot be removed, disabled or reworded.
    Universal,
}

/// One thing the person wants, with how much it counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
#[cfg_attr(target_arch = "wasm32", tsify(rename = "StoredPreference"))]
pub struct Preference {
    pub id: String,
    pub text: String,
    /// The weight the person set (f64 like a JS number, so it reads back as it was written).
    pub weight: f64,
    /// What feedback added to (or took from) `weight`; see [`Preference::effective_weight`].
    #[serde(default)]
    pub learned: f64,
    /// Feedback from before this store revision does not move this preference: it was reset
    /// (`resetLearned`) then, and replaying the log must not undo the reset.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub learned_since: u64,
    /// The ids of preferences merged into this one (`Memory::merge`): feedback given to them
    /// counts for this one when the log replays.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(target_arch = "wasm32", tsify(optional))]
    pub merged: Vec<String>,
    /// Steers every answer, whatever it is about (otherwise only answers it is relevant to,
    /// see `memory::relevance`).
    #[serde(default, skip_serializing_if = "is_false")]
    #[cfg_attr(target_arch = "wasm32", tsify(optional))]
    pub always: bool,
    pub enabled: bool,
    pub source: Source,
    /// Milliseconds since the Unix epoch.
    pub created: u64,
    pub updated: u64,
}

impl Preference {
    /// The weight PAD uses: `weight + learned`, kept within [floor, MAX_WEIGHT], where the
    /// floor is `HARMLESS_FLOOR_WEIGHT` for the harmlessness principle and 0 otherwise.
    pub fn effective_weight(&self) -> f64 {
        (self.weight + self.learned).clamp(self.floor(), MAX_WEIGHT)
    }

    /// The lowest effective weight this preference may have.
    pub fn floor(&self) -> f64 {
        if self.is_universal() {
            HARMLESS_FLOOR_WEIGHT as f64
        } else {
            0.0
        }
    }

    /// Whether feedback recorded for the preference `id` counts for this one: it is this one, or
    /// was merged into it.
    pub fn answers_for(&self, id: &str) -> bool {
        self.id == id || self.merged.iter().any(|m| m == id)
    }

    pub fn is_universal(&self) -> bool {
        self.id == HARMLESS_ID
    }

    /// The harmlessness principle as it is before anyone changed it.
    pub fn harmless(now: u64) -> Self {
        Preference {
            id: HARMLESS_ID.into(),
            text: HARMLESS_PRINCIPLE.into(),
            weight: DEFAULT_WEIGHT,
            learned: 0.0,
            learned_since: 0,
            merged: Vec::new(),
            always: false,
            enabled: true,
            source: Source::Universal,
            created: now,
            updated: now,
        }
    }

    /// Checks a preference as it would be stored (what import and every write rely on).
    pub fn validate(&self) -> Result<()> {
        check_id(&self.id)?;
        check_text(&self.text)?;
        check_weight(self.weight, "weight")?;
        if self.merged.len() > MAX_STORED_PREFERENCES {
            crate::bail!(InvalidArgument, "{:?} lists more than {MAX_STORED_PREFERENCES} merged preferences", self.id);
        }
        for id in &self.merged {
            check_id(id)?;
        }
        if !self.learned.is_finite() || self.learned.abs() > MAX_WEIGHT {
            crate::bail!(InvalidArgument, "learned weight of {:?} must be within ±{MAX_WEIGHT}", self.id);
        }
        if self.is_universal() {
            if self.text != HARMLESS_PRINCIPLE || self.source != Source::Universal || !self.enabled {
                crate::bail!(UnsafePreference, "the harmlessness principle cannot be reworded or disabled");
            }
            if self.weight < HARMLESS_FLOOR_WEIGHT as f64 {
                crate::bail!(
                    UnsafePreference,
                    "the harmlessness principle's weight cannot go below {HARMLESS_FLOOR_WEIGHT}"
                );
            }
        } else if self.source == Source::Universal {
            crate::bail!(InvalidArgument, "only the built-in harmlessness principle is 'universal'");
        }
        Ok(())
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The kinds of feedback a person gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
pub enum FeedbackKind {
    /// One response, liked.
    ThumbsUp,
    /// One response, disliked.
    ThumbsDown,
    /// Two responses; the first was chosen over the second.
    Choice,
    /// Two responses: the model's, then the person's edit of it (logged; it carries no
    /// rewards for the edited text, so it does not move weights).
    Edit,
}

impl FeedbackKind {
    /// How many responses an event of this kind holds.
    pub fn responses(self) -> usize {
        match self {
            FeedbackKind::ThumbsUp | FeedbackKind::ThumbsDown => 1,
            FeedbackKind::Choice | FeedbackKind::Edit => 2,
        }
    }
}

/// A preference's summed reward for one response: Σ_t r_p(y_t) over its tokens, as
/// recorded when the response was generated (`Generation::sequence_rewards`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
pub struct Reward {
    pub preference: String,
    pub value: f32,
}

/// A response as feedback sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
pub struct Response {
    pub text: String,
    /// Generated tokens.
    #[serde(default)]
    pub tokens: u32,
    /// One per PersRM context of the generation (empty when it was not generated with PAD).
    #[serde(default)]
    pub rewards: Vec<Reward>,
    /// Per context, the reward of the end-of-turn token (part of `rewards`), when the answer
    /// ended there (`feedback::StopRewards`); empty otherwise.
    #[serde(default)]
    pub stop: Vec<Reward>,
}

/// One piece of feedback, as logged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
pub struct FeedbackEvent {
    pub id: String,
    /// Milliseconds since the Unix epoch.
    pub time: u64,
    /// The store's revision the event's weight update was computed from: the log replays in
    /// (seq, time, id) order, which is the order the updates were applied in, across tabs too.
    #[serde(default)]
    pub seq: u64,
    pub prompt: String,
    pub kind: FeedbackKind,
    pub responses: Vec<Response>,
}

/// The longest prompt or response a feedback event keeps, in characters.
pub const MAX_FEEDBACK_CHARS: usize = 32_768;

impl FeedbackEvent {
    pub fn validate(&self) -> Result<()> {
        check_id(&self.id)?;
        if self.responses.len() != self.kind.responses() {
            crate::bail!(
                InvalidArgument,
                "{:?} feedback needs {} response(s), got {}",
                self.kind,
                self.kind.responses(),
                self.responses.len()
            );
        }
        if self.prompt.chars().count() > MAX_FEEDBACK_CHARS {
            crate::bail!(InvalidArgument, "the prompt is longer than {MAX_FEEDBACK_CHARS} characters");
        }
        for r in &self.responses {
            if r.text.chars().count() > MAX_FEEDBACK_CHARS {
                crate::bail!(InvalidArgument, "a response is longer than {MAX_FEEDBACK_CHARS} characters");
            }
            let mut seen = std::collections::HashSet::new();
            for w in &r.rewards {
                if !seen.insert(w.preference.as_str()) {
                    crate::bail!(InvalidArgument, "two rewards for {:?} in one response", w.preference);
                }
            }
            if !r.stop.is_empty()
                && (r.stop.len() != r.rewards.len()
                    || r.stop.iter().zip(&r.rewards).any(|(s, w)| s.preference != w.preference))
            {
                crate::bail!(InvalidArgument, "stop rewards must name the same preferences as the rewards");
            }
            for w in r.rewards.iter().chain(&r.stop) {
                check_id(&w.preference)?;
                if !w.value.is_finite() {
                    crate::bail!(InvalidArgument, "the reward for {:?} is not a finite number", w.preference);
                }
            }
        }
        Ok(())
    }
}

/// How the person's answers are decoded. Its method, β, k and `baseWithGuideline` override
/// the one `Personalization` (see [`Profile::overrides`]); a request's own choices override
/// them in turn (`Memory::personalize_with`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
pub struct Profile {
    /// How preferences enter generation (PAD by default).
    pub method: Method,
    /// PAD's β.
    pub beta: f32,
    /// PAD's k: how many of the base model's top tokens are scored.
    pub candidates: usize,
    /// At most this many of the person's own preferences steer one answer (weightiest first);
    /// the harmlessness principle comes on top.
    pub max_active: usize,
    /// Also put the guideline in the base context.
    pub base_with_guideline: bool,
    /// Decoding settings.
    pub sampling: SamplingParams,
}

impl Default for Profile {
    fn default() -> Self {
        Profile {
            method: Method::Pad,
            beta: 1.0,
            candidates: 10,
            max_active: 3,
            base_with_guideline: false,
            sampling: SamplingParams::default(),
        }
    }
}

/// The most preferences one answer may be steered by (each is a context in the batch).
pub const MAX_ACTIVE_LIMIT: usize = MAX_PREFERENCES;

impl Profile {
    /// The profile's choices of the `Personalization` settings (all of them made). The fields
    /// stay plain values while `src/bin` sets them directly.
    pub fn overrides(&self) -> PersonalizationOverrides {
        PersonalizationOverrides {
            method: Some(self.method),
            beta: Some(self.beta),
            candidates: Some(self.candidates),
            base_with_guideline: Some(self.base_with_guideline),
        }
    }

    pub fn validate(&self) -> Result<()> {
        self.overrides().validate()?;
        if !(1..=100).contains(&self.candidates) {
            crate::bail!(InvalidArgument, "candidates must be within [1, 100], got {}", self.candidates);
        }
        if !(1..=MAX_ACTIVE_LIMIT).contains(&self.max_active) {
            crate::bail!(InvalidArgument, "maxActive must be within [1, {MAX_ACTIVE_LIMIT}], got {}", self.max_active);
        }
        self.sampling.validate()
    }
}

/// A trained value head (PAD's W), kept as the bytes its trainer wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValueHead {
    /// Usually the id of the preference it was trained for.
    pub name: String,
    #[serde(with = "base64_bytes")]
    pub bytes: Vec<u8>,
}

/// The largest value head kept (a 2048×2048 f32 matrix is 16 MiB).
pub const MAX_VALUE_HEAD_BYTES: usize = 64 << 20;

impl ValueHead {
    pub fn validate(&self) -> Result<()> {
        check_id(&self.name)?;
        if self.bytes.len() > MAX_VALUE_HEAD_BYTES {
            crate::bail!(InvalidArgument, "value head {:?} is larger than {MAX_VALUE_HEAD_BYTES} bytes", self.name);
        }
        Ok(())
    }
}

/// Bytes as standard base64 in JSON.
mod base64_bytes {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD.decode(text.as_bytes()).map_err(serde::de::Error::custom)
    }
}

/// Everything a memory holds: what an export carries and an import puts back.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Contents {
    pub profile: Profile,
    pub preferences: Vec<Preference>,
    pub events: Vec<FeedbackEvent>,
    pub value_heads: Vec<ValueHead>,
}

impl Contents {
    /// Every record valid, ids unique, the harmlessness principle present: what an import needs.
    pub fn validate(&self) -> Result<()> {
        self.profile.validate()?;
        for (what, n, max) in [
            ("preferences", self.preferences.len(), MAX_STORED_PREFERENCES + 1),
            ("feedback events", self.events.len(), MAX_IMPORTED_EVENTS),
            ("value heads", self.value_heads.len(), MAX_VALUE_HEADS),
        ] {
            if n > max {
                crate::bail!(InvalidArgument, "{n} {what}; a memory holds at most {max}");
            }
        }
        let mut ids = std::collections::HashSet::new();
        for p in &self.preferences {
            p.validate()?;
            if !ids.insert(p.id.as_str()) {
                crate::bail!(InvalidArgument, "two preferences with the id {:?}", p.id);
            }
        }
        if !ids.contains(HARMLESS_ID) {
            crate::bail!(UnsafePreference, "the harmlessness principle is missing");
        }
        let mut ids = std::collections::HashSet::new();
        for e in &self.events {
            e.validate()?;
            if !ids.insert(e.id.as_str()) {
                crate::bail!(InvalidArgument, "two feedback events with the id {:?}", e.id);
            }
        }
        let mut names = std::collections::HashSet::new();
        for h in &self.value_heads {
            h.validate()?;
            if !names.insert(h.name.as_str()) {
                crate::bail!(InvalidArgument, "two value heads named {:?}", h.name);
            }
        }
        Ok(())
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> u64 {
    #[cfg(target_arch = "wasm32")]
    {
        js_sys::Date::now() as u64
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }
}

/// `n` bytes from the operating system's (or the browser's) random source.
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| Error::new(ErrorCode::Storage, format!("no random numbers: {e}")))?;
    Ok(bytes)
}

/// A fresh random id: 32 hex digits.
pub fn new_id() -> Result<String> {
    Ok(random_bytes::<16>()?.iter().map(|b| format!("{b:02x}")).collect())
}

/// Ids are 1–64 characters of A–Z, a–z, 0–9, '-' and '_' (they are keys and file names).
pub fn check_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        crate::bail!(InvalidArgument, "{id:?} is not a valid id (1–64 of A–Z a–z 0–9 - _)");
    }
    Ok(())
}

/// Preference text: not blank, not too long, and not asking to switch safety off.
fn check_text(text: &str) -> Result<()> {
    if text.trim().is_empty() {
        crate::bail!(InvalidArgument, "a preference needs some text");
    }
    if text.chars().count() > MAX_PREFERENCE_CHARS {
        crate::bail!(InvalidArgument, "a preference is at most {MAX_PREFERENCE_CHARS} characters");
    }
    screen_preference(text)
}

pub(super) fn check_weight(weight: f64, what: &str) -> Result<()> {
    if !(weight.is_finite() && (0.0..=MAX_WEIGHT).contains(&weight)) {
        crate::bail!(InvalidArgument, "{what} must be within [0, {MAX_WEIGHT}], got {weight}");
    }
    Ok(())
}
