//! Every backend operation on random inputs, written once over the `Backend` trait so the
//! same cases run on the CPU backend (the reference) and on the GPU backend: natively on
//! lavapipe (tests/gpu_kernels.rs) and in headless Chromium on SwiftShader
//! (tests/wasm_gpu.rs). Shapes include sizes that are no multiple of any workgroup size.
//! The matrix products are also checked against an f64 computation of their own.
#![allow(dead_code)]

use std::sync::Arc;

use padlock::backend::cpu::quant::dequantize_row;
use padlock::backend::{Activation, AttentionShape, Backend, LogitsWanted, Rope, RopePairs, Segment, SlidingWindow};
use padlock::gguf::{GgmlDType, GgufFile};
use padlock::ErrorCode;

use crate::gguf_writer::GgufWriter;
pub use crate::kernels::{f64_products, random_weights, Rng};

pub const DTYPES: [GgmlDType; 14] = GgmlDType::ALL;

/// The types the default model holds, which get every shape; the others get a few.
const DEFAULT_MODEL_DTYPES: [GgmlDType; 5] =
    [GgmlDType::F32, GgmlDType::F16, GgmlDType::Q4_0, GgmlDType::Q4_1, GgmlDType::Q8_0];

fn ggml_type(dt: GgmlDType) -> u32 {
    dt.ggml_type()
}

/// (rows n, row length k) of the matrices: row counts around and between the kernels'
/// 8-row and 64-row tiles, lengths of 1 to 48 blocks (whole blocks of the type).
pub fn shapes(dt: GgmlDType) -> Vec<(usize, usize)> {
    let mut s = if DEFAULT_MODEL_DTYPES.contains(&dt) {
        vec![(1, 32), (7, 96), (13, 576), (100, 64), (257, 64), (5, 1536), (70, 128)]
    } else {
        vec![(7, 256), (13, 576), (5, 1536), (70, 512)]
    };
    if dt.block_size() == 1 {
        s.extend([(3, 1), (7, 45), (13, 100), (65, 33)]);
    }
    s.retain(|&(_, k): &(usize, usize)| k.is_multiple_of(dt.block_size()));
    s
}

/// Activation row counts: the mat-vec (1..=8) and the tiled mat-mul (9.., partial tiles).
pub const TOKENS: [usize; 8] = [1, 2, 3, 5, 8, 9, 33, 70];

/// The activation row counts a type is multiplied with: all of [`TOKENS`] for the default
/// model's types; one mat-vec, one batched mat-vec and two tiled counts for the others (their
/// weights go through the same kernels, only `load_unit` differs).
fn tokens_for(dt: GgmlDType) -> &'static [usize] {
    if DEFAULT_MODEL_DTYPES.contains(&dt) {
        &TOKENS
    } else {
        &[1, 3, 9, 33]
    }
}

pub fn weight_name(dt: GgmlDType, n: usize, k: usize) -> String {
    format!("w.{}.{n}x{k}", dt.name())
}

/// A GGUF holding, with random contents: every (dtype, shape) matrix, norm weights, and
/// three Q4_1 and two Q8_0 matrices stored one after the other (for fused products).
pub fn random_file(seed: u64) -> GgufFile {
    let mut w = GgufWriter::new();
    for dt in DTYPES {
        for (n, k) in shapes(dt) {
            w.tensor(&weight_name(dt, n, k), &[k as u64, n as u64], ggml_type(dt));
        }
    }
    for k in [45u64, 64, 576] {
        w.tensor(&format!("norm.F32.{k}"), &[k], 0);
        w.tensor(&format!("norm.F16.{k}"), &[k], 1);
    }
    for (name, n, t) in [("qkv.q", 96u64, 3u32), ("qkv.k", 32, 3), ("qkv.v", 40, 3), ("gu.g", 72, 8), ("gu.u", 72, 8)] {
        w.tensor(name, &[64, n], t);
    }
    let first = GgufFile::parse(Arc::new(w.to_bytes())).expect("the test GGUF parses");
    let mut bytes = first.bytes().as_ref().clone();
    let mut rng = Rng(seed);
    for t in first.tensors() {
        let data = random_weights(&mut rng, t.dtype, t.n_elements());
        bytes[t.offset..t.offset + data.len()].copy_from_slice(&data);
    }
    GgufFile::parse(Arc::new(bytes)).expect("the test GGUF parses")
}

