//! simd128 kernels for wasm32 (the crate is built with `-C target-feature=+simd128`).
//!
//! Same plan as the AVX2 kernels, on 4-lane vectors and without FMA (baseline simd128 has
//! none). What runs fast is whatever V8 compiles to few x86 instructions with few live
//! registers: 32-bit shifts and masks rather than widening shuffles (see [`nibble_x`]),
//! scales converted two at a time as a vector, products summed as a tree (no more adds
//! than a running sum, one add on the accumulator's chain). V8 schedules loads early and
//! then spills, so several tokens are served from a dequantized f32 copy of each weight
//! row rather than from a register tile (see [`rows_impl`]). Their speed in Chromium:
//! BENCHMARKS.md, "Kernels alone".

use super::blocks::{BlockQ4_0, BlockQ4_1, BlockQ8_0, GroupF16, GroupF32};
use super::{per_format, Format, Problem, GROUP};
use core::arch::wasm32::*;
use core::ptr::addr_of;

/// The [`super::Kernel`] for simd128 (always available: it is a compile-time feature).
pub(super) fn rows(p: &Problem, r0: usize, r1: usize, out: &mut [f32]) {
    p.assert_kernel_bounds(r0, r1, out);
    // SAFETY: `rows_impl` reads only inside `p.w`, `p.x`, `p.xq` and `p.xsum`, whose sizes
    // `assert_kernel_bounds` pins down.
    // The formats without a kernel here take the scalar reference, which the crate's
    // `+simd128` build vectorizes.
    unsafe { per_format!(p.fmt, rows_impl(p, r0, r1, out), otherwise super::scalar::rows(p, r0, r1, out)) }
}

/// The activations as the Q4 mat-vec wants them. It reads the 16 bytes of nibbles as four
/// u32 lanes, lane `l` holding bytes `4l..4l+4`; `(v >> 8b) & 0xFF` is then byte `4l + b`
/// in lane `l`, and `& 0xF` its low nibble, with plain 32-bit shifts and masks (no widening
/// shuffles, which simd128 lowers to several x86 instructions each). With
/// `byte = lo + 16·hi`, `Σ lo·x_lo + Σ hi·x_hi = Σ lo·(x_lo − x_hi/16) + Σ byte·(x_hi/16)`,
/// so each 32-block of activations becomes, for b = 0..4, the four values
/// `a_i = x_i − x_{i+16}/16` then the four `c_i = x_{i+16}/16`, i = b, 4+b, 8+b, 12+b.
/// Computed once per call; all `n` weight rows share it.
pub(super) fn nibble_x(x: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; x.len() / GROUP * GROUP];
    for (o, x) in out.chunks_exact_mut(GROUP).zip(x.chunks_exact(GROUP)) {
        for b in 0..4 {
            for l in 0..4 {
                let i = 4 * l + b;
                o[8 * b + l] = x[i] - x[i + 16] * 0.0625;
                o[8 * b + 4 + l] = x[i + 16] * 0.0625;
            }
        }
    }
    out
}

/// `Σ qᵢxᵢ` of a block of 16 nibble bytes at `qs` against its [`nibble_x`] activations.
#[inline(always)]
unsafe fn nibble_dot(qs: *const u8, x: *const f32) -> v128 {
    let v = v128_load(qs as *const v128);
    let (byte, nib) = (u32x4_splat(0xff), u32x4_splat(0x0f));
    let s1 = u32x4_shr(v, 8);
    let s2 = u32x4_shr(v, 16);
    let by3 = u32x4_shr(v, 24);
    let q = [
        v128_and(v, nib),
        v128_and(v, byte),
        v128_and(s1, nib),
        v128_and(s1, byte),
        v128_and(s2, nib),
        v128_and(s2, byte),
        v128_and(by3, nib),
        by3,
    ];
    let x = x as *const v128;
    let p = |i: usize| f32x4_mul(f32x4_convert_i32x4(q[i]), v128_load(x.add(i)));
    f32x4_add(
        f32x4_add(f32x4_add(p(0), p(1)), f32x4_add(p(2), p(3))),
        f32x4_add(f32x4_add(p(4), p(5)), f32x4_add(p(6), p(7))),
    )
}

