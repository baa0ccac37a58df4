#!/usr/bin/env bash
# The evaluation behind EVAL.md (round 5): every configuration answers eval/koala_eval_50.json
# (greedy, repetition penalty 1.1, at most 128 tokens) for each dimension's preference; answers
# and measures go to eval/results-round5.jsonl (resumable: a rerun only adds what is missing),
# then the report (eval/report-round5.md). `base` answers are round 4's (that path did not
# change; it reproduces exactly), copied when missing. Rows whose label says "replacing the
# default system message" were made before the PersRM and `prompt` contexts kept the template's
# default system message (commit ec4ef09; round 4's commands are this script at that commit).
# CPU-heavy (about 10 minutes per PAD configuration on an idle 2-core machine, far more when
# shared): run it under nice, in the background. Earlier rounds: eval/round1.md, eval/round3.md, eval/round4.md.
#   scripts/eval.sh [PADLOCK_BINARY]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN="${1:-target/release/padlock}"
M=models/SmolLM2-135M-Instruct.Q4_1.gguf
R=eval/results-round5.jsonl
ev() { "$BIN" eval --model "$M" --data eval/koala_eval_50.json --out "$R" "$@"; }
if [[ ! -s "$R" ]]; then
  grep -E '"label": ?"base"' eval/results-round4.jsonl > "$R"
fi
ev --label prompt --method prompt
# Probes on the first 16 prompts: harmlessness inside the preference's system message instead
# of its own context; a lower floor; a wider k.
P16=(--limit 16)
ev "${P16[@]}" --label "pad β=2 + harmless in system, stop candidate, min-p 0.2" --method pad --persrm-context system --harmless guideline \
  --beta 2 --stop-candidate --candidate-min-p 0.2
ev "${P16[@]}" --label "pad β=2 + stop candidate, min-p 0.1" --method pad --persrm-context system --beta 2 --stop-candidate --candidate-min-p 0.1
ev "${P16[@]}" --label "pad β=2 + stop candidate, min-p 0.2, k 20" --method pad --persrm-context system --beta 2 --stop-candidate \
  --candidate-min-p 0.2 --top-k 20
# All 50, in rounds of 10 prompts so every dimension has the same prompts whenever a run is stopped.
for n in 10 20 30 40 50; do
  for b in 2 3; do
    ev --limit $n --label "pad β=$b + stop candidate, min-p 0.2" --method pad --persrm-context system --beta $b \
      --stop-candidate --candidate-min-p 0.2
  done
done
# The defaults before round 5 (guideline template, β = 1, floor 0.1, no stop candidate), on all 50.
ev --label "pad β=1, guideline, min-p 0.1 (the defaults before round 5)" --method pad --persrm-context guideline --beta 1 \
  --candidate-min-p 0.1 --stop-candidate false
# Two more levers: the preference in the base context too (rewards against the plain chat), and
# steering away from each dimension's opposite (weight −1); the latter on all 50 for warm.
ev "${P16[@]}" --label "pad β=1 + preference in base, stop candidate, min-p 0.2" --method pad --persrm-context system \
  --base-with-guideline --beta 1 --stop-candidate --candidate-min-p 0.2
C=(--label "pad β=2 + contrast 1, stop candidate, min-p 0.2" --method pad --persrm-context system --contrast 1 --beta 2 \
  --stop-candidate --candidate-min-p 0.2)
ev "${P16[@]}" "${C[@]}"
ev --dimensions warm "${C[@]}"
# Value heads trained on system-message states (reports in eval/system-heads/; none shipped).
mkdir -p target/heads-system target/head-features-system
for dim in concise child warm humor; do
  "$BIN" train-head --model "$M" --pairs heads/pairs.jsonl --dimension "$dim" --persrm-context system --candidate-min-p 0.2 \
    --epochs 5 --cache "target/head-features-system/$dim.safetensors" --out "target/heads-system/$dim.safetensors" \
    > "eval/system-heads/$dim.json" || echo "$dim: not written (see eval/system-heads/$dim.json)"
done
ev --dimensions concise,child,warm --label "pad β=2 + stop candidate, min-p 0.2 + value head trained on system contexts (not shipped)" \
  --method pad --persrm-context system --beta 2 --stop-candidate --candidate-min-p 0.2 --heads-dir target/heads-system
