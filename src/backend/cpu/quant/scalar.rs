//! The portable reference: dequantize a weight row to f32 exactly as ggml does, then plain
//! dot products. Every SIMD kernel is tested against this code, and it runs wherever no
//! SIMD kernel exists (aarch64 for now, wasm32 without simd128).

use super::{Format, Problem};
use half::f16;

#[inline]
fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// Dequantizes whole blocks of `fmt` into `out` (sizes already checked by the caller).
/// Operation for operation the same as ggml's `dequantize_row_*` (`q·d`, `q·d + m`,
/// unfused), so the values are bit-identical.
pub(super) fn dequantize(fmt: Format, bytes: &[u8], out: &mut [f32]) {
    match fmt {
        Format::F32 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        Format::F16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = f16::from_le_bytes([b[0], b[1]]).to_f32();
            }
        }
        Format::Q4_0 => {
            for (o, b) in out.chunks_exact_mut(32).zip(bytes.chunks_exact(18)) {
                let d = f16_at(b, 0);
                for j in 0..16 {
                    o[j] = ((b[2 + j] & 0x0f) as i32 - 8) as f32 * d;
                    o[j + 16] = ((b[2 + j] >> 4) as i32 - 8) as f32 * d;
                }
            }
        }
        Format::Q4_1 => {
            for (o, b) in out.chunks_exact_mut(32).zip(bytes.chunks_exact(20)) {
                let (d, m) = (f16_at(b, 0), f16_at(b, 2));
                for j in 0..16 {
                    o[j] = (b[4 + j] & 0x0f) as f32 * d + m;
                    o[j + 16] = (b[4 + j] >> 4) as f32 * d + m;
                }
            }
        }
        Format::Q8_0 => {
            for (o, b) in out.chunks_exact_mut(32).zip(bytes.chunks_exact(34)) {
                let d = f16_at(b, 0);
                for j in 0..32 {
                    o[j] = b[2 + j] as i8 as f32 * d;
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
