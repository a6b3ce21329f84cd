/* stream — streams on a connection's muxer: multistream-select per stream, dispatch to the handler
 * registered for the agreed protocol, a capped send queue with backpressure, half-close and reset.
 *
 * Callbacks into the application run only from event processing (p2p_stream_service and the muxer event
 * path), never from inside p2p_stream_write / close / reset / pause, so those are safe anywhere. A stream
 * that ends is unlinked at once and its last callback (on_close, or open_cb with an error) runs at the
 * swarm's next safe point, right before it is freed. */
#define P2P_SWARM_INTERNAL
#include "p2p/swarm_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"

/* One loop thread: received bytes pass through this buffer on their way to on_data. */
static uint8_t rxbuf[P2P_READ_CHUNK];

static size_t cap_of(const struct p2p_stream *s)
{
	return p2p_connmgr_cfg(s->conn->sw->cm)->stream_buf_cap;
}

struct p2p_stream *p2p_stream_new(struct p2p_conn *c, uint64_t id, bool inbound)
{
	struct p2p_stream *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->conn = c;
	s->id = id;
	s->inbound = inbound;
	s->state = ST_NEGOTIATING;
	s->in_mux = true;
	buf_init(&s->tx, cap_of(s));
	buf_init(&s->early, P2P_READ_CHUNK + MSS_MAX_MSG);
	cg_err e = {0};
	if (inbound) {
		const char *protos[P2P_MAX_HANDLERS];
		size_t n = p2p_swarm_protocols(c->sw, protos, P2P_MAX_HANDLERS);
		s->mss = mss_new_responder(protos, n, &e);
		if (!s->mss || mss_start(s->mss, &s->tx) < 0) {
			mss_free(s->mss);
			buf_done(&s->tx);
			buf_done(&s->early);
			free(s);
			return NULL;
		}
	}
	s->next = c->streams;
	if (c->streams)
		c->streams->prev = s;
	c->streams = s;
	c->n_streams++;
	return s;
}

/* Takes a live stream off its connection's list. */
static void unlink_stream(struct p2p_stream *s)
{
	struct p2p_conn *c = s->conn;
	if (s->prev)
		s->prev->next = s->next;
	else if (c->streams == s)
		c->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->next = s->prev = NULL;
	c->n_streams--;
}

void p2p_stream_free_now(struct p2p_stream *s)
{
	if (s->state != ST_DEAD)
		unlink_stream(s); /* still linked: the whole connection is being freed */
	mss_free(s->mss);
	buf_done(&s->tx);
	buf_done(&s->early);
	free(s);
}

/* Ends a stream: unlink it from its connection and hand it to the reaper, which runs its last callback. */
void p2p_stream_kill(struct p2p_stream *s, const char *reason)
{
	if (s->state == ST_DEAD)
		return;
	struct p2p_conn *c = s->conn;
	if (s->in_mux && c->mux && c->state == CONN_OPEN)
		muxer_reset(c->mux, s->id, NULL);
	s->in_mux = false;
	if (s->paused)
		c->n_paused--;
	snprintf(s->reason, sizeof s->reason, "%s", reason ? reason : "");
	s->cbs.on_data = NULL;
	s->state = ST_DEAD;
	unlink_stream(s);
	c->last_active_ms = clock_mono_ms();
	s->reap_next = c->sw->reap_streams;
	c->sw->reap_streams = s;
	p2p_swarm_schedule_reap(c->sw);
}

/* Runs the last callback of a dead stream (from the reaper). */
void p2p_stream_last_call(struct p2p_stream *s)
{
	const char *reason = s->reason[0] ? s->reason : NULL;
	if (s->open_cb) {
		p2p_open_cb cb = s->open_cb;
		s->open_cb = NULL;
		cg_err e = {0};
		cg_fail(&e, strstr(s->reason, "not supported") ? CG_E_NOT_FOUND : CG_E_UNAVAILABLE, "%s",
			reason ? reason : "stream closed during protocol negotiation");
		cb(NULL, &e, s->open_arg);
	} else if (s->cbs.on_close) {
		s->cbs.on_close(s, reason, s->arg);
	}
}

/* Moves the send queue into the muxer (which may take only part of it: yamux window, output cap). */
static void stream_flush(struct p2p_stream *s)
{
	struct p2p_conn *c = s->conn;
	if (s->state == ST_DEAD || !s->in_mux || c->state != CONN_OPEN)
		return;
	if (s->tx.len > s->tx_off) {
		cg_err e = {0};
		long w = muxer_write(c->mux, s->id, s->tx.data + s->tx_off, s->tx.len - s->tx_off, &e);
		if (w < 0) {
			p2p_stream_kill(s, e.msg[0] ? e.msg : "write failed");
			return;
		}
		/* Consumed bytes are skipped, not moved: the queue is compacted only when an append needs it. */
		s->tx_off += (size_t)w;
		if (s->tx_off == s->tx.len) {
			buf_reset(&s->tx);
			s->tx_off = 0;
		}
	}
	if (s->tx.len == s->tx_off && s->close_pending && !s->write_closed) {
		muxer_close(c->mux, s->id, NULL);
		s->write_closed = true;
	}
	p2p_conn_flush(c);
}

