#!/usr/bin/env python3
"""The default model in every tensor type padlock reads, made and answered by llama.cpp.

    python3 scripts/quant_types.py requantize    # models/quant/SmolLM2-135M-Instruct.<TYPE>.gguf
    python3 scripts/quant_types.py answers       # tests/fixtures/quant/<TYPE>.llamacpp.json, .f64.json
    python3 scripts/quant_types.py blocks        # tests/fixtures/quant_blocks.json
    python3 scripts/quant_types.py speed [THREADS] [PADLOCK] [TYPE...]  # tok/s, padlock and llama.cpp

`requantize` runs llama.cpp's quantizer (llama-cpp-python 0.3.36, the version of the other
reference files) on the default Q4_1 file with allow_requantize, once per type. Rows whose
length is not a multiple of 256 (the 576-wide ones of this model) cannot hold K-quants;
llama.cpp writes them in its fallback type (Q5_0, Q5_1, Q8_0 or IQ4_NL), as it does for
every model of that shape that people download.

`answers` records, per file, llama.cpp's greedy tokens for the ten reference chats (same
prompts as tests/fixtures/smollm2-135m-instruct-q4_1.llamacpp.json) and the argmax of an
exact float64 forward pass of that file (scripts/reference_logits.py) at every position.

`speed` measures, per file, prefill (128 tokens) and decode (128 tokens) tok/s of padlock's
`bench` command and of llama.cpp (through llama-cpp-python's eval, which is llama_decode with
the same batch shapes), alternating the two for three rounds and keeping each one's best.

`blocks` writes, per type, blocks from the requantized files (quantized by llama.cpp) and
blocks of random bytes (finite scales), each with the values the `gguf` package's numpy
dequantizer gives: the committed fixture the CPU and GPU kernels are checked against.

Needs: pip install gguf==0.19.0 numpy llama-cpp-python==0.3.36 (see scripts/bench-llamacpp.sh
for the build flags that avoid ggml's AMX path on these machines).
"""
import ctypes
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(ROOT, "models/SmolLM2-135M-Instruct.Q4_1.gguf")
QUANT = os.path.join(ROOT, "models/quant")
FIXTURES = os.path.join(ROOT, "tests/fixtures/quant")
REFERENCE = os.path.join(ROOT, "tests/fixtures/smollm2-135m-instruct-q4_1.llamacpp.json")
N_GEN = 48

# File type name -> llama.cpp's LLAMA_FTYPE_MOSTLY_* value. llama.cpp's Q2_K mix puts no Q2_K
# in this model (Q3_K and Q4_0 instead), so a "pure" Q2_K file (every tensor that can be Q2_K
# is) is made too.
FTYPES = {
    "F16": 1, "BF16": 32, "Q8_0": 7, "Q5_0": 8, "Q5_1": 9, "IQ4_NL": 25,
    "Q2_K": 10, "Q2_K_pure": 10, "Q3_K_M": 12, "Q4_K_M": 15, "Q5_K_M": 17, "Q6_K": 18,
}


def model_file(name):
    return os.path.join(QUANT, f"SmolLM2-135M-Instruct.{name}.gguf")


def requantize():
    import llama_cpp

    os.makedirs(QUANT, exist_ok=True)
    for name, ftype in FTYPES.items():
        out = model_file(name)
        if os.path.exists(out):
            continue
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = ftype
        params.allow_requantize = True
        params.pure = name.endswith("_pure")
        params.nthread = os.cpu_count() or 2
        rc = llama_cpp.llama_model_quantize(SOURCE.encode(), (out + ".part").encode(), ctypes.byref(params))
        if rc != 0:
            sys.exit(f"llama_model_quantize {name}: {rc}")
        os.rename(out + ".part", out)
        print(name, os.path.getsize(out), file=sys.stderr)


def answers():
    import llama_cpp

    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import reference_logits

    os.makedirs(FIXTURES, exist_ok=True)
    chats = json.load(open(REFERENCE))["chat"]
    for name in FTYPES:
        llamacpp_json = os.path.join(FIXTURES, f"{name}.llamacpp.json")
        if not os.path.exists(llamacpp_json):
            # logits_all: without it this version leaves `scores` rows of earlier calls stale.
            llm = llama_cpp.Llama(model_file(name), n_ctx=512, n_threads=os.cpu_count() or 2, logits_all=True,
                                  verbose=False)
            out = []
            for chat in chats:
                llm.reset()
                llm.eval(chat["prompt_ids"])
                greedy = []
                for _ in range(N_GEN):
                    tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
                    greedy.append(tok)
                    if tok == llm.token_eos():
                        break
                    llm.eval([tok])
                out.append({"user": chat["user"], "prompt_ids": chat["prompt_ids"], "greedy_ids": greedy,
                            "top20_logits_first_positions": []})
            json.dump({"llama_cpp_python": llama_cpp.__version__, "model_file": os.path.basename(model_file(name)),
                       "n_gen": N_GEN, "chat": out}, open(llamacpp_json, "w"))
            del llm
        f64_json = os.path.join(FIXTURES, f"{name}.f64.json")
        if not os.path.exists(f64_json):
            reference_logits.main(model_file(name), llamacpp_json, f64_json)
        print(name, file=sys.stderr)


