//! `padlock make-pairs`: preference pairs by contrastive prompting (JSONL, resumable).

use std::io::Write;

use clap::Args;
use padlock::align::ContextStyle;
use padlock::{Error, ErrorCode, Result};

use crate::engine::load;

#[derive(Args)]
pub struct MakePairsArgs {
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
    context: ContextStyle,
    /// Output JSONL; pairs already in it are kept and not made again.
    #[arg(long)]
    out: String,
}

pub fn run(args: MakePairsArgs) -> Result<()> {
    use crate::research::eval::{dimensions, pairs};
    let engine = load(&args.model)?;
    let io = |e: std::io::Error| Error::new(ErrorCode::Io, e.to_string());
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
                .map_err(|e| Error::new(ErrorCode::InvalidArgument, format!("{}: {e}", args.out)))?;
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
                let pair =
                    pollster::block_on(pairs::make_pair(&engine, dim, i, prompt, args.context, seed, args.max_tokens))?;
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string(&pair).map_err(|e| Error::new(ErrorCode::Io, e.to_string()))?
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
