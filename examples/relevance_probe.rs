//! Can the model's own hidden states tell which preferences apply to a request? Reproduces the
//! figures in EVAL.md ("Relevance: why not the model's hidden states"):
//!
//!     cargo run --release --example relevance_probe -- mean|eol|topic
//!
//! Each preference and request of `tests/fixtures/relevance_*.tsv` (the first table) becomes the
//! final normed hidden state of the default model — averaged over the text (`mean`), or the
//! last token of a prompt asking for its meaning (`eol`) or its topic (`topic`) — centred and
//! compared by cosine; over the preferences that apply to some requests and not others, the
//! area under the ROC curve and the best F1 threshold.
#[cfg(not(target_arch = "wasm32"))]
fn main() {
    native::main()
}
#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;

    use padlock::backend::cpu::CpuBackend;
    use padlock::generate::Engine;
    use padlock::model::llama::Logits;

    fn norm(v: &mut [f32]) {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-9);
        v.iter_mut().for_each(|x| *x /= n);
    }

    fn embed(engine: &Engine<CpuBackend>, text: &str, mode: &str) -> Vec<f32> {
        let h = engine.model.config.hidden;
        let wrapped = match mode {
            "eol" => format!("This sentence : \"{text}\" means in one word:\""),
            "topic" => format!("Text: {text}\nThe topic of this text in one word:"),
            _ => text.to_string(),
        };
        let ids = engine.tokenizer.encode(&wrapped).unwrap();
        let mut seq = engine.model.new_sequence().unwrap();
        let x = pollster::block_on(engine.model.forward_one(&mut seq, &ids, Logits::Hidden)).unwrap();
        let n = x.len() / h;
        let mut v = vec![0f32; h];
        if mode == "mean" {
            for r in 0..n {
                for j in 0..h {
                    v[j] += x[r * h + j] / n as f32;
                }
            }
        } else {
            v.copy_from_slice(&x[(n - 1) * h..n * h]);
        }
        v
    }

    pub fn main() {
        let mode = std::env::args().nth(1).unwrap_or("mean".into());
        let bytes = std::fs::read("models/SmolLM2-135M-Instruct.Q4_1.gguf").unwrap();
        let engine = Engine::load(CpuBackend::new(), Arc::new(bytes), &mut |_| {}).unwrap();
        let profiles = std::fs::read_to_string("tests/fixtures/relevance_profiles.tsv").unwrap();
        let cases = std::fs::read_to_string("tests/fixtures/relevance_cases.tsv").unwrap();
        let mut prefs: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for l in profiles.lines().skip(1) {
            let f: Vec<&str> = l.split('\t').collect();
            prefs.entry(f[0].into()).or_default().push((f[1].into(), f[3].into()));
        }
        let mut pe: BTreeMap<(String, String), Vec<f32>> = BTreeMap::new();
        for (p, list) in &prefs {
            for (id, text) in list {
                pe.insert((p.clone(), id.clone()), embed(&engine, text, &mode));
            }
        }
        // centre over all texts (removes the common direction)
        let mut rows: Vec<(String, String, Vec<f32>, BTreeSet<String>)> = Vec::new();
        for l in cases.lines().skip(1) {
            let f: Vec<&str> = l.split('\t').collect();
            let rel: BTreeSet<String> = f[3].split(',').filter(|s| *s != "-").map(|s| s.to_string()).collect();
            rows.push((f[0].into(), f[2].into(), embed(&engine, f[2], &mode), rel));
        }
        let h = engine.model.config.hidden;
        let mut mean = vec![0f32; h];
        let all: Vec<&Vec<f32>> = pe.values().chain(rows.iter().map(|r| &r.2)).collect();
        for v in &all {
            for j in 0..h {
                mean[j] += v[j] / all.len() as f32;
            }
        }
        let c = |v: &Vec<f32>| {
            let mut w: Vec<f32> = v.iter().zip(&mean).map(|(a, b)| a - b).collect();
            norm(&mut w);
            w
        };
        let mut scored = Vec::new();
        // Only preferences that are relevant to some requests and not others (topic-bound).
        let bound = |p: &String, id: &String| {
            let mine: Vec<_> = rows.iter().filter(|r| &r.0 == p).collect();
            mine.iter().any(|r| r.3.contains(id)) && mine.iter().any(|r| !r.3.contains(id))
        };
        for (p, _, v, rel) in &rows {
            let q = c(v);
            for (id, _) in &prefs[p] {
                if !bound(p, id) {
                    continue;
                }
                let e = c(&pe[&(p.clone(), id.clone())]);
                let s: f32 = q.iter().zip(&e).map(|(a, b)| a * b).sum();
                scored.push((s, rel.contains(id)));
            }
        }
        // best threshold by F1, and AUC
        let pos = scored.iter().filter(|s| s.1).count();
        let neg = scored.len() - pos;
        let mut auc = 0.0;
        for a in scored.iter().filter(|s| s.1) {
            for b in scored.iter().filter(|s| !s.1) {
                auc += if a.0 > b.0 {
                    1.0
                } else if a.0 == b.0 {
                    0.5
                } else {
                    0.0
                };
            }
        }
        println!("mode {mode}: {pos} relevant / {neg} not; AUC {:.3}", auc / (pos * neg) as f64);
        let mut best = (0.0, 0.0, 0.0, 0.0);
        for t in (-50..100).map(|i| i as f32 / 100.0) {
            let tp = scored.iter().filter(|s| s.1 && s.0 >= t).count() as f32;
            let fp = scored.iter().filter(|s| !s.1 && s.0 >= t).count() as f32;
            let p = tp / (tp + fp).max(1.0);
            let r = tp / pos as f32;
            let f1 = 2.0 * p * r / (p + r).max(1e-9);
            if f1 > best.0 {
                best = (f1, t, p, r);
            }
        }
        println!("best F1 {:.3} at {:.2}: precision {:.3} recall {:.3}", best.0, best.1, best.2, best.3);
    }
}
