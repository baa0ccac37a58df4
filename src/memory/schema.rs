//! Schema versions of the stores and how older ones are brought forward.
//!
//! Version 1 (the first release of preference memory) kept only preferences as
//! `{id, text, weight}` and thumbs feedback as `{time, prompt, response, liked}`:
//! - IndexedDB v1: object stores `keys` (the CryptoKey under "records"), `preferences`
//!   (key path `id`, records `{id, iv, data}`) and `feedback` (auto-increment keys, records
//!   `{iv, data}`); `data` is AES-GCM over the JSON payload, *without* associated data;
//! - native v1: one `memory.json`, `{"version": 1, "preferences": [...], "feedback": [...]}`.
//!
//! Version 2 (this one) adds enabled/source/timestamps/learned weights, feedback events of
//! every kind with their rewards, the profile, value heads and a revision counter; in
//! IndexedDB each record's ciphertext is bound to its store and id (AES-GCM associated
//! data), so records cannot be swapped or moved without failing to decrypt.
//!
//! Migration 1 → 2 keeps everything: a v1 preference becomes an explicit, enabled
//! preference with nothing learned; a v1 feedback entry becomes a thumbs-up/down event with
//! id `v1-<n>` and no rewards (v1 recorded none, so it does not move weights on replay).

use serde::{Deserialize, Serialize};

use super::{FeedbackEvent, FeedbackKind, Preference, Response, Source};

/// The schema version this build writes.
pub const CURRENT_VERSION: u32 = 2;

/// A v1 preference payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreferenceV1 {
    pub id: String,
    pub text: String,
    pub weight: f64,
}

/// A v1 feedback payload (thumbs only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackV1 {
    pub time: u64,
    pub prompt: String,
    pub response: String,
    pub liked: bool,
}

impl PreferenceV1 {
    /// The v2 preference, created and updated `now` (v1 kept no timestamps).
    pub fn migrate(self, now: u64) -> Preference {
        Preference {
            id: self.id,
            text: self.text,
            weight: self.weight,
            learned: 0.0,
            learned_since: 0,
            merged: Vec::new(),
            always: false,
            enabled: true,
            source: Source::Explicit,
            created: now,
            updated: now,
        }
    }
}

impl FeedbackV1 {
    /// The v2 event; `key` is the v1 record's auto-increment key.
    pub fn migrate(self, key: u64) -> FeedbackEvent {
        FeedbackEvent {
            id: v1_event_id(key),
            time: self.time,
            seq: 0,
            prompt: self.prompt,
            kind: if self.liked { FeedbackKind::ThumbsUp } else { FeedbackKind::ThumbsDown },
            responses: vec![Response { text: self.response, tokens: 0, rewards: Vec::new(), stop: Vec::new() }],
        }
    }
}

/// The id a migrated v1 feedback entry gets: `v1-` and its key, zero-padded so ids sort by key.
pub fn v1_event_id(key: u64) -> String {
    format!("v1-{key:012}")
}
