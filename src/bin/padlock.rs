//! `padlock`: the native command line.
//!   padlock generate --model PATH --prompt TEXT [--max-tokens N] [--greedy | --temperature T --top-p P --seed S] [--json]
//!                    [--backend cpu|gpu|auto]
//!   padlock bench --model PATH [--backend cpu|gpu|auto] [--batch B]

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use padlock::align::sampler::{argmax, SamplingParams};
use padlock::align::{Method, Personalization, Preference};
use padlock::backend::cpu::{quant, CpuBackend};
use padlock::backend::{Backend, LogitsWanted};
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
    #[command(flatten)]
    backend: BackendArgs,
}

#[derive(Args, Clone)]
struct BackendArgs {
    /// cpu: the SIMD CPU kernels; gpu: wgpu (Vulkan/Metal/DX12); auto: the GPU when an
    /// adapter exists (software ones such as lavapipe included), else the CPU.
    #[arg(long, value_enum, default_value = "cpu")]
    backend: BackendArg,
    /// GPU: do not use subgroup operations even where the adapter offers them.
    #[arg(long)]
    no_subgroups: bool,
    /// GPU kernel family: auto (per-thread on a software adapter, else workgroup).
    #[arg(long, value_enum, default_value = "auto")]
    kernels: KernelsArg,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum KernelsArg {
    Auto,
    Workgroup,
    PerThread,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum BackendArg {
    Cpu,
    Gpu,
    Auto,
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
    /// Sequences decoded together in each step (PAD's 1 + P contexts); tok/s counts steps.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    backend: BackendArgs,
}

fn read_model(path: &str) -> Result<Arc<Vec<u8>>> {
    let bytes = std::fs::read(path).map_err(|e| Error::new(padlock::ErrorCode::Io, format!("{path}: {e}")))?;
    Ok(Arc::new(bytes))
}

/// What a command does with a loaded engine, whichever backend it is on.
trait WithEngine {
    fn run<B: Backend>(self, engine: Engine<B>, about: String) -> Result<()>;
}

/// Loads the model on the backend `args` asks for and hands it to `job`.
fn with_engine(model: &str, args: &BackendArgs, job: impl WithEngine) -> Result<()> {
    let bytes = read_model(model)?;
    #[cfg(feature = "gpu")]
    if args.backend != BackendArg::Cpu {
        use padlock::backend::gpu::{GpuBackend, GpuOptions, Kernels};
        let kernels = match args.kernels {
            KernelsArg::Auto => Kernels::Auto,
            KernelsArg::Workgroup => Kernels::Workgroup,
            KernelsArg::PerThread => Kernels::PerThread,
        };
        let options = GpuOptions { subgroups: !args.no_subgroups, kernels, ..Default::default() };
        match pollster::block_on(GpuBackend::with_options(options)) {
            Ok(gpu) => {
                let i = gpu.info().clone();
                let about = format!(
                    "webgpu on {} ({}, {}, {} kernels{})",
                    i.name,
                    i.api,
                    i.device_type,
                    i.kernels,
                    if i.subgroups { ", subgroups" } else { "" }
                );
                return job.run(Engine::load(gpu, bytes, &mut |_| {})?, about);
            }
            Err(e) if args.backend == BackendArg::Auto => eprintln!("[no GPU ({}); using the CPU]", e.message),
            Err(e) => return Err(e),
        }
    }
    #[cfg(not(feature = "gpu"))]
    if args.backend == BackendArg::Gpu {
        return Err(Error::new(padlock::ErrorCode::GpuUnavailable, "this build has no GPU backend (feature `gpu`)"));
    }
    job.run(Engine::load(CpuBackend::new(), bytes, &mut |_| {})?, format!("cpu, kernel {}", quant::kernel_name()))
}

struct GenerateJob(GenerateArgs);

impl WithEngine for GenerateJob {
    fn run<B: Backend>(self, engine: Engine<B>, about: String) -> Result<()> {
        generate(self.0, engine, about)
    }
}

fn generate<B: Backend>(args: GenerateArgs, engine: Engine<B>, about: String) -> Result<()> {
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
            "backend": engine.model.backend().name(),
        });
        println!("{out}");
    } else {
        println!();
        eprintln!(
            "[{} prompt tokens at {prefill_tps:.1} tok/s, {} generated at {decode_tps:.1} tok/s, {about}]",
            gen.prompt_ids().len(),
            gen.generated().len(),
        );
    }
    Ok(())
}

