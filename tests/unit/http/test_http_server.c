/* http/server in-process: a loop thread runs the server, the test thread is a libcurl client. Covers
 * routing (exact, prefix, 404, 405), query/header accessors, per-route body caps (413 before the handler),
 * admin auth, 415, error replies with Retry-After, SSE streaming byte for byte, the disconnect callback, the
 * per-route metrics, close-on-exec sockets and graceful drain. */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "base/metrics.h"
#include "http/server.h"

static struct event_base *base;
static struct http_server *srv;
static pthread_t loop_thread;
static char addr[64], url[128];
static atomic_int handler_runs, closed_seen, drained, cloexec_bad, cloexec_checked;
static const char *TOKEN = "test-admin-token-0123456789abcdef";

/* ---------------------------------------------------------------- handlers (loop thread) */

static void h_echo(struct http_req *r, void *arg)
{
	(void)arg;
	atomic_fetch_add(&handler_runs, 1);
	size_t n;
	const uint8_t *b = http_req_body(r, &n);
	const char *q = http_req_query(r, "q");
	const char *h = http_req_header(r, "X-Test");
	json_t *v = json_pack("{s:s,s:s,s:s,s:s,s:s%,s:b}", "method", http_req_method(r), "path", http_req_path(r),
			      "route", http_req_route(r), "q", q ? q : "", "body", b ? (const char *)b : "",
			      (size_t)(b ? n : 0), "admin", http_req_is_admin(r));
	json_object_set_new(v, "x", json_string(h ? h : ""));
	http_reply_json(r, 200, v);
}

static void h_json_only(struct http_req *r, void *arg)
{
	(void)arg;
	cg_err e;
	cg_err_clear(&e);
	if (http_req_require_type(r, "application/json", &e) < 0) {
		http_reply_error(r, &e);
		return;
	}
	http_reply(r, 200, "text/plain", "ok", 2);
}

static void h_busy(struct http_req *r, void *arg)
{
	(void)arg;
	cg_err e;
	cg_fail(&e, CG_E_UNAVAILABLE, "try later");
	e.retry_after_s = 7;
	http_reply_error(r, &e);
}

struct sse {
	struct http_req *r;
	struct event *ev;
	int n, max;
};

static void sse_tick(evutil_socket_t fd, short what, void *arg)
{
	struct sse *s = arg;
	(void)fd;
	(void)what;
	if (s->max > 0 && s->n == s->max) {
		http_stream_end(s->r);
		event_free(s->ev);
		free(s);
		return;
	}
	char data[64];
	snprintf(data, sizeof data, "line %d\nsecond", s->n);
	if (http_sse_event(s->r, s->n % 2 ? "tick" : NULL, data) < 0 && s->max == 0)
		return; /* client gone: on_close finishes r */
	s->n++;
	struct timeval tv = {0, 20000};
	evtimer_add(s->ev, &tv);
}

static void sse_closed(struct http_req *r, void *arg)
{
	struct sse *s = arg;
	atomic_store(&closed_seen, 1);
	event_free(s->ev);
	free(s);
	http_stream_end(r); /* finishing is still required after a disconnect */
}

static void h_sse(struct http_req *r, void *arg)
{
	struct sse *s = calloc(1, sizeof *s);
	s->r = r;
	s->max = (int)(intptr_t)arg; /* 0: endless (until the client leaves) */
	s->ev = evtimer_new(base, sse_tick, s);
	if (s->max == 0)
		http_req_on_close(r, sse_closed, s);
	http_sse_start(r);
	http_sse_comment(r, "hello");
	sse_tick(-1, 0, s);
}

static bool fd_is_our_socket(int fd, int port)
{
	struct sockaddr_in a;
	socklen_t l = sizeof a;
	if (getsockname(fd, (struct sockaddr *)&a, &l) < 0 || a.sin_family != AF_INET)
		return false;
	return ntohs(a.sin_port) == port;
}

