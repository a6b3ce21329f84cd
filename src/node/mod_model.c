/* Wiring of the model module into the node: the "models" config section, the registry on the node's loop,
 * the model.* JSON-RPC methods (list, info, status, add, rm, load, unload, chat) and, for the owner's local
 * use, an OpenAI-compatible POST /local/v1/chat/completions (admin token; SSE when "stream": true) and
 * GET /local/v1/models. The provider routes call the same C API (model_chat_start). */
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/log.h"
#include "http/server.h"
#include "model/model.h"
#include "node/modules.h"
#include "rpc/rpc.h"

struct mod {
	struct node *n;
	struct model_registry *reg;
	char folder[4200];
};

static int check(json_t *section, cg_err *e)
{
	return model_config_check(section, e);
}

static int need_admin(struct rpc_call *call, cg_err *e)
{
	const struct rpc_caller *who = rpc_call_caller(call);
	if (!who || !who->admin)
		return cg_fail(e, CG_E_FORBIDDEN, "model methods are for the node's owner");
	return 0;
}

static int get_name(json_t *params, const char **name, cg_err *e)
{
	static const char *const keys[] = {"name", NULL};
	if (!json_is_object(params))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "params: must be an object");
	if (jp_only(params, NULL, keys, e) < 0 || jp_str(params, NULL, "name", JP_REQUIRED, 1, 200, name, e) < 0)
		return -CG_E_INVALID_ARGUMENT;
	return 0;
}

static int m_list(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	struct mod *m = arg;
	if (need_admin(call, e) < 0)
		return -CG_E_FORBIDDEN;
	*result = json_pack("{s:o}", "models", model_list(m->reg));
	return 0;
}

static int m_status(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	struct mod *m = arg;
	if (need_admin(call, e) < 0)
		return -CG_E_FORBIDDEN;
	*result = model_status(m->reg);
	return 0;
}

static int m_info(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	struct mod *m = arg;
	const char *name;
	if (need_admin(call, e) < 0 || get_name(params, &name, e) < 0)
		return -(int)e->code;
	return model_info(m->reg, name, result, e);
}

static int m_add(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	struct mod *m = arg;
	static const char *const keys[] = {"path", "name", NULL};
	const char *path, *name = NULL;
	if (need_admin(call, e) < 0)
		return -CG_E_FORBIDDEN;
	if (!json_is_object(params) || jp_only(params, NULL, keys, e) < 0 ||
	    jp_str(params, NULL, "path", JP_REQUIRED, 1, 4000, &path, e) < 0 ||
	    jp_str(params, NULL, "name", 0, 1, 64, &name, e) < 0)
		return e->code ? -(int)e->code : cg_fail(e, CG_E_INVALID_ARGUMENT, "params: must be an object");
	json_t *info;
	if (model_folder_add(m->folder, path, name, &info, e) != 0 || model_rescan(m->reg, e) != 0)
		return -(int)e->code;
	*result = info;
	return 0;
}

static int m_rm(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	struct mod *m = arg;
	const char *name;
	if (need_admin(call, e) < 0 || get_name(params, &name, e) < 0)
		return -(int)e->code;
	json_t *info;
	if (model_info(m->reg, name, &info, e) == 0) {
		const char *st = json_string_value(json_object_get(info, "state"));
		bool loaded = st && strcmp(st, "unloaded") != 0 && json_object_get(info, "file");
		json_decref(info);
		if (loaded)
			return cg_fail(e, CG_E_CONFLICT, "model %s is loaded; unload it first", name);
	}
	if (model_folder_rm(m->folder, name, e) != 0 || model_rescan(m->reg, e) != 0)
		return -(int)e->code;
	*result = json_pack("{s:s,s:b}", "name", name, "removed", 1);
	return 0;
}

static void load_done(void *arg, const cg_err *e)
{
	struct rpc_call *call = arg;
	rpc_call_finish(call, e ? NULL : json_pack("{s:s}", "state", "ready"), e);
}

static int m_load(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	struct mod *m = arg;
	const char *name;
	if (need_admin(call, e) < 0 || get_name(params, &name, e) < 0)
		return -(int)e->code;
	if (model_load(m->reg, name, load_done, call, e) != 0)
		return -(int)e->code;
	return RPC_ASYNC; /* load_done may already have finished the call: rpc allows that */
}

static int m_unload(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	struct mod *m = arg;
	const char *name;
	if (need_admin(call, e) < 0 || get_name(params, &name, e) < 0)
		return -(int)e->code;
	if (model_unload(m->reg, name, e) != 0)
		return -(int)e->code;
	*result = json_pack("{s:s,s:s}", "name", name, "state", "unloaded");
	return 0;
}

static void chat_chunk(void *arg, json_t *chunk)
{
	(void)arg;
	(void)chunk; /* JSON-RPC answers once: the request is never streamed */
}

static void chat_done(void *arg, json_t *resp, const cg_err *e)
{
	rpc_call_finish(arg, resp ? json_incref(resp) : NULL, e);
}

static int m_chat(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	struct mod *m = arg;
	if (need_admin(call, e) < 0)
		return -CG_E_FORBIDDEN;
	if (!json_is_object(params))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "params: must be an OpenAI chat completion request");
	json_t *req = json_copy(params);
	json_object_set_new(req, "stream", json_false());
	static const struct model_chat_cb cb = {chat_chunk, chat_done};
	struct model_chat *c = model_chat_start(m->reg, req, &cb, call, e);
	json_decref(req);
	return c ? RPC_ASYNC : -(int)e->code;
}

/* ---- POST /local/v1/chat/completions ---- */

#define LOCAL_CHAT_BODY (2u << 20)

struct hchat {
	struct http_req *r;
	struct model_chat *c;
	bool started;
};

