//! The CPU forward pass against llama.cpp's answers for the same file
//! (tests/fixtures/smollm2-135m-instruct-q4_1.llamacpp.json), plus the properties the
//! rest of the runtime relies on: batching and KV caching change no logits, bad input
//! changes nothing.
// Native only (the model file, threads or a native GPU); nothing to build on wasm32.
#![cfg(not(target_arch = "wasm32"))]

#[path = "common/model.rs"]
mod common;

use common::{engine, fixture};
use padlock::align::sampler::SamplingParams;
use padlock::backend::Backend;
use padlock::generate::{GenerateOptions, Generation};
use padlock::logits::{argmax, LogitsWanted};
use padlock::model::llama::Logits;
use padlock::ErrorCode;

/// Teacher-forced logits at every generated position of every reference chat.
struct Forced {
    /// Per chat: our argmax at each generated position.
    argmax: Vec<Vec<u32>>,
    /// Per chat, per recorded position: our logits for the recorded top-20 ids.
    top20: Vec<Vec<Vec<f32>>>,
}

fn teacher_forced() -> Forced {
    let engine = engine();
    let vocab = engine.model.config.vocab_size;
    let (mut argmax_all, mut top20_all) = (Vec::new(), Vec::new());
    for chat in fixture()["chat"].as_array().unwrap() {
        let prompt: Vec<u32> = serde_json::from_value(chat["prompt_ids"].clone()).unwrap();
        let greedy: Vec<u32> = serde_json::from_value(chat["greedy_ids"].clone()).unwrap();
        let ids: Vec<u32> = prompt.iter().chain(&greedy).copied().collect();
        let logits = pollster::block_on(engine.logits_all(&ids)).unwrap();
        // Row p holds the prediction for token p + 1.
        let row = |j: usize| &logits[(prompt.len() - 1 + j) * vocab..][..vocab];
        argmax_all.push((0..greedy.len()).map(|j| argmax(row(j))).collect());
        let recorded = chat["top20_logits_first_positions"].as_array().unwrap();
        top20_all.push(
            recorded
                .iter()
                .enumerate()
                .map(|(j, top)| {
                    top.as_array().unwrap().iter().map(|p| row(j)[p[0].as_u64().unwrap() as usize]).collect()
                })
                .collect(),
        );
    }
    Forced { argmax: argmax_all, top20: top20_all }
}

/// (share of positions where `ours` equals `theirs`, max |logit difference| over the recorded top-20).
fn agreement(forced: &Forced, reference: &serde_json::Value, ids_key: &str) -> (f64, f32) {
    let (mut same, mut total, mut max_diff) = (0, 0, 0f32);
    for (i, chat) in reference["chat"].as_array().unwrap().iter().enumerate() {
        let theirs: Vec<u32> = serde_json::from_value(chat[ids_key].clone()).unwrap();
        assert_eq!(theirs.len(), forced.argmax[i].len());
        same += theirs.iter().zip(&forced.argmax[i]).filter(|(a, b)| a == b).count();
        total += theirs.len();
        for (j, top) in chat["top20_logits_first_positions"].as_array().unwrap().iter().enumerate() {
            for (pair, ours) in top.as_array().unwrap().iter().zip(&forced.top20[i][j]) {
                max_diff = max_diff.max((ours - pair[1].as_f64().unwrap() as f32).abs());
            }
        }
    }
    (same as f64 / total as f64, max_diff)
}

/// The f32 CPU path against an exact float64 forward pass written independently
/// (scripts/reference_logits.py: numpy, weights dequantized by llama.cpp's `gguf` package).
#[test]
fn teacher_forced_logits_match_exact_reference() {
    let forced = teacher_forced();
    let exact: serde_json::Value = common::fixture_file("smollm2-135m-instruct-q4_1.f64.json");
    let (top1, max_diff) = agreement(&forced, &exact, "argmax");
    eprintln!("against exact f64: top-1 agreement {top1:.4}, max |Δlogit| {max_diff:.4}");
    assert!(top1 >= 0.995, "top-1 agreement with the exact computation is {top1}");
    assert!(max_diff <= 0.01, "max |Δlogit| against the exact computation is {max_diff}");
}

