//! The sealed manifest: the revision at which each overwritable record was last written, so
//! that an older ciphertext of a record, put back from outside padlock, is told apart from
//! the current one (each record's revision is also in its associated data, so it cannot be
//! edited without failing to decrypt).
//!
//! The manifest lives in `meta` under "manifest" as a record sealed like the others, its
//! associated data naming the store revision it was written at; it is rewritten in the same
//! transaction as every record it lists. Feedback events are not in it: they are only ever
//! added, so there is no older copy of one to put back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;

use super::{get, idb_error, IdbStore, Sealed, HEADS, META, PREFERENCES, PROFILE};
use crate::error::{Error, ErrorCode, Result};

/// The key of the manifest in `meta`.
pub(super) const MANIFEST: &str = "manifest";
/// The stores whose records are overwritten in place, so listed in the manifest.
pub(super) const LISTED: [&str; 3] = [PREFERENCES, PROFILE, HEADS];

/// `"<store>/<id>"` → the store revision at which that record was last written.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Manifest {
    revisions: BTreeMap<String, u64>,
}

impl Manifest {
    pub fn set(&mut self, store: &str, id: &str, revision: u64) {
        self.revisions.insert(format!("{store}/{id}"), revision);
    }

    pub fn remove(&mut self, store: &str, id: &str) {
        self.revisions.remove(&format!("{store}/{id}"));
    }

    /// Why the record `id` of `store`, sealed at `revision`, is not the current one (`None`
    /// when it is).
    pub fn check(&self, store: &str, id: &str, revision: Option<u64>) -> Option<Error> {
        let listed = self.revisions.get(&format!("{store}/{id}")).copied();
        if listed.is_some() && listed == revision {
            return None;
        }
        let what = format!("{store} record {id:?}");
        Some(Error::new(
            ErrorCode::DecryptFailed,
            match (listed, revision) {
                (Some(current), Some(old)) => format!(
                    "{what} is an older copy (written at revision {old}, the current one at {current}): it was put \
                     back from outside padlock"
                ),
                (Some(_), None) => format!("{what} is in an older format: it was put back from outside padlock"),
                (None, _) => format!("{what} is not in the memory's manifest: it was put back from outside padlock"),
            },
        ))
    }

    /// The ids of `store` the manifest lists.
    pub fn ids<'a>(&'a self, store: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.revisions.keys().filter_map(move |k| k.strip_prefix(store)?.strip_prefix('/'))
    }
}

/// What `meta` holds about the store as a whole, read in one transaction.
pub(super) struct State {
    pub revision: u64,
    /// The sealed manifest as stored, if there is one.
    pub manifest: Option<JsValue>,
    /// Records from before schema v3 wait to be re-sealed (an upgrade set the flag).
    pub resealing: bool,
}

/// The flags an upgrade leaves in `meta` until the records are re-sealed ("reseal-v1" from
/// builds that only knew the v1 upgrade).
pub(super) const RESEAL_FLAGS: [&str; 2] = ["reseal", "reseal-v1"];

pub(super) async fn read_state(tx: &idb::Transaction) -> Result<State> {
    let meta = tx.object_store(META).map_err(|e| idb_error("store", e))?;
    let revision =
        read(&meta, super::REVISION).await?.map(|v| get(&v, "value").as_f64().unwrap_or(0.0) as u64).unwrap_or(0);
    let manifest = read(&meta, MANIFEST).await?;
    let mut resealing = false;
    for flag in RESEAL_FLAGS {
        resealing |= read(&meta, flag).await?.is_some();
    }
    Ok(State { revision, manifest, resealing })
}

async fn read(meta: &idb::ObjectStore, key: &str) -> Result<Option<JsValue>> {
    meta.get(JsValue::from_str(key)).map_err(|e| idb_error("read", e))?.await.map_err(|e| idb_error("read", e))
}

impl IdbStore {
    /// The manifest as stored (empty when there is none yet: a new memory).
    pub(super) async fn open_manifest(&self, stored: Option<&JsValue>) -> Result<Manifest> {
        let Some(stored) = stored else { return Ok(Manifest::default()) };
        let unreadable = |e: &dyn std::fmt::Display| {
            Error::new(
                ErrorCode::DecryptFailed,
                format!("the memory's manifest cannot be read ({e}): it was changed from outside padlock"),
            )
        };
        let sealed = Sealed::from_js(stored, None).map_err(|(_, e)| unreadable(&e))?;
        let plain = self.open_record(META, &sealed).await.map_err(|e| unreadable(&e))?;
        serde_json::from_slice(&plain).map_err(|e| unreadable(&e))
    }

    /// The manifest sealed at store revision `revision`.
    pub(super) async fn seal_manifest(&self, manifest: &Manifest, revision: u64) -> Result<JsValue> {
        self.seal_json(META, MANIFEST, revision, manifest).await
    }
}
