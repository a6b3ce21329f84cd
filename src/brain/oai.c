/* OpenAI chat-completions wire helpers for the gateway (see oai.h). Pure: bytes in, values out. */
#include "brain/oai.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------- request validation */

static int bad(cg_err *e, const char *fmt, const char *field)
{
	return cg_fail(e, CG_E_INVALID_ARGUMENT, fmt, field);
}

static bool is_null_or_absent(json_t *v)
{
	return !v || json_is_null(v);
}

/* Text bytes of a message content: a string, or an array of parts whose "text" counts. */
static int content_bytes(json_t *c, const char *pfx, size_t *bytes, cg_err *e)
{
	char f[96];
	if (json_is_string(c)) {
		*bytes += json_string_length(c);
		return 0;
	}
	if (!json_is_array(c))
		return bad(e, "%s.content: must be a string, an array of parts or null", pfx);
	if (json_array_size(c) > 1024)
		return bad(e, "%s.content: at most 1024 parts", pfx);
	size_t i;
	json_t *part;
	json_array_foreach(c, i, part) {
		snprintf(f, sizeof f, "%s.content[%zu]", pfx, i);
		if (!json_is_object(part) || !json_is_string(json_object_get(part, "type")))
			return bad(e, "%s: must be an object with a string \"type\"", f);
		json_t *t = json_object_get(part, "text");
		if (t && !json_is_string(t))
			return bad(e, "%s.text: must be a string", f);
		if (t)
			*bytes += json_string_length(t);
		else
			*bytes += 256; /* images, audio, files: a flat allowance for the estimate */
	}
	return 0;
}

static int check_tool_calls(json_t *tc, const char *pfx, size_t *bytes, cg_err *e)
{
	char f[96];
	if (!json_is_array(tc) || json_array_size(tc) > OAI_MAX_TOOLS)
		return bad(e, "%s.tool_calls: must be an array of at most 128 calls", pfx);
	size_t i;
	json_t *c;
	json_array_foreach(tc, i, c) {
		snprintf(f, sizeof f, "%s.tool_calls[%zu]", pfx, i);
		json_t *fn = json_object_get(c, "function");
		if (!json_is_object(c) || !json_is_string(json_object_get(c, "id")) || !json_is_object(fn) ||
		    !json_is_string(json_object_get(fn, "name")))
			return bad(e, "%s: must be {id, type:\"function\", function:{name, arguments}}", f);
		json_t *args = json_object_get(fn, "arguments");
		if (args && !json_is_string(args))
			return bad(e, "%s.function.arguments: must be a string (JSON text)", f);
		*bytes += json_string_length(json_object_get(fn, "name")) + (args ? json_string_length(args) : 0);
	}
	return 0;
}

static int check_messages(json_t *msgs, struct oai_req *q, cg_err *e)
{
	static const char *const roles[] = {"system", "developer", "user", "assistant", "tool", "function", NULL};
	if (!json_is_array(msgs) || json_array_size(msgs) == 0)
		return bad(e, "%s: must be a non-empty array", "messages");
	if (json_array_size(msgs) > OAI_MAX_MESSAGES)
		return bad(e, "%s: at most 4096 messages", "messages");
	size_t i;
	json_t *m;
	char pfx[40];
	json_array_foreach(msgs, i, m) {
		snprintf(pfx, sizeof pfx, "messages[%zu]", i);
		if (!json_is_object(m))
			return bad(e, "%s: must be an object", pfx);
		const char *role = json_string_value(json_object_get(m, "role"));
		int k = 0;
		while (role && roles[k] && strcmp(roles[k], role) != 0)
			k++;
		if (!role || !roles[k])
			return bad(e, "%s.role: must be system, developer, user, assistant, tool or function", pfx);
		json_t *content = json_object_get(m, "content");
		bool assistant = !strcmp(role, "assistant");
		json_t *tc = json_object_get(m, "tool_calls");
		if (is_null_or_absent(content)) {
			/* Only an assistant turn that called tools (or a legacy function call) may omit content. */
			if (!assistant)
				return bad(e, "%s.content: required for this role", pfx);
		} else if (content_bytes(content, pfx, &q->prompt_bytes, e) < 0) {
			return -CG_E_INVALID_ARGUMENT;
		}
		if (!is_null_or_absent(tc)) {
			if (!assistant)
				return bad(e, "%s.tool_calls: only assistant messages carry tool calls", pfx);
			if (check_tool_calls(tc, pfx, &q->prompt_bytes, e) < 0)
				return -CG_E_INVALID_ARGUMENT;
		}
		if (!strcmp(role, "tool") && !json_is_string(json_object_get(m, "tool_call_id")))
			return bad(e, "%s.tool_call_id: required (string) for tool messages", pfx);
		json_t *name = json_object_get(m, "name");
		if (name && !json_is_null(name) && !json_is_string(name))
			return bad(e, "%s.name: must be a string", pfx);
		q->prompt_bytes += 16; /* role markers of the chat template */
	}
	q->nmessages = json_array_size(msgs);
	return 0;
}

