/* The embedded llama.cpp backend end to end through the registry's C API and the model.* RPC methods, on
 * generated GGUF models: greedy output equal to the golden file and identical across runs and across
 * streaming / non-streaming, exact usage, stop sequences, cancel mid-stream, queue overflow, unload under
 * load, corrupt / wrong-magic / truncated files, a model over the memory budget and LRU eviction — each a
 * clear error while the other models keep serving. Skips (77) when the llama library is not installed. */
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
#include <event2/event.h>

#include "base/buf.h"
#include "base/log.h"
#include "gguf_gen.h"
#include "model/llama.h"
#include "model/model.h"
#include "node/modules.h"
#include "rpc/rpc.h"

#define GOLDEN "tests/integration/model/golden/tiny_greedy.txt"

static struct event_base *base;
static struct model_registry *reg;
static char dir[64];

struct res {
	int done, chunks, content_chunks;
	bool failed, role_seen;
	cg_err err;
	buf text;
	json_t *resp, *last_chunk, *all_chunks;
	struct model_chat *handle;
	int cancel_after; /* >0: cancel after this many content chunks */
	bool cancelled;
};

static void on_chunk(void *arg, json_t *chunk)
{
	struct res *r = arg;
	r->chunks++;
	assert_string_equal(json_string_value(json_object_get(chunk, "object")), "chat.completion.chunk");
	json_t *d = json_object_get(json_array_get(json_object_get(chunk, "choices"), 0), "delta");
	if (json_object_get(d, "role"))
		r->role_seen = true;
	const char *t = json_string_value(json_object_get(d, "content"));
	if (t && *t) {
		assert_int_equal(buf_append(&r->text, t, strlen(t)), 0);
		r->content_chunks++;
	}
	json_decref(r->last_chunk);
	r->last_chunk = json_incref(chunk);
	json_array_append(r->all_chunks, chunk);
	if (r->cancel_after && r->content_chunks == r->cancel_after) {
		model_chat_cancel(r->handle);
		r->cancelled = true;
		r->done = 1;
	}
}

static void on_done(void *arg, json_t *resp, const cg_err *e)
{
	struct res *r = arg;
	assert_false(r->cancelled);
	r->done = 1;
	if (e) {
		r->failed = true;
		r->err = *e;
	} else {
		r->resp = json_incref(resp);
	}
}

static const struct model_chat_cb cbs = {on_chunk, on_done};

static void res_init(struct res *r)
{
	memset(r, 0, sizeof *r);
	buf_init(&r->text, 1 << 20);
	r->all_chunks = json_array();
}

static void res_done(struct res *r)
{
	buf_done(&r->text);
	json_decref(r->resp);
	json_decref(r->last_chunk);
	json_decref(r->all_chunks);
}

static void on_deadline(evutil_socket_t fd, short w, void *arg)
{
	(void)fd;
	(void)w;
	(void)arg;
	fprintf(stderr, "test deadline passed: the loop never finished\n");
	abort();
}

/* Runs the loop until every flag is set. */
static void wait_all(int *flags[], size_t n)
{
	struct event *dl = evtimer_new(base, on_deadline, NULL);
	struct timeval tv = {120, 0};
	evtimer_add(dl, &tv);
	for (;;) {
		bool all = true;
		for (size_t i = 0; i < n; i++)
			all = all && *flags[i];
		if (all)
			break;
		event_base_loop(base, EVLOOP_ONCE);
	}
	event_free(dl);
}

static void wait1(struct res *r)
{
	int *f[] = {&r->done};
	wait_all(f, 1);
}

static json_t *req(const char *model, const char *content, int max_tokens, bool stream)
{
	json_t *j = json_pack("{s:s,s:[{s:s,s:s}],s:i,s:f,s:b}", "model", model, "messages", "role", "user", "content",
			      content, "max_tokens", max_tokens, "temperature", 0.0, "stream", stream);
	return j;
}