# The trade-off on warm and humour (EVAL.md, "How far β and the floor can move warm and humour"):
# stronger steering (β) and a lower floor, with and without the opposite as a negative preference.
F=(--method pad --persrm-context system --stop-candidate)
ev --dimensions warm,humor --label "pad β=3 + stop candidate, min-p 0.1" "${F[@]}" --beta 3 --candidate-min-p 0.1
ev --dimensions warm --label "pad β=2 + stop candidate, min-p 0.1" "${F[@]}" --beta 2 --candidate-min-p 0.1
ev --dimensions warm --label "pad β=4 + stop candidate, min-p 0.1" "${F[@]}" --beta 4 --candidate-min-p 0.1
ev --dimensions humor --label "pad β=4 + stop candidate, min-p 0.05" "${F[@]}" --beta 4 --candidate-min-p 0.05
ev "${P16[@]}" --dimensions warm --label "pad β=4 + stop candidate, min-p 0.05" "${F[@]}" --beta 4 --candidate-min-p 0.05
ev "${P16[@]}" --dimensions humor --label "pad β=4 + stop candidate, no floor" "${F[@]}" --beta 4 --candidate-min-p 0
ev "${P16[@]}" --dimensions humor --label "pad β=8 + stop candidate, min-p 0.02, k 20" "${F[@]}" --beta 8 --candidate-min-p 0.02 --top-k 20
ev --dimensions warm --label "pad β=4 + contrast 1, stop candidate, min-p 0.2" "${F[@]}" --contrast 1 --beta 4 --candidate-min-p 0.2
ev --dimensions warm --label "pad β=3 + contrast 1, stop candidate, min-p 0.1" "${F[@]}" --contrast 1 --beta 3 --candidate-min-p 0.1
ev --dimensions humor --label "pad β=4 + contrast 1, stop candidate, min-p 0.1" "${F[@]}" --contrast 1 --beta 4 --candidate-min-p 0.1
# An on-topic clause in the preference's own wording (16 prompts).
ev "${P16[@]}" --dimensions warm --label 'pad β=3 + stop candidate, min-p 0.1, wording "…, and still answer the question."' "${F[@]}" \
  --beta 3 --candidate-min-p 0.1 --prefer "Use a warm, kind, encouraging tone with friendly words, and still answer the question."
HUMOUR_ON_TOPIC="Add a light joke or a pun, and still answer the question."
ev "${P16[@]}" --dimensions humor --label 'pad β=3 + stop candidate, min-p 0.1, wording "…, and still answer the question."' "${F[@]}" \
  --beta 3 --candidate-min-p 0.1 --prefer "$HUMOUR_ON_TOPIC"
ev "${P16[@]}" --dimensions humor --label 'pad β=4 + stop candidate, min-p 0.05, wording "…, and still answer the question."' "${F[@]}" \
  --beta 4 --candidate-min-p 0.05 --prefer "$HUMOUR_ON_TOPIC"
# A warm head from pairs made by greedy decoding (seed 0) on system-message contexts, all 120
# training prompts (EVAL.md, "A warm head from greedy pairs"; not shipped).
G=target/greedy
mkdir -p "$G/heads"
"$BIN" make-pairs --model "$M" --prompts heads/train_prompts.txt --dimensions warm --seeds 0 --max-tokens 128 --context system \
  --out "$G/pairs.jsonl"
TH=("$BIN" train-head --model "$M" --pairs "$G/pairs.jsonl" --dimension warm --persrm-context system --candidate-min-p 0.2
  --cache "$G/warm-features.safetensors" --out "$G/heads/warm.safetensors")
"${TH[@]}" --epochs 5 > eval/system-heads/warm-greedy.json || echo "warm, 5 epochs: not written (see eval/system-heads/warm-greedy.json)"
"${TH[@]}" --epochs 2 --rank 4 > eval/system-heads/warm-greedy-rank4.json || echo "warm, rank 4: not written"
"${TH[@]}" --epochs 5 --rank 4 --learning-rate 0.0003 > eval/system-heads/warm-greedy-rank4-lr3e-4.json || echo "warm, rank 4, lr 3e-4: not written"
"${TH[@]}" --epochs 1 > eval/system-heads/warm-greedy-epochs1.json
ev --dimensions warm --label "pad β=2 + stop candidate, min-p 0.2 + warm head from 120 greedy system-message pairs, 1 epoch (not shipped)" \
  "${F[@]}" --beta 2 --candidate-min-p 0.2 --heads-dir "$G/heads"
"$BIN" eval --out "$R" --report > eval/report-round5.md