static bool tool_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
			return false;
	return true;
}

static int check_tools(json_t *tools, struct oai_req *q, cg_err *e)
{
	if (!json_is_array(tools) || json_array_size(tools) > OAI_MAX_TOOLS)
		return bad(e, "%s: must be an array of at most 128 tools", "tools");
	size_t i;
	json_t *t;
	char f[40];
	json_array_foreach(tools, i, t) {
		snprintf(f, sizeof f, "tools[%zu]", i);
		json_t *fn = json_object_get(t, "function");
		const char *type = json_string_value(json_object_get(t, "type"));
		if (!json_is_object(t) || !type || strcmp(type, "function") != 0 || !json_is_object(fn))
			return bad(e, "%s: must be {type:\"function\", function:{name, description?, parameters?}}", f);
		const char *name = json_string_value(json_object_get(fn, "name"));
		if (!name || !tool_name_ok(name))
			return bad(e, "%s.function.name: must be 1..64 characters of [A-Za-z0-9_.-]", f);
		json_t *params = json_object_get(fn, "parameters");
		if (params && !json_is_object(params))
			return bad(e, "%s.function.parameters: must be a JSON Schema object", f);
		json_t *desc = json_object_get(fn, "description");
		if (desc && !json_is_string(desc))
			return bad(e, "%s.function.description: must be a string", f);
		/* The schema travels in the prompt: count it for the estimate. */
		char *s = json_dumps(fn, JSON_COMPACT);
		q->prompt_bytes += s ? strlen(s) : 0;
		free(s);
	}
	q->has_tools = json_array_size(tools) > 0;
	return 0;
}

static int check_tool_choice(json_t *tc, cg_err *e)
{
	if (json_is_string(tc)) {
		const char *s = json_string_value(tc);
		if (strcmp(s, "none") && strcmp(s, "auto") && strcmp(s, "required"))
			return bad(e, "%s: must be none, auto, required or {type:\"function\", function:{name}}",
				   "tool_choice");
		return 0;
	}
	json_t *fn = json_object_get(tc, "function");
	if (!json_is_object(tc) || !json_is_object(fn) || !json_is_string(json_object_get(fn, "name")))
		return bad(e, "%s: must be none, auto, required or {type:\"function\", function:{name}}", "tool_choice");
	return 0;
}

static int check_number(json_t *root, const char *key, double lo, double hi, cg_err *e)
{
	json_t *v = json_object_get(root, key);
	if (is_null_or_absent(v))
		return 0;
	if (!json_is_number(v))
		return bad(e, "%s: must be a number", key);
	double d = json_number_value(v);
	if (!isfinite(d) || d < lo || d > hi)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: must be between %g and %g", key, lo, hi);
	return 0;
}

