#!/usr/bin/env bash
# `clawgrid sandbox run|check|policy` from the command line: exit statuses, the JSON report, the embedded
# policy equal to the repository's file, usage errors and clear errors for missing hosts features.
set -u
BIN=${CLAWGRID_BIN:?CLAWGRID_BIN not set}
ROOT=${CLAWGRID_ROOT:-$(pwd)}
command -v jq >/dev/null || { echo "SKIP: jq is missing"; exit 77; }
export CLAWGRID_HOME=$(mktemp -d /tmp/clawgrid-cli-XXXXXX)
trap 'rm -rf "$CLAWGRID_HOME"' EXIT
fail=0
expect() { # description, wanted status, command...
  local what=$1 want=$2; shift 2
  "$@" >"$CLAWGRID_HOME/out" 2>"$CLAWGRID_HOME/err"
  local got=$?
  if [ "$got" = "$want" ]; then echo "ok   $what"; else
    echo "FAIL $what: status $got, want $want"; head -c 400 "$CLAWGRID_HOME/err"; fail=1; fi
}

# The binary's embedded policy is byte for byte the file in the repository.
if "$BIN" sandbox policy | cmp -s - "$ROOT/src/sandbox/policy/default.policy"; then
  echo "ok   embedded policy equals src/sandbox/policy/default.policy"
else
  echo "FAIL the embedded policy differs from src/sandbox/policy/default.policy (stale build?)"; fail=1
fi

"$BIN" sandbox run -- true 2>"$CLAWGRID_HOME/err" || {
  echo "SKIP: the native backend cannot run here: $(cat "$CLAWGRID_HOME/err")"; exit 77; }

expect "exit status passes through" 3 "$BIN" sandbox run -- sh -c 'exit 3'
expect "a signal is 128+N" 143 "$BIN" sandbox run -- sh -c 'kill -TERM $$'
expect "command not found is 127" 127 "$BIN" sandbox run -- no-such-command-xyz
expect "timeout kills (128+9)" 137 "$BIN" sandbox run --timeout 200ms -- sleep 10
grep -q 'killed by timeout' "$CLAWGRID_HOME/err" || { echo "FAIL timeout not reported on stderr"; fail=1; }
expect "stdout is passed through" 0 "$BIN" sandbox run -- echo hello
[ "$(cat "$CLAWGRID_HOME/out")" = hello ] || { echo "FAIL stdout: $(cat "$CLAWGRID_HOME/out")"; fail=1; }
echo "from a file" > "$CLAWGRID_HOME/in.txt"
chmod 644 "$CLAWGRID_HOME/in.txt"
expect "--stdin FILE" 0 "$BIN" sandbox run --stdin "$CLAWGRID_HOME/in.txt" -- cat
[ "$(cat "$CLAWGRID_HOME/out")" = "from a file" ] || { echo "FAIL --stdin: $(cat "$CLAWGRID_HOME/out")"; fail=1; }
expect "--env replaces the environment" 0 "$BIN" sandbox run --env FOO=bar --env PATH=/usr/bin:/bin -- sh -c 'test "$FOO" = bar && test -z "$HOME"'

# --json: the report, and --json after -- belongs to the command.
expect "--json report" 0 "$BIN" sandbox run --json --output-cap 10 -- sh -c 'echo 0123456789abcdef; exit 0'
jq -e '.exit_code == 0 and .signal == null and .killed_by == null and .stdout == "0123456789" and
       .stdout_truncated == true and .stdout_bytes == 17 and (.limits_hit | index("output")) and
       (.wall_ms | type) == "number" and (.cpu_ms | type) == "number" and .peak_mem_bytes > 0 and
       .backend == "native"' "$CLAWGRID_HOME/out" >/dev/null || { echo "FAIL report: $(cat "$CLAWGRID_HOME/out")"; fail=1; }
expect "--json after -- goes to the command" 0 "$BIN" sandbox run -- echo --json
[ "$(cat "$CLAWGRID_HOME/out")" = "--json" ] || { echo "FAIL: got $(cat "$CLAWGRID_HOME/out")"; fail=1; }
expect "memory kill in the report" 137 "$BIN" sandbox run --json --mem 32M -- sh -c 'x=a; while :; do x=$x$x; done'
jq -e '.killed_by == "memory" or (.killed_by == "signal")' "$CLAWGRID_HOME/out" >/dev/null || {
  echo "FAIL memory report: $(cat "$CLAWGRID_HOME/out")"; fail=1; }

# Usage errors are 2, missing host features are 1 with a clear message.
expect "no command" 2 "$BIN" sandbox run
expect "unknown option" 2 "$BIN" sandbox run --frobnicate 1 -- true
expect "bad size" 2 "$BIN" sandbox run --mem lots -- true
grep -q 'size' "$CLAWGRID_HOME/err" || { echo "FAIL bad size message: $(cat "$CLAWGRID_HOME/err")"; fail=1; }
expect "bad duration" 2 "$BIN" sandbox run --timeout 5x -- true
expect "bad backend" 2 "$BIN" sandbox run --backend docker -- true
expect "bad --ro path" 2 "$BIN" sandbox run --ro /nonexistent/xyz -- true
expect "bad policy file" 2 "$BIN" sandbox run --policy /nonexistent/policy -- true
printf '@default allow\nnot_a_syscall\n' > "$CLAWGRID_HOME/bad.policy"
expect "policy with an unknown syscall" 2 "$BIN" sandbox run --policy "$CLAWGRID_HOME/bad.policy" -- true
grep -q 'line 2' "$CLAWGRID_HOME/err" || { echo "FAIL policy error names no line: $(cat "$CLAWGRID_HOME/err")"; fail=1; }
if ls /dev/nvidia[0-9]* >/dev/null 2>&1; then
  expect "--gpu all with devices" 0 "$BIN" sandbox run --gpu all -- sh -c 'ls /dev/nvidia0'
