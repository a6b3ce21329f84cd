/* http/server — routing, limits, auth, replies and streaming on top of libevent's evhttp (2.1).
 *
 * evhttp 2.1 has no hook before a request is fully read, so the server tracks connections itself:
 *  - evhttp_set_bevcb lets us create each connection's bufferevent. An event activated right there runs
 *    after evhttp has built the connection (same loop pass, before any I/O on it) and "adopts" it: the
 *    bufferevent's callback argument is the evhttp_connection, so we can set its close callback and count
 *    it (connection cap).
 *  - an evbuffer callback on the bufferevent's input sees every byte as it arrives; a tiny automaton finds
 *    the blank line that ends a header block, which switches the deadline from header to body timeout.
 *  - the request callback, the request's on_complete callback and the connection's close callback give
 *    the rest of the lifecycle.
 * Ownership of evhttp_request objects (libevent 2.1 http.c): after a reply call libevent frees the request
 * once written; if the client goes away before we replied, libevent detaches the request from the
 * connection and leaves it to us (we free it); if it goes away after we replied, libevent frees it. */
#include "http/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <sodium.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/metrics.h"
#include "crypto/hash.h"
#include "rpc/rpc.h"

#define CONN_BUCKETS 1024
#define MAX_LISTENERS 4
#define MAX_HEADERS_SIZE (64 * 1024)
#define BACKSTOP_TIMEOUT_S 120 /* evhttp's own idle read/write timeout: slow readers of responses */
#define LINE_KEEP 160          /* bytes of a request line remembered for evhttp's own error replies */
#define LINGER_MS 2000         /* reading (and discarding) after an error reply before the socket closes */
#define LINGER_MAX_BYTES (64u << 20)

enum phase { PH_ADOPT, PH_WAIT, PH_HEADERS, PH_BODY, PH_HANDLER };

struct route {
	char *path;
	size_t plen;
	unsigned methods, flags;
	size_t cap;
	http_handler_fn fn;
	void *arg;
	http_accept_fn accept; /* NULL: a plain route; else a guarded one (http_route_when) */
};

struct conn {
	struct http_server *s;
	struct evhttp_connection *evcon;
	struct bufferevent *bev;
	struct evbuffer_cb_entry *incb, *outcb;
	struct event *timer;
	struct event *fix; /* rewrites an error reply of evhttp's own, or closes after one (see conn_fix_cb) */
	enum phase phase;
	int nl; /* header-end automaton: consecutive line ends seen */
	/* The current request line, for evhttp's own error replies (which route, which method). */
	char line[LINE_KEEP];
	unsigned line_len;
	bool line_done;
	bool fix_pending; /* evhttp wrote output without a request of ours: look at it before it is sent */
	bool fix_spoiled; /* part of it was sent already: leave it alone */
	bool rewriting;   /* our own change of the output buffer is in progress */
	bool closing;     /* an error reply was rewritten: close once it is written, then linger */
	size_t err_off;   /* where evhttp's reply starts in the output buffer */
	struct http_req *req;
	struct conn *hnext;         /* hash chain by evcon */
	struct conn *prev, *next;   /* all adopted connections */
	struct conn *pnext;         /* not yet adopted */
};

struct http_req {
	struct http_server *s;
	struct evhttp_request *ev; /* NULL once the client is gone and libevent's object is released */
	struct conn *c;
	const struct route *route;
	const char *label;
	char *path;
	struct evkeyvalq query;
	bool query_parsed;
	unsigned mbit;
	int status;
	bool finished, gone, admin, streaming;
	int64_t t0_us;
	http_close_fn on_close;
	void *close_arg;
	char peer[64];
	struct http_req *rprev, *rnext; /* the server's unfinished requests */
};

struct http_server {
	struct event_base *base;
	struct evhttp *http;
	struct http_server_opts o;
	struct route *routes;
	size_t nroutes, aroutes;
	struct evhttp_bound_socket *bound[MAX_LISTENERS];
	int nbound;
	struct conn *bucket[CONN_BUCKETS];
	struct conn *conns;   /* adopted, doubly linked */
	struct conn *pending; /* created in bevcb, adoption event not yet run */
	struct http_req *reqs; /* unfinished requests */
	struct slow_close *lingers; /* sockets read to EOF after an error reply (see linger_start) */
	int nconns, inflight, nlingers;
	uint8_t admin_hash[32];
	bool have_admin;
	bool draining, freeing;
	struct event *drain_timer;
	http_drained_fn drained;
	void *drained_arg;
	struct metric *m_req, *m_dur, *m_rej, *m_timeout;
};

static const struct {
	unsigned bit;
	enum evhttp_cmd_type cmd;
	const char *name;
} methods[] = {
	{HTTP_GET, EVHTTP_REQ_GET, "GET"},       {HTTP_POST, EVHTTP_REQ_POST, "POST"},
	{HTTP_PUT, EVHTTP_REQ_PUT, "PUT"},       {HTTP_DELETE, EVHTTP_REQ_DELETE, "DELETE"},
	{HTTP_HEAD, EVHTTP_REQ_HEAD, "HEAD"},    {HTTP_OPTIONS, EVHTTP_REQ_OPTIONS, "OPTIONS"},
	{HTTP_PATCH, EVHTTP_REQ_PATCH, "PATCH"},
};

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg);
static void req_release(struct http_req *r);

/* ---------------------------------------------------------------- connection tracking */

static size_t conn_hash(const void *evcon)
{
	return ((uintptr_t)evcon >> 4) % CONN_BUCKETS;
}

static struct conn *conn_find(struct http_server *s, struct evhttp_connection *evcon)
{
	for (struct conn *c = s->bucket[conn_hash(evcon)]; c; c = c->hnext)
		if (c->evcon == evcon)
			return c;
	return NULL;
}

static void conn_unlink(struct conn *c)
{
	struct http_server *s = c->s;
	struct conn **pp = &s->bucket[conn_hash(c->evcon)];
	while (*pp && *pp != c)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = c->hnext;
	if (c->prev)
		c->prev->next = c->next;
	else if (s->conns == c)
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
}

static void conn_arm(struct conn *c, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	evtimer_add(c->timer, &tv);
}

static void check_drained(struct http_server *s);

/* ---------------------------------------------------------------- lingering close
 * After an error reply to a request whose body was not read (too big, malformed), closing the socket at
 * once would make the kernel answer the client's unread bytes with a reset, which can destroy the reply
 * before the client reads it. So the socket is kept: evhttp has already sent FIN (shutdown SHUT_WR) when it
 * freed the connection; we read and discard whatever still arrives until EOF, LINGER_MS or
 * LINGER_MAX_BYTES, then close. The bufferevent survives evhttp's bufferevent_free() because we hold a
 * reference to it (bufferevent_free only drops evhttp's). */
