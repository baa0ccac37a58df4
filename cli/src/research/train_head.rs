//! `padlock train-head`: a value head trained with DPO on a frozen backbone from preference pairs.

use std::sync::Arc;

use clap::Args;
use padlock::align::head::LowRankHead;
use padlock::align::{ContextStyle, Personalization};
use padlock::backend::cpu::{quant, CpuBackend};
use padlock::generate::{now_seconds, Engine};
use padlock::gguf::GgufFile;
use padlock::{Error, ErrorCode, Result};

use crate::engine::read_model;
use crate::research::dpo::{self, Answer, DpoConfig, Features, LmHeadRows, TrainPair};
use crate::research::eval::dimensions;
use crate::research::eval::pairs::Pair;

#[derive(Args)]
pub struct TrainHeadArgs {
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
    #[arg(long, value_enum, default_value_t = Personalization::default().persrm_context)]
    persrm_context: ContextStyle,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Keep the backbone's outputs here (safetensors): a later run with the same pairs,
    /// dimension, --top-k, --candidate-min-p and --persrm-context reads them instead of running the model again.
    #[arg(long)]
    cache: Option<String>,
}

/// Pairs of the held-out split: every fifth prompt (by prompt index), 20%.
fn held_out(prompt_index: usize) -> bool {
    prompt_index % 5 == 4
}

fn invalid(m: String) -> Error {
    Error::new(ErrorCode::InvalidArgument, m)
}

fn io(e: std::io::Error) -> Error {
    Error::new(ErrorCode::Io, e.to_string())
}

/// The pairs of one dimension in the JSONL file `path`, at most `limit`.
fn read_pairs(path: &str, dimension: &str, limit: Option<usize>) -> Result<Vec<Pair>> {
    let mut pairs = Vec::new();
    for (n, line) in
        std::fs::read_to_string(path).map_err(io)?.lines().enumerate().filter(|(_, l)| !l.trim().is_empty())
    {
        let pair: Pair = serde_json::from_str(line).map_err(|e| invalid(format!("{path} line {}: {e}", n + 1)))?;
        if pair.dimension == dimension {
            pairs.push(pair);
        }
    }
    pairs.truncate(limit.unwrap_or(usize::MAX));
    Ok(pairs)
}

/// The backbone's outputs on every answer: from `--cache` when it holds these settings, else
/// computed (and kept there).
fn features(
    args: &TrainHeadArgs,
    engine: &Engine<CpuBackend>,
    preference: &str,
    answers: &[TrainPair],
) -> Result<Features> {
    let cached = match &args.cache {
        Some(path) => std::fs::read(path).ok().map(|bytes| Features::from_safetensors(&bytes)).transpose()?,
        None => None,
    };
    let settings = dpo::settings(preference, args.persrm_context, answers.len(), args.top_k, args.candidate_min_p);
    if let Some(f) = cached.filter(|f| f.settings == settings) {
        eprintln!("[features from {}]", args.cache.as_deref().unwrap_or_default());
        return Ok(f);
    }
    let f = pollster::block_on(dpo::extract(
        engine,
        preference,
        args.persrm_context,
        answers,
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
    Ok(f)
}

/// The LM head on the host, dequantized, for scoring candidates.
fn lm_head(bytes: Arc<Vec<u8>>) -> Result<Vec<f32>> {
    let file = GgufFile::parse(bytes)?;
    let info = file
        .tensor("output.weight")
        .or_else(|| file.tensor("token_embd.weight"))
        .ok_or_else(|| invalid("no LM head".into()))?;
    let mut rows = vec![0f32; info.n_elements()];
    quant::dequantize_row(info.dtype, file.tensor_data(info), &mut rows)?;
    Ok(rows)
}

pub fn run(args: TrainHeadArgs) -> Result<()> {
    let dim = dimensions::dimension(&args.dimension)?;
    let bytes = read_model(&args.model)?;
    let engine = Engine::load(CpuBackend::new(), bytes.clone(), &mut |_| {})?;
    let pairs = read_pairs(&args.pairs, dim.name, args.limit)?;
    let (train, held): (Vec<usize>, Vec<usize>) = (0..pairs.len()).partition(|&i| !held_out(pairs[i].prompt_index));
    if train.is_empty() || held.is_empty() {
        let n = pairs.len();
        return Err(invalid(format!("{n} pairs of {:?}: need some to train on and some held out", dim.name)));
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
    let features = features(&args, &engine, &preference, &answers)?;
    let t_features = now_seconds() - t0;
    let rows = lm_head(bytes)?;
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
        "persrm_context": args.persrm_context.name(), "seed": cfg.seed,
        "feature_seconds": t_features, "train_seconds": t_train,
        "shipped": held_acc >= args.min_accuracy,
    });
    println!("{report}");
    write_head(&args, &report, held_acc, &head)
}

/// Writes the head with the report as its metadata, if it reached `--min-accuracy` held out.
fn write_head(args: &TrainHeadArgs, report: &serde_json::Value, held_acc: f64, head: &LowRankHead) -> Result<()> {
    if held_acc < args.min_accuracy {
        let min = args.min_accuracy;
        return Err(invalid(format!("held-out accuracy {held_acc:.3} is below {min}: no head written")));
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
