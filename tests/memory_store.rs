//! The preference-store suite (tests/common/memory_suite.rs) over both implementations:
//!
//!     cargo test --release --test memory_store                      # FileStore, natively
//!     wasm-pack test --headless --chrome --chromedriver /usr/bin/chromedriver --release -- --test memory_store
//!                                                                   # IndexedDB, headless Chromium
//!
//! plus what only one of them has: the file store's locking across threads, the browser
//! store's encryption at rest (the raw records, the key, tampered records).

#[path = "common/memory_suite.rs"]
mod suite;

/// Calls `$run!(name, ...)` with the name of every suite function, so each backend's test
/// list is the whole suite.
macro_rules! for_each_suite_test {
    ($run:ident) => {
        $run!(
            preferences_persist_across_reopen,
            bad_changes_are_refused_and_change_nothing,
            export_forget_import_gives_back_the_same_memory,
            bad_imports_are_rejected_and_change_nothing,
            interleaved_feedback_loses_no_event_and_no_update,
            a_version_1_store_keeps_all_its_data,
            feedback_moves_weights_within_bounds_and_replays_exactly,
            active_preferences_are_enabled_capped_and_weightiest_first,
            value_heads_and_profile_round_trip,
            forget_deletes_everything,
            a_merge_keeps_the_learned_weight,
            an_export_from_before_version_2_imports,
        );
    };
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::path::PathBuf;

    use padlock::memory::file::FileStore;
    use padlock::memory::schema::{FeedbackV1, PreferenceV1};
    use padlock::memory::{FeedbackInput, FeedbackKind, Memory, Source, HARMLESS_ID};

    use super::suite;

    /// A fresh directory per test, removed afterwards.
    pub struct Files {
        root: PathBuf,
    }

    impl Files {
        pub fn new(test: &str) -> Self {
            let root =
                std::env::temp_dir().join(format!("padlock-memory-{test}-{}", padlock::memory::new_id().unwrap()));
            std::fs::create_dir_all(&root).unwrap();
            Files { root }
        }
    }

    impl Drop for Files {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }

    impl suite::Backend for Files {
        type S = FileStore;
        const INTERLEAVES: bool = false;

        async fn open(&self, name: &str) -> padlock::Result<FileStore> {
            FileStore::open(self.root.join(name))
        }

        async fn write_v1(&self, name: &str, preferences: &[PreferenceV1], feedback: &[FeedbackV1]) {
            let dir = self.root.join(name);
            std::fs::create_dir_all(&dir).unwrap();
            let v1 = serde_json::json!({ "version": 1, "preferences": preferences, "feedback": feedback });
            std::fs::write(dir.join("memory.json"), v1.to_string()).unwrap();
        }
    }

    /// `#[test]` running an async suite function to completion.
    macro_rules! native_tests {
        ($($name:ident),* $(,)?) => {
            $(
                #[test]
                fn $name() {
                    pollster::block_on(suite::$name(&Files::new(stringify!($name))))
                }
            )*
        };
    }

    for_each_suite_test!(native_tests);

    /// Threads with their own handles on one directory: the file lock and the revision check
    /// keep every event and every update (the processes of two `padlock feedback` runs alike).
    #[test]
    fn threads_recording_feedback_at_once_lose_nothing() {
        let files = Files::new("threads");
        let dir = files.root.join("memory");
        let m = Memory::new(FileStore::open(&dir).unwrap());
        let a = pollster::block_on(m.add("Keep answers short.", None, Source::Explicit)).unwrap().id;
        let threads = 4;
        let per_thread = 15;
        std::thread::scope(|s| {
            for t in 0..threads {
                let (dir, a) = (dir.clone(), a.clone());
                s.spawn(move || {
                    let m = Memory::new(FileStore::open(&dir).unwrap());
                    for i in 0..per_thread {
                        let r = |v: f32| suite::response("x", &[(HARMLESS_ID, 0.0), (&a, v)]);
                        let input = FeedbackInput {
                            kind: FeedbackKind::Choice,
                            prompt: format!("{t}/{i}"),
                            responses: vec![r(2.0), r(1.0 + (i % 3) as f32 * 0.2)],
                        };
                        pollster::block_on(m.feedback(input)).unwrap();
                    }
                });
            }
        });
        let events = pollster::block_on(m.events()).unwrap().items;
        assert_eq!(events.len(), threads * per_thread);
        assert_eq!(pollster::block_on(m.rebuild()).unwrap(), vec![]);
        // No temporary file is left behind by the atomic writes.
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn files_are_private_and_a_newer_schema_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let files = Files::new("private");
        let dir = files.root.join("memory");
        let m = Memory::new(FileStore::open(&dir).unwrap());
        pollster::block_on(m.add("Be brief.", None, Source::Explicit)).unwrap();
        let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(dir.clone()), 0o700);
        assert_eq!(mode(dir.join("memory.json")), 0o600);
        let text = std::fs::read_to_string(dir.join("memory.json")).unwrap().replace("\"version\":2", "\"version\":3");
        std::fs::write(dir.join("memory.json"), text).unwrap();
        assert_eq!(FileStore::open(&dir).unwrap_err().code, padlock::ErrorCode::SchemaVersion);
        std::fs::write(dir.join("memory.json"), "{\"version\":2,").unwrap();
        assert_eq!(pollster::block_on(m.preferences()).unwrap_err().code, padlock::ErrorCode::Storage);
    }
}

