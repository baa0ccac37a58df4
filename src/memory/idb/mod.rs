//! The browser store: IndexedDB through the `idb` crate, every record encrypted at rest.
//!
//! Object stores (database version 3; v1 is described in `schema.rs`):
//!
//! | store         | key                | value                                   |
//! |---------------|--------------------|-----------------------------------------|
//! | `keys`        | "records"          | the CryptoKey (AES-256-GCM, non-extractable) |
//! | `preferences` | id                 | `{id, v: 3, rev, iv, data}`             |
//! | `events`      | id                 | `{id, v: 3, rev, iv, data}`             |
//! | `profile`     | "profile"          | `{id, v: 3, rev, iv, data}`             |
//! | `heads`       | name               | `{id, v: 3, rev, iv, data}` (data: the raw bytes) |
//! | `meta`        | "revision"         | `{id, value}`: raised by every write    |
//! | `meta`        | "manifest"         | `{id, v: 3, rev, iv, data}`: see `manifest.rs` |
//! | `meta`        | "reseal"           | `{id, value}`: older records wait to be re-sealed |
//!
//! `data` is AES-GCM over the record's JSON with a fresh random 96-bit IV per write and
//! `padlock/<store>/<id>@<rev>` as associated data (`rev`: the store revision of the write),
//! so a record moved to another id or store, or given another revision, fails to decrypt, and
//! the sealed manifest tells an older copy from the current one. Version 2 records were sealed
//! without `@<rev>`, version 1 records without associated data; an open re-seals them. The
//! key never leaves WebCrypto: IndexedDB keeps the CryptoKey object itself.
//!
//! Encryption is asynchronous and an IndexedDB transaction commits as soon as it has nothing
//! to do, so records are sealed *before* a transaction opens (at the revision read just
//! before) and opened after it ends; the transaction that writes checks that the revision is
//! still that one, and the write is sealed again if another tab wrote in between.
//!
//! Forgetting: the store tells the other tabs on a BroadcastChannel, then deletes the
//! database; every connection also closes itself on `versionchange`, so the deletion is
//! never blocked by another padlock tab.
//!
//! Why `idb` (0.6.5) and not `indexed_db_futures`: `idb` maps IndexedDB one to one — the
//! upgrade callback with the versionchange transaction (which the v1 migration uses), the
//! `versionchange`/`blocked` events, transactions as futures that say committed or aborted,
//! and the DOMException behind an abort (how QUOTA_EXCEEDED is told apart) — and works the
//! same in a window and a worker. `indexed_db_futures` 0.8 is not on the registry mirror these
//! machines use (0.6.4 is its newest there).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use idb::{Database, Factory, TransactionMode, TransactionResult};
use js_sys::{Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{BroadcastChannel, CryptoKey, IdbDatabase, IdbTransaction, MessageEvent};

use super::schema::{FeedbackV1, PreferenceV1};
use super::webcrypto::{self, describe, exception_name};
use super::{
    now_millis, random_bytes, Contents, FeedbackEvent, Loaded, Preference, Profile, Store, Unreadable, ValueHead, Write,
};
use crate::error::{Error, ErrorCode, Result};
use manifest::{read_state, Manifest, LISTED, RESEAL_FLAGS};
use open::{open_unless_blocked, record_key};
use upgrade::upgrade;
use write::Planned;

mod manifest;
mod open;
mod upgrade;
mod write;

/// The IndexedDB database version, which is also the format of the records it writes.
const DB_VERSION: u32 = 3;

const KEYS: &str = "keys";
const PREFERENCES: &str = "preferences";
const EVENTS: &str = "events";
const PROFILE: &str = "profile";
const HEADS: &str = "heads";
const META: &str = "meta";
/// The v1 store of thumbs feedback, moved into `events` by the upgrade to v2.
const FEEDBACK_V1: &str = "feedback";
const RECORD_KEY: &str = "records";
const REVISION: &str = "revision";
/// Set in `meta` by an upgrade, removed once the older records are re-sealed.
const RESEAL: &str = RESEAL_FLAGS[0];
/// Every store a write may touch.
const DATA_STORES: [&str; 5] = [PREFERENCES, EVENTS, PROFILE, HEADS, META];

/// What other tabs are told on the BroadcastChannel before the database is deleted.
pub const FORGET_MESSAGE: &str = "forget";

fn storage_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::Storage, format!("IndexedDB {what}: {e}"))
}

