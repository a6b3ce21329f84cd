/* End to end: a provider node and a consumer node (real daemons, separate data dirs and keys, loopback) over
 * the OpenAI streaming TEST DOUBLE (tests/lib/oai_double.h) as the provider's model engine.
 *
 * Covers: publish -> remote lease (signed request) -> chat / search / storage through the consumer's tools ->
 * ledger entries on the provider -> receipts verified and kept by the consumer -> summary; and, straight
 * against the provider routes with tokens the provider's owner issues: streaming with and without usage,
 * policy refusals (maxTokens, tools, maxBytes 413, allowMime 415, quota 429), traversal paths, wrong token,
 * wrong lease id, revoked, unpublished, expired, rate limit (429 + Retry-After), client disconnect
 * mid-stream (upstream cancelled), upstream failure mid-stream (error event, no [DONE], no ledger entry),
 * replayed and stale signed lease requests; SEC-01: no token, upstream URL, API key or real path in any
 * response or log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/clock.h"
#include "base/enc.h"
#include "crypto/identity.h"
#include "crypto/wallet.h"
#include "harness.h"
#include "oai_double.h"
#include "provider/leasereq.h"
#include "provider/receipt.h"

#define API_KEY "sk-double-upstream-key-7f3a"

static struct oai_double *dbl;
static struct hnode *prov, *cons;
static char docs[256], store_root[256], prov_cfg[8192], cons_cfg[2048];

/* Every body we get back is checked for secrets at the end (SEC-01). */
static char *seen;
static size_t seen_len;