/* Checks every socket bound to the server's port (listener and accepted connections) for FD_CLOEXEC. */
static void h_cloexec(struct http_req *r, void *arg)
{
	(void)arg;
	int port = (int)strtoul(strrchr(addr, ':') + 1, NULL, 10);
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	while (d && (de = readdir(d))) {
		int fd = (int)strtoul(de->d_name, NULL, 10);
		if (de->d_name[0] == '.' || fd == dirfd(d) || !fd_is_our_socket(fd, port))
			continue;
		atomic_fetch_add(&cloexec_checked, 1);
		if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC))
			atomic_fetch_add(&cloexec_bad, 1);
	}
	if (d)
		closedir(d);
	http_reply(r, 200, "text/plain", "", 0);
}

struct slow {
	struct http_req *r;
	struct event *ev;
};

static void slow_done(evutil_socket_t fd, short what, void *arg)
{
	struct slow *s = arg;
	(void)fd;
	(void)what;
	http_reply(s->r, 200, "text/plain", "slow", 4);
	event_free(s->ev);
	free(s);
}

static void h_slow(struct http_req *r, void *arg)
{
	(void)arg;
	struct slow *s = calloc(1, sizeof *s);
	s->r = r;
	s->ev = evtimer_new(base, slow_done, s);
	struct timeval tv = {0, 300000};
	evtimer_add(s->ev, &tv);
}

/* ---------------------------------------------------------------- client side */

struct resp {
	long status;
	char body[65536];
	size_t n;
	char headers[8192];
	size_t hn;
	int abort_after; /* >0: abort the transfer after this many body bytes */
};

static size_t on_body(char *p, size_t sz, size_t nm, void *arg)
{
	struct resp *r = arg;
	size_t n = sz * nm;
	if (r->n + n < sizeof r->body) {
		memcpy(r->body + r->n, p, n);
		r->n += n;
		r->body[r->n] = 0;
	}
	if (r->abort_after > 0 && r->n >= (size_t)r->abort_after)
		return 0;
	return n;
}

static size_t on_hdr(char *p, size_t sz, size_t nm, void *arg)
{
	struct resp *r = arg;
	size_t n = sz * nm;
	if (r->hn + n < sizeof r->headers) {
		memcpy(r->headers + r->hn, p, n);
		r->hn += n;
		r->headers[r->hn] = 0;
	}
	return n;
}

static int req(const char *method, const char *path, const char *const *hdrs, const char *body, size_t blen,
	       struct resp *r)
{
	char u[512];
	snprintf(u, sizeof u, "%s%s", url, path);
	CURL *h = curl_easy_init();
	struct curl_slist *hl = curl_slist_append(NULL, "Expect:");
	for (size_t i = 0; hdrs && hdrs[i]; i++)
		hl = curl_slist_append(hl, hdrs[i]);
	curl_easy_setopt(h, CURLOPT_URL, u);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)blen);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_hdr);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
	CURLcode cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(hl);
	curl_easy_cleanup(h);
	return (int)cc;
}

