#!/usr/bin/env bash
# Layering (ARCHITECTURE.md: dependencies point downward only): nothing below the CLI includes the CLI's
# main header (the exit codes live in base/exitcode.h), and no layer 0-3 code includes the node or the CLI.
set -euo pipefail
cd "${CLAWGRID_ROOT:-.}"
bad=$(grep -rln '#include "cli/cli.h"' src --include='*.c' --include='*.h' | grep -v '^src/cli/' || true)
if [ -n "$bad" ]; then echo "includes cli/cli.h outside src/cli: $bad"; exit 1; fi
low="src/base src/crypto src/store src/rpc src/http src/p2p src/market src/sandbox src/model src/provider
     src/consumer src/brain src/chain"
dirs=$(for d in $low; do [ -d "$d" ] && echo "$d"; done)
bad=$(grep -rlE '#include "(cli|node)/' $dirs --include='*.c' --include='*.h' || true)
if [ -n "$bad" ]; then echo "lower layers include node/ or cli/: $bad"; exit 1; fi
bad=$(grep -lE '#include "cli/' src/node/node.c src/node/config.c src/node/dump.c src/node/node_int.h \
      src/node/node.h || true)
if [ -n "$bad" ]; then echo "the node core includes the CLI: $bad"; exit 1; fi
echo "layering ok"