/// A host matrix as a tensor on `b` (through the F32 embedding path).
pub fn upload<B: Backend>(b: &B, data: &[f32], rows: usize, cols: usize) -> B::Tensor {
    let w = b.load_f32(data, rows, cols).expect("load_f32");
    let ids: Vec<u32> = (0..rows as u32).collect();
    b.embed(&w, &ids).expect("embed")
}

/// One named output of a case, with how far another backend may be from it: |Δ| ≤ tol[i].
pub struct Output {
    pub name: String,
    pub values: Vec<f32>,
    pub tol: Vec<f32>,
}

fn uniform_tol(values: &[f32], rel: f32) -> Vec<f32> {
    let max = values.iter().fold(0f32, |m, v| m.max(v.abs()));
    vec![rel * (1.0 + max); values.len()]
}

/// y = x·Wᵀ in f64 from the weight dequantized by the CPU code (ggml-exact), and the
/// tolerance an f32 sum in any order meets: 1e-5 of Σ|terms|.
fn matmul_reference(file: &GgufFile, name: &str, x: &[f32], tokens: usize) -> (Vec<f32>, Vec<f32>) {
    let t = file.tensor(name).expect("tensor");
    let k = t.dims[0];
    let n = t.n_elements() / k;
    let mut wf = vec![0f32; n * k];
    dequantize_row(t.dtype, file.tensor_data(t), &mut wf).expect("dequantize");
    host_matmul_reference(&wf, n, k, x, tokens)
}

/// y = x·Wᵀ in f64 for a host `n × k` matrix, with the same tolerance.
fn host_matmul_reference(w: &[f32], n: usize, k: usize, x: &[f32], tokens: usize) -> (Vec<f32>, Vec<f32>) {
    f64_products(w, n, k, x, tokens).into_iter().map(|(s, abs)| (s as f32, (1e-5 * abs + 1e-30) as f32)).unzip()
}

fn assert_within(y: &[f32], want: &[f32], tol: &[f32], what: &str) {
    for i in 0..y.len() {
        assert!((y[i] - want[i]).abs() <= tol[i], "{what}: y[{i}] = {}, f64 reference {}", y[i], want[i]);
    }
}

async fn read<B: Backend>(b: &B, t: &B::Tensor) -> Vec<f32> {
    b.read(t).await.expect("read")
}

