/* The brain gateway's policies on a real node: per-upstream cooldowns (market -> centralized fallback and
 * back once the cooldown is over, Retry-After honoured, 429/503 with Retry-After to the client), the live
 * status summary (ok / degraded), and the credit budget (exhaustion, and concurrent requests that never
 * overspend, spent kept across a restart). Upstreams are test doubles (tests/lib/brain_double.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "brain_double.h"
#include "harness.h"

#define GW_KEY "cgk_policy_gateway_key_987654321"

static const char *const env[] = {"CG_TEST_GW_KEY=" GW_KEY, NULL};

static int chat(struct hnode *n, const char *body, struct h_resp *r)
{
	static const char *const hdr[] = {"Authorization: Bearer " GW_KEY, "Content-Type: application/json", NULL};
	return h_http(n, "POST", "/v1/chat/completions", hdr, body, strlen(body), 20000, r);
}

static const char *hdr(struct h_resp *r, const char *name)
{
	static char v[256];
	return h_resp_header(r, name, v, sizeof v) ? v : NULL;
}

static json_t *audit_of(struct hnode *n, struct h_resp *r)
{
	json_t *p = json_pack("{s:s}", "requestId", hdr(r, "X-Clawgrid-Request-Id"));
	json_t *res = h_rpc_ok(n, "web3.brain.audit.query", p);
	json_decref(p);
	json_t *rec = json_incref(json_array_get(json_object_get(res, "records"), 0));
	json_decref(res);
	assert_non_null(rec);
	return rec;
}

static const char *first_attempt_brain(json_t *rec)
{
	return json_string_value(json_object_get(json_array_get(json_object_get(rec, "attempts"), 0), "brain"));
}

/* The state of one upstream in web3.brain.status ("ok", "degraded", "cooling"). */
static char *up_state(struct hnode *n, const char *prefix)
{
	json_t *s = h_rpc_ok(n, "web3.brain.status", NULL);
	size_t i;
	json_t *u;
	char *out = NULL;
	json_array_foreach(json_object_get(s, "upstreams"), i, u) {
		if (!strncmp(json_string_value(json_object_get(u, "upstream")), prefix, strlen(prefix)))
			out = strdup(json_string_value(json_object_get(u, "state")));
	}
	json_decref(s);
	return out;
}

static bool catalog_loaded(void *arg)
{
	json_t *s = h_rpc(arg, "web3.brain.status", NULL, NULL);
	json_int_t gen = json_integer_value(json_object_get(json_object_get(s, "result"), "catalogGeneration"));
	json_decref(s);
	return gen > 0;
}

static struct hnode *cool_node;

static bool market_not_cooling(void *arg)
{
	char *s = up_state(cool_node, "market:");
	bool ok = s && strcmp(s, "cooling") != 0;
	free(s);
	return ok;
}

#define BODY "{\"model\":\"auto\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"

static void summary(struct hnode *n, const char **source, const char **avail, json_t **keep)
{
	*keep = h_rpc_ok(n, "web3.status.summary", NULL);
	json_t *b = json_object_get(*keep, "brain");
	*source = json_string_value(json_object_get(b, "source"));
	*avail = json_string_value(json_object_get(b, "availability"));
}