/// A block of 32 weights (see `blocks.rs`) as the kernels read it: weight = `d·q + m`, with
/// `d`, `m` per block. The kernels step through a row as `*const Self`.
trait Block {
    /// Whether there is a scale `d` (false for F32/F16, whose `q` is the weight itself).
    const SCALED: bool;
    /// Whether there is an offset `m` (Q4_1; Q4_0 too, as `m = −8d`).
    const OFFSET: bool;
    /// `[d, m, _, _]` of the block at `b` (only called when `SCALED`). Converted as a
    /// vector: two scalar f16 conversions per block cost more than the vector one.
    unsafe fn dm(b: *const Self) -> v128;
    /// `q` of elements `16h..16h + 16` of the block at `b`, as 4 × f32x4.
    unsafe fn q_half(b: *const Self, h: usize) -> [v128; 4];
    /// For the 4-bit formats: the offset of the 16 bytes of nibbles (the mat-vec then reads
    /// them with [`nibble_dot`], against [`nibble_x`] activations).
    const NIBBLES_AT: Option<usize> = None;
}

/// The f16 at `b` (lane 0) and the one after it (lane 1), as f32.
#[inline(always)]
unsafe fn f16_pair(b: *const u8) -> v128 {
    f16x4(u32x4_extend_low_u16x8(v128_load32_zero(b as *const u32)))
}

/// 16 unsigned bytes → 4 × f32x4.
#[inline(always)]
fn widen_u8(v: v128) -> [v128; 4] {
    let (l, h) = (u16x8_extend_low_u8x16(v), u16x8_extend_high_u8x16(v));
    [
        f32x4_convert_i32x4(u32x4_extend_low_u16x8(l)),
        f32x4_convert_i32x4(u32x4_extend_high_u16x8(l)),
        f32x4_convert_i32x4(u32x4_extend_low_u16x8(h)),
        f32x4_convert_i32x4(u32x4_extend_high_u16x8(h)),
    ]
}

/// 16 signed bytes → 4 × f32x4.
#[inline(always)]
fn widen_i8(v: v128) -> [v128; 4] {
    let (l, h) = (i16x8_extend_low_i8x16(v), i16x8_extend_high_i8x16(v));
    [
        f32x4_convert_i32x4(i32x4_extend_low_i16x8(l)),
        f32x4_convert_i32x4(i32x4_extend_high_i16x8(l)),
        f32x4_convert_i32x4(i32x4_extend_low_i16x8(h)),
        f32x4_convert_i32x4(i32x4_extend_high_i16x8(h)),
    ]
}

/// Four f16 (in the low halves of u32 lanes) → f32x4, exactly as `half` (except that a NaN
/// keeps its payload rather than being made quiet).
///
/// An f16 with its exponent and mantissa moved into f32 position is the right number
/// times 2⁻¹¹², subnormals included, so one multiply rebiases it. Inf/NaN are found from
/// the result (exponent 31 comes out ≥ 2¹⁶, above the largest finite f16, 65504) with one
/// float compare, which V8 lowers better than an unsigned integer compare. Cost: an f16
/// *subnormal* makes the multiply's operand subnormal, which x86 handles with a slow
/// microcode assist; a rebias done with integer adds and selects avoids that but made
/// every block ~20% slower under V8, and real models have (next to) no subnormal scales
/// (none in the default model's tensors).
#[inline(always)]
fn f16x4(h: v128) -> v128 {
    let sign = i32x4_shl(v128_and(h, u32x4_splat(0x8000)), 16);
    let em = i32x4_shl(v128_and(h, u32x4_splat(0x7fff)), 13);
    let mag = f32x4_mul(em, f32x4_splat(f32::from_bits(0x7780_0000))); // × 2¹¹²
    let special = v128_and(f32x4_ge(mag, f32x4_splat(65536.0)), u32x4_splat(0x7f80_0000));
    v128_or(v128_or(mag, special), sign) // Inf/NaN: all exponent bits set, mantissa kept
}

/// 16 packed-nibble bytes at `q`, half `h`: the low nibbles (h = 0) or the high ones (h = 1).
#[inline(always)]
unsafe fn nibbles(q: *const u8, h: usize) -> [v128; 4] {
    let v = v128_load(q as *const v128);
    let v = if h == 0 { v128_and(v, u8x16_splat(0x0f)) } else { u8x16_shr(v, 4) };
    widen_u8(v)
}

impl Block for BlockQ4_1 {
    const NIBBLES_AT: Option<usize> = Some(std::mem::offset_of!(BlockQ4_1, qs));
    const SCALED: bool = true;
    const OFFSET: bool = true;
    #[inline(always)]
    unsafe fn dm(b: *const Self) -> v128 {
        // `m` follows `d`: one load converts both.
        f16_pair(addr_of!((*b).d).cast())
    }
    #[inline(always)]
    unsafe fn q_half(b: *const Self, h: usize) -> [v128; 4] {
        nibbles(addr_of!((*b).qs).cast(), h)
    }
}

