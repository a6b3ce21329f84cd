#!/usr/bin/env bash
# p2p codec benchmarks (bench/bench_p2p_codec.c): noise channel vs bare AEAD, yamux vs memcpy, the two
# stacked, and the Noise XX handshake, all in memory. BENCH_P2P_MIB / BENCH_P2P_HANDSHAKES size the runs.
# The socket-level numbers against js-libp2p and raw TCP come from the swarm's own benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${BUILD:-build}/bench/bench_p2p_codec"
[ -x "$bin" ] || { echo "bench_p2p_codec: $bin not built (run make bench)" >&2; exit 1; }
echo "== p2p codecs (noise, yamux)"
"$bin" "${BENCH_P2P_MIB:-256}" "${BENCH_P2P_HANDSHAKES:-500}"
