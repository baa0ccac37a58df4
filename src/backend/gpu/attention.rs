//! Attention over the paged KV cache: the step description the KV kernels read, the
//! append of the step's keys and values, and the attention kernel.

use std::rc::Rc;

use super::params::{AttentionParams, KvWriteParams};
use super::recorder::Bind;
use super::shaders::Variant;
use super::{to_u32, GpuBackend, GpuKvCache, GpuTensor, SharedArena};
use crate::backend::AttentionShape;
use crate::backend::Segment;
use crate::error::Result;

/// The step description the KV kernels read (see kv_common.wgsl), kept while it repeats so
/// the 30 layers of a step upload it once.
pub(super) struct StepMemo {
    steps: Vec<u32>,
    data: Rc<[u8]>,
}

impl GpuBackend {
    /// [`crate::backend::Backend::attention`]: appends the step's keys and values to the
    /// caches at `layer`, then attends over them.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn attend(
        &self,
        layer: usize,
        q: &GpuTensor,
        k: &GpuTensor,
        v: &GpuTensor,
        caches: &mut [&mut GpuKvCache],
        segments: &[Segment],
        shape: &AttentionShape,
    ) -> Result<GpuTensor> {
        let rows = check_shapes(layer, q, k, v, caches.len(), segments, shape)?;
        let (hd, n_heads, n_kv) = (shape.head_dim, shape.heads, shape.kv_heads);
        let kv_row = n_kv * hd;
        let arena = self.kv_arena(shape)?;
        self.reserve_positions(layer, caches, segments, &arena)?;
        let steps = self.steps(caches, segments)?;
        let kv_buf = arena.borrow().layers[layer].clone();
        let kv_bind = || Bind::Buffer { buf: &kv_buf, offset: 0, size: kv_buf.size() };
        let grid = self.rec.grid((rows * kv_row).div_ceil(256) as u64)?;
        let p = KvWriteParams { kv_row: to_u32(kv_row, "kv row")?, rows: to_u32(rows, "rows")?, ..Default::default() };
        self.rec.dispatch(
            &Variant::new("kv_write.wgsl"),
            &p,
            &[Bind::Shared(&steps), k.bind(), v.bind(), kv_bind()],
            grid,
        )?;
        let out = self.alloc(rows, n_heads * hd)?;
        let p = AttentionParams {
            n_heads: n_heads as u32,
            group: (n_heads / n_kv) as u32,
            kv_row: to_u32(kv_row, "kv row")?,
            scale: shape.scale,
            rows: to_u32(rows, "rows")?,
            window: shape.window(layer).map_or(Ok(0), |w| to_u32(w, "window"))?,
            soft_cap: shape.soft_cap.unwrap_or(0.0),
            ..Default::default()
        };
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

    /// Layer 0 appends the step's positions to each cache; the other layers write into the
    /// same ones, so there the caches must already hold them.
    fn reserve_positions(
        &self,
        layer: usize,
        caches: &mut [&mut GpuKvCache],
        segments: &[Segment],
        arena: &SharedArena,
    ) -> Result<()> {
        for (cache, seg) in caches.iter_mut().zip(segments) {
            if !Rc::ptr_eq(cache.arena(), arena) {
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
        Ok(())
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
        let data: Rc<[u8]> = bytemuck::cast_slice::<u32, u8>(&steps).into();
        *memo = Some(StepMemo { steps, data: data.clone() });
        Ok(data)
    }
}

/// Checks the shapes of an attention call against each other and `shape`; returns the
/// number of rows.
fn check_shapes(
    layer: usize,
    q: &GpuTensor,
    k: &GpuTensor,
    v: &GpuTensor,
    n_caches: usize,
    segments: &[Segment],
    shape: &AttentionShape,
) -> Result<usize> {
    let (hd, n_heads, n_kv) = (shape.head_dim, shape.heads, shape.kv_heads);
    let kv_row = n_kv * hd;
    if n_caches != segments.len() {
        crate::bail!(Backend, "{n_caches} caches for {} segments", segments.len());
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
    Ok(rows)
}
