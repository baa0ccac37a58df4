//! Every GPU kernel against the CPU backend (and the products against f64), natively on
//! whatever adapter wgpu finds — in CI, lavapipe (Mesa's Vulkan on the CPU). The same cases
//! run in headless Chromium on SwiftShader (tests/wasm_gpu.rs).
#![cfg(all(not(target_arch = "wasm32"), feature = "gpu"))]

#[path = "common/backend_cases.rs"]
mod cases;
#[path = "common/gguf_writer.rs"]
mod gguf_writer;

use cases::compare;
use padlock::backend::cpu::CpuBackend;
use padlock::backend::gpu::{GpuBackend, GpuOptions};

fn gpu(options: GpuOptions) -> GpuBackend {
    let b = pollster::block_on(GpuBackend::with_options(options))
        .expect("a WebGPU adapter (natively: a Vulkan driver; lavapipe is `apt-get install mesa-vulkan-drivers`)");
    eprintln!("adapter: {:?}", b.info());
    b
}

#[test]
fn matrix_products_match_the_cpu_and_f64() {
    let file = cases::random_file(1);
    let mut cpu = Vec::new();
    pollster::block_on(cases::matmul_cases(&CpuBackend::new(), &file, &mut cpu, true));
    let mut gpu_out = Vec::new();
    pollster::block_on(cases::matmul_cases(&gpu(GpuOptions::default()), &file, &mut gpu_out, true));
    compare(&cpu, &gpu_out, "gpu");
}

#[test]
fn subgroup_and_workgroup_reductions_agree() {
    let file = cases::random_file(2);
    let plain = gpu(GpuOptions { subgroups: false });
    assert!(!plain.info().subgroups);
    let mut a = Vec::new();
    pollster::block_on(cases::matmul_cases(&plain, &file, &mut a, true));
    let sub = gpu(GpuOptions { subgroups: true });
    if !sub.info().subgroups {
        eprintln!("this adapter offers no subgroups: only the workgroup reduction was tested");
        return;
    }
    let mut b = Vec::new();
    pollster::block_on(cases::matmul_cases(&sub, &file, &mut b, true));
    compare(&a, &b, "subgroups");
}

#[test]
fn embedding_norm_rope_swiglu_add_rows_match_the_cpu() {
    let file = cases::random_file(3);
    let mut cpu = Vec::new();
    pollster::block_on(cases::elementwise_cases(&CpuBackend::new(), &file, &mut cpu));
    let mut g = Vec::new();
    pollster::block_on(cases::elementwise_cases(&gpu(GpuOptions::default()), &file, &mut g));
    compare(&cpu, &g, "gpu");
}

#[test]
fn paged_attention_matches_the_cpu() {
    let mut cpu = Vec::new();
    pollster::block_on(cases::attention_cases(&CpuBackend::new(), &mut cpu));
    let mut g = Vec::new();
    pollster::block_on(cases::attention_cases(&gpu(GpuOptions::default()), &mut g));
    compare(&cpu, &g, "gpu");
}

#[test]
fn top_k_readback_returns_exactly_the_wanted_logits() {
    let mut cpu = Vec::new();
    pollster::block_on(cases::top_k_cases(&CpuBackend::new(), &mut cpu));
    let mut g = Vec::new();
    pollster::block_on(cases::top_k_cases(&gpu(GpuOptions::default()), &mut g));
    compare(&cpu, &g, "gpu");
}
