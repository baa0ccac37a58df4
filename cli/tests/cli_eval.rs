//! Smoke runs of the evaluation and training commands on a few items (the real runs are
//! scripts/eval.sh and scripts/train-heads.sh, far too long for a test).

#[path = "../../tests/common/model.rs"]
mod common;

use std::process::Command;

use padlock::align::sampler::SamplingParams;
use padlock::align::ContextStyle;
use padlock_cli::research::eval::pairs::prompted_answer;

/// The default model's path, and an empty scratch folder for one test.
fn model_and_scratch(name: &str) -> (String, std::path::PathBuf) {
    let model = common::model_path().to_str().expect("a UTF-8 model path").to_string();
    let dir = std::env::temp_dir().join(format!("padlock-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    (model, dir)
}

fn padlock(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_padlock")).args(args).output().expect("runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn eval_answers_and_reports_against_base() {
    let (model, dir) = model_and_scratch("eval");
    let model = model.as_str();
    let out = dir.join("results.jsonl");
    let out = out.to_str().unwrap();
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../eval/koala_eval_50.json");
    let common = ["eval", "--model", model, "--data", data, "--out", out, "--limit", "2", "--max-tokens", "12"];
    let (ok, _, err) = padlock(&[&common[..], &["--label", "base", "--method", "base"]].concat());
    assert!(ok, "{err}");
    let (ok, _, err) =
        padlock(&[&common[..], &["--label", "pad", "--method", "pad", "--dimensions", "concise,warm"]].concat());
    assert!(ok, "{err}");
    let rows: Vec<serde_json::Value> =
        std::fs::read_to_string(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2 + 2 * 2, "2 base answers, then 2 prompts × 2 dimensions");
    // Resumable: the same run again adds nothing.
    let (ok, _, _) =
        padlock(&[&common[..], &["--label", "pad", "--method", "pad", "--dimensions", "concise,warm"]].concat());
    assert!(ok);
    assert_eq!(std::fs::read_to_string(out).unwrap().lines().count(), 6);
    // Steering away from the dimension's opposite is a PAD option; prompting would put the
    // opposite in the prompt, so it is refused there.
    let (ok, _, err) = padlock(
        &[&common[..], &["--label", "c", "--method", "prompt", "--dimensions", "warm", "--contrast", "1"]].concat(),
    );
    assert!(!ok && err.contains("--contrast") && err.contains("--method pad"), "{err}");
    let contrast = ["--label", "pad contrast", "--method", "pad", "--dimensions", "warm", "--contrast", "1"];
    let (ok, _, err) = padlock(&[&common[..], &contrast[..]].concat());
    assert!(ok, "{err}");
    assert_eq!(std::fs::read_to_string(out).unwrap().lines().count(), 8, "2 more rows: 2 prompts × warm");
    let (ok, report, err) = padlock(&["eval", "--out", out, "--report"]);
    assert!(ok, "{err}");
    assert!(report.contains("### concise") && report.contains("### warm") && !report.contains("### child"), "{report}");
    assert!(report.contains("| pad | 2 |") && report.contains("| pad contrast | 2 |"), "{report}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn train_head_reports_accuracy_and_refuses_to_ship_a_weak_head() {
    let (model, dir) = model_and_scratch("train");
    let model = model.as_str();
    let head = dir.join("concise.safetensors");
    // Three of the shipped pairs: prompts 0 and 1 to train on, prompt 4 held out (every fifth).
    let all = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../heads/pairs.jsonl")).unwrap();
    let few: Vec<&str> = all
        .lines()
        .filter(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["dimension"] == "concise" && v["seed"] == 1 && [0, 1, 4].contains(&v["prompt_index"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(few.len(), 3);
    let pairs = dir.join("pairs.jsonl");
    std::fs::write(&pairs, few.join("\n")).unwrap();
    let args = [
        "train-head",
        "--model",
        model,
        "--pairs",
        pairs.to_str().unwrap(),
        "--dimension",
        "concise",
        "--epochs",
        "1",
        "--out",
        head.to_str().unwrap(),
    ];
    let (_, stdout, err) = padlock(&[&args[..], &["--min-accuracy", "1.01"]].concat());
    let report: serde_json::Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout} {err}"));
    assert_eq!(report["pairs"], 3);
    assert_eq!(report["heldout_pairs"], 1);
    let acc = report["heldout_accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc));
    assert_eq!(report["shipped"], false, "accuracy cannot reach 101%");
    assert!(!head.exists(), "a head below the bar is not written");
    assert!(err.contains("INVALID_ARGUMENT"), "{err}");
    let (ok, _, err) = padlock(&[&args[..], &["--min-accuracy", "0"]].concat());
    assert!(ok, "{err}");
    let bytes = std::fs::read(&head).unwrap();
    assert!(bytes.len() < 100_000, "a rank-16 head is small: {} bytes", bytes.len());
    let engine = common::engine();
    let meta = engine.load_head("trained", &bytes).unwrap();
    assert_eq!(meta["dimension"], "concise");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn seed_0_pairs_are_greedy_answers() {
    // Seed 0 makes a pair by greedy decoding (repetition penalty 1.1), as `eval` and PAD decode,
    // so that a head learns from the kind of answer it will steer.
    let (model, dir) = model_and_scratch("greedy-pairs");
    let model = model.as_str();
    let question = "How do I keep basil alive on a windowsill?";
    let prompts = dir.join("prompts.txt");
    std::fs::write(&prompts, format!("{question}\n")).unwrap();
    let pairs = dir.join("pairs.jsonl");
    let (ok, _, err) = padlock(&[
        "make-pairs",
        "--model",
        model,
        "--prompts",
        prompts.to_str().unwrap(),
        "--dimensions",
        "warm",
        "--seeds",
        "0",
        "--max-tokens",
        "16",
        "--context",
        "system",
        "--out",
        pairs.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let pair: serde_json::Value = serde_json::from_str(std::fs::read_to_string(&pairs).unwrap().trim()).unwrap();
    assert_eq!(pair["seed"], 0);

    let engine = common::engine();
    let warm = padlock_cli::research::eval::dimensions::dimension("warm").unwrap();
    let greedy = SamplingParams { repetition_penalty: 1.1, ..SamplingParams::greedy() };
    let greedy = |preference: &str| {
        pollster::block_on(prompted_answer(&engine, question, preference, ContextStyle::System, greedy.clone(), 16))
            .unwrap()
            .0
    };
    assert_eq!(pair["chosen"], greedy(warm.prefer));
    assert_eq!(pair["rejected"], greedy(warm.opposite));
    assert_ne!(pair["chosen"], pair["rejected"], "the opposite preference changes the answer");
    std::fs::remove_dir_all(&dir).ok();
}
