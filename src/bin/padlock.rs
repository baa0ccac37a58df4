//! `padlock`: the native command line.
//!   padlock generate --model PATH --prompt TEXT [--max-tokens N] [--greedy | --temperature T --top-p P --seed S]
//!       [--method base|prompt|pad|best-of-n --prefer TEXT ... --weight W ... --head PATH --beta B --top-k K]
//!       [--explain] [--json] [--backend cpu|gpu|auto]
//!   padlock bench --model PATH [--preferences 0,1,4] [--backend cpu|gpu|auto] [--batch B]
//!   padlock generate --model PATH --prompt TEXT --store DIR [--answers 2]   (preferences from memory)
//!   padlock make-pairs | train-head | eval   (value heads and the evaluation; see README)
//!   padlock memory --store DIR ...; padlock feedback --store DIR ...   (see memory_cli.rs)

#[path = "padlock/memory_cli.rs"]
mod memory_cli;

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use padlock::align::sampler::{argmax, SamplingParams};
use padlock::align::{ContextStyle, HarmlessMode, Method, Personalization, Preference};
use padlock::backend::cpu::{quant, CpuBackend};
use padlock::backend::{Backend, LogitsWanted};
use padlock::feedback::StopRewards;
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
    /// The preference memory in a directory: list, add, update, remove, export, import, forget.
    Memory(memory_cli::MemoryArgs),
    /// Feedback on the last answers of `generate --store DIR`: up, down, choose, remember.
    Feedback(memory_cli::FeedbackArgs),
    /// Make preference pairs by contrastive prompting (JSONL, resumable).
    MakePairs(MakePairsArgs),
    /// Train a value head with DPO on a frozen backbone from preference pairs.
    TrainHead(TrainHeadArgs),
    /// Answer an evaluation set under one configuration per dimension (JSONL, resumable), or
    /// with --report print the comparison with base as Markdown.
    Eval(EvalArgs),
}

#[derive(Args)]
struct EvalArgs {
    #[arg(long, required_unless_present = "report")]
    model: Option<String>,
    /// The prompts: [{ "id", "prompt" }] (e.g. koala_eval_50.json).
    #[arg(long, required_unless_present = "report")]
    data: Option<String>,
    /// Results (JSONL): answers already there are kept and not made again.
    #[arg(long)]
    out: String,
    /// Name of this configuration in the report (default: the method).
    #[arg(long)]
    label: Option<String>,
    /// Dimensions (comma-separated); default: all. Each one's preference steers the answers
    /// (with one dimension, --prefer TEXT replaces its wording).
    #[arg(long, value_delimiter = ',')]
    dimensions: Vec<String>,
    /// Use the trained head DIR/<dimension>.safetensors for each dimension's preference.
    #[arg(long)]
    heads_dir: Option<String>,
    /// Only the first N prompts.
    #[arg(long)]
    limit: Option<usize>,
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    #[arg(long, default_value_t = 1.1)]
    repetition_penalty: f32,
    /// PAD's k.
    #[arg(long)]
    top_k: Option<usize>,
    /// A system message for every answer (the chat template's default when absent). The
    /// preferences follow it in `prompt`, and in the PersRM contexts with `--persrm-context system`.
    #[arg(long)]
    system: Option<String>,
    /// PAD: also steer away from each dimension's opposite (`src/eval/dimensions.rs`), as a
    /// second preference with weight −W: the rewards then compare the preference with its
    /// opposite rather than with the plain chat.
    #[arg(long)]
    contrast: Option<f32>,
    #[command(flatten)]
    personalization: PersonalizationArgs,
    /// Print the Markdown report of --out instead of generating.
    #[arg(long)]
    report: bool,
}

