//! `padlock memory` and `padlock feedback`: the preference memory on the command line, kept
//! in a directory (`--store DIR`, see `padlock::memory::file`).
//!
//!   padlock memory --store DIR list [--json]
//!   padlock memory --store DIR add TEXT [--weight W]
//!   padlock memory --store DIR update ID [--text T] [--weight W] [--enable | --disable] [--reset-learned]
//!   padlock memory --store DIR remove ID
//!   padlock memory --store DIR export FILE [--passphrase P | --passphrase-env VAR] [--skip-unreadable]
//!   padlock memory --store DIR import FILE [--passphrase P | --passphrase-env VAR]
//!   padlock memory --store DIR profile [--beta B] [--max-active N] [--method M] [--candidates K]
//!   padlock memory --store DIR forget
//!   padlock feedback --store DIR up | down [--answer A]   (on the last answer of `generate --store DIR`)
//!   padlock feedback --store DIR choose A|B               (after `generate --store DIR --answers 2`)
//!   padlock feedback --store DIR remember TEXT
//!   padlock feedback --store DIR log [--json] | rebuild

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use padlock::generate::GenerateOptions;
use padlock::memory::file::FileStore;
use padlock::memory::{FeedbackInput, FeedbackKind, Memory, Personalized, PreferenceChange, Response, Source};
use padlock::{Error, ErrorCode, Result};
use serde::{Deserialize, Serialize};

/// The answers of the last `generate --store DIR`, kept in DIR for `padlock feedback`.
const LAST_ANSWERS: &str = "last-answers.json";

#[derive(Args)]
pub struct MemoryArgs {
    /// The directory that holds the memory (created if missing).
    #[arg(long)]
    pub store: PathBuf,
    #[command(subcommand)]
    command: MemoryCommand,
}

#[derive(Subcommand)]
enum MemoryCommand {
    /// The preferences, the harmlessness principle first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Adds a preference.
    Add {
        text: String,
        #[arg(long)]
        weight: Option<f64>,
    },
    /// Changes a preference.
    Update {
        id: String,
        #[arg(long)]
        text: Option<String>,
        #[arg(long)]
        weight: Option<f64>,
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        #[arg(long)]
        disable: bool,
        /// Forget what feedback learned for it.
        #[arg(long)]
        reset_learned: bool,
    },
    /// Removes a preference.
    Remove { id: String },
    /// Writes the whole memory to FILE as JSON (sealed with a passphrase if one is given).
    Export {
        file: PathBuf,
        #[command(flatten)]
        passphrase: Passphrase,
        /// Leave out records that cannot be read instead of failing.
        #[arg(long)]
        skip_unreadable: bool,
    },
    /// Replaces the whole memory with FILE's contents (all or nothing).
    Import {
        file: PathBuf,
        #[command(flatten)]
        passphrase: Passphrase,
    },
    /// Shows the profile, changing the settings given.
    Profile {
        #[arg(long)]
        beta: Option<f32>,
        #[arg(long)]
        max_active: Option<usize>,
        #[arg(long)]
        candidates: Option<usize>,
        /// base, prompt or pad.
        #[arg(long)]
        method: Option<String>,
    },
    /// Deletes the memory and its directory.
    Forget,
}

#[derive(Args)]
struct Passphrase {
    /// The passphrase (visible to other users in the process list: prefer --passphrase-env).
    #[arg(long, conflicts_with = "passphrase_env")]
    passphrase: Option<String>,
    /// The name of an environment variable holding the passphrase.
    #[arg(long)]
    passphrase_env: Option<String>,
}

impl Passphrase {
    fn get(&self) -> Result<Option<String>> {
        match (&self.passphrase, &self.passphrase_env) {
            (Some(p), _) => Ok(Some(p.clone())),
            (None, Some(var)) => std::env::var(var)
                .map(Some)
                .map_err(|_| Error::new(ErrorCode::InvalidArgument, format!("${var} is not set"))),
            (None, None) => Ok(None),
        }
    }
}

#[derive(Args)]
pub struct FeedbackArgs {
    #[arg(long)]
    pub store: PathBuf,
    #[command(subcommand)]
    command: FeedbackCommand,
}

