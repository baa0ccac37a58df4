//! Setting the backend up: the options, the adapter and device request, and what the
//! backend reports about the adapter it got.

use std::sync::{Arc, Mutex};

use super::GpuBackend;
use crate::error::{Error, ErrorCode, Result};

/// Which family of kernels runs the matrix products, the norm and attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Kernels {
    /// `PerThread` on a software adapter (lavapipe, SwiftShader), `Workgroup` on a GPU.
    Auto,
    /// Threads of a workgroup share an output row (reduced in workgroup memory or with
    /// subgroups); the mat-mul tiles through workgroup memory. What a GPU wants.
    Workgroup,
    /// One thread per output row (and attention head) and no barriers: what a software
    /// adapter wants, which runs a workgroup's invocations on one CPU thread and pays for
    /// every barrier with a switch between them.
    PerThread,
}

/// How to set the backend up.
#[derive(Debug, Clone)]
pub struct GpuOptions {
    /// Use `subgroups` when the adapter offers them (else the workgroup-memory reduction).
    pub subgroups: bool,
    pub kernels: Kernels,
    /// Bind at most this many bytes per buffer even if the adapter allows more (to test the
    /// limit checks, or to leave room for other work on the GPU).
    pub max_storage_binding: Option<u64>,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions { subgroups: true, kernels: Kernels::Auto, max_storage_binding: None }
    }
}

/// What the backend runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuInfo {
    /// The adapter's name ("llvmpipe (LLVM ...)", "SwiftShader Device ...", a GPU's name).
    pub name: String,
    /// The API underneath: "vulkan", "metal", "dx12", "webgpu".
    pub api: String,
    /// "cpu" for a software adapter (lavapipe, SwiftShader), else "gpu".
    pub device_type: String,
    /// Whether the kernels use subgroup operations.
    pub subgroups: bool,
    /// The kernel family in use: "per-thread" or "workgroup".
    pub kernels: String,
}

impl GpuInfo {
    fn new(adapter: &wgpu::AdapterInfo, subgroups: bool, per_thread: bool) -> Self {
        GpuInfo {
            name: adapter.name.clone(),
            api: match adapter.backend {
                wgpu::Backend::Vulkan => "vulkan",
                wgpu::Backend::Metal => "metal",
                wgpu::Backend::Dx12 => "dx12",
                wgpu::Backend::BrowserWebGpu => "webgpu",
                _ => "other",
            }
            .into(),
            device_type: if adapter.device_type == wgpu::DeviceType::Cpu { "cpu" } else { "gpu" }.into(),
            subgroups,
            kernels: if per_thread { "per-thread" } else { "workgroup" }.into(),
        }
    }
}

impl GpuBackend {
    /// The default adapter (the high-performance one where there are several), with
    /// subgroups where offered. `GPU_UNAVAILABLE` when there is none.
    pub async fn new() -> Result<Self> {
        Self::with_options(GpuOptions::default()).await
    }

    pub async fn with_options(options: GpuOptions) -> Result<Self> {
        let adapter = request_adapter().await?;
        let adapter_info = adapter.get_info();
        let software = adapter_info.device_type == wgpu::DeviceType::Cpu;
        let per_thread = match options.kernels {
            Kernels::Auto => software,
            k => k == Kernels::PerThread,
        };
        let subgroups = !per_thread && options.subgroups && adapter.features().contains(wgpu::Features::SUBGROUP);
        let (device, queue) = request_device(&adapter, subgroups, options.max_storage_binding).await?;
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            sink.lock().unwrap_or_else(|p| p.into_inner()).push(e.to_string());
        }));
        let info = GpuInfo::new(&adapter_info, subgroups, per_thread);
        Ok(GpuBackend::on_device(device, queue, errors, info, per_thread))
    }
}

async fn request_adapter() -> Result<wgpu::Adapter> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    instance
        .request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        })
        .await
        .map_err(|e| {
            // In a browser the detail (which native APIs were not compiled in) says nothing useful.
            let detail = if cfg!(target_arch = "wasm32") { String::new() } else { format!(": {e}") };
            Error::new(ErrorCode::GpuUnavailable, format!("no WebGPU adapter{detail}"))
        })
}

/// A device with everything the adapter allows (the binding sizes decide which models fit),
/// storage bindings capped at `max_storage_binding` if given.
async fn request_device(
    adapter: &wgpu::Adapter,
    subgroups: bool,
    max_storage_binding: Option<u64>,
) -> Result<(wgpu::Device, wgpu::Queue)> {
    let features = if subgroups { wgpu::Features::SUBGROUP } else { wgpu::Features::empty() };
    let mut limits = adapter.limits();
    if let Some(cap) = max_storage_binding {
        limits.max_storage_buffer_binding_size = limits.max_storage_buffer_binding_size.min(cap);
    }
    adapter
        .request_device(&wgpu::DeviceDescriptor {
            label: Some("padlock"),
            required_features: features,
            required_limits: limits,
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        })
        .await
        .map_err(|e| Error::new(ErrorCode::GpuUnavailable, format!("the WebGPU adapter refused a device: {e}")))
}