fn idb_error(what: &str, e: idb::Error) -> Error {
    if let idb::Error::DomException(d) = &e {
        return dom_error(what, d.name(), d.message());
    }
    storage_error(what, e)
}

fn dom_error(what: &str, name: String, message: String) -> Error {
    match name.as_str() {
        "QuotaExceededError" => Error::new(
            ErrorCode::QuotaExceeded,
            format!(
                "the browser's storage quota for this site is used up; nothing was written{}",
                if message.is_empty() { String::new() } else { format!(" ({message})") }
            ),
        ),
        "VersionError" => Error::new(
            ErrorCode::SchemaVersion,
            format!("the memory was written by a newer padlock (database version > {DB_VERSION}): {message}"),
        ),
        _ => Error::new(ErrorCode::Storage, format!("IndexedDB {what}: {name}: {message}")),
    }
}

fn js_error(what: &str, e: &JsValue) -> Error {
    let name = exception_name(e);
    if name.is_empty() {
        storage_error(what, describe(e))
    } else {
        let message = Reflect::get(e, &"message".into()).ok().and_then(|m| m.as_string()).unwrap_or_default();
        dom_error(what, name, message)
    }
}

/// `padlock/<store>/<id>@<rev>`: binds a record's ciphertext to where it is stored and to the
/// revision it was written at (v2 records: without `@<rev>`).
fn aad(store: &str, id: &str, rev: Option<u64>) -> Vec<u8> {
    match rev {
        Some(rev) => format!("padlock/{store}/{id}@{rev}").into_bytes(),
        None => format!("padlock/{store}/{id}").into_bytes(),
    }
}

fn get(obj: &JsValue, field: &str) -> JsValue {
    Reflect::get(obj, &field.into()).unwrap_or(JsValue::UNDEFINED)
}

fn set(obj: &Object, field: &str, value: &JsValue) -> Result<()> {
    Reflect::set(obj, &field.into(), value).map(|_| ()).map_err(|e| js_error("building a record", &e))
}

fn bytes(value: &JsValue) -> Option<Vec<u8>> {
    if value.is_instance_of::<js_sys::ArrayBuffer>() || value.is_instance_of::<Uint8Array>() {
        Some(Uint8Array::new(value).to_vec())
    } else {
        None
    }
}

/// A sealed record as IndexedDB keeps it.
struct Sealed {
    id: String,
    version: u32,
    /// The store revision it was written at (v3).
    rev: Option<u64>,
    iv: Vec<u8>,
    data: Vec<u8>,
}

impl Sealed {
    fn from_js(value: &JsValue, key: Option<&JsValue>) -> std::result::Result<Sealed, (String, Error)> {
        let id = get(value, "id").as_string().or_else(|| key.and_then(|k| k.as_string())).unwrap_or_default();
        let bad = |m: &str| (id.clone(), Error::new(ErrorCode::DecryptFailed, format!("record {id:?}: {m}")));
        let version = get(value, "v").as_f64().map_or(1, |v| v as u32);
        let iv = bytes(&get(value, "iv")).ok_or_else(|| bad("no IV"))?;
        let data = bytes(&get(value, "data")).ok_or_else(|| bad("no data"))?;
        if iv.len() != 12 {
            return Err(bad("the IV is not 12 bytes"));
        }
        let rev = get(value, "rev").as_f64().map(|r| r as u64);
        if version >= 3 && rev.is_none() {
            return Err(bad("no revision"));
        }
        Ok(Sealed { id, version, rev, iv, data })
    }

    fn to_js(&self) -> Result<JsValue> {
        let obj = Object::new();
        set(&obj, "id", &self.id.as_str().into())?;
        set(&obj, "v", &JsValue::from(self.version))?;
        if let Some(rev) = self.rev {
            set(&obj, "rev", &JsValue::from(rev as f64))?;
        }
        set(&obj, "iv", &Uint8Array::from(self.iv.as_slice()).into())?;
        set(&obj, "data", &Uint8Array::from(self.data.as_slice()).buffer().into())?;
        Ok(obj.into())
    }
}

/// A connection to one memory database in this tab.
pub struct IdbStore {
    name: String,
    db: Database,
    raw: IdbDatabase,
    key: CryptoKey,
    closed: Rc<Cell<bool>>,
    channel: Option<BroadcastChannel>,
    _on_message: Option<Closure<dyn FnMut(MessageEvent)>>,
}

impl Drop for IdbStore {
    fn drop(&mut self) {
        if let Some(c) = &self.channel {
            c.set_onmessage(None);
            c.close();
        }
        self.raw.close();
    }
}