/* Starts a request; returns false with e when refused at once. */
static bool start(struct res *r, json_t *rq, cg_err *e)
{
	res_init(r);
	r->handle = model_chat_start(reg, rq, &cbs, r, e);
	json_decref(rq);
	return r->handle != NULL;
}

static void run_ok(struct res *r, json_t *rq)
{
	cg_err e;
	if (!start(r, rq, &e))
		fail_msg("refused: %s", e.msg);
	wait1(r);
	if (r->failed)
		fail_msg("failed: %s", r->err.msg);
}

static const char *content_of(json_t *resp)
{
	return json_string_value(
		json_object_get(json_object_get(json_array_get(json_object_get(resp, "choices"), 0), "message"), "content"));
}

static json_int_t usage(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(json_object_get(o, "usage"), k));
}

static const char *state_of(const char *name)
{
	static char st[32];
	json_t *info;
	cg_err e;
	if (model_info(reg, name, &info, &e) != 0)
		return "none";
	snprintf(st, sizeof st, "%s", json_string_value(json_object_get(info, "state")));
	json_decref(info);
	return st;
}

static int info_int(const char *name, const char *k)
{
	json_t *info;
	cg_err e;
	assert_int_equal(model_info(reg, name, &info, &e), 0);
	int v = (int)json_integer_value(json_object_get(info, k));
	json_decref(info);
	return v;
}

static void gen(const char *file, const struct gguf_gen_opts *o)
{
	char p[128];
	snprintf(p, sizeof p, "%s/models/%s", dir, file);
	assert_int_equal(gguf_gen_write(p, o), 0);
}

static void write_raw(const char *file, const void *b, size_t n)
{
	char p[128];
	snprintf(p, sizeof p, "%s/models/%s", dir, file);
	FILE *f = fopen(p, "wbe");
	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, n, f), n);
	fclose(f);
}

static int setup(void **s)
{
	(void)s;
	cg_err e;
	if (llm_runtime_open(NULL, &e) != 0) {
		printf("skip: %s\n", e.msg);
		exit(77);
	}
	log_set_level(LOG_WARN);
	snprintf(dir, sizeof dir, "/tmp/cg-llama-XXXXXX");
	assert_non_null(mkdtemp(dir));
	char p[128];
	snprintf(p, sizeof p, "%s/models", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	struct gguf_gen_opts o = {0};
	gen("tiny.gguf", &o);
	o.seed = 7;
	gen("tiny2.gguf", &o);
	struct gguf_gen_opts big = {.pad_bytes = 24u << 20};
	gen("big.gguf", &big);
	uint8_t *img;
	size_t n;
	assert_int_equal(gguf_gen_build(&(struct gguf_gen_opts){0}, &img, &n), 0);
	write_raw("truncated.gguf", img, n - 4096);
	memcpy(img, "GGML", 4);
	write_raw("badmagic.gguf", img, n);
	free(img);
	base = event_base_new();
	json_t *cfg = json_pack("{s:i,s:i,s:i,s:i,s:i,s:[s]}", "slots", 2, "queue", 2, "contextPerSlot", 256,
				"threads", 1, "memoryBudgetMiB", 20, "preload", "tiny");
	int rc = model_registry_new(base, cfg, dir, &reg, &e);
	json_decref(cfg);
	if (rc != 0)
		fail_msg("registry: %s", e.msg);
	return 0;
}

static int teardown(void **s)
{
	(void)s;
	model_registry_free(reg);
	event_base_free(base);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static char *read_golden(void)
{
	FILE *f = fopen(GOLDEN, "rbe");
	if (!f)
		return NULL;
	char *b = calloc(1, 8192);
	size_t n = fread(b, 1, 8191, f);
	fclose(f);
	b[n] = 0;
	return b;
}

static void t_golden(void **s)
{
	(void)s;
	struct res a, b, c;
	run_ok(&a, req("tiny", "Hello, tiny model!", 48, false));
	const char *text = content_of(a.resp);
	assert_non_null(text);
	assert_true(strlen(text) > 0);
	/* Exact usage: 48 tokens sampled unless the model ended first. */
	const char *fin = json_string_value(json_object_get(json_array_get(json_object_get(a.resp, "choices"), 0),
							    "finish_reason"));
	if (strcmp(fin, "length") == 0)
		assert_int_equal(usage(a.resp, "completion_tokens"), 48);
	assert_true(usage(a.resp, "prompt_tokens") > 5);
	assert_int_equal(usage(a.resp, "total_tokens"), usage(a.resp, "prompt_tokens") + usage(a.resp, "completion_tokens"));
	/* Streamed: the same bytes, role first, usage and finish_reason in the last chunk. */
	run_ok(&b, req("tiny", "Hello, tiny model!", 48, true));
	assert_true(b.role_seen);
	assert_true(b.content_chunks > 1);
	assert_string_equal(buf_cstr(&b.text), text);
	assert_string_equal(content_of(b.resp), text);
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(b.last_chunk, "choices"), 0),
							      "finish_reason")),
			    fin);
	assert_int_equal(usage(b.last_chunk, "completion_tokens"), usage(a.resp, "completion_tokens"));
	assert_int_equal(usage(b.last_chunk, "prompt_tokens"), usage(a.resp, "prompt_tokens"));
	/* Again: byte-identical. */
	run_ok(&c, req("tiny", "Hello, tiny model!", 48, false));
	assert_string_equal(content_of(c.resp), text);
	/* And equal to the committed golden output. */
	if (getenv("CLAWGRID_UPDATE_GOLDEN")) {
		FILE *f = fopen(GOLDEN, "wbe");
		assert_non_null(f);
		fputs(text, f);
		fclose(f);
	}
	char *g = read_golden();
	assert_non_null(g);
	assert_string_equal(text, g);
	free(g);
	res_done(&a);
	res_done(&b);
	res_done(&c);
}