struct slow_close {
	struct http_server *s;
	struct bufferevent *bev;
	struct event *ev;
	bool started;
	size_t drained;
	struct slow_close *prev, *next;
};

static void linger_end(struct slow_close *l)
{
	struct http_server *s = l->s;
	if (l->prev)
		l->prev->next = l->next;
	else
		s->lingers = l->next;
	if (l->next)
		l->next->prev = l->prev;
	s->nlingers--;
	bufferevent_setcb(l->bev, NULL, NULL, NULL, NULL);
	bufferevent_disable(l->bev, EV_READ | EV_WRITE);
	event_free(l->ev);
	bufferevent_decref(l->bev); /* the last reference: closes the socket */
	free(l);
}

static void linger_read(struct bufferevent *bev, void *arg)
{
	struct slow_close *l = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	l->drained += evbuffer_get_length(in);
	evbuffer_drain(in, evbuffer_get_length(in));
	if (l->drained > LINGER_MAX_BYTES)
		linger_end(l);
}

static void linger_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what; /* EOF, error or timeout: the client is done either way */
	linger_end(arg);
}

static void linger_timer(evutil_socket_t fd, short what, void *arg)
{
	struct slow_close *l = arg;
	(void)fd;
	(void)what;
	if (l->started) {
		linger_end(l);
		return;
	}
	/* First run: evhttp_connection_free() has returned, its callbacks are gone from the bufferevent. */
	l->started = true;
	evbuffer_drain(bufferevent_get_output(l->bev), evbuffer_get_length(bufferevent_get_output(l->bev)));
	bufferevent_setcb(l->bev, linger_read, NULL, linger_event, l);
	bufferevent_set_timeouts(l->bev, NULL, NULL);
	bufferevent_enable(l->bev, EV_READ);
	bufferevent_disable(l->bev, EV_WRITE);
	int ms = l->s->o.body_timeout_ms < LINGER_MS ? l->s->o.body_timeout_ms : LINGER_MS;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	evtimer_add(l->ev, &tv);
}

/* Called from conn_close_cb, inside evhttp_connection_free(): takes a reference now, starts reading once the
 * free has finished. Without room (more lingering sockets than connections allowed) it just closes. */
static void linger_start(struct http_server *s, struct bufferevent *bev)
{
	if (s->nlingers >= s->o.max_connections)
		return;
	struct slow_close *l = calloc(1, sizeof *l);
	if (!l)
		return;
	l->s = s;
	l->bev = bev;
	l->ev = evtimer_new(s->base, linger_timer, l);
	if (!l->ev) {
		free(l);
		return;
	}
	bufferevent_incref(bev);
	l->next = s->lingers;
	if (s->lingers)
		s->lingers->prev = l;
	s->lingers = l;
	s->nlingers++;
	event_active(l->ev, EV_TIMEOUT, 1);
}

/* ---------------------------------------------------------------- evhttp's own error replies
 * evhttp answers some requests itself, before any callback of ours runs: a malformed request line or header
 * (400), a body or header block over the transport limit (413), an Expect it does not know (417), a method
 * it does not parse (501). Its reply is an HTML page. Every byte of it goes through the connection's output
 * buffer, whose callback sees it arrive while no request of ours is active (c->req == NULL: our own replies
 * are written while c->req is set). The rewrite runs from an event activated right then: evhttp finishes
 * writing the whole reply within the same callback, and the socket write needs another pass of the loop, so
 * the reply is complete and still unsent when we look. It keeps the status line and replaces headers and
 * body with the JSON error every other route sends (a JSON-RPC envelope on JSON-RPC routes). */

static const struct route *route_for_path(struct http_server *s, const char *path, size_t n);

static void request_line_path(const struct conn *c, const char **path, size_t *plen, bool *head)
{
	const char *sp = memchr(c->line, ' ', c->line_len);
	*head = c->line_len > 5 && memcmp(c->line, "HEAD ", 5) == 0;
	*path = NULL;
	*plen = 0;
	if (!sp)
		return;
	const char *p = sp + 1, *end = c->line + c->line_len;
	size_t n = 0;
	while (p + n < end && p[n] != ' ' && p[n] != '?' && p[n] != '#')
		n++;
	*path = p;
	*plen = n;
}

static void error_for_status(struct http_server *s, int status, cg_err *e)
{
	switch (status) {
	case 413:
		cg_fail_http(e, CG_E_QUOTA_EXCEEDED, 413, "request body or header block over the limit (%zu bytes)",
			     s->o.max_body);
		break;
	case 417:
		cg_fail_http(e, CG_E_INVALID_ARGUMENT, 417, "unsupported Expect header (only 100-continue is known)");
		break;
	case 501:
		cg_fail_http(e, CG_E_INVALID_ARGUMENT, 501, "HTTP method not supported");
		break;
	case 503:
		cg_fail_http(e, CG_E_UNAVAILABLE, 503, "the server cannot take the request now");
		e->retry_after_s = 1;
		break;
	default:
		if (status >= 500)
			cg_fail_http(e, CG_E_INTERNAL, status, "the request could not be handled");
		else
			cg_fail_http(e, CG_E_INVALID_ARGUMENT, status,
				     "malformed HTTP request (request line, headers, Content-Length or chunked body)");
	}
}

/* Replaces the reply that starts at c->err_off in the output buffer. Returns false when there is nothing to
 * rewrite (an interim 100 Continue, or not a complete error reply). */
