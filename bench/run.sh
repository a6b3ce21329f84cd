#!/usr/bin/env bash
# Runs every bench/bench_*.sh in turn (each prints its own numbers and ratios against its anchor).
set -uo pipefail
cd "$(dirname "$0")/.."
rc=0
for b in bench/bench_*.sh; do
  [ -f "$b" ] || continue
  bash "$b" || { echo "bench: $b failed" >&2; rc=1; }
done
exit $rc
