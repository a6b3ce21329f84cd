#include "http/client.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include <sodium.h>

#include "base/buf.h"
#include "base/log.h"

#define HEADERS_MAX (32u << 10)

struct hc {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	struct hc_req *reqs; /* doubly linked, for hc_free */
	size_t active;
	bool in_action;      /* inside curl_multi_socket_action: defer frees */
};

struct hc_req {
	struct hc *c;
	struct hc_req *prev, *next;
	CURL *easy;
	struct curl_slist *hdrs;
	char *url;
	char *body;
	size_t body_len;
	buf resp;        /* buffered body */
	buf rhdr;        /* raw response headers of the final response */
	struct hc_cb cb;
	void *arg;
	struct event *fb_timer, *idle_timer, *kill_ev;
	long idle_ms;
	bool stream, got_headers, got_byte, cancelled, aborted, timed_out, finishing;
	cg_err abort_err;
};

struct sock {
	struct event *ev;
	struct hc *c;
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static void global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void check_done(struct hc *c);

/* Every descriptor is close-on-exec (the sandbox forks children): curl opens its sockets through this. */
static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static void on_sock_event(evutil_socket_t fd, short what, void *arg)
{
	struct hc *c = arg;
	int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
	int running;
	c->in_action = true;
	curl_multi_socket_action(c->multi, fd, flags, &running);
	c->in_action = false;
	check_done(c);
}

static int sock_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct hc *c = userp;
	struct sock *sk = socketp;
	if (what == CURL_POLL_REMOVE) {
		if (sk) {
			event_free(sk->ev);
			free(sk);
			curl_multi_assign(c->multi, s, NULL);
		}
		return 0;
	}
	short ev = EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
	if (!sk) {
		sk = calloc(1, sizeof *sk);
		if (!sk)
			return -1;
		sk->c = c;
		curl_multi_assign(c->multi, s, sk);
	} else {
		event_free(sk->ev);
	}
	sk->ev = event_new(c->base, s, ev, on_sock_event, c);
	event_add(sk->ev, NULL);
	return 0;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct hc *c = arg;
	int running;
	c->in_action = true;
	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	c->in_action = false;
	check_done(c);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct hc *c = userp;
	if (timeout_ms < 0) {
		evtimer_del(c->timer);
	} else {
		struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
		evtimer_add(c->timer, &tv);
	}
	return 0;
}

int hc_new(struct event_base *base, struct hc **out, cg_err *e)
{
	pthread_once(&once, global_init);
	struct hc *c = calloc(1, sizeof *c);
	if (!c)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	c->base = base;
	c->multi = curl_multi_init();
	c->timer = evtimer_new(base, on_timer, c);
	if (!c->multi || !c->timer) {
		hc_free(c);
		return cg_fail(e, CG_E_INTERNAL, "cannot create the HTTP client");
	}
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	/* Many concurrent streams to one upstream: keep their connections for reuse. */
	curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, 2048L);
	*out = c;
	return 0;
}

static void req_free(struct hc_req *r)
{
	struct hc *c = r->c;
	if (r->prev)
		r->prev->next = r->next;
	else
		c->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	c->active--;
	if (r->easy) {
		curl_multi_remove_handle(c->multi, r->easy);
		curl_easy_cleanup(r->easy);
	}
	/* Request headers may carry credentials (Authorization) and buffered bodies lease tokens: wipe both. */
	for (struct curl_slist *h = r->hdrs; h; h = h->next)
		sodium_memzero(h->data, strlen(h->data));
	curl_slist_free_all(r->hdrs);
	if (r->fb_timer)
		event_free(r->fb_timer);
	if (r->idle_timer)
		event_free(r->idle_timer);
	if (r->kill_ev)
		event_free(r->kill_ev);
	free(r->url);
	if (r->body) {
		sodium_memzero(r->body, r->body_len);
		free(r->body);
	}
	buf_wipe(&r->resp);
	buf_done(&r->rhdr);
	free(r);
}

void hc_free(struct hc *c)
{
	if (!c)
		return;
	while (c->reqs)
		req_free(c->reqs);
	if (c->multi)
		curl_multi_cleanup(c->multi);
	if (c->timer)
		event_free(c->timer);
	free(c);
}

