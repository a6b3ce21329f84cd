/* The gateway's request engine: POST /v1/chat/completions and GET /v1/models (see brain.h).
 *
 * One gw_req per client request walks a ranked list of targets. Each attempt always streams from its
 * upstream (so the four timers and usage work the same for streamed and non-streamed clients):
 *   lease (market only) -> POST -> status -> SSE events -> [DONE] -> upstream close.
 * Until the first content token nothing reaches the client (status held, pre-content frames buffered), so
 * any failure moves on to the next target. A streamed client is committed at the first content token;
 * after that a failure ends its stream with an in-band error event and no [DONE]. A non-streamed client is
 * answered only when the upstream finished, so it can fail over at any point.
 * The request's worst-case cost is reserved before the first attempt and settled, with the audit record,
 * when the request is over (bledger.h). */
#define BRAIN_INTERNAL
#include "brain/bint.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "base/clock.h"
#include "base/enc.h"
#include "base/log.h"
#include "base/metrics.h"
#include "brain/bledger.h"
#include "crypto/hash.h"
#include "http/server.h"
#include "http/client.h"
#include "http/sse.h"

struct gw_target {
	struct bg_up *up;
	struct bg_brain *br;
	char model[257]; /* sent upstream ("" = the resource's own) */
};

enum gw_phase { PH_IDLE, PH_LEASE, PH_CALL, PH_AFTER_DONE };

struct gw_req {
	struct gw_req *prev, *next;
	struct brain *b;
	struct http_req *r; /* NULL once the client side is finished */
	char id[40];
	struct oai_req q;
	char model[257]; /* what the client asked for (resolved) */
	struct gw_target t[BG_MAX_TARGETS];
	size_t nt, ti;
	int nattempts;
	json_t *attempts;
	char reserve[U256_DEC_MAX];
	bool reserved;
	/* timing (monotonic us) */
	int64_t t0, a0, first_tok, commit_at, end_at;
	double failed_ms; /* time spent in failed attempts */
	/* current attempt */
	enum gw_phase phase;
	struct gw_target *cur;
	struct hc_req *hr;
	struct mlink_op *mop;
	struct event *tm_first, *tm_idle, *tm_total;
	struct event *ev_next; /* runs attempt_next from the loop, never from inside curl or the SSE parser */
	struct sse_parser sse;
	/* set by the SSE callback, acted on once sse_feed has returned (the parser must not be freed inside) */
	bool in_feed, pend_fail, pend_gone;
	char pend_reason[32];
	cg_err pend_err;
	bool sse_on, lease_retried;
	long status;
	buf errbody;
	buf held; /* stream: frames before the commit */
	buf out;  /* stream: frames of the upstream piece being parsed, sent as one write */
	struct oai_acc acc;
	int64_t retry_after_ms;
	bool got_token, done_seen, usage_seen, committed, client_gone, usage_sent;
	int64_t pt, ct, chunks;
	/* what the client gets when everything fails */
	int fail_status, fail_retry_s;
	cg_err fail_err;
	bool any_429, any_timeout, any_other, saw_context;
	int final_status;
	const char *outcome;
	char error[sizeof(((cg_err *)0)->msg)];
};

static struct metric *m_req, *m_fb, *m_state, *m_ttft, *m_over, *m_tok;

static void metrics_init(void)
{
	static const double over_bounds[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1};
	m_req = metrics_counter("clawgrid_brain_requests_total", "Gateway chat requests by source and outcome.",
				"source,outcome");
	m_fb = metrics_counter("clawgrid_brain_fallbacks_total", "Attempts that failed over to the next upstream.",
			       "from,reason");
	m_state = metrics_gauge("clawgrid_brain_upstream_state", "Upstream state: 0 ok, 1 degraded, 2 cooling down.",
				"upstream");
	m_ttft = metrics_histogram("clawgrid_brain_ttft_seconds", "Time to first token seen by the client.", "source",
				   NULL, 0);
	m_over = metrics_histogram("clawgrid_brain_overhead_seconds",
				   "Time the gateway itself added before the first byte (failed attempts excluded).", "",
				   over_bounds, sizeof over_bounds / sizeof *over_bounds);
	m_tok = metrics_counter("clawgrid_brain_tokens_total", "Tokens through the gateway.", "source,kind");
}

static const char *kind_source(enum bg_kind k)
{
	return k == BK_MARKET ? "web3/decentralized" : "centralized";
}

void gw_publish_state(struct brain *b, struct bg_up *u)
{
	enum bh_state s = bh_state(&u->h, &b->cd, clock_mono_ms());
	u->last_state = s;
	if (m_state)
		metrics_set(m_state, (double)s, u->key);
}

/* ---------------------------------------------------------------- model routing */

static bool in_list(json_t *list, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v) if (json_is_string(v) && !strcmp(json_string_value(v), s)) return true;
	return false;
}

bool gw_brain_serves(const struct brain *b, const struct bg_brain *br, const char *model, const char **um)
{
	if (!br->enabled)
		return false;
	if (!strcmp(model, b->default_model) || !strcmp(model, br->default_model)) {
		*um = br->default_model;
		return br->kind == BK_MARKET || br->default_model[0];
	}
	if (json_array_size(br->allowlist) == 0 || in_list(br->allowlist, model)) {
		*um = model;
		return true;
	}
	return false;
}

struct bg_up *gw_market_up(struct brain *b, struct bg_brain *br, const struct mlink_res *res)
{
	char key[200];
	snprintf(key, sizeof key, "market:%s/%s", res->provider, res->resource_id);
	for (size_t i = 0; i < b->nups; i++)
		if (!strcmp(b->ups[i]->key, key))
			return b->ups[i];
	if (b->nups == BG_MAX_UPS)
		return NULL;
	struct bg_up *u = calloc(1, sizeof *u);
	if (!u)
		return NULL;
	snprintf(u->key, sizeof u->key, "%s", key);
	u->kind = BK_MARKET;
	u->brain = br;
	u->res = res;
	bh_init(&u->h);
	b->ups[b->nups++] = u;
	gw_publish_state(b, u);
	return u;
}

static bool provider_listed(const struct bg_brain *br, const char *name)
{
	return json_array_size(br->providers) == 0 || in_list(br->providers, name);
}

static double price_num(const char *s)
{
	return s && *s ? strtod(s, NULL) : 0;
}

static void add_market(struct gw_req *g)
{
	struct brain *b = g->b;
	if (!b->ml)
		return;
	const struct mlink_res *res;
	size_t nres = mlink_resources(b->ml, &res);
	struct bp_cand c[BG_MAX_TARGETS * 4];
	const char *models[BG_MAX_TARGETS * 4];
	size_t n = 0;
	for (size_t k = 0; k < b->nbrains; k++) {
		struct bg_brain *br = &b->brains[k];
		const char *um;
		if (br->kind != BK_MARKET || !gw_brain_serves(b, br, g->model, &um))
			continue;
		bool any = !um[0] || !strcmp(um, br->default_model);
		for (size_t i = 0; i < nres && n < sizeof c / sizeof *c; i++) {
			if (!res[i].present || !provider_listed(br, res[i].provider))
				continue;
			if (!any && strcmp(res[i].model, um) != 0)
				continue;
			struct bg_up *u = gw_market_up(b, br, &res[i]);
			bool dup = false;
			for (size_t j = 0; j < n; j++)
				dup |= c[j].ptr == u;
			if (!u || dup)
				continue;
			c[n] = (struct bp_cand){.h = &u->h, .price = price_num(res[i].price), .order = (int)n, .ptr = u};
			models[n] = um;
			n++;
		}
	}
	bp_rank(c, n, &b->cd, clock_mono_ms());
	for (size_t i = 0; i < n && g->nt < BG_MAX_TARGETS; i++) {
		struct bg_up *u = c[i].ptr;
		struct gw_target *t = &g->t[g->nt++];
		t->up = u;
		t->br = u->brain;
		int k = c[i].order;
		snprintf(t->model, sizeof t->model, "%s", models[k] && models[k][0] ? models[k] : u->res->model);
	}
}

