/* swarm_int — internals shared by the swarm's files (tcp.c, conn.c, stream.c, swarm.c, identify.c, ping.c,
 * echo.c). Not an API: define P2P_SWARM_INTERNAL before including it. */
#ifndef CG_P2P_SWARM_INT_H
#define CG_P2P_SWARM_INT_H

#ifndef P2P_SWARM_INTERNAL
#error "p2p/swarm_int.h is internal to the swarm (src/p2p); include p2p/swarm.h instead"
#endif

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "base/buf.h"
#include "p2p/connmgr.h"
#include "p2p/mss.h"
#include "p2p/muxer.h"
#include "p2p/noise.h"
#include "p2p/peerid.h"
#include "p2p/swarm.h"

#define P2P_READ_CHUNK 65536
#define P2P_ADDR_MAX 256
#define P2P_MAX_SUBS 4

/* One layer of a connection's stack (STYLE.md habit 5): bytes travel down through send() toward the socket
 * and up through recv() toward the muxer. The bottom (tcp) has no recv, the top (the upgrader, later the
 * muxer) has no send. Tests insert layers here to inject faults. */
struct p2p_layer;
struct p2p_layer_ops {
	const char *name;
	/* Bytes from the layer above, to send toward the peer. 0 or <0 (the connection then fails). */
	int (*send)(struct p2p_layer *l, const uint8_t *p, size_t n, cg_err *e);
	/* Bytes from the layer below; *consumed may be short (the rest is offered again with more). */
	int (*recv)(struct p2p_layer *l, const uint8_t *p, size_t n, size_t *consumed, cg_err *e);
	void (*free)(struct p2p_layer *l);
};
struct p2p_layer {
	const struct p2p_layer_ops *ops;
	struct p2p_conn *conn;
	struct p2p_layer *below, *above;
};

enum conn_state {
	CONN_CONNECTING, /* tcp connect in progress (outbound) */
	CONN_MSS_SEC,    /* multistream-select for /noise on the raw socket */
	CONN_NOISE,      /* noise XX handshake */
	CONN_MSS_MUX,    /* multistream-select for the muxer, inside noise */
	CONN_OPEN,
	CONN_DEAD,
};

struct p2p_conn {
	struct p2p_swarm *sw;
	struct p2p_conn *next, *prev;
	enum conn_state state;
	bool inbound;
	bool counted;        /* holds a connmgr slot */
	bool dial_pending;   /* counted as a pending dial in connmgr */
	bool peer_counted;   /* counted in the peer store's live connections */
	bool want_pump;      /* a stream was resumed or got callbacks: service it at the next safe point */
	bool peer_eof;       /* the peer closed its side of the socket; input may still be queued */
	int fd;
	struct bufferevent *bev;
	struct p2p_layer *bottom, *top; /* the stack; top is the upgrader, then the muxer layer */
	mss *mss;
	noise_hs *hs;
	muxer *mux;
	buf scratch; /* bytes produced by a negotiator, on their way down */
	peerid expect;
	bool have_expect;
	char peer_id[PEERID_TEXT_MAX];
	char remote_addr[P2P_ADDR_MAX];
	char dial_key[P2P_ADDR_MAX];
	const char *muxer_proto;
	bool muxer_is_mplex;
	char reason[200];
	enum cg_code fail_code;
	struct event *timer; /* handshake deadline */
	void *dns_ctx;       /* pending DNS lookup (tcp.c) */
	int64_t last_active_ms;
	int64_t rtt_probe_us; /* when our yamux RTT probe left (0: none in flight) */
	/* our identify request (identify.c): pending until answered, failed or timed out */
	bool id_pending;
	struct event *id_timer;
	struct p2p_stream *id_stream; /* its stream once negotiated, until it closes */
	struct p2p_stream *streams;
	int n_streams;
	int n_paused;        /* open streams whose reader paused: mplex input stops while > 0 */
	p2p_dial_cb dial_cb;
	void *dial_arg;
	struct p2p_conn *reap_next;
	bool in_reap;
};

enum stream_state { ST_NEGOTIATING, ST_OPEN, ST_DEAD };

struct p2p_stream {
	struct p2p_conn *conn;
	struct p2p_stream *next, *prev;
	uint64_t id;
	bool inbound;
	enum stream_state state;
	mss *mss;
	char proto[P2P_PROTO_MAX];
	p2p_open_cb open_cb;
	void *open_arg;
	struct p2p_stream_cbs cbs;
	void *arg;
	buf tx;               /* queued for muxer_write (capped at stream_buf_cap); tx.data[tx_off..len) */
	size_t tx_off;
	buf early;            /* bytes after the negotiation, delivered once the handler is set */
	bool close_pending;   /* half-close once tx is flushed */
	bool write_closed;    /* muxer_close done */
	bool paused;
	bool eof_seen;
	bool want_writable;   /* a write was refused or space got low: tell on_writable */
	bool in_mux;          /* the muxer still knows the stream */
	char reason[160];
	struct p2p_stream *reap_next;
};

