//! The CPU backend: activations are candle-core tensors; weights stay in their GGUF
//! block format as views into the model file's bytes and are multiplied by the crate's
//! own SIMD kernels (`quant`), since candle has no SIMD kernel for Q4_1.
//!
//! `exp` is the platform's (glibc's is several times faster than the `libm` crate's, which
//! cost a fifth of decode time); native and wasm32 logits differ in the last bits anyway
//! (FMA natively, separate multiply and add in simd128), far below what moves a token.

mod kv;
pub mod quant;

use std::sync::Arc;

use candle_core::{CpuStorage, Device, Storage, Tensor};

use super::{Activation, AttentionShape, Backend, LogitsWanted, Rope, RopePairs, Segment};
use crate::error::{Error, ErrorCode, Result};
use crate::gguf::{GgmlDType, GgufFile, TensorInfo};
pub use kv::CpuKvCache;

/// A GGUF tensor as the CPU sees it: its bytes, shared with the loaded file.
#[derive(Clone)]
pub struct CpuWeight {
    pub dtype: GgmlDType,
    /// Elements per row (GGUF `dims[0]`).
    pub cols: usize,
    /// Number of rows (the product of the other dims).
    pub rows: usize,
    file: Arc<Vec<u8>>,
    offset: usize,
    n_bytes: usize,
}

impl CpuWeight {
    pub fn bytes(&self) -> &[u8] {
        &self.file[self.offset..self.offset + self.n_bytes]
    }

    /// The bytes of row `i` (whole blocks); `i` must be below `rows`.
    fn row(&self, i: usize) -> &[u8] {
        let n = self.dtype.row_bytes(self.cols);
        &self.bytes()[i * n..(i + 1) * n]
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct CpuBackend;

impl CpuBackend {
    pub fn new() -> Self {
        CpuBackend
    }
}

fn backend_err(e: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::Backend, e.to_string())
}

/// A new `[rows, cols]` tensor owning `data`.
fn tensor(data: Vec<f32>, rows: usize, cols: usize) -> Result<Tensor> {
    Tensor::from_vec(data, (rows, cols), &Device::Cpu).map_err(backend_err)
}

/// Runs `f` on a tensor's contiguous f32 data and its `(rows, cols)`.
fn with_data<R>(t: &Tensor, f: impl FnOnce(&[f32], usize, usize) -> Result<R>) -> Result<R> {
    let (rows, cols) = t.dims2().map_err(backend_err)?;
    let (storage, layout) = t.storage_and_layout();
    let (start, end) = layout.contiguous_offsets().ok_or_else(|| backend_err("tensor is not contiguous"))?;
    match &*storage {
        Storage::Cpu(CpuStorage::F32(v)) => f(&v[start..end], rows, cols),
        _ => Err(backend_err("expected an f32 CPU tensor")),
    }
}

/// Rows covered by `segments`, checked against the tensor.
fn check_rows(rows: usize, segments: &[Segment]) -> Result<()> {
    let total: usize = segments.iter().map(|s| s.n_tokens).sum();
    if total != rows {
        crate::bail!(Backend, "batch has {rows} rows but its segments cover {total}");
    }
    Ok(())
}

impl Backend for CpuBackend {
    type Tensor = Tensor;
    type Weight = CpuWeight;
    type KvCache = CpuKvCache;

    fn name(&self) -> &'static str {
        "cpu"
    }

    fn load_weight(&self, file: &GgufFile, info: &TensorInfo) -> Result<CpuWeight> {
        let cols = info.dims.first().copied().unwrap_or(1);
        let rows = info.n_elements() / cols.max(1);
        if let Some(q8) = quant::widened_to_q8_0(info.dtype, file.tensor_data(info)) {
            let n_bytes = q8.len();
            return Ok(CpuWeight { dtype: GgmlDType::Q8_0, cols, rows, file: Arc::new(q8), offset: 0, n_bytes });
        }
        Ok(CpuWeight {
            dtype: info.dtype,
            cols,
            rows: info.n_elements() / cols.max(1),
            file: file.bytes().clone(),
            offset: info.offset,
            n_bytes: info.n_bytes,
        })
    }

