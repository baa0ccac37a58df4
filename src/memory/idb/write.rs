//! Writing: every write is sealed at the next revision with the manifest after it, and lands
//! in one transaction only if no other tab wrote in between (else it is sealed again); the
//! re-seal after an upgrade is such a write.

use idb::{Query, TransactionMode};
use js_sys::Object;
use wasm_bindgen::JsValue;

use super::manifest::{read_state, Manifest, RESEAL_FLAGS};
use super::{
    decode_profile, idb_error, set, IdbStore, ValueHead, DATA_STORES, EVENTS, HEADS, META, PREFERENCES, PROFILE,
    REVISION,
};
use crate::error::Result;
use crate::memory::Store;

/// How often a write is sealed again because another tab wrote first.
const WRITE_ATTEMPTS: usize = 8;

impl IdbStore {
    /// After an upgrade: re-seal every record in the current format at the next revision,
    /// with the manifest and without the flag, in one transaction. Until then (or if this
    /// fails) the older records still read.
    pub(super) async fn reseal(&self) -> Result<()> {
        let prefs = self.preferences().await?.items;
        let events = self.events().await?.items;
        let profile = self.load(PROFILE, decode_profile).await?.items;
        let heads = self.value_heads().await?.items;
        let flags = RESEAL_FLAGS.iter().map(|f| (META, f.to_string())).collect::<Vec<_>>();
        let (prefs, events, profile, heads, flags) = (&prefs, &events, &profile, &heads, &flags);
        self.write_sealed("re-sealing the records of an older padlock", None, false, |rev, _| async move {
            let mut manifest = Manifest::default();
            let mut puts = Vec::new();
            for p in prefs {
                puts.push(self.put_listed(&mut manifest, PREFERENCES, &p.id, rev, p).await?);
            }
            for e in events {
                puts.push((EVENTS, self.seal_json(EVENTS, &e.id, rev, e).await?, false));
            }
            for p in profile {
                puts.push(self.put_listed(&mut manifest, PROFILE, PROFILE, rev, p).await?);
            }
            for h in heads {
                puts.push(self.put_head(&mut manifest, h, rev).await?);
            }
            Ok(Planned { puts, deletes: flags.clone(), manifest })
        })
        .await
        .map(|_| ())
    }

    /// Whether an upgrade left records to re-seal (its flag in `meta`).
    pub(super) async fn needs_reseal(&self) -> Result<bool> {
        let (tx, _raw) = self.transaction(&[META], TransactionMode::ReadOnly)?;
        Ok(read_state(&tx).await?.resealing)
    }

    /// `value` sealed as record `id` of `store` at `rev`, and listed so in `manifest`.
    pub(super) async fn put_listed<T: serde::Serialize>(
        &self,
        manifest: &mut Manifest,
        store: &'static str,
        id: &str,
        rev: u64,
        value: &T,
    ) -> Result<Put> {
        manifest.set(store, id, rev);
        Ok((store, self.seal_json(store, id, rev, value).await?, false))
    }

    pub(super) async fn put_head(&self, manifest: &mut Manifest, head: &ValueHead, rev: u64) -> Result<Put> {
        manifest.set(HEADS, &head.name, rev);
        Ok((HEADS, self.seal(HEADS, &head.name, rev, &head.bytes).await?, false))
    }

    /// Seals what `plan` makes for the next revision (given the manifest as stored, read with
    /// the revision) and writes it in one transaction, sealing
    /// again while another tab writes in between. With `expect_revision`, only from that
    /// revision: `Ok(false)` (nothing written) otherwise. `clear` empties the data stores first.
    pub(super) async fn write_sealed<F, Fut>(
        &self,
        what: &str,
        expect_revision: Option<u64>,
        clear: bool,
        plan: F,
    ) -> Result<bool>
    where
        F: Fn(u64, Option<JsValue>) -> Fut,
        Fut: std::future::Future<Output = Result<Planned>>,
    {
        for _ in 0..WRITE_ATTEMPTS {
            let state = {
                let (tx, _raw) = self.transaction(&[META], TransactionMode::ReadOnly)?;
                read_state(&tx).await?
            };
            let revision = state.revision;
            if expect_revision.is_some_and(|r| r != revision) {
                return Ok(false);
            }
            let planned = plan(revision + 1, state.manifest).await?;
            let manifest = self.seal_manifest(&planned.manifest, revision + 1).await?;
            let (tx, raw) = self.transaction(&DATA_STORES, TransactionMode::ReadWrite)?;
            if read_state(&tx).await?.revision != revision {
                let _ = tx.abort();
                if expect_revision.is_some() {
                    return Ok(false);
                }
                continue;
            }
            if let Err(e) = self.apply(&tx, clear, &planned, &manifest, revision + 1).await {
                let _ = idb::Transaction::from(raw.clone()).abort();
                // The abort's reason (e.g. the quota) says more than the failed request.
                return Err(Self::commit(tx, raw, what).await.err().unwrap_or(e));
            }
            Self::commit(tx, raw, what).await?;
            return Ok(true);
        }
        crate::bail!(Busy, "{what}: other tabs kept writing to this memory; nothing was written, try again")
    }
}

/// A sealed record to put: its store, the record, and whether it must be new.
pub(super) type Put = (&'static str, JsValue, bool);

/// What one write puts and deletes, and the manifest after it.
pub(super) struct Planned {
    pub puts: Vec<Put>,
    pub deletes: Vec<(&'static str, String)>,
    pub manifest: Manifest,
}

impl IdbStore {
    /// Issues the puts and deletes (after emptying the data stores if `clear`), the sealed
    /// manifest and the new revision inside `tx`.
    async fn apply(
        &self,
        tx: &idb::Transaction,
        clear: bool,
        planned: &Planned,
        manifest: &JsValue,
        revision: u64,
    ) -> Result<()> {
        let store = |name: &str| tx.object_store(name).map_err(|e| idb_error("store", e));
        if clear {
            for name in [PREFERENCES, EVENTS, PROFILE, HEADS] {
                store(name)?.clear().map_err(|e| idb_error("clear", e))?.await.map_err(|e| idb_error("clear", e))?;
            }
        }
        for (name, value, add_only) in &planned.puts {
            let s = store(name)?;
            if *add_only {
                s.add(value, None).map_err(|e| idb_error("write", e))?.await.map_err(|e| idb_error("write", e))?;
            } else {
                s.put(value, None).map_err(|e| idb_error("write", e))?.await.map_err(|e| idb_error("write", e))?;
            }
        }
        for (name, id) in &planned.deletes {
            let query = Query::Key(JsValue::from_str(id));
            store(name)?
                .delete(query)
                .map_err(|e| idb_error("delete", e))?
                .await
                .map_err(|e| idb_error("delete", e))?;
        }
        let meta = store(META)?;
        meta.put(manifest, None).map_err(|e| idb_error("write", e))?.await.map_err(|e| idb_error("write", e))?;
        let record = Object::new();
        set(&record, "id", &REVISION.into())?;
        set(&record, "value", &JsValue::from(revision as f64))?;
        meta.put(&record, None).map_err(|e| idb_error("write", e))?.await.map_err(|e| idb_error("write", e))?;
        Ok(())
    }
}
