/* The brain gateway against a real node on loopback, with failure-injecting upstream doubles
 * (tests/lib/brain_double.h): one impersonates a market provider, one a centralized OpenAI-compatible API.
 *
 * Proves each failover rule before the first token (refused connection, 500, 429 + Retry-After, slow first
 * token, stall, cut, malformed chunk, in-band error, context length), the in-band error and no [DONE] after
 * it, usage forced upstream and stripped or estimated, market -> centralized fallback and back after the
 * cooldown, status summary and metrics, the audit trail, the gateway key, and that no secret reaches the log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "brain_double.h"
#include "harness.h"

#define GW_KEY "cgk_test_gateway_key_0123456789"
#define UP_KEY "sk-double-upstream-secret"

static struct brain_double *mkt, *cen;
static struct hnode *node;
static char cfg[4096];
static int dead_port;

static const char *const env[] = {"CG_TEST_GW_KEY=" GW_KEY, "CG_TEST_UP_KEY=" UP_KEY, NULL};

/* failures: the cooldown threshold (high to study single rules, 3 for the cooldown test). */
static struct hnode *start_node(int failures, const char *extra_brains)
{
	snprintf(cfg, sizeof cfg,
		 "{\"consumer\":{\"providers\":[{\"name\":\"p1\",\"url\":\"%s\"}]},"
		 "\"brain\":{\"enabled\":true,\"gatewayKeyEnv\":\"CG_TEST_GW_KEY\",\"refreshMs\":1000,"
		 "\"timeoutMs\":20000,\"timeouts\":{\"connectMs\":2000,\"firstTokenMs\":1500,\"idleMs\":1000},"
		 "\"cooldown\":{\"failures\":%d,\"windowMs\":60000,\"cooldownMs\":1500},"
		 "\"brains\":[{\"providerId\":\"market\",\"type\":\"market\",\"defaultModel\":\"market-model\"}%s,"
		 "{\"providerId\":\"central\",\"type\":\"centralized\",\"endpoint\":\"%s/v1\",\"apiKeyEnv\":\"CG_TEST_UP_KEY\","
		 "\"defaultModel\":\"gpt-test\",\"allowlist\":[\"gpt-test\",\"gpt-other\"],\"price\":{\"prompt\":\"1\",\"completion\":\"3\"}}]}}",
		 bd_url(mkt), failures, extra_brains ? extra_brains : "", bd_url(cen));
	struct hnode_opts o = {.config_json = cfg, .env = env};
	struct hnode *n = h_node_new(&o);
	if (!n || h_node_start(n) < 0) {
		h_node_free(n);
		return NULL;
	}
	return n;
}

static bool catalog_loaded(void *arg)
{
	json_t *s = h_rpc(arg, "web3.brain.status", NULL, NULL);
	json_int_t gen = json_integer_value(json_object_get(json_object_get(s, "result"), "catalogGeneration"));
	json_decref(s);
	return gen > 0;
}

static int setup(void **st)
{
	struct bd_opts mo = {.provider = true, .model = "market-model", .price = "2"};
	struct bd_opts co = {.api_key = UP_KEY};
	mkt = bd_start(&mo);
	cen = bd_start(&co);
	dead_port = h_free_port();
	char dead[512];
	snprintf(dead, sizeof dead,
		 ",{\"providerId\":\"dead\",\"type\":\"centralized\",\"endpoint\":\"http://127.0.0.1:%d/v1\","
		 "\"defaultModel\":\"gpt-test\",\"allowlist\":[\"gpt-test\"]}",
		 dead_port);
	if (!mkt || !cen || !(node = start_node(64, dead)))
		return -1;
	return h_wait_until(catalog_loaded, node, 10000) ? 0 : -1;
}

static int teardown(void **st)
{
	if (!node) {
		bd_stop(mkt);
		bd_stop(cen);
		return -1;
	}
	int rc = h_node_stop(node);
	char murl[64], curl_[64];
	snprintf(murl, sizeof murl, "%s", bd_url(mkt));
	snprintf(curl_, sizeof curl_, "%s", bd_url(cen));
	const char *const secrets[] = {GW_KEY, UP_KEY, murl, curl_, "tok_double", NULL};
	h_log_assert_clean(node, secrets);
	h_node_free(node);
	bd_stop(mkt);
	bd_stop(cen);
	return rc == 0 ? 0 : -1;
}

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