impl IdbStore {
    /// Opens (creating, or upgrading from v1) the memory database `name`. `on_closed` is
    /// called once if another tab forgets the memory (this connection then closes).
    pub async fn open(name: &str, on_closed: Option<Box<dyn Fn()>>) -> Result<IdbStore> {
        let factory = Factory::new().map_err(|e| idb_error("is not available", e))?;
        let mut request = factory.open(name, Some(DB_VERSION)).map_err(|e| idb_error("open", e))?;
        let upgraded_from = Rc::new(Cell::new(None::<u32>));
        let upgrade_error = Rc::new(RefCell::new(None::<Error>));
        {
            let (upgraded_from, upgrade_error) = (upgraded_from.clone(), upgrade_error.clone());
            request.on_upgrade_needed(move |event| {
                let old = event.old_version().unwrap_or(0);
                upgraded_from.set(Some(old));
                if let Err(e) = upgrade(&event, old) {
                    *upgrade_error.borrow_mut() = Some(e);
                }
            });
        }
        let opened = match open_unless_blocked(request).await {
            Some(opened) => opened,
            None => crate::bail!(
                StorageBlocked,
                "another tab keeps this memory open with an older padlock: close or reload that tab, then try again"
            ),
        };
        if let Some(e) = upgrade_error.borrow_mut().take() {
            return Err(e);
        }
        // Keep the raw connection too, to close it from event handlers.
        let raw: IdbDatabase = opened.map_err(|e| idb_error("open", e))?.into();
        let mut db = Database::from(raw.clone());
        let closed = Rc::new(Cell::new(false));
        let on_closed: Rc<dyn Fn()> = Rc::from(on_closed.unwrap_or_else(|| Box::new(|| {})));
        {
            // Another tab deletes (or upgrades) the database: close at once, never block it.
            let (raw, closed, on_closed) = (raw.clone(), closed.clone(), on_closed.clone());
            db.on_version_change(move |_| {
                raw.close();
                if !closed.replace(true) {
                    on_closed();
                }
            });
        }
        let (channel, on_message) = match BroadcastChannel::new(&channel_name(name)) {
            Ok(channel) => {
                let (raw, closed) = (raw.clone(), closed.clone());
                let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |m: MessageEvent| {
                    if m.data().as_string().as_deref() == Some(FORGET_MESSAGE) {
                        raw.close();
                        if !closed.replace(true) {
                            on_closed();
                        }
                    }
                });
                channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
                (Some(channel), Some(on_message))
            }
            Err(_) => (None, None),
        };
        let key = record_key(&db).await?;
        let store = IdbStore { name: name.to_string(), db, raw, key, closed, channel, _on_message: on_message };
        // Also when the upgrade happened in a session that ended before re-sealing.
        if store.needs_reseal().await? {
            store.reseal().await?;
        }
        Ok(store)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// True once this connection was closed (the memory was forgotten here or in another tab).
    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.get() {
            crate::bail!(StorageClosed, "the memory was closed (forgotten in this or another tab); open it again");
        }
        Ok(())
    }

    fn transaction(&self, stores: &[&str], mode: TransactionMode) -> Result<(idb::Transaction, IdbTransaction)> {
        self.check_open()?;
        let tx = self.db.transaction(stores, mode).map_err(|e| idb_error("transaction", e))?;
        let raw: IdbTransaction = JsValue::from(tx).unchecked_into();
        Ok((idb::Transaction::from(raw.clone()), raw))
    }

    /// Waits for a read-write transaction to commit; an abort reports why (e.g. the quota).
    async fn commit(tx: idb::Transaction, raw: IdbTransaction, what: &str) -> Result<()> {
        match tx.await {
            Ok(TransactionResult::Committed) => Ok(()),
            Ok(TransactionResult::Aborted) | Err(_) => match raw.error() {
                Some(e) => Err(dom_error(what, e.name(), e.message())),
                None => Err(storage_error(what, "the transaction was aborted")),
            },
        }
    }

    /// `plain` sealed as record `id` of `store`, written at store revision `rev`.
    async fn seal(&self, store: &str, id: &str, rev: u64, plain: &[u8]) -> Result<JsValue> {
        let iv = random_bytes::<12>()?;
        let data = webcrypto::encrypt(&self.key, &iv, Some(&aad(store, id, Some(rev))), plain).await?;
        Sealed { id: id.to_string(), version: DB_VERSION, rev: Some(rev), iv: iv.to_vec(), data }.to_js()
    }

    async fn seal_json<T: serde::Serialize>(&self, store: &str, id: &str, rev: u64, value: &T) -> Result<JsValue> {
        let plain = serde_json::to_vec(value).map_err(|e| storage_error("encoding a record", e))?;
        self.seal(store, id, rev, &plain).await
    }

    /// A record's plaintext; v1 records carry no associated data, v2 records no revision in it.
    async fn open_record(&self, store: &str, sealed: &Sealed) -> Result<Vec<u8>> {
        let aad = match sealed.version {
            0 | 1 => None,
            2 => Some(aad(store, &sealed.id, None)),
            _ => Some(aad(store, &sealed.id, sealed.rev)),
        };
        let what = format!("{store} record {:?}", sealed.id);
        webcrypto::decrypt(&self.key, &sealed.iv, aad.as_deref(), &sealed.data, &what).await
    }

    /// Every record of `store` (with the revision, read in the same transaction), opened by
    /// `decode` and checked against the manifest; the ones that fail are reported, the others
    /// load. Until an upgrade's re-seal is done, records of older formats load too.
    async fn load<T>(&self, store: &'static str, decode: impl Fn(&Sealed, Vec<u8>) -> Result<T>) -> Result<Loaded<T>> {
        let (tx, _raw) = self.transaction(&[store, META], TransactionMode::ReadOnly)?;
        let records = tx.object_store(store).map_err(|e| idb_error("store", e))?;
        let values =
            records.get_all(None, None).map_err(|e| idb_error("read", e))?.await.map_err(|e| idb_error("read", e))?;
        let keys = records
            .get_all_keys(None, None)
            .map_err(|e| idb_error("read", e))?
            .await
            .map_err(|e| idb_error("read", e))?;
        let state = read_state(&tx).await?;
        drop(tx);
        let listed = LISTED.contains(&store) && !state.resealing;
        let manifest = if listed { Some(self.open_manifest(state.manifest.as_ref()).await) } else { None };
        let mut loaded =
            Loaded { revision: state.revision, items: Vec::with_capacity(values.len()), unreadable: Vec::new() };
        let kind = kind_of(store);
        let mut seen = Vec::new();
        for (value, key) in values.iter().zip(keys.iter()) {
            let result = match Sealed::from_js(value, Some(key)) {
                Ok(sealed) => {
                    seen.push(sealed.id.clone());
                    let current = match &manifest {
                        Some(Ok(m)) => m.check(store, &sealed.id, sealed.rev).map_or(Ok(()), Err),
                        Some(Err(e)) => Err(e.clone()),
                        None if sealed.version < DB_VERSION && !state.resealing => Err(Error::new(
                            ErrorCode::DecryptFailed,
                            format!(
                                "{store} record {:?} is in an older format: it was put back from outside padlock",
                                sealed.id
                            ),
                        )),
                        None => Ok(()),
                    };
                    match self.open_record(store, &sealed).await.and_then(|plain| current.map(|()| plain)) {
                        Ok(plain) => decode(&sealed, plain).map_err(|e| (sealed.id.clone(), e)),
                        Err(e) => Err((sealed.id.clone(), e)),
                    }
                }
                Err(bad) => Err(bad),
            };
            match result {
                Ok(item) => loaded.items.push(item),
                Err((id, error)) => loaded.unreadable.push(Unreadable { kind, id, error }),
            }
        }
        // A listed record that is gone was deleted from outside padlock (the profile is optional).
        if let (Some(Ok(m)), false) = (&manifest, store == PROFILE) {
            for id in m.ids(store).filter(|id| !seen.iter().any(|s| s == id)) {
                let error = Error::new(
                    ErrorCode::DecryptFailed,
                    format!("{store} record {id:?} is in the memory's manifest but gone: it was deleted from outside padlock"),
                );
                loaded.unreadable.push(Unreadable { kind, id: id.to_string(), error });
            }
        }
        Ok(loaded)
    }
}