static void add_central(struct gw_req *g)
{
	struct brain *b = g->b;
	int64_t now = clock_mono_ms();
	size_t first = g->nt;
	for (size_t k = 0; k < b->nbrains && g->nt < BG_MAX_TARGETS; k++) {
		struct bg_brain *br = &b->brains[k];
		const char *um;
		if (br->kind != BK_CENTRAL || !gw_brain_serves(b, br, g->model, &um))
			continue;
		struct gw_target *t = &g->t[g->nt++];
		t->up = br->up;
		t->br = br;
		snprintf(t->model, sizeof t->model, "%s", um);
	}
	/* Configuration order, but cooling upstreams last (soonest back first). Insertion sort: n is tiny. */
	for (size_t i = first + 1; i < g->nt; i++) {
		struct gw_target x = g->t[i];
		size_t j = i;
		while (j > first) {
			struct gw_target *p = &g->t[j - 1];
			bool pc = bh_cooling(&p->up->h, now), xc = bh_cooling(&x.up->h, now);
			if (!(pc && (!xc || bh_cool_left_ms(&x.up->h, now) < bh_cool_left_ms(&p->up->h, now))))
				break;
			g->t[j] = *p;
			j--;
		}
		g->t[j] = x;
	}
}

static void build_targets(struct gw_req *g)
{
	struct brain *b = g->b;
	bool market_first = b->fallback != FB_MARKET;
	if (market_first) {
		add_market(g);
		if (b->fallback != FB_NONE)
			add_central(g);
	} else {
		add_central(g);
		add_market(g);
	}
}

/* A model is known when a centralized brain accepts it, or a market brain maps it to its default (any
 * resource) or the catalog lists a resource serving it. */
static bool model_known(struct brain *b, const char *model)
{
	for (size_t k = 0; k < b->nbrains; k++) {
		struct bg_brain *br = &b->brains[k];
		const char *um;
		if (!gw_brain_serves(b, br, model, &um))
			continue;
		if (br->kind == BK_CENTRAL || !um[0] || !strcmp(um, br->default_model))
			return true;
		const struct mlink_res *res;
		size_t n = b->ml ? mlink_resources(b->ml, &res) : 0;
		for (size_t i = 0; i < n; i++)
			if (res[i].present && provider_listed(br, res[i].provider) && !strcmp(res[i].model, um))
				return true;
	}
	return false;
}

/* ---------------------------------------------------------------- money */

/* amount * n, where n is a non-negative count. */
static int mul_count(const char *amount, int64_t n, char out[static U256_DEC_MAX])
{
	char ns[24];
	snprintf(ns, sizeof ns, "%lld", (long long)(n < 0 ? 0 : n));
	return amount_mul(amount, ns, out);
}

static void target_cost(const struct gw_target *t, int64_t pt, int64_t ct, char out[static U256_DEC_MAX])
{
	char a[U256_DEC_MAX] = "0", c[U256_DEC_MAX] = "0";
	snprintf(out, U256_DEC_MAX, "0");
	if (t->up->kind == BK_MARKET) {
		const struct mlink_res *r = t->up->res;
		if (!r->per_token)
			snprintf(out, U256_DEC_MAX, "%s", r->price);
		else if (mul_count(r->price, pt + ct, a) == 0)
			snprintf(out, U256_DEC_MAX, "%s", a);
		return;
	}
	const struct bg_brain *br = t->br;
	if (br->per_call) {
		snprintf(out, U256_DEC_MAX, "%s", br->price_call);
		return;
	}
	if (mul_count(br->price_prompt, pt, a) == 0 && mul_count(br->price_completion, ct, c) == 0)
		amount_add(a, c, out);
}

/* Worst case over every target: the prompt bounded by its bytes, the answer by max_tokens. */
static void reserve_amount(struct gw_req *g, char out[static U256_DEC_MAX])
{
	int64_t pt = (int64_t)g->q.prompt_bytes + 64;
	int64_t ct = g->q.max_tokens > 0 ? g->q.max_tokens : g->b->reserve_max_tokens;
	snprintf(out, U256_DEC_MAX, "0");
	for (size_t i = 0; i < g->nt; i++) {
		char c[U256_DEC_MAX];
		target_cost(&g->t[i], pt, ct, c);
		if (amount_cmp(c, out) > 0)
			snprintf(out, U256_DEC_MAX, "%s", c);
	}
}

/* ---------------------------------------------------------------- lifecycle */

static void attempt_next(struct gw_req *g);
static void schedule_next(struct gw_req *g);
static void arm(struct event *ev, int64_t ms);
static void record_attempt(struct gw_req *g, const char *reason, const cg_err *e);
static void attempt_fail(struct gw_req *g, const char *reason, const cg_err *e, enum oai_fail cls);
static void gw_finalize(struct gw_req *g);

static double ms_since(int64_t from_us, int64_t to_us)
{
	return from_us && to_us >= from_us ? (double)(to_us - from_us) / 1000.0 : -1;
}

static void attempt_stop(struct gw_req *g)
{
	if (g->hr)
		hc_cancel(g->hr);
	g->hr = NULL;
	if (g->mop)
		mlink_cancel(g->mop);
	g->mop = NULL;
	evtimer_del(g->tm_first);
	evtimer_del(g->tm_idle);
	evtimer_del(g->tm_total);
	if (g->sse_on)
		sse_done(&g->sse);
	g->sse_on = false;
	buf_reset(&g->errbody);
	g->phase = PH_IDLE;
}

static void gw_free(struct gw_req *g)
{
	struct brain *b = g->b;
	attempt_stop(g);
	if (g->prev)
		g->prev->next = g->next;
	else if (b->reqs == g)
		b->reqs = g->next;
	if (g->next)
		g->next->prev = g->prev;
	event_free(g->tm_first);
	event_free(g->tm_idle);
	event_free(g->tm_total);
	if (g->ev_next)
		event_free(g->ev_next);
	buf_done(&g->errbody);
	buf_done(&g->held);
	buf_done(&g->out);
	oai_acc_done(&g->acc);
	oai_req_done(&g->q);
	json_decref(g->attempts);
	free(g);
}