static void h_chunk(void *arg, json_t *chunk)
{
	struct hchat *h = arg;
	if (!h->started) {
		http_sse_start(h->r);
		h->started = true;
	}
	char *d = json_dumps(chunk, JSON_COMPACT);
	if (d)
		http_sse_event(h->r, NULL, d);
	free(d);
}

static void h_done(void *arg, json_t *resp, const cg_err *e)
{
	struct hchat *h = arg;
	if (h->started) {
		if (e) {
			/* The headers are gone: the error travels as a last event, as OpenAI streams do. */
			json_t *err = json_pack("{s:{s:s,s:s}}", "error", "code", cg_code_name(e->code), "message", e->msg);
			char *d = json_dumps(err, JSON_COMPACT);
			if (d)
				http_sse_event(h->r, NULL, d);
			free(d);
			json_decref(err);
		}
		http_sse_event(h->r, NULL, "[DONE]");
		http_stream_end(h->r);
	} else if (e) {
		http_reply_error(h->r, e);
	} else {
		http_reply_json(h->r, 200, json_incref(resp));
	}
	free(h);
}

static void h_gone(struct http_req *r, void *arg)
{
	struct hchat *h = arg;
	model_chat_cancel(h->c); /* stops generation; no callback runs afterwards */
	if (h->started)
		http_stream_end(r);
	else
		http_reply(r, 499, "text/plain", NULL, 0); /* writes nothing (the client is gone) but finishes r */
	free(h);
}

static void h_local_chat(struct http_req *r, void *arg)
{
	struct mod *m = arg;
	cg_err e;
	size_t len;
	const uint8_t *body = http_req_body(r, &len);
	/* SDKs send application/json; `curl -d` sends application/x-www-form-urlencoded and some clients send
	 * no type at all. The body is parsed as JSON either way (a form body fails that with a 400), so those
	 * two are accepted; any other declared type is 415. */
	if (http_req_header(r, "Content-Type") && !http_req_content_type_is(r, "application/x-www-form-urlencoded") &&
	    http_req_require_type(r, "application/json", &e) < 0) {
		http_reply_error(r, &e);
		return;
	}
	json_error_t je;
	json_t *req = json_loadb((const char *)body, len, 0, &je);
	if (!json_is_object(req)) {
		json_decref(req);
		cg_fail(&e, CG_E_INVALID_ARGUMENT, "the body must be a JSON object (%s)", je.text);
		http_reply_error(r, &e);
		return;
	}
	struct hchat *h = calloc(1, sizeof *h);
	if (!h) {
		json_decref(req);
		cg_fail(&e, CG_E_INTERNAL, "out of memory");
		http_reply_error(r, &e);
		return;
	}
	h->r = r;
	static const struct model_chat_cb cb = {h_chunk, h_done};
	h->c = model_chat_start(m->reg, req, &cb, h, &e);
	json_decref(req);
	if (!h->c) {
		free(h);
		http_reply_error(r, &e);
		return;
	}
	http_req_on_close(r, h_gone, h);
}

/* ---- GET /local/v1/models: the OpenAI model list, for SDKs that look before they ask ---- */

static void h_local_models(struct http_req *r, void *arg)
{
	struct mod *m = arg;
	json_t *models = model_list(m->reg), *data = json_array(), *it;
	size_t i;
	json_array_foreach(models, i, it) {
		if (json_object_get(it, "error"))
			continue; /* not a usable model file */
		json_array_append_new(data, json_pack("{s:O,s:s,s:i,s:s}", "id", json_object_get(it, "name"), "object",
						      "model", "created", 0, "owned_by", "clawgrid"));
	}
	json_decref(models);
	http_reply_json(r, 200, json_pack("{s:s,s:o}", "object", "list", "data", data));
}

static int start(struct node *n, int idx, cg_err *e)
{
	struct mod *m = calloc(1, sizeof *m);
	if (!m)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	m->n = n;
	/* Read straight from the validated config; an absent section means every default. */
	json_t *section = json_object_get(n->config, "models"), *empty = NULL;
	if (!json_is_object(section))
		section = empty = json_object();
	model_folder_path(section, n->data_dir, m->folder, sizeof m->folder);
	int rc = model_registry_new(n->base, section, n->data_dir, &m->reg, e);
	json_decref(empty);
	if (rc != 0) {
		free(m);
		return rc;
	}
	n->mod[idx] = m;
	static const struct {
		const char *name;
		rpc_fn fn;
	} methods[] = {{"model.list", m_list},     {"model.status", m_status}, {"model.info", m_info},
		       {"model.add", m_add},       {"model.rm", m_rm},         {"model.load", m_load},
		       {"model.unload", m_unload}, {"model.chat", m_chat}};
	for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
		rpc_register(n->rpc, methods[i].name, methods[i].fn, m);
	if (n->http && http_route(n->http, HTTP_POST, "/local/v1/chat/completions", HTTP_ADMIN, LOCAL_CHAT_BODY,
				  h_local_chat, m) < 0)
		log_warn("model", "the local chat route is already taken", NULL);
	if (n->http && http_route(n->http, HTTP_GET, "/local/v1/models", HTTP_ADMIN, 0, h_local_models, m) < 0)
		log_warn("model", "the local models route is already taken", NULL);
	return 0;
}

static void stop(struct node *n, int idx)
{
	struct mod *m = n->mod[idx];
	if (!m)
		return;
	model_registry_free(m->reg);
	free(m);
	n->mod[idx] = NULL;
}

struct model_registry *mod_model_get(struct node *n)
{
	struct mod *md = node_module_state(n, "model");
	return md ? md->reg : NULL;
}

const struct node_module mod_model = {"model", "models", check, start, stop};
