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

mod buffers;
mod kv;
mod recorder;
mod shaders;
mod weights;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use buffers::{Pool, Pooled};
pub use kv::GpuKvCache;
use kv::KvArena;
pub use recorder::GpuStats;
use recorder::{Bind, Recorder};
use shaders::{format_defines, Variant};
pub use weights::GpuWeight;
use weights::{packed_len, repack, WeightStore};

use super::{AttentionShape, Backend, LogitsWanted, Segment};
use crate::error::{Error, ErrorCode, Result};
use crate::gguf::{GgmlDType, GgufFile, TensorInfo};

/// Activation rows up to which a product is a mat-vec (each weight row read once for all of
/// them); beyond, the tiled mat-mul.
const MATVEC_MAX_ROWS: usize = 8;

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

fn u32s(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn to_u32(n: usize, what: &str) -> Result<u32> {
    u32::try_from(n)
        .map_err(|_| Error::new(ErrorCode::GpuLimits, format!("{what} = {n} is too large for the GPU kernels")))
}

/// The step description the KV kernels read (see kv_common.wgsl), kept while it repeats so
/// the 30 layers of a step upload it once.
struct StepMemo {
    steps: Vec<u32>,
    data: Rc<[u8]>,
}

/// RoPE angles of the last step, by (segments, head_dim, theta).
struct RopeMemo {
    key: (Vec<Segment>, usize, u32),
    data: Rc<[u8]>,
}

pub struct GpuBackend {
    rec: Recorder,
    pool: Rc<RefCell<Pool>>,
    weights: RefCell<WeightStore>,
    /// One KV arena per cache shape (layers, floats per position).
    kv: RefCell<std::collections::HashMap<(usize, usize), SharedArena>>,
    info: GpuInfo,
    per_thread: bool,
    storage_align: u64,
    max_binding: u64,
    step_memo: RefCell<Option<StepMemo>>,
    rope_memo: RefCell<Option<RopeMemo>>,
}

impl GpuBackend {
    /// The default adapter (the high-performance one where there are several), with
    /// subgroups where offered. `GPU_UNAVAILABLE` when there is none.
    pub async fn new() -> Result<Self> {
        Self::with_options(GpuOptions::default()).await
    }

    pub async fn with_options(options: GpuOptions) -> Result<Self> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| {
                // In a browser the detail (which native APIs were not compiled in) says nothing useful.
                let detail = if cfg!(target_arch = "wasm32") { String::new() } else { format!(": {e}") };
                Error::new(ErrorCode::GpuUnavailable, format!("no WebGPU adapter{detail}"))
            })?;
        let adapter_info = adapter.get_info();
        let software = adapter_info.device_type == wgpu::DeviceType::Cpu;
        let per_thread = match options.kernels {
            Kernels::Auto => software,
            k => k == Kernels::PerThread,
        };
        let subgroups = !per_thread && options.subgroups && adapter.features().contains(wgpu::Features::SUBGROUP);
        let features = if subgroups { wgpu::Features::SUBGROUP } else { wgpu::Features::empty() };
        // Everything the adapter allows: the binding sizes decide which models fit.
        let mut limits = adapter.limits();
        if let Some(cap) = options.max_storage_binding {
            limits.max_storage_buffer_binding_size = limits.max_storage_buffer_binding_size.min(cap);
        }
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("padlock"),
                required_features: features,
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Error::new(ErrorCode::GpuUnavailable, format!("the WebGPU adapter refused a device: {e}")))?;
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            sink.lock().unwrap_or_else(|p| p.into_inner()).push(e.to_string());
        }));
        let limits = device.limits();
        let info = GpuInfo {
            name: adapter_info.name.clone(),
            api: match adapter_info.backend {
                wgpu::Backend::Vulkan => "vulkan",
                wgpu::Backend::Metal => "metal",
                wgpu::Backend::Dx12 => "dx12",
                wgpu::Backend::BrowserWebGpu => "webgpu",
                _ => "other",
            }
            .into(),
            device_type: if software { "cpu" } else { "gpu" }.into(),
            subgroups,
            kernels: if per_thread { "per-thread" } else { "workgroup" }.into(),
        };
        Ok(GpuBackend {
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
            rope_memo: RefCell::new(None),
        })
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

    /// The KV arena for this cache shape, made on first use.
    fn kv_arena(&self, shape: &AttentionShape) -> Result<SharedArena> {
        let key = (shape.layers, shape.kv_row());
        if let Some(a) = self.kv.borrow().get(&key) {
            return Ok(a.clone());
        }
        let a = Rc::new(RefCell::new(KvArena::new(&self.rec, key.0, key.1)?));
        self.kv.borrow_mut().insert(key, a.clone());
        Ok(a)
    }

    /// `x · Wᵢᵀ` for up to three weights of one format in one buffer, in one dispatch; the
    /// outputs are views of one buffer (each block aligned for binding).
    fn matmul_group(&self, x: &GpuTensor, ws: &[&GpuWeight]) -> Result<Vec<GpuTensor>> {
        let tokens = x.rows;
        let k = x.cols;
        let mut offsets = Vec::with_capacity(ws.len());
        let mut bytes = 0u64;
        for w in ws {
            offsets.push(bytes);
            bytes = (bytes + (tokens * w.rows * 4) as u64).div_ceil(self.storage_align) * self.storage_align;
        }
        let mem = self.alloc_bytes(bytes)?;
        let mut p = [0u32; 16];
        p[0] = to_u32(k, "k")?;
        p[1] = to_u32(tokens, "rows")?;
        let mut total = 0usize;
        for (i, w) in ws.iter().enumerate() {
            p[4 + i] = w.word;
            p[8 + i] = to_u32(w.rows, "rows")?;
            p[12 + i] = to_u32((offsets[i] / 4) as usize, "offset")?;
            total += w.rows;
        }
        p[2] = to_u32(total, "rows")?;
        let format = format_defines(ws[0].dtype);
        let out = Bind::Buffer { buf: &mem.buf, offset: 0, size: bytes };
        let binds = [bind_weight(ws[0]), x.bind(), out];
        if self.per_thread {
            // A thread per output row and per block of up to 8 activation rows.
            let block = tokens.min(MATVEC_MAX_ROWS);
            let v = Variant::new("matvec.wgsl").flags(format).flag("ROW_THREAD").value("TOKENS", block as u32);
            let [gx, gy, _] = self.rec.grid(total.div_ceil(64) as u64)?;
            let gz = to_u32(tokens.div_ceil(block), "row blocks")?;
            self.rec.dispatch(&v, &p, &binds, [gx, gy, gz])?;
        } else if tokens <= MATVEC_MAX_ROWS {
            let mut v = Variant::new("matvec.wgsl").flags(format).value("TOKENS", tokens as u32);
            if self.info.subgroups {
                v = v.flag("SUBGROUPS");
            }
            let grid = self.rec.grid(total.div_ceil(8) as u64)?;
            self.rec.dispatch(&v, &p, &binds, grid)?;
        } else {
            let (gx, gy) = (total.div_ceil(64), tokens.div_ceil(32));
            let max = self.rec.device().limits().max_compute_workgroups_per_dimension as usize;
            if gx > max || gy > max {
                crate::bail!(GpuLimits, "a {tokens}×{k} by {total}×{k} product exceeds the adapter's workgroup limits");
            }
            let v = Variant::new("matmul.wgsl").flags(format);
            self.rec.dispatch(&v, &p, &binds, [gx as u32, gy as u32, 1])?;
        }
        Ok(ws
            .iter()
            .zip(offsets)
            .map(|(w, offset)| GpuTensor { mem: mem.clone(), offset, rows: tokens, cols: w.rows })
            .collect())
    }

    fn elementwise(&self, op: &'static str, a: &GpuTensor, b: &GpuTensor) -> Result<GpuTensor> {
        if (a.rows, a.cols) != (b.rows, b.cols) {
            crate::bail!(Backend, "{op}: shapes {}×{} and {}×{}", a.rows, a.cols, b.rows, b.cols);
        }
        let out = self.alloc(a.rows, a.cols)?;
        let n = a.rows * a.cols;
        let grid = self.rec.grid(n.div_ceil(256) as u64)?;
        self.rec.dispatch(
            &Variant::new("elementwise.wgsl").flag(op),
            &[to_u32(n, "elements")?],
            &[a.bind(), b.bind(), out.bind()],
            grid,
        )?;
        Ok(out)
    }

    /// The step description for the KV kernels: per row (position, start of its page
    /// table), then the page tables. Uploaded once per step (the layers share it).
    fn steps(&self, caches: &[&mut GpuKvCache], segments: &[Segment]) -> Result<Rc<[u8]>> {
        let rows: usize = segments.iter().map(|s| s.n_tokens).sum();
        let mut steps = Vec::with_capacity(2 * rows + caches.iter().map(|c| c.pages.len()).sum::<usize>());
        let mut table = 2 * rows;
        for (cache, seg) in caches.iter().zip(segments) {
            for i in 0..seg.n_tokens {
                steps.push(to_u32(seg.start + i, "position")?);
                steps.push(to_u32(table, "page table")?);
            }
            table += cache.pages.len();
        }
        for cache in caches {
            steps.extend_from_slice(&cache.pages);
        }
        let mut memo = self.step_memo.borrow_mut();
        if let Some(m) = memo.as_ref().filter(|m| m.steps == steps) {
            return Ok(m.data.clone());
        }
        let data: Rc<[u8]> = u32s(&steps).into();
        *memo = Some(StepMemo { steps, data: data.clone() });
        Ok(data)
    }

    /// Reads the `k` largest logits of row 0 and, for every row, the logits at those ids and
    /// at `also`; returns the rows densely with −∞ elsewhere.
    async fn read_top(&self, x: &GpuTensor, k: usize, also: &[u32]) -> Result<Vec<f32>> {
        let (rows, cols) = (x.rows, x.cols);
        let k = k.clamp(1, cols);
        let also: Vec<u32> = also.iter().copied().filter(|&i| (i as usize) < cols).collect();
        let ids = self.alloc_bytes((k * 4) as u64)?;
        let per_row = k + also.len();
        let values = self.alloc(rows, per_row)?;
        let n = to_u32(cols, "vocabulary")?;
        self.rec.dispatch(
            &Variant::new("top_k.wgsl"),
            &[n, k as u32, 0],
            &[x.bind(), Bind::Buffer { buf: &ids.buf, offset: 0, size: (k * 4) as u64 }],
            [1, 1, 1],
        )?;
        let extra = if also.is_empty() { vec![0u8; 4] } else { u32s(&also) };
        let threads = rows * per_row;
        if threads.div_ceil(256) > self.rec.device().limits().max_compute_workgroups_per_dimension as usize {
            crate::bail!(GpuLimits, "{threads} logits to gather exceed the adapter's workgroup limits");
        }
        self.rec.dispatch(
            &Variant::new("gather_ids.wgsl"),
            &[n, rows as u32, k as u32, also.len() as u32],
            &[
                x.bind(),
                Bind::Buffer { buf: &ids.buf, offset: 0, size: (k * 4) as u64 },
                Bind::Data(&extra),
                values.bind(),
            ],
            [threads.div_ceil(256) as u32, 1, 1],
        )?;
        let bytes = self
            .rec
            .read_back(&[(&ids.buf, 0, (k * 4) as u64), (&values.mem.buf, values.offset, values.bytes())])
            .await?;
        let (id_bytes, value_bytes) = bytes.split_at(k * 4);
        let mut wanted: Vec<u32> =
            id_bytes.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        wanted.extend_from_slice(&also);
        let values: Vec<f32> =
            value_bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let mut dense = vec![f32::NEG_INFINITY; rows * cols];
        for r in 0..rows {
            for (j, &id) in wanted.iter().enumerate() {
                if (id as usize) >= cols {
                    crate::bail!(Backend, "the GPU top-k returned id {id} of {cols}");
                }
                dense[r * cols + id as usize] = values[r * per_row + j];
            }
        }
        Ok(dense)
    }
}