#[derive(Subcommand)]
enum FeedbackCommand {
    /// Thumbs up on the last answer (or answer A/B of the last two).
    Up {
        #[arg(long, default_value = "A")]
        answer: String,
    },
    /// Thumbs down on the last answer (or answer A/B of the last two).
    Down {
        #[arg(long, default_value = "A")]
        answer: String,
    },
    /// Prefers answer A or B of the last `generate --answers 2`.
    Choose { answer: String },
    /// "Remember this": adds TEXT as an explicit preference.
    Remember { text: String },
    /// The feedback log, in replay order.
    Log {
        #[arg(long)]
        json: bool,
    },
    /// Recomputes the learned weights by replaying the log.
    Rebuild,
}

/// What `generate --store` leaves for `feedback`.
#[derive(Serialize, Deserialize)]
pub struct LastAnswers {
    pub prompt: String,
    pub responses: Vec<Response>,
}

fn open(dir: &Path) -> Result<Memory<FileStore>> {
    Ok(Memory::new(FileStore::open(dir)?))
}

fn print_json<T: Serialize>(value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::new(ErrorCode::Io, e.to_string()))?;
    println!("{text}");
    Ok(())
}

fn read_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::new(ErrorCode::Io, format!("{}: {e}", path.display())))
}

pub fn memory(args: MemoryArgs) -> Result<()> {
    let dir = &args.store;
    pollster::block_on(async {
        match args.command {
            MemoryCommand::List { json } => {
                let m = open(dir)?;
                let loaded = m.preferences().await?;
                if json {
                    return print_json(
                        &serde_json::json!({ "preferences": loaded.items, "unreadable": loaded.unreadable }),
                    );
                }
                for p in &loaded.items {
                    let learned =
                        if p.learned != 0.0 { format!(" ({:+.3} learned)", p.learned) } else { String::new() };
                    let state = if p.enabled { "" } else { " [disabled]" };
                    println!("{}  {:.3}{learned}{state}  {}", p.id, p.effective_weight(), p.text);
                }
                for u in &loaded.unreadable {
                    println!("{}  unreadable: {}", u.id, u.error);
                }
                Ok(())
            }
            MemoryCommand::Add { text, weight } => {
                let p = open(dir)?.add(&text, weight, Source::Explicit).await?;
                println!("{}", p.id);
                Ok(())
            }
            MemoryCommand::Update { id, text, weight, enable, disable, reset_learned } => {
                let enabled = if enable {
                    Some(true)
                } else if disable {
                    Some(false)
                } else {
                    None
                };
                let change = PreferenceChange { text, weight, enabled, reset_learned };
                let p = open(dir)?.update(&id, &change).await?;
                println!("{}  {:.3}  {}", p.id, p.effective_weight(), p.text);
                Ok(())
            }
            MemoryCommand::Remove { id } => open(dir)?.remove(&id).await,
            MemoryCommand::Export { file, passphrase, skip_unreadable } => {
                let text = open(dir)?.export(passphrase.get()?.as_deref(), skip_unreadable).await?;
                std::fs::write(&file, text).map_err(|e| Error::new(ErrorCode::Io, format!("{}: {e}", file.display())))
            }
            MemoryCommand::Import { file, passphrase } => {
                let c = open(dir)?.import(&read_file(&file)?, passphrase.get()?.as_deref()).await?;
                eprintln!(
                    "imported {} preferences, {} feedback events, {} value heads",
                    c.preferences.len(),
                    c.events.len(),
                    c.value_heads.len()
                );
                Ok(())
            }
            MemoryCommand::Profile { beta, max_active, candidates, method } => {
                let m = open(dir)?;
                let mut profile = m.profile().await?;
                let changed = beta.is_some() || max_active.is_some() || candidates.is_some() || method.is_some();
                if let Some(b) = beta {
                    profile.beta = b;
                }
                if let Some(n) = max_active {
                    profile.max_active = n;
                }
                if let Some(k) = candidates {
                    profile.candidates = k;
                }
                if let Some(method) = method {
                    profile.method = serde_json::from_value(serde_json::Value::String(method))
                        .map_err(|e| Error::new(ErrorCode::InvalidArgument, format!("--method: {e}")))?;
                }
                if changed {
                    m.set_profile(&profile).await?;
                }
                print_json(&profile)
            }
            MemoryCommand::Forget => {
                let _ = std::fs::remove_file(dir.join(LAST_ANSWERS));
                padlock::memory::Store::destroy(&FileStore::at(dir)).await
            }
        }
    })
}