size_t hc_active(const struct hc *c)
{
	return c->active;
}

static void finish(struct hc_req *r, CURLcode code)
{
	long status = 0;
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
	r->finishing = true; /* hc_cancel from inside on_headers/on_done must not free r under us */
	cg_err e;
	cg_err_clear(&e);
	bool failed = true;
	if (r->aborted)
		e = r->abort_err;
	else if (r->timed_out || code == CURLE_OPERATION_TIMEDOUT)
		cg_fail(&e, CG_E_TIMEOUT, "upstream timed out");
	else if (code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST ||
		 code == CURLE_COULDNT_RESOLVE_PROXY)
		cg_fail(&e, CG_E_UNAVAILABLE, "upstream unreachable");
	else if (code != CURLE_OK)
		/* curl_easy_strerror is generic text (no host, no URL). */
		cg_fail(&e, CG_E_UNAVAILABLE, "upstream connection failed: %s", curl_easy_strerror(code));
	else
		failed = false;
	if (!r->got_headers && r->cb.on_headers && !failed) {
		r->got_headers = true;
		if (r->cb.on_headers(r->arg, status, r) < 0) {
			failed = true;
			cg_fail(&e, CG_E_UNAVAILABLE, "request aborted");
		}
	}
	if (!r->cancelled && r->cb.on_done)
		r->cb.on_done(r->arg, status, (const char *)r->resp.data, r->resp.len, failed ? &e : NULL);
	req_free(r);
}

static void check_done(struct hc *c)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(c->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		struct hc_req *r = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		if (r)
			finish(r, m->data.result);
	}
}

static void abort_req(struct hc_req *r, enum cg_code code, const char *msg)
{
	if (r->aborted)
		return;
	r->aborted = true;
	cg_fail(&r->abort_err, code, "%s", msg);
}

static void on_req_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct hc_req *r = arg;
	struct hc *c = r->c;
	r->timed_out = true;
	abort_req(r, CG_E_TIMEOUT, "upstream timed out");
	/* Not inside a curl callback: finishing now is safe. */
	if (!c->in_action)
		finish(r, CURLE_OPERATION_TIMEDOUT);
}

static void got_byte(struct hc_req *r)
{
	if (!r->got_byte) {
		r->got_byte = true;
		if (r->fb_timer)
			evtimer_del(r->fb_timer);
	}
	if (r->idle_timer) {
		struct timeval tv = {r->idle_ms / 1000, (r->idle_ms % 1000) * 1000};
		evtimer_add(r->idle_timer, &tv);
	}
}

static size_t write_cb(char *p, size_t size, size_t nmemb, void *userp)
{
	struct hc_req *r = userp;
	size_t n = size * nmemb;
	if (r->cancelled || r->aborted)
		return 0; /* makes curl stop with a write error */
	got_byte(r);
	if (!r->got_headers) {
		r->got_headers = true;
		if (r->cb.on_headers) {
			long status = 0;
			curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
			if (r->cb.on_headers(r->arg, status, r) < 0) {
				abort_req(r, CG_E_UNAVAILABLE, "request aborted");
				return 0;
			}
			if (r->cancelled)
				return 0;
		}
	}
	if (r->stream) {
		if (r->cb.on_data && r->cb.on_data(r->arg, p, n) < 0) {
			abort_req(r, CG_E_UNAVAILABLE, "request aborted");
			return 0;
		}
		return r->cancelled ? 0 : n;
	}
	if (buf_append(&r->resp, p, n) < 0) {
		abort_req(r, CG_E_UNAVAILABLE, "upstream response too large");
		return 0;
	}
	return n;
}

static size_t header_cb(char *p, size_t size, size_t nmemb, void *userp)
{
	struct hc_req *r = userp;
	size_t n = size * nmemb;
	got_byte(r);
	/* A new status line starts a new response (after 100 Continue or a 1xx): keep only the last. */
	if (n >= 5 && memcmp(p, "HTTP/", 5) == 0)
		buf_reset(&r->rhdr);
	if (buf_append(&r->rhdr, p, n) < 0)
		return 0;
	return n;
}