static void add_common_headers(struct gw_req *g)
{
	http_reply_header(g->r, "X-Clawgrid-Request-Id", g->id);
	if (g->cur) {
		http_reply_header(g->r, "X-Clawgrid-Brain", g->cur->br->id);
		http_reply_header(g->r, "X-Clawgrid-Source", kind_source(g->cur->up->kind));
	}
	/* What the gateway itself added: time to this reply minus the winning upstream's own time and the time
	 * lost in failed attempts. */
	int64_t now = clock_mono_us();
	double up = g->a0 ? (double)(now - g->a0) / 1000.0 : 0;
	double over = (double)(now - g->t0) / 1000.0 - up - g->failed_ms;
	if (over < 0)
		over = 0;
	char v[32];
	snprintf(v, sizeof v, "%.3f", over);
	http_reply_header(g->r, "X-Clawgrid-Overhead-Ms", v);
	if (m_over)
		metrics_observe(m_over, over / 1000.0);
}

/* Ends the client side with an OpenAI-shaped error (before any byte of the answer). */
static void client_error(struct gw_req *g, const cg_err *e, int status)
{
	if (!g->r)
		return;
	const char *type, *code;
	oai_error_kind(e, &type, &code);
	if (!status)
		status = cg_err_http(e);
	http_reply_header(g->r, "X-Clawgrid-Request-Id", g->id);
	if (e->retry_after_s > 0 && (status == 429 || status == 503)) {
		char ra[16];
		snprintf(ra, sizeof ra, "%d", e->retry_after_s);
		http_reply_header(g->r, "Retry-After", ra);
	}
	g->final_status = status;
	snprintf(g->error, sizeof g->error, "%s", e->msg);
	http_reply_json(g->r, status, oai_error_json(e->msg, type, code));
	g->r = NULL;
}

static int client_send(struct gw_req *g, const void *p, size_t n)
{
	if (!g->r)
		return -1;
	if (http_stream_write(g->r, p, n) < 0) {
		/* Gone or too slow to read what it asked for: stop generating for it. */
		g->client_gone = true;
		return -1;
	}
	return 0;
}

/* Sends what the current upstream piece produced as one write (one chunk, one syscall). */
static int client_flush(struct gw_req *g)
{
	int rc = 0;
	if (g->out.len)
		rc = client_send(g, g->out.data, g->out.len);
	buf_reset(&g->out);
	return rc;
}

/* While an upstream piece is parsed, frames are gathered and flushed together afterwards. */
static int client_write(struct gw_req *g, const void *p, size_t n)
{
	if (!g->r)
		return -1;
	if (!g->in_feed)
		return client_send(g, p, n);
	if (buf_append(&g->out, p, n) == 0)
		return 0;
	if (client_flush(g) < 0)
		return -1;
	return buf_append(&g->out, p, n) == 0 ? 0 : client_send(g, p, n);
}

static void client_end_stream(struct gw_req *g)
{
	if (!g->r)
		return;
	(void)client_flush(g);
	http_stream_end(g->r);
	g->r = NULL;
}

static void commit_stream(struct gw_req *g)
{
	g->committed = true;
	g->commit_at = clock_mono_us();
	if (!g->r)
		return;
	add_common_headers(g);
	http_sse_start(g->r);
	g->final_status = 200;
	if (g->held.len)
		(void)client_write(g, g->held.data, g->held.len);
	buf_done(&g->held);
}

/* The usage chunk for a client that asked for it when the upstream sent none (estimated, flagged). */
static void send_estimated_usage(struct gw_req *g)
{
	json_t *j = json_pack("{s:s,s:s,s:I,s:s,s:[],s:{s:I,s:I,s:I},s:b}", "id", g->id, "object",
			      "chat.completion.chunk", "created", (json_int_t)(clock_now_ms() / 1000), "model", g->model,
			      "choices", "usage", "prompt_tokens", (json_int_t)g->pt, "completion_tokens",
			      (json_int_t)g->ct, "total_tokens", (json_int_t)(g->pt + g->ct), "x_clawgrid_estimated", 1);
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (s) {
		buf f;
		buf_init(&f, strlen(s) + 16);
		if (oai_sse_data(&f, s, strlen(s)) == 0)
			(void)client_write(g, f.data, f.len);
		buf_done(&f);
		free(s);
	}
}

static void estimate_usage(struct gw_req *g)
{
	if (g->usage_seen)
		return;
	/* About four bytes per token of English text; every content chunk carries about one token. */
	g->pt = (int64_t)(g->q.prompt_bytes + 3) / 4;
	g->ct = g->chunks;
}

/* The upstream sent [DONE]: finish the client side now; the upstream's close (or a receipt event from a
 * market provider) is awaited before settling so its connection can be reused. */
static void client_success(struct gw_req *g)
{
	struct brain *b = g->b;
	estimate_usage(g);
	g->end_at = clock_mono_us();
	g->outcome = "ok";
	if (g->q.stream) {
		if (!g->committed)
			commit_stream(g);
		if ((g->q.include_usage || b->usage_always) && !g->usage_sent) {
			/* A usage chunk that came with choices was passed on already; otherwise add ours. */
			send_estimated_usage(g);
		}
		(void)client_write(g, "data: [DONE]\n\n", 14);
		client_end_stream(g);
		return;
	}
	json_t *res = oai_acc_result(&g->acc, g->pt, g->ct);
	if (!g->usage_seen && res)
		json_object_set_new(json_object_get(res, "usage"), "x_clawgrid_estimated", json_true());
	if (g->r) {
		add_common_headers(g);
		g->final_status = 200;
		http_reply_json(g->r, 200, res ? res : oai_error_json("out of memory", "server_error", NULL));
		g->r = NULL;
	} else {
		json_decref(res);
	}
}

/* ---------------------------------------------------------------- upstream events */

