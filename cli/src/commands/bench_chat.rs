//! `padlock bench-chat`: time to first token over the turns of a chat, with the caches kept
//! between turns and without them, plain and with preferences.

use clap::Args;
use padlock::align::sampler::SamplingParams;
use padlock::align::{Method, Personalization, Preference};
use padlock::backend::Backend;
use padlock::generate::{now_seconds, Engine, GenerateOptions, Generation};
use padlock::tokenizer::ChatMessage;
use padlock::Result;

use crate::engine::{with_engine, WithEngine};
use crate::options::BackendArgs;

/// The user's turns (a chat about one topic, so that each answer has context).
const QUESTIONS: [&str; 8] = [
    "What is the capital of France?",
    "What is it famous for?",
    "Which river runs through it?",
    "What is a good time of year to visit?",
    "Name one museum there.",
    "How do people get around the city?",
    "What food should a visitor try?",
    "Thank you. Summarize our chat in one sentence.",
];

#[derive(Args)]
pub struct BenchChatArgs {
    #[arg(long)]
    model: String,
    /// Turns of the chat (at most 8).
    #[arg(long, default_value_t = 5)]
    turns: usize,
    /// Tokens per answer (greedy).
    #[arg(long, default_value_t = 48)]
    max_tokens: usize,
    /// Each number of preferences to measure (0: plain; n > 0: PAD with n preferences plus
    /// the harmlessness context).
    #[arg(long, value_delimiter = ',', default_value = "0,1")]
    preferences: Vec<usize>,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    backend: BackendArgs,
}

struct Job(BenchChatArgs);

/// Seconds to the first token of each turn of one chat, the caches kept between turns or not.
fn chat_ttft<B: Backend>(engine: &Engine<B>, options: &GenerateOptions, turns: usize, kept: bool) -> Result<Vec<f64>> {
    engine.release_kept();
    let mut messages: Vec<ChatMessage> = Vec::new();
    let mut ttft = Vec::with_capacity(turns);
    for question in QUESTIONS.iter().take(turns) {
        messages.push(ChatMessage { role: "user".into(), content: question.to_string() });
        if !kept {
            engine.release_kept();
        }
        let plan = padlock::align::plan::Plan::new(&options.personalization)?;
        let t0 = now_seconds();
        let mut gen = pollster::block_on(Generation::conversation(engine, &messages, options, plan))?;
        pollster::block_on(gen.next())?;
        ttft.push(now_seconds() - t0);
        while pollster::block_on(gen.next())?.is_some() {}
        messages.push(ChatMessage { role: "assistant".into(), content: gen.text()? });
    }
    Ok(ttft)
}

impl WithEngine for Job {
    fn run<B: Backend>(self, engine: Engine<B>, about: String) -> Result<()> {
        let a = self.0;
        let turns = a.turns.clamp(1, QUESTIONS.len());
        for &n in &a.preferences {
            let options = GenerateOptions {
                max_tokens: a.max_tokens,
                sampling: SamplingParams::greedy(),
                personalization: Personalization {
                    method: if n == 0 { Method::Base } else { Method::Pad },
                    preferences: (0..n)
                        .map(|i| Preference::new(format!("Preference {}: be friendly.", i + 1), 1.0))
                        .collect(),
                    ..Default::default()
                },
                ..Default::default()
            };
            // Once untimed, so that both runs find the same warm caches and pages.
            chat_ttft(&engine, &options, 1, false)?;
            let kept = chat_ttft(&engine, &options, turns, true)?;
            let fresh = chat_ttft(&engine, &options, turns, false)?;
            let ms = |v: &[f64]| v.iter().map(|s| (s * 1000.0).round()).collect::<Vec<_>>();
            if a.json {
                let row = serde_json::json!({ "preferences": n, "turns": turns, "kept_ms": ms(&kept),
                    "fresh_ms": ms(&fresh), "backend": about });
                println!("{row}");
            } else {
                println!(
                    "{n} preference(s), {about}: time to first token per turn, caches kept {:?} ms, fresh {:?} ms",
                    ms(&kept),
                    ms(&fresh)
                );
            }
        }
        Ok(())
    }
}

pub fn run(args: BenchChatArgs) -> Result<()> {
    let model = args.model.clone();
    let backend = args.backend.clone();
    with_engine(&model, &backend, Job(args))
}
