/* The shared /v1/chat/completions path (http_route_when, used by the gateway): requests with lease
 * credentials reach the provider's plain route, all others the gateway's guarded route, whichever of the
 * two was registered first; a lone guarded route still answers everything. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "http/server.h"

static struct event_base *base;
static struct http_server *srv[3];
static char url[3][128];
static pthread_t loop_thread;

static void h_provider(struct http_req *r, void *arg)
{
	http_reply(r, 200, "text/plain", "provider", 8);
}

static void h_gateway(struct http_req *r, void *arg)
{
	http_reply(r, 200, "text/plain", "gateway", 7);
}

/* The gateway's guard: no lease headers, no tok_ bearer. */
static bool not_lease(const struct http_req *r, void *arg)
{
	const char *a = http_req_header(r, "Authorization");
	return !http_req_header(r, "X-OpenClaw-Lease") && !http_req_header(r, "X-Lease-Token") &&
	       !(a && !strncasecmp(a, "Bearer tok_", 11));
}

static void *loop_main(void *arg)
{
	event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

static int setup(void **st)
{
	evthread_use_pthreads();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	base = event_base_new();
	cg_err e;
	for (int i = 0; i < 3; i++) {
		srv[i] = http_server_new(base, NULL);
		char addr[64];
		if (http_server_listen(srv[i], "127.0.0.1:0", addr, sizeof addr, &e) < 0)
			return -1;
		snprintf(url[i], sizeof url[i], "http://%s/v1/chat/completions", addr);
	}
	/* 0: provider first; 1: gateway first; 2: the gateway alone */
	assert_int_equal(http_route(srv[0], HTTP_POST, "/v1/chat/completions", 0, 1024, h_provider, NULL), 0);
	assert_int_equal(http_route_when(srv[0], HTTP_POST, "/v1/chat/completions", 0, 1024, not_lease, h_gateway, NULL), 0);
	assert_int_equal(http_route_when(srv[1], HTTP_POST, "/v1/chat/completions", 0, 1024, not_lease, h_gateway, NULL), 0);
	assert_int_equal(http_route(srv[1], HTTP_POST, "/v1/chat/completions", 0, 1024, h_provider, NULL), 0);
	assert_int_equal(http_route_when(srv[2], HTTP_POST, "/v1/chat/completions", 0, 1024, not_lease, h_gateway, NULL), 0);
	/* Two plain routes still collide; a prefix route cannot be guarded. */
	assert_int_equal(http_route(srv[0], HTTP_POST, "/v1/chat/completions", 0, 1024, h_provider, NULL), -1);
	assert_int_equal(http_route_when(srv[0], HTTP_POST, "/v1/", HTTP_PREFIX, 1024, not_lease, h_gateway, NULL), -1);
	return pthread_create(&loop_thread, NULL, loop_main, NULL);
}

static void free_all(evutil_socket_t fd, short what, void *arg)
{
	for (int i = 0; i < 3; i++)
		http_server_free(srv[i]);
	event_base_loopbreak(base);
}

static int teardown(void **st)
{
	struct timeval tv = {0, 0};
	event_base_once(base, -1, EV_TIMEOUT, free_all, NULL, &tv);
	pthread_join(loop_thread, NULL);
	event_base_free(base);
	curl_global_cleanup();
	return 0;
}

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
	char *out = arg;
	size_t have = strlen(out), add = sz * n;
	if (have + add < 64) {
		memcpy(out + have, p, add);
		out[have + add] = 0;
	}
	return sz * n;
}

static void post(const char *u, const char *const *hdrs, char out[static 64])
{
	out[0] = 0;
	CURL *h = curl_easy_init();
	struct curl_slist *hl = NULL;
	for (int i = 0; hdrs && hdrs[i]; i++)
		hl = curl_slist_append(hl, hdrs[i]);
	curl_easy_setopt(h, CURLOPT_URL, u);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, "{}");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
	assert_int_equal(curl_easy_perform(h), CURLE_OK);
	curl_slist_free_all(hl);
	curl_easy_cleanup(h);
}

static void t_shared_path(void **st)
{
	static const char *const lease[] = {"Authorization: Bearer tok_abc", "X-OpenClaw-Lease: lease_1", NULL};
	static const char *const lease_token[] = {"X-Lease-Token: tok_abc", NULL};
	static const char *const gw[] = {"Authorization: Bearer cgk_key", NULL};
	char out[64];
	for (int i = 0; i < 2; i++) {
		post(url[i], lease, out);
		assert_string_equal(out, "provider");
		post(url[i], lease_token, out);
		assert_string_equal(out, "provider");
		post(url[i], gw, out);
		assert_string_equal(out, "gateway");
		post(url[i], NULL, out);
		assert_string_equal(out, "gateway");
	}
	post(url[2], lease, out);
	assert_string_equal(out, "gateway"); /* no provider route: the gateway answers (and refuses) */
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(t_shared_path)};
	return cmocka_run_group_tests(tests, setup, teardown);
}
