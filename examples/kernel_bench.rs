//! Micro-benchmark of the CPU matmul kernels on the default model's shapes
//! (SmolLM2-135M: hidden 576, FFN 1536, 3 KV heads of 64, vocabulary 49152).
//!
//!     cargo run --release --example kernel_bench [-- THREADS]
//!
//! The main columns run inside a THREADS-thread pool (default: one per core); the
//! 'outside' columns call from the main thread, which costs a rayon injection per call.
//!
//! Prints µs per call and GB/s of weights streamed for each decode shape (tokens = 1, one
//! matrix reused, so it is cache-warm), a prefill of 64 tokens, and a whole decode pass over
//! 30 distinct layers + the LM head (~96 MB, the real per-token weight traffic).

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    bench::main()
}

/// Native only (rayon); the browser's numbers come from `tests/wasm_kernels.rs`.
#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
mod bench {
    use padlock::backend::cpu::quant::{kernel_name, matmul};
    use padlock::gguf::GgmlDType;
    use std::time::Instant;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    fn row_bytes(dt: GgmlDType, k: usize) -> usize {
        dt.row_bytes(k)
    }

    /// Random quants with small finite f16 scales (0x2000 ≈ 0.0078 and its neighbours).
    fn weights(rng: &mut Rng, dt: GgmlDType, n: usize, k: usize) -> Vec<u8> {
        let mut w: Vec<u8> = (0..n * row_bytes(dt, k)).map(|_| rng.next() as u8).collect();
        match dt {
            GgmlDType::F32 => w.chunks_exact_mut(4).for_each(|f| f[3] = 0x3c | (f[3] & 0x80)),
            GgmlDType::BF16 => w.chunks_exact_mut(2).for_each(|h| h[1] = 0x3c | (h[1] & 0x80)),
            _ => {
                for b in w.chunks_exact_mut(dt.block_bytes()) {
                    for &at in dt.f16_scale_offsets() {
                        b[at + 1] = 0x20 | (b[at + 1] & 0x83);
                    }
                }
            }
        }
        w
    }

    /// Runs `f` repeatedly for about `secs` seconds; returns seconds per call (best of 3 rounds).
    fn time(secs: f64, mut f: impl FnMut()) -> f64 {
        f();
        let t = Instant::now();
        let mut calls = 0u64;
        while t.elapsed().as_secs_f64() < secs / 10.0 {
            f();
            calls += 1;
        }
        let per_round = (calls as f64 * (secs / 3.0) / t.elapsed().as_secs_f64()).max(1.0) as u64;
        let mut best = f64::MAX;
        for _ in 0..3 {
            let t = Instant::now();
            for _ in 0..per_round {
                f();
            }
            best = best.min(t.elapsed().as_secs_f64() / per_round as f64);
        }
        best
    }

    pub fn main() {
        let threads: Option<usize> = std::env::args().nth(1).and_then(|a| a.parse().ok());
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads.unwrap_or(0)).build().unwrap();
        let mut rng = Rng(0x9e3779b97f4a7c15);
        println!(
            "kernel {} · {} rayon threads, called inside the pool ('outside': called from the main \
             thread, on rayon's global pool)",
            kernel_name(),
            pool.current_num_threads()
        );

        let q41 = GgmlDType::Q4_1;
        let shapes: [(&str, GgmlDType, usize, usize); 11] = [
            ("attn q/o   576×576   Q4_1", q41, 576, 576),
            ("attn k/v   192×576   Q4_1", q41, 192, 576),
            ("ffn gate/up 1536×576 Q4_1", q41, 1536, 576),
            ("ffn down   576×1536  Q4_1", q41, 576, 1536),
            ("lm head  49152×576   Q8_0", GgmlDType::Q8_0, 49152, 576),
            ("ffn up    1536×576   Q4_0", GgmlDType::Q4_0, 1536, 576),
            ("ffn up    1536×576   Q8_0", GgmlDType::Q8_0, 1536, 576),
            ("ffn up    1536×576   F16 ", GgmlDType::F16, 1536, 576),
            ("ffn down   576×1536  Q4_K", GgmlDType::Q4_K, 576, 1536),
            ("ffn down   576×1536  Q6_K", GgmlDType::Q6_K, 576, 1536),
            ("ffn up    1536×576   Q5_0", GgmlDType::Q5_0, 1536, 576),
        ];
        println!(
            "\n{:<28} {:>7} {:>10} {:>9} {:>13} {:>9}",
            "shape", "tokens", "µs/call", "GB/s", "outside µs", "GFLOP/s"
        );
        for (name, dt, n, k) in shapes {
            let w = weights(&mut rng, dt, n, k);
            for tokens in [1usize, 4, 64] {
                let x: Vec<f32> = (0..tokens * k).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
                let mut y = vec![0f32; tokens * n];
                let s = pool.install(|| time(0.3, || matmul(dt, &w, n, k, &x, tokens, &mut y).unwrap()));
                let s_out = time(0.3, || matmul(dt, &w, n, k, &x, tokens, &mut y).unwrap());
                println!(
                    "{:<28} {:>7} {:>10.1} {:>9.2} {:>13.1} {:>9.1}",
                    name,
                    tokens,
                    s * 1e6,
                    w.len() as f64 / s / 1e9,
                    s_out * 1e6,
                    2.0 * (n * k * tokens) as f64 / s / 1e9
                );
            }
        }

        // A whole decode pass: 30 layers of distinct weights + the LM head, as the model reads them.
        let (h, f, kv, vocab, layers) = (576, 1536, 192, 49152, 30);
        let mut mats: Vec<(GgmlDType, usize, usize, Vec<u8>)> = Vec::new();
        for _ in 0..layers {
            for (n, k) in [(h, h), (kv, h), (kv, h), (h, h), (f, h), (f, h), (h, f)] {
                mats.push((q41, n, k, weights(&mut rng, q41, n, k)));
            }
        }
        mats.push((GgmlDType::Q8_0, vocab, h, weights(&mut rng, GgmlDType::Q8_0, vocab, h)));
        let bytes: usize = mats.iter().map(|m| m.3.len()).sum();
        println!("\nwhole model pass: {} matmul calls, {:.1} MB of weights", mats.len(), bytes as f64 / 1e6);
        for tokens in [1usize, 4, 64] {
            let x: Vec<f32> = (0..tokens * f).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
            let mut y = vec![0f32; tokens * vocab];
            let mut pass = || {
                for (dt, n, k, w) in &mats {
                    matmul(*dt, w, *n, *k, &x[..tokens * k], tokens, &mut y[..tokens * n]).unwrap();
                }
            };
            let s = pool.install(|| time(2.0, &mut pass));
            let s_out = time(2.0, &mut pass);
            println!(
                "tokens {tokens:>3}: {:>8.2} ms/pass  {:>6.2} GB/s  → {:>7.1} tokens/s (matmuls only); outside the pool {:.2} ms",
                s * 1e3,
                bytes as f64 / s / 1e9,
                tokens as f64 / s,
                s_out * 1e3
            );
        }
    }
}