#[derive(Args)]
struct TrainHeadArgs {
    #[arg(long)]
    model: String,
    /// Pairs (JSONL from make-pairs).
    #[arg(long)]
    pairs: String,
    /// Which dimension's pairs to learn from.
    #[arg(long)]
    dimension: String,
    /// Where to write the head (safetensors), only if it reaches --min-accuracy on held-out pairs.
    #[arg(long)]
    out: String,
    /// Held-out pairwise accuracy a head must reach to be written.
    #[arg(long, default_value_t = 0.7)]
    min_accuracy: f64,
    /// Use only the first N pairs of the dimension (smoke tests).
    #[arg(long)]
    limit: Option<usize>,
    #[arg(long, default_value_t = 16)]
    rank: usize,
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    #[arg(long, default_value_t = 1e-3)]
    learning_rate: f32,
    /// β of the DPO loss.
    #[arg(long, default_value_t = 0.1)]
    dpo_beta: f32,
    /// Candidates per position (PAD's k).
    #[arg(long, default_value_t = 10)]
    top_k: usize,
    /// Candidates need at least this fraction of the base top-1's probability, as PAD's
    /// --candidate-min-p at decode time (0: the whole top-k).
    #[arg(long, default_value_t = 0.0)]
    candidate_min_p: f32,
    /// How the PersRM context carries the preference (as PAD will use the head).
    #[arg(long, value_enum, default_value_t = ContextArg::from(Personalization::default().persrm_context))]
    persrm_context: ContextArg,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Keep the backbone's outputs here (safetensors): a later run with the same pairs,
    /// dimension, --top-k, --candidate-min-p and --persrm-context reads them instead of running the model again.
    #[arg(long)]
    cache: Option<String>,
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
    /// Sampling seeds: one pair per prompt, dimension and seed; seed 0 is greedy decoding.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    seeds: Vec<u64>,
    #[arg(long, default_value_t = 160)]
    max_tokens: usize,
    /// How the preference (and its opposite) is given to the model.
    #[arg(long, value_enum, default_value = "guideline")]
    context: ContextArg,
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
    /// Take the method, preferences, β and (unless given here) decoding settings from the
    /// memory in DIR; the answers are kept there for `padlock feedback --store DIR`.
    #[arg(long, conflicts_with_all = ["prefer", "weight", "head"])]
    store: Option<std::path::PathBuf>,
    /// How many answers to give, each with the next seed (2 for `feedback choose A|B`).
    #[arg(long, default_value_t = 1, requires = "store", value_parser = clap::value_parser!(u8).range(1..=2))]
    answers: u8,
    #[command(flatten)]
    backend: BackendArgs,
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
    #[arg(long, default_value_t = Personalization::default().beta)]
    beta: f32,
    /// PAD: keep the candidates inside this much base probability (nucleus within the top-k; 1: off).
    #[arg(long, default_value_t = Personalization::default().candidate_top_p)]
    candidate_top_p: f32,
    /// PAD: drop candidates below this fraction of the base top-1's probability (0: off).
    #[arg(long, default_value_t = Personalization::default().candidate_min_p)]
    candidate_min_p: f32,
    /// PAD: the end-of-turn token stays a candidate whenever it is in the top-k (past the
    /// floor and the nucleus). `--stop-candidate false` turns it off.
    #[arg(long, num_args = 0..=1, default_value_t = Personalization::default().stop_candidate, default_missing_value = "true", action = clap::ArgAction::Set)]
    stop_candidate: bool,
    /// Put the guideline in the base context too; the rewards are then measured against one
    /// more, unconditioned context (PAD).
    #[arg(long)]
    base_with_guideline: bool,
    /// How the PersRM contexts carry the preference: the PAD paper's guideline template
    /// around the question, or the preference as the system message (PAD).
    #[arg(long, value_enum, default_value_t = ContextArg::from(Personalization::default().persrm_context))]
    persrm_context: ContextArg,
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
    BestOfN,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
enum ContextArg {
    Guideline,
    System,
}

impl From<ContextStyle> for ContextArg {
    fn from(s: ContextStyle) -> Self {
        match s {
            ContextStyle::Guideline => ContextArg::Guideline,
            ContextStyle::System => ContextArg::System,
        }
    }
}

impl From<ContextArg> for ContextStyle {
    fn from(a: ContextArg) -> Self {
        match a {
            ContextArg::Guideline => ContextStyle::Guideline,
            ContextArg::System => ContextStyle::System,
        }
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum HarmlessArg {
    Context,
    Guideline,
}

impl PersonalizationArgs {
    /// The personalization these flags describe; value heads are loaded into `engine`
    /// under their path.
    fn resolve<B: Backend>(&self, engine: &Engine<B>, top_k: Option<usize>) -> Result<Personalization> {
        let invalid = |m: String| Error::new(padlock::ErrorCode::InvalidArgument, m);
        if self.weight.len() > self.prefer.len() {
            return Err(invalid("more --weight than --prefer".into()));
        }
        if self.head.len() > 1 && self.head.len() != self.prefer.len() {
            return Err(invalid(format!(
                "{} --head for {} --prefer: give one, or one per --prefer",
                self.head.len(),
                self.prefer.len()
            )));
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
            stop_candidate: self.stop_candidate,
            base_with_guideline: self.base_with_guideline,
            persrm_context: self.persrm_context.into(),
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
    /// Sequences decoded together in each step (PAD's 1 + P contexts); tok/s counts steps.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    #[arg(long)]
    json: bool,
    /// Instead: decode through generation (greedy, end-of-turn ignored) with each number of
    /// preferences in the list (0: plain decoding; n > 0: PAD with n preferences plus the
    /// harmlessness context), alternating for --rounds, and report each one's best decode
    /// tok/s, its ratio to plain decoding, and tok/s over the first and last quarter.
    #[arg(long, value_delimiter = ',')]
    preferences: Vec<usize>,
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// With --preferences: where the harmlessness principle goes (its own context costs one
    /// more sequence in the batch).
    #[arg(long, value_enum, default_value = "context")]
    harmless: HarmlessArg,
    #[command(flatten)]
    backend: BackendArgs,
}

fn read_model(path: &str) -> Result<Arc<Vec<u8>>> {
    let bytes = std::fs::read(path).map_err(|e| Error::new(padlock::ErrorCode::Io, format!("{path}: {e}")))?;
    Ok(Arc::new(bytes))
}

/// The model on the CPU (making pairs, training heads and the evaluation run there).
fn load(path: &str) -> Result<Engine<CpuBackend>> {
    Engine::load(CpuBackend::new(), read_model(path)?, &mut |_| {})
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

fn sampling(args: &GenerateArgs) -> SamplingParams {
    let mut sampling = if args.greedy { SamplingParams::greedy() } else { SamplingParams::default() };
    sampling.temperature = args.temperature.unwrap_or(sampling.temperature);
    sampling.top_p = args.top_p.unwrap_or(sampling.top_p);
    sampling.top_k = args.top_k.unwrap_or(sampling.top_k);
    sampling.repetition_penalty = args.repetition_penalty.unwrap_or(sampling.repetition_penalty);
    sampling.seed = args.seed.unwrap_or(sampling.seed);
    sampling
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
        Some(dir) => Some(memory_cli::personalize(dir, &options, !sampling_given)?),
        None => None,
    };
    let options = plan.as_ref().map_or(options, |p| p.options.clone());
    if options.personalization.method == Method::BestOfN {
        if args.store.is_some() {
            return Err(Error::new(
                padlock::ErrorCode::InvalidArgument,
                "--store keeps PAD answers for feedback; best-of-n is not supported with it",
            ));
        }
        return best_of_n(&engine, &args, &options);
    }
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
        let response = generate_one(&engine, &args, &options, &about)?;
        if let Some(plan) = &plan {
            responses.push(plan.response(response.text, response.tokens, &response.rewards, &response.stop_rewards));
        }
    }
    if let (Some(dir), Some(_)) = (&args.store, &plan) {
        memory_cli::save_last_answers(dir, &memory_cli::LastAnswers { prompt: args.prompt.clone(), responses })?;
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

/// Decode speed through `Generation` with `n` preferences (0: plain), end-of-turn ignored:
/// (tok/s over all tokens, over the first quarter, over the last quarter).
fn decode_speed<B: Backend>(
    engine: &Engine<B>,
    n: usize,
    tokens: usize,
    harmless: HarmlessMode,
) -> Result<(f64, f64, f64)> {
    let personalization = Personalization {
        harmless,
        method: if n == 0 { Method::Base } else { Method::Pad },
        preferences: (0..n)
            .map(|i| Preference::new(format!("Preference number {}: be helpful.", i + 1), 1.0))
            .collect(),
        ..Default::default()
    };
    let options = GenerateOptions {
        max_tokens: tokens,
        sampling: SamplingParams::greedy(),
        system: None,
        personalization,
        ignore_eos: true,
    };
    let mut gen = pollster::block_on(Generation::chat(
        engine,
        "Write a long story about a dragon who learns to bake bread.",
        &options,
    ))?;
    // The first token comes from the prefill's logits: start the clock after it.
    pollster::block_on(gen.next())?;
    let mut times = vec![now_seconds()];
    while pollster::block_on(gen.next())?.is_some() {
        times.push(now_seconds());
    }
    let rate = |a: usize, b: usize| (b - a) as f64 / (times[b] - times[a]).max(1e-9);
    let (n, q) = (times.len() - 1, (times.len() - 1) / 4);
    Ok((rate(0, n), rate(0, q.max(1)), rate(n - q.max(1), n)))
}

fn bench_pad<B: Backend>(engine: &Engine<B>, args: &BenchArgs, about: &str) -> Result<()> {
    let mut best = vec![(0.0f64, 0.0f64, 0.0f64); args.preferences.len()];
    for _ in 0..args.rounds.max(1) {
        for (i, &n) in args.preferences.iter().enumerate() {
            let harmless = match args.harmless {
                HarmlessArg::Context => HarmlessMode::Context,
                HarmlessArg::Guideline => HarmlessMode::Guideline,
            };
            let r = decode_speed(engine, n, args.decode_tokens, harmless)?;
            if r.0 > best[i].0 {
                best[i] = r;
            }
        }
    }
    let plain = args.preferences.iter().position(|&n| n == 0).map(|i| best[i].0);
    let rows: Vec<_> = args
        .preferences
        .iter()
        .zip(&best)
        .map(|(&n, &(all, first, last))| {
            serde_json::json!({
                "preferences": n,
                "contexts": if n == 0 { 1 } else if matches!(args.harmless, HarmlessArg::Guideline) { n + 1 } else { n + 2 },
                "decode_tokens_per_second": all,
                "cost_vs_plain": plain.map(|p| p / all),
                "first_quarter_tokens_per_second": first, "last_quarter_tokens_per_second": last,
            })
        })
        .collect();
    let out = serde_json::json!({
        "bench": "pad-decode", "decode_tokens": args.decode_tokens, "rounds": args.rounds,
        "backend": engine.model.backend().name(), "device": about,
        "kernel": quant::kernel_name(), "threads": rayon::current_num_threads(), "results": rows,
    });
    println!("{out}");
    Ok(())
}

struct BenchJob(BenchArgs);

impl WithEngine for BenchJob {
    fn run<B: Backend>(self, engine: Engine<B>, about: String) -> Result<()> {
        bench(self.0, engine, about)
    }
}

fn bench<B: Backend>(args: BenchArgs, engine: Engine<B>, about: String) -> Result<()> {
    if !args.preferences.is_empty() {
        return bench_pad(&engine, &args, &about);
    }
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
    let starts: Vec<Vec<u32>> =
        (0..args.batch).map(|i| prompt[i % prompt.len()..][..prompt.len().min(16)].to_vec()).collect();
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
                let pair = pollster::block_on(pairs::make_pair(
                    &engine,
                    dim,
                    i,
                    prompt,
                    args.context.into(),
                    seed,
                    args.max_tokens,
                ))?;
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string(&pair).map_err(|e| Error::new(padlock::ErrorCode::Io, e.to_string()))?
                )
                .map_err(io)?;
                made += 1;
                eprintln!(
                    "[{made}/{total}] {} #{i} seed {seed}: {} vs {} words",
                    dim.name,
                    pair.chosen.split_whitespace().count(),
                    pair.rejected.split_whitespace().count()
                );
            }
        }
    }
    Ok(())
}

fn eval(args: EvalArgs) -> Result<()> {
    use padlock::eval::{dimensions, run};
    let io = |e: std::io::Error| Error::new(padlock::ErrorCode::Io, e.to_string());
    let invalid = |m: String| Error::new(padlock::ErrorCode::InvalidArgument, m);
    let read_rows = || -> Result<Vec<run::Row>> {
        match std::fs::read_to_string(&args.out) {
            Ok(text) => text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).map_err(|e| invalid(format!("{}: {e}", args.out))))
                .collect(),
            Err(_) => Ok(Vec::new()),
        }
    };
    if args.report {
        let mut rows = read_rows()?;
        run::remeasure(&mut rows);
        print!("{}", run::report(&rows)?);
        return Ok(());
    }
    let model = args.model.as_deref().ok_or_else(|| invalid("--model is needed".into()))?;
    let engine = load(model)?;
    let data = args.data.as_deref().ok_or_else(|| invalid("--data is needed".into()))?;
    let mut prompts: Vec<run::Prompt> = serde_json::from_str(&std::fs::read_to_string(data).map_err(io)?)
        .map_err(|e| invalid(format!("{data}: {e}")))?;
    prompts.truncate(args.limit.unwrap_or(usize::MAX));
    let mut pers = args.personalization.resolve(&engine, args.top_k)?;
    let dims: Vec<&dimensions::Dimension> = if pers.method == Method::Base {
        Vec::new()
    } else if args.dimensions.is_empty() {
        dimensions::DIMENSIONS.iter().collect()
    } else {
        args.dimensions.iter().map(|d| dimensions::dimension(d)).collect::<Result<_>>()?
    };
    let wording = match args.personalization.prefer.as_slice() {
        [] => None,
        [text] if dims.len() == 1 => Some(text.clone()),
        _ => return Err(invalid("eval takes one --prefer, and only with one dimension".into())),
    };
    if args.contrast.is_some() && pers.method != Method::Pad {
        return Err(invalid("--contrast steers PAD's rewards; it needs --method pad".into()));
    }
    let label = args.label.clone().unwrap_or_else(|| format!("{:?}", pers.method).to_lowercase());
    let done: std::collections::HashSet<(String, String, String)> =
        read_rows()?.into_iter().map(|r| (r.label, r.dimension, r.id)).collect();
    let mut out = std::fs::OpenOptions::new().create(true).append(true).open(&args.out).map_err(io)?;
    let sampling = SamplingParams { repetition_penalty: args.repetition_penalty, ..SamplingParams::greedy() };
    let mut jobs: Vec<(Option<&dimensions::Dimension>, &run::Prompt)> = Vec::new();
    for p in &prompts {
        if dims.is_empty() {
            jobs.push((None, p));
        }
        for d in &dims {
            jobs.push((Some(*d), p));
        }
    }
    let t0 = now_seconds();
    for (i, (dim, p)) in jobs.iter().enumerate() {
        let dim_name = dim.map_or("-".to_string(), |d| d.name.to_string());
        if done.contains(&(label.clone(), dim_name.clone(), p.id.clone())) {
            continue;
        }
        if let Some(d) = dim {
            let head = match &args.heads_dir {
                Some(dir) => {
                    let path = format!("{dir}/{}.safetensors", d.name);
                    let bytes =
                        std::fs::read(&path).map_err(|e| Error::new(padlock::ErrorCode::Io, format!("{path}: {e}")))?;
                    engine.load_head(&path, &bytes)?;
                    Some(path)
                }
                None => None,
            };
            pers.preferences =
                vec![Preference { text: wording.clone().unwrap_or_else(|| d.prefer.into()), weight: 1.0, head }];
            if let Some(w) = args.contrast {
                pers.preferences.push(Preference::new(d.opposite, -w));
            }
        }
        let options = GenerateOptions {
            max_tokens: args.max_tokens,
            sampling: sampling.clone(),
            system: args.system.clone(),
            personalization: pers.clone(),
            ignore_eos: false,
        };
        let (text, tokens) = pollster::block_on(run::answer(&engine, &p.prompt, &options))?;
        let row = run::Row {
            label: label.clone(),
            method: pers.method,
            dimension: dim_name,
            preference: pers.preferences.first().map(|p| p.text.clone()),
            id: p.id.clone(),
            prompt: p.prompt.clone(),
            measures: padlock::eval::measures::Measures::of(&p.prompt, &text),
            text,
            tokens,
        };
        // One write per row: runs of other configurations may append to the same file.
        let line = serde_json::to_string(&row).map_err(|e| invalid(e.to_string()))? + "\n";
        out.write_all(line.as_bytes()).map_err(io)?;
        eprintln!(
            "[{label} {}/{} {:.0}s] {} #{}: {} words",
            i + 1,
            jobs.len(),
            now_seconds() - t0,
            row.dimension,
            row.id,
            row.measures.words
        );
    }
    Ok(())
}