static int pend_fail(struct gw_req *g, const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int pend_fail(struct gw_req *g, const char *reason, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cg_vfail(&g->pend_err, CG_E_UNAVAILABLE, fmt, ap);
	va_end(ap);
	snprintf(g->pend_reason, sizeof g->pend_reason, "%s", reason);
	g->pend_fail = true;
	return -1;
}

/* Whether a relayed chunk carries output (for the estimate when the upstream sends no usage): a non-empty
 * content/refusal/reasoning string or a tool-call delta. Cheap on purpose; exact counts come from usage. */
static bool relay_has_content(const char *p, size_t n)
{
	static const char *const keys[] = {"\"content\":\"", "\"refusal\":\"", "\"reasoning_content\":\"", NULL};
	for (int k = 0; keys[k]; k++) {
		size_t kl = strlen(keys[k]);
		const char *h = kl <= n ? memmem(p, n, keys[k], kl) : NULL;
		if (h && (size_t)(h - p) + kl < n && p[h - p + kl] != '"')
			return true;
	}
	return n >= 12 && memmem(p, n, "\"tool_calls\"", 12) != NULL;
}

static int on_event(void *arg, const char *event, const char *data, size_t len)
{
	struct gw_req *g = arg;
	struct brain *b = g->b;
	if (g->done_seen)
		return 0; /* after [DONE]: a market receipt or trailing noise */
	bool err_event = !strcmp(event, "error");
	if (*event && strcmp(event, "message") != 0 && !err_event)
		return 0; /* named events other than errors are not part of the OpenAI stream */
	/* Relay fast path: once a streamed answer is committed, a plain content chunk only needs to be valid
	 * JSON to be passed on as is (no parse, no allocation); usage and error chunks take the full path. */
	if (g->committed && g->q.stream && !err_event && !(len == 6 && !memcmp(data, "[DONE]", 6)) &&
	    !oai_chunk_needs_parse(data, len)) {
		if (!oai_json_object_valid(data, len))
			return pend_fail(g, "malformed_chunk", "malformed chunk from the upstream (not a JSON object)");
		if (relay_has_content(data, len))
			g->chunks++;
		buf f;
		buf_init(&f, len + 16);
		int rc = oai_sse_data(&f, data, len) == 0 ? client_write(g, f.data, f.len) : -1;
		buf_done(&f);
		if (rc < 0 && g->client_gone) {
			g->pend_gone = true;
			return -1;
		}
		return rc < 0 ? pend_fail(g, "internal", "the gateway could not relay the answer") : 0;
	}
	struct oai_chunk c;
	oai_chunk_parse(data, len, &c);
	if (err_event && c.kind == OAI_CHUNK_DATA) {
		c.kind = OAI_CHUNK_ERROR;
		snprintf(c.error, sizeof c.error, "the upstream sent an error event");
	}
	switch (c.kind) {
	case OAI_CHUNK_BAD:
		oai_chunk_done(&c);
		return pend_fail(g, "malformed_chunk", "%s", c.error);
	case OAI_CHUNK_ERROR:
		oai_chunk_done(&c);
		return pend_fail(g, "upstream_error", "upstream error mid-stream: %s", c.error);
	case OAI_CHUNK_DONE:
		g->done_seen = true;
		g->phase = PH_AFTER_DONE;
		evtimer_del(g->tm_first);
		evtimer_del(g->tm_idle);
		client_success(g);
		return 0;
	case OAI_CHUNK_DATA:
		break;
	}
	if (c.usage) {
		g->usage_seen = true;
		g->pt = c.prompt_tokens;
		g->ct = c.completion_tokens;
	}
	if (c.content) {
		g->chunks++;
		if (!g->got_token) {
			g->got_token = true;
			g->first_tok = clock_mono_us();
			evtimer_del(g->tm_first);
			arm(g->tm_idle, g->cur->br->to.idle_ms);
		}
	}
	int rc = 0;
	if (!g->q.stream) {
		if (!c.usage_only && oai_acc_add(&g->acc, c.json) < 0) {
			oai_chunk_done(&c);
			return pend_fail(g, "malformed_chunk", "the answer is malformed or over %u bytes", OAI_ACC_MAX);
		}
		oai_chunk_done(&c);
		return 0;
	}
	bool want_usage = g->q.include_usage || b->usage_always;
	if (c.usage_only && !want_usage) {
		oai_chunk_done(&c);
		return 0; /* we asked for it, the client did not: strip it */
	}
	const char *out = data;
	size_t olen = len;
	char *re = NULL;
	if (c.usage && !c.usage_only && !want_usage) {
		json_object_del(c.json, "usage");
		re = json_dumps(c.json, JSON_COMPACT);
		out = re;
		olen = re ? strlen(re) : 0;
	}
	if (c.usage && want_usage)
		g->usage_sent = true;
	buf f;
	buf_init(&f, olen + 16);
	if (out && oai_sse_data(&f, out, olen) == 0) {
		if (!g->committed) {
			if (buf_append(&g->held, f.data, f.len) < 0)
				rc = -1;
			else if (c.content)
				commit_stream(g);
		} else {
			rc = client_write(g, f.data, f.len);
		}
	}
	buf_done(&f);
	free(re);
	oai_chunk_done(&c);
	if (rc < 0 && g->client_gone) {
		g->pend_gone = true;
		return -1;
	}
	if (rc < 0)
		return pend_fail(g, "internal", "the gateway could not buffer the answer");
	return 0;
}

static int up_headers(void *arg, long status, struct hc_req *r)
{
	struct gw_req *g = arg;
	g->status = status;
	char ra[32];
	g->retry_after_ms = 0;
	if (status != 200 && hc_header(r, "Retry-After", ra, sizeof ra) > 0) {
		char *end;
		double s = strtod(ra, &end);
		if (end != ra && s > 0 && s < 86400)
			g->retry_after_ms = (int64_t)(s * 1000);
	}
	if (status == 200) {
		sse_init(&g->sse, BG_EVENT_MAX, on_event, g);
		g->sse_on = true;
	}
	return 0;
}

static int up_data(void *arg, const char *p, size_t n)
{
	struct gw_req *g = arg;
	if (g->status != 200) {
		if (g->errbody.len + n > BG_ERRBODY_MAX)
			n = BG_ERRBODY_MAX - g->errbody.len;
		return buf_append(&g->errbody, p, n) < 0 ? -1 : 0;
	}
	/* Between chunks once tokens flow; before the first one the first-token timer governs (a server may
	 * send its role chunk at once and then spend long on the prompt). */
	if (g->got_token && !g->done_seen)
		arm(g->tm_idle, g->cur->br->to.idle_ms);
	cg_err e;
	g->in_feed = true;
	int r = sse_feed(&g->sse, p, n, &e);
	g->in_feed = false;
	if (client_flush(g) < 0 && g->client_gone && !g->pend_fail && g->phase != PH_AFTER_DONE)
		g->pend_gone = true;
	if (g->pend_fail) {
		g->pend_fail = false;
		cg_err pe = g->pend_err;
		attempt_fail(g, g->pend_reason, &pe, OAI_FAIL_RETRY);
		return -1;
	}
	if (g->pend_gone) {
		g->outcome = "client_closed";
		estimate_usage(g);
		g->end_at = clock_mono_us();
		gw_finalize(g);
		return -1;
	}
	if (r == -CG_E_INVALID_ARGUMENT) {
		attempt_fail(g, "malformed_chunk", &e, OAI_FAIL_RETRY);
		return -1;
	}
	return r < 0 ? -1 : 0;
}

static void up_done(void *arg, long status, const char *body, size_t n, const cg_err *e)
{
	struct gw_req *g = arg;
	g->hr = NULL;
	if (g->phase == PH_AFTER_DONE) {
		attempt_stop(g);
		gw_finalize(g);
		return;
	}
	cg_err err;
	if (e) {
		/* Our own timers cancel the request before curl's; what curl reports is a connect failure or its
		 * backstop. */
		bool to = e->code == CG_E_TIMEOUT;
		cg_fail(&err, to ? CG_E_TIMEOUT : CG_E_UNAVAILABLE, "%s", e->msg);
		attempt_fail(g, to ? "timeout_connect" : g->status ? "cut" : "connect", &err, OAI_FAIL_RETRY);
		return;
	}
	if (status != 200) {
		char msg[200];
		enum oai_fail cls = oai_classify(status, (const char *)g->errbody.data, g->errbody.len, msg, sizeof msg);
		if (status == 401 && g->cur->up->kind == BK_MARKET && !g->lease_retried) {
			/* The lease no longer authorizes (expired or revoked): renew it once, same target. */
			g->lease_retried = true;
			mlink_drop_lease(g->b->ml, g->cur->up->res);
			cg_fail(&err, CG_E_AUTH_REQUIRED, "the provider refused the lease: %s", msg[0] ? msg : "HTTP 401");
			attempt_stop(g);
			record_attempt(g, "lease_refused", &err);
			g->failed_ms += ms_since(g->a0, clock_mono_us());
			g->ti--;
			schedule_next(g);
			return;
		}
		enum cg_code code = status == 429 ? CG_E_RATE_LIMITED : status == 504 || status == 408 ? CG_E_TIMEOUT
				    : cls == OAI_FAIL_CLIENT ? CG_E_INVALID_ARGUMENT
								 : CG_E_UNAVAILABLE;
		cg_fail(&err, code, "upstream answered HTTP %ld%s%s", status, msg[0] ? ": " : "", msg);
		err.http_status = (int)status;
		char reason[32];
		snprintf(reason, sizeof reason, cls == OAI_FAIL_CONTEXT ? "context_length" : "http_%ld", status);
		attempt_fail(g, reason, &err, cls);
		return;
	}
	bool partial = g->sse_on && sse_finish(&g->sse);
	cg_err cut;
	cg_fail(&cut, CG_E_UNAVAILABLE, "the upstream stream ended without [DONE]%s", partial ? " (mid-event)" : "");
	attempt_fail(g, "cut", &cut, OAI_FAIL_RETRY);
}

static void on_timer(struct gw_req *g, const char *reason, const char *what)
{
	cg_err e;
	if (g->phase == PH_AFTER_DONE) {
		/* The answer is complete; only the upstream's close was missing. */
		attempt_stop(g);
		gw_finalize(g);
		return;
	}
	cg_fail(&e, CG_E_TIMEOUT, "upstream %s", what);
	attempt_fail(g, reason, &e, OAI_FAIL_RETRY);
}

static void tm_first_cb(evutil_socket_t fd, short what, void *arg)
{
	on_timer(arg, "timeout_first_token", "sent no token in time");
}

static void tm_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	on_timer(arg, "timeout_idle", "stalled between chunks");
}

