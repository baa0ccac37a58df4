//! The CPU matmul kernels (`backend::cpu::quant`) against an independent reference:
//! candle-core's ggml dequantization, then f64 dot products.
#![cfg(not(target_arch = "wasm32"))]

use candle_core::quantized::{ggml_file::qtensor_from_ggml, GgmlDType as CDType};
use candle_core::Device;
use half::f16;
use padlock::backend::cpu::quant::{dequantize_row, kernel_name, matmul, reference, widened_to_q8_0};
use padlock::gguf::GgmlDType;
use padlock::ErrorCode;

/// The types with SIMD kernels of their own.
const SIMD_DTYPES: [GgmlDType; 5] = [GgmlDType::F32, GgmlDType::F16, GgmlDType::Q4_0, GgmlDType::Q4_1, GgmlDType::Q8_0];

/// Every type candle also reads (all but IQ4_NL, which `dequantize_matches_gguf_numpy` checks).
fn candle_dtypes() -> impl Iterator<Item = GgmlDType> {
    GgmlDType::ALL.into_iter().filter(|&dt| dt != GgmlDType::IQ4_NL)
}

#[path = "common/kernels.rs"]
mod kernels;
use kernels::Rng;

fn block_size(dt: GgmlDType) -> usize {
    dt.block_size()
}
fn row_bytes(dt: GgmlDType, k: usize) -> usize {
    dt.row_bytes(k)
}

/// The shapes' `k`s that hold whole blocks of `dt`.
fn whole_blocks(dt: GgmlDType, ks: &[usize]) -> Vec<usize> {
    ks.iter().copied().filter(|k| k.is_multiple_of(dt.block_size())).collect()
}

/// `n × k` weights of type `dt`: random quants, finite random scales.
fn random_weights(rng: &mut Rng, dt: GgmlDType, n: usize, k: usize) -> Vec<u8> {
    kernels::random_weights(rng, dt, n * k)
}

/// candle's dequantization of `n × k` weights (the independent reference).
fn candle_dequantize(dt: GgmlDType, w: &[u8], n: usize, k: usize) -> Vec<f32> {
    let cdt = match dt {
        GgmlDType::F32 => CDType::F32,
        GgmlDType::F16 => CDType::F16,
        GgmlDType::Q4_0 => CDType::Q4_0,
        GgmlDType::Q4_1 => CDType::Q4_1,
        GgmlDType::Q8_0 => CDType::Q8_0,
        GgmlDType::BF16 => CDType::BF16,
        GgmlDType::Q5_0 => CDType::Q5_0,
        GgmlDType::Q5_1 => CDType::Q5_1,
        GgmlDType::Q2_K => CDType::Q2K,
        GgmlDType::Q3_K => CDType::Q3K,
        GgmlDType::Q4_K => CDType::Q4K,
        GgmlDType::Q5_K => CDType::Q5K,
        GgmlDType::Q6_K => CDType::Q6K,
        GgmlDType::IQ4_NL => panic!("test bug: candle has no IQ4_NL"),
    };
    assert_eq!(w.len(), n * row_bytes(dt, k), "test bug: candle reads past a short buffer");
    // candle casts the byte pointer to its block type: give it 8-byte alignment.
    let mut aligned = vec![0u64; w.len().div_ceil(8)];
    let bytes = unsafe { std::slice::from_raw_parts_mut(aligned.as_mut_ptr() as *mut u8, w.len()) };
    bytes.copy_from_slice(w);
    let t = qtensor_from_ggml(cdt, bytes, vec![n, k], &Device::Cpu).unwrap();
    t.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// Checks `y` against f64 dot products of candle's dequantized weights: each value within
/// 1e-4 of the sum of |terms| (the f32 rounding scale of the sum).
#[allow(clippy::too_many_arguments)]
fn check_against_candle(dt: GgmlDType, w: &[u8], n: usize, k: usize, x: &[f32], tokens: usize, y: &[f32], what: &str) {
    let wf = candle_dequantize(dt, w, n, k);
    for (i, (s, abs)) in kernels::f64_products(&wf, n, k, x, tokens).into_iter().enumerate() {
        let got = y[i] as f64;
        assert!(
            (got - s).abs() <= 1e-4 * abs + 1e-30,
            "{what}: {} n={n} k={k} tokens={tokens}: y[{},{}] = {got}, reference {s} (Σ|terms| {abs})",
            dt.name(),
            i / n,
            i % n
        );
    }
}

fn random_x(rng: &mut Rng, len: usize) -> Vec<f32> {
    (0..len).map(|_| rng.f()).collect()
}

#[test]
fn kernel_family() {
    let name = kernel_name();
    println!("kernel: {name}");
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c") {
        assert_eq!(name, "avx2");
    }
    assert!(["avx2", "simd128", "neon", "scalar"].contains(&name));
}

