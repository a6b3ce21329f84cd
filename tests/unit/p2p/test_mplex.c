/* mplex: header codec, sessions back to back (both sides opening the same wire id, echo, half-close, reset,
 * 100 concurrent streams) and a rogue peer (buffer overflow without flow control, oversize frames, unknown
 * flags, duplicate NewStream, stream floods). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "mux_harness.h"
#include "p2p/mplex.h"

static void frame(buf *b, uint64_t id, uint8_t flag, const void *p, size_t n)
{
	uint8_t h[18];
	struct mplex_hdr x = {id, flag, (uint32_t)n};
	size_t k = mplex_hdr_encode(h, &x);
	assert_int_equal(buf_append(b, h, k), 0);
	assert_int_equal(buf_append(b, p, n), 0);
}

static void t_header(void **s)
{
	(void)s;
	uint8_t b[18];
	/* id 17, MessageInitiator (2), 300 bytes: header 17<<3|2 = 138 = 8a 01, length ac 02. */
	struct mplex_hdr h = {17, MPLEX_MSG_INITIATOR, 300}, g;
	size_t n = mplex_hdr_encode(b, &h);
	static const uint8_t want[] = {0x8a, 0x01, 0xac, 0x02};
	assert_int_equal(n, 4);
	assert_memory_equal(b, want, 4);
	for (size_t k = 0; k < n; k++)
		assert_int_equal(mplex_hdr_decode(b, k, &g, NULL), 0);
	assert_int_equal(mplex_hdr_decode(b, n, &g, NULL), 4);
	assert_true(g.id == 17 && g.flag == MPLEX_MSG_INITIATOR && g.length == 300);
	static const uint8_t flag7[] = {0x07, 0x00};
	assert_int_equal(mplex_hdr_decode(flag7, 2, &g, NULL), -CG_E_INVALID_ARGUMENT);
	static const uint8_t big[] = {0x02, 0x81, 0x80, 0x40}; /* length 1 MiB + 1 */
	assert_int_equal(mplex_hdr_decode(big, 4, &g, NULL), -CG_E_INVALID_ARGUMENT);
	static const uint8_t nonmin[] = {0x82, 0x00, 0x00};
	assert_int_equal(mplex_hdr_decode(nonmin, 3, &g, NULL), -CG_E_INVALID_ARGUMENT);
}

static void t_echo_same_ids(void **s)
{
	(void)s;
	for (size_t chunk = 1; chunk <= 4096; chunk *= 8) {
		struct mside a, b;
		mside_init(&a, mplex_new(true, NULL));
		mside_init(&b, mplex_new(false, NULL));
		assert_string_equal(muxer_protocol(a.m), MPLEX_PROTOCOL);
		uint64_t ia, ib;
		/* Both sides open wire id 0: they are different streams. */
		assert_int_equal(muxer_open(a.m, &ia, NULL), 0);
		assert_int_equal(muxer_open(b.m, &ib, NULL), 0);
		assert_int_equal(ia, ib);
		assert_int_equal(muxer_write(a.m, ia, (const uint8_t *)"from-a", 6, NULL), 6);
		assert_int_equal(muxer_write(b.m, ib, (const uint8_t *)"from-b", 6, NULL), 6);
		assert_int_equal(muxer_close(a.m, ia, NULL), 0);
		pump_all(&a, &b, chunk);
		const struct muxer_event *in_b = find_ev(&b, MUXER_EV_INBOUND);
		const struct muxer_event *in_a = find_ev(&a, MUXER_EV_INBOUND);
		assert_non_null(in_b);
		assert_non_null(in_a);
		assert_int_equal(in_b->id, ia | 1); /* remote-opened handles have the low bit set */
		buf got;
		buf_init(&got, 1 << 20);
		bool eof;
		assert_int_equal(read_all(&b, in_b->id, &got, &eof), 6);
		assert_memory_equal(got.data, "from-a", 6);
		assert_true(eof);
		buf_reset(&got);
		assert_int_equal(read_all(&a, in_a->id, &got, &eof), 6);
		assert_memory_equal(got.data, "from-b", 6);
		assert_false(eof);
		/* B replies on A's stream and closes; A's stream finishes. */
		assert_int_equal(muxer_write(b.m, in_b->id, (const uint8_t *)"reply", 5, NULL), 5);
		assert_int_equal(muxer_close(b.m, in_b->id, NULL), 0);
		pump_all(&a, &b, chunk);
		buf_reset(&got);
		assert_int_equal(read_all(&a, ia, &got, &eof), 5);
		assert_memory_equal(got.data, "reply", 5);
		assert_true(eof);
		drain_events(&a);
		assert_int_equal(count_ev(&a, MUXER_EV_CLOSED, ia), 1);
		/* Reset the other one from A: B sees a reset. */
		assert_int_equal(muxer_reset(a.m, in_a->id, NULL), 0);
		pump_all(&a, &b, chunk);
		const struct muxer_event *r = find_ev(&b, MUXER_EV_RESET);
		assert_non_null(r);
		assert_int_equal(r->id, ib);
		assert_int_equal(muxer_stream_count(a.m), 0);
		assert_int_equal(muxer_stream_count(b.m), 0);
		assert_int_equal(muxer_ping(a.m, 1, NULL), -CG_E_UNAVAILABLE);
		buf_done(&got);
		mside_done(&a);
		mside_done(&b);
	}
}