#[cfg(target_arch = "wasm32")]
mod browser {
    use idb::{Factory, KeyPath, ObjectStoreParams, TransactionMode};
    use js_sys::{Object, Reflect, Uint8Array};
    use padlock::memory::idb::IdbStore;
    use padlock::memory::schema::{FeedbackV1, PreferenceV1};
    use padlock::memory::{FeedbackInput, FeedbackKind, Memory, Preference, PreferenceChange, Source, HARMLESS_ID};
    use padlock::ErrorCode;
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;
    use wasm_bindgen_test::*;

    use super::suite;

    wasm_bindgen_test_configure!(run_in_browser);

    /// Databases named per test (and per run), so tests never see each other's data.
    pub struct Idb {
        prefix: String,
    }

    impl Idb {
        pub fn new(test: &str) -> Self {
            Idb { prefix: format!("padlock-test-{test}-{}", padlock::memory::new_id().unwrap()) }
        }

        fn db(&self, name: &str) -> String {
            format!("{}-{name}", self.prefix)
        }
    }

    impl suite::Backend for Idb {
        type S = IdbStore;
        const INTERLEAVES: bool = true;

        async fn open(&self, name: &str) -> padlock::Result<IdbStore> {
            IdbStore::open(&self.db(name), None).await
        }

        async fn write_v1(&self, name: &str, preferences: &[PreferenceV1], feedback: &[FeedbackV1]) {
            write_v1(&self.db(name), preferences, feedback).await
        }
    }

    macro_rules! browser_tests {
        ($($name:ident),* $(,)?) => {
            $(
                #[wasm_bindgen_test]
                async fn $name() {
                    suite::$name(&Idb::new(stringify!($name))).await
                }
            )*
        };
    }

    for_each_suite_test!(browser_tests);

    fn subtle() -> web_sys::SubtleCrypto {
        let crypto: web_sys::Crypto = Reflect::get(&js_sys::global(), &"crypto".into()).unwrap().unchecked_into();
        crypto.subtle()
    }

    async fn settle(p: Result<js_sys::Promise, JsValue>) -> JsValue {
        JsFuture::from(p.unwrap()).await.unwrap()
    }

    fn field(o: &JsValue, k: &str) -> JsValue {
        Reflect::get(o, &k.into()).unwrap()
    }

