//! What the kernel tests share: deterministic random data (a splitmix64 generator, GGUF
//! weight bytes of every supported type with random quants and finite random scales) and the
//! f64 reference for matrix products.
#![allow(dead_code)]

use half::f16;
use padlock::gguf::GgmlDType;

/// splitmix64: small, fixed-seed, good enough for test data.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    pub fn f(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    pub fn byte(&mut self) -> u8 {
        self.next() as u8
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f()).collect()
    }

    /// A finite f16 scale: magnitudes spread over several octaves, either sign, sometimes
    /// 0 or an f16 subnormal.
    pub fn scale(&mut self) -> [u8; 2] {
        let r = self.next();
        let mag = match r % 16 {
            0 => 0.0,
            1 => 3e-6,
            _ => ((r >> 8) % 1000) as f32 / 1000.0 * 0.1 * 2f32.powi(-(((r >> 20) % 6) as i32)),
        };
        f16::from_f32(if (r >> 32) & 1 == 1 { -mag } else { mag }).to_le_bytes()
    }
}

/// `n_elements` weights of type `dt` (a whole number of blocks) as GGUF stores them: random
/// quants (every bit pattern) and finite random scales.
pub fn random_weights(rng: &mut Rng, dt: GgmlDType, n_elements: usize) -> Vec<u8> {
    let blocks = n_elements / dt.block_size();
    let mut w = Vec::with_capacity(blocks * dt.block_bytes());
    for _ in 0..blocks {
        match dt {
            GgmlDType::F32 => w.extend_from_slice(&(rng.f() * 0.5).to_le_bytes()),
            GgmlDType::F16 => w.extend_from_slice(&f16::from_f32(rng.f() * 0.5).to_le_bytes()),
            GgmlDType::BF16 => w.extend_from_slice(&half::bf16::from_f32(rng.f() * 0.5).to_le_bytes()),
            _ => {
                let start = w.len();
                (0..dt.block_bytes()).for_each(|_| w.push(rng.byte()));
                for &at in dt.f16_scale_offsets() {
                    w[start + at..start + at + 2].copy_from_slice(&rng.scale());
                }
            }
        }
    }
    w
}

/// The f64 reference of `y = x · Wᵀ`: for activation row t and weight row j, at `t * n + j`,
/// (Σᵢ w·x, Σᵢ |w·x|). The second is the scale f32 rounding of the sum is measured against.
pub fn f64_products(wf: &[f32], n: usize, k: usize, x: &[f32], tokens: usize) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(tokens * n);
    for t in 0..tokens {
        for j in 0..n {
            let (mut s, mut abs) = (0f64, 0f64);
            for i in 0..k {
                let term = wf[j * k + i] as f64 * x[t * k + i] as f64;
                s += term;
                abs += term.abs();
            }
            out.push((s, abs));
        }
    }
    out
}

/// Blocks of every type, quantized by llama.cpp (from the requantized default model) and of
/// random bytes, against the `gguf` package's numpy dequantizer (scripts/quant_types.py
/// blocks): bit for bit, and a matmul over them against f64 dot products of those values.
pub fn check_gguf_numpy_blocks() {
    use padlock::backend::cpu::quant::{dequantize_row, matmul};

    let fixture: serde_json::Value = serde_json::from_str(include_str!("../fixtures/quant_blocks.json")).unwrap();
    let types = fixture["types"].as_object().unwrap();
    let mut rng = Rng(0x5eed_0006);
    for dt in GgmlDType::ALL.into_iter().filter(|&dt| dt != GgmlDType::F32) {
        let cases = types.get(dt.name()).unwrap_or_else(|| panic!("no {} blocks in the fixture", dt.name()));
        for case in cases.as_array().unwrap() {
            let hex = case["hex"].as_str().unwrap();
            let w: Vec<u8> =
                (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
            let want: Vec<f32> =
                case["values"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
            let mut got = vec![0f32; want.len()];
            dequantize_row(dt, &w, &mut got).unwrap();
            for (i, (g, e)) in got.iter().zip(&want).enumerate() {
                assert_eq!(g.to_bits(), e.to_bits(), "{} ({}) element {i}: {g} vs gguf {e}", dt.name(), case["from"]);
            }
            // The same bytes as one row of a matmul, on the mat-vec and the tile paths.
            let k = want.len();
            for tokens in [1, 3] {
                let x = rng.vec(tokens * k);
                let mut y = vec![f32::NAN; tokens];
                matmul(dt, &w, 1, k, &x, tokens, &mut y).unwrap();
                for (t, (s, abs)) in f64_products(&want, 1, k, &x, tokens).into_iter().enumerate() {
                    assert!((y[t] as f64 - s).abs() <= 1e-5 * abs + 1e-30, "{}: {} vs {s}", dt.name(), y[t]);
                }
            }
        }
    }
}