/* The audit record of the response's request id (caller frees). */
static json_t *audit_of(struct hnode *n, struct h_resp *r)
{
	const char *id = hdr(r, "X-Clawgrid-Request-Id");
	assert_non_null(id);
	json_t *p = json_pack("{s:s}", "requestId", id);
	json_t *res = h_rpc_ok(n, "web3.brain.audit.query", p);
	json_decref(p);
	json_t *rec = json_incref(json_array_get(json_object_get(res, "records"), 0));
	json_decref(res);
	assert_non_null(rec);
	return rec;
}

static const char *attempt_reason(json_t *rec, size_t i)
{
	return json_string_value(json_object_get(json_array_get(json_object_get(rec, "attempts"), i), "reason"));
}

#define STREAM_BODY "{\"model\":\"auto\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}]}"
#define PLAIN_BODY "{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}]}"

static void t_auth_and_models(void **st)
{
	struct h_resp r;
	static const char *const json_ct[] = {"Content-Type: application/json", NULL};
	static const char *const wrong[] = {"Authorization: Bearer nope-nope-nope", "Content-Type: application/json", NULL};
	assert_int_equal(h_http(node, "POST", "/v1/chat/completions", json_ct, PLAIN_BODY, strlen(PLAIN_BODY), 0, &r), 0);
	assert_int_equal(r.status, 401);
	json_t *j = json_loads(r.body, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")), "invalid_api_key");
	json_decref(j);
	h_resp_free(&r);
	/* The admin token is not a gateway key. */
	char admin[200];
	snprintf(admin, sizeof admin, "Authorization: Bearer %s", node->token);
	const char *const adm[] = {admin, "Content-Type: application/json", NULL};
	assert_int_equal(h_http(node, "POST", "/v1/chat/completions", adm, PLAIN_BODY, strlen(PLAIN_BODY), 0, &r), 0);
	assert_int_equal(r.status, 401);
	h_resp_free(&r);
	assert_int_equal(h_http(node, "POST", "/v1/chat/completions", wrong, PLAIN_BODY, strlen(PLAIN_BODY), 0, &r), 0);
	assert_int_equal(r.status, 401);
	h_resp_free(&r);
	static const char *const key[] = {"Authorization: Bearer " GW_KEY, NULL};
	assert_int_equal(h_http(node, "GET", "/v1/models", key, NULL, 0, 0, &r), 0);
	assert_int_equal(r.status, 200);
	j = json_loads(r.body, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(j, "object")), "list");
	bool seen_auto = false, seen_mkt = false, seen_gpt = false;
	size_t i;
	json_t *m;
	json_array_foreach(json_object_get(j, "data"), i, m) {
		const char *id = json_string_value(json_object_get(m, "id"));
		seen_auto |= !strcmp(id, "auto");
		seen_mkt |= !strcmp(id, "market-model");
		seen_gpt |= !strcmp(id, "gpt-test");
	}
	assert_true(seen_auto && seen_mkt && seen_gpt);
	json_decref(j);
	h_resp_free(&r);
	/* Bad requests get OpenAI-shaped 400s naming the field. */
	assert_int_equal(chat(node, "{\"model\":\"auto\",\"messages\":[]}", &r), 0);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "messages"));
	assert_non_null(strstr(r.body, "invalid_request_error"));
	h_resp_free(&r);
	assert_int_equal(chat(node, "{\"model\":\"nope-model\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", &r), 0);
	assert_int_equal(r.status, 404);
	assert_non_null(strstr(r.body, "model_not_found"));
	h_resp_free(&r);
}