    /// Writes a database exactly as schema version 1 did: stores `keys`, `preferences` (key
    /// path id) and `feedback` (auto-increment), records `{id?, iv, data}` sealed with AES-GCM
    /// under a non-extractable key and no associated data.
    pub async fn write_v1(name: &str, preferences: &[PreferenceV1], feedback: &[FeedbackV1]) {
        let mut request = Factory::new().unwrap().open(name, Some(1)).unwrap();
        request.on_upgrade_needed(|event| {
            use idb::DatabaseEvent;
            let db = event.database().unwrap();
            db.create_object_store("keys", ObjectStoreParams::new()).unwrap();
            let mut by_id = ObjectStoreParams::new();
            by_id.key_path(Some(KeyPath::new_single("id")));
            db.create_object_store("preferences", by_id).unwrap();
            let mut counted = ObjectStoreParams::new();
            counted.auto_increment(true);
            db.create_object_store("feedback", counted).unwrap();
        });
        let db = request.await.unwrap();
        let params = web_sys::AesKeyGenParams::new("AES-GCM", 256);
        let usages: js_sys::Array = ["encrypt", "decrypt"].iter().map(|s| JsValue::from_str(s)).collect();
        let key: web_sys::CryptoKey =
            settle(subtle().generate_key_with_object(&params, false, &usages)).await.unchecked_into();
        let seal = |plain: Vec<u8>| {
            let key = key.clone();
            async move {
                let iv = padlock::memory::random_bytes::<12>().unwrap();
                let gcm = web_sys::AesGcmParams::new_with_u8_array("AES-GCM", &Uint8Array::from(&iv[..]));
                let data = settle(subtle().encrypt_with_object_and_u8_array(&gcm, &key, &plain)).await;
                let record = Object::new();
                Reflect::set(&record, &"iv".into(), &Uint8Array::from(&iv[..])).unwrap();
                Reflect::set(&record, &"data".into(), &data).unwrap();
                record
            }
        };
        let mut sealed_prefs = Vec::new();
        for p in preferences {
            let record = seal(serde_json::to_vec(p).unwrap()).await;
            Reflect::set(&record, &"id".into(), &p.id.as_str().into()).unwrap();
            sealed_prefs.push(record);
        }
        let mut sealed_feedback = Vec::new();
        for f in feedback {
            sealed_feedback.push(seal(serde_json::to_vec(f).unwrap()).await);
        }
        let tx = db.transaction(&["keys", "preferences", "feedback"], TransactionMode::ReadWrite).unwrap();
        tx.object_store("keys").unwrap().put(&key, Some(&JsValue::from_str("records"))).unwrap().await.unwrap();
        for r in &sealed_prefs {
            tx.object_store("preferences").unwrap().put(r, None).unwrap().await.unwrap();
        }
        for r in &sealed_feedback {
            tx.object_store("feedback").unwrap().add(r, None).unwrap().await.unwrap();
        }
        assert!(tx.commit().unwrap().await.unwrap().is_committed());
        db.close();
    }

    /// Every value in every object store of the database, read raw (no padlock code).
    async fn raw_records(name: &str) -> Vec<(String, JsValue, JsValue)> {
        let db = Factory::new().unwrap().open(name, None).unwrap().await.unwrap();
        let mut out = Vec::new();
        for store in db.store_names() {
            let tx = db.transaction(&[&store], TransactionMode::ReadOnly).unwrap();
            let s = tx.object_store(&store).unwrap();
            let keys = s.get_all_keys(None, None).unwrap().await.unwrap();
            let values = s.get_all(None, None).unwrap().await.unwrap();
            for (k, v) in keys.into_iter().zip(values) {
                out.push((store.clone(), k, v));
            }
        }
        db.close();
        out
    }

