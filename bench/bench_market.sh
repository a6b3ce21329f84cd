#!/usr/bin/env bash
# Market benchmarks (bench/bench_market.c): ledger appends/s against raw SQLite inserts of the same row size,
# and lease-token verification cost per call. BENCH_MARKET_APPENDS / BENCH_MARKET_VERIFIES size the runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${BUILD:-build}/bench/bench_market"
[ -x "$bin" ] || { echo "bench_market: $bin not built (run make bench)" >&2; exit 1; }
echo "== market (ledger, lease tokens)"
"$bin" "${BENCH_MARKET_APPENDS:-3000}" "${BENCH_MARKET_VERIFIES:-20000}"
