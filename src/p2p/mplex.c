/* mplex session: frame codec plus the stream state machine (no flow control: capped stream buffers). */
#include "p2p/mplex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CG_P2P_MUX_INTERNAL
#include "p2p/mux_core.h"
#include "p2p/varint.h"

#define MAX_MSG_CHUNK (64u * 1024u) /* our message frames */
#define MPLEX_HDR_MAX 18

struct mplex {
	struct muxc c;
	bool initiator;
	uint64_t next_id;
	bool in_payload;
	uint32_t remaining;
	uint64_t target;  /* stream handle receiving the payload */
	bool has_target;  /* false: discard the payload */
};

/* Stream handles: wire id shifted left, low bit set when the remote opened the stream. */
static uint64_t handle(uint64_t wire_id, bool remote_opened)
{
	return wire_id << 1 | (remote_opened ? 1u : 0u);
}

int mplex_hdr_decode(const uint8_t *p, size_t n, struct mplex_hdr *h, cg_err *e)
{
	uint64_t hv, len;
	int a = varint_decode(p, n, &hv, e);
	if (a <= 0)
		return a;
	int b = varint_decode(p + a, n - (size_t)a, &len, e);
	if (b <= 0)
		return b;
	if ((hv & 7) > MPLEX_RESET_INITIATOR)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "mplex: unknown flag");
	if ((hv >> 3) > MPLEX_MAX_ID)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "mplex: stream id too large");
	if (len > MPLEX_MAX_FRAME)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "mplex: frame too large");
	h->id = hv >> 3;
	h->flag = (uint8_t)(hv & 7);
	h->length = (uint32_t)len;
	return a + b;
}

size_t mplex_hdr_encode(uint8_t out[static MPLEX_HDR_MAX], const struct mplex_hdr *h)
{
	size_t n = varint_encode(out, h->id << 3 | h->flag);
	return n + varint_encode(out + n, h->length);
}

static int send_frame(struct mplex *x, uint64_t wire_id, uint8_t flag, const uint8_t *p, size_t n)
{
	uint8_t b[MPLEX_HDR_MAX];
	struct mplex_hdr h = {wire_id, flag, (uint32_t)n};
	size_t k = mplex_hdr_encode(b, &h);
	return muxc_out_put2(&x->c, b, k, p, n);
}

static int fail(struct mplex *x, const char *why, cg_err *e)
{
	x->c.failed = true;
	return cg_fail(e, CG_E_INVALID_ARGUMENT, "mplex: %s", why);
}

static bool can_write(const struct muxc_stream *s)
{
	return !s->local_closed;
}

static void send_reset(struct mplex *x, struct muxc_stream *s)
{
	send_frame(x, s->id >> 1, s->outbound ? MPLEX_RESET_INITIATOR : MPLEX_RESET_RECEIVER, NULL, 0);
}

static void reset_stream(struct mplex *x, struct muxc_stream *s, const char *why)
{
	send_reset(x, s);
	muxc_event(&x->c, MUXER_EV_RESET, s, 0, why);
	muxc_remove(&x->c, s);
}

static int on_frame(struct mplex *x, const struct mplex_hdr *h, cg_err *e)
{
	struct muxc_stream *s;
	/* Initiator flags come from the side that opened the stream: for us, the remote. */
	bool remote_opened = h->flag == MPLEX_NEW_STREAM || h->flag == MPLEX_MSG_INITIATOR ||
			     h->flag == MPLEX_CLOSE_INITIATOR || h->flag == MPLEX_RESET_INITIATOR;
	uint64_t hid = handle(h->id, remote_opened);
	x->in_payload = true;
	x->remaining = h->length;
	x->has_target = false;
	switch (h->flag) {
	case MPLEX_NEW_STREAM:
		if (muxc_find(&x->c, hid))
			return fail(x, "NewStream for an id already open", e);
		if (x->c.goaway_local || x->c.count >= x->c.lim.max_streams) {
			send_frame(x, h->id, MPLEX_RESET_RECEIVER, NULL, 0);
			return 0;
		}
		if (!(s = muxc_add(&x->c, hid)))
			return fail(x, "out of memory", e);
		muxc_event(&x->c, MUXER_EV_INBOUND, s, 0, NULL);
		return 0; /* the payload is the stream name: skipped */
	case MPLEX_MSG_INITIATOR:
	case MPLEX_MSG_RECEIVER:
		s = muxc_find(&x->c, hid);
		if (s && s->remote_closed) {
			reset_stream(x, s, "data after the remote closed");
			s = NULL;
		}
		if (s) {
			x->has_target = true;
			x->target = hid;
		}
		return 0;
	case MPLEX_CLOSE_INITIATOR:
	case MPLEX_CLOSE_RECEIVER:
		s = muxc_find(&x->c, hid);
		if (s && !s->remote_closed) {
			s->remote_closed = true;
			muxc_event(&x->c, MUXER_EV_EOF, s, 0, NULL);
			muxc_maybe_finish(&x->c, s);
		}
		return 0;
	default: /* resets */
		s = muxc_find(&x->c, hid);
		if (s) {
			muxc_event(&x->c, MUXER_EV_RESET, s, 0, "reset by remote");
			muxc_remove(&x->c, s);
		}
		return 0;
	}
}