static void t_stop_and_sampling(void **s)
{
	(void)s;
	char *g = read_golden();
	assert_non_null(g);
	assert_true(strlen(g) > 20);
	/* A stop sequence taken from the middle of the golden text: the answer ends right before it. */
	char stop[4] = {g[12], g[13], g[14], 0};
	const char *at = strstr(g, stop);
	json_t *rq = req("tiny", "Hello, tiny model!", 48, true);
	json_object_set_new(rq, "stop", json_pack("[s,s]", "never-seen-xyz", stop));
	struct res r;
	run_ok(&r, rq);
	assert_int_equal(r.text.len, (size_t)(at - g));
	assert_memory_equal(buf_cstr(&r.text), g, r.text.len);
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(r.resp, "choices"), 0),
							      "finish_reason")),
			    "stop");
	res_done(&r);
	/* Temperature with a fixed seed is reproducible too. */
	struct res x, y;
	rq = req("tiny", "seeded", 24, false);
	json_object_set_new(rq, "temperature", json_real(0.9));
	json_object_set_new(rq, "top_p", json_real(0.95));
	json_object_set_new(rq, "seed", json_integer(1234));
	json_t *rq2 = json_deep_copy(rq);
	run_ok(&x, rq);
	run_ok(&y, rq2);
	assert_string_equal(content_of(x.resp), content_of(y.resp));
	res_done(&x);
	res_done(&y);
	free(g);
}

