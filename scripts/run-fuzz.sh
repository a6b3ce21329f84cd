#!/usr/bin/env bash
# Run every libFuzzer target in $1 for $2 seconds, each on a scratch copy of its seed corpus.
set -euo pipefail
dir=$1; secs=${2:-30}; only=${3:-}
fail=0
for t in "$dir"/fuzz_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  [ -n "$only" ] && [ "$name" != "fuzz_$only" ] && [ "$name" != "$only" ] && continue
  seed="tests/fuzz/corpus/${name#fuzz_}"
  work=$(mktemp -d); [ -d "$seed" ] && cp -r "$seed"/. "$work"/
  echo "fuzz: $name for ${secs}s"
  if ! "$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$work" \
       >"$work.log" 2>&1; then
    echo "fuzz: $name FAILED"; tail -n 40 "$work.log"; fail=1
  else
    grep -E 'stat::number_of_executed_units|Done' "$work.log" | tail -n 2
  fi
  rm -rf "$work" "$work.log"
done
exit $fail