static void tm_total_cb(evutil_socket_t fd, short what, void *arg)
{
	on_timer(arg, "timeout_total", "exceeded the total time limit");
}

/* ---------------------------------------------------------------- attempts */

static char *upstream_body(struct gw_req *g, const struct gw_target *t)
{
	json_t *q = json_copy(g->q.root); /* shallow: only top-level keys change */
	if (!q)
		return NULL;
	if (t->model[0])
		json_object_set_new(q, "model", json_string(t->model));
	json_object_set_new(q, "stream", json_true());
	json_t *so = json_object_get(q, "stream_options");
	so = json_is_object(so) ? json_copy(so) : json_object();
	json_object_set_new(so, "include_usage", json_true());
	json_object_set_new(q, "stream_options", so);
	/* With a budget the answer must stay within what was reserved. */
	if (g->b->budget && g->q.max_tokens <= 0)
		json_object_set_new(q, "max_tokens", json_integer(g->b->reserve_max_tokens));
	char *s = json_dumps(q, JSON_COMPACT);
	json_decref(q);
	return s;
}

static void attempt_send(struct gw_req *g)
{
	struct gw_target *t = g->cur;
	char url[2200], auth[400] = "", lease[120] = "";
	const char *hdrs[8];
	int nh = 0;
	cg_err e;
	if (t->up->kind == BK_MARKET) {
		if (mlink_call_info(g->b->ml, t->up->res, url, sizeof url, auth, sizeof auth, lease, sizeof lease) < 0) {
			cg_fail(&e, CG_E_UNAVAILABLE, "no lease for the market resource");
			attempt_fail(g, "lease", &e, OAI_FAIL_RETRY);
			return;
		}
		hdrs[nh++] = auth;
		hdrs[nh++] = lease;
	} else {
		snprintf(url, sizeof url, "%s", t->br->url);
		if (t->br->auth)
			hdrs[nh++] = t->br->auth;
	}
	hdrs[nh++] = "Content-Type: application/json";
	hdrs[nh++] = "Accept: text/event-stream";
	char rid[80];
	snprintf(rid, sizeof rid, "X-Request-Id: %s", g->id);
	hdrs[nh++] = rid;
	hdrs[nh] = NULL;
	char *body = upstream_body(g, t);
	if (!body) {
		sodium_memzero(auth, sizeof auth);
		cg_fail(&e, CG_E_INTERNAL, "out of memory");
		attempt_fail(g, "internal", &e, OAI_FAIL_RETRY);
		return;
	}
	const struct bg_timeouts *to = &t->br->to;
	struct hc_opts o = {.method = "POST", .url = url, .headers = hdrs, .body = body, .body_len = strlen(body),
			    .connect_timeout_ms = to->connect_ms,
			    /* our own timers come first; curl's total is only a backstop */
			    .total_timeout_ms = to->total_ms > 0 ? to->total_ms + 2000 : 0, .stream = true};
	static const struct hc_cb cb = {up_headers, up_data, up_done};
	g->phase = PH_CALL;
	g->status = 0;
	g->hr = hc_start(g->b->hc, &o, &cb, g, &e);
	sodium_memzero(auth, sizeof auth);
	free(body);
	if (!g->hr)
		attempt_fail(g, "connect", &e, OAI_FAIL_RETRY);
}

static void lease_ready(void *arg, const cg_err *e)
{
	struct gw_req *g = arg;
	g->mop = NULL;
	if (e) {
		attempt_fail(g, "lease", e, OAI_FAIL_RETRY);
		return;
	}
	attempt_send(g);
}

static void arm(struct event *ev, int64_t ms)
{
	if (ms > 0) {
		struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
		evtimer_add(ev, &tv);
	}
}

static void final_error(struct gw_req *g)
{
	cg_err e;
	if (g->nattempts == 0) {
		int64_t left = 0, now = clock_mono_ms();
		for (size_t i = 0; i < g->nt; i++) {
			int64_t l = bh_cool_left_ms(&g->t[i].up->h, now);
			if (l > 0 && (!left || l < left))
				left = l;
		}
		cg_fail(&e, CG_E_UNAVAILABLE, "no upstream can serve model %s right now", g->model);
		e.retry_after_s = left > 0 ? (int)((left + 999) / 1000) : 1;
		g->outcome = "unavailable";
		client_error(g, &e, 503);
		return;
	}
	/* Every attempt failed: one status that tells the client what to do. */
	e = g->fail_err;
	int status;
	if (g->any_429 && !g->any_other && !g->any_timeout) {
		status = 429;
		e.code = CG_E_RATE_LIMITED;
	} else if (g->any_timeout && !g->any_other && !g->any_429) {
		status = 504;
		e.code = CG_E_TIMEOUT;
	} else if (g->saw_context && !g->any_other && !g->any_429 && !g->any_timeout) {
		status = 400;
		e.code = CG_E_INVALID_ARGUMENT;
	} else {
		status = 502;
		e.code = CG_E_UNAVAILABLE;
	}
	char msg[sizeof e.msg];
	snprintf(msg, sizeof msg, "all %d upstream attempt%s failed; last: %.240s", g->nattempts,
		 g->nattempts == 1 ? "" : "s", g->fail_err.msg);
	snprintf(e.msg, sizeof e.msg, "%s", msg);
	if (status == 429 || status == 502) {
		int64_t left = 0, now = clock_mono_ms();
		for (size_t i = 0; i < g->nt; i++) {
			int64_t l = bh_cool_left_ms(&g->t[i].up->h, now);
			if (l > 0 && (!left || l < left))
				left = l;
		}
		e.retry_after_s = left > 0 ? (int)((left + 999) / 1000) : 1;
		if (status == 502 && left > 0)
			status = 503;
	}
	g->outcome = "failed";
	client_error(g, &e, status);
}

