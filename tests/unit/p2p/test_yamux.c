/* yamux: header codec, sessions back to back (open/accept, echo, half-close, reset, ping, go-away, flow
 * control with window updates, 100 concurrent streams, output backpressure) and a rogue peer (window
 * overflow, wrong parity, duplicate SYN, bad version, stream flood). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "mux_harness.h"
#include "p2p/yamux.h"

static void hdr(buf *b, uint8_t type, uint16_t flags, uint32_t id, uint32_t len)
{
	uint8_t h[YAMUX_HDR_LEN];
	struct yamux_hdr x = {0, type, flags, id, len};
	yamux_hdr_encode(h, &x);
	assert_int_equal(buf_append(b, h, sizeof h), 0);
}

static void t_header(void **s)
{
	(void)s;
	uint8_t b[YAMUX_HDR_LEN];
	struct yamux_hdr h = {0, YAMUX_WINDOW_UPDATE, YAMUX_SYN | YAMUX_FIN, 0x01020304, 0xa0b0c0d0}, g;
	yamux_hdr_encode(b, &h);
	static const uint8_t want[] = {0, 1, 0, 5, 1, 2, 3, 4, 0xa0, 0xb0, 0xc0, 0xd0};
	assert_memory_equal(b, want, sizeof want);
	assert_int_equal(yamux_hdr_decode(b, 11, &g, NULL), 0);
	assert_int_equal(yamux_hdr_decode(b, 12, &g, NULL), 12);
	assert_true(g.type == h.type && g.flags == h.flags && g.stream == h.stream && g.length == h.length);
	b[0] = 1;
	assert_int_equal(yamux_hdr_decode(b, 12, &g, NULL), -CG_E_INVALID_ARGUMENT);
	b[0] = 0;
	b[1] = 4;
	assert_int_equal(yamux_hdr_decode(b, 12, &g, NULL), -CG_E_INVALID_ARGUMENT);
}

static void t_echo_and_close(void **s)
{
	(void)s;
	for (size_t chunk = 1; chunk <= 1 << 16; chunk *= 16) {
		struct mside a, b;
		mside_init(&a, yamux_new(true, NULL));
		mside_init(&b, yamux_new(false, NULL));
		assert_string_equal(muxer_protocol(a.m), YAMUX_PROTOCOL);
		uint64_t id;
		assert_int_equal(muxer_open(a.m, &id, NULL), 0);
		assert_int_equal(id, 1); /* clients use odd ids */
		int tag = 42;
		assert_int_equal(muxer_set_user(a.m, id, &tag), 0);
		assert_ptr_equal(muxer_get_user(a.m, id), &tag);
		assert_int_equal(muxer_write(a.m, id, (const uint8_t *)"hello", 5, NULL), 5);
		assert_int_equal(muxer_close(a.m, id, NULL), 0);
		assert_int_equal(muxer_close(a.m, id, NULL), 0); /* idempotent */
		assert_int_equal(muxer_write(a.m, id, (const uint8_t *)"x", 1, NULL), -CG_E_CONFLICT);
		pump_all(&a, &b, chunk);
		assert_int_equal(count_ev(&b, MUXER_EV_INBOUND, 1), 1);
		assert_true(count_ev(&b, MUXER_EV_READABLE, 1) >= 1);
		assert_int_equal(count_ev(&b, MUXER_EV_EOF, 1), 1);
		buf got;
		buf_init(&got, 1 << 20);
		bool eof;
		assert_int_equal(read_all(&b, 1, &got, &eof), 5);
		assert_true(eof);
		assert_memory_equal(got.data, "hello", 5);
		/* B answers and closes: both sides finish cleanly. */
		assert_int_equal(muxer_write(b.m, 1, (const uint8_t *)"world!", 6, NULL), 6);
		assert_int_equal(muxer_close(b.m, 1, NULL), 0);
		assert_int_equal(count_ev(&b, MUXER_EV_CLOSED, UINT64_MAX), 0);
		drain_events(&b);
		assert_int_equal(count_ev(&b, MUXER_EV_CLOSED, 1), 1);
		assert_int_equal(muxer_stream_count(b.m), 0);
		pump_all(&a, &b, chunk);
		buf_reset(&got);
		assert_int_equal(read_all(&a, id, &got, &eof), 6);
		assert_true(eof);
		drain_events(&a);
		const struct muxer_event *ce = find_ev(&a, MUXER_EV_CLOSED);
		assert_non_null(ce);
		assert_ptr_equal(ce->user, &tag);
		assert_int_equal(muxer_stream_count(a.m), 0);
		assert_int_equal(muxer_read(a.m, id, (uint8_t *)got.data, 1, &eof, NULL), -CG_E_NOT_FOUND);
		buf_done(&got);
		mside_done(&a);
		mside_done(&b);
	}
}

