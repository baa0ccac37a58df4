#!/usr/bin/env bash
# The lever probe behind EVAL.md's "Choosing the configuration": the first 16 Koala prompts,
# at most 96 tokens, each dimension's preference (cli/src/research/eval/dimensions.rs), into
# eval/probe-levers.jsonl (resumable); then its report (eval/probe-levers.md). PersRM context
# as the system message with β ∈ {1, 2, 4}, against the PAD paper's guideline template in the
# user turn at β = 2; all with the then default candidate floor (min-p 0.1 inside the top-10)
# and no stop candidate, pinned below since the defaults changed (EVAL.md, "Defaults").
# CPU was short on the shared machine: β = 4 ran without child (β = 2 already moved it 81%), and
# the guideline template on warm and humour only (child and concise ran 4–5 prompts before it
# was narrowed; round 1 has it on all 50 prompts for those two, with the same wording).
#   scripts/probe-levers.sh [PADLOCK_BINARY]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN="${1:-target/release/padlock}"
R=eval/probe-levers.jsonl
ev() { "$BIN" eval --model models/SmolLM2-135M-Instruct.Q4_1.gguf --data eval/koala_eval_50.json \
  --out "$R" --limit 16 --max-tokens 96 --candidate-min-p 0.1 --stop-candidate false "$@"; }
ev --label base --method base
ev --label prompt --method prompt
ev --label "pad system β=2" --method pad --persrm-context system --beta 2
ev --label "pad guideline β=2" --method pad --persrm-context guideline --beta 2 --dimensions warm,humor
ev --label "pad system β=4" --method pad --persrm-context system --beta 4 --dimensions warm,humor,concise
ev --label "pad system β=1" --method pad --persrm-context system --beta 1
# The preference in the base context too (as the PAD paper's code does), here as its system message.
ev --label "pad system β=2 + preference in base" --method pad --persrm-context system --beta 2 --base-with-guideline
"$BIN" eval --out "$R" --report > eval/probe-levers.md
