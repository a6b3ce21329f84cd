/* conn — one libp2p connection as a stack of layers: tcp -> noise -> muxer (STYLE.md habit 5).
 *
 * Upgrade (libp2p specs, connections): multistream-select "/noise" on the raw socket, the noise XX handshake
 * (which authenticates the remote peer id, and checks the dialed /p2p/ id), then multistream-select of the
 * muxer inside the secure channel. While upgrading, the top of the stack is the "upgrader" layer, which
 * drives the negotiators; once a muxer is agreed it is replaced by the muxer layer, which feeds the muxer
 * session and dispatches its events to streams (stream.c).
 *
 * Backpressure: the socket's output is capped at conn_buf_cap; above it the muxer's output is left in the
 * muxer, whose own cap then makes stream writes short and stops its input processing; the unconsumed input
 * stays in the socket buffer, whose read watermark stops reading the socket. */
#define P2P_SWARM_INTERNAL
#include "p2p/swarm_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "base/clock.h"
#include "base/log.h"
#include "p2p/mplex.h"
#include "p2p/peerstore.h"
#include "p2p/yamux.h"

/* Plaintext decrypted but not yet taken by the layer above (bounded: a few noise frames). */
#define NOISE_PLAIN_CAP (4u * NOISE_MAX_MSG)
/* Opaque value of the yamux ping that measures a new connection's round-trip time ("claw"). */
#define RTT_PROBE 0x636c6177u

static int send_down(struct p2p_layer *l, const uint8_t *p, size_t n, cg_err *e)
{
	return l->below->ops->send(l->below, p, n, e);
}

/* Sends and empties c->scratch through the layer below `l`. */
static int flush_scratch(struct p2p_conn *c, struct p2p_layer *l, cg_err *e)
{
	if (!c->scratch.len)
		return 0;
	int rc = send_down(l, c->scratch.data, c->scratch.len, e);
	buf_reset(&c->scratch);
	return rc;
}

/* ---- noise layer ------------------------------------------------------------------------------------- */

struct noise_layer {
	struct p2p_layer l;
	noise_chan *chan;
	buf plain;  /* decrypted, not yet consumed above */
	buf cipher; /* scratch for encryption */
};

static int noise_send(struct p2p_layer *l, const uint8_t *p, size_t n, cg_err *e)
{
	struct noise_layer *nl = (struct noise_layer *)l;
	while (n) {
		size_t take = n < 16 * NOISE_MAX_PLAINTEXT ? n : 16 * NOISE_MAX_PLAINTEXT;
		buf_reset(&nl->cipher);
		int rc = noise_chan_encrypt(nl->chan, p, take, &nl->cipher, e);
		if (rc < 0)
			return rc;
		rc = send_down(l, nl->cipher.data, nl->cipher.len, e);
		if (rc < 0)
			return rc;
		p += take;
		n -= take;
	}
	return 0;
}

static int noise_recv(struct p2p_layer *l, const uint8_t *p, size_t n, size_t *consumed, cg_err *e)
{
	struct noise_layer *nl = (struct noise_layer *)l;
	size_t used = 0;
	*consumed = 0;
	if (n) {
		int rc = noise_chan_decrypt(nl->chan, p, n, &used, &nl->plain, e);
		if (rc < 0)
			return rc;
		*consumed = used;
	}
	/* Offer the plaintext upward; the layer above may change while we do (upgrader -> muxer). */
	while (nl->plain.len) {
		struct p2p_layer *up = l->above;
		size_t took = 0;
		int rc = up->ops->recv(up, nl->plain.data, nl->plain.len, &took, e);
		if (rc < 0)
			return rc;
		if (l->conn->state == CONN_DEAD)
			return 0;
		buf_consume(&nl->plain, took);
		if (took == 0 && up == l->above)
			break;
	}
	return 0;
}

static void noise_layer_free(struct p2p_layer *l)
{
	struct noise_layer *nl = (struct noise_layer *)l;
	noise_chan_free(nl->chan);
	buf_wipe(&nl->plain);
	buf_wipe(&nl->cipher);
	free(nl);
}