/// Every product of every weight with 1..70 activation rows, single and fused.
pub async fn matmul_cases<B: Backend>(b: &B, file: &GgufFile, out: &mut Vec<Output>, check_reference: bool) {
    let mut rng = Rng(7);
    for dt in DTYPES {
        for (n, k) in shapes(dt) {
            let name = weight_name(dt, n, k);
            let w = b.load_weight(file, file.tensor(&name).expect("tensor")).expect("load_weight");
            for &tokens in tokens_for(dt) {
                let x = rng.vec(tokens * k);
                let y = read(b, &b.matmul(&upload(b, &x, tokens, k), &w).expect("matmul")).await;
                let (want, tol) = matmul_reference(file, &name, &x, tokens);
                if check_reference {
                    assert_within(&y, &want, &tol, &format!("{name} tokens={tokens}"));
                }
                out.push(Output { name: format!("matmul {name} tokens={tokens}"), values: y, tol });
            }
        }
    }
    // Fused: Q/K/V-like (three Q4_1) and gate/up-like (two Q8_0), as the model calls them.
    for (names, tokens) in [
        (&["qkv.q", "qkv.k", "qkv.v"][..], 1),
        (&["qkv.q", "qkv.k", "qkv.v"][..], 40),
        (&["gu.g", "gu.u"][..], 3),
        (&["gu.g", "gu.u"][..], 11),
    ] {
        let ws: Vec<B::Weight> =
            names.iter().map(|n| b.load_weight(file, file.tensor(n).expect("tensor")).expect("load")).collect();
        let x = rng.vec(tokens * 64);
        let xt = upload(b, &x, tokens, 64);
        let ys = b.matmul_many(&xt, &ws.iter().collect::<Vec<_>>()).expect("matmul_many");
        assert_eq!(ys.len(), names.len());
        for (name, y) in names.iter().zip(&ys) {
            let y = read(b, y).await;
            let (want, tol) = matmul_reference(file, name, &x, tokens);
            if check_reference {
                assert_within(&y, &want, &tol, &format!("fused {name}"));
            }
            out.push(Output { name: format!("matmul_many {name} tokens={tokens}"), values: y, tol });
        }
    }
    // A host matrix as the weight (`load_f32`: PAD's value heads, hidden × hidden).
    for (n, k, tokens) in [(64, 64, 1), (96, 64, 3), (576, 576, 4)] {
        let wf = rng.vec(n * k);
        let w = b.load_f32(&wf, n, k).expect("load_f32");
        let x = rng.vec(tokens * k);
        let y = read(b, &b.matmul(&upload(b, &x, tokens, k), &w).expect("matmul")).await;
        let (want, tol) = host_matmul_reference(&wf, n, k, &x, tokens);
        if check_reference {
            assert_within(&y, &want, &tol, &format!("host {n}x{k} tokens={tokens}"));
        }
        out.push(Output { name: format!("matmul host {n}x{k} tokens={tokens}"), values: y, tol });
    }
}

