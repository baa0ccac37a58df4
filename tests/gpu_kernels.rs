//! Every GPU kernel against the CPU backend (and the products against f64), natively on
//! whatever adapter wgpu finds — in CI, lavapipe (Mesa's Vulkan on the CPU). Both kernel
//! families run (workgroup: what a GPU gets, with subgroups where offered; per-thread: what
//! a software adapter gets), plus the workgroup family without subgroups. The same cases run
//! in headless Chromium on SwiftShader (tests/wasm_gpu.rs).
#![cfg(all(not(target_arch = "wasm32"), feature = "gpu"))]

#[path = "common/backend_cases.rs"]
mod cases;
#[path = "common/gguf_writer.rs"]
mod gguf_writer;
#[path = "common/kernels.rs"]
mod kernels;

use cases::{compare, Output};
use padlock::backend::cpu::CpuBackend;
use padlock::backend::gpu::{GpuBackend, GpuOptions, Kernels};

fn gpu(options: GpuOptions) -> GpuBackend {
    let b = pollster::block_on(GpuBackend::with_options(options))
        .expect("a WebGPU adapter (natively: a Vulkan driver; lavapipe is `apt-get install mesa-vulkan-drivers`)");
    eprintln!("adapter: {:?}", b.info());
    b
}

/// The configurations every case runs on.
fn configurations() -> Vec<GpuOptions> {
    vec![
        GpuOptions { subgroups: true, kernels: Kernels::Workgroup, ..Default::default() },
        GpuOptions { subgroups: false, kernels: Kernels::Workgroup, ..Default::default() },
        GpuOptions { subgroups: false, kernels: Kernels::PerThread, ..Default::default() },
    ]
}

/// Runs `case` on the CPU backend, then on each GPU configuration, and compares.
fn against_cpu(case: impl Fn(&CpuBackend, &mut Vec<Output>), on_gpu: impl Fn(&GpuBackend, &mut Vec<Output>)) {
    let mut reference = Vec::new();
    case(&CpuBackend::new(), &mut reference);
    for options in configurations() {
        let b = gpu(options.clone());
        if options.subgroups && !b.info().subgroups {
            eprintln!("this adapter offers no subgroups; skipping that configuration");
            continue;
        }
        let mut out = Vec::new();
        on_gpu(&b, &mut out);
        compare(&reference, &out, &format!("{options:?}"));
    }
}

#[test]
fn matrix_products_match_the_cpu_and_f64() {
    let file = cases::random_file(1);
    against_cpu(
        |b, out| pollster::block_on(cases::matmul_cases(b, &file, out, true)),
        |b, out| pollster::block_on(cases::matmul_cases(b, &file, out, true)),
    );
}

#[test]
fn embedding_norm_rope_swiglu_add_rows_match_the_cpu() {
    let file = cases::random_file(3);
    against_cpu(
        |b, out| pollster::block_on(cases::elementwise_cases(b, &file, out)),
        |b, out| pollster::block_on(cases::elementwise_cases(b, &file, out)),
    );
}

#[test]
fn paged_attention_matches_the_cpu() {
    against_cpu(
        |b, out| pollster::block_on(cases::attention_cases(b, out)),
        |b, out| pollster::block_on(cases::attention_cases(b, out)),
    );
}

#[test]
fn lm_head_at_the_candidates_matches_the_cpu() {
    let file = cases::random_file(5);
    against_cpu(
        |b, out| pollster::block_on(cases::lm_head_cases(b, &file, out)),
        |b, out| pollster::block_on(cases::lm_head_cases(b, &file, out)),
    );
}

#[test]
fn top_k_readback_returns_exactly_the_wanted_logits() {
    against_cpu(
        |b, out| pollster::block_on(cases::top_k_cases(b, out)),
        |b, out| pollster::block_on(cases::top_k_cases(b, out)),
    );
}