static const struct p2p_layer_ops noise_ops = {"noise", noise_send, noise_recv, noise_layer_free};

static struct p2p_layer *layer_noise_new(struct p2p_conn *c, noise_chan *chan)
{
	struct noise_layer *nl = calloc(1, sizeof *nl);
	if (!nl)
		return NULL;
	nl->l.ops = &noise_ops;
	nl->l.conn = c;
	nl->chan = chan;
	buf_init(&nl->plain, NOISE_PLAIN_CAP);
	buf_init(&nl->cipher, 16 * (NOISE_MAX_MSG + 2) + 64);
	return &nl->l;
}

/* Puts layer `nl` right above `below` (between it and its current upper layer). */
static void layer_insert_above(struct p2p_layer *below, struct p2p_layer *nl)
{
	nl->below = below;
	nl->above = below->above;
	if (below->above)
		below->above->below = nl;
	below->above = nl;
}

/* ---- muxer layer ------------------------------------------------------------------------------------- */

static void process_events(struct p2p_conn *c);
static void flush_out(struct p2p_conn *c);

static int mux_recv(struct p2p_layer *l, const uint8_t *p, size_t n, size_t *consumed, cg_err *e)
{
	struct p2p_conn *c = l->conn;
	size_t off = 0;
	*consumed = 0;
	while (off < n && c->state == CONN_OPEN) {
		/* mplex has no flow control: while a reader is paused, input stops here (and then in the socket),
		 * so no stream buffer overflows; the whole connection waits, as in go-libp2p's mplex. */
		if (c->n_paused > 0 && c->muxer_is_mplex)
			break;
		size_t used = 0;
		muxer_set_time(c->mux, clock_mono_us());
		int rc = muxer_feed(c->mux, p + off, n - off, &used, e);
		if (rc < 0) {
			/* A protocol violation: the session may have queued a go-away; send it before closing. */
			flush_out(c);
			return rc;
		}
		off += used;
		process_events(c);
		flush_out(c);
		if (used == 0)
			break;
	}
	*consumed = off;
	if (n)
		c->last_active_ms = clock_mono_ms();
	return 0;
}

static void mux_layer_free(struct p2p_layer *l)
{
	free(l);
}

static const struct p2p_layer_ops mux_ops = {"muxer", NULL, mux_recv, mux_layer_free};

/* ---- upgrader ---------------------------------------------------------------------------------------- */

static void conn_open(struct p2p_conn *c, struct p2p_layer *upgrader, const char *proto, cg_err *e);

