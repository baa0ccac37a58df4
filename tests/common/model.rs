//! The default model and llama.cpp's reference answers, for the native tests.
//! The model is fetched by `make test` (scripts/fetch-model.sh); a test run without it
//! fails loudly rather than skipping.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use padlock::backend::cpu::CpuBackend;
use padlock::generate::Engine;

pub fn model_path() -> PathBuf {
    std::env::var_os("PADLOCK_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/SmolLM2-135M-Instruct.Q4_1.gguf"))
}

pub fn model_bytes() -> Arc<Vec<u8>> {
    static BYTES: OnceLock<Arc<Vec<u8>>> = OnceLock::new();
    BYTES
        .get_or_init(|| {
            let path = model_path();
            Arc::new(std::fs::read(&path).unwrap_or_else(|e| {
                panic!("the default model is missing at {} ({e}); run `make model` (or `make test`)", path.display())
            }))
        })
        .clone()
}

pub fn engine() -> Engine<CpuBackend> {
    Engine::load(CpuBackend::new(), model_bytes(), &mut |_| {}).expect("the default model loads")
}

/// llama.cpp's answers for the default model (a copy of ../shared/reference).
pub fn fixture() -> serde_json::Value {
    fixture_file("smollm2-135m-instruct-q4_1.llamacpp.json")
}

pub fn fixture_file(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("fixture is JSON")
}