static bool rewrite_error(struct conn *c, struct evbuffer *out)
{
	struct http_server *s = c->s;
	size_t len = evbuffer_get_length(out);
	if (c->err_off >= len)
		return false;
	/* evhttp's error pages are tiny; anything bigger is not one. A reply to an earlier pipelined request
	 * may still wait in front of it (err_off bytes): give up when that one is big (rare: the error reply
	 * then stays evhttp's HTML page). */
	if (len - c->err_off > 4096 || len > 65536)
		return false;
	char *all = malloc(len + 1);
	if (!all)
		return false;
	/* A socket bufferevent keeps the start of its output frozen (only its own writer removes bytes) once it
	 * has written anything; reading and replacing the front needs it thawed for a moment. Freezing it
	 * again afterwards is the state the writer leaves it in anyway. */
	evbuffer_unfreeze(out, 1);
	if (evbuffer_copyout(out, all, len) != (ev_ssize_t)len) {
		evbuffer_freeze(out, 1);
		free(all);
		return false;
	}
	all[len] = 0;
	char *copy = all + c->err_off;
	/* An interim 100 Continue may come first (the error followed the client's Expect). */
	const char *p = copy;
	int major, minor, status;
	while (sscanf(p, "HTTP/%d.%d %d", &major, &minor, &status) == 3 && status >= 100 && status < 200) {
		const char *end = strstr(p, "\r\n\r\n");
		if (!end) {
			evbuffer_freeze(out, 1);
			free(all);
			return false;
		}
		p = end + 4;
	}
	const char *line_end = strstr(p, "\r\n");
	if (!*p || sscanf(p, "HTTP/%d.%d %d", &major, &minor, &status) != 3 || status < 400 || !line_end ||
	    !strstr(p, "\r\n\r\n")) {
		evbuffer_freeze(out, 1);
		free(all);
		return false;
	}
	const char *path;
	size_t plen;
	bool head;
	request_line_path(c, &path, &plen, &head);
	const struct route *rt = path ? route_for_path(s, path, plen) : NULL;
	cg_err e;
	cg_err_clear(&e);
	error_for_status(s, status, &e);
	json_t *v;
	if (rt && (rt->flags & HTTP_RPC_ERRORS)) {
		v = json_pack("{s:s,s:n,s:o}", "jsonrpc", "2.0", "id", "error", rpc_error_json(&e));
	} else {
		char msg[400];
		snprintf(msg, sizeof msg, "%s: %s", cg_code_name(e.code), e.msg);
		v = json_pack("{s:b,s:{s:s,s:s}}", "ok", 0, "error", "code", cg_code_name(e.code), "message", msg);
	}
	char *body = v ? json_dumps(v, JSON_COMPACT) : NULL;
	json_decref(v);
	struct evbuffer *front = evbuffer_new();
	if (!body || !front) {
		evbuffer_freeze(out, 1);
		free(body);
		free(all);
		if (front)
			evbuffer_free(front);
		return false;
	}
	/* Keep what precedes the error (earlier replies not yet sent, an interim 100) in place. */
	size_t keep = c->err_off + (size_t)(p - copy);
	c->rewriting = true;
	evbuffer_remove_buffer(out, front, keep);
	evbuffer_drain(out, evbuffer_get_length(out));
	evbuffer_add(out, p, (size_t)(line_end + 2 - p)); /* the status line as evhttp wrote it */
	evbuffer_add_printf(out,
			    "Content-Type: application/json\r\nCache-Control: no-store\r\n"
			    "X-Content-Type-Options: nosniff\r\n%sContent-Length: %zu\r\nConnection: close\r\n\r\n",
			    e.retry_after_s > 0 ? "Retry-After: 1\r\n" : "", strlen(body));
	if (!head)
		evbuffer_add(out, body, strlen(body));
	evbuffer_prepend_buffer(out, front);
	evbuffer_freeze(out, 1);
	c->rewriting = false;
	evbuffer_free(front);
	char st[8];
	snprintf(st, sizeof st, "%d", status);
	metrics_add(s->m_req, 1, rt ? rt->path : "unmatched", st);
	log_debug("http", "transport error", "status=%d route=%s", status, rt ? rt->path : "unmatched");
	free(body);
	free(all);
	return true;
}

static void conn_fix_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	(void)fd;
	(void)what;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	if (c->closing) {
		/* The rewritten reply is out: close even where evhttp would keep the connection (a 501 to a
		 * CONNECT). Runs conn_close_cb, which frees c and starts the lingering close. */
		if (evbuffer_get_length(out) == 0)
			evhttp_connection_free(c->evcon);
		return;
	}
	if (!c->fix_pending)
		return;
	c->fix_pending = false;
	if (!c->fix_spoiled && rewrite_error(c, out))
		c->closing = true;
	c->fix_spoiled = false;
}

static void conn_output_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct conn *c = arg;
	if (c->rewriting)
		return;
	if (info->n_deleted && c->fix_pending) {
		/* Bytes went to the socket before we looked (not expected, see above): if they were evhttp's
		 * reply, it is too late to change it. */
		if (info->n_deleted > c->err_off)
			c->fix_spoiled = true;
		else
			c->err_off -= info->n_deleted;
	}
	if (info->n_added && !c->req && !c->fix_pending && !c->closing) {
		c->fix_pending = true;
		c->fix_spoiled = false;
		c->err_off = info->orig_size;
		event_active(c->fix, EV_TIMEOUT, 1);
	}
	if (c->closing && info->n_deleted && evbuffer_get_length(buf) == 0)
		event_active(c->fix, EV_TIMEOUT, 1);
}

/* evhttp is about to free the connection (client gone, timeout, Connection: close, server free). */
static void conn_close_cb(struct evhttp_connection *evcon, void *arg)
{
	struct conn *c = arg;
	struct http_server *s = c->s;
	(void)evcon;
	conn_unlink(c);
	if (c->incb)
		evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->incb);
	if (c->outcb)
		evbuffer_remove_cb_entry(bufferevent_get_output(c->bev), c->outcb);
	event_free(c->timer);
	if (c->fix)
		event_free(c->fix);
	if (c->closing && !s->freeing)
		linger_start(s, c->bev);
	struct http_req *r = c->req;
	free(c);
	if (r) {
		r->c = NULL;
		if (r->ev) {
			/* Detached by libevent (client left before our reply): ours to free. Otherwise libevent frees
			 * it together with the connection. */
			if (!r->finished && evhttp_request_get_connection(r->ev) == NULL)
				evhttp_request_free(r->ev);
			r->ev = NULL;
		}
		if (r->finished) {
			req_release(r);
		} else {
			r->gone = true;
			if (r->on_close) {
				http_close_fn cb = r->on_close;
				r->on_close = NULL;
				cb(r, r->close_arg); /* may finish (and free) r */
			}
		}
	}
	check_drained(s);
}