static int check_max_tokens(json_t *root, const char *key, int64_t *out, cg_err *e)
{
	json_t *v = json_object_get(root, key);
	if (is_null_or_absent(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 10000000)
		return bad(e, "%s: must be an integer from 1 to 10000000", key);
	*out = json_integer_value(v);
	return 0;
}

int oai_req_parse(const char *body, size_t len, struct oai_req *q, cg_err *e)
{
	memset(q, 0, sizeof *q);
	if (len > OAI_BODY_MAX)
		return cg_fail_http(e, CG_E_QUOTA_EXCEEDED, 413, "request body over %u bytes", OAI_BODY_MAX);
	if (!body || len == 0)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "empty request body: expected a JSON object");
	json_error_t je;
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "request body is not valid JSON (line %d, column %d)", je.line,
			       je.column);
	int r = -CG_E_INVALID_ARGUMENT;
	if (!json_is_object(root)) {
		cg_fail(e, CG_E_INVALID_ARGUMENT, "request body must be a JSON object");
		goto fail;
	}
	json_t *model = json_object_get(root, "model");
	if (!is_null_or_absent(model) &&
	    (!json_is_string(model) || json_string_length(model) == 0 || json_string_length(model) > 256)) {
		bad(e, "%s: must be a string of 1..256 characters", "model");
		goto fail;
	}
	q->model = json_is_string(model) ? json_string_value(model) : "";
	if (check_messages(json_object_get(root, "messages"), q, e) < 0)
		goto fail;
	json_t *stream = json_object_get(root, "stream");
	if (!is_null_or_absent(stream) && !json_is_boolean(stream)) {
		bad(e, "%s: must be a boolean", "stream");
		goto fail;
	}
	q->stream = json_is_true(stream);
	json_t *so = json_object_get(root, "stream_options");
	if (!is_null_or_absent(so)) {
		json_t *iu = json_object_get(so, "include_usage");
		if (!json_is_object(so) || (iu && !json_is_boolean(iu))) {
			bad(e, "%s: must be an object {include_usage: boolean}", "stream_options");
			goto fail;
		}
		q->include_usage = json_is_true(iu);
	}
	if (check_max_tokens(root, "max_tokens", &q->max_tokens, e) < 0 ||
	    check_max_tokens(root, "max_completion_tokens", &q->max_tokens, e) < 0 ||
	    check_number(root, "temperature", 0, 2, e) < 0 || check_number(root, "top_p", 0, 1, e) < 0 ||
	    check_number(root, "presence_penalty", -2, 2, e) < 0 ||
	    check_number(root, "frequency_penalty", -2, 2, e) < 0)
		goto fail;
	json_t *n = json_object_get(root, "n");
	if (!is_null_or_absent(n) && !(json_is_integer(n) && json_integer_value(n) == 1)) {
		bad(e, "%s: only 1 choice per request is supported", "n");
		goto fail;
	}
	json_t *tools = json_object_get(root, "tools");
	if (!is_null_or_absent(tools) && check_tools(tools, q, e) < 0)
		goto fail;
	json_t *tc = json_object_get(root, "tool_choice");
	if (!is_null_or_absent(tc) && check_tool_choice(tc, e) < 0)
		goto fail;
	json_t *stop = json_object_get(root, "stop");
	if (!is_null_or_absent(stop)) {
		bool ok = json_is_string(stop);
		if (json_is_array(stop) && json_array_size(stop) <= 4) {
			ok = true;
			size_t i;
			json_t *s;
			json_array_foreach(stop, i, s) ok &= json_is_string(s);
		}
		if (!ok) {
			bad(e, "%s: must be a string or an array of at most 4 strings", "stop");
			goto fail;
		}
	}
	q->root = root;
	return 0;
fail:
	json_decref(root);
	memset(q, 0, sizeof *q);
	return r;
}

void oai_req_done(struct oai_req *q)
{
	json_decref(q->root);
	memset(q, 0, sizeof *q);
}

/* ---------------------------------------------------------------- upstream chunks */

static void chunk_error(struct oai_chunk *c, enum oai_chunk_kind kind, const char *msg)
{
	c->kind = kind;
	if (kind == OAI_CHUNK_BAD) {
		json_decref(c->json);
		c->json = NULL;
	}
	snprintf(c->error, sizeof c->error, "%s", msg);
}

static bool nonempty_str(json_t *v)
{
	return json_is_string(v) && json_string_length(v) > 0;
}

