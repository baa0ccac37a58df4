//! Five stored preferences, steered by the relevant ones or by the three weightiest: PAD's
//! contexts, decode speed, length and relevance to the question. Reproduces the figures in
//! BENCHMARKS.md and EVAL.md ("Relevance gating with five preferences"):
//!
//!     cargo run --profile release-nolto -p padlock-cli --example relevance_steering -- [MAX_TOKENS] [koala]
//!
//! The five are the issue's ("I am vegetarian.", "Explain code with Python examples.", "Be
//! concise.", "Use metric units.", "I am learning German; add the German word for key
//! terms."); the requests are those the first relevance table's first person asks
//! (`tests/fixtures/relevance_cases.tsv`, profile p1), or with `koala` the 50 prompts of the
//! project's evaluation (`eval/koala_eval_50.json`). Greedy, the memory's PAD settings;
//! "weightiest" marks every preference `always`, which gives the selection before relevance
//! gating (the three weightiest, older first on a tie).

use std::sync::Arc;

use padlock::align::sampler::SamplingParams;
use padlock::backend::cpu::CpuBackend;
use padlock::generate::{now_seconds, Engine, GenerateOptions, Generation};
use padlock::memory::file::FileStore;
use padlock::memory::{Memory, PreferenceChange, Profile, Source};
use padlock::tokenizer::ChatMessage;
use padlock_cli::research::eval::measures::relevance;

const PREFERENCES: [&str; 5] = [
    "I am vegetarian.",
    "Explain code with Python examples.",
    "Be concise.",
    "Use metric units.",
    "I am learning German; add the German word for key terms.",
];

struct Answer {
    contexts: usize,
    tokens: usize,
    seconds: f64,
    words: usize,
    relevance: f64,
}

fn answer(engine: &Engine<CpuBackend>, memory: Option<&Memory<FileStore>>, prompt: &str, max: usize) -> Answer {
    let options = GenerateOptions {
        max_tokens: max,
        sampling: SamplingParams { greedy: true, ..Default::default() },
        ..Default::default()
    };
    let messages = [ChatMessage { role: "user".into(), content: prompt.into() }];
    let options = match memory {
        Some(m) => pollster::block_on(m.personalize(&options, &messages)).expect("personalize").options,
        None => options,
    };
    let contexts = options.personalization.preferences.len();
    let mut gen = pollster::block_on(Generation::chat(engine, prompt, &options)).expect("generate");
    let start = now_seconds();
    while pollster::block_on(gen.next()).expect("next").is_some() {}
    let seconds = now_seconds() - start;
    let text = gen.text().expect("text");
    Answer {
        contexts,
        tokens: gen.generated().len(),
        seconds,
        words: text.split_whitespace().count(),
        relevance: relevance(prompt, &text),
    }
}

fn main() {
    let max: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(64);
    let bytes = std::fs::read("models/SmolLM2-135M-Instruct.Q4_1.gguf").expect("the default model");
    let engine = Engine::load(CpuBackend::new(), Arc::new(bytes), &mut |_| {}).expect("load");
    let prompts: Vec<String> = if std::env::args().any(|a| a == "koala") {
        let koala: Vec<serde_json::Value> =
            serde_json::from_str(include_str!("../../eval/koala_eval_50.json")).expect("the evaluation prompts");
        koala.iter().filter_map(|p| p["prompt"].as_str().map(str::to_string)).collect()
    } else {
        include_str!("../../tests/fixtures/relevance_cases.tsv")
            .lines()
            .filter(|l| l.starts_with("p1\t"))
            .filter_map(|l| l.split('\t').nth(2).map(str::to_string))
            .collect()
    };
    let stores: Vec<(&str, Memory<FileStore>)> = ["relevant", "weightiest"]
        .into_iter()
        .map(|name| {
            let dir = std::env::temp_dir().join(format!("padlock-relevance-{name}-{}", std::process::id()));
            let m = Memory::new(FileStore::open(&dir).expect("store"));
            pollster::block_on(async {
                m.set_profile(&Profile { max_active: 3, ..Default::default() }).await.expect("profile");
                for text in PREFERENCES {
                    let id = m.add(text, None, Source::Explicit).await.expect("add").id;
                    if name == "weightiest" {
                        let always = PreferenceChange { always: Some(true), ..Default::default() };
                        m.update(&id, &always).await.expect("always");
                    }
                }
            });
            (name, m)
        })
        .collect();
    let base: Vec<Answer> = prompts.iter().map(|p| answer(&engine, None, p, max)).collect();
    println!("| steering | contexts per answer (with harmlessness) | decode tok/s | words (base {:.1}) | shorter than base | relevance vs base |", mean(base.iter().map(|a| a.words as f64)));
    println!("|---|---|---|---|---|---|");
    for (name, m) in &stores {
        let answers: Vec<Answer> = prompts.iter().map(|p| answer(&engine, Some(m), p, max)).collect();
        let tokens: usize = answers.iter().map(|a| a.tokens).sum();
        let seconds: f64 = answers.iter().map(|a| a.seconds).sum();
        let shorter = answers.iter().zip(&base).filter(|(a, b)| a.words < b.words).count();
        let rel = mean(answers.iter().map(|a| a.relevance)) / mean(base.iter().map(|a| a.relevance)).max(1e-9);
        println!(
            "| {name} | {:.2} | {:.1} | {:.1} | {shorter}/{} | {rel:.2} |",
            mean(answers.iter().map(|a| a.contexts as f64)),
            tokens as f64 / seconds.max(1e-9),
            mean(answers.iter().map(|a| a.words as f64)),
            answers.len(),
        );
        pollster::block_on(m.forget()).ok();
    }
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    sum / n.max(1) as f64
}
