#!/usr/bin/env bash
# `clawgrid model` offline on the data directory's models folder (no node running): add, ls, info, rm, the
# errors for a non-GGUF file and a duplicate name, and load/chat needing a node (exit 3).
set -euo pipefail
bin=${CLAWGRID_BIN:?}
root=${CLAWGRID_ROOT:-$(pwd)}
home=$(mktemp -d); trap 'rm -rf "$home"' EXIT
export CLAWGRID_HOME=$home
model=$root/tests/fuzz/corpus/gguf/tiny-e8.gguf
fail() { echo "FAIL: $*"; exit 1; }

"$bin" model add "$model" --name tiny8 --json > "$home/add.json" || fail "add"
jq -e '.name == "tiny8" and .architecture == "llama" and .quantization == "F32" and (.sha256 | length) == 64' \
  "$home/add.json" >/dev/null || fail "add output: $(cat "$home/add.json")"
[ -f "$home/models/tiny8.gguf" ] || fail "file not placed"
cmp -s "$model" "$home/models/tiny8.gguf" || fail "copy differs"

set +e
"$bin" model add "$model" --name tiny8 2> "$home/err"; rc=$?
set -e
[ $rc -eq 1 ] && grep -q "E_CONFLICT" "$home/err" || fail "duplicate add: rc=$rc $(cat "$home/err")"

printf 'GGMLnot a model' > "$home/bad.gguf"
set +e
"$bin" model add "$home/bad.gguf" 2> "$home/err"; rc=$?
set -e
[ $rc -eq 1 ] && grep -q "bad magic" "$home/err" || fail "bad add: rc=$rc $(cat "$home/err")"
[ ! -e "$home/models/bad.gguf" ] || fail "bad file was placed"

"$bin" model ls --json > "$home/ls.json"
jq -e 'length == 1 and .[0].name == "tiny8" and .[0].context_length == 64' "$home/ls.json" >/dev/null \
  || fail "ls: $(cat "$home/ls.json")"
"$bin" model ls | grep -q "^tiny8 " || fail "ls text"
"$bin" model info tiny8 --json | jq -e '.layers == 1 and .embedding_length == 8' >/dev/null || fail "info"

set +e
"$bin" model load tiny8 >/dev/null 2>&1; rc=$?
set -e
[ $rc -eq 3 ] || fail "load without a node should exit 3, got $rc"

# Bad option values are usage errors (2), checked before any node is contacted.
for opt in "--max-tokens abc" "--max-tokens -1" "--temperature warm" "--temperature 3" "--seed 1e3"; do
  set +e
  # shellcheck disable=SC2086
  "$bin" model chat tiny8 "hi" $opt >/dev/null 2>"$home/err"; rc=$?
  set -e
  [ $rc -eq 2 ] && grep -q -- "${opt%% *}" "$home/err" || fail "model chat $opt: rc=$rc $(cat "$home/err")"
done

"$bin" model rm tiny8 >/dev/null || fail "rm"
[ ! -e "$home/models/tiny8.gguf" ] || fail "rm left the file"
set +e
"$bin" model rm tiny8 2>/dev/null; rc=$?
set -e
[ $rc -eq 1 ] || fail "second rm should fail"
"$bin" model ls --json | jq -e 'length == 0' >/dev/null || fail "ls after rm"
echo "model cli: ok"