static void t_stream_market(void **st)
{
	bd_set(mkt, BD_OK, 0, 0);
	struct h_resp r;
	assert_int_equal(chat(node, STREAM_BODY, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(hdr(&r, "X-Clawgrid-Source"), "web3/decentralized");
	assert_non_null(hdr(&r, "X-Clawgrid-Overhead-Ms"));
	assert_non_null(strstr(r.body, "\"w1 \""));
	assert_non_null(strstr(r.body, "data: [DONE]"));
	/* Usage was forced upstream but the client did not ask: stripped. */
	assert_null(strstr(r.body, "\"usage\""));
	assert_null(strstr(r.body, "receipt"));
	char *up = bd_last_body(mkt);
	assert_non_null(strstr(up, "\"include_usage\":true"));
	free(up);
	json_t *rec = audit_of(node, &r);
	assert_string_equal(json_string_value(json_object_get(rec, "brain")), "market");
	assert_string_equal(json_string_value(json_object_get(rec, "outcome")), "ok");
	json_t *u = json_object_get(rec, "usage");
	assert_string_equal(json_string_value(json_object_get(u, "source")), "upstream");
	json_int_t pt = json_integer_value(json_object_get(u, "promptTokens"));
	json_int_t ct = json_integer_value(json_object_get(u, "completionTokens"));
	assert_int_equal(ct, 6);
	char want[32];
	snprintf(want, sizeof want, "%lld", (long long)(pt + ct) * 2); /* market price 2 per token */
	assert_string_equal(json_string_value(json_object_get(rec, "cost")), want);
	json_decref(rec);
	h_resp_free(&r);
}

static void t_usage_and_plain(void **st)
{
	bd_set(mkt, BD_OK, 0, 0);
	struct h_resp r;
	const char *b = "{\"model\":\"auto\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
			"\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
	assert_int_equal(chat(node, b, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"usage\":{"));
	assert_null(strstr(r.body, "x_clawgrid_estimated"));
	h_resp_free(&r);
	assert_int_equal(chat(node, PLAIN_BODY, &r), 0);
	assert_int_equal(r.status, 200);
	json_t *j = json_loads(r.body, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "object")), "chat.completion");
	json_t *msg = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message");
	assert_string_equal(json_string_value(json_object_get(msg, "content")), "w1 w2 w3 w4 w5 w6 ");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "usage"), "completion_tokens")), 6);
	json_decref(j);
	h_resp_free(&r);
	/* Missing usage upstream: estimated and flagged, for the client and in the audit. */
	bd_set(mkt, BD_NO_USAGE, 0, 0);
	assert_int_equal(chat(node, b, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "x_clawgrid_estimated"));
	json_t *rec = audit_of(node, &r);
	assert_string_equal(json_string_value(json_object_get(json_object_get(rec, "usage"), "source")), "estimated");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(rec, "usage"), "completionTokens")), 6);
	json_decref(rec);
	h_resp_free(&r);
	bd_set(mkt, BD_OK, 0, 0);
}

struct rule {
	enum bd_mode mode;
	int n, ms;
	const char *reason;
};

static void t_failover_before_first_token(void **st)
{
	const struct rule rules[] = {
		{BD_STATUS, 500, 0, "http_500"},
		{BD_STATUS, 429, 0, "http_429"},
		{BD_SLOW_FIRST, 0, 4000, "timeout_first_token"},
		{BD_STALL, 0, 0, "timeout_first_token"},
		{BD_CUT, 0, 0, "cut"},
		{BD_MALFORMED, 0, 0, "malformed_chunk"},
		{BD_ERROR_EVENT, 0, 0, "upstream_error"},
		{BD_CONTEXT, 0, 0, "context_length"},
	};
	for (size_t i = 0; i < sizeof rules / sizeof *rules; i++) {
		bd_set(mkt, rules[i].mode, rules[i].n, rules[i].ms);
		for (int stream = 0; stream < 2; stream++) {
			struct h_resp r;
			assert_int_equal(chat(node, stream ? STREAM_BODY : PLAIN_BODY, &r), 0);
			if (r.status != 200)
				fprintf(stderr, "rule %zu stream %d: %ld %s\n", i, stream, r.status, r.body);
			assert_int_equal(r.status, 200);
			assert_string_equal(hdr(&r, "X-Clawgrid-Source"), "centralized");
			assert_string_equal(hdr(&r, "X-Clawgrid-Brain"), "central");
			if (stream)
				assert_non_null(strstr(r.body, "data: [DONE]"));
			json_t *rec = audit_of(node, &r);
			/* market failed, "dead" (refused connection) failed, central answered */
			assert_string_equal(attempt_reason(rec, 0), rules[i].reason);
			assert_string_equal(attempt_reason(rec, 1), "connect");
			assert_null(attempt_reason(rec, 2));
			assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(rec, "attempts"), 2),
									       "brain")),
					    "central");
			json_decref(rec);
			h_resp_free(&r);
		}
	}
	/* The centralized API got its key, and never the gateway key. */
	char *auth = bd_last_auth(cen);
	assert_string_equal(auth, "Bearer " UP_KEY);
	free(auth);
	bd_set(mkt, BD_OK, 0, 0);
}