static void t_validation(void **s)
{
	(void)s;
	static const struct {
		const char *json, *err;
		enum cg_code code;
	} cases[] = {
		{"{\"model\":\"tiny\"}", "messages", CG_E_INVALID_ARGUMENT},
		{"{\"model\":\"nope\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "nope", CG_E_NOT_FOUND},
		{"{\"model\":\"tiny\",\"messages\":[{\"role\":\"king\",\"content\":\"x\"}]}", "role", CG_E_INVALID_ARGUMENT},
		{"{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":5}", "temperature",
		 CG_E_INVALID_ARGUMENT},
		{"{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":2}", "n:", CG_E_INVALID_ARGUMENT},
		{"{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":100000}", "max_tokens",
		 CG_E_INVALID_ARGUMENT},
		{"{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\"}]}",
		 "tools", CG_E_INVALID_ARGUMENT},
		{"{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}",
		 "stop", CG_E_INVALID_ARGUMENT},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_t *j = json_loads(cases[i].json, 0, NULL);
		cg_err e;
		struct res r;
		res_init(&r);
		assert_null(model_chat_start(reg, j, &cbs, &r, &e));
		assert_int_equal(e.code, cases[i].code);
		assert_non_null(strstr(e.msg, cases[i].err));
		json_decref(j);
		res_done(&r);
	}
	/* A prompt longer than a slot's context fails after tokenizing, through on_done. */
	char longtext[1200];
	memset(longtext, 'x', sizeof longtext - 1);
	longtext[sizeof longtext - 1] = 0;
	struct res r;
	cg_err e;
	assert_true(start(&r, req("tiny", longtext, 16, false), &e));
	wait1(&r);
	assert_true(r.failed);
	assert_int_equal(r.err.code, CG_E_INVALID_ARGUMENT);
	assert_non_null(strstr(r.err.msg, "context"));
	res_done(&r);
	assert_int_equal(info_int("tiny", "active"), 0);
}

static void t_cancel(void **s)
{
	(void)s;
	struct res r;
	cg_err e;
	assert_true(start(&r, req("tiny", "cancel me", 150, true), &e));
	r.cancel_after = 3;
	wait1(&r);
	if (r.failed)
		fail_msg("failed before the cancel: %s", r.err.msg);
	assert_true(r.cancelled);
	assert_int_equal(r.content_chunks, 3);
	/* The slot comes back: two more requests run at once and finish. */
	struct res a, b;
	assert_true(start(&a, req("tiny", "after cancel", 8, false), &e));
	assert_true(start(&b, req("tiny", "after cancel", 8, true), &e));
	int *f[] = {&a.done, &b.done};
	wait_all(f, 2);
	assert_false(a.failed);
	assert_false(b.failed);
	assert_string_equal(content_of(a.resp), buf_cstr(&b.text));
	assert_int_equal(info_int("tiny", "active"), 0);
	res_done(&r);
	res_done(&a);
	res_done(&b);
}

static void t_queue_overflow(void **s)
{
	(void)s;
	struct res r[5];
	cg_err e;
	for (int i = 0; i < 4; i++)
		assert_true(start(&r[i], req("tiny", "queue", 40, i % 2 == 0), &e));
	assert_int_equal(info_int("tiny", "active"), 2);
	assert_int_equal(info_int("tiny", "queued"), 2);
	/* Slots (2) and queue (2) are full: refused with 429 and Retry-After. */
	assert_false(start(&r[4], req("tiny", "queue", 40, false), &e));
	assert_int_equal(e.code, CG_E_RATE_LIMITED);
	assert_int_equal(cg_err_http(&e), 429);
	assert_true(e.retry_after_s > 0);
	assert_non_null(strstr(e.msg, "queue"));
	int *f[] = {&r[0].done, &r[1].done, &r[2].done, &r[3].done};
	wait_all(f, 4);
	for (int i = 0; i < 4; i++) {
		assert_false(r[i].failed);
		/* Batched with other slots or alone, greedy text is the same. */
		assert_string_equal(content_of(r[i].resp), content_of(r[0].resp));
	}
	for (int i = 0; i < 5; i++)
		res_done(&r[i]);
	assert_int_equal(info_int("tiny", "active"), 0);
	assert_int_equal(info_int("tiny", "queued"), 0);
}

static void load_cb(void *arg, const cg_err *e)
{
	struct res *r = arg;
	r->done = 1;
	if (e) {
		r->failed = true;
		r->err = *e;
	}
}

static void load_ok(const char *name)
{
	struct res r;
	cg_err e;
	res_init(&r);
	if (model_load(reg, name, load_cb, &r, &e) != 0)
		fail_msg("load %s: %s", name, e.msg);
	wait1(&r);
	if (r.failed)
		fail_msg("load %s: %s", name, r.err.msg);
	res_done(&r);
}

