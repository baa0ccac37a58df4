#!/usr/bin/env python3
"""llama.cpp's logits on the tiny random-weight models of every architecture padlock runs.

    cargo run --example tiny_models -- target/tiny-models
    python3 scripts/tiny_models.py target/tiny-models    # tests/fixtures/tiny_models.json

For each model (`tests/common/tiny_models.rs`: random weights fixed by a seed, the default
model's tokenizer) llama.cpp (llama-cpp-python 0.3.36, see scripts/test-models.sh) evaluates
the same 48 token ids in one batch, with an f32 KV cache; the fixture keeps, per position, llama.cpp's top 5 ids
and logits and its logits at 32 fixed ids, and the file's SHA-256 (the Rust test writes the
file again and checks it is the same file). `tests/architectures.rs` compares padlock's
logits with these on the CPU and on the GPU.

The token ids come from `probe_tokens` in tiny_models.rs, repeated here: splitmix64 seeded
with 2026, each id = next() % vocab.
"""
import hashlib
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(ROOT, "tests/fixtures/tiny_models.json")
MASK = (1 << 64) - 1


def splitmix(seed):
    state = seed
    while True:
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        yield z ^ (z >> 31)


def probe_tokens(vocab):
    rng = splitmix(2026)
    return [next(rng) % vocab for _ in range(48)]


def main(folder):
    import llama_cpp

    out = {}
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".gguf"):
            continue
        path = os.path.join(folder, name)
        sha = hashlib.sha256(open(path, "rb").read()).hexdigest()
        # Keys and values in f32 without flash attention (llama.cpp's defaults are an f16 cache
        # and, on the CPU, f16 queries): the whole pass in f32, as padlock computes it.
        llm = llama_cpp.Llama(model_path=path, n_ctx=256, n_batch=256, logits_all=True, n_threads=2,
                              type_k=0, type_v=0, flash_attn=False, verbose=False)
        vocab = llm.n_vocab()
        tokens = probe_tokens(vocab)
        llm.reset()
        llm.eval(tokens)
        scores = np.array(llm.scores[: len(tokens)], dtype=np.float64)
        probe_ids = list(range(0, vocab, vocab // 32))[:32]
        positions = []
        for row in scores:
            top = np.argsort(-row, kind="stable")[:5]
            positions.append({
                "top": [[int(i), float(row[i])] for i in top],
                "probe": [float(row[i]) for i in probe_ids],
            })
        out[name[: -len(".gguf")]] = {"sha256": sha, "tokens": tokens, "probe_ids": probe_ids,
                                      "positions": positions}
        print(f"{name}: {len(positions)} positions, top-1 at 0: {positions[0]['top'][0]}", file=sys.stderr)
        del llm
    with open(FIXTURE, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/tiny-models"))
