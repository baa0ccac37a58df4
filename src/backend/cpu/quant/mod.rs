//! Matrix kernels for the GGUF weight formats: `y = x · Wᵀ` with f32 activations and
//! weights left in their file format (every [`GgmlDType`]). F32, F16, Q4_0, Q4_1 and Q8_0
//! have SIMD kernels of their own; the others (BF16, Q5_0/1, IQ4_NL and the K-quants) are
//! dequantized a row at a time into an L1-resident f32 buffer that vectorized dots then read.
//!
//! Layout of the module:
//! - this file: the public entry points, argument checks, the per-call set-up that all
//!   kernels share (per-block activation sums) and the split of the output rows over
//!   threads;
//! - [`scalar`]: the portable reference. Plain, obviously correct code; every SIMD kernel
//!   is tested against it, and it is the fallback where no SIMD kernel exists;
//! - `x86`: AVX2 + FMA + F16C kernels, chosen at run time;
//! - `wasm`: simd128 kernels (the crate is built with `+simd128` for wasm32).
//!
//! Kernel design, shared by the SIMD versions:
//! - Activations stay f32 (no 8-bit quantization of activations). Weights are widened to
//!   f32 in registers, block by block.
//! - Decode (one activation row) is a mat-vec, the hot path: memory-bound in principle
//!   (~96 MB of weights per token for the default model), but only if the kernel keeps up,
//!   so the work per 32-weight block is kept small. For the 4-bit formats the offset is
//!   taken out of the inner loop: a block's dot is `d·Σ qᵢxᵢ + m·Σ xᵢ` (Q4_0: `m = −8d`),
//!   with the per-block sums `Σ xᵢ` ([`Problem::xsum`]) and a rearranged copy of the
//!   activations that saves unpacking work ([`Problem::xq`]) computed once per call and
//!   shared by all `n` weight rows. On x86 the weights are software-prefetched.
//! - Several activation rows (prefill, batched decode): each weight block is decoded once
//!   to `d·q + m` and applied to a tile of up to 8 activation rows (x86), or each weight
//!   row is decoded once into an L1-resident f32 buffer and applied to all rows four at a
//!   time (wasm, where V8 spills a register tile). Either way prefill is a matrix–matrix
//!   kernel, not `tokens` mat-vecs.
//! - Natively the `n` output rows are split into a few contiguous chunks per rayon thread;
//!   small calls stay on the calling thread (a forward pass makes ~200 calls per token, so
//!   the fork/join cost matters). wasm32 is single-threaded.
//!
//! The SIMD kernels sum in a different order from the scalar reference (and from each
//! other), so results agree to rounding, not bit for bit.

use crate::error::Result;
use crate::gguf::GgmlDType;
use blocks::{blocks, F16Le, F32Le};

mod blocks;
mod scalar;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm;
#[cfg(target_arch = "x86_64")]
mod x86;

/// Entry points that always run the portable scalar code, for tests that compare the SIMD
/// kernels against it (notably in the browser, where no other reference is at hand).
#[doc(hidden)]
pub mod reference {
    use super::*;

    /// [`super::matmul`], computed by the scalar reference on the calling thread.
    pub fn matmul_scalar(
        dtype: GgmlDType,
        w: &[u8],
        n: usize,
        k: usize,
        x: &[f32],
        tokens: usize,
        y: &mut [f32],
    ) -> Result<()> {
        let p = Problem::checked(dtype, w, n, k, x, tokens, y)?;
        scalar::rows(&p, 0, n, y);
        Ok(())
    }
}

/// y[t*n + j] = Σ_i x[t*k + i] · W[j, i] for t in 0..tokens, j in 0..n (activations f32,
/// weights in their GGUF format).
///
/// `w` holds `n` rows of `k` elements, row-major, each row a whole number of blocks (GGUF
/// `dims[0] = k`). Sizes are checked (`INVALID_ARGUMENT`, never a panic).
///
/// Natively, large calls use the rayon pool; call from inside it (run the forward pass in
/// `ThreadPool::install`) to keep the per-call fork/join cheap, see `run`.
pub fn matmul(dtype: GgmlDType, w: &[u8], n: usize, k: usize, x: &[f32], tokens: usize, y: &mut [f32]) -> Result<()> {
    let p = Problem::checked(dtype, w, n, k, x, tokens, y)?;
    if n == 0 || tokens == 0 {
        return Ok(());
    }
    run(&p, kernel(), y);
    Ok(())
}