static void t_unload_under_load(void **s)
{
	(void)s;
	struct res a, b, q, other;
	cg_err e;
	load_ok("tiny2");
	assert_true(start(&a, req("tiny", "busy", 150, true), &e));
	assert_true(start(&b, req("tiny", "busy", 150, false), &e));
	assert_true(start(&q, req("tiny", "queued", 150, false), &e)); /* waits for a slot */
	/* Let generation begin, then unload. */
	while (a.content_chunks < 2)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(model_unload(reg, "tiny", &e), 0);
	int *f[] = {&a.done, &b.done, &q.done};
	wait_all(f, 3);
	struct res *all[] = {&a, &b, &q};
	for (int i = 0; i < 3; i++) {
		assert_true(all[i]->failed);
		assert_int_equal(all[i]->err.code, CG_E_UNAVAILABLE);
		assert_non_null(strstr(all[i]->err.msg, "unloaded"));
		assert_true(all[i]->err.retry_after_s > 0); /* 503 with Retry-After, running or queued */
	}
	assert_string_equal(state_of("tiny"), "unloaded");
	/* The other model keeps serving, and tiny comes back on demand. */
	run_ok(&other, req("tiny2", "still here?", 16, false));
	assert_true(strlen(content_of(other.resp)) > 0);
	struct res again;
	run_ok(&again, req("tiny", "Hello, tiny model!", 48, false));
	char *g = read_golden();
	assert_string_equal(content_of(again.resp), g);
	free(g);
	assert_int_equal(model_unload(reg, "tiny", &e), 0);
	assert_int_equal(model_unload(reg, "tiny", &e), -CG_E_CONFLICT);
	res_done(&a);
	res_done(&b);
	res_done(&q);
	res_done(&other);
	res_done(&again);
}

static void t_bad_files(void **s)
{
	(void)s;
	cg_err e;
	static const struct {
		const char *name, *err;
		enum cg_code code;
	} cases[] = {
		{"badmagic", "bad magic", CG_E_INVALID_ARGUMENT},
		{"truncated", "truncated", CG_E_INVALID_ARGUMENT},
		{"big", "memory budget", CG_E_QUOTA_EXCEEDED},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		assert_int_equal(model_load(reg, cases[i].name, load_cb, NULL, &e), -(int)cases[i].code);
		assert_non_null(strstr(e.msg, cases[i].err));
		struct res r;
		assert_false(start(&r, req(cases[i].name, "x", 4, false), &e));
		assert_int_equal(e.code, cases[i].code);
		res_done(&r);
		/* The node keeps serving the good models. */
		struct res ok;
		run_ok(&ok, req("tiny2", "fine", 4, false));
		res_done(&ok);
	}
	/* A GGUF that parses but that llama.cpp refuses: architecture it does not know. */
	struct res r;
	assert_int_equal(model_load(reg, "nope", load_cb, NULL, &e), -CG_E_NOT_FOUND);
	json_t *list = model_list(reg);
	size_t i;
	json_t *m;
	int invalid = 0;
	json_array_foreach(list, i, m) if (json_object_get(m, "error")) invalid++;
	assert_int_equal(invalid, 2);
	json_decref(list);
	(void)r;
}

static void t_lru(void **s)
{
	(void)s;
	/* A second registry over the same folder whose budget holds one tiny model at a time. */
	struct model_registry *saved = reg;
	json_t *cfg = json_pack("{s:i,s:i,s:i,s:i}", "slots", 1, "contextPerSlot", 256, "threads", 1, "memoryBudgetMiB", 4);
	cg_err e;
	assert_int_equal(model_registry_new(base, cfg, dir, &reg, &e), 0);
	json_decref(cfg);
	load_ok("tiny");
	struct res r;
	run_ok(&r, req("tiny2", "evict tiny", 4, false)); /* loads tiny2, evicting the idle tiny */
	res_done(&r);
	assert_string_equal(state_of("tiny"), "unloaded");
	assert_string_equal(state_of("tiny2"), "ready");
	json_t *st = model_status(reg);
	assert_int_equal(json_array_size(json_object_get(st, "loaded")), 1);
	assert_true(json_integer_value(json_object_get(st, "used_mib")) <= 4);
	assert_true(json_is_true(json_object_get(json_object_get(st, "llama"), "available")));
	json_decref(st);
	model_registry_free(reg);
	reg = saved;
}

