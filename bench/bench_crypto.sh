#!/usr/bin/env bash
# Crypto benchmarks (bench/bench_crypto.c): secp256k1 sign/recover against Ed25519, EIP-712 digest against a
# bare keccak, JCS against jansson's sorted dump, SIWE verification against bare EIP-191 recovery.
# BENCH_CRYPTO_N sizes the runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${BUILD:-build}/bench/bench_crypto"
[ -x "$bin" ] || { echo "bench_crypto: $bin not built (run make bench)" >&2; exit 1; }
echo "== crypto (secp256k1, ed25519, eip712, jcs, siwe)"
"$bin" "${BENCH_CRYPTO_N:-2000}"
