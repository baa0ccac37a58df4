//! AVX2 + FMA + F16C kernels for x86_64, chosen at run time (every x86 CPU with AVX2 has
//! FMA and F16C too, but all three are checked).
//!
//! Q4_1 mat-vec, per 32-weight block: two `vpmovzxbd` loads widen the 16 bytes to 2×8 u32
//! lanes holding both nibbles (`byte = lo + 16·hi`); `byte & 0xF` gives the low nibbles
//! (elements 0..16). Rather than also shifting out the high nibbles, the activations are
//! rearranged once per call ([`nibble_x`]) so that `Σ lo·x_lo + Σ hi·x_hi` becomes
//! `Σ lo·(x_lo − x_hi/16) + Σ byte·(x_hi/16)`: four `cvtdq2ps` and four FMAs make the
//! block's `Σ qᵢxᵢ`, one FMA scales it by d, and the offset `m·Σxᵢ` is one scalar FMA with
//! the precomputed block sum. About 20 vector µops per block, spread over the three vector
//! ports: ~6 cycles per block, ~10 GB/s of weights per core with warm caches. Weights are
//! software-prefetched ([`PREFETCH`]): without it a cold pass over the model ran at less
//! than half that speed.
//!
//! Several tokens: a block is decoded to `d·q + m` once and used for up to 8 tokens.

use super::blocks::{BlockQ4_0, BlockQ4_1, BlockQ8_0, GroupF16, GroupF32};
use super::{per_format, Format, Problem, GROUP};
use core::arch::x86_64::*;
use core::ptr::{addr_of, read_unaligned};

pub(super) fn available() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c")
}

/// The [`super::Kernel`] for AVX2. Only handed out by `super::kernel()` after
/// [`available`] returned true, which is what makes the `unsafe` calls sound.
pub(super) fn rows(p: &Problem, r0: usize, r1: usize, out: &mut [f32]) {
    debug_assert!(available());
    p.assert_kernel_bounds(r0, r1, out);
    // SAFETY: the CPU has the features (see above); `rows_impl` reads only inside `p.w`,
    // `p.x`, `p.xq` and `p.xsum`, whose sizes `assert_kernel_bounds` pins down.
    unsafe { per_format!(p.fmt, rows_impl(p, r0, r1, out), otherwise rows_dequantized(p, r0, r1, out)) }
}

/// The formats without a kernel here: the scalar reference's dequantize-a-row-then-dot,
/// compiled for AVX2 + FMA so that both loops are vectorized 8 wide.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn rows_dequantized(p: &Problem, r0: usize, r1: usize, out: &mut [f32]) {
    super::scalar::rows(p, r0, r1, out)
}

/// The activations as the Q4 mat-vec wants them: per 32-block, `x_i − x_{i+16}/16` for
/// i < 16, then `x_{i+16}/16` (see the module comment). Computed once per call; all `n`
/// weight rows share it.
pub(super) fn nibble_x(x: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; x.len() / GROUP * GROUP];
    for (o, x) in out.chunks_exact_mut(GROUP).zip(x.chunks_exact(GROUP)) {
        for i in 0..16 {
            o[i] = x[i] - x[i + 16] * 0.0625;
            o[i + 16] = x[i + 16] * 0.0625;
        }
    }
    out
}

/// A block of 32 weights (see `blocks.rs`) as the kernels read it: weight = `d·q + m`, with
/// `d`, `m` per block. The kernels step through a row as `*const Self`.
trait Block {
    /// Whether there is a scale `d` (false for F32/F16, whose `q` is the weight itself).
    const SCALED: bool;
    /// Whether there is an offset `m` (Q4_1; Q4_0 too, as `m = −8d`).
    const OFFSET: bool;
    /// `[d, m, _, _]` of the block at `b` (only called when `SCALED`).
    unsafe fn dm(b: *const Self) -> __m128;
    /// The 32 `q` of the block at `b` as f32, in element order.
    unsafe fn q(b: *const Self) -> [__m256; 4];
    /// For the 4-bit formats: the offset of the 16 bytes of nibbles (the mat-vec then reads
    /// them itself, against [`nibble_x`] activations).
    const NIBBLES_AT: Option<usize> = None;
}

