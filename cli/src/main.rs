//! `padlock`: the native command line, one file per command.
//!   padlock generate --model PATH --prompt TEXT [--max-tokens N] [--greedy | --temperature T --top-p P --seed S]
//!       [--method base|prompt|pad|best-of-n --prefer TEXT ... --weight W ... --head PATH --beta B --top-k K]
//!       [--explain] [--json] [--backend cpu|gpu|auto]
//!   padlock bench --model PATH [--preferences 0,1,4] [--backend cpu|gpu|auto] [--batch B]
//!   padlock bench-chat --model PATH [--turns 5] [--preferences 0,1]   (time to first token per turn)
//!   padlock generate --model PATH --prompt TEXT --store DIR [--answers 2]   (preferences from memory)
//!   padlock memory --store DIR ...; padlock feedback --store DIR ...   (commands/memory.rs, commands/feedback.rs)
//!   padlock make-pairs | train-head | eval   (value heads and the evaluation: research/)

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use padlock_cli::{commands, research};

#[derive(Parser)]
#[command(name = "padlock", version, about = "On-device personalized decoding for small language models")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Answer one chat message.
    Generate(commands::generate::GenerateArgs),
    /// Measure prefill and decode speed.
    Bench(commands::bench::BenchArgs),
    /// Measure the time to first token over the turns of a chat, caches kept and not.
    BenchChat(commands::bench_chat::BenchChatArgs),
    /// The preference memory in a directory: list, add, update, remove, export, import, forget.
    Memory(commands::memory::MemoryArgs),
    /// Feedback on the last answers of `generate --store DIR`: up, down, choose, remember.
    Feedback(commands::feedback::FeedbackArgs),
    /// Make preference pairs by contrastive prompting (JSONL, resumable).
    MakePairs(research::make_pairs::MakePairsArgs),
    /// Train a value head with DPO on a frozen backbone from preference pairs.
    TrainHead(research::train_head::TrainHeadArgs),
    /// Answer an evaluation set under one configuration per dimension (JSONL, resumable), or
    /// with --report print the comparison with base as Markdown.
    Eval(research::evaluate::EvalArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Run everything inside the thread pool: a kernel call made from a pool thread hands work
    // to the other threads far faster than one made from outside, which waits for them to wake.
    let run = || match cli.command {
        Command::Generate(a) => commands::generate::run(a),
        Command::Bench(a) => commands::bench::run(a),
        Command::BenchChat(a) => commands::bench_chat::run(a),
        Command::Memory(a) => commands::memory::run(a),
        Command::Feedback(a) => commands::feedback::run(a),
        Command::MakePairs(a) => research::make_pairs::run(a),
        Command::TrainHead(a) => research::train_head::run(a),
        Command::Eval(a) => research::evaluate::run(a),
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