static void attempt_next(struct gw_req *g)
{
	struct brain *b = g->b;
	attempt_stop(g);
	if (g->client_gone) {
		g->outcome = "client_closed";
		gw_finalize(g);
		return;
	}
	int64_t now = clock_mono_ms();
	/* Cooling upstreams are skipped: they failed repeatedly or asked us (Retry-After) to stay away. When
	 * nothing else is left the client gets 503 with the time until the first one is back. */
	while (g->ti < g->nt && bh_cooling(&g->t[g->ti].up->h, now))
		g->ti++;
	if (g->ti >= g->nt || g->nattempts >= b->max_attempts) {
		final_error(g);
		gw_finalize(g);
		return;
	}
	struct gw_target *t = &g->t[g->ti++];
	g->cur = t;
	g->nattempts++;
	g->a0 = clock_mono_us();
	g->got_token = g->done_seen = g->usage_seen = g->usage_sent = false;
	g->pt = g->ct = g->chunks = 0;
	buf_reset(&g->held);
	oai_acc_done(&g->acc);
	oai_acc_init(&g->acc);
	const struct bg_timeouts *to = &t->br->to;
	arm(g->tm_first, to->first_token_ms);
	arm(g->tm_total, to->total_ms); /* the idle timer starts with the first body bytes (up_data) */
	if (t->up->kind == BK_MARKET) {
		g->phase = PH_LEASE;
		g->mop = mlink_lease(b->ml, t->up->res, lease_ready, g);
		if (!g->mop) {
			cg_err e;
			cg_fail(&e, CG_E_INTERNAL, "out of memory");
			attempt_fail(g, "internal", &e, OAI_FAIL_RETRY);
		}
		return;
	}
	attempt_send(g);
}

static void record_attempt(struct gw_req *g, const char *reason, const cg_err *e)
{
	json_t *a = json_pack("{s:s,s:s,s:s,s:s,s:o,s:o,s:f}", "brain", g->cur->br->id, "upstream", g->cur->up->key,
			      "source", kind_source(g->cur->up->kind), "model", g->cur->model, "reason",
			      reason ? json_string(reason) : json_null(), "error", e ? json_string(e->msg) : json_null(),
			      "ms", ms_since(g->a0, clock_mono_us()));
	if (a)
		json_array_append_new(g->attempts, a);
}

static void attempt_fail(struct gw_req *g, const char *reason, const cg_err *e, enum oai_fail cls)
{
	struct brain *b = g->b;
	struct gw_target *t = g->cur;
	int64_t now = clock_mono_ms();
	attempt_stop(g);
	record_attempt(g, reason, e);
	log_info("brain", "attempt failed", "req=%s upstream=%s reason=%s err=\"%s\"", g->id, t->up->key, reason,
		 e ? e->msg : "");
	if (cls != OAI_FAIL_CLIENT && cls != OAI_FAIL_CONTEXT) {
		/* An upstream that says when to come back (429 or 503 with Retry-After) is left alone that long. */
		if (bh_failure(&t->up->h, &b->cd, now, g->status == 429 || g->status == 503 ? g->retry_after_ms : 0,
			       reason))
			log_warn("brain", "upstream cooling down", "upstream=%s ms=%lld", t->up->key,
				 (long long)bh_cool_left_ms(&t->up->h, now));
		gw_publish_state(b, t->up);
	}
	if (g->committed) {
		/* Bytes of the answer are out: no failover, no [DONE]; the client is told in-band. */
		if (g->r) {
			json_t *err = oai_error_json(e ? e->msg : "upstream failed", "server_error", "stream_interrupted");
			char *s = json_dumps(err, JSON_COMPACT);
			json_decref(err);
			buf f;
			buf_init(&f, (s ? strlen(s) : 0) + 16);
			if (s && oai_sse_data(&f, s, strlen(s)) == 0)
				(void)client_write(g, f.data, f.len);
			buf_done(&f);
			free(s);
			client_end_stream(g);
		}
		snprintf(g->error, sizeof g->error, "%s", e ? e->msg : "");
		g->outcome = "interrupted";
		estimate_usage(g);
		g->end_at = clock_mono_us();
		gw_finalize(g);
		return;
	}
	g->failed_ms += ms_since(g->a0, clock_mono_us());
	if (cls == OAI_FAIL_CLIENT) {
		g->outcome = "rejected";
		client_error(g, e, (int)(g->status >= 400 && g->status < 500 ? g->status : 400));
		gw_finalize(g);
		return;
	}
	if (e)
		g->fail_err = *e;
	if (cls == OAI_FAIL_CONTEXT)
		g->saw_context = true;
	else if (g->status == 429)
		g->any_429 = true;
	else if (e && e->code == CG_E_TIMEOUT)
		g->any_timeout = true;
	else
		g->any_other = true;
	b->failed_over++;
	if (m_fb)
		metrics_add(m_fb, 1, kind_source(t->up->kind), reason);
	schedule_next(g);
}

static void ev_next_cb(evutil_socket_t fd, short what, void *arg)
{
	attempt_next(arg);
}

static void schedule_next(struct gw_req *g)
{
	event_active(g->ev_next, EV_TIMEOUT, 1);
}

/* ---------------------------------------------------------------- the end of a request */

#define BG_PEND_MAX 512

/* An owned copy of one audit record waiting for the group commit. */
struct bg_settle {
	struct bl_audit a;
	char id[40], model[257], brain[64], source[24], upstream[200], outcome[24], usage[16], cost[U256_DEC_MAX];
	char error[sizeof(((cg_err *)0)->msg)];
};

#define COPY_FIELD(s, field, val)                                                                                  \
	do {                                                                                                       \
		if (val) {                                                                                         \
			snprintf((s)->field, sizeof (s)->field, "%s", (val));                                      \
			(s)->a.field = (s)->field;                                                                 \
		}                                                                                                  \
	} while (0)

void gw_flush(struct brain *b)
{
	if (!b->npend)
		return;
	const struct bl_audit *list[BG_PEND_MAX] = {NULL};
	size_t n = b->npend < BG_PEND_MAX ? b->npend : BG_PEND_MAX;
	for (size_t i = 0; i < n; i++)
		list[i] = &b->pend[i]->a;
	cg_err e;
	/* One transaction for everything that finished since the last turn of the loop: far cheaper than one
	 * commit per request, and the budget stays exact (unsettled requests still hold their reservations). */
	if (bl_settle_many(b->d.store, list, n, &e) < 0) {
		/* Keep the good ones: retry one by one so a single bad record cannot drop the others. */
		for (size_t i = 0; i < n; i++)
			if (bl_settle(b->d.store, list[i], &e) < 0)
				log_error("brain", "cannot settle the request", "req=%s err=\"%s\"", list[i]->id, e.msg);
	}
	for (size_t i = 0; i < n; i++) {
		json_decref(b->pend[i]->a.attempts);
		free(b->pend[i]);
	}
	b->npend = 0;
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
	gw_flush(arg);
}

