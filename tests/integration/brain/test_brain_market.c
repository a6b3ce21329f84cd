/* The market brain against a real provider node: a consumer node's gateway finds the provider's model resource
 * in its catalog, leases it with a wallet-signed request, streams through the provider's lease-token route and
 * accounts the cost at the offer's price; when the provider goes away the request falls back to the centralized
 * brain. The provider node runs the gateway too, proving that /v1/chat/completions is shared on one node:
 * lease-token requests reach the provider's alias, gateway-key requests the gateway.
 * The model engine behind the provider and the centralized API is a test double (tests/lib/brain_double.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "brain_double.h"
#include "harness.h"

#define GW_KEY "cgk_market_gateway_key_13579"

static const char *hdr(struct h_resp *r, const char *name)
{
	static char v[256];
	return h_resp_header(r, name, v, sizeof v) ? v : NULL;
}

static int chat(struct hnode *n, const char *body, struct h_resp *r)
{
	static const char *const h[] = {"Authorization: Bearer " GW_KEY, "Content-Type: application/json", NULL};
	return h_http(n, "POST", "/v1/chat/completions", h, body, strlen(body), 20000, r);
}

static bool catalog_loaded(void *arg)
{
	json_t *s = h_rpc(arg, "web3.brain.status", NULL, NULL);
	json_int_t gen = json_integer_value(json_object_get(json_object_get(s, "result"), "catalogGeneration"));
	json_decref(s);
	return gen > 0;
}

#define BODY "{\"model\":\"auto\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi market\"}]}"

static void t_market_brain(void **st)
{
	struct bd_opts eo = {.tokens = 5};
	struct brain_double *engine = bd_start(&eo);
	assert_non_null(engine);
	static const char *const env[] = {"CG_TEST_GW_KEY=" GW_KEY, NULL};
	char pcfg[3000], ccfg[3000];
	snprintf(pcfg, sizeof pcfg,
		 "{\"provider\":{\"resources\":[{\"id\":\"res_llm\",\"kind\":\"model\",\"publish\":true,\"label\":\"market-llm\","
		 "\"price\":{\"unit\":\"token\",\"amount\":\"2\",\"currency\":\"CLAW\"},"
		 "\"backend\":{\"type\":\"llama-server\",\"url\":\"%s\",\"model\":\"engine-model\"}}]},"
		 "\"brain\":{\"enabled\":true,\"gatewayKeyEnv\":\"CG_TEST_GW_KEY\",\"brains\":[{\"providerId\":\"central\","
		 "\"type\":\"centralized\",\"endpoint\":\"%s/v1\",\"defaultModel\":\"c1\"}]}}",
		 bd_url(engine), bd_url(engine));
	struct hnode_opts po = {.config_json = pcfg, .env = env};
	struct hnode *prov = h_node_new(&po);
	assert_non_null(prov);
	assert_int_equal(h_node_start(prov), 0);
	snprintf(ccfg, sizeof ccfg,
		 "{\"consumer\":{\"providers\":[{\"name\":\"alice\",\"url\":\"%s\",\"peerId\":\"%s\"}]},"
		 "\"brain\":{\"enabled\":true,\"gatewayKeyEnv\":\"CG_TEST_GW_KEY\",\"refreshMs\":1000,"
		 "\"timeouts\":{\"connectMs\":2000,\"firstTokenMs\":5000,\"idleMs\":5000},"
		 "\"brains\":[{\"providerId\":\"market\",\"type\":\"market\",\"defaultModel\":\"market-llm\",\"providers\":[\"alice\"]},"
		 "{\"providerId\":\"central\",\"type\":\"centralized\",\"endpoint\":\"%s/v1\",\"defaultModel\":\"c1\"}]}}",
		 prov->base_url, prov->peer_id, bd_url(engine));
	struct hnode_opts co = {.config_json = ccfg, .env = env};
	struct hnode *cons = h_node_new(&co);
	assert_non_null(cons);
	assert_int_equal(h_node_start(cons), 0);
	assert_true(h_wait_until(catalog_loaded, cons, 15000));

	/* Through the market: lease, provider route, the engine behind it. */
	struct h_resp r;
	assert_int_equal(chat(cons, BODY, &r), 0);
	if (r.status != 200)
		fprintf(stderr, "%ld %s\n", r.status, r.body);
	assert_int_equal(r.status, 200);
	assert_string_equal(hdr(&r, "X-Clawgrid-Source"), "web3/decentralized");
	assert_non_null(strstr(r.body, "\"w5 \""));
	assert_non_null(strstr(r.body, "data: [DONE]"));
	assert_null(strstr(r.body, "receipt")); /* the provider's receipt event is not part of the OpenAI stream */
	json_t *p = json_pack("{s:s}", "requestId", hdr(&r, "X-Clawgrid-Request-Id"));
	json_t *a = h_rpc_ok(cons, "web3.brain.audit.query", p);
	json_t *rec = json_array_get(json_object_get(a, "records"), 0);
	json_t *u = json_object_get(rec, "usage");
	assert_string_equal(json_string_value(json_object_get(u, "source")), "upstream");
	char want[32];
	snprintf(want, sizeof want, "%lld",
		 (long long)(json_integer_value(json_object_get(u, "promptTokens")) +
			     json_integer_value(json_object_get(u, "completionTokens"))) * 2);
	assert_string_equal(json_string_value(json_object_get(rec, "cost")), want);
	assert_string_equal(json_string_value(json_object_get(rec, "upstream")), "market:alice/res_llm");
	json_decref(a);
	json_decref(p);
	h_resp_free(&r);
	/* The engine got the provider's model name and the forced usage request. */
	char *body = bd_last_body(engine);
	assert_non_null(strstr(body, "\"engine-model\""));
	assert_non_null(strstr(body, "\"include_usage\":true"));
	free(body);
	/* A second call reuses the lease. */
	assert_int_equal(chat(cons, BODY, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(hdr(&r, "X-Clawgrid-Source"), "web3/decentralized");
	h_resp_free(&r);
	json_t *sum = h_rpc_ok(cons, "web3.status.summary", NULL);
	assert_string_equal(json_string_value(json_object_get(json_object_get(sum, "brain"), "source")),
			    "web3/decentralized");
	assert_string_equal(json_string_value(json_object_get(json_object_get(sum, "brain"), "model")), "market-llm");
	json_decref(sum);

	/* One node, one path, two owners. */
	assert_int_equal(chat(prov, BODY, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(hdr(&r, "X-Clawgrid-Source"), "centralized");
	h_resp_free(&r);
	static const char *const lease_hdr[] = {"Authorization: Bearer tok_notarealtoken0000000000", "X-OpenClaw-Lease: lease_x",
						"Content-Type: application/json", NULL};
	assert_int_equal(h_http(prov, "POST", "/v1/chat/completions", lease_hdr, BODY, strlen(BODY), 20000, &r), 0);
	/* The provider answered (its lease checks: 401/403 with an E_ code), not the gateway (invalid_api_key). */
	assert_true(r.status == 401 || r.status == 403);
	assert_null(strstr(r.body, "invalid_api_key"));
	assert_non_null(strstr(r.body, "\"E_"));
	h_resp_free(&r);

	/* The provider goes away: the consumer falls back to the centralized brain. */
	assert_int_equal(h_node_stop(prov), 0);
	assert_int_equal(chat(cons, BODY, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(hdr(&r, "X-Clawgrid-Source"), "centralized");
	h_resp_free(&r);

	assert_int_equal(h_node_stop(cons), 0);
	h_log_assert_clean(cons, (const char *const[]){GW_KEY, "tok_", NULL});
	h_log_assert_clean(prov, (const char *const[]){GW_KEY, NULL});
	h_node_free(cons);
	h_node_free(prov);
	bd_stop(engine);
}

int main(void)
{
	h_require_bin();
	const struct CMUnitTest tests[] = {cmocka_unit_test(t_market_brain)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