static void t_flow_control(void **s)
{
	(void)s;
	struct mside a, b;
	mside_init(&a, yamux_new(true, NULL));
	mside_init(&b, yamux_new(false, NULL));
	uint64_t id;
	assert_int_equal(muxer_open(a.m, &id, NULL), 0);
	size_t total = 3u << 20;
	uint8_t *data = malloc(total);
	randombytes_buf(data, total);
	/* Without reading on B, A can send exactly one window. */
	long w = muxer_write(a.m, id, data, total, NULL);
	assert_int_equal(w, YAMUX_INITIAL_WINDOW);
	assert_int_equal(muxer_write(a.m, id, data + w, 10, NULL), 0);
	pump_all(&a, &b, 4096);
	assert_int_equal(count_ev(&a, MUXER_EV_WRITABLE, id), 0);
	/* B reads; window updates flow back; A gets WRITABLE and continues until everything arrived. */
	size_t sent = (size_t)w;
	buf got;
	buf_init(&got, 8u << 20);
	bool eof;
	for (int round = 0; round < 10000 && got.len < total; round++) {
		read_all(&b, id, &got, &eof);
		pump_all(&a, &b, 1 << 14);
		if (sent < total) {
			long k = muxer_write(a.m, id, data + sent, total - sent, NULL);
			assert_true(k >= 0);
			sent += (size_t)k;
			if (sent == total)
				assert_int_equal(muxer_close(a.m, id, NULL), 0);
			pump_all(&a, &b, 1 << 14);
		}
	}
	read_all(&b, id, &got, &eof);
	assert_int_equal(got.len, total);
	assert_memory_equal(got.data, data, total);
	assert_true(eof);
	assert_true(count_ev(&a, MUXER_EV_WRITABLE, id) > 0);
	free(data);
	buf_done(&got);
	mside_done(&a);
	mside_done(&b);
}

/* One round of a bulk transfer on stream id: A sends all the credit it has, B reads everything.
 * Returns the bytes A could send. */
static size_t bulk_round(struct mside *a, struct mside *b, uint64_t id, const uint8_t *data, size_t cap)
{
	size_t sent = 0;
	bool eof;
	for (long more; (more = muxer_write(a->m, id, data, cap, NULL)) > 0;) {
		sent += (size_t)more;
		pump_all(a, b, 1 << 16); /* the output cap may cut a write short: drain and go on */
	}
	buf got;
	buf_init(&got, 32u << 20);
	read_all(b, id, &got, &eof);
	assert_int_equal(got.len, sent);
	buf_done(&got);
	pump_all(a, b, 1 << 16);
	return sent;
}

/* Receive-window auto-tuning (go-yamux, js-yamux): when the reader consumes half a window within four
 * round trips, the window limits the sender and doubles, up to W + window_budget for the session; slow
 * consumption, an unknown RTT, or no budget keep it; the budget comes back when a grown stream ends; the
 * grown window is still enforced. */
