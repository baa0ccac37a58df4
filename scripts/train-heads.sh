#!/usr/bin/env bash
# The shipped value heads: preference pairs by contrastive prompting of the default model
# (heads/pairs.jsonl, from heads/train_prompts.txt), then one DPO-trained low-rank head per
# dimension. A head is written only if its held-out pairwise accuracy (every fifth prompt
# held out) is ≥ 70%; each run's report (accuracies, sizes, seconds) goes to heads/<dim>.json.
#   scripts/train-heads.sh [PADLOCK_BINARY]          (MAKE_PAIRS=1 to regenerate the pairs)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN="${1:-target/release/padlock}"
M=models/SmolLM2-135M-Instruct.Q4_1.gguf
if [[ "${MAKE_PAIRS:-0}" == 1 ]]; then
  # Pairs were made in prompt order with seed 1 until enough per dimension (48) existed.
  "$BIN" make-pairs --model "$M" --prompts heads/train_prompts.txt --seeds 1 --max-tokens 128 --out heads/pairs.jsonl
fi
mkdir -p target/head-features
for dim in concise child warm humor; do
  if "$BIN" train-head --model "$M" --pairs heads/pairs.jsonl --dimension "$dim" --persrm-context guideline --epochs 5 \
       --cache "target/head-features/$dim.safetensors" --out "heads/$dim.safetensors" > "heads/$dim.json"; then
    echo "$dim: shipped"
  else
    echo "$dim: not shipped (see heads/$dim.json)"
  fi
done