static void t_many_streams(void **s)
{
	(void)s;
	struct mside a, b;
	mside_init(&a, mplex_new(true, NULL));
	mside_init(&b, mplex_new(false, NULL));
	enum { N = 100, SZ = 70000 }; /* larger than one 64 KiB message: split into two frames */
	uint64_t ids[N];
	uint8_t *data = malloc((size_t)N * SZ);
	randombytes_buf(data, (size_t)N * SZ);
	struct muxer_limits big = {.out_cap = 16u << 20};
	muxer_free(a.m);
	a.m = mplex_new(true, &big);
	for (int i = 0; i < N; i++) {
		assert_int_equal(muxer_open(a.m, &ids[i], NULL), 0);
		assert_int_equal(muxer_write(a.m, ids[i], data + (size_t)i * SZ, SZ, NULL), SZ);
		assert_int_equal(muxer_close(a.m, ids[i], NULL), 0);
	}
	pump_all(&a, &b, 65536);
	assert_int_equal(count_ev(&b, MUXER_EV_INBOUND, UINT64_MAX), N);
	for (int i = 0; i < N; i++) {
		buf got;
		buf_init(&got, 1 << 20);
		bool eof;
		assert_int_equal(read_all(&b, ids[i] | 1, &got, &eof), SZ);
		assert_true(eof);
		assert_memory_equal(got.data, data + (size_t)i * SZ, SZ);
		assert_int_equal(muxer_close(b.m, ids[i] | 1, NULL), 0);
		buf_done(&got);
	}
	pump_all(&a, &b, 65536);
	/* A had closed and read nothing more: B's close finishes each stream at once, so CLOSED (which implies
	 * the end of input) is the only event; the EOF queued just before it is dropped as stale. */
	assert_int_equal(count_ev(&a, MUXER_EV_EOF, UINT64_MAX), 0);
	assert_int_equal(count_ev(&a, MUXER_EV_CLOSED, UINT64_MAX), N);
	assert_int_equal(muxer_stream_count(a.m), 0);
	assert_int_equal(muxer_stream_count(b.m), 0);
	free(data);
	mside_done(&a);
	mside_done(&b);
}

