#!/usr/bin/env bash
# The evaluation behind EVAL.md (round 4): every configuration answers eval/koala_eval_50.json
# (greedy, repetition penalty 1.1, at most 128 tokens) for each dimension's preference; answers
# and measures go to eval/results-round4.jsonl (resumable: a rerun only adds what is missing),
# then the report (eval/report-round4.md). `base` and `prompt` answers are round 3's (neither
# path changed; base reproduces exactly), copied from eval/results.jsonl when missing.
# CPU-heavy (about 10 minutes per PAD configuration on an idle 2-core machine, far more when
# shared): run it under nice, in the background. Rounds 1 and 3: eval/round1.md, eval/round3.md.
#   scripts/eval.sh [PADLOCK_BINARY]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN="${1:-target/release/padlock}"
M=models/SmolLM2-135M-Instruct.Q4_1.gguf
R=eval/results-round4.jsonl
ev() { "$BIN" eval --model "$M" --data eval/koala_eval_50.json --out "$R" "$@"; }
if [[ ! -s "$R" ]]; then
  grep -E '"label":"(base|prompt)"' eval/results.jsonl > "$R"
fi
ev --label base --method base
ev --label prompt --method prompt
# The probe: the first 16 prompts for each lever, then 40–50 prompts for the ones kept.
P16=(--limit 16)
ev "${P16[@]}" --label "pad system β=2 + stop candidate" --method pad --persrm-context system --beta 2 --stop-candidate
ev "${P16[@]}" --label "pad system β=1.5 + stop candidate" --method pad --persrm-context system --beta 1.5 --stop-candidate
# Round 4b: with the 0.2 floor, a stronger β, and the preference in the base context too.
for b in 0.5 1; do
  ev "${P16[@]}" --label "pad system β=$b + preference in base + stop candidate, min-p 0.2" --method pad --persrm-context system \
    --beta $b --base-with-guideline --stop-candidate --candidate-min-p 0.2
done
for n in 10 20 30 40 50; do
  ev --limit $n --label "pad system β=3 + stop candidate, min-p 0.2" --method pad --persrm-context system --beta 3 \
    --stop-candidate --candidate-min-p 0.2
done
# In rounds of 10 prompts, so every dimension has the same prompts whenever a run is stopped.
for n in 10 20 30 40 50; do
  ev --limit $n --label "pad system β=2 + stop candidate, min-p 0.2" --method pad --persrm-context system --beta 2 \
    --stop-candidate --candidate-min-p 0.2
done
# Stopped at 40 prompts for time in round 4 (`--limit 40`); this runs them all.
for n in 10 20 30 40 50; do
  ev --limit $n --label "pad system β=2" --method pad --persrm-context system --beta 2
  ev --limit $n --label "pad system β=1 + preference in base" --method pad --persrm-context system --beta 1 --base-with-guideline
done
"$BIN" eval --out "$R" --report > eval/report-round4.md
