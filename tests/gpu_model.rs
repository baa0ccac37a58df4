//! The GPU backend on the real default model, against the CPU backend, natively (lavapipe
//! in CI): the acceptance criteria on the ten reference chats, batching, one
//! submission per decode step, PAD and sampling through the top-k readback, bad input.
#![cfg(all(not(target_arch = "wasm32"), feature = "gpu"))]

#[path = "common/model.rs"]
mod common;

use padlock::align::sampler::SamplingParams;
use padlock::align::{Method, Personalization, Preference};
use padlock::backend::gpu::{GpuBackend, GpuOptions, Kernels};
use padlock::backend::{Backend, LogitsWanted};
use padlock::generate::{Engine, GenerateOptions, Generation};
use padlock::logits::argmax;
use padlock::model::llama::Logits;
use padlock::ErrorCode;

fn gpu_engine(options: GpuOptions) -> Engine<GpuBackend> {
    let backend = pollster::block_on(GpuBackend::with_options(options))
        .expect("a WebGPU adapter (lavapipe: mesa-vulkan-drivers)");
    eprintln!("adapter: {:?}", backend.info());
    Engine::load(backend, common::model_bytes(), &mut |_| {}).expect("the default model loads on the GPU")
}

fn run<B: Backend>(engine: &Engine<B>, prompt: &str, options: &GenerateOptions) -> Vec<u32> {
    let mut gen = pollster::block_on(Generation::chat(engine, prompt, options)).expect("start");
    while pollster::block_on(gen.next()).expect("next").is_some() {}
    gen.generated().to_vec()
}

fn greedy(max_tokens: usize) -> GenerateOptions {
    GenerateOptions { max_tokens, sampling: SamplingParams::greedy(), ..Default::default() }
}

/// Free-running greedy decoding of up to `n` tokens after `prompt` (stopping at an
/// end-of-turn token): the tokens and the logits each choice was made from, one row per token.
fn greedy_with_logits<B: Backend>(engine: &Engine<B>, prompt: &[u32], n: usize) -> (Vec<u32>, Vec<f32>) {
    let model = &engine.model;
    let mut seqs = vec![model.new_sequence().expect("sequence")];
    let mut logits = pollster::block_on(model.forward_batch(&mut seqs, &[prompt])).expect("prefill");
    let (mut tokens, mut rows) = (Vec::new(), Vec::new());
    while tokens.len() < n {
        let next = argmax(&logits);
        if engine.tokenizer.is_stop_token(next) {
            break;
        }
        tokens.push(next);
        rows.extend_from_slice(&logits);
        if tokens.len() < n {
            logits = pollster::block_on(model.forward_batch(&mut seqs, &[&[next]])).expect("step");
        }
    }
    (tokens, rows)
}

/// The reference chats a software adapter runs: the four shortest (150 prompt tokens and 68
/// decode steps of the 380 and 343 of all ten), because lavapipe decodes about 1.4-3.6 tokens
/// a second and CI has two cores. A GPU, or `PADLOCK_GPU_ALL_CHATS=1`, runs all ten.
const SOFTWARE_ADAPTER_CHATS: [usize; 4] = [0, 3, 6, 7];

