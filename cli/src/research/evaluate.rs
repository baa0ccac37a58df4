//! `padlock eval`: an evaluation set answered under one configuration per dimension
//! (JSONL, resumable), or with --report the comparison with base as Markdown.

use std::io::Write;

use std::collections::HashSet;

use clap::Args;
use padlock::align::sampler::SamplingParams;
use padlock::align::{Method, Personalization, Preference};
use padlock::backend::cpu::CpuBackend;
use padlock::generate::{now_seconds, Engine, GenerateOptions};
use padlock::{Error, ErrorCode, Result};

use crate::research::eval::dimensions::{self, Dimension};
use crate::research::eval::measures::Measures;
use crate::research::eval::run;

use crate::engine::load;
use crate::options::PersonalizationArgs;

#[derive(Args)]
pub struct EvalArgs {
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
    /// PAD: also steer away from each dimension's opposite (`research/eval/dimensions.rs`), as a
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

fn invalid(m: String) -> Error {
    Error::new(ErrorCode::InvalidArgument, m)
}

fn io(e: std::io::Error) -> Error {
    Error::new(ErrorCode::Io, e.to_string())
}

/// The rows already in `out` (none if it does not exist yet).
fn read_rows(out: &str) -> Result<Vec<run::Row>> {
    match std::fs::read_to_string(out) {
        Ok(text) => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map_err(|e| invalid(format!("{out}: {e}"))))
            .collect(),
        Err(_) => Ok(Vec::new()),
    }
}

pub fn run(args: EvalArgs) -> Result<()> {
    if args.report {
        let mut rows = read_rows(&args.out)?;
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
    let pers = args.personalization.resolve(&engine, args.top_k)?;
    let dims: Vec<&Dimension> = if pers.method == Method::Base {
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
    let mut jobs: Vec<(Option<&Dimension>, &run::Prompt)> = Vec::new();
    for p in &prompts {
        if dims.is_empty() {
            jobs.push((None, p));
        }
        jobs.extend(dims.iter().map(|d| (Some(*d), p)));
    }
    answer_all(&args, &engine, pers, wording, &jobs)
}

/// Answers every (dimension, prompt) job not yet in `args.out`, appending one row each.
fn answer_all(
    args: &EvalArgs,
    engine: &Engine<CpuBackend>,
    mut pers: Personalization,
    wording: Option<String>,
    jobs: &[(Option<&Dimension>, &run::Prompt)],
) -> Result<()> {
    let label = args.label.clone().unwrap_or_else(|| format!("{:?}", pers.method).to_lowercase());
    let done: HashSet<(String, String, String)> =
        read_rows(&args.out)?.into_iter().map(|r| (r.label, r.dimension, r.id)).collect();
    let mut out = std::fs::OpenOptions::new().create(true).append(true).open(&args.out).map_err(io)?;
    let sampling = SamplingParams { repetition_penalty: args.repetition_penalty, ..SamplingParams::greedy() };
    let t0 = now_seconds();
    for (i, (dim, p)) in jobs.iter().enumerate() {
        let dim_name = dim.map_or("-".to_string(), |d| d.name.to_string());
        if done.contains(&(label.clone(), dim_name.clone(), p.id.clone())) {
            continue;
        }
        if let Some(d) = dim {
            pers.preferences = steering(args, engine, d, wording.as_deref())?;
        }
        let options = GenerateOptions {
            max_tokens: args.max_tokens,
            sampling: sampling.clone(),
            system: args.system.clone(),
            personalization: pers.clone(),
            ignore_eos: false,
        };
        let (text, tokens) = pollster::block_on(run::answer(engine, &p.prompt, &options))?;
        let row = run::Row {
            label: label.clone(),
            method: pers.method,
            dimension: dim_name,
            preference: pers.preferences.first().map(|p| p.text.clone()),
            id: p.id.clone(),
            prompt: p.prompt.clone(),
            measures: Measures::of(&p.prompt, &text),
            text,
            tokens,
        };
        // One write per row: runs of other configurations may append to the same file.
        let line = serde_json::to_string(&row).map_err(|e| invalid(e.to_string()))? + "\n";
        out.write_all(line.as_bytes()).map_err(io)?;
        let (n, elapsed) = (jobs.len(), now_seconds() - t0);
        eprintln!("[{label} {}/{n} {elapsed:.0}s] {} #{}: {} words", i + 1, row.dimension, row.id, row.measures.words);
    }
    Ok(())
}

/// The preferences one dimension's answers are steered by: its wording (or `wording`), with the
/// dimension's value head from `--heads-dir`, and its opposite at −`--contrast`.
fn steering(
    args: &EvalArgs,
    engine: &Engine<CpuBackend>,
    d: &Dimension,
    wording: Option<&str>,
) -> Result<Vec<Preference>> {
    let head = match &args.heads_dir {
        Some(dir) => {
            let path = format!("{dir}/{}.safetensors", d.name);
            let bytes = std::fs::read(&path).map_err(|e| Error::new(ErrorCode::Io, format!("{path}: {e}")))?;
            engine.load_head(&path, &bytes)?;
            Some(path)
        }
        None => None,
    };
    let mut preferences = vec![Preference { head, ..Preference::new(wording.unwrap_or(d.prefer), 1.0) }];
    if let Some(w) = args.contrast {
        preferences.push(Preference { away: true, ..Preference::new(d.opposite, w) });
    }
    Ok(preferences)
}
