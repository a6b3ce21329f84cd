/* Model chat: POST /web3/resources/model/chat and /v1/chat/completions.
 *
 * The request is checked against the resource policy (maxTokens, allowTools), its model name replaced by the
 * backend's, and sent to the backend: an OpenAI-compatible server through libcurl multi on the loop, or the
 * embedded llama engine (model/model.h). Streams are relayed event by event as they arrive (never the whole
 * answer in memory). The upstream is always asked for usage (stream_options.include_usage); the usage-only
 * chunk is dropped when the client did not ask for it. After the stream: the ledger entry (kind model, unit
 * token: usage.total_tokens, else 1), then "data: [DONE]", then a "receipt" event. A ledger failure only
 * drops the receipt (Gate-LEDGER-02). An upstream failure after the first event ends the stream with an
 * in-band error event and no [DONE]; a client that goes away cancels the upstream request. */
#define PV_INTERNAL
#include "provider/pv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/amount.h"
#include "base/log.h"
#include "http/server.h"
#include "model/model.h"
#include "http/client.h"
#include "provider/receipt.h"

#define EVENT_MAX (1u << 20)
#define ERROR_BODY_MAX (64u << 10)

static void call_end(struct pv_call *c);

static int policy_check(json_t *pol, json_t *req, cg_err *e)
{
	json_int_t max = json_integer_value(json_object_get(pol, "maxTokens"));
	static const char *const mt[] = {"max_tokens", "max_completion_tokens", NULL};
	bool have = false;
	for (int i = 0; mt[i]; i++) {
		json_t *v = json_object_get(req, mt[i]);
		if (!v || json_is_null(v))
			continue;
		if (!json_is_integer(v) || json_integer_value(v) < 1)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: must be a positive integer", mt[i]);
		if (max > 0 && json_integer_value(v) > max)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: at most %lld on this resource (policy maxTokens)",
				       mt[i], (long long)max);
		have = true;
	}
	/* Without a limit from the client, the policy's is the one the engine gets. */
	if (max > 0 && !have)
		json_object_set_new(req, "max_tokens", json_integer(max));
	json_t *allow = json_object_get(pol, "allowTools");
	if (json_is_false(allow)) {
		json_t *tools = json_object_get(req, "tools"), *fns = json_object_get(req, "functions");
		json_t *choice = json_object_get(req, "tool_choice");
		if ((json_is_array(tools) && json_array_size(tools) > 0) || (json_is_array(fns) && json_array_size(fns) > 0) ||
		    (choice && !json_is_null(choice) &&
		     !(json_is_string(choice) && strcmp(json_string_value(choice), "none") == 0)))
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "tools: not allowed on this resource (policy allowTools)");
	}
	return 0;
}

/* ---- writing to the client ---- */

static int send_frame(struct pv_call *c, const char *event, const char *data, size_t len)
{
	if (c->gone)
		return -1;
	buf f;
	buf_init(&f, len + 256 + (event ? strlen(event) : 0));
	int r = sse_frame(&f, event, data, len);
	if (r == 0)
		r = http_stream_write(c->r, f.data, f.len);
	buf_done(&f);
	return r;
}

static void start_stream(struct pv_call *c)
{
	if (c->sse_started)
		return;
	c->sse_started = true;
	http_reply_header(c->r, "X-OpenClaw-Request-Id", c->request_id);
	http_sse_start(c->r); /* which adds X-Accel-Buffering: no itself */
}

/* One upstream event (or a serialized chunk of the embedded engine). Returns < 0 to stop the upstream. */
static int relay_event(struct pv_call *c, const char *event, const char *data, size_t len)
{
	if (c->saw_done)
		return 0;
	if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
		c->saw_done = true; /* held: the ledger and the receipt go first */
		return 0;
	}
	start_stream(c);
	/* Fast path: a chunk without usage goes out untouched. */
	if (*event || !memmem(data, len, "\"usage\"", 7)) {
		c->chunks++;
		return send_frame(c, *event ? event : NULL, data, len);
	}
	json_error_t je;
	json_t *j = json_loadb(data, len, 0, &je);
	if (!json_is_object(j)) {
		json_decref(j);
		c->chunks++;
		return send_frame(c, NULL, data, len);
	}
	json_t *u = json_object_get(j, "usage");
	if (json_is_object(u)) {
		json_int_t t = json_integer_value(json_object_get(u, "total_tokens"));
		if (t <= 0)
			t = json_integer_value(json_object_get(u, "prompt_tokens")) +
			    json_integer_value(json_object_get(u, "completion_tokens"));
		if (t > 0)
			c->total_tokens = t;
	}
	int r = 0;
	if (c->client_usage) {
		r = send_frame(c, NULL, data, len);
	} else {
		json_t *ch = json_object_get(j, "choices");
		if (!(json_is_array(ch) && json_array_size(ch) == 0)) {
			/* Usage riding on a content chunk: keep the content, drop what the client did not ask for. */
			json_object_del(j, "usage");
			char *s = json_dumps(j, JSON_COMPACT);
			r = s ? send_frame(c, NULL, s, strlen(s)) : -1;
			free(s);
		}
	}
	c->chunks++;
	json_decref(j);
	return r;
}

