/* The node's HTTP and JSON-RPC surface against a real daemon on loopback: /healthz, /metrics, /rpc auth,
 * content type, body cap, malformed JSON, unknown methods, param errors, batches, notifications,
 * web3.status.summary (Gate TEST-01), node.info, and that the admin token never reaches the log (SEC-01). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/json.h"
#include "harness.h"

static struct hnode *node;

static int setup(void **st)
{
	(void)st;
	static const char *const env[] = {"CLAWGRID_TEST_HOOKS=1", NULL};
	struct hnode_opts o = {.env = env};
	node = h_node_new(&o);
	if (!node || h_node_start(node) < 0)
		return -1;
	return 0;
}

static int teardown(void **st)
{
	(void)st;
	int rc = h_node_stop(node);
	h_log_assert_clean(node, NULL);
	h_node_free(node);
	return rc == 0 ? 0 : -1;
}

static const char *err_code(json_t *resp)
{
	return json_string_value(json_object_get(json_object_get(json_object_get(resp, "error"), "data"), "code"));
}

static void t_healthz(void **st)
{
	(void)st;
	struct h_resp r;
	assert_int_equal(h_get(node, "/healthz", &r), 0);
	assert_int_equal(r.status, 200);
	json_t *j = json_loads(r.body, 0, NULL);
	assert_non_null(j);
	assert_true(json_is_true(json_object_get(j, "ok")));
	assert_string_equal(json_string_value(json_object_get(j, "status")), "ok");
	char ct[128];
	assert_true(h_resp_header(&r, "Content-Type", ct, sizeof ct));
	assert_string_equal(ct, "application/json");
	json_decref(j);
	h_resp_free(&r);
	/* unknown route and wrong method */
	assert_int_equal(h_get(node, "/nope", &r), 0);
	assert_int_equal(r.status, 404);
	assert_non_null(strstr(r.body, "E_NOT_FOUND"));
	h_resp_free(&r);
	assert_int_equal(h_http(node, "DELETE", "/healthz", NULL, NULL, 0, 0, &r), 0);
	assert_int_equal(r.status, 405);
	char allow[64];
	assert_true(h_resp_header(&r, "Allow", allow, sizeof allow));
	assert_non_null(strstr(allow, "GET"));
	h_resp_free(&r);
}

/* Checks the Prometheus text format 0.0.4 line by line: HELP/TYPE comments, then samples
 * name{labels} value where every sample's family was announced by a TYPE line. */
static void t_metrics(void **st)
{
	(void)st;
	struct h_resp r;
	/* one request to count first */
	json_decref(h_rpc_ok(node, "node.info", NULL));
	assert_int_equal(h_get(node, "/metrics", &r), 0);
	assert_int_equal(r.status, 200);
	char ct[128];
	assert_true(h_resp_header(&r, "Content-Type", ct, sizeof ct));
	assert_non_null(strstr(ct, "text/plain; version=0.0.4"));
	char *text = strdup(r.body);
	char types[200][96];
	int ntypes = 0, samples = 0;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "# HELP ", 7) == 0)
			continue;
		if (strncmp(line, "# TYPE ", 7) == 0) {
			char name[96], kind[32];
			assert_int_equal(sscanf(line + 7, "%95s %31s", name, kind), 2);
			assert_true(strcmp(kind, "counter") == 0 || strcmp(kind, "gauge") == 0 ||
				    strcmp(kind, "histogram") == 0);
			assert_true(ntypes < 200);
			snprintf(types[ntypes++], sizeof types[0], "%s", name);
			continue;
		}
		assert_true(line[0] != '#');
		size_t nl = strcspn(line, "{ ");
		char name[96];
		assert_true(nl > 0 && nl < sizeof name);
		memcpy(name, line, nl);
		name[nl] = 0;
		bool known = false;
		for (int i = 0; i < ntypes && !known; i++) {
			size_t tl = strlen(types[i]);
			known = strcmp(name, types[i]) == 0 ||
				(strncmp(name, types[i], tl) == 0 &&
				 (strcmp(name + tl, "_bucket") == 0 || strcmp(name + tl, "_sum") == 0 ||
				  strcmp(name + tl, "_count") == 0));
		}
		assert_true(known);
		const char *val = strrchr(line, ' ');
		assert_non_null(val);
		char *end;
		strtod(val + 1, &end);
		assert_true(*end == 0 || strcmp(val + 1, "+Inf") == 0);
		samples++;
	}
	free(text);
	assert_true(samples > 10);
	assert_non_null(strstr(r.body, "process_cpu_seconds_total "));
	assert_non_null(strstr(r.body, "process_resident_memory_bytes "));
	assert_non_null(strstr(r.body, "process_open_fds "));
	assert_non_null(strstr(r.body, "process_start_time_seconds "));
	assert_non_null(strstr(r.body, "clawgrid_http_requests_total{route=\"/rpc\",status=\"200\"}"));
	assert_non_null(strstr(r.body, "clawgrid_http_request_duration_seconds_bucket{route=\"/rpc\",le=\"+Inf\"}"));
	h_resp_free(&r);
}

