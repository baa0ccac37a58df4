//! The portable reference: dequantize a weight row to f32 exactly as ggml does, then plain
//! dot products. Every SIMD kernel is tested against this code, and it runs wherever no
//! SIMD kernel exists (aarch64 for now, wasm32 without simd128).

use super::blocks::*;
use super::Problem;
use crate::gguf::GgmlDType as Format;

/// IQ4_NL's 16 levels (ggml's `kvalues_iq4nl`).
const IQ4_NL_LEVELS: [i8; 16] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/// Dequantizes whole blocks of `fmt` into `out` (sizes already checked by the caller).
/// Operation for operation the same as ggml's `dequantize_row_*` (`q·d`, `q·d + m`,
/// unfused), so the values are bit-identical to ggml's reference C and the `gguf` package's.
#[inline(always)]
pub(super) fn dequantize(fmt: Format, bytes: &[u8], out: &mut [f32]) {
    match fmt {
        Format::BF16 => {
            for (o, w) in out.iter_mut().zip(blocks::<BF16Le>(bytes)) {
                *o = w.get();
            }
        }
        Format::Q5_0 => {
            for (o, b) in out.chunks_exact_mut(32).zip(blocks::<BlockQ5_0>(bytes)) {
                let (d, qh) = (b.d.get(), u32::from_le_bytes(b.qh));
                for (j, &q) in b.qs.iter().enumerate() {
                    let (lo, hi) = five_bits(q, qh, j);
                    o[j] = (lo as i32 - 16) as f32 * d;
                    o[j + 16] = (hi as i32 - 16) as f32 * d;
                }
            }
        }
        Format::Q5_1 => {
            for (o, b) in out.chunks_exact_mut(32).zip(blocks::<BlockQ5_1>(bytes)) {
                let (d, m, qh) = (b.d.get(), b.m.get(), u32::from_le_bytes(b.qh));
                for (j, &q) in b.qs.iter().enumerate() {
                    let (lo, hi) = five_bits(q, qh, j);
                    o[j] = lo as f32 * d + m;
                    o[j + 16] = hi as f32 * d + m;
                }
            }
        }
        Format::IQ4_NL => {
            for (o, b) in out.chunks_exact_mut(32).zip(blocks::<BlockIq4Nl>(bytes)) {
                let d = b.d.get();
                for (j, &q) in b.qs.iter().enumerate() {
                    o[j] = d * IQ4_NL_LEVELS[(q & 0x0f) as usize] as f32;
                    o[j + 16] = d * IQ4_NL_LEVELS[(q >> 4) as usize] as f32;
                }
            }
        }
        Format::Q2_K | Format::Q3_K | Format::Q4_K | Format::Q5_K | Format::Q6_K => dequantize_k(fmt, bytes, out),
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

/// [`dequantize`] for the K-quants: blocks of 256 weights in sub-blocks with their own scales.
#[inline(always)]
fn dequantize_k(fmt: Format, bytes: &[u8], out: &mut [f32]) {
    match fmt {
        Format::Q2_K => {
            for (o, b) in out.chunks_exact_mut(256).zip(blocks::<BlockQ2K>(bytes)) {
                let (d, dmin) = (b.d.get(), b.dmin.get());
                // Sub-block i (16 weights): bits 2·(i/2 mod 4) of qs[32·(i/8) + 16·(i mod 2) ..][..16].
                for (i, o) in o.chunks_exact_mut(16).enumerate() {
                    let (dl, ml) = (d * (b.scales[i] & 0x0f) as f32, dmin * (b.scales[i] >> 4) as f32);
                    let (q, shift) = two_bit_quants(&b.qs, i);
                    for (o, &q) in o.iter_mut().zip(q) {
                        *o = dl * ((q >> shift) & 3) as f32 - ml;
                    }
                }
            }
        }
        Format::Q3_K => {
            for (o, b) in out.chunks_exact_mut(256).zip(blocks::<BlockQ3K>(bytes)) {
                let d = b.d.get();
                // Sub-block i as in Q2_K, its third bit in bit i/2 of hmask[16·(i mod 2) ..][..16].
                for (i, o) in o.chunks_exact_mut(16).enumerate() {
                    let dl = d * (q3k_scale(&b.scales, i) - 32) as f32;
                    let (q, shift) = two_bit_quants(&b.qs, i);
                    let hm = &b.hmask[16 * (i % 2)..][..16];
                    for ((o, &q), &h) in o.iter_mut().zip(q).zip(hm) {
                        let high_clear = (h >> (i / 2)) & 1 == 0;
                        *o = dl * (((q >> shift) & 3) as i32 - if high_clear { 4 } else { 0 }) as f32;
                    }
                }
            }
        }
        Format::Q4_K => {
            for (o, b) in out.chunks_exact_mut(256).zip(blocks::<BlockQ4K>(bytes)) {
                let (d, dmin) = (b.d.get(), b.dmin.get());
                // Sub-block i (32 weights): the low (i even) or high nibbles of qs[32·(i/2) ..][..32].
                for (i, o) in o.chunks_exact_mut(32).enumerate() {
                    let (dl, ml, q, shift) = k4_sub_block(d, dmin, &b.scales, &b.qs, i);
                    for (o, &q) in o.iter_mut().zip(q) {
                        *o = dl * ((q >> shift) & 0x0f) as f32 - ml;
                    }
                }
            }
        }
        Format::Q5_K => {
            for (o, b) in out.chunks_exact_mut(256).zip(blocks::<BlockQ5K>(bytes)) {
                let (d, dmin) = (b.d.get(), b.dmin.get());
                // As Q4_K, with the fifth bit of weight l of sub-block i in bit i of qh[l].
                for (i, o) in o.chunks_exact_mut(32).enumerate() {
                    let (dl, ml, q, shift) = k4_sub_block(d, dmin, &b.scales, &b.qs, i);
                    for ((o, &q), &h) in o.iter_mut().zip(q).zip(&b.qh) {
                        let q = ((q >> shift) & 0x0f) + if (h >> i) & 1 == 1 { 16 } else { 0 };
                        *o = dl * q as f32 - ml;
                    }
                }
            }
        }
        Format::Q6_K => dequantize_q6k(bytes, out),
        _ => unreachable!("dequantize_k of {}", fmt.name()),
    }
}

/// [`dequantize`] for Q6_K.
#[inline(always)]
fn dequantize_q6k(bytes: &[u8], out: &mut [f32]) {
    for (o, b) in out.chunks_exact_mut(256).zip(blocks::<BlockQ6K>(bytes)) {
        let d = b.d.get();
        // Weight 32g + l of half h (l < 32) takes its low bits from nibble g/2 of
        // ql[64h + 32·(g mod 2) + l], its high bits from bits 2g of qh[32h + l], its
        // scale from scales[8h + 2g + l/16]. The shifts stay constants (ggml's loop).
        for (h, o) in o.chunks_exact_mut(128).enumerate() {
            let (ql, qh) = (&b.ql[64 * h..][..64], &b.qh[32 * h..][..32]);
            for part in 0..2 {
                let ds: [f32; 4] = std::array::from_fn(|g| d * b.scales[8 * h + 2 * g + part] as f32);
                let (y0, rest) = o.split_at_mut(32);
                let (y1, rest) = rest.split_at_mut(32);
                let (y2, y3) = rest.split_at_mut(32);
                for j in 16 * part..16 * part + 16 {
                    let (a, c, hb) = (ql[j] as i32, ql[j + 32] as i32, qh[j] as i32);
                    y0[j] = ds[0] * ((a & 0x0f | (hb & 3) << 4) - 32) as f32;
                    y1[j] = ds[1] * ((c & 0x0f | (hb >> 2 & 3) << 4) - 32) as f32;
                    y2[j] = ds[2] * ((a >> 4 | (hb >> 4 & 3) << 4) - 32) as f32;
                    y3[j] = ds[3] * ((c >> 4 | (hb >> 6 & 3) << 4) - 32) as f32;
                }
            }
        }
    }
}

/// The 32 signed integers a Q5_0 or IQ4_NL block multiplies its scale by, in element order
/// (any other format: zeros).
pub(super) fn small_ints(fmt: Format, block: &[u8]) -> [i8; 32] {
    let mut q = [0i8; 32];
    match fmt {
        Format::Q5_0 => {
            let b: &BlockQ5_0 = &blocks(block)[0];
            let qh = u32::from_le_bytes(b.qh);
            for (j, &byte) in b.qs.iter().enumerate() {
                let (lo, hi) = five_bits(byte, qh, j);
                (q[j], q[j + 16]) = (lo as i8 - 16, hi as i8 - 16);
            }
        }
        Format::IQ4_NL => {
            let b: &BlockIq4Nl = &blocks(block)[0];
            for (j, &byte) in b.qs.iter().enumerate() {
                (q[j], q[j + 16]) = (IQ4_NL_LEVELS[(byte & 0x0f) as usize], IQ4_NL_LEVELS[(byte >> 4) as usize]);
            }
        }
        _ => {}
    }
    q
}

/// Element j's and element j + 16's 5-bit values in a Q5_0/Q5_1 block: the nibbles of `q`
/// and bits j and j + 16 of `qh`.
#[inline(always)]
fn five_bits(q: u8, qh: u32, j: usize) -> (u32, u32) {
    let lo = (q & 0x0f) as u32 | (((qh >> j) << 4) & 0x10);
    let hi = (q >> 4) as u32 | ((qh >> (j + 12)) & 0x10);
    (lo, hi)
}

/// Q2_K/Q3_K sub-block `i` (16 weights): its 16 bytes of `qs` and the shift of its 2 bits.
#[inline(always)]
fn two_bit_quants(qs: &[u8; 64], i: usize) -> (&[u8], usize) {
    (&qs[32 * (i / 8) + 16 * (i % 2)..][..16], 2 * (i / 2 % 4))
}

/// Q4_K/Q5_K sub-block `i` (32 weights): its scale `d·s` and offset `dmin·m`, its 32 bytes of
/// `qs` and the shift of its nibble (low for even i).
#[inline(always)]
fn k4_sub_block<'a>(d: f32, dmin: f32, scales: &[u8; 12], qs: &'a [u8; 128], i: usize) -> (f32, f32, &'a [u8], usize) {
    let (sc, m) = k4_scale_min(scales, i);
    (d * sc as f32, dmin * m as f32, &qs[32 * (i / 2)..][..32], 4 * (i % 2))
}

/// Sub-block `i`'s 6-bit scale and minimum in Q4_K/Q5_K's 12 packed bytes: for i < 4 the low
/// 6 bits of bytes i and i + 4; otherwise the nibbles of byte i + 4 with the top 2 bits of
/// bytes i − 4 and i above them.
#[inline(always)]
fn k4_scale_min(s: &[u8; 12], i: usize) -> (u8, u8) {
    if i < 4 {
        (s[i] & 63, s[i + 4] & 63)
    } else {
        ((s[i + 4] & 0x0f) | ((s[i - 4] >> 6) << 4), (s[i + 4] >> 4) | ((s[i] >> 6) << 4))
    }
}

/// Sub-block `i`'s 6-bit scale (before the −32) in Q3_K's 12 packed bytes: the low 4 bits are
/// nibble i/8 of byte i mod 8, the high 2 bits are bits 2·(i/4) of byte 8 + i mod 4.
#[inline(always)]
fn q3k_scale(s: &[u8; 12], i: usize) -> i32 {
    let low = (s[i % 8] >> (4 * (i / 8))) & 0x0f;
    let high = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
    (low | (high << 4)) as i32
}

/// f32 dot product with eight running sums (vectorizable, and more accurate than one).
#[inline(always)]
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
/// Each weight row is dequantized once and applied to every token. Inlined into the SIMD
/// modules' wrappers for the formats they have no kernel of their own for, so that the
/// compiler vectorizes it for their instruction set.
#[inline(always)]
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
