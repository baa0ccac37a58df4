//! Loading the model on the backend a command asks for.

use std::sync::Arc;

use padlock::backend::cpu::{quant, CpuBackend};
use padlock::backend::{Backend, BackendChoice};
use padlock::generate::Engine;
use padlock::{Error, ErrorCode, Result};

use crate::options::BackendArgs;

pub fn read_model(path: &str) -> Result<Arc<Vec<u8>>> {
    let bytes = std::fs::read(path).map_err(|e| Error::new(ErrorCode::Io, format!("{path}: {e}")))?;
    Ok(Arc::new(bytes))
}

/// The model on the CPU (making pairs, training heads and the evaluation run there).
pub fn load(path: &str) -> Result<Engine<CpuBackend>> {
    Engine::load(CpuBackend::new(), read_model(path)?, &mut |_| {})
}

/// What a command does with a loaded engine, whichever backend it is on.
pub trait WithEngine {
    fn run<B: Backend>(self, engine: Engine<B>, about: String) -> Result<()>;
}

/// Loads the model on the backend `args` asks for and hands it to `job`.
pub fn with_engine(model: &str, args: &BackendArgs, job: impl WithEngine) -> Result<()> {
    let bytes = read_model(model)?;
    #[cfg(feature = "gpu")]
    if args.backend != BackendChoice::Cpu {
        use padlock::backend::gpu::{GpuBackend, GpuOptions};
        let options = GpuOptions { subgroups: !args.no_subgroups, kernels: args.kernels, ..Default::default() };
        match pollster::block_on(GpuBackend::with_options(options)) {
            Ok(gpu) => {
                let i = gpu.info().clone();
                let about = format!(
                    "webgpu on {} ({}, {}, {} kernels{})",
                    i.name,
                    i.api,
                    i.device_type,
                    i.kernels,
                    if i.subgroups { ", subgroups" } else { "" }
                );
                return job.run(Engine::load(gpu, bytes, &mut |_| {})?, about);
            }
            Err(e) if args.backend == BackendChoice::Auto => eprintln!("[no GPU ({}); using the CPU]", e.message),
            Err(e) => return Err(e),
        }
    }
    #[cfg(not(feature = "gpu"))]
    if args.backend == BackendChoice::Gpu {
        return Err(Error::new(ErrorCode::GpuUnavailable, "this build has no GPU backend (feature `gpu`)"));
    }
    job.run(Engine::load(CpuBackend::new(), bytes, &mut |_| {})?, format!("cpu, kernel {}", quant::kernel_name()))
}