fn answer_index(answer: &str, count: usize) -> Result<usize> {
    let i = match answer.to_ascii_uppercase().as_str() {
        "A" | "1" => 0,
        "B" | "2" => 1,
        _ => return Err(Error::new(ErrorCode::InvalidArgument, format!("answer {answer:?}: say A or B"))),
    };
    if i >= count {
        return Err(Error::new(ErrorCode::InvalidArgument, format!("the last generation has {count} answer(s)")));
    }
    Ok(i)
}

pub fn feedback(args: FeedbackArgs) -> Result<()> {
    let dir = &args.store;
    let last = || -> Result<LastAnswers> {
        let text = read_file(&dir.join(LAST_ANSWERS)).map_err(|_| {
            Error::new(ErrorCode::NotFound, "no answer to give feedback on: run `padlock generate --store DIR` first")
        })?;
        serde_json::from_str(&text).map_err(|e| Error::new(ErrorCode::Storage, format!("{LAST_ANSWERS}: {e}")))
    };
    pollster::block_on(async {
        let m = open(dir)?;
        let input = match args.command {
            FeedbackCommand::Up { answer } => thumbs(last()?, &answer, FeedbackKind::ThumbsUp)?,
            FeedbackCommand::Down { answer } => thumbs(last()?, &answer, FeedbackKind::ThumbsDown)?,
            FeedbackCommand::Choose { answer } => {
                let mut last = last()?;
                if last.responses.len() != 2 {
                    return Err(Error::new(
                        ErrorCode::InvalidArgument,
                        "choose needs two answers: generate with --answers 2",
                    ));
                }
                let chosen = answer_index(&answer, 2)?;
                last.responses.swap(0, chosen);
                FeedbackInput { kind: FeedbackKind::Choice, prompt: last.prompt, responses: last.responses }
            }
            FeedbackCommand::Remember { text } => {
                let p = m.add(&text, None, Source::Explicit).await?;
                println!("{}", p.id);
                return Ok(());
            }
            FeedbackCommand::Log { json } => {
                let events = m.events().await?;
                if json {
                    return print_json(&serde_json::json!({ "events": events.items, "unreadable": events.unreadable }));
                }
                for e in &events.items {
                    println!("{}  {:?}  {}", e.id, e.kind, e.prompt);
                }
                return Ok(());
            }
            FeedbackCommand::Rebuild => {
                for c in m.rebuild().await? {
                    println!("{}  {:.3} -> {:.3}", c.id, c.before, c.after);
                }
                return Ok(());
            }
        };
        let outcome = m.feedback(input).await?;
        for c in &outcome.changes {
            println!("{}  {:.3} -> {:.3}", c.id, c.before, c.after);
        }
        Ok(())
    })
}

/// `options` steered by the memory in `dir` (its profile's decoding settings too, if
/// `profile_sampling`).
pub fn personalize(dir: &Path, options: &GenerateOptions, profile_sampling: bool) -> Result<Personalized> {
    pollster::block_on(async {
        let m = open(dir)?;
        let mut options = options.clone();
        if profile_sampling {
            options.sampling = m.profile().await?.sampling;
        }
        m.personalize(&options).await
    })
}

fn thumbs(last: LastAnswers, answer: &str, kind: FeedbackKind) -> Result<FeedbackInput> {
    let i = answer_index(answer, last.responses.len())?;
    Ok(FeedbackInput { kind, prompt: last.prompt, responses: vec![last.responses[i].clone()] })
}

/// Keeps the answers of a `generate --store DIR` for `padlock feedback` (owner-only file).
pub fn save_last_answers(dir: &Path, answers: &LastAnswers) -> Result<()> {
    let text = serde_json::to_vec(answers).map_err(|e| Error::new(ErrorCode::Io, e.to_string()))?;
    let path = dir.join(LAST_ANSWERS);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    use std::io::Write;
    options
        .open(&path)
        .and_then(|mut f| f.write_all(&text))
        .map_err(|e| Error::new(ErrorCode::Io, format!("{}: {e}", path.display())))
}