struct p2p_handler {
	char proto[P2P_PROTO_MAX];
	p2p_handler_fn fn;
	void *arg;
};

struct p2p_listener {
	int fd;
	struct event *ev;
	char addr[P2P_ADDR_MAX]; /* bound address without /p2p */
	bool unspecified;        /* bound to 0.0.0.0 / :: */
	bool ip6;
	uint16_t port;
};

struct p2p_sub {
	p2p_event_fn fn;
	void *arg;
};

struct p2p_swarm {
	struct event_base *base;
	uint8_t sk[64];
	uint8_t pk[32];
	peerid self;
	char peer_id[PEERID_TEXT_MAX];
	uint8_t pubkey_pb[36];
	struct p2p_swarm_cfg cfg;
	char agent[96];
	const char *muxers[2];
	size_t n_muxers;
	struct p2p_connmgr *cm;
	struct p2p_peerstore *ps;
	struct p2p_conn *conns;
	struct p2p_listener listeners[P2P_MAX_LISTEN];
	size_t n_listeners;
	char *listen_text[P2P_MAX_LISTEN * 8];
	size_t n_listen_text;
	struct p2p_handler handlers[P2P_MAX_HANDLERS];
	size_t n_handlers;
	struct p2p_sub subs[P2P_MAX_SUBS];
	size_t n_subs;
	struct event *reap_ev;
	struct event *prune_ev;
	struct p2p_conn *reap_conns;
	struct p2p_stream *reap_streams;
	struct evdns_base *dns;
	bool freeing;
};

/* tcp.c */
int p2p_tcp_listen(struct p2p_swarm *sw, const uint8_t *ma, size_t n, struct p2p_listener *l, cg_err *e);
void p2p_tcp_listener_close(struct p2p_listener *l);
/* Starts a dial of conn c to ma (resolving dns names on the loop). 0, or <0 with nothing started. */
int p2p_tcp_dial(struct p2p_conn *c, const uint8_t *ma, size_t n, cg_err *e);
size_t p2p_tcp_out_pending(struct p2p_conn *c);
/* Re-drives input processing once the layers above can take more. */
void p2p_tcp_kick(struct p2p_conn *c);
/* Detaches c from a pending DNS lookup (before c is freed). */
void p2p_tcp_forget(struct p2p_conn *c);
/* Formats a sockaddr as /ip4|ip6/…/tcp/PORT. */
void p2p_tcp_sa_to_ma(const void *sa, char *out, size_t cap);

/* conn.c */
struct p2p_conn *p2p_conn_new(struct p2p_swarm *sw, bool inbound);
/* Called once the socket is connected: starts the upgrade. */
void p2p_conn_connected(struct p2p_conn *c);
/* The bottom layer received bytes (may be called repeatedly). */
void p2p_conn_fail(struct p2p_conn *c, const cg_err *err, const char *what);
void p2p_conn_pump(struct p2p_conn *c); /* flush muxer output, stream queues; re-evaluate backpressure */
void p2p_conn_on_output_drained(struct p2p_conn *c);
/* Moves queued muxer output into the socket; runs no callbacks (safe from inside stream calls). */
void p2p_conn_flush(struct p2p_conn *c);
/* True while decrypted input waits in the stack for a layer above (backpressure). */
bool p2p_conn_input_pending(struct p2p_conn *c);
void p2p_conn_free_now(struct p2p_conn *c);

/* stream.c */
struct p2p_stream *p2p_stream_new(struct p2p_conn *c, uint64_t id, bool inbound);
void p2p_stream_on_mux_event(struct p2p_stream *s, const struct muxer_event *ev);
/* Flush, resume delivery, report write space (runs callbacks: only from safe points). */
void p2p_stream_service(struct p2p_stream *s);
/* The last callback of a dead stream, from the reaper. */
void p2p_stream_last_call(struct p2p_stream *s);
/* The connection is going away: on_close(reason) for a stream, then reap. */
void p2p_stream_kill(struct p2p_stream *s, const char *reason);
void p2p_stream_free_now(struct p2p_stream *s);

/* swarm.c */
void p2p_swarm_emit(struct p2p_swarm *sw, enum p2p_event ev, struct p2p_conn *c, const char *reason);
void p2p_swarm_schedule_reap(struct p2p_swarm *sw);
const struct p2p_handler *p2p_swarm_find_handler(const struct p2p_swarm *sw, const char *proto);
void p2p_swarm_conn_established(struct p2p_conn *c);

/* identify.c / ping.c / echo.c: register their handlers. */
int p2p_identify_register(struct p2p_swarm *sw, cg_err *e);
void p2p_identify_conn_up(struct p2p_conn *c); /* runs identify on a new connection */
int p2p_ping_register(struct p2p_swarm *sw, cg_err *e);
int p2p_echo_register(struct p2p_swarm *sw, cg_err *e);

#endif