static void t_cooldown_fallback_and_back(void **st)
{
	struct bd_opts mo = {.provider = true, .model = "m1", .price = "1"};
	struct brain_double *mkt = bd_start(&mo), *cen = bd_start(NULL);
	assert_non_null(mkt);
	assert_non_null(cen);
	char cfg[2048];
	snprintf(cfg, sizeof cfg,
		 "{\"consumer\":{\"providers\":[{\"name\":\"p1\",\"url\":\"%s\"}]},"
		 "\"brain\":{\"enabled\":true,\"gatewayKeyEnv\":\"CG_TEST_GW_KEY\",\"refreshMs\":1000,"
		 "\"cooldown\":{\"failures\":3,\"windowMs\":60000,\"cooldownMs\":2000},"
		 "\"brains\":[{\"providerId\":\"mkt\",\"type\":\"market\",\"defaultModel\":\"m1\"},"
		 "{\"providerId\":\"cen\",\"type\":\"centralized\",\"endpoint\":\"%s/v1\",\"defaultModel\":\"c1\"}]}}",
		 bd_url(mkt), bd_url(cen));
	struct hnode_opts o = {.config_json = cfg, .env = env};
	struct hnode *n = cool_node = h_node_new(&o);
	assert_non_null(n);
	assert_int_equal(h_node_start(n), 0);
	assert_true(h_wait_until(catalog_loaded, n, 10000));
	const char *src, *avail;
	json_t *keep;
	summary(n, &src, &avail, &keep);
	assert_string_equal(src, "web3/decentralized");
	assert_string_equal(avail, "ok");
	json_decref(keep);

	/* Three market failures: each request still succeeds through the centralized brain. */
	bd_set(mkt, BD_STATUS, 500, 0);
	struct h_resp r;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(chat(n, BODY, &r), 0);
		assert_int_equal(r.status, 200);
		assert_string_equal(hdr(&r, "X-Clawgrid-Brain"), "cen");
		json_t *rec = audit_of(n, &r);
		assert_string_equal(first_attempt_brain(rec), "mkt");
		json_decref(rec);
		h_resp_free(&r);
	}
	/* Now the market upstream cools down: it is not even tried. */
	int before = bd_requests(mkt);
	assert_int_equal(chat(n, BODY, &r), 0);
	assert_int_equal(r.status, 200);
	json_t *rec = audit_of(n, &r);
	assert_string_equal(first_attempt_brain(rec), "cen");
	assert_int_equal(json_array_size(json_object_get(rec, "attempts")), 1);
	json_decref(rec);
	h_resp_free(&r);
	assert_int_equal(bd_requests(mkt), before);
	char *s = up_state(n, "market:");
	if (s && strcmp(s, "cooling") == 0) {
		/* Still inside the cooldown: the summary shows the fallback. */
		summary(n, &src, &avail, &keep);
		assert_string_equal(src, "centralized");
		assert_string_equal(avail, "degraded");
		json_decref(keep);
	}
	free(s);
	struct h_resp m;
	assert_int_equal(h_get(n, "/metrics", &m), 0);
	assert_non_null(strstr(m.body, "clawgrid_brain_fallbacks_total{from=\"web3/decentralized\",reason=\"http_500\"} 3"));
	h_resp_free(&m);

	/* The market recovers; after the cooldown requests go back to it. */
	bd_set(mkt, BD_OK, 0, 0);
	assert_true(h_wait_until(market_not_cooling, NULL, 15000));
	assert_int_equal(chat(n, BODY, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(hdr(&r, "X-Clawgrid-Brain"), "mkt");
	h_resp_free(&r);
	summary(n, &src, &avail, &keep);
	assert_string_equal(src, "web3/decentralized");
	json_decref(keep);

	/* 429 with Retry-After everywhere: the client gets 429 and a Retry-After, then 503 while both cool. */
	bd_set(mkt, BD_STATUS, 429, 3000);
	bd_set(cen, BD_STATUS, 429, 3000);
	assert_int_equal(chat(n, BODY, &r), 0);
	assert_int_equal(r.status, 429);
	assert_non_null(hdr(&r, "Retry-After"));
	int ra = 0;
	assert_int_equal(sscanf(hdr(&r, "Retry-After"), "%d", &ra), 1);
	assert_true(ra >= 1);
	assert_non_null(strstr(r.body, "rate_limit"));
	h_resp_free(&r);
	before = bd_requests(mkt) + bd_requests(cen);
	assert_int_equal(chat(n, BODY, &r), 0);
	assert_int_equal(r.status, 503);
	assert_non_null(hdr(&r, "Retry-After"));
	assert_int_equal(bd_requests(mkt) + bd_requests(cen), before); /* Retry-After honoured upstream too */
	h_resp_free(&r);

	assert_int_equal(h_node_stop(n), 0);
	h_log_assert_clean(n, (const char *const[]){GW_KEY, "tok_double", NULL});
	h_node_free(n);
	bd_stop(mkt);
	bd_stop(cen);
}

/* ---- budget ---- */

static size_t sink(char *p, size_t sz, size_t n, void *arg)
{
	return sz * n;
}

static void t_budget_concurrent_and_exhausted(void **st)
{
	struct bd_opts co = {.delay_ms = 200};
	struct brain_double *cen = bd_start(&co);
	assert_non_null(cen);
	char cfg[2048];
	/* Each request reserves prompt*0 + 5 tokens * 10 = 50 credits; 120 credits fit two at a time. */
	snprintf(cfg, sizeof cfg,
		 "{\"brain\":{\"enabled\":true,\"gatewayKeyEnv\":\"CG_TEST_GW_KEY\","
		 "\"budget\":{\"credits\":\"120\",\"reserveMaxTokens\":5},"
		 "\"brains\":[{\"providerId\":\"cen\",\"type\":\"centralized\",\"endpoint\":\"%s/v1\",\"defaultModel\":\"c1\","
		 "\"price\":{\"prompt\":\"0\",\"completion\":\"10\"}}]}}",
		 bd_url(cen));
	struct hnode_opts o = {.config_json = cfg, .env = env};
	struct hnode *n = h_node_new(&o);
	assert_non_null(n);
	assert_int_equal(h_node_start(n), 0);

	/* Six requests at once: exactly two fit, four are refused, nothing is overspent. */
	enum { N = 6 };
	CURLM *multi = curl_multi_init();
	CURL *h[N];
	struct curl_slist *hl = NULL;
	hl = curl_slist_append(hl, "Authorization: Bearer " GW_KEY);
	hl = curl_slist_append(hl, "Content-Type: application/json");
	char url[200];
	snprintf(url, sizeof url, "%s/v1/chat/completions", n->base_url);
	for (int i = 0; i < N; i++) {
		h[i] = curl_easy_init();
		curl_easy_setopt(h[i], CURLOPT_URL, url);
		curl_easy_setopt(h[i], CURLOPT_HTTPHEADER, hl);
		curl_easy_setopt(h[i], CURLOPT_POSTFIELDS, BODY);
		curl_easy_setopt(h[i], CURLOPT_WRITEFUNCTION, sink);
		curl_easy_setopt(h[i], CURLOPT_TIMEOUT_MS, 20000L);
		curl_multi_add_handle(multi, h[i]);
	}
	int running = 1;
	while (running) {
		curl_multi_perform(multi, &running);
		if (running)
			curl_multi_poll(multi, NULL, 0, 100, NULL);
	}
	int ok = 0, refused = 0;
	for (int i = 0; i < N; i++) {
		long code = 0;
		curl_easy_getinfo(h[i], CURLINFO_RESPONSE_CODE, &code);
		ok += code == 200;
		refused += code == 429;
		curl_multi_remove_handle(multi, h[i]);
		curl_easy_cleanup(h[i]);
	}
	curl_multi_cleanup(multi);
	curl_slist_free_all(hl);
	assert_int_equal(ok, 2);
	assert_int_equal(refused, 4);
	json_t *b = h_rpc_ok(n, "web3.billing.status", NULL);
	assert_string_equal(json_string_value(json_object_get(b, "spent")), "100");
	assert_string_equal(json_string_value(json_object_get(b, "reserved")), "0");
	assert_string_equal(json_string_value(json_object_get(b, "remaining")), "20");
	json_decref(b);
	/* The answer was held to what was reserved. */
	char *up = bd_last_body(cen);
	assert_non_null(strstr(up, "\"max_tokens\":5"));
	free(up);

	/* Exhausted: a clear OpenAI-shaped 429, no upstream call. */
	int before = bd_requests(cen);
	struct h_resp r;
	assert_int_equal(chat(n, BODY, &r), 0);
	assert_int_equal(r.status, 429);
	assert_non_null(strstr(r.body, "insufficient_quota"));
	assert_non_null(strstr(r.body, "budget exhausted"));
	h_resp_free(&r);
	assert_int_equal(bd_requests(cen), before);
	json_t *p = json_pack("{s:s}", "outcome", "over_budget");
	json_t *a = h_rpc_ok(n, "web3.brain.audit.query", p);
	assert_int_equal(json_array_size(json_object_get(a, "records")), 5);
	json_decref(a);
	json_decref(p);
	json_t *sum = h_rpc_ok(n, "web3.status.summary", NULL);
	assert_string_equal(json_string_value(json_object_get(json_object_get(sum, "billing"), "credits")), "20");
	json_decref(sum);

	/* What was spent survives a restart (no in-memory counter). */
	assert_int_equal(h_node_stop(n), 0);
	assert_int_equal(h_node_start(n), 0);
	b = h_rpc_ok(n, "web3.billing.status", NULL);
	assert_string_equal(json_string_value(json_object_get(b, "spent")), "100");
	json_decref(b);
	assert_int_equal(h_node_stop(n), 0);
	h_log_assert_clean(n, (const char *const[]){GW_KEY, NULL});
	h_node_free(n);
	bd_stop(cen);
}

int main(void)
{
	h_require_bin();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_cooldown_fallback_and_back),
		cmocka_unit_test(t_budget_concurrent_and_exhausted),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