/* The RPC surface, through the module as the node starts it. */
struct rpc_out {
	int done;
	json_t *resp;
};

static void rpc_done(void *arg, json_t *resp)
{
	struct rpc_out *o = arg;
	o->resp = resp;
	o->done = 1;
}

static json_t *call(struct rpc_registry *rr, const char *method, json_t *params)
{
	struct rpc_out o = {0};
	struct rpc_caller who = {"admin", true, NULL};
	json_t *rq = json_pack("{s:s,s:i,s:s,s:o}", "jsonrpc", "2.0", "id", 1, "method", method, "params", params);
	rpc_dispatch_json(rr, rq, &who, rpc_done, &o);
	json_decref(rq);
	int *f[] = {&o.done};
	wait_all(f, 1);
	return o.resp;
}

static void t_rpc(void **s)
{
	(void)s;
	struct node n;
	memset(&n, 0, sizeof n);
	n.base = base;
	n.rpc = rpc_registry_new();
	n.config = json_pack("{s:{s:i,s:i,s:i}}", "models", "slots", 1, "contextPerSlot", 256, "threads", 1);
	snprintf(n.data_dir, sizeof n.data_dir, "%s", dir);
	cg_err e;
	int idx = 3;
	assert_int_equal(mod_model.config_check(json_object_get(n.config, "models"), &e), 0);
	assert_int_equal(mod_model.start(&n, idx, &e), 0);
	json_t *r = call(n.rpc, "model.list", json_object());
	assert_true(json_array_size(json_object_get(json_object_get(r, "result"), "models")) >= 4);
	json_decref(r);
	r = call(n.rpc, "model.load", json_pack("{s:s}", "name", "tiny"));
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "result"), "state")), "ready");
	json_decref(r);
	r = call(n.rpc, "model.chat",
		 json_pack("{s:s,s:[{s:s,s:s}],s:i,s:i,s:b}", "model", "tiny", "messages", "role", "user", "content",
			   "Hello, tiny model!", "max_tokens", 48, "temperature", 0, "stream", 1));
	char *g = read_golden();
	assert_string_equal(content_of(json_object_get(r, "result")), g);
	free(g);
	json_decref(r);
	r = call(n.rpc, "model.info", json_pack("{s:s}", "name", "badmagic"));
	assert_non_null(strstr(json_string_value(json_object_get(json_object_get(r, "result"), "error")), "bad magic"));
	json_decref(r);
	/* Under this budget "big" fits, parses as GGUF, and llama.cpp refuses its extra tensor: a clear error. */
	r = call(n.rpc, "model.load", json_pack("{s:s}", "name", "big"));
	const char *msg = json_string_value(json_object_get(json_object_get(r, "error"), "message"));
	assert_non_null(msg);
	assert_non_null(strstr(msg, "E_INVALID_ARGUMENT"));
	assert_non_null(strstr(msg, "tensors"));
	json_decref(r);
	r = call(n.rpc, "model.chat",
		 json_pack("{s:s,s:[{s:s,s:s}],s:i}", "model", "tiny2", "messages", "role", "user", "content", "ok?",
			   "max_tokens", 4));
	assert_int_equal(usage(json_object_get(r, "result"), "completion_tokens"), 4);
	json_decref(r);
	r = call(n.rpc, "model.unload", json_pack("{s:s}", "name", "tiny"));
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "result"), "state")), "unloaded");
	json_decref(r);
	r = call(n.rpc, "model.info", json_pack("{s:s}", "name", "missing"));
	assert_non_null(strstr(json_string_value(json_object_get(json_object_get(r, "error"), "message")), "E_NOT_FOUND"));
	json_decref(r);
	r = call(n.rpc, "model.status", json_object());
	assert_non_null(json_object_get(json_object_get(r, "result"), "llama"));
	json_decref(r);
	mod_model.stop(&n, idx);
	rpc_registry_free(n.rpc);
	json_decref(n.config);
}

