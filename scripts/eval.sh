#!/usr/bin/env bash
# The evaluation behind EVAL.md: every configuration answers eval/koala_eval_50.json (greedy,
# repetition penalty 1.1, at most 128 tokens) for each dimension's preference; answers and
# measures go to eval/results.jsonl (resumable: a rerun only adds what is missing), then the
# report. CPU-heavy (hours on 2 shared cores): run it under nice, in the background.
#   scripts/eval.sh [PADLOCK_BINARY]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN="${1:-target/release/padlock}"
M=models/SmolLM2-135M-Instruct.Q4_1.gguf
R=eval/results.jsonl
ev() { "$BIN" eval --model "$M" --data eval/koala_eval_50.json --out "$R" "$@"; }
ev --label base --method base
# The main configurations, in rounds of 10 prompts so that every one has the same prompts
# done whenever the run is stopped (it resumes where it stopped); the levers after round 2.
main() {
  ev --limit "$1" --label prompt --method prompt
  ev --limit "$1" --label "pad" --method pad --beta 1
  # Trained value heads (heads/<dimension>.safetensors, made by scripts/train-heads.sh).
  for d in concise child warm humor; do
    if [[ -f "heads/$d.safetensors" ]]; then
      ev --limit "$1" --label "pad + trained head" --method pad --beta 1 --heads-dir heads --dimensions "$d"
    fi
  done
}
main 10
main 20
# Levers, on the first 10 prompts ("pad" is β = 1, k = 10, candidates need ≥ 0.1 × the base
# top-1's probability, harmlessness in its own context): no candidate floor (the PAD paper's
# setting), the guideline in the base context too, β = 2.
ev --limit 10 --label "pad, no candidate floor" --method pad --beta 1 --candidate-min-p 0
ev --limit 10 --label "pad + guideline in base" --method pad --beta 1 --base-with-guideline
ev --limit 10 --label "pad β=2" --method pad --beta 2
# β = 2 moved the measures most on those 10 prompts: it joins the main configurations.
for n in 20 30 40 50; do
  ev --limit $n --label "pad β=2" --method pad --beta 2
  main $n
done
"$BIN" eval --out "$R" --report > eval/report.md