/// Against llama.cpp on the same file. llama.cpp multiplies against 8-bit activations, so
/// its logits are themselves off the exact computation: the exact float64 pass agrees with
/// its greedy tokens at 339 of 347 positions (97.7%) and differs by up to 0.75 on the
/// recorded logits. An f32 implementation can only match that, and ours does (the
/// figures are checked here, with a margin for f32 rounding).
#[test]
fn teacher_forced_logits_match_llama_cpp() {
    let forced = teacher_forced();
    let (top1, max_diff) = agreement(&forced, &fixture(), "greedy_ids");
    eprintln!("against llama.cpp: top-1 agreement {top1:.4}, max |Δlogit| over recorded top-20 {max_diff:.3}");
    assert!(top1 >= 0.975, "top-1 agreement with llama.cpp is {top1}");
    assert!(max_diff <= 0.76, "max |Δlogit| against llama.cpp is {max_diff}");
}

#[test]
fn greedy_answer_names_berlin() {
    let engine = engine();
    let options = GenerateOptions { max_tokens: 32, sampling: SamplingParams::greedy(), ..Default::default() };
    let mut gen = pollster::block_on(Generation::chat(&engine, "What is the capital of Germany?", &options)).unwrap();
    while pollster::block_on(gen.next()).unwrap().is_some() {}
    let text = gen.text().unwrap();
    assert!(text.contains("Berlin"), "answer: {text:?}");
}

#[test]
fn batch_and_kv_cache_change_no_logits() {
    let engine = engine();
    let model = &engine.model;
    let a = engine.tokenizer.encode("The capital of France is").unwrap();
    let b = engine.tokenizer.encode("Once upon a time, in a land far away, there lived").unwrap();
    let one_pass = |ids: &[u32]| {
        let mut s = model.new_sequence().unwrap();
        pollster::block_on(model.forward_one(&mut s, ids, Logits::Last)).unwrap()
    };
    let (ra, rb) = (one_pass(&a), one_pass(&b));

    // Token by token through the KV cache gives the same last logits as one prefill.
    let mut s = model.new_sequence().unwrap();
    let mut last = Vec::new();
    for &t in &a {
        last = pollster::block_on(model.forward_one(&mut s, &[t], Logits::Last)).unwrap();
    }
    assert_close(&last, &ra, 2e-3);

    // Two different sequences in one batch give what each gives alone.
    let (mut sa, mut sb) = (model.new_sequence().unwrap(), model.new_sequence().unwrap());
    let both = model.forward(&mut [&mut sa, &mut sb], &[&a, &b], Logits::Last).unwrap();
    let both = pollster::block_on(model.backend().read(&both)).unwrap();
    let vocab = model.config.vocab_size;
    assert_close(&both[..vocab], &ra, 2e-3);
    assert_close(&both[vocab..], &rb, 2e-3);
}

