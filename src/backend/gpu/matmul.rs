//! Matrix products `x · Wᵀ`: weights of one format that share a buffer (Q/K/V, gate/up) go
//! in one dispatch, of the mat-vec kernel for a few activation rows or the tiled mat-mul
//! for many.

use super::params::MatmulParams;
use super::recorder::Bind;
use super::shaders::{format_defines, Variant};
use super::{bind_weight, to_u32, GpuBackend, GpuTensor, GpuWeight};
use crate::error::Result;

/// Activation rows up to which a product is a mat-vec (each weight row read once for all of
/// them); beyond, the tiled mat-mul.
const MATVEC_MAX_ROWS: usize = 8;

/// Weights one dispatch multiplies at most (the lanes `MatmulParams` has for them).
const MAX_GROUP: usize = 3;

impl GpuBackend {
    /// `x · Wᵢᵀ` for each weight, the weights of one format in one buffer grouped into one
    /// dispatch.
    pub(super) fn matmul_grouped(&self, x: &GpuTensor, ws: &[&GpuWeight]) -> Result<Vec<GpuTensor>> {
        if let Some(w) = ws.iter().find(|w| w.cols != x.cols) {
            crate::bail!(Backend, "matmul: rows of {} against weight rows of {}", x.cols, w.cols);
        }
        let mut out = Vec::with_capacity(ws.len());
        let mut i = 0;
        while i < ws.len() {
            let mut j = i + 1;
            while j < ws.len() && j - i < MAX_GROUP && ws[j].dtype == ws[i].dtype && ws[j].buf.id == ws[i].buf.id {
                j += 1;
            }
            out.extend(self.matmul_group(x, &ws[i..j])?);
            i = j;
        }
        Ok(out)
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
        let mut p = MatmulParams { k: to_u32(k, "k")?, tokens: to_u32(tokens, "rows")?, ..Default::default() };
        let mut total = 0usize;
        for (i, w) in ws.iter().enumerate() {
            p.base[i] = w.word;
            p.rows[i] = to_u32(w.rows, "rows")?;
            p.out[i] = to_u32((offsets[i] / 4) as usize, "offset")?;
            total += w.rows;
        }
        p.total_rows = to_u32(total, "rows")?;
        let out = Bind::Buffer { buf: &mem.buf, offset: 0, size: bytes };
        self.dispatch_matmul(ws[0], &p, [bind_weight(ws[0]), x.bind(), out])?;
        Ok(ws
            .iter()
            .zip(offsets)
            .map(|(w, offset)| GpuTensor { mem: mem.clone(), offset, rows: tokens, cols: w.rows })
            .collect())
    }

    /// Records the product `p` describes with the kernel that suits its shape and adapter.
    fn dispatch_matmul(&self, w: &GpuWeight, p: &MatmulParams, binds: [Bind; 3]) -> Result<()> {
        let (tokens, total) = (p.tokens as usize, p.total_rows as usize);
        let format = format_defines(w.dtype);
        if self.per_thread {
            // A thread per output row and per block of up to 8 activation rows.
            let block = tokens.min(MATVEC_MAX_ROWS);
            let v = Variant::new("matvec.wgsl").flags(format).flag("ROW_THREAD").value("TOKENS", block as u32);
            let [gx, gy, _] = self.rec.grid(total.div_ceil(64) as u64)?;
            let gz = to_u32(tokens.div_ceil(block), "row blocks")?;
            self.rec.dispatch(&v, p, &binds, [gx, gy, gz])
        } else if tokens <= MATVEC_MAX_ROWS {
            let mut v = Variant::new("matvec.wgsl").flags(format).value("TOKENS", tokens as u32);
            if self.info.subgroups {
                v = v.flag("SUBGROUPS");
            }
            let grid = self.rec.grid(total.div_ceil(8) as u64)?;
            self.rec.dispatch(&v, p, &binds, grid)
        } else {
            let (gx, gy) = (total.div_ceil(64), tokens.div_ceil(32));
            let max = self.rec.device().limits().max_compute_workgroups_per_dimension as usize;
            if gx > max || gy > max {
                let k = p.k;
                crate::bail!(GpuLimits, "a {tokens}×{k} by {total}×{k} product exceeds the adapter's workgroup limits");
            }
            let v = Variant::new("matmul.wgsl").flags(format);
            self.rec.dispatch(&v, p, &binds, [gx as u32, gy as u32, 1])
        }
    }
}
