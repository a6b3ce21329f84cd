/* Shared muxer machinery: stream table, byte queues, event queue, output queue. */
#define CG_P2P_MUX_INTERNAL
#include "p2p/mux_core.h"

#include <stdlib.h>
#include <string.h>

#define DEF_MAX_STREAMS 1024
#define DEF_STREAM_BUFFER (1024u * 1024u)
#define DEF_OUT_CAP (1024u * 1024u)
/* Control frames (window updates, resets, go-away) may go past the soft cap by this much. */
#define OUT_CONTROL_RESERVE (256u * 1024u)

size_t muxc_q_size(const struct muxc_q *q)
{
	return q->len - q->off;
}

int muxc_q_append(struct muxc_q *q, const uint8_t *p, size_t n, size_t cap)
{
	if (n > cap || muxc_q_size(q) > cap - n)
		return -1;
	if (q->len + n > q->alloc) {
		/* Compact first: the live bytes move to the front. */
		if (q->off) {
			memmove(q->d, q->d + q->off, q->len - q->off);
			q->len -= q->off;
			q->off = 0;
		}
		if (q->len + n > q->alloc) {
			size_t na = q->alloc ? q->alloc : 256;
			while (na < q->len + n)
				na *= 2;
			uint8_t *d = realloc(q->d, na);
			if (!d)
				return -1;
			q->d = d;
			q->alloc = na;
		}
	}
	if (n)
		memcpy(q->d + q->len, p, n);
	q->len += n;
	return 0;
}

static void muxc_q_consume(struct muxc_q *q, size_t n)
{
	size_t have = muxc_q_size(q);
	q->off += n < have ? n : have;
	if (q->off == q->len) {
		q->off = q->len = 0;
		/* An idle stream should not keep a large buffer alive. */
		if (q->alloc > 64 * 1024) {
			free(q->d);
			q->d = NULL;
			q->alloc = 0;
		}
	}
}

size_t muxc_q_read(struct muxc_q *q, uint8_t *p, size_t n)
{
	size_t have = muxc_q_size(q);
	if (n > have)
		n = have;
	if (n)
		memcpy(p, q->d + q->off, n);
	muxc_q_consume(q, n);
	return n;
}

static void muxc_q_free(struct muxc_q *q)
{
	free(q->d);
	memset(q, 0, sizeof *q);
}

int muxc_init(struct muxc *c, const struct muxer_limits *lim, uint32_t min_window)
{
	struct muxer_limits l = lim ? *lim : (struct muxer_limits){0};
	if (!l.max_streams)
		l.max_streams = DEF_MAX_STREAMS;
	if (l.window < min_window)
		l.window = min_window;
	if (!l.max_stream_buffer)
		l.max_stream_buffer = DEF_STREAM_BUFFER;
	if (!l.out_cap)
		l.out_cap = DEF_OUT_CAP;
	c->lim = l;
	/* At most 256 chains: an idle connection costs 2 KiB of table, a full one ~4 streams per chain. */
	c->nbuckets = 16;
	while (c->nbuckets < l.max_streams && c->nbuckets < 256)
		c->nbuckets *= 2;
	c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
	c->ev_soft = 2 * (size_t)l.max_streams + 64;
	c->out_hard = l.out_cap + OUT_CONTROL_RESERVE;
	return c->buckets ? 0 : -1;
}

static void stream_free(struct muxc_stream *s)
{
	muxc_q_free(&s->rq);
	free(s);
}

void muxc_done(struct muxc *c)
{
	for (size_t i = 0; c->buckets && i < c->nbuckets; i++) {
		struct muxc_stream *s = c->buckets[i];
		while (s) {
			struct muxc_stream *n = s->hnext;
			stream_free(s);
			s = n;
		}
	}
	free(c->buckets);
	free(c->ev);
	muxc_q_free(&c->out);
	c->buckets = NULL;
	c->ev = NULL;
	c->count = 0;
}

static size_t bucket(const struct muxc *c, uint64_t id)
{
	uint64_t h = id * UINT64_C(0x9E3779B97F4A7C15);
	return (size_t)(h >> 32) & (c->nbuckets - 1);
}

struct muxc_stream *muxc_find(struct muxc *c, uint64_t id)
{
	for (struct muxc_stream *s = c->buckets[bucket(c, id)]; s; s = s->hnext)
		if (s->id == id)
			return s;
	return NULL;
}

struct muxc_stream *muxc_add(struct muxc *c, uint64_t id)
{
	struct muxc_stream *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->id = id;
	s->serial = ++c->next_serial;
	size_t b = bucket(c, id);
	s->hnext = c->buckets[b];
	c->buckets[b] = s;
	c->count++;
	return s;
}

void muxc_remove(struct muxc *c, struct muxc_stream *s)
{
	struct muxc_stream **pp = &c->buckets[bucket(c, s->id)];
	while (*pp && *pp != s)
		pp = &(*pp)->hnext;
	if (*pp) {
		*pp = s->hnext;
		c->count--;
	}
	if (s->win > c->lim.window)
		c->extra_window -= s->win - c->lim.window;
	stream_free(s);
}

