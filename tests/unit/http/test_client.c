/* http/client over libevent against the OpenAI TEST DOUBLE: streaming pieces, buffered bodies and caps, headers,
 * the four timeouts, unreachable hosts (no URL in errors), cancellation (the server sees the client leave). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "oai_double.h"
#include "http/client.h"

struct res {
	struct event_base *base;
	struct hc_req *req;
	long status;
	int pieces, done;
	char body[65536];
	size_t len;
	cg_err e;
	bool failed;
	char ctype[128];
	int cancel_after;
};

static int on_headers(void *arg, long status, struct hc_req *r)
{
	struct res *x = arg;
	x->status = status;
	hc_header(r, "content-type", x->ctype, sizeof x->ctype);
	return 0;
}

static int on_data(void *arg, const char *p, size_t n)
{
	struct res *x = arg;
	x->pieces++;
	if (x->len + n < sizeof x->body) {
		memcpy(x->body + x->len, p, n);
		x->len += n;
	}
	if (x->cancel_after && x->pieces >= x->cancel_after) {
		hc_cancel(x->req); /* from inside the callback */
		x->done = 1;
		event_base_loopexit(x->base, NULL);
	}
	return 0;
}

static void on_done(void *arg, long status, const char *body, size_t n, const cg_err *e)
{
	struct res *x = arg;
	x->done = 1;
	x->status = status;
	if (e) {
		x->failed = true;
		x->e = *e;
	}
	if (body && n && n < sizeof x->body) {
		memcpy(x->body, body, n);
		x->len = n;
	}
	event_base_loopexit(x->base, NULL);
}

static const struct hc_cb cb = {on_headers, on_data, on_done};

static void run(struct event_base *base, struct hc *c, struct hc_opts *o, struct res *x)
{
	cg_err e;
	x->base = base;
	x->req = hc_start(c, o, &cb, x, &e);
	assert_non_null(x->req);
	struct timeval limit = {20, 0};
	event_base_loopexit(base, &limit);
	event_base_dispatch(base);
	assert_true(x->done);
}

static char url[256];

static void t_all(void **s)
{
	struct oai_double_opts oo = {.tokens = 5};
	struct oai_double *d = oai_double_start(&oo);
	assert_non_null(d);
	struct event_base *base = event_base_new();
	struct hc *c;
	cg_err e;
	assert_int_equal(hc_new(base, &c, &e), 0);
	snprintf(url, sizeof url, "%s/v1/chat/completions", oai_double_url(d));
	const char *hdrs[] = {"Content-Type: application/json", NULL};

	/* Stream. */
	const char *sb = "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"[double:slow=5]\"}]}";
	struct hc_opts o = {.method = "POST", .url = url, .headers = hdrs, .body = sb, .body_len = strlen(sb),
			    .stream = true, .idle_timeout_ms = 2000, .first_byte_timeout_ms = 2000};
	struct res x = {0};
	run(base, c, &o, &x);
	assert_false(x.failed);
	assert_int_equal(x.status, 200);
	assert_string_equal(x.ctype, "text/event-stream");
	assert_true(x.pieces >= 5); /* one write per chunk, 5 ms apart */
	assert_non_null(strstr(x.body, "data: [DONE]"));

	/* Buffered, and a cap that is too small. */
	const char *bb = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
	struct hc_opts ob = {.method = "POST", .url = url, .headers = hdrs, .body = bb, .body_len = strlen(bb)};
	memset(&x, 0, sizeof x);
	run(base, c, &ob, &x);
	assert_false(x.failed);
	assert_non_null(strstr(x.body, "\"chat.completion\""));
	ob.max_response = 16;
	memset(&x, 0, sizeof x);
	run(base, c, &ob, &x);
	assert_true(x.failed);
	assert_int_equal(x.e.code, CG_E_UNAVAILABLE);

	/* Idle timeout: one chunk, then nothing. */
	const char *st = "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"[double:stall=1]\"}]}";
	struct hc_opts os = {.method = "POST", .url = url, .headers = hdrs, .body = st, .body_len = strlen(st),
			     .stream = true, .idle_timeout_ms = 200};
	memset(&x, 0, sizeof x);
	run(base, c, &os, &x);
	assert_true(x.failed);
	assert_int_equal(x.e.code, CG_E_TIMEOUT);
	assert_true(x.pieces >= 1);
	/* Total timeout. */
	os.idle_timeout_ms = 0;
	os.total_timeout_ms = 300;
	memset(&x, 0, sizeof x);
	run(base, c, &os, &x);
	assert_int_equal(x.e.code, CG_E_TIMEOUT);

	/* Cancel from inside on_data: the server sees the client leave. */
	/* The stalled streams above end on the server when it notices their clients left. */
	for (int i = 0; i < 250 && oai_double_open_streams(d) > 0; i++)
		usleep(20000);
	assert_int_equal(oai_double_open_streams(d), 0);
	int before = oai_double_abandoned(d);
	const char *lb = "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"[double:slow=50] [double:tokens=100]\"}]}";
	struct hc_opts ol = {.method = "POST", .url = url, .headers = hdrs, .body = lb, .body_len = strlen(lb), .stream = true};
	memset(&x, 0, sizeof x);
	x.cancel_after = 3;
	run(base, c, &ol, &x);
	/* Let the loop free the handle and close the socket. */
	struct timeval tv = {0, 300000};
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
	for (int i = 0; i < 100 && oai_double_abandoned(d) == before; i++)
		usleep(20000);
	assert_int_equal(oai_double_abandoned(d), before + 1);
	assert_int_equal(hc_active(c), 0);

	/* Unreachable: the error names no host or port. */
	char dead[64];
	snprintf(dead, sizeof dead, "http://127.0.0.1:%d/x", h_free_port());
	struct hc_opts od = {.url = dead};
	memset(&x, 0, sizeof x);
	run(base, c, &od, &x);
	assert_true(x.failed);
	assert_int_equal(x.e.code, CG_E_UNAVAILABLE);
	assert_null(strstr(x.e.msg, "127.0.0.1"));
	/* Only http(s). */
	struct hc_opts of = {.url = "file:///etc/passwd"};
	memset(&x, 0, sizeof x);
	run(base, c, &of, &x);
	assert_true(x.failed);

	/* A request left running is dropped by hc_free without callbacks. */
	memset(&x, 0, sizeof x);
	x.base = base;
	assert_non_null(hc_start(c, &os, &cb, &x, &e));
	hc_free(c);
	assert_int_equal(x.done, 0);
	event_base_free(base);
	oai_double_stop(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(t_all)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
