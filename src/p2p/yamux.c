/* yamux session: frame codec plus the stream state machine with per-stream flow control. */
#include "p2p/yamux.h"

#include <stdlib.h>
#include <string.h>

#define CG_P2P_MUX_INTERNAL
#include "p2p/mux_core.h"

#define MAX_DATA_FRAME (64u * 1024u) /* our data frames; js-libp2p-yamux sends the same size */
#define MAX_WINDOW (16u * 1024u * 1024u) /* largest receive window per stream (go and js yamux: 16 MiB) */

struct yamux {
	struct muxc c;
	bool client;
	uint64_t next_id;
	/* input state: inside the payload of a data frame */
	bool in_payload;
	uint32_t remaining;
	uint32_t target;     /* stream receiving the payload; 0 = discard */
	uint16_t tail_flags; /* FIN/RST of the current data frame, applied after its payload */
	uint32_t tail_id;
};

void yamux_hdr_encode(uint8_t out[static YAMUX_HDR_LEN], const struct yamux_hdr *h)
{
	out[0] = h->version;
	out[1] = h->type;
	out[2] = (uint8_t)(h->flags >> 8);
	out[3] = (uint8_t)h->flags;
	for (int i = 0; i < 4; i++) {
		out[4 + i] = (uint8_t)(h->stream >> (24 - 8 * i));
		out[8 + i] = (uint8_t)(h->length >> (24 - 8 * i));
	}
}

int yamux_hdr_decode(const uint8_t *p, size_t n, struct yamux_hdr *h, cg_err *e)
{
	if (n < YAMUX_HDR_LEN)
		return 0;
	if (p[0] != 0)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "yamux: unsupported version");
	if (p[1] > YAMUX_GO_AWAY)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "yamux: unknown frame type");
	h->version = 0;
	h->type = p[1];
	h->flags = (uint16_t)(p[2] << 8 | p[3]);
	h->stream = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7];
	h->length = (uint32_t)p[8] << 24 | (uint32_t)p[9] << 16 | (uint32_t)p[10] << 8 | p[11];
	return YAMUX_HDR_LEN;
}

static int send_hdr(struct yamux *y, uint8_t type, uint16_t flags, uint32_t id, uint32_t len)
{
	uint8_t b[YAMUX_HDR_LEN];
	struct yamux_hdr h = {0, type, flags, id, len};
	yamux_hdr_encode(b, &h);
	return muxc_out_put(&y->c, b, sizeof b);
}

static int fail(struct yamux *y, uint32_t code, const char *why, cg_err *e)
{
	if (!y->c.failed) {
		y->c.failed = true;
		send_hdr(y, YAMUX_GO_AWAY, 0, 0, code);
	}
	return cg_fail(e, CG_E_INVALID_ARGUMENT, "yamux: %s", why);
}

static bool can_write(const struct muxc_stream *s)
{
	return s->send_window > 0 && !s->local_closed;
}

/* Stream reset decided here (not by the application): tell the peer and the application. */
static void reset_stream(struct yamux *y, struct muxc_stream *s, const char *why)
{
	send_hdr(y, YAMUX_WINDOW_UPDATE, YAMUX_RST, (uint32_t)s->id, 0);
	muxc_event(&y->c, MUXER_EV_RESET, s, 0, why);
	muxc_remove(&y->c, s);
}

/* A SYN from the peer. *out = the new stream, or NULL when refused (its frames are then discarded). */
static int accept_syn(struct yamux *y, uint32_t id, struct muxc_stream **out, cg_err *e)
{
	*out = NULL;
	/* Clients (dialers) open odd ids, servers even ones: the peer must use the other parity. */
	if ((id & 1) != (y->client ? 0u : 1u))
		return fail(y, YAMUX_GOAWAY_PROTOCOL, "SYN with the wrong stream id parity", e);
	if (muxc_find(&y->c, id))
		return fail(y, YAMUX_GOAWAY_PROTOCOL, "SYN for a stream already open", e);
	if (y->c.goaway_local || y->c.count >= y->c.lim.max_streams) {
		send_hdr(y, YAMUX_WINDOW_UPDATE, YAMUX_RST, id, 0);
		return 0;
	}
	struct muxc_stream *s = muxc_add(&y->c, id);
	if (!s)
		return fail(y, YAMUX_GOAWAY_INTERNAL, "out of memory", e);
	s->send_window = YAMUX_INITIAL_WINDOW;
	s->recv_window = s->win = y->c.lim.window;
	s->epoch_us = y->c.now_us;
	s->acked = true;
	/* The ACK also announces a window above the spec's initial one, when configured. */
	send_hdr(y, YAMUX_WINDOW_UPDATE, YAMUX_ACK, id, y->c.lim.window - YAMUX_INITIAL_WINDOW);
	muxc_event(&y->c, MUXER_EV_INBOUND, s, 0, NULL);
	*out = s;
	return 0;
}

