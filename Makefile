# padlock — build, demo, tests and benchmarks.
#
#   make demo    set up, build pkg/ (wasm), serve the demo on http://127.0.0.1:$(PORT)/www/
#   make test    set up, lint (fmt, clippy, code shape), native tests, wasm tests in headless
#                Chromium (wasm-pack test), the npm package (make package), browser e2e tests,
#                and a new Vite + TypeScript app that installs the package (make consumer)
#   make package pkg/ as the npm package padlock-llm, packed into dist/
#   make bench   native `padlock bench` + padlock vs @wllama/wllama in one headless Chromium,
#                PAD's decode cost (1 and 4 preferences vs plain) natively and in Chromium,
#                time to first token over a chat's turns with the caches kept and not,
#                and the WebGPU backend against the CPU backend (natively and in Chromium)
#   make test-models  the default model requantized by llama.cpp into every tensor type, each
#                checked against llama.cpp's greedy answers and an exact float64 pass, on the CPU
#                and the GPU backend (scripts/test-models.sh; builds llama-cpp-python once, ~20 min)
#   make heads   the value heads in heads/ (scripts/train-heads.sh; long, CPU-heavy)
#   make eval    the evaluation in EVAL.md (scripts/eval.sh; hours on 2 cores, resumable)
#
# pkg/ is built with `wasm-pack build --release --target web --mode no-install` (wasm-opt is off
# in Cargo.toml). With PKG_BUILDER=cargo it is built with cargo + wasm-bindgen instead (same output).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
export PATH := $(HOME)/.cargo/bin:$(PATH)