static int x_feed(muxer *m, const uint8_t *in, size_t n, size_t *consumed, cg_err *e)
{
	struct mplex *x = (struct mplex *)m;
	size_t off = 0;
	int rc = 0;
	*consumed = 0;
	if (x->c.failed)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "mplex: session failed earlier");
	for (;;) {
		if (x->in_payload) {
			if (x->remaining == 0) {
				x->in_payload = false;
				continue;
			}
			if (off == n)
				break;
			size_t chunk = n - off < x->remaining ? n - off : x->remaining;
			struct muxc_stream *s = x->has_target ? muxc_find(&x->c, x->target) : NULL;
			if (s) {
				if (muxc_q_append(&s->rq, in + off, chunk, x->c.lim.max_stream_buffer) != 0) {
					/* No flow control in mplex: a reader that falls this far behind loses the stream. */
					reset_stream(x, s, "receive buffer overflow");
					x->has_target = false;
				} else {
					muxc_event(&x->c, MUXER_EV_READABLE, s, 0, NULL);
				}
			}
			off += chunk;
			x->remaining -= (uint32_t)chunk;
			continue;
		}
		if (!muxc_can_feed(&x->c) || off == n)
			break;
		struct mplex_hdr h;
		int k = mplex_hdr_decode(in + off, n - off, &h, e);
		if (k < 0) {
			rc = fail(x, "bad frame header", e);
			break;
		}
		if (k == 0)
			break;
		off += (size_t)k;
		if ((rc = on_frame(x, &h, e)))
			break;
	}
	*consumed = off;
	return rc;
}

static const uint8_t *x_out_peek(muxer *m, size_t *n)
{
	return muxc_out_peek(&((struct mplex *)m)->c, n);
}

static void x_out_consume(muxer *m, size_t n)
{
	muxc_out_consume(&((struct mplex *)m)->c, n, can_write);
}

static int x_poll(muxer *m, struct muxer_event *ev)
{
	return muxc_poll(&((struct mplex *)m)->c, ev);
}

static int x_open(muxer *m, uint64_t *id, cg_err *e)
{
	struct mplex *x = (struct mplex *)m;
	char name[24];
	if (x->c.failed || x->c.goaway_local)
		return cg_fail(e, CG_E_UNAVAILABLE, "mplex: session is going away");
	if (x->c.count >= x->c.lim.max_streams)
		return cg_fail(e, CG_E_QUOTA_EXCEEDED, "mplex: too many streams");
	if (x->next_id > MPLEX_MAX_ID)
		return cg_fail(e, CG_E_UNAVAILABLE, "mplex: stream ids exhausted");
	struct muxc_stream *s = muxc_add(&x->c, handle(x->next_id, false));
	if (!s)
		return cg_fail(e, CG_E_INTERNAL, "mplex: out of memory");
	/* js-libp2p and go-libp2p name streams by their id. */
	int nl = snprintf(name, sizeof name, "%llu", (unsigned long long)x->next_id);
	if (send_frame(x, x->next_id, MPLEX_NEW_STREAM, (const uint8_t *)name, (size_t)nl)) {
		muxc_remove(&x->c, s);
		return cg_fail(e, CG_E_UNAVAILABLE, "mplex: output buffer full");
	}
	s->outbound = true;
	x->next_id++;
	*id = s->id;
	return 0;
}