/* Watches input bytes for the end of the header block (a line end, optional CR, line end). */
static void conn_input_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct conn *c = arg;
	if (info->n_added == 0 || (c->phase != PH_WAIT && c->phase != PH_HEADERS))
		return;
	if (c->phase == PH_WAIT) {
		c->phase = PH_HEADERS;
		c->nl = 0;
		c->line_len = 0;
		c->line_done = false;
		conn_arm(c, c->s->o.header_timeout_ms);
	}
	size_t len = evbuffer_get_length(buf);
	size_t off = info->n_added < len ? len - info->n_added : 0;
	struct evbuffer_ptr pos;
	if (evbuffer_ptr_set(buf, &pos, off, EVBUFFER_PTR_SET) < 0)
		return;
	while (off < len) {
		struct evbuffer_iovec v[4];
		int nv = evbuffer_peek(buf, (ev_ssize_t)(len - off), &pos, v, 4);
		if (nv <= 0)
			return;
		for (int i = 0; i < nv && i < 4; i++) {
			const unsigned char *p = v[i].iov_base;
			size_t n = v[i].iov_len;
			if (n > len - off)
				n = len - off;
			for (size_t k = 0; k < n; k++) {
				if (!c->line_done) {
					/* Leading empty lines are allowed before a request line (RFC 9112 §2.2). */
					if (p[k] == '\n' || p[k] == '\r')
						c->line_done = c->line_len > 0;
					else if (c->line_len < sizeof c->line)
						c->line[c->line_len++] = (char)p[k];
				}
				if (p[k] == '\n') {
					/* The first line end of a request may follow an empty line (RFC 9112 §2.2). */
					if (++c->nl == 2) {
						c->phase = PH_BODY;
						conn_arm(c, c->s->o.body_timeout_ms);
						return;
					}
				} else if (p[k] != '\r') {
					c->nl = 0;
				}
			}
			off += n;
			if (evbuffer_ptr_set(buf, &pos, n, EVBUFFER_PTR_ADD) < 0)
				return;
		}
	}
}

static void conn_adopt(struct conn *c)
{
	struct http_server *s = c->s;
	/* unlink from pending */
	struct conn **pp = &s->pending;
	while (*pp && *pp != c)
		pp = &(*pp)->pnext;
	if (*pp)
		*pp = c->pnext;

	bufferevent_data_cb rcb = NULL;
	bufferevent_event_cb ecb = NULL;
	void *cbarg = NULL;
	bufferevent_getcb(c->bev, &rcb, NULL, &ecb, &cbarg);
	struct evhttp_connection *evcon = cbarg;
	bool alive = rcb != NULL && evcon && evhttp_connection_get_bufferevent(evcon) == c->bev;
	struct bufferevent *bev = c->bev;
	if (!alive) {
		/* evhttp gave up on the connection before we saw it (allocation failure). */
		event_free(c->timer);
		free(c);
		bufferevent_decref(bev);
		return;
	}
	if (s->nconns >= s->o.max_connections || s->draining) {
		metrics_add(s->m_rej, 1);
		log_debug("http", "connection refused", "reason=%s", s->draining ? "draining" : "connection cap");
		event_free(c->timer);
		free(c);
		bufferevent_decref(bev);
		evhttp_connection_free(evcon);
		return;
	}
	c->evcon = evcon;
	size_t h = conn_hash(evcon);
	c->hnext = s->bucket[h];
	s->bucket[h] = c;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
	c->fix = event_new(s->base, -1, 0, conn_fix_cb, c);
	evhttp_connection_set_closecb(evcon, conn_close_cb, c);
	c->incb = evbuffer_add_cb(bufferevent_get_input(bev), conn_input_cb, c);
	if (c->fix)
		c->outcb = evbuffer_add_cb(bufferevent_get_output(bev), conn_output_cb, c);
	c->phase = PH_WAIT;
	conn_arm(c, s->o.header_timeout_ms);
	bufferevent_decref(bev);
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	(void)fd;
	(void)what;
	if (c->phase == PH_ADOPT) {
		conn_adopt(c);
		return;
	}
	if (c->phase == PH_HANDLER)
		return;
	const char *phase = c->phase == PH_BODY ? "body" : c->phase == PH_HEADERS ? "headers" : "idle";
	if (c->phase != PH_WAIT) {
		metrics_add(c->s->m_timeout, 1, phase);
		log_info("http", "slow client closed", "phase=%s", phase);
	}
	evhttp_connection_free(c->evcon); /* runs conn_close_cb, which frees c */
}

static struct bufferevent *bev_cb(struct event_base *base, void *arg)
{
	struct http_server *s = arg;
	struct conn *c = calloc(1, sizeof *c);
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!c || !bev) {
		free(c);
		return bev; /* evhttp still works, untracked */
	}
	c->s = s;
	c->bev = bev;
	c->phase = PH_ADOPT;
	c->timer = evtimer_new(base, conn_timer_cb, c);
	if (!c->timer) {
		free(c);
		return bev;
	}
	/* Keep the bufferevent alive until adoption even if evhttp drops the connection at once. */
	bufferevent_incref(bev);
	c->pnext = s->pending;
	s->pending = c;
	event_active(c->timer, EV_TIMEOUT, 1);
	return bev;
}

/* ---------------------------------------------------------------- server */

static double gauge_conns(void *arg)
{
	return ((struct http_server *)arg)->nconns;
}

static double gauge_inflight(void *arg)
{
	return ((struct http_server *)arg)->inflight;
}

static void gen_cb(struct evhttp_request *ev, void *arg);

struct http_server *http_server_new(struct event_base *base, const struct http_server_opts *opts)
{
	struct http_server *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->base = base;
	if (opts)
		s->o = *opts;
	if (s->o.max_connections <= 0)
		s->o.max_connections = 512;
	if (s->o.header_timeout_ms <= 0)
		s->o.header_timeout_ms = 10000;
	if (s->o.body_timeout_ms <= 0)
		s->o.body_timeout_ms = 30000;
	if (s->o.max_body == 0)
		s->o.max_body = 8u << 20;
	if (s->o.stream_buf_max == 0)
		s->o.stream_buf_max = 4u << 20;
	s->http = evhttp_new(base);
	if (!s->http) {
		free(s);
		return NULL;
	}
	evhttp_set_bevcb(s->http, bev_cb, s);
	evhttp_set_gencb(s->http, gen_cb, s);
	evhttp_set_max_body_size(s->http, (ev_ssize_t)s->o.max_body);
	evhttp_set_max_headers_size(s->http, MAX_HEADERS_SIZE);
	evhttp_set_timeout(s->http, BACKSTOP_TIMEOUT_S);
	evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
						    EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	/* No EVHTTP_SERVER_LINGERING_CLOSE: with it evhttp reads a too-big body to its announced end before it
	 * answers (a client announcing gigabytes waits for the body timeout and gets no 413). It answers at
	 * once instead; the lingering close after that reply is ours (linger_start). */
	evhttp_set_default_content_type(s->http, "application/json");
	s->m_req = metrics_counter("clawgrid_http_requests_total", "HTTP requests by route and status.",
				   "route,status");
	s->m_dur = metrics_histogram("clawgrid_http_request_duration_seconds",
				     "HTTP request duration from full request to response sent, by route.", "route",
				     NULL, 0);
	s->m_rej = metrics_counter("clawgrid_http_connections_rejected_total",
				   "Connections closed at once because the connection cap was reached.", NULL);
	s->m_timeout = metrics_counter("clawgrid_http_slow_client_timeouts_total",
				       "Connections closed because headers or body did not arrive in time.", "phase");
	metrics_gauge_fn("clawgrid_http_open_connections", "Open HTTP connections.", gauge_conns, s);
	metrics_gauge_fn("clawgrid_http_inflight_requests", "HTTP requests received and not yet answered.",
			 gauge_inflight, s);
	return s;
}