static void t_window_autotune(void **s)
{
	(void)s;
	const size_t W = YAMUX_INITIAL_WINDOW, budget = 1u << 20;
	struct muxer_limits lb = {.window_budget = budget};
	struct mside a, b;
	mside_init(&a, yamux_new(true, NULL));
	mside_init(&b, yamux_new(false, &lb));
	size_t big = 4u << 20;
	uint8_t *data = malloc(big);
	randombytes_buf(data, big);
	int64_t now = 1000000;
	muxer_set_time(b.m, now);
	uint64_t id;
	assert_int_equal(muxer_open(a.m, &id, NULL), 0);
	/* RTT unknown: fast consumption, yet no growth */
	for (int r = 0; r < 4; r++)
		assert_true(bulk_round(&a, &b, id, data, big) <= W);
	/* RTT 10 ms, each round 1 ms: the window doubles up to W + budget, never beyond */
	muxer_set_rtt(b.m, 10000);
	size_t most = 0;
	for (int r = 0; r < 10; r++) {
		muxer_set_time(b.m, now += 1000);
		size_t sent = bulk_round(&a, &b, id, data, big);
		assert_true(sent <= W + budget);
		most = sent > most ? sent : most;
	}
	assert_true(most > W + budget / 2);
	/* the grown stream ends: its growth returns to the budget; a new stream that is consumed slowly
	 * (each round 100 ms, ten round trips) keeps the initial window, a fast one grows again */
	assert_int_equal(muxer_reset(a.m, id, NULL), 0);
	pump_all(&a, &b, 1 << 16);
	assert_int_equal(muxer_open(a.m, &id, NULL), 0);
	for (int r = 0; r < 4; r++) {
		size_t sent = 0;
		for (long more; (more = muxer_write(a.m, id, data, big, NULL)) > 0;) {
			sent += (size_t)more;
			pump_all(&a, &b, 1 << 16);
		}
		assert_true(sent <= W);
		/* the reader takes 100 ms per quarter window */
		static uint8_t tmp[YAMUX_INITIAL_WINDOW / 4];
		bool eof;
		for (size_t got = 0; got < sent;) {
			muxer_set_time(b.m, now += 100000);
			long k = muxer_read(b.m, id, tmp, sizeof tmp, &eof, NULL);
			assert_true(k > 0);
			got += (size_t)k;
		}
		pump_all(&a, &b, 1 << 16);
	}
	most = 0;
	for (int r = 0; r < 4; r++) {
		muxer_set_time(b.m, now += 1000);
		size_t sent = bulk_round(&a, &b, id, data, big);
		most = sent > most ? sent : most;
	}
	assert_true(most > W);
	/* a second fast stream shares the budget: the two together never exceed W + budget of growth */
	uint64_t id2;
	assert_int_equal(muxer_open(a.m, &id2, NULL), 0);
	for (int r = 0; r < 10; r++) {
		muxer_set_time(b.m, now += 1000);
		size_t s1 = bulk_round(&a, &b, id, data, big);
		size_t s2 = bulk_round(&a, &b, id2, data, big);
		assert_true(s1 + s2 <= 2 * W + budget);
	}
	/* whatever grew, a peer sending more than W + budget on one stream breaks the session */
	buf in;
	buf_init(&in, 8u << 20);
	uint8_t h[YAMUX_HDR_LEN];
	struct yamux_hdr x = {0, YAMUX_DATA, 0, (uint32_t)id, (uint32_t)(W + budget + 1)};
	yamux_hdr_encode(h, &x);
	assert_int_equal(buf_append(&in, h, sizeof h), 0);
	assert_int_equal(buf_append(&in, data, W + budget + 1), 0);
	size_t used;
	assert_true(muxer_feed(b.m, in.data, in.len, &used, NULL) < 0);
	buf_done(&in);
	free(data);
	mside_done(&a);
	mside_done(&b);
	/* no budget (the default): fixed windows whatever the timing */
	mside_init(&a, yamux_new(true, NULL));
	mside_init(&b, yamux_new(false, NULL));
	data = malloc(big);
	memset(data, 7, big);
	muxer_set_rtt(b.m, 10000);
	assert_int_equal(muxer_open(a.m, &id, NULL), 0);
	for (int r = 0; r < 4; r++) {
		muxer_set_time(b.m, now += 1000);
		assert_true(bulk_round(&a, &b, id, data, big) <= W);
	}
	free(data);
	mside_done(&a);
	mside_done(&b);
}

static void t_many_streams(void **s)
{
	(void)s;
	struct mside a, b;
	mside_init(&a, yamux_new(true, NULL));
	mside_init(&b, yamux_new(false, NULL));
	enum { N = 100, SZ = 5000 };
	uint64_t ids[N];
	uint8_t *data = malloc((size_t)N * SZ);
	randombytes_buf(data, (size_t)N * SZ);
	for (int i = 0; i < N; i++) {
		assert_int_equal(muxer_open(a.m, &ids[i], NULL), 0);
		assert_int_equal(muxer_write(a.m, ids[i], data + (size_t)i * SZ, SZ, NULL), SZ);
		assert_int_equal(muxer_close(a.m, ids[i], NULL), 0);
	}
	assert_int_equal(muxer_stream_count(a.m), N);
	pump_all(&a, &b, 997);
	assert_int_equal(count_ev(&b, MUXER_EV_INBOUND, UINT64_MAX), N);
	/* B echoes every stream back and closes. */
	for (int i = 0; i < N; i++) {
		buf got;
		buf_init(&got, 1 << 20);
		bool eof;
		assert_int_equal(read_all(&b, ids[i], &got, &eof), SZ);
		assert_true(eof);
		assert_memory_equal(got.data, data + (size_t)i * SZ, SZ);
		assert_int_equal(muxer_write(b.m, ids[i], got.data, got.len, NULL), SZ);
		assert_int_equal(muxer_close(b.m, ids[i], NULL), 0);
		buf_done(&got);
	}
	assert_int_equal(muxer_stream_count(b.m), 0);
	pump_all(&a, &b, 4093);
	for (int i = 0; i < N; i++) {
		buf got;
		buf_init(&got, 1 << 20);
		bool eof;
		assert_int_equal(read_all(&a, ids[i], &got, &eof), SZ);
		assert_true(eof);
		assert_memory_equal(got.data, data + (size_t)i * SZ, SZ);
		buf_done(&got);
	}
	drain_events(&a);
	assert_int_equal(count_ev(&a, MUXER_EV_CLOSED, UINT64_MAX), N);
	assert_int_equal(muxer_stream_count(a.m), 0);
	free(data);
	mside_done(&a);
	mside_done(&b);
}

