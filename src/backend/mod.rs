//! The compute interface the model is written against. The Llama forward pass
//! (`model::llama`) is written once over this trait; each backend (CPU, WebGPU)
//! implements the handful of operations a Llama layer needs.
//!
//! A batch is a list of sequences, each advancing by one or more tokens; their rows are
//! stacked into one activation matrix so that every weight is read once per step
//! (prefill, plain decode and PAD's batched decode are the same call).

pub mod cpu;
#[cfg(feature = "gpu")]
pub mod gpu;

use crate::error::Result;
use crate::gguf::{GgufFile, TensorInfo};
/// Part of the trait's signature (`lm_head`, `read_logits`); defined below both the backends
/// and the samplers.
pub use crate::logits::LogitsWanted;

/// Which backend to run on: the command line's `--backend` and the page's `backend` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// The GPU when an adapter exists (software ones such as lavapipe and SwiftShader
    /// included), else the CPU, saying why.
    #[default]
    Auto,
    /// WebGPU in the browser, wgpu (Vulkan/Metal/DX12) natively; fails without an adapter.
    #[serde(rename = "webgpu", alias = "gpu")]
    #[cfg_attr(feature = "clap", value(name = "gpu", alias = "webgpu"))]
    Gpu,
    /// The SIMD CPU kernels.
    Cpu,
}

/// The part of a batch that belongs to one sequence: `n_tokens` consecutive rows of the
/// activation matrix, at positions `start..start + n_tokens` of that sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub start: usize,
    pub n_tokens: usize,
}

/// The attention heads of a model, as its KV caches and `attention` need them (the model
/// builds it from its configuration, so the backend does not depend on the model).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionShape {
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    /// What scores q·k are multiplied by before the softmax: 1/√head_dim for most models.
    pub scale: f32,
    /// Layers that see only the last positions (Gemma); `None`: every layer sees them all.
    pub window: Option<SlidingWindow>,
    /// Scaled scores s become cap·tanh(s/cap) before the softmax (Gemma 2's soft-capping).
    pub soft_cap: Option<f32>,
}

/// Sliding-window attention as Gemma has it: in each run of `pattern` layers (2 in Gemma 2, 6 in
/// Gemma 3), all but the last see only the `size` latest positions (the query's own included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlidingWindow {
    pub size: usize,
    pub pattern: usize,
}

/// The activation of a gated feed-forward network: `act(gate) ⊙ up`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// SiLU (SwiGLU): Llama, Qwen.
    Silu,
    /// GELU, tanh approximation (GeGLU): Gemma.
    GeluTanh,
}

impl AttentionShape {
    /// A model whose every layer sees every position, scores scaled by 1/√head_dim.
    pub fn full(layers: usize, heads: usize, kv_heads: usize, head_dim: usize) -> Self {
        let scale = 1.0 / (head_dim as f32).sqrt();
        AttentionShape { layers, heads, kv_heads, head_dim, scale, window: None, soft_cap: None }
    }

    /// How many of the latest positions `layer` sees, if it does not see them all.
    pub fn window(&self, layer: usize) -> Option<usize> {
        self.window.filter(|w| w.pattern > 0 && layer % w.pattern < w.pattern - 1).map(|w| w.size)
    }

    /// The width of one position's keys (or values) in one layer.
    pub fn kv_row(&self) -> usize {
        self.kv_heads * self.head_dim
    }

    /// The bytes one position's keys and values take in every layer, as f32.
    pub fn kv_bytes_per_position(&self) -> u64 {
        (self.layers * 2 * self.kv_row() * 4) as u64
    }
}

/// The bytes `load_f32` stores for a host `rows × cols` matrix (f32, little-endian, as an
/// F32 GGUF tensor), after checking the sizes.
pub(crate) fn host_matrix_bytes(data: &[f32], rows: usize, cols: usize) -> Result<Vec<u8>> {
    if rows.checked_mul(cols) != Some(data.len()) || cols == 0 {
        crate::bail!(
            InvalidArgument,
            "a {rows}×{cols} matrix needs {} values, got {}",
            rows.saturating_mul(cols),
            data.len()
        );
    }
    Ok(data.iter().flat_map(|v| v.to_le_bytes()).collect())
}