impl Backend for GpuBackend {
    type Tensor = GpuTensor;
    type Weight = GpuWeight;
    type KvCache = GpuKvCache;

    fn name(&self) -> &'static str {
        "webgpu"
    }

    fn load_weight(&self, file: &GgufFile, info: &TensorInfo) -> Result<GpuWeight> {
        let cols = info.dims.first().copied().unwrap_or(1).max(1);
        let bytes = file.bytes().get(info.offset..info.offset + info.n_bytes).ok_or_else(|| {
            Error::new(ErrorCode::GgufTensorOutOfBounds, format!("tensor {} lies outside the file", info.name))
        })?;
        self.upload_weight(&info.name, info.dtype, info.n_elements() / cols, cols, bytes)
    }

    fn load_weights(&self, file: &GgufFile, infos: &[&TensorInfo]) -> Result<Vec<GpuWeight>> {
        let total: u64 = infos.iter().map(|i| packed_len(i.dtype, i.n_bytes)).sum();
        self.weights.borrow_mut().keep_together(self.rec.device(), total);
        infos.iter().map(|info| self.load_weight(file, info)).collect()
    }

    fn load_f32(&self, data: &[f32], rows: usize, cols: usize) -> Result<GpuWeight> {
        let bytes = super::host_matrix_bytes(data, rows, cols)?;
        self.upload_weight("a host matrix", GgmlDType::F32, rows, cols, &bytes)
    }

    fn new_kv_cache(&self, shape: &AttentionShape) -> Result<GpuKvCache> {
        Ok(GpuKvCache::new(self.kv_arena(shape)?))
    }

    fn truncate_kv_cache(&self, cache: &mut GpuKvCache, len: usize) -> Result<()> {
        cache.truncate(len);
        Ok(())
    }

    fn embed(&self, table: &GpuWeight, ids: &[u32]) -> Result<GpuTensor> {
        if let Some(&bad) = ids.iter().find(|&&id| id as usize >= table.rows) {
            crate::bail!(InvalidArgument, "token id {bad} is outside the vocabulary of {}", table.rows);
        }
        let out = self.alloc(ids.len(), table.cols)?;
        let units = table.cols.div_ceil(32) * 4;
        let grid = self.rec.grid((ids.len() * units).div_ceil(256) as u64)?;
        let p = [to_u32(table.cols, "hidden")?, to_u32(ids.len(), "ids")?, table.word];
        self.rec.dispatch(
            &Variant::new("embed.wgsl").flags(format_defines(table.dtype)),
            &p,
            &[bind_weight(table), Bind::Data(&u32s(ids)), out.bind()],
            grid,
        )?;
        Ok(out)
    }

    fn rms_norm(&self, x: &GpuTensor, weight: &GpuWeight, eps: f32) -> Result<GpuTensor> {
        if weight.cols != x.cols || weight.rows != 1 {
            crate::bail!(Backend, "rms_norm: rows of {} against a {}×{} weight", x.cols, weight.rows, weight.cols);
        }
        let out = self.alloc(x.rows, x.cols)?;
        let p = [to_u32(x.cols, "k")?, to_u32(x.rows, "rows")?, weight.word, eps.to_bits()];
        let mut v = Variant::new("rms_norm.wgsl").flags(format_defines(weight.dtype));
        let grid = if self.per_thread {
            v = v.flag("ROW_THREAD");
            self.rec.grid(x.rows.div_ceil(64) as u64)?
        } else {
            self.rec.grid(x.rows as u64)?
        };
        self.rec.dispatch(&v, &p, &[bind_weight(weight), x.bind(), out.bind()], grid)?;
        Ok(out)
    }

    fn matmul(&self, x: &GpuTensor, w: &GpuWeight) -> Result<GpuTensor> {
        let mut out = self.matmul_many(x, &[w])?;
        out.pop().ok_or_else(|| Error::new(ErrorCode::Backend, "matmul: no output"))
    }

    fn matmul_many(&self, x: &GpuTensor, ws: &[&GpuWeight]) -> Result<Vec<GpuTensor>> {
        if let Some(w) = ws.iter().find(|w| w.cols != x.cols) {
            crate::bail!(Backend, "matmul: rows of {} against weight rows of {}", x.cols, w.cols);
        }
        // Weights of one format in one buffer go together, three at most.
        let mut out = Vec::with_capacity(ws.len());
        let mut i = 0;
        while i < ws.len() {
            let mut j = i + 1;
            while j < ws.len() && j - i < 3 && ws[j].dtype == ws[i].dtype && ws[j].buf.id == ws[i].buf.id {
                j += 1;
            }
            out.extend(self.matmul_group(x, &ws[i..j])?);
            i = j;
        }
        Ok(out)
    }

    fn rope(&self, x: &GpuTensor, n_heads: usize, segments: &[Segment], theta: f32) -> Result<GpuTensor> {
        let total: usize = segments.iter().map(|s| s.n_tokens).sum();
        if total != x.rows {
            crate::bail!(Backend, "batch has {} rows but its segments cover {total}", x.rows);
        }
        if n_heads == 0 || !x.cols.is_multiple_of(n_heads) || !(x.cols / n_heads).is_multiple_of(2) {
            crate::bail!(Backend, "rope: {} columns in {n_heads} heads", x.cols);
        }
        let head_dim = x.cols / n_heads;
        let key = (segments.to_vec(), head_dim, theta.to_bits());
        let table = {
            let mut memo = self.rope_memo.borrow_mut();
            match memo.as_ref().filter(|m| m.key == key) {
                Some(m) => m.data.clone(),
                None => {
                    let freqs = super::rope_frequencies(head_dim, theta);
                    let mut bytes = Vec::with_capacity(total * freqs.len() * 8);
                    for pos in segments.iter().flat_map(|s| s.start..s.start + s.n_tokens) {
                        for &f in &freqs {
                            let (sin, cos) = super::rope_sin_cos(pos, f);
                            bytes.extend_from_slice(&cos.to_le_bytes());
                            bytes.extend_from_slice(&sin.to_le_bytes());
                        }
                    }
                    let data: Rc<[u8]> = bytes.into();
                    *memo = Some(RopeMemo { key, data: data.clone() });
                    data
                }
            }
        };
        let out = self.alloc(x.rows, x.cols)?;
        let grid = self.rec.grid((x.rows * x.cols / 2).div_ceil(256) as u64)?;
        let p = [to_u32(x.cols, "cols")?, head_dim as u32, to_u32(x.rows, "rows")?];
        self.rec.dispatch(&Variant::new("rope.wgsl"), &p, &[Bind::Shared(&table), x.bind(), out.bind()], grid)?;
        Ok(out)
    }

    fn attention(
        &self,
        layer: usize,
        q: &GpuTensor,
        k: &GpuTensor,
        v: &GpuTensor,
        caches: &mut [&mut GpuKvCache],
        segments: &[Segment],
        shape: &AttentionShape,
    ) -> Result<GpuTensor> {
        let (hd, n_heads, n_kv) = (shape.head_dim, shape.heads, shape.kv_heads);
        let kv_row = n_kv * hd;
        if caches.len() != segments.len() {
            crate::bail!(Backend, "{} caches for {} segments", caches.len(), segments.len());
        }
        let rows: usize = segments.iter().map(|s| s.n_tokens).sum();
        if q.rows != rows
            || k.rows != rows
            || v.rows != rows
            || q.cols != n_heads * hd
            || k.cols != kv_row
            || v.cols != kv_row
        {
            crate::bail!(
                Backend,
                "attention: q {}×{}, k {}×{}, v {}×{} for {rows} rows",
                q.rows,
                q.cols,
                k.rows,
                k.cols,
                v.rows,
                v.cols
            );
        }
        if layer >= shape.layers || n_kv == 0 || n_heads % n_kv != 0 {
            crate::bail!(Backend, "attention: layer {layer}, {n_heads} heads over {n_kv} KV heads");
        }
        let arena = self.kv_arena(shape)?;
        // Layer 0 appends the step's positions; the other layers write into the same ones.
        for (cache, seg) in caches.iter_mut().zip(segments) {
            if !Rc::ptr_eq(cache.arena(), &arena) {
                crate::bail!(Backend, "a KV cache of another backend");
            }
            let end = seg.start + seg.n_tokens;
            if layer == 0 {
                if cache.len != seg.start {
                    crate::bail!(Backend, "cache holds {} positions, segment starts at {}", cache.len, seg.start);
                }
                cache.reserve(&self.rec, end)?;
                cache.len = end;
            } else if cache.len != end {
                crate::bail!(Backend, "cache holds {} positions, layer {layer} writes up to {end}", cache.len);
            }
        }
        let steps = self.steps(caches, segments)?;
        let kv_buf = arena.borrow().layers[layer].clone();
        let kv_bind = || Bind::Buffer { buf: &kv_buf, offset: 0, size: kv_buf.size() };
        let grid = self.rec.grid((rows * kv_row).div_ceil(256) as u64)?;
        self.rec.dispatch(
            &Variant::new("kv_write.wgsl"),
            &[to_u32(kv_row, "kv row")?, to_u32(rows, "rows")?],
            &[Bind::Shared(&steps), k.bind(), v.bind(), kv_bind()],
            grid,
        )?;
        let out = self.alloc(rows, n_heads * hd)?;
        let scale = 1.0 / (hd as f32).sqrt();
        let p = [
            n_heads as u32,
            (n_heads / n_kv) as u32,
            to_u32(kv_row, "kv row")?,
            scale.to_bits(),
            to_u32(rows, "rows")?,
        ];
        let mut v = Variant::new("attention.wgsl").value("HEAD_DIM", to_u32(hd, "head_dim")?);
        let grid = if self.per_thread {
            v = v.flag("ROW_THREAD");
            self.rec.grid((rows * n_heads).div_ceil(64) as u64)?
        } else {
            let max = self.rec.device().limits().max_compute_workgroups_per_dimension as usize;
            if rows > max || n_heads > max {
                crate::bail!(GpuLimits, "{rows} rows × {n_heads} heads exceed the adapter's workgroup limits");
            }
            [n_heads as u32, rows as u32, 1]
        };
        self.rec.dispatch(&v, &p, &[Bind::Shared(&steps), q.bind(), kv_bind(), out.bind()], grid)?;
        Ok(out)
    }

    fn silu_mul(&self, gate: &GpuTensor, up: &GpuTensor) -> Result<GpuTensor> {
        self.elementwise("SILU_MUL", gate, up)
    }

    fn add(&self, a: &GpuTensor, b: &GpuTensor) -> Result<GpuTensor> {
        self.elementwise("ADD", a, b)
    }

    fn select_rows(&self, x: &GpuTensor, rows: &[usize]) -> Result<GpuTensor> {
        if let Some(&r) = rows.iter().find(|&&r| r >= x.rows) {
            crate::bail!(Backend, "row {r} of {}", x.rows);
        }
        if rows.len() == x.rows && rows.iter().enumerate().all(|(i, &r)| i == r) {
            return Ok(x.clone());
        }
        let out = self.alloc(rows.len(), x.cols)?;
        let list: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
        let grid = self.rec.grid((rows.len() * x.cols).div_ceil(256) as u64)?;
        self.rec.dispatch(
            &Variant::new("gather_rows.wgsl"),
            &[to_u32(x.cols, "cols")?, to_u32(rows.len(), "rows")?],
            &[Bind::Data(&u32s(&list)), x.bind(), out.bind()],
            grid,
        )?;
        Ok(out)
    }

    fn concat_rows(&self, parts: &[&GpuTensor]) -> Result<GpuTensor> {
        let cols = parts.first().map(|p| p.cols).unwrap_or(0);
        if parts.iter().any(|p| p.cols != cols) {
            crate::bail!(Backend, "concat_rows: parts of different widths");
        }
        let out = self.alloc(parts.iter().map(|p| p.rows).sum(), cols)?;
        let mut at = 0;
        for p in parts {
            self.rec.copy(&p.mem.buf, p.offset, &out.mem.buf, at, p.bytes());
            at += p.bytes();
        }
        Ok(out)
    }

    async fn read(&self, x: &GpuTensor) -> Result<Vec<f32>> {
        let bytes = self.rec.read_back(&[(&x.mem.buf, x.offset, x.bytes())]).await?;
        Ok(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }

    async fn read_logits(&self, x: &GpuTensor, wanted: &LogitsWanted) -> Result<Vec<f32>> {
        match wanted {
            // Past a quarter of the row, reading it whole is as cheap.
            LogitsWanted::Top { k, also } if (k + also.len()) * 4 < x.cols => self.read_top(x, *k, also).await,
            _ => self.read(x).await,
        }
    }
}