/// Pairs of the held-out split: every fifth prompt (by prompt index), 20%.
fn held_out(prompt_index: usize) -> bool {
    prompt_index % 5 == 4
}

fn train_head(args: TrainHeadArgs) -> Result<()> {
    use padlock::align::dpo::{self, Answer, DpoConfig, LmHeadRows, TrainPair};
    use padlock::eval::{dimensions, pairs::Pair};
    let io = |e: std::io::Error| Error::new(padlock::ErrorCode::Io, e.to_string());
    let invalid = |m: String| Error::new(padlock::ErrorCode::InvalidArgument, m);
    let dim = dimensions::dimension(&args.dimension)?;
    let bytes = read_model(&args.model)?;
    let engine = Engine::load(CpuBackend::new(), bytes.clone(), &mut |_| {})?;
    let mut pairs = Vec::new();
    for (n, line) in
        std::fs::read_to_string(&args.pairs).map_err(io)?.lines().enumerate().filter(|(_, l)| !l.trim().is_empty())
    {
        let pair: Pair =
            serde_json::from_str(line).map_err(|e| invalid(format!("{} line {}: {e}", args.pairs, n + 1)))?;
        if pair.dimension == dim.name {
            pairs.push(pair);
        }
    }
    pairs.truncate(args.limit.unwrap_or(usize::MAX));
    let (train, held): (Vec<usize>, Vec<usize>) = (0..pairs.len()).partition(|&i| !held_out(pairs[i].prompt_index));
    if train.is_empty() || held.is_empty() {
        return Err(invalid(format!(
            "{} pairs of {:?}: need some to train on and some held out",
            pairs.len(),
            dim.name
        )));
    }
    let preference = pairs[0].preference.clone();
    let answers: Vec<TrainPair> = pairs
        .iter()
        .map(|p| TrainPair {
            chosen: Answer { prompt: p.prompt.clone(), ids: p.chosen_ids.clone(), eos: p.chosen_eos },
            rejected: Answer { prompt: p.prompt.clone(), ids: p.rejected_ids.clone(), eos: p.rejected_eos },
        })
        .collect();
    let t0 = now_seconds();
    let cached = match &args.cache {
        Some(path) => match std::fs::read(path) {
            Ok(bytes) => Some(dpo::Features::from_safetensors(&bytes)?),
            Err(_) => None,
        },
        None => None,
    };
    let features = match cached {
        Some(f)
            if f.settings
                == dpo::settings(
                    &preference,
                    args.persrm_context.into(),
                    answers.len(),
                    args.top_k,
                    args.candidate_min_p,
                ) =>
        {
            eprintln!("[features from {}]", args.cache.as_deref().unwrap_or_default());
            f
        }
        _ => {
            let f = pollster::block_on(dpo::extract(
                &engine,
                &preference,
                args.persrm_context.into(),
                &answers,
                args.top_k,
                args.candidate_min_p,
                &mut |done, total| {
                    if done % 10 == 0 || done == total {
                        eprintln!("[features {done}/{total}]");
                    }
                },
            ))?;
            if let Some(path) = &args.cache {
                std::fs::write(path, f.to_safetensors()?).map_err(io)?;
            }
            f
        }
    };
    let t_features = now_seconds() - t0;
    // The LM head on the host, for scoring candidates.
    let file = padlock::model::gguf::GgufFile::parse(bytes)?;
    let info = file
        .tensor("output.weight")
        .or_else(|| file.tensor("token_embd.weight"))
        .ok_or_else(|| invalid("no LM head".into()))?;
    let mut rows = vec![0f32; info.n_elements()];
    quant::dequantize_row(info.dtype, file.tensor_data(info), &mut rows)?;
    let lm = LmHeadRows { rows: &rows, hidden: features.hidden };
    let cfg = DpoConfig {
        rank: args.rank,
        epochs: args.epochs,
        learning_rate: args.learning_rate,
        beta: args.dpo_beta,
        batch: 8,
        seed: args.seed,
    };
    let identity_train = dpo::pairwise_accuracy(&features, &lm, None, &train);
    let identity_held = dpo::pairwise_accuracy(&features, &lm, None, &held);
    eprintln!("identity head: train accuracy {identity_train:.3}, held-out {identity_held:.3}");
    let t1 = now_seconds();
    let head = dpo::train(&features, &lm, &train, &cfg, &mut |epoch, loss, head| {
        let acc = dpo::pairwise_accuracy(&features, &lm, Some(head), &train);
        eprintln!("epoch {epoch}: train loss {loss:.4}, train accuracy {acc:.3}");
    })?;
    let t_train = now_seconds() - t1;
    let train_acc = dpo::pairwise_accuracy(&features, &lm, Some(&head), &train);
    let held_acc = dpo::pairwise_accuracy(&features, &lm, Some(&head), &held);
    let report = serde_json::json!({
        "dimension": dim.name,
        "preference": preference,
        "pairs": pairs.len(), "train_pairs": train.len(), "heldout_pairs": held.len(),
        "positions": features.target.len(),
        "identity_train_accuracy": identity_train, "identity_heldout_accuracy": identity_held,
        "train_accuracy": train_acc, "heldout_accuracy": held_acc,
        "rank": cfg.rank, "epochs": cfg.epochs, "learning_rate": cfg.learning_rate, "dpo_beta": cfg.beta,
        "top_k": args.top_k, "candidate_min_p": args.candidate_min_p,
        "persrm_context": ContextStyle::from(args.persrm_context).name(), "seed": cfg.seed,
        "feature_seconds": t_features, "train_seconds": t_train,
        "shipped": held_acc >= args.min_accuracy,
    });
    println!("{report}");
    if held_acc < args.min_accuracy {
        return Err(invalid(format!(
            "held-out accuracy {held_acc:.3} is below {}: no head written",
            args.min_accuracy
        )));
    }
    let metadata = report
        .as_object()
        .map(|o| {
            o.iter().map(|(k, v)| (k.clone(), v.as_str().map(String::from).unwrap_or_else(|| v.to_string()))).collect()
        })
        .unwrap_or_default();
    std::fs::write(&args.out, head.to_safetensors(&metadata)?).map_err(io)?;
    eprintln!("wrote {}", args.out);
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
        Command::Memory(a) => memory_cli::memory(a),
        Command::Feedback(a) => memory_cli::feedback(a),
        Command::MakePairs(a) => make_pairs(a),
        Command::TrainHead(a) => train_head(a),
        Command::Eval(a) => eval(a),
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
