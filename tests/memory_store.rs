//! The preference-store suite (tests/common/memory_suite.rs) over both implementations:
//!
//!     cargo test --release --test memory_store                      # FileStore, natively
//!     make wasm-test WASM_TEST_ARGS='--no-default-features --test memory_store'
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
        );
    };
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::path::PathBuf;

    use padlock::memory::file::FileStore;
    use padlock::memory::schema::{FeedbackV1, PreferenceV1};
    use padlock::memory::{FeedbackInput, FeedbackKind, Memory, Response, Reward, Source, HARMLESS_ID};

    use super::suite;

    /// A fresh directory per test, removed afterwards.
    pub struct Files {
        root: PathBuf,
    }

    impl Files {
        pub fn new(test: &str) -> Self {
            let root = std::env::temp_dir().join(format!("padlock-memory-{test}-{}", padlock::memory::new_id().unwrap()));
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
                        let r = |v: f32| Response {
                            text: "x".into(),
                            tokens: 1,
                            rewards: vec![
                                Reward { preference: HARMLESS_ID.into(), value: 0.0 },
                                Reward { preference: a.clone(), value: v },
                            ],
                        };
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

