#!/usr/bin/env bash
# A real node on loopback serving a local GGUF model: `clawgrid model add/ls/load/chat/unload` through the
# node's RPC, and POST /local/v1/chat/completions (admin token) streamed as SSE and not, with its errors.
# Skips (77) when the llama library is not installed.
set -euo pipefail
bin=${CLAWGRID_BIN:?}
root=${CLAWGRID_ROOT:-$(pwd)}
[ -d "$root/third_party/llama/node_modules/@node-llama-cpp/linux-x64" ] || { echo "skip: llama library not installed (scripts/llama-deps.sh)"; exit 77; }
home=$(mktemp -d)
export CLAWGRID_HOME=$home CLAWGRID_ROOT=$root
node_pid=
cleanup() { [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null && wait "$node_pid" 2>/dev/null; rm -rf "$home"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$home/node.log" ] && tail -20 "$home/node.log"; exit 1; }

"$bin" init >/dev/null
"$bin" node --api 127.0.0.1:0 > "$home/node.log" 2>&1 &
node_pid=$!
for _ in $(seq 100); do [ -s "$home/node.api" ] && break; sleep 0.1; done
[ -s "$home/node.api" ] || fail "node did not start"
api=$(cat "$home/node.api"); tok=$(cat "$home/admin.token")

"$bin" model add "$root/tests/fuzz/corpus/gguf/tiny-e8.gguf" --name t8 --json | jq -e '.name == "t8"' >/dev/null || fail "add"
"$bin" model ls --json | jq -e 'map(select(.name == "t8" and .state == "unloaded")) | length == 1' >/dev/null || fail "ls"
"$bin" model load t8 --json | jq -e '.state == "ready"' >/dev/null || fail "load"
a=$("$bin" model chat t8 "hello" --max-tokens 8 --temperature 0)
b=$("$bin" model chat t8 "hello" --max-tokens 8 --temperature 0)
[ -n "$a" ] && [ "$a" = "$b" ] || fail "greedy chat differs: '$a' vs '$b'"

body='{"model":"t8","messages":[{"role":"user","content":"hello"}],"max_tokens":8,"temperature":0'
url=http://$api/local/v1/chat/completions
curl -sf -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' -d "$body}" "$url" > "$home/plain.json" || fail "plain"
jq -e '.object == "chat.completion" and .usage.completion_tokens <= 8 and .usage.total_tokens == .usage.prompt_tokens + .usage.completion_tokens' \
  "$home/plain.json" >/dev/null || fail "plain body: $(cat "$home/plain.json")"
[ "$(jq -r '.choices[0].message.content' "$home/plain.json")" = "$a" ] || fail "HTTP and RPC answers differ"
curl -sfN -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' -d "$body,\"stream\":true}" "$url" > "$home/sse.txt" || fail "sse"
[ "$(tail -n 2 "$home/sse.txt" | head -1)" = "data: [DONE]" ] || fail "stream does not end with [DONE]"
streamed=$(grep '^data: {' "$home/sse.txt" | sed 's/^data: //' | jq -j '.choices[0].delta.content // ""')
[ "$streamed" = "$a" ] || fail "streamed text differs: '$streamed' vs '$a'"
grep '^data: {' "$home/sse.txt" | tail -1 | sed 's/^data: //' | jq -e '.usage.completion_tokens >= 1' >/dev/null || fail "no usage in the last chunk"

code=$(curl -s -o "$home/e.json" -w '%{http_code}' -H 'Content-Type: application/json' -d "$body}" "$url")
[ "$code" = 401 ] || fail "no token: $code"
code=$(curl -s -o "$home/e.json" -w '%{http_code}' -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
  -d '{"model":"nope","messages":[{"role":"user","content":"x"}]}' "$url")
[ "$code" = 404 ] && jq -e '.error.code == "E_NOT_FOUND"' "$home/e.json" >/dev/null || fail "unknown model: $code"
code=$(curl -s -o "$home/e.json" -w '%{http_code}' -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
  -d '{"model":"t8","messages":[]}' "$url")
[ "$code" = 400 ] || fail "empty messages: $code"

# `curl -d` without -H sends application/x-www-form-urlencoded: the JSON body is accepted; a declared
# non-JSON type is 415.
curl -sf -H "Authorization: Bearer $tok" -d "$body}" "$url" | jq -e '.object == "chat.completion"' >/dev/null ||
  fail "curl -d without a content type"
code=$(curl -s -o "$home/e.json" -w '%{http_code}' -H "Authorization: Bearer $tok" -H 'Content-Type: text/plain' -d "$body}" "$url")
[ "$code" = 415 ] || fail "text/plain: $code"
# OpenAI's include_usage form: the finish chunk, then a chunk with no choices and the usage.
curl -sfN -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
  -d "$body,\"stream\":true,\"stream_options\":{\"include_usage\":true}}" "$url" > "$home/sse2.txt" || fail "sse include_usage"
grep '^data: {' "$home/sse2.txt" | tail -1 | sed 's/^data: //' |
  jq -e '(.choices | length) == 0 and .usage.total_tokens == .usage.prompt_tokens + .usage.completion_tokens' >/dev/null ||
  fail "include_usage last chunk: $(tail -4 "$home/sse2.txt")"
grep '^data: {' "$home/sse2.txt" | tail -2 | head -1 | sed 's/^data: //' |
  jq -e '.choices[0].finish_reason != null and .usage == null' >/dev/null || fail "include_usage finish chunk"
# The OpenAI model list.
curl -sf -H "Authorization: Bearer $tok" "http://$api/local/v1/models" |
  jq -e '.object == "list" and (.data | map(select(.id == "t8" and .object == "model")) | length) == 1' >/dev/null ||
  fail "/local/v1/models"
# A model copied into the folder by hand while the node runs is listed and served by name.
cp "$root/tests/fuzz/corpus/gguf/tiny-e8.gguf" "$home/models/byhand.gguf"
"$bin" model ls --json | jq -e 'map(select(.name == "byhand")) | length == 1' >/dev/null || fail "hand-copied model not listed"
"$bin" model chat byhand "hi" --max-tokens 2 --temperature 0 >/dev/null || fail "hand-copied model not served"
"$bin" model unload byhand >/dev/null || fail "unload byhand"

"$bin" model status --json | jq -e '.llama.available == true and (.loaded | index("t8")) != null' >/dev/null || fail "status"
"$bin" model unload t8 --json | jq -e '.state == "unloaded"' >/dev/null || fail "unload"
echo "model node: ok"