/// Dequantizes one row (or any whole number of blocks) into f32.
///
/// `out.len()` must be `bytes.len() / block_bytes · block_size` and `bytes` a whole number
/// of blocks. The result is bit-for-bit ggml's (`d·q`, `d·q + m`, exact f16 → f32).
pub fn dequantize_row(fmt: GgmlDType, bytes: &[u8], out: &mut [f32]) -> Result<()> {
    let (bs, bb) = (fmt.block_size(), fmt.block_bytes());
    if !bytes.len().is_multiple_of(bb) {
        crate::bail!(
            InvalidArgument,
            "dequantize_row: {} bytes is not a whole number of {} blocks ({} bytes each)",
            bytes.len(),
            fmt.name(),
            bb
        );
    }
    if out.len() != bytes.len() / bb * bs {
        crate::bail!(
            InvalidArgument,
            "dequantize_row: {} bytes of {} make {} values, the output holds {}",
            bytes.len(),
            fmt.name(),
            bytes.len() / bb * bs,
            out.len()
        );
    }
    scalar::dequantize(fmt, bytes, out);
    Ok(())
}

/// The same weights as Q8_0 blocks, for the formats whose values Q8_0 holds exactly: Q5_0
/// (`d·(q − 16)`, q − 16 in −16..16) and IQ4_NL (`d·T[q]`, the levels in −127..114), with the
/// same f16 scale `d`. They then run on the Q8_0 SIMD kernels, 3–8× faster than dequantizing
/// them a row at a time, for 34 bytes a block instead of 22 or 18. `None` for other formats.
pub fn widened_to_q8_0(dtype: GgmlDType, bytes: &[u8]) -> Option<Vec<u8>> {
    if !matches!(dtype, GgmlDType::Q5_0 | GgmlDType::IQ4_NL) || !bytes.len().is_multiple_of(dtype.block_bytes()) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / dtype.block_bytes() * GgmlDType::Q8_0.block_bytes());
    for b in bytes.chunks_exact(dtype.block_bytes()) {
        out.extend_from_slice(&b[..2]);
        out.extend(scalar::small_ints(dtype, b).map(|q| q as u8));
    }
    Some(out)
}

/// Which kernel family runs on this machine: "avx2", "simd128", "neon" or "scalar".
pub fn kernel_name() -> &'static str {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        "simd128"
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        #[cfg(target_arch = "x86_64")]
        if x86::available() {
            return "avx2";
        }
        "scalar"
    }
}

// ---------------------------------------------------------------------------------------
// Shared set-up
// ---------------------------------------------------------------------------------------

/// The weight formats, as the kernels see them: a GGUF tensor type. Every format is handled
/// in groups of 32 elements by the SIMD kernels (a quant block; for F32/F16 simply 32
/// consecutive weights, with a scalar tail when `k` is not a multiple of 32); the formats
/// without a SIMD kernel of their own (see `has_simd_kernel`) are dequantized a row at a time.
pub(crate) use crate::gguf::GgmlDType as Format;

/// Elements per SIMD group (= the quant block size).
pub(crate) const GROUP: usize = 32;

/// Whether the mat-vec kernels want the per-block activation sums.
fn wants_xsum(fmt: Format) -> bool {
    matches!(fmt, Format::Q4_0 | Format::Q4_1)
}

fn check(fmt: Format, w: &[u8], n: usize, k: usize, x: &[f32], tokens: usize, y: &[f32]) -> Result<()> {
    let bs = fmt.block_size();
    if !k.is_multiple_of(bs) {
        crate::bail!(InvalidArgument, "matmul: k = {k} is not a multiple of the {} block size {bs}", fmt.name());
    }
    let w_len = (k / bs).checked_mul(fmt.block_bytes()).and_then(|row| row.checked_mul(n));
    if w_len != Some(w.len()) {
        crate::bail!(
            InvalidArgument,
            "matmul: {} weights of {n} rows × {k} need {} bytes, got {}",
            fmt.name(),
            w_len.map_or("an overflowing number of".to_string(), |b| b.to_string()),
            w.len()
        );
    }
    if tokens.checked_mul(k) != Some(x.len()) {
        crate::bail!(InvalidArgument, "matmul: x holds {} values, expected tokens {tokens} × k {k}", x.len());
    }
    if tokens.checked_mul(n) != Some(y.len()) {
        crate::bail!(InvalidArgument, "matmul: y holds {} values, expected tokens {tokens} × n {n}", y.len());
    }
    Ok(())
}

