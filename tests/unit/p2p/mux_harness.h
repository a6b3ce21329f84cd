/* Test harness shared by the yamux and mplex tests: two sessions wired back to back through byte pipes
 * (with a chunk size, to exercise partial frames), and an event log per side. Not a test double: both ends
 * run the real session code. */
#ifndef TEST_MUX_HARNESS_H
#define TEST_MUX_HARNESS_H

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "p2p/muxer.h"

#define EV_MAX 8192

struct mside {
	muxer *m;
	buf pending; /* bytes received and not yet consumed by the session */
	struct muxer_event ev[EV_MAX];
	size_t nev;
	int rc; /* last feed result */
	cg_err e;
};

static void mside_init(struct mside *s, muxer *m)
{
	memset(s, 0, sizeof *s);
	s->m = m;
	buf_init(&s->pending, 64u << 20);
}

static void mside_done(struct mside *s)
{
	muxer_free(s->m);
	buf_done(&s->pending);
}

static void drain_events(struct mside *s)
{
	struct muxer_event ev;
	while (muxer_poll(s->m, &ev) == 1) {
		if (s->nev < EV_MAX)
			s->ev[s->nev++] = ev;
	}
}

/* Moves up to `chunk` bytes at a time from a's output into b until a has nothing left to send or b stops
 * consuming. Returns the number of bytes moved. */
static size_t pipe_once(struct mside *a, struct mside *b, size_t chunk)
{
	size_t moved = 0;
	for (;;) {
		size_t n, k = 0, used = 0;
		const uint8_t *p = muxer_out_peek(a->m, &n);
		if (n && b->rc == 0) {
			k = n < chunk ? n : chunk;
			if (buf_append(&b->pending, p, k) != 0)
				abort();
			muxer_out_consume(a->m, k);
			moved += k;
		}
		if (b->pending.len && b->rc == 0) {
			b->rc = muxer_feed(b->m, b->pending.data, b->pending.len, &used, &b->e);
			buf_consume(&b->pending, used);
			drain_events(b);
		}
		if (k == 0 && used == 0)
			break;
	}
	return moved;
}

/* Pumps both ways until quiet. */
static void pump_all(struct mside *a, struct mside *b, size_t chunk)
{
	for (int i = 0; i < 100000; i++) {
		size_t m1 = pipe_once(a, b, chunk);
		size_t m2 = pipe_once(b, a, chunk);
		drain_events(a);
		drain_events(b);
		if (!m1 && !m2)
			break;
	}
}

static int count_ev(const struct mside *s, enum muxer_ev_type t, uint64_t id)
{
	int n = 0;
	for (size_t i = 0; i < s->nev; i++)
		if (s->ev[i].type == t && (id == UINT64_MAX || s->ev[i].id == id))
			n++;
	return n;
}

static const struct muxer_event *find_ev(const struct mside *s, enum muxer_ev_type t)
{
	for (size_t i = 0; i < s->nev; i++)
		if (s->ev[i].type == t)
			return &s->ev[i];
	return NULL;
}

/* Reads everything available on stream id into dst (appending). Returns the bytes read; *eof as muxer_read. */
static size_t read_all(struct mside *s, uint64_t id, buf *dst, bool *eof)
{
	uint8_t tmp[7000];
	size_t total = 0;
	*eof = false;
	for (;;) {
		bool e = false;
		long k = muxer_read(s->m, id, tmp, sizeof tmp, &e, NULL);
		/* The read that reports eof may also free the stream: later reads say "not found". */
		*eof = *eof || e;
		if (k <= 0)
			break;
		if (buf_append(dst, tmp, (size_t)k) != 0)
			abort();
		total += (size_t)k;
	}
	return total;
}

#endif