    fn load_f32(&self, data: &[f32], rows: usize, cols: usize) -> Result<CpuWeight> {
        let bytes = super::host_matrix_bytes(data, rows, cols)?;
        let n_bytes = bytes.len();
        Ok(CpuWeight { dtype: GgmlDType::F32, cols, rows, file: Arc::new(bytes), offset: 0, n_bytes })
    }

    fn new_kv_cache(&self, shape: &AttentionShape) -> Result<CpuKvCache> {
        Ok(CpuKvCache::new(shape))
    }

    fn kv_positions_available(&self, shape: &AttentionShape) -> Option<u64> {
        kv::positions_available(shape)
    }

    fn truncate_kv_cache(&self, cache: &mut CpuKvCache, len: usize) -> Result<()> {
        for layer in cache.keys.iter_mut().chain(cache.values.iter_mut()) {
            layer.truncate(len * cache.row);
        }
        Ok(())
    }

    fn embed(&self, table: &CpuWeight, ids: &[u32]) -> Result<Tensor> {
        let hidden = table.cols;
        let mut out = vec![0f32; ids.len() * hidden];
        for (&id, dst) in ids.iter().zip(out.chunks_exact_mut(hidden)) {
            let id = id as usize;
            if id >= table.rows {
                crate::bail!(InvalidArgument, "token id {id} is outside the vocabulary of {}", table.rows);
            }
            quant::dequantize_row(table.dtype, table.row(id), dst)?;
        }
        tensor(out, ids.len(), hidden)
    }

