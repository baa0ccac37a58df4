//! The database's upgrades: the v2 stores, v1's feedback moved into `events`, the re-seal flag.

use idb::{KeyPath, ObjectStoreParams};
use js_sys::Object;
use wasm_bindgen::JsValue;

use super::{get, idb_error, set, storage_error, EVENTS, FEEDBACK_V1, HEADS, KEYS, META, PREFERENCES, PROFILE, RESEAL};
use crate::error::Result;

/// Creates the stores; from v1, moves the thumbs feedback into `events`; from v1 and v2, flags
/// the records (still sealed as they were) to be re-sealed once the database is open.
pub(super) fn upgrade(event: &idb::event::VersionChangeEvent, old: u32) -> Result<()> {
    use idb::{DatabaseEvent, Event};
    let db = event.database().map_err(|e| idb_error("upgrade", e))?;
    let keyed = || {
        let mut p = ObjectStoreParams::new();
        p.key_path(Some(KeyPath::new_single("id")));
        p
    };
    let create = |name: &str, params: ObjectStoreParams| {
        db.create_object_store(name, params).map(|_| ()).map_err(|e| idb_error("upgrade", e))
    };
    if old < 1 {
        create(KEYS, ObjectStoreParams::new())?;
        create(PREFERENCES, keyed())?;
    }
    if old < 2 {
        create(EVENTS, keyed())?;
        create(PROFILE, keyed())?;
        create(HEADS, keyed())?;
        create(META, keyed())?;
    }
    if old == 1 || old == 2 {
        let target = event.target().map_err(|e| idb_error("upgrade", e))?;
        let tx =
            idb::Request::transaction(&target).ok_or_else(|| storage_error("upgrade", "no upgrade transaction"))?;
        wasm_bindgen_futures::spawn_local(async move {
            let moved = if old == 1 { move_v1_feedback(&tx).await } else { Ok(()) };
            if let Err(e) = moved {
                web_sys::console::error_1(&format!("padlock: migrating v1 feedback failed: {e}").into());
                let _ = tx.abort();
            } else if let Err(e) = flag_reseal(&tx).await {
                web_sys::console::error_1(&format!("padlock: marking the records to re-seal failed: {e}").into());
                let _ = tx.abort();
            }
        });
    }
    Ok(())
}

/// The records stay sealed the older way until an open re-seals them; the flag says so, in
/// the upgrade's own transaction, until then (whichever session that is).
async fn flag_reseal(tx: &idb::Transaction) -> Result<()> {
    let flag = Object::new();
    set(&flag, "id", &RESEAL.into())?;
    set(&flag, "value", &JsValue::TRUE)?;
    let meta = tx.object_store(META).map_err(|e| idb_error("upgrade", e))?;
    meta.put(&flag, None).map_err(|e| idb_error("upgrade", e))?.await.map_err(|e| idb_error("upgrade", e))?;
    Ok(())
}

/// Inside the upgrade transaction: every v1 feedback record goes to `events` under the id
/// `v1-<key>`, still sealed as v1 sealed it; then the v1 store is deleted.
async fn move_v1_feedback(tx: &idb::Transaction) -> Result<()> {
    let from = tx.object_store(FEEDBACK_V1).map_err(|e| idb_error("upgrade", e))?;
    let to = tx.object_store(EVENTS).map_err(|e| idb_error("upgrade", e))?;
    let keys = from
        .get_all_keys(None, None)
        .map_err(|e| idb_error("upgrade", e))?
        .await
        .map_err(|e| idb_error("upgrade", e))?;
    let values =
        from.get_all(None, None).map_err(|e| idb_error("upgrade", e))?.await.map_err(|e| idb_error("upgrade", e))?;
    for (key, value) in keys.iter().zip(values.iter()) {
        let n = key.as_f64().unwrap_or(0.0) as u64;
        let record = Object::new();
        set(&record, "id", &crate::memory::schema::v1_event_id(n).into())?;
        set(&record, "v1key", &JsValue::from(n as f64))?;
        set(&record, "iv", &get(value, "iv"))?;
        set(&record, "data", &get(value, "data"))?;
        to.put(&record, None).map_err(|e| idb_error("upgrade", e))?.await.map_err(|e| idb_error("upgrade", e))?;
    }
    tx.database().delete_object_store(FEEDBACK_V1).map_err(|e| idb_error("upgrade", e))
}
