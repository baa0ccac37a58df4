//! `padlock bench`: prefill and decode speed, and PAD's decode cost against plain decoding.

use clap::Args;
use padlock::align::sampler::SamplingParams;
use padlock::align::{HarmlessMode, Method, Personalization, Preference};
use padlock::backend::cpu::quant;
use padlock::backend::{Backend, LogitsWanted};
use padlock::generate::{now_seconds, Engine, GenerateOptions, Generation};
use padlock::logits::argmax;
use padlock::model::llama::Logits;
use padlock::{Error, ErrorCode, Result};

use crate::engine::{with_engine, WithEngine};
use crate::options::BackendArgs;

#[derive(Args)]
pub struct BenchArgs {
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
    harmless: HarmlessMode,
    #[command(flatten)]
    backend: BackendArgs,
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
            let harmless = args.harmless;
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
                "contexts": if n == 0 { 1 } else if args.harmless == HarmlessMode::Guideline { n + 1 } else { n + 2 },
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

pub fn run(args: BenchArgs) -> Result<()> {
    let (model, backend) = (args.model.clone(), args.backend.clone());
    with_engine(&model, &backend, BenchJob(args))
}

fn bench<B: Backend>(args: BenchArgs, engine: Engine<B>, about: String) -> Result<()> {
    if !args.preferences.is_empty() {
        return bench_pad(&engine, &args, &about);
    }
    let model = &engine.model;
    if args.batch == 0 {
        return Err(Error::new(ErrorCode::InvalidArgument, "--batch must be at least 1"));
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
