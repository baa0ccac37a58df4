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
//!
//! The records and their checks are in `records.rs`, the store interface in `store.rs`, how
//! feedback moves weights in [`feedback`], and memory-steered generation in `personalize.rs`.

mod cues;
pub mod export;
pub mod feedback;
mod personalize;
mod records;
mod relate;
pub mod relevance;
pub mod schema;
mod store;
mod suggest;

#[cfg(not(target_arch = "wasm32"))]
pub mod file;
#[cfg(target_arch = "wasm32")]
pub mod idb;
#[cfg(target_arch = "wasm32")]
pub(crate) mod webcrypto;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorCode, Result};
use feedback::WeightChange;
pub use personalize::{select, Personalized, Selection};
use records::check_weight;
pub use records::{
    check_id, new_id, now_millis, random_bytes, Contents, FeedbackEvent, FeedbackKind, Preference, Profile, Response,
    Reward, Source, ValueHead, DEFAULT_WEIGHT, HARMLESS_ID, MAX_ACTIVE_LIMIT, MAX_FEEDBACK_CHARS, MAX_IMPORTED_EVENTS,
    MAX_PREFERENCE_CHARS, MAX_STORED_PREFERENCES, MAX_VALUE_HEADS, MAX_VALUE_HEAD_BYTES, MAX_WEIGHT,
};
pub use relate::{related, Related, Relation};
pub use relevance::{relevance, PreferenceUse};
pub use store::{Loaded, Store, Unreadable, Write};
pub use suggest::{suggest, Suggestion};

/// How many times a read-modify-write is retried when another writer got there first.
const MAX_ATTEMPTS: usize = 64;

/// A change the person makes to a preference (`None`: unchanged).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
pub struct PreferenceChange {
    pub text: Option<String>,
    pub weight: Option<f64>,
    pub enabled: Option<bool>,
    /// Steer every answer (`true`) or only those it is relevant to (`false`).
    pub always: Option<bool>,
    /// Forget what feedback learned for this preference.
    #[serde(default)]
    pub reset_learned: bool,
}

/// Feedback as the page or the command line gives it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
pub struct FeedbackInput {
    pub kind: FeedbackKind,
    pub prompt: String,
    pub responses: Vec<Response>,
}

/// What one piece of feedback did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
pub struct FeedbackOutcome {
    pub event: FeedbackEvent,
    pub changes: Vec<WeightChange>,
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
    /// Its `created` time is later than every stored one's, so that the list keeps the order
    /// preferences were made in even when two come within one millisecond.
    pub async fn add(&self, text: &str, weight: Option<f64>, source: Source) -> Result<Preference> {
        let id = new_id()?;
        self.modify(|loaded| {
            if loaded.items.iter().filter(|p| !p.is_universal()).count() >= MAX_STORED_PREFERENCES {
                crate::bail!(InvalidArgument, "the memory holds {MAX_STORED_PREFERENCES} preferences, its most");
            }
            let last = loaded.items.iter().filter(|p| !p.is_universal()).map(|p| p.created).max();
            let now = now_millis().max(last.map_or(0, |t| t + 1));
            let p = Preference {
                id: id.clone(),
                text: text.trim().to_string(),
                weight: weight.unwrap_or(DEFAULT_WEIGHT),
                learned: 0.0,
                learned_since: 0,
                merged: Vec::new(),
                always: false,
                enabled: true,
                source,
                created: now,
                updated: now,
            };
            p.validate()?;
            screen_beside_others(&p, &loaded.items)?;
            Ok((vec![Write::PutPreference(p.clone())], p))
        })
        .await
    }

    /// Changes a preference's text, weight, enabled state or whether it steers every answer.
    pub async fn update(&self, id: &str, change: &PreferenceChange) -> Result<Preference> {
        check_id(id)?;
        self.modify(|loaded| {
            let Some(mut p) = loaded.items.iter().find(|p| p.id == id).cloned() else {
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
            if let Some(always) = change.always {
                p.always = always;
            }
            if change.reset_learned {
                p.learned = 0.0;
                // This write raises the revision by one; feedback computed before it is past.
                p.learned_since = loaded.revision + 1;
            }
            p.updated = now_millis();
            p.validate()?;
            screen_beside_others(&p, &loaded.items)?;
            Ok((vec![Write::PutPreference(p.clone())], p))
        })
        .await
    }

    /// Merges the preference `other` into `keep`: `keep` stays with its text and weight, `other`
    /// goes, and the feedback given to either counts for `keep`: the log is replayed over the
    /// merged preferences in the same write, so `rebuild` afterwards changes nothing.
    pub async fn merge(&self, keep: &str, other: &str) -> Result<Preference> {
        check_id(keep)?;
        check_id(other)?;
        if keep == other || keep == HARMLESS_ID || other == HARMLESS_ID {
            crate::bail!(InvalidArgument, "merge two different preferences of your own, not {keep:?} and {other:?}");
        }
        let events = self.events().await?.items;
        self.modify(|loaded| {
            let mut prefs = loaded.items.clone();
            let o = prefs.iter().position(|p| p.id == other).ok_or_else(|| not_found(other, &loaded.unreadable))?;
            let absorbed = prefs.remove(o);
            let k = prefs.iter().position(|p| p.id == keep).ok_or_else(|| not_found(keep, &loaded.unreadable))?;
            prefs[k].merged.push(absorbed.id.clone());
            prefs[k].merged.extend(absorbed.merged.iter().cloned());
            prefs[k].updated = now_millis();
            prefs[k].validate()?;
            // The log replayed over the merged preferences: the kept one's learned weight, and
            // any other that reads the same events differently now (as `rebuild` would write).
            let before = prefs.clone();
            feedback::replay(&mut prefs, &events);
            let mut writes: Vec<Write> = prefs
                .iter()
                .zip(&before)
                .filter(|(p, b)| p.id == keep || p.learned != b.learned)
                .map(|(p, _)| Write::PutPreference(p.clone()))
                .collect();
            writes.push(Write::DeletePreference(absorbed.id));
            Ok((writes, prefs[k].clone()))
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

/// The screen over `p` beside the other enabled preferences: a phrase split across two of them
/// is refused like one in a single text (an enabled preference steers together with the rest).
fn screen_beside_others(p: &Preference, all: &[Preference]) -> Result<()> {
    if !p.enabled {
        return Ok(());
    }
    let others: Vec<&str> =
        all.iter().filter(|o| o.enabled && o.id != p.id && !o.is_universal()).map(|o| o.text.as_str()).collect();
    crate::align::screen::screen_alongside(&p.text, &others)
}

fn not_found(id: &str, unreadable: &[Unreadable]) -> Error {
    if unreadable.iter().any(|u| u.id == id) {
        Error::new(ErrorCode::DecryptFailed, format!("preference {id:?} cannot be read; it can only be removed"))
    } else {
        Error::new(ErrorCode::NotFound, format!("no preference with the id {id:?}"))
    }
}
