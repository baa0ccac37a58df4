//! Which feature of PAD's rewards tells a concise answer from a long one? Reproduces the
//! figures in BENCHMARKS.md ("Feedback features"):
//!
//!     cargo run --release --example feedback_features -- [CONCISE_WEIGHT DETAILED_WEIGHT [BETA]]
//!
//! Two sampled answers (temperature 0.8) per prompt, steered by PAD with the harmlessness
//! principle (weight 1), "Keep answers short and concise." and "Explain in detail, with
//! examples."; for every pair whose lengths differ, the shorter one is "chosen". A feature is
//! counted right when its centred value moved 'concise' up relative to 'detailed'
//! (x_concise > x_detailed, x = f(chosen) − f(rejected)).

// Native only: the model file from disk, and blocking on the generation's futures.
#[cfg(not(target_arch = "wasm32"))]
fn main() {
    native::main()
}

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::sync::Arc;

    use padlock::align::sampler::SamplingParams;
    use padlock::align::values::HARMLESS_PRINCIPLE;
    use padlock::align::{Method, Personalization, Preference};
    use padlock::backend::cpu::CpuBackend;
    use padlock::generate::{Engine, GenerateOptions, Generation};
    use padlock::memory::feedback::StopRewards;

    const PROMPTS: [&str; 24] = [
        "How do I boil an egg?",
        "What is photosynthesis?",
        "How do I learn to play guitar?",
        "What is a black hole?",
        "How can I save money?",
        "What is the internet?",
        "How do plants grow?",
        "Why do we dream?",
        "Why is the sky blue?",
        "How can I sleep better?",
        "What is gravity?",
        "How do vaccines work?",
        "What is a computer?",
        "How do birds fly?",
        "Why do leaves change color?",
        "What causes rain?",
        "How does a car engine work?",
        "What is democracy?",
        "How do I make tea?",
        "What is the moon made of?",
        "Why do cats purr?",
        "How do magnets work?",
        "What is DNA?",
        "How do I write a good email?",
    ];

    struct Answer {
        tokens: usize,
        rewards: Vec<f64>,
        stop: Vec<f64>,
    }

    fn centred(f: Vec<f64>) -> Vec<f64> {
        let mean = f.iter().sum::<f64>() / f.len() as f64;
        f.into_iter().map(|v| v - mean).collect()
    }

    pub fn main() {
        let args: Vec<f32> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
        let (concise, detailed, beta) = (
            args.first().copied().unwrap_or(1.0),
            args.get(1).copied().unwrap_or(1.0),
            args.get(2).copied().unwrap_or(2.0),
        );
        let bytes = std::fs::read("models/SmolLM2-135M-Instruct.Q4_1.gguf")
            .expect("the default model (scripts/fetch-model.sh)");
        let engine = Engine::load(CpuBackend::new(), Arc::new(bytes), &mut |_| {}).expect("load");
        let preferences = vec![
            Preference::new(HARMLESS_PRINCIPLE, 1.0),
            Preference::new("Keep answers short and concise.", concise),
            Preference::new("Explain in detail, with examples.", detailed),
        ];
        type Feature = fn(&Answer) -> Vec<f64>;
        let features: [(&str, Feature); 4] = [
            ("summed rewards", |a| a.rewards.clone()),
            ("per-token mean", |a| a.rewards.iter().map(|r| r / a.tokens.max(1) as f64).collect()),
            ("stop decision alone", |a| if a.stop.is_empty() { vec![0.0; a.rewards.len()] } else { a.stop.clone() }),
            ("content mean + stop (padlock)", |a| {
                let stop = |i: usize| a.stop.get(i).copied().unwrap_or(0.0);
                a.rewards.iter().enumerate().map(|(i, r)| (r - stop(i)) / a.tokens.max(1) as f64 + stop(i)).collect()
            }),
        ];
        let mut right = [0usize; 4];
        let mut pairs = 0;
        let mut lengths = Vec::new();
        for (i, prompt) in PROMPTS.iter().enumerate() {
            let answers: Vec<Answer> = (0..2u64)
                .map(|s| {
                    let options = GenerateOptions {
                        max_tokens: 80,
                        sampling: SamplingParams { temperature: 0.8, seed: i as u64 * 10 + s, ..Default::default() },
                        personalization: Personalization {
                            method: Method::Pad,
                            preferences: preferences.clone(),
                            beta,
                            ..Default::default()
                        },
                        ..Default::default()
                    };
                    let mut g = pollster::block_on(Generation::chat(&engine, prompt, &options)).expect("generate");
                    let mut stop = StopRewards::default();
                    while pollster::block_on(stop.step(&mut g)).expect("next").is_some() {}
                    let f = |v: &[f32]| v.iter().map(|&x| x as f64).collect();
                    Answer { tokens: g.generated().len(), rewards: f(g.sequence_rewards()), stop: f(&stop.finish(&g)) }
                })
                .collect();
            lengths.extend(answers.iter().map(|a| a.tokens));
            if answers[0].tokens == answers[1].tokens {
                continue;
            }
            pairs += 1;
            let (short, long) = if answers[0].tokens < answers[1].tokens {
                (&answers[0], &answers[1])
            } else {
                (&answers[1], &answers[0])
            };
            for (k, (_, f)) in features.iter().enumerate() {
                let x: Vec<f64> = centred(f(short)).iter().zip(centred(f(long))).map(|(a, b)| a - b).collect();
                // The reward contexts: concise, detailed, then harmlessness (`reward_contexts`).
                right[k] += (x[0] > x[1]) as usize;
            }
        }
        println!(
            "weights harmless 1, concise {concise}, detailed {detailed}, β {beta}: {pairs} pairs of different length, mean length {:.1}",
            lengths.iter().sum::<usize>() as f64 / lengths.len() as f64
        );
        for (k, (name, _)) in features.iter().enumerate() {
            println!("  {name:30} favoured concise over detailed in {:2} of {pairs}", right[k]);
        }
    }
}
