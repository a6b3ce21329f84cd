#!/usr/bin/env bash
# The node's JSON-RPC path against a bare libevent hello-world, same machine, same run, same load:
# requests/s and p99 latency of web3.status.summary over POST /rpc (admin auth, body cap, JSON parse,
# dispatch, metrics) next to bench/hello_evhttp.c answering the same request with a constant body, printed
# as ratios. Rounds alternate between the two servers so that machine noise hits both alike.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-build}
bin=${CLAWGRID_BIN:-$root/$build/clawgrid}
loadgen=$root/$build/bench/loadgen
hello=$root/$build/bench/hello_evhttp
conns=${BENCH_CONNS:-16}
secs=${BENCH_SECONDS:-3}
rounds=${BENCH_ROUNDS:-3}
for f in "$bin" "$loadgen" "$hello"; do
  [ -x "$f" ] || { echo "bench_node: $f missing (make bench builds it)"; exit 1; }
done
tmp=$(mktemp -d)
node_pid=; hello_pid=
cleanup() {
  [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null && wait "$node_pid" 2>/dev/null
  [ -n "$hello_pid" ] && kill "$hello_pid" 2>/dev/null && wait "$hello_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
"$bin" --data-dir "$tmp/data" init >/dev/null
CLAWGRID_LOG_LEVEL=warn "$bin" --data-dir "$tmp/data" node --api 127.0.0.1:0 2>"$tmp/node.log" &
node_pid=$!
"$hello" 127.0.0.1:0 "$tmp/hello.addr" &
hello_pid=$!
for _ in $(seq 200); do [ -s "$tmp/data/node.api" ] && [ -s "$tmp/hello.addr" ] && break; sleep 0.05; done
[ -s "$tmp/data/node.api" ] || { echo "bench_node: node did not start"; cat "$tmp/node.log"; exit 1; }
node_addr=$(cat "$tmp/data/node.api"); hello_addr=$(cat "$tmp/hello.addr")
token=$(cat "$tmp/data/admin.token")
body='{"jsonrpc":"2.0","id":1,"method":"web3.status.summary"}'
hdrs=("Content-Type: application/json" "Authorization: Bearer $token")
echo "== node: web3.status.summary over /rpc vs bare evhttp hello, $conns connections, ${secs}s x $rounds rounds, $(nproc) cores"
# warm-up (and a correctness check of the node's answer)
"$loadgen" "$node_addr" 2 0.5 POST /rpc "$body" "${hdrs[@]}" >/dev/null
curl -sf -H "${hdrs[0]}" -H "${hdrs[1]}" -d "$body" "http://$node_addr/rpc" | grep -q '"availability"' \
  || { echo "bench_node: unexpected answer from the node"; exit 1; }
: > "$tmp/node.jsonl"; : > "$tmp/hello.jsonl"; : > "$tmp/info.jsonl"
# node.info (no store access) separates the HTTP/RPC framework's cost from the status contributors'.
info='{"jsonrpc":"2.0","id":1,"method":"node.info"}'
for r in $(seq "$rounds"); do
  "$loadgen" "$hello_addr" "$conns" "$secs" POST /rpc "$body" "${hdrs[@]}" >> "$tmp/hello.jsonl"
  "$loadgen" "$node_addr" "$conns" "$secs" POST /rpc "$body" "${hdrs[@]}" >> "$tmp/node.jsonl"
  "$loadgen" "$node_addr" "$conns" "$secs" POST /rpc "$info" "${hdrs[@]}" >> "$tmp/info.jsonl"
done
python3 - "$tmp/node.jsonl" "$tmp/hello.jsonl" "$tmp/info.jsonl" <<'PY'
import json, statistics, sys
node, hello, info = ([json.loads(l) for l in open(f)] for f in sys.argv[1:4])
def med(rows, k): return statistics.median(r[k] for r in rows)
print(f"{'server':<34} {'req/s':>10} {'p50 ms':>9} {'p99 ms':>9} {'errors':>7}")
for name, rows in (("clawgrid /rpc web3.status.summary", node), ("clawgrid /rpc node.info", info),
                   ("bare evhttp hello", hello)):
    print(f"{name:<34} {med(rows,'rps'):>10.0f} {med(rows,'p50_ms'):>9.3f} {med(rows,'p99_ms'):>9.3f} "
          f"{sum(r['errors'] for r in rows):>7}")
for name, rows in (("web3.status.summary", node), ("node.info", info)):
    print(f"ratio {name}/hello: req/s {med(rows,'rps')/med(hello,'rps'):.2f}, "
          f"p99 {med(rows,'p99_ms')/med(hello,'p99_ms'):.2f} (medians of {len(rows)} rounds)")
PY