impl Block for BlockQ4_0 {
    const NIBBLES_AT: Option<usize> = Some(std::mem::offset_of!(BlockQ4_0, qs));
    const SCALED: bool = true;
    const OFFSET: bool = true;
    #[inline(always)]
    unsafe fn dm(b: *const Self) -> v128 {
        // d·(q − 8) = d·q + (−8d), q the raw nibble. (Lane 1 converts the first two bytes
        // of `qs`, unused.)
        let d = f16_pair(addr_of!((*b).d).cast());
        f32x4_mul(i32x4_shuffle::<0, 0, 0, 0>(d, d), f32x4(1.0, -8.0, 0.0, 0.0))
    }
    #[inline(always)]
    unsafe fn q_half(b: *const Self, h: usize) -> [v128; 4] {
        nibbles(addr_of!((*b).qs).cast(), h)
    }
}

impl Block for BlockQ8_0 {
    const SCALED: bool = true;
    const OFFSET: bool = false;
    #[inline(always)]
    unsafe fn dm(b: *const Self) -> v128 {
        f16_pair(addr_of!((*b).d).cast())
    }
    #[inline(always)]
    unsafe fn q_half(b: *const Self, h: usize) -> [v128; 4] {
        let q: *const u8 = addr_of!((*b).qs).cast();
        widen_i8(v128_load(q.add(16 * h) as *const v128))
    }
}

impl Block for GroupF16 {
    const SCALED: bool = false;
    const OFFSET: bool = false;
    unsafe fn dm(_: *const Self) -> v128 {
        unreachable!()
    }
    #[inline(always)]
    unsafe fn q_half(b: *const Self, h: usize) -> [v128; 4] {
        let b = b.cast::<u8>().add(32 * h);
        let (v0, v1) = (v128_load(b as *const v128), v128_load(b.add(16) as *const v128));
        [
            f16x4(u32x4_extend_low_u16x8(v0)),
            f16x4(u32x4_extend_high_u16x8(v0)),
            f16x4(u32x4_extend_low_u16x8(v1)),
            f16x4(u32x4_extend_high_u16x8(v1)),
        ]
    }
}

impl Block for GroupF32 {
    const SCALED: bool = false;
    const OFFSET: bool = false;
    unsafe fn dm(_: *const Self) -> v128 {
        unreachable!()
    }
    #[inline(always)]
    unsafe fn q_half(b: *const Self, h: usize) -> [v128; 4] {
        let b = b.cast::<u8>().add(64 * h) as *const v128;
        [v128_load(b), v128_load(b.add(1)), v128_load(b.add(2)), v128_load(b.add(3))]
    }
}

/// `(w₀x₀ + w₁x₁) + (w₂x₂ + w₃x₃)` for 16 weights and the 16 activations at `x`.
#[inline(always)]
unsafe fn dot16(w: &[v128; 4], x: *const f32) -> v128 {
    let x = x as *const v128;
    let a = f32x4_add(f32x4_mul(w[0], v128_load(x)), f32x4_mul(w[1], v128_load(x.add(1))));
    let b = f32x4_add(f32x4_mul(w[2], v128_load(x.add(2))), f32x4_mul(w[3], v128_load(x.add(3))));
    f32x4_add(a, b)
}

#[inline(always)]
fn hsum(v: v128) -> f32 {
    (f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<1>(v))
        + (f32x4_extract_lane::<2>(v) + f32x4_extract_lane::<3>(v))
}

/// One weight row · one activation row (the decode mat-vec). `x` is the activation row
/// (for the 4-bit formats its [`nibble_x`] form), `xsum` its block sums (read only for
/// formats with an offset).
#[inline(never)]
unsafe fn dot_row<B: Block>(w: *const B, nb: usize, x: *const f32, xsum: *const f32) -> f32 {
    let mut acc = f32x4_splat(0.0); // Σ_b d_b · Σ_i q_i x_i
    let mut acc_m = f32x4_splat(0.0); // lane 1: Σ_b m_b · xsum_b
    for b in 0..nb {
        let (blk, xb) = (w.add(b), x.add(b * GROUP));
        let s = match B::NIBBLES_AT {
            Some(at) => nibble_dot(blk.cast::<u8>().add(at), xb),
            None => f32x4_add(dot16(&B::q_half(blk, 0), xb), dot16(&B::q_half(blk, 1), xb.add(16))),
        };
        if B::SCALED {
            let dm = B::dm(blk);
            acc = f32x4_add(acc, f32x4_mul(i32x4_shuffle::<0, 0, 0, 0>(dm, dm), s));
            if B::OFFSET {
                acc_m = f32x4_add(acc_m, f32x4_mul(dm, v128_load32_splat(xsum.add(b) as *const u32)));
            }
        } else {
            acc = f32x4_add(acc, s);
        }
    }
    hsum(acc) + f32x4_extract_lane::<1>(acc_m)
}