static void t_reset_ping_goaway(void **s)
{
	(void)s;
	struct mside a, b;
	mside_init(&a, yamux_new(true, NULL));
	mside_init(&b, yamux_new(false, NULL));
	uint64_t id, id2;
	assert_int_equal(muxer_open(a.m, &id, NULL), 0);
	assert_int_equal(muxer_write(a.m, id, (const uint8_t *)"abc", 3, NULL), 3);
	pump_all(&a, &b, 100);
	assert_int_equal(muxer_reset(a.m, id, NULL), 0);
	assert_int_equal(muxer_reset(a.m, id, NULL), -CG_E_NOT_FOUND);
	pump_all(&a, &b, 100);
	const struct muxer_event *r = find_ev(&b, MUXER_EV_RESET);
	assert_non_null(r);
	assert_int_equal(r->id, id);
	assert_string_equal(r->reason, "reset by remote");
	assert_int_equal(muxer_write(b.m, id, (const uint8_t *)"x", 1, NULL), -CG_E_NOT_FOUND);
	/* B opens a stream: servers use even ids. */
	assert_int_equal(muxer_open(b.m, &id2, NULL), 0);
	assert_int_equal(id2, 2);
	/* Ping round trip. */
	assert_int_equal(muxer_ping(a.m, 0xfeedbeef, NULL), 0);
	pump_all(&a, &b, 5);
	const struct muxer_event *p = find_ev(&a, MUXER_EV_PONG);
	assert_non_null(p);
	assert_int_equal(p->code, 0xfeedbeef);
	/* Go-away from B: A may not open new streams; existing ones keep working. */
	assert_int_equal(muxer_goaway(b.m, NULL), 0);
	pump_all(&a, &b, 64);
	const struct muxer_event *g = find_ev(&a, MUXER_EV_GOAWAY);
	assert_non_null(g);
	assert_int_equal(g->code, YAMUX_GOAWAY_NORMAL);
	uint64_t id3;
	assert_int_equal(muxer_open(a.m, &id3, NULL), -CG_E_UNAVAILABLE);
	assert_int_equal(muxer_write(b.m, id2, (const uint8_t *)"still", 5, NULL), 5);
	pump_all(&a, &b, 64);
	buf got;
	buf_init(&got, 1024);
	bool eof;
	assert_int_equal(read_all(&a, id2, &got, &eof), 5);
	buf_done(&got);
	assert_int_equal(muxer_open(b.m, &id3, NULL), -CG_E_UNAVAILABLE);
	mside_done(&a);
	mside_done(&b);
}

/* Feeds raw bytes to a session; returns the feed result. */
static int feed_raw(muxer *m, const buf *in, size_t *used, cg_err *e)
{
	return muxer_feed(m, in->data, in->len, used, e);
}

static bool out_has_goaway(muxer *m, uint32_t code)
{
	size_t n;
	const uint8_t *p = muxer_out_peek(m, &n);
	for (size_t i = 0; i + YAMUX_HDR_LEN <= n; i += YAMUX_HDR_LEN) {
		struct yamux_hdr h;
		if (yamux_hdr_decode(p + i, n - i, &h, NULL) == YAMUX_HDR_LEN && h.type == YAMUX_GO_AWAY &&
		    h.length == code)
			return true;
	}
	return false;
}