/// Two f16 at `b` → lanes 0 and 1.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16x2(b: *const u8) -> __m128 {
    _mm_cvtph_ps(_mm_cvtsi32_si128(read_unaligned(b as *const i32)))
}

/// One f16 at `b` → lane 0.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16x1(b: *const u8) -> __m128 {
    _mm_cvtph_ps(_mm_cvtsi32_si128(read_unaligned(b as *const u16) as i32))
}

/// 16 bytes of packed nibbles → the 32 values: low nibbles are elements 0..16, high 16..32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn nibbles(q: *const u8) -> [__m256; 4] {
    let v0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(q as *const __m128i));
    let v1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(q.add(8) as *const __m128i));
    let lo = _mm256_set1_epi32(0x0f);
    [
        _mm256_cvtepi32_ps(_mm256_and_si256(v0, lo)),
        _mm256_cvtepi32_ps(_mm256_and_si256(v1, lo)),
        _mm256_cvtepi32_ps(_mm256_srli_epi32::<4>(v0)),
        _mm256_cvtepi32_ps(_mm256_srli_epi32::<4>(v1)),
    ]
}

/// 16 bytes of packed nibbles → `[lo 0..8, lo 8..16, byte 0..8, byte 8..16]`, the mat-vec's
/// form that pairs with [`nibble_x`] activations (no shifts).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn nibbles_and_bytes(q: *const u8) -> [__m256; 4] {
    let v0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(q as *const __m128i));
    let v1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(q.add(8) as *const __m128i));
    let lo = _mm256_set1_epi32(0x0f);
    [
        _mm256_cvtepi32_ps(_mm256_and_si256(v0, lo)),
        _mm256_cvtepi32_ps(_mm256_and_si256(v1, lo)),
        _mm256_cvtepi32_ps(v0),
        _mm256_cvtepi32_ps(v1),
    ]
}

/// 8 signed bytes at `p` → 8 f32 (the 8-byte load folds into `vpmovsxbd`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn i8x8(p: *const u8) -> __m256 {
    _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(p as *const __m128i)))
}

impl Block for BlockQ4_1 {
    const NIBBLES_AT: Option<usize> = Some(std::mem::offset_of!(BlockQ4_1, qs));
    const SCALED: bool = true;
    const OFFSET: bool = true;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dm(b: *const Self) -> __m128 {
        // `m` follows `d`: one load converts both.
        f16x2(addr_of!((*b).d).cast())
    }
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q(b: *const Self) -> [__m256; 4] {
        nibbles(addr_of!((*b).qs).cast())
    }
}

