/* connmgr — the swarm's resource policy: limits on connections, streams per connection and pending dials;
 * exponential dial backoff per target; idle-connection pruning; the buffer caps every connection and stream
 * is created with. Pure bookkeeping (time passed in), so it is unit-tested without sockets.
 *
 * Defaults (p2p_connmgr_cfg_default): 256 connections, 512 streams per connection, 32 pending dials, backoff
 * 1 s doubling to 5 min, idle after 5 min with no stream, stream buffer 1 MiB, connection buffer 8 MiB,
 * handshake timeout 10 s. */
#ifndef CG_P2P_CONNMGR_H
#define CG_P2P_CONNMGR_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

struct p2p_connmgr_cfg {
	int max_conns;            /* open + upgrading connections, inbound and outbound */
	int max_streams_per_conn; /* open streams on one connection, both directions */
	int max_pending_dials;    /* outbound connections not yet upgraded */
	int64_t backoff_base_ms;  /* first backoff after a failed dial; doubles per failure */
	int64_t backoff_max_ms;
	int64_t idle_ms;          /* a connection without streams for this long is closed (0: never) */
	int64_t handshake_ms;     /* tcp connect + noise + muxer negotiation must finish within this */
	size_t stream_buf_cap;    /* bytes buffered per stream and direction */
	size_t conn_buf_cap;      /* bytes buffered per connection (socket output and frame reassembly) */
};

void p2p_connmgr_cfg_default(struct p2p_connmgr_cfg *c);

struct p2p_connmgr;

struct p2p_connmgr *p2p_connmgr_new(const struct p2p_connmgr_cfg *cfg);
struct p2p_connmgr *p2p_connmgr_free(struct p2p_connmgr *cm); /* accepts NULL, returns NULL */
const struct p2p_connmgr_cfg *p2p_connmgr_cfg(const struct p2p_connmgr *cm);

/* Admission. Each returns 0 (and counts the new connection / dial) or fails with E_RATE_LIMITED (backoff),
 * E_QUOTA_EXCEEDED (a limit) saying which. `key` names the dial target (peer id, else the address). */
int p2p_connmgr_dial_begin(struct p2p_connmgr *cm, const char *key, int64_t now_ms, cg_err *e);
/* Ends a pending dial: ok resets the target's backoff and counts an open connection; a failure counts
 * nothing open and extends the backoff. */
void p2p_connmgr_dial_end(struct p2p_connmgr *cm, const char *key, int ok, int64_t now_ms);
int p2p_connmgr_accept(struct p2p_connmgr *cm, cg_err *e);
void p2p_connmgr_conn_closed(struct p2p_connmgr *cm);
/* Forgets the backoff of one target (an explicit user dial overrides it). */
void p2p_connmgr_backoff_clear(struct p2p_connmgr *cm, const char *key);

/* May a connection with n_streams open streams open or accept another? 0 or E_QUOTA_EXCEEDED. */
int p2p_connmgr_stream_ok(const struct p2p_connmgr *cm, int n_streams, cg_err *e);
/* Should a connection be pruned: no streams and idle since last_active_ms. */
int p2p_connmgr_is_idle(const struct p2p_connmgr *cm, int n_streams, int64_t last_active_ms, int64_t now_ms);

int p2p_connmgr_conns(const struct p2p_connmgr *cm);   /* open + pending */
int p2p_connmgr_pending(const struct p2p_connmgr *cm); /* pending outbound dials */

#endif