/// Embedding rows, RMSNorm, RoPE, SwiGLU, residual add, row selection and concatenation.
pub async fn elementwise_cases<B: Backend>(b: &B, file: &GgufFile, out: &mut Vec<Output>) {
    let mut rng = Rng(11);
    for dt in DTYPES {
        for (n, k) in shapes(dt).into_iter().filter(|s| s.0 > 1) {
            let name = weight_name(dt, n, k);
            let w = b.load_weight(file, file.tensor(&name).expect("tensor")).expect("load");
            let ids: Vec<u32> = (0..9).map(|_| rng.below(n) as u32).chain([0, n as u32 - 1, 0]).collect();
            let y = read(b, &b.embed(&w, &ids).expect("embed")).await;
            let tol = uniform_tol(&y, 1e-6);
            out.push(Output { name: format!("embed {name}"), values: y, tol });
            let err = b.embed(&w, &[n as u32]).err().expect("an id past the table is an error");
            assert_eq!(err.code, ErrorCode::InvalidArgument);
        }
    }
    for norm in ["F32", "F16"] {
        for (rows, k) in [(1, 64), (3, 576), (17, 45), (2, 64)] {
            let w = b.load_weight(file, file.tensor(&format!("norm.{norm}.{k}")).expect("norm")).expect("load");
            let x = rng.vec(rows * k);
            let y = read(b, &b.rms_norm(&upload(b, &x, rows, k), &w, 1e-5).expect("rms_norm")).await;
            let tol = uniform_tol(&y, 1e-5);
            out.push(Output { name: format!("rms_norm {norm} {rows}x{k}"), values: y, tol });
        }
    }
    // Per-head norms (a weight of one head's width over rows of heads), and biases.
    let head_norm = b.load_weight(file, file.tensor("norm.F32.64").expect("norm")).expect("load");
    for (rows, heads) in [(3, 4), (70, 9)] {
        let x = rng.vec(rows * heads * 64);
        let y = read(b, &b.rms_norm(&upload(b, &x, rows, heads * 64), &head_norm, 1e-6).expect("rms_norm")).await;
        let tol = uniform_tol(&y, 1e-5);
        out.push(Output { name: format!("rms_norm per head {rows}x{heads}x64"), values: y, tol });
    }
    for (rows, k) in [(3, 64), (70, 576), (1, 45)] {
        let bias = b.load_weight(file, file.tensor(&format!("norm.F32.{k}")).expect("bias")).expect("load");
        let x = rng.vec(rows * k);
        let y = read(b, &b.add_bias(&upload(b, &x, rows, k), &bias).expect("add_bias")).await;
        let tol = uniform_tol(&y, 1e-7);
        out.push(Output { name: format!("add_bias {rows}x{k}"), values: y, tol });
    }
    for (heads, head_dim, segments) in [
        (9, 64, vec![Segment { start: 0, n_tokens: 3 }]),
        (
            3,
            64,
            vec![
                Segment { start: 0, n_tokens: 3 },
                Segment { start: 500, n_tokens: 1 },
                Segment { start: 7, n_tokens: 37 },
            ],
        ),
        (5, 16, vec![Segment { start: 4095, n_tokens: 2 }]),
    ] {
        let rows: usize = segments.iter().map(|s| s.n_tokens).sum();
        let x = rng.vec(rows * heads * head_dim);
        // Llama's RoPE, and NeoX pairs with Llama 3's per-pair factors and linear scaling.
        let factors = (0..head_dim / 2).map(|i| 1.0 + (i % 5) as f32).collect();
        let scaled = Rope { theta: 500000.0, scale: 0.25, factors: Some(factors), pairs: RopePairs::Halves };
        for rope in [Rope::plain(100000.0), scaled] {
            let y =
                read(b, &b.rope(&upload(b, &x, rows, heads * head_dim), heads, &segments, &rope).expect("rope")).await;
            let tol = uniform_tol(&y, 1e-5);
            out.push(Output { name: format!("rope {:?} {heads}x{head_dim} {segments:?}", rope.pairs), values: y, tol });
        }
    }
    for (rows, cols) in [(1, 1536), (3, 100), (70, 576), (1, 1)] {
        let (g, u) = (rng.vec(rows * cols), rng.vec(rows * cols));
        let (gt, ut) = (upload(b, &g, rows, cols), upload(b, &u, rows, cols));
        for act in [Activation::Silu, Activation::GeluTanh] {
            // Gates up to ±12: GELU's cut-offs at ±10 included.
            let big = upload(b, &g.iter().map(|v| v * 12.0).collect::<Vec<_>>(), rows, cols);
            let s = read(b, &b.glu(&big, &ut, act).expect("glu")).await;
            let tol = uniform_tol(&s, 1e-6);
            out.push(Output { name: format!("glu {act:?} {rows}x{cols}"), values: s, tol });
        }
        let s = read(b, &b.scale(&gt, 24.0).expect("scale")).await;
        out.push(Output { name: format!("scale {rows}x{cols}"), tol: uniform_tol(&s, 1e-7), values: s });
        // Logits of ±2000 around a cap of 30, and −∞ (not computed) kept.
        let logits: Vec<f32> =
            g.iter().enumerate().map(|(i, v)| if i % 7 == 3 { f32::NEG_INFINITY } else { v * 2000.0 }).collect();
        let s = read(b, &b.soft_cap(&upload(b, &logits, rows, cols), 30.0).expect("soft_cap")).await;
        assert!(s.iter().zip(&logits).all(|(s, l)| (*l == f32::NEG_INFINITY) == (*s == f32::NEG_INFINITY)));
        let finite: Vec<f32> = s.iter().map(|v| v.max(-1e30)).collect();
        out.push(Output { name: format!("soft_cap {rows}x{cols}"), tol: uniform_tol(&finite, 1e-6), values: finite });
        let a = read(b, &b.add(&gt, &ut).expect("add")).await;
        let tol = uniform_tol(&a, 1e-7);
        out.push(Output { name: format!("add {rows}x{cols}"), values: a, tol });
        let pick: Vec<usize> = (0..5).map(|_| rng.below(rows)).collect();
        let sel = read(b, &b.select_rows(&gt, &pick).expect("select_rows")).await;
        out.push(Output { name: format!("select_rows {rows}x{cols}"), tol: vec![0.0; sel.len()], values: sel });
        let cat = read(b, &b.concat_rows(&[&ut, &gt, &ut]).expect("concat_rows")).await;
        out.push(Output { name: format!("concat_rows {rows}x{cols}"), tol: vec![0.0; cat.len()], values: cat });
    }
}

