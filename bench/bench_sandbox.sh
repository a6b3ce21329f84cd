#!/usr/bin/env bash
# Cold-start latency of `true` in a sandbox: clawgrid's native backend (namespaces, pivot_root, seccomp,
# cgroups, default limits) side by side with `bwrap --unshare-all` and `runsc --network=none do`, in the
# same run, as p50/p99 and ratios (clawgrid / anchor; below 1 is faster). Each sample is one whole command
# invocation, fork+exec to exit, timed by the same loop. SANDBOX_BENCH_N sets the sample count (default 60;
# runsc gets a third of it, it is ~10x slower).
set -uo pipefail
BIN=${CLAWGRID_BIN:-build/clawgrid}
N=${SANDBOX_BENCH_N:-60}
tmp=$(mktemp -d /tmp/clawgrid-bench-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

# samples NAME COUNT CMD... -> writes sorted microseconds to $tmp/NAME, prints nothing
samples() {
  local name=$1 n=$2; shift 2
  "$@" >/dev/null 2>&1 || return 1 # warm the page cache; must work once
  local i t0 t1
  for ((i = 0; i < n; i++)); do
    t0=$(date +%s%N)
    "$@" >/dev/null 2>&1
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000))
  done | sort -n > "$tmp/$name"
}
pct() { # file percentile -> value (nearest rank)
  local n; n=$(wc -l < "$1")
  local k=$(( ($2 * n + 99) / 100 )); [ "$k" -lt 1 ] && k=1
  sed -n "${k}p" "$1"
}
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

"$BIN" sandbox run -- true >/dev/null 2>&1 || { echo "bench_sandbox: the native backend does not run here"; exit 0; }
samples native "$N" "$BIN" sandbox run -- true
have_bwrap=0 have_runsc=0
command -v bwrap >/dev/null && samples bwrap "$N" bwrap --unshare-all --die-with-parent --ro-bind / / true && have_bwrap=1
[ $have_bwrap = 1 ] || echo "bench_sandbox: bwrap unavailable, no bwrap anchor"
rn=$(( N / 3 < 5 ? 5 : N / 3 ))
command -v runsc >/dev/null && samples runsc "$rn" runsc --network=none do true && have_runsc=1
[ $have_runsc = 1 ] || echo "bench_sandbox: runsc unavailable (or 'runsc --network=none do' fails), no runsc anchor"
if [ $have_runsc = 1 ]; then samples native_r "$rn" "$BIN" sandbox run --backend runsc -- true || true; fi

echo "sandbox cold start of 'true' (ms, $N samples; runsc $rn)"
printf '  %-34s %8s %8s\n' "" p50 p99
printf '  %-34s %8s %8s\n' "clawgrid sandbox run (native)" "$(ms "$(pct "$tmp/native" 50)")" "$(ms "$(pct "$tmp/native" 99)")"
if [ $have_bwrap = 1 ]; then
  printf '  %-34s %8s %8s\n' "bwrap --unshare-all" "$(ms "$(pct "$tmp/bwrap" 50)")" "$(ms "$(pct "$tmp/bwrap" 99)")"
fi
if [ $have_runsc = 1 ]; then
  printf '  %-34s %8s %8s\n' "runsc --network=none do" "$(ms "$(pct "$tmp/runsc" 50)")" "$(ms "$(pct "$tmp/runsc" 99)")"
  [ -s "$tmp/native_r" ] && printf '  %-34s %8s %8s\n' "clawgrid sandbox run --backend runsc" \
    "$(ms "$(pct "$tmp/native_r" 50)")" "$(ms "$(pct "$tmp/native_r" 99)")"
fi
if [ $have_bwrap = 1 ]; then
  echo "  ratio native/bwrap: p50 $(ratio "$(pct "$tmp/native" 50)" "$(pct "$tmp/bwrap" 50)")x, p99 $(ratio "$(pct "$tmp/native" 99)" "$(pct "$tmp/bwrap" 99)")x"
fi
if [ $have_runsc = 1 ]; then
  echo "  ratio native/runsc: p50 $(ratio "$(pct "$tmp/native" 50)" "$(pct "$tmp/runsc" 50)")x, p99 $(ratio "$(pct "$tmp/native" 99)" "$(pct "$tmp/runsc" 99)")x"
fi