static void settle_defer(struct brain *b, const struct bl_audit *a)
{
	struct bg_settle *s = calloc(1, sizeof *s);
	if (!s || (!b->pend && !(b->pend = calloc(BG_PEND_MAX, sizeof *b->pend)))) {
		free(s);
		cg_err e;
		if (bl_settle(b->d.store, a, &e) < 0)
			log_error("brain", "cannot settle the request", "req=%s err=\"%s\"", a->id, e.msg);
		return;
	}
	s->a = *a;
	s->a.id = s->a.model = s->a.brain = s->a.source = s->a.upstream = s->a.outcome = s->a.usage_source = NULL;
	s->a.error = s->a.cost = NULL;
	COPY_FIELD(s, id, a->id);
	COPY_FIELD(s, model, a->model);
	COPY_FIELD(s, brain, a->brain);
	COPY_FIELD(s, source, a->source);
	COPY_FIELD(s, upstream, a->upstream);
	COPY_FIELD(s, outcome, a->outcome);
	COPY_FIELD(s, error, a->error);
	COPY_FIELD(s, cost, a->cost);
	if (a->usage_source) {
		snprintf(s->usage, sizeof s->usage, "%s", a->usage_source);
		s->a.usage_source = s->usage;
	}
	s->a.attempts = json_incref(a->attempts);
	b->pend[b->npend++] = s;
	if (b->npend == BG_PEND_MAX)
		gw_flush(b);
	else if (b->npend == 1)
		event_active(b->flush_ev, EV_TIMEOUT, 1);
}

static void gw_finalize(struct gw_req *g)
{
	struct brain *b = g->b;
	attempt_stop(g);
	if (g->r) {
		/* Defensive: every path answers the client before finalizing; never leave r unfinished. */
		cg_err e;
		cg_fail(&e, CG_E_INTERNAL, "request ended without an answer");
		client_error(g, &e, 500);
	}
	int64_t end = g->end_at ? g->end_at : clock_mono_us();
	char cost[U256_DEC_MAX] = "0";
	bool ok = g->outcome && (!strcmp(g->outcome, "ok") || !strcmp(g->outcome, "interrupted") ||
				 !strcmp(g->outcome, "client_closed"));
	if (g->cur && ok) {
		if (!g->usage_seen)
			estimate_usage(g);
		target_cost(g->cur, g->pt, g->ct, cost);
		if (!strcmp(g->outcome, "ok")) {
			bh_success(&g->cur->up->h, clock_mono_ms(), ms_since(g->a0, g->first_tok ? g->first_tok : end));
			gw_publish_state(b, g->cur->up);
		}
	}
	/* The winning (or abandoned) attempt; a failed one was recorded when it failed. */
	if (g->cur && ok && !strcmp(g->outcome, "ok"))
		record_attempt(g, NULL, NULL);
	else if (g->cur && ok && !strcmp(g->outcome, "client_closed"))
		record_attempt(g, "client_closed", NULL);
	const char *src = g->cur ? kind_source(g->cur->up->kind) : "none";
	double ttft = g->first_tok ? ms_since(g->t0, g->commit_at ? g->commit_at : g->first_tok) : -1;
	double over = -1;
	if (g->cur && g->a0)
		over = ms_since(g->t0, g->a0) - g->failed_ms;
	if (over < 0 && over != -1)
		over = 0;
	struct bl_audit a = {
		.id = g->id,
		.model = g->model,
		.brain = g->cur ? g->cur->br->id : NULL,
		.source = g->cur ? src : NULL,
		.upstream = g->cur ? g->cur->up->key : NULL,
		.outcome = g->outcome ? g->outcome : "error",
		.usage_source = ok ? (g->usage_seen ? "upstream" : "estimated") : NULL,
		.error = g->error[0] ? g->error : NULL,
		.cost = cost,
		.attempts = g->attempts,
		.ts = clock_now_ms(),
		.status = g->final_status,
		.stream = g->q.stream,
		.prompt_tokens = ok ? g->pt : -1,
		.completion_tokens = ok ? g->ct : -1,
		.ttft_ms = ttft,
		.duration_ms = ms_since(g->t0, end),
		.overhead_ms = over,
	};
	settle_defer(b, &a);
	if (m_req)
		metrics_add(m_req, 1, src, a.outcome);
	if (ok && m_tok) {
		metrics_add(m_tok, (double)g->pt, src, "prompt");
		metrics_add(m_tok, (double)g->ct, src, "completion");
	}
	if (ttft >= 0 && m_ttft)
		metrics_observe(m_ttft, ttft / 1000.0, src);
	b->served++;
	/* The audit record is the durable trail; the log line is for debugging. */
	log_debug("brain", "request", "req=%s model=%s upstream=%s outcome=%s attempts=%d status=%d cost=%s", g->id,
		 g->model, a.upstream ? a.upstream : "-", a.outcome, g->nattempts, g->final_status, cost);
	gw_free(g);
}

static void on_client_close(struct http_req *r, void *arg)
{
	struct gw_req *g = arg;
	g->client_gone = true;
	if (g->r) {
		if (g->committed)
			http_stream_end(g->r);
		else
			http_reply(g->r, 499, "text/plain", NULL, 0);
		g->r = NULL;
	}
	g->final_status = g->final_status ? g->final_status : 499;
	if (!g->outcome || strcmp(g->outcome, "ok") != 0)
		g->outcome = "client_closed";
	if (g->phase == PH_AFTER_DONE)
		return; /* already answered: settle when the upstream closes */
	if (g->in_feed) {
		g->pend_gone = true; /* up_data finalizes once the parser has returned */
		return;
	}
	estimate_usage(g);
	g->end_at = clock_mono_us();
	gw_finalize(g);
}

/* ---------------------------------------------------------------- routes */

static bool key_ok(struct brain *b, struct http_req *r)
{
	const char *h = http_req_header(r, "Authorization");
	const char *t = NULL;
	if (h && !strncasecmp(h, "Bearer ", 7))
		t = h + 7;
	if (!t)
		t = http_req_header(r, "x-api-key");
	if (!t || !b->have_key)
		return false;
	while (*t == ' ')
		t++;
	size_t n = strlen(t);
	while (n && (t[n - 1] == ' ' || t[n - 1] == '\t'))
		n--;
	if (n == 0 || n > 512)
		return false;
	uint8_t d[32];
	sha256(d, t, n);
	bool ok = sodium_memcmp(d, b->key_hash, 32) == 0;
	sodium_memzero(d, sizeof d);
	return ok;
}

static void reply_plain_error(struct http_req *r, const cg_err *e, int status)
{
	const char *type, *code;
	oai_error_kind(e, &type, &code);
	if (status == 401)
		http_reply_header(r, "WWW-Authenticate", "Bearer realm=\"clawgrid-gateway\"");
	http_reply_json(r, status ? status : cg_err_http(e), oai_error_json(e->msg, type, code));
}

