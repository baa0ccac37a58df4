//! `padlock`: the native command line.
//!   padlock generate --model PATH --prompt TEXT [--max-tokens N] [--greedy | --temperature T --top-p P --seed S] [--json]
//!   padlock generate --model PATH --prompt TEXT --store DIR [--answers 2]   (preferences from memory)
//!   padlock bench --model PATH
//!   padlock memory --store DIR ...; padlock feedback --store DIR ...   (see memory_cli.rs)

#[path = "padlock/memory_cli.rs"]
mod memory_cli;

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use padlock::align::sampler::{argmax, SamplingParams};
use padlock::align::{Method, Personalization, Preference};
use padlock::backend::cpu::{quant, CpuBackend};
use padlock::generate::{now_seconds, Engine, GenerateOptions, Generation};
use padlock::model::llama::Logits;
use padlock::{Error, Result};

#[derive(Parser)]
#[command(name = "padlock", version, about = "On-device personalized decoding for small language models")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Answer one chat message.
    Generate(GenerateArgs),
    /// Measure prefill and decode speed.
    Bench(BenchArgs),
    /// The preference memory in a directory: list, add, update, remove, export, import, forget.
    Memory(memory_cli::MemoryArgs),
    /// Feedback on the last answers of `generate --store DIR`: up, down, choose, remember.
    Feedback(memory_cli::FeedbackArgs),
}

