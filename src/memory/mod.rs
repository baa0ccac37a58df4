//! Preference memory: what one person wants, kept on their own device.
//!
//! - The data: [`Preference`]s (with the built-in harmlessness principle always first),
//!   the log of [`FeedbackEvent`]s, a [`Profile`] of decoding settings, and trained value
//!   heads as bytes ([`ValueHead`]).
//! - Where it lives: a [`Store`]: IndexedDB in the browser (`idb.rs`, every record
//!   encrypted with AES-GCM under a non-extractable WebCrypto key), files on disk natively
//!   (`file.rs`, atomic writes). Both keep a revision number so that a read-modify-write
//!   from two tabs (or two processes) never loses an update: see [`Store::write`].
//! - What you do with it: [`Memory`] — list, add, update, remove, feedback, export,
//!   import, forget — the same code over either store.

pub mod export;
pub mod schema;

#[cfg(not(target_arch = "wasm32"))]
pub mod file;
#[cfg(target_arch = "wasm32")]
pub mod idb;
#[cfg(target_arch = "wasm32")]
pub(crate) mod webcrypto;

use serde::{Deserialize, Serialize};

use crate::align::sampler::SamplingParams;
use crate::align::values::{screen_preference, HARMLESS_FLOOR_WEIGHT, HARMLESS_PRINCIPLE};
use crate::align::{Method, Personalization};
use crate::error::{Error, ErrorCode, Result};
use crate::feedback::{self, WeightChange};
use crate::generate::GenerateOptions;

/// The id of the built-in harmlessness principle (see `align::values`).
pub const HARMLESS_ID: &str = "harmless";
/// The longest preference text, in characters.
pub const MAX_PREFERENCE_CHARS: usize = 500;
/// Weights (set or learned) stay within [0, MAX_WEIGHT].
pub const MAX_WEIGHT: f64 = 3.0;
/// The weight a new preference gets when none is given.
pub const DEFAULT_WEIGHT: f64 = 1.0;
/// How many times a read-modify-write is retried when another writer got there first.
const MAX_ATTEMPTS: usize = 64;

/// Where a preference came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The person wrote it ("remember this", the preferences panel, the command line).
    Explicit,
    /// Suggested from the person's behaviour (kept for imports and future use).
    Inferred,
    /// Created from feedback.
    Feedback,
    /// The built-in harmlessness principle: cannot be removed, disabled or reworded.
    Universal,
}

/// One thing the person wants, with how much it counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Preference {
    pub id: String,
    pub text: String,
    /// The weight the person set (f64 like a JS number, so it reads back as it was written).
    pub weight: f64,
    /// What feedback added to (or took from) `weight`; see [`Preference::effective_weight`].
    #[serde(default)]
    pub learned: f64,
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

/// The kinds of feedback a person gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
pub struct Reward {
    pub preference: String,
    pub value: f32,
}

/// A response as feedback sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
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

/// How the person's answers are decoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
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

/// The PAD settings that stored preferences steer with, where they differ from the API's
/// defaults. The feedback loop (`crate::feedback`) learns from the rewards of these contexts:
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

/// The most preferences one answer may be steered by (each is a context in the batch).
pub const MAX_ACTIVE_LIMIT: usize = 8;

impl Profile {
    pub fn validate(&self) -> Result<()> {
        if !(self.beta.is_finite() && (0.0..=10.0).contains(&self.beta)) {
            crate::bail!(InvalidArgument, "β must be within [0, 10], got {}", self.beta);
        }
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
pub(crate) mod base64_bytes {
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

/// A record that is in the store but could not be read (it failed to decrypt or to parse).
/// The others still load; the record stays until it is removed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Unreadable {
    /// "preferences", "events", "valueHeads" or "profile".
    pub kind: &'static str,
    pub id: String,
    pub error: Error,
}

/// The records of one kind as read in one go, with the store's revision at that moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded<T> {
    pub revision: u64,
    pub items: Vec<T>,
    pub unreadable: Vec<Unreadable>,
}

/// One change in an atomic [`Store::write`].
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    PutPreference(Preference),
    DeletePreference(String),
    /// Adds an event; fails if one with the same id is there.
    AddEvent(FeedbackEvent),
    PutProfile(Profile),
    PutValueHead(ValueHead),
    DeleteValueHead(String),
}

/// Where a memory is kept. Each method is one atomic step; every write raises the revision.
#[allow(async_fn_in_trait)]
pub trait Store {
    async fn preferences(&self) -> Result<Loaded<Preference>>;
    async fn events(&self) -> Result<Loaded<FeedbackEvent>>;
    /// `None` when none was saved; a profile that cannot be read is an error.
    async fn profile(&self) -> Result<Option<Profile>>;
    async fn value_heads(&self) -> Result<Loaded<ValueHead>>;
    /// Applies `writes` all together or not at all. With `expect_revision`, only if nothing was
    /// written since that revision was read: `Ok(false)` (and nothing written) otherwise.
    async fn write(&self, writes: &[Write], expect_revision: Option<u64>) -> Result<bool>;
    /// Replaces everything with `contents` in one atomic step.
    async fn replace(&self, contents: &Contents) -> Result<()>;
    /// Deletes the store and everything in it; the store is closed afterwards.
    async fn destroy(&self) -> Result<()>;
}

