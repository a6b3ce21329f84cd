#!/usr/bin/env bash
# Embedded llama backend vs the prebuilt node-llama-cpp engine on the same generated model in the same run:
# time to first token and tokens/s at 1 and 4 concurrent requests, their ratios, and the latency of a
# 64-token answer against the seed's < 5 s target for small models.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-build}
bin=$root/$build/bench/bench_model
rounds=${BENCH_ROUNDS:-5}
[ -x "$bin" ] || { echo "bench_model: $bin missing (make bench builds it)"; exit 1; }
bash "$root/scripts/llama-deps.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "== model: embedded llama.cpp (clawgrid) vs node-llama-cpp 3.21.1, CPU, greedy, 64 tokens, $(nproc) cores"
CLAWGRID_ROOT=$root "$bin" "$tmp/bench.gguf" "$rounds" > "$tmp/c.jsonl" || { cat "$tmp/c.jsonl"; echo "bench_model: skipped (llama library unavailable)"; exit 0; }
if command -v node >/dev/null && [ -d "$root/third_party/llama/node_modules/node-llama-cpp" ]; then
  node "$root/bench/model_nlc.mjs" "$tmp/bench.gguf" "$root" "$rounds" > "$tmp/n.jsonl" 2>"$tmp/n.err" || { cat "$tmp/n.err"; : > "$tmp/n.jsonl"; }
else
  : > "$tmp/n.jsonl"
fi
cat "$tmp/c.jsonl" "$tmp/n.jsonl"
python3 - "$tmp/c.jsonl" "$tmp/n.jsonl" <<'PY'
import json, sys
c = {r.get("concurrency"): r for r in map(json.loads, open(sys.argv[1])) if "concurrency" in r}
n = {r.get("concurrency"): r for r in map(json.loads, open(sys.argv[2])) if "concurrency" in r}
print(f"{'conc':>4} {'ttft ms c/n':>18} {'tok/s c/n':>18} {'ttft ratio n/c':>15} {'tok/s ratio c/n':>16}")
for k in sorted(c):
    a = c[k]; b = n.get(k)
    if b:
        print(f"{k:>4} {a['ttft_ms']:>8.2f}/{b['ttft_ms']:<9.2f} {a['tokens_per_s']:>8.1f}/{b['tokens_per_s']:<9.1f}"
              f" {b['ttft_ms']/a['ttft_ms']:>15.2f} {a['tokens_per_s']/b['tokens_per_s']:>16.2f}")
    else:
        print(f"{k:>4} {a['ttft_ms']:>8.2f}/{'-':<9} {a['tokens_per_s']:>8.1f}/{'-':<9}")
lat = c[1]["latency_64_ms"]
print(f"64-token answer latency: {lat:.1f} ms (seed target < 5000 ms): {'PASS' if lat < 5000 else 'FAIL'}")
PY
