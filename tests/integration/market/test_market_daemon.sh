#!/usr/bin/env bash
# The market through the real daemon and CLI:
#   - RES/LEASE/LEDGER/SETTLE over `clawgrid resource|lease|ledger|settle` and `clawgrid rpc`;
#   - TEST-01: web3.status.summary carries brain, billing and settlement fields;
#   - SEC-01: the token handed out once never shows up in other outputs or the node's log, nor does the
#     data dir path;
#   - ATOMIC-01 (crash): concurrent appends and leases while the node is SIGKILLed at a random moment,
#     restart, then: the ledger verifies and every acknowledged entry is there exactly once.
# Rounds: CLAWGRID_MARKET_CRASH_ROUNDS (default 3; the soak variant sets more). Exits 77 when this build
# has no daemon yet.
set -uo pipefail
BIN=${CLAWGRID_BIN:?CLAWGRID_BIN is not set}
command -v jq >/dev/null || { echo "skip: jq missing"; exit 77; }
T=$(mktemp -d /tmp/cgmktd-XXXXXX)
D=$T/data
NODE_PID=
cleanup() {
  [ -n "$NODE_PID" ] && kill -9 "$NODE_PID" 2>/dev/null
  jobs -p | xargs -r kill -9 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$T/node.log" ] && tail -20 "$T/node.log" >&2; exit 1; }
cg() { "$BIN" --data-dir "$D" "$@"; }

if ! out=$(cg init 2>&1); then
  if grep -q "not part of this build" <<<"$out"; then echo "skip: no daemon in this build"; exit 77; fi
  fail "init: $out"
fi

start_node() {
  # exec'd directly (not through the cg function) so that $! is the daemon itself
  "$BIN" --data-dir "$D" node --api 127.0.0.1:0 >>"$T/node.log" 2>&1 &
  NODE_PID=$!
  for _ in $(seq 1 200); do
    if cg --json rpc web3.resources.status >/dev/null 2>&1; then return 0; fi
    kill -0 "$NODE_PID" 2>/dev/null || fail "node exited at start"
    sleep 0.1
  done
  fail "node did not come up"
}

start_node
SELF=$(cg --json rpc web3.resources.status | jq -r .actorId)
[[ $SELF == 0x* ]] || fail "no node actor id: $SELF"

# --- RES-01 / LEASE-01 through the CLI ---
cat >"$T/res.json" <<'JSON'
{"kind":"model","label":"Llama 3 8B","tags":["llm"],"price":{"unit":"token","amount":"2","currency":"USDC"},
 "offer":{"assetId":"llama-3-8b","assetType":"api","currency":"USDC","usageScope":{"purpose":"chat"},"deliveryType":"api"}}
JSON
RID=$(cg --json resource publish "$T/res.json" | jq -r .resourceId) || fail "publish"
[[ $RID == res_* ]] || fail "publish gave no resource id"
cg --json resource get "$RID" | jq -e '.resource.status == "resource_published" and .resource.version == 1' >/dev/null \
  || fail "resource not published"
cg --json settle faucet "$SELF" 100000 >/dev/null || fail "faucet"
L=$(cg --json lease issue "$RID" --ttl-ms 600000 --max-cost 500) || fail "lease issue"
TOKEN=$(jq -r .accessToken <<<"$L"); LID=$(jq -r .leaseId <<<"$L"); OID=$(jq -r .orderId <<<"$L")
[[ $TOKEN == tok_* ]] || fail "no token"
cg --json lease get "$LID" >"$T/lease.json" || fail "lease get"
grep -q "tok_" "$T/lease.json" && fail "lease get shows a token"
jq -e '.lease.status == "lease_active"' "$T/lease.json" >/dev/null || fail "lease not active"

# --- LEDGER-01/02 ---
entry() { # quantity cost [key]
  printf '{"actorId":"%s","entry":{"leaseId":"%s","resourceId":"%s","kind":"model","providerActorId":"%s","consumerActorId":"%s","unit":"token","quantity":"%s","cost":"%s","currency":"USDC"%s}%s}' \
    "$SELF" "$1" "$RID" "$SELF" "$SELF" "$2" "$3" "${5:+,\"runId\":\"$5\"}" "${4:+,\"idempotencyKey\":\"$4\"}"
}
for q in 1 2 3; do cg --json rpc market.ledger.append "$(entry "$LID" $q $((q * 2)))" >/dev/null || fail "append"; done
cg --json rpc market.ledger.append "$(entry "$LID" 1 2 | jq -c '.actorId = "mallory"')" >/dev/null 2>&1 \
  && fail "a third party appended"
cg ledger verify >/dev/null || fail "ledger verify"
[ "$(cg --json ledger summary --lease-id "$LID" | jq -r .summary.totalCost)" = 12 ] || fail "summary != 12"

# --- SETTLE-01 through the node: the lease's pre-pay entry locks on flush ---
cg --json settle queue | jq -e '.pending == 1' >/dev/null || fail "queue should hold the lease's order"
cg --json settle flush | jq -e '.succeeded == 1 and .pending == 0' >/dev/null || fail "flush"
cg --json settle status "$OID" | jq -e '.settlement.status == "settlement_locked"' >/dev/null || fail "not locked"
cg --json settle flush | jq -e '.processed == 0' >/dev/null || fail "second flush"

# --- TEST-01 ---
cg --json rpc web3.status.summary >"$T/summary.json" || fail "web3.status.summary"
jq -e '(.brain | has("availability")) and (.billing | has("status")) and .settlement.pending == 0
       and .settlement.locked == 1 and .settlement.backend == "local"' "$T/summary.json" >/dev/null \
  || fail "summary fields: $(cat "$T/summary.json")"

# --- LEASE-03 ---
cg --json lease revoke "$LID" | jq -e '.status == "lease_revoked"' >/dev/null || fail "revoke"
cg --json rpc market.ledger.append "$(entry "$LID" 1 2)" >"$T/err.json" 2>&1 && fail "append after revoke"
grep -q E_REVOKED "$T/err.json" || fail "append after revoke: $(cat "$T/err.json")"

# --- crash rounds ---
rounds=${CLAWGRID_MARKET_CRASH_ROUNDS:-3}
: >"$T/acks"
for r in $(seq 1 "$rounds"); do
  CL=$(cg --json lease issue "$RID" --ttl-ms 600000) || fail "lease (round $r)"
  CLID=$(jq -r .leaseId <<<"$CL")
  for w in 1 2; do
    (
      i=0
      while :; do
        i=$((i + 1))
        key="r$r-w$w-$i"
        if out=$(cg --json rpc market.ledger.append "$(entry "$CLID" 1 2 "$key" "$key")" 2>/dev/null); then
          echo "$(jq -r .ledgerId <<<"$out") $key" >>"$T/acks.$w"
        fi
        [ "$w" = 2 ] && cg --json lease issue "$RID" --ttl-ms 600000 >/dev/null 2>&1
      done
    ) &
    eval "W$w=\$!"
  done
  sleep "0.$((3 + RANDOM % 6))"
  kill -9 "$NODE_PID" || fail "the node was not running"
  wait "$NODE_PID" 2>/dev/null
  kill -9 "$W1" "$W2" 2>/dev/null
  wait "$W1" "$W2" 2>/dev/null
  NODE_PID=
  cat "$T"/acks.* >>"$T/acks" 2>/dev/null
  rm -f "$T"/acks.*
  start_node
  cg ledger verify >/dev/null || fail "ledger does not verify after crash round $r: $(cg ledger verify)"
  cg --json ledger list --lease-id "$CLID" --limit 1000 | jq -r '.entries[] | "\(.ledgerId) \(.runId)"' | sort >"$T/have"
  [ -z "$(cut -d' ' -f2 "$T/have" | sort | uniq -d)" ] || fail "duplicate ledger entries in round $r"
  grep " r$r-" "$T/acks" | sort >"$T/want"
  missing=$(comm -23 "$T/want" "$T/have")
  [ -z "$missing" ] || fail "acknowledged entries lost in round $r: $missing"
  echo "round $r: $(wc -l <"$T/want") acknowledged, $(wc -l <"$T/have") stored"
done
[ "$(wc -l <"$T/acks")" -gt 0 ] || fail "no appends were acknowledged"
cg --json settle status "$OID" | jq -e '.escrow.status == "locked"' >/dev/null || fail "escrow lost"

# --- SEC-01: the node's log ---
grep -qF "${TOKEN#tok_}" "$T/node.log" && fail "the token is in the log"
grep -qE 'tok_[A-Za-z0-9_-]{16}' "$T/node.log" && fail "a token is in the log"
grep -qF "$D" "$T/node.log" && fail "the data dir path is in the log"
cg --json audit query --limit 200 | grep -qF "${TOKEN#tok_}" && fail "the token is in the audit log"
kill "$NODE_PID" || fail "the node was not running"
wait "$NODE_PID" 2>/dev/null
NODE_PID=
echo "ok"
