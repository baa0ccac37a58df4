//! The GPU kernels in headless Chromium (WebGPU on SwiftShader, with --enable-unsafe-webgpu
//! from webdriver.json) against the CPU backend in the same page: the cases of
//! tests/common/backend_cases.rs, on both kernel families, and the tiny model of every
//! architecture (tests/common/tiny_models.rs).
//!
//!     wasm-pack test --headless --chrome --chromedriver /usr/bin/chromedriver --release -- --test wasm_gpu
#![cfg(all(target_arch = "wasm32", feature = "gpu"))]

#[path = "common/backend_cases.rs"]
mod cases;
#[path = "common/gguf_writer.rs"]
mod gguf_writer;
#[path = "common/kernels.rs"]
mod kernels;
#[path = "common/tiny_models.rs"]
mod tiny_models;

use cases::{compare, Output};
use padlock::backend::cpu::CpuBackend;
use padlock::backend::gpu::{GpuBackend, GpuOptions, Kernels};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

async fn gpu(kernels: Kernels) -> GpuBackend {
    let b = GpuBackend::with_options(GpuOptions { kernels, ..Default::default() })
        .await
        .expect("a WebGPU adapter (Chromium needs --enable-unsafe-webgpu without a GPU)");
    web_sys::console::log_1(&format!("adapter: {:?}", b.info()).into());
    b
}

#[wasm_bindgen_test]
async fn the_adapter_is_webgpu_and_software_gets_per_thread_kernels() {
    let b = gpu(Kernels::Auto).await;
    let info = b.info();
    assert_eq!(info.api, "webgpu");
    // SwiftShader is a fallback adapter: the per-thread kernels, and no subgroups through wgpu.
    assert_eq!(info.device_type, "cpu", "{info:?}");
    assert_eq!(info.kernels, "per-thread");
    assert!(!info.subgroups);
}

#[wasm_bindgen_test]
async fn matrix_products_match_the_cpu_and_f64() {
    let file = cases::random_file(1);
    let mut reference = Vec::new();
    cases::matmul_cases(&CpuBackend::new(), &file, &mut reference, true).await;
    for kernels in [Kernels::PerThread, Kernels::Workgroup] {
        let mut out: Vec<Output> = Vec::new();
        cases::matmul_cases(&gpu(kernels).await, &file, &mut out, true).await;
        compare(&reference, &out, &format!("{kernels:?}"));
    }
}

#[wasm_bindgen_test]
async fn embedding_norm_rope_swiglu_add_rows_match_the_cpu() {
    let file = cases::random_file(3);
    let mut reference = Vec::new();
    cases::elementwise_cases(&CpuBackend::new(), &file, &mut reference).await;
    for kernels in [Kernels::PerThread, Kernels::Workgroup] {
        let mut out = Vec::new();
        cases::elementwise_cases(&gpu(kernels).await, &file, &mut out).await;
        compare(&reference, &out, &format!("{kernels:?}"));
    }
}

#[wasm_bindgen_test]
async fn paged_attention_matches_the_cpu() {
    let mut reference = Vec::new();
    cases::attention_cases(&CpuBackend::new(), &mut reference).await;
    for kernels in [Kernels::PerThread, Kernels::Workgroup] {
        let mut out = Vec::new();
        cases::attention_cases(&gpu(kernels).await, &mut out).await;
        compare(&reference, &out, &format!("{kernels:?}"));
    }
}

#[wasm_bindgen_test]
async fn lm_head_at_the_candidates_matches_the_cpu() {
    let file = cases::random_file(5);
    let mut reference = Vec::new();
    cases::lm_head_cases(&CpuBackend::new(), &file, &mut reference).await;
    let mut out = Vec::new();
    cases::lm_head_cases(&gpu(Kernels::Auto).await, &file, &mut out).await;
    compare(&reference, &out, "webgpu");
}

#[wasm_bindgen_test]
async fn top_k_readback_returns_exactly_the_wanted_logits() {
    let mut reference = Vec::new();
    cases::top_k_cases(&CpuBackend::new(), &mut reference).await;
    let mut out = Vec::new();
    cases::top_k_cases(&gpu(Kernels::Auto).await, &mut out).await;
    compare(&reference, &out, "webgpu");
}

/// Every architecture's tiny model (f32 weights, a 512-id vocabulary) gives the CPU's logits
/// on WebGPU, with both kernel families.
#[wasm_bindgen_test]
async fn every_architecture_gives_the_cpus_logits_on_webgpu() {
    use padlock::backend::Backend;
    use padlock::model::llama::{Llama, Logits};

    async fn logits<B: Backend>(backend: B, bytes: &std::sync::Arc<Vec<u8>>) -> Vec<f32> {
        let file = padlock::gguf::GgufFile::parse(bytes.clone()).expect("the tiny model parses");
        let model = Llama::load(backend, &file, &mut |_| {}).expect("the tiny model loads");
        let tokens = tiny_models::probe_tokens(model.config.vocab_size);
        let mut seq = model.new_sequence().expect("sequence");
        model.forward_one(&mut seq, &tokens, Logits::All).await.expect("forward")
    }
    for model in tiny_models::TINY_MODELS.iter().filter(|m| m.matrix_type == 0) {
        let bytes = std::sync::Arc::new(model.gguf_without_tokenizer(512));
        let cpu = logits(CpuBackend::new(), &bytes).await;
        for kernels in [Kernels::PerThread, Kernels::Workgroup] {
            let gpu = logits(gpu(kernels).await, &bytes).await;
            let max_diff = cpu.iter().zip(&gpu).fold(0f32, |m, (c, g)| m.max((c - g).abs()));
            web_sys::console::log_1(&format!("{} {kernels:?}: largest |Δlogit| {max_diff:.2e}", model.name).into());
            assert!(max_diff < 1e-3, "{} {kernels:?}: a logit differs from the CPU's by {max_diff}", model.name);
        }
    }
}
