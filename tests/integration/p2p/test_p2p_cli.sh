#!/usr/bin/env bash
# The fixed CLI interfaces, clawgrid against clawgrid (no js needed): `p2p listen` with several addresses
# prints one full address per line, all with the same peer id; `p2p ping` prints one RTT per line and exits
# 0, over ip4, ip6 and /dns4/localhost, with and without /p2p/; `--json` may follow the subcommand; the
# wrong peer id fails; bad arguments are usage errors (exit 2); SIGTERM stops the listener cleanly.
set -euo pipefail
BIN=${CLAWGRID_BIN:?}
W=$(mktemp -d /tmp/cg-p2p-cli.XXXXXX)
export CLAWGRID_HOME="$W/home" # not initialized: ephemeral keys
LP=
cleanup() { [ -n "$LP" ] && kill "$LP" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
die() { echo "FAIL: $*" >&2; tail -n 5 "$W"/*.err >&2 2>/dev/null || true; exit 1; }
ok() { echo "ok - $*"; }

ADDRS=(/ip4/127.0.0.1/tcp/0)
python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null && ADDRS+=(/ip6/::1/tcp/0)
"$BIN" p2p listen "${ADDRS[@]}" --json >"$W/l.out" 2>"$W/l.err" &
LP=$!
for _ in $(seq 100); do [ "$(wc -l <"$W/l.out")" -ge "${#ADDRS[@]}" ] && break; sleep 0.1; done
[ "$(wc -l <"$W/l.out")" = "${#ADDRS[@]}" ] || die "listen printed: $(cat "$W/l.out")"
grep -vq '/p2p/12D3KooW' "$W/l.out" && die "a listen line without /p2p/: $(cat "$W/l.out")"
[ "$(sed 's#.*/p2p/##' "$W/l.out" | sort -u | wc -l)" = 1 ] || die "listen addresses with different peer ids"
A4=$(grep -m1 '^/ip4/' "$W/l.out")
ID=${A4##*/p2p/}
ok "p2p listen: ${#ADDRS[@]} addresses, one per line"

"$BIN" p2p ping "$A4" -c 3 >"$W/p.out" 2>"$W/p.err" || die "ping"
[ "$(grep -cE '^[0-9]+\.[0-9]+ ms$' "$W/p.out")" = 3 ] && [ "$(wc -l <"$W/p.out")" = 3 ] || die "ping output: $(cat "$W/p.out")"
"$BIN" p2p ping "${A4%/p2p/*}" >/dev/null 2>&1 || die "ping without /p2p/"
PORT=${A4#/ip4/127.0.0.1/tcp/}
PORT=${PORT%%/*}
"$BIN" p2p ping "/dns4/localhost/tcp/$PORT/p2p/$ID" >/dev/null 2>&1 || die "ping via /dns4/localhost"
if [ "${#ADDRS[@]}" = 2 ]; then
  "$BIN" p2p ping "$(grep -m1 '^/ip6/' "$W/l.out")" >/dev/null 2>&1 || die "ping over ip6"
fi
ok "p2p ping: one RTT per line; ip4, ip6, /dns4, with and without /p2p/"

"$BIN" p2p dial "$A4" --echo 2M --json >"$W/d.out" 2>/dev/null || die "dial --echo"
jq -e -s 'map(select(.event == "echo")) | .[0].ok and .[0].bytes == 2097152' "$W/d.out" >/dev/null || die "echo: $(cat "$W/d.out")"
jq -e -s --arg id "$ID" 'map(select(.event == "identify")) | .[0].identified and .[0].id == $id' "$W/d.out" >/dev/null ||
  die "identify: $(head -1 "$W/d.out")"
ok "p2p dial --echo --json (options after the subcommand)"

set +e
"$BIN" p2p ping "${A4%/p2p/*}/p2p/12D3KooWLqFDE5KDpWiZQ9LtrRUGZiQ3Npjoc8tdUdYRNshJ2bdW" >/dev/null 2>"$W/wrong.err"
rc=$?
"$BIN" p2p ping "$A4" "$A4" >/dev/null 2>&1
rc2=$?
"$BIN" p2p ping not-a-multiaddr >/dev/null 2>&1
rc3=$?
set -e
[ $rc = 1 ] && grep -q "peer id differs" "$W/wrong.err" || die "wrong peer id: rc=$rc $(cat "$W/wrong.err")"
[ $rc2 = 2 ] && [ $rc3 = 2 ] || die "usage errors: rc=$rc2/$rc3"
ok "wrong peer id refused; bad arguments are usage errors"

kill -TERM $LP
rc=0
wait $LP || rc=$?
LP=
[ $rc = 0 ] || die "listener exit status $rc after SIGTERM"
ok "listener stops on SIGTERM"
