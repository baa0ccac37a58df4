//! `padlock memory`: the preference memory on the command line, kept in a directory
//! (`--store DIR`, see `padlock::memory::file`); also what `generate --store` and
//! `padlock feedback` share with it.
//!
//!   padlock memory --store DIR list [--json]
//!   padlock memory --store DIR add TEXT [--weight W]
//!   padlock memory --store DIR update ID [--text T] [--weight W] [--enable | --disable]
//!                                        [--always | --where-relevant] [--reset-learned]
//!   padlock memory --store DIR remove ID
//!   padlock memory --store DIR export FILE [--passphrase P | --passphrase-env VAR] [--skip-unreadable]
//!   padlock memory --store DIR import FILE [--passphrase P | --passphrase-env VAR]
//!   padlock memory --store DIR profile [--beta B] [--max-active N] [--method M] [--candidates K]
//!   padlock memory --store DIR suggest --message TEXT [--message TEXT ...] [--json]
//!   padlock memory --store DIR forget

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use padlock::align::{Method, PersonalizationOverrides};
use padlock::generate::GenerateOptions;
use padlock::memory::file::FileStore;
use padlock::memory::{suggest, Memory, Personalized, PreferenceChange, Response, Source};
use padlock::tokenizer::ChatMessage;
use padlock::{Error, ErrorCode, Result};
use serde::{Deserialize, Serialize};

/// The answers of the last `generate --store DIR`, kept in DIR for `padlock feedback`.
pub const LAST_ANSWERS: &str = "last-answers.json";

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
        /// Steer every answer, whatever it is about.
        #[arg(long, conflicts_with = "where_relevant")]
        always: bool,
        /// Steer only the answers it is relevant to (the default).
        #[arg(long)]
        where_relevant: bool,
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
        #[arg(long, value_enum)]
        method: Option<Method>,
    },
    /// Preferences the person's messages suggest (nothing is stored: `add` what you confirm).
    Suggest {
        /// One of the person's messages (repeat for several).
        #[arg(long, required = true)]
        message: Vec<String>,
        #[arg(long)]
        json: bool,
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

/// What `generate --store` leaves for `feedback`.
#[derive(Serialize, Deserialize)]
pub struct LastAnswers {
    pub prompt: String,
    pub responses: Vec<Response>,
}

pub fn open(dir: &Path) -> Result<Memory<FileStore>> {
    Ok(Memory::new(FileStore::open(dir)?))
}

pub fn print_json<T: Serialize>(value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::new(ErrorCode::Io, e.to_string()))?;
    println!("{text}");
    Ok(())
}

pub fn read_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::new(ErrorCode::Io, format!("{}: {e}", path.display())))
}

pub fn run(args: MemoryArgs) -> Result<()> {
    let dir = &args.store;
    pollster::block_on(async {
        match args.command {
            MemoryCommand::List { json } => list(&open(dir)?, json).await,
            MemoryCommand::Suggest { message, json } => {
                let stored = open(dir)?.preferences().await?.items;
                let messages: Vec<ChatMessage> =
                    message.into_iter().map(|content| ChatMessage { role: "user".into(), content }).collect();
                let suggestions = suggest(&messages, &stored);
                if json {
                    return print_json(&suggestions);
                }
                for s in &suggestions {
                    println!("{}\t(from: {})", s.text, s.sentence);
                }
                Ok(())
            }
            MemoryCommand::Add { text, weight } => {
                let p = open(dir)?.add(&text, weight, Source::Explicit).await?;
                println!("{}", p.id);
                Ok(())
            }
            MemoryCommand::Update { id, text, weight, enable, disable, always, where_relevant, reset_learned } => {
                let either = |yes: bool, no: bool| match (yes, no) {
                    (true, _) => Some(true),
                    (_, true) => Some(false),
                    _ => None,
                };
                let (enabled, always) = (either(enable, disable), either(always, where_relevant));
                let change = PreferenceChange { text, weight, enabled, always, reset_learned };
                let p = open(dir)?.update(&id, &change).await?;
                println!("{}  {:.3}  {}", p.id, p.effective_weight(), p.text);
                Ok(())
            }
            MemoryCommand::Remove { id } => open(dir)?.remove(&id).await,
            MemoryCommand::Export { file, passphrase, skip_unreadable } => {
                let passphrase = passphrase.get()?;
                let text = open(dir)?.export(passphrase.as_deref(), skip_unreadable).await?;
                if passphrase.is_none() {
                    eprintln!("{UNSEALED_WARNING}");
                }
                write_private(&file, &text)
            }
            MemoryCommand::Import { file, passphrase } => {
                let c = open(dir)?.import(&read_file(&file)?, passphrase.get()?.as_deref()).await?;
                let (p, e, h) = (c.preferences.len(), c.events.len(), c.value_heads.len());
                eprintln!("imported {p} preferences, {e} feedback events, {h} value heads");
                Ok(())
            }
            MemoryCommand::Profile { beta, max_active, candidates, method } => {
                profile(&open(dir)?, beta, max_active, candidates, method).await
            }
            MemoryCommand::Forget => {
                let _ = std::fs::remove_file(dir.join(LAST_ANSWERS));
                padlock::memory::Store::destroy(&FileStore::at(dir)).await
            }
        }
    })
}

