/* swarm — libp2p networking on the node's libevent loop (libp2p specs: connections, identify, ping).
 *
 * A connection is a stack of layers behind a tiny vtable: tcp -> noise (after multistream-select "/noise")
 * -> a stream muxer chosen by multistream-select ("/yamux/1.0.0" or "/mplex/6.7.0", our preference order
 * first). Streams negotiate their protocol with multistream-select and are dispatched to handlers
 * registered by protocol id. Identify (/ipfs/id/1.0.0 and push), ping (/ipfs/ping/1.0.0) and echo
 * (/clawgrid/echo/1.0.0) are built in. Limits and backoff come from connmgr.h; what peers tell us goes into
 * peerstore.h.
 *
 * Threading and lifetime: everything runs on the loop thread. Connections and streams are owned by the
 * swarm; the pointers handed to callbacks stay valid until that object's close callback has returned
 * (streams: on_close; connections: P2P_EV_CONN_DOWN). Objects are freed at a safe point after that, so
 * closing or resetting from inside any callback is allowed. */
#ifndef CG_P2P_SWARM_H
#define CG_P2P_SWARM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "base/err.h"
#include "p2p/connmgr.h"

#define P2P_ECHO_PROTOCOL "/clawgrid/echo/1.0.0"
#define P2P_PING_PROTOCOL "/ipfs/ping/1.0.0"
#define P2P_ID_PROTOCOL "/ipfs/id/1.0.0"
#define P2P_ID_PUSH_PROTOCOL "/ipfs/id/push/1.0.0"
#define P2P_PROTOCOL_VERSION "ipfs/0.1.0"
#define P2P_MAX_LISTEN 8
#define P2P_MAX_HANDLERS 32
#define P2P_PROTO_MAX 128 /* longest protocol id */

struct p2p_swarm;
struct p2p_conn;
struct p2p_stream;
struct p2p_peerstore;

struct p2p_swarm_cfg {
	struct p2p_connmgr_cfg limits;
	const char *agent_version; /* identify agentVersion; NULL = "clawgrid" */
	const char *muxers[2];     /* preference order; NULL entries end the list; all NULL = yamux, mplex */
	size_t max_peers;          /* peer store size (0 = 1024) */
};
void p2p_swarm_cfg_default(struct p2p_swarm_cfg *cfg);

/* sk: the node's Ed25519 libsodium secret key (seed || pk), copied and wiped on free. NULL on failure. */
struct p2p_swarm *p2p_swarm_new(struct event_base *base, const uint8_t sk[static 64],
				const struct p2p_swarm_cfg *cfg, cg_err *e);
/* Closes every connection and listener (no callbacks run) and frees. NULL ok; returns NULL. */
struct p2p_swarm *p2p_swarm_free(struct p2p_swarm *sw);

const char *p2p_swarm_peer_id(const struct p2p_swarm *sw); /* "12D3KooW…" */
struct p2p_peerstore *p2p_swarm_peerstore(struct p2p_swarm *sw);
struct p2p_connmgr *p2p_swarm_connmgr(struct p2p_swarm *sw);

/* Binds a TCP listener on an /ip4|ip6/…/tcp/PORT multiaddr (port 0 = any). 0 or <0 (E_INVALID_ARGUMENT for
 * a bad address, E_UNAVAILABLE when the bind fails). */
int p2p_swarm_listen(struct p2p_swarm *sw, const char *maddr, cg_err *e);
/* The full listen addresses ".../tcp/PORT/p2p/<id>" (unspecified hosts expanded to the interfaces'
 * addresses). Returns how many were written (at most max); each string is borrowed until the next listen. */
size_t p2p_swarm_listen_addrs(struct p2p_swarm *sw, const char **out, size_t max);

/* Connection events, for the node and the CLI. reason is NULL except for CONN_DOWN and IDENTIFY_FAILED.
 * IDENTIFY_FAILED: our identify request on a new connection got no usable answer (the peer does not speak
 * /ipfs/id/1.0.0, reset the stream, sent a bad message, or did not answer within P2P_ID_TIMEOUT_MS); the
 * connection stays open. Exactly one of
 * IDENTIFIED and IDENTIFY_FAILED follows each CONN_UP while the connection lives (IDENTIFIED also follows
 * every accepted identify push). */
enum p2p_event { P2P_EV_CONN_UP = 1, P2P_EV_CONN_DOWN, P2P_EV_IDENTIFIED, P2P_EV_IDENTIFY_FAILED };
typedef void (*p2p_event_fn)(struct p2p_swarm *sw, enum p2p_event ev, struct p2p_conn *c, const char *reason,
			     void *arg);
