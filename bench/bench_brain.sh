#!/usr/bin/env bash
# Brain gateway benchmark: the latency the clawgrid gateway adds to a streamed chat completion, p50/p99 at 1, 100
# and 1000 concurrent streams, against calling the upstream directly and side by side with Portkey's OSS gateway
# (npm @portkey-ai/gateway, bench/brain/package.json) in front of the same fast C upstream
# (bench/bench_brain_upstream.c), all driven by the same load tool (bench/bench_brain_load.c). Prints each run,
# then the added latency of both gateways and Portkey/clawgrid ratios, and each gateway's peak RSS.
# BENCH_BRAIN_SECONDS (default 5) and BENCH_BRAIN_CONC (default "1 100 1000") size the runs; BENCH_BRAIN_PIN below.
set -euo pipefail
cd "$(dirname "$0")/.."
B="${BUILD:-build}"
bin="${CLAWGRID_BIN:-$B/clawgrid}"
up="$B/bench/bench_brain_upstream"
load="$B/bench/bench_brain_load"
for f in "$bin" "$up" "$load"; do
  [ -x "$f" ] || { echo "bench_brain: $f not built (run make bench)" >&2; exit 1; }
done
secs="${BENCH_BRAIN_SECONDS:-5}"
concs="${BENCH_BRAIN_CONC:-1 100 1000}"
ulimit -n 65536 2>/dev/null || ulimit -n 8192 2>/dev/null || true