else
  expect "--gpu without devices is a clear error" 1 "$BIN" sandbox run --gpu 0 -- true
  grep -q 'does not exist' "$CLAWGRID_HOME/err" || { echo "FAIL gpu message: $(cat "$CLAWGRID_HOME/err")"; fail=1; }
  expect "--gpu all without devices" 1 "$BIN" sandbox run --gpu all -- true
fi
expect "unknown subcommand" 2 "$BIN" sandbox frob

# Config defaults: a strict "sandbox" section in the data directory's config.json.
echo '{"sandbox": {"timeout": "150ms"}}' > "$CLAWGRID_HOME/config.json"
expect "config default timeout" 137 "$BIN" sandbox run -- sleep 5
echo '{"sandbox": {"timeout": "soon"}}' > "$CLAWGRID_HOME/config.json"
expect "bad config is a usage error" 2 "$BIN" sandbox run -- true
grep -q 'sandbox.timeout' "$CLAWGRID_HOME/err" || { echo "FAIL config message: $(cat "$CLAWGRID_HOME/err")"; fail=1; }
rm -f "$CLAWGRID_HOME/config.json"

# Rootless: as nobody, the sandbox still runs, and the report says which limits fell back to rlimits.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
  rl=$(mktemp -d /tmp/clawgrid-rootless-XXXXXX)
  chmod 755 "$rl"
  cp "$BIN" "$rl/clawgrid"
  chmod 755 "$rl/clawgrid"
  out=$(cd "$rl" && HOME=$rl CLAWGRID_HOME=$rl setpriv --reuid 65534 --regid 65534 --clear-groups \
        "$rl/clawgrid" sandbox run --json --mem 64M --pids 16 -- sh -c 'test "$(id -u)" = 0 && echo inside' 2>&1)
  if echo "$out" | jq -e '.exit_code == 0 and .stdout == "inside\n" and (.notes | test("RLIMIT_AS"))' >/dev/null 2>&1; then
    echo "ok   rootless run (limits fall back to rlimits, said in notes)"
  elif echo "$out" | grep -q 'E_UNAVAILABLE'; then
    echo "SKIP rootless run: $(echo "$out" | head -c 200)"
  else
    echo "FAIL rootless run: $out"; fail=1
  fi
  # runsc without a memory cgroup: the limit still holds (RLIMIT_AS in the OCI spec), as the notes say.
  if [ "$("$BIN" sandbox check --json | jq -r '.backends.runsc.ok')" = true ] && command -v python3 >/dev/null; then
    out=$(cd "$rl" && HOME=$rl CLAWGRID_HOME=$rl setpriv --reuid 65534 --regid 65534 --clear-groups \
          "$rl/clawgrid" sandbox run --json --backend runsc --mem 64M -- \
          python3 -c 'x = bytearray(256 << 20); print("allocated")' 2>&1)
    if echo "$out" | jq -e '.stdout != "allocated\n" and .exit_code != 0 and (.notes | test("RLIMIT_AS"))' >/dev/null 2>&1; then
      echo "ok   rootless runsc: --mem holds without a memory cgroup"
    else
      echo "FAIL rootless runsc --mem 64M let 256M through: $(echo "$out" | head -c 300)"; fail=1
    fi
  fi
  rm -rf "$rl"
else
  echo "SKIP rootless run: needs root and setpriv to switch to nobody"
fi

# check: a report for every backend, each either ok or saying why not; its probes leave nothing in /tmp.
before=$(ls -d /tmp/clawgrid-idmap-* /tmp/clawgrid-sbx-* 2>/dev/null | sort)
expect "check --json" 0 "$BIN" sandbox check --json
jq -e '.backends.native.ok == true and (.backends | to_entries | all(.value.ok == true or (.value.why | type) == "string"))
       and (.cgroup.memory | type) == "string" and (.namespaces.user.ok | type) == "boolean"
       and (.idmapped_binds.ok == true or (.idmapped_binds.why | type) == "string")' "$CLAWGRID_HOME/out" >/dev/null ||
  { echo "FAIL check report: $(cat "$CLAWGRID_HOME/out")"; fail=1; }
expect "check (text)" 0 "$BIN" sandbox check
grep -q '^backends:' "$CLAWGRID_HOME/out" || { echo "FAIL check text"; fail=1; }
after=$(ls -d /tmp/clawgrid-idmap-* /tmp/clawgrid-sbx-* 2>/dev/null | sort)
[ "$before" = "$after" ] || { echo "FAIL sandbox check left temporary folders: $(comm -13 <(echo "$before") <(echo "$after"))"; fail=1; }
exit $fail