int oai_chunk_parse(const char *data, size_t len, struct oai_chunk *c)
{
	memset(c, 0, sizeof *c);
	while (len && (data[len - 1] == ' ' || data[len - 1] == '\n' || data[len - 1] == '\r'))
		len--;
	while (len && (*data == ' ' || *data == '\t')) {
		data++;
		len--;
	}
	if (len == 6 && !memcmp(data, "[DONE]", 6)) {
		c->kind = OAI_CHUNK_DONE;
		return 0;
	}
	json_error_t je;
	json_t *j = len ? json_loadb(data, len, JSON_REJECT_DUPLICATES, &je) : NULL;
	if (!json_is_object(j)) {
		json_decref(j);
		chunk_error(c, OAI_CHUNK_BAD, "malformed chunk from the upstream (not a JSON object)");
		return -1;
	}
	c->json = j;
	json_t *err = json_object_get(j, "error");
	if (err && !json_is_null(err)) {
		const char *m = json_string_value(json_object_get(err, "message"));
		if (!m)
			m = json_string_value(err);
		chunk_error(c, OAI_CHUNK_ERROR, m ? m : "the upstream reported an error mid-stream");
		return 0;
	}
	json_t *choices = json_object_get(j, "choices");
	json_t *usage = json_object_get(j, "usage");
	if (!is_null_or_absent(choices) && !json_is_array(choices)) {
		chunk_error(c, OAI_CHUNK_BAD, "malformed chunk from the upstream (choices is not an array)");
		return -1;
	}
	if (json_is_object(usage)) {
		json_t *pt = json_object_get(usage, "prompt_tokens"), *ct = json_object_get(usage, "completion_tokens");
		if (json_is_integer(pt) && json_is_integer(ct) && json_integer_value(pt) >= 0 &&
		    json_integer_value(ct) >= 0 && json_integer_value(pt) < ((int64_t)1 << 40) &&
		    json_integer_value(ct) < ((int64_t)1 << 40)) {
			c->usage = true;
			c->prompt_tokens = json_integer_value(pt);
			c->completion_tokens = json_integer_value(ct);
		}
	}
	size_t nch = json_is_array(choices) ? json_array_size(choices) : 0;
	if (!choices && !c->usage) {
		chunk_error(c, OAI_CHUNK_BAD, "malformed chunk from the upstream (neither choices nor usage)");
		return -1;
	}
	c->usage_only = nch == 0 && c->usage;
	size_t i;
	json_t *ch;
	json_array_foreach(choices, i, ch) {
		if (!json_is_object(ch)) {
			chunk_error(c, OAI_CHUNK_BAD, "malformed chunk from the upstream (choice is not an object)");
			return -1;
		}
		json_t *d = json_object_get(ch, "delta");
		if (!d)
			d = json_object_get(ch, "message"); /* some servers send whole messages */
		if (d && !json_is_object(d)) {
			chunk_error(c, OAI_CHUNK_BAD, "malformed chunk from the upstream (delta is not an object)");
			return -1;
		}
		json_t *tc = json_object_get(d, "tool_calls");
		if (nonempty_str(json_object_get(d, "content")) || nonempty_str(json_object_get(d, "refusal")) ||
		    nonempty_str(json_object_get(d, "reasoning_content")) || nonempty_str(json_object_get(d, "reasoning")) ||
		    (json_is_array(tc) && json_array_size(tc) > 0) || json_is_object(json_object_get(d, "function_call")))
			c->content = true;
		json_t *fr = json_object_get(ch, "finish_reason");
		if (nonempty_str(fr))
			c->finish = true;
	}
	return 0;
}

void oai_chunk_done(struct oai_chunk *c)
{
	json_decref(c->json);
	c->json = NULL;
}

/* ---------------------------------------------------------------- accumulator */

void oai_acc_init(struct oai_acc *a)
{
	memset(a, 0, sizeof *a);
}

void oai_acc_done(struct oai_acc *a)
{
	json_decref(a->head);
	for (int i = 0; i < OAI_MAX_CHOICES; i++)
		json_decref(a->choice[i]);
	memset(a, 0, sizeof *a);
}

/* Appends the string src to obj[key] (creating it). */
static int append_str(struct oai_acc *a, json_t *obj, const char *key, json_t *src)
{
	if (!json_is_string(src))
		return 0;
	size_t add = json_string_length(src);
	if (a->bytes + add > OAI_ACC_MAX)
		return -1;
	a->bytes += add;
	json_t *cur = json_object_get(obj, key);
	if (!json_is_string(cur))
		return json_object_set(obj, key, src);
	size_t n = json_string_length(cur);
	char *s = malloc(n + add + 1);
	if (!s)
		return -1;
	memcpy(s, json_string_value(cur), n);
	memcpy(s + n, json_string_value(src), add);
	s[n + add] = 0;
	int r = json_object_set_new(obj, key, json_stringn_nocheck(s, n + add));
	free(s);
	return r;
}

