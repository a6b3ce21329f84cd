#define CG_MODEL_INTERNAL 1
#include "model/upstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/json.h"
#include "base/log.h"
#include "base/redact.h"
#include "http/client.h"
#include "http/sse.h"

#define MAX_BODY (8u << 20)  /* a non-streamed answer or an error body */
#define MAX_EVENT (1u << 20) /* one SSE event */
#define MAX_PROBE (1u << 20) /* a /health or /metrics body */

static const char *const state_names[] = {"unknown", "ok", "loading", "full", "down"};

const char *up_state_name(enum up_state s)
{
	return (unsigned)s < 5 ? state_names[s] : "unknown";
}

int up_kind_parse(const char *s)
{
	if (!s)
		return -1;
	if (strcmp(s, "llama-server") == 0)
		return UP_LLAMA_SERVER;
	if (strcmp(s, "vllm") == 0)
		return UP_VLLM;
	if (strcmp(s, "ollama") == 0)
		return UP_OLLAMA;
	return -1;
}

double up_metric(const char *text, const char *name)
{
	if (!text)
		return -1;
	size_t nl = strlen(name);
	double sum = 0;
	bool found = false;
	for (const char *l = text; l && *l;) {
		const char *eol = strchr(l, '\n');
		size_t len = eol ? (size_t)(eol - l) : strlen(l);
		if (len > nl && l[0] != '#' && strncmp(l, name, nl) == 0 && (l[nl] == ' ' || l[nl] == '{')) {
			const char *v = l + nl;
			if (*v == '{') {
				const char *close = memchr(v, '}', len - nl);
				v = close ? close + 1 : l + len;
			}
			char num[64];
			size_t vl = (size_t)(l + len - v);
			if (vl > 0 && vl < sizeof num) {
				memcpy(num, v, vl);
				num[vl] = 0;
				char *end;
				double d = strtod(num, &end);
				if (end != num) {
					sum += d;
					found = true;
				}
			}
		}
		l = eol ? eol + 1 : NULL;
	}
	return found ? sum : -1;
}

void up_health_eval(enum up_kind kind, int hs, const char *hb, int ms, const char *mb, long max_concurrent,
		    long max_waiting, struct up_health *o)
{
	memset(o, 0, sizeof *o);
	o->running = o->waiting = -1;
	if (hs == 0) {
		o->state = UP_DOWN;
		snprintf(o->detail, sizeof o->detail, "unreachable");
		return;
	}
	if (kind == UP_LLAMA_SERVER && hs == 503) {
		/* llama-server answers 503 while it loads the model; older builds also when no slot is free. */
		if (hb && strstr(hb, "no slot")) {
			o->state = UP_FULL;
			snprintf(o->detail, sizeof o->detail, "no free slot");
		} else {
			o->state = UP_LOADING;
			snprintf(o->detail, sizeof o->detail, "loading the model");
		}
		return;
	}
	if (hs < 200 || hs >= 300) {
		o->state = UP_DOWN;
		snprintf(o->detail, sizeof o->detail, "health endpoint answered HTTP %d", hs);
		return;
	}
	o->state = UP_OK;
	if (ms >= 200 && ms < 300 && mb && kind != UP_OLLAMA) {
		double run = up_metric(mb, kind == UP_VLLM ? "vllm:num_requests_running" : "llamacpp:requests_processing");
		double wait = up_metric(mb, kind == UP_VLLM ? "vllm:num_requests_waiting" : "llamacpp:requests_deferred");
		o->running = run < 0 ? -1 : (long)run;
		o->waiting = wait < 0 ? -1 : (long)wait;
		if (o->waiting > max_waiting ||
		    (max_concurrent > 0 && o->running >= max_concurrent && o->waiting >= max_waiting)) {
			o->state = UP_FULL;
			snprintf(o->detail, sizeof o->detail, "%ld running, %ld waiting", o->running, o->waiting);
			return;
		}
	}
	snprintf(o->detail, sizeof o->detail, "healthy");
}

