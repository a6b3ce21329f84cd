/* multistream-select 1.0: exact transcripts, na and ls, byte-by-byte feeding, leftovers, bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "p2p/mss.h"

/* Moves all of a's output to b and back until both are done or one fails, feeding in chunks of `step`. */
struct side {
	mss *m;
	buf out;   /* what this side sent, not yet delivered */
	buf in;    /* delivered, not yet consumed */
	int rc;
};

static void deliver(struct side *from, struct side *to, size_t step, cg_err *e)
{
	while (from->out.len && to->rc == MSS_CONTINUE) {
		size_t k = from->out.len < step ? from->out.len : step;
		assert_int_equal(buf_append(&to->in, from->out.data, k), 0);
		buf_consume(&from->out, k);
		size_t used;
		to->rc = mss_feed(to->m, to->in.data, to->in.len, &used, &to->out, e);
		buf_consume(&to->in, used);
	}
}

static void negotiate(struct side *a, struct side *b, size_t step, cg_err *e)
{
	a->rc = b->rc = MSS_CONTINUE;
	assert_int_equal(mss_start(a->m, &a->out), 0);
	assert_int_equal(mss_start(b->m, &b->out), 0);
	for (int round = 0; round < 100 && (a->out.len || b->out.len); round++) {
		deliver(a, b, step, e);
		deliver(b, a, step, e);
		if (a->rc < 0 || b->rc < 0)
			break;
	}
}

static void side_init(struct side *s, mss *m)
{
	memset(s, 0, sizeof *s);
	s->m = m;
	buf_init(&s->out, 1 << 16);
	buf_init(&s->in, 1 << 16);
}

static void side_done(struct side *s)
{
	mss_free(s->m);
	buf_done(&s->out);
	buf_done(&s->in);
}

static void t_transcript(void **s)
{
	(void)s;
	const char *ip[] = {"/noise"};
	mss *m = mss_new_initiator(ip, 1, false, NULL);
	buf out;
	buf_init(&out, 1024);
	assert_int_equal(mss_start(m, &out), 0);
	/* 0x13 "/multistream/1.0.0\n" 0x07 "/noise\n" */
	static const uint8_t want[] = "\x13/multistream/1.0.0\n\x07/noise\n";
	assert_int_equal(out.len, sizeof want - 1);
	assert_memory_equal(out.data, want, sizeof want - 1);
	/* Responder answers header + echo, followed by the first noise bytes, in one chunk. */
	uint8_t in[64];
	memcpy(in, want, sizeof want - 1);
	memcpy(in + sizeof want - 1, "\x00\x20XYZ", 5);
	size_t used;
	buf_reset(&out);
	assert_int_equal(mss_feed(m, in, sizeof want - 1 + 5, &used, &out, NULL), MSS_DONE);
	assert_int_equal(used, sizeof want - 1); /* the noise bytes are left for the next layer */
	assert_string_equal(mss_selected(m), "/noise");
	assert_int_equal(mss_selected_index(m), 0);
	assert_int_equal(out.len, 0);
	/* Feeding after DONE consumes nothing. */
	assert_int_equal(mss_feed(m, in, 5, &used, &out, NULL), MSS_DONE);
	assert_int_equal(used, 0);
	mss_free(m);
	buf_done(&out);
}

static void t_na_fallback_all_chunkings(void **s)
{
	(void)s;
	for (size_t step = 1; step <= 64; step = step * 2 + 1) {
		const char *ip[] = {"/mplex/6.7.0", "/yamux/1.0.0"};
		const char *rp[] = {"/yamux/1.0.0", "/other/1"};
		struct side a, b;
		cg_err e;
		side_init(&a, mss_new_initiator(ip, 2, false, NULL));
		side_init(&b, mss_new_responder(rp, 2, NULL));
		negotiate(&a, &b, step, &e);
		assert_int_equal(a.rc, MSS_DONE);
		assert_int_equal(b.rc, MSS_DONE);
		assert_string_equal(mss_selected(a.m), "/yamux/1.0.0");
		assert_int_equal(mss_selected_index(a.m), 1);
		assert_string_equal(mss_selected(b.m), "/yamux/1.0.0");
		assert_int_equal(mss_selected_index(b.m), 0);
		assert_int_equal(a.in.len + b.in.len, 0);
		side_done(&a);
		side_done(&b);
	}
}

static void t_no_common(void **s)
{
	(void)s;
	const char *ip[] = {"/a", "/b"};
	const char *rp[] = {"/c"};
	struct side a, b;
	cg_err e = {0};
	side_init(&a, mss_new_initiator(ip, 2, false, NULL));
	side_init(&b, mss_new_responder(rp, 1, NULL));
	negotiate(&a, &b, 1000, &e);
	assert_int_equal(a.rc, -CG_E_NOT_FOUND);
	assert_non_null(strstr(e.msg, "no protocol in common"));
	assert_int_equal(b.rc, MSS_CONTINUE);
	assert_null(mss_selected(a.m));
	side_done(&a);
	side_done(&b);
}

