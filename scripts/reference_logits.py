#!/usr/bin/env python3
"""An exact (float64) Llama forward pass over the default GGUF, independent of padlock:
weights dequantized by the `gguf` package (llama.cpp's own Python reader), the forward
written with numpy. It writes, for every reference chat (prompt + llama.cpp's greedy
tokens, teacher-forced), the argmax at every generated position and the logits of the
recorded top-20 ids at the first four positions.

Why: llama.cpp multiplies against 8-bit activations, so its logits are themselves a few
tenths off the exact computation; this file is the exact one, to test the f32 path tightly.

    pip install gguf==0.19.0 numpy
    python3 scripts/reference_logits.py models/SmolLM2-135M-Instruct.Q4_1.gguf \
        tests/fixtures/smollm2-135m-instruct-q4_1.llamacpp.json tests/fixtures/smollm2-135m-instruct-q4_1.f64.json
"""
import json
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


def main(model_path, llamacpp_path, out_path):
    reader = GGUFReader(model_path)
    tensors = {t.name: t for t in reader.tensors}
    field = lambda k: reader.fields[k].contents()
    n_layers, n_heads = field("llama.block_count"), field("llama.attention.head_count")
    n_kv, hidden = field("llama.attention.head_count_kv"), field("llama.embedding_length")
    eps, theta = field("llama.attention.layer_norm_rms_epsilon"), field("llama.rope.freq_base")
    hd = hidden // n_heads
    cache = {}

    def w(name):
        if name not in cache:
            t = tensors[name]
            cache[name] = dequantize(t.data, t.tensor_type).astype(np.float64).reshape([int(x) for x in reversed(t.shape)])
        return cache[name]

    def forward(ids):
        n = len(ids)
        x = w("token_embd.weight")[ids]
        rms = lambda x, g: x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * g
        ang = np.arange(n)[:, None] * theta ** (-np.arange(0, hd, 2) / hd)
        cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]

        def rope(q, heads):  # GGUF convention: adjacent pairs rotate together
            q = q.reshape(n, heads, hd // 2, 2)
            a, b = q[..., 0], q[..., 1]
            return np.stack([a * cos - b * sin, a * sin + b * cos], -1).reshape(n, heads, hd)

        mask = np.triu(np.full((n, n), -np.inf), 1)
        for layer in range(n_layers):
            p = f"blk.{layer}."
            h = rms(x, w(p + "attn_norm.weight"))
            q = rope(h @ w(p + "attn_q.weight").T, n_heads)
            k = rope(h @ w(p + "attn_k.weight").T, n_kv)
            v = (h @ w(p + "attn_v.weight").T).reshape(n, n_kv, hd)
            out = np.zeros((n, n_heads, hd))
            for head in range(n_heads):
                g = head // (n_heads // n_kv)
                s = q[:, head] @ k[:, g].T / np.sqrt(hd) + mask
                s = np.exp(s - s.max(-1, keepdims=True))
                out[:, head] = (s / s.sum(-1, keepdims=True)) @ v[:, g]
            x = x + out.reshape(n, hidden) @ w(p + "attn_output.weight").T
            h = rms(x, w(p + "ffn_norm.weight"))
            gate, up = h @ w(p + "ffn_gate.weight").T, h @ w(p + "ffn_up.weight").T
            x = x + ((gate / (1 + np.exp(-gate))) * up) @ w(p + "ffn_down.weight").T
        head = w("output.weight") if "output.weight" in tensors else w("token_embd.weight")
        return rms(x, w("output_norm.weight")) @ head.T

    chats = json.load(open(llamacpp_path))["chat"]
    out = []
    for chat in chats:
        prompt, greedy = chat["prompt_ids"], chat["greedy_ids"]
        logits = forward(prompt + greedy)
        rows = logits[len(prompt) - 1 : len(prompt) - 1 + len(greedy)]
        out.append({
            "user": chat["user"],
            "argmax": [int(r.argmax()) for r in rows],
            "top20_logits_first_positions": [
                [[i, float(rows[j][i])] for i, _ in top] for j, top in enumerate(chat["top20_logits_first_positions"])
            ],
        })
        print(chat["user"], file=sys.stderr)
    json.dump({"generator": "scripts/reference_logits.py (numpy float64, gguf dequantize)", "chat": out}, open(out_path, "w"))


if __name__ == "__main__":
    main(*sys.argv[1:4])