fn config(heads: usize, kv_heads: usize, head_dim: usize) -> AttentionShape {
    AttentionShape::full(2, heads, kv_heads, head_dim)
}

/// Attention over KV caches built up step by step: three sequences of different lengths in
/// one batch, prefill then decode, crossing 32-position pages, a truncation, both layers.
pub async fn attention_cases<B: Backend>(b: &B, out: &mut Vec<Output>) {
    let mut rng = Rng(13);
    // The last: Gemma's 256-wide heads, layer 0 seeing the last 37 positions, another score
    // scale, scores soft-capped.
    let window = Some(SlidingWindow { size: 37, pattern: 2 });
    for (n_heads, n_kv, hd, window) in [(9, 3, 64, None), (4, 4, 16, None), (2, 1, 128, None), (2, 1, 256, window)] {
        let gemma = window.is_some();
        let cfg = AttentionShape {
            window,
            scale: if gemma { 0.05 } else { 1.0 / (hd as f32).sqrt() },
            soft_cap: gemma.then_some(0.2),
            ..config(n_heads, n_kv, hd)
        };
        let mut caches: Vec<B::KvCache> = (0..3).map(|_| b.new_kv_cache(&cfg).expect("cache")).collect();
        let mut lens = [0usize; 3];
        let plan: [[usize; 3]; 5] = [[5, 40, 1], [1, 1, 1], [3, 1, 33], [1, 0, 30], [70, 2, 1]];
        for (step, adds) in plan.iter().enumerate() {
            if step == 4 {
                // Rewind sequence 0 from 10 to 4 positions, as a failed step does.
                b.truncate_kv_cache(&mut caches[0], 4).expect("truncate");
                lens[0] = 4;
            }
            let members: Vec<usize> = (0..3).filter(|&i| adds[i] > 0).collect();
            let segments: Vec<Segment> =
                members.iter().map(|&i| Segment { start: lens[i], n_tokens: adds[i] }).collect();
            let rows: usize = segments.iter().map(|s| s.n_tokens).sum();
            for layer in 0..cfg.layers {
                let q = upload(b, &rng.vec(rows * n_heads * hd), rows, n_heads * hd);
                let k = upload(b, &rng.vec(rows * n_kv * hd), rows, n_kv * hd);
                let v = upload(b, &rng.vec(rows * n_kv * hd), rows, n_kv * hd);
                let mut refs: Vec<&mut B::KvCache> = Vec::new();
                for (i, c) in caches.iter_mut().enumerate() {
                    if members.contains(&i) {
                        refs.push(c);
                    }
                }
                let y = b.attention(layer, &q, &k, &v, &mut refs, &segments, &cfg).expect("attention");
                let y = read(b, &y).await;
                let tol = uniform_tol(&y, 2e-5);
                out.push(Output {
                    name: format!("attention {n_heads}/{n_kv}x{hd} step {step} layer {layer}"),
                    values: y,
                    tol,
                });
            }
            for &i in &members {
                lens[i] += adds[i];
            }
        }
    }
}