# BENCH_BRAIN_PIN=1 (two or more cores): each gateway gets core 0 and the load tool and the upstream share core 1,
# so both gateways run on one core, as in Portkey's published one-core figures. Off by default: on a machine
# shared with other work a pinned process cannot move away from a busy core.
gw_pin=(); ld_pin=()
if [ "${BENCH_BRAIN_PIN:-0}" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  gw_pin=(taskset -c 0); ld_pin=(taskset -c 1)
fi

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

echo "== brain gateway (added latency vs direct, vs Portkey)"
"${ld_pin[@]}" "$up" 0 16 > "$tmp/up.out" &
pids+=($!)
for _ in $(seq 100); do grep -q ready "$tmp/up.out" 2>/dev/null && break; sleep 0.05; done
uport=$(awk '/ready/{print $2}' "$tmp/up.out")
[ -n "$uport" ] || { echo "bench_brain: upstream did not start" >&2; exit 1; }

# The clawgrid node: one centralized brain in front of the upstream.
key="cgk_bench_$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
"$bin" --data-dir "$tmp/data" init >/dev/null
cat > "$tmp/data/config.json" <<JSON
{"api":{"listen":"127.0.0.1:0","maxConnections":20000},"log":{"level":"warn"},
 "brain":{"enabled":true,"gatewayKeyEnv":"CG_BENCH_KEY","defaultModel":"bench","maxAttempts":1,
  "brains":[{"providerId":"up","type":"centralized","endpoint":"http://127.0.0.1:$uport/v1","defaultModel":"bench"}]}}
JSON
CG_BENCH_KEY="$key" "${gw_pin[@]}" "$bin" --data-dir "$tmp/data" node --api 127.0.0.1:0 2> "$tmp/node.log" &
npid=$!
pids+=($npid)
for _ in $(seq 200); do [ -s "$tmp/data/node.api" ] && break; sleep 0.05; done
api=$(head -1 "$tmp/data/node.api" 2>/dev/null || true)
[ -n "$api" ] || { echo "bench_brain: node did not start" >&2; tail -20 "$tmp/node.log" >&2; exit 1; }

# Portkey, when its npm package is installed (scripts/npm-deps.sh).
pk="bench/brain/node_modules/@portkey-ai/gateway/build/start-server.js"
pport=""
if [ -f "$pk" ] && command -v node >/dev/null; then
  pport=$(( 20000 + RANDOM % 20000 ))
  NODE_ENV=production "${gw_pin[@]}" node "$pk" --port="$pport" --headless > "$tmp/portkey.log" 2>&1 &
  ppid=$!
  pids+=($ppid)
  for _ in $(seq 200); do
    curl -s -o /dev/null "http://127.0.0.1:$pport/" 2>/dev/null && break
    sleep 0.05
  done
else
  echo "bench_brain: Portkey not installed (bench/brain: npm ci); comparing with the direct baseline only" >&2
fi

peak_kb() { awk '/VmHWM/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
results="$tmp/results.jsonl"
: > "$results"
for c in $concs; do
  d=$("${ld_pin[@]}" "$load" "http://127.0.0.1:$uport/v1/chat/completions" "$c" "$secs")
  echo "direct    $d"
  g=$("${ld_pin[@]}" "$load" "http://$api/v1/chat/completions" "$c" "$secs" "Authorization: Bearer $key")
  echo "clawgrid  $g"
  grss=$(peak_kb "$npid")
  p='null'; prss=0
  if [ -n "$pport" ]; then
    p=$("${ld_pin[@]}" "$load" "http://127.0.0.1:$pport/v1/chat/completions" "$c" "$secs" "x-portkey-provider: openai" \
        "x-portkey-custom-host: http://127.0.0.1:$uport/v1" "Authorization: Bearer sk-bench")
    echo "portkey   $p"
    prss=$(peak_kb "$ppid")
  fi
  echo "{\"conc\":$c,\"direct\":$d,\"clawgrid\":$g,\"portkey\":$p,\"clawgrid_rss_kb\":$grss,\"portkey_rss_kb\":$prss}" >> "$results"
done

node - "$results" <<'JS'
const fs = require('fs');
const rows = fs.readFileSync(process.argv[2], 'utf8').trim().split('\n').map(JSON.parse);
const f = (x) => (x === null || x === undefined || Number.isNaN(x)) ? '   -   ' : x.toFixed(3).padStart(7);
const r = (a, b) => (a === null || b === null || b <= 0) ? '  -  ' : (a / b).toFixed(1).padStart(5) + 'x';
console.log('\nadded latency over direct (ms; TTFB = first byte of the stream, total = whole stream):');
console.log('conc | clawgrid ttfb p50  p99 | total p50  p99 | portkey ttfb p50  p99 | total p50  p99 | portkey/clawgrid ttfb p50 p99 | total p50 p99 | rps direct/clawgrid/portkey | errors cg/pk | peak RSS MB cg/pk');
for (const x of rows) {
  const add = (g, k) => g ? Math.max(0, g[k] - x.direct[k]) : null;
  const c = {}, p = {};
  for (const k of ['ttfb_p50_ms', 'ttfb_p99_ms', 'total_p50_ms', 'total_p99_ms']) { c[k] = add(x.clawgrid, k); p[k] = add(x.portkey, k); }
  // Below 0.01 ms clawgrid's added latency is within the noise of the direct run: no meaningful ratio.
  const rr = (k) => (c[k] !== null && c[k] < 0.01 && p[k] !== null) ? ' >100x' : r(p[k], c[k]);
  console.log(`${String(x.conc).padStart(4)} | ${f(c.ttfb_p50_ms)} ${f(c.ttfb_p99_ms)} | ${f(c.total_p50_ms)} ${f(c.total_p99_ms)} | ` +
    `${f(p.ttfb_p50_ms)} ${f(p.ttfb_p99_ms)} | ${f(p.total_p50_ms)} ${f(p.total_p99_ms)} | ` +
    `${rr('ttfb_p50_ms')} ${rr('ttfb_p99_ms')} | ${rr('total_p50_ms')} ${rr('total_p99_ms')} | ` +
    `${x.direct.rps}/${x.clawgrid.rps}/${x.portkey ? x.portkey.rps : '-'} | ${x.clawgrid.errors}/${x.portkey ? x.portkey.errors : '-'} | ` +
    `${(x.clawgrid_rss_kb / 1024).toFixed(1)}/${x.portkey_rss_kb ? (x.portkey_rss_kb / 1024).toFixed(1) : '-'}`);
}
JS