static void on_chat(struct http_req *r, void *arg)
{
	struct brain *b = arg;
	cg_err e;
	if (!key_ok(b, r)) {
		cg_fail(&e, CG_E_AUTH_REQUIRED, "missing or wrong gateway key (Authorization: Bearer <key>)");
		reply_plain_error(r, &e, 401);
		return;
	}
	if (!http_req_content_type_is(r, "application/json")) {
		cg_fail_http(&e, CG_E_INVALID_ARGUMENT, 415, "Content-Type must be application/json");
		reply_plain_error(r, &e, 415);
		return;
	}
	struct gw_req *g = calloc(1, sizeof *g);
	if (!g) {
		cg_fail(&e, CG_E_INTERNAL, "out of memory");
		reply_plain_error(r, &e, 500);
		return;
	}
	g->b = b;
	g->r = r;
	g->t0 = clock_mono_us();
	uint8_t rnd[12];
	randombytes_buf(rnd, sizeof rnd);
	memcpy(g->id, "breq_", 5);
	hex_encode(g->id + 5, rnd, sizeof rnd);
	g->attempts = json_array();
	buf_init(&g->errbody, BG_ERRBODY_MAX);
	buf_init(&g->held, BG_HELD_MAX);
	buf_init(&g->out, 256u << 10);
	oai_acc_init(&g->acc);
	g->tm_first = evtimer_new(b->d.base, tm_first_cb, g);
	g->tm_idle = evtimer_new(b->d.base, tm_idle_cb, g);
	g->tm_total = evtimer_new(b->d.base, tm_total_cb, g);
	g->ev_next = event_new(b->d.base, -1, 0, ev_next_cb, g);
	g->next = b->reqs;
	if (b->reqs)
		b->reqs->prev = g;
	b->reqs = g;
	if (!g->attempts || !g->tm_first || !g->tm_idle || !g->tm_total || !g->ev_next) {
		cg_fail(&e, CG_E_INTERNAL, "out of memory");
		g->outcome = "error";
		client_error(g, &e, 500);
		gw_finalize(g);
		return;
	}
	size_t len;
	const uint8_t *body = http_req_body(r, &len);
	if (oai_req_parse((const char *)body, len, &g->q, &e) < 0) {
		g->outcome = "rejected";
		client_error(g, &e, 0);
		gw_finalize(g);
		return;
	}
	snprintf(g->model, sizeof g->model, "%s", g->q.model[0] ? g->q.model : b->default_model);
	if (json_array_size(b->allowlist) && strcmp(g->model, b->default_model) != 0 &&
	    !in_list(b->allowlist, g->model)) {
		cg_fail(&e, CG_E_FORBIDDEN, "model %s is not in this gateway's allowlist", g->model);
		g->outcome = "rejected";
		client_error(g, &e, 403);
		gw_finalize(g);
		return;
	}
	if (!model_known(b, g->model)) {
		cg_fail(&e, CG_E_NOT_FOUND, "model %s is not served by this gateway (see GET /v1/models)", g->model);
		g->outcome = "rejected";
		client_error(g, &e, 404);
		gw_finalize(g);
		return;
	}
	build_targets(g);
	if (b->ml && g->nt == 0)
		mlink_refresh(b->ml); /* maybe the catalog is still empty */
	if (g->nt && b->budget) {
		reserve_amount(g, g->reserve);
		if (bl_reserve(b->d.store, g->id, g->reserve, &e) < 0) {
			g->outcome = "over_budget";
			client_error(g, &e, e.code == CG_E_QUOTA_EXCEEDED ? 429 : 0);
			gw_finalize(g);
			return;
		}
		g->reserved = true;
	}
	http_req_on_close(r, on_client_close, g);
	attempt_next(g);
}

static void on_models(struct http_req *r, void *arg)
{
	struct brain *b = arg;
	cg_err e;
	if (!key_ok(b, r)) {
		cg_fail(&e, CG_E_AUTH_REQUIRED, "missing or wrong gateway key (Authorization: Bearer <key>)");
		reply_plain_error(r, &e, 401);
		return;
	}
	json_t *seen = json_object(), *data = json_array();
	const char *first[BG_MAX_BRAINS * 2 + 1];
	size_t nf = 0;
	first[nf++] = b->default_model;
	for (size_t k = 0; k < b->nbrains; k++)
		if (b->brains[k].enabled && b->brains[k].default_model[0])
			first[nf++] = b->brains[k].default_model;
	for (size_t i = 0; i < nf; i++)
		json_object_set_new(seen, first[i], json_true());
	for (size_t k = 0; k < b->nbrains; k++) {
		size_t i;
		json_t *m;
		if (!b->brains[k].enabled)
			continue;
		json_array_foreach(b->brains[k].allowlist, i, m) json_object_set_new(seen, json_string_value(m), json_true());
	}
	if (b->ml) {
		const struct mlink_res *res;
		size_t n = mlink_resources(b->ml, &res);
		for (size_t i = 0; i < n; i++)
			if (res[i].present)
				for (size_t k = 0; k < b->nbrains; k++)
					if (b->brains[k].enabled && b->brains[k].kind == BK_MARKET &&
					    provider_listed(&b->brains[k], res[i].provider))
						json_object_set_new(seen, res[i].model, json_true());
	}
	const char *id;
	json_t *v;
	json_object_foreach(seen, id, v) {
		if (json_array_size(b->allowlist) && strcmp(id, b->default_model) && !in_list(b->allowlist, id))
			continue;
		json_array_append_new(data, json_pack("{s:s,s:s,s:i,s:s}", "id", id, "object", "model", "created", 0,
						      "owned_by", b->provider_id));
	}
	json_decref(seen);
	http_reply_json(r, 200, json_pack("{s:s,s:o}", "object", "list", "data", data));
}

/* Requests carrying lease credentials belong to the provider's alias of this path. */
static bool accept_gateway(const struct http_req *r, void *arg)
{
	(void)arg;
	if (http_req_header(r, "X-OpenClaw-Lease") || http_req_header(r, "X-Lease-Token"))
		return false;
	const char *a = http_req_header(r, "Authorization");
	if (a && !strncasecmp(a, "Bearer ", 7)) {
		a += 7;
		while (*a == ' ')
			a++;
		if (!strncmp(a, "tok_", 4))
			return false;
	}
	return true;
}

int gw_register(struct brain *b, cg_err *e)
{
	metrics_init(); /* families are looked up by name: also right after a metrics_reset() */
	if (!b->flush_ev && !(b->flush_ev = event_new(b->d.base, -1, 0, flush_cb, b)))
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	if (http_route_when(b->d.http, HTTP_POST, "/v1/chat/completions", 0, OAI_BODY_MAX, accept_gateway, on_chat,
			    b) < 0 ||
	    http_route(b->d.http, HTTP_GET, "/v1/models", 0, 0, on_models, b) < 0)
		return cg_fail(e, CG_E_INTERNAL, "brain: cannot register the gateway routes");
	return 0;
}

void gw_abort_all(struct brain *b)
{
	while (b->reqs) {
		struct gw_req *g = b->reqs;
		cg_err e;
		cg_fail(&e, CG_E_UNAVAILABLE, "the node is stopping");
		e.retry_after_s = 1;
		attempt_stop(g);
		if (g->committed && g->r) {
			json_t *err = oai_error_json(e.msg, "server_error", "stream_interrupted");
			char *s = json_dumps(err, JSON_COMPACT);
			json_decref(err);
			buf f;
			buf_init(&f, (s ? strlen(s) : 0) + 16);
			if (s && oai_sse_data(&f, s, strlen(s)) == 0)
				(void)client_write(g, f.data, f.len);
			buf_done(&f);
			free(s);
			client_end_stream(g);
			g->outcome = "interrupted";
		} else if (g->r) {
			g->outcome = "unavailable";
			client_error(g, &e, 503);
		}
		gw_finalize(g);
	}
}
