#!/usr/bin/env bash
# A real js-libp2p peer dials `clawgrid p2p listen` (yamux and mplex): handshake, identify seen on both
# sides, ping, 100 concurrent echo streams, a 64 MiB echo whose sha256 must match, an unknown protocol, a
# peer that disconnects mid-stream (the listener keeps serving), and a dial with the wrong peer id.
source "$CLAWGRID_ROOT/tests/interop/libp2p/lib.sh"

start_c_listener c
for MUX in yamux mplex; do
  out="$WORK/jsdial-$MUX.out"
  js dial "$C_ADDR" --muxer "$MUX" --actions identify,ping:3,streams:100,echo:67108864,badproto >"$out" 2>"$WORK/jsdial-$MUX.err" ||
    die "$MUX: js dial actions failed"
  [ "$(jfield "$out" connected .peerId)" = "$C_ID" ] || die "$MUX: js connected to the wrong peer"
  [ "$(jfield "$out" connected .muxer)" = "/$MUX/$([ $MUX = yamux ] && echo 1.0.0 || echo 6.7.0)" ] || die "$MUX: muxer"
  [ "$(jfield "$out" connected .encryption)" = "/noise" ] || die "$MUX: encryption"
  jfield "$out" identify .agentVersion | grep -q '^clawgrid/' || die "$MUX: js did not get clawgrid's agentVersion"
  jfield "$out" identify '.protocols | index("/clawgrid/echo/1.0.0") != null' | grep -q true || die "$MUX: protocols"
  jfield "$out" identify '.listenAddrs[0]' | grep -q "^/ip4/127.0.0.1/tcp/${C_ADDR#*/tcp/}" 2>/dev/null ||
    jfield "$out" identify '.listenAddrs[0]' | grep -q "^${C_ADDR%/p2p/*}$" || die "$MUX: listenAddrs"
  jfield "$out" identify '.observedAddr' | grep -q '^/ip4/127.0.0.1/tcp/' || die "$MUX: observedAddr"
  [ "$(grep -c '"event":"ping"' "$out")" = 3 ] || die "$MUX: pings"
  [ "$(jfield "$out" streams .ok)" = true ] || die "$MUX: 100 streams"
  [ "$(jfield "$out" echo .ok)" = true ] && [ "$(jfield "$out" echo .got)" = 67108864 ] || die "$MUX: 64 MiB echo"
  [ "$(jfield "$out" badproto .refused)" = true ] || die "$MUX: unknown protocol accepted"
  ok "$MUX: js dials clawgrid: identify, ping, 100 streams, 64 MiB echo, unknown protocol refused"
done

# clawgrid saw the js peers' identify
wait_line "$WORK/c.err" 'peer identified.*agent="js-libp2p/'
grep 'peer identified.*agent="js-libp2p/' "$WORK/c.err" | grep -q 'protocol_version=ipfs/0.1.0\|protocol_version="ipfs/0.1.0"' || die "clawgrid: protocolVersion"
grep 'peer identified.*agent="js-libp2p/' "$WORK/c.err" | grep -q 'echo=1' || die "clawgrid: js protocols"
grep 'peer identified.*agent="js-libp2p/' "$WORK/c.err" | grep -q 'observed="\?/ip4/127.0.0.1/tcp/' || die "clawgrid: observedAddr"
ok "clawgrid saw the js peers' identify"

# a js peer that disconnects in the middle of an echo stream; then the listener still serves
js dial "$C_ADDR" --actions cut:2000000 >"$WORK/cut.out" 2>&1 || die "cut peer failed to run"
js dial "$C_ADDR" --actions ping:2,echo:1048576 >"$WORK/after.out" 2>&1 || die "listener stopped serving after a peer died mid-stream"
kill -0 "$C_PID" || die "listener died"
ok "peer disconnecting mid-stream: listener keeps serving"

# the js side dialing clawgrid's address with another peer id fails in the handshake
set +e
js dial "${C_ADDR%/p2p/*}/p2p/12D3KooWLqFDE5KDpWiZQ9LtrRUGZiQ3Npjoc8tdUdYRNshJ2bdW" --actions ping:1 >"$WORK/wrong.out" 2>&1
rc=$?
set -e
[ $rc = 2 ] && grep -q dial-failed "$WORK/wrong.out" || die "js dial with a wrong peer id did not fail (rc=$rc)"
kill -0 "$C_PID" || die "listener died"
ok "wrong peer id refused"
echo "all js-dials-c checks passed"