/// Logits as `read_logits` returns them for a top-k request, with ties at the cut.
pub async fn top_k_cases<B: Backend>(b: &B, out: &mut Vec<Output>) {
    let mut rng = Rng(17);
    for (rows, vocab, k, also) in [
        (1, 1000, 1, vec![]),
        (1, 49152, 10, vec![5, 17, 49151]),
        (4, 3001, 40, vec![2, 2, 3000]),
        (2, 500, 64, vec![]),
        (3, 777, 7, vec![1, 776]),
    ] {
        let mut x = rng.vec(rows * vocab);
        // Ties: a block of equal values straddling the k-th place, and a repeated maximum.
        for i in 0..(k + 5).min(vocab) {
            x[(i * 37) % vocab] = 2.0;
        }
        x[vocab / 2] = 3.0;
        x[vocab / 3] = 3.0;
        let t = upload(b, &x, rows, vocab);
        let wanted = LogitsWanted::Top { k, also: also.clone() };
        let got = b.read_logits(&t, &wanted).await.expect("read_logits");
        assert_eq!(got.len(), rows * vocab);
        let ids = wanted.ids(&x[..vocab]);
        // What must be there is there, exactly; anything else is either −∞ or the true value.
        for r in 0..rows {
            for &id in &ids {
                let i = r * vocab + id as usize;
                assert_eq!(got[i], x[i], "row {r} id {id}: {} instead of {}", got[i], x[i]);
            }
            for i in r * vocab..(r + 1) * vocab {
                assert!(got[i] == x[i] || got[i] == f32::NEG_INFINITY, "entry {i}");
            }
        }
        let kept: Vec<f32> = ids.iter().map(|&id| got[id as usize]).collect();
        out.push(Output { name: format!("top-{k} of {rows}x{vocab}"), tol: vec![0.0; kept.len()], values: kept });
    }
}

/// The LM head for a top-k request: every row right at row 0's candidates and the extra ids
/// (against the f64 product), anything else right or −∞ (the CPU skips it in rows 1..).
pub async fn lm_head_cases<B: Backend>(b: &B, file: &GgufFile, out: &mut Vec<Output>) {
    let mut rng = Rng(23);
    for dt in DTYPES {
        let heads = if DEFAULT_MODEL_DTYPES.contains(&dt) { vec![(257, 64), (100, 64)] } else { vec![(70, 512)] };
        for (n, k) in heads {
            let name = weight_name(dt, n, k);
            let w = b.load_weight(file, file.tensor(&name).expect("tensor")).expect("load_weight");
            for rows in [1, 2, 3, 5] {
                let x = rng.vec(rows * k);
                let wanted = LogitsWanted::Top { k: 7, also: vec![0, n as u32 - 1] };
                let y = b.lm_head(&upload(b, &x, rows, k), &w, &wanted).expect("lm_head");
                let y = b.read_logits(&y, &wanted).await.expect("read_logits");
                let (want, tol) = matmul_reference(file, &name, &x, rows);
                let ids = wanted.ids(&y[..n]);
                let mut values = Vec::new();
                let mut tols = Vec::new();
                for r in 0..rows {
                    for i in 0..n {
                        let j = r * n + i;
                        let right = (y[j] - want[j]).abs() <= tol[j];
                        if ids.contains(&(i as u32)) {
                            assert!(right, "{name} rows={rows}: [{r}, {i}] = {}, f64 reference {}", y[j], want[j]);
                        } else {
                            assert!(right || y[j] == f32::NEG_INFINITY, "{name} rows={rows}: [{r}, {i}] = {}", y[j]);
                        }
                    }
                    values.extend(ids.iter().map(|&i| y[r * n + i as usize]));
                    tols.extend(ids.iter().map(|&i| tol[r * n + i as usize]));
                }
                out.push(Output { name: format!("lm_head {name} rows={rows}"), values, tol: tols });
            }
        }
    }
}

/// Compares another backend's outputs with the reference backend's, case by case.
pub fn compare(reference: &[Output], other: &[Output], label: &str) {
    assert_eq!(reference.len(), other.len(), "{label}: different numbers of cases");
    let mut worst = (0f32, String::new());
    for (r, o) in reference.iter().zip(other) {
        assert_eq!(r.name, o.name);
        assert_eq!(r.values.len(), o.values.len(), "{label} {}: lengths", r.name);
        for (i, ((a, b), t)) in r.values.iter().zip(&o.values).zip(&r.tol).enumerate() {
            let d = (a - b).abs();
            assert!(d <= *t, "{label} {}: [{i}] reference {a}, {label} {b} (|Δ| {d} > {t})", r.name);
            if *t > 0.0 && d / t > worst.0 {
                worst = (d / t, r.name.clone());
            }
        }
    }
    eprintln!(
        "{label}: {} cases agree; closest to its tolerance: {} at {:.2} of it",
        reference.len(),
        worst.1,
        worst.0
    );
}