/* ---- transport: the shared HTTP client (http/client.h) and SSE parser (http/sse.h) ---- */

/* A forwarded chat. Probes need no state of their own: the engine is their callback argument. */
struct up_req {
	struct up_engine *u;
	struct hc_req *hr;   /* NULL once the client has finished with it */
	struct sse_parser sse;
	buf err_body;        /* streaming: the body of a non-2xx answer, for its error message */
	long status;         /* from on_headers */
	bool stream, cancelled;
	int in_cb;           /* inside an hc callback: up_cancel defers the free to its unwinding */
	bool have_fail;      /* we aborted the transfer ourselves: fail says why */
	cg_err fail;
	struct up_cb cb;
	void *arg;
	struct up_req *prev, *next; /* engine's list of chats */
};

struct up_engine {
	struct event_base *base;
	char name[65];
	enum up_kind kind;
	char url[2001];
	char *auth; /* "Authorization: Bearer ..." or NULL */
	long max_concurrent, max_waiting;
	int interval_ms;
	struct hc *hc;
	struct event *poll;
	struct hc_req *probe; /* the health or metrics probe in flight */
	struct up_req *reqs;
	struct up_health health;
	int probe_status;
	char *probe_body;
	int64_t busy_until_ms; /* Ollama said "busy": do not admit until then */
};

/* Ollama has no queue metric; a recent 503 "server busy" means its queue is full for a moment. */
static bool busy(const struct up_engine *u)
{
	return u->busy_until_ms > clock_mono_ms();
}

static void set_health(struct up_engine *u, const struct up_health *h)
{
	if (h->state != u->health.state)
		log_info("model", "engine health", "engine=%s state=%s detail=\"%s\"", u->name, up_state_name(h->state),
			 h->detail);
	u->health = *h;
}

/* Request options every transfer to the engine shares. The URL carries the engine's secret endpoint: it
 * goes to the client only, whose errors never repeat it. */
static void base_opts(const struct up_engine *u, struct hc_opts *o, char *url, size_t cap, const char *path,
		      const char **hdrs)
{
	snprintf(url, cap, "%s%s", u->url, path);
	size_t n = 0;
	if (u->auth)
		hdrs[n++] = u->auth;
	hdrs[n] = NULL;
	memset(o, 0, sizeof *o);
	o->url = url;
	o->headers = hdrs;
	o->connect_timeout_ms = 5000;
}

/* ---- health probes ---- */

static void probe_start(struct up_engine *u, bool metrics);

static void on_health_done(void *arg, long status, const char *body, size_t n, const cg_err *e)
{
	struct up_engine *u = arg;
	u->probe = NULL;
	int st = e ? 0 : (int)status; /* a failed or oversized transfer counts as no answer */
	u->probe_status = st;
	free(u->probe_body);
	u->probe_body = strndup(e || !body ? "" : body, e ? 0 : n);
	if (st >= 200 && st < 300) {
		probe_start(u, true);
		return;
	}
	struct up_health h;
	up_health_eval(u->kind, st, u->probe_body, 0, NULL, u->max_concurrent, u->max_waiting, &h);
	set_health(u, &h);
}

static void on_metrics_done(void *arg, long status, const char *body, size_t n, const cg_err *e)
{
	struct up_engine *u = arg;
	u->probe = NULL;
	int st = e ? 0 : (int)status;
	char *mb = strndup(e || !body ? "" : body, e ? 0 : n);
	struct up_health h;
	up_health_eval(u->kind, u->probe_status, u->probe_body, st, mb, u->max_concurrent, u->max_waiting, &h);
	free(mb);
	if (h.state == UP_OK && u->kind == UP_OLLAMA && busy(u))
		h.state = UP_FULL;
	set_health(u, &h);
}