/* Adds a subscriber (at most 4). 0 or E_QUOTA_EXCEEDED. */
int p2p_swarm_subscribe(struct p2p_swarm *sw, p2p_event_fn fn, void *arg, cg_err *e);

/* Dials a multiaddr (/ip4|ip6|dns4|dns6/…/tcp/PORT[/p2p/<id>]). With /p2p/ the handshake must prove that
 * peer id. cb runs exactly once (later, never from inside this call) with the upgraded connection or an
 * error; when this returns <0 it never runs. An existing connection to the same peer id is reused. */
typedef void (*p2p_dial_cb)(struct p2p_conn *c, const cg_err *err, void *arg);
int p2p_swarm_dial(struct p2p_swarm *sw, const char *maddr, p2p_dial_cb cb, void *arg, cg_err *e);

/* Stream handler for an inbound stream whose protocol was agreed: it sets the callbacks
 * (p2p_stream_set_cbs) before returning. 0, or E_CONFLICT (already registered) / E_QUOTA_EXCEEDED.
 * Connected peers are told about the new protocol by an identify push. */
typedef void (*p2p_handler_fn)(struct p2p_stream *s, void *arg);
int p2p_swarm_handle(struct p2p_swarm *sw, const char *proto, p2p_handler_fn fn, void *arg, cg_err *e);
size_t p2p_swarm_protocols(const struct p2p_swarm *sw, const char **out, size_t max);

/* Connections. */
const char *p2p_conn_peer_id(const struct p2p_conn *c);
const char *p2p_conn_remote_addr(const struct p2p_conn *c); /* "/ip4/…/tcp/…" */
const char *p2p_conn_muxer(const struct p2p_conn *c);       /* agreed muxer protocol */
bool p2p_conn_inbound(const struct p2p_conn *c);
int p2p_conn_stream_count(const struct p2p_conn *c);
/* Closes with a reason (logged, given to subscribers). Idempotent. */
void p2p_conn_close(struct p2p_conn *c, const char *reason);
/* Number of open connections and a way to walk them (borrowed, valid until the loop runs again). */
size_t p2p_swarm_conns(struct p2p_swarm *sw, struct p2p_conn **out, size_t max);
struct p2p_conn *p2p_swarm_conn_to(struct p2p_swarm *sw, const char *peer_id);

/* Streams. Callbacks may close/reset the stream; on_close is the last call (s invalid afterwards). */
struct p2p_stream_cbs {
	void (*on_data)(struct p2p_stream *s, const uint8_t *p, size_t n, void *arg); /* n <= 64 KiB */
	void (*on_eof)(struct p2p_stream *s, void *arg);      /* the remote closed its write side */
	void (*on_writable)(struct p2p_stream *s, void *arg); /* write space is back above half the cap */
	void (*on_close)(struct p2p_stream *s, const char *reason, void *arg); /* reason NULL: clean close */
};
void p2p_stream_set_cbs(struct p2p_stream *s, const struct p2p_stream_cbs *cbs, void *arg);

/* Opens a stream for proto. cb runs once (later) with the negotiated stream, or NULL and an error
 * (E_NOT_FOUND: the peer does not support proto). <0 here: no cb (stream limit, connection closing). */
typedef void (*p2p_open_cb)(struct p2p_stream *s, const cg_err *err, void *arg);
int p2p_conn_open_stream(struct p2p_conn *c, const char *proto, p2p_open_cb cb, void *arg, cg_err *e);

/* Queues n bytes (all or nothing): 0, E_QUOTA_EXCEEDED when they do not fit the stream's send buffer (see
 * p2p_stream_write_space; wait for on_writable), E_CONFLICT after close_write or when the stream is gone. */
int p2p_stream_write(struct p2p_stream *s, const uint8_t *p, size_t n, cg_err *e);
size_t p2p_stream_write_space(const struct p2p_stream *s);
size_t p2p_stream_write_pending(const struct p2p_stream *s);
/* Half-close after the queued bytes are sent. Idempotent. */
void p2p_stream_close_write(struct p2p_stream *s);
/* Aborts both directions now; on_close runs with the reason (later, at a safe point). */
void p2p_stream_reset(struct p2p_stream *s, const char *reason);
/* Stops / restarts on_data (received bytes then stay in the muxer: yamux stops granting window). */
void p2p_stream_pause(struct p2p_stream *s, bool paused);
const char *p2p_stream_protocol(const struct p2p_stream *s);
struct p2p_conn *p2p_stream_conn(struct p2p_stream *s);
struct p2p_swarm *p2p_stream_swarm(struct p2p_stream *s);

#endif