static void t_error_after_first_token(void **st)
{
	const enum bd_mode modes[] = {BD_STALL, BD_CUT, BD_MALFORMED, BD_ERROR_EVENT};
	for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) {
		bd_set(mkt, modes[i], 2, 0);
		struct h_resp r;
		assert_int_equal(chat(node, STREAM_BODY, &r), 0);
		assert_int_equal(r.status, 200);
		assert_string_equal(hdr(&r, "X-Clawgrid-Source"), "web3/decentralized");
		assert_non_null(strstr(r.body, "\"w2 \""));
		/* In-band error, and never a [DONE] that would pass for a complete answer. */
		assert_non_null(strstr(r.body, "data: {\"error\":"));
		assert_non_null(strstr(r.body, "stream_interrupted"));
		assert_null(strstr(r.body, "[DONE]"));
		json_t *rec = audit_of(node, &r);
		assert_string_equal(json_string_value(json_object_get(rec, "outcome")), "interrupted");
		json_decref(rec);
		h_resp_free(&r);
		/* A non-streamed client has seen nothing yet: it fails over instead. */
		assert_int_equal(chat(node, PLAIN_BODY, &r), 0);
		assert_int_equal(r.status, 200);
		assert_string_equal(hdr(&r, "X-Clawgrid-Source"), "centralized");
		h_resp_free(&r);
	}
	bd_set(mkt, BD_OK, 0, 0);
}

static bool mkt_abandoned(void *arg)
{
	return bd_abandoned(mkt) > 0;
}

static void t_client_abort(void **st)
{
	bd_set(mkt, BD_STALL, 1, 0);
	int fd = h_connect(node);
	assert_true(fd >= 0);
	char req[1024];
	snprintf(req, sizeof req,
		 "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " GW_KEY
		 "\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
		 strlen(STREAM_BODY), STREAM_BODY);
	assert_int_equal(h_send(fd, req), 0);
	char buf[4096] = "";
	long n = 0;
	/* Read until the first token arrived, then hang up. */
	for (int i = 0; i < 100 && !strstr(buf, "w1"); i++) {
		long k = read(fd, buf + n, sizeof buf - 1 - (size_t)n);
		if (k <= 0)
			break;
		n += k;
		buf[n] = 0;
	}
	assert_non_null(strstr(buf, "w1"));
	close(fd);
	/* The gateway cancels the upstream stream. */
	assert_true(h_wait_until(mkt_abandoned, NULL, 10000));
	bd_set(mkt, BD_OK, 0, 0);
}

static void t_metrics_and_summary(void **st)
{
	struct h_resp r;
	assert_int_equal(h_get(node, "/metrics", &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "clawgrid_brain_requests_total"));
	assert_non_null(strstr(r.body, "clawgrid_brain_fallbacks_total"));
	assert_non_null(strstr(r.body, "clawgrid_brain_ttft_seconds"));
	assert_non_null(strstr(r.body, "clawgrid_brain_overhead_seconds"));
	assert_non_null(strstr(r.body, "clawgrid_brain_upstream_state"));
	h_resp_free(&r);
	json_t *s = h_rpc_ok(node, "web3.status.summary", NULL);
	json_t *b = json_object_get(s, "brain");
	assert_string_equal(json_string_value(json_object_get(b, "source")), "web3/decentralized");
	assert_string_equal(json_string_value(json_object_get(b, "provider")), "market");
	assert_non_null(json_string_value(json_object_get(b, "availability")));
	json_decref(s);
}

int main(void)
{
	h_require_bin();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_auth_and_models),
		cmocka_unit_test(t_stream_market),
		cmocka_unit_test(t_usage_and_plain),
		cmocka_unit_test(t_failover_before_first_token),
		cmocka_unit_test(t_error_after_first_token),
		cmocka_unit_test(t_client_abort),
		cmocka_unit_test(t_metrics_and_summary),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