fn decode_profile(sealed: &Sealed, plain: Vec<u8>) -> Result<Profile> {
    serde_json::from_slice::<Profile>(&plain).map_err(|e| undecodable(&sealed.id, e))
}

fn kind_of(store: &str) -> &'static str {
    match store {
        PREFERENCES => "preferences",
        EVENTS => "events",
        HEADS => "valueHeads",
        _ => "profile",
    }
}

fn channel_name(db: &str) -> String {
    format!("padlock-memory:{db}")
}

impl Store for IdbStore {
    async fn preferences(&self) -> Result<Loaded<Preference>> {
        self.load(PREFERENCES, |sealed, plain| {
            if sealed.version >= 2 {
                serde_json::from_slice(&plain).map_err(|e| undecodable(&sealed.id, e))
            } else {
                let v1: PreferenceV1 = serde_json::from_slice(&plain).map_err(|e| undecodable(&sealed.id, e))?;
                Ok(v1.migrate(now_millis()))
            }
        })
        .await
    }

    async fn events(&self) -> Result<Loaded<FeedbackEvent>> {
        self.load(EVENTS, |sealed, plain| {
            if sealed.version >= 2 {
                serde_json::from_slice(&plain).map_err(|e| undecodable(&sealed.id, e))
            } else {
                let v1: FeedbackV1 = serde_json::from_slice(&plain).map_err(|e| undecodable(&sealed.id, e))?;
                let key = sealed.id.strip_prefix("v1-").and_then(|k| k.parse().ok()).unwrap_or(0);
                Ok(v1.migrate(key))
            }
        })
        .await
    }