/// What an export without a passphrase gives away.
const UNSEALED_WARNING: &str = "warning: the export is not protected by a passphrase: it holds every preference and \
    every feedback prompt and answer in plain text (only you can read the file; --passphrase or --passphrase-env seals it)";

/// Writes an export readable and writable by its owner only (created so, never widened later).
fn write_private(file: &std::path::Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    let io = |e: std::io::Error| Error::new(ErrorCode::Io, format!("{}: {e}", file.display()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(file).map_err(io)?;
    #[cfg(unix)]
    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600)).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)
}

async fn list(m: &Memory<FileStore>, json: bool) -> Result<()> {
    let loaded = m.preferences().await?;
    if json {
        return print_json(&serde_json::json!({ "preferences": loaded.items, "unreadable": loaded.unreadable }));
    }
    for p in &loaded.items {
        let learned = if p.learned != 0.0 { format!(" ({:+.3} learned)", p.learned) } else { String::new() };
        let state = if p.enabled { "" } else { " [disabled]" };
        let always = if p.always { " [always]" } else { "" };
        println!("{}  {:.3}{learned}{state}{always}  {}", p.id, p.effective_weight(), p.text);
    }
    for u in &loaded.unreadable {
        println!("{}  unreadable: {}", u.id, u.error);
    }
    Ok(())
}

/// Prints the profile after changing the settings given.
async fn profile(
    m: &Memory<FileStore>,
    beta: Option<f32>,
    max_active: Option<usize>,
    candidates: Option<usize>,
    method: Option<Method>,
) -> Result<()> {
    let mut profile = m.profile().await?;
    let changed = beta.is_some() || max_active.is_some() || candidates.is_some() || method.is_some();
    profile.beta = beta.unwrap_or(profile.beta);
    profile.max_active = max_active.unwrap_or(profile.max_active);
    profile.candidates = candidates.unwrap_or(profile.candidates);
    profile.method = method.unwrap_or(profile.method);
    if changed {
        m.set_profile(&profile).await?;
    }
    print_json(&profile)
}

/// `options` steered by the memory in `dir`, with the method, β and k the command line was
/// given (`request`) over the profile's, and the profile's decoding settings if `profile_sampling`,
/// for an answer to `prompt`.
pub fn personalize(
    dir: &Path,
    options: &GenerateOptions,
    request: PersonalizationOverrides,
    profile_sampling: bool,
    prompt: &str,
) -> Result<Personalized> {
    pollster::block_on(async {
        let m = open(dir)?;
        let mut options = options.clone();
        if profile_sampling {
            options.sampling = m.profile().await?.sampling;
        }
        let messages = [ChatMessage { role: "user".into(), content: prompt.into() }];
        m.personalize_with(&options, request, &messages).await
    })
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
