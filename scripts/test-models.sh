#!/usr/bin/env bash
# The default model requantized by llama.cpp into every tensor type padlock reads, each file
# checked against llama.cpp's greedy answers and an exact float64 forward pass of that file,
# on the CPU backend and on the GPU backend (whatever adapter wgpu finds; lavapipe here); and
# the reference files of the architecture and tokenizer tests, recorded from llama.cpp:
#
#   scripts/test-models.sh          (make test-models)
#
# The first run builds llama-cpp-python 0.3.36 from source (~20 minutes on 2 cores), for AVX2
# only: a build with AVX-512 dies with SIGILL on machines without it, and GGML_NATIVE picks up
# AMX where the CPU reports it, whose path crashes (see scripts/bench-llamacpp.sh). The answers
# are kept in tests/fixtures/quant/ (committed); the model files in models/quant/ (not).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

if ! python3 -c 'import llama_cpp, gguf, numpy' 2>/dev/null; then
  python3 -m pip install -q gguf==0.19.0 numpy scikit-build-core cmake ninja
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
    -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \
    CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" python3 -m pip install -q --no-cache-dir llama-cpp-python==0.3.36
fi
# The fixtures `make test` checks the architectures and tokenizers against: llama.cpp's logits on
# the tiny random-weight models, its token ids for each pre-tokenizer and SentencePiece.
cargo run -q --profile release-nolto --example tiny_models -- target/tiny-models
python3 scripts/tiny_models.py target/tiny-models
python3 scripts/pretokenizer_fixture.py
python3 scripts/spm_fixture.py
python3 scripts/quant_types.py requantize
python3 scripts/quant_types.py answers
cargo build -q --profile release-nolto --example quant_check

echo "| file | greedy: chats with ≥ 32 tokens equal to llama.cpp's | top-1 = float64 | GPU top-1 = CPU |"
echo "|---|---|---|---|"
for json in tests/fixtures/quant/*.llamacpp.json; do
  name="$(basename "$json" .llamacpp.json)"
  target/release-nolto/examples/quant_check "models/quant/SmolLM2-135M-Instruct.$name.gguf" "$json" \
    "tests/fixtures/quant/$name.f64.json" --gpu | python3 scripts/quant_types.py row
done