static void t_ls(void **s)
{
	(void)s;
	const char *ip[] = {"/ipfs/ping/1.0.0"};
	const char *rp[] = {"/ipfs/id/1.0.0", "/ipfs/ping/1.0.0", "/clawgrid/echo/1.0.0"};
	struct side a, b;
	side_init(&a, mss_new_initiator(ip, 1, true, NULL));
	side_init(&b, mss_new_responder(rp, 3, NULL));
	negotiate(&a, &b, 7, NULL);
	assert_int_equal(a.rc, MSS_DONE);
	assert_int_equal(b.rc, MSS_DONE);
	assert_int_equal(mss_ls_count(a.m), 3);
	assert_string_equal(mss_ls_get(a.m, 0), "/ipfs/id/1.0.0");
	assert_string_equal(mss_ls_get(a.m, 2), "/clawgrid/echo/1.0.0");
	assert_null(mss_ls_get(a.m, 3));
	assert_string_equal(mss_selected(b.m), "/ipfs/ping/1.0.0");
	side_done(&a);
	side_done(&b);

	/* The exact ls answer bytes: <len> ( <len> proto \n )* \n */
	const char *one[] = {"/p"};
	mss *r = mss_new_responder(one, 1, NULL);
	buf out;
	buf_init(&out, 1024);
	assert_int_equal(mss_start(r, &out), 0);
	buf_reset(&out);
	static const uint8_t q[] = "\x13/multistream/1.0.0\n\x03ls\n";
	size_t used;
	assert_int_equal(mss_feed(r, q, sizeof q - 1, &used, &out, NULL), MSS_CONTINUE);
	assert_int_equal(used, sizeof q - 1);
	static const uint8_t ans[] = "\x05\x03/p\n\n";
	assert_int_equal(out.len, sizeof ans - 1);
	assert_memory_equal(out.data, ans, sizeof ans - 1);
	mss_free(r);
	buf_done(&out);
}

static void t_bad_input(void **s)
{
	(void)s;
	const char *rp[] = {"/x"};
	static const struct {
		const char *in;
		size_t n;
	} bad[] = {
		{"\x05hello", 6},                            /* no newline */
		{"\x13/multistream/2.0.0\n", 20},            /* wrong header */
		{"\x00", 1},                                 /* empty message */
		{"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 10}, /* overlong varint */
		{"\x81\x00", 2},                             /* non-minimal varint */
		{"\x81\x08", 2},                             /* 1025 bytes: over the cap, refused at once */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		mss *r = mss_new_responder(rp, 1, NULL);
		buf out;
		buf_init(&out, 1024);
		assert_int_equal(mss_start(r, &out), 0);
		size_t used;
		cg_err e = {0};
		assert_int_equal(mss_feed(r, (const uint8_t *)bad[i].in, bad[i].n, &used, &out, &e),
				 -CG_E_INVALID_ARGUMENT);
		assert_true(strlen(e.msg) > 0);
		/* Dead afterwards. */
		assert_true(mss_feed(r, (const uint8_t *)"\x03/x\n", 4, &used, &out, NULL) < 0);
		mss_free(r);
		buf_done(&out);
	}
	/* A responder gives up after too many unknown proposals. */
	mss *r = mss_new_responder(rp, 1, NULL);
	buf out, in;
	buf_init(&out, 1 << 20);
	buf_init(&in, 1 << 20);
	assert_int_equal(mss_start(r, &out), 0);
	assert_int_equal(mss_put_msg(&in, MSS_PROTOCOL, strlen(MSS_PROTOCOL)), 0);
	for (int i = 0; i < 200; i++)
		assert_int_equal(mss_put_msg(&in, "/nope", 5), 0);
	size_t used;
	assert_int_equal(mss_feed(r, in.data, in.len, &used, &out, NULL), -CG_E_INVALID_ARGUMENT);
	assert_true(used < in.len);
	mss_free(r);
	buf_done(&out);
	buf_done(&in);
	/* Initiator: an answer that is neither the proposal nor na. */
	const char *ip[] = {"/x"};
	mss *a = mss_new_initiator(ip, 1, false, NULL);
	buf_init(&out, 1024);
	assert_int_equal(mss_start(a, &out), 0);
	static const uint8_t wrong[] = "\x13/multistream/1.0.0\n\x03/y\n";
	assert_int_equal(mss_feed(a, wrong, sizeof wrong - 1, &used, &out, NULL), -CG_E_INVALID_ARGUMENT);
	mss_free(a);
	buf_done(&out);
	/* Bad protocol lists are caller errors reported at creation. */
	const char *nl[] = {"/a\nb"};
	assert_null(mss_new_responder(nl, 1, NULL));
	assert_null(mss_new_initiator(ip, 0, false, NULL));
	const char *empty[] = {""};
	assert_null(mss_new_initiator(empty, 1, false, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_transcript), cmocka_unit_test(t_na_fallback_all_chunkings),
		cmocka_unit_test(t_no_common),	cmocka_unit_test(t_ls),
		cmocka_unit_test(t_bad_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
