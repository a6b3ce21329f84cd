#!/usr/bin/env bash
# Provider benchmark: what the provider hop adds to a streamed chat completion. One fast C upstream
# (bench_provider upstream: the OpenAI streaming double on libevent) is called by the same load tool
# (libcurl multi on libevent) directly and through a real provider node (lease token, policy, rate limit,
# SSE relay, ledger entry and signed receipt per stream), in the same run, at 1, 100 and 1000 concurrent
# streams. Prints time to first token (p50/p90) with an unpaced upstream (all tokens at once: the hop's own
# cost dominates), then the time between tokens with an upstream pacing 1 ms per token (as an engine does),
# and the ratios provider/direct; then the provider's memory per open stream (RSS with N streams held open
# minus idle, / N). BENCH_PROVIDER_CONC (default "1 100 1000"), BENCH_PROVIDER_TOKENS (default 32).
set -euo pipefail
cd "$(dirname "$0")/.."
B="${BUILD:-build}"
bin="${CLAWGRID_BIN:-$B/clawgrid}"
tool="$B/bench/bench_provider"
for f in "$bin" "$tool"; do
  [ -x "$f" ] || { echo "bench_provider: $f not built (run make bench)" >&2; exit 1; }
done
concs="${BENCH_PROVIDER_CONC:-1 100 1000}"
tokens="${BENCH_PROVIDER_TOKENS:-32}"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

echo "== provider hop (consumer -> provider -> upstream vs consumer -> upstream, same upstream, same run)"
"$tool" upstream > "$tmp/up.out" &
pids+=($!)
for _ in $(seq 100); do grep -q ready "$tmp/up.out" 2>/dev/null && break; sleep 0.05; done
uport=$(awk '/ready/{print $2}' "$tmp/up.out")
[ -n "$uport" ] || { echo "bench_provider: upstream did not start" >&2; exit 1; }

"$bin" --data-dir "$tmp/data" init >/dev/null
cat > "$tmp/data/config.json" <<JSON
{"api":{"listen":"127.0.0.1:0","maxConnections":20000},"log":{"level":"warn"},
 "provider":{"rateLimit":{"requests":1000000,"windowMs":60000},
  "resources":[{"id":"res_bench","kind":"model","publish":true,"label":"bench",
   "price":{"unit":"token","amount":"1","currency":"CLAW"},
   "backend":{"type":"llama-server","url":"http://127.0.0.1:$uport","model":"bench"}}]}}
JSON
"$bin" --data-dir "$tmp/data" node --api 127.0.0.1:0 2> "$tmp/node.log" &
npid=$!
pids+=($npid)
for _ in $(seq 200); do [ -s "$tmp/data/node.api" ] && break; sleep 0.05; done
api=$(head -1 "$tmp/data/node.api" 2>/dev/null || true)
[ -n "$api" ] || { echo "bench_provider: node did not start" >&2; tail -20 "$tmp/node.log" >&2; exit 1; }
consumer=0x00000000000000000000000000000000000000b1
lease=$("$bin" --data-dir "$tmp/data" rpc market.lease.issue \
  "{\"actorId\":\"$consumer\",\"consumerActorId\":\"$consumer\",\"resourceId\":\"res_bench\",\"ttlMs\":3600000}")
token=$(printf '%s' "$lease" | sed -n 's/.*"accessToken": *"\([^"]*\)".*/\1/p')
lid=$(printf '%s' "$lease" | sed -n 's/.*"leaseId": *"\([^"]*\)".*/\1/p')
[ -n "$token" ] && [ -n "$lid" ] || { echo "bench_provider: no lease" >&2; exit 1; }

direct="http://127.0.0.1:$uport/v1/chat/completions"
via="http://$api/v1/chat/completions"
field() { printf '%s\n' "$1" | awk -v k="$2" '{for(i=1;i<NF;i++) if($i==k) print $(i+1)}'; }
# Memory per open stream, measured first on the fresh node (later runs leave freed memory in the heap):
# N slow streams held open through the provider.
rss() { awk '/VmRSS/{print $2}' "/proc/$npid/status"; }
n=$(echo "$concs" | awk '{print $NF}')
idle=$(rss)
"$tool" load "$via" "$n" "$n" 20 "$token" "$lid" 300 > "$tmp/hold.out" 2>&1 &
hpid=$!
pids+=($hpid)
for _ in $(seq 300); do grep -q holding "$tmp/hold.out" 2>/dev/null && break; sleep 0.05; done
sleep 0.5
held=$(rss)
wait "$hpid" || true
awk -v n="$n" -v a="$idle" -v b="$held" 'BEGIN {
  printf "  provider memory: idle %d KiB, %d streams open %d KiB -> %.1f KiB per open stream\n", a, n, b, (b - a) / n }'

printf '%-6s %-8s %12s %12s %14s %8s\n' conc path ttft_p50_us ttft_p90_us gap_us_paced errors
for c in $concs; do
  total=$(( c == 1 ? 300 : c * 4 ))
  ptotal=$(( c == 1 ? 50 : c * 2 ))
  d=$("$tool" load "$direct" "$c" "$total" "$tokens" || true)
  v=$("$tool" load "$via" "$c" "$total" "$tokens" "$token" "$lid" || true)
  dp=$("$tool" load "$direct" "$c" "$ptotal" "$tokens" "" "" 1 || true)
  vp=$("$tool" load "$via" "$c" "$ptotal" "$tokens" "$token" "$lid" 1 || true)
  printf '%-6s %-8s %12s %12s %14s %8s\n' "$c" direct "$(field "$d" ttft_p50_us)" "$(field "$d" ttft_p90_us)" \
    "$(field "$dp" tok_us)" "$(( $(field "$d" err) + $(field "$dp" err) ))"
  printf '%-6s %-8s %12s %12s %14s %8s\n' "$c" provider "$(field "$v" ttft_p50_us)" "$(field "$v" ttft_p90_us)" \
    "$(field "$vp" tok_us)" "$(( $(field "$v" err) + $(field "$vp" err) ))"
  awk -v c="$c" -v d50="$(field "$d" ttft_p50_us)" -v v50="$(field "$v" ttft_p50_us)" \
      -v dt="$(field "$dp" tok_us)" -v vt="$(field "$vp" tok_us)" 'BEGIN {
    if (d50 > 0 && dt > 0)
      printf "  ratio c=%s: TTFT p50 provider/direct = %.2f (+%d us); time per token provider/direct = %.3f (%+.1f us/token)\n",
        c, v50 / d50, v50 - d50, vt / dt, vt - dt }'
done