static int on_sse_event(void *arg, const char *event, const char *data, size_t len)
{
	return relay_event(arg, event, data, len);
}

/* The stream ended well: meter, [DONE], receipt. */
static void stream_complete(struct pv_call *c)
{
	char qty[32];
	const bool per_call = strcmp(pv_price_unit(c), "call") == 0;
	snprintf(qty, sizeof qty, "%lld", per_call || c->total_tokens <= 0 ? 1LL : (long long)c->total_tokens);
	json_t *receipt = pv_meter(c, per_call ? "call" : "token", qty, true);
	start_stream(c);
	(void)send_frame(c, NULL, "[DONE]", 6);
	if (receipt) {
		char *s = json_dumps(receipt, JSON_COMPACT | JSON_SORT_KEYS);
		if (s)
			(void)send_frame(c, "receipt", s, strlen(s));
		free(s);
		json_decref(receipt);
	}
	call_end(c);
}

static void stream_error(struct pv_call *c, const cg_err *e)
{
	if (!c->sse_started) {
		pv_reply_error(c, e);
		return;
	}
	json_t *err = json_pack("{s:{s:s,s:s,s:s}}", "error", "message", e->msg, "type", "upstream_error", "code",
				cg_code_name(e->code));
	char *s = json_dumps(err, JSON_COMPACT);
	json_decref(err);
	if (s)
		(void)send_frame(c, "error", s, strlen(s));
	free(s);
	log_warn("provider", "stream failed", "request_id=%s code=%s chunks=%lld", c->request_id, cg_code_name(e->code),
		 (long long)c->chunks);
	call_end(c);
}

static void call_end(struct pv_call *c)
{
	c->finished = true;
	c->p->n_served++;
	http_stream_end(c->r);
	pv_call_free(c);
}

/* ---- OpenAI-compatible upstream ---- */

static void map_status(long status, cg_err *e)
{
	if (status == 400 || status == 404 || status == 413 || status == 422)
		cg_fail(e, CG_E_INVALID_ARGUMENT, "the model engine rejected the request (HTTP %ld)", status);
	else if (status == 429 || status == 503) {
		cg_fail(e, CG_E_UNAVAILABLE, "the model engine is busy (HTTP %ld)", status);
		e->retry_after_s = 1;
	} else if (status == 504)
		cg_fail(e, CG_E_TIMEOUT, "the model engine timed out");
	else
		cg_fail(e, CG_E_UNAVAILABLE, "the model engine failed (HTTP %ld)", status);
}

static int up_headers(void *arg, long status, struct hc_req *r)
{
	struct pv_call *c = arg;
	c->up_status = status;
	if (status == 200 && c->stream)
		start_stream(c);
	return 0;
}

static int up_data(void *arg, const char *p, size_t n)
{
	struct pv_call *c = arg;
	if (c->up_status != 200)
		return 0; /* an error body: ignored (its text may name upstream internals) */
	cg_err e;
	c->in_cb++;
	int r = sse_feed(&c->sse, p, n, &e);
	c->in_cb--;
	if (c->cut_pending) {
		/* The client went away (or the lease was revoked) while we were writing. */
		call_end(c);
		return -1;
	}
	if (r < 0 && !c->gone) {
		c->failed = true;
		if (e.code != CG_E_INVALID_ARGUMENT)
			cg_fail(&e, CG_E_UNAVAILABLE, "client cannot keep up with the stream");
		c->fail_err = e;
	}
	return r < 0 ? -1 : 0;
}