static void tail_flags(struct yamux *y, uint32_t id, uint16_t flags)
{
	struct muxc_stream *s = muxc_find(&y->c, id);
	if (!s || !(flags & (YAMUX_FIN | YAMUX_RST)))
		return;
	if (flags & YAMUX_RST) {
		muxc_event(&y->c, MUXER_EV_RESET, s, 0, "reset by remote");
		muxc_remove(&y->c, s);
		return;
	}
	if (!s->remote_closed) {
		s->remote_closed = true;
		muxc_event(&y->c, MUXER_EV_EOF, s, 0, NULL);
		muxc_maybe_finish(&y->c, s);
	}
}

static int on_frame(struct yamux *y, const struct yamux_hdr *h, cg_err *e)
{
	struct muxc_stream *s = NULL;
	int rc;
	switch (h->type) {
	case YAMUX_PING:
		if (h->flags & YAMUX_SYN)
			send_hdr(y, YAMUX_PING, YAMUX_ACK, 0, h->length);
		else if (h->flags & YAMUX_ACK)
			muxc_event_session(&y->c, MUXER_EV_PONG, h->length);
		return 0;
	case YAMUX_GO_AWAY:
		if (!y->c.goaway_remote) {
			y->c.goaway_remote = true;
			muxc_event_session(&y->c, MUXER_EV_GOAWAY, h->length);
		}
		return 0;
	}
	if (h->stream == 0)
		return fail(y, YAMUX_GOAWAY_PROTOCOL, "stream frame on the session id", e);
	if (h->flags & YAMUX_SYN) {
		if ((rc = accept_syn(y, h->stream, &s, e)))
			return rc;
	} else {
		s = muxc_find(&y->c, h->stream);
	}
	if (s && (h->flags & YAMUX_ACK) && s->outbound)
		s->acked = true;
	if (h->type == YAMUX_WINDOW_UPDATE) {
		if (s) {
			if ((uint64_t)s->send_window + h->length > UINT32_MAX)
				return fail(y, YAMUX_GOAWAY_PROTOCOL, "send window overflow", e);
			s->send_window += h->length;
			if (s->want_writable && can_write(s) && muxc_out_room(&y->c) > YAMUX_HDR_LEN) {
				s->want_writable = false;
				muxc_event(&y->c, MUXER_EV_WRITABLE, s, 0, NULL);
			}
		}
		tail_flags(y, h->stream, h->flags);
		return 0;
	}
	/* YAMUX_DATA */
	if (s && s->remote_closed) {
		reset_stream(y, s, "data after the remote closed");
		s = NULL;
	}
	if (s) {
		if (h->length > s->recv_window)
			return fail(y, YAMUX_GOAWAY_PROTOCOL, "receive window exceeded", e);
		s->recv_window -= h->length;
	}
	y->in_payload = true;
	y->remaining = h->length;
	y->target = s ? h->stream : 0;
	y->tail_flags = h->flags;
	y->tail_id = h->stream;
	return 0;
}

static int y_feed(muxer *m, const uint8_t *in, size_t n, size_t *consumed, cg_err *e)
{
	struct yamux *y = (struct yamux *)m;
	size_t off = 0;
	int rc = 0;
	*consumed = 0;
	if (y->c.failed)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "yamux: session failed earlier");
	for (;;) {
		if (y->in_payload) {
			if (y->remaining == 0) {
				y->in_payload = false;
				tail_flags(y, y->tail_id, y->tail_flags);
				continue;
			}
			if (off == n)
				break;
			size_t chunk = n - off < y->remaining ? n - off : y->remaining;
			struct muxc_stream *s = y->target ? muxc_find(&y->c, y->target) : NULL;
			if (s) {
				/* Cannot exceed the cap: the window check bounds the unread bytes. */
				if (muxc_q_append(&s->rq, in + off, chunk, s->win) != 0) {
					rc = fail(y, YAMUX_GOAWAY_INTERNAL, "receive buffer allocation failed", e);
					break;
				}
				muxc_event(&y->c, MUXER_EV_READABLE, s, 0, NULL);
			}
			off += chunk;
			y->remaining -= (uint32_t)chunk;
			continue;
		}
		if (!muxc_can_feed(&y->c) || n - off < YAMUX_HDR_LEN)
			break;
		struct yamux_hdr h;
		if (yamux_hdr_decode(in + off, n - off, &h, e) < 0) {
			rc = fail(y, YAMUX_GOAWAY_PROTOCOL, "bad frame header", e);
			break;
		}
		off += YAMUX_HDR_LEN;
		if ((rc = on_frame(y, &h, e)))
			break;
	}
	*consumed = off;
	return rc;
}

