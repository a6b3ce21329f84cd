#!/usr/bin/env bash
# clawgrid dials a real js-libp2p peer (tcp + noise, then yamux or mplex): handshake, identify seen on both
# sides, ping, 100 concurrent echo streams, a 64 MiB echo checked byte for byte, an unknown protocol, a peer
# that dies mid-stream, and a dial with the wrong peer id (must fail).
source "$CLAWGRID_ROOT/tests/interop/libp2p/lib.sh"

for MUX in yamux mplex; do
  start_js_listener "js-$MUX" "$MUX"

  # ping: one RTT per line, exit 0
  timeout 60 "$BIN" p2p ping "$JS_ADDR" -c 3 >"$WORK/ping-$MUX.out" 2>"$WORK/ping-$MUX.err" || die "$MUX: ping failed"
  [ "$(grep -cE '^[0-9]+\.[0-9]+ ms$' "$WORK/ping-$MUX.out")" = 3 ] || die "$MUX: expected 3 rtt lines"
  ok "$MUX: ping"

  # dial: identify of the js peer as seen by clawgrid, then 100 concurrent streams and a 64 MiB echo
  timeout 120 "$BIN" --json p2p dial "$JS_ADDR" --streams 100 --echo 64M >"$WORK/dial-$MUX.out" 2>"$WORK/dial-$MUX.err" ||
    die "$MUX: dial with streams and echo failed"
  f="$WORK/dial-$MUX.out"
  [ "$(jfield "$f" identify .peerId)" = "$JS_ID" ] || die "$MUX: wrong peer id"
  [ "$(jfield "$f" identify .muxer)" = "/$MUX/$([ $MUX = yamux ] && echo 1.0.0 || echo 6.7.0)" ] || die "$MUX: muxer not negotiated"
  jfield "$f" identify .agentVersion | grep -q '^js-libp2p/' || die "$MUX: agentVersion from js missing"
  [ "$(jfield "$f" identify .protocolVersion)" = "ipfs/0.1.0" ] || die "$MUX: protocolVersion"
  jfield "$f" identify '.protocols[]' | grep -qx '/ipfs/ping/1.0.0' || die "$MUX: js protocols lack ping"
  jfield "$f" identify '.protocols[]' | grep -qx '/clawgrid/echo/1.0.0' || die "$MUX: js protocols lack echo"
  jfield "$f" identify '.addrs[]' | grep -q "^/ip4/127.0.0.1/tcp/" || die "$MUX: js listen addrs missing"
  jfield "$f" identify '.observedAddr' | grep -q "^/ip4/127.0.0.1/tcp/" || die "$MUX: observedAddr missing"
  # the public key js sent is the one its peer id embeds (08 01 12 20 + 32 bytes)
  [ "$(jfield "$f" identify '.publicKey' | cut -c1-8)" = "08011220" ] || die "$MUX: publicKey"
  [ "$(jfield "$f" streams '.count')" = 100 ] || die "$MUX: 100 streams"
  [ "$(jfield "$f" echo '.bytes')" = 67108864 ] && [ "$(jfield "$f" echo '.ok')" = true ] || die "$MUX: 64 MiB echo"
  ok "$MUX: identify (js seen by clawgrid), 100 streams, 64 MiB echo ($(jfield "$f" echo '.mbps' | cut -c1-5) MB/s)"

  # the js side saw clawgrid's identify
  wait_line "$WORK/js-$MUX.out" '"agentVersion":"clawgrid/'
  line=$(grep '"agentVersion":"clawgrid/' "$WORK/js-$MUX.out" | head -1)
  echo "$line" | jq -e '.protocols | index("/clawgrid/echo/1.0.0") and index("/ipfs/id/1.0.0") and index("/ipfs/ping/1.0.0")' >/dev/null ||
    die "$MUX: js did not see clawgrid's protocols"
  echo "$line" | jq -e '.protocolVersion == "ipfs/0.1.0" and (.publicKey | startswith("08011220")) and (.observedAddr | startswith("/ip4/127.0.0.1/tcp/"))' >/dev/null ||
    die "$MUX: js did not see clawgrid's identify fields"
  ok "$MUX: identify (clawgrid seen by js)"

  # a protocol the js peer does not serve: refused (multistream "na"), reported, exit 1
  if timeout 60 "$BIN" --json p2p dial "$JS_ADDR" --protocol /clawgrid/nope/1.0.0 >"$WORK/na-$MUX.out" 2>/dev/null; then
    die "$MUX: unknown protocol accepted"
  fi
  grep -q '"error":"protocol".*not supported' "$WORK/na-$MUX.out" || die "$MUX: unknown protocol: no reason"
  timeout 60 "$BIN" --json p2p dial "$JS_ADDR" --protocol /ipfs/ping/1.0.0 >"$WORK/ok-$MUX.out" 2>/dev/null ||
    die "$MUX: ping protocol probe failed"
  ok "$MUX: unknown protocol refused, known one accepted"

  # wrong peer id: same address, another peer's id -> the noise handshake must refuse
  WRONG="${JS_ADDR%/p2p/*}/p2p/12D3KooWKQQQLFf4Rm7jMpeMBudPURz6JvMLTJuyvxbJLRKLWXaw"
  if timeout 60 "$BIN" p2p dial "$WRONG" >"$WORK/wrong-$MUX.out" 2>"$WORK/wrong-$MUX.err"; then
    die "$MUX: dial with the wrong peer id succeeded"
  fi
  grep -q "peer id" "$WORK/wrong-$MUX.err" || die "$MUX: wrong-peer-id error does not say why"
  ok "$MUX: wrong peer id refused"
  kill "$JS_PID"

  # a peer that disconnects mid-stream: clawgrid reports the broken stream and exits non-zero, no hang
  start_js_listener "jsdie-$MUX" "$MUX" --die-after-echo-bytes 1000000
  if timeout 60 "$BIN" p2p dial "$JS_ADDR" --echo 16M >"$WORK/cut-$MUX.out" 2>"$WORK/cut-$MUX.err"; then
    die "$MUX: echo to a peer that died mid-stream succeeded"
  fi
  [ $? -ne 124 ] || die "$MUX: hung on a dead peer"
  grep -qi "closed\|reset" "$WORK/cut-$MUX.err" || die "$MUX: no reason for the broken stream"
  ok "$MUX: peer disconnecting mid-stream"
done
echo "all c-dials-js checks passed"