static void keep(const char *s)
{
	size_t n = strlen(s);
	seen = realloc(seen, seen_len + n + 2);
	memcpy(seen + seen_len, s, n);
	seen_len += n;
	seen[seen_len++] = '\n';
	seen[seen_len] = 0;
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "we");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int group_setup(void **state)
{
	h_require_bin();
	struct oai_double_opts o = {.tokens = 6, .usage = OAI_USAGE_ASKED, .api_key = API_KEY};
	dbl = oai_double_start(&o);
	if (!dbl)
		return -1;
	prov = h_node_new(NULL);
	if (!prov)
		return -1;
	snprintf(docs, sizeof docs, "%s", h_root_path(prov, "docs"));
	mkdir(docs, 0700);
	write_file(docs, "leases.md", "# Leases\nA lease grants access to a provider resource until it expires.\n");
	write_file(docs, "ledger.html", "<title>Ledger</title><p>Every ledger entry is signed by the provider.</p>");
	snprintf(store_root, sizeof store_root, "%s", h_root_path(prov, "objects"));
	snprintf(prov_cfg, sizeof prov_cfg,
		 "{\"provider\":{\"rateLimit\":{\"requests\":25,\"windowMs\":60000},"
		 "\"timeouts\":{\"idleMs\":3000,\"firstByteMs\":5000},"
		 "\"resources\":["
		 "{\"id\":\"res_chat\",\"kind\":\"model\",\"publish\":true,\"label\":\"Double chat\","
		 "\"price\":{\"unit\":\"token\",\"amount\":\"2\",\"currency\":\"CLAW\"},"
		 "\"policy\":{\"maxTokens\":64,\"allowTools\":false,\"maxConcurrent\":8},"
		 "\"backend\":{\"type\":\"llama-server\",\"url\":\"%s\",\"apiKey\":\"" API_KEY "\",\"model\":\"double-model\"}},"
		 "{\"id\":\"res_docs\",\"kind\":\"search\",\"publish\":true,\"label\":\"Docs\","
		 "\"price\":{\"unit\":\"query\",\"amount\":\"5\",\"currency\":\"CLAW\"},"
		 "\"backend\":{\"type\":\"fts\",\"folder\":\"%s\",\"baseUrl\":\"https://docs.example/\"}},"
		 "{\"id\":\"res_tmp\",\"kind\":\"search\",\"publish\":true,\"label\":\"Temp\","
		 "\"price\":{\"unit\":\"query\",\"amount\":\"1\",\"currency\":\"CLAW\"},"
		 "\"backend\":{\"type\":\"fts\",\"folder\":\"%s\"}},"
		 "{\"id\":\"res_store\",\"kind\":\"storage\",\"publish\":true,\"label\":\"Store\","
		 "\"price\":{\"unit\":\"put\",\"amount\":\"3\",\"currency\":\"CLAW\"},"
		 "\"policy\":{\"maxBytes\":2048,\"allowMime\":[\"text/*\",\"application/json\"]},"
		 "\"backend\":{\"type\":\"fs\",\"root\":\"%s\",\"quotaBytes\":4096}}]}}",
		 oai_double_url(dbl), docs, docs, store_root);
	if (h_node_write_config(prov, prov_cfg) < 0 || h_node_start(prov) < 0)
		return -1;
	snprintf(cons_cfg, sizeof cons_cfg,
		 "{\"consumer\":{\"providers\":[{\"name\":\"alice\",\"url\":\"%s\",\"peerId\":\"%s\"}],"
		 "\"leaseTtlMs\":600000}}",
		 prov->base_url, prov->peer_id);
	struct hnode_opts co = {.config_json = cons_cfg};
	cons = h_node_new(&co);
	if (!cons || h_node_start(cons) < 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	if (cons)
		assert_int_equal(h_node_stop(cons), 0);
	if (prov)
		assert_int_equal(h_node_stop(prov), 0);
	h_node_free(cons);
	h_node_free(prov);
	oai_double_stop(dbl);
	free(seen);
	return 0;
}

/* ---- helpers ---- */

static json_t *rpc_ok(struct hnode *n, const char *method, json_t *params)
{
	json_t *r = h_rpc_ok(n, method, params);
	char *s = json_dumps(r, 0);
	keep(s);
	free(s);
	json_decref(params);
	return r;
}

/* A lease issued by the provider's owner for a made-up consumer: the token comes back to the test. */
struct lease {
	char id[64], token[128];
};

static void issue(const char *rid, struct lease *l)
{
	static int seq;
	char consumer[43];
	snprintf(consumer, sizeof consumer, "0x%040x", 0x1000 + ++seq);
	json_t *p = json_pack("{s:s,s:s,s:s,s:i}", "actorId", consumer, "resourceId", rid, "consumerActorId", consumer,
			      "ttlMs", 600000);
	json_t *r = h_rpc_ok(prov, "market.lease.issue", p);
	json_decref(p);
	snprintf(l->id, sizeof l->id, "%s", json_string_value(json_object_get(r, "leaseId")));
	snprintf(l->token, sizeof l->token, "%s", json_string_value(json_object_get(r, "accessToken")));
	json_decref(r);
}

static long call(const struct lease *l, const char *method, const char *path, const char *ctype, const char *body,
		 struct h_resp *r)
{
	char auth[200], lh[100], ct[100];
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", l ? l->token : "tok_wrong");
	snprintf(lh, sizeof lh, "X-OpenClaw-Lease: %s", l ? l->id : "lea_none");
	snprintf(ct, sizeof ct, "Content-Type: %s", ctype ? ctype : "application/json");
	const char *h[] = {auth, lh, ct, "X-OpenClaw-Request-Id: test-req-1", NULL};
	assert_int_equal(h_http(prov, method, path, h, body, body ? strlen(body) : 0, 20000, r), 0);
	keep(r->body);
	keep(r->headers);
	return r->status;
}

static const char *err_code(const struct h_resp *r)
{
	static char code[64];
	json_t *j = json_loads(r->body, 0, NULL);
	snprintf(code, sizeof code, "%s",
		 json_string_value(json_object_get(json_object_get(j, "error"), "code")) ?: "(none)");
	json_decref(j);
	return code;
}

static json_t *ledger(const char *lease_id)
{
	json_t *p = json_pack("{s:s}", "providerActorId", prov->address);
	if (lease_id)
		json_object_set_new(p, "leaseId", json_string(lease_id));
	json_t *r = h_rpc_ok(prov, "market.ledger.list", p);
	json_decref(p);
	json_t *e = json_incref(json_object_get(r, "entries"));
	json_decref(r);
	return e;
}

/* ---- the full flow through the consumer ---- */

static void t_full_flow(void **state)
{
	json_t *r = rpc_ok(cons, "web3.provider.resources", json_pack("{s:s}", "provider", "alice"));
	assert_string_equal(json_string_value(json_object_get(r, "peerId")), prov->peer_id);
	assert_int_equal(json_array_size(json_object_get(r, "resources")), 4);
	json_decref(r);

	/* Lease: the token never leaves the consumer node. */
	r = rpc_ok(cons, "web3.provider.lease", json_pack("{s:s}", "resourceId", "res_chat"));
	const char *lease_id = json_string_value(json_object_get(r, "leaseId"));
	assert_non_null(lease_id);
	assert_non_null(json_object_get(r, "orderId"));
	assert_true(json_integer_value(json_object_get(r, "expiresAt")) > clock_now_ms());
	assert_string_equal(json_string_value(json_object_get(r, "accessToken")), "[REDACTED]");
	char lid[64];
	snprintf(lid, sizeof lid, "%s", lease_id);
	json_decref(r);
	/* Reused, not re-issued — also through the spec's name, web3.resources.lease, with a provider named and
	 * without one (the resource is not this node's own, so the remote providers are asked). */
	r = rpc_ok(cons, "web3.resources.lease", json_pack("{s:s,s:s}", "provider", "alice", "resourceId", "res_chat"));
	assert_string_equal(json_string_value(json_object_get(r, "leaseId")), lid);
	assert_string_equal(json_string_value(json_object_get(r, "accessToken")), "[REDACTED]");
	json_decref(r);
	r = rpc_ok(cons, "web3.resources.lease", json_pack("{s:s}", "resourceId", "res_chat"));
	assert_string_equal(json_string_value(json_object_get(r, "leaseId")), lid);
	json_decref(r);

	/* Chat. */
	r = rpc_ok(cons, "web3.model.chat",
		   json_pack("{s:s,s:[{s:s,s:s}]}", "resourceId", "res_chat", "messages", "role", "user", "content",
			     "say something nice"));
	const char *text = json_string_value(json_object_get(
		json_object_get(json_array_get(json_object_get(r, "choices"), 0), "message"), "content"));
	assert_string_equal(text, "w1 w2 w3 w4 w5 w6 ");
	json_t *rc = json_object_get(r, "receipt");
	assert_true(json_is_true(json_object_get(rc, "verified")));
	/* prompt 3 words + 6 completion = 9 tokens at 2 each. */
	assert_string_equal(json_string_value(json_object_get(rc, "quantity")), "9");
	assert_string_equal(json_string_value(json_object_get(rc, "cost")), "18");
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "_lease"), "accessToken")), "[REDACTED]");
	json_decref(r);
	/* The engine got the configured model, its key, and never the client's name for it. */
	char *body = oai_double_last_body(dbl), *auth = oai_double_last_auth(dbl);
	json_t *seen_req = json_loads(body, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(seen_req, "model")), "double-model");
	assert_int_equal(json_integer_value(json_object_get(seen_req, "max_tokens")), 64); /* policy default */
	assert_string_equal(auth, "Bearer " API_KEY);
	json_decref(seen_req);
	free(body);
	free(auth);

	/* Search. */
	r = rpc_ok(cons, "web3.search.query", json_pack("{s:s,s:s}", "resourceId", "res_docs", "q", "lease expires"));
	json_t *res0 = json_array_get(json_object_get(r, "results"), 0);
	assert_string_equal(json_string_value(json_object_get(res0, "url")), "https://docs.example/leases.md");
	assert_true(json_is_true(json_object_get(json_object_get(r, "receipt"), "verified")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "receipt"), "cost")), "5");
	json_decref(r);

	/* Storage: put, get, list. */
	r = rpc_ok(cons, "web3.storage.put",
		   json_pack("{s:s,s:s,s:s,s:s}", "resourceId", "res_store", "path", "notes/today.txt", "content",
			     "remember the milk", "mime", "text/plain"));
	assert_int_equal(json_integer_value(json_object_get(r, "size")), 17);
	assert_true(json_is_true(json_object_get(json_object_get(r, "receipt"), "verified")));
	json_decref(r);
	r = rpc_ok(cons, "web3.storage.get", json_pack("{s:s,s:s}", "resourceId", "res_store", "path", "notes/today.txt"));
	uint8_t raw[64];
	const char *b64 = json_string_value(json_object_get(r, "bytesBase64"));
	long n = base64_decode(raw, b64, strlen(b64), false);
	assert_int_equal(n, 17);
	assert_memory_equal(raw, "remember the milk", 17);
	json_decref(r);
	r = rpc_ok(cons, "web3.storage.list", json_pack("{s:s,s:s}", "resourceId", "res_store", "prefix", "notes/"));
	assert_int_equal(json_array_size(json_object_get(r, "items")), 1);
	json_decref(r);

	/* The CLI streams a chat to the terminal. */
	char *out = NULL, *err = NULL;
	assert_int_equal(h_cli(cons, &out, &err, "chat", "--resource", "res_chat", "hello", "there", NULL), 0);
	assert_non_null(strstr(out, "w1 w2 w3 w4 w5 w6"));
	assert_non_null(strstr(err, "(verified)"));
	keep(out);
	keep(err);
	free(out);
	free(err);
	assert_int_equal(h_cli(cons, &out, &err, "search", "--resource", "res_docs", "ledger", NULL), 0);
	assert_non_null(strstr(out, "https://docs.example/ledger.html"));
	keep(out);
	free(out);
	free(err);

	/* Ledger on the provider = receipts kept by the consumer. */
	json_t *entries = ledger(NULL);
	r = rpc_ok(cons, "web3.consumer.receipts", json_object());
	json_t *receipts = json_object_get(r, "receipts");
	/* chat (rpc), search, put, get, chat (cli), search (cli) */
	assert_int_equal(json_array_size(receipts), 6);
	size_t i;
	json_t *rcpt;
	json_array_foreach(receipts, i, rcpt) {
		assert_int_equal(receipt_verify(rcpt, prov->peer_id, NULL), 0);
		bool found = false;
		size_t k;
		json_t *en;
		json_array_foreach(entries, k, en) {
			if (!strcmp(json_string_value(json_object_get(en, "ledgerId")),
				    json_string_value(json_object_get(rcpt, "ledgerId")))) {
				found = true;
				assert_string_equal(json_string_value(json_object_get(en, "entryHash")),
						    json_string_value(json_object_get(rcpt, "entryHash")));
				assert_string_equal(json_string_value(json_object_get(en, "cost")),
						    json_string_value(json_object_get(rcpt, "cost")));
			}
		}
		assert_true(found);
	}
	json_t *sum = rpc_ok(prov, "market.ledger.summary",
			     json_pack("{s:s,s:s}", "providerActorId", prov->address, "consumerActorId", cons->address));
	assert_string_equal(json_string_value(json_object_get(json_object_get(sum, "summary"), "totalCost")),
			    json_string_value(json_object_get(r, "totalCost")));
	json_decref(sum);
	json_decref(r);
	json_decref(entries);
	/* The provider's chain of entries verifies. */
	r = rpc_ok(prov, "market.ledger.verify", json_pack("{s:s}", "providerActorId", prov->address));
	json_decref(r);
}

