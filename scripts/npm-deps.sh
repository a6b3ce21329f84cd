#!/usr/bin/env bash
# Install the npm peers the tests use (js-libp2p, openai SDK, ...), pinned by each package.json under the
# folders named as arguments (default: tests; `make bench` adds bench). Idempotent: skipped when
# node_modules matches the lockfile stamp.
set -euo pipefail
command -v npm >/dev/null || { echo "npm-deps: npm missing (install nodejs and npm)" >&2; exit 1; }
dirs=("$@")
[ ${#dirs[@]} -eq 0 ] && dirs=(tests)
for pj in $(find "${dirs[@]}" -name package.json -not -path '*/node_modules/*' 2>/dev/null | sort); do
  dir=$(dirname "$pj")
  stamp="$dir/node_modules/.clawgrid-stamp"
  sum=$(cat "$pj" "$dir/package-lock.json" 2>/dev/null | sha256sum | cut -c1-16)
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ] && continue
  echo "npm-deps: installing in $dir" >&2
  if [ -f "$dir/package-lock.json" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  else
    (cd "$dir" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
  fi
  echo "$sum" > "$stamp"
done
