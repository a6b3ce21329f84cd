#!/usr/bin/env bash
# Install the pinned llama.cpp runtime that the embedded `llama` model backend dlopens: node-llama-cpp 3.21.1
# with its prebuilt CPU libraries (@node-llama-cpp/linux-x64: libllama, libggml*, run-time CPU variants),
# pinned by scripts/llama/package-lock.json, plus the CUDA build (@node-llama-cpp/linux-x64-cuda) only when an
# NVIDIA GPU is present. Into third_party/llama/ (git-ignored). clawgrid builds without any of it; the tests,
# `make run` and `make bench` use it when present. Idempotent and quiet when done. Never fatal: without npm
# or a registry the llama tests skip (exit 77) and the node reports why `llama` is unavailable.
set -uo pipefail
cd "$(dirname "$0")/.."
VER=3.21.1
dir=third_party/llama
gpu=0
if [ -e /proc/driver/nvidia/version ] || [ -e /dev/nvidia0 ]; then gpu=1; fi
want="$(cat scripts/llama/package.json scripts/llama/package-lock.json | sha256sum | cut -c1-16) gpu=$gpu"
stamp="$dir/.clawgrid-stamp"
[ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && exit 0
[ "$(uname -m)" = x86_64 ] || { echo "llama-deps: only linux-x64 prebuilt libraries are pinned; skipped" >&2; exit 0; }
command -v npm >/dev/null || { echo "llama-deps: npm missing; the llama backend stays unavailable" >&2; exit 0; }
mkdir -p "$dir"
cp scripts/llama/package.json scripts/llama/package-lock.json "$dir"/
echo "llama-deps: installing node-llama-cpp $VER (prebuilt linux-x64) into $dir" >&2
# --omit=optional keeps node-llama-cpp from pulling every GPU variant (732 MB instead of 83 MB);
# --ignore-scripts: its postinstall would try to download or build llama.cpp; only the prebuilt libraries
# are needed.
if ! (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error --omit=optional --ignore-scripts >/dev/null); then
  echo "llama-deps: npm ci failed; the llama backend stays unavailable" >&2
  exit 0
fi
if [ $gpu = 1 ] && ! (cd "$dir" && npm install --no-save --no-audit --no-fund --loglevel=error --ignore-scripts \
      "@node-llama-cpp/linux-x64-cuda@$VER" >/dev/null); then
  echo "llama-deps: the CUDA build could not be installed; the llama backend will run on CPU" >&2
fi
echo "$want" > "$stamp"
