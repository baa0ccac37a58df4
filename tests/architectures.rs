//! Every architecture padlock runs (llama with Llama 3's RoPE, qwen2, qwen3, gemma2, gemma3), on tiny models
//! with random weights, against llama.cpp's logits on the same files
//! (`tests/fixtures/tiny_models.json`, written by `scripts/tiny_models.py`), on the CPU
//! backend and, where wgpu finds an adapter (lavapipe in CI), the GPU backend.
#![cfg(not(target_arch = "wasm32"))]

#[path = "common/gguf_writer.rs"]
mod gguf_writer;
#[path = "common/kernels.rs"]
mod kernels;
#[path = "common/tiny_models.rs"]
mod tiny_models;

use std::sync::Arc;

use padlock::backend::cpu::CpuBackend;
use padlock::backend::Backend;
use padlock::generate::Engine;
use padlock::gguf::GgufFile;
use padlock::model::llama::{Llama, Logits};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tiny_models::{probe_tokens, TinyModel, TINY_MODELS};

fn fixture() -> &'static Value {
    static FIXTURE: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tiny_models.json");
        serde_json::from_str(&std::fs::read_to_string(path).expect("read the fixture")).expect("parse the fixture")
    })
}

/// The model's file, checked to be the one llama.cpp's logits were recorded on.
fn model_file(model: &TinyModel) -> (Arc<Vec<u8>>, &'static Value) {
    let reference = &fixture()[model.name];
    let bytes = model.gguf();
    let sha = format!("{:x}", Sha256::digest(&bytes));
    assert_eq!(
        reference["sha256"].as_str(),
        Some(sha.as_str()),
        "{}: the file differs from the one llama.cpp ran (regenerate: scripts/tiny_models.py)",
        model.name
    );
    (Arc::new(bytes), reference)
}

/// Logits of every position of the probe tokens, `[positions, vocab]`.
fn logits<B: Backend>(backend: B, bytes: &Arc<Vec<u8>>) -> (Vec<f32>, usize) {
    let file = GgufFile::parse(bytes.clone()).expect("the tiny model parses");
    let model = Llama::load(backend, &file, &mut |_| {}).expect("the tiny model loads");
    let vocab = model.config.vocab_size;
    let tokens = probe_tokens(vocab);
    let mut seq = model.new_sequence().expect("sequence");
    let out = pollster::block_on(model.forward_one(&mut seq, &tokens, Logits::All)).expect("forward");
    assert_eq!(out.len(), tokens.len() * vocab);
    (out, vocab)
}

fn argmax(row: &[f32]) -> usize {
    row.iter().enumerate().fold(0, |best, (i, v)| if *v > row[best] { i } else { best })
}

/// How padlock's logits compare with llama.cpp's on one file.
struct Agreement {
    /// Positions whose top-1 equals llama.cpp's, of all positions.
    same: usize,
    positions: usize,
    /// Positions where llama.cpp's top-1 leads its second by more than `CLEAR_LEAD`, and
    /// how many of those have padlock's top-1 differ.
    clear: usize,
    clear_differ: usize,
    /// Largest |Δlogit| over llama.cpp's top 5 and its 32 probe ids at every position.
    max_diff: f32,
}

/// A lead no rounding of 8-bit activations (llama.cpp's, for Q8_0 weights) can overturn here:
/// the logits it moves move by up to ~0.4, but top-1 and top-2 by about the same.
const CLEAR_LEAD: f64 = 0.1;

fn against_llamacpp(logits: &[f32], vocab: usize, reference: &Value) -> Agreement {
    let ids = |v: &Value| -> Vec<usize> {
        v.as_array().expect("ids").iter().map(|i| i.as_u64().expect("id") as usize).collect()
    };
    let probe_ids = ids(&reference["probe_ids"]);
    let positions = reference["positions"].as_array().expect("positions");
    let mut a = Agreement { same: 0, positions: positions.len(), clear: 0, clear_differ: 0, max_diff: 0.0 };
    for (row, pos) in logits.chunks_exact(vocab).zip(positions) {
        let top: Vec<(usize, f64)> = pos["top"]
            .as_array()
            .expect("top")
            .iter()
            .map(|t| (t[0].as_u64().expect("id") as usize, t[1].as_f64().expect("logit")))
            .collect();
        let same = argmax(row) == top[0].0;
        a.same += same as usize;
        if top[0].1 - top[1].1 > CLEAR_LEAD {
            a.clear += 1;
            a.clear_differ += !same as usize;
        }
        let probes = pos["probe"].as_array().expect("probe").iter().map(|v| v.as_f64().expect("logit"));
        for (id, want) in top.iter().copied().chain(probe_ids.iter().copied().zip(probes)) {
            a.max_diff = a.max_diff.max((row[id] as f64 - want).abs() as f32);
        }
    }
    a
}