static void ev_push(struct muxc *c, const struct muxer_event *ev, uint64_t serial)
{
	if (c->ev_len == c->ev_alloc) {
		size_t na = c->ev_alloc ? c->ev_alloc * 2 : 64;
		struct muxc_ev *n = malloc(na * sizeof *n);
		if (!n)
			return; /* dropping an event under memory exhaustion beats crashing */
		for (size_t i = 0; i < c->ev_len; i++)
			n[i] = c->ev[(c->ev_head + i) % c->ev_alloc];
		free(c->ev);
		c->ev = n;
		c->ev_alloc = na;
		c->ev_head = 0;
	}
	c->ev[(c->ev_head + c->ev_len) % c->ev_alloc] = (struct muxc_ev){*ev, serial};
	c->ev_len++;
}

void muxc_event(struct muxc *c, enum muxer_ev_type t, struct muxc_stream *s, uint32_t code, const char *why)
{
	if (t == MUXER_EV_READABLE) {
		if (s->ev_readable)
			return;
		s->ev_readable = true;
	} else if (t == MUXER_EV_WRITABLE) {
		if (s->ev_writable)
			return;
		s->ev_writable = true;
	}
	struct muxer_event ev = {.type = t, .id = s->id, .user = s->user, .code = code, .reason = why};
	ev_push(c, &ev, s->serial);
}

void muxc_event_session(struct muxc *c, enum muxer_ev_type t, uint32_t code)
{
	struct muxer_event ev = {.type = t, .code = code};
	ev_push(c, &ev, 0);
}

int muxc_poll(struct muxc *c, struct muxer_event *ev)
{
	while (c->ev_len) {
		uint64_t serial = c->ev[c->ev_head].serial;
		*ev = c->ev[c->ev_head].ev;
		c->ev_head = (c->ev_head + 1) % c->ev_alloc;
		c->ev_len--;
		if (ev->type == MUXER_EV_RESET || ev->type == MUXER_EV_CLOSED || ev->type == MUXER_EV_GOAWAY ||
		    ev->type == MUXER_EV_PONG)
			return 1;
		/* Stream events for a stream that is gone (or an earlier stream with the same id) are stale. */
		struct muxc_stream *s = muxc_find(c, ev->id);
		if (!s || s->serial != serial)
			continue;
		if (ev->type == MUXER_EV_READABLE)
			s->ev_readable = false;
		else if (ev->type == MUXER_EV_WRITABLE)
			s->ev_writable = false;
		ev->user = s->user; /* set_user may have run after the event was queued */
		return 1;
	}
	return 0;
}

bool muxc_can_feed(const struct muxc *c)
{
	return c->ev_len < c->ev_soft && muxc_q_size(&c->out) < c->lim.out_cap;
}

int muxc_out_put(struct muxc *c, const uint8_t *p, size_t n)
{
	return muxc_q_append(&c->out, p, n, c->out_hard);
}

int muxc_out_put2(struct muxc *c, const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	size_t used = muxc_q_size(&c->out);
	if (an + bn > c->out_hard || used > c->out_hard - an - bn)
		return -1;
	if (muxc_q_append(&c->out, a, an, c->out_hard) != 0)
		return -1;
	if (muxc_q_append(&c->out, b, bn, c->out_hard) != 0) {
		c->out.len -= an; /* the header was the last thing appended */
		return -1;
	}
	return 0;
}

size_t muxc_out_room(const struct muxc *c)
{
	size_t used = muxc_q_size(&c->out);
	return used < c->lim.out_cap ? c->lim.out_cap - used : 0;
}

const uint8_t *muxc_out_peek(struct muxc *c, size_t *n)
{
	*n = muxc_q_size(&c->out);
	return *n ? c->out.d + c->out.off : NULL;
}

void muxc_out_consume(struct muxc *c, size_t n, bool (*can_write)(const struct muxc_stream *s))
{
	muxc_q_consume(&c->out, n);
	/* Wake writers only once half the room is back, so they write in large pieces. */
	if (!c->out_blocked || muxc_q_size(&c->out) > c->lim.out_cap / 2)
		return;
	c->out_blocked = false;
	for (size_t i = 0; i < c->nbuckets; i++)
		for (struct muxc_stream *s = c->buckets[i]; s; s = s->hnext)
			if (s->want_writable && can_write(s)) {
				s->want_writable = false;
				muxc_event(c, MUXER_EV_WRITABLE, s, 0, NULL);
			}
}

void muxc_timing(muxer *m, int64_t now_us, int64_t rtt_us)
{
	/* Both sessions embed struct muxc first, its struct muxer header first. */
	struct muxc *c = (struct muxc *)m;
	if (now_us >= 0)
		c->now_us = now_us;
	if (rtt_us >= 0)
		c->rtt_us = rtt_us;
}

void muxc_maybe_finish(struct muxc *c, struct muxc_stream *s)
{
	if (s->local_closed && s->remote_closed && muxc_q_size(&s->rq) == 0) {
		muxc_event(c, MUXER_EV_CLOSED, s, 0, NULL);
		muxc_remove(c, s);
	}
}