/// Which two elements of a head one rotary pair rotates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopePairs {
    /// Elements 2i and 2i+1: GGUF `llama` files (the converter permuted Q and K for this).
    Adjacent,
    /// Elements i and i + head_dim/2: GPT-NeoX's layout, kept by Qwen's files.
    Halves,
}

/// How a model rotates its queries and keys: pair i turns by position · frequency(i), where
/// frequency(i) = theta^(−2i/d) / factors[i] · scale, as llama.cpp computes it (`factors`:
/// Llama 3's per-pair `rope_freqs.weight`; `scale`: linear RoPE scaling, 1 / factor).
#[derive(Debug, Clone, PartialEq)]
pub struct Rope {
    pub theta: f32,
    pub scale: f32,
    pub factors: Option<Vec<f32>>,
    pub pairs: RopePairs,
}

impl Rope {
    /// Base `theta`, adjacent pairs, no scaling: the original Llama's RoPE.
    pub fn plain(theta: f32) -> Rope {
        Rope { theta, scale: 1.0, factors: None, pairs: RopePairs::Adjacent }
    }

    pub fn with_pairs(self, pairs: RopePairs) -> Rope {
        Rope { pairs, ..self }
    }

    /// The frequency of each of a head's `head_dim / 2` pairs. Every backend takes its
    /// angles from this and `rope_sin_cos`, so they agree exactly.
    pub fn frequencies(&self, head_dim: usize) -> Vec<f32> {
        (0..head_dim / 2)
            .map(|i| {
                let base = libm::powf(self.theta, -2.0 * i as f32 / head_dim as f32);
                let factor = self.factors.as_ref().and_then(|f| f.get(i)).copied().unwrap_or(1.0);
                base / factor * self.scale
            })
            .collect()
    }
}

/// `(sin, cos)` of the angle pos · freq.
pub fn rope_sin_cos(pos: usize, freq: f32) -> (f32, f32) {
    let angle = pos as f32 * freq;
    (libm::sinf(angle), libm::cosf(angle))
}

pub trait Backend {
    /// Activations: a row-major `[rows, cols]` f32 matrix on the device.
    type Tensor;
    /// A weight (matrix or vector) in its GGUF storage format, on the device.
    type Weight;
    /// Keys and values of one sequence, for every layer.
    type KvCache;

    /// Short name for logs and the page: "cpu", "webgpu".
    fn name(&self) -> &'static str;

    /// Makes a GGUF tensor usable by this backend (a view or an upload; no dequantizing).
    fn load_weight(&self, file: &GgufFile, info: &TensorInfo) -> Result<Self::Weight>;

    /// Several weights that multiply the same input (Q/K/V, gate/up): a backend may keep
    /// them together (the GPU backend puts them in one buffer, multiplied in one dispatch).
    fn load_weights(&self, file: &GgufFile, infos: &[&TensorInfo]) -> Result<Vec<Self::Weight>> {
        infos.iter().map(|info| self.load_weight(file, info)).collect()
    }

    /// A matrix that comes from the host instead of the model file (a trained value head):
    /// `rows × cols` f32, row-major, used like an F32 weight (`matmul` computes `x · Wᵀ`).
    fn load_f32(&self, data: &[f32], rows: usize, cols: usize) -> Result<Self::Weight>;

    fn new_kv_cache(&self, shape: &AttentionShape) -> Result<Self::KvCache>;

    /// How many more positions (keys and values in every layer) the caches can still grow by,
    /// where the backend knows a bound (the CPU backend in wasm's 4 GiB memory): a request
    /// that needs more is refused before anything is allocated.
    fn kv_positions_available(&self, shape: &AttentionShape) -> Option<u64> {
        let _ = shape;
        None
    }

    /// Drops positions `len..` from a cache (used to rewind a sequence).
    fn truncate_kv_cache(&self, cache: &mut Self::KvCache, len: usize) -> Result<()>;

    /// Rows of the embedding table for `ids`: `[ids.len(), hidden]`.
    fn embed(&self, table: &Self::Weight, ids: &[u32]) -> Result<Self::Tensor>;

    /// Root-mean-square normalisation, scaled by `weight`, of each run of `weight`'s length in
    /// a row: the whole row, or each head of a row of heads (Qwen3's per-head Q/K norm).
    fn rms_norm(&self, x: &Self::Tensor, weight: &Self::Weight, eps: f32) -> Result<Self::Tensor>;

