//! `padlock`: the native command line.
//!   padlock generate --model PATH --prompt TEXT [--max-tokens N] [--greedy | --temperature T --top-p P --seed S]
//!       [--method base|prompt|pad|best-of-n --prefer TEXT ... --weight W ... --head PATH --beta B --top-k K]
//!       [--explain] [--json]
//!   padlock bench --model PATH [--preferences 0,1,4]
//!   padlock make-pairs | train-head | eval   (value heads and the evaluation; see README)

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use padlock::align::sampler::{argmax, SamplingParams};
use padlock::align::{HarmlessMode, Method, Personalization, Preference};
use padlock::backend::cpu::{quant, CpuBackend};
use padlock::generate::{now_seconds, BestOfN, Engine, Explanation, GenerateOptions, Generation};
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
    /// Make preference pairs by contrastive prompting (JSONL, resumable).
    MakePairs(MakePairsArgs),
}

#[derive(Args)]
struct MakePairsArgs {
    #[arg(long)]
    model: String,
    /// A text file with one prompt per line.
    #[arg(long)]
    prompts: String,
    /// Dimensions (comma-separated); default: all.
    #[arg(long, value_delimiter = ',')]
    dimensions: Vec<String>,
    /// Sampling seeds: one pair per prompt, dimension and seed.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    seeds: Vec<u64>,
    #[arg(long, default_value_t = 160)]
    max_tokens: usize,
    /// Output JSONL; pairs already in it are kept and not made again.
    #[arg(long)]
    out: String,
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
    #[command(flatten)]
    personalization: PersonalizationArgs,
    /// Per token: the chosen token, the base model's top-1, each preference's contribution.
    #[arg(long)]
    explain: bool,
}