/// One validated call, as the kernels receive it.
pub(crate) struct Problem<'a> {
    pub fmt: Format,
    pub w: &'a [u8],
    /// Bytes per weight row.
    pub row_bytes: usize,
    pub n: usize,
    pub k: usize,
    pub x: &'a [f32],
    pub tokens: usize,
    /// For Q4_0/Q4_1: `xsum[t * (k/32) + b] = Σ_{i<32} x[t*k + 32b + i]`; empty otherwise.
    pub xsum: Vec<f32>,
    /// For Q4_0/Q4_1: the activations rearranged for the SIMD mat-vec (see `x86::nibble_x`,
    /// `wasm::nibble_x`); empty otherwise.
    #[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128")))]
    pub xq: Vec<f32>,
}

impl<'a> Problem<'a> {
    /// A call of [`matmul`] after its sizes are checked against each other (`y` is only
    /// checked here: the kernels write it).
    fn checked(
        dtype: GgmlDType,
        w: &'a [u8],
        n: usize,
        k: usize,
        x: &'a [f32],
        tokens: usize,
        y: &[f32],
    ) -> Result<Self> {
        check(dtype, w, n, k, x, tokens, y)?;
        Ok(Problem::new(dtype, w, n, k, x, tokens))
    }

    fn new(fmt: Format, w: &'a [u8], n: usize, k: usize, x: &'a [f32], tokens: usize) -> Self {
        let row_bytes = k / fmt.block_size() * fmt.block_bytes();
        let xsum = if wants_xsum(fmt) { x.chunks_exact(GROUP).map(|c| c.iter().sum()).collect() } else { Vec::new() };
        Problem {
            fmt,
            w,
            row_bytes,
            n,
            k,
            x,
            tokens,
            xsum,
            #[cfg(target_arch = "x86_64")]
            xq: if wants_xsum(fmt) && x86::available() { x86::nibble_x(x) } else { Vec::new() },
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            xq: if wants_xsum(fmt) { wasm::nibble_x(x) } else { Vec::new() },
        }
    }

    /// Panics unless output rows `r0..r1` and `out` fit this problem and the SIMD-ready
    /// activations have their sizes: the bounds the `unsafe` kernels rely on.
    #[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128")))]
    pub fn assert_kernel_bounds(&self, r0: usize, r1: usize, out: &[f32]) {
        assert!(r0 <= r1 && r1 <= self.n && out.len() == (r1 - r0) * self.tokens);
        assert!(self.w.len() == self.n * self.row_bytes && self.x.len() == self.tokens * self.k);
        assert!(
            !wants_xsum(self.fmt)
                || (self.xsum.len() == self.tokens * (self.k / GROUP) && self.xq.len() == self.x.len())
        );
    }

    /// The bytes of weight row `j`.
    #[inline]
    pub fn row(&self, j: usize) -> &'a [u8] {
        &self.w[j * self.row_bytes..(j + 1) * self.row_bytes]
    }

    /// Activation row `t`.
    #[inline]
    pub fn x_row(&self, t: usize) -> &'a [f32] {
        &self.x[t * self.k..(t + 1) * self.k]
    }

    /// The dot of weight row `j`, elements from `GROUP·⌊k/GROUP⌋` on, with activation row
    /// `t`: the part of an F32/F16 row the 32-wide SIMD groups leave over.
    pub fn tail_dot(&self, j: usize, t: usize) -> f32 {
        let start = self.k / GROUP * GROUP;
        let (w, x) = (self.row(j), &self.x_row(t)[start..]);
        match self.fmt {
            Format::F32 => blocks::<F32Le>(w)[start..].iter().zip(x).map(|(w, x)| w.get() * x).sum(),
            Format::F16 => blocks::<F16Le>(w)[start..].iter().zip(x).map(|(w, x)| w.get() * x).sum(),
            _ => 0.0,
        }
    }
}

