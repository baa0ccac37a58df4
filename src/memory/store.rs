//! Where a memory is kept: the [`Store`] trait both stores implement, and what it reads and writes.

use serde::Serialize;

use super::{Contents, FeedbackEvent, Preference, Profile, ValueHead};
use crate::error::{Error, Result};

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
