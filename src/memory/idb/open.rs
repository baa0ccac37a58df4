//! Opening the database: an open another tab blocks, and the record key.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use idb::{Database, TransactionMode};
use wasm_bindgen::prelude::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{CryptoKey, IdbTransaction};

use super::webcrypto;
use super::{idb_error, storage_error, IdbStore, EVENTS, HEADS, KEYS, PREFERENCES, PROFILE, RECORD_KEY};
use crate::error::{Error, Result};

/// The CryptoKey kept in `keys`, made on first use. Two tabs opening a new database at once
/// both try to add one; the second add fails and that tab reads the first one's key.
pub(super) async fn record_key(db: &Database) -> Result<CryptoKey> {
    let read = || async {
        let tx = db.transaction(&[KEYS], TransactionMode::ReadOnly).map_err(|e| idb_error("transaction", e))?;
        let keys = tx.object_store(KEYS).map_err(|e| idb_error("store", e))?;
        let value = keys
            .get(JsValue::from_str(RECORD_KEY))
            .map_err(|e| idb_error("read", e))?
            .await
            .map_err(|e| idb_error("read", e))?;
        Ok::<_, Error>(value.and_then(|v| v.dyn_into::<CryptoKey>().ok()))
    };
    if let Some(key) = read().await? {
        return Ok(key);
    }
    // A new key would make every record there unreadable, silently.
    let records = count_records(db).await?;
    if records > 0 {
        crate::bail!(
            MemoryKeyMissing,
            "the memory holds {records} records but its key is gone, so they cannot be read; nothing was changed \
             (forget the memory, then import an export, to start again)"
        );
    }
    let key = webcrypto::generate_record_key().await?;
    let tx = db.transaction(&[KEYS], TransactionMode::ReadWrite).map_err(|e| idb_error("transaction", e))?;
    let raw: IdbTransaction = JsValue::from(tx).unchecked_into();
    let tx = idb::Transaction::from(raw.clone());
    let keys = tx.object_store(KEYS).map_err(|e| idb_error("store", e))?;
    let added = keys.add(&key, Some(&JsValue::from_str(RECORD_KEY))).map_err(|e| idb_error("write", e))?.await;
    if added.is_ok() && IdbStore::commit(tx, raw, "storing the key").await.is_ok() {
        return Ok(key);
    }
    read().await?.ok_or_else(|| storage_error("key", "no record key could be stored"))
}

/// How many records the data stores hold.
async fn count_records(db: &Database) -> Result<u32> {
    let stores = [PREFERENCES, EVENTS, PROFILE, HEADS];
    let tx = db.transaction(&stores, TransactionMode::ReadOnly).map_err(|e| idb_error("transaction", e))?;
    let mut n = 0;
    for store in stores {
        let s = tx.object_store(store).map_err(|e| idb_error("store", e))?;
        n += s.count(None).map_err(|e| idb_error("read", e))?.await.map_err(|e| idb_error("read", e))?;
    }
    Ok(n)
}

/// How long an open waits, once blocked, for the other connections to close: a padlock tab
/// closes its connection at once on `versionchange`, and a connection that is closing still
/// blocks until its transactions end.
const BLOCKED_GRACE_MS: i32 = 2000;

/// Opens the database, or `None` when the open stays blocked by another connection that does
/// not close (a tab with an older padlock) for `BLOCKED_GRACE_MS`. The open then finishes in
/// the background and closes what it opened, so that it blocks no one in turn.
pub(super) async fn open_unless_blocked(
    mut request: idb::request::OpenDatabaseRequest,
) -> Option<std::result::Result<Database, idb::Error>> {
    use std::future::{Future, IntoFuture};
    use std::task::{Poll, Waker};
    let given_up = Rc::new(Cell::new(false));
    let waker = Rc::new(RefCell::new(None::<Waker>));
    {
        let (given_up, waker) = (given_up.clone(), waker.clone());
        request.on_blocked(move |_| {
            let (given_up, waker) = (given_up.clone(), waker.clone());
            let give_up = move || {
                given_up.set(true);
                if let Some(w) = waker.borrow_mut().take() {
                    w.wake();
                }
            };
            let set_timeout = js_sys::Reflect::get(&js_sys::global(), &"setTimeout".into())
                .ok()
                .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
            match set_timeout {
                Some(f) => {
                    let _ = f.call2(&JsValue::NULL, &Closure::once_into_js(give_up), &BLOCKED_GRACE_MS.into());
                }
                None => give_up(),
            }
        });
    }
    let mut opening = Box::pin(request.into_future());
    let first = std::future::poll_fn(|cx| match opening.as_mut().poll(cx) {
        Poll::Ready(opened) => Poll::Ready(Some(opened)),
        Poll::Pending if given_up.get() => Poll::Ready(None),
        Poll::Pending => {
            *waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        }
    })
    .await;
    if first.is_none() {
        wasm_bindgen_futures::spawn_local(async move {
            if let Ok(db) = opening.await {
                db.close();
            }
        });
    }
    first
}
