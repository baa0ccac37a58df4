//! The GPU kernels in headless Chromium (WebGPU on SwiftShader, with --enable-unsafe-webgpu
//! from webdriver.json) against the CPU backend in the same page: the cases of
//! tests/common/backend_cases.rs, on both kernel families.
//!
//!     wasm-pack test --headless --chrome --chromedriver /usr/bin/chromedriver --release -- --test wasm_gpu
#![cfg(all(target_arch = "wasm32", feature = "gpu"))]

#[path = "common/backend_cases.rs"]
mod cases;
#[path = "common/gguf_writer.rs"]
mod gguf_writer;
#[path = "common/kernels.rs"]
mod kernels;

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