PORT ?= 8080
MODEL ?= models/SmolLM2-135M-Instruct.Q4_1.gguf
PKG_BUILDER ?= wasm-pack
WASM_TARGET := wasm32-unknown-unknown
CHROMEDRIVER ?= /usr/bin/chromedriver
# Seconds per wasm-bindgen-test test (default 20 is too short for loading the model).
WASM_BINDGEN_TEST_TIMEOUT ?= 900
# The wasm tests run as wasm-pack documents them (`wasm-pack test --headless --chrome`): the
# library package alone (the CLI is its own package in cli/), every tests/*.rs, in Chromium with
# webdriver.json's flags. Native-only test files compile to nothing on wasm32.
WASM_PACK_TEST_ARGS ?= --headless --chrome --chromedriver $(CHROMEDRIVER) --mode no-install --release
NATIVE_TEST_ARGS ?=
# The cargo profile of the native build and tests: release, or release-nolto (what `make test`
# uses: the same code, built in a fraction of the time; see Cargo.toml).
NATIVE_PROFILE ?= release
NATIVE_DIR := target/$(NATIVE_PROFILE)
E2E_TESTS ?= $(wildcard tests/browser/*.test.mjs)

.PHONY: test-models all setup lint native native-test wasm-test pkg package consumer serve demo e2e test soak bench bench-native bench-browser bench-pad bench-chat bench-gpu heads eval clean-pkg help

all: help

help:
	@echo "make demo | make test | make bench   (see the top of the Makefile)"

setup:
	scripts/setup.sh

test-models:
	scripts/test-models.sh

# Formatting, clippy (native and wasm32, warnings are errors), the code-shape limits and the
# module layering (no import circles).
lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --target $(WASM_TARGET) --lib --tests -- -D warnings
	python3 scripts/code_size.py
	scripts/module-deps.sh

native:
	cargo build --workspace --profile $(NATIVE_PROFILE)

# XDG_RUNTIME_DIR: Mesa's lavapipe (the GPU tests' adapter) complains on every device without one.
native-test:
	XDG_RUNTIME_DIR=$${XDG_RUNTIME_DIR:-/tmp} cargo test --workspace --profile $(NATIVE_PROFILE) --no-fail-fast $(NATIVE_TEST_ARGS)

wasm-test:
	WASM_BINDGEN_TEST_TIMEOUT=$(WASM_BINDGEN_TEST_TIMEOUT) \
	WASM_BINDGEN_TEST_WEBDRIVER_JSON=$(CURDIR)/webdriver.json \
	wasm-pack test $(WASM_PACK_TEST_ARGS)

pkg:
ifeq ($(PKG_BUILDER),cargo)
	cargo build --release --target $(WASM_TARGET) --lib
	wasm-bindgen --target web --out-dir pkg target/$(WASM_TARGET)/release/padlock.wasm
else
	wasm-pack build --release --target web --mode no-install --no-opt --out-dir pkg .
endif
	node scripts/package.mjs
	@ls -l pkg/padlock.js pkg/padlock_bg.wasm

# The npm package: pkg/ packed into dist/padlock-llm-<version>.tgz.
package: pkg
	mkdir -p dist
	rm -f dist/padlock-llm-*.tgz
	npm pack --pack-destination dist ./pkg
	@ls -l dist/padlock-llm-*.tgz

# A new Vite + TypeScript app installs the packed package and chats with the default model in
# headless Chromium (tests/consumer/run.mjs).
consumer:
	@ls dist/padlock-llm-*.tgz >/dev/null 2>&1 || { echo "dist/padlock-llm-*.tgz is missing: run 'make package'" >&2; exit 1; }
	node tests/consumer/run.mjs

serve:
	node scripts/serve.mjs

demo: setup pkg
	PORT=$(PORT) node scripts/serve.mjs

e2e:
	@test -f pkg/padlock.js || { echo "pkg/padlock.js is missing: run 'make pkg'" >&2; exit 1; }
	@test -n "$(E2E_TESTS)" || { echo "no tests/browser/*.test.mjs found" >&2; exit 1; }
	PADLOCK_CLI=$(CURDIR)/$(NATIVE_DIR)/padlock node --test --test-concurrency=1 $(E2E_TESTS)

# Every stage runs even when an earlier one failed (so one run shows everything); the target
# fails at the end if any did.
TEST_STAGES := lint native-test native wasm-test package e2e consumer
# make test builds pkg/ with wasm-pack, as `make pkg` does (wasm-pack is installed for the wasm
# tests anyway).
test: export NATIVE_PROFILE := release-nolto
test: setup
	@failed=""; times=""; \
	for stage in $(TEST_STAGES); do \
	  echo "=== make $$stage"; start=$$(date +%s); \
	  $(MAKE) --no-print-directory $$stage || failed="$$failed $$stage"; \
	  times="$$times $$stage:$$(( $$(date +%s) - start ))s"; \
	done; \
	echo "=== make test: seconds per stage:$$times"; \
	if [ -n "$$failed" ]; then echo "=== make test: FAILED:$$failed" >&2; exit 1; fi; \
	echo "=== make test: all stages passed ($(TEST_STAGES))"

# Native decode/prefill speed, on all cores and on one thread (the browser build is single-threaded).
bench-native:
	cargo build --release -p padlock-cli
	target/release/padlock bench --model $(MODEL) --json
	RAYON_NUM_THREADS=1 target/release/padlock bench --model $(MODEL) --json

# padlock vs @wllama/wllama 3.8.1 in one headless Chromium (see scripts/bench-browser.mjs).
bench-browser:
	@test -f pkg/padlock.js || { echo "pkg/padlock.js is missing: run 'make pkg'" >&2; exit 1; }
	node scripts/bench-browser.mjs

# PAD decode tok/s with 0, 1 and 4 preferences (plus the harmlessness context) in one run,
# natively (and with harmlessness inside the guideline instead) and in Chromium.
bench-pad:
	cargo build --release -p padlock-cli
	target/release/padlock bench --model $(MODEL) --preferences 0,1,4 --decode-tokens 64 --rounds 3
	target/release/padlock bench --model $(MODEL) --preferences 0,1 --decode-tokens 64 --rounds 3 --harmless guideline
	RAYON_NUM_THREADS=1 target/release/padlock bench --model $(MODEL) --preferences 0,1,4 --decode-tokens 64 --rounds 3
	@test -f pkg/padlock.js || { echo "pkg/padlock.js is missing: run 'make pkg'" >&2; exit 1; }
	node scripts/bench-pad-browser.mjs

# Time to first token over a five-turn chat, caches kept between turns and not, plain and with
# one preference: natively and in Chromium (the package's engine, CPU backend).
bench-chat:
	@test -f pkg/index.js || { echo "pkg/index.js is missing: run 'make pkg'" >&2; exit 1; }
	cargo build --release -p padlock-cli
	target/release/padlock bench-chat --model $(MODEL) --turns 5 --preferences 0,1
	RAYON_NUM_THREADS=1 target/release/padlock bench-chat --model $(MODEL) --turns 5 --preferences 0,1
	node scripts/bench-chat-browser.mjs --turns 5 --preferences 0,1

# At least 200 answers and 10 minutes of mixed work in one Chromium page (scripts/soak-browser.mjs):
# no unexpected error, no request after the model loaded, no wasm memory growth after the warm-up.
soak:
	@test -f pkg/index.js || { echo "pkg/index.js is missing: run 'make pkg'" >&2; exit 1; }
	node scripts/soak-browser.mjs --generations 200 --minutes 10

# The WebGPU backend against the CPU backend in the same run, for B = 1 and B = 4 sequences per
# step: natively (wgpu on whatever adapter there is; lavapipe on the project's machines) and in
# Chromium (SwiftShader). Software adapters are slow, hence the short runs; on a real GPU use
# GPU_BENCH_ARGS='--prompt-tokens 128 --decode-tokens 128'.
GPU_BENCH_ARGS ?= --prompt-tokens 32 --decode-tokens 16
bench-gpu:
	@test -f pkg/padlock.js || { echo "pkg/padlock.js is missing: run 'make pkg'" >&2; exit 1; }
	cargo build --release -p padlock-cli
	for b in 1 4; do \
	  target/release/padlock bench --model $(MODEL) --backend cpu --batch $$b $(GPU_BENCH_ARGS) --json; \
	  target/release/padlock bench --model $(MODEL) --backend gpu --batch $$b $(GPU_BENCH_ARGS) --json; \
	done
	node scripts/bench-browser.mjs --only padlock --backends cpu,webgpu --tokens 16 --warmup 2

bench: setup
	$(MAKE) pkg
	$(MAKE) bench-native
	$(MAKE) bench-browser
	$(MAKE) bench-pad
	$(MAKE) bench-chat
	$(MAKE) bench-gpu

heads: setup native
	nice -n 10 scripts/train-heads.sh

eval: setup native
	nice -n 10 scripts/eval.sh

clean-pkg:
	rm -rf pkg