static const uint8_t *y_out_peek(muxer *m, size_t *n)
{
	return muxc_out_peek(&((struct yamux *)m)->c, n);
}

static void y_out_consume(muxer *m, size_t n)
{
	muxc_out_consume(&((struct yamux *)m)->c, n, can_write);
}

static int y_poll(muxer *m, struct muxer_event *ev)
{
	return muxc_poll(&((struct yamux *)m)->c, ev);
}

static int y_open(muxer *m, uint64_t *id, cg_err *e)
{
	struct yamux *y = (struct yamux *)m;
	if (y->c.failed || y->c.goaway_local || y->c.goaway_remote)
		return cg_fail(e, CG_E_UNAVAILABLE, "yamux: session is going away");
	if (y->c.count >= y->c.lim.max_streams)
		return cg_fail(e, CG_E_QUOTA_EXCEEDED, "yamux: too many streams");
	if (y->next_id > UINT32_MAX)
		return cg_fail(e, CG_E_UNAVAILABLE, "yamux: stream ids exhausted");
	struct muxc_stream *s = muxc_add(&y->c, y->next_id);
	if (!s)
		return cg_fail(e, CG_E_INTERNAL, "yamux: out of memory");
	if (send_hdr(y, YAMUX_WINDOW_UPDATE, YAMUX_SYN, (uint32_t)s->id, y->c.lim.window - YAMUX_INITIAL_WINDOW)) {
		muxc_remove(&y->c, s);
		return cg_fail(e, CG_E_UNAVAILABLE, "yamux: output buffer full");
	}
	s->outbound = true;
	s->send_window = YAMUX_INITIAL_WINDOW;
	s->recv_window = s->win = y->c.lim.window;
	s->epoch_us = y->c.now_us;
	y->next_id += 2;
	*id = s->id;
	return 0;
}

static long y_write(muxer *m, uint64_t id, const uint8_t *p, size_t n, cg_err *e)
{
	struct yamux *y = (struct yamux *)m;
	if (y->c.failed)
		return cg_fail(e, CG_E_UNAVAILABLE, "yamux: session failed");
	struct muxc_stream *s = muxc_find(&y->c, id);
	if (!s)
		return cg_fail(e, CG_E_NOT_FOUND, "yamux: no such stream");
	if (s->local_closed)
		return cg_fail(e, CG_E_CONFLICT, "yamux: stream closed for writing");
	size_t total = 0;
	while (total < n) {
		size_t room = muxc_out_room(&y->c);
		size_t k = n - total;
		if (k > s->send_window)
			k = s->send_window;
		if (k > MAX_DATA_FRAME)
			k = MAX_DATA_FRAME;
		if (room <= YAMUX_HDR_LEN) {
			y->c.out_blocked = true;
			break;
		}
		if (k > room - YAMUX_HDR_LEN) {
			k = room - YAMUX_HDR_LEN;
			y->c.out_blocked = true;
		}
		if (k == 0)
			break;
		uint8_t hb[YAMUX_HDR_LEN];
		struct yamux_hdr h = {0, YAMUX_DATA, 0, (uint32_t)id, (uint32_t)k};
		yamux_hdr_encode(hb, &h);
		if (muxc_out_put2(&y->c, hb, sizeof hb, p + total, k))
			return cg_fail(e, CG_E_INTERNAL, "yamux: output allocation failed");
		s->send_window -= (uint32_t)k;
		total += k;
	}
	if (total < n)
		s->want_writable = true;
	return (long)total;
}

/* Receive-window auto-tuning, as go-yamux and js-yamux do: when the reader consumed half a window within
 * four round trips of the previous update, the sender is fast enough that the window (credit / RTT), not
 * the reader, limits it: double the window, up to MAX_WINDOW per stream and within the session's
 * window_budget, which bounds what a reader that later stops could leave unread. No RTT yet: no growth.
 * Returns the growth to grant with this update. */
static uint32_t grow_window(const struct yamux *y, const struct muxc_stream *s)
{
	if (y->c.rtt_us <= 0 || y->c.now_us - s->epoch_us >= 4 * y->c.rtt_us || s->win >= MAX_WINDOW)
		return 0;
	size_t left = y->c.extra_window < y->c.lim.window_budget ? y->c.lim.window_budget - y->c.extra_window : 0;
	size_t g = s->win;
	if (g > MAX_WINDOW - s->win)
		g = MAX_WINDOW - s->win;
	if (g > left)
		g = left;
	return (uint32_t)g;
}

