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
ev --label "pad β=1" --method pad --beta 1
ev --label prompt --method prompt
# Trained value heads (heads/<dimension>.safetensors, made by scripts/train-heads.sh).
for d in concise child warm humor; do
  [[ -f "heads/$d.safetensors" ]] && ev --label "pad β=1 trained head" --method pad --beta 1 --heads-dir heads --dimensions "$d"
done
# Levers, on the first 10 prompts: the guideline in the base context too; candidates cut
# to the base model's top-p 0.9 nucleus inside the top-10; β = 2.
ev --label "pad β=1 +guideline in base" --method pad --beta 1 --base-with-guideline --limit 10
ev --label "pad β=1 top-p 0.9" --method pad --beta 1 --candidate-top-p 0.9 --limit 10
ev --label "pad β=2" --method pad --beta 2 --limit 10
"$BIN" eval --out "$R" --report > eval/report.md