static void t_auth(void **st)
{
	(void)st;
	const char *body = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"node.info\"}";
	const char *none[] = {"Content-Type: application/json", NULL};
	const char *wrong[] = {"Content-Type: application/json", "Authorization: Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
			       NULL};
	const char *basic[] = {"Content-Type: application/json", "Authorization: Basic dXNlcjpwYXNz", NULL};
	const char *const *cases[] = {none, wrong, basic};
	for (int i = 0; i < 3; i++) {
		struct h_resp r;
		assert_int_equal(h_http(node, "POST", "/rpc", cases[i], body, strlen(body), 0, &r), 0);
		assert_int_equal(r.status, 401);
		json_t *j = json_loads(r.body, 0, NULL);
		assert_non_null(j);
		assert_string_equal(err_code(j), "E_AUTH_REQUIRED");
		assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "error"), "code")), -32001);
		assert_null(json_object_get(j, "result"));
		char wa[64];
		assert_true(h_resp_header(&r, "WWW-Authenticate", wa, sizeof wa));
		json_decref(j);
		h_resp_free(&r);
	}
	/* the right token works */
	json_t *info = h_rpc_ok(node, "node.info", NULL);
	assert_string_equal(json_string_value(json_object_get(info, "peerId")), node->peer_id);
	json_decref(info);
}

static void t_bad_requests(void **st)
{
	(void)st;
	struct h_resp r;
	char authz[200];
	snprintf(authz, sizeof authz, "Authorization: Bearer %s", node->token);
	/* malformed JSON: 200 with -32700 */
	assert_int_equal(h_post_json(node, "/rpc", "{\"jsonrpc\":\"2.0\",", &r), 0);
	assert_int_equal(r.status, 200);
	json_t *j = json_loads(r.body, 0, NULL);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "error"), "code")), -32700);
	assert_true(json_is_null(json_object_get(j, "id")));
	json_decref(j);
	h_resp_free(&r);
	/* empty body */
	assert_int_equal(h_post_json(node, "/rpc", "", &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "-32700"));
	h_resp_free(&r);
	/* wrong content type: 415 */
	const char *text[] = {"Content-Type: text/plain", authz, NULL};
	const char *body = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"node.info\"}";
	assert_int_equal(h_http(node, "POST", "/rpc", text, body, strlen(body), 0, &r), 0);
	assert_int_equal(r.status, 415);
	assert_non_null(strstr(r.body, "Content-Type"));
	h_resp_free(&r);
	/* charset parameter is fine */
	const char *utf8[] = {"Content-Type: application/json; charset=utf-8", authz, NULL};
	assert_int_equal(h_http(node, "POST", "/rpc", utf8, body, strlen(body), 0, &r), 0);
	assert_int_equal(r.status, 200);
	h_resp_free(&r);
	/* body over the 1 MiB default cap: 413, refused before parsing */
	size_t big = (1u << 20) + 100;
	char *huge = malloc(big + 1);
	memset(huge, ' ', big);
	huge[big] = 0;
	huge[0] = '{';
	huge[big - 1] = '}';
	assert_int_equal(h_post_json(node, "/rpc", huge, &r), 0);
	assert_int_equal(r.status, 413);
	h_resp_free(&r);
	free(huge);
	/* invalid request (not an object) and bad version */
	assert_int_equal(h_post_json(node, "/rpc", "42", &r), 0);
	assert_non_null(strstr(r.body, "-32600"));
	h_resp_free(&r);
	assert_int_equal(h_post_json(node, "/rpc", "{\"jsonrpc\":\"1.0\",\"id\":3,\"method\":\"node.info\"}", &r), 0);
	assert_non_null(strstr(r.body, "-32600"));
	h_resp_free(&r);
	/* the node is still fine */
	json_decref(h_rpc_ok(node, "node.info", NULL));
}

static void t_methods_and_params(void **st)
{
	(void)st;
	long status;
	json_t *resp = h_rpc(node, "no.such.method", NULL, &status);
	assert_int_equal(status, 200);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(resp, "error"), "code")), -32601);
	json_decref(resp);
	/* wrong param type: E_INVALID_ARGUMENT naming the field */
	json_t *p = json_pack("{s:i}", "prefix", 5);
	json_t *err = h_rpc_err(node, "rpc.methods", p, "E_INVALID_ARGUMENT");
	assert_int_equal(json_integer_value(json_object_get(err, "code")), -32602);
	const char *msg = json_string_value(json_object_get(err, "message"));
	assert_non_null(strstr(msg, "E_INVALID_ARGUMENT: "));
	assert_non_null(strstr(msg, "prefix"));
	json_decref(err);
	json_decref(p);
	/* unknown param: named too */
	p = json_pack("{s:b}", "verbose", 1);
	err = h_rpc_err(node, "node.info", p, "E_INVALID_ARGUMENT");
	assert_non_null(strstr(json_string_value(json_object_get(err, "message")), "verbose"));
	json_decref(err);
	json_decref(p);
	/* positional params are refused */
	struct h_resp r;
	assert_int_equal(h_post_json(node, "/rpc", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"node.info\",\"params\":[1]}",
				     &r),
			 0);
	assert_non_null(strstr(r.body, "E_INVALID_ARGUMENT"));
	h_resp_free(&r);
	/* rpc.methods with a prefix */
	p = json_pack("{s:s}", "prefix", "web3.status");
	json_t *res = h_rpc_ok(node, "rpc.methods", p);
	json_t *arr = json_object_get(res, "methods");
	assert_int_equal(json_array_size(arr), 1);
	assert_string_equal(json_string_value(json_array_get(arr, 0)), "web3.status.summary");
	json_decref(res);
	json_decref(p);
}