struct BenchJob(BenchArgs);

impl WithEngine for BenchJob {
    fn run<B: Backend>(self, engine: Engine<B>, about: String) -> Result<()> {
        bench(self.0, engine, about)
    }
}

fn bench<B: Backend>(args: BenchArgs, engine: Engine<B>, about: String) -> Result<()> {
    let model = &engine.model;
    if args.batch == 0 {
        return Err(Error::new(padlock::ErrorCode::InvalidArgument, "--batch must be at least 1"));
    }
    // A prompt of exactly `prompt_tokens` tokens: a paragraph of text, repeated as needed.
    let text = "The quick brown fox jumps over the lazy dog while the river runs to the sea. ";
    let unit = engine.tokenizer.encode(text)?;
    let prompt: Vec<u32> = unit.iter().copied().cycle().take(args.prompt_tokens.max(1)).collect();

    // Prefill: best of three runs of the whole prompt (the first also warms the GPU's pipelines).
    let mut prefill_s = f64::INFINITY;
    for _ in 0..3 {
        let mut seq = model.new_sequence()?;
        let t = now_seconds();
        pollster::block_on(model.forward_one(&mut seq, &prompt, Logits::Last))?;
        prefill_s = prefill_s.min(now_seconds() - t);
    }
    // Decode: `batch` sequences (different prompts) advance one token per step, greedy on
    // each (its argmax, read back as top-1), never stopping early.
    let mut seqs = (0..args.batch).map(|_| model.new_sequence()).collect::<Result<Vec<_>>>()?;
    let starts: Vec<Vec<u32>> = (0..args.batch).map(|i| prompt[i % prompt.len()..][..prompt.len().min(16)].to_vec()).collect();
    let top1 = LogitsWanted::Top { k: 1, also: Vec::new() };
    let vocab = model.config.vocab_size;
    let step = |seqs: &mut Vec<_>, tokens: &[Vec<u32>]| -> Result<Vec<u32>> {
        let refs: Vec<&[u32]> = tokens.iter().map(|t| t.as_slice()).collect();
        let logits = pollster::block_on(model.forward_batch_wanting(seqs, &refs, &top1))?;
        Ok(logits.chunks(vocab).map(argmax).collect())
    };
    let mut next = step(&mut seqs, &starts)?;
    // One untimed step, so that decode pipelines are compiled before the clock starts.
    next = step(&mut seqs, &next.iter().map(|&t| vec![t]).collect::<Vec<_>>())?;
    let t = now_seconds();
    for _ in 0..args.decode_tokens {
        next = step(&mut seqs, &next.iter().map(|&t| vec![t]).collect::<Vec<_>>())?;
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
                "batch": args.batch, "decode_step_ms": decode_s * 1000.0 / args.decode_tokens as f64,
                "backend": model.backend().name(), "device": about,
                "kernel": quant::kernel_name(), "threads": threads,
            })
        );
    } else {
        println!("{about}; {threads} CPU threads");
        println!("prefill: {} tokens at {prefill_tps:.1} tok/s", prompt.len());
        println!(
            "decode:  {} steps of {} sequences at {decode_tps:.1} steps/s ({:.2} ms a step)",
            args.decode_tokens,
            args.batch,
            decode_s * 1000.0 / args.decode_tokens as f64
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Run everything inside the thread pool: a kernel call made from a pool thread hands work
    // to the other threads far faster than one made from outside, which waits for them to
    // wake (about 3.5 ms of a 9 ms decode step on 2 cores).
    let run = || match cli.command {
        Command::Generate(a) => {
            let (model, backend) = (a.model.clone(), a.backend.clone());
            with_engine(&model, &backend, GenerateJob(a))
        }
        Command::Bench(a) => {
            let (model, backend) = (a.model.clone(), a.backend.clone());
            with_engine(&model, &backend, BenchJob(a))
        }
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
