/* libFuzzer target for the JSON-RPC request parser and dispatcher (rpc_dispatch): any bytes as a request
 * body. Invariants: done() runs exactly once per dispatch, after every async call is finished; the answer
 * is nothing (notifications only), one response object, or a non-empty array no longer than the batch;
 * every response carries jsonrpc "2.0", an id, and exactly one of result / error, and errors carry an
 * integer code and a string message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "rpc/rpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct rpc_call *pending[RPC_MAX_BATCH];
static int npending;
static int done_calls;
static json_t *answer;

static int m_echo(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	static const char *const keys[] = {"s", "n", "amount", "flag", NULL};
	const char *s = NULL, *amt = NULL;
	int64_t n = 0;
	bool flag = false;
	(void)arg;
	(void)call;
	if (jp_only(params, NULL, keys, e) < 0 || jp_str(params, NULL, "s", 0, 0, 64, &s, e) < 0 ||
	    jp_int(params, NULL, "n", 0, -1000, 1000, &n, e) < 0 || jp_amount(params, NULL, "amount", 0, &amt, e) < 0 ||
	    jp_bool(params, NULL, "flag", 0, &flag, e) < 0)
		return -CG_E_INVALID_ARGUMENT;
	*result = json_pack("{s:s?,s:I,s:b}", "s", s, "n", (json_int_t)n, "flag", flag);
	return 0;
}

static int m_fail(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	(void)arg;
	(void)call;
	(void)params;
	(void)result;
	return cg_fail(e, CG_E_CONFLICT, "always fails");
}

static int m_async(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	(void)arg;
	(void)params;
	(void)result;
	(void)e;
	if (npending == RPC_MAX_BATCH)
		abort(); /* more async calls than a batch may hold */
	pending[npending++] = call;
	return RPC_ASYNC;
}

static void on_done(void *arg, json_t *resp)
{
	(void)arg;
	done_calls++;
	answer = resp;
}

static void check_one(json_t *r)
{
	if (!json_is_object(r))
		abort();
	const char *v = json_string_value(json_object_get(r, "jsonrpc"));
	if (!v || strcmp(v, "2.0") != 0 || !json_object_get(r, "id"))
		abort();
	json_t *res = json_object_get(r, "result"), *err = json_object_get(r, "error");
	if ((res != NULL) == (err != NULL))
		abort();
	if (err && (!json_is_integer(json_object_get(err, "code")) || !json_is_string(json_object_get(err, "message"))))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rpc_registry *reg;
	if (!reg) {
		reg = rpc_registry_new();
		rpc_register(reg, "t.echo", m_echo, NULL);
		rpc_register(reg, "t.fail", m_fail, NULL);
		rpc_register(reg, "t.async", m_async, NULL);
	}
	if (size > 1 << 16)
		return 0;
	static const struct rpc_caller who = {"admin", true, NULL};
	npending = 0;
	done_calls = 0;
	answer = NULL;
	rpc_dispatch(reg, (const char *)data, size, &who, on_done, NULL);
	/* finish async calls alternately with a result and an error, in reverse order */
	for (int i = npending - 1; i >= 0; i--) {
		if (done_calls != 0)
			abort(); /* answered before every call finished */
		cg_err e;
		cg_fail(&e, CG_E_TIMEOUT, "late");
		rpc_call_finish(pending[i], i % 2 ? NULL : json_string("ok"), i % 2 ? &e : NULL);
	}
	if (done_calls != 1)
		abort();
	if (answer) {
		if (json_is_array(answer)) {
			if (json_array_size(answer) == 0 || json_array_size(answer) > RPC_MAX_BATCH)
				abort();
			size_t i;
			json_t *r;
			json_array_foreach(answer, i, r) check_one(r);
		} else {
			check_one(answer);
		}
		char *s = json_dumps(answer, JSON_COMPACT);
		if (!s)
			abort();
		free(s);
	}
	json_decref(answer);
	return 0;
}
