//! The WebGPU backend (`wgpu`: the browser's WebGPU on wasm32; Vulkan, Metal or DX12
//! natively). It implements the same `Backend` trait as the CPU backend, so the model is the
//! same code; every operation is a WGSL compute kernel (`shaders/*.wgsl`):
//!
//! - weights stay in their GGUF format on the GPU (`weights.rs`) and are dequantized in
//!   registers by the matrix kernels: `matvec.wgsl` for a few activation rows (decode, one row
//!   per sequence of the batch, each weight read once for all of them), `matmul.wgsl` (tiled)
//!   for prefill; Q/K/V and gate/up run as one dispatch each;
//! - activations are f32 in pooled buffers (`buffers.rs`), the KV cache is paged (`kv.rs`);
//! - operations are recorded, not run (`recorder.rs`): a readback submits the whole step
//!   at once and maps the result asynchronously (a blocking wait would deadlock a browser);
//! - `read_logits` finds the top-k on the GPU and reads back only k ids and the values at
//!   them, instead of the whole vocabulary.
//!
//! Everything runs in f32, so the f32 path needs no `shader-f16`; where the adapter offers
//! `subgroups` (natively; wgpu 30 does not expose them in browsers) the mat-vec reduces with
//! `subgroupAdd`.

mod attention;
mod buffers;
mod device;
mod kv;
mod layers;
mod matmul;
mod params;
mod readback;
mod recorder;
mod shaders;
mod weights;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use attention::StepMemo;
use buffers::{Pool, Pooled};
pub use device::{GpuInfo, GpuOptions, Kernels};
pub use kv::GpuKvCache;
use kv::KvArena;
use layers::RopeMemo;
pub use recorder::GpuStats;
use recorder::{Bind, Recorder};
pub use weights::GpuWeight;
use weights::{repack, WeightStore};

use crate::backend::AttentionShape;
use crate::error::{Error, ErrorCode, Result};
use crate::gguf::GgmlDType;

type SharedArena = Rc<RefCell<KvArena>>;

/// Activations: `rows × cols` f32, row-major, at `offset` bytes into a pooled buffer.
#[derive(Clone)]
pub struct GpuTensor {
    mem: Rc<Pooled>,
    offset: u64,
    pub rows: usize,
    pub cols: usize,
}

impl GpuTensor {
    fn bytes(&self) -> u64 {
        (self.rows * self.cols * 4) as u64
    }

    fn bind(&self) -> Bind<'_> {
        Bind::Buffer { buf: &self.mem.buf, offset: self.offset, size: self.bytes() }
    }
}

fn bind_weight(w: &GpuWeight) -> Bind<'_> {
    Bind::Buffer { buf: &w.buf, offset: 0, size: w.buf.size() }
}

fn to_u32(n: usize, what: &str) -> Result<u32> {
    u32::try_from(n)
        .map_err(|_| Error::new(ErrorCode::GpuLimits, format!("{what} = {n} is too large for the GPU kernels")))
}

pub struct GpuBackend {
    rec: Recorder,
    pool: Rc<RefCell<Pool>>,
    weights: RefCell<WeightStore>,
    /// One KV arena per cache shape (layers, floats per position).
    kv: RefCell<HashMap<(usize, usize), SharedArena>>,
    info: GpuInfo,
    per_thread: bool,
    storage_align: u64,
    max_binding: u64,
    step_memo: RefCell<Option<StepMemo>>,
    rope_memo: RefCell<Vec<RopeMemo>>,
}

impl GpuBackend {
    /// The backend on a device that `device.rs` set up.
    fn on_device(
        device: wgpu::Device,
        queue: wgpu::Queue,
        errors: Arc<Mutex<Vec<String>>>,
        info: GpuInfo,
        per_thread: bool,
    ) -> Self {
        let limits = device.limits();
        GpuBackend {
            pool: Rc::new(RefCell::new(Pool::new(
                wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                "padlock activations",
            ))),
            weights: RefCell::new(WeightStore::new(&limits)),
            kv: RefCell::new(Default::default()),
            info,
            storage_align: limits.min_storage_buffer_offset_alignment.max(4) as u64,
            max_binding: limits.max_storage_buffer_binding_size.min(limits.max_buffer_size),
            rec: Recorder::new(device, queue, errors),
            per_thread,
            step_memo: RefCell::new(None),
            rope_memo: RefCell::new(Vec::new()),
        }
    }

    pub fn info(&self) -> &GpuInfo {
        &self.info
    }

    /// Dispatches and submissions so far (a decode step is one submission).
    pub fn stats(&self) -> GpuStats {
        self.rec.stats()
    }

    /// A new `rows × cols` tensor (contents undefined until a kernel writes it).
    fn alloc(&self, rows: usize, cols: usize) -> Result<GpuTensor> {
        self.alloc_bytes((rows * cols * 4) as u64).map(|mem| GpuTensor { mem, offset: 0, rows, cols })
    }

    fn alloc_bytes(&self, bytes: u64) -> Result<Rc<Pooled>> {
        if bytes == 0 {
            crate::bail!(Backend, "an empty tensor");
        }
        if Pool::class(bytes) > self.max_binding {
            crate::bail!(
                GpuLimits,
                "an activation of {bytes} bytes exceeds what this adapter binds ({} bytes); use a shorter prompt or the CPU backend",
                self.max_binding
            );
        }
        let buf = self.pool.borrow_mut().take(self.rec.device(), bytes);
        Ok(Rc::new(Pooled::new(buf, &self.pool)))
    }

    fn upload_weight(&self, name: &str, dtype: GgmlDType, rows: usize, cols: usize, bytes: &[u8]) -> Result<GpuWeight> {
        if !cols.is_multiple_of(dtype.block_size()) {
            crate::bail!(UnsupportedDtype, "tensor {name}: rows of {cols} are not whole {} blocks", dtype.name());
        }
        let packed = repack(dtype, bytes);
        let (buf, word) = self.weights.borrow_mut().upload(self.rec.device(), self.rec.queue(), name, &packed)?;
        Ok(GpuWeight { dtype, cols, rows, buf, word })
    }

    /// The KV arena for `shape`, made on first use.
    fn kv_arena(&self, shape: &AttentionShape) -> Result<SharedArena> {
        let key = (shape.layers, shape.kv_heads * shape.head_dim);
        if let Some(a) = self.kv.borrow().get(&key) {
            return Ok(a.clone());
        }
        let a = Rc::new(RefCell::new(KvArena::new(&self.rec, key.0, key.1)?));
        self.kv.borrow_mut().insert(key, a.clone());
        Ok(a)
    }
}
