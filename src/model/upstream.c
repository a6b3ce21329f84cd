#define CG_MODEL_INTERNAL 1
#include "model/upstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/json.h"
#include "base/log.h"
#include "base/redact.h"

#define MAX_BODY (8u << 20)  /* a non-streamed answer or an error body */
#define MAX_LINE (1u << 20)  /* one SSE line */
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

/* ---- libcurl multi on the libevent loop ---- */

enum xkind { X_HEALTH, X_METRICS, X_CHAT };

struct up_req {
	struct up_engine *u;
	enum xkind kind;
	CURL *h;
	struct curl_slist *hdrs;
	char *body;
	buf resp;  /* non-stream body, error body or probe body */
	buf line;  /* streaming: the current SSE line */
	bool stream, cancelled;
	struct up_cb cb;
	void *arg;
	struct up_req *next; /* engine's list */
};

struct sockev {
	struct event *ev;
};

struct up_engine {
	struct event_base *base;
	char name[65];
	enum up_kind kind;
	char url[2001];
	char *auth; /* "Authorization: Bearer ..." or NULL */
	long max_concurrent, max_waiting;
	int interval_ms;
	CURLM *multi;
	struct event *timer, *poll;
	struct up_req *reqs;
	struct up_health health;
	int probe_status;
	char *probe_body;
	int64_t busy_until_ms; /* Ollama said "busy": do not admit until then */
	bool freeing;
};

static void finish_xfer(struct up_req *r, CURLcode res);

/* Ollama has no queue metric; a recent 503 "server busy" means its queue is full for a moment. */
static bool busy(const struct up_engine *u)
{
	return u->busy_until_ms > clock_mono_ms();
}

static void check_done(struct up_engine *u)
{
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(u->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		struct up_req *r = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		finish_xfer(r, msg->data.result);
	}
}

static void on_sock_event(evutil_socket_t fd, short what, void *arg)
{
	struct up_engine *u = arg;
	int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
	int running;
	curl_multi_socket_action(u->multi, fd, flags, &running);
	check_done(u);
}