def blocks():
    from gguf import GGUFReader, GGMLQuantizationType as T
    from gguf.constants import GGML_QUANT_SIZES
    from gguf.quants import dequantize

    rng = np.random.default_rng(18)
    out = {}
    for path in [SOURCE] + [model_file(name) for name in FTYPES]:
        for t in GGUFReader(path).tensors:
            tname = t.tensor_type.name
            if tname in out or tname == "F32":
                continue
            block_size, block_bytes = GGML_QUANT_SIZES[t.tensor_type]
            n = 4 if block_size == 256 else 16
            taken = np.asarray(t.data).view(np.uint8).reshape(-1)[: n * block_bytes].copy()
            random = rng.integers(0, 256, n * block_bytes, dtype=np.uint8)
            # Random scales kept finite and below 1 (the top f16 exponent bit cleared; BF16's
            # top exponent bit likewise), signs and quants as they fall.
            for b in range(n):
                for at in scale_offsets(tname, block_bytes):
                    random[b * block_bytes + at + 1] &= 0xBB
            out[tname] = [
                {"from": "llama.cpp", "hex": taken.tobytes().hex(),
                 "values": dequantize(taken, t.tensor_type).astype(np.float32).reshape(-1).tolist()},
                {"from": "random bytes", "hex": random.tobytes().hex(),
                 "values": dequantize(random, t.tensor_type).astype(np.float32).reshape(-1).tolist()},
            ]
    path = os.path.join(ROOT, "tests/fixtures/quant_blocks.json")
    json.dump({"generator": "scripts/quant_types.py blocks (values: gguf 0.19.0 numpy dequantize)", "types": out},
              open(path, "w"), separators=(",", ":"))
    print(sorted(out), file=sys.stderr)


def speed():
    import subprocess
    import time

    import llama_cpp

    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    padlock = sys.argv[3] if len(sys.argv) > 3 else os.path.join(ROOT, "target/release/padlock")
    print(f"| type | size MB | padlock decode | llama.cpp decode | ratio | padlock prefill | llama.cpp prefill | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    names = sys.argv[4:] or ["Q4_1"] + list(FTYPES)
    for name in names:
        path = SOURCE if name == "Q4_1" else model_file(name)
        best = {"pd": 0, "pp": 0, "ld": 0, "lp": 0}
        llm = llama_cpp.Llama(path, n_ctx=512, n_batch=512, n_threads=threads, verbose=False)
        prompt = list(range(1000, 1128))
        for _ in range(3):
            out = subprocess.run([padlock, "bench", "--model", path, "--json"], check=True, capture_output=True,
                                 text=True, env={**os.environ, "RAYON_NUM_THREADS": str(threads)}).stdout
            d = json.loads(out)
            best["pd"] = max(best["pd"], d["decode_tokens_per_second"])
            best["pp"] = max(best["pp"], d["prefill_tokens_per_second"])
            llm.reset()
            t = time.perf_counter()
            llm.eval(prompt)
            best["lp"] = max(best["lp"], len(prompt) / (time.perf_counter() - t))
            t = time.perf_counter()
            for i in range(128):
                llm.eval([2000 + i])
            best["ld"] = max(best["ld"], 128 / (time.perf_counter() - t))
        del llm
        print(f"| {name} | {os.path.getsize(path) / 1e6:.0f} | {best['pd']:.1f} | {best['ld']:.1f} | {best['pd'] / best['ld']:.2f} "
              f"| {best['pp']:.0f} | {best['lp']:.0f} | {best['pp'] / best['lp']:.2f} |", flush=True)


def row():
    """One line of examples/quant_check's JSON (stdin) as a row of test-models' table."""
    r = json.load(sys.stdin)
    g = r.get("gpu_top1_vs_cpu", "not run")
    gpu = g if isinstance(g, str) else f"{g['top1']:.4f} of {g['positions']} ({g['adapter']})"
    print(f"| {r['model']} | {r['greedy_chats_matching_32']}/{r['chats']} (equal tokens: {r['greedy_prefixes']}) "
          f"| {r['top1_vs_f64']:.4f} of {r['positions']} | {gpu} |")


def scale_offsets(tname, block_bytes):
    """Byte offsets of a block's f16 scales (BF16/F16 elements are scales of themselves)."""
    return {"F16": [0], "BF16": [0], "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0],
            "IQ4_NL": [0], "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208]}[tname]



if __name__ == "__main__":
    {"requantize": requantize, "answers": answers, "blocks": blocks, "speed": speed, "row": row}[sys.argv[1]]()