static int upgrade_recv(struct p2p_layer *l, const uint8_t *p, size_t n, size_t *consumed, cg_err *e)
{
	struct p2p_conn *c = l->conn;
	size_t used = 0;
	int rc;
	*consumed = 0;
	switch (c->state) {
	case CONN_MSS_SEC:
		rc = mss_feed(c->mss, p, n, &used, &c->scratch, e);
		*consumed = used;
		if (rc < 0 || flush_scratch(c, l, e) < 0)
			return rc < 0 ? rc : -CG_E_UNAVAILABLE;
		if (rc != MSS_DONE)
			return 0;
		mss_free(c->mss);
		c->mss = NULL;
		struct noise_cfg cfg = {
			.initiator = !c->inbound,
			.identity_sk = c->sw->sk,
			.expect = c->have_expect ? &c->expect : NULL,
		};
		c->hs = noise_hs_new(&cfg, e);
		if (!c->hs)
			return -CG_E_INTERNAL;
		c->state = CONN_NOISE;
		rc = noise_hs_start(c->hs, &c->scratch, e);
		if (rc < 0 || flush_scratch(c, l, e) < 0)
			return rc < 0 ? rc : -CG_E_UNAVAILABLE;
		/* The initiator's first noise message may already follow in p (pipelined): take it too. */
		if (used < n) {
			size_t more = 0;
			rc = upgrade_recv(l, p + used, n - used, &more, e);
			*consumed += more;
			return rc;
		}
		return 0;
	case CONN_NOISE:
		rc = noise_hs_feed(c->hs, p, n, &used, &c->scratch, e);
		*consumed = used;
		if (flush_scratch(c, l, e) < 0 && rc >= 0)
			return -CG_E_UNAVAILABLE;
		if (rc < 0)
			return rc;
		if (rc != NOISE_DONE)
			return 0;
		{
			const peerid *rp = noise_hs_remote_peer(c->hs);
			if (c->have_expect && !peerid_equal(rp, &c->expect))
				return cg_fail(e, CG_E_FORBIDDEN, "remote peer id differs from the dialed one");
			/* One of our own addresses (or a mirror): a connection to ourselves is useless. */
			if (peerid_equal(rp, &c->sw->self))
				return cg_fail(e, CG_E_CONFLICT, "the remote peer is this node itself");
			peerid_to_string(rp, c->peer_id, sizeof c->peer_id);
			noise_chan *chan = noise_hs_split(c->hs, e);
			if (!chan)
				return -CG_E_INTERNAL;
			struct p2p_layer *nl = layer_noise_new(c, chan);
			if (!nl) {
				noise_chan_free(chan);
				return cg_fail(e, CG_E_INTERNAL, "out of memory");
			}
			layer_insert_above(c->bottom, nl);
		}
		/* Muxer negotiation, inside the secure channel. The rest of p is ciphertext: it goes to the
		 * noise layer on the next round (we return having consumed only the handshake). */
		c->state = CONN_MSS_MUX;
		c->mss = c->inbound ? mss_new_responder(c->sw->muxers, c->sw->n_muxers, e)
				    : mss_new_initiator(c->sw->muxers, c->sw->n_muxers, false, e);
		if (!c->mss)
			return -CG_E_INTERNAL;
		rc = mss_start(c->mss, &c->scratch);
		if (rc < 0 || flush_scratch(c, l, e) < 0)
			return rc < 0 ? rc : -CG_E_UNAVAILABLE;
		return 0;
	case CONN_MSS_MUX:
		rc = mss_feed(c->mss, p, n, &used, &c->scratch, e);
		*consumed = used;
		if (rc < 0 || flush_scratch(c, l, e) < 0)
			return rc < 0 ? rc : -CG_E_UNAVAILABLE;
		if (rc == MSS_DONE)
			conn_open(c, l, mss_selected(c->mss), e);
		return c->state == CONN_DEAD ? -CG_E_INTERNAL : 0;
	default:
		return 0;
	}
}

static void upgrade_free(struct p2p_layer *l)
{
	free(l);
}

static const struct p2p_layer_ops upgrade_ops = {"upgrader", NULL, upgrade_recv, upgrade_free};

static void conn_open(struct p2p_conn *c, struct p2p_layer *upgrader, const char *proto, cg_err *e)
{
	const struct p2p_connmgr_cfg *lim = p2p_connmgr_cfg(c->sw->cm);
	struct muxer_limits ml = {
		.max_streams = (uint32_t)lim->max_streams_per_conn,
		.window = YAMUX_INITIAL_WINDOW,
		/* windows grow for fast streams, by at most the connection's buffer cap in total */
		.window_budget = lim->conn_buf_cap,
		.max_stream_buffer = lim->stream_buf_cap,
		.out_cap = 1u << 20,
	};
	if (strcmp(proto, YAMUX_PROTOCOL) == 0) {
		c->mux = yamux_new(!c->inbound, &ml);
		c->muxer_proto = YAMUX_PROTOCOL;
	} else {
		c->mux = mplex_new(!c->inbound, &ml);
		c->muxer_proto = MPLEX_PROTOCOL;
		c->muxer_is_mplex = true;
	}
	mss_free(c->mss);
	c->mss = NULL;
	struct p2p_layer *ml_layer = calloc(1, sizeof *ml_layer);
	if (!c->mux || !ml_layer) {
		free(ml_layer);
		cg_fail(e, CG_E_INTERNAL, "out of memory");
		p2p_conn_fail(c, e, "muxer");
		return;
	}
	ml_layer->ops = &mux_ops;
	ml_layer->conn = c;
	/* Replace the upgrader (top) with the muxer layer; the upgrader is freed at once, which is safe: its
	 * recv returns right after this without touching itself. */
	ml_layer->below = upgrader->below;
	upgrader->below->above = ml_layer;
	c->top = ml_layer;
	upgrader->ops->free(upgrader);
	c->state = CONN_OPEN;
	if (c->timer)
		evtimer_del(c->timer);
	c->last_active_ms = clock_mono_ms();
	/* yamux grows the windows of fast streams relative to the round-trip time: measure it once. */
	muxer_set_time(c->mux, clock_mono_us());
	if (!c->muxer_is_mplex && muxer_ping(c->mux, RTT_PROBE, NULL) == 0)
		c->rtt_probe_us = clock_mono_us();
	p2p_swarm_conn_established(c);
}