    /// All bytes and strings inside a stored value.
    fn blobs(value: &JsValue, out: &mut Vec<Vec<u8>>) {
        if let Some(s) = value.as_string() {
            out.push(s.into_bytes());
        } else if value.is_instance_of::<js_sys::ArrayBuffer>() || value.is_instance_of::<Uint8Array>() {
            out.push(Uint8Array::new(value).to_vec());
        } else if value.is_object() && !value.is_instance_of::<web_sys::CryptoKey>() {
            for k in js_sys::Object::keys(value.unchecked_ref::<js_sys::Object>()).iter() {
                blobs(&field(value, &k.as_string().unwrap()), out);
            }
        }
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    async fn filled(name: &str) -> (Memory<IdbStore>, String, String) {
        let m = Memory::new(IdbStore::open(name, None).await.unwrap());
        let a = m.add("I am vegetarian and allergic to peanuts.", None, Source::Explicit).await.unwrap().id;
        let b = m.add("Keep answers short and concise.", Some(1.5), Source::Explicit).await.unwrap().id;
        let r =
            |v: f32| suite::response("Try a lentil curry without peanuts.", &[(HARMLESS_ID, 1.0), (&a, v), (&b, 1.0)]);
        let input = FeedbackInput {
            kind: FeedbackKind::Choice,
            prompt: "What should I cook tonight?".into(),
            responses: vec![r(3.0), r(1.0)],
        };
        m.feedback(input).await.unwrap();
        (m, a, b)
    }

    #[wasm_bindgen_test]
    async fn raw_records_hold_no_plaintext() {
        let name = Idb::new("raw").db("m");
        let (m, a, _) = filled(&name).await;
        let records = raw_records(&name).await;
        let stores: std::collections::BTreeSet<&str> = records.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(stores.into_iter().collect::<Vec<_>>(), ["events", "keys", "meta", "preferences"]);
        let mut all = Vec::new();
        for (_, _, v) in &records {
            blobs(v, &mut all);
        }
        for secret in ["vegetarian", "peanuts", "concise", "What should I cook", "lentil", "Be harmless"] {
            assert!(!all.iter().any(|b| contains(b, secret.as_bytes())), "{secret:?} is stored in the clear");
        }
        // Every sealed record has its own IV.
        let ivs: Vec<Vec<u8>> = records
            .iter()
            .filter(|(s, _, _)| s == "preferences" || s == "events")
            .map(|(_, _, v)| Uint8Array::new(&field(v, "iv")).to_vec())
            .collect();
        assert_eq!(ivs.len(), 3, "two preferences and one event (the built-in principle is stored once changed)");
        assert!(ivs.iter().all(|iv| iv.len() == 12));
        let unique: std::collections::HashSet<&Vec<u8>> = ivs.iter().collect();
        assert_eq!(unique.len(), ivs.len());
        // Rewriting a record uses a fresh IV.
        let before = records
            .iter()
            .find(|(s, k, _)| s == "preferences" && k.as_string().as_deref() == Some(a.as_str()))
            .unwrap()
            .2
            .clone();
        m.update(&a, &padlock::memory::PreferenceChange { weight: Some(2.0), ..Default::default() }).await.unwrap();
        let after = raw_records(&name).await;
        let after =
            after.iter().find(|(s, k, _)| s == "preferences" && k.as_string().as_deref() == Some(a.as_str())).unwrap();
        assert_ne!(Uint8Array::new(&field(&before, "iv")).to_vec(), Uint8Array::new(&field(&after.2, "iv")).to_vec());
        m.forget().await.unwrap();
    }

    /// After the upgrade from v1 the old store is gone and every record is sealed the v3 way
    /// (bound to its id and revision).
    #[wasm_bindgen_test]
    async fn v1_records_are_resealed_and_the_old_store_removed() {
        let idb = Idb::new("v1-reseal");
        let prefs = vec![PreferenceV1 { id: "p1".into(), text: "Keep answers short.".into(), weight: 1.5 }];
        let feedback = vec![FeedbackV1 { time: 1, prompt: "Hi".into(), response: "Hello!".into(), liked: true }];
        write_v1(&idb.db("m"), &prefs, &feedback).await;
        let before = raw_records(&idb.db("m")).await;
        assert!(before.iter().all(|(_, _, v)| field(v, "v").is_undefined()));
        let m = Memory::new(IdbStore::open(&idb.db("m"), None).await.unwrap());
        let after = raw_records(&idb.db("m")).await;
        let stores: std::collections::BTreeSet<&str> = after.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(stores.into_iter().collect::<Vec<_>>(), ["events", "keys", "meta", "preferences"]);
        for (store, key, v) in &after {
            if store == "events" || store == "preferences" {
                assert_eq!(field(v, "v").as_f64(), Some(3.0), "{store} {key:?}");
            }
        }
        assert_eq!(m.events().await.unwrap().items[0].responses[0].text, "Hello!");
        m.forget().await.unwrap();
    }

    #[wasm_bindgen_test]
    async fn the_record_key_cannot_be_read_out() {
        let name = Idb::new("key").db("m");
        let (m, _, _) = filled(&name).await;
        let records = raw_records(&name).await;
        let key: web_sys::CryptoKey = records.iter().find(|r| r.0 == "keys").unwrap().2.clone().unchecked_into();
        assert!(!key.extractable());
        assert_eq!(key.type_(), "secret");
        let exported = JsFuture::from(subtle().export_key("raw", &key).unwrap()).await;
        assert!(exported.is_err(), "a non-extractable key was exported");
        m.forget().await.unwrap();
    }

    /// Puts `edit(record)` back in place of the raw record `id` of `store`.
    async fn tamper(name: &str, store: &str, id: &str, edit: impl Fn(&JsValue)) {
        let db = Factory::new().unwrap().open(name, None).unwrap().await.unwrap();
        let tx = db.transaction(&[store], TransactionMode::ReadWrite).unwrap();
        let s = tx.object_store(store).unwrap();
        let record = s.get(JsValue::from_str(id)).unwrap().await.unwrap().expect("the record exists");
        edit(&record);
        s.put(&record, None).unwrap().await.unwrap();
        assert!(tx.commit().unwrap().await.unwrap().is_committed());
        db.close();
    }

    #[wasm_bindgen_test]
    async fn a_record_that_fails_to_decrypt_is_reported_and_the_others_load() {
        let name = Idb::new("tamper").db("m");
        let (m, a, b) = filled(&name).await;
        drop(m);
        // One flipped bit in a preference's ciphertext.
        tamper(&name, "preferences", &a, |r| {
            let data = Uint8Array::new(&field(r, "data"));
            data.set_index(3, data.get_index(3) ^ 1);
            Reflect::set(r, &"data".into(), &data.buffer()).unwrap();
        })
        .await;
        let m = Memory::new(IdbStore::open(&name, None).await.unwrap());
        let loaded = m.preferences().await.unwrap();
        assert_eq!(loaded.unreadable.len(), 1);
        assert_eq!(loaded.unreadable[0].id, a);
        assert_eq!(loaded.unreadable[0].kind, "preferences");
        assert_eq!(loaded.unreadable[0].error.code, ErrorCode::DecryptFailed);
        let ids: Vec<&str> = loaded.items.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, [HARMLESS_ID, b.as_str()]);
        // A sealed record copied onto another id does not open either (its AAD names its id).
        let c = m.add("Use metric units.", None, Source::Explicit).await.unwrap().id;
        let copied = {
            let records = raw_records(&name).await;
            records
                .iter()
                .find(|(s, k, _)| s == "preferences" && k.as_string().as_deref() == Some(b.as_str()))
                .unwrap()
                .2
                .clone()
        };
        tamper(&name, "preferences", &c, move |r| {
            Reflect::set(r, &"iv".into(), &field(&copied, "iv")).unwrap();
            Reflect::set(r, &"data".into(), &field(&copied, "data")).unwrap();
        })
        .await;
        let loaded = m.preferences().await.unwrap();
        let bad: Vec<&str> = loaded.unreadable.iter().map(|u| u.id.as_str()).collect();
        assert!(bad.contains(&c.as_str()) && bad.contains(&a.as_str()), "{bad:?}");
        // The rest still works: an export needs consent to leave the damaged records out,
        // and the damaged ones can be removed.
        assert_eq!(m.export(None, false).await.unwrap_err().code, ErrorCode::DecryptFailed);
        let file = m.export(None, true).await.unwrap();
        assert!(file.contains("Keep answers short and concise."));
        assert_eq!(m.update(&a, &Default::default()).await.unwrap_err().code, ErrorCode::DecryptFailed);
        m.remove(&a).await.unwrap();
        assert_eq!(m.preferences().await.unwrap().unreadable.len(), 1);
        m.forget().await.unwrap();
    }

