//! The `Backend` implementation: each layer operation is one or two kernel dispatches,
//! recorded, not run (see `recorder.rs`). The matrix products, attention and the readbacks
//! have files of their own.

use std::rc::Rc;

use super::params::{ElementwiseParams, EmbedParams, GatherRowsParams, RmsNormParams, RopeParams};
use super::recorder::Bind;
use super::shaders::{format_defines, Variant};
use super::weights::packed_len;
use super::{bind_weight, to_u32, GpuBackend, GpuKvCache, GpuTensor, GpuWeight};
use crate::backend::AttentionShape;
use crate::backend::{Activation, Backend, LogitsWanted, Rope, RopePairs, Segment};
use crate::error::{Error, ErrorCode, Result};
use crate::gguf::{GgmlDType, GgufFile, TensorInfo};

/// RoPE angles of the last step, by (segments, frequencies): the last two tables.
pub(super) struct RopeMemo {
    key: (Vec<Segment>, Vec<u32>),
    data: Rc<[u8]>,
}

impl GpuBackend {
    /// cos, sin of every row's angles, pair by pair, as the rope kernel reads them; kept
    /// while the step repeats (every layer of a step asks for the same table, or for one of
    /// two: Gemma 3's window layers rotate otherwise).
    fn rope_table(&self, segments: &[Segment], head_dim: usize, rope: &Rope) -> Rc<[u8]> {
        let freqs = rope.frequencies(head_dim);
        let key = (segments.to_vec(), freqs.iter().map(|f| f.to_bits()).collect());
        let mut memo = self.rope_memo.borrow_mut();
        if let Some(m) = memo.iter().find(|m| m.key == key) {
            return m.data.clone();
        }
        let total: usize = segments.iter().map(|s| s.n_tokens).sum();
        let mut bytes = Vec::with_capacity(total * freqs.len() * 8);
        for pos in segments.iter().flat_map(|s| s.start..s.start + s.n_tokens) {
            for &f in &freqs {
                let (sin, cos) = crate::backend::rope_sin_cos(pos, f);
                bytes.extend_from_slice(&cos.to_le_bytes());
                bytes.extend_from_slice(&sin.to_le_bytes());
            }
        }
        let data: Rc<[u8]> = bytes.into();
        if memo.len() == 2 {
            memo.remove(0);
        }
        memo.push(RopeMemo { key, data: data.clone() });
        data
    }

    /// One dispatch of elementwise.wgsl's variant `op` over `a`'s shape: `b` is its second
    /// input, `p` its parameters but for the element count.
    fn elementwise_op(&self, op: &'static str, a: &GpuTensor, b: Bind<'_>, p: ElementwiseParams) -> Result<GpuTensor> {
        let out = self.alloc(a.rows, a.cols)?;
        let n = a.rows * a.cols;
        let grid = self.rec.grid(n.div_ceil(256) as u64)?;
        let p = ElementwiseParams { n: to_u32(n, "elements")?, ..p };
        self.rec.dispatch(&Variant::new("elementwise.wgsl").flag(op), &p, &[a.bind(), b, out.bind()], grid)?;
        Ok(out)
    }

    /// An element-wise op of `x` and one constant (`factor`).
    fn with_constant(&self, op: &'static str, x: &GpuTensor, factor: f32) -> Result<GpuTensor> {
        // b is not read; x is bound there too.
        self.elementwise_op(op, x, x.bind(), ElementwiseParams { factor, ..Default::default() })
    }

    fn elementwise(&self, op: &'static str, a: &GpuTensor, b: &GpuTensor) -> Result<GpuTensor> {
        if (a.rows, a.cols) != (b.rows, b.cols) {
            crate::bail!(Backend, "{op}: shapes {}×{} and {}×{}", a.rows, a.cols, b.rows, b.cols);
        }
        self.elementwise_op(op, a, b.bind(), ElementwiseParams::default())
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
        let bytes = crate::backend::host_matrix_bytes(data, rows, cols)?;
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
        let p = EmbedParams {
            k: to_u32(table.cols, "hidden")?,
            n_ids: to_u32(ids.len(), "ids")?,
            base: table.word,
            ..Default::default()
        };
        self.rec.dispatch(
            &Variant::new("embed.wgsl").flags(format_defines(table.dtype)),
            &p,
            &[bind_weight(table), Bind::Data(bytemuck::cast_slice(ids)), out.bind()],
            grid,
        )?;
        Ok(out)
    }

