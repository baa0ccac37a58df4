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

/// `n_elements` weights of type `dt` (a whole number of blocks) as GGUF stores them.
pub fn random_weights(rng: &mut Rng, dt: GgmlDType, n_elements: usize) -> Vec<u8> {
    let blocks = n_elements / dt.block_size();
    let mut w = Vec::with_capacity(blocks * dt.block_bytes());
    for _ in 0..blocks {
        match dt {
            GgmlDType::F32 => w.extend_from_slice(&(rng.f() * 0.5).to_le_bytes()),
            GgmlDType::F16 => w.extend_from_slice(&f16::from_f32(rng.f() * 0.5).to_le_bytes()),
            GgmlDType::Q4_0 | GgmlDType::Q8_0 => {
                w.extend_from_slice(&rng.scale());
                (0..dt.block_bytes() - 2).for_each(|_| w.push(rng.byte()));
            }
            GgmlDType::Q4_1 => {
                w.extend_from_slice(&rng.scale());
                w.extend_from_slice(&rng.scale());
                (0..16).for_each(|_| w.push(rng.byte()));
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