#[test]
fn matmul_matches_candle_all_dtypes_and_shapes() {
    let mut rng = Rng(0x5eed_0001);
    let mut cases = 0;
    for dt in candle_dtypes() {
        let mut ks = whole_blocks(dt, &[32, 64, 96, 256, 576, 1536]);
        if block_size(dt) == 1 {
            ks.extend([1, 7, 45, 100]); // F32/F16/BF16: k need not be a multiple of 32
        }
        for &k in &ks {
            for n in [1, 3, 7, 13, 100, 577] {
                let w = random_weights(&mut rng, dt, n, k);
                for tokens in [1, 2, 3, 5, 17] {
                    let x = random_x(&mut rng, tokens * k);
                    let mut y = vec![f32::NAN; tokens * n];
                    matmul(dt, &w, n, k, &x, tokens, &mut y).unwrap();
                    check_against_candle(dt, &w, n, k, &x, tokens, &y, "matmul");
                    let mut yr = vec![f32::NAN; tokens * n];
                    reference::matmul_scalar(dt, &w, n, k, &x, tokens, &mut yr).unwrap();
                    check_against_candle(dt, &w, n, k, &x, tokens, &yr, "matmul_scalar");
                    cases += 1;
                }
            }
        }
    }
    println!("{cases} cases");
}

/// The row split over threads for other thread counts than this machine's (uneven chunks,
/// more tasks than rows per task, the scratch band copy for several tokens).
#[test]
fn matmul_thread_splits() {
    let mut rng = Rng(0x5eed_0002);
    for threads in [1, 2, 3, 5, 8] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        for dt in [GgmlDType::Q4_1, GgmlDType::Q8_0, GgmlDType::F16] {
            for (n, k) in [(577, 1536), (1031, 576), (97, 4096)] {
                let w = random_weights(&mut rng, dt, n, k);
                for tokens in [1, 4, 6, 33] {
                    let x = random_x(&mut rng, tokens * k);
                    let mut y = vec![f32::NAN; tokens * n];
                    pool.install(|| matmul(dt, &w, n, k, &x, tokens, &mut y)).unwrap();
                    check_against_candle(dt, &w, n, k, &x, tokens, &y, &format!("{threads} threads"));
                    // From outside the pool too (the caller is then not a rayon worker).
                    let mut y2 = vec![f32::NAN; tokens * n];
                    matmul(dt, &w, n, k, &x, tokens, &mut y2).unwrap();
                    assert_eq!(y, y2, "result depends on the thread count");
                }
            }
        }
    }
}

