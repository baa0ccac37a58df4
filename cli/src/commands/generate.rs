//! `padlock generate`: one chat message answered, plain or personalized, streamed or as JSON.

use std::io::Write;

use clap::Args;
use padlock::align::sampler::SamplingParams;
use padlock::align::Method;
use padlock::backend::Backend;
use padlock::generate::{now_seconds, BestOfN, Engine, Explanation, GenerateOptions, Generation};
use padlock::memory::feedback::StopRewards;
use padlock::memory::PreferenceUse;
use padlock::{Error, ErrorCode, Result};

use crate::commands::memory;
use crate::engine::{with_engine, WithEngine};
use crate::options::{BackendArgs, PersonalizationArgs};

#[derive(Args)]
pub struct GenerateArgs {
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
    #[command(flatten)]
    personalization: PersonalizationArgs,
    /// Per token: the chosen token, the base model's top-1, each preference's contribution.
    #[arg(long)]
    explain: bool,
    /// Take the preferences from the memory in DIR, and its method, β, k and decoding settings
    /// unless given here; the answers are kept there for `padlock feedback --store DIR`.
    #[arg(long, conflicts_with_all = ["prefer", "weight", "head"])]
    store: Option<std::path::PathBuf>,
    /// How many answers to give, each with the next seed (2 for `feedback choose A|B`).
    #[arg(long, default_value_t = 1, requires = "store", value_parser = clap::value_parser!(u8).range(1..=2))]
    answers: u8,
    #[command(flatten)]
    backend: BackendArgs,
}

struct GenerateJob(GenerateArgs);

impl WithEngine for GenerateJob {
    fn run<B: Backend>(self, engine: Engine<B>, about: String) -> Result<()> {
        generate(self.0, engine, about)
    }
}

fn sampling(args: &GenerateArgs) -> SamplingParams {
    let mut sampling = if args.greedy { SamplingParams::greedy() } else { SamplingParams::default() };
    sampling.temperature = args.temperature.unwrap_or(sampling.temperature);
    sampling.top_p = args.top_p.unwrap_or(sampling.top_p);
    sampling.top_k = args.top_k.unwrap_or(sampling.top_k);
    sampling.repetition_penalty = args.repetition_penalty.unwrap_or(sampling.repetition_penalty);
    sampling.seed = args.seed.unwrap_or(sampling.seed);
    sampling
}

pub fn run(args: GenerateArgs) -> Result<()> {
    let (model, backend) = (args.model.clone(), args.backend.clone());
    with_engine(&model, &backend, GenerateJob(args))
}

fn generate<B: Backend>(args: GenerateArgs, engine: Engine<B>, about: String) -> Result<()> {
    let personalization = args.personalization.resolve(&engine, args.top_k)?;
    let options = GenerateOptions {
        max_tokens: args.max_tokens,
        sampling: sampling(&args),
        system: args.system.clone(),
        personalization,
        ignore_eos: false,
    };
    let sampling_given = args.greedy
        || args.temperature.is_some()
        || args.top_p.is_some()
        || args.top_k.is_some()
        || args.repetition_penalty.is_some()
        || args.seed.is_some();
    let plan = match &args.store {
        Some(dir) => {
            let overrides = args.personalization.overrides(args.top_k);
            Some(memory::personalize(dir, &options, overrides, !sampling_given, &args.prompt)?)
        }
        None => None,
    };
    let options = plan.as_ref().map_or(options, |p| p.options.clone());
    if options.personalization.method == Method::BestOfN {
        if args.store.is_some() {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                "--store keeps PAD answers for feedback; best-of-n is not supported with it",
            ));
        }
        return best_of_n(&engine, &args, &options);
    }
    if args.answers > 1 && options.sampling.greedy {
        return Err(Error::new(ErrorCode::InvalidArgument, "two answers need sampling, not --greedy"));
    }
    let mut responses = Vec::new();
    for answer in 0..args.answers {
        let mut options = options.clone();
        options.sampling.seed += answer as u64;
        if args.answers > 1 && !args.json {
            println!("--- answer {}", ["A", "B"][answer as usize]);
        }
        let considered = plan.as_ref().map(|p| p.considered.as_slice());
        let response = generate_one(&engine, &args, &options, &about, considered)?;
        if let Some(plan) = &plan {
            responses.push(plan.response(response.text, response.tokens, &response.rewards, &response.stop_rewards));
        }
    }
    if let (Some(dir), Some(_)) = (&args.store, &plan) {
        memory::save_last_answers(dir, &memory::LastAnswers { prompt: args.prompt.clone(), responses })?;
    }
    Ok(())
}

