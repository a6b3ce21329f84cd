/* rpc: JSON-RPC 2.0 dispatch — single calls, batches in order, notifications (no answer), protocol errors
 * (-32700/-32600/-32601), E_* errors with code/message/data, async handlers finished later, the caller. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rpc/rpc.h"

static struct rpc_registry *reg;
static json_t *last;
static int done_calls;
static struct rpc_call *pending[4];
static int npending;

static void on_done(void *arg, json_t *resp)
{
	(void)arg;
	json_decref(last);
	last = resp;
	done_calls++;
}

static int m_add(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	(void)arg;
	(void)call;
	json_t *a = json_object_get(params, "a"), *b = json_object_get(params, "b");
	if (!json_is_integer(a) || !json_is_integer(b))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "a, b: must be integers");
	*result = json_integer(json_integer_value(a) + json_integer_value(b));
	return 0;
}

static int m_conflict(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	(void)arg;
	(void)call;
	(void)params;
	(void)result;
	int r = cg_fail(e, CG_E_RATE_LIMITED, "slow down");
	e->retry_after_s = 3;
	return r;
}

static int m_whoami(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	(void)arg;
	(void)params;
	(void)e;
	const struct rpc_caller *who = rpc_call_caller(call);
	*result = json_pack("{s:s,s:b,s:s}", "principal", who->principal, "admin", who->admin, "method",
			    rpc_call_method(call));
	return 0;
}

static int m_later(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	(void)arg;
	(void)params;
	(void)result;
	(void)e;
	pending[npending++] = call;
	return RPC_ASYNC;
}

static int setup(void **st)
{
	(void)st;
	reg = rpc_registry_new();
	rpc_register(reg, "math.add", m_add, NULL);
	rpc_register(reg, "x.conflict", m_conflict, NULL);
	rpc_register(reg, "x.whoami", m_whoami, NULL);
	rpc_register(reg, "x.later", m_later, NULL);
	return 0;
}

static int teardown(void **st)
{
	(void)st;
	json_decref(last);
	rpc_registry_free(reg);
	return 0;
}

static const struct rpc_caller admin = {"admin", true, NULL};

static json_t *call(const char *body)
{
	int before = done_calls;
	rpc_dispatch(reg, body, strlen(body), &admin, on_done, NULL);
	assert_int_equal(done_calls, before + 1);
	return last;
}

static int err_code(json_t *r)
{
	return (int)json_integer_value(json_object_get(json_object_get(r, "error"), "code"));
}

static void t_single(void **st)
{
	(void)st;
	json_t *r = call("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"math.add\",\"params\":{\"a\":2,\"b\":3}}");
	assert_string_equal(json_string_value(json_object_get(r, "jsonrpc")), "2.0");
	assert_int_equal(json_integer_value(json_object_get(r, "id")), 7);
	assert_int_equal(json_integer_value(json_object_get(r, "result")), 5);
	assert_null(json_object_get(r, "error"));
	r = call("{\"jsonrpc\":\"2.0\",\"id\":\"s\",\"method\":\"x.whoami\"}");
	assert_string_equal(json_string_value(json_object_get(r, "id")), "s");
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "result"), "principal")), "admin");
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "result"), "method")), "x.whoami");
	assert_true(rpc_has(reg, "math.add"));
	assert_false(rpc_has(reg, "math.sub"));
	assert_int_equal(rpc_register(reg, "math.add", m_add, NULL), -1);
}

static void t_errors(void **st)
{
	(void)st;
	json_t *r = call("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"math.add\",\"params\":{\"a\":\"x\"}}");
	assert_int_equal(err_code(r), -32602);
	json_t *err = json_object_get(r, "error");
	assert_string_equal(json_string_value(json_object_get(err, "message")),
			    "E_INVALID_ARGUMENT: a, b: must be integers");
	assert_string_equal(json_string_value(json_object_get(json_object_get(err, "data"), "code")),
			    "E_INVALID_ARGUMENT");
	r = call("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x.conflict\"}");
	assert_int_equal(err_code(r), -32029);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(json_object_get(r, "error"), "data"),
							     "retryAfter")),
			 3);
	assert_int_equal(err_code(call("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"nope\"}")), -32601);
	assert_int_equal(err_code(call("{\"jsonrpc\":\"2.0\",\"id\":1,")), -32700);
	assert_int_equal(err_code(call("")), -32700);
	assert_int_equal(err_code(call("{\"a\":1,\"a\":2}")), -32700); /* duplicate keys */
	assert_int_equal(err_code(call("\"str\"")), -32600);
	assert_int_equal(err_code(call("{\"id\":1,\"method\":\"math.add\"}")), -32600); /* no jsonrpc */
	assert_int_equal(err_code(call("{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"math.add\"}")), -32600);
	assert_int_equal(err_code(call("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":5}")), -32600);
	r = call("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"math.add\",\"params\":[1,2]}");
	assert_int_equal(err_code(r), -32602);
	assert_int_equal(err_code(call("[]")), -32600);
	/* a parse error quotes the input near the error: a token the client sent is redacted there */
	r = call("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":{\"t\":tok_Zm9vYmFyYmF6cXV4MTIzNDU2}}");
	assert_int_equal(err_code(r), -32700);
	const char *pm = json_string_value(json_object_get(json_object_get(r, "error"), "message"));
	assert_non_null(pm);
	assert_null(strstr(pm, "Zm9vYmFy"));
	assert_non_null(strstr(pm, "parse error"));
}

static void t_batch_and_notifications(void **st)
{
	(void)st;
	json_t *r = call("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"math.add\",\"params\":{\"a\":1,\"b\":1}},"
			 "{\"jsonrpc\":\"2.0\",\"method\":\"math.add\",\"params\":{\"a\":1,\"b\":1}},"
			 "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"nope\"},"
			 "1,"
			 "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"math.add\",\"params\":{\"a\":5,\"b\":5}}]");
	assert_true(json_is_array(r));
	assert_int_equal(json_array_size(r), 4);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(r, 0), "result")), 2);
	assert_int_equal(err_code(json_array_get(r, 1)), -32601);
	assert_int_equal(err_code(json_array_get(r, 2)), -32600);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(r, 3), "id")), 3);
	/* notifications only: nothing to send */
	assert_null(call("{\"jsonrpc\":\"2.0\",\"method\":\"math.add\",\"params\":{\"a\":1,\"b\":1}}"));
	assert_null(call("{\"jsonrpc\":\"2.0\",\"method\":\"no.such\"}"));
	assert_null(call("[{\"jsonrpc\":\"2.0\",\"method\":\"x.whoami\"},{\"jsonrpc\":\"2.0\",\"method\":\"x\"}]"));
	/* too big a batch */
	char big[20000];
	size_t off = (size_t)snprintf(big, sizeof big, "[");
	for (int i = 0; i < RPC_MAX_BATCH + 1; i++)
		off += (size_t)snprintf(big + off, sizeof big - off, "%s{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x.whoami\"}",
					i ? "," : "");
	snprintf(big + off, sizeof big - off, "]");
	assert_int_equal(err_code(call(big)), -32600);
}