impl Block for BlockQ4_0 {
    const NIBBLES_AT: Option<usize> = Some(std::mem::offset_of!(BlockQ4_0, qs));
    const SCALED: bool = true;
    const OFFSET: bool = true;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dm(b: *const Self) -> __m128 {
        // d·(q − 8) = d·q + (−8d), q the raw nibble.
        let d = f16x1(addr_of!((*b).d).cast());
        _mm_unpacklo_ps(d, _mm_mul_ss(d, _mm_set_ss(-8.0)))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q(b: *const Self) -> [__m256; 4] {
        nibbles(addr_of!((*b).qs).cast())
    }
}

impl Block for BlockQ8_0 {
    const SCALED: bool = true;
    const OFFSET: bool = false;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dm(b: *const Self) -> __m128 {
        f16x1(addr_of!((*b).d).cast())
    }
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q(b: *const Self) -> [__m256; 4] {
        let q: *const u8 = addr_of!((*b).qs).cast();
        [i8x8(q), i8x8(q.add(8)), i8x8(q.add(16)), i8x8(q.add(24))]
    }
}

impl Block for GroupF16 {
    const SCALED: bool = false;
    const OFFSET: bool = false;
    unsafe fn dm(_: *const Self) -> __m128 {
        unreachable!()
    }
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q(b: *const Self) -> [__m256; 4] {
        let b = b as *const __m128i;
        [
            _mm256_cvtph_ps(_mm_loadu_si128(b)),
            _mm256_cvtph_ps(_mm_loadu_si128(b.add(1))),
            _mm256_cvtph_ps(_mm_loadu_si128(b.add(2))),
            _mm256_cvtph_ps(_mm_loadu_si128(b.add(3))),
        ]
    }
}

impl Block for GroupF32 {
    const SCALED: bool = false;
    const OFFSET: bool = false;
    unsafe fn dm(_: *const Self) -> __m128 {
        unreachable!()
    }
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q(b: *const Self) -> [__m256; 4] {
        let b = b as *const f32;
        [_mm256_loadu_ps(b), _mm256_loadu_ps(b.add(8)), _mm256_loadu_ps(b.add(16)), _mm256_loadu_ps(b.add(24))]
    }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
}

/// Software prefetch distance, in bytes ahead of the weight block being read. The hardware
/// prefetchers alone left a whole-model decode pass (96 MB, cold) at ~4 GB/s on a 2-core
/// Xeon VM; prefetching 4 KiB ahead brought it to ~10 GB/s, near the warm-cache speed.
const PREFETCH: usize = 4096;

/// One weight row · one activation row (the decode mat-vec). `x` is the activation row
/// (for the 4-bit formats its [`nibble_x`] form), `xsum` its block sums (read only for
/// formats with an offset).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_row<B: Block>(w: *const B, nb: usize, x: *const f32, xsum: *const f32) -> f32 {
    let mut acc = _mm256_setzero_ps(); // Σ_b d_b · Σ_i q_i x_i
    let mut acc_m = _mm_setzero_ps(); // Σ_b m_b · xsum_b   (lane 0)
    for b in 0..nb {
        let (blk, xb) = (w.add(b), x.add(b * GROUP));
        _mm_prefetch::<_MM_HINT_T0>(blk.cast::<i8>().wrapping_add(PREFETCH));
        let q = match B::NIBBLES_AT {
            Some(at) => nibbles_and_bytes(blk.cast::<u8>().add(at)),
            None => B::q(blk),
        };
        // Two short chains instead of one long one.
        let s01 = _mm256_fmadd_ps(q[1], _mm256_loadu_ps(xb.add(8)), _mm256_mul_ps(q[0], _mm256_loadu_ps(xb)));
        let s23 = _mm256_fmadd_ps(q[3], _mm256_loadu_ps(xb.add(24)), _mm256_mul_ps(q[2], _mm256_loadu_ps(xb.add(16))));
        let s = _mm256_add_ps(s01, s23);
        if B::SCALED {
            let dm = B::dm(blk);
            acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(dm), s, acc);
            if B::OFFSET {
                acc_m = _mm_fmadd_ss(_mm_movehdup_ps(dm), _mm_load_ss(xsum.add(b)), acc_m);
            }
        } else {
            acc = _mm256_add_ps(acc, s);
        }
    }
    hsum(acc) + _mm_cvtss_f32(acc_m)
}