/// The acceptance test: with the CPU backend's greedy tokens forced, the GPU's top-1
/// agrees at ≥ 99% of positions and its logits are within 0.05 of the CPU's; free-running
/// greedy answers are the same on at least 80% of the chats (8 of 10). While the two free
/// runs choose the same tokens, the GPU's run *is* the forced one; from the first difference
/// on, the GPU is fed the CPU's tokens.
#[test]
fn reference_chats_agree_with_the_cpu() {
    let cpu = common::engine();
    let gpu = gpu_engine(GpuOptions::default());
    let vocab = cpu.model.config.vocab_size;
    let (mut same_top1, mut positions, mut max_diff, mut same_text) = (0usize, 0usize, 0f32, 0usize);
    let all = common::fixture()["chat"].as_array().expect("chats").clone();
    let software = gpu.model.backend().info().device_type == "cpu";
    let chats: Vec<(usize, &serde_json::Value)> = if software && std::env::var_os("PADLOCK_GPU_ALL_CHATS").is_none() {
        SOFTWARE_ADAPTER_CHATS.iter().map(|&i| (i, &all[i])).collect()
    } else {
        all.iter().enumerate().collect()
    };
    for &(i, chat) in &chats {
        let prompt: Vec<u32> = serde_json::from_value(chat["prompt_ids"].clone()).expect("prompt ids");
        let n = chat["greedy_ids"].as_array().expect("ids").len();
        let (cpu_tokens, c) = greedy_with_logits(&cpu, &prompt, n);
        let (gpu_tokens, mut g) = greedy_with_logits(&gpu, &prompt, n);
        same_text += (cpu_tokens == gpu_tokens) as usize;
        let agree = cpu_tokens.iter().zip(&gpu_tokens).take_while(|(a, b)| a == b).count();
        g.truncate(agree * vocab);
        if agree < cpu_tokens.len() {
            // Teacher-force the rest: the prompt and the CPU's tokens, logits at each of them.
            let model = &gpu.model;
            let mut seq = model.new_sequence().expect("sequence");
            let context: Vec<u32> = prompt.iter().chain(&cpu_tokens[..cpu_tokens.len() - 1]).copied().collect();
            let all = pollster::block_on(model.forward_one(&mut seq, &context, Logits::All)).expect("forced");
            g.extend_from_slice(&all[(prompt.len() - 1 + agree) * vocab..]);
        }
        assert_eq!(c.len(), g.len());
        let mut chat_diff = 0f32;
        for (cr, gr) in c.chunks(vocab).zip(g.chunks(vocab)) {
            same_top1 += (argmax(cr) == argmax(gr)) as usize;
            positions += 1;
            chat_diff = cr.iter().zip(gr).map(|(a, b)| (a - b).abs()).fold(chat_diff, f32::max);
        }
        max_diff = max_diff.max(chat_diff);
        eprintln!(
            "chat {i}: {} tokens, greedy {}, max |Δlogit| {chat_diff:.5}",
            cpu_tokens.len(),
            if cpu_tokens == gpu_tokens {
                "equal".to_string()
            } else {
                format!("differs: {:?}", gpu.tokenizer.decode(&gpu_tokens))
            }
        );
    }
    let top1 = same_top1 as f64 / positions as f64;
    let n = chats.len();
    eprintln!("GPU vs CPU: top-1 {same_top1}/{positions} ({top1:.4}), max |Δlogit| {max_diff:.5}, greedy text equal on {same_text}/{n}");
    assert!(top1 >= 0.99, "top-1 agreement {top1}");
    assert!(max_diff <= 0.05, "max |Δlogit| {max_diff}");
    assert!(same_text * 10 >= n * 8, "greedy text equal on {same_text} of {n} chats");
}

/// A batched step of four different sequences gives the logits of four separate runs, on
/// both kernel families (the per-thread one is what lavapipe gets by default).
#[test]
fn a_batched_step_of_four_equals_four_separate_runs() {
    for kernels in [Kernels::PerThread, Kernels::Workgroup] {
        let engine = gpu_engine(GpuOptions { kernels, ..Default::default() });
        let model = &engine.model;
        let prompts: Vec<Vec<u32>> = ["The capital of France is", "Once upon a time,", "2 + 2 =", "Write a haiku."]
            .iter()
            .map(|p| engine.tokenizer.encode(p).expect("encode"))
            .collect();
        let next = [279u32, 1035, 216, 42];
        let vocab = model.config.vocab_size;
        let mut seqs: Vec<_> = (0..4).map(|_| model.new_sequence().expect("seq")).collect();
        let refs: Vec<&[u32]> = prompts.iter().map(|p| p.as_slice()).collect();
        let prefill = pollster::block_on(model.forward_batch(&mut seqs, &refs)).expect("batched prefill");
        let steps: Vec<[u32; 1]> = next.iter().map(|&t| [t]).collect();
        let step_refs: Vec<&[u32]> = steps.iter().map(|t| t.as_slice()).collect();
        let step = pollster::block_on(model.forward_batch(&mut seqs, &step_refs)).expect("batched step");
        for i in 0..4 {
            let mut alone = model.new_sequence().expect("seq");
            let p = pollster::block_on(model.forward_one(&mut alone, &prompts[i], Logits::Last)).expect("prefill");
            let s = pollster::block_on(model.forward_one(&mut alone, &[next[i]], Logits::Last)).expect("step");
            assert_close(&prefill[i * vocab..][..vocab], &p, 1e-4, &format!("{kernels:?} prefill {i}"));
            assert_close(&step[i * vocab..][..vocab], &s, 1e-4, &format!("{kernels:?} step {i}"));
        }
    }
}