static void probe_start(struct up_engine *u, bool metrics)
{
	static const char *const health[] = {"/health", "/health", "/api/version"};
	static const char *const metric[] = {"/metrics", "/metrics", "/api/ps"};
	static const struct hc_cb health_cb = {.on_done = on_health_done};
	static const struct hc_cb metrics_cb = {.on_done = on_metrics_done};
	char url[2100];
	const char *hdrs[2];
	struct hc_opts o;
	base_opts(u, &o, url, sizeof url, metrics ? metric[u->kind] : health[u->kind], hdrs);
	o.total_timeout_ms = u->interval_ms > 3000 ? u->interval_ms : 3000;
	o.max_response = MAX_PROBE;
	cg_err e;
	/* A probe that cannot start is retried at the next tick. */
	u->probe = hc_start(u->hc, &o, metrics ? &metrics_cb : &health_cb, u, &e);
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
	struct up_engine *u = arg;
	if (!u->probe) /* else the previous probe is still running */
		probe_start(u, false);
}

/* ---- chats ---- */

static void req_free(struct up_req *r)
{
	struct up_engine *u = r->u;
	if (r->prev)
		r->prev->next = r->next;
	else
		u->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	sse_done(&r->sse);
	buf_done(&r->err_body);
	free(r);
}

static enum cg_code code_for_status(long st)
{
	if (st == 400 || st == 404 || st == 422)
		return CG_E_INVALID_ARGUMENT;
	if (st == 429)
		return CG_E_RATE_LIMITED;
	if (st == 401 || st == 403)
		return CG_E_UNAVAILABLE; /* our key is wrong: not the client's fault */
	return CG_E_UNAVAILABLE;
}

static int on_chat_headers(void *arg, long status, struct hc_req *hr)
{
	struct up_req *r = arg;
	r->status = status;
	return 0;
}

static int on_sse_event(void *arg, const char *event, const char *data, size_t len)
{
	struct up_req *r = arg;
	if (r->cancelled)
		return -1;
	if (len == 6 && memcmp(data, "[DONE]", 6) == 0)
		return 0;
	json_t *j = json_loadb(data, len, 0, NULL);
	if (json_is_object(j))
		r->cb.on_chunk(r->arg, j); /* other events (keep-alives, odd payloads) are skipped */
	json_decref(j);
	return 0;
}

/* Stream mode: a 2xx body is an event stream; any other body is kept for the error message. */
static int on_chat_data(void *arg, const char *p, size_t n)
{
	struct up_req *r = arg;
	if (r->status < 200 || r->status >= 300) {
		if (buf_append(&r->err_body, p, n) == 0)
			return 0;
		r->have_fail = true;
		cg_fail(&r->fail, CG_E_UNAVAILABLE, "engine %s sent an error body over %u bytes", r->u->name, MAX_BODY);
		return -1;
	}
	r->in_cb++;
	cg_err e;
	int rc = sse_feed(&r->sse, p, n, &e);
	r->in_cb--;
	if (r->cancelled) {
		/* up_cancel ran inside on_chunk: the client has dropped its request, ours is ours to free. */
		req_free(r);
		return -1;
	}
	if (rc < 0) {
		r->have_fail = true;
		cg_fail(&r->fail, CG_E_UNAVAILABLE, "engine %s sent a bad event stream: %s", r->u->name, e.msg);
		return -1;
	}
	return 0;
}