    #[wasm_bindgen_test]
    async fn forgetting_closes_the_other_connections_and_deletes_the_database() {
        use std::cell::Cell;
        use std::rc::Rc;
        let name = Idb::new("forget").db("m");
        let (m, _, _) = filled(&name).await;
        let told = Rc::new(Cell::new(false));
        let other = {
            let told = told.clone();
            IdbStore::open(&name, Some(Box::new(move || told.set(true)))).await.unwrap()
        };
        let other = Memory::new(other);
        assert_eq!(other.preferences().await.unwrap().items.len(), 3);
        m.forget().await.unwrap();
        assert!(told.get(), "the other connection was not told");
        assert!(other.store().is_closed());
        assert_eq!(other.preferences().await.unwrap_err().code, ErrorCode::StorageClosed);
        // The database is gone.
        let factory = Reflect::get(&js_sys::global(), &"indexedDB".into()).unwrap();
        let databases: js_sys::Function = field(&factory, "databases").unchecked_into();
        let list = JsFuture::from(js_sys::Promise::from(databases.call0(&factory).unwrap())).await.unwrap();
        let names: Vec<String> =
            js_sys::Array::from(&list).iter().map(|d| field(&d, "name").as_string().unwrap()).collect();
        assert!(!names.contains(&name), "{names:?}");
    }

    /// A tab with an older padlock keeps the database open and ignores `versionchange`: the
    /// open is refused at once with STORAGE_BLOCKED (not a hang), and works once that tab
    /// closes.
    #[wasm_bindgen_test]
    async fn an_old_tab_that_does_not_close_blocks_the_open_with_a_typed_error() {
        let name = Idb::new("blocked").db("m");
        write_v1(&name, &[], &[]).await;
        let old = Factory::new().unwrap().open(&name, Some(1)).unwrap().await.unwrap();
        let err = IdbStore::open(&name, None).await.err().expect("the open should be blocked");
        assert_eq!(err.code, ErrorCode::StorageBlocked, "{err}");
        old.close();
        let m = Memory::new(IdbStore::open(&name, None).await.unwrap());
        assert_eq!(m.preferences().await.unwrap().items.len(), 1);
        m.forget().await.unwrap();
    }