static void t_rogue_peer(void **s)
{
	(void)s;
	size_t used;
	cg_err e;
	buf in;
	buf_init(&in, 1 << 20);
	/* Window overflow: 256 KiB + 1 bytes of data on a fresh stream. */
	muxer *m = yamux_new(false, NULL);
	hdr(&in, YAMUX_WINDOW_UPDATE, YAMUX_SYN, 1, 0);
	hdr(&in, YAMUX_DATA, 0, 1, YAMUX_INITIAL_WINDOW + 1);
	assert_int_equal(feed_raw(m, &in, &used, &e), -CG_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "window"));
	assert_true(out_has_goaway(m, YAMUX_GOAWAY_PROTOCOL));
	assert_true(muxer_feed(m, in.data, in.len, &used, NULL) < 0); /* dead */
	uint64_t id;
	assert_int_equal(muxer_open(m, &id, NULL), -CG_E_UNAVAILABLE);
	muxer_free(m);
	/* Exactly one window is fine, split over two frames. */
	buf_reset(&in);
	m = yamux_new(false, NULL);
	hdr(&in, YAMUX_DATA, YAMUX_SYN, 1, 1000);
	uint8_t *zeros = calloc(1, YAMUX_INITIAL_WINDOW);
	assert_int_equal(buf_append(&in, zeros, 1000), 0);
	hdr(&in, YAMUX_DATA, 0, 1, YAMUX_INITIAL_WINDOW - 1000);
	assert_int_equal(buf_append(&in, zeros, YAMUX_INITIAL_WINDOW - 1000), 0);
	assert_int_equal(feed_raw(m, &in, &used, NULL), 0);
	assert_int_equal(used, in.len);
	/* ...but one more byte is not. */
	buf_reset(&in);
	hdr(&in, YAMUX_DATA, 0, 1, 1);
	assert_int_equal(buf_append(&in, "x", 1), 0);
	assert_int_equal(feed_raw(m, &in, &used, NULL), -CG_E_INVALID_ARGUMENT);
	muxer_free(m);
	free(zeros);
	/* Wrong parity: a server must not receive a SYN for an even id. */
	buf_reset(&in);
	m = yamux_new(false, NULL);
	hdr(&in, YAMUX_WINDOW_UPDATE, YAMUX_SYN, 2, 0);
	assert_int_equal(feed_raw(m, &in, &used, &e), -CG_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "parity"));
	muxer_free(m);
	/* Duplicate SYN. */
	buf_reset(&in);
	m = yamux_new(false, NULL);
	hdr(&in, YAMUX_WINDOW_UPDATE, YAMUX_SYN, 1, 0);
	hdr(&in, YAMUX_WINDOW_UPDATE, YAMUX_SYN, 1, 0);
	assert_int_equal(feed_raw(m, &in, &used, NULL), -CG_E_INVALID_ARGUMENT);
	muxer_free(m);
	/* Bad version, frames on stream 0, window overflow of the send window. */
	static const uint8_t v1[] = {1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0};
	m = yamux_new(false, NULL);
	assert_int_equal(muxer_feed(m, v1, sizeof v1, &used, NULL), -CG_E_INVALID_ARGUMENT);
	muxer_free(m);
	buf_reset(&in);
	m = yamux_new(false, NULL);
	hdr(&in, YAMUX_DATA, 0, 0, 0);
	assert_int_equal(feed_raw(m, &in, &used, NULL), -CG_E_INVALID_ARGUMENT);
	muxer_free(m);
	buf_reset(&in);
	m = yamux_new(false, NULL);
	hdr(&in, YAMUX_WINDOW_UPDATE, YAMUX_SYN, 1, 0);
	hdr(&in, YAMUX_WINDOW_UPDATE, 0, 1, UINT32_MAX);
	assert_int_equal(feed_raw(m, &in, &used, NULL), -CG_E_INVALID_ARGUMENT);
	muxer_free(m);
	/* Frames for unknown streams are ignored (their data skipped), partial headers are left unconsumed. */
	buf_reset(&in);
	m = yamux_new(false, NULL);
	hdr(&in, YAMUX_DATA, 0, 77, 3);
	assert_int_equal(buf_append(&in, "abc", 3), 0);
	hdr(&in, YAMUX_WINDOW_UPDATE, YAMUX_FIN, 79, 0);
	assert_int_equal(buf_append(&in, "\x00\x02\x00", 3), 0);
	assert_int_equal(feed_raw(m, &in, &used, NULL), 0);
	assert_int_equal(used, in.len - 3);
	assert_int_equal(muxer_stream_count(m), 0);
	muxer_free(m);
	buf_done(&in);
}