/// A decode step is one command submission; count its dispatches (13 per layer + 5, plus the
/// value heads' row selection, products and concatenation when a context has a head).
#[test]
fn a_decode_step_is_one_submission() {
    let engine = gpu_engine(GpuOptions::default());
    engine.load_head("concise", &common::shipped_head_any_context("concise")).expect("head");
    let layers = engine.model.config.n_layers as u64;
    const STEPS: usize = 3;
    let pad = |preferences: Vec<Preference>| GenerateOptions {
        max_tokens: STEPS + 2,
        sampling: SamplingParams::greedy(),
        personalization: Personalization { method: Method::Pad, preferences, ..Default::default() },
        ..Default::default()
    };
    let headed = Preference { head: Some("concise".into()), ..Preference::new("Be brief.", 1.0) };
    for (label, options, with_heads) in [
        ("plain", greedy(STEPS + 2), false),
        (
            "PAD with two preferences",
            pad(vec![Preference::new("Be brief.", 1.0), Preference::new("Be warm.", 0.5)]),
            false,
        ),
        ("PAD with a value head", pad(vec![headed]), true),
    ] {
        // The prompts cut to their last four tokens: a step's work does not depend on them, and
        // a software adapter's prefill is slow (about 1.4 tokens/s on lavapipe).
        let contexts = engine.contexts("Tell me about the moon.", &options).expect("contexts");
        let short = contexts.iter().map(|c| c[c.len() - 4..].to_vec()).collect();
        let mut gen = pollster::block_on(Generation::start(&engine, short, &options)).expect("start");
        // The first token comes from the prefill's logits; each later one needs a forward step.
        pollster::block_on(gen.next()).expect("first").expect("a token");
        for step in 0..STEPS {
            let before = engine.model.backend().stats();
            pollster::block_on(gen.next()).expect("next").expect("a token");
            let after = engine.model.backend().stats();
            let (submissions, dispatches) =
                (after.submissions - before.submissions, after.dispatches - before.dispatches);
            let created = after.bind_groups_created - before.bind_groups_created;
            eprintln!(
                "{label} step {step}: {submissions} submission(s), {dispatches} dispatches, {created} new bind groups"
            );
            assert_eq!(submissions, 1, "{label}");
            // A head adds a row selection per context (base, preference, harmlessness) and
            // its product; the concatenation is buffer copies.
            let extra = if with_heads { 3 + 1 } else { 0 };
            assert_eq!(dispatches, 13 * layers + 5 + extra, "{label}");
            // With a head the pool hands its buffers out in a shifting order, so some bind
            // groups are still new in later steps (about 60 a step; see BENCHMARKS.md).
            if step == STEPS - 1 && !with_heads {
                // Steady state: same buffers, same arena offsets, so every bind group is cached.
                assert_eq!(created, 0, "{label}: bind groups were created in a steady decode step");
            }
        }
    }
}

/// Sampling (top-k, top-p, repetition penalty) reads back only the top-k on the GPU and
/// still chooses what the CPU chooses from all logits.
#[test]
fn sampling_chooses_the_cpu_tokens() {
    let cpu = common::engine();
    let gpu = gpu_engine(GpuOptions::default());
    let sampled = GenerateOptions {
        max_tokens: 24,
        sampling: SamplingParams {
            temperature: 0.7,
            top_p: 0.9,
            top_k: 40,
            repetition_penalty: 1.1,
            seed: 7,
            ..Default::default()
        },
        ..Default::default()
    };
    let (c, g) = (run(&cpu, "How do I boil an egg?", &sampled), run(&gpu, "How do I boil an egg?", &sampled));
    eprintln!("sampled: {:?}", gpu.tokenizer.decode(&g));
    assert_eq!(c, g, "the GPU sampled other tokens than the CPU");
}