/// How preferences steer generation (shared by generate, bench and eval).
#[derive(Args, Clone)]
struct PersonalizationArgs {
    /// base: the model alone; prompt: preferences in its prompt; pad: decoding-time
    /// alignment; best-of-n: n samples, the best by PersRM reward.
    #[arg(long, value_enum, default_value = "base")]
    method: MethodArg,
    /// A preference, e.g. "Keep answers short." (repeat for several).
    #[arg(long = "prefer")]
    prefer: Vec<String>,
    /// The weight of each --prefer, in the same order (default 1).
    #[arg(long = "weight")]
    weight: Vec<f32>,
    /// A value head (safetensors) for the PersRM: once for every preference, or once per --prefer.
    #[arg(long = "head")]
    head: Vec<String>,
    /// PAD's β: how strongly the preferences move the choice.
    #[arg(long, default_value_t = 1.0)]
    beta: f32,
    /// PAD: keep the candidates inside this much base probability (nucleus within the top-k; 1: off).
    #[arg(long, default_value_t = 1.0)]
    candidate_top_p: f32,
    /// PAD: drop candidates below this fraction of the base top-1's probability (0: off).
    #[arg(long, default_value_t = 0.0)]
    candidate_min_p: f32,
    /// Put the guideline in the base context too (PAD).
    #[arg(long)]
    base_with_guideline: bool,
    /// One PersRM context for all preferences instead of one each (PAD).
    #[arg(long)]
    combined: bool,
    /// Where the harmlessness principle goes: its own PersRM context, or inside each guideline.
    #[arg(long, value_enum, default_value = "context")]
    harmless: HarmlessArg,
    /// Best-of-n: how many answers to sample.
    #[arg(long, default_value_t = 4)]
    n: usize,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum MethodArg {
    Base,
    Prompt,
    Pad,
    BestOfN,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum HarmlessArg {
    Context,
    Guideline,
}

impl PersonalizationArgs {
    /// The personalization these flags describe; value heads are loaded into `engine`
    /// under their path.
    fn resolve(&self, engine: &Engine<CpuBackend>, top_k: Option<usize>) -> Result<Personalization> {
        let invalid = |m: String| Error::new(padlock::ErrorCode::InvalidArgument, m);
        if self.weight.len() > self.prefer.len() {
            return Err(invalid("more --weight than --prefer".into()));
        }
        if self.head.len() > 1 && self.head.len() != self.prefer.len() {
            return Err(invalid(format!("{} --head for {} --prefer: give one, or one per --prefer", self.head.len(), self.prefer.len())));
        }
        for path in &self.head {
            let bytes = std::fs::read(path).map_err(|e| Error::new(padlock::ErrorCode::Io, format!("{path}: {e}")))?;
            engine.load_head(path, &bytes)?;
        }
        let preferences = self
            .prefer
            .iter()
            .enumerate()
            .map(|(i, text)| Preference {
                text: text.clone(),
                weight: self.weight.get(i).copied().unwrap_or(1.0),
                head: self.head.get(if self.head.len() == 1 { 0 } else { i }).cloned(),
            })
            .collect();
        Ok(Personalization {
            method: match self.method {
                MethodArg::Base => Method::Base,
                MethodArg::Prompt => Method::Prompt,
                MethodArg::Pad => Method::Pad,
                MethodArg::BestOfN => Method::BestOfN,
            },
            preferences,
            beta: self.beta,
            candidates: top_k.unwrap_or(Personalization::default().candidates),
            candidate_top_p: self.candidate_top_p,
            candidate_min_p: self.candidate_min_p,
            base_with_guideline: self.base_with_guideline,
            combined: self.combined,
            harmless: match self.harmless {
                HarmlessArg::Context => HarmlessMode::Context,
                HarmlessArg::Guideline => HarmlessMode::Guideline,
            },
            best_of: self.n,
        })
    }
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

fn sampling(args: &GenerateArgs) -> SamplingParams {
    let mut sampling = if args.greedy { SamplingParams::greedy() } else { SamplingParams::default() };
    sampling.temperature = args.temperature.unwrap_or(sampling.temperature);
    sampling.top_p = args.top_p.unwrap_or(sampling.top_p);
    sampling.top_k = args.top_k.unwrap_or(sampling.top_k);
    sampling.repetition_penalty = args.repetition_penalty.unwrap_or(sampling.repetition_penalty);
    sampling.seed = args.seed.unwrap_or(sampling.seed);
    sampling
}


fn generate(args: GenerateArgs) -> Result<()> {
    let engine = load(&args.model)?;
    let personalization = args.personalization.resolve(&engine, args.top_k)?;
    let options = GenerateOptions {
        max_tokens: args.max_tokens,
        sampling: sampling(&args),
        system: args.system.clone(),
        personalization,
        ignore_eos: false,
    };
    if options.personalization.method == Method::BestOfN {
        return best_of_n(&engine, &args, &options);
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
        if let Some(e) = token.explanation {
            explanations.push((token.text, e));
        }
    }
    let t2 = now_seconds();
    let decode_tps = gen.generated().len() as f64 / (t2 - t1).max(1e-9);
    let prefill_tps = gen.prompt_ids().len() as f64 / (t1 - t0).max(1e-9);
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
            "explanation": (options.personalization.method == Method::Pad).then_some(explanation),
        });
        println!("{out}");
    } else {
        println!();
        if args.explain && !explanations.is_empty() {
            print_explanation(&gen.reward_labels().to_vec(), &explanations);
        }
        eprintln!(
            "[{} prompt tokens at {prefill_tps:.1} tok/s, {} generated at {decode_tps:.1} tok/s, kernel {}]",
            gen.prompt_ids().len(),
            gen.generated().len(),
            quant::kernel_name()
        );
    }
    Ok(())
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

fn best_of_n(engine: &Engine<CpuBackend>, args: &GenerateArgs, options: &GenerateOptions) -> Result<()> {
    let mut bon = BestOfN::new(engine, &args.prompt, options)?;
    let t0 = now_seconds();
    while let Some(sample) = pollster::block_on(bon.next_sample())? {
        if !args.json {
            eprintln!("[sample seed {}: reward {:+.2}, {} tokens]", sample.seed, sample.reward, sample.generated_ids.len());
        }
    }
    let seconds = now_seconds() - t0;
    let best = bon.best().ok_or_else(|| Error::new(padlock::ErrorCode::InvalidArgument, "no sample"))?;
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

fn make_pairs(args: MakePairsArgs) -> Result<()> {
    use padlock::eval::{dimensions, pairs};
    let engine = load(&args.model)?;
    let io = |e: std::io::Error| Error::new(padlock::ErrorCode::Io, e.to_string());
    let prompts: Vec<String> = std::fs::read_to_string(&args.prompts)
        .map_err(io)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    let dims = if args.dimensions.is_empty() {
        dimensions::DIMENSIONS.iter().collect::<Vec<_>>()
    } else {
        args.dimensions.iter().map(|d| dimensions::dimension(d)).collect::<Result<Vec<_>>>()?
    };
    let mut done = std::collections::HashSet::new();
    if let Ok(text) = std::fs::read_to_string(&args.out) {
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let pair: pairs::Pair = serde_json::from_str(line)
                .map_err(|e| Error::new(padlock::ErrorCode::InvalidArgument, format!("{}: {e}", args.out)))?;
            done.insert(pair.key());
        }
    }
    let mut out = std::fs::OpenOptions::new().create(true).append(true).open(&args.out).map_err(io)?;
    let total = prompts.len() * dims.len() * args.seeds.len();
    let mut made = done.len();
    for (i, prompt) in prompts.iter().enumerate() {
        for &seed in &args.seeds {
            for dim in &dims {
                if done.contains(&(dim.name.to_string(), i, seed)) {
                    continue;
                }
                let pair = pollster::block_on(pairs::make_pair(&engine, dim, i, prompt, seed, args.max_tokens))?;
                writeln!(out, "{}", serde_json::to_string(&pair).map_err(|e| Error::new(padlock::ErrorCode::Io, e.to_string()))?)
                    .map_err(io)?;
                made += 1;
                eprintln!("[{made}/{total}] {} #{i} seed {seed}: {} vs {} words", dim.name,
                    pair.chosen.split_whitespace().count(), pair.rejected.split_whitespace().count());
            }
        }
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
        Command::MakePairs(a) => make_pairs(a),
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
