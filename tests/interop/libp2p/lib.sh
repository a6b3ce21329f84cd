# Shared helpers of the libp2p interop tests (sourced, not run). Needs CLAWGRID_BIN and CLAWGRID_ROOT.
# The js side is tests/interop/libp2p/peer.mjs on the Node 22 that the npm package node@22 installs.
set -euo pipefail
HERE="$CLAWGRID_ROOT/tests/interop/libp2p"
NODE="$HERE/node_modules/.bin/node"
BIN="$CLAWGRID_BIN"
WORK=$(mktemp -d /tmp/cg-p2p-interop.XXXXXX)
export CLAWGRID_HOME="$WORK/home" # no initialized data dir: the CLI uses an ephemeral key
PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

skip() { echo "SKIP: $*"; exit 77; }
die() {
  echo "FAIL: $*" >&2
  for f in "$WORK"/*.out "$WORK"/*.err; do [ -s "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }; done
  exit 1
}
ok() { echo "ok - $*"; }

[ -x "$NODE" ] || skip "Node 22 from npm is not installed in $HERE (run scripts/npm-deps.sh)"
"$NODE" -e 'process.exit(typeof Promise.withResolvers === "function" ? 0 : 1)' ||
  skip "the npm node package does not provide Node 22 (Promise.withResolvers missing)"
[ -d "$HERE/node_modules/libp2p" ] || skip "js-libp2p is not installed in $HERE (run scripts/npm-deps.sh)"

# Waits (bounded) until file $1 has a line matching $2.
wait_line() {
  for _ in $(seq 1 150); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  die "timed out waiting for '$2' in $1"
}

# start_js_listener NAME MUXER [extra args]: sets JS_ADDR, JS_PID; output in $WORK/NAME.out
start_js_listener() {
  local name=$1 mux=$2; shift 2
  # --parent-pid: the peer exits by itself if this test dies without cleaning up.
  "$NODE" "$HERE/peer.mjs" listen --muxer "$mux" --parent-pid $$ "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  JS_PID=$!
  PIDS+=($JS_PID)
  wait_line "$WORK/$name.out" '"event":"listening"'
  JS_ADDR=$(grep '"event":"listening"' "$WORK/$name.out" | head -1 | jq -r '.addrs[0]')
  JS_ID=$(grep '"event":"listening"' "$WORK/$name.out" | head -1 | jq -r '.peerId')
}

# start_c_listener NAME [--muxer M]: sets C_ADDR, C_PID; stdout/stderr in $WORK/NAME.{out,err}
start_c_listener() {
  local name=$1; shift
  "$BIN" p2p listen /ip4/127.0.0.1/tcp/0 "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  C_PID=$!
  PIDS+=($C_PID)
  wait_line "$WORK/$name.out" '/p2p/12D3KooW'
  C_ADDR=$(head -1 "$WORK/$name.out")
  C_ID=${C_ADDR##*/p2p/}
}

js() { timeout 120 "$NODE" "$HERE/peer.mjs" "$@"; }
# Field of the first JSON line of file $1 whose event is $2.
jfield() { grep "\"event\":\"$2\"" "$1" | head -1 | jq -r "$3"; }
