#!/usr/bin/env bash
# Install exactly the Debian packages clawgrid needs that are missing.
# Idempotent and quiet when everything is present. Called by `make run` and `make test`.
set -euo pipefail

PKGS=(
  build-essential pkg-config cmake clang llvm libclang-rt-14-dev
  libevent-dev libcurl4-openssl-dev libjansson-dev libsqlite3-dev
  libsodium-dev libsecp256k1-dev nettle-dev libprotobuf-c-dev protobuf-c-compiler
  libseccomp-dev libminiupnpc-dev libnatpmp-dev libcmocka-dev
  curl jq ca-certificates bubblewrap runsc iproute2 procps git python3 libgmp-dev
)
[ "${CLAWGRID_EXTRA_PKGS:-}" ] && PKGS+=(${CLAWGRID_EXTRA_PKGS})

missing=()
for p in "${PKGS[@]}"; do
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$st" = "install ok installed" ] || missing+=("$p")
done
# Node.js and npm run the real peers in the tests (js-libp2p, the openai SDK); only when absent.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
