//! The simd128 matmul kernels against the portable scalar reference, in the browser.
//!
//!     cargo test --release --target wasm32-unknown-unknown --test wasm_kernels
//!
//! (runner: wasm-bindgen-test-runner with ChromeDriver; see TOOLCHAIN.md "Browser tests").
//! The scalar reference itself is checked against candle natively (tests/cpu_kernels.rs).
#![cfg(target_arch = "wasm32")]

use half::f16;
use padlock::backend::cpu::quant::{dequantize_row, kernel_name, matmul, reference};
use padlock::gguf::GgmlDType;
use padlock::ErrorCode;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// The types with simd128 kernels of their own (the others share the scalar code).
const DTYPES: [GgmlDType; 5] = [GgmlDType::F32, GgmlDType::F16, GgmlDType::Q4_0, GgmlDType::Q4_1, GgmlDType::Q8_0];

#[path = "common/kernels.rs"]
mod kernels;
use kernels::Rng;

fn block_size(dt: GgmlDType) -> usize {
    dt.block_size()
}
fn row_bytes(dt: GgmlDType, k: usize) -> usize {
    k / dt.block_size() * dt.block_bytes()
}

fn random_weights(rng: &mut Rng, dt: GgmlDType, n: usize, k: usize) -> Vec<u8> {
    kernels::random_weights(rng, dt, n * k)
}

/// Every type's blocks (quantized by llama.cpp, and random) against the `gguf` package's
/// numpy dequantizer, here with the simd128 build (BF16, Q5_0/1, IQ4_NL and the K-quants take
/// the vectorized scalar path).
#[wasm_bindgen_test]
fn dequantize_matches_gguf_numpy() {
    kernels::check_gguf_numpy_blocks();
}

#[wasm_bindgen_test]
fn kernel_is_simd128() {
    assert_eq!(kernel_name(), "simd128");
}

#[wasm_bindgen_test]
fn simd128_matches_scalar_reference() {
    let mut rng = Rng(0x5eed_0101);
    for dt in DTYPES {
        let mut shapes = vec![(1, 32), (3, 64), (7, 96), (13, 576), (100, 64), (5, 1536)];
        if block_size(dt) == 1 {
            shapes.extend([(3, 1), (7, 45), (13, 100)]);
        }
        for (n, k) in shapes {
            let w = random_weights(&mut rng, dt, n, k);
            let mut wf = vec![0f32; n * k];
            dequantize_row(dt, &w, &mut wf).unwrap();
            for tokens in [1, 2, 3, 4, 5, 9, 17] {
                let x: Vec<f32> = (0..tokens * k).map(|_| rng.f()).collect();
                let (mut y, mut yr) = (vec![f32::NAN; tokens * n], vec![f32::NAN; tokens * n]);
                matmul(dt, &w, n, k, &x, tokens, &mut y).unwrap();
                reference::matmul_scalar(dt, &w, n, k, &x, tokens, &mut yr).unwrap();
                for (i, (s, abs)) in kernels::f64_products(&wf, n, k, &x, tokens).into_iter().enumerate() {
                    let (a, b) = (y[i], yr[i]);
                    assert!(
                        (a - b).abs() as f64 <= 2e-6 * abs + 1e-30,
                        "{} n={n} k={k} tokens={tokens}: y[{},{}] = {a}, scalar {b}",
                        dt.name(),
                        i / n,
                        i % n
                    );
                    assert!((a as f64 - s).abs() <= 1e-4 * abs + 1e-30, "{} vs f64 {s}", a);
                }
            }
        }
    }
}

/// Every finite f16 through the F16 kernel's vector conversion: 2048 rows of 32 weights
/// times one-hot activations give back each weight exactly.
#[wasm_bindgen_test]
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