    /// The record key deleted while records remain: the open fails with MEMORY_KEY_MISSING
    /// instead of making a new key that could read none of them, and nothing is written.
    #[wasm_bindgen_test]
    async fn records_without_their_key_fail_the_open_and_stay_as_they_were() {
        let name = Idb::new("no-key").db("m");
        let (m, _, _) = filled(&name).await;
        drop(m);
        let db = Factory::new().unwrap().open(&name, None).unwrap().await.unwrap();
        let tx = db.transaction(&["keys"], TransactionMode::ReadWrite).unwrap();
        tx.object_store("keys").unwrap().clear().unwrap().await.unwrap();
        assert!(tx.commit().unwrap().await.unwrap().is_committed());
        db.close();
        let before = raw_records(&name).await;
        let err = IdbStore::open(&name, None).await.err().expect("the open should fail");
        assert_eq!(err.code, ErrorCode::MemoryKeyMissing, "{err}");
        let after = raw_records(&name).await;
        assert_eq!(before.len(), after.len());
        assert!(after.iter().all(|(store, _, _)| store != "keys"), "a new key was made");
        assert!(before.iter().zip(&after).all(|(a, b)| a.0 == b.0 && a.1 == b.1));
    }

    /// The upgrade from v1 sets a flag in `meta` in its own transaction; an open that finds it
    /// (say the upgrading session ended before it re-sealed) re-seals the records and clears it.
    #[wasm_bindgen_test]
    async fn records_left_in_the_v1_format_are_resealed_by_the_next_open() {
        let name = Idb::new("reseal-later").db("m");
        let prefs = vec![PreferenceV1 { id: "p1".into(), text: "Keep answers short.".into(), weight: 1.5 }];
        write_v1(&name, &prefs, &[]).await;
        let m = Memory::new(IdbStore::open(&name, None).await.unwrap());
        drop(m);
        let flag = |records: &[(String, JsValue, JsValue)]| {
            records.iter().any(|(s, k, _)| s == "meta" && k.as_string().as_deref() == Some("reseal-v1"))
        };
        assert!(!flag(&raw_records(&name).await), "the flag outlived the re-seal");
        // Put p1 back in the v1 format (no associated data, no version) and the flag with it.
        let records = raw_records(&name).await;
        let key: web_sys::CryptoKey = records.iter().find(|r| r.0 == "keys").unwrap().2.clone().unchecked_into();
        let iv = padlock::memory::random_bytes::<12>().unwrap();
        let gcm = web_sys::AesGcmParams::new_with_u8_array("AES-GCM", &Uint8Array::from(&iv[..]));
        let plain = serde_json::to_vec(&prefs[0]).unwrap();
        let data = settle(subtle().encrypt_with_object_and_u8_array(&gcm, &key, &plain)).await;
        let db = Factory::new().unwrap().open(&name, None).unwrap().await.unwrap();
        let tx = db.transaction(&["preferences", "meta"], TransactionMode::ReadWrite).unwrap();
        let record = Object::new();
        Reflect::set(&record, &"id".into(), &"p1".into()).unwrap();
        Reflect::set(&record, &"iv".into(), &Uint8Array::from(&iv[..])).unwrap();
        Reflect::set(&record, &"data".into(), &data).unwrap();
        tx.object_store("preferences").unwrap().put(&record, None).unwrap().await.unwrap();
        let marker = Object::new();
        Reflect::set(&marker, &"id".into(), &"reseal-v1".into()).unwrap();
        Reflect::set(&marker, &"value".into(), &JsValue::TRUE).unwrap();
        tx.object_store("meta").unwrap().put(&marker, None).unwrap().await.unwrap();
        assert!(tx.commit().unwrap().await.unwrap().is_committed());
        db.close();
        let m = Memory::new(IdbStore::open(&name, None).await.unwrap());
        let after = raw_records(&name).await;
        assert!(!flag(&after), "the flag was not cleared");
        let p1 = after.iter().find(|(s, k, _)| s == "preferences" && k.as_string().as_deref() == Some("p1")).unwrap();
        assert_eq!(field(&p1.2, "v").as_f64(), Some(3.0), "p1 was not re-sealed");
        let loaded = m.preferences().await.unwrap();
        assert!(loaded.unreadable.is_empty());
        assert!(loaded.items.iter().any(|p| p.text == "Keep answers short."));
        m.forget().await.unwrap();
    }

