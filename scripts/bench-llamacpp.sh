#!/usr/bin/env bash
# Native decode/prefill: padlock against llama.cpp on the same GGUF, measured in one run.
#
# llama.cpp is built from the source that PyPI's llama-cpp-python 0.3.36 ships (the version
# that produced tests/fixtures' reference), only its `llama-bench` target, into .cache/.
# The first run compiles for ~15 minutes on 2 cores; later runs reuse the build.
# Built for AVX2/AVX-512/VNNI without AMX: with GGML_NATIVE this machine's CPU (it reports
# amx_tile) gets ggml's AMX path, which segfaults in ggml_backend_amx_mul_mat (seen here).
#
#   scripts/bench-llamacpp.sh [THREADS]    (default: 2)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
THREADS="${1:-2}"
MODEL="${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}"
CACHE="$ROOT/.cache/llamacpp"
SRC="$CACHE/llama_cpp_python-0.3.36/vendor/llama.cpp"
BENCH="$SRC/build/bin/llama-bench"

if [[ ! -x "$BENCH" ]]; then
  mkdir -p "$CACHE"
  python3 -m pip install -q scikit-build-core cmake ninja
  [[ -f "$CACHE/llama_cpp_python-0.3.36.tar.gz" ]] ||
    python3 -m pip download --no-deps --no-build-isolation -d "$CACHE" llama-cpp-python==0.3.36
  [[ -d "$SRC" ]] || tar -xzf "$CACHE/llama_cpp_python-0.3.36.tar.gz" -C "$CACHE"
  # AVX-512 only where the CPU has it: a build with it dies with SIGILL elsewhere (seen on an
  # AMD EPYC VM with AVX2 only).
  avx512=OFF
  grep -qw avx512f /proc/cpuinfo && avx512=ON
  cmake -S "$SRC" -B "$SRC/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF \
    -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=$avx512 \
    -DGGML_AVX512_VNNI=$avx512 -DGGML_AVX512_VBMI=$avx512 -DGGML_AVX_VNNI=$avx512 \
    -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF
  cmake --build "$SRC/build" --target llama-bench -j "$(nproc)"
fi
cargo build --release -q -p padlock-cli

# Alternate the two, three rounds, so that load on the machine hits both alike.
for round in 1 2 3; do
  llama=$("$BENCH" -m "$MODEL" -t "$THREADS" -p 128 -n 128 -r 1 -o json 2>/dev/null |
    python3 -c 'import json,sys; r={(x["n_prompt"],x["n_gen"]):x["avg_ts"] for x in json.load(sys.stdin)}; print(r[(128,0)], r[(0,128)])')
  ours=$(RAYON_NUM_THREADS="$THREADS" target/release/padlock bench --model "$MODEL" --json |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["prefill_tokens_per_second"], d["decode_tokens_per_second"])')
  read -r lp ld <<<"$llama"
  read -r pp pd <<<"$ours"
  python3 -c "print(f'round $round, $THREADS threads: decode padlock {$pd:.1f} tok/s, llama.cpp {$ld:.1f} tok/s, ratio {$pd/$ld:.2f}; prefill padlock {$pp:.0f}, llama.cpp {$lp:.0f}, ratio {$pp/$lp:.2f}')"
done