/// A change the person makes to a preference (`None`: unchanged).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreferenceChange {
    pub text: Option<String>,
    pub weight: Option<f64>,
    pub enabled: Option<bool>,
    /// Forget what feedback learned for this preference.
    #[serde(default)]
    pub reset_learned: bool,
}

/// Feedback as the page or the command line gives it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FeedbackInput {
    pub kind: FeedbackKind,
    pub prompt: String,
    pub responses: Vec<Response>,
}

/// What one piece of feedback did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedbackOutcome {
    pub event: FeedbackEvent,
    pub changes: Vec<WeightChange>,
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

fn check_weight(weight: f64, what: &str) -> Result<()> {
    if !(weight.is_finite() && (0.0..=MAX_WEIGHT).contains(&weight)) {
        crate::bail!(InvalidArgument, "{what} must be within [0, {MAX_WEIGHT}], got {weight}");
    }
    Ok(())
}

/// One person's memory over a [`Store`].
pub struct Memory<S: Store> {
    store: S,
}

impl<S: Store> Memory<S> {
    pub fn new(store: S) -> Self {
        Memory { store }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Every preference, the harmlessness principle first (as it is until changed), then in
    /// the order they were made; records that could not be read are listed apart.
    pub async fn preferences(&self) -> Result<Loaded<Preference>> {
        let mut loaded = self.store.preferences().await?;
        if !loaded.items.iter().any(|p| p.is_universal()) {
            loaded.items.push(Preference::harmless(0));
        }
        loaded.items.sort_by(|a, b| {
            b.is_universal().cmp(&a.is_universal()).then(a.created.cmp(&b.created)).then(a.id.cmp(&b.id))
        });
        Ok(loaded)
    }

    /// Reads the preferences, lets `change` decide what to write, and writes it only if no one
    /// else wrote in between (else reads again and retries).
    async fn modify<T>(&self, mut change: impl FnMut(Loaded<Preference>) -> Result<(Vec<Write>, T)>) -> Result<T> {
        for _ in 0..MAX_ATTEMPTS {
            let loaded = self.preferences().await?;
            let revision = loaded.revision;
            let (writes, out) = change(loaded)?;
            if writes.is_empty() || self.store.write(&writes, Some(revision)).await? {
                return Ok(out);
            }
        }
        crate::bail!(Storage, "gave up after {MAX_ATTEMPTS} attempts: other writers kept changing the memory")
    }

    /// Adds a preference (screened first: text that asks to switch safety off is refused).
    pub async fn add(&self, text: &str, weight: Option<f64>, source: Source) -> Result<Preference> {
        let now = now_millis();
        let p = Preference {
            id: new_id()?,
            text: text.trim().to_string(),
            weight: weight.unwrap_or(DEFAULT_WEIGHT),
            learned: 0.0,
            enabled: true,
            source,
            created: now,
            updated: now,
        };
        p.validate()?;
        self.store.write(&[Write::PutPreference(p.clone())], None).await?;
        Ok(p)
    }

    /// Changes a preference's text, weight or enabled state.
    pub async fn update(&self, id: &str, change: &PreferenceChange) -> Result<Preference> {
        check_id(id)?;
        self.modify(|loaded| {
            let Some(mut p) = loaded.items.into_iter().find(|p| p.id == id) else {
                return Err(not_found(id, &loaded.unreadable));
            };
            if let Some(text) = &change.text {
                p.text = text.trim().to_string();
            }
            if let Some(weight) = change.weight {
                check_weight(weight, "weight")?;
                p.weight = weight;
            }
            if let Some(enabled) = change.enabled {
                p.enabled = enabled;
            }
            if change.reset_learned {
                p.learned = 0.0;
            }
            p.updated = now_millis();
            p.validate()?;
            Ok((vec![Write::PutPreference(p.clone())], p))
        })
        .await
    }

    /// Removes a preference (also one that could not be read). The harmlessness principle stays.
    pub async fn remove(&self, id: &str) -> Result<()> {
        check_id(id)?;
        if id == HARMLESS_ID {
            crate::bail!(UnsafePreference, "the harmlessness principle cannot be removed");
        }
        let loaded = self.store.preferences().await?;
        if !loaded.items.iter().any(|p| p.id == id) && !loaded.unreadable.iter().any(|u| u.id == id) {
            return Err(not_found(id, &[]));
        }
        self.store.write(&[Write::DeletePreference(id.to_string())], None).await?;
        Ok(())
    }

    pub async fn profile(&self) -> Result<Profile> {
        Ok(self.store.profile().await?.unwrap_or_default())
    }

    pub async fn set_profile(&self, profile: &Profile) -> Result<()> {
        profile.validate()?;
        self.store.write(&[Write::PutProfile(profile.clone())], None).await?;
        Ok(())
    }

    /// The feedback log in replay order (see [`FeedbackEvent::seq`]).
    pub async fn events(&self) -> Result<Loaded<FeedbackEvent>> {
        let mut loaded = self.store.events().await?;
        loaded.items.sort_by(feedback::replay_order);
        Ok(loaded)
    }

    /// Logs a piece of feedback and updates the weights of the preferences it rewards, in one
    /// atomic write (retried if another tab wrote in between, so no event and no update is lost).
    pub async fn feedback(&self, input: FeedbackInput) -> Result<FeedbackOutcome> {
        let mut event = FeedbackEvent {
            id: new_id()?,
            time: now_millis(),
            seq: 0,
            prompt: input.prompt,
            kind: input.kind,
            responses: input.responses,
        };
        event.validate()?;
        self.modify(|loaded| {
            event.seq = loaded.revision;
            let mut prefs = loaded.items;
            let changes = feedback::apply(&mut prefs, &event);
            let now = now_millis();
            let mut writes = vec![Write::AddEvent(event.clone())];
            for c in &changes {
                if let Some(p) = prefs.iter_mut().find(|p| p.id == c.id) {
                    p.updated = now;
                    writes.push(Write::PutPreference(p.clone()));
                }
            }
            Ok((writes, FeedbackOutcome { event: event.clone(), changes }))
        })
        .await
    }

    /// Recomputes every learned weight by replaying the whole feedback log; returns the
    /// effective weights that changed (none when the stored weights were up to date).
    pub async fn rebuild(&self) -> Result<Vec<WeightChange>> {
        let events = self.events().await?.items;
        self.modify(|loaded| {
            let before = loaded.items.clone();
            let mut prefs = loaded.items;
            let changes = feedback::replay(&mut prefs, &events);
            let writes = prefs
                .iter()
                .zip(&before)
                .filter(|(p, b)| p.learned != b.learned)
                .map(|(p, _)| Write::PutPreference(p.clone()))
                .collect();
            Ok((writes, changes))
        })
        .await
    }

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

    pub async fn value_heads(&self) -> Result<Loaded<ValueHead>> {
        self.store.value_heads().await
    }

    pub async fn put_value_head(&self, head: ValueHead) -> Result<()> {
        head.validate()?;
        self.store.write(&[Write::PutValueHead(head)], None).await?;
        Ok(())
    }

    pub async fn remove_value_head(&self, name: &str) -> Result<()> {
        check_id(name)?;
        self.store.write(&[Write::DeleteValueHead(name.to_string())], None).await?;
        Ok(())
    }

    /// Everything in this memory. Fails with `DECRYPT_FAILED` if a record cannot be read,
    /// unless `skip_unreadable` (then those records are left out).
    pub async fn contents(&self, skip_unreadable: bool) -> Result<Contents> {
        let profile = self.profile().await?;
        let prefs = self.preferences().await?;
        let events = self.events().await?;
        let heads = self.value_heads().await?;
        let unreadable: Vec<&Unreadable> =
            prefs.unreadable.iter().chain(&events.unreadable).chain(&heads.unreadable).collect();
        if let Some(u) = unreadable.first().filter(|_| !skip_unreadable) {
            crate::bail!(
                DecryptFailed,
                "{} record(s) cannot be read (first: {} {:?}: {}); export with skipUnreadable to leave them out",
                unreadable.len(),
                u.kind,
                u.id,
                u.error.message
            );
        }
        Ok(Contents { profile, preferences: prefs.items, events: events.items, value_heads: heads.items })
    }

    /// The memory as an export file (JSON), sealed with `passphrase` if one is given.
    pub async fn export(&self, passphrase: Option<&str>, skip_unreadable: bool) -> Result<String> {
        let contents = self.contents(skip_unreadable).await?;
        export::export(&contents, passphrase).await
    }

    /// Replaces the whole memory with an export's contents. The file is checked completely
    /// first; if anything is wrong, nothing changes.
    pub async fn import(&self, text: &str, passphrase: Option<&str>) -> Result<Contents> {
        let contents = export::import(text, passphrase).await?;
        self.store.replace(&contents).await?;
        Ok(contents)
    }

    /// Deletes everything, the store itself included.
    pub async fn forget(&self) -> Result<()> {
        self.store.destroy().await
    }
}

fn not_found(id: &str, unreadable: &[Unreadable]) -> Error {
    if unreadable.iter().any(|u| u.id == id) {
        Error::new(ErrorCode::DecryptFailed, format!("preference {id:?} cannot be read; it can only be removed"))
    } else {
        Error::new(ErrorCode::NotFound, format!("no preference with the id {id:?}"))
    }
}