    async fn raw_record(name: &str, store: &str, id: &str) -> JsValue {
        let records = raw_records(name).await;
        let found = records.into_iter().find(|(s, k, _)| s == store && k.as_string().as_deref() == Some(id));
        found.expect("the record exists").2
    }

    fn ids(loaded: &[padlock::memory::Unreadable]) -> Vec<&str> {
        loaded.iter().map(|u| u.id.as_str()).collect()
    }

    /// An older ciphertext of a record put back from outside padlock, or a record deleted from
    /// outside, is reported like a record that fails to decrypt; the others load, and removing
    /// it brings the memory back in order.
    #[wasm_bindgen_test]
    async fn an_older_copy_of_a_record_put_back_is_reported_and_the_others_load() {
        let name = Idb::new("rollback").db("m");
        let (m, a, b) = filled(&name).await;
        let old = raw_record(&name, "preferences", &a).await;
        m.update(&a, &PreferenceChange { weight: Some(2.0), ..Default::default() }).await.unwrap();
        let current = raw_record(&name, "preferences", &a).await;
        assert_ne!(field(&old, "rev").as_f64(), field(&current, "rev").as_f64());
        let put_back = |record: JsValue| {
            move |r: &JsValue| {
                for f in ["v", "rev", "iv", "data"] {
                    Reflect::set(r, &f.into(), &field(&record, f)).unwrap();
                }
            }
        };
        tamper(&name, "preferences", &a, put_back(old.clone())).await;
        let loaded = m.preferences().await.unwrap();
        assert_eq!(ids(&loaded.unreadable), [a.as_str()]);
        assert_eq!(loaded.unreadable[0].error.code, ErrorCode::DecryptFailed);
        assert!(loaded.unreadable[0].error.message.contains("older copy"), "{}", loaded.unreadable[0].error);
        let ok: Vec<&str> = loaded.items.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ok, [HARMLESS_ID, b.as_str()]);
        // Its revision cannot be raised to the current one: the revision is in the associated data.
        let now = field(&current, "rev");
        tamper(&name, "preferences", &a, move |r| {
            Reflect::set(r, &"rev".into(), &now).unwrap();
        })
        .await;
        let loaded = m.preferences().await.unwrap();
        assert_eq!(ids(&loaded.unreadable), [a.as_str()]);
        assert!(!loaded.unreadable[0].error.message.contains("older copy"), "it decrypted with an edited revision");
        // The current record put back reads again.
        tamper(&name, "preferences", &a, put_back(current)).await;
        let loaded = m.preferences().await.unwrap();
        assert!(loaded.unreadable.is_empty(), "{:?}", loaded.unreadable);
        assert_eq!(loaded.items.iter().find(|p| p.id == a).unwrap().weight, 2.0);
        // A record deleted from outside padlock.
        let db = Factory::new().unwrap().open(&name, None).unwrap().await.unwrap();
        let tx = db.transaction(&["preferences"], TransactionMode::ReadWrite).unwrap();
        tx.object_store("preferences").unwrap().delete(idb::Query::Key(b.as_str().into())).unwrap().await.unwrap();
        assert!(tx.commit().unwrap().await.unwrap().is_committed());
        db.close();
        tamper(&name, "preferences", &a, put_back(old)).await;
        let loaded = m.preferences().await.unwrap();
        let mut bad = ids(&loaded.unreadable);
        bad.sort();
        let mut expected = [a.as_str(), b.as_str()];
        expected.sort();
        assert_eq!(bad, expected);
        let gone = loaded.unreadable.iter().find(|u| u.id == b).unwrap();
        assert!(gone.error.message.contains("deleted from outside"), "{}", gone.error);
        m.remove(&a).await.unwrap();
        m.remove(&b).await.unwrap();
        let loaded = m.preferences().await.unwrap();
        assert!(loaded.unreadable.is_empty(), "{:?}", loaded.unreadable);
        assert_eq!(loaded.items.len(), 1);
        m.forget().await.unwrap();
    }

    /// Writes a database as version 2 did: the v2 stores, one preference sealed with
    /// `padlock/preferences/<id>` (no revision) as associated data, revision 1.
    async fn write_v2(name: &str, p: &Preference) {
        let mut request = Factory::new().unwrap().open(name, Some(2)).unwrap();
        request.on_upgrade_needed(|event| {
            use idb::DatabaseEvent;
            let db = event.database().unwrap();
            db.create_object_store("keys", ObjectStoreParams::new()).unwrap();
            for store in ["preferences", "events", "profile", "heads", "meta"] {
                let mut by_id = ObjectStoreParams::new();
                by_id.key_path(Some(KeyPath::new_single("id")));
                db.create_object_store(store, by_id).unwrap();
            }
        });
        let db = request.await.unwrap();
        let params = web_sys::AesKeyGenParams::new("AES-GCM", 256);
        let usages: js_sys::Array = ["encrypt", "decrypt"].iter().map(|s| JsValue::from_str(s)).collect();
        let key: web_sys::CryptoKey =
            settle(subtle().generate_key_with_object(&params, false, &usages)).await.unchecked_into();
        let iv = padlock::memory::random_bytes::<12>().unwrap();
        let gcm = web_sys::AesGcmParams::new_with_u8_array("AES-GCM", &Uint8Array::from(&iv[..]));
        gcm.set_additional_data_u8_array(&Uint8Array::from(format!("padlock/preferences/{}", p.id).as_bytes()));
        let plain = serde_json::to_vec(p).unwrap();
        let data = settle(subtle().encrypt_with_object_and_u8_array(&gcm, &key, &plain)).await;
        let record = Object::new();
        Reflect::set(&record, &"id".into(), &p.id.as_str().into()).unwrap();
        Reflect::set(&record, &"v".into(), &2.into()).unwrap();
        Reflect::set(&record, &"iv".into(), &Uint8Array::from(&iv[..])).unwrap();
        Reflect::set(&record, &"data".into(), &data).unwrap();
        let revision = Object::new();
        Reflect::set(&revision, &"id".into(), &"revision".into()).unwrap();
        Reflect::set(&revision, &"value".into(), &1.into()).unwrap();
        let tx = db.transaction(&["keys", "preferences", "meta"], TransactionMode::ReadWrite).unwrap();
        tx.object_store("keys").unwrap().put(&key, Some(&JsValue::from_str("records"))).unwrap().await.unwrap();
        tx.object_store("preferences").unwrap().put(&record, None).unwrap().await.unwrap();
        tx.object_store("meta").unwrap().put(&revision, None).unwrap().await.unwrap();
        assert!(tx.commit().unwrap().await.unwrap().is_committed());
        db.close();
    }

    /// A v2 memory is re-sealed by its first open (each record bound to its revision, the
    /// manifest written, the flag gone), and its v2 copy put back afterwards is refused.
    #[wasm_bindgen_test]
    async fn v2_records_are_resealed_with_their_revision_and_an_old_copy_is_then_refused() {
        let name = Idb::new("v2-reseal").db("m");
        let now = padlock::memory::now_millis();
        let p = Preference {
            id: "p1".into(),
            text: "Use metric units.".into(),
            weight: 1.5,
            learned: 0.25,
            learned_since: 0,
            merged: Vec::new(),
            always: false,
            enabled: true,
            source: Source::Explicit,
            created: now,
            updated: now,
        };
        write_v2(&name, &p).await;
        let before = raw_record(&name, "preferences", "p1").await;
        let m = Memory::new(IdbStore::open(&name, None).await.unwrap());
        let after = raw_records(&name).await;
        let p1 = after.iter().find(|(s, k, _)| s == "preferences" && k.as_string().as_deref() == Some("p1")).unwrap();
        assert_eq!(field(&p1.2, "v").as_f64(), Some(3.0));
        assert_eq!(field(&p1.2, "rev").as_f64(), Some(2.0), "sealed at the revision after the v2 one");
        let meta: Vec<String> = after.iter().filter(|r| r.0 == "meta").filter_map(|r| r.1.as_string()).collect();
        assert_eq!(meta, ["manifest", "revision"]);
        let loaded = m.preferences().await.unwrap();
        assert!(loaded.unreadable.is_empty(), "{:?}", loaded.unreadable);
        assert_eq!(loaded.items.iter().find(|q| q.id == "p1"), Some(&p));
        tamper(&name, "preferences", "p1", move |r| {
            for f in ["v", "iv", "data"] {
                Reflect::set(r, &f.into(), &field(&before, f)).unwrap();
            }
            Reflect::delete_property(r.unchecked_ref::<Object>(), &"rev".into()).unwrap();
        })
        .await;
        let loaded = m.preferences().await.unwrap();
        assert_eq!(ids(&loaded.unreadable), ["p1"]);
        assert!(loaded.unreadable[0].error.message.contains("older format"), "{}", loaded.unreadable[0].error);
        m.forget().await.unwrap();
    }
}