static void t_batch(void **st)
{
	(void)st;
	struct h_resp r;
	const char *batch = "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"node.info\"},"
			    "{\"jsonrpc\":\"2.0\",\"method\":\"node.info\"},"
			    "{\"jsonrpc\":\"2.0\",\"id\":\"b\",\"method\":\"nope\"},"
			    "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"debug.sleep\",\"params\":{\"ms\":20}},"
			    "7]";
	assert_int_equal(h_post_json(node, "/rpc", batch, &r), 0);
	assert_int_equal(r.status, 200);
	json_t *j = json_loads(r.body, 0, NULL);
	assert_true(json_is_array(j));
	/* the notification gets no entry; the others keep request order */
	assert_int_equal(json_array_size(j), 4);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(j, 0), "id")), 1);
	assert_non_null(json_object_get(json_array_get(j, 0), "result"));
	assert_string_equal(json_string_value(json_object_get(json_array_get(j, 1), "id")), "b");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(json_array_get(j, 1), "error"), "code")),
			 -32601);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(j, 2), "id")), 3);
	assert_true(json_is_true(json_object_get(json_object_get(json_array_get(j, 2), "result"), "slept")));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(json_array_get(j, 3), "error"), "code")),
			 -32600);
	json_decref(j);
	h_resp_free(&r);
	/* only notifications: 204, no body */
	assert_int_equal(h_post_json(node, "/rpc", "[{\"jsonrpc\":\"2.0\",\"method\":\"node.info\"}]", &r), 0);
	assert_int_equal(r.status, 204);
	assert_int_equal(r.len, 0);
	h_resp_free(&r);
	assert_int_equal(h_post_json(node, "/rpc", "[]", &r), 0);
	assert_non_null(strstr(r.body, "-32600"));
	h_resp_free(&r);
}

/* Gate TEST-01: web3.status.summary has the spec's brain / billing / settlement fields with honest values
 * when nothing is configured. */
static void t_status_summary(void **st)
{
	(void)st;
	json_t *s = h_rpc_ok(node, "web3.status.summary", NULL);
	json_t *brain = json_object_get(s, "brain"), *bill = json_object_get(s, "billing");
	json_t *settle = json_object_get(s, "settlement");
	assert_true(json_is_object(brain));
	assert_true(json_is_object(bill));
	assert_true(json_is_object(settle));
	assert_non_null(json_object_get(brain, "source"));
	assert_true(json_is_null(json_object_get(brain, "source")));
	assert_non_null(json_object_get(brain, "provider"));
	assert_non_null(json_object_get(brain, "model"));
	assert_string_equal(json_string_value(json_object_get(brain, "availability")), "unavailable");
	assert_string_equal(json_string_value(json_object_get(bill, "status")), "unbound");
	/* credits: always an amount (decimal string); nothing bound means "0" (never null) */
	assert_string_equal(json_string_value(json_object_get(bill, "credits")), "0");
	assert_true(json_is_integer(json_object_get(settle, "pending")));
	assert_int_equal(json_integer_value(json_object_get(settle, "pending")), 0);
	json_decref(s);
	/* params are refused by name */
	json_t *p = json_pack("{s:s}", "detail", "all");
	json_t *err = h_rpc_err(node, "web3.status.summary", p, "E_INVALID_ARGUMENT");
	assert_non_null(strstr(json_string_value(json_object_get(err, "message")), "detail"));
	json_decref(err);
	json_decref(p);
}

static void t_node_info(void **st)
{
	(void)st;
	json_t *i = h_rpc_ok(node, "node.info", NULL);
	assert_string_equal(json_string_value(json_object_get(i, "peerId")), node->peer_id);
	assert_string_equal(json_string_value(json_object_get(i, "address")), node->address);
	assert_string_equal(json_string_value(json_object_get(i, "api")), node->api);
	assert_true(json_is_string(json_object_get(i, "version")));
	assert_true(json_integer_value(json_object_get(i, "uptime")) >= 0);
	assert_true(strncmp(node->peer_id, "12D3KooW", 8) == 0);
	json_decref(i);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_healthz),	     cmocka_unit_test(t_metrics),
		cmocka_unit_test(t_auth),	     cmocka_unit_test(t_bad_requests),
		cmocka_unit_test(t_methods_and_params), cmocka_unit_test(t_batch),
		cmocka_unit_test(t_status_summary),  cmocka_unit_test(t_node_info),
	};
	h_require_bin();
	return cmocka_run_group_tests(tests, setup, teardown);
}
