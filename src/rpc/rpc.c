#include "rpc/rpc.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/redact.h"

struct method {
	char *name;
	rpc_fn fn;
	void *arg;
};

struct rpc_registry {
	struct method *m;
	size_t n, alloc;
};

struct batch {
	json_t *responses; /* array, in request order; JSON null for notifications */
	size_t pending;
	bool is_batch;
	rpc_done_fn done;
	void *arg;
};

struct rpc_call {
	struct batch *b;
	size_t index;
	json_t *id; /* NULL for notifications */
	char *method;
	const struct rpc_caller *who;
};

struct rpc_registry *rpc_registry_new(void)
{
	return calloc(1, sizeof(struct rpc_registry));
}

void rpc_registry_free(struct rpc_registry *reg)
{
	if (!reg)
		return;
	for (size_t i = 0; i < reg->n; i++)
		free(reg->m[i].name);
	free(reg->m);
	free(reg);
}

static int cmp_method(const void *a, const void *b)
{
	return strcmp(((const struct method *)a)->name, ((const struct method *)b)->name);
}

static const struct method *find(const struct rpc_registry *reg, const char *name)
{
	struct method key = {.name = (char *)name};
	return reg->n ? bsearch(&key, reg->m, reg->n, sizeof *reg->m, cmp_method) : NULL;
}

int rpc_register(struct rpc_registry *reg, const char *name, rpc_fn fn, void *arg)
{
	if (find(reg, name)) {
		log_error("rpc", "method registered twice", "method=%s", name);
		return -1;
	}
	if (reg->n == reg->alloc) {
		size_t na = reg->alloc ? reg->alloc * 2 : 64;
		struct method *m = realloc(reg->m, na * sizeof *m);
		if (!m)
			return -1;
		reg->m = m;
		reg->alloc = na;
	}
	reg->m[reg->n].name = strdup(name);
	if (!reg->m[reg->n].name)
		return -1;
	reg->m[reg->n].fn = fn;
	reg->m[reg->n].arg = arg;
	reg->n++;
	qsort(reg->m, reg->n, sizeof *reg->m, cmp_method);
	return 0;
}

int rpc_override(struct rpc_registry *reg, const char *name, rpc_fn fn, void *arg, rpc_fn *old_fn,
		 void **old_arg)
{
	struct method *m = (struct method *)find(reg, name);
	if (!m)
		return -1;
	if (old_fn)
		*old_fn = m->fn;
	if (old_arg)
		*old_arg = m->arg;
	m->fn = fn;
	m->arg = arg;
	return 0;
}

bool rpc_has(const struct rpc_registry *reg, const char *name)
{
	return find(reg, name) != NULL;
}

void rpc_each(const struct rpc_registry *reg, void (*fn)(void *arg, const char *name), void *arg)
{
	for (size_t i = 0; i < reg->n; i++)
		fn(arg, reg->m[i].name);
}

json_t *rpc_error_json(const cg_err *e)
{
	char msg[400];
	snprintf(msg, sizeof msg, "%s: %s", cg_code_name(e->code), e->msg);
	json_t *data = json_pack("{s:s}", "code", cg_code_name(e->code));
	if (e->retry_after_s > 0)
		json_object_set_new(data, "retryAfter", json_integer(e->retry_after_s));
	return json_pack("{s:i,s:s,s:o}", "code", cg_code_rpc(e->code), "message", msg, "data", data);
}

static json_t *proto_error(int code, const char *msg)
{
	return json_pack("{s:i,s:s}", "code", code, "message", msg);
}

static json_t *envelope(json_t *id, const char *key, json_t *val)
{
	json_t *r = json_pack("{s:s,s:O}", "jsonrpc", "2.0", "id", id ? id : json_null());
	json_object_set_new(r, key, val);
	return r;
}

static void batch_slot_done(struct batch *b)
{
	if (--b->pending > 0)
		return;
	json_t *out = NULL;
	if (b->is_batch) {
		out = json_array();
		size_t i;
		json_t *v;
		json_array_foreach(b->responses, i, v)
		{
			if (!json_is_null(v))
				json_array_append(out, v);
		}
		if (json_array_size(out) == 0) {
			json_decref(out);
			out = NULL;
		}
	} else {
		json_t *v = json_array_get(b->responses, 0);
		if (v && !json_is_null(v))
			out = json_incref(v);
	}
	json_decref(b->responses);
	rpc_done_fn done = b->done;
	void *arg = b->arg;
	free(b);
	done(arg, out);
}

static void set_slot(struct batch *b, size_t index, json_t *resp)
{
	json_array_set_new(b->responses, index, resp ? resp : json_null());
	batch_slot_done(b);
}

void rpc_call_finish(struct rpc_call *call, json_t *result, const cg_err *e)
{
	json_t *resp = NULL;
	if (call->id) {
		if (e && e->code != CG_OK) {
			resp = envelope(call->id, "error", rpc_error_json(e));
			json_decref(result);
		} else {
			resp = envelope(call->id, "result", result ? result : json_null());
		}
	} else {
		json_decref(result);
	}
	struct batch *b = call->b;
	size_t idx = call->index;
	json_decref(call->id);
	free(call->method);
	free(call);
	set_slot(b, idx, resp);
}