/* ---- straight against the provider routes ---- */

static void t_stream_usage(void **state)
{
	struct lease l;
	issue("res_chat", &l);
	struct h_resp r;
	const char *plain = "{\"model\":\"x\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
	assert_int_equal(call(&l, "POST", "/v1/chat/completions", NULL, plain, &r), 200);
	char v[64];
	assert_true(h_resp_header(&r, "X-OpenClaw-Request-Id", v, sizeof v));
	assert_string_equal(v, "test-req-1");
	assert_non_null(strstr(r.body, "\"content\":\"w6 \""));
	assert_null(strstr(r.body, "\"usage\""));      /* not asked: stripped */
	char *done = strstr(r.body, "data: [DONE]");
	char *rcp = strstr(r.body, "event: receipt\ndata: ");
	assert_non_null(done);
	assert_non_null(rcp);
	assert_true(rcp > done);
	json_t *receipt = json_loads(rcp + strlen("event: receipt\ndata: "), JSON_DISABLE_EOF_CHECK, NULL);
	assert_int_equal(receipt_verify(receipt, prov->peer_id, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(receipt, "leaseId")), l.id);
	assert_string_equal(json_string_value(json_object_get(receipt, "requestId")), "test-req-1");
	json_decref(receipt);
	/* The upstream was asked for usage anyway. */
	char *body = oai_double_last_body(dbl);
	assert_non_null(strstr(body, "\"include_usage\":true"));
	free(body);
	h_resp_free(&r);
	const char *asked = "{\"stream\":true,\"stream_options\":{\"include_usage\":true},"
			    "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
	assert_int_equal(call(&l, "POST", "/web3/resources/model/chat", NULL, asked, &r), 200);
	assert_non_null(strstr(r.body, "\"usage\":{"));
	assert_non_null(strstr(r.body, "\"total_tokens\":7"));
	h_resp_free(&r);
	json_t *entries = ledger(l.id);
	assert_int_equal(json_array_size(entries), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(entries, 1), "quantity")), "7");
	json_decref(entries);
	/* Non-stream answer carries the receipt in a header. */
	assert_int_equal(call(&l, "POST", "/web3/resources/model/chat", NULL,
			      "{\"messages\":[{\"role\":\"user\",\"content\":\"a b\"}]}", &r),
			 200);
	char hv[4096];
	assert_true(h_resp_header(&r, "X-OpenClaw-Receipt", hv, sizeof hv));
	json_t *hr = NULL;
	assert_int_equal(receipt_from_header(hv, strlen(hv), &hr, NULL), 0);
	assert_int_equal(receipt_verify(hr, prov->peer_id, NULL), 0);
	json_decref(hr);
	h_resp_free(&r);
}