/// What one answer leaves for feedback.
struct Answered {
    text: String,
    tokens: usize,
    rewards: Vec<f32>,
    stop_rewards: Vec<f32>,
}

fn generate_one<B: Backend>(
    engine: &Engine<B>,
    args: &GenerateArgs,
    options: &GenerateOptions,
    about: &str,
    considered: Option<&[PreferenceUse]>,
) -> Result<Answered> {
    let t0 = now_seconds();
    let mut gen = pollster::block_on(Generation::chat(engine, &args.prompt, options))?;
    let t1 = now_seconds();
    let mut stdout = std::io::stdout();
    let mut explanations = Vec::new();
    let mut stop = StopRewards::default();
    while let Some(token) = pollster::block_on(stop.step(&mut gen))? {
        if !args.json {
            let _ = write!(stdout, "{}", token.text);
            let _ = stdout.flush();
        }
        if let Some(e) = token.explanation {
            explanations.push((token.text, e));
        }
    }
    let t2 = now_seconds();
    let decode_tps = gen.generated().len() as f64 / (t2 - t1).max(1e-9);
    let prefill_tps = gen.prompt_ids().len() as f64 / (t1 - t0).max(1e-9);
    let stop_rewards = stop.finish(&gen);
    if args.json {
        let explanation: Vec<_> = explanations
            .iter()
            .map(|(text, e)| {
                let mut v = serde_json::to_value(e).unwrap_or_default();
                v["text"] = text.clone().into();
                v
            })
            .collect();
        let out = serde_json::json!({
            "prompt_ids": gen.prompt_ids(),
            "generated_ids": gen.generated(),
            "text": gen.text()?,
            "stop_reason": gen.stop_reason(),
            "prefill_tokens_per_second": prefill_tps,
            "decode_tokens_per_second": decode_tps,
            "reward_labels": gen.reward_labels(),
            "sequence_rewards": gen.sequence_rewards(),
            "stop_rewards": stop_rewards,
            "explanation": (options.personalization.method == Method::Pad).then_some(explanation),
            "backend": engine.model.backend().name(),
            "preferences": considered,
        });
        println!("{out}");
    } else {
        println!();
        if args.explain && !explanations.is_empty() {
            print_explanation(gen.reward_labels(), &explanations);
        }
        eprintln!(
            "[{} prompt tokens at {prefill_tps:.1} tok/s, {} generated at {decode_tps:.1} tok/s, {about}]",
            gen.prompt_ids().len(),
            gen.generated().len(),
        );
    }
    Ok(Answered {
        text: gen.text()?,
        tokens: gen.generated().len(),
        rewards: gen.sequence_rewards().to_vec(),
        stop_rewards,
    })
}

/// One line per token: chosen, base top-1 (when PAD chose otherwise), each context's β·w·r.
fn print_explanation(labels: &[String], tokens: &[(String, Explanation)]) {
    let short: Vec<String> = labels.iter().map(|l| l.chars().take(24).collect()).collect();
    println!("\n{:>4}  {:<16} {:<16} {}", "#", "chosen", "base top-1", short.join(" | "));
    for (i, (text, e)) in tokens.iter().enumerate() {
        let top1 = if e.base_top1 == e.chosen { "=".to_string() } else { format!("{:?}", e.base_top1_text) };
        let contributions: Vec<String> = e.contributions.iter().map(|c| format!("{c:+.2}")).collect();
        println!("{i:>4}  {:<16} {:<16} {}", format!("{text:?}"), top1, contributions.join(" | "));
    }
}

fn best_of_n<B: Backend>(engine: &Engine<B>, args: &GenerateArgs, options: &GenerateOptions) -> Result<()> {
    let mut bon = BestOfN::new(engine, &args.prompt, options)?;
    let t0 = now_seconds();
    while let Some(sample) = pollster::block_on(bon.next_sample())? {
        if !args.json {
            eprintln!(
                "[sample seed {}: reward {:+.2}, {} tokens]",
                sample.seed,
                sample.reward,
                sample.generated_ids.len()
            );
        }
    }
    let seconds = now_seconds() - t0;
    let best = bon.best().ok_or_else(|| Error::new(ErrorCode::InvalidArgument, "no sample"))?;
    let chosen = &bon.samples()[best];
    if args.json {
        let out = serde_json::json!({
            "generated_ids": chosen.generated_ids,
            "text": chosen.text,
            "stop_reason": chosen.stop_reason,
            "best": best,
            "samples": bon.samples(),
            "reward_labels": bon.reward_labels(),
            "seconds": seconds,
        });
        println!("{out}");
    } else {
        println!("{}", chosen.text);
    }
    Ok(())
}