static int sock_cb(CURL *h, curl_socket_t s, int what, void *uarg, void *sarg)
{
	struct up_engine *u = uarg;
	struct sockev *se = sarg;
	if (what == CURL_POLL_REMOVE) {
		if (se) {
			event_free(se->ev);
			free(se);
			curl_multi_assign(u->multi, s, NULL);
		}
		return 0;
	}
	short ev = EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
	if (!se) {
		se = calloc(1, sizeof *se);
		if (!se)
			return -1;
		curl_multi_assign(u->multi, s, se);
	} else {
		event_free(se->ev);
	}
	se->ev = event_new(u->base, s, ev, on_sock_event, u);
	event_add(se->ev, NULL);
	return 0;
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct up_engine *u = arg;
	int running;
	curl_multi_socket_action(u->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(u);
}

static int timer_cb(CURLM *m, long ms, void *arg)
{
	struct up_engine *u = arg;
	if (ms < 0) {
		evtimer_del(u->timer);
		return 0;
	}
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	evtimer_add(u->timer, &tv);
	return 0;
}

static void req_free(struct up_req *r)
{
	struct up_engine *u = r->u;
	for (struct up_req **pp = &u->reqs; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	if (r->h) {
		curl_multi_remove_handle(u->multi, r->h);
		curl_easy_cleanup(r->h);
	}
	curl_slist_free_all(r->hdrs);
	free(r->body);
	buf_done(&r->resp);
	buf_done(&r->line);
	free(r);
}

static void sse_line(struct up_req *r, const char *l, size_t n)
{
	if (n && l[n - 1] == '\r')
		n--;
	if (n < 5 || strncmp(l, "data:", 5) != 0)
		return; /* comments, event names, blank separators */
	l += 5;
	n -= 5;
	while (n && *l == ' ') {
		l++;
		n--;
	}
	if (n == 6 && memcmp(l, "[DONE]", 6) == 0)
		return;
	json_t *j = json_loadb(l, n, 0, NULL);
	if (json_is_object(j) && !r->cancelled)
		r->cb.on_chunk(r->arg, j);
	json_decref(j);
}

static size_t on_write(char *p, size_t sz, size_t nm, void *arg)
{
	struct up_req *r = arg;
	size_t n = sz * nm;
	long status = 0;
	curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &status);
	if (r->kind == X_CHAT && r->stream && status >= 200 && status < 300) {
		for (size_t i = 0; i < n; i++) {
			if (p[i] == '\n') {
				sse_line(r, buf_cstr(&r->line), r->line.len);
				buf_reset(&r->line);
			} else if (buf_putc(&r->line, (uint8_t)p[i]) != 0) {
				return 0; /* an SSE line over the cap: abort the transfer */
			}
		}
		return n;
	}
	return buf_append(&r->resp, p, n) == 0 ? n : 0;
}

/* libcurl 7.88 opens its TCP sockets without SOCK_CLOEXEC; a child the node forks must not inherit them. */
static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	(void)arg;
	(void)purpose;
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static struct up_req *xfer_new(struct up_engine *u, enum xkind kind, const char *path, cg_err *e)
{
	struct up_req *r = calloc(1, sizeof *r);
	if (!r || !(r->h = curl_easy_init())) {
		free(r);
		cg_fail(e, CG_E_INTERNAL, "out of memory");
		return NULL;
	}
	r->u = u;
	r->kind = kind;
	buf_init(&r->resp, kind == X_CHAT ? MAX_BODY : MAX_PROBE);
	buf_init(&r->line, MAX_LINE);
	char url[2100];
	snprintf(url, sizeof url, "%s%s", u->url, path);
	curl_easy_setopt(r->h, CURLOPT_URL, url);
	curl_easy_setopt(r->h, CURLOPT_PRIVATE, r);
	curl_easy_setopt(r->h, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(r->h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(r->h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(r->h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	if (kind != X_CHAT)
		curl_easy_setopt(r->h, CURLOPT_TIMEOUT_MS, (long)(u->interval_ms > 3000 ? u->interval_ms : 3000));
	if (u->auth) {
		r->hdrs = curl_slist_append(r->hdrs, u->auth);
		curl_easy_setopt(r->h, CURLOPT_HTTPHEADER, r->hdrs);
	}
	r->next = u->reqs;
	u->reqs = r;
	return r;
}

static int xfer_start(struct up_req *r, cg_err *e)
{
	if (curl_multi_add_handle(r->u->multi, r->h) != CURLM_OK) {
		req_free(r);
		return cg_fail(e, CG_E_INTERNAL, "cannot start the transfer");
	}
	return 0;
}

static void probe(struct up_engine *u, enum xkind kind)
{
	static const char *const health[] = {"/health", "/health", "/api/version"};
	static const char *const metrics[] = {"/metrics", "/metrics", "/api/ps"};
	cg_err e;
	struct up_req *r = xfer_new(u, kind, kind == X_HEALTH ? health[u->kind] : metrics[u->kind], &e);
	if (r)
		xfer_start(r, &e);
}

static void set_health(struct up_engine *u, const struct up_health *h)
{
	if (h->state != u->health.state)
		log_info("model", "engine health", "engine=%s state=%s detail=\"%s\"", u->name, up_state_name(h->state),
			 h->detail);
	u->health = *h;
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

static void finish_xfer(struct up_req *r, CURLcode res)
{
	struct up_engine *u = r->u;
	long st = 0;
	curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &st);
	if (res != CURLE_OK)
		st = 0;
	if (r->kind == X_HEALTH) {
		u->probe_status = (int)st;
		free(u->probe_body);
		u->probe_body = strdup(buf_cstr(&r->resp));
		req_free(r);
		if (st >= 200 && st < 300) {
			probe(u, X_METRICS);
		} else {
			struct up_health h;
			up_health_eval(u->kind, (int)st, u->probe_body, 0, NULL, u->max_concurrent, u->max_waiting, &h);
			set_health(u, &h);
		}
		return;
	}
	if (r->kind == X_METRICS) {
		struct up_health h;
		up_health_eval(u->kind, u->probe_status, u->probe_body, (int)st, buf_cstr(&r->resp), u->max_concurrent,
			       u->max_waiting, &h);
		if (h.state == UP_OK && u->kind == UP_OLLAMA && busy(u))
			h.state = UP_FULL;
		req_free(r);
		set_health(u, &h);
		return;
	}
	/* A chat. */
	struct up_cb cb = r->cb;
	void *arg = r->arg;
	cg_err e = {0};
	json_t *resp = NULL;
	bool failed = true;
	if (res != CURLE_OK) {
		cg_fail(&e, CG_E_UNAVAILABLE, "engine %s: %s", u->name, curl_easy_strerror(res));
		e.retry_after_s = 2;
		struct up_health h = {.state = UP_DOWN, .running = -1, .waiting = -1};
		snprintf(h.detail, sizeof h.detail, "%s", curl_easy_strerror(res));
		set_health(u, &h);
	} else if (st < 200 || st >= 300) {
		json_t *eb = json_loadb(buf_cstr(&r->resp), r->resp.len, 0, NULL);
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
		resp = json_loadb(buf_cstr(&r->resp), r->resp.len, 0, NULL);
		if (!json_is_object(resp))
			cg_fail(&e, CG_E_UNAVAILABLE, "engine %s sent a body that is not a JSON object", u->name);
		else
			failed = false;
	}
	bool cancelled = r->cancelled;
	req_free(r);
	if (!cancelled)
		cb.on_done(arg, failed ? NULL : resp, failed ? &e : NULL);
	json_decref(resp);
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
	struct up_engine *u = arg;
	for (struct up_req *r = u->reqs; r; r = r->next)
		if (r->kind != X_CHAT)
			return; /* the previous probe is still running */
	probe(u, X_HEALTH);
}

int up_engine_new(struct event_base *base, json_t *cfg, struct up_engine **out, cg_err *e)
{
	static bool curl_ready;
	if (!curl_ready) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		curl_ready = true;
	}
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
	u->multi = curl_multi_init();
	u->timer = evtimer_new(base, on_timeout, u);
	u->poll = event_new(base, -1, EV_PERSIST, on_poll, u);
	if (!u->multi || !u->timer || !u->poll) {
		up_engine_free(u);
		return cg_fail(e, CG_E_INTERNAL, "cannot set up the engine client");
	}
	curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u);
	curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u);
	struct timeval tv = {u->interval_ms / 1000, (u->interval_ms % 1000) * 1000};
	event_add(u->poll, &tv);
	probe(u, X_HEALTH); /* know the state as soon as possible */
	*out = u;
	return 0;
}

void up_engine_free(struct up_engine *u)
{
	if (!u)
		return;
	u->freeing = true;
	while (u->reqs)
		req_free(u->reqs);
	if (u->poll)
		event_free(u->poll);
	if (u->multi)
		curl_multi_cleanup(u->multi);
	if (u->timer)
		event_free(u->timer);
	free(u->auth);
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
	struct up_req *r = xfer_new(u, X_CHAT, "/v1/chat/completions", e);
	if (!r)
		return NULL;
	r->stream = stream;
	r->cb = *cb;
	r->arg = arg;
	r->body = json_dumps(request, JSON_COMPACT);
	if (!r->body) {
		req_free(r);
		cg_fail(e, CG_E_INTERNAL, "out of memory");
		return NULL;
	}
	r->hdrs = curl_slist_append(r->hdrs, "Content-Type: application/json");
	if (stream)
		r->hdrs = curl_slist_append(r->hdrs, "Accept: text/event-stream");
	curl_easy_setopt(r->h, CURLOPT_HTTPHEADER, r->hdrs);
	curl_easy_setopt(r->h, CURLOPT_POSTFIELDS, r->body);
	if (xfer_start(r, e) != 0)
		return NULL;
	return r;
}

void up_cancel(struct up_req *r)
{
	r->cancelled = true;
	req_free(r); /* removing the easy handle closes the connection: the engine sees the client go */
}