/// `$kernel::<Block>(args)` for the block type of `$fmt` (see `blocks.rs`), which each SIMD
/// module gives its own `Block` trait; this is the one place that maps formats to them.
#[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128")))]
/// The other formats run `$otherwise`.
macro_rules! per_format {
    ($fmt:expr, $kernel:ident($($arg:expr),*), otherwise $otherwise:expr) => {
        match $fmt {
            Format::F32 => $kernel::<GroupF32>($($arg),*),
            Format::F16 => $kernel::<GroupF16>($($arg),*),
            Format::Q4_0 => $kernel::<BlockQ4_0>($($arg),*),
            Format::Q4_1 => $kernel::<BlockQ4_1>($($arg),*),
            Format::Q8_0 => $kernel::<BlockQ8_0>($($arg),*),
            _ => $otherwise,
        }
    };
}
#[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128")))]
use per_format;

/// Computes output rows `r0..r1` for every token into `out`, laid out `[tokens][r1 - r0]`.
pub(crate) type Kernel = fn(&Problem, usize, usize, &mut [f32]);

/// The best kernel this machine runs.
fn kernel() -> Kernel {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        wasm::rows
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        #[cfg(target_arch = "x86_64")]
        if x86::available() {
            return x86::rows;
        }
        scalar::rows
    }
}

// ---------------------------------------------------------------------------------------
// Threads
// ---------------------------------------------------------------------------------------

/// Work (in weight bytes, weighted for tokens) below which a call stays on one thread:
/// about 10 µs of AVX2 work, the order of a rayon fork/join round trip.
#[cfg(not(target_arch = "wasm32"))]
const PAR_MIN_WORK: usize = 96 * 1024;
/// Smallest task, same unit.
#[cfg(not(target_arch = "wasm32"))]
const TASK_MIN_WORK: usize = 48 * 1024;
/// Tasks per thread: a few, so an unevenly loaded core does not hold the others up.
#[cfg(not(target_arch = "wasm32"))]
const TASKS_PER_THREAD: usize = 2;

/// Splits the output rows over the rayon pool. Called from a pool thread (a forward pass
/// run inside `ThreadPool::install`), the fork/join is cheap; called from any other thread,
/// every call injects a job into the pool and sleeps until it is done, which costs a decode
/// pass (~200 calls) a large share of its time. (Having the caller run one part itself, with
/// `rayon::in_place_scope`, does not help: it then waits for the workers to wake up.)
#[cfg(not(target_arch = "wasm32"))]
fn run(p: &Problem, kern: Kernel, y: &mut [f32]) {
    use rayon::prelude::*;

    // Rough cost model: a few tokens' tile costs about twice a mat-vec over the same weights.
    let work = p.w.len().saturating_mul(p.tokens.div_ceil(2));
    let threads = rayon::current_num_threads();
    let tasks = (threads * TASKS_PER_THREAD).min(work / TASK_MIN_WORK).min(p.n);
    if threads < 2 || work < PAR_MIN_WORK || tasks < 2 {
        kern(p, 0, p.n, y);
        return;
    }
    let rows_per_task = p.n.div_ceil(tasks);
    if p.tokens == 1 {
        // y is one row: each task owns a contiguous piece of it.
        y.par_chunks_mut(rows_per_task).enumerate().for_each(|(c, yc)| {
            let r0 = c * rows_per_task;
            kern(p, r0, r0 + yc.len(), yc);
        });
        return;
    }
    // Several tokens: a task's rows are a column band of y. Tasks write [tokens][rows]
    // bands into a scratch buffer (task-major, so plain disjoint slices), copied into
    // place afterwards: tokens·n floats against tokens·n·k multiply-adds.
    let mut tmp = vec![0f32; p.tokens * p.n];
    tmp.par_chunks_mut(rows_per_task * p.tokens).enumerate().for_each(|(c, band)| {
        let r0 = c * rows_per_task;
        kern(p, r0, r0 + band.len() / p.tokens, band);
    });
    for (c, band) in tmp.chunks(rows_per_task * p.tokens).enumerate() {
        let r0 = c * rows_per_task;
        let rows = band.len() / p.tokens;
        for (t, src) in band.chunks_exact(rows).enumerate() {
            y[t * p.n + r0..t * p.n + r0 + rows].copy_from_slice(src);
        }
    }
}

#[cfg(target_arch = "wasm32")]
fn run(p: &Problem, kern: Kernel, y: &mut [f32]) {
    kern(p, 0, p.n, y);
}
