//! The browser store: IndexedDB through the `idb` crate, every record encrypted at rest.
//!
//! Object stores (schema v2; v1 is described in `schema.rs`):
//!
//! | store         | key                | value                                   |
//! |---------------|--------------------|-----------------------------------------|
//! | `keys`        | "records"          | the CryptoKey (AES-256-GCM, non-extractable) |
//! | `preferences` | id                 | `{id, v: 2, iv, data}`                  |
//! | `events`      | id                 | `{id, v: 2, iv, data}`                  |
//! | `profile`     | "profile"          | `{id, v: 2, iv, data}`                  |
//! | `heads`       | name               | `{id, v: 2, iv, data}` (data: the raw bytes) |
//! | `meta`        | "revision"         | `{id, value}`: raised by every write    |
//! | `meta`        | "reseal-v1"        | `{id, value}`: v1 records wait to be re-sealed |
//!
//! `data` is AES-GCM over the record's JSON with a fresh random 96-bit IV per write and
//! `padlock/<store>/<id>` as associated data, so a record moved to another id or store fails
//! to decrypt. The key never leaves WebCrypto: IndexedDB keeps the CryptoKey object itself.
//!
//! Encryption is asynchronous and an IndexedDB transaction commits as soon as it has nothing
//! to do, so records are sealed *before* a transaction opens and opened after it ends; the
//! revision check of a conditional write happens inside the transaction that writes.
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