    /// `x · Wᵀ`: `[rows, k] × [n, k]ᵀ → [rows, n]`.
    fn matmul(&self, x: &Self::Tensor, w: &Self::Weight) -> Result<Self::Tensor>;

    /// `x · Wᵢᵀ` for several weights sharing one input (Q/K/V, gate/up). A backend may run
    /// them together; the CPU backend does, so its threads wake once instead of once each.
    fn matmul_many(&self, x: &Self::Tensor, ws: &[&Self::Weight]) -> Result<Vec<Self::Tensor>> {
        ws.iter().map(|w| self.matmul(x, w)).collect()
    }

    /// The LM head, `x · Wᵀ` over the vocabulary, where only the logits `wanted` names need
    /// be right (any other may be −∞, as `read_logits` allows). By default the whole product.
    /// A PAD step needs the other rows (the PersRM contexts) only at row 0's candidates, so a
    /// backend may compute those rows at just those ids: the CPU backend does.
    fn lm_head(&self, x: &Self::Tensor, w: &Self::Weight, wanted: &LogitsWanted) -> Result<Self::Tensor> {
        let _ = wanted;
        self.matmul(x, w)
    }

    /// Rotary position embedding (`rope` says which pairs, how fast) applied to each of
    /// `n_heads` heads of each row; the row's position comes from its segment.
    fn rope(&self, x: &Self::Tensor, n_heads: usize, segments: &[Segment], rope: &Rope) -> Result<Self::Tensor>;

    /// Appends this step's keys and values to each sequence's cache at layer `layer`, then
    /// computes causal grouped-query attention of `q` over each sequence's cache (over its
    /// last `shape.window(layer)` positions, where the layer has a window; scores scaled by
    /// `shape.scale`, then soft-capped where `shape.soft_cap` says).
    /// `q`: `[rows, n_heads·head_dim]`, `k`/`v`: `[rows, n_kv_heads·head_dim]`.
    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        layer: usize,
        q: &Self::Tensor,
        k: &Self::Tensor,
        v: &Self::Tensor,
        caches: &mut [&mut Self::KvCache],
        segments: &[Segment],
        shape: &AttentionShape,
    ) -> Result<Self::Tensor>;

    /// `act(gate) ⊙ up`, element-wise.
    fn glu(&self, gate: &Self::Tensor, up: &Self::Tensor, act: Activation) -> Result<Self::Tensor>;

    /// `x · factor`, element-wise (Gemma's embedding scale).
    fn scale(&self, x: &Self::Tensor, factor: f32) -> Result<Self::Tensor>;

    /// `cap · tanh(x / cap)`, element-wise, leaving −∞ (a logit not computed) as it is:
    /// Gemma 2's soft-capped logits.
    fn soft_cap(&self, x: &Self::Tensor, cap: f32) -> Result<Self::Tensor>;

    /// `a + b`, element-wise.
    fn add(&self, a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor>;

    /// `x` with the vector `bias` (an F32 weight as long as a row) added to every row.
    fn add_bias(&self, x: &Self::Tensor, bias: &Self::Weight) -> Result<Self::Tensor>;

    /// The given rows of `x`, in order (e.g. the last token of each sequence).
    fn select_rows(&self, x: &Self::Tensor, rows: &[usize]) -> Result<Self::Tensor>;

    /// The rows of `parts` stacked in order (all with the same number of columns).
    fn concat_rows(&self, parts: &[&Self::Tensor]) -> Result<Self::Tensor>;

    /// Copies a tensor back to the host, row-major. Asynchronous because a GPU readback
    /// is: a blocking wait deadlocks a browser.
    fn read(&self, x: &Self::Tensor) -> impl std::future::Future<Output = Result<Vec<f32>>>;

    /// Reads logits `[rows, vocab]` back, where only the entries `wanted` names are
    /// guaranteed; a backend may put −∞ everywhere else (the GPU backend finds the top-k on
    /// the GPU and reads back only those). Reading everything, as here, is always allowed.
    fn read_logits(
        &self,
        x: &Self::Tensor,
        wanted: &LogitsWanted,
    ) -> impl std::future::Future<Output = Result<Vec<f32>>> {
        let _ = wanted;
        self.read(x)
    }
}