static int merge_tool_calls(struct oai_acc *a, json_t *msg, json_t *deltas)
{
	json_t *calls = json_object_get(msg, "tool_calls");
	if (!calls) {
		calls = json_array();
		if (json_object_set_new(msg, "tool_calls", calls) < 0)
			return -1;
	}
	size_t i;
	json_t *d;
	json_array_foreach(deltas, i, d) {
		if (!json_is_object(d))
			return -1;
		json_t *ix = json_object_get(d, "index");
		json_int_t idx = json_is_integer(ix) ? json_integer_value(ix) : (json_int_t)json_array_size(calls);
		if (idx < 0 || idx >= OAI_MAX_TOOLS || idx > (json_int_t)json_array_size(calls))
			return -1;
		json_t *call = json_array_get(calls, (size_t)idx);
		if (!call) {
			call = json_pack("{s:s,s:s,s:{s:s,s:s}}", "id", "", "type", "function", "function", "name", "",
					 "arguments", "");
			if (!call || json_array_append_new(calls, call) < 0)
				return -1;
		}
		json_t *fn = json_object_get(d, "function"), *cfn = json_object_get(call, "function");
		if (nonempty_str(json_object_get(d, "id")))
			json_object_set(call, "id", json_object_get(d, "id"));
		if (nonempty_str(json_object_get(d, "type")))
			json_object_set(call, "type", json_object_get(d, "type"));
		if (json_is_object(fn) && (append_str(a, cfn, "name", json_object_get(fn, "name")) < 0 ||
					   append_str(a, cfn, "arguments", json_object_get(fn, "arguments")) < 0))
			return -1;
	}
	return 0;
}

int oai_acc_add(struct oai_acc *a, json_t *chunk)
{
	if (!json_is_object(chunk))
		return -1;
	if (!a->head) {
		a->head = json_object();
		static const char *const keep[] = {"id", "created", "model", "system_fingerprint", NULL};
		for (int k = 0; keep[k]; k++)
			if (json_object_get(chunk, keep[k]))
				json_object_set(a->head, keep[k], json_object_get(chunk, keep[k]));
	}
	size_t i;
	json_t *ch;
	json_array_foreach(json_object_get(chunk, "choices"), i, ch) {
		json_t *ix = json_object_get(ch, "index");
		json_int_t idx = json_is_integer(ix) ? json_integer_value(ix) : 0;
		if (idx < 0 || idx >= OAI_MAX_CHOICES)
			return -1;
		if (!a->choice[idx])
			a->choice[idx] = json_pack("{s:I,s:{s:s,s:n},s:n}", "index", (json_int_t)idx, "message", "role",
						   "assistant", "content", "finish_reason");
		json_t *c = a->choice[idx], *msg = json_object_get(c, "message");
		if (!c)
			return -1;
		json_t *d = json_object_get(ch, "delta");
		if (!d)
			d = json_object_get(ch, "message");
		if (json_is_object(d)) {
			if (nonempty_str(json_object_get(d, "role")))
				json_object_set(msg, "role", json_object_get(d, "role"));
			if (append_str(a, msg, "content", json_object_get(d, "content")) < 0 ||
			    append_str(a, msg, "refusal", json_object_get(d, "refusal")) < 0 ||
			    append_str(a, msg, "reasoning_content", json_object_get(d, "reasoning_content")) < 0)
				return -1;
			json_t *tc = json_object_get(d, "tool_calls");
			if (json_is_array(tc) && json_array_size(tc) && merge_tool_calls(a, msg, tc) < 0)
				return -1;
		}
		json_t *fr = json_object_get(ch, "finish_reason");
		if (nonempty_str(fr))
			json_object_set(c, "finish_reason", fr);
	}
	return 0;
}

json_t *oai_acc_result(struct oai_acc *a, int64_t prompt_tokens, int64_t completion_tokens)
{
	json_t *out = a->head ? json_deep_copy(a->head) : json_object();
	if (!out)
		return NULL;
	json_object_set_new(out, "object", json_string("chat.completion"));
	json_t *choices = json_array();
	for (int i = 0; i < OAI_MAX_CHOICES; i++)
		if (a->choice[i]) {
			json_t *c = json_deep_copy(a->choice[i]);
			json_object_set_new(c, "logprobs", json_null());
			json_array_append_new(choices, c);
		}
	if (json_array_size(choices) == 0)
		json_array_append_new(choices, json_pack("{s:i,s:{s:s,s:s},s:s,s:n}", "index", 0, "message", "role",
							 "assistant", "content", "", "finish_reason", "stop", "logprobs"));
	json_object_set_new(out, "choices", choices);
	json_object_set_new(out, "usage",
			    json_pack("{s:I,s:I,s:I}", "prompt_tokens", (json_int_t)prompt_tokens, "completion_tokens",
				      (json_int_t)completion_tokens, "total_tokens",
				      (json_int_t)(prompt_tokens + completion_tokens)));
	return out;
}

