#!/usr/bin/env bash
# The market's CLI groups and timers through the real daemon (acceptance review of issue 3):
#   - every group reaches its methods, with and without --json: resource mine|status, offer, order, consent,
#     delivery, settle (lock/release/repair), lease (issue by the provider, list, revocations), audit;
#   - list output names the right ids (a lease line starts with its leaseId);
#   - bad input exits 1 with the E_* code on stderr and leaves `clawgrid export` unchanged;
#   - the timers run from config: the settlement flush (flushIntervalMs) locks a queued order, the expire
#     sweep (sweepIntervalMs) expires a 10 s lease;
#   - state survives a restart; no token in the export, the store files or the log.
set -uo pipefail
BIN=${CLAWGRID_BIN:?CLAWGRID_BIN is not set}
command -v jq >/dev/null || { echo "skip: jq missing"; exit 77; }
T=$(mktemp -d /tmp/cgmktc-XXXXXX)
D=$T/data
NODE_PID=
cleanup() {
  [ -n "$NODE_PID" ] && kill -9 "$NODE_PID" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$T/node.log" ] && tail -20 "$T/node.log" >&2; exit 1; }
cg() { "$BIN" --data-dir "$D" "$@"; }
# The whole store without the export's own timestamp: equal means nothing changed.
state() { cg export | jq -S 'del(.exportedAt)' | sha256sum; }

if ! out=$(cg init 2>&1); then
  if grep -q "not part of this build" <<<"$out"; then echo "skip: no daemon in this build"; exit 77; fi
  fail "init: $out"
fi
jq '.market = {"settlement": {"flushIntervalMs": 1000}, "sweepIntervalMs": 1000}' "$D/config.json" >"$T/c.json" \
  && cp "$T/c.json" "$D/config.json" || fail "config"

start_node() {
  "$BIN" --data-dir "$D" node --api 127.0.0.1:0 >>"$T/node.log" 2>&1 &
  NODE_PID=$!
  for _ in $(seq 1 200); do
    if cg --json resource status >/dev/null 2>&1; then return 0; fi
    kill -0 "$NODE_PID" 2>/dev/null || fail "node exited at start"
    sleep 0.1
  done
  fail "node did not come up"
}
start_node

P=0x1111111111111111111111111111111111111111
C=0x2222222222222222222222222222222222222222
SELF=$(cg --json resource status | jq -r .actorId)
[[ $SELF == 0x* ]] || fail "resource status has no actorId"
cg resource status | grep -q '"activeLeases"' || fail "resource status (text)"

# --- resources: publish as the provider P, list this node's (none) and P's ---
cat >"$T/res.json" <<'JSON'
{"kind":"model","label":"Qwen 7B","price":{"unit":"token","amount":"2","currency":"USDC"},
 "offer":{"assetId":"qwen-7b","assetType":"api","currency":"USDC","usageScope":{"purpose":"chat"},"deliveryType":"api"}}
JSON
RID=$(cg --json resource publish "$T/res.json" --actor "$P" | jq -r .resourceId)
[[ $RID == res_* ]] || fail "publish as P"
[ "$(cg --json resource mine | jq '.resources | length')" = 0 ] || fail "resource mine lists P's resource"
cg resource list --provider-actor-id "$P" | grep -q "^$RID .*resource_published .*Qwen 7B" || fail "resource list (text)"

# --- the offer / order / consent / delivery / settle chain, each group through the CLI ---
cat >"$T/offer.json" <<'JSON'
{"assetId":"dataset-1","assetType":"data","price":"50","currency":"USDC","usageScope":{"purpose":"research"},
 "deliveryType":"download"}
JSON
OFF=$(cg --json offer create "$T/offer.json" --actor "$P" | jq -r .offerId)
[[ $OFF == off_* ]] || fail "offer create"
cg --json offer publish "$OFF" --actor "$P" | jq -e '.status == "offer_published"' >/dev/null || fail "offer publish"
ORD=$(cg --json order create "$OFF" --actor "$C" --quantity 2 | jq -r .orderId)
[[ $ORD == ord_* ]] || fail "order create"
cg --json settle faucet "$C" 1000 >/dev/null || fail "faucet"
cg --json settle lock "$ORD" "$C" 100 --actor "$C" | jq -e '.status == "settlement_locked"' >/dev/null || fail "lock"
CON=$(cg --json consent grant "$ORD" --actor "$C" | jq -r .consentId)
[[ $CON == con_* ]] || fail "consent grant"
cg --json consent get "$CON" | jq -e '.consent.status == "consent_granted"' >/dev/null || fail "consent get"
DLV=$(cg --json delivery issue "$ORD" --actor "$P" | jq -r .deliveryId)
[[ $DLV == dlv_* ]] || fail "delivery issue"
cg --json delivery complete "$DLV" --actor "$C" | jq -e '.status == "delivery_completed"' >/dev/null \
  || fail "delivery complete"
cg --json delivery get "$DLV" | jq -e '.delivery.status == "delivery_completed"' >/dev/null || fail "delivery get"
cg --json settle release "$ORD" --actor "$C" | jq -e '.status == "settlement_released"' >/dev/null || fail "release"
cg --json order get "$ORD" | jq -e '.order.status == "settlement_completed"' >/dev/null || fail "order state"
[ "$(cg --json settle balance "$P" | jq -r .balance)" = 100 ] || fail "the seller was not paid"
[ "$(cg --json settle balance "$C" | jq -r .balance)" = 900 ] || fail "the buyer's balance"

# --- leases: the provider grants one; lists name the lease ---
L=$(cg --json lease issue "$RID" --actor "$P" --consumer-actor-id "$C" --ttl-ms 600000 --max-cost 40) \
  || fail "lease issue by the provider"
LID=$(jq -r .leaseId <<<"$L"); LORD=$(jq -r .orderId <<<"$L")
[[ $(jq -r .accessToken <<<"$L") == tok_* ]] || fail "no token"
cg lease list --consumer-actor-id "$C" | grep -q "^$LID .*lease_active .*$RID" || fail "lease list (text)"
cg --json lease list --actor "$C" | jq -e --arg l "$LID" '[.leases[].leaseId] == [$l]' >/dev/null \
  || fail "lease list by actor"

# --- bad input: exit 1, the code on stderr, nothing changed ---
before=$(state)
cg lease issue "$RID" --actor "$C" --consumer-actor-id "$C" --ttl-ms 5 2>"$T/err" && fail "ttl 5 accepted"
grep -q "E_INVALID_ARGUMENT" "$T/err" || fail "ttl error: $(cat "$T/err")"
cg lease revoke "$LID" --actor 0x3333333333333333333333333333333333333333 2>"$T/err" && fail "third party revoked"
grep -q "E_FORBIDDEN" "$T/err" || fail "revoke error: $(cat "$T/err")"
cg settle lock ord_unknown "$C" 5 --actor "$C" 2>"$T/err" && fail "lock of an unknown order"
grep -q "E_NOT_FOUND" "$T/err" || fail "lock error: $(cat "$T/err")"
cg consent grant "$ORD" --actor "$C" 2>"$T/err" && fail "consent on a settled order"
grep -q "E_CONFLICT" "$T/err" || fail "consent error: $(cat "$T/err")"
[ "$(state)" = "$before" ] || fail "a refused command changed the store"

# --- timers: the flush locks the queued pre-pay within a few intervals ---
cg --json settle queue "$LORD" "$C" 40 | jq -e '.queued' >/dev/null || fail "queue"
for _ in $(seq 1 60); do
  [ "$(cg --json settle queue | jq .pending)" = 0 ] && break
  sleep 0.2
done
[ "$(cg --json settle queue | jq .pending)" = 0 ] || fail "the flush timer did not run"
cg --json settle status "$LORD" | jq -e '.settlement.status == "settlement_locked"' >/dev/null || fail "not locked"
# ...and the sweep expires a 10 s lease without anyone asking.
SL=$(cg --json lease issue "$RID" --actor "$C" --consumer-actor-id "$C" --ttl-ms 10000 | jq -r .leaseId)
for _ in $(seq 1 80); do
  [ "$(cg --json lease get "$SL" | jq -r .lease.status)" = lease_expired ] && break
  sleep 0.25
done
[ "$(cg --json lease get "$SL" | jq -r .lease.status)" = lease_expired ] || fail "the sweep timer did not expire"

# --- the retry queues and the audit trail ---
cg --json settle repair | jq -e 'has("processed") and has("succeeded") and has("failed") and has("pending")' \
  >/dev/null || fail "settle repair"
cg --json lease revocations --dry-run | jq -e '.dryRun == true and has("pending")' >/dev/null \
  || fail "lease revocations"
cg audit query --kind lease_expired | grep -q "lease_expired .*$SL" || fail "audit (text)"

# --- restart: everything is still there and the ledger verifies ---
kill "$NODE_PID"; wait "$NODE_PID" 2>/dev/null; NODE_PID=
start_node
cg --json lease get "$LID" | jq -e '.lease.status == "lease_active"' >/dev/null || fail "lease lost on restart"
cg --json order get "$ORD" | jq -e '.order.status == "settlement_completed"' >/dev/null || fail "order lost"
cg ledger verify >/dev/null || fail "ledger verify after restart"

# --- SEC-01: the token never comes back ---
TOK=$(jq -r .accessToken <<<"$L")
cg export | grep -qF "${TOK#tok_}" && fail "the token is in the export"
cat "$D"/*.db* 2>/dev/null | grep -qaF "${TOK#tok_}" && fail "the token is in the store files"
grep -qF "${TOK#tok_}" "$T/node.log" && fail "the token is in the log"
kill "$NODE_PID"; wait "$NODE_PID" 2>/dev/null; NODE_PID=
echo "ok"