/* ---- lifecycle --------------------------------------------------------------------------------------- */

static void handshake_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct p2p_conn *c = arg;
	cg_err e = {0};
	cg_fail(&e, CG_E_TIMEOUT, "handshake not finished within %lld ms",
		(long long)p2p_connmgr_cfg(c->sw->cm)->handshake_ms);
	p2p_conn_fail(c, &e, NULL);
	p2p_swarm_schedule_reap(c->sw);
}

struct p2p_conn *p2p_conn_new(struct p2p_swarm *sw, bool inbound)
{
	struct p2p_conn *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->sw = sw;
	c->inbound = inbound;
	c->fd = -1;
	c->state = CONN_CONNECTING;
	buf_init(&c->scratch, 2 * (NOISE_MAX_MSG + 2));
	c->timer = evtimer_new(sw->base, handshake_timeout, c);
	if (!c->timer) {
		free(c);
		return NULL;
	}
	int64_t ms = p2p_connmgr_cfg(sw->cm)->handshake_ms;
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
	evtimer_add(c->timer, &tv);
	c->next = sw->conns;
	if (sw->conns)
		sw->conns->prev = c;
	sw->conns = c;
	c->last_active_ms = clock_mono_ms();
	return c;
}

void p2p_conn_connected(struct p2p_conn *c)
{
	cg_err e = {0};
	struct p2p_layer *up = calloc(1, sizeof *up);
	if (!up) {
		cg_fail(&e, CG_E_INTERNAL, "out of memory");
		p2p_conn_fail(c, &e, NULL);
		return;
	}
	up->ops = &upgrade_ops;
	up->conn = c;
	up->below = c->bottom;
	c->bottom->above = up;
	c->top = up;
	c->state = CONN_MSS_SEC;
	const char *sec[] = {NOISE_PROTOCOL};
	c->mss = c->inbound ? mss_new_responder(sec, 1, &e) : mss_new_initiator(sec, 1, false, &e);
	if (!c->mss || mss_start(c->mss, &c->scratch) < 0 || flush_scratch(c, up, &e) < 0) {
		p2p_conn_fail(c, &e, "upgrade");
		return;
	}
}

static void dial_fail_cb(struct p2p_conn *c, const cg_err *err)
{
	p2p_dial_cb cb = c->dial_cb;
	c->dial_cb = NULL;
	if (cb)
		cb(NULL, err, c->dial_arg);
}

void p2p_conn_fail(struct p2p_conn *c, const cg_err *err, const char *what)
{
	if (c->state == CONN_DEAD)
		return;
	char reason[sizeof c->reason];
	if (what)
		snprintf(reason, sizeof reason, "%.40s: %.150s", what, err && err->msg[0] ? err->msg : "failed");
	else
		snprintf(reason, sizeof reason, "%.190s", err && err->msg[0] ? err->msg : "failed");
	/* A pending dial learns the original code (E_FORBIDDEN for a wrong peer id, E_TIMEOUT...). */
	c->fail_code = err && err->code ? err->code : CG_E_UNAVAILABLE;
	p2p_conn_close(c, reason);
}