static long y_read(muxer *m, uint64_t id, uint8_t *p, size_t cap, bool *eof, cg_err *e)
{
	struct yamux *y = (struct yamux *)m;
	struct muxc_stream *s = muxc_find(&y->c, id);
	*eof = false;
	if (!s)
		return cg_fail(e, CG_E_NOT_FOUND, "yamux: no such stream");
	size_t k = muxc_q_read(&s->rq, p, cap);
	s->unacked += (uint32_t)k;
	/* Return credit in batches of half a window: fewer frames, and the sender never stalls. */
	if (!s->remote_closed && !y->c.failed && s->unacked >= s->win / 2) {
		uint32_t grow = grow_window(y, s);
		if (send_hdr(y, YAMUX_WINDOW_UPDATE, 0, (uint32_t)id, s->unacked + grow) == 0) {
			s->recv_window += s->unacked + grow;
			s->win += grow;
			y->c.extra_window += grow;
			s->unacked = 0;
			s->epoch_us = y->c.now_us;
		}
	}
	if (s->remote_closed && muxc_q_size(&s->rq) == 0) {
		*eof = true;
		muxc_maybe_finish(&y->c, s);
	}
	return (long)k;
}

static int y_close(muxer *m, uint64_t id, cg_err *e)
{
	struct yamux *y = (struct yamux *)m;
	struct muxc_stream *s = muxc_find(&y->c, id);
	if (!s)
		return cg_fail(e, CG_E_NOT_FOUND, "yamux: no such stream");
	if (s->local_closed)
		return 0;
	if (!y->c.failed && send_hdr(y, YAMUX_WINDOW_UPDATE, YAMUX_FIN, (uint32_t)id, 0))
		return cg_fail(e, CG_E_UNAVAILABLE, "yamux: output buffer full");
	s->local_closed = true;
	s->want_writable = false;
	muxc_maybe_finish(&y->c, s);
	return 0;
}

static int y_reset(muxer *m, uint64_t id, cg_err *e)
{
	struct yamux *y = (struct yamux *)m;
	struct muxc_stream *s = muxc_find(&y->c, id);
	if (!s)
		return cg_fail(e, CG_E_NOT_FOUND, "yamux: no such stream");
	if (!y->c.failed)
		send_hdr(y, YAMUX_WINDOW_UPDATE, YAMUX_RST, (uint32_t)id, 0);
	muxc_remove(&y->c, s);
	return 0;
}

static int y_set_user(muxer *m, uint64_t id, void *user)
{
	struct muxc_stream *s = muxc_find(&((struct yamux *)m)->c, id);
	if (!s)
		return -CG_E_NOT_FOUND;
	s->user = user;
	return 0;
}

static void *y_get_user(muxer *m, uint64_t id)
{
	struct muxc_stream *s = muxc_find(&((struct yamux *)m)->c, id);
	return s ? s->user : NULL;
}

static int y_ping(muxer *m, uint32_t opaque, cg_err *e)
{
	struct yamux *y = (struct yamux *)m;
	if (y->c.failed || send_hdr(y, YAMUX_PING, YAMUX_SYN, 0, opaque))
		return cg_fail(e, CG_E_UNAVAILABLE, "yamux: cannot send ping");
	return 0;
}

static int y_goaway(muxer *m, cg_err *e)
{
	struct yamux *y = (struct yamux *)m;
	if (y->c.goaway_local)
		return 0;
	if (y->c.failed || send_hdr(y, YAMUX_GO_AWAY, 0, 0, YAMUX_GOAWAY_NORMAL))
		return cg_fail(e, CG_E_UNAVAILABLE, "yamux: cannot send go-away");
	y->c.goaway_local = true;
	return 0;
}

static size_t y_count(const muxer *m)
{
	return ((const struct yamux *)m)->c.count;
}

static void y_free(muxer *m)
{
	struct yamux *y = (struct yamux *)m;
	muxc_done(&y->c);
	free(y);
}

static const struct muxer_ops yamux_ops = {
	.protocol = YAMUX_PROTOCOL,
	.feed = y_feed,
	.out_peek = y_out_peek,
	.out_consume = y_out_consume,
	.poll = y_poll,
	.open = y_open,
	.write = y_write,
	.read = y_read,
	.close = y_close,
	.reset = y_reset,
	.set_user = y_set_user,
	.get_user = y_get_user,
	.ping = y_ping,
	.goaway = y_goaway,
	.stream_count = y_count,
	.timing = muxc_timing,
	.free = y_free,
};

muxer *yamux_new(bool client, const struct muxer_limits *limits)
{
	struct yamux *y = calloc(1, sizeof *y);
	if (!y)
		return NULL;
	if (muxc_init(&y->c, limits, YAMUX_INITIAL_WINDOW) != 0) {
		muxc_done(&y->c);
		free(y);
		return NULL;
	}
	y->c.base.ops = &yamux_ops;
	y->client = client;
	y->next_id = client ? 1 : 2;
	return &y->c.base;
}