static void t_policy(void **state)
{
	struct lease chat, st;
	issue("res_chat", &chat);
	issue("res_store", &st);
	struct h_resp r;
	assert_int_equal(call(&chat, "POST", "/web3/resources/model/chat", NULL,
			      "{\"max_tokens\":65,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", &r),
			 400);
	assert_string_equal(err_code(&r), "E_INVALID_ARGUMENT");
	h_resp_free(&r);
	assert_int_equal(call(&chat, "POST", "/web3/resources/model/chat", NULL,
			      "{\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
			      "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
			      &r),
			 400);
	h_resp_free(&r);
	assert_int_equal(call(&chat, "POST", "/web3/resources/model/chat", "text/plain", "{}", &r), 415);
	h_resp_free(&r);
	/* A storage lease does not open the chat route. */
	assert_int_equal(call(&st, "POST", "/web3/resources/model/chat", NULL,
			      "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", &r),
			 403);
	h_resp_free(&r);
	/* Oversize (maxBytes 2048) -> 413; bad MIME -> 415; traversal -> 400. */
	char big[3200];
	memset(big, 'a', sizeof big);
	char body[3400];
	snprintf(body, sizeof body, "{\"path\":\"big.txt\",\"content\":\"%.*s\",\"mime\":\"text/plain\"}", 3000, big);
	assert_int_equal(call(&st, "POST", "/web3/resources/storage/put", NULL, body, &r), 413);
	h_resp_free(&r);
	assert_int_equal(call(&st, "POST", "/web3/resources/storage/put", NULL,
			      "{\"path\":\"a.png\",\"bytesBase64\":\"iVBORw==\",\"mime\":\"image/png\"}", &r),
			 415);
	h_resp_free(&r);
	static const char *const bad[] = {"../etc/passwd", "/etc/passwd", "a/../../b", "a\\u0000b", "a\\nb", "./x",
					  "a//b", NULL};
	for (int i = 0; bad[i]; i++) {
		snprintf(body, sizeof body, "{\"path\":\"%s\",\"content\":\"x\"}", bad[i]);
		assert_int_equal(call(&st, "POST", "/web3/resources/storage/put", NULL, body, &r), 400);
		h_resp_free(&r);
	}
	assert_int_equal(call(&st, "GET", "/web3/resources/storage/get?path=..%2F..%2Fetc%2Fpasswd", NULL, NULL, &r), 400);
	h_resp_free(&r);
	/* Quota 4096 bytes per lease: two of 2000, then 200 more is over. */
	snprintf(body, sizeof body, "{\"path\":\"q1\",\"content\":\"%.*s\"}", 2000, big);
	assert_int_equal(call(&st, "POST", "/web3/resources/storage/put", NULL, body, &r), 200);
	h_resp_free(&r);
	snprintf(body, sizeof body, "{\"path\":\"q2\",\"content\":\"%.*s\"}", 2000, big);
	assert_int_equal(call(&st, "POST", "/web3/resources/storage/put", NULL, body, &r), 200);
	h_resp_free(&r);
	snprintf(body, sizeof body, "{\"path\":\"q3\",\"content\":\"%.*s\"}", 200, big);
	assert_int_equal(call(&st, "POST", "/web3/resources/storage/put", NULL, body, &r), 429);
	assert_string_equal(err_code(&r), "E_QUOTA_EXCEEDED");
	h_resp_free(&r);
	/* Raw put and raw get. */
	char auth[200], lh[100];
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", st.token);
	snprintf(lh, sizeof lh, "X-OpenClaw-Lease: %s", st.id);
	const char *hh[] = {auth, lh, "Accept: application/octet-stream", NULL};
	assert_int_equal(h_http(prov, "GET", "/web3/resources/storage/get?path=q1", hh, NULL, 0, 20000, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.len, 2000);
	h_resp_free(&r);
}

static void t_auth(void **state)
{
	struct lease l, other;
	issue("res_docs", &l);
	issue("res_docs", &other);
	struct h_resp r;
	const char *q = "{\"q\":\"lease\"}";
	/* No token. */
	const char *h0[] = {"Content-Type: application/json", NULL};
	assert_int_equal(h_http(prov, "POST", "/web3/resources/search/query", h0, q, strlen(q), 20000, &r), 0);
	assert_int_equal(r.status, 401);
	h_resp_free(&r);
	/* Wrong token for the lease; a valid token with another lease's id. */
	struct lease wrong = l;
	wrong.token[10] = wrong.token[10] == 'A' ? 'B' : 'A';
	assert_int_equal(call(&wrong, "POST", "/web3/resources/search/query", NULL, q, &r), 403);
	h_resp_free(&r);
	struct lease mixed = l;
	snprintf(mixed.id, sizeof mixed.id, "%s", other.id);
	assert_int_equal(call(&mixed, "POST", "/web3/resources/search/query", NULL, q, &r), 403);
	h_resp_free(&r);
	snprintf(mixed.id, sizeof mixed.id, "lea_doesnotexist");
	assert_int_equal(call(&mixed, "POST", "/web3/resources/search/query", NULL, q, &r), 403);
	h_resp_free(&r);
	/* X-Lease-Token alone (the other accepted form) works. */
	char xt[200];
	snprintf(xt, sizeof xt, "X-Lease-Token: %s", l.token);
	const char *h1[] = {"Content-Type: application/json", xt, NULL};
	assert_int_equal(h_http(prov, "POST", "/web3/resources/search/query", h1, "{\"query\":\"lease\"}", 17, 20000, &r),
			 0);
	assert_int_equal(r.status, 200);
	h_resp_free(&r);
	/* Revoked. */
	json_decref(rpc_ok(prov, "market.lease.revoke", json_pack("{s:s,s:s}", "actorId", prov->address, "leaseId", l.id)));
	assert_int_equal(call(&l, "POST", "/web3/resources/search/query", NULL, q, &r), 401);
	assert_string_equal(err_code(&r), "E_REVOKED");
	h_resp_free(&r);
	/* Unpublished resource. */
	struct lease t;
	issue("res_tmp", &t);
	assert_int_equal(call(&t, "POST", "/web3/resources/search/query", NULL, q, &r), 200);
	h_resp_free(&r);
	json_decref(rpc_ok(prov, "market.resource.unpublish",
			   json_pack("{s:s,s:s}", "actorId", prov->address, "resourceId", "res_tmp")));
	assert_int_equal(call(&t, "POST", "/web3/resources/search/query", NULL, q, &r), 403);
	h_resp_free(&r);
	/* Rate limit: 25 per minute per lease. */
	struct lease rl;
	issue("res_docs", &rl);
	int ok = 0;
	long last = 0;
	for (int i = 0; i < 26; i++) {
		last = call(&rl, "POST", "/web3/resources/search/query", NULL, q, &r);
		if (last == 200)
			ok++;
		if (last == 429) {
			char ra[16];
			assert_true(h_resp_header(&r, "Retry-After", ra, sizeof ra));
			assert_true(atoi(ra) >= 1);
			assert_string_equal(err_code(&r), "E_RATE_LIMITED");
		}
		h_resp_free(&r);
	}
	assert_int_equal(ok, 25);
	assert_int_equal(last, 429);
}

static int abandoned_target;
static bool abandoned(void *arg)
{
	return oai_double_abandoned(dbl) >= abandoned_target;
}

static bool inflight_zero(void *arg)
{
	json_t *s = h_rpc_ok(prov, "provider.status", NULL);
	bool z = json_integer_value(json_object_get(s, "inflight")) == 0;
	json_decref(s);
	return z;
}

static void t_disconnect_and_failures(void **state)
{
	struct lease l;
	issue("res_chat", &l);
	/* Client disconnect mid-stream cancels the upstream request. */
	abandoned_target = oai_double_abandoned(dbl) + 1;
	int fd = h_connect(prov);
	assert_true(fd >= 0);
	const char *b = "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"[double:slow=300] [double:tokens=50]\"}]}";
	char req[1024];
	snprintf(req, sizeof req,
		 "POST /web3/resources/model/chat HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
		 "X-OpenClaw-Lease: %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
		 l.token, l.id, strlen(b), b);
	assert_int_equal(h_send(fd, req), 0);
	char got[256];
	assert_true(h_recv_all(fd, got, 64, 1500) > 0);
	close(fd);
	assert_true(h_wait_until(abandoned, NULL, 10000));
	assert_true(h_wait_until(inflight_zero, NULL, 10000));
	json_t *entries = ledger(l.id);
	assert_int_equal(json_array_size(entries), 0); /* an abandoned answer is not billed */
	json_decref(entries);

	/* Upstream cut mid-stream: an error event, no [DONE], no ledger entry. */
	struct h_resp r;
	assert_int_equal(call(&l, "POST", "/web3/resources/model/chat", NULL,
			      "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"[double:cut=2]\"}]}", &r),
			 200);
	assert_non_null(strstr(r.body, "\"content\":\"w2 \""));
	assert_non_null(strstr(r.body, "event: error"));
	assert_null(strstr(r.body, "[DONE]"));
	h_resp_free(&r);
	/* Upstream stalls: the idle timeout ends the stream the same way. */
	assert_int_equal(call(&l, "POST", "/web3/resources/model/chat", NULL,
			      "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"[double:stall=1]\"}]}", &r),
			 200);
	assert_non_null(strstr(r.body, "E_TIMEOUT"));
	assert_null(strstr(r.body, "[DONE]"));
	h_resp_free(&r);
	/* Upstream refuses before streaming: an error reply, no stream. */
	assert_int_equal(call(&l, "POST", "/web3/resources/model/chat", NULL,
			      "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"[double:fail=500]\"}]}", &r),
			 503);
	assert_string_equal(err_code(&r), "E_UNAVAILABLE");
	h_resp_free(&r);
	entries = ledger(l.id);
	assert_int_equal(json_array_size(entries), 0);
	json_decref(entries);
	assert_true(h_wait_until(inflight_zero, NULL, 10000));
}

/* Gate-LEDGER-02: the ledger refuses the entry (the lease's maxCost is too small), the answer is whole anyway;
 * only the receipt is missing. And a revoked lease cuts its running stream. */
static void t_ledger_failure_and_revocation(void **state)
{
	char consumer[43] = "0x00000000000000000000000000000000000000c1";
	json_t *p = json_pack("{s:s,s:s,s:s,s:i,s:s}", "actorId", consumer, "resourceId", "res_chat", "consumerActorId",
			      consumer, "ttlMs", 600000, "maxCost", "1");
	json_t *lr = h_rpc_ok(prov, "market.lease.issue", p);
	json_decref(p);
	struct lease l;
	snprintf(l.id, sizeof l.id, "%s", json_string_value(json_object_get(lr, "leaseId")));
	snprintf(l.token, sizeof l.token, "%s", json_string_value(json_object_get(lr, "accessToken")));
	json_decref(lr);
	struct h_resp r;
	assert_int_equal(call(&l, "POST", "/web3/resources/model/chat", NULL,
			      "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &r),
			 200);
	assert_non_null(strstr(r.body, "\"content\":\"w6 \""));
	assert_non_null(strstr(r.body, "data: [DONE]"));
	assert_null(strstr(r.body, "event: receipt"));
	assert_null(strstr(r.body, "event: error"));
	h_resp_free(&r);
	assert_int_equal(call(&l, "POST", "/web3/resources/model/chat", NULL,
			      "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &r),
			 200);
	char hv[64];
	assert_false(h_resp_header(&r, "X-OpenClaw-Receipt", hv, sizeof hv));
	assert_non_null(strstr(r.body, "w6"));
	h_resp_free(&r);
	json_t *entries = ledger(l.id);
	assert_int_equal(json_array_size(entries), 0);
	json_decref(entries);
	assert_true(h_log_contains(prov, "ledger append failed"));

	/* Revocation while streaming. */
	struct lease v;
	issue("res_chat", &v);
	int fd = h_connect(prov);
	assert_true(fd >= 0);
	const char *b = "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"[double:slow=200] [double:tokens=40]\"}]}";
	char req[1024];
	snprintf(req, sizeof req,
		 "POST /web3/resources/model/chat HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
		 "X-OpenClaw-Lease: %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
		 v.token, v.id, strlen(b), b);
	assert_int_equal(h_send(fd, req), 0);
	char got[16384];
	assert_true(h_recv_all(fd, got, 64, 1000) > 0);
	json_decref(rpc_ok(prov, "market.lease.revoke", json_pack("{s:s,s:s,s:s}", "actorId", prov->address, "leaseId",
								    v.id, "reason", "test")));
	long n = h_recv_all(fd, got, sizeof got, 2500);
	close(fd);
	assert_true(n > 0);
	assert_non_null(strstr(got, "E_REVOKED"));
	assert_null(strstr(got, "[DONE]"));
	assert_non_null(strstr(got, "\r\n0\r\n\r\n")); /* the chunked reply ended */
	assert_true(h_wait_until(inflight_zero, NULL, 10000));
}

static void t_signed_lease_route(void **state)
{
	struct wallet w;
	uint8_t sk[32] = {0x42};
	assert_int_equal(wallet_from_secret(sk, &w, NULL), 0);
	json_t *body = NULL;
	assert_int_equal(leasereq_build(&w, prov->address, "res_docs", 60000, NULL, clock_now_ms(), &body, NULL), 0);
	char *s = json_dumps(body, JSON_COMPACT);
	const char *h[] = {"Content-Type: application/json", NULL};
	struct h_resp r;
	assert_int_equal(h_http(prov, "POST", "/web3/market/lease", h, s, strlen(s), 20000, &r), 0);
	assert_int_equal(r.status, 200);
	json_t *j = json_loads(r.body, 0, NULL);
	assert_true(strncmp(json_string_value(json_object_get(j, "accessToken")), "tok_", 4) == 0);
	json_decref(j);
	h_resp_free(&r);
	/* Replayed. */
	assert_int_equal(h_http(prov, "POST", "/web3/market/lease", h, s, strlen(s), 20000, &r), 0);
	assert_int_equal(r.status, 409);
	keep(r.body);
	h_resp_free(&r);
	free(s);
	json_decref(body);
	/* Stale. */
	assert_int_equal(leasereq_build(&w, prov->address, "res_docs", 60000, NULL, clock_now_ms() - 3600000, &body, NULL), 0);
	s = json_dumps(body, JSON_COMPACT);
	assert_int_equal(h_http(prov, "POST", "/web3/market/lease", h, s, strlen(s), 20000, &r), 0);
	assert_string_equal(err_code(&r), "E_EXPIRED");
	h_resp_free(&r);
	free(s);
	json_decref(body);
	/* Unknown resource. */
	assert_int_equal(leasereq_build(&w, prov->address, "res_nope", 60000, NULL, clock_now_ms(), &body, NULL), 0);
	s = json_dumps(body, JSON_COMPACT);
	assert_int_equal(h_http(prov, "POST", "/web3/market/lease", h, s, strlen(s), 20000, &r), 0);
	assert_int_equal(r.status, 404);
	h_resp_free(&r);
	free(s);
	json_decref(body);
	wallet_wipe(&w);
}

/* Expiry and renewal on demand: the sweep expires every lease; the consumer renews its own transparently. */
static void t_expired_and_renew(void **state)
{
	struct lease l;
	issue("res_docs", &l);
	json_t *r = rpc_ok(cons, "web3.provider.lease", json_pack("{s:s}", "resourceId", "res_docs"));
	char before[64];
	snprintf(before, sizeof before, "%s", json_string_value(json_object_get(r, "leaseId")));
	json_decref(r);
	json_decref(rpc_ok(prov, "market.lease.expireSweep",
			   json_pack("{s:s,s:I}", "actorId", prov->address, "now", (json_int_t)(clock_now_ms() + 86400000))));
	struct h_resp hr;
	assert_int_equal(call(&l, "POST", "/web3/resources/search/query", NULL, "{\"q\":\"lease\"}", &hr), 401);
	assert_string_equal(err_code(&hr), "E_EXPIRED");
	h_resp_free(&hr);
	r = rpc_ok(cons, "web3.search.query", json_pack("{s:s,s:s}", "resourceId", "res_docs", "q", "ledger"));
	assert_true(json_is_true(json_object_get(json_object_get(r, "receipt"), "verified")));
	assert_string_not_equal(json_string_value(json_object_get(json_object_get(r, "_lease"), "leaseId")), before);
	json_decref(r);
}

/* Acceptance regressions: Retry-After on 503, one X-Accel-Buffering header on streams, the SearXNG string
 * form of engines, a put without mime typed from the path, the X-Lease-Token form on every route, and the
 * CLI chat's node address and error reporting. */
static void t_acceptance_regressions(void **state)
{
	struct lease chat, docs, st;
	issue("res_chat", &chat);
	issue("res_docs", &docs);
	issue("res_store", &st);
	struct h_resp r;

	/* An engine failure before the answer: 503 with Retry-After. */
	assert_int_equal(call(&chat, "POST", "/web3/resources/model/chat", NULL,
			      "{\"messages\":[{\"role\":\"user\",\"content\":\"[double:fail=500]\"}]}", &r), 503);
	assert_string_equal(err_code(&r), "E_UNAVAILABLE");
	assert_non_null(strcasestr(r.headers, "\nRetry-After: "));
	h_resp_free(&r);

	/* A stream names X-Accel-Buffering once. */
	assert_int_equal(call(&chat, "POST", "/web3/resources/model/chat", NULL,
			      "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &r), 200);
	const char *xa = strcasestr(r.headers, "X-Accel-Buffering");
	assert_non_null(xa);
	assert_null(strcasestr(xa + 1, "X-Accel-Buffering"));
	assert_non_null(strstr(r.body, "data: [DONE]"));
	h_resp_free(&r);

	/* The X-Lease-Token form alone, with the spec's {query, engines} body, engines as SearXNG's string. */
	char xlt[200];
	snprintf(xlt, sizeof xlt, "X-Lease-Token: %s", docs.token);
	const char *h1[] = {xlt, "Content-Type: application/json", "X-OpenClaw-Request-Id: qa.req-7", NULL};
	const char *b1 = "{\"query\":\"ledger\",\"engines\":\"google, bing\"}";
	assert_int_equal(h_http(prov, "POST", "/web3/resources/search/query", h1, b1, strlen(b1), 20000, &r), 0);
	keep(r.body);
	assert_int_equal(r.status, 200);
	assert_non_null(strcasestr(r.headers, "X-OpenClaw-Request-Id: qa.req-7"));
	json_t *j = json_loads(r.body, 0, NULL);
	assert_true(json_array_size(json_object_get(j, "results")) >= 1);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "usage"), "queries")), 1);
	json_decref(j);
	h_resp_free(&r);

	/* A put without mime is typed from the path, so a resource taking text types takes notes.txt; get by X-Lease-Token. */
	assert_int_equal(call(&st, "POST", "/web3/resources/storage/put", NULL,
			      "{\"path\":\"qa/notes.txt\",\"bytesBase64\":\"aGVsbG8=\"}", &r), 200);
	j = json_loads(r.body, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(j, "mime")), "text/plain");
	assert_string_equal(json_string_value(json_object_get(j, "etag")),
			    "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
	json_decref(j);
	h_resp_free(&r);
	assert_int_equal(call(&st, "POST", "/web3/resources/storage/put", NULL,
			      "{\"path\":\"qa/blob.bin\",\"bytesBase64\":\"aGVsbG8=\"}", &r), 415);
	h_resp_free(&r);
	snprintf(xlt, sizeof xlt, "X-Lease-Token: %s", st.token);
	const char *h2[] = {xlt, NULL};
	assert_int_equal(h_http(prov, "GET", "/web3/resources/storage/get?path=qa/notes.txt", h2, NULL, 0, 20000, &r), 0);
	keep(r.body);
	assert_int_equal(r.status, 200);
	j = json_loads(r.body, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(j, "bytesBase64")), "aGVsbG8=");
	json_decref(j);
	h_resp_free(&r);
	assert_int_equal(h_http(prov, "GET", "/web3/resources/storage/list?prefix=qa/", h2, NULL, 0, 20000, &r), 0);
	keep(r.body);
	assert_int_equal(r.status, 200);
	j = json_loads(r.body, 0, NULL);
	assert_int_equal(json_array_size(json_object_get(j, "items")), 1);
	json_decref(j);
	h_resp_free(&r);

	/* CLI chat: a refused request prints the provider's code and message, also right after a renewal of the
	 * lease (the revoked lease's 401 body must not be glued in front of the retry's). */
	char *out = NULL, *err = NULL;
	assert_int_not_equal(h_cli(cons, &out, &err, "chat", "--resource", "res_chat", "--max-tokens", "500", "hi", NULL), 0);
	assert_non_null(strstr(err, "E_INVALID_ARGUMENT"));
	assert_non_null(strstr(err, "maxTokens"));
	free(out);
	free(err);
	/* ...and never guesses a node address: a data directory without a running node gets no 127.0.0.1:7878. */
	struct hnode *idle = h_node_new(NULL);
	assert_non_null(idle);
	out = err = NULL;
	assert_int_not_equal(h_cli(idle, &out, &err, "chat", "--resource", "res_chat", "hi", NULL), 0);
	assert_null(strstr(err ? err : "", "7878"));
	assert_null(strstr(err ? err : "", "cannot reach"));
	free(out);
	free(err);
	h_node_free(idle);
}

static void t_sec01(void **state)
{
	const char *secrets[] = {API_KEY, oai_double_url(dbl), docs, store_root, prov->dir, cons->dir, NULL};
	for (int i = 0; secrets[i]; i++)
		assert_null(strstr(seen, secrets[i]));
	assert_null(strstr(seen, "tok_"));
	h_log_assert_clean(prov, secrets);
	h_log_assert_clean(cons, secrets);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_full_flow),
		cmocka_unit_test(t_stream_usage),
		cmocka_unit_test(t_policy),
		cmocka_unit_test(t_auth),
		cmocka_unit_test(t_disconnect_and_failures),
		cmocka_unit_test(t_ledger_failure_and_revocation),
		cmocka_unit_test(t_signed_lease_route),
		cmocka_unit_test(t_expired_and_renew),
		cmocka_unit_test(t_acceptance_regressions),
		cmocka_unit_test(t_sec01),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