    fn rms_norm(&self, x: &Tensor, weight: &CpuWeight, eps: f32) -> Result<Tensor> {
        let w = weight_vector(weight)?;
        let n = w.len();
        with_data(x, |x, rows, cols| {
            if n == 0 || !cols.is_multiple_of(n) {
                crate::bail!(Backend, "rms_norm: rows of {cols} against a weight of {n}");
            }
            let mut out = vec![0f32; x.len()];
            for (src, dst) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
                let mean_sq = src.iter().map(|v| v * v).sum::<f32>() / n as f32;
                let scale = 1.0 / (mean_sq + eps).sqrt();
                for ((d, s), g) in dst.iter_mut().zip(src).zip(&w) {
                    *d = s * scale * g;
                }
            }
            tensor(out, rows, cols)
        })
    }

    fn matmul(&self, x: &Tensor, w: &CpuWeight) -> Result<Tensor> {
        with_data(x, |x, rows, cols| {
            if cols != w.cols {
                crate::bail!(Backend, "matmul: rows of {cols} against weight rows of {}", w.cols);
            }
            let mut out = vec![0f32; rows * w.rows];
            quant::matmul(w.dtype, w.bytes(), w.rows, w.cols, x, rows, &mut out)?;
            tensor(out, rows, w.rows)
        })
    }

    /// Row 0 in full; the other rows only at the ids `wanted` names (row 0's top-k and the
    /// extra ids), through the same kernel on a copy of just those weight rows (the values
    /// are the full product's up to the summation order of the kernel's tile). In a PAD step
    /// this skips all but about k of the vocabulary's dot products for each PersRM row.
    fn lm_head(&self, x: &Tensor, w: &CpuWeight, wanted: &LogitsWanted) -> Result<Tensor> {
        if !matches!(wanted, LogitsWanted::Top { .. }) || x.dims2().map_err(backend_err)?.0 < 2 {
            return self.matmul(x, w);
        }
        with_data(x, |x, rows, cols| {
            if cols != w.cols {
                crate::bail!(Backend, "lm_head: rows of {cols} against weight rows of {}", w.cols);
            }
            let vocab = w.rows;
            let mut out = vec![f32::NEG_INFINITY; rows * vocab];
            quant::matmul(w.dtype, w.bytes(), vocab, cols, &x[..cols], 1, &mut out[..vocab])?;
            let ids = wanted.ids(&out[..vocab]);
            let picked: Vec<u8> = ids.iter().flat_map(|&id| w.row(id as usize)).copied().collect();
            let mut at_ids = vec![0f32; (rows - 1) * ids.len()];
            quant::matmul(w.dtype, &picked, ids.len(), cols, &x[cols..], rows - 1, &mut at_ids)?;
            for (r, values) in at_ids.chunks_exact(ids.len().max(1)).enumerate() {
                let row = &mut out[(r + 1) * vocab..(r + 2) * vocab];
                for (&id, &v) in ids.iter().zip(values) {
                    row[id as usize] = v;
                }
            }
            tensor(out, rows, vocab)
        })
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn matmul_many(&self, x: &Tensor, ws: &[&CpuWeight]) -> Result<Vec<Tensor>> {
        // Fork the independent products so that one parallel region covers them all.
        fn split(b: &CpuBackend, x: &Tensor, ws: &[&CpuWeight]) -> Vec<Result<Tensor>> {
            match ws {
                [] => Vec::new(),
                [w] => vec![b.matmul(x, w)],
                _ => {
                    let (l, r) = ws.split_at(ws.len() / 2);
                    let (mut a, c) = rayon::join(|| split(b, x, l), || split(b, x, r));
                    a.extend(c);
                    a
                }
            }
        }
        split(self, x, ws).into_iter().collect()
    }

    fn rope(&self, x: &Tensor, n_heads: usize, segments: &[Segment], rope: &Rope) -> Result<Tensor> {
        with_data(x, |x, rows, cols| {
            check_rows(rows, segments)?;
            if n_heads == 0 || !cols.is_multiple_of(n_heads) || !(cols / n_heads).is_multiple_of(2) {
                crate::bail!(Backend, "rope: {cols} columns in {n_heads} heads");
            }
            let head_dim = cols / n_heads;
            let half = head_dim / 2;
            let freqs = rope.frequencies(head_dim);
            let mut out = x.to_vec();
            let positions = segments.iter().flat_map(|s| s.start..s.start + s.n_tokens);
            for (row, pos) in out.chunks_exact_mut(cols).zip(positions) {
                for (i, &f) in freqs.iter().enumerate() {
                    let (sin, cos) = super::rope_sin_cos(pos, f);
                    let (ia, ib) = match rope.pairs {
                        RopePairs::Adjacent => (2 * i, 2 * i + 1),
                        RopePairs::Halves => (i, i + half),
                    };
                    for head in row.chunks_exact_mut(head_dim) {
                        let (a, b) = (head[ia], head[ib]);
                        head[ia] = a * cos - b * sin;
                        head[ib] = a * sin + b * cos;
                    }
                }
            }
            tensor(out, rows, cols)
        })
    }

    fn attention(
        &self,
        layer: usize,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        caches: &mut [&mut CpuKvCache],
        segments: &[Segment],
        shape: &AttentionShape,
    ) -> Result<Tensor> {
        if caches.len() != segments.len() {
            crate::bail!(Backend, "{} caches for {} segments", caches.len(), segments.len());
        }
        let (hd, n_heads, n_kv) = (shape.head_dim, shape.heads, shape.kv_heads);
        let group = n_heads / n_kv;
        let kv_row = n_kv * hd;
        // Append this step's keys and values to each sequence's cache.
        with_data(k, |k, rows, _| {
            check_rows(rows, segments)?;
            with_data(v, |v, _, _| {
                let mut row = 0;
                for (cache, seg) in caches.iter_mut().zip(segments) {
                    if cache.len(layer) != seg.start {
                        crate::bail!(
                            Backend,
                            "cache holds {} positions, segment starts at {}",
                            cache.len(layer),
                            seg.start
                        );
                    }
                    let range = row * kv_row..(row + seg.n_tokens) * kv_row;
                    cache.append(layer, &k[range.clone()], &v[range])?;
                    row += seg.n_tokens;
                }
                Ok(())
            })
        })?;
        let (scale, window, cap) = (shape.scale, shape.window(layer), shape.soft_cap);
        with_data(q, |q, rows, cols| {
            let mut out = vec![0f32; rows * cols];
            let mut scores = Vec::new();
            let mut row = 0;
            for (cache, seg) in caches.iter().zip(segments) {
                let (keys, values) = (&cache.keys[layer], &cache.values[layer]);
                for i in 0..seg.n_tokens {
                    let visible = seg.start + i + 1; // causal: positions 0..=start+i
                    let first = window.map_or(0, |w| visible.saturating_sub(w));
                    for h in 0..n_heads {
                        let kv_off = (h / group) * hd;
                        let qh = &q[(row + i) * cols + h * hd..][..hd];
                        scores.clear();
                        scores.extend((first..visible).map(|p| {
                            let s = dot(qh, &keys[p * kv_row + kv_off..][..hd]) * scale;
                            cap.map_or(s, |cap| soft_cap(s, cap))
                        }));
                        softmax_in_place(&mut scores);
                        let oh = &mut out[(row + i) * cols + h * hd..][..hd];
                        for (p, &w) in (first..visible).zip(&scores) {
                            for (o, vv) in oh.iter_mut().zip(&values[p * kv_row + kv_off..][..hd]) {
                                *o += w * vv;
                            }
                        }
                    }
                }
                row += seg.n_tokens;
            }
            tensor(out, rows, cols)
        })
    }

    fn glu(&self, gate: &Tensor, up: &Tensor, act: Activation) -> Result<Tensor> {
        with_data(gate, |g, rows, cols| {
            with_data(up, |u, _, _| {
                if g.len() != u.len() {
                    crate::bail!(Backend, "glu: {} gate values against {} up values", g.len(), u.len());
                }
                let out = match act {
                    Activation::Silu => g.iter().zip(u).map(|(&g, &u)| g / (1.0 + (-g).exp()) * u).collect(),
                    Activation::GeluTanh => g.iter().zip(u).map(|(&g, &u)| gelu_tanh(g) * u).collect(),
                };
                tensor(out, rows, cols)
            })
        })
    }

    fn scale(&self, x: &Tensor, factor: f32) -> Result<Tensor> {
        with_data(x, |x, rows, cols| tensor(x.iter().map(|v| v * factor).collect(), rows, cols))
    }

    fn soft_cap(&self, x: &Tensor, cap: f32) -> Result<Tensor> {
        with_data(x, |x, rows, cols| tensor(x.iter().map(|&v| soft_cap(v, cap)).collect(), rows, cols))
    }

    fn add(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        (a + b).map_err(backend_err)
    }

    fn add_bias(&self, x: &Tensor, bias: &CpuWeight) -> Result<Tensor> {
        let bias = weight_vector(bias)?;
        with_data(x, |x, rows, cols| {
            if cols != bias.len() {
                crate::bail!(Backend, "add_bias: rows of {cols} against a bias of {}", bias.len());
            }
            let out = x.chunks_exact(cols).flat_map(|row| row.iter().zip(&bias).map(|(v, b)| v + b)).collect();
            tensor(out, rows, cols)
        })
    }

    fn select_rows(&self, x: &Tensor, rows: &[usize]) -> Result<Tensor> {
        with_data(x, |x, n_rows, cols| {
            let mut out = Vec::with_capacity(rows.len() * cols);
            for &r in rows {
                if r >= n_rows {
                    crate::bail!(Backend, "row {r} of {n_rows}");
                }
                out.extend_from_slice(&x[r * cols..(r + 1) * cols]);
            }
            tensor(out, rows.len(), cols)
        })
    }

    fn concat_rows(&self, parts: &[&Tensor]) -> Result<Tensor> {
        Tensor::cat(parts, 0).map_err(backend_err)
    }

    async fn read(&self, x: &Tensor) -> Result<Vec<f32>> {
        with_data(x, |x, _, _| Ok(x.to_vec()))
    }
}