/// One weight row · `T` activation rows (stride `k`), `T` ≤ 8: each block is decoded once to
/// `d·q + m` and used `T` times. The FMA chains run through the accumulators, 4 deep per
/// block: for `T` ≤ 4 each token gets two accumulators (halving the chain, which would
/// otherwise be the limit); from 5 tokens on there is enough independent work with one, and
/// 8 accumulators + 4 weight vectors + scales still fit the 16 ymm registers.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_tile<B: Block, const T: usize>(w: *const B, nb: usize, x: *const f32, k: usize) -> [f32; T] {
    let split = T <= 4;
    let mut a = [_mm256_setzero_ps(); T];
    let mut c = [_mm256_setzero_ps(); T];
    for b in 0..nb {
        let blk = w.add(b);
        _mm_prefetch::<_MM_HINT_T0>(blk.cast::<i8>().wrapping_add(PREFETCH));
        let mut q = B::q(blk);
        if B::SCALED {
            let dm = B::dm(blk);
            let d = _mm256_broadcastss_ps(dm);
            if B::OFFSET {
                let m = _mm256_broadcastss_ps(_mm_movehdup_ps(dm));
                for v in q.iter_mut() {
                    *v = _mm256_fmadd_ps(*v, d, m);
                }
            } else {
                for v in q.iter_mut() {
                    *v = _mm256_mul_ps(*v, d);
                }
            }
        }
        for t in 0..T {
            let xb = x.add(t * k + b * GROUP);
            let lo =
                _mm256_fmadd_ps(q[1], _mm256_loadu_ps(xb.add(8)), _mm256_fmadd_ps(q[0], _mm256_loadu_ps(xb), a[t]));
            if split {
                a[t] = lo;
                c[t] = _mm256_fmadd_ps(
                    q[3],
                    _mm256_loadu_ps(xb.add(24)),
                    _mm256_fmadd_ps(q[2], _mm256_loadu_ps(xb.add(16)), c[t]),
                );
            } else {
                a[t] = _mm256_fmadd_ps(
                    q[3],
                    _mm256_loadu_ps(xb.add(24)),
                    _mm256_fmadd_ps(q[2], _mm256_loadu_ps(xb.add(16)), lo),
                );
            }
        }
    }
    let mut r = [0f32; T];
    for t in 0..T {
        r[t] = hsum(if split { _mm256_add_ps(a[t], c[t]) } else { a[t] });
    }
    r
}

/// Largest token tile.
const TILE: usize = 8;

/// Rows `r0..r1`, all tokens, in tiles of up to [`TILE`] tokens (tile outside, rows inside:
/// a task's weights stay in L2 while the tiles pass over them). A lone token is a mat-vec.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn rows_impl<B: Block>(p: &Problem, r0: usize, r1: usize, out: &mut [f32]) {
    let rows = r1 - r0;
    let nb = p.k / GROUP;
    let tail = !p.k.is_multiple_of(GROUP); // F32/F16 only
    let mut t0 = 0;
    while t0 < p.tokens {
        let tt = (p.tokens - t0).min(TILE);
        let x = p.x.as_ptr().add(t0 * p.k);
        // The mat-vec's activations: the nibble_x form for the 4-bit formats.
        let xv = if B::NIBBLES_AT.is_some() { p.xq.as_ptr().add(t0 * p.k) } else { x };
        for (i, j) in (r0..r1).enumerate() {
            let w = p.w.as_ptr().add(j * p.row_bytes).cast::<B>();
            let mut s = [0f32; TILE];
            match tt {
                1 => s[0] = dot_row::<B>(w, nb, xv, p.xsum.as_ptr().wrapping_add(t0 * nb)),
                2 => s[..2].copy_from_slice(&dot_tile::<B, 2>(w, nb, x, p.k)),
                3 => s[..3].copy_from_slice(&dot_tile::<B, 3>(w, nb, x, p.k)),
                4 => s[..4].copy_from_slice(&dot_tile::<B, 4>(w, nb, x, p.k)),
                5 => s[..5].copy_from_slice(&dot_tile::<B, 5>(w, nb, x, p.k)),
                6 => s[..6].copy_from_slice(&dot_tile::<B, 6>(w, nb, x, p.k)),
                7 => s[..7].copy_from_slice(&dot_tile::<B, 7>(w, nb, x, p.k)),
                _ => s = dot_tile::<B, TILE>(w, nb, x, p.k),
            }
            for (t, &v) in s[..tt].iter().enumerate() {
                out[(t0 + t) * rows + i] = if tail { v + p.tail_dot(j, t0 + t) } else { v };
            }
        }
        t0 += tt;
    }
}
