/* End to end with a real engine: the provider serves chat from the embedded llama.cpp backend (a tiny
 * generated GGUF), a consumer node leases it and chats through its tools; and the provider route streams
 * directly (usage asked or not, receipt after [DONE], ledger = engine usage). Skips (77) when the llama
 * runtime is not available on this machine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "gguf_gen.h"
#include "harness.h"
#include "model/llama.h"
#include "provider/receipt.h"

static struct hnode *prov, *cons;
static char cfg[2048], ccfg[1024];

static int setup(void **s)
{
	h_require_bin();
	cg_err e;
	if (llm_runtime_open(NULL, &e) != 0) {
		printf("skip: llama runtime not available: %s\n", e.msg);
		exit(77);
	}
	prov = h_node_new(NULL);
	if (!prov)
		return -1;
	mkdir(h_node_path(prov, "models"), 0700);
	struct gguf_gen_opts o = {0};
	if (gguf_gen_write(h_node_path(prov, "models/tiny.gguf"), &o) != 0)
		return -1;
	snprintf(cfg, sizeof cfg,
		 "{\"provider\":{\"resources\":[{\"id\":\"res_llama\",\"kind\":\"model\",\"publish\":true,"
		 "\"label\":\"Tiny llama\",\"price\":{\"unit\":\"token\",\"amount\":\"1\",\"currency\":\"CLAW\"},"
		 "\"policy\":{\"maxTokens\":16},\"backend\":{\"type\":\"llama\",\"model\":\"tiny\"}}]}}");
	if (h_node_write_config(prov, cfg) < 0 || h_node_start(prov) < 0)
		return -1;
	snprintf(ccfg, sizeof ccfg, "{\"consumer\":{\"providers\":[{\"name\":\"p\",\"url\":\"%s\"}]}}", prov->base_url);
	struct hnode_opts co = {.config_json = ccfg};
	cons = h_node_new(&co);
	if (!cons || h_node_start(cons) < 0)
		return -1;
	return 0;
}

static int teardown(void **s)
{
	if (cons)
		assert_int_equal(h_node_stop(cons), 0);
	if (prov)
		assert_int_equal(h_node_stop(prov), 0);
	h_node_free(cons);
	h_node_free(prov);
	return 0;
}

static void t_consumer_chat(void **s)
{
	json_t *p = json_pack("{s:s,s:[{s:s,s:s}],s:i}", "resourceId", "res_llama", "messages", "role", "user", "content",
			      "hello", "max_tokens", 8);
	json_t *r = h_rpc_ok(cons, "web3.model.chat", p);
	json_decref(p);
	json_t *msg = json_object_get(json_array_get(json_object_get(r, "choices"), 0), "message");
	assert_true(json_string_length(json_object_get(msg, "content")) > 0);
	json_t *u = json_object_get(r, "usage");
	json_t *rc = json_object_get(r, "receipt");
	assert_true(json_is_true(json_object_get(rc, "verified")));
	char want[32];
	snprintf(want, sizeof want, "%lld", (long long)json_integer_value(json_object_get(u, "total_tokens")));
	assert_string_equal(json_string_value(json_object_get(rc, "quantity")), want);
	json_decref(r);
}

static void t_stream(void **s)
{
	json_t *p = json_pack("{s:s,s:s,s:s,s:i}", "actorId", "0x00000000000000000000000000000000000000aa", "resourceId",
			      "res_llama", "consumerActorId", "0x00000000000000000000000000000000000000aa", "ttlMs", 60000);
	json_t *l = h_rpc_ok(prov, "market.lease.issue", p);
	json_decref(p);
	char auth[200], lh[100];
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", json_string_value(json_object_get(l, "accessToken")));
	snprintf(lh, sizeof lh, "X-OpenClaw-Lease: %s", json_string_value(json_object_get(l, "leaseId")));
	json_decref(l);
	const char *h[] = {auth, lh, "Content-Type: application/json", NULL};
	const char *b = "{\"stream\":true,\"max_tokens\":6,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
	struct h_resp r;
	assert_int_equal(h_http(prov, "POST", "/v1/chat/completions", h, b, strlen(b), 60000, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "chat.completion.chunk"));
	if (strstr(r.body, "\"usage\""))
		fail_msg("usage sent although the client did not ask for it:\n%s", r.body);
	char *rcp = strstr(r.body, "event: receipt\ndata: ");
	assert_non_null(rcp);
	assert_true(rcp > strstr(r.body, "data: [DONE]"));
	json_t *receipt = json_loads(rcp + strlen("event: receipt\ndata: "), JSON_DISABLE_EOF_CHECK, NULL);
	assert_int_equal(receipt_verify(receipt, prov->peer_id, NULL), 0);
	assert_true(atoi(json_string_value(json_object_get(receipt, "quantity"))) > 1);
	json_decref(receipt);
	h_resp_free(&r);
	const char *b2 = "{\"stream\":true,\"stream_options\":{\"include_usage\":true},\"max_tokens\":6,"
			 "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
	assert_int_equal(h_http(prov, "POST", "/v1/chat/completions", h, b2, strlen(b2), 60000, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"usage\""));
	h_resp_free(&r);
	const char *over = "{\"max_tokens\":17,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
	assert_int_equal(h_http(prov, "POST", "/v1/chat/completions", h, over, strlen(over), 60000, &r), 0);
	assert_int_equal(r.status, 400);
	h_resp_free(&r);
	const char *secrets[] = {prov->dir, NULL};
	h_log_assert_clean(prov, secrets);
	h_log_assert_clean(cons, secrets);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(t_consumer_chat), cmocka_unit_test(t_stream)};
	return cmocka_run_group_tests(tests, setup, teardown);
}