const struct rpc_caller *rpc_call_caller(const struct rpc_call *call)
{
	return call->who;
}

const char *rpc_call_method(const struct rpc_call *call)
{
	return call->method;
}

static void run_one(struct rpc_registry *reg, struct batch *b, size_t index, json_t *req,
		    const struct rpc_caller *who)
{
	if (!json_is_object(req)) {
		set_slot(b, index, envelope(NULL, "error", proto_error(-32600, "invalid request: not an object")));
		return;
	}
	json_t *id = json_object_get(req, "id");
	json_t *ver = json_object_get(req, "jsonrpc");
	json_t *meth = json_object_get(req, "method");
	json_t *params = json_object_get(req, "params");
	if (id && !(json_is_string(id) || json_is_integer(id) || json_is_null(id) || json_is_real(id))) {
		set_slot(b, index, envelope(NULL, "error", proto_error(-32600, "invalid request: bad id")));
		return;
	}
	if (!json_is_string(ver) || strcmp(json_string_value(ver), "2.0") != 0 || !json_is_string(meth)) {
		set_slot(b, index,
			 envelope(id, "error", proto_error(-32600, "invalid request: need jsonrpc \"2.0\" and method")));
		return;
	}
	const struct method *m = find(reg, json_string_value(meth));
	if (!m) {
		/* A notification for an unknown method gets no answer, like any notification. */
		set_slot(b, index, id ? envelope(id, "error", proto_error(-32601, "method not found")) : NULL);
		return;
	}
	json_t *p = NULL;
	if (!params || json_is_null(params)) {
		p = json_object();
	} else if (json_is_object(params)) {
		p = json_incref(params);
	} else {
		cg_err e;
		cg_fail(&e, CG_E_INVALID_ARGUMENT, "params: must be an object of named parameters");
		set_slot(b, index, id ? envelope(id, "error", rpc_error_json(&e)) : NULL);
		return;
	}
	struct rpc_call *call = calloc(1, sizeof *call);
	if (!call) {
		json_decref(p);
		set_slot(b, index, id ? envelope(id, "error", proto_error(-32603, "E_INTERNAL: out of memory")) : NULL);
		return;
	}
	call->b = b;
	call->index = index;
	call->id = id ? json_incref(id) : NULL;
	call->method = strdup(m->name);
	call->who = who;
	json_t *result = NULL;
	cg_err e;
	cg_err_clear(&e);
	int r = m->fn(m->arg, call, p, &result, &e);
	json_decref(p);
	if (r == RPC_ASYNC)
		return;
	if (r < 0 && e.code == CG_OK)
		cg_fail(&e, (enum cg_code)(-r), "%s failed", m->name);
	rpc_call_finish(call, r < 0 ? NULL : result, r < 0 ? &e : NULL);
	if (r < 0)
		json_decref(result);
}

void rpc_dispatch_json(struct rpc_registry *reg, json_t *req, const struct rpc_caller *who, rpc_done_fn done,
		       void *arg)
{
	struct batch *b = calloc(1, sizeof *b);
	if (!b) {
		done(arg, envelope(NULL, "error", proto_error(-32603, "E_INTERNAL: out of memory")));
		return;
	}
	b->done = done;
	b->arg = arg;
	b->responses = json_array();
	if (json_is_array(req)) {
		size_t n = json_array_size(req);
		if (n == 0 || n > RPC_MAX_BATCH) {
			json_decref(b->responses);
			free(b);
			done(arg, envelope(NULL, "error",
					   proto_error(-32600, n ? "invalid request: batch over 100 entries"
								 : "invalid request: empty batch")));
			return;
		}
		b->is_batch = true;
		b->pending = n + 1; /* +1 held until all calls are started */
		for (size_t i = 0; i < n; i++)
			json_array_append_new(b->responses, json_null());
		for (size_t i = 0; i < n; i++)
			run_one(reg, b, i, json_array_get(req, i), who);
		batch_slot_done(b);
	} else {
		b->pending = 2;
		json_array_append_new(b->responses, json_null());
		run_one(reg, b, 0, req, who);
		batch_slot_done(b);
	}
}

void rpc_dispatch(struct rpc_registry *reg, const char *body, size_t len, const struct rpc_caller *who,
		  rpc_done_fn done, void *arg)
{
	json_error_t jerr;
	json_t *req = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!req) {
		char msg[200];
		snprintf(msg, sizeof msg, "parse error: %s at line %d column %d", jerr.text, jerr.line, jerr.column);
		/* jansson quotes the input near the error: it may be a token the client sent. */
		redact_inplace(msg, sizeof msg);
		done(arg, envelope(NULL, "error", proto_error(-32700, msg)));
		return;
	}
	rpc_dispatch_json(reg, req, who, done, arg);
	json_decref(req);
}
