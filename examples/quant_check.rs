//! One GGUF file against llama.cpp's answers for it and an exact float64 forward pass of it
//! (both written by `scripts/quant_types.py answers`): greedy tokens on the ten reference
//! chats, teacher-forced top-1, and, with `--gpu`, the GPU backend against the CPU backend.
//!
//!     cargo run --release --features gpu --example quant_check -- MODEL.gguf LLAMACPP.json F64.json [--gpu]
//!
//! Prints one JSON line; `make test-models` collects them.

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    check::main()
}

#[cfg(not(target_arch = "wasm32"))]
mod check {
    use std::sync::Arc;

    use padlock::backend::cpu::CpuBackend;
    use padlock::backend::Backend;
    use padlock::generate::Engine;
    use padlock::logits::argmax;
    use serde_json::{json, Value};

    /// Greedy tokens must equal llama.cpp's for this many tokens (or all of them, if it stopped sooner).
    const GREEDY_PREFIX: usize = 32;

    fn read_json(path: &str) -> Value {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn ids(v: &Value) -> Vec<u32> {
        serde_json::from_value(v.clone()).expect("token ids")
    }

    /// Our greedy tokens after `prompt`, as many as `n`, never stopping early.
    fn greedy<B: Backend>(engine: &Engine<B>, prompt: &[u32], n: usize) -> Vec<u32> {
        let model = &engine.model;
        let mut seqs = vec![model.new_sequence().expect("sequence")];
        let mut logits = pollster::block_on(model.forward_batch(&mut seqs, &[prompt])).expect("prefill");
        let mut out = Vec::new();
        while out.len() < n {
            let next = argmax(&logits);
            out.push(next);
            if out.len() < n {
                logits = pollster::block_on(model.forward_batch(&mut seqs, &[&[next]])).expect("step");
            }
        }
        out
    }

    /// Argmax at every generated position of `prompt + generated`, teacher-forced.
    fn forced<B: Backend>(engine: &Engine<B>, prompt: &[u32], generated: &[u32]) -> Vec<u32> {
        let vocab = engine.model.config.vocab_size;
        let all: Vec<u32> = prompt.iter().chain(generated).copied().collect();
        let logits = pollster::block_on(engine.logits_all(&all)).expect("logits");
        (0..generated.len()).map(|j| argmax(&logits[(prompt.len() - 1 + j) * vocab..][..vocab])).collect()
    }

    fn share(same: usize, total: usize) -> f64 {
        same as f64 / total.max(1) as f64
    }

    pub fn main() {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let [model, llamacpp, f64_ref] = [0, 1, 2].map(|i| args.get(i).cloned().expect("MODEL LLAMACPP.json F64.json"));
        let bytes = Arc::new(std::fs::read(&model).unwrap_or_else(|e| panic!("{model}: {e}")));
        let cpu = Engine::load(CpuBackend::new(), bytes.clone(), &mut |_| {}).expect("loads on the CPU");
        let (llamacpp, f64_ref) = (read_json(&llamacpp), read_json(&f64_ref));
        let chats = llamacpp["chat"].as_array().expect("chats");
        let exact = f64_ref["chat"].as_array().expect("chats");

        let (mut greedy_ok, mut prefixes) = (0, Vec::new());
        let (mut same, mut total) = (0, 0);
        let mut cpu_forced = Vec::new();
        for (chat, exact) in chats.iter().zip(exact) {
            let (prompt, theirs) = (ids(&chat["prompt_ids"]), ids(&chat["greedy_ids"]));
            let ours = greedy(&cpu, &prompt, theirs.len());
            let prefix = ours.iter().zip(&theirs).take_while(|(a, b)| a == b).count();
            greedy_ok += usize::from(prefix >= GREEDY_PREFIX.min(theirs.len()));
            prefixes.push(prefix);
            let top1 = forced(&cpu, &prompt, &theirs);
            same += top1.iter().zip(ids(&exact["argmax"])).filter(|(a, b)| **a == *b).count();
            total += top1.len();
            cpu_forced.push((prompt, theirs, top1));
        }
        let mut out = json!({
            "model": std::path::Path::new(&model).file_name().map(|n| n.to_string_lossy().to_string()),
            "chats": chats.len(),
            "greedy_chats_matching_32": greedy_ok,
            "greedy_prefixes": prefixes,
            "top1_vs_f64": share(same, total),
            "positions": total,
        });
        if args.iter().any(|a| a == "--gpu") {
            out["gpu_top1_vs_cpu"] = gpu_against_cpu(bytes, &cpu_forced);
        }
        println!("{out}");
    }

    #[cfg(feature = "gpu")]
    fn gpu_against_cpu(bytes: Arc<Vec<u8>>, cpu_forced: &[(Vec<u32>, Vec<u32>, Vec<u32>)]) -> Value {
        use padlock::backend::gpu::GpuBackend;
        let backend = pollster::block_on(GpuBackend::new()).expect("a WebGPU adapter");
        let gpu = match Engine::load(backend, bytes, &mut |_| {}) {
            Ok(gpu) => gpu,
            Err(e) => return json!(format!("{}: {}", e.code.as_str(), e.message)),
        };
        // A software adapter (lavapipe) prefills about 1.4 tokens a second: two chats there.
        let software = gpu.model.backend().info().device_type == "cpu";
        let chats = if software && std::env::var_os("PADLOCK_GPU_ALL_CHATS").is_none() { 2 } else { cpu_forced.len() };
        let (mut same, mut total) = (0, 0);
        for (prompt, theirs, cpu_top1) in &cpu_forced[..chats.min(cpu_forced.len())] {
            let top1 = forced(&gpu, prompt, theirs);
            same += top1.iter().zip(cpu_top1).filter(|(a, b)| a == b).count();
            total += top1.len();
        }
        json!({ "top1": share(same, total), "positions": total, "adapter": gpu.model.backend().info().name })
    }

    #[cfg(not(feature = "gpu"))]
    fn gpu_against_cpu(_: Arc<Vec<u8>>, _: &[(Vec<u32>, Vec<u32>, Vec<u32>)]) -> Value {
        json!("built without the gpu feature")
    }
}
