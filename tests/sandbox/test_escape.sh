#!/usr/bin/env bash
# The escape suite: every hostile program in tests/sandbox/progs/ runs under every available backend and
# must fail in the specific way listed below. A backend this host lacks is skipped with its reason; a case
# whose limit this host cannot enforce is skipped with its reason; never a silent pass.
#
# Each program prints "RESULT blocked:<how>" or "RESULT escaped:<what>", or is killed. The check string is
#   K=<killed_by|none> R=<blocked:...|escaped:...|none>
# and each backend's column (";"-separated) is an extended regex it must match ("=" : same as native).
set -u
BIN=${CLAWGRID_BIN:?CLAWGRID_BIN not set}
ROOT=${CLAWGRID_ROOT:-$(pwd)}
command -v jq >/dev/null || { echo "SKIP: jq is missing"; exit 77; }
command -v cc >/dev/null || { echo "SKIP: no C compiler"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 is missing (host listener)"; exit 77; }

work=$(mktemp -d /tmp/clawgrid-escape-XXXXXX)
chmod 755 "$work"
pids_to_kill=()
cleanup() {
  for p in "${pids_to_kill[@]}"; do kill "$p" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

progs=$work/progs
mkdir -p "$progs"
for src in "$ROOT"/tests/sandbox/progs/*.c; do
  name=$(basename "$src" .c)
  cc -D_GNU_SOURCE -O1 -Wall -Werror -o "$progs/$name" "$src" || { echo "FAIL: cannot build $name"; exit 1; }
done
chmod -R a+rX "$progs"

# Host-side targets: a secret in a "data directory", a TCP listener on the host's loopback, a victim process.
secret_dir=$work/datadir
mkdir -p "$secret_dir"
marker="clawgrid-secret-$RANDOM$RANDOM"
echo "$marker" > "$secret_dir/admin.token"
chmod 0644 "$secret_dir/admin.token" # readable by anyone who can reach it: only isolation protects it
secret=$secret_dir/admin.token
python3 -c '
import socket, os, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
print(s.getsockname()[1], flush=True); os.close(1)
while True:
    c, _ = s.accept(); c.close()' > "$work/port" &
pids_to_kill+=($!)
listener=$!
sleep 300 &
victim=$!
pids_to_kill+=($victim)
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(cat "$work/port")
rw=$work/rw
mkdir -p "$rw"
chmod 0777 "$rw"
# A folder as its owner leaves it (0755): as root it is idmapped, the workload writes there as that owner.
plant=$work/plant
mkdir -p "$plant"
chmod 0755 "$plant"
bin_sum=$(sha256sum "$BIN" | cut -d' ' -f1)

# A setuid-root copy of the probe, if we can make one.
suid_note=""
if [ "$(id -u)" = 0 ]; then
  cp "$progs/setuid_exec" "$progs/suid_probe" && chown root:root "$progs/suid_probe" && chmod 4755 "$progs/suid_probe"
else
  suid_note="not root: cannot create a setuid-root binary"
fi

check=$("$BIN" sandbox check --json 2>/dev/null)
if [ "$(echo "$check" | jq -r '.backends.native.ok')" != true ]; then
  echo "SKIP: the native backend does not work here: $(echo "$check" | jq -r '.backends.native.why')"
  exit 77
fi
pids_via=$(echo "$check" | jq -r '.cgroup.pids')
mem_via=$(echo "$check" | jq -r '.cgroup.memory')

# name ; options ; arguments ; native ; bwrap ; runsc
cases=$(cat <<EOF
read_shadow   ;               ;                     ; R=blocked:ENOENT ; = ; =
read_datadir  ;               ; $secret             ; R=blocked:ENOENT ; = ; =
write_outside ;               ; $progs/escape-file  ; R=blocked:EROFS ; = ; =
net_host      ;               ; $port               ; R=blocked:(ECONNREFUSED|ENETUNREACH) ; = ; =
net_external  ;               ;                     ; R=blocked:(ENETUNREACH|EHOSTUNREACH) ; = ; =
ptrace_host   ;               ; $victim             ; K=seccomp ; = ; =
process_vm    ;               ; $victim             ; K=seccomp ; = ; =
mount_tmpfs   ;               ;                     ; K=seccomp ; = ; =
unshare_again ;               ;                     ; K=seccomp ; = ; =
clone_newuser ;               ;                     ; R=blocked:EPERM ; = ; =
chroot_escape ;               ;                     ; K=seccomp ; = ; =
proc1_root    ;               ;                     ; R=blocked:(ENOENT|EACCES) ; = ; =
proc_exe      ;               ;                     ; R=blocked:EACCES ; = ; R=blocked:(EACCES|EROFS)
kmod_load     ;               ;                     ; K=seccomp ; = ; =
keyctl        ;               ;                     ; K=seccomp ; = ; =
bpf           ;               ;                     ; K=seccomp ; = ; =
perf_event    ;               ;                     ; K=seccomp ; = ; =
raw_socket    ;               ;                     ; R=blocked:EPERM ; = ; =
setuid_exec   ;               ; $progs/suid_probe   ; R=blocked:nocaps ; = ; =
device_nodes  ;               ;                     ; R=blocked:EPERM ; = ; =
fork_bomb     ; --pids 32     ;                     ; R=blocked:EAGAIN ; = ; =
memory_bomb   ; --mem 64M     ;                     ; K=memory|R=blocked:ENOMEM ; = ; =
cpu_burner    ; --timeout 1s  ;                     ; K=timeout ; = ; =
disk_filler   ; --disk 8M     ;                     ; R=blocked:(ENOSPC|EFBIG) ; = ; =
fd_exhaust    ; --nofile 64   ;                     ; R=blocked:EMFILE ; = ; =
signal_host   ;               ; $victim             ; R=blocked:ESRCH ; = ; =
tiocsti       ;               ;                     ; R=blocked:EPERM ; = ; R=blocked:(EPERM|ENOTTY)
symlink_race  ; --rw $rw      ; $rw $secret $marker ; R=blocked:ENOENT ; = ; =
setns_host    ;               ;                     ; K=seccomp ; = ; R=blocked:(ENOENT|EINVAL)|K=seccomp
io_uring      ;               ;                     ; K=seccomp ; = ; =
i386_abi      ;               ;                     ; K=seccomp ; = ; R=blocked:(EPERM|ENOSYS)
sysrq         ;               ;                     ; R=blocked:(ENOENT|EACCES|EROFS) ; = ; =
shocker       ;               ;                     ; K=seccomp ; = ; =
setid_plant   ; --rw $plant   ; $plant              ; R=blocked:EPERM ; = ; =
EOF
)

backends=(native)
for b in bwrap runsc; do
  if [ "$(echo "$check" | jq -r ".backends.$b.ok")" = true ]; then
    backends+=("$b")
  else
    echo "SKIP backend $b: $(echo "$check" | jq -r ".backends.$b.why")"
  fi
done

fail=0 pass=0 skip=0
trim() { local s=$1; s=${s#"${s%%[![:space:]]*}"}; echo "${s%"${s##*[![:space:]]}"}"; }
ncase=$(echo "$cases" | grep -c .)
[ "$ncase" -ge 25 ] || { echo "FAIL: only $ncase cases"; exit 1; }
for be in "${backends[@]}"; do
  col=4
  [ "$be" = bwrap ] && col=5
  [ "$be" = runsc ] && col=6
  while IFS=';' read -r name opts args e_native e_bwrap e_runsc; do
    name=$(trim "$name"); opts=$(trim "$opts"); args=$(trim "$args")
    [ -n "$name" ] || continue
    want=$(trim "$e_native")
    [ $col = 5 ] && [ "$(trim "$e_bwrap")" != "=" ] && want=$(trim "$e_bwrap")
    [ $col = 6 ] && [ "$(trim "$e_runsc")" != "=" ] && want=$(trim "$e_runsc")
    if [ "$name" = setuid_exec ] && [ -n "$suid_note" ]; then
      echo "SKIP $be/$name: $suid_note"; skip=$((skip + 1)); continue
    fi
    # shellcheck disable=SC2086
    out=$("$BIN" sandbox run --json --backend "$be" --timeout 30s --ro "$progs" $opts -- "$progs/$name" $args 2>&1)
    got=$(echo "$out" | jq -r '"K=\(.killed_by // "none") R=\((.stdout // "" | split("\n") | map(select(startswith("RESULT "))) | .[0] // "none" | ltrimstr("RESULT ")))"' 2>/dev/null)
    if [ -z "$got" ]; then
      echo "FAIL $be/$name: no report: $(echo "$out" | head -c 300)"; fail=$((fail + 1)); continue
    fi
    if echo "$got" | grep -q 'R=escaped'; then
      echo "FAIL $be/$name: ESCAPE: $got"; fail=$((fail + 1)); continue
    fi
    # Every alternative of the column is anchored on the whole check string's K= or R= part.
    if echo "$got" | grep -Eq "(^| )($want)( |$)"; then
      echo "ok   $be/$name: $got"; pass=$((pass + 1))
    else
      echo "FAIL $be/$name: got '$got', want /$want/"; echo "$out" | jq -c '{killed_by,signal,exit_code,stderr,notes,message}' 2>/dev/null | head -c 400; echo
      fail=$((fail + 1))
    fi
    # Limits that must have been the reason, where this host enforces them by cgroup.
    if [ "$name" = fork_bomb ] && [ "$be" != runsc ] && [ "$pids_via" != rlimit ] &&
       ! echo "$out" | jq -e '.limits_hit | index("pids")' >/dev/null; then
      echo "FAIL $be/$name: the pids cgroup ($pids_via) did not record the limit"; fail=$((fail + 1))
    fi
    if [ "$name" = memory_bomb ] && [ "$mem_via" = rlimit ]; then
      echo "     $be/$name: memory cgroup unavailable here, bounded by RLIMIT_AS instead"
    fi
  done <<< "$cases"
done

# The host after the suite: nothing written, nothing killed, nothing changed.
for f in /usr/clawgrid-escape /etc/clawgrid-escape /clawgrid-escape "$progs/escape-file"; do
  [ -e "$f" ] && { echo "FAIL host: $f was created"; fail=$((fail + 1)); }
done
found=$(find "$rw" "$plant" -perm /6000 2>/dev/null | head -3)
[ -z "$found" ] || { echo "FAIL host: set-id files were left in a --rw folder: $found"; fail=$((fail + 1)); }
kill -0 "$victim" 2>/dev/null || { echo "FAIL host: the victim process was killed"; fail=$((fail + 1)); }
kill -0 "$listener" 2>/dev/null || { echo "FAIL host: the listener was killed"; fail=$((fail + 1)); }
[ "$(sha256sum "$BIN" | cut -d' ' -f1)" = "$bin_sum" ] || { echo "FAIL host: $BIN was modified"; fail=$((fail + 1)); }
[ "$(cat "$secret")" = "$marker" ] || { echo "FAIL host: the secret was modified"; fail=$((fail + 1)); }

echo "escape suite: $pass passed, $fail failed, $skip skipped ($ncase cases x ${#backends[@]} backends: ${backends[*]})"
[ $fail -eq 0 ]
