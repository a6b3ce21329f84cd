/* SSE parser: every split point, all three line endings, comments, names, multi-line data, caps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/sse.h"

struct rec {
	char out[4096];
	int n;
	int stop_after;
};

static int on_ev(void *arg, const char *event, const char *data, size_t len)
{
	struct rec *r = arg;
	assert_int_equal(strlen(data), len);
	size_t used = strlen(r->out);
	snprintf(r->out + used, sizeof r->out - used, "[%s|%s]", event, data);
	r->n++;
	if (r->stop_after && r->n >= r->stop_after)
		return -42;
	return 0;
}

static const char stream[] = "\xef\xbb\xbf: comment\n"
			     "data: {\"a\":1}\n\n"
			     "event: receipt\r\ndata: line1\r\ndata: line2\r\n\r\n"
			     "data:nospace\r\rdata: [DONE]\n\n"
			     "id: 7\nretry: 10\nunknown\ndata\n\n";
static const char want[] = "[|{\"a\":1}][receipt|line1\nline2][|nospace][|[DONE]][|]";

static void t_splits(void **s)
{
	size_t n = sizeof stream - 1;
	for (size_t cut = 0; cut <= n; cut++) {
		struct rec r = {0};
		struct sse_parser p;
		cg_err e;
		sse_init(&p, 1024, on_ev, &r);
		assert_int_equal(sse_feed(&p, stream, cut, &e), 0);
		assert_int_equal(sse_feed(&p, stream + cut, n - cut, &e), 0);
		assert_false(sse_finish(&p));
		assert_string_equal(r.out, want);
		sse_done(&p);
	}
	/* Byte by byte. */
	struct rec r = {0};
	struct sse_parser p;
	cg_err e;
	sse_init(&p, 1024, on_ev, &r);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(sse_feed(&p, stream + i, 1, &e), 0);
	assert_string_equal(r.out, want);
	sse_done(&p);
}

static void t_cut_and_caps(void **s)
{
	struct rec r = {0};
	struct sse_parser p;
	cg_err e;
	sse_init(&p, 16, on_ev, &r);
	assert_int_equal(sse_feed(&p, "data: 0123456789\n\ndata: partial", 31, &e), 0);
	assert_int_equal(r.n, 1);
	assert_true(sse_finish(&p)); /* an event was pending: the stream was cut */
	/* Over the cap: one long line, or many data lines. */
	char big[64];
	memset(big, 'x', sizeof big);
	assert_int_equal(sse_feed(&p, "data: ", 6, &e), 0);
	assert_int_equal(sse_feed(&p, big, sizeof big, &e), -CG_E_INVALID_ARGUMENT);
	sse_done(&p);
	sse_init(&p, 16, on_ev, &r);
	int rc = 0;
	for (int i = 0; i < 10 && rc == 0; i++)
		rc = sse_feed(&p, "data: abc\n", 10, &e);
	assert_int_equal(rc, -CG_E_INVALID_ARGUMENT);
	sse_done(&p);
	/* A callback can stop the parser. */
	struct rec r2 = {.stop_after = 1};
	sse_init(&p, 100, on_ev, &r2);
	assert_int_equal(sse_feed(&p, "data: a\n\ndata: b\n\n", 18, &e), -42);
	assert_int_equal(r2.n, 1);
	sse_done(&p);
}

static void t_frame(void **s)
{
	buf b;
	buf_init(&b, 1024);
	assert_int_equal(sse_frame(&b, NULL, "x", 1), 0);
	assert_int_equal(sse_frame(&b, "receipt", "a\nb", 3), 0);
	assert_int_equal(sse_frame(&b, NULL, "", 0), 0);
	assert_string_equal(buf_cstr(&b), "data: x\n\nevent: receipt\ndata: a\ndata: b\n\ndata: \n\n");
	/* What the writer makes, the parser reads back. */
	struct rec r = {0};
	struct sse_parser p;
	cg_err e;
	sse_init(&p, 100, on_ev, &r);
	assert_int_equal(sse_feed(&p, b.data, b.len, &e), 0);
	assert_string_equal(r.out, "[|x][receipt|a\nb][|]");
	sse_done(&p);
	buf_done(&b);
	buf_init(&b, 8);
	assert_int_equal(sse_frame(&b, NULL, "0123456789", 10), -1);
	buf_done(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_splits),
		cmocka_unit_test(t_cut_and_caps),
		cmocka_unit_test(t_frame),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
