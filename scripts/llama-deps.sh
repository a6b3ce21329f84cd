#!/usr/bin/env bash
# Install the pinned llama.cpp runtime that the embedded `llama` model backend dlopens: node-llama-cpp with
# its prebuilt CPU libraries (@node-llama-cpp/linux-x64: libllama, libggml*, run-time CPU variants), and the
# CUDA build (@node-llama-cpp/linux-x64-cuda) only when an NVIDIA GPU is present. Into third_party/llama/
# (git-ignored). clawgrid builds without any of it; the tests and `make run` use it when present.
# Idempotent and quiet when done. Never fatal: without npm or a registry the llama tests skip (exit 77).
set -uo pipefail
VER=3.21.1
dir=third_party/llama
want="node-llama-cpp@$VER @node-llama-cpp/linux-x64@$VER"
gpu=0
if [ -e /proc/driver/nvidia/version ] || ls /dev/nvidia0 >/dev/null 2>&1; then
  gpu=1; want="$want @node-llama-cpp/linux-x64-cuda@$VER"
fi
stamp="$dir/.clawgrid-stamp"
[ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && exit 0
[ "$(uname -m)" = x86_64 ] || { echo "llama-deps: only linux-x64 prebuilt libraries are pinned; skipped" >&2; exit 0; }
command -v npm >/dev/null || { echo "llama-deps: npm missing; the llama backend stays unavailable" >&2; exit 0; }
mkdir -p "$dir"
# A private package.json so that npm installs here and not in a parent project.
[ -f "$dir/package.json" ] || printf '{"name":"clawgrid-llama-runtime","private":true}\n' > "$dir/package.json"
echo "llama-deps: installing $want into $dir (gpu=$gpu)" >&2
# --omit=optional keeps node-llama-cpp from pulling every GPU variant (732 MB); the x64 package is named.
# --ignore-scripts: node-llama-cpp's postinstall would try to download or build llama.cpp; we only need the
# prebuilt shared libraries.
if ! (cd "$dir" && npm install --no-audit --no-fund --loglevel=error --omit=optional --ignore-scripts \
        --save-exact $want >/dev/null); then
  echo "llama-deps: npm install failed; the llama backend stays unavailable" >&2
  exit 0
fi
echo "$want" > "$stamp"