static void up_done(void *arg, long status, const char *body, size_t n, const cg_err *e)
{
	struct pv_call *c = arg;
	c->up = NULL;
	cg_err err;
	if (c->failed) {
		stream_error(c, &c->fail_err);
		return;
	}
	if (e) {
		stream_error(c, e);
		return;
	}
	if (status != 200) {
		map_status(status, &err);
		stream_error(c, &err);
		return;
	}
	if (c->stream) {
		sse_finish(&c->sse);
		if (!c->saw_done) {
			cg_fail(&err, CG_E_UNAVAILABLE, "the model engine ended the stream early");
			stream_error(c, &err);
			return;
		}
		stream_complete(c);
		return;
	}
	json_error_t je;
	json_t *j = json_loadb(body, n, 0, &je);
	if (!json_is_object(j)) {
		json_decref(j);
		cg_fail(&err, CG_E_UNAVAILABLE, "the model engine sent an unreadable answer");
		pv_reply_error(c, &err);
		return;
	}
	json_t *u = json_object_get(j, "usage");
	json_int_t t = json_integer_value(json_object_get(u, "total_tokens"));
	const bool per_call = strcmp(pv_price_unit(c), "call") == 0;
	char qty[32];
	snprintf(qty, sizeof qty, "%lld", per_call || t <= 0 ? 1LL : (long long)t);
	json_t *receipt = pv_meter(c, per_call ? "call" : "token", qty, true);
	pv_reply_json(c, j, receipt);
}

static void start_openai(struct pv_call *c, json_t *req)
{
	struct provider *p = c->p;
	struct pv_resource *res = c->res;
	cg_err e;
	if (res->model)
		json_object_set_new(req, "model", json_string(res->model));
	if (c->stream) {
		json_t *so = json_object_get(req, "stream_options");
		if (!json_is_object(so)) {
			so = json_object();
			json_object_set_new(req, "stream_options", so);
		}
		json_object_set_new(so, "include_usage", json_true());
	}
	char *body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!body) {
		cg_fail(&e, CG_E_INTERNAL, "out of memory");
		pv_reply_error(c, &e);
		return;
	}
	char auth[4200] = "";
	const char *headers[5];
	int nh = 0;
	headers[nh++] = "Content-Type: application/json";
	headers[nh++] = c->stream ? "Accept: text/event-stream" : "Accept: application/json";
	if (res->api_key) {
		snprintf(auth, sizeof auth, "Authorization: Bearer %s", res->api_key);
		headers[nh++] = auth;
	}
	headers[nh] = NULL;
	struct hc_opts o = {
		.method = "POST",
		.url = res->url,
		.headers = headers,
		.body = body,
		.body_len = strlen(body),
		.connect_timeout_ms = p->connect_ms,
		.first_byte_timeout_ms = p->first_byte_ms,
		.idle_timeout_ms = c->stream ? p->idle_ms : 0,
		.total_timeout_ms = p->total_ms,
		.max_response = 16u << 20,
		.stream = c->stream,
	};
	static const struct hc_cb cb = {up_headers, up_data, up_done};
	if (c->stream)
		sse_init(&c->sse, EVENT_MAX, on_sse_event, c);
	c->up = hc_start(p->hc, &o, &cb, c, &e);
	memset(auth, 0, sizeof auth);
	free(body);
	if (!c->up)
		pv_reply_error(c, &e);
}

/* ---- embedded llama engine ---- */

static void mc_chunk(void *arg, json_t *chunk)
{
	struct pv_call *c = arg;
	char *s = json_dumps(chunk, JSON_COMPACT);
	if (!s)
		return;
	c->in_cb++;
	int r = relay_event(c, "", s, strlen(s));
	c->in_cb--;
	free(s);
	if (c->cut_pending) {
		call_end(c);
		return;
	}
	if (r < 0 && !c->gone && !c->failed) {
		/* The client cannot take more: stop the engine and end with an error event. */
		c->failed = true;
		cg_fail(&c->fail_err, CG_E_UNAVAILABLE, "client cannot keep up with the stream");
		if (c->mc)
			model_chat_cancel(c->mc);
		c->mc = NULL;
		stream_error(c, &c->fail_err);
	}
}

static void mc_done(void *arg, json_t *resp, const cg_err *e)
{
	struct pv_call *c = arg;
	c->mc = NULL;
	if (e) {
		stream_error(c, e);
		return;
	}
	json_t *u = json_object_get(resp, "usage");
	json_int_t t = json_integer_value(json_object_get(u, "total_tokens"));
	if (t > 0)
		c->total_tokens = t;
	if (c->stream) {
		stream_complete(c);
		return;
	}
	const bool per_call = strcmp(pv_price_unit(c), "call") == 0;
	char qty[32];
	snprintf(qty, sizeof qty, "%lld", per_call || t <= 0 ? 1LL : (long long)t);
	json_t *receipt = pv_meter(c, per_call ? "call" : "token", qty, true);
	pv_reply_json(c, json_incref(resp), receipt);
}