#[test]
fn every_architecture_gives_llamacpps_logits_on_the_cpu() {
    for model in &TINY_MODELS {
        let (bytes, reference) = model_file(model);
        let (logits, vocab) = logits(CpuBackend::new(), &bytes);
        let a = against_llamacpp(&logits, vocab, reference);
        eprintln!(
            "{}: top-1 = llama.cpp's at {}/{} positions ({} of {} with a clear lead differ), largest |Δlogit| {:.2e}",
            model.name, a.same, a.positions, a.clear_differ, a.clear, a.max_diff
        );
        if model.matrix_type == 0 {
            // f32 weights, and llama.cpp run with an f32 KV cache: the same sums in another order;
            // but ggml's GELU (Gemma) looks its values up in a table indexed by the f16 input.
            let tolerance = if model.architecture.starts_with("gemma") { 5e-3 } else { 2e-4 };
            assert_eq!(a.same, a.positions, "{}: top-1 differs from llama.cpp's", model.name);
            assert!(a.max_diff <= tolerance, "{}: a logit differs from llama.cpp's by {}", model.name, a.max_diff);
        } else {
            // llama.cpp rounds the activations to 8 bits for Q8_0 weights, padlock does not:
            // near-ties may go either way, a clear lead may not.
            assert_eq!(a.clear_differ, 0, "{}: top-1 differs where llama.cpp's leads clearly", model.name);
            assert!(a.clear * 4 >= a.positions * 3, "{}: too few clear leads to check ({})", model.name, a.clear);
            assert!(a.max_diff <= 0.5, "{}: a logit differs from llama.cpp's by {}", model.name, a.max_diff);
        }
    }
}

#[test]
fn every_architecture_loads_as_an_engine_with_its_tokenizer_and_template() {
    for model in &TINY_MODELS {
        let (bytes, _) = model_file(model);
        let engine = Engine::load(CpuBackend::new(), bytes, &mut |_| {}).expect("the tiny model loads");
        assert_eq!(engine.model.config.architecture, model.architecture);
        let ids = engine.tokenizer.encode("Hello, world! 12345").expect("encode");
        assert_eq!(engine.tokenizer.decode(&ids).expect("decode"), "Hello, world! 12345");
    }
}

#[cfg(feature = "gpu")]
#[test]
fn every_architecture_gives_the_same_logits_on_the_gpu() {
    use padlock::backend::gpu::GpuBackend;
    for model in &TINY_MODELS {
        let (bytes, _) = model_file(model);
        let (cpu, vocab) = logits(CpuBackend::new(), &bytes);
        let gpu_backend =
            pollster::block_on(GpuBackend::new()).expect("a WebGPU adapter (lavapipe: mesa-vulkan-drivers)");
        let (gpu, _) = logits(gpu_backend, &bytes);
        let rows = cpu.len() / vocab;
        let same = cpu.chunks_exact(vocab).zip(gpu.chunks_exact(vocab)).filter(|(c, g)| argmax(c) == argmax(g)).count();
        let max_diff = cpu.iter().zip(&gpu).fold(0f32, |m, (c, g)| m.max((c - g).abs()));
        eprintln!("{}: GPU top-1 = CPU's at {same}/{rows} positions, largest |Δlogit| {max_diff:.2e}", model.name);
        assert!(same * 100 >= rows * 99, "{}: GPU top-1 equals the CPU's at only {same} of {rows}", model.name);
        assert!(max_diff < 1e-3, "{}: a GPU logit differs from the CPU's by {max_diff}", model.name);
    }
}