/// GELU, tanh approximation, as ggml computes it (0 below −10, the identity above 10).
pub fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    if x <= -10.0 {
        0.0
    } else if x >= 10.0 {
        x
    } else {
        0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + 0.044715 * x * x)).tanh())
    }
}

/// cap · tanh(v / cap); −∞ stays −∞ (a logit the LM head did not compute).
fn soft_cap(v: f32, cap: f32) -> f32 {
    if v == f32::NEG_INFINITY {
        v
    } else {
        cap * (v / cap).tanh()
    }
}

/// A one-row weight (a norm's scale, a bias) as f32 values.
fn weight_vector(weight: &CpuWeight) -> Result<Vec<f32>> {
    if weight.rows != 1 {
        crate::bail!(Backend, "expected a vector, got a {}×{} weight", weight.rows, weight.cols);
    }
    let mut w = vec![0f32; weight.cols];
    quant::dequantize_row(weight.dtype, weight.bytes(), &mut w)?;
    Ok(w)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent accumulators let the compiler vectorise the loop.
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for j in 0..8 {
            acc[j] += x[j] * y[j];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Numerically stable softmax (max subtracted first).
pub(crate) fn softmax_in_place(xs: &mut [f32]) {
    let max = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for x in xs.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    for x in xs.iter_mut() {
        *x /= sum;
    }
}