#[derive(Args)]
struct GenerateArgs {
    #[arg(long)]
    model: String,
    #[arg(long)]
    prompt: String,
    #[arg(long)]
    system: Option<String>,
    #[arg(long, default_value_t = 256)]
    max_tokens: usize,
    /// Always take the most likely token (no repetition penalty unless given).
    #[arg(long, conflicts_with_all = ["temperature", "top_p", "seed"])]
    greedy: bool,
    #[arg(long)]
    temperature: Option<f32>,
    #[arg(long)]
    top_p: Option<f32>,
    #[arg(long)]
    top_k: Option<usize>,
    #[arg(long)]
    repetition_penalty: Option<f32>,
    #[arg(long)]
    seed: Option<u64>,
    /// Print one JSON object (prompt_ids, generated_ids, text, ...) instead of streaming text.
    #[arg(long)]
    json: bool,
    /// base: the model alone; prompt: preferences in its prompt; pad: decoding-time alignment.
    #[arg(long, value_enum, default_value = "base")]
    method: MethodArg,
    /// A preference, e.g. "Keep answers short." (repeat for several).
    #[arg(long = "prefer")]
    prefer: Vec<String>,
    /// The weight of each --prefer, in the same order (default 1).
    #[arg(long = "weight")]
    weight: Vec<f32>,
    /// PAD's β: how strongly the preferences move the choice.
    #[arg(long, default_value_t = 1.0)]
    beta: f32,
    /// Put the guideline in the base context too (PAD).
    #[arg(long)]
    base_with_guideline: bool,
    /// One PersRM context for all preferences instead of one each (PAD).
    #[arg(long)]
    combined: bool,
    /// Per token: the chosen token, the base model's top-1, each preference's contribution.
    #[arg(long)]
    explain: bool,
    /// Take the method, preferences, β and (unless given here) decoding settings from the
    /// memory in DIR; the answers are kept there for `padlock feedback --store DIR`.
    #[arg(long, conflicts_with_all = ["prefer", "weight"])]
    store: Option<std::path::PathBuf>,
    /// How many answers to give, each with the next seed (2 for `feedback choose A|B`).
    #[arg(long, default_value_t = 1, requires = "store", value_parser = clap::value_parser!(u8).range(1..=2))]
    answers: u8,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum MethodArg {
    Base,
    Prompt,
    Pad,
}

#[derive(Args)]
struct BenchArgs {
    #[arg(long)]
    model: String,
    /// Prompt length for the prefill measurement.
    #[arg(long, default_value_t = 128)]
    prompt_tokens: usize,
    /// Tokens decoded one at a time for the decode measurement.
    #[arg(long, default_value_t = 128)]
    decode_tokens: usize,
    #[arg(long)]
    json: bool,
}

fn load(path: &str) -> Result<Engine<CpuBackend>> {
    let bytes = std::fs::read(path).map_err(|e| Error::new(padlock::ErrorCode::Io, format!("{path}: {e}")))?;
    Engine::load(CpuBackend::new(), Arc::new(bytes), &mut |_| {})
}

fn generate(args: GenerateArgs) -> Result<()> {
    let engine = load(&args.model)?;
    let mut sampling = if args.greedy { SamplingParams::greedy() } else { SamplingParams::default() };
    sampling.temperature = args.temperature.unwrap_or(sampling.temperature);
    sampling.top_p = args.top_p.unwrap_or(sampling.top_p);
    sampling.top_k = args.top_k.unwrap_or(sampling.top_k);
    sampling.repetition_penalty = args.repetition_penalty.unwrap_or(sampling.repetition_penalty);
    sampling.seed = args.seed.unwrap_or(sampling.seed);
    if args.weight.len() > args.prefer.len() {
        return Err(Error::new(padlock::ErrorCode::InvalidArgument, "more --weight than --prefer"));
    }
    let preferences = args
        .prefer
        .iter()
        .enumerate()
        .map(|(i, text)| Preference { text: text.clone(), weight: args.weight.get(i).copied().unwrap_or(1.0) })
        .collect();
    let personalization = Personalization {
        method: match args.method {
            MethodArg::Base => Method::Base,
            MethodArg::Prompt => Method::Prompt,
            MethodArg::Pad => Method::Pad,
        },
        preferences,
        beta: args.beta,
        candidates: args.top_k.unwrap_or(Personalization::default().candidates),
        base_with_guideline: args.base_with_guideline,
        combined: args.combined,
    };
    let options = GenerateOptions { max_tokens: args.max_tokens, sampling, system: args.system.clone(), personalization };
    let sampling_given = args.greedy
        || args.temperature.is_some()
        || args.top_p.is_some()
        || args.top_k.is_some()
        || args.repetition_penalty.is_some()
        || args.seed.is_some();
    let plan = match &args.store {
        Some(dir) => Some(memory_cli::personalize(dir, &options, !sampling_given)?),
        None => None,
    };
    let options = plan.as_ref().map_or(options, |p| p.options.clone());
    if args.answers > 1 && options.sampling.greedy {
        return Err(Error::new(padlock::ErrorCode::InvalidArgument, "two answers need sampling, not --greedy"));
    }
    let mut responses = Vec::new();
    for answer in 0..args.answers {
    let mut options = options.clone();
    options.sampling.seed += answer as u64;
    if args.answers > 1 && !args.json {
        println!("--- answer {}", ["A", "B"][answer as usize]);
    }
    let t0 = now_seconds();
    let mut gen = pollster::block_on(Generation::chat(&engine, &args.prompt, &options))?;
    let t1 = now_seconds();
    let mut stdout = std::io::stdout();
    let mut explanations = Vec::new();
    while let Some(token) = pollster::block_on(gen.next())? {
        if !args.json {
            let _ = write!(stdout, "{}", token.text);
            let _ = stdout.flush();
        }
        if let Some(e) = token.explanation.filter(|_| args.explain) {
            if !args.json {
                eprintln!(
                    "\n[{:?} base top-1 {:?} contributions {:?}]",
                    engine.tokenizer.decode(&[e.chosen])?,
                    engine.tokenizer.decode(&[e.base_top1])?,
                    e.contributions
                );
            }
            explanations.push(e);
        }
    }
    let t2 = now_seconds();
    let decode_tps = gen.generated().len() as f64 / (t2 - t1).max(1e-9);
    let prefill_tps = gen.prompt_ids().len() as f64 / (t1 - t0).max(1e-9);
    if args.json {
        let out = serde_json::json!({
            "prompt_ids": gen.prompt_ids(),
            "generated_ids": gen.generated(),
            "text": gen.text()?,
            "stop_reason": gen.stop_reason(),
            "prefill_tokens_per_second": prefill_tps,
            "decode_tokens_per_second": decode_tps,
            "explanation": if args.explain { Some(&explanations) } else { None },
            "sequence_rewards": gen.sequence_rewards(),
            "stop_rewards": gen.stop_rewards(),
            "preferences": plan.as_ref().map(|p| &p.contexts),
        });
        println!("{out}");
    } else {
        println!();
        eprintln!(
            "[{} prompt tokens at {prefill_tps:.1} tok/s, {} generated at {decode_tps:.1} tok/s, kernel {}]",
            gen.prompt_ids().len(),
            gen.generated().len(),
            quant::kernel_name()
        );
    }
    if let Some(plan) = &plan {
        responses.push(plan.response(gen.text()?, gen.generated().len(), gen.sequence_rewards(), gen.stop_rewards()));
    }
    }
    if let (Some(dir), Some(_)) = (&args.store, &plan) {
        memory_cli::save_last_answers(dir, &memory_cli::LastAnswers { prompt: args.prompt.clone(), responses })?;
    }
    Ok(())
}

fn bench(args: BenchArgs) -> Result<()> {
    let engine = load(&args.model)?;
    let model = &engine.model;
    // A prompt of exactly `prompt_tokens` tokens: a paragraph of text, repeated as needed.
    let text = "The quick brown fox jumps over the lazy dog while the river runs to the sea. ";
    let unit = engine.tokenizer.encode(text)?;
    let prompt: Vec<u32> = unit.iter().copied().cycle().take(args.prompt_tokens.max(1)).collect();

    // Prefill: best of three runs of the whole prompt.
    let mut prefill_s = f64::INFINITY;
    for _ in 0..3 {
        let mut seq = model.new_sequence()?;
        let t = now_seconds();
        pollster::block_on(model.forward_one(&mut seq, &prompt, Logits::Last))?;
        prefill_s = prefill_s.min(now_seconds() - t);
    }
    // Decode: one token at a time after a short prompt, greedy, never stopping early.
    let mut seq = model.new_sequence()?;
    let mut logits = pollster::block_on(model.forward_one(&mut seq, &prompt[..prompt.len().min(16)], Logits::Last))?;
    let t = now_seconds();
    for _ in 0..args.decode_tokens {
        let next = argmax(&logits);
        logits = pollster::block_on(model.forward_one(&mut seq, &[next], Logits::Last))?;
    }
    let decode_s = now_seconds() - t;
    let prefill_tps = prompt.len() as f64 / prefill_s;
    let decode_tps = args.decode_tokens as f64 / decode_s;
    let threads = rayon::current_num_threads();
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "prefill_tokens": prompt.len(), "prefill_tokens_per_second": prefill_tps,
                "decode_tokens": args.decode_tokens, "decode_tokens_per_second": decode_tps,
                "kernel": quant::kernel_name(), "threads": threads,
            })
        );
    } else {
        println!("kernel {} on {threads} threads", quant::kernel_name());
        println!("prefill: {} tokens at {prefill_tps:.1} tok/s", prompt.len());
        println!("decode:  {} tokens at {decode_tps:.1} tok/s", args.decode_tokens);
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Run everything inside the thread pool: a kernel call made from a pool thread hands work
    // to the other threads far faster than one made from outside, which waits for them to
    // wake (about 3.5 ms of a 9 ms decode step on 2 cores).
    let run = || match cli.command {
        Command::Generate(a) => generate(a),
        Command::Bench(a) => bench(a),
        Command::Memory(a) => memory_cli::memory(a),
        Command::Feedback(a) => memory_cli::feedback(a),
    };
    let result = match rayon::ThreadPoolBuilder::new().build() {
        Ok(pool) => pool.install(run),
        Err(_) => run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error[{}]: {}", e.code, e.message);
            ExitCode::FAILURE
        }
    }
}