#[wasm_bindgen_test]
fn invalid_sizes_are_errors() {
    let mut rng = Rng(9);
    for dt in DTYPES {
        let (n, k, tokens) = (3, 64, 2);
        let w = random_weights(&mut rng, dt, n, k);
        let x = vec![0.5f32; tokens * k];
        let mut y = vec![0f32; tokens * n];
        let code = |r: padlock::Result<()>| r.unwrap_err().code;
        assert_eq!(code(matmul(dt, &w[1..], n, k, &x, tokens, &mut y)), ErrorCode::InvalidArgument);
        assert_eq!(code(matmul(dt, &w, n, k, &x[1..], tokens, &mut y)), ErrorCode::InvalidArgument);
        assert_eq!(code(matmul(dt, &w, n, k, &x, tokens, &mut y[1..])), ErrorCode::InvalidArgument);
        assert_eq!(code(matmul(dt, &w, usize::MAX, k, &x, tokens, &mut y)), ErrorCode::InvalidArgument);
        let mut out = vec![0f32; k + 1];
        assert_eq!(code(dequantize_row(dt, &w[..row_bytes(dt, k)], &mut out)), ErrorCode::InvalidArgument);
    }
}

/// Not a check: prints µs per call and GB/s of weights for the default model's decode shapes
/// (tokens = 1), a 4-token batch and a 64-token prefill, simd128 against the scalar code.
#[wasm_bindgen_test]
fn speed_report() {
    let mut rng = Rng(0x5eed_0102);
    let shapes = [
        ("attn q/o 576x576 Q4_1", GgmlDType::Q4_1, 576, 576),
        ("ffn up 1536x576 Q4_1", GgmlDType::Q4_1, 1536, 576),
        ("ffn down 576x1536 Q4_1", GgmlDType::Q4_1, 576, 1536),
        ("lm head slice 8192x576 Q8_0", GgmlDType::Q8_0, 8192, 576),
    ];
    for (name, dt, n, k) in shapes {
        // Scales of realistic size (the test data's tiny and subnormal scales are rare in
        // real models, and subnormal ones are slow on x86, see `f16x4`).
        let mut w = random_weights(&mut rng, dt, n, k);
        let scales = if dt == GgmlDType::Q4_1 { 2 } else { 1 };
        for b in w.chunks_exact_mut(dt.block_bytes()) {
            for s in 0..scales {
                b[2 * s..2 * s + 2].copy_from_slice(&f16::from_f32(0.002 + 0.02 * rng.f().abs()).to_le_bytes());
            }
        }
        for tokens in [1usize, 4, 64] {
            let x: Vec<f32> = (0..tokens * k).map(|_| rng.f()).collect();
            let mut y = vec![0f32; tokens * n];
            // Best of several short rounds (the machine may be shared), after a warm-up: V8
            // runs a function on its baseline compiler until it is hot enough to optimize.
            let mut per_call = |scalar: bool, ms: f64| {
                let (mut calls, t) = (0u32, js_sys::Date::now());
                while js_sys::Date::now() - t < ms {
                    if scalar {
                        reference::matmul_scalar(dt, &w, n, k, &x, tokens, &mut y).unwrap();
                    } else {
                        matmul(dt, &w, n, k, &x, tokens, &mut y).unwrap();
                    }
                    calls += 1;
                }
                (js_sys::Date::now() - t) * 1e3 / calls as f64 // µs
            };
            per_call(false, 200.0);
            per_call(true, 200.0);
            let (mut simd, mut scalar) = (f64::MAX, f64::MAX);
            for _ in 0..5 {
                simd = simd.min(per_call(false, 60.0));
                scalar = scalar.min(per_call(true, 60.0));
            }
            console_log!(
                "{name:<28} tokens {tokens:>2}: simd128 {simd:>9.1} µs ({:.2} GB/s, {:.1} GFLOP/s), scalar {scalar:>9.1} µs",
                w.len() as f64 / simd / 1e3,
                2.0 * (n * k * tokens) as f64 / simd / 1e3
            );
        }
    }
}

/// Inf and NaN weights (F16, and as block scales) reach the output as Inf/NaN.
#[wasm_bindgen_test]
fn special_values_propagate() {
    check_special_values();
}

fn check_special_values() {
    let specials = [0x7c00u16, 0xfc00, 0x7e00, 0x7c01]; // +Inf, −Inf, qNaN, sNaN
    let k = 64;
    for dt in DTYPES {
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
                other => unreachable!("{} has no simd128 kernel of its own", other.name()),
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