static json_t *choice0(json_t *o)
{
	return json_array_get(json_object_get(o, "choices"), 0);
}

/* Files copied into the folder by hand after start are found by name; a max_tokens beyond what the slot
 * has left after the prompt answers until the context is full instead of failing mid-request; with
 * stream_options.include_usage the usage comes in a last chunk of its own, as OpenAI sends it. */
static void t_fresh_clamp_usage(void **s)
{
	(void)s;
	struct gguf_gen_opts o = {.seed = 99};
	gen("late.gguf", &o);
	struct res r;
	run_ok(&r, req("late", "found without a rescan?", 8, false));
	assert_true(strlen(content_of(r.resp)) > 0);
	res_done(&r);
	write_raw("late-bad.gguf", "GGUF\x03\0\0\0garbage", 15);
	cg_err e;
	assert_int_equal(model_load(reg, "late-bad", load_cb, NULL, &e), -CG_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "truncated"));
	assert_int_equal(model_unload(reg, "late", &e), 0);

	/* contextPerSlot is 256: the prompt takes some, max_tokens 256 gets the rest. */
	run_ok(&r, req("tiny", "Hello, tiny model!", 256, false));
	json_int_t pt = usage(r.resp, "prompt_tokens"), ct = usage(r.resp, "completion_tokens");
	const char *fin = json_string_value(json_object_get(choice0(r.resp), "finish_reason"));
	assert_true(pt > 5 && pt + ct <= 256);
	if (strcmp(fin, "length") == 0)
		assert_int_equal(pt + ct, 256);
	/* The greedy answer starts as the golden one (which stopped at 48 tokens). */
	char *g = read_golden();
	assert_memory_equal(content_of(r.resp), g, strlen(g));
	free(g);
	res_done(&r);

	json_t *rq = req("tiny", "Hello, tiny model!", 6, true);
	json_object_set_new(rq, "stream_options", json_pack("{s:b}", "include_usage", 1));
	run_ok(&r, rq);
	size_t n = json_array_size(r.all_chunks);
	assert_true(n >= 3);
	json_t *last = json_array_get(r.all_chunks, n - 1), *fin_chunk = json_array_get(r.all_chunks, n - 2);
	assert_int_equal(json_array_size(json_object_get(last, "choices")), 0);
	assert_int_equal(usage(last, "completion_tokens"), usage(r.resp, "completion_tokens"));
	assert_int_equal(usage(last, "total_tokens"), usage(r.resp, "total_tokens"));
	assert_true(json_is_null(json_object_get(fin_chunk, "usage")));
	assert_non_null(json_string_value(json_object_get(choice0(fin_chunk), "finish_reason")));
	for (size_t i = 0; i + 1 < n; i++) {
		json_t *c = json_array_get(r.all_chunks, i);
		assert_string_equal(json_string_value(json_object_get(c, "id")), json_string_value(json_object_get(last, "id")));
		assert_true(json_is_null(json_object_get(c, "usage")));
		json_t *lp = json_object_get(choice0(c), "logprobs");
		assert_true(lp && json_is_null(lp));
	}
	json_t *lp = json_object_get(choice0(r.resp), "logprobs");
	assert_true(lp && json_is_null(lp));
	res_done(&r);
	/* invalid stream_options */
	rq = req("tiny", "x", 4, true);
	json_object_set_new(rq, "stream_options", json_string("yes"));
	assert_false(start(&r, rq, &e));
	assert_int_equal(e.code, CG_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "stream_options"));
	res_done(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_golden),     cmocka_unit_test(t_stop_and_sampling), cmocka_unit_test(t_validation),
		cmocka_unit_test(t_cancel),     cmocka_unit_test(t_queue_overflow),    cmocka_unit_test(t_unload_under_load),
		cmocka_unit_test(t_bad_files),  cmocka_unit_test(t_lru),               cmocka_unit_test(t_rpc),
		cmocka_unit_test(t_fresh_clamp_usage),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