/* The negotiation finished: hand the stream to its handler (inbound) or its opener (outbound). */
static void negotiated(struct p2p_stream *s)
{
	struct p2p_conn *c = s->conn;
	snprintf(s->proto, sizeof s->proto, "%s", mss_selected(s->mss));
	mss_free(s->mss);
	s->mss = NULL;
	s->state = ST_OPEN;
	if (s->inbound) {
		const struct p2p_handler *h = p2p_swarm_find_handler(c->sw, s->proto);
		if (!h) {
			p2p_stream_kill(s, "no handler");
			return;
		}
		h->fn(s, h->arg);
	} else {
		p2p_open_cb cb = s->open_cb;
		s->open_cb = NULL;
		if (cb)
			cb(s, NULL, s->open_arg);
	}
}

static void deliver(struct p2p_stream *s, const uint8_t *p, size_t n)
{
	if (s->cbs.on_data)
		s->cbs.on_data(s, p, n, s->arg);
}

/* Reads what the muxer holds for this stream: into the negotiator first, then to on_data. */
static void drain_input(struct p2p_stream *s)
{
	struct p2p_conn *c = s->conn;
	while (s->state != ST_DEAD && c->state == CONN_OPEN) {
		if (s->state == ST_OPEN && s->early.len) {
			if (s->paused)
				return;
			/* Copy out first: on_data may do anything, including resetting the stream. */
			size_t n = s->early.len;
			memcpy(rxbuf, s->early.data, n);
			buf_reset(&s->early);
			deliver(s, rxbuf, n);
			continue;
		}
		if (s->state == ST_OPEN && s->paused)
			return;
		bool eof = false;
		cg_err e = {0};
		size_t room = s->state == ST_NEGOTIATING ? MSS_MAX_MSG : sizeof rxbuf;
		long n = muxer_read(c->mux, s->id, rxbuf, room, &eof, &e);
		if (n < 0) {
			/* Gone from the muxer: its terminal event (CLOSED or RESET) is queued and ends the stream. */
			return;
		}
		if (n > 0 && s->state == ST_OPEN) {
			deliver(s, rxbuf, (size_t)n);
			if (!eof)
				continue;
		}
		/* While negotiating, the bytes that came with the end go to the negotiator first: the muxer keeps
		 * reporting eof on the next read (we have not closed our side, so the stream is still there). */
		if (eof && !(n > 0 && s->state == ST_NEGOTIATING)) {
			/* After the last bytes: the stream may be gone from the muxer now; never read it again. */
			if (s->state == ST_DEAD || s->eof_seen)
				return;
			s->eof_seen = true;
			if (s->state == ST_NEGOTIATING) {
				p2p_stream_kill(s, "stream closed during protocol negotiation");
				return;
			}
			if (s->cbs.on_eof)
				s->cbs.on_eof(s, s->arg);
			return;
		}
		if (n == 0)
			return;
		/* Negotiating: the negotiator keeps partial messages in `early` until they are complete. */
		if (buf_append(&s->early, rxbuf, (size_t)n) < 0) {
			p2p_stream_kill(s, "multistream-select: message too long");
			return;
		}
		size_t used = 0;
		int rc = mss_feed(s->mss, s->early.data, s->early.len, &used, &s->tx, &e);
		buf_consume(&s->early, used);
		if (s->tx.len > s->tx_off)
			stream_flush(s);
		if (rc < 0) {
			char r[160];
			if (rc == -CG_E_NOT_FOUND)
				snprintf(r, sizeof r, "protocol not supported by peer: %.100s", e.msg);
			else
				snprintf(r, sizeof r, "multistream-select: %.100s", e.msg);
			p2p_stream_kill(s, r);
			return;
		}
		if (rc == MSS_DONE) {
			negotiated(s);
			continue; /* `early` now holds the first application bytes, if any */
		}
	}
}

static void maybe_writable(struct p2p_stream *s)
{
	if (s->state == ST_OPEN && s->want_writable && p2p_stream_write_space(s) >= cap_of(s) / 2) {
		s->want_writable = false;
		if (s->cbs.on_writable)
			s->cbs.on_writable(s, s->arg);
	}
}

void p2p_stream_on_mux_event(struct p2p_stream *s, const struct muxer_event *ev)
{
	if (s->state == ST_DEAD)
		return;
	switch (ev->type) {
	case MUXER_EV_READABLE:
	case MUXER_EV_EOF:
		drain_input(s);
		break;
	case MUXER_EV_WRITABLE:
		stream_flush(s);
		maybe_writable(s);
		break;
	case MUXER_EV_RESET:
		s->in_mux = false;
		p2p_stream_kill(s, ev->reason ? ev->reason : "reset by peer");
		break;
	case MUXER_EV_CLOSED:
		/* Clean end: every byte was read. The muxer may have dropped the EOF event as stale (the stream
		 * finished in the same input), so report the end of input here if it was not seen yet. */
		s->in_mux = false;
		if (s->state == ST_OPEN && !s->eof_seen) {
			s->eof_seen = true;
			if (s->cbs.on_eof)
				s->cbs.on_eof(s, s->arg);
		}
		if (s->state == ST_NEGOTIATING)
			p2p_stream_kill(s, "stream closed during protocol negotiation");
		else
			p2p_stream_kill(s, NULL);
		break;
	default:
		break;
	}
}

