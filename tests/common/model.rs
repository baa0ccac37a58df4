//! The default model and llama.cpp's reference answers, for the native tests.
//! The model is fetched by `make test` (scripts/fetch-model.sh); a test run without it
//! fails loudly rather than skipping.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use padlock::backend::cpu::CpuBackend;
use padlock::backend::Backend;
use padlock::generate::{Engine, GenerateOptions, Generation};
use padlock::model::llama::Logits;
use padlock::ErrorCode;

/// The repository's root (the workspace's, also for the `padlock-cli` package's tests).
pub fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.ancestors().find(|d| d.join("Cargo.lock").is_file()).map_or(manifest.clone(), PathBuf::from)
}

pub fn model_path() -> PathBuf {
    std::env::var_os("PADLOCK_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf"))
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
    let path = root().join("tests/fixtures").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("fixture is JSON")
}

/// Bad input is a typed error and changes nothing, on any backend: the sequence keeps its
/// length and its next step gives (within `tol`) what a fresh sequence gives.
pub fn bad_input_changes_nothing<B: Backend>(engine: &Engine<B>, tol: f32) {
    let model = &engine.model;
    let ctx = model.config.context_length;
    let mut seq = model.new_sequence().unwrap();
    pollster::block_on(model.forward_one(&mut seq, &[1, 2, 3], Logits::Last)).unwrap();

    let too_long = vec![198u32; ctx];
    let err = pollster::block_on(model.forward_one(&mut seq, &too_long, Logits::Last)).unwrap_err();
    assert_eq!(err.code, ErrorCode::PromptTooLong);
    let err = pollster::block_on(model.forward_one(&mut seq, &[u32::MAX], Logits::Last)).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
    assert_eq!(seq.len(), 3, "a failed step must leave the sequence as it was");
    // And the sequence still works, giving what a fresh one gives.
    let after = pollster::block_on(model.forward_one(&mut seq, &[4], Logits::Last)).unwrap();
    let mut fresh = model.new_sequence().unwrap();
    let expect = pollster::block_on(model.forward_one(&mut fresh, &[1, 2, 3, 4], Logits::Last)).unwrap();
    let max = after.iter().zip(&expect).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(max <= tol, "after the errors: max |difference| {max} > {tol}");

    // A chat prompt longer than the context.
    let long_prompt = "word ".repeat(ctx + 10);
    let err = pollster::block_on(Generation::chat(engine, &long_prompt, &GenerateOptions::default())).err().unwrap();
    assert_eq!(err.code, ErrorCode::PromptTooLong);
}

/// A shipped value head without its `persrm_context` metadata: the same matrix, accepted with
/// either context style. The parity tests use the heads as fixed non-identity matrices, on the
/// short system-message contexts that slow backends can afford.
pub fn shipped_head_any_context(name: &str) -> Vec<u8> {
    let bytes = std::fs::read(root().join(format!("heads/{name}.safetensors"))).expect("a shipped head");
    let file = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    safetensors::serialize(file.tensors(), None).expect("the same tensors, no metadata")
}
