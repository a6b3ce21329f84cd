#!/usr/bin/env bash
# Acceptance checks from the outside, with js-libp2p scripts written independently of peer.mjs (accept.mjs),
# against the fixed interfaces only: `clawgrid p2p listen|dial|ping|id|peers` and a running `clawgrid node`.
#   - js dials `clawgrid p2p listen` on ip4 and ip6 (one command, two addresses): every muxer preference
#     (yamux, mplex, both orders), with and without /p2p/, identify fields and the public key, identify push
#     recorded by clawgrid, repeated and concurrent pings, 40 short-lived connections, half-close on echo,
#     8 MiB single writes, streams reset at every stage, 100 concurrent streams, a stream flood (the listener's
#     memory stays bounded), unknown protocols, /dns4/localhost, the wrong peer id, js identities with
#     Secp256k1 and RSA keys, multistream `ls`;
#   - clawgrid dials js (yamux and mplex): ping with and without /p2p/ and via /dns4, a 16 MiB echo, 50
#     streams, the wrong peer id, js's view of clawgrid's identify; a js peer without identify (or silent on
#     it) still serves `p2p dial`; Secp256k1 and RSA js peers; `--json` after the subcommand;
#   - a node: `p2p id`, `p2p peers` (the js peer, its pushed protocol and its connection), `p2p.ping` RPC.
source "$CLAWGRID_ROOT/tests/interop/libp2p/lib.sh"
ACC="$HERE/accept.mjs"
acc() { timeout 120 "$NODE" "$ACC" "$@"; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# every line of a battery's output must say ok
all_ok() { jq -e -s 'map(select(.check)) | length > 0 and all(.ok)' "$1" >/dev/null || die "$2: $(jq -c 'select(.ok == false)' "$1" | head -3)"; }

# ---- js dials clawgrid ---------------------------------------------------------------------------------
IP6=1
python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null || IP6=0
LISTEN=(/ip4/127.0.0.1/tcp/0)
[ $IP6 = 1 ] && LISTEN+=(/ip6/::1/tcp/0)
# Under ASan (make asan) freed memory sits in a 256 MiB quarantine and would read as growth: keep it small for
# the listener whose memory is measured (an uninstrumented binary ignores the variable).
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4:thread_local_quarantine_size_kb=64" \
  "$BIN" p2p listen "${LISTEN[@]}" >"$WORK/c.out" 2>"$WORK/c.err" &
C_PID=$!
PIDS+=($C_PID)
wait_line "$WORK/c.out" '/p2p/12D3KooW'
[ $IP6 = 1 ] && wait_line "$WORK/c.out" '^/ip6/::1/tcp/'
C4=$(grep -m1 '^/ip4/127.0.0.1/tcp/[0-9]*/p2p/12D3KooW' "$WORK/c.out") || die "no ip4 listen address"
C_ID=${C4##*/p2p/}
[ "$(wc -l <"$WORK/c.out")" = "${#LISTEN[@]}" ] || die "one line per listen address expected: $(cat "$WORK/c.out")"
rss0=$(rss_kb $C_PID)

acc battery "$C4" --parent-pid $$ >"$WORK/b4.out" 2>"$WORK/b4.err" || true
all_ok "$WORK/b4.out" "js dials clawgrid over ip4"
ok "js dials clawgrid (ip4): $(jq -r -s 'map(select(.check) | .check) | join(" ")' "$WORK/b4.out")"
jq -e -s 'map(select(.check == "identify")) | .[0] | .publicKeyMatches and (.agentVersion | startswith("clawgrid/"))' "$WORK/b4.out" >/dev/null ||
  die "identify fields"

# the identify push of the js peer reached clawgrid: its protocol count went up by one on the same connection
JS_PUSHER=$(jq -r 'select(.check == "identify-push-sent") | .jsPeer' "$WORK/b4.out")
wait_line "$WORK/c.err" "peer identified\" peer=$JS_PUSHER"
counts=$(grep "peer identified\" peer=$JS_PUSHER" "$WORK/c.err" | sed -n 's/.* protocols=\([0-9]*\) .*/\1/p' | tr '\n' ' ')
set -- $counts
[ $# -ge 2 ] && [ "$2" = $(($1 + 1)) ] || die "identify push not recorded (protocol counts: $counts)"
ok "identify push recorded by clawgrid ($counts)"

if [ $IP6 = 1 ]; then
  C6=$(grep -m1 '^/ip6/::1/tcp/' "$WORK/c.out")
  [ "${C6##*/p2p/}" = "$C_ID" ] || die "ip6 address with another peer id"
  acc battery "$C6" --only muxers,bare,identify,halfclose,unknown,wrongid --parent-pid $$ >"$WORK/b6.out" 2>&1 || true
  all_ok "$WORK/b6.out" "js dials clawgrid over ip6"
  jq -e -s 'map(select(.check == "identify")) | .[0].observedAddr | startswith("/ip6/::1/tcp/")' "$WORK/b6.out" >/dev/null ||
    die "ip6 observed address"
  ok "js dials clawgrid (ip6)"
fi

# multistream-select `ls` on a raw socket lists the security protocol
port=${C4#/ip4/127.0.0.1/tcp/}
port=${port%%/*}
acc ls 127.0.0.1 "$port" >"$WORK/ls.out" || die "ls failed: $(cat "$WORK/ls.out")"
jq -e '.ls == ["/noise"] and .trailingNewline' "$WORK/ls.out" >/dev/null || die "ls answer: $(cat "$WORK/ls.out")"
ok "multistream ls"

# after floods, resets and churn the listener is alive, holds no leftover sockets, and its memory is bounded
kill -0 $C_PID || die "listener died"
acc battery "$C4" --only ping >/dev/null 2>&1 || die "listener stopped serving"
rss1=$(rss_kb $C_PID)
fds=$(ls /proc/$C_PID/fd | wc -l)
[ "$rss1" -lt $((rss0 + 65536)) ] || die "listener memory grew from $rss0 to $rss1 KiB"
[ "$fds" -lt 20 ] || die "listener holds $fds fds after every peer left"
ok "listener alive after the battery: RSS $rss0 -> $rss1 KiB, $fds fds"

# ---- clawgrid dials js -----------------------------------------------------------------------------------
for MUX in yamux mplex; do
  "$NODE" "$ACC" listen --muxers $MUX --parent-pid $$ >"$WORK/js-$MUX.out" 2>"$WORK/js-$MUX.err" &
  PIDS+=($!)
  wait_line "$WORK/js-$MUX.out" '"listening"'
  JA=$(head -1 "$WORK/js-$MUX.out" | jq -r '.listening[0]')
  JID=$(head -1 "$WORK/js-$MUX.out" | jq -r '.peerId')
  JB=${JA%/p2p/*}
  "$BIN" p2p ping "$JA" -c 3 >"$WORK/ping.out" 2>/dev/null || die "$MUX: ping"
  [ "$(grep -c '^[0-9.]* ms$' "$WORK/ping.out")" = 3 ] || die "$MUX: ping output: $(cat "$WORK/ping.out")"
  "$BIN" p2p ping "$JB" >/dev/null 2>&1 || die "$MUX: ping without /p2p/"
  "$BIN" p2p ping "/dns4/localhost/tcp/${JB##*/tcp/}/p2p/$JID" >/dev/null 2>&1 || die "$MUX: ping via /dns4"
  # --json after the subcommand, like any other option
  "$BIN" p2p dial "$JA" --echo 16M --json >"$WORK/echo.out" 2>/dev/null || die "$MUX: 16 MiB echo"
  jq -e -s 'map(select(.event == "echo")) | .[0].ok and .[0].bytes == 16777216' "$WORK/echo.out" >/dev/null || die "$MUX: echo"
  jq -e -s --arg m "/$MUX/" 'map(select(.event == "identify")) | .[0].muxer | startswith($m)' "$WORK/echo.out" >/dev/null ||
    die "$MUX: muxer"
  "$BIN" p2p dial "$JA" --streams 50 --json 2>/dev/null | jq -e 'select(.event == "streams") | .ok' >/dev/null ||
    die "$MUX: 50 streams"
  if "$BIN" p2p ping "$JB/p2p/$C_ID" >/dev/null 2>&1; then die "$MUX: dial with the wrong peer id succeeded"; fi
  jq -e -s 'map(select(.identify)) | length >= 3 and all(.publicKeyMatches and (.agentVersion | startswith("clawgrid/")) and .protocolVersion == "ipfs/0.1.0" and (.protocols | index("/ipfs/id/push/1.0.0") != null))' \
    "$WORK/js-$MUX.out" >/dev/null || die "$MUX: js's view of clawgrid's identify"
  ok "clawgrid dials js ($MUX): ping (/p2p/, bare, /dns4), 16 MiB echo, 50 streams, wrong id refused"
done

# a js peer without identify, and one that takes the identify stream but never answers: the dial reports
# what it knows and goes on (it used to wait out --timeout; the silent one is given up after 5 s)
for kind in no-identify silent-identify; do
  "$NODE" "$ACC" listen --$kind --parent-pid $$ >"$WORK/$kind.out" 2>&1 &
  PIDS+=($!)
  wait_line "$WORK/$kind.out" '"listening"'
  JA=$(head -1 "$WORK/$kind.out" | jq -r '.listening[0]')
  "$BIN" p2p dial "$JA" --echo 1M --timeout 20 --json >"$WORK/$kind-dial.out" 2>"$WORK/$kind-dial.err" ||
    die "dial of a peer with $kind: $(tail -2 "$WORK/$kind-dial.err")"
  jq -e -s 'map(select(.event == "identify")) | .[0].identified == false' "$WORK/$kind-dial.out" >/dev/null ||
    die "$kind dial output"
done
ok "a peer without identify, or silent on it, is still dialed and used"

# js peers with Secp256k1 and RSA identities (js dials clawgrid in the battery above, key:*): clawgrid dials them
for key in secp256k1 RSA; do
  "$NODE" "$ACC" listen --key $key --parent-pid $$ >"$WORK/key-$key.out" 2>&1 &
  PIDS+=($!)
  wait_line "$WORK/key-$key.out" '"listening"'
  JA=$(head -1 "$WORK/key-$key.out" | jq -r '.listening[0]')
  "$BIN" p2p dial "$JA" --echo 1M --json >"$WORK/key-$key-dial.out" 2>/dev/null || die "dial of a $key peer"
  jq -e -s --arg id "${JA##*/p2p/}" 'map(select(.event == "identify")) | .[0] | .identified and .id == $id' \
    "$WORK/key-$key-dial.out" >/dev/null || die "$key peer identify"
done
ok "js peers with Secp256k1 and RSA identities, both directions"

# ---- a node ------------------------------------------------------------------------------------------------
export CLAWGRID_HOME="$WORK/node"
"$BIN" init >/dev/null
cat >"$CLAWGRID_HOME/config.json" <<'EOF'
{"api": {"listen": "127.0.0.1:0"}, "p2p": {"listen": ["/ip4/127.0.0.1/tcp/0"], "muxers": ["mplex"]}}
EOF
"$BIN" node >"$WORK/node.err" 2>&1 &
NODE_PID=$!
PIDS+=($NODE_PID)
for _ in $(seq 100); do [ -s "$CLAWGRID_HOME/node.api" ] && break; sleep 0.1; done
[ -s "$CLAWGRID_HOME/node.api" ] || die "node did not start"
N_ID=$("$BIN" p2p id)
N_ADDR=$("$BIN" --json rpc p2p.id | jq -r '.addrs[0]')
[ "${N_ADDR##*/p2p/}" = "$N_ID" ] || die "p2p id ($N_ID) differs from the node's address ($N_ADDR)"
"$NODE" "$ACC" hold "$N_ADDR" --handle /qa/late/1.0.0 --parent-pid $$ >"$WORK/hold.out" 2>&1 &
PIDS+=($!)
wait_line "$WORK/hold.out" '"handled"'
JS_HOLD=$(jq -r 'select(.jsPeer) | .jsPeer' "$WORK/hold.out")
for _ in $(seq 50); do
  "$BIN" p2p peers --json >"$WORK/peers.json"
  jq -e --arg id "$JS_HOLD" '.peers[] | select(.id == $id) | .protocols | index("/qa/late/1.0.0") != null' "$WORK/peers.json" >/dev/null && break
  sleep 0.1
done
jq -e --arg id "$JS_HOLD" '.peers[] | select(.id == $id) | (.agentVersion | startswith("js-libp2p/")) and
  (.protocols | index("/qa/late/1.0.0") != null) and .conns[0].direction == "inbound" and .conns[0].muxer == "/mplex/6.7.0"' \
  "$WORK/peers.json" >/dev/null || die "p2p peers: $(cat "$WORK/peers.json")"
"$BIN" --json rpc p2p.ping "{\"peerId\":\"$JS_HOLD\",\"count\":2}" | jq -e '.rttMs | length == 2' >/dev/null || die "p2p.ping"
ok "node: p2p id, p2p peers (pushed protocol, connection), p2p.ping"

# both clawgrid processes stop cleanly on SIGTERM (under ASan: no leak or error report at exit)
for p in $C_PID $NODE_PID; do
  kill -TERM $p
  rc=0
  wait $p || rc=$?
  [ $rc = 0 ] || die "clawgrid process $p exited with $rc after SIGTERM"
done
! grep -E 'ERROR: (Address|Leak)Sanitizer|runtime error' "$WORK/c.err" "$WORK/node.err" || die "sanitizer report"
ok "listener and node stop cleanly"
echo "all acceptance checks passed"