static void t_rogue_peer(void **s)
{
	(void)s;
	size_t used;
	cg_err e;
	buf in;
	buf_init(&in, 8u << 20);
	/* A writer that ignores that nobody reads: the stream is reset at the cap, the session lives on. */
	struct muxer_limits lim = {.max_stream_buffer = 100000};
	muxer *m = mplex_new(false, &lim);
	frame(&in, 3, MPLEX_NEW_STREAM, "3", 1);
	static uint8_t chunk[60000];
	for (int i = 0; i < 4; i++)
		frame(&in, 3, MPLEX_MSG_INITIATOR, chunk, sizeof chunk);
	frame(&in, 4, MPLEX_NEW_STREAM, "4", 1);
	frame(&in, 4, MPLEX_MSG_INITIATOR, "ok", 2);
	assert_int_equal(muxer_feed(m, in.data, in.len, &used, NULL), 0);
	assert_int_equal(used, in.len);
	struct muxer_event ev;
	int resets = 0;
	while (muxer_poll(m, &ev))
		if (ev.type == MUXER_EV_RESET) {
			resets++;
			assert_int_equal(ev.id, 3 << 1 | 1);
			assert_string_equal(ev.reason, "receive buffer overflow");
		}
	assert_int_equal(resets, 1);
	assert_int_equal(muxer_stream_count(m), 1);
	uint8_t tmp[8];
	bool eof;
	assert_int_equal(muxer_read(m, 4 << 1 | 1, tmp, sizeof tmp, &eof, NULL), 2);
	/* Our reset went out as ResetReceiver (we did not open stream 3). */
	size_t n;
	const uint8_t *p = muxer_out_peek(m, &n);
	struct mplex_hdr h;
	assert_true(n > 0);
	assert_int_equal(mplex_hdr_decode(p, n, &h, NULL), 2);
	assert_true(h.id == 3 && h.flag == MPLEX_RESET_RECEIVER);
	muxer_free(m);
	/* Oversize frame, unknown flag, duplicate NewStream: session errors. */
	static const uint8_t big[] = {0x02, 0x81, 0x80, 0x40};
	m = mplex_new(false, NULL);
	assert_int_equal(muxer_feed(m, big, sizeof big, &used, &e), -CG_E_INVALID_ARGUMENT);
	assert_true(muxer_feed(m, big, sizeof big, &used, NULL) < 0);
	muxer_free(m);
	static const uint8_t flag7[] = {0x0f, 0x00};
	m = mplex_new(false, NULL);
	assert_int_equal(muxer_feed(m, flag7, sizeof flag7, &used, NULL), -CG_E_INVALID_ARGUMENT);
	muxer_free(m);
	buf_reset(&in);
	frame(&in, 9, MPLEX_NEW_STREAM, "", 0);
	frame(&in, 9, MPLEX_NEW_STREAM, "", 0);
	m = mplex_new(false, NULL);
	assert_int_equal(muxer_feed(m, in.data, in.len, &used, &e), -CG_E_INVALID_ARGUMENT);
	muxer_free(m);
	/* Data after the remote closed resets that stream; messages for unknown streams are skipped. */
	buf_reset(&in);
	frame(&in, 1, MPLEX_NEW_STREAM, "", 0);
	frame(&in, 1, MPLEX_CLOSE_INITIATOR, "", 0);
	frame(&in, 1, MPLEX_MSG_INITIATOR, "late", 4);
	frame(&in, 50, MPLEX_MSG_INITIATOR, "stray", 5);
	frame(&in, 50, MPLEX_MSG_RECEIVER, "stray", 5);
	m = mplex_new(false, NULL);
	assert_int_equal(muxer_feed(m, in.data, in.len, &used, NULL), 0);
	assert_int_equal(used, in.len);
	assert_int_equal(muxer_stream_count(m), 0);
	resets = 0;
	while (muxer_poll(m, &ev))
		resets += ev.type == MUXER_EV_RESET;
	assert_int_equal(resets, 1);
	muxer_free(m);
	/* Stream flood against a limit; after go-away new streams are refused too. */
	struct muxer_limits few = {.max_streams = 8};
	m = mplex_new(false, &few);
	buf_reset(&in);
	for (int i = 0; i < 1000; i++)
		frame(&in, (uint64_t)i, MPLEX_NEW_STREAM, "", 0);
	size_t off = 0;
	while (off < in.len) {
		assert_int_equal(muxer_feed(m, in.data + off, in.len - off, &used, NULL), 0);
		off += used;
		while (muxer_poll(m, &ev))
			;
		muxer_out_peek(m, &n);
		muxer_out_consume(m, n);
	}
	assert_int_equal(muxer_stream_count(m), 8);
	assert_int_equal(muxer_goaway(m, NULL), 0);
	buf_reset(&in);
	frame(&in, 5000, MPLEX_NEW_STREAM, "", 0);
	assert_int_equal(muxer_feed(m, in.data, in.len, &used, NULL), 0);
	assert_int_equal(muxer_stream_count(m), 8);
	uint64_t id;
	assert_int_equal(muxer_open(m, &id, NULL), -CG_E_UNAVAILABLE);
	muxer_free(m);
	/* A partial header is left unconsumed. */
	m = mplex_new(false, NULL);
	static const uint8_t part[] = {0x8a};
	assert_int_equal(muxer_feed(m, part, 1, &used, NULL), 0);
	assert_int_equal(used, 0);
	muxer_free(m);
	buf_done(&in);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_header),
		cmocka_unit_test(t_echo_same_ids),
		cmocka_unit_test(t_many_streams),
		cmocka_unit_test(t_rogue_peer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