/// Dequantizes the `nb` blocks of the row at `w` to `d·q + m` into `out` (32·nb values).
#[inline(always)]
unsafe fn dequant_groups<B: Block>(w: *const B, nb: usize, out: *mut f32) {
    for b in 0..nb {
        let blk = w.add(b);
        let dm = if B::SCALED { B::dm(blk) } else { f32x4(1.0, 0.0, 0.0, 0.0) };
        let (d, m) = (i32x4_shuffle::<0, 0, 0, 0>(dm, dm), i32x4_shuffle::<1, 1, 1, 1>(dm, dm));
        for h in 0..2 {
            for (i, mut v) in B::q_half(blk, h).into_iter().enumerate() {
                if B::SCALED {
                    v = f32x4_mul(v, d);
                    if B::OFFSET {
                        v = f32x4_add(v, m);
                    }
                }
                v128_store(out.add(b * GROUP + 16 * h + 4 * i) as *mut v128, v);
            }
        }
    }
}

/// `T` ≤ 4 dot products of the f32 row `w` (`k` values) with the activation rows at `x`
/// (stride `k`). One accumulator per token, one weight vector per step: few live values,
/// which is what V8 compiles well (it hoists loads freely and then spills).
#[inline(always)]
unsafe fn dot_rows<const T: usize>(w: *const f32, k: usize, x: *const f32) -> [f32; T] {
    let mut acc = [f32x4_splat(0.0); T];
    let k4 = k / 4 * 4;
    let mut i = 0;
    while i < k4 {
        let wv = v128_load(w.add(i) as *const v128);
        for (t, a) in acc.iter_mut().enumerate() {
            *a = f32x4_add(*a, f32x4_mul(wv, v128_load(x.add(t * k + i) as *const v128)));
        }
        i += 4;
    }
    let mut r = [0f32; T];
    for t in 0..T {
        r[t] = hsum(acc[t]);
        for i in k4..k {
            r[t] += *w.add(i) * *x.add(t * k + i);
        }
    }
    r
}

/// Rows `r0..r1`, all tokens. One token: the mat-vec. Several: each weight row is
/// dequantized once into an f32 buffer (L1-resident) and dotted with the tokens four at a
/// time. (A register tile that keeps the decoded block in registers, as on x86, spills
/// badly under V8 and ran slower than this.)
unsafe fn rows_impl<B: Block>(p: &Problem, r0: usize, r1: usize, out: &mut [f32]) {
    let rows = r1 - r0;
    let nb = p.k / GROUP;
    let tail = !p.k.is_multiple_of(GROUP); // F32/F16 only
    if p.tokens == 1 {
        let xv = if B::NIBBLES_AT.is_some() { p.xq.as_ptr() } else { p.x.as_ptr() };
        for (i, j) in (r0..r1).enumerate() {
            let v = dot_row::<B>(p.w.as_ptr().add(j * p.row_bytes).cast(), nb, xv, p.xsum.as_ptr());
            out[i] = if tail { v + p.tail_dot(j, 0) } else { v };
        }
        return;
    }
    let mut wrow = vec![0f32; p.k];
    for (i, j) in (r0..r1).enumerate() {
        dequant_groups::<B>(p.w.as_ptr().add(j * p.row_bytes).cast(), nb, wrow.as_mut_ptr());
        if tail {
            let done = nb * GROUP;
            super::scalar::dequantize(p.fmt, &p.row(j)[done * p.fmt.block_bytes()..], &mut wrow[done..]);
        }
        let mut t0 = 0;
        while t0 < p.tokens {
            let tt = (p.tokens - t0).min(4);
            let (w, x) = (wrow.as_ptr(), p.x.as_ptr().add(t0 * p.k));
            let mut s = [0f32; 4];
            match tt {
                1 => s[..1].copy_from_slice(&dot_rows::<1>(w, p.k, x)),
                2 => s[..2].copy_from_slice(&dot_rows::<2>(w, p.k, x)),
                3 => s[..3].copy_from_slice(&dot_rows::<3>(w, p.k, x)),
                _ => s = dot_rows::<4>(w, p.k, x),
            }
            for (t, &v) in s[..tt].iter().enumerate() {
                out[(t0 + t) * rows + i] = v;
            }
            t0 += tt;
        }
    }
}
