//! Replays the fuzz corpus kept in `fuzz/corpus/<target>/` and every crash cargo fuzz found
//! (`fuzz/artifacts/<target>/`) through the same target bodies, on the stable toolchain: an
//! input that once crashed stays a test.
// Native only: it reads the corpus from the source tree.
#![cfg(not(target_arch = "wasm32"))]

#[path = "common/fuzz_bodies.rs"]
mod bodies;

use std::path::Path;

/// Runs `body` on every file kept for `target`; returns how many there were.
fn replay(target: &str, body: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut n = 0;
    for dir in [root.join("corpus").join(target), root.join("artifacts").join(target)] {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| body(&data));
            assert!(outcome.is_ok(), "{} panics", path.display());
            n += 1;
        }
    }
    n
}

#[test]
fn the_gguf_corpus_loads_or_fails_cleanly() {
    assert!(replay("gguf_load", bodies::gguf_load) > 0, "no corpus kept for gguf_load");
}

#[test]
fn the_memory_import_corpus_imports_or_fails_cleanly() {
    assert!(replay("memory_import", bodies::memory_import) > 0, "no corpus kept for memory_import");
}

#[test]
fn the_chat_request_corpus_parses_or_fails_cleanly() {
    assert!(replay("chat_request", bodies::chat_request) > 0, "no corpus kept for chat_request");
}