static void t_stream_flood(void **s)
{
	(void)s;
	struct muxer_limits lim = {.max_streams = 16};
	muxer *m = yamux_new(false, &lim);
	buf in;
	buf_init(&in, 1 << 20);
	for (uint32_t i = 0; i < 2000; i++)
		hdr(&in, YAMUX_WINDOW_UPDATE, YAMUX_SYN, 2 * i + 1, 0);
	size_t off = 0, used;
	int inbound = 0;
	/* Feed everything, draining events and output as a real swarm would. */
	while (off < in.len) {
		assert_int_equal(muxer_feed(m, in.data + off, in.len - off, &used, NULL), 0);
		off += used;
		struct muxer_event ev;
		while (muxer_poll(m, &ev))
			inbound += ev.type == MUXER_EV_INBOUND;
		size_t n;
		const uint8_t *p = muxer_out_peek(m, &n);
		(void)p;
		muxer_out_consume(m, n);
		if (!used)
			break;
	}
	assert_int_equal(off, in.len);
	assert_int_equal(inbound, 16);
	assert_int_equal(muxer_stream_count(m), 16);
	/* Streams that go away free their slots: the peer resets one, a new SYN is accepted. */
	buf_reset(&in);
	hdr(&in, YAMUX_WINDOW_UPDATE, YAMUX_RST, 1, 0);
	hdr(&in, YAMUX_WINDOW_UPDATE, YAMUX_SYN, 4001, 0);
	assert_int_equal(muxer_feed(m, in.data, in.len, &used, NULL), 0);
	assert_int_equal(muxer_stream_count(m), 16);
	assert_int_equal(muxer_set_user(m, 4001, &in), 0); /* the new stream exists */
	struct muxer_event ev;
	int resets = 0, opened = 0;
	while (muxer_poll(m, &ev)) {
		resets += ev.type == MUXER_EV_RESET && ev.id == 1;
		opened += ev.type == MUXER_EV_INBOUND && ev.id == 4001;
	}
	assert_int_equal(resets, 1);
	assert_int_equal(opened, 1);
	muxer_free(m);
	buf_done(&in);
}

static void t_backpressure(void **s)
{
	(void)s;
	/* A small output cap: writes come back short and WRITABLE follows once the output drains. */
	struct muxer_limits lim = {.out_cap = 4096};
	muxer *m = yamux_new(true, &lim);
	uint64_t id;
	assert_int_equal(muxer_open(m, &id, NULL), 0);
	uint8_t data[10000] = {0};
	long k = muxer_write(m, id, data, sizeof data, NULL);
	assert_true(k > 0 && k < (long)sizeof data);
	assert_int_equal(muxer_write(m, id, data, sizeof data, NULL), 0);
	struct muxer_event ev;
	assert_int_equal(muxer_poll(m, &ev), 0);
	size_t n;
	muxer_out_peek(m, &n);
	assert_true(n <= 4096);
	muxer_out_consume(m, n);
	assert_int_equal(muxer_poll(m, &ev), 1);
	assert_int_equal(ev.type, MUXER_EV_WRITABLE);
	assert_int_equal(ev.id, id);
	muxer_free(m);
	/* Event backpressure: a flood of pings while nobody drains the output stops consuming input. */
	m = yamux_new(false, &lim);
	buf in;
	buf_init(&in, 1 << 20);
	for (int i = 0; i < 5000; i++)
		hdr(&in, YAMUX_PING, YAMUX_SYN, 0, (uint32_t)i);
	size_t used;
	assert_int_equal(muxer_feed(m, in.data, in.len, &used, NULL), 0);
	assert_true(used < in.len);
	muxer_out_peek(m, &n);
	assert_true(n <= 4096 + YAMUX_HDR_LEN);
	muxer_out_consume(m, n);
	size_t used2;
	assert_int_equal(muxer_feed(m, in.data + used, in.len - used, &used2, NULL), 0);
	assert_true(used2 > 0);
	buf_done(&in);
	muxer_free(m);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_header),	       cmocka_unit_test(t_echo_and_close),
		cmocka_unit_test(t_flow_control),    cmocka_unit_test(t_many_streams),
		cmocka_unit_test(t_reset_ping_goaway), cmocka_unit_test(t_rogue_peer),
		cmocka_unit_test(t_stream_flood),    cmocka_unit_test(t_backpressure),
		cmocka_unit_test(t_window_autotune),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