void http_server_free(struct http_server *s)
{
	if (!s)
		return;
	metrics_gauge_fn_remove(s);
	if (s->drain_timer)
		event_free(s->drain_timer);
	s->drained = NULL;
	s->freeing = true;
	while (s->lingers)
		linger_end(s->lingers);
	/* evhttp_free closes every connection; conn_close_cb tells in-flight handlers. Requests that their
	 * handlers still hold outlive the server: they are detached and freed when the handler finishes them. */
	evhttp_free(s->http);
	for (struct http_req *r = s->reqs; r; r = r->rnext)
		r->s = NULL;
	while (s->pending) {
		struct conn *c = s->pending;
		s->pending = c->pnext;
		event_free(c->timer);
		bufferevent_decref(c->bev);
		free(c);
	}
	for (size_t i = 0; i < s->nroutes; i++)
		free(s->routes[i].path);
	free(s->routes);
	sodium_memzero(s->admin_hash, sizeof s->admin_hash);
	free(s);
}

void http_server_set_admin_token(struct http_server *s, const char *token)
{
	if (!token || !*token) {
		s->have_admin = false;
		return;
	}
	sha256(s->admin_hash, token, strlen(token));
	s->have_admin = true;
}

int http_parse_hostport(const char *hp, char *host, size_t hcap, int *port)
{
	if (!hp || !*hp)
		return -1;
	const char *colon;
	size_t hl;
	const char *h = hp;
	if (hp[0] == '[') {
		const char *end = strchr(hp, ']');
		if (!end || end[1] != ':')
			return -1;
		h = hp + 1;
		hl = (size_t)(end - h);
		colon = end + 1;
	} else {
		colon = strrchr(hp, ':');
		if (!colon || memchr(hp, ':', (size_t)(colon - hp)))
			return -1;
		hl = (size_t)(colon - hp);
	}
	if (hl == 0 || hl >= hcap)
		return -1;
	const char *p = colon + 1;
	if (!*p || strlen(p) > 5)
		return -1;
	long v = 0;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (*p - '0');
	}
	if (v > 65535)
		return -1;
	memcpy(host, h, hl);
	host[hl] = 0;
	if (strcmp(host, "localhost") == 0)
		snprintf(host, hcap, "127.0.0.1");
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, host, &a4) != 1 && inet_pton(AF_INET6, host, &a6) != 1)
		return -1;
	*port = (int)v;
	return 0;
}

int http_server_listen(struct http_server *s, const char *hostport, char *out, size_t cap, cg_err *e)
{
	char host[64];
	int port;
	if (http_parse_hostport(hostport, host, sizeof host, &port) < 0)
		return cg_fail(e, CG_E_INVALID_ARGUMENT,
			       "api.listen: must be HOST:PORT with a numeric IPv4, [IPv6] or localhost host");
	if (s->nbound == MAX_LISTENERS)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "api.listen: too many listeners");
	struct sockaddr_storage ss;
	socklen_t sl;
	memset(&ss, 0, sizeof ss);
	if (strchr(host, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		inet_pton(AF_INET6, host, &a->sin6_addr);
		sl = sizeof *a;
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, host, &a->sin_addr);
		sl = sizeof *a;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return cg_fail(e, CG_E_UNAVAILABLE, "api.listen: socket: %s", strerror(errno));
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 512) < 0) {
		int err = errno;
		close(fd);
		return cg_fail(e, CG_E_UNAVAILABLE, "api.listen: cannot listen on %s: %s", hostport, strerror(err));
	}
	struct evhttp_bound_socket *b = evhttp_accept_socket_with_handle(s->http, fd);
	if (!b) {
		close(fd);
		return cg_fail(e, CG_E_INTERNAL, "api.listen: cannot accept on the socket");
	}
	s->bound[s->nbound++] = b;
	sl = sizeof ss;
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	char ip[INET6_ADDRSTRLEN];
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
		snprintf(out, cap, "[%s]:%u", ip, ntohs(a->sin6_port));
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
		snprintf(out, cap, "%s:%u", ip, ntohs(a->sin_port));
	}
	return 0;
}

static int route_add(struct http_server *s, unsigned methods_mask, const char *path, unsigned flags,
		     size_t body_cap, http_accept_fn accept, http_handler_fn fn, void *arg);

int http_route(struct http_server *s, unsigned methods_mask, const char *path, unsigned flags, size_t body_cap,
	       http_handler_fn fn, void *arg)
{
	return route_add(s, methods_mask, path, flags, body_cap, NULL, fn, arg);
}

int http_route_when(struct http_server *s, unsigned methods_mask, const char *path, unsigned flags, size_t body_cap,
		    http_accept_fn accept, http_handler_fn fn, void *arg)
{
	if (!accept || (flags & HTTP_PREFIX))
		return -1; /* guards are for exact paths only */
	return route_add(s, methods_mask, path, flags, body_cap, accept, fn, arg);
}

static int route_add(struct http_server *s, unsigned methods_mask, const char *path, unsigned flags,
		     size_t body_cap, http_accept_fn accept, http_handler_fn fn, void *arg)
{
	bool prefix = flags & HTTP_PREFIX;
	for (size_t i = 0; i < s->nroutes; i++) {
		if (strcmp(s->routes[i].path, path) == 0 && (bool)(s->routes[i].flags & HTTP_PREFIX) == prefix &&
		    (s->routes[i].methods & methods_mask) && !accept && !s->routes[i].accept) {
			log_error("http", "route registered twice", "path=%s", path);
			return -1;
		}
	}
	if (s->nroutes == s->aroutes) {
		size_t na = s->aroutes ? s->aroutes * 2 : 16;
		struct route *nr = realloc(s->routes, na * sizeof *nr);
		if (!nr)
			return -1;
		s->routes = nr;
		s->aroutes = na;
	}
	struct route *r = &s->routes[s->nroutes];
	if (!(r->path = strdup(path)))
		return -1;
	r->plen = strlen(path);
	r->methods = methods_mask;
	r->flags = flags;
	r->cap = body_cap > s->o.max_body ? s->o.max_body : body_cap;
	r->fn = fn;
	r->arg = arg;
	r->accept = accept;
	s->nroutes++;
	return 0;
}

/* ---------------------------------------------------------------- drain */

static void drain_fire(evutil_socket_t fd, short what, void *arg)
{
	struct http_server *s = arg;
	(void)fd;
	(void)what;
	http_drained_fn cb = s->drained;
	s->drained = NULL;
	if (cb) {
		if (s->inflight > 0)
			log_warn("http", "drain timed out", "inflight=%d", s->inflight);
		cb(s->drained_arg);
	}
}