/* ---------------------------------------------------------------- errors */

static bool mem_has(const char *hay, size_t n, const char *needle)
{
	size_t k = strlen(needle);
	for (size_t i = 0; i + k <= n; i++)
		if (!strncasecmp(hay + i, needle, k))
			return true;
	return false;
}

enum oai_fail oai_classify(long status, const char *body, size_t n, char *msg, size_t cap)
{
	if (cap)
		msg[0] = 0;
	json_error_t je;
	json_t *j = body && n ? json_loadb(body, n, 0, &je) : NULL;
	json_t *err = json_object_get(j, "error");
	const char *m = json_string_value(json_object_get(err, "message"));
	if (!m)
		m = json_string_value(err);
	if (!m)
		m = json_string_value(json_object_get(j, "message"));
	const char *code = json_string_value(json_object_get(err, "code"));
	if (cap)
		snprintf(msg, cap, "%s", m ? m : "");
	bool context = (code && (!strcmp(code, "context_length_exceeded") || !strcmp(code, "string_above_max_length"))) ||
		       (m && (mem_has(m, strlen(m), "context length") || mem_has(m, strlen(m), "context window") ||
			      mem_has(m, strlen(m), "maximum context") || mem_has(m, strlen(m), "too many tokens") ||
			      mem_has(m, strlen(m), "exceeds the available context")));
	if (!j && body && n && (mem_has(body, n, "context length") || mem_has(body, n, "context window")))
		context = true;
	json_decref(j);
	if ((status == 400 || status == 413 || status == 422) && context)
		return OAI_FAIL_CONTEXT;
	if (status == 400 || status == 422)
		return OAI_FAIL_CLIENT;
	return OAI_FAIL_RETRY;
}

json_t *oai_error_json(const char *message, const char *type, const char *code)
{
	return json_pack("{s:{s:s,s:s,s:n,s:o}}", "error", "message", message ? message : "error", "type",
			 type ? type : "server_error", "param", "code", code ? json_string(code) : json_null());
}

void oai_error_kind(const cg_err *e, const char **type, const char **code)
{
	*code = NULL;
	switch (e->code) {
	case CG_E_INVALID_ARGUMENT:
		*type = "invalid_request_error";
		if (e->http_status == 413)
			*code = "request_too_large";
		else if (e->http_status == 415)
			*code = "unsupported_media_type";
		break;
	case CG_E_AUTH_REQUIRED:
		*type = "invalid_request_error";
		*code = "invalid_api_key";
		break;
	case CG_E_FORBIDDEN:
		*type = "permission_error";
		*code = "model_not_allowed";
		break;
	case CG_E_NOT_FOUND:
		*type = "invalid_request_error";
		*code = "model_not_found";
		break;
	case CG_E_QUOTA_EXCEEDED:
		if (e->http_status == 413) {
			*type = "invalid_request_error";
			*code = "request_too_large";
		} else {
			*type = "insufficient_quota";
			*code = "insufficient_quota";
		}
		break;
	case CG_E_RATE_LIMITED:
		*type = "rate_limit_error";
		*code = "rate_limit_exceeded";
		break;
	case CG_E_TIMEOUT:
		*type = "timeout_error";
		*code = "upstream_timeout";
		break;
	case CG_E_UNAVAILABLE:
		*type = "server_error";
		*code = "upstream_unavailable";
		break;
	default:
		*type = "server_error";
		*code = "internal_error";
		break;
	}
}

int oai_sse_data(buf *out, const char *json, size_t len)
{
	if (buf_append(out, "data: ", 6) < 0 || buf_append(out, json, len) < 0 || buf_append(out, "\n\n", 2) < 0)
		return -1;
	return 0;
}

/* ---------------------------------------------------------------- allocation-free checks */

static size_t skip_ws(const char *p, size_t n, size_t i)
{
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
		i++;
	return i;
}

/* A JSON string starting at p[i] == '"'; returns the index after it, or 0 on error. */
static size_t scan_string(const char *p, size_t n, size_t i)
{
	for (i++; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '"')
			return i + 1;
		if (c < 0x20)
			return 0;
		if (c == '\\') {
			if (++i >= n)
				return 0;
			c = (unsigned char)p[i];
			if (c == 'u') {
				for (int k = 0; k < 4; k++)
					if (++i >= n || !isxdigit((unsigned char)p[i]))
						return 0;
			} else if (c == 0 || !strchr("\"\\/bfnrt", c)) { /* strchr also matches the terminator */
				return 0;
			}
		}
	}
	return 0;
}

