#!/usr/bin/env bash
# The evaluation behind EVAL.md: every configuration answers eval/koala_eval_50.json (greedy,
# repetition penalty 1.1, at most 128 tokens) for each dimension's preference; answers and
# measures go to eval/results.jsonl (resumable: a rerun only adds what is missing), then the
# report. CPU-heavy (hours on 2 shared cores): run it under nice, in the background.
# The configurations (PersRM context as the system message, β = 2; with and without the
# preference in the base context) were chosen on the first 16 prompts by scripts/probe-levers.sh; round 1's configurations are in eval/results-round1.jsonl.
#   scripts/eval.sh [PADLOCK_BINARY]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN="${1:-target/release/padlock}"
M=models/SmolLM2-135M-Instruct.Q4_1.gguf
R=eval/results.jsonl
ev() { "$BIN" eval --model "$M" --data eval/koala_eval_50.json --out "$R" "$@"; }
ev --label base --method base
# Preference prompting: the preference and the harmlessness principle as the system message.
ev --label prompt --method prompt
# PAD in rounds of 10 prompts, so that every dimension has the same prompts whenever the run
# is stopped (it resumes where it stopped).
for n in 10 20 30 40 50; do
  ev --limit $n --label "pad system β=2" --method pad --persrm-context system --beta 2
done
# The same with the preference in the base context too (its system message), the probe's best.
ev --label "pad system β=2 + preference in base" --method pad --persrm-context system --beta 2 --base-with-guideline
"$BIN" eval --out "$R" --report > eval/report.md