/// PAD on the GPU (base, preference and harmlessness contexts in one batched step, trained
/// value heads on the PersRM contexts, only the candidates read back) chooses the CPU's
/// tokens: one and two preferences, with and without heads, over three short prompts.
#[test]
fn pad_with_value_heads_chooses_the_cpu_tokens() {
    let cpu = common::engine();
    let gpu = gpu_engine(GpuOptions::default());
    for name in ["concise", "child"] {
        let bytes = common::shipped_head_any_context(name);
        cpu.load_head(name, &bytes).expect("head on the CPU");
        gpu.load_head(name, &bytes).expect("head on the GPU");
    }
    let with_head = |text: &str, weight: f32, head: Option<&str>| Preference {
        head: head.map(String::from),
        ..Preference::new(text, weight)
    };
    let cases = [
        ("How do I boil an egg?", vec![with_head("Keep the answer very short.", 1.0, Some("concise"))]),
        (
            "Why is the sky blue?",
            vec![
                with_head("Keep it short.", 1.0, Some("concise")),
                with_head("Explain it to a child.", 0.7, Some("child")),
            ],
        ),
        (
            "Name a fruit.",
            vec![
                with_head("Be warm and friendly.", 1.0, None),
                with_head("Explain it to a child.", 0.5, Some("child")),
            ],
        ),
    ];
    for (prompt, preferences) in cases {
        // Short contexts (the preference as a short system message, not the guideline
        // template under the default one): lavapipe's prefill is the slow part.
        let options = GenerateOptions {
            max_tokens: 12,
            sampling: SamplingParams { repetition_penalty: 1.1, ..SamplingParams::greedy() },
            system: Some("Hi.".into()),
            personalization: Personalization {
                method: Method::Pad,
                preferences,
                beta: 1.5,
                persrm_context: padlock::align::ContextStyle::System,
                ..Default::default()
            },
            ..Default::default()
        };
        let (c, g) = (run(&cpu, prompt, &options), run(&gpu, prompt, &options));
        eprintln!("PAD {prompt:?}: {:?}", gpu.tokenizer.decode(&g));
        assert_eq!(c, g, "PAD on {prompt:?}: the GPU chose other tokens than the CPU");
    }
}

/// Value heads (PAD's PersRM) on the GPU give the CPU's logits.
#[test]
fn value_heads_match_the_cpu() {
    let cpu = common::engine();
    let gpu = gpu_engine(GpuOptions::default());
    let h = cpu.model.config.hidden;
    // Identity plus a small deterministic perturbation.
    let head: Vec<f32> =
        (0..h * h).map(|i| if i % (h + 1) == 0 { 1.0 } else { ((i * 7919) % 13) as f32 * 1e-3 - 6e-3 }).collect();
    let ids = cpu.tokenizer.encode("Tell me about the sea.").expect("encode");
    let logits = |e: &dyn Fn(&[u32]) -> Vec<f32>| e(&ids);
    let on_cpu = logits(&|ids| {
        let mut s = cpu.model.new_sequence_with_head(Some(cpu.model.value_head(&head).unwrap())).unwrap();
        pollster::block_on(cpu.model.forward_one(&mut s, ids, Logits::All)).unwrap()
    });
    let on_gpu = logits(&|ids| {
        let mut s = gpu.model.new_sequence_with_head(Some(gpu.model.value_head(&head).unwrap())).unwrap();
        pollster::block_on(gpu.model.forward_one(&mut s, ids, Logits::All)).unwrap()
    });
    assert_close(&on_cpu, &on_gpu, 0.05, "value head");
}

#[test]
fn bad_input_is_a_typed_error_and_changes_nothing() {
    let engine = gpu_engine(GpuOptions::default());
    common::bad_input_changes_nothing(&engine, 1e-3);
    // Only the top-k may be read back: the wanted entries are exact, the rest −∞.
    let model = &engine.model;
    let mut fresh = model.new_sequence().unwrap();
    let expect = pollster::block_on(model.forward_one(&mut fresh, &[1, 2, 3, 4], Logits::Last)).unwrap();
    let mut seqs = vec![model.new_sequence().unwrap()];
    let top = pollster::block_on(model.forward_batch_wanting(
        &mut seqs,
        &[&[1, 2, 3, 4]],
        &LogitsWanted::Top { k: 5, also: vec![7] },
    ))
    .unwrap();
    let finite: Vec<usize> = (0..top.len()).filter(|&i| top[i].is_finite()).collect();
    assert_eq!(finite.len(), 6);
    for i in finite {
        assert!((top[i] - expect[i]).abs() < 1e-3);
    }
}

/// A model that does not fit the adapter's limits is a clear GPU_LIMITS error at load.
#[test]
fn a_model_beyond_the_adapter_limits_is_a_typed_error() {
    let backend = pollster::block_on(GpuBackend::with_options(GpuOptions {
        max_storage_binding: Some(16 << 20),
        ..Default::default()
    }))
    .expect("adapter");
    let err =
        Engine::load(backend, common::model_bytes(), &mut |_| {}).err().expect("the 28 MB embedding cannot be bound");
    assert_eq!(err.code, ErrorCode::GpuLimits);
    assert!(err.message.contains("token_embd.weight"), "{}", err.message);
}

fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    let max = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(max <= tol, "{what}: max |difference| {max} > {tol}");
}
