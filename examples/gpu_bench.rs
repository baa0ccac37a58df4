//! Micro-benchmark of the GPU kernels on the default model's weights and shapes, natively
//! on whatever adapter wgpu finds (here: lavapipe, a CPU; figures for regression only).
//!
//!     cargo run --release --example gpu_bench [-- MODEL.gguf] [--no-subgroups] [--workgroup | --per-thread]
//!
//! Each line records the operation REPS times and reads the result once (one submission),
//! and prints the wall time per operation.

#[cfg(any(target_arch = "wasm32", not(feature = "gpu")))]
fn main() {}

#[cfg(all(not(target_arch = "wasm32"), feature = "gpu"))]
fn main() {
    bench::main()
}

#[cfg(all(not(target_arch = "wasm32"), feature = "gpu"))]
mod bench {
    use std::sync::Arc;
    use std::time::Instant;

    use padlock::backend::gpu::{GpuBackend, GpuOptions, Kernels};
    use padlock::backend::{Backend, LogitsWanted, Segment};
    use padlock::gguf::GgufFile;
    use padlock::model::config::LlamaConfig;

    const REPS: usize = 10;

    fn time<T>(b: &GpuBackend, name: &str, mut op: impl FnMut() -> T, last: impl Fn(&T) -> Vec<f32>) {
        // Once untimed: compiles the pipeline.
        let warm = op();
        let _ = last(&warm);
        let t = Instant::now();
        let mut out = None;
        for _ in 0..REPS {
            out = Some(op());
        }
        let _ = last(out.as_ref().expect("ran"));
        let per = t.elapsed().as_secs_f64() * 1e3 / REPS as f64;
        let _ = b;
        println!("{name:<44} {per:>9.3} ms");
    }

    pub fn main() {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let path = args
            .iter()
            .find(|a| !a.starts_with("--"))
            .cloned()
            .unwrap_or("models/SmolLM2-135M-Instruct.Q4_1.gguf".into());
        let subgroups = !args.iter().any(|a| a == "--no-subgroups");
        let kernels = if args.iter().any(|a| a == "--workgroup") {
            Kernels::Workgroup
        } else if args.iter().any(|a| a == "--per-thread") {
            Kernels::PerThread
        } else {
            Kernels::Auto
        };
        let file = GgufFile::parse(Arc::new(std::fs::read(&path).expect("model"))).expect("gguf");
        let config = LlamaConfig::from_gguf(&file).expect("config");
        let cfg = config.attention_shape();
        let b = pollster::block_on(GpuBackend::with_options(GpuOptions { subgroups, kernels, ..Default::default() }))
            .expect("adapter");
        println!("{:?}", b.info());
        let w = |n: &str| b.load_weight(&file, file.tensor(n).expect("tensor")).expect("load");
        let (q, k, v, o) = (
            w("blk.0.attn_q.weight"),
            w("blk.0.attn_k.weight"),
            w("blk.0.attn_v.weight"),
            w("blk.0.attn_output.weight"),
        );
        let (gate, up, down) = (w("blk.0.ffn_gate.weight"), w("blk.0.ffn_up.weight"), w("blk.0.ffn_down.weight"));
        let (norm, emb) = (w("blk.0.attn_norm.weight"), w("token_embd.weight"));
        let read = |t: &padlock::backend::gpu::GpuTensor| pollster::block_on(b.read(t)).expect("read");
        for tokens in [1usize, 4, 32] {
            let ids: Vec<u32> = (0..tokens as u32).map(|i| 100 + i).collect();
            let x = b.embed(&emb, &ids).expect("embed");
            let h = b.matmul(&x, &q).expect("q");
            let f = b.matmul(&x, &gate).expect("f");
            time(&b, &format!("embed Q8_0 ×{tokens}"), || b.embed(&emb, &ids).expect("embed"), read);
            time(&b, &format!("rms_norm ×{tokens}"), || b.rms_norm(&x, &norm, 1e-5).expect("norm"), read);
            time(&b, &format!("q 576×576 Q4_1 ×{tokens}"), || b.matmul(&x, &q).expect("q"), read);
            time(
                &b,
                &format!("qkv fused ×{tokens}"),
                || b.matmul_many(&x, &[&q, &k, &v]).expect("qkv"),
                |t| read(&t[0]),
            );
            time(&b, &format!("o 576×576 ×{tokens}"), || b.matmul(&h, &o).expect("o"), read);
            time(
                &b,
                &format!("gate+up fused 2×1536×576 ×{tokens}"),
                || b.matmul_many(&x, &[&gate, &up]).expect("gu"),
                |t| read(&t[0]),
            );
            time(&b, &format!("down 576×1536 ×{tokens}"), || b.matmul(&f, &down).expect("down"), read);
            time(&b, &format!("lm head 49152×576 Q8_0 ×{tokens}"), || b.matmul(&x, &emb).expect("head"), read);
            time(
                &b,
                &format!("silu_mul 1536 ×{tokens}"),
                || b.glu(&f, &f, padlock::backend::Activation::Silu).expect("silu"),
                read,
            );
            time(&b, &format!("add 576 ×{tokens}"), || b.add(&x, &x).expect("add"), read);
            let seg = [Segment { start: 0, n_tokens: tokens }];
            time(
                &b,
                &format!("rope 9 heads ×{tokens}"),
                || b.rope(&h, 9, &seg, &padlock::backend::Rope::plain(100000.0)).expect("rope"),
                read,
            );
            let logits = b.matmul(&x, &emb).expect("head");
            let top = LogitsWanted::Top { k: 10, also: vec![] };
            time(
                &b,
                &format!("top-10 + gather of {tokens} rows"),
                || (),
                |_| pollster::block_on(b.read_logits(&logits, &top)).expect("top"),
            );
            for ctx in [64usize, 512] {
                let mut cache = b.new_kv_cache(&cfg).expect("cache");
                let kx = b.matmul(&x, &k).expect("k");
                // Fill the cache up to ctx positions, 32 at a time.
                let mut pos = 0;
                while pos < ctx {
                    let n = 32.min(ctx - pos);
                    let xs = b.embed(&emb, &(0..n as u32).collect::<Vec<_>>()).expect("x");
                    let (qq, kk, vv) =
                        (b.matmul(&xs, &q).unwrap(), b.matmul(&xs, &k).unwrap(), b.matmul(&xs, &v).unwrap());
                    for layer in 0..cfg.layers {
                        b.attention(
                            layer,
                            &qq,
                            &kk,
                            &vv,
                            &mut [&mut cache],
                            &[Segment { start: pos, n_tokens: n }],
                            &cfg,
                        )
                        .unwrap();
                    }
                    pos += n;
                }
                let _ = read(&kx);
                let mut len = ctx;
                time(
                    &b,
                    &format!("attention ctx {ctx} ×{tokens} (incl. kv write)"),
                    || {
                        b.truncate_kv_cache(&mut cache, ctx).unwrap();
                        let mut out = None;
                        for layer in 0..cfg.layers {
                            out = Some(
                                b.attention(
                                    layer,
                                    &h,
                                    &kx,
                                    &kx,
                                    &mut [&mut cache],
                                    &[Segment { start: ctx, n_tokens: tokens }],
                                    &cfg,
                                )
                                .unwrap(),
                            );
                        }
                        len = ctx + tokens;
                        out.unwrap()
                    },
                    read,
                );
                let _ = len;
            }
        }
        println!("(attention lines are for all {} layers)", cfg.layers);
        println!("{:?}", b.stats());
    }
}
