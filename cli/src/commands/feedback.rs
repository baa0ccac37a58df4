//! `padlock feedback`: feedback on the last answers of `generate --store DIR`.
//!
//!   padlock feedback --store DIR up | down [--answer A]   (on the last answer of `generate --store DIR`)
//!   padlock feedback --store DIR choose A|B               (after `generate --store DIR --answers 2`)
//!   padlock feedback --store DIR remember TEXT
//!   padlock feedback --store DIR log [--json] | rebuild

use std::path::PathBuf;

use clap::{Args, Subcommand};
use padlock::memory::{FeedbackInput, FeedbackKind, Source};
use padlock::{Error, ErrorCode, Result};

use crate::commands::memory::{open, print_json, read_file, LastAnswers, LAST_ANSWERS};

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

pub fn run(args: FeedbackArgs) -> Result<()> {
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

fn thumbs(last: LastAnswers, answer: &str, kind: FeedbackKind) -> Result<FeedbackInput> {
    let i = answer_index(answer, last.responses.len())?;
    Ok(FeedbackInput { kind, prompt: last.prompt, responses: vec![last.responses[i].clone()] })
}