/* From the pump: flush, resume delivery after a pause, report write space. */
void p2p_stream_service(struct p2p_stream *s)
{
	stream_flush(s);
	if (s->state == ST_DEAD)
		return;
	if (s->state == ST_OPEN && !s->paused)
		drain_input(s);
	if (s->state != ST_DEAD)
		maybe_writable(s);
}

/* ---- public API -------------------------------------------------------------------------------------- */

int p2p_conn_open_stream(struct p2p_conn *c, const char *proto, p2p_open_cb cb, void *arg, cg_err *e)
{
	if (c->state != CONN_OPEN)
		return cg_fail(e, CG_E_UNAVAILABLE, "connection is not open");
	int rc = p2p_connmgr_stream_ok(c->sw->cm, c->n_streams, e);
	if (rc < 0)
		return rc;
	uint64_t id;
	rc = muxer_open(c->mux, &id, e);
	if (rc < 0)
		return rc;
	struct p2p_stream *s = p2p_stream_new(c, id, false);
	if (!s) {
		muxer_reset(c->mux, id, NULL);
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	}
	const char *list[] = {proto};
	cg_err le = {0};
	s->mss = mss_new_initiator(list, 1, false, &le);
	if (!s->mss || mss_start(s->mss, &s->tx) < 0) {
		/* Not handed out yet: freed at once, without callbacks. */
		muxer_reset(c->mux, id, NULL);
		p2p_stream_free_now(s);
		return cg_fail(e, le.code ? le.code : CG_E_INVALID_ARGUMENT, "cannot open stream: %s",
			       le.msg[0] ? le.msg : "bad protocol id");
	}
	muxer_set_user(c->mux, id, s);
	s->open_cb = cb;
	s->open_arg = arg;
	c->last_active_ms = clock_mono_ms();
	stream_flush(s);
	return 0;
}

void p2p_stream_set_cbs(struct p2p_stream *s, const struct p2p_stream_cbs *cbs, void *arg)
{
	s->cbs = *cbs;
	s->arg = arg;
	/* Bytes that came with the negotiation are delivered by the next service round. */
	if (s->early.len || !s->paused) {
		s->conn->want_pump = true;
		p2p_swarm_schedule_reap(s->conn->sw);
	}
}

int p2p_stream_write(struct p2p_stream *s, const uint8_t *p, size_t n, cg_err *e)
{
	if (s->state != ST_OPEN || s->close_pending || s->conn->state != CONN_OPEN)
		return cg_fail(e, CG_E_CONFLICT, "stream is closed for writing");
	if (n > p2p_stream_write_space(s)) {
		s->want_writable = true;
		return cg_fail(e, CG_E_QUOTA_EXCEEDED, "stream send buffer full (%zu bytes queued)",
			       p2p_stream_write_pending(s));
	}
	if (s->tx.len + n > s->tx.cap) {
		buf_consume(&s->tx, s->tx_off);
		s->tx_off = 0;
	}
	if (buf_append(&s->tx, p, n) < 0)
		return cg_fail(e, CG_E_QUOTA_EXCEEDED, "stream send buffer full");
	stream_flush(s);
	if (s->state == ST_OPEN && p2p_stream_write_space(s) < cap_of(s) / 2)
		s->want_writable = true;
	return 0;
}

size_t p2p_stream_write_space(const struct p2p_stream *s)
{
	return s->tx.cap - (s->tx.len - s->tx_off);
}

size_t p2p_stream_write_pending(const struct p2p_stream *s)
{
	return s->tx.len - s->tx_off;
}

void p2p_stream_close_write(struct p2p_stream *s)
{
	if (s->state == ST_DEAD || s->close_pending)
		return;
	s->close_pending = true;
	stream_flush(s);
}

void p2p_stream_reset(struct p2p_stream *s, const char *reason)
{
	p2p_stream_kill(s, reason ? reason : "reset");
}

void p2p_stream_pause(struct p2p_stream *s, bool paused)
{
	if (s->paused == paused || s->state == ST_DEAD)
		return;
	s->paused = paused;
	s->conn->n_paused += paused ? 1 : -1;
	if (!paused && s->state == ST_OPEN) {
		s->conn->want_pump = true;
		p2p_swarm_schedule_reap(s->conn->sw);
	}
}

const char *p2p_stream_protocol(const struct p2p_stream *s)
{
	return s->proto;
}

struct p2p_conn *p2p_stream_conn(struct p2p_stream *s)
{
	return s->conn;
}

struct p2p_swarm *p2p_stream_swarm(struct p2p_stream *s)
{
	return s->conn->sw;
}