static void check_drained(struct http_server *s)
{
	if (s->draining && s->drained && s->inflight == 0 && s->drain_timer)
		event_active(s->drain_timer, EV_TIMEOUT, 1); /* not from inside a reply path */
}

void http_server_drain(struct http_server *s, int timeout_ms, http_drained_fn done, void *arg)
{
	s->draining = true;
	s->drained = done;
	s->drained_arg = arg;
	for (int i = 0; i < s->nbound; i++)
		evhttp_del_accept_socket(s->http, s->bound[i]);
	s->nbound = 0;
	/* Idle keep-alive connections have nothing in flight: close them now. */
	struct conn *c = s->conns;
	while (c) {
		struct conn *next = c->next;
		if (c->phase == PH_WAIT && !c->req)
			evhttp_connection_free(c->evcon);
		c = next;
	}
	if (!s->drain_timer)
		s->drain_timer = evtimer_new(s->base, drain_fire, s);
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	evtimer_add(s->drain_timer, &tv);
	check_drained(s);
}

int http_server_inflight(const struct http_server *s)
{
	return s->inflight;
}

int http_server_connections(const struct http_server *s)
{
	return s->nconns;
}

/* ---------------------------------------------------------------- dispatch */

static const struct route *match(struct http_server *s, const struct http_req *req, const char *path,
				 unsigned mbit, unsigned *allow, const char **label)
{
	const struct route *best = NULL, *guarded = NULL, *accepted = NULL;
	*allow = 0;
	*label = NULL;
	/* Exact routes first: a guarded route that accepts, else the plain one, else any guarded one. */
	for (size_t i = 0; i < s->nroutes; i++) {
		const struct route *r = &s->routes[i];
		if ((r->flags & HTTP_PREFIX) || strcmp(r->path, path) != 0)
			continue;
		*allow |= r->methods;
		*label = r->path;
		if (!(r->methods & mbit))
			continue;
		if (!r->accept) {
			if (!best)
				best = r;
		} else {
			if (!guarded)
				guarded = r;
			if (!accepted && r->accept(req, r->arg))
				accepted = r;
		}
	}
	if (*label)
		return accepted ? accepted : best ? best : guarded;
	size_t blen = 0;
	for (size_t i = 0; i < s->nroutes; i++) {
		const struct route *r = &s->routes[i];
		if (!(r->flags & HTTP_PREFIX) || strncmp(r->path, path, r->plen) != 0 || r->plen < blen)
			continue;
		if (r->plen > blen) {
			blen = r->plen;
			*allow = 0;
			best = NULL;
		}
		*allow |= r->methods;
		*label = r->path;
		if ((r->methods & mbit) && !best)
			best = r;
	}
	return best;
}

/* The route a raw request path would reach, ignoring methods and guards (for evhttp's own error replies,
 * where only the route's flags and label matter). */
static const struct route *route_for_path(struct http_server *s, const char *path, size_t n)
{
	const struct route *best = NULL;
	for (size_t i = 0; i < s->nroutes; i++) {
		const struct route *r = &s->routes[i];
		if (!(r->flags & HTTP_PREFIX)) {
			if (r->plen == n && memcmp(r->path, path, n) == 0)
				return r;
		} else if (r->plen <= n && memcmp(r->path, path, r->plen) == 0 && (!best || r->plen > best->plen)) {
			best = r;
		}
	}
	return best;
}

static bool token_ok(struct http_server *s, const char *authz)
{
	if (!s->have_admin || !authz || strncasecmp(authz, "Bearer ", 7) != 0)
		return false;
	const char *t = authz + 7;
	while (*t == ' ')
		t++;
	size_t n = strlen(t);
	while (n && (t[n - 1] == ' ' || t[n - 1] == '\t'))
		n--;
	if (n == 0 || n > 512)
		return false;
	uint8_t h[32];
	sha256(h, t, n);
	/* Hashing first makes the comparison independent of the presented token's length. */
	bool ok = sodium_memcmp(h, s->admin_hash, 32) == 0;
	sodium_memzero(h, sizeof h);
	return ok;
}

static void server_error(struct http_req *r, unsigned route_flags, const cg_err *e)
{
	if (route_flags & HTTP_RPC_ERRORS) {
		json_t *env = json_pack("{s:s,s:n,s:o}", "jsonrpc", "2.0", "id", "error", rpc_error_json(e));
		char *body = json_dumps(env, JSON_COMPACT);
		json_decref(env);
		if (e->retry_after_s > 0) {
			char ra[16];
			snprintf(ra, sizeof ra, "%d", e->retry_after_s);
			http_reply_header(r, "Retry-After", ra);
		}
		http_reply(r, cg_err_http(e), "application/json", body, body ? strlen(body) : 0);
		free(body);
	} else {
		http_reply_error(r, e);
	}
}

static void on_complete(struct evhttp_request *ev, void *arg)
{
	struct http_req *r = arg;
	(void)ev;
	r->ev = NULL; /* libevent frees it right after this callback */
	req_release(r);
}

