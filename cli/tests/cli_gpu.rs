//! The command line on the GPU backend (natively: lavapipe in CI).
#![cfg(feature = "gpu")]

#[path = "../../tests/common/model.rs"]
mod common;

/// `padlock generate --backend gpu --method pad` with a value head gives the tokens of
/// `--backend cpu`, and says which backend ran.
#[test]
fn the_cli_runs_pad_on_the_gpu() {
    let head = std::env::temp_dir().join(format!("padlock-gpu-cli-head-{}.safetensors", std::process::id()));
    std::fs::write(&head, common::shipped_head_any_context("concise")).expect("writes the head");
    let run = |backend: &str| -> serde_json::Value {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_padlock"))
            .args(["generate", "--model", common::model_path().to_str().expect("path"), "--prompt", "Name a fruit."])
            .args(["--max-tokens", "6", "--greedy", "--method", "pad", "--prefer", "Keep it short.", "--beta", "1.5"])
            .args(["--head", head.to_str().expect("path"), "--json", "--backend", backend])
            .args(["--persrm-context", "system", "--system", "Hi."]) // short contexts: lavapipe's prefill is slow
            .output()
            .expect("padlock runs");
        assert!(out.status.success(), "--backend {backend}: {}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(stdout.lines().rev().find(|l| l.starts_with('{')).expect("a JSON line")).expect("JSON")
    };
    let (cpu, gpu) = (run("cpu"), run("gpu"));
    assert_eq!(cpu["backend"], "cpu");
    assert_eq!(gpu["backend"], "webgpu");
    assert!(!cpu["generated_ids"].as_array().expect("ids").is_empty());
    assert_eq!(cpu["generated_ids"], gpu["generated_ids"], "cpu: {}\ngpu: {}", cpu["text"], gpu["text"]);
    assert_eq!(cpu["reward_labels"], gpu["reward_labels"]);
    std::fs::remove_file(&head).ok();
}
