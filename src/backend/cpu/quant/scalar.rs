//! The portable reference: dequantize a weight row to f32 exactly as ggml does, then plain
//! dot products. Every SIMD kernel is tested against this code, and it runs wherever no
//! SIMD kernel exists (aarch64 for now, wasm32 without simd128).

use super::blocks::{blocks, BlockQ4_0, BlockQ4_1, BlockQ8_0, F16Le, F32Le};
use super::{Format, Problem};

/// Dequantizes whole blocks of `fmt` into `out` (sizes already checked by the caller).
/// Operation for operation the same as ggml's `dequantize_row_*` (`q·d`, `q·d + m`,
/// unfused), so the values are bit-identical.
pub(super) fn dequantize(fmt: Format, bytes: &[u8], out: &mut [f32]) {
    match fmt {
        Format::F32 => {
            for (o, w) in out.iter_mut().zip(blocks::<F32Le>(bytes)) {
                *o = w.get();
            }
        }
        Format::F16 => {
            for (o, w) in out.iter_mut().zip(blocks::<F16Le>(bytes)) {
                *o = w.get();
            }
        }
        Format::Q4_0 => {
            for (o, b) in out.chunks_exact_mut(32).zip(blocks::<BlockQ4_0>(bytes)) {
                let d = b.d.get();
                for (j, &q) in b.qs.iter().enumerate() {
                    o[j] = ((q & 0x0f) as i32 - 8) as f32 * d;
                    o[j + 16] = ((q >> 4) as i32 - 8) as f32 * d;
                }
            }
        }
        Format::Q4_1 => {
            for (o, b) in out.chunks_exact_mut(32).zip(blocks::<BlockQ4_1>(bytes)) {
                let (d, m) = (b.d.get(), b.m.get());
                for (j, &q) in b.qs.iter().enumerate() {
                    o[j] = (q & 0x0f) as f32 * d + m;
                    o[j + 16] = (q >> 4) as f32 * d + m;
                }
            }
        }
        Format::Q8_0 => {
            for (o, b) in out.chunks_exact_mut(32).zip(blocks::<BlockQ8_0>(bytes)) {
                let d = b.d.get();
                for (o, &q) in o.iter_mut().zip(&b.qs) {
                    *o = q as f32 * d;
                }
            }
        }
    }
}

/// f32 dot product with eight running sums (vectorizable, and more accurate than one).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(a, b)| a * b).sum();
    for (a, b) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += a[i] * b[i];
        }
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// The [`super::Kernel`] contract: rows `r0..r1`, all tokens, `out` laid out `[tokens][rows]`.
/// Each weight row is dequantized once and applied to every token.
pub(super) fn rows(p: &Problem, r0: usize, r1: usize, out: &mut [f32]) {
    let rows = r1 - r0;
    let mut wrow = vec![0f32; p.k];
    for (i, j) in (r0..r1).enumerate() {
        dequantize(p.fmt, p.row(j), &mut wrow);
        for t in 0..p.tokens {
            out[t * rows + i] = dot(&wrow, p.x_row(t));
        }
    }
}