void p2p_conn_close(struct p2p_conn *c, const char *reason)
{
	if (c->state == CONN_DEAD)
		return;
	struct p2p_swarm *sw = c->sw;
	bool was_open = c->state == CONN_OPEN;
	snprintf(c->reason, sizeof c->reason, "%s", reason ? reason : "closed");
	if (was_open || c->state > CONN_MSS_SEC)
		log_info("p2p", "connection closed", "peer=%s addr=%s reason=\"%s\"", c->peer_id[0] ? c->peer_id : "-",
			 c->remote_addr, c->reason);
	else
		log_debug("p2p", "connection failed", "addr=%s reason=\"%s\"", c->remote_addr, c->reason);
	/* Best effort: push out what is queued (a go-away, the last frames) before the socket closes. */
	if (c->bev && c->fd >= 0)
		evbuffer_write(bufferevent_get_output(c->bev), c->fd);
	c->state = CONN_DEAD;
	p2p_tcp_forget(c);
	if (c->timer)
		evtimer_del(c->timer);
	if (c->id_timer)
		evtimer_del(c->id_timer);
	if (c->bev)
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	char sreason[200];
	snprintf(sreason, sizeof sreason, "connection closed: %.170s", c->reason);
	while (c->streams)
		p2p_stream_kill(c->streams, sreason);
	if (c->dial_pending) {
		p2p_connmgr_dial_end(sw->cm, c->dial_key, 0, clock_mono_ms());
		c->dial_pending = false;
		c->counted = false;
	} else if (c->counted) {
		p2p_connmgr_conn_closed(sw->cm);
		c->counted = false;
	}
	if (c->peer_counted) {
		struct p2p_peer *p = p2p_peerstore_get(sw->ps, c->peer_id);
		if (p && p->connections > 0)
			p->connections--;
		c->peer_counted = false;
	}
	if (c->dial_cb) {
		cg_err e = {0};
		cg_fail(&e, c->fail_code ? c->fail_code : CG_E_UNAVAILABLE, "dial failed: %s", c->reason);
		dial_fail_cb(c, &e);
	}
	if (was_open)
		p2p_swarm_emit(sw, P2P_EV_CONN_DOWN, c, c->reason);
	/* Unlink now; the memory goes at the next safe point. */
	if (c->prev)
		c->prev->next = c->next;
	else if (sw->conns == c)
		sw->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
	if (!c->in_reap) {
		c->in_reap = true;
		c->reap_next = sw->reap_conns;
		sw->reap_conns = c;
	}
	p2p_swarm_schedule_reap(sw);
}

void p2p_conn_free_now(struct p2p_conn *c)
{
	while (c->streams)
		p2p_stream_free_now(c->streams);
	p2p_tcp_forget(c);
	for (struct p2p_layer *l = c->bottom; l;) {
		struct p2p_layer *up = l->above;
		l->ops->free(l);
		l = up;
	}
	c->bottom = c->top = NULL;
	if (c->bev)
		bufferevent_free(c->bev);
	if (c->timer)
		event_free(c->timer);
	if (c->id_timer)
		event_free(c->id_timer);
	mss_free(c->mss);
	noise_hs_free(c->hs);
	muxer_free(c->mux);
	buf_wipe(&c->scratch);
	free(c);
}

/* ---- the muxer pump ---------------------------------------------------------------------------------- */

/* Moves the muxer's output into the secure channel while the socket output is under its cap. */
static void flush_out(struct p2p_conn *c)
{
	if (c->state != CONN_OPEN && !(c->state == CONN_DEAD && c->bev))
		return;
	if (!c->mux || !c->top)
		return;
	size_t cap = p2p_connmgr_cfg(c->sw->cm)->conn_buf_cap;
	struct p2p_layer *below = c->top->below;
	while (p2p_tcp_out_pending(c) < cap) {
		size_t n = 0;
		const uint8_t *p = muxer_out_peek(c->mux, &n);
		if (!n)
			break;
		if (n > 4 * NOISE_MAX_PLAINTEXT)
			n = 4 * NOISE_MAX_PLAINTEXT;
		cg_err e = {0};
		if (below->ops->send(below, p, n, &e) < 0) {
			if (c->state != CONN_DEAD)
				p2p_conn_fail(c, &e, "send");
			return;
		}
		muxer_out_consume(c->mux, n);
	}
}