static void *loop_main(void *arg)
{
	(void)arg;
	event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

static int setup(void **st)
{
	(void)st;
	evthread_use_pthreads();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	base = event_base_new();
	struct http_server_opts o = {.header_timeout_ms = 5000, .body_timeout_ms = 5000, .max_body = 4096};
	srv = http_server_new(base, &o);
	http_server_set_admin_token(srv, TOKEN);
	http_route(srv, HTTP_GET | HTTP_POST, "/echo", 0, 16, h_echo, NULL);
	http_route(srv, HTTP_GET, "/files/", HTTP_PREFIX, 0, h_echo, NULL);
	http_route(srv, HTTP_GET, "/files/special/", HTTP_PREFIX, 0, h_echo, NULL);
	http_route(srv, HTTP_POST, "/admin", HTTP_ADMIN, 1024, h_echo, NULL);
	http_route(srv, HTTP_POST, "/json", 0, 1024, h_json_only, NULL);
	http_route(srv, HTTP_GET, "/busy", 0, 0, h_busy, NULL);
	http_route(srv, HTTP_GET, "/sse3", 0, 0, h_sse, (void *)(intptr_t)3);
	http_route(srv, HTTP_GET, "/sse", 0, 0, h_sse, (void *)(intptr_t)0);
	http_route(srv, HTTP_GET, "/cloexec", 0, 0, h_cloexec, NULL);
	http_route(srv, HTTP_GET, "/slow", 0, 0, h_slow, NULL);
	assert_int_equal(http_route(srv, HTTP_GET, "/echo", 0, 0, h_echo, NULL), -1); /* twice */
	cg_err e;
	if (http_server_listen(srv, "127.0.0.1:0", addr, sizeof addr, &e) < 0)
		return -1;
	snprintf(url, sizeof url, "http://%s", addr);
	return pthread_create(&loop_thread, NULL, loop_main, NULL);
}

static void free_srv(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	http_server_free(srv);
	event_base_loopbreak(base);
}

static int teardown(void **st)
{
	(void)st;
	struct timeval tv = {0, 0};
	event_base_once(base, -1, EV_TIMEOUT, free_srv, NULL, &tv);
	pthread_join(loop_thread, NULL);
	event_base_free(base);
	curl_global_cleanup();
	return 0;
}

static json_t *body_json(struct resp *r)
{
	json_t *j = json_loads(r->body, 0, NULL);
	assert_non_null(j);
	return j;
}

static void t_parse_hostport(void **st)
{
	(void)st;
	char h[64];
	int p;
	assert_int_equal(http_parse_hostport("127.0.0.1:7878", h, sizeof h, &p), 0);
	assert_string_equal(h, "127.0.0.1");
	assert_int_equal(p, 7878);
	assert_int_equal(http_parse_hostport("[::1]:0", h, sizeof h, &p), 0);
	assert_string_equal(h, "::1");
	assert_int_equal(http_parse_hostport("localhost:80", h, sizeof h, &p), 0);
	assert_string_equal(h, "127.0.0.1");
	static const char *bad[] = {"", ":80", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:8x",
				    "example.com:80", "::1:80", "[::1]80", "1.2.3.4:123456", NULL};
	for (int i = 0; bad[i]; i++)
		assert_int_equal(http_parse_hostport(bad[i], h, sizeof h, &p), -1);
}

static void t_routing(void **st)
{
	(void)st;
	struct resp r = {0};
	const char *hdrs[] = {"X-Test: yes", NULL};
	assert_int_equal(req("GET", "/echo?q=a%20b&z=1", hdrs, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	json_t *j = body_json(&r);
	assert_string_equal(json_string_value(json_object_get(j, "path")), "/echo");
	assert_string_equal(json_string_value(json_object_get(j, "q")), "a b");
	assert_string_equal(json_string_value(json_object_get(j, "x")), "yes");
	assert_string_equal(json_string_value(json_object_get(j, "method")), "GET");
	json_decref(j);
	/* longest prefix wins, exact beats prefix */
	memset(&r, 0, sizeof r);
	req("GET", "/files/special/x%2Fy", NULL, NULL, 0, &r);
	j = body_json(&r);
	assert_string_equal(json_string_value(json_object_get(j, "route")), "/files/special/");
	assert_string_equal(json_string_value(json_object_get(j, "path")), "/files/special/x/y");
	json_decref(j);
	memset(&r, 0, sizeof r);
	req("GET", "/files/a", NULL, NULL, 0, &r);
	j = body_json(&r);
	assert_string_equal(json_string_value(json_object_get(j, "route")), "/files/");
	json_decref(j);
	memset(&r, 0, sizeof r);
	req("GET", "/nothing", NULL, NULL, 0, &r);
	assert_int_equal(r.status, 404);
	j = body_json(&r);
	assert_false(json_is_true(json_object_get(j, "ok")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")), "E_NOT_FOUND");
	json_decref(j);
	memset(&r, 0, sizeof r);
	req("PUT", "/echo", NULL, "x", 1, &r);
	assert_int_equal(r.status, 405);
	assert_non_null(strstr(r.headers, "Allow: GET, POST"));
	/* NUL in the decoded path */
	memset(&r, 0, sizeof r);
	req("GET", "/echo%00x", NULL, NULL, 0, &r);
	assert_int_equal(r.status, 400);
}

static void t_body_cap(void **st)
{
	(void)st;
	struct resp r = {0};
	int before = atomic_load(&handler_runs);
	assert_int_equal(req("POST", "/echo", NULL, "0123456789abcdef", 16, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(atomic_load(&handler_runs), before + 1);
	/* 17 bytes: over the route cap, the handler never runs */
	memset(&r, 0, sizeof r);
	assert_int_equal(req("POST", "/echo", NULL, "0123456789abcdefX", 17, &r), 0);
	assert_int_equal(r.status, 413);
	assert_non_null(strstr(r.body, "E_QUOTA_EXCEEDED"));
	assert_int_equal(atomic_load(&handler_runs), before + 1);
	/* over the server-wide cap: refused by the transport */
	static char big[10000];
	memset(big, 'a', sizeof big);
	memset(&r, 0, sizeof r);
	req("POST", "/echo", NULL, big, sizeof big, &r);
	assert_int_equal(r.status, 413);
	assert_int_equal(atomic_load(&handler_runs), before + 1);
	/* a route without body allowance */
	memset(&r, 0, sizeof r);
	req("GET", "/files/x", NULL, "z", 1, &r);
	assert_int_equal(r.status, 413);
}

static void t_admin(void **st)
{
	(void)st;
	struct resp r = {0};
	req("POST", "/admin", NULL, "{}", 2, &r);
	assert_int_equal(r.status, 401);
	assert_non_null(strstr(r.body, "E_AUTH_REQUIRED"));
	assert_non_null(strstr(r.headers, "WWW-Authenticate: Bearer"));
	const char *wrong[] = {"Authorization: Bearer test-admin-token-0123456789abcdeX", NULL};
	memset(&r, 0, sizeof r);
	req("POST", "/admin", wrong, "{}", 2, &r);
	assert_int_equal(r.status, 401);
	const char *prefix[] = {"Authorization: Bearer test-admin-token", NULL};
	memset(&r, 0, sizeof r);
	req("POST", "/admin", prefix, "{}", 2, &r);
	assert_int_equal(r.status, 401);
	const char *right[] = {"Authorization: bearer   test-admin-token-0123456789abcdef", NULL};
	memset(&r, 0, sizeof r);
	req("POST", "/admin", right, "{}", 2, &r);
	assert_int_equal(r.status, 200);
	json_t *j = body_json(&r);
	assert_true(json_is_true(json_object_get(j, "admin")));
	json_decref(j);
	/* a token on a public route is recognised but not required */
	memset(&r, 0, sizeof r);
	req("GET", "/echo", right, NULL, 0, &r);
	j = body_json(&r);
	assert_true(json_is_true(json_object_get(j, "admin")));
	json_decref(j);
}

static void t_types_and_errors(void **st)
{
	(void)st;
	struct resp r = {0};
	const char *plain[] = {"Content-Type: text/plain", NULL};
	req("POST", "/json", plain, "{}", 2, &r);
	assert_int_equal(r.status, 415);
	const char *json[] = {"Content-Type: Application/JSON ; charset=utf-8", NULL};
	memset(&r, 0, sizeof r);
	req("POST", "/json", json, "{}", 2, &r);
	assert_int_equal(r.status, 200);
	const char *jsonx[] = {"Content-Type: application/jsonx", NULL};
	memset(&r, 0, sizeof r);
	req("POST", "/json", jsonx, "{}", 2, &r);
	assert_int_equal(r.status, 415);
	memset(&r, 0, sizeof r);
	req("GET", "/busy", NULL, NULL, 0, &r);
	assert_int_equal(r.status, 503);
	assert_non_null(strstr(r.headers, "Retry-After: 7"));
	json_t *j = body_json(&r);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "message")),
			    "E_UNAVAILABLE: try later");
	json_decref(j);
}

static void t_sse(void **st)
{
	(void)st;
	struct resp r = {0};
	assert_int_equal(req("GET", "/sse3", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.headers, "Content-Type: text/event-stream"));
	assert_non_null(strstr(r.headers, "Cache-Control: no-cache"));
	assert_string_equal(r.body, ": hello\n\n"
				    "data: line 0\ndata: second\n\n"
				    "event: tick\ndata: line 1\ndata: second\n\n"
				    "data: line 2\ndata: second\n\n");
}

static void t_disconnect(void **st)
{
	(void)st;
	struct resp r = {0};
	r.abort_after = 20; /* hang up after the first event */
	int cc = req("GET", "/sse", NULL, NULL, 0, &r);
	assert_int_equal(cc, CURLE_WRITE_ERROR);
	for (int i = 0; i < 500 && !atomic_load(&closed_seen); i++)
		usleep(10000);
	assert_int_equal(atomic_load(&closed_seen), 1);
}

static void t_metrics_and_cloexec(void **st)
{
	(void)st;
	double before = metrics_value("clawgrid_http_requests_total", "/cloexec", "200");
	struct resp r = {0};
	req("GET", "/cloexec", NULL, NULL, 0, &r);
	assert_int_equal(r.status, 200);
	assert_true(atomic_load(&cloexec_checked) >= 2); /* listener + this connection */
	assert_int_equal(atomic_load(&cloexec_bad), 0);
	/* counted once the response is written, which may be just after the client has it */
	double want = before < 0 ? 1 : before + 1;
	for (int i = 0; i < 500 && metrics_value("clawgrid_http_requests_total", "/cloexec", "200") != want; i++)
		usleep(10000);
	assert_true(metrics_value("clawgrid_http_requests_total", "/cloexec", "200") == want);
	assert_true(metrics_value("clawgrid_http_request_duration_seconds", "/cloexec") >= 1);
	assert_true(metrics_value("clawgrid_http_requests_total", "unmatched", "404") >= 1);
	buf b;
	buf_init(&b, 1 << 20);
	assert_int_equal(metrics_render(&b), 0);
	assert_non_null(strstr(buf_cstr(&b), "clawgrid_http_open_connections "));
	buf_done(&b);
}

static void on_drained(void *arg)
{
	(void)arg;
	atomic_store(&drained, 1);
}

static void start_drain(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	http_server_drain(srv, 10000, on_drained, NULL);
}

static int slow_cc;

static void *slow_client(void *arg)
{
	slow_cc = req("GET", "/slow", NULL, NULL, 0, arg);
	return NULL;
}

/* Last: the server stops accepting. */
static void t_drain(void **st)
{
	(void)st;
	static struct resp r;
	memset(&r, 0, sizeof r);
	pthread_t t;
	pthread_create(&t, NULL, slow_client, &r);
	for (int i = 0; i < 500 && http_server_inflight(srv) == 0; i++)
		usleep(5000);
	struct timeval tv = {0, 0};
	event_base_once(base, -1, EV_TIMEOUT, start_drain, NULL, &tv);
	pthread_join(t, NULL);
	assert_int_equal(slow_cc, 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "slow");
	assert_non_null(strstr(r.headers, "Connection: close"));
	for (int i = 0; i < 500 && !atomic_load(&drained); i++)
		usleep(10000);
	assert_int_equal(atomic_load(&drained), 1);
	struct resp r2 = {0};
	assert_int_equal(req("GET", "/echo", NULL, NULL, 0, &r2), CURLE_COULDNT_CONNECT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_parse_hostport), cmocka_unit_test(t_routing),
		cmocka_unit_test(t_body_cap),	    cmocka_unit_test(t_admin),
		cmocka_unit_test(t_types_and_errors), cmocka_unit_test(t_sse),
		cmocka_unit_test(t_disconnect),	    cmocka_unit_test(t_metrics_and_cloexec),
		cmocka_unit_test(t_drain),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
