//! Feedback-based alignment on the real default model, natively: a scripted person who
//! always picks the more concise of two answers. The same scenario runs in the browser in
//! tests/browser/memory-feedback.test.mjs.
// Native only (the model file, threads or a native GPU); nothing to build on wasm32.
#![cfg(not(target_arch = "wasm32"))]

#[path = "common/model.rs"]
mod common;

use padlock::align::sampler::SamplingParams;
use padlock::generate::{GenerateOptions, Generation};
use padlock::memory::feedback::StopRewards;
use padlock::memory::file::FileStore;
use padlock::memory::{FeedbackInput, FeedbackKind, Memory, Profile, Response, Source};

/// The scenario (kept equal to the browser test's, which runs the first 6 of the 10 rounds).
pub const TRAIN_PROMPTS: [&str; 8] = [
    "How do I boil an egg?",
    "What is photosynthesis?",
    "How do I learn to play guitar?",
    "What is a black hole?",
    "How can I save money?",
    "What is the internet?",
    "How do plants grow?",
    "Why do we dream?",
];
pub const EVAL_PROMPTS: [&str; 6] = [
    "Why is the sky blue?",
    "How can I sleep better?",
    "What is gravity?",
    "How do vaccines work?",
    "What is a computer?",
    "How do birds fly?",
];

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn answer(
    engine: &padlock::generate::Engine<padlock::backend::cpu::CpuBackend>,
    memory: &Memory<FileStore>,
    prompt: &str,
    sampling: SamplingParams,
) -> Response {
    let options = GenerateOptions { max_tokens: env("MAX", 80), sampling, ..Default::default() };
    let plan = memory
        .personalize(&options, &[padlock::tokenizer::ChatMessage { role: "user".into(), content: prompt.into() }])
        .await
        .unwrap();
    let mut gen = Generation::chat(engine, prompt, &plan.options).await.unwrap();
    let mut stop = StopRewards::default();
    while stop.step(&mut gen).await.unwrap().is_some() {}
    plan.response(gen.text().unwrap(), gen.generated().len(), gen.sequence_rewards(), &stop.finish(&gen))
}

async fn mean_length(
    engine: &padlock::generate::Engine<padlock::backend::cpu::CpuBackend>,
    memory: &Memory<FileStore>,
) -> (f32, Vec<u32>) {
    let mut lengths = Vec::new();
    for p in EVAL_PROMPTS.iter().take(env("NEVAL", EVAL_PROMPTS.len())) {
        lengths.push(answer(engine, memory, p, SamplingParams::greedy()).await.tokens);
    }
    (lengths.iter().sum::<u32>() as f32 / lengths.len() as f32, lengths)
}

#[test]
fn choosing_the_concise_answer_raises_concise_and_shortens_answers() {
    let engine = common::engine();
    let dir = std::env::temp_dir().join(format!("padlock-feedback-{}", padlock::memory::new_id().unwrap()));
    let memory = Memory::new(FileStore::open(&dir).unwrap());
    pollster::block_on(async {
        let concise =
            memory.add("Keep answers short and concise.", Some(env("WC", 0.5)), Source::Explicit).await.unwrap().id;
        let detailed =
            memory.add("Explain in detail, with examples.", Some(env("WD", 1.5)), Source::Explicit).await.unwrap().id;
        let profile = Profile { beta: env("BETA", 2.0), ..Default::default() };
        memory.set_profile(&profile).await.unwrap();

        let (before, before_lengths) = mean_length(&engine, &memory).await;
        let rounds = env("ROUNDS", 10);
        for round in 0..rounds {
            let prompt = TRAIN_PROMPTS[round % TRAIN_PROMPTS.len()];
            let sample =
                |seed: u64| SamplingParams { temperature: 0.8, seed: seed + env("SEED", 0u64), ..Default::default() };
            let a = answer(&engine, &memory, prompt, sample(2 * round as u64 + 1)).await;
            let b = answer(&engine, &memory, prompt, sample(2 * round as u64 + 2)).await;
            // The scripted person prefers the more concise answer; two answers of the same length
            // (both cut off at the token limit, say) are not a choice.
            if a.tokens == b.tokens {
                eprintln!("round {round}: both {} tokens, no choice", a.tokens);
                continue;
            }
            let (chosen, rejected) = if a.tokens < b.tokens { (a, b) } else { (b, a) };
            let outcome = memory
                .feedback(FeedbackInput {
                    kind: FeedbackKind::Choice,
                    prompt: prompt.into(),
                    responses: vec![chosen, rejected],
                })
                .await
                .unwrap();
            let r = &outcome.event.responses;
            let feats = |x: &Response| x.rewards.iter().map(|r| format!("{:.1}", r.value)).collect::<Vec<_>>();
            eprintln!(
                "round {round}: chosen {} tok {:?} vs {} tok {:?}: {:?}",
                r[0].tokens,
                feats(&r[0]),
                r[1].tokens,
                feats(&r[1]),
                outcome
                    .changes
                    .iter()
                    .map(|c| format!(
                        "{}: {:.3}->{:.3}",
                        if c.id == concise { "concise" } else { "detailed" },
                        c.before,
                        c.after
                    ))
                    .collect::<Vec<_>>()
            );
        }
        let weights = memory.preferences().await.unwrap().items;
        let w = |id: &str| weights.iter().find(|p| p.id == id).unwrap().effective_weight();
        let (after, after_lengths) = mean_length(&engine, &memory).await;
        eprintln!(
            "concise {:.3} detailed {:.3}; mean length before {before} {before_lengths:?}, after {after} {after_lengths:?}",
            w(&concise),
            w(&detailed)
        );
        assert!(w(&concise) > env("WC", 0.5), "the concise preference's weight did not rise");
        assert!(after < before, "answers did not get shorter on average: {before} → {after}");
    });
    let _ = std::fs::remove_dir_all(&dir);
}
