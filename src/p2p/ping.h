/* ping — the libp2p ping protocol (libp2p specs: ping/ping.md): on /ipfs/ping/1.0.0 the dialer sends 32
 * random bytes, the listener echoes them, the round-trip time is measured; repeated on the same stream.
 * The serving side is registered by the swarm itself. */
#ifndef CG_P2P_PING_H
#define CG_P2P_PING_H

#include <stdint.h>

#include "base/err.h"

struct p2p_conn;

#define P2P_PING_SIZE 32
#define P2P_PING_TIMEOUT_MS 10000

/* Called once per round: err NULL and rtt_us for a good echo (seq 0..count-1), or err set and no more
 * calls (the stream failed, timed out, or the echo did not match). The last good round has seq count-1. */
typedef void (*p2p_ping_cb)(struct p2p_conn *c, int seq, int64_t rtt_us, const cg_err *err, void *arg);

/* Pings the peer of c count times (1..1000). 0, or <0 with no callback (connection not open, limits). */
int p2p_ping(struct p2p_conn *c, int count, p2p_ping_cb cb, void *arg, cg_err *e);

#endif