static void on_chat_done(void *arg, long st, const char *body, size_t n, const cg_err *he)
{
	struct up_req *r = arg;
	struct up_engine *u = r->u;
	r->hr = NULL; /* the client frees it after this callback */
	struct up_cb cb = r->cb;
	void *cbarg = r->arg;
	if (r->stream) {
		body = buf_cstr(&r->err_body);
		n = r->err_body.len;
		sse_finish(&r->sse); /* an event cut off by the end of the body is dropped, as the spec says */
	}
	cg_err e = {0};
	json_t *resp = NULL;
	bool failed = true;
	if (he) {
		/* No usable answer: the engine is unreachable, the connection broke or the answer was unusable.
		 * Mark it down so the registry stops admitting until the next probe says otherwise. */
		if (r->have_fail)
			e = r->fail;
		else /* the client's message names neither the URL nor the host */
			cg_fail(&e, CG_E_UNAVAILABLE, "engine %s: %s", u->name, he->msg);
		e.retry_after_s = 2;
		struct up_health h = {.state = UP_DOWN, .running = -1, .waiting = -1};
		snprintf(h.detail, sizeof h.detail, "%.150s", r->have_fail ? "bad answer to a chat" : he->msg);
		set_health(u, &h);
	} else if (st < 200 || st >= 300) {
		json_t *eb = json_loadb(body ? body : "", body ? n : 0, 0, NULL);
		json_t *em = json_object_get(eb, "error");
		const char *msg = json_string_value(json_is_object(em) ? json_object_get(em, "message") : em);
		cg_fail(&e, code_for_status(st), "engine %s answered HTTP %ld%s%.200s", u->name, st, msg ? ": " : "",
			msg ? msg : "");
		if (st == 429 || st == 503) {
			e.retry_after_s = 2;
			if (u->kind == UP_OLLAMA) /* "server busy, please try again": its queue is full */
				u->busy_until_ms = clock_mono_ms() + 2000;
		}
		json_decref(eb);
	} else if (r->stream) {
		failed = false;
	} else {
		resp = json_loadb(body ? body : "", body ? n : 0, 0, NULL);
		if (!json_is_object(resp))
			cg_fail(&e, CG_E_UNAVAILABLE, "engine %s sent a body that is not a JSON object", u->name);
		else
			failed = false;
	}
	req_free(r);
	cb.on_done(cbarg, failed ? NULL : resp, failed ? &e : NULL);
	json_decref(resp);
}

int up_engine_new(struct event_base *base, json_t *cfg, struct up_engine **out, cg_err *e)
{
	struct up_engine *u = calloc(1, sizeof *u);
	if (!u)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	u->base = base;
	snprintf(u->name, sizeof u->name, "%s", json_string_value(json_object_get(cfg, "name")));
	u->kind = (enum up_kind)up_kind_parse(json_string_value(json_object_get(cfg, "kind")));
	snprintf(u->url, sizeof u->url, "%s", json_string_value(json_object_get(cfg, "url")));
	size_t ul = strlen(u->url);
	while (ul && u->url[ul - 1] == '/')
		u->url[--ul] = 0;
	redact_register(u->url); /* endpoints never reach logs or errors */
	const char *key = json_string_value(json_object_get(cfg, "apiKey"));
	if (key) {
		redact_register(key);
		size_t n = strlen(key) + 32;
		u->auth = malloc(n);
		if (u->auth)
			snprintf(u->auth, n, "Authorization: Bearer %s", key);
	}
	json_t *v;
	u->max_concurrent = json_is_integer(v = json_object_get(cfg, "maxConcurrent")) ? (long)json_integer_value(v) : 4;
	u->max_waiting = json_is_integer(v = json_object_get(cfg, "maxWaiting")) ? (long)json_integer_value(v) : 0;
	u->interval_ms = json_is_integer(v = json_object_get(cfg, "healthIntervalMs")) ? (int)json_integer_value(v) : 2000;
	u->health.state = UP_UNKNOWN;
	u->health.running = u->health.waiting = -1;
	snprintf(u->health.detail, sizeof u->health.detail, "not probed yet");
	cg_err he;
	if (hc_new(base, &u->hc, &he) != 0 || !(u->poll = event_new(base, -1, EV_PERSIST, on_poll, u))) {
		up_engine_free(u);
		return cg_fail(e, CG_E_INTERNAL, "cannot set up the engine client");
	}
	struct timeval tv = {u->interval_ms / 1000, (u->interval_ms % 1000) * 1000};
	event_add(u->poll, &tv);
	probe_start(u, false); /* know the state as soon as possible */
	*out = u;
	return 0;
}

