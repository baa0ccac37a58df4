#!/usr/bin/env bash
# The lever probe behind EVAL.md's "Choosing the configuration": the first 16 Koala prompts,
# at most 96 tokens, each dimension's preference (src/eval/dimensions.rs), into
# eval/probe-levers.jsonl (resumable); then its report. PersRM context (the PAD paper's
# guideline template in the user turn, or the preference as the system message) × β ∈ {1, 2, 4},
# all with the default candidate floor (min-p 0.1 inside the top-10).
#   scripts/probe-levers.sh [PADLOCK_BINARY]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN="${1:-target/release/padlock}"
R=eval/probe-levers.jsonl
ev() { "$BIN" eval --model models/SmolLM2-135M-Instruct.Q4_1.gguf --data eval/koala_eval_50.json \
  --out "$R" --limit 16 --max-tokens 96 "$@"; }
ev --label base --method base
ev --label prompt --method prompt
for beta in 2 4 1; do
  for ctx in system guideline; do
    ev --label "pad $ctx β=$beta" --method pad --persrm-context "$ctx" --beta "$beta"
  done
done
"$BIN" eval --out "$R" --report > eval/probe-levers.md