long hc_header(struct hc_req *r, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	const char *s = (const char *)r->rhdr.data, *end = s + r->rhdr.len;
	while (s && s < end) {
		const char *eol = memchr(s, '\n', (size_t)(end - s));
		const char *le = eol ? eol : end;
		if ((size_t)(le - s) > nl && strncasecmp(s, name, nl) == 0 && s[nl] == ':') {
			const char *v = s + nl + 1;
			while (v < le && (*v == ' ' || *v == '\t'))
				v++;
			const char *ve = le;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			size_t n = (size_t)(ve - v);
			if (n + 1 > cap)
				return -1;
			memcpy(out, v, n);
			out[n] = 0;
			return (long)n;
		}
		s = eol ? eol + 1 : NULL;
	}
	return -1;
}

struct hc_req *hc_start(struct hc *c, const struct hc_opts *o, const struct hc_cb *cb, void *arg, cg_err *e)
{
	struct hc_req *r = calloc(1, sizeof *r);
	if (!r) {
		cg_fail(e, CG_E_INTERNAL, "out of memory");
		return NULL;
	}
	r->c = c;
	r->cb = *cb;
	r->arg = arg;
	r->stream = o->stream;
	buf_init(&r->resp, o->max_response ? o->max_response : (8u << 20));
	buf_init(&r->rhdr, HEADERS_MAX);
	r->url = strdup(o->url ? o->url : "");
	r->easy = curl_easy_init();
	r->next = c->reqs;
	if (c->reqs)
		c->reqs->prev = r;
	c->reqs = r;
	c->active++;
	if (!r->url || !r->easy)
		goto fail;
	CURL *h = r->easy;
	curl_easy_setopt(h, CURLOPT_URL, r->url);
	curl_easy_setopt(h, CURLOPT_PRIVATE, r);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000L);
	if (o->total_timeout_ms > 0)
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, o->total_timeout_ms);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	/* Identity encoding: the bytes are relayed as they come. */
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, NULL);
	r->hdrs = curl_slist_append(r->hdrs, "Expect:");
	for (size_t i = 0; o->headers && o->headers[i]; i++)
		r->hdrs = curl_slist_append(r->hdrs, o->headers[i]);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, r->hdrs);
	if (o->method && strcmp(o->method, "POST") == 0) {
		r->body = malloc(o->body_len ? o->body_len : 1);
		if (!r->body)
			goto fail;
		if (o->body_len)
			memcpy(r->body, o->body, o->body_len);
		r->body_len = o->body_len;
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
	} else if (o->method && strcmp(o->method, "GET") != 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, o->method);
	}
	if (o->first_byte_timeout_ms > 0) {
		r->fb_timer = evtimer_new(c->base, on_req_timeout, r);
		struct timeval tv = {o->first_byte_timeout_ms / 1000, (o->first_byte_timeout_ms % 1000) * 1000};
		if (!r->fb_timer || evtimer_add(r->fb_timer, &tv) < 0)
			goto fail;
	}
	if (o->idle_timeout_ms > 0) {
		r->idle_ms = o->idle_timeout_ms;
		r->idle_timer = evtimer_new(c->base, on_req_timeout, r);
		if (!r->idle_timer)
			goto fail;
	}
	if (curl_multi_add_handle(c->multi, h) != CURLM_OK)
		goto fail;
	return r;
fail:
	cg_fail(e, CG_E_INTERNAL, "cannot start an HTTP request");
	req_free(r);
	return NULL;
}

static void on_kill(evutil_socket_t fd, short what, void *arg)
{
	req_free(arg);
}

void hc_cancel(struct hc_req *r)
{
	if (!r || r->cancelled)
		return;
	r->cancelled = true;
	if (r->finishing)
		return;
	if (r->c->in_action) {
		/* Inside curl (a write callback): the handle cannot be removed now. Free it from the loop right
		 * after; if curl reports it done first, finish() frees it silently (cancelled). */
		if (r->fb_timer)
			evtimer_del(r->fb_timer);
		if (r->idle_timer)
			evtimer_del(r->idle_timer);
		r->kill_ev = evtimer_new(r->c->base, on_kill, r);
		struct timeval tv = {0, 0};
		if (r->kill_ev)
			evtimer_add(r->kill_ev, &tv);
		return;
	}
	req_free(r);
}
