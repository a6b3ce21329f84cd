#!/usr/bin/env bash
# What a caller sees under every available backend (native, bwrap, runsc): a --rw folder the caller made
# (root-owned, 0755) is writable inside and what the sandbox writes there belongs on the host to the folder's
# owner; --ro is readable (a 0600 file included) and not writable; set-id bits are refused there; a missing
# command is 127 and a non-executable one 126, with the shell's message; a command failing on the pids limit
# is reported as killed by "pids"; threads and subprocesses work (glibc's clone3 fallback, also under gVisor).
# A backend this host lacks is skipped with its reason.
set -u
BIN=${CLAWGRID_BIN:?CLAWGRID_BIN not set}
command -v jq >/dev/null || { echo "SKIP: jq is missing"; exit 77; }
work=$(mktemp -d /tmp/clawgrid-backends-XXXXXX)
export CLAWGRID_HOME=$work/home
mkdir -p "$CLAWGRID_HOME"
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
check=$("$BIN" sandbox check --json 2>/dev/null)
[ "$(echo "$check" | jq -r '.backends.native.ok')" = true ] ||
  { echo "SKIP: the native backend does not work here: $(echo "$check" | jq -r '.backends.native.why')"; exit 77; }
pids_via=$(echo "$check" | jq -r '.cgroup.pids')
have_py=0
command -v python3 >/dev/null && have_py=1
fail=0
bad() { echo "FAIL $*"; fail=1; }

for be in native bwrap runsc; do
  if [ "$(echo "$check" | jq -r ".backends.$be.ok")" != true ]; then
    echo "SKIP backend $be: $(echo "$check" | jq -r ".backends.$be.why")"
    continue
  fi
  ro=$work/$be-ro rw=$work/$be-rw
  mkdir -p "$ro" "$rw"
  chmod 755 "$ro" "$rw" # the caller's own folders, as mkdir leaves them: only the owner may write
  echo public > "$ro/public"
  echo private > "$ro/private"
  chmod 600 "$ro/private"
  out=$("$BIN" sandbox run --json --backend "$be" --ro "$ro" --rw "$rw" -- sh -c "
    cat '$ro/public' '$ro/private' || exit 10
    if echo x > '$ro/new' 2>/dev/null; then exit 11; fi
    echo written > '$rw/out' || exit 12
    mkdir '$rw/sub' && echo deeper > '$rw/sub/f' || exit 13
    rm '$rw/out2' 2>/dev/null; echo again > '$rw/out2' && rm '$rw/out2' || exit 14
    touch '$rw/tool' && chmod 755 '$rw/tool' || exit 15
    if chmod 4755 '$rw/tool' 2>/dev/null; then exit 16; fi
    if chmod 2755 '$rw/tool' 2>/dev/null; then exit 17; fi
    exit 0" 2>&1)
  code=$(echo "$out" | jq -r '.exit_code' 2>/dev/null)
  if [ "$code" = 0 ]; then
    echo "ok   $be: --ro readable (0600 too) and read-only, --rw writable, set-id refused"
  else
    bad "$be: --ro/--rw (exit $code): $(echo "$out" | jq -c '{exit_code,stdout,stderr,notes}' 2>/dev/null || echo "$out" | head -c 300)"
  fi
  [ "$(cat "$rw/out" 2>/dev/null)" = written ] && [ "$(cat "$rw/sub/f" 2>/dev/null)" = deeper ] ||
    bad "$be: the files written in --rw are not on the host"
  owner=$(stat -c %u:%g "$rw")
  for f in "$rw/out" "$rw/sub" "$rw/sub/f"; do
    [ -e "$f" ] && [ "$(stat -c %u:%g "$f")" != "$owner" ] && bad "$be: $f belongs to $(stat -c %u:%g "$f"), not to the folder's owner $owner"
  done
  [ -e "$ro/new" ] && bad "$be: a file was created in the --ro folder"
  [ -z "$(find "$rw" -perm /6000 2>/dev/null)" ] || bad "$be: a set-id file was left in the --rw folder"

  for c in "127 no-such-command-xyz No such file" "127 /no/such/path No such file" "126 $ro/public Permission denied"; do
    set -- $c
    out=$("$BIN" sandbox run --json --backend "$be" --ro "$ro" -- "$2" 2>&1)
    if echo "$out" | jq -e --argjson w "$1" --arg m "$3" '.exit_code == $w and (.stderr | contains($m))' >/dev/null 2>&1; then
      echo "ok   $be: '$2' exits $1"
    else
      bad "$be: '$2' should exit $1: $(echo "$out" | head -c 300)"
    fi
  done
  "$BIN" sandbox run --backend "$be" -- no-such-command-xyz >/dev/null 2>&1
  [ $? = 127 ] || bad "$be: the CLI's status for a missing command is not 127"

  if [ $have_py = 1 ]; then
    out=$("$BIN" sandbox run --json --backend "$be" -- python3 -c '
import threading, subprocess
r = []
t = threading.Thread(target=lambda: r.append(1)); t.start(); t.join()
print(len(r), subprocess.run(["echo", "child"], capture_output=True, text=True).stdout.strip())' 2>&1)
    echo "$out" | jq -e '.exit_code == 0 and .stdout == "1 child\n"' >/dev/null 2>&1 &&
      echo "ok   $be: threads and subprocesses" || bad "$be: threads/subprocess: $(echo "$out" | head -c 300)"
  fi

  # Everyday tools. coreutils' ls/stat are left out under runsc: this gVisor refuses their statx flags
  # (docs/sandbox.md, "What this host lacks").
  lscmd='ls -la /work /tmp >/dev/null'
  [ "$be" = runsc ] && lscmd=true
  out=$("$BIN" sandbox run --json --backend "$be" --timeout 60s -- sh -c "set -e; cd /work
    echo data > f && cat f >/dev/null && $lscmd
    grep -q . /etc/os-release && id -u >/dev/null && hostname >/dev/null && date >/dev/null
    echo abc | sed s/b/x/ | awk '{print \$0}' | grep -q axc
    tar cf /tmp/f.tar f && tar tf /tmp/f.tar >/dev/null
    if command -v cc >/dev/null; then printf 'int main(void){return 7;}\n' > t.c && cc -o t t.c; set +e; ./t; [ \$? = 7 ]; set -e; fi
    echo tools-ok" 2>&1)
  echo "$out" | jq -e '.exit_code == 0 and .stdout == "tools-ok\n"' >/dev/null 2>&1 &&
    echo "ok   $be: sh, cat, ls, sed, awk, grep, tar, cc, /etc/os-release" ||
    bad "$be: everyday tools: $(echo "$out" | jq -c '{exit_code,stderr}' 2>/dev/null || echo "$out" | head -c 300)"

  # pids: only the cgroup records that a fork was refused (gVisor counts its own threads there instead).
  if [ "$be" != runsc ] && [ "$pids_via" != rlimit ]; then
    out=$("$BIN" sandbox run --json --backend "$be" --pids 8 -- sh -c 'for i in $(seq 30); do sleep 3 & done; wait' 2>&1)
    echo "$out" | jq -e '.exit_code != 0 and .killed_by == "pids" and (.limits_hit | index("pids"))' >/dev/null 2>&1 &&
      echo "ok   $be: a command failing on the pids limit is killed_by pids" ||
      bad "$be: pids report: $(echo "$out" | jq -c '{exit_code,killed_by,limits_hit,stderr}' 2>/dev/null)"
  fi
done
exit $fail