void up_engine_free(struct up_engine *u)
{
	if (!u)
		return;
	if (u->poll)
		event_free(u->poll);
	hc_free(u->hc); /* cancels every transfer, probes included, without callbacks */
	while (u->reqs)
		req_free(u->reqs);
	if (u->auth) {
		sodium_memzero(u->auth, strlen(u->auth));
		free(u->auth);
	}
	free(u->probe_body);
	free(u);
}

const char *up_engine_name(const struct up_engine *u)
{
	return u->name;
}

int up_engine_admit(struct up_engine *u, cg_err *e)
{
	if (u->health.state == UP_OK && !busy(u))
		return 0;
	enum up_state s = u->health.state == UP_OK ? UP_FULL : u->health.state;
	cg_fail(e, CG_E_UNAVAILABLE, "engine %s is %s (%s)", u->name, up_state_name(s),
		u->health.state == UP_OK ? "its queue is full" : u->health.detail);
	e->retry_after_s = s == UP_LOADING ? 5 : 2;
	return -CG_E_UNAVAILABLE;
}

json_t *up_engine_status(struct up_engine *u)
{
	static const char *const kinds[] = {"llama-server", "vllm", "ollama"};
	json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "name", u->name, "kind", kinds[u->kind], "state",
			      up_state_name(busy(u) && u->health.state == UP_OK ? UP_FULL : u->health.state),
			      "detail", u->health.detail);
	if (u->health.running >= 0)
		json_object_set_new(o, "running", json_integer(u->health.running));
	if (u->health.waiting >= 0)
		json_object_set_new(o, "waiting", json_integer(u->health.waiting));
	return o;
}

struct up_req *up_chat(struct up_engine *u, json_t *request, bool stream, const struct up_cb *cb, void *arg,
		       cg_err *e)
{
	struct up_req *r = calloc(1, sizeof *r);
	char *body = json_dumps(request, JSON_COMPACT);
	if (!r || !body) {
		free(r);
		free(body);
		cg_fail(e, CG_E_INTERNAL, "out of memory");
		return NULL;
	}
	r->u = u;
	r->stream = stream;
	r->cb = *cb;
	r->arg = arg;
	sse_init(&r->sse, MAX_EVENT, on_sse_event, r);
	buf_init(&r->err_body, MAX_BODY);
	r->next = u->reqs;
	if (u->reqs)
		u->reqs->prev = r;
	u->reqs = r;
	char url[2100];
	const char *hdrs[4];
	struct hc_opts o;
	base_opts(u, &o, url, sizeof url, "/v1/chat/completions", hdrs);
	size_t nh = u->auth ? 1 : 0;
	hdrs[nh++] = "Content-Type: application/json";
	if (stream)
		hdrs[nh++] = "Accept: text/event-stream";
	hdrs[nh] = NULL;
	o.method = "POST";
	o.body = body;
	o.body_len = strlen(body);
	o.max_response = MAX_BODY;
	o.stream = stream; /* no total timeout: a long generation is not a failure */
	static const struct hc_cb chat_cb = {on_chat_headers, on_chat_data, on_chat_done};
	cg_err he;
	r->hr = hc_start(u->hc, &o, &chat_cb, r, &he);
	sodium_memzero(body, o.body_len); /* the client keeps its own (wiped) copy; prompts are private */
	free(body);
	if (!r->hr) {
		req_free(r);
		cg_fail(e, CG_E_INTERNAL, "cannot start the transfer");
		return NULL;
	}
	return r;
}

void up_cancel(struct up_req *r)
{
	r->cancelled = true;
	/* Dropping the transfer closes its connection: the engine sees the client go and stops generating. */
	hc_cancel(r->hr);
	r->hr = NULL;
	if (r->in_cb == 0)
		req_free(r);
}