static long x_write(muxer *m, uint64_t id, const uint8_t *p, size_t n, cg_err *e)
{
	struct mplex *x = (struct mplex *)m;
	if (x->c.failed)
		return cg_fail(e, CG_E_UNAVAILABLE, "mplex: session failed");
	struct muxc_stream *s = muxc_find(&x->c, id);
	if (!s)
		return cg_fail(e, CG_E_NOT_FOUND, "mplex: no such stream");
	if (s->local_closed)
		return cg_fail(e, CG_E_CONFLICT, "mplex: stream closed for writing");
	size_t total = 0;
	uint8_t flag = s->outbound ? MPLEX_MSG_INITIATOR : MPLEX_MSG_RECEIVER;
	while (total < n) {
		size_t room = muxc_out_room(&x->c);
		size_t k = n - total < MAX_MSG_CHUNK ? n - total : MAX_MSG_CHUNK;
		if (room <= MPLEX_HDR_MAX) {
			x->c.out_blocked = true;
			break;
		}
		if (k > room - MPLEX_HDR_MAX) {
			k = room - MPLEX_HDR_MAX;
			x->c.out_blocked = true;
		}
		if (send_frame(x, id >> 1, flag, p + total, k))
			return cg_fail(e, CG_E_INTERNAL, "mplex: output allocation failed");
		total += k;
	}
	if (total < n)
		s->want_writable = true;
	return (long)total;
}

static long x_read(muxer *m, uint64_t id, uint8_t *p, size_t cap, bool *eof, cg_err *e)
{
	struct mplex *x = (struct mplex *)m;
	struct muxc_stream *s = muxc_find(&x->c, id);
	*eof = false;
	if (!s)
		return cg_fail(e, CG_E_NOT_FOUND, "mplex: no such stream");
	size_t k = muxc_q_read(&s->rq, p, cap);
	if (s->remote_closed && muxc_q_size(&s->rq) == 0) {
		*eof = true;
		muxc_maybe_finish(&x->c, s);
	}
	return (long)k;
}

static int x_close(muxer *m, uint64_t id, cg_err *e)
{
	struct mplex *x = (struct mplex *)m;
	struct muxc_stream *s = muxc_find(&x->c, id);
	if (!s)
		return cg_fail(e, CG_E_NOT_FOUND, "mplex: no such stream");
	if (s->local_closed)
		return 0;
	if (!x->c.failed &&
	    send_frame(x, id >> 1, s->outbound ? MPLEX_CLOSE_INITIATOR : MPLEX_CLOSE_RECEIVER, NULL, 0))
		return cg_fail(e, CG_E_UNAVAILABLE, "mplex: output buffer full");
	s->local_closed = true;
	s->want_writable = false;
	muxc_maybe_finish(&x->c, s);
	return 0;
}

static int x_reset(muxer *m, uint64_t id, cg_err *e)
{
	struct mplex *x = (struct mplex *)m;
	struct muxc_stream *s = muxc_find(&x->c, id);
	if (!s)
		return cg_fail(e, CG_E_NOT_FOUND, "mplex: no such stream");
	if (!x->c.failed)
		send_reset(x, s);
	muxc_remove(&x->c, s);
	return 0;
}

static int x_set_user(muxer *m, uint64_t id, void *user)
{
	struct muxc_stream *s = muxc_find(&((struct mplex *)m)->c, id);
	if (!s)
		return -CG_E_NOT_FOUND;
	s->user = user;
	return 0;
}

static void *x_get_user(muxer *m, uint64_t id)
{
	struct muxc_stream *s = muxc_find(&((struct mplex *)m)->c, id);
	return s ? s->user : NULL;
}

static int x_ping(muxer *m, uint32_t opaque, cg_err *e)
{
	return cg_fail(e, CG_E_UNAVAILABLE, "mplex: no ping frames (use /ipfs/ping/1.0.0)");
}

static int x_goaway(muxer *m, cg_err *e)
{
	/* mplex has no go-away frame: we only stop accepting new streams. */
	((struct mplex *)m)->c.goaway_local = true;
	return 0;
}

static size_t x_count(const muxer *m)
{
	return ((const struct mplex *)m)->c.count;
}

static void x_free(muxer *m)
{
	struct mplex *x = (struct mplex *)m;
	muxc_done(&x->c);
	free(x);
}

static const struct muxer_ops mplex_ops = {
	.protocol = MPLEX_PROTOCOL,
	.feed = x_feed,
	.out_peek = x_out_peek,
	.out_consume = x_out_consume,
	.poll = x_poll,
	.open = x_open,
	.write = x_write,
	.read = x_read,
	.close = x_close,
	.reset = x_reset,
	.set_user = x_set_user,
	.get_user = x_get_user,
	.ping = x_ping,
	.goaway = x_goaway,
	.timing = muxc_timing,
	.stream_count = x_count,
	.free = x_free,
};

muxer *mplex_new(bool initiator, const struct muxer_limits *limits)
{
	struct mplex *x = calloc(1, sizeof *x);
	if (!x)
		return NULL;
	if (muxc_init(&x->c, limits, 0) != 0) {
		muxc_done(&x->c);
		free(x);
		return NULL;
	}
	x->c.base.ops = &mplex_ops;
	x->initiator = initiator;
	return &x->c.base;
}