static void start_llama(struct pv_call *c, json_t *req)
{
	static const char *const pass[] = {"messages", "stream", "max_tokens", "temperature", "top_p", "seed", "stop",
					   NULL};
	json_t *q = json_object();
	for (int i = 0; pass[i]; i++)
		if (json_object_get(req, pass[i]))
			json_object_set(q, pass[i], json_object_get(req, pass[i]));
	if (!json_object_get(q, "max_tokens") && json_object_get(req, "max_completion_tokens"))
		json_object_set(q, "max_tokens", json_object_get(req, "max_completion_tokens"));
	json_object_set_new(q, "model", json_string(c->res->model));
	if (c->stream)
		json_object_set_new(q, "stream_options", json_pack("{s:b}", "include_usage", 1));
	json_decref(req);
	static const struct model_chat_cb cb = {mc_chunk, mc_done};
	cg_err e;
	c->mc = model_chat_start(c->p->d.models, q, &cb, c, &e);
	json_decref(q);
	if (!c->mc)
		pv_reply_error(c, &e);
}

/* ---- entry points ---- */

int provider_chat_prepare(const char *body, size_t len, json_t *policy, json_t **out, bool *stream,
			  bool *client_usage, cg_err *e)
{
	json_error_t je;
	json_t *req = len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &je) : NULL;
	if (!json_is_object(req)) {
		json_decref(req);
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "body: must be a JSON object (an OpenAI chat request)");
	}
	json_t *msgs = json_object_get(req, "messages");
	json_t *st = json_object_get(req, "stream");
	json_t *so = json_object_get(req, "stream_options");
	int r = 0;
	if (!json_is_array(msgs) || json_array_size(msgs) == 0 || json_array_size(msgs) > 10000)
		r = cg_fail(e, CG_E_INVALID_ARGUMENT, "messages: must be a non-empty array");
	else if (st && !json_is_boolean(st) && !json_is_null(st))
		r = cg_fail(e, CG_E_INVALID_ARGUMENT, "stream: must be a boolean");
	else if (so && !json_is_object(so) && !json_is_null(so))
		r = cg_fail(e, CG_E_INVALID_ARGUMENT, "stream_options: must be an object");
	else
		r = policy_check(policy, req, e);
	if (r < 0) {
		json_decref(req);
		return r;
	}
	*stream = json_is_true(st);
	*client_usage = json_is_true(json_object_get(so, "include_usage"));
	*out = req;
	return 0;
}

void pv_chat(struct pv_call *c)
{
	cg_err e;
	size_t len;
	const uint8_t *body = http_req_body(c->r, &len);
	json_t *req = NULL;
	if (http_req_require_type(c->r, "application/json", &e) < 0 ||
	    provider_chat_prepare((const char *)body, len, pv_policy(c), &req, &c->stream, &c->client_usage, &e) < 0) {
		pv_reply_error(c, &e);
		return;
	}
	if (c->res->backend == PVB_LLAMA)
		start_llama(c, req);
	else
		start_openai(c, req);
}

void pv_chat_cut(struct pv_call *c, const char *why)
{
	if (c->up) {
		hc_cancel(c->up);
		c->up = NULL;
	}
	if (c->mc) {
		model_chat_cancel(c->mc);
		c->mc = NULL;
	}
	if (c->in_cb) {
		/* Inside a relay callback of this call: it finishes the call when it returns. */
		if (why && c->sse_started && !c->gone) {
			cg_err e;
			cg_fail(&e, CG_E_REVOKED, "%s", why);
			json_t *err = json_pack("{s:{s:s,s:s}}", "error", "message", e.msg, "code", cg_code_name(e.code));
			char *s = json_dumps(err, JSON_COMPACT);
			json_decref(err);
			if (s)
				(void)send_frame(c, "error", s, strlen(s));
			free(s);
		}
		c->cut_pending = true;
		return;
	}
	cg_err e;
	if (why)
		cg_fail(&e, strstr(why, "revoked") ? CG_E_REVOKED : CG_E_UNAVAILABLE, "%s", why);
	else
		cg_fail(&e, CG_E_UNAVAILABLE, "client went away");
	stream_error(c, &e);
}