use idb::{Database, Factory, Query, TransactionMode, TransactionResult};
use js_sys::{Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{BroadcastChannel, CryptoKey, IdbDatabase, IdbTransaction, MessageEvent};

use super::schema::{FeedbackV1, PreferenceV1, CURRENT_VERSION};
use super::webcrypto::{self, describe, exception_name};
use super::{
    now_millis, random_bytes, Contents, FeedbackEvent, Loaded, Preference, Profile, Store, Unreadable, ValueHead, Write,
};
use crate::error::{Error, ErrorCode, Result};
use open::{open_unless_blocked, record_key};
use upgrade::upgrade;

mod open;
mod upgrade;

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
/// Set in `meta` by the upgrade from v1, removed once its records are re-sealed.
const RESEAL: &str = "reseal-v1";
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
            format!("the memory was written by a newer padlock (schema > {CURRENT_VERSION}): {message}"),
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

/// `padlock/<store>/<id>`: binds a record's ciphertext to where it is stored.
fn aad(store: &str, id: &str) -> Vec<u8> {
    format!("padlock/{store}/{id}").into_bytes()
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
        Ok(Sealed { id, version, iv, data })
    }

    fn to_js(&self) -> Result<JsValue> {
        let obj = Object::new();
        set(&obj, "id", &self.id.as_str().into())?;
        set(&obj, "v", &JsValue::from(self.version))?;
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
        let mut request = factory.open(name, Some(CURRENT_VERSION)).map_err(|e| idb_error("open", e))?;
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
            store.reseal_v1().await?;
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

    async fn seal(&self, store: &str, id: &str, plain: &[u8]) -> Result<JsValue> {
        let iv = random_bytes::<12>()?;
        let data = webcrypto::encrypt(&self.key, &iv, Some(&aad(store, id)), plain).await?;
        Sealed { id: id.to_string(), version: CURRENT_VERSION, iv: iv.to_vec(), data }.to_js()
    }

    async fn seal_json<T: serde::Serialize>(&self, store: &str, id: &str, value: &T) -> Result<JsValue> {
        let plain = serde_json::to_vec(value).map_err(|e| storage_error("encoding a record", e))?;
        self.seal(store, id, &plain).await
    }

    /// A record's plaintext; v1 records carry no associated data.
    async fn open_record(&self, store: &str, sealed: &Sealed) -> Result<Vec<u8>> {
        let aad = (sealed.version >= 2).then(|| aad(store, &sealed.id));
        let what = format!("{store} record {:?}", sealed.id);
        webcrypto::decrypt(&self.key, &sealed.iv, aad.as_deref(), &sealed.data, &what).await
    }

    /// Every record of `store` (with the revision, read in the same transaction), opened by
    /// `decode`; the ones that fail are reported, the others load.
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
        let revision = read_revision(&tx).await?;
        drop(tx);
        let mut loaded = Loaded { revision, items: Vec::with_capacity(values.len()), unreadable: Vec::new() };
        let kind = kind_of(store);
        for (value, key) in values.iter().zip(keys.iter()) {
            let result = match Sealed::from_js(value, Some(key)) {
                Ok(sealed) => match self.open_record(store, &sealed).await {
                    Ok(plain) => decode(&sealed, plain).map_err(|e| (sealed.id.clone(), e)),
                    Err(e) => Err((sealed.id.clone(), e)),
                },
                Err(bad) => Err(bad),
            };
            match result {
                Ok(item) => loaded.items.push(item),
                Err((id, error)) => loaded.unreadable.push(Unreadable { kind, id, error }),
            }
        }
        Ok(loaded)
    }

    /// After the upgrade from v1: re-seal the moved records in the v2 format (bound to their
    /// ids), in one transaction. Until then (or if this fails) v1 records still read.
    async fn reseal_v1(&self) -> Result<()> {
        let prefs = self.preferences().await?.items;
        let events = self.events().await?.items;
        let mut puts = Vec::new();
        for p in &prefs {
            puts.push((PREFERENCES, self.seal_json(PREFERENCES, &p.id, p).await?, false));
        }
        for e in &events {
            puts.push((EVENTS, self.seal_json(EVENTS, &e.id, e).await?, false));
        }
        let (tx, raw) = self.transaction(&DATA_STORES, TransactionMode::ReadWrite)?;
        let revision = read_revision(&tx).await?;
        // The flag goes in the same transaction as the re-sealed records.
        if let Err(e) = self.apply(&tx, &puts, &[(META, RESEAL.to_string())], revision + 1).await {
            let _ = idb::Transaction::from(raw.clone()).abort();
            return Err(Self::commit(tx, raw, "re-sealing the migrated records").await.err().unwrap_or(e));
        }
        Self::commit(tx, raw, "re-sealing the migrated records").await
    }

    /// Whether the upgrade from v1 left records to re-seal (its flag in `meta`).
    async fn needs_reseal(&self) -> Result<bool> {
        let (tx, _raw) = self.transaction(&[META], TransactionMode::ReadOnly)?;
        let meta = tx.object_store(META).map_err(|e| idb_error("store", e))?;
        let flag = meta.get(JsValue::from_str(RESEAL)).map_err(|e| idb_error("read", e))?.await;
        Ok(flag.map_err(|e| idb_error("read", e))?.is_some())
    }
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

async fn read_revision(tx: &idb::Transaction) -> Result<u64> {
    let meta = tx.object_store(META).map_err(|e| idb_error("store", e))?;
    let value = meta
        .get(JsValue::from_str(REVISION))
        .map_err(|e| idb_error("read", e))?
        .await
        .map_err(|e| idb_error("read", e))?;
    Ok(value.map(|v| get(&v, "value").as_f64().unwrap_or(0.0) as u64).unwrap_or(0))
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
        let loaded = self
            .load(PROFILE, |sealed, plain| {
                serde_json::from_slice::<Profile>(&plain).map_err(|e| undecodable(&sealed.id, e))
            })
            .await?;
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
        // Seal first: the transaction must not wait on WebCrypto.
        let mut puts: Vec<(&str, JsValue, bool)> = Vec::new();
        let mut deletes: Vec<(&str, String)> = Vec::new();
        for w in writes {
            match w {
                Write::PutPreference(p) => {
                    puts.push((PREFERENCES, self.seal_json(PREFERENCES, &p.id, p).await?, false))
                }
                Write::DeletePreference(id) => deletes.push((PREFERENCES, id.clone())),
                Write::AddEvent(e) => puts.push((EVENTS, self.seal_json(EVENTS, &e.id, e).await?, true)),
                Write::PutProfile(p) => puts.push((PROFILE, self.seal_json(PROFILE, PROFILE, p).await?, false)),
                Write::PutValueHead(h) => puts.push((HEADS, self.seal(HEADS, &h.name, &h.bytes).await?, false)),
                Write::DeleteValueHead(name) => deletes.push((HEADS, name.clone())),
            }
        }
        let (tx, raw) = self.transaction(&DATA_STORES, TransactionMode::ReadWrite)?;
        let revision = read_revision(&tx).await?;
        if expect_revision.is_some_and(|r| r != revision) {
            let _ = tx.abort();
            return Ok(false);
        }
        let result = self.apply(&tx, &puts, &deletes, revision + 1).await;
        if let Err(e) = result {
            let _ = idb::Transaction::from(raw.clone()).abort();
            // The abort's reason (e.g. the quota) says more than the failed request.
            return Err(Self::commit(tx, raw, "write").await.err().unwrap_or(e));
        }
        Self::commit(tx, raw, "write").await?;
        Ok(true)
    }

    async fn replace(&self, contents: &Contents) -> Result<()> {
        self.check_open()?;
        let mut puts: Vec<(&str, JsValue, bool)> = Vec::new();
        puts.push((PROFILE, self.seal_json(PROFILE, PROFILE, &contents.profile).await?, false));
        for p in &contents.preferences {
            puts.push((PREFERENCES, self.seal_json(PREFERENCES, &p.id, p).await?, false));
        }
        for e in &contents.events {
            puts.push((EVENTS, self.seal_json(EVENTS, &e.id, e).await?, false));
        }
        for h in &contents.value_heads {
            puts.push((HEADS, self.seal(HEADS, &h.name, &h.bytes).await?, false));
        }
        let (tx, raw) = self.transaction(&DATA_STORES, TransactionMode::ReadWrite)?;
        let revision = read_revision(&tx).await?;
        let cleared = async {
            for store in [PREFERENCES, EVENTS, PROFILE, HEADS] {
                let s = tx.object_store(store).map_err(|e| idb_error("store", e))?;
                s.clear().map_err(|e| idb_error("clear", e))?.await.map_err(|e| idb_error("clear", e))?;
            }
            Ok::<_, Error>(())
        }
        .await;
        let result = match cleared {
            Ok(()) => self.apply(&tx, &puts, &[], revision + 1).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            let _ = idb::Transaction::from(raw.clone()).abort();
            return Err(Self::commit(tx, raw, "import").await.err().unwrap_or(e));
        }
        Self::commit(tx, raw, "import").await
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

impl IdbStore {
    /// Issues the puts and deletes and the new revision inside `tx`.
    async fn apply(
        &self,
        tx: &idb::Transaction,
        puts: &[(&str, JsValue, bool)],
        deletes: &[(&str, String)],
        revision: u64,
    ) -> Result<()> {
        for (store, value, add_only) in puts {
            let s = tx.object_store(store).map_err(|e| idb_error("store", e))?;
            if *add_only {
                s.add(value, None).map_err(|e| idb_error("write", e))?.await.map_err(|e| idb_error("write", e))?;
            } else {
                s.put(value, None).map_err(|e| idb_error("write", e))?.await.map_err(|e| idb_error("write", e))?;
            }
        }
        for (store, id) in deletes {
            let s = tx.object_store(store).map_err(|e| idb_error("store", e))?;
            let query = Query::Key(JsValue::from_str(id));
            s.delete(query).map_err(|e| idb_error("delete", e))?.await.map_err(|e| idb_error("delete", e))?;
        }
        let meta = tx.object_store(META).map_err(|e| idb_error("store", e))?;
        let record = Object::new();
        set(&record, "id", &REVISION.into())?;
        set(&record, "value", &JsValue::from(revision as f64))?;
        meta.put(&record, None).map_err(|e| idb_error("write", e))?.await.map_err(|e| idb_error("write", e))?;
        Ok(())
    }
}

fn undecodable(id: &str, e: serde_json::Error) -> Error {
    Error::new(ErrorCode::DecryptFailed, format!("record {id:?} decrypted but is not valid: {e}"))
}