static void t_async(void **st)
{
	(void)st;
	npending = 0;
	int before = done_calls;
	const char *b = "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x.later\"},"
			"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"math.add\",\"params\":{\"a\":1,\"b\":2}},"
			"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"x.later\"}]";
	rpc_dispatch(reg, b, strlen(b), &admin, on_done, NULL);
	assert_int_equal(done_calls, before); /* waits for both async calls */
	assert_int_equal(npending, 2);
	cg_err e;
	cg_fail(&e, CG_E_TIMEOUT, "upstream took too long");
	rpc_call_finish(pending[1], NULL, &e);
	assert_int_equal(done_calls, before);
	rpc_call_finish(pending[0], json_string("done"), NULL);
	assert_int_equal(done_calls, before + 1);
	assert_int_equal(json_array_size(last), 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(last, 0), "result")), "done");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(last, 1), "result")), 3);
	assert_int_equal(err_code(json_array_get(last, 2)), -32054);
	/* an async notification finishes with nothing to send */
	npending = 0;
	before = done_calls;
	const char *n = "{\"jsonrpc\":\"2.0\",\"method\":\"x.later\"}";
	rpc_dispatch(reg, n, strlen(n), &admin, on_done, NULL);
	assert_int_equal(done_calls, before);
	rpc_call_finish(pending[0], json_true(), NULL);
	assert_int_equal(done_calls, before + 1);
	assert_null(last);
}

static void add_name(void *arg, const char *name)
{
	json_array_append_new(arg, json_string(name));
}

static void t_each(void **st)
{
	(void)st;
	json_t *a = json_array();
	rpc_each(reg, add_name, a);
	assert_int_equal(json_array_size(a), 4);
	assert_string_equal(json_string_value(json_array_get(a, 0)), "math.add"); /* sorted */
	assert_string_equal(json_string_value(json_array_get(a, 3)), "x.whoami");
	json_decref(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_single), cmocka_unit_test(t_errors), cmocka_unit_test(t_batch_and_notifications),
		cmocka_unit_test(t_async),  cmocka_unit_test(t_each),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