static void gen_cb(struct evhttp_request *ev, void *arg)
{
	struct http_server *s = arg;
	struct evhttp_connection *evcon = evhttp_request_get_connection(ev);
	struct conn *c = evcon ? conn_find(s, evcon) : NULL;
	struct http_req *r = calloc(1, sizeof *r);
	if (!r) {
		evhttp_send_error(ev, 503, NULL);
		return;
	}
	r->s = s;
	r->ev = ev;
	r->c = c;
	r->t0_us = clock_mono_us();
	r->label = "unmatched";
	TAILQ_INIT(&r->query);
	if (c) {
		evtimer_del(c->timer);
		c->phase = PH_HANDLER;
		c->req = r;
	}
	s->inflight++;
	r->rnext = s->reqs;
	if (s->reqs)
		s->reqs->rprev = r;
	s->reqs = r;
	evhttp_request_set_on_complete_cb(ev, on_complete, r);
	if (evcon) {
		char *addr = NULL;
		ev_uint16_t port = 0;
		evhttp_connection_get_peer(evcon, &addr, &port);
		snprintf(r->peer, sizeof r->peer, "%s:%u", addr ? addr : "?", port);
	}
	enum evhttp_cmd_type cmd = evhttp_request_get_command(ev);
	for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
		if (methods[i].cmd == cmd)
			r->mbit = methods[i].bit;

	cg_err e;
	cg_err_clear(&e);
	if (s->draining) {
		http_reply_header(r, "Connection", "close");
		cg_fail(&e, CG_E_UNAVAILABLE, "the node is shutting down");
		e.retry_after_s = 1;
		http_reply_error(r, &e);
		return;
	}
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev);
	const char *raw = uri ? evhttp_uri_get_path(uri) : NULL;
	size_t plen = 0;
	r->path = evhttp_uridecode(raw && *raw ? raw : "/", 0, &plen);
	if (!r->path || strlen(r->path) != plen || r->path[0] != '/') {
		cg_fail(&e, CG_E_INVALID_ARGUMENT, "malformed request path");
		http_reply_error(r, &e);
		return;
	}
	unsigned allow;
	const char *label;
	const struct route *rt = match(s, r, r->path, r->mbit, &allow, &label);
	if (label)
		r->label = label;
	if (!rt) {
		if (allow) {
			char list[80] = "";
			for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
				if (allow & methods[i].bit) {
					size_t l = strlen(list);
					snprintf(list + l, sizeof list - l, "%s%s", l ? ", " : "", methods[i].name);
				}
			http_reply_header(r, "Allow", list);
			cg_fail_http(&e, CG_E_INVALID_ARGUMENT, 405, "method %s not allowed here", http_req_method(r));
		} else {
			cg_fail(&e, CG_E_NOT_FOUND, "no such route");
		}
		http_reply_error(r, &e);
		return;
	}
	r->route = rt;
	/* Two Content-Length headers: evhttp used the first, a proxy in front of us may have used the other.
	 * Refuse rather than guess where this request ends (request smuggling). */
	int ncl = 0;
	struct evkeyval *kv;
	TAILQ_FOREACH(kv, evhttp_request_get_input_headers(ev), next)
		ncl += strcasecmp(kv->key, "Content-Length") == 0;
	if (ncl > 1) {
		http_reply_header(r, "Connection", "close");
		cg_fail(&e, CG_E_INVALID_ARGUMENT, "more than one Content-Length header");
		server_error(r, rt->flags, &e);
		return;
	}
	size_t blen = evbuffer_get_length(evhttp_request_get_input_buffer(ev));
	if (rt->flags & HTTP_ADMIN) {
		r->admin = token_ok(s, evhttp_find_header(evhttp_request_get_input_headers(ev), "Authorization"));
		if (!r->admin) {
			http_reply_header(r, "WWW-Authenticate", "Bearer realm=\"clawgrid\"");
			cg_fail(&e, CG_E_AUTH_REQUIRED, "missing or wrong admin token");
			server_error(r, rt->flags, &e);
			return;
		}
	} else if (s->have_admin) {
		r->admin = token_ok(s, evhttp_find_header(evhttp_request_get_input_headers(ev), "Authorization"));
	}
	if (blen > rt->cap) {
		http_reply_header(r, "Connection", "close");
		cg_fail_http(&e, CG_E_QUOTA_EXCEEDED, 413, "request body of %zu bytes is over the limit of %zu", blen,
			     rt->cap);
		server_error(r, rt->flags, &e);
		return;
	}
	rt->fn(r, rt->arg);
}

/* ---------------------------------------------------------------- request accessors */

const char *http_req_method(const struct http_req *r)
{
	for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
		if (methods[i].bit == r->mbit)
			return methods[i].name;
	return "OTHER";
}

unsigned http_req_method_bit(const struct http_req *r)
{
	return r->mbit;
}

const char *http_req_path(const struct http_req *r)
{
	return r->path ? r->path : "/";
}

const char *http_req_route(const struct http_req *r)
{
	return r->label;
}

const char *http_req_query(struct http_req *r, const char *name)
{
	if (!r->query_parsed) {
		r->query_parsed = true;
		const struct evhttp_uri *uri = r->ev ? evhttp_request_get_evhttp_uri(r->ev) : NULL;
		const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
		if (q && evhttp_parse_query_str(q, &r->query) < 0) {
			evhttp_clear_headers(&r->query);
			TAILQ_INIT(&r->query);
		}
	}
	return evhttp_find_header(&r->query, name);
}

const char *http_req_header(const struct http_req *r, const char *name)
{
	return r->ev ? evhttp_find_header(evhttp_request_get_input_headers(r->ev), name) : NULL;
}

const uint8_t *http_req_body(struct http_req *r, size_t *len)
{
	*len = 0;
	if (!r->ev)
		return NULL;
	struct evbuffer *b = evhttp_request_get_input_buffer(r->ev);
	size_t n = evbuffer_get_length(b);
	if (n == 0)
		return NULL;
	*len = n;
	return evbuffer_pullup(b, -1);
}

bool http_req_content_type_is(const struct http_req *r, const char *mime)
{
	const char *ct = http_req_header(r, "Content-Type");
	if (!ct)
		return false;
	while (*ct == ' ')
		ct++;
	size_t n = strlen(mime);
	if (strncasecmp(ct, mime, n) != 0)
		return false;
	const char *rest = ct + n;
	while (*rest == ' ' || *rest == '\t')
		rest++;
	return *rest == 0 || *rest == ';';
}

int http_req_require_type(const struct http_req *r, const char *mime, cg_err *e)
{
	if (http_req_content_type_is(r, mime))
		return 0;
	return cg_fail_http(e, CG_E_INVALID_ARGUMENT, 415, "Content-Type must be %s", mime);
}

const char *http_req_peer(const struct http_req *r)
{
	return r->peer;
}

bool http_req_is_admin(const struct http_req *r)
{
	return r->admin;
}

bool http_req_gone(const struct http_req *r)
{
	return r->gone || !r->ev;
}

void http_req_on_close(struct http_req *r, http_close_fn cb, void *arg)
{
	r->on_close = cb;
	r->close_arg = arg;
}

/* ---------------------------------------------------------------- replies */

static void req_release(struct http_req *r)
{
	struct http_server *s = r->s;
	if (!s) { /* the server is gone (http_server_free) */
		evhttp_clear_headers(&r->query);
		free(r->path);
		free(r);
		return;
	}
	if (r->rprev)
		r->rprev->rnext = r->rnext;
	else
		s->reqs = r->rnext;
	if (r->rnext)
		r->rnext->rprev = r->rprev;
	char st[8];
	snprintf(st, sizeof st, "%d", r->status ? r->status : 499);
	metrics_add(s->m_req, 1, r->label, st);
	metrics_observe(s->m_dur, (double)(clock_mono_us() - r->t0_us) / 1e6, r->label);
	log_debug("http", "request", "method=%s route=%s status=%s", http_req_method(r), r->label, st);
	struct conn *c = r->c;
	if (c && c->req == r) {
		c->req = NULL;
		c->phase = PH_WAIT;
		c->nl = 0;
		conn_arm(c, s->o.header_timeout_ms);
	}
	evhttp_clear_headers(&r->query);
	free(r->path);
	free(r);
	s->inflight--;
	check_drained(s);
}