    fn rms_norm(&self, x: &GpuTensor, weight: &GpuWeight, eps: f32) -> Result<GpuTensor> {
        if weight.cols == 0 || !x.cols.is_multiple_of(weight.cols) || weight.rows != 1 {
            crate::bail!(Backend, "rms_norm: rows of {} against a {}×{} weight", x.cols, weight.rows, weight.cols);
        }
        // Each run of the weight's length is a row to the kernel (a head, for a per-head norm).
        let runs = x.rows * (x.cols / weight.cols);
        let out = self.alloc(x.rows, x.cols)?;
        let p = RmsNormParams { k: to_u32(weight.cols, "k")?, rows: to_u32(runs, "rows")?, base: weight.word, eps };
        let mut v = Variant::new("rms_norm.wgsl").flags(format_defines(weight.dtype));
        let grid = if self.per_thread {
            v = v.flag("ROW_THREAD");
            self.rec.grid(runs.div_ceil(64) as u64)?
        } else {
            self.rec.grid(runs as u64)?
        };
        self.rec.dispatch(&v, &p, &[bind_weight(weight), x.bind(), out.bind()], grid)?;
        Ok(out)
    }

    fn matmul(&self, x: &GpuTensor, w: &GpuWeight) -> Result<GpuTensor> {
        let mut out = self.matmul_many(x, &[w])?;
        out.pop().ok_or_else(|| Error::new(ErrorCode::Backend, "matmul: no output"))
    }

    fn matmul_many(&self, x: &GpuTensor, ws: &[&GpuWeight]) -> Result<Vec<GpuTensor>> {
        self.matmul_grouped(x, ws)
    }

    fn rope(&self, x: &GpuTensor, n_heads: usize, segments: &[Segment], rope: &Rope) -> Result<GpuTensor> {
        let total: usize = segments.iter().map(|s| s.n_tokens).sum();
        if total != x.rows {
            crate::bail!(Backend, "batch has {} rows but its segments cover {total}", x.rows);
        }
        if n_heads == 0 || !x.cols.is_multiple_of(n_heads) || !(x.cols / n_heads).is_multiple_of(2) {
            crate::bail!(Backend, "rope: {} columns in {n_heads} heads", x.cols);
        }
        let head_dim = x.cols / n_heads;
        let table = self.rope_table(segments, head_dim, rope);
        let out = self.alloc(x.rows, x.cols)?;
        let grid = self.rec.grid((x.rows * x.cols / 2).div_ceil(256) as u64)?;
        let p = RopeParams {
            cols: to_u32(x.cols, "cols")?,
            head_dim: head_dim as u32,
            rows: to_u32(x.rows, "rows")?,
            ..Default::default()
        };
        let mut v = Variant::new("rope.wgsl");
        if rope.pairs == RopePairs::Halves {
            v = v.flag("HALVES");
        }
        self.rec.dispatch(&v, &p, &[Bind::Shared(&table), x.bind(), out.bind()], grid)?;
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
        self.attend(layer, q, k, v, caches, segments, shape)
    }

    fn glu(&self, gate: &GpuTensor, up: &GpuTensor, act: Activation) -> Result<GpuTensor> {
        match act {
            Activation::Silu => self.elementwise("SILU_MUL", gate, up),
            Activation::GeluTanh => self.elementwise("GELU_MUL", gate, up),
        }
    }

    fn scale(&self, x: &GpuTensor, factor: f32) -> Result<GpuTensor> {
        self.with_constant("SCALE", x, factor)
    }

    fn soft_cap(&self, x: &GpuTensor, cap: f32) -> Result<GpuTensor> {
        self.with_constant("SOFT_CAP", x, cap)
    }

    fn add(&self, a: &GpuTensor, b: &GpuTensor) -> Result<GpuTensor> {
        self.elementwise("ADD", a, b)
    }

    fn add_bias(&self, x: &GpuTensor, bias: &GpuWeight) -> Result<GpuTensor> {
        if bias.rows != 1 || bias.cols != x.cols || bias.dtype != GgmlDType::F32 {
            crate::bail!(
                Backend,
                "add_bias: rows of {} against a {}×{} {:?} bias",
                x.cols,
                bias.rows,
                bias.cols,
                bias.dtype
            );
        }
        let p = ElementwiseParams { cols: to_u32(x.cols, "cols")?, base: bias.word, ..Default::default() };
        self.elementwise_op("ADD_ROW", x, bind_weight(bias), p)
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
        let p = GatherRowsParams {
            cols: to_u32(x.cols, "cols")?,
            n_rows: to_u32(rows.len(), "rows")?,
            ..Default::default()
        };
        self.rec.dispatch(
            &Variant::new("gather_rows.wgsl"),
            &p,
            &[Bind::Data(bytemuck::cast_slice(&list)), x.bind(), out.bind()],
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
        self.read_all(x).await
    }

    async fn read_logits(&self, x: &GpuTensor, wanted: &LogitsWanted) -> Result<Vec<f32>> {
        self.read_wanted(x, wanted).await
    }
}