static void process_events(struct p2p_conn *c)
{
	struct muxer_event ev;
	/* Bounded per round: the muxer's event queue is bounded and refills only when fed. */
	while (c->state == CONN_OPEN && muxer_poll(c->mux, &ev) == 1) {
		struct p2p_stream *s = ev.user;
		switch (ev.type) {
		case MUXER_EV_INBOUND: {
			cg_err e = {0};
			if (p2p_connmgr_stream_ok(c->sw->cm, c->n_streams, &e) < 0) {
				log_debug("p2p", "inbound stream refused", "peer=%s reason=\"%s\"", c->peer_id, e.msg);
				muxer_reset(c->mux, ev.id, NULL);
				break;
			}
			s = p2p_stream_new(c, ev.id, true);
			if (!s) {
				muxer_reset(c->mux, ev.id, NULL);
				break;
			}
			muxer_set_user(c->mux, ev.id, s);
			c->last_active_ms = clock_mono_ms();
			break;
		}
		case MUXER_EV_GOAWAY:
			log_debug("p2p", "peer sent go-away", "peer=%s code=%u", c->peer_id, ev.code);
			break;
		case MUXER_EV_PONG:
			if (ev.code == RTT_PROBE && c->rtt_probe_us) {
				int64_t rtt = clock_mono_us() - c->rtt_probe_us;
				muxer_set_rtt(c->mux, rtt > 0 ? rtt : 1);
				c->rtt_probe_us = 0;
			}
			break;
		default:
			if (s)
				p2p_stream_on_mux_event(s, &ev);
			break;
		}
	}
}

void p2p_conn_pump(struct p2p_conn *c)
{
	if (c->state != CONN_OPEN)
		return;
	/* A few rounds: flushing streams produces output, output makes room for more stream writes, events
	 * arrive as windows reopen. Everything left is picked up by the next socket event. */
	muxer_set_time(c->mux, clock_mono_us());
	for (int round = 0; round < 4 && c->state == CONN_OPEN; round++) {
		process_events(c);
		for (struct p2p_stream *s = c->streams; s && c->state == CONN_OPEN;) {
			struct p2p_stream *next = s->next;
			p2p_stream_service(s);
			s = next;
		}
		flush_out(c);
		size_t n = 0;
		muxer_out_peek(c->mux, &n);
		if (n == 0 || p2p_tcp_out_pending(c) >= p2p_connmgr_cfg(c->sw->cm)->conn_buf_cap)
			break;
	}
}

void p2p_conn_on_output_drained(struct p2p_conn *c)
{
	if (c->state != CONN_OPEN)
		return;
	flush_out(c);
	p2p_conn_pump(c);
}

void p2p_conn_flush(struct p2p_conn *c)
{
	flush_out(c);
}

bool p2p_conn_input_pending(struct p2p_conn *c)
{
	for (struct p2p_layer *l = c->bottom; l; l = l->above)
		if (l->ops == &noise_ops && ((struct noise_layer *)l)->plain.len > 0)
			return true;
	return false;
}

/* ---- accessors --------------------------------------------------------------------------------------- */

const char *p2p_conn_peer_id(const struct p2p_conn *c)
{
	return c->peer_id;
}

const char *p2p_conn_remote_addr(const struct p2p_conn *c)
{
	return c->remote_addr;
}

const char *p2p_conn_muxer(const struct p2p_conn *c)
{
	return c->muxer_proto ? c->muxer_proto : "";
}

bool p2p_conn_inbound(const struct p2p_conn *c)
{
	return c->inbound;
}

int p2p_conn_stream_count(const struct p2p_conn *c)
{
	return c->n_streams;
}