/// A PAD step asks for row 0's top-k (and a few more ids); the CPU backend then computes
/// the other rows' LM head only at those ids. There they must equal the full product's
/// logits (up to the summation order of a kernel tile of another width); elsewhere they are
/// not computed at all.
#[test]
fn a_top_k_request_computes_the_other_rows_only_at_row_0s_candidates() {
    let engine = engine();
    let model = &engine.model;
    let vocab = model.config.vocab_size;
    let prompts = ["The capital of France is", "Once upon a time, there lived", "Explain the sea to a child."];
    let ids: Vec<Vec<u32>> = prompts.iter().map(|p| engine.tokenizer.encode(p).unwrap()).collect();
    let tokens: Vec<&[u32]> = ids.iter().map(|v| v.as_slice()).collect();
    let run = |wanted: &LogitsWanted| {
        let mut seqs: Vec<_> = (0..prompts.len()).map(|_| model.new_sequence().unwrap()).collect();
        pollster::block_on(model.forward_batch_wanting(&mut seqs, &tokens, wanted)).unwrap()
    };
    let full = run(&LogitsWanted::All);
    let wanted = LogitsWanted::Top { k: 10, also: vec![2, 0] };
    let top = run(&wanted);
    assert_close(&top[..vocab], &full[..vocab], 1e-4);
    let want: std::collections::HashSet<u32> = wanted.ids(&top[..vocab]).into_iter().collect();
    assert_eq!(want, wanted.ids(&full[..vocab]).into_iter().collect(), "the same candidates");
    for r in 1..prompts.len() {
        for i in 0..vocab {
            let (got, reference) = (top[r * vocab + i], full[r * vocab + i]);
            if want.contains(&(i as u32)) {
                assert!(
                    (got - reference).abs() <= 1e-4 * (1.0 + reference.abs()),
                    "row {r} id {i}: {got} vs {reference}"
                );
            } else {
                assert!(got == f32::NEG_INFINITY, "row {r} id {i} was computed ({got}) though not wanted");
            }
        }
    }
}

#[test]
fn value_heads_apply_to_their_own_sequence_only() {
    let engine = engine();
    let model = &engine.model;
    let h = model.config.hidden;
    let ids = engine.tokenizer.encode("Tell me about the sea.").unwrap();
    let run = |heads: [Option<padlock::model::llama::ValueHead<_>>; 2], which| {
        let [h0, h1] = heads;
        let (mut a, mut b) = (model.new_sequence_with_head(h0).unwrap(), model.new_sequence_with_head(h1).unwrap());
        let out = model.forward(&mut [&mut a, &mut b], &[&ids, &ids], which).unwrap();
        pollster::block_on(model.backend().read(&out)).unwrap()
    };
    let identity: Vec<f32> = (0..h * h).map(|i| if i % (h + 1) == 0 { 1.0 } else { 0.0 }).collect();
    // W = 2·I doubles the normed hidden state, hence every logit (the LM head is linear).
    let double: Vec<f32> = identity.iter().map(|v| 2.0 * v).collect();
    let (id, dbl) = (model.value_head(&identity).unwrap(), model.value_head(&double).unwrap());
    let vocab = model.config.vocab_size;
    for which in [Logits::Last, Logits::All] {
        let plain = run([None, None], which);
        assert_close(&run([None, Some(id.clone())], which), &plain, 1e-4);
        let doubled = run([None, Some(dbl.clone())], which);
        let half = plain.len() / 2;
        assert_close(&doubled[..half], &plain[..half], 1e-4);
        let twice: Vec<f32> = plain[half..].iter().map(|v| 2.0 * v).collect();
        assert_close(&doubled[half..], &twice, 1e-3);
        assert_eq!(plain.len() % vocab, 0);
    }
    assert_eq!(model.value_head(&identity[1..]).err().unwrap().code, ErrorCode::InvalidArgument);
    let mut bad = identity.clone();
    bad[5] = f32::NAN;
    assert_eq!(model.value_head(&bad).err().unwrap().code, ErrorCode::InvalidArgument);
}

#[test]
fn bad_input_is_a_typed_error_and_changes_nothing() {
    common::bad_input_changes_nothing(&engine(), 2e-3);
}

#[test]
fn seeded_sampling_is_reproducible() {
    let engine = engine();
    let run = |seed| {
        let sampling = SamplingParams { temperature: 0.9, top_p: 0.95, seed, ..Default::default() };
        let options = GenerateOptions { max_tokens: 24, sampling, ..Default::default() };
        let mut gen =
            pollster::block_on(Generation::chat(&engine, "Write a short poem about the sea.", &options)).unwrap();
        while pollster::block_on(gen.next()).unwrap().is_some() {}
        gen.generated().to_vec()
    };
    assert_eq!(run(3), run(3));
    assert_ne!(run(3), run(4));
}

fn assert_close(a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len());
    let max = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(max <= tol, "max |difference| {max} > {tol}");
}