    async fn profile(&self) -> Result<Option<Profile>> {
        let loaded = self.load(PROFILE, decode_profile).await?;
        if let Some(u) = loaded.unreadable.into_iter().next() {
            return Err(u.error);
        }
        Ok(loaded.items.into_iter().next())
    }

    async fn value_heads(&self) -> Result<Loaded<ValueHead>> {
        self.load(HEADS, |sealed, plain| Ok(ValueHead { name: sealed.id.clone(), bytes: plain })).await
    }

    async fn write(&self, writes: &[Write], expect_revision: Option<u64>) -> Result<bool> {
        self.check_open()?;
        self.write_sealed("write", expect_revision, false, |rev, stored| async move {
            let mut manifest = self.open_manifest(stored.as_ref()).await?;
            let (mut puts, mut deletes) = (Vec::new(), Vec::new());
            for w in writes {
                match w {
                    Write::PutPreference(p) => {
                        puts.push(self.put_listed(&mut manifest, PREFERENCES, &p.id, rev, p).await?)
                    }
                    Write::DeletePreference(id) => {
                        manifest.remove(PREFERENCES, id);
                        deletes.push((PREFERENCES, id.clone()))
                    }
                    Write::AddEvent(e) => puts.push((EVENTS, self.seal_json(EVENTS, &e.id, rev, e).await?, true)),
                    Write::PutProfile(p) => puts.push(self.put_listed(&mut manifest, PROFILE, PROFILE, rev, p).await?),
                    Write::PutValueHead(h) => puts.push(self.put_head(&mut manifest, h, rev).await?),
                    Write::DeleteValueHead(name) => {
                        manifest.remove(HEADS, name);
                        deletes.push((HEADS, name.clone()))
                    }
                }
            }
            Ok(Planned { puts, deletes, manifest })
        })
        .await
    }

    async fn replace(&self, contents: &Contents) -> Result<()> {
        self.check_open()?;
        self.write_sealed("import", None, true, |rev, _| async move {
            let mut manifest = Manifest::default();
            let mut puts = vec![self.put_listed(&mut manifest, PROFILE, PROFILE, rev, &contents.profile).await?];
            for p in &contents.preferences {
                puts.push(self.put_listed(&mut manifest, PREFERENCES, &p.id, rev, p).await?);
            }
            for e in &contents.events {
                puts.push((EVENTS, self.seal_json(EVENTS, &e.id, rev, e).await?, false));
            }
            for h in &contents.value_heads {
                puts.push(self.put_head(&mut manifest, h, rev).await?);
            }
            Ok(Planned { puts, deletes: Vec::new(), manifest })
        })
        .await
        .map(|_| ())
    }

    async fn destroy(&self) -> Result<()> {
        if let Some(channel) = &self.channel {
            let _ = channel.post_message(&JsValue::from_str(FORGET_MESSAGE));
        }
        self.closed.set(true);
        self.raw.close();
        let name = self.name.clone();
        let factory = Factory::new().map_err(|e| idb_error("is not available", e))?;
        factory.delete(&name).map_err(|e| idb_error("delete", e))?.await.map_err(|e| idb_error("delete", e))
    }
}

fn undecodable(id: &str, e: serde_json::Error) -> Error {
    Error::new(ErrorCode::DecryptFailed, format!("record {id:?} decrypted but is not valid: {e}"))
}
