//! Reading results back to the host: whole tensors, or just the logits a step looks at
//! (the top-k of row 0, found on the GPU, and the values at those ids in every row).

use super::params::{GatherIdsParams, TopKParams};
use super::recorder::Bind;
use super::shaders::Variant;
use super::{to_u32, GpuBackend, GpuTensor};
use crate::backend::LogitsWanted;
use crate::error::Result;

impl GpuBackend {
    /// A tensor's values, row-major.
    pub(super) async fn read_all(&self, x: &GpuTensor) -> Result<Vec<f32>> {
        let bytes = self.rec.read_back(&[(&x.mem.buf, x.offset, x.bytes())]).await?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Logits where at least the entries `wanted` names are right (−∞ where not read).
    pub(super) async fn read_wanted(&self, x: &GpuTensor, wanted: &LogitsWanted) -> Result<Vec<f32>> {
        match wanted {
            // Past a quarter of the row, reading it whole is as cheap.
            LogitsWanted::Top { k, also } if (k + also.len()) * 4 < x.cols => self.read_top(x, *k, also).await,
            _ => self.read_all(x).await,
        }
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
        let ids_bind = || Bind::Buffer { buf: &ids.buf, offset: 0, size: (k * 4) as u64 };
        let p = TopKParams { n, k: k as u32, row: 0, ..Default::default() };
        self.rec.dispatch(&Variant::new("top_k.wgsl"), &p, &[x.bind(), ids_bind()], [1, 1, 1])?;
        let extra: &[u8] = if also.is_empty() { &[0u8; 4] } else { bytemuck::cast_slice(&also) };
        let threads = rows * per_row;
        if threads.div_ceil(256) > self.rec.device().limits().max_compute_workgroups_per_dimension as usize {
            crate::bail!(GpuLimits, "{threads} logits to gather exceed the adapter's workgroup limits");
        }
        let p = GatherIdsParams { cols: n, rows: rows as u32, n_top: k as u32, n_extra: also.len() as u32 };
        self.rec.dispatch(
            &Variant::new("gather_ids.wgsl"),
            &p,
            &[x.bind(), ids_bind(), Bind::Data(extra), values.bind()],
            [threads.div_ceil(256) as u32, 1, 1],
        )?;
        let bytes = self
            .rec
            .read_back(&[(&ids.buf, 0, (k * 4) as u64), (&values.mem.buf, values.offset, values.bytes())])
            .await?;
        let (id_bytes, value_bytes) = bytes.split_at(k * 4);
        let mut wanted: Vec<u32> = bytemuck::pod_collect_to_vec(id_bytes);
        wanted.extend_from_slice(&also);
        let values: Vec<f32> = bytemuck::pod_collect_to_vec(value_bytes);
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