/// The SIMD kernels against the scalar reference, tighter than the candle check (both f32).
#[test]
fn simd_matches_scalar_reference() {
    let mut rng = Rng(0x5eed_0003);
    for dt in candle_dtypes() {
        for (n, k) in [(5, 32), (33, 320), (64, 576), (9, 1536), (7, 512usize)] {
            if !k.is_multiple_of(block_size(dt)) {
                continue;
            }
            let w = random_weights(&mut rng, dt, n, k);
            for tokens in 1..=9 {
                let x = random_x(&mut rng, tokens * k);
                let (mut y, mut yr) = (vec![0f32; tokens * n], vec![0f32; tokens * n]);
                matmul(dt, &w, n, k, &x, tokens, &mut y).unwrap();
                reference::matmul_scalar(dt, &w, n, k, &x, tokens, &mut yr).unwrap();
                let wf = candle_dequantize(dt, &w, n, k);
                for t in 0..tokens {
                    for j in 0..n {
                        let abs: f32 = (0..k).map(|i| (wf[j * k + i] * x[t * k + i]).abs()).sum();
                        let (a, b) = (y[t * n + j], yr[t * n + j]);
                        assert!(
                            (a - b).abs() <= 2e-6 * abs + 1e-30,
                            "{} n={n} k={k} t={t}/{tokens} j={j}: {a} vs scalar {b}",
                            dt.name()
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn dequantize_row_matches_candle_bitwise() {
    let mut rng = Rng(0x5eed_0004);
    for dt in candle_dtypes() {
        for (n, k) in [(1, 32), (3, 576), (2, 1536), (1, 256usize)] {
            if !k.is_multiple_of(block_size(dt)) {
                continue;
            }
            let w = random_weights(&mut rng, dt, n, k);
            let want = candle_dequantize(dt, &w, n, k);
            // Row by row, and the whole matrix in one call (any whole number of blocks).
            let mut got = vec![0f32; n * k];
            for j in 0..n {
                let rb = row_bytes(dt, k);
                dequantize_row(dt, &w[j * rb..(j + 1) * rb], &mut got[j * k..(j + 1) * k]).unwrap();
            }
            let mut all = vec![0f32; n * k];
            dequantize_row(dt, &w, &mut all).unwrap();
            for i in 0..n * k {
                assert_eq!(
                    got[i].to_bits(),
                    want[i].to_bits(),
                    "{} element {i}: {} vs candle {}",
                    dt.name(),
                    got[i],
                    want[i]
                );
                assert_eq!(all[i].to_bits(), want[i].to_bits());
            }
        }
    }
}

#[test]
fn invalid_sizes_are_errors() {
    let mut rng = Rng(7);
    for dt in GgmlDType::ALL {
        let (n, k, tokens) = (3, 64.max(block_size(dt)), 2);
        let w = random_weights(&mut rng, dt, n, k);
        let x = random_x(&mut rng, tokens * k);
        let mut y = vec![0f32; tokens * n];
        let code = |r: padlock::Result<()>| r.unwrap_err().code;
        assert!(matmul(dt, &w, n, k, &x, tokens, &mut y).is_ok());
        assert_eq!(code(matmul(dt, &w[1..], n, k, &x, tokens, &mut y)), ErrorCode::InvalidArgument);
        assert_eq!(code(matmul(dt, &w, n + 1, k, &x, tokens, &mut y)), ErrorCode::InvalidArgument);
        assert_eq!(code(matmul(dt, &w, n, k, &x[1..], tokens, &mut y)), ErrorCode::InvalidArgument);
        assert_eq!(code(matmul(dt, &w, n, k, &x, tokens, &mut y[1..])), ErrorCode::InvalidArgument);
        assert_eq!(code(matmul(dt, &w, n, k, &x, tokens + 1, &mut y)), ErrorCode::InvalidArgument);
        assert_eq!(code(matmul(dt, &w, usize::MAX, k, &x, tokens, &mut y)), ErrorCode::InvalidArgument);
        assert_eq!(code(matmul(dt, &w, n, usize::MAX / 2, &x, tokens, &mut y)), ErrorCode::InvalidArgument);
        assert_eq!(code(matmul(dt, &w, n, k, &x, usize::MAX, &mut y)), ErrorCode::InvalidArgument);
        if block_size(dt) > 1 {
            // k not a multiple of the block size, even with consistent lengths elsewhere.
            let k = block_size(dt) + 16;
            let x = random_x(&mut rng, k);
            let mut y = vec![0f32; 1];
            assert_eq!(code(matmul(dt, &[0u8; 20], 1, k, &x, 1, &mut y)), ErrorCode::InvalidArgument);
        }
        // dequantize_row: partial blocks and output of the wrong length.
        let rb = row_bytes(dt, k);
        let mut out = vec![0f32; k];
        assert!(dequantize_row(dt, &w[..rb], &mut out).is_ok());
        assert_eq!(code(dequantize_row(dt, &w[..rb], &mut out[1..])), ErrorCode::InvalidArgument);
        assert_eq!(code(dequantize_row(dt, &w[..rb], &mut vec![0f32; k + 1])), ErrorCode::InvalidArgument);
        if dt.block_bytes() > 1 {
            assert_eq!(code(dequantize_row(dt, &w[..rb - 1], &mut out)), ErrorCode::InvalidArgument);
        }
        // matmul_scalar checks the same way.
        assert_eq!(code(reference::matmul_scalar(dt, &w[1..], n, k, &x, tokens, &mut y)), ErrorCode::InvalidArgument);
    }
}

#[test]
fn empty_shapes() {
    for dt in GgmlDType::ALL {
        // n = 0 or tokens = 0: nothing to do, no error.
        let k = 256;
        matmul(dt, &[], 0, k, &[0.5; 512], 2, &mut []).unwrap();
        let w = vec![0u8; row_bytes(dt, k) * 3];
        matmul(dt, &w, 3, k, &[], 0, &mut []).unwrap();
        // k = 0: empty sums.
        let mut y = vec![f32::NAN; 6];
        matmul(dt, &[], 3, 0, &[], 2, &mut y).unwrap();
        assert!(y.iter().all(|&v| v == 0.0));
    }
}

/// Real weights: slices of the default model's Q4_1 attention and Q8_0 embedding matrices.
#[test]
fn real_model_matrices() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/models/SmolLM2-135M-Instruct.Q4_1.gguf");
    let Ok(file) = std::fs::read(path) else {
        eprintln!("skipped: {path} not found");
        return;
    };
    let mut rng = Rng(0x5eed_0005);
    // blk.0.attn_q.weight, Q4_1 [576, 576]; token_embd.weight, Q8_0 [576, 49152] (first 1000 rows).
    for (dt, off, n, k) in [(GgmlDType::Q4_1, 33_806_656usize, 576, 576), (GgmlDType::Q8_0, 1_785_664, 1000, 576)] {
        let w = &file[off..off + n * row_bytes(dt, k)];
        for tokens in [1, 3, 8] {
            let x = random_x(&mut rng, tokens * k);
            let mut y = vec![0f32; tokens * n];
            matmul(dt, w, n, k, &x, tokens, &mut y).unwrap();
            check_against_candle(dt, w, n, k, &x, tokens, &y, "real weights");
        }
        let mut row = vec![0f32; k];
        dequantize_row(dt, &w[..row_bytes(dt, k)], &mut row).unwrap();
        let want = candle_dequantize(dt, &w[..row_bytes(dt, k)], 1, k);
        assert_eq!(row, want);
        assert!(row.iter().all(|v| v.is_finite() && v.abs() < 10.0), "implausible weights: wrong offset?");
    }
}

/// Every finite f16 through the F16 kernel (F16C on x86): 2048 rows of 32 weights times
/// one-hot activations give back each weight exactly, on the tile and the mat-vec paths.
#[test]
fn f16_weights_convert_exactly() {
    let (n, k) = (2048, 32);
    let bits: Vec<u16> = (0..=u16::MAX).map(|h| if h & 0x7c00 == 0x7c00 { 0 } else { h }).collect();
    let w: Vec<u8> = bits.iter().flat_map(|h| h.to_le_bytes()).collect();
    let mut x = vec![0f32; k * k];
    for t in 0..k {
        x[t * k + t] = 1.0;
    }
    let mut y = vec![0f32; k * n];
    matmul(GgmlDType::F16, &w, n, k, &x, k, &mut y).unwrap();
    let mut y1 = vec![0f32; n];
    for t in 0..k {
        matmul(GgmlDType::F16, &w, n, k, &x[t * k..(t + 1) * k], 1, &mut y1).unwrap();
        for j in 0..n {
            let want = f16::from_bits(bits[j * k + t]).to_f32();
            assert_eq!(y[t * n + j], want, "f16 {:#06x} (tile path)", bits[j * k + t]);
            assert_eq!(y1[j], want, "f16 {:#06x} (mat-vec path)", bits[j * k + t]);
        }
    }
}

/// Inf and NaN weights (F16, and as block scales) reach the output as Inf/NaN, on the mat-vec
/// and the tile paths: x is one-hot on the special element, the rest of each row is 0.
#[test]
fn special_values_propagate() {
    check_special_values();
}

fn check_special_values() {
    let specials = [0x7c00u16, 0xfc00, 0x7e00, 0x7c01]; // +Inf, −Inf, qNaN, sNaN
    let k = 64;
    for dt in SIMD_DTYPES {
        let n = specials.len();
        let mut w = vec![0u8; n * row_bytes(dt, k)];
        for (j, &h) in specials.iter().enumerate() {
            let row = &mut w[j * row_bytes(dt, k)..(j + 1) * row_bytes(dt, k)];
            match dt {
                GgmlDType::F32 => row[..4].copy_from_slice(&f16::from_bits(h).to_f32().to_le_bytes()),
                GgmlDType::F16 => row[..2].copy_from_slice(&h.to_le_bytes()),
                GgmlDType::Q4_1 => {
                    row[..2].copy_from_slice(&h.to_le_bytes()); // d
                    row[4] = 0x01; // q = 1 at element 0
                }
                GgmlDType::Q4_0 => {
                    row[..2].copy_from_slice(&h.to_le_bytes());
                    row[2..18].fill(0x88); // q − 8 = 0 everywhere …
                    row[2] = 0x89; // … but 1 at element 0
                }
                GgmlDType::Q8_0 => {
                    row[..2].copy_from_slice(&h.to_le_bytes());
                    row[2] = 1;
                }
                other => unreachable!("{} is not one of SIMD_DTYPES", other.name()),
            }
        }
        let want = |j: usize| f16::from_bits(specials[j]).to_f32();
        for tokens in [1, 2, 5] {
            let mut x = vec![0f32; tokens * k];
            for t in 0..tokens {
                x[t * k] = 1.0;
            }
            let mut y = vec![0f32; tokens * n];
            matmul(dt, &w, n, k, &x, tokens, &mut y).unwrap();
            for t in 0..tokens {
                for j in 0..n {
                    let (got, want) = (y[t * n + j], want(j));
                    let ok = if want.is_nan() {
                        got.is_nan()
                    } else if block_size(dt) == 32 {
                        // A block scale of ±Inf: 0·Inf for the zero elements makes NaN
                        // where a kernel dequantizes first, ±Inf where it scales the sum.
                        got.is_nan() || got == want
                    } else {
                        got == want
                    };
                    assert!(ok, "{} tokens={tokens}: y[{t},{j}] = {got}, want {want}", dt.name());
                }
            }
        }
    }
}

/// Blocks of every type quantized by llama.cpp, and of random bytes, against the `gguf`
/// package's numpy dequantizer (see `kernels::check_gguf_numpy_blocks`).
#[test]
fn dequantize_matches_gguf_numpy() {
    kernels::check_gguf_numpy_blocks();
}

/// Q5_0 and IQ4_NL widened to Q8_0 (what the CPU backend runs them as) hold the same values,
/// bit for bit; other formats are left alone.
#[test]
fn widening_to_q8_0_keeps_every_value() {
    let mut rng = Rng(0x5eed_0007);
    for dt in [GgmlDType::Q5_0, GgmlDType::IQ4_NL] {
        let w = random_weights(&mut rng, dt, 7, 576);
        let q8 = widened_to_q8_0(dt, &w).expect("widened");
        assert_eq!(q8.len(), 7 * row_bytes(GgmlDType::Q8_0, 576));
        let (mut a, mut b) = (vec![0f32; 7 * 576], vec![0f32; 7 * 576]);
        dequantize_row(dt, &w, &mut a).unwrap();
        dequantize_row(GgmlDType::Q8_0, &q8, &mut b).unwrap();
        assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()), "{}", dt.name());
    }
    assert!(widened_to_q8_0(GgmlDType::Q4_K, &[0; 144]).is_none());
    assert!(widened_to_q8_0(GgmlDType::Q5_0, &[0; 21]).is_none());
}