/* Marks r finished; returns true when there is a live client to send to. When there is none, r is
 * released here. */
static bool finish(struct http_req *r, int status)
{
	if (r->finished) {
		log_error("http", "request finished twice", "route=%s", r->label);
		return false;
	}
	r->finished = true;
	r->status = status;
	if (r->ev && !r->gone)
		return true;
	if (r->ev) {
		/* Still attached but the client is gone (should not happen): let libevent free it. */
		evhttp_request_free(r->ev);
		r->ev = NULL;
	}
	req_release(r);
	return false;
}

void http_reply_header(struct http_req *r, const char *name, const char *value)
{
	if (r->ev && !r->gone)
		evhttp_add_header(evhttp_request_get_output_headers(r->ev), name, value);
}

static void std_headers(struct http_req *r, const char *content_type)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->ev);
	if (content_type && !evhttp_find_header(h, "Content-Type"))
		evhttp_add_header(h, "Content-Type", content_type);
	if (!evhttp_find_header(h, "Cache-Control"))
		evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	if (r->s->draining && !evhttp_find_header(h, "Connection"))
		evhttp_add_header(h, "Connection", "close");
}

/* libevent 2.1 knows no phrase for 413/415/429/503-era codes and would say "Client Error"; name them. */
static const char *reason_phrase(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 417: return "Expectation Failed";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return NULL; /* libevent's generic phrase */
	}
}

void http_reply(struct http_req *r, int status, const char *content_type, const void *body, size_t len)
{
	if (!finish(r, status))
		return;
	std_headers(r, content_type ? content_type : "application/octet-stream");
	/* evhttp 2.1 would send the body even for HEAD (and then no Content-Length): the next response on the
	 * connection would start inside it. HEAD gets the headers of the GET, with its length; 204 and 304 get
	 * neither body nor length. */
	bool no_body = r->mbit == HTTP_HEAD || status == 204 || status == 304;
	if (r->mbit == HTTP_HEAD && status != 204 && status != 304) {
		char cl[24];
		snprintf(cl, sizeof cl, "%zu", len);
		evhttp_add_header(evhttp_request_get_output_headers(r->ev), "Content-Length", cl);
	}
	struct evbuffer *b = evbuffer_new();
	if (b && len && !no_body)
		evbuffer_add(b, body, len);
	struct evhttp_request *ev = r->ev;
	/* From here libevent owns the request; on_complete releases r once the reply is written. */
	evhttp_send_reply(ev, status, reason_phrase(status), b);
	if (b)
		evbuffer_free(b);
}

void http_reply_json(struct http_req *r, int status, json_t *v)
{
	char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	json_decref(v);
	if (!s) {
		cg_err e;
		cg_fail(&e, CG_E_INTERNAL, "cannot encode the response");
		http_reply_error(r, &e);
		return;
	}
	http_reply(r, status, "application/json", s, strlen(s));
	free(s);
}

void http_reply_error(struct http_req *r, const cg_err *e)
{
	char msg[400], ra[16];
	snprintf(msg, sizeof msg, "%s: %s", cg_code_name(e->code), e->msg);
	json_t *v = json_pack("{s:b,s:{s:s,s:s}}", "ok", 0, "error", "code", cg_code_name(e->code), "message", msg);
	if (e->retry_after_s > 0) {
		snprintf(ra, sizeof ra, "%d", e->retry_after_s);
		http_reply_header(r, "Retry-After", ra);
	}
	http_reply_json(r, cg_err_http(e), v);
}

/* ---------------------------------------------------------------- streaming */

void http_stream_start(struct http_req *r, int status, const char *content_type)
{
	if (r->streaming || r->finished)
		return;
	r->streaming = true;
	r->status = status;
	if (!r->ev || r->gone)
		return;
	std_headers(r, content_type);
	evhttp_send_reply_start(r->ev, status, reason_phrase(status));
}

size_t http_stream_pending(const struct http_req *r)
{
	if (!r->ev || r->gone)
		return 0;
	struct evhttp_connection *evcon = evhttp_request_get_connection(r->ev);
	struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
	return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

int http_stream_write(struct http_req *r, const void *data, size_t len)
{
	if (!r->streaming || r->finished || !r->ev || r->gone)
		return -1;
	if (len == 0)
		return 0;
	if (http_stream_pending(r) + len > r->s->o.stream_buf_max)
		return -1;
	struct evbuffer *b = evbuffer_new();
	if (!b || evbuffer_add(b, data, len) < 0) {
		if (b)
			evbuffer_free(b);
		return -1;
	}
	evhttp_send_reply_chunk(r->ev, b);
	evbuffer_free(b);
	return 0;
}

void http_stream_end(struct http_req *r)
{
	if (!r->streaming) {
		/* Nothing was started: an empty 200 keeps the one-finish contract simple for callers. */
		http_reply(r, 200, NULL, NULL, 0);
		return;
	}
	if (!finish(r, r->status))
		return;
	evhttp_send_reply_end(r->ev); /* may complete (and release r) synchronously */
}

void http_sse_start(struct http_req *r)
{
	http_reply_header(r, "Cache-Control", "no-cache");
	http_reply_header(r, "X-Accel-Buffering", "no");
	http_stream_start(r, 200, "text/event-stream");
}

int http_sse_event(struct http_req *r, const char *event, const char *data)
{
	if (http_req_gone(r) || !r->s)
		return -1;
	buf b;
	buf_init(&b, r->s->o.stream_buf_max);
	int rc = 0;
	if (event && *event) {
		/* An event name cannot span lines: cut it at the first line break. */
		size_t n = strcspn(event, "\r\n");
		rc |= buf_printf(&b, "event: %.*s\n", (int)n, event);
	}
	const char *p = data ? data : "";
	do {
		size_t n = strcspn(p, "\r\n");
		rc |= buf_printf(&b, "data: %.*s\n", (int)n, p);
		p += n;
		if (*p == '\r' && p[1] == '\n')
			p += 2;
		else if (*p)
			p++;
	} while (*p);
	rc |= buf_putc(&b, '\n');
	if (rc == 0)
		rc = http_stream_write(r, b.data, b.len);
	buf_done(&b);
	return rc < 0 ? -1 : 0;
}

int http_sse_comment(struct http_req *r, const char *text)
{
	char line[256];
	int n = snprintf(line, sizeof line, ": %.*s\n\n", (int)strcspn(text ? text : "", "\r\n"), text ? text : "");
	if (n < 0 || (size_t)n >= sizeof line)
		return -1;
	return http_stream_write(r, line, (size_t)n);
}