static size_t scan_number(const char *p, size_t n, size_t i)
{
	size_t s = i;
	if (i < n && p[i] == '-')
		i++;
	if (i < n && p[i] == '0') {
		i++;
	} else {
		size_t d = i;
		while (i < n && isdigit((unsigned char)p[i]))
			i++;
		if (i == d)
			return 0;
	}
	if (i < n && p[i] == '.') {
		size_t d = ++i;
		while (i < n && isdigit((unsigned char)p[i]))
			i++;
		if (i == d)
			return 0;
	}
	if (i < n && (p[i] == 'e' || p[i] == 'E')) {
		i++;
		if (i < n && (p[i] == '+' || p[i] == '-'))
			i++;
		size_t d = i;
		while (i < n && isdigit((unsigned char)p[i]))
			i++;
		if (i == d)
			return 0;
	}
	return i > s ? i : 0;
}

bool oai_json_object_valid(const char *p, size_t n)
{
	char stack[64]; /* '{' or '[' */
	int depth = 0;
	size_t i = skip_ws(p, n, 0);
	if (i >= n || p[i] != '{')
		return false;
	/* States: expecting a value (after '[', ':' or ','), a key (after '{' or ',' in an object), or what follows
	 * a value (',' or a closer). */
	enum { VALUE, KEY_OR_END, KEY, AFTER, VALUE_OR_END } st = VALUE;
	for (;;) {
		i = skip_ws(p, n, i);
		if (st == AFTER && depth == 0)
			return i == n; /* the object closed: only whitespace may follow */
		if (i >= n)
			return false;
		char c = p[i];
		if (st == KEY_OR_END || st == KEY) {
			if (c == '}' && st == KEY_OR_END) {
				depth--;
				i++;
				st = AFTER;
			} else if (c == '"') {
				if (!(i = scan_string(p, n, i)))
					return false;
				i = skip_ws(p, n, i);
				if (i >= n || p[i] != ':')
					return false;
				i++;
				st = VALUE;
				continue;
			} else {
				return false;
			}
		} else if (st == VALUE || st == VALUE_OR_END) {
			if (c == ']' && st == VALUE_OR_END) {
				depth--;
				i++;
				st = AFTER;
			} else if (c == '{' || c == '[') {
				if (depth == (int)sizeof stack)
					return false;
				stack[depth++] = c;
				i++;
				st = c == '{' ? KEY_OR_END : VALUE_OR_END;
				continue;
			} else if (c == '"') {
				if (!(i = scan_string(p, n, i)))
					return false;
				st = AFTER;
			} else if (c == '-' || isdigit((unsigned char)c)) {
				if (!(i = scan_number(p, n, i)))
					return false;
				st = AFTER;
			} else if (n - i >= 4 && (!memcmp(p + i, "true", 4) || !memcmp(p + i, "null", 4))) {
				i += 4;
				st = AFTER;
			} else if (n - i >= 5 && !memcmp(p + i, "false", 5)) {
				i += 5;
				st = AFTER;
			} else {
				return false;
			}
		} else { /* AFTER, inside a container */
			char open = stack[depth - 1];
			if (c == ',') {
				i++;
				st = open == '{' ? KEY : VALUE;
				continue;
			}
			if ((c == '}' && open == '{') || (c == ']' && open == '[')) {
				depth--;
				i++;
				st = AFTER;
				continue;
			}
			return false;
		}
	}
}

static const char *find(const char *p, size_t n, const char *needle, size_t k)
{
	return k <= n ? memmem(p, n, needle, k) : NULL;
}

bool oai_chunk_needs_parse(const char *p, size_t n)
{
	if (find(p, n, "\"error\"", 7))
		return true;
	const char *end = p + n;
	for (const char *u = p; (u = find(u, (size_t)(end - u), "\"usage\"", 7)); u += 7) {
		size_t i = skip_ws(p, n, (size_t)(u - p) + 7);
		if (i < n && p[i] == ':') {
			i = skip_ws(p, n, i + 1);
			if (i < n && p[i] != 'n')
				return true; /* not "usage": null */
		}
	}
	return false;
}
