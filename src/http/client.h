/* http/client (prefix hc_) — outgoing HTTP for the provider, consumer and brain modules: libcurl multi
 * driven by the node's libevent loop (socket and timer callbacks mapped onto events), streaming response
 * bodies as they arrive.
 *
 * Four timeouts per request: connect, first byte (headers or body), idle (between body pieces) and total.
 * Only http and https are allowed (no file:, gopher: ... even through redirects, which are not followed).
 * Error messages never contain the URL or host: upstream endpoints are secrets of the provider (SEC-01).
 * Loop thread only; callbacks never run from inside hc_start or hc_cancel. */
#ifndef CG_HTTP_CLIENT_H
#define CG_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

#include "base/err.h"

struct hc;
struct hc_req;

struct hc_opts {
	const char *method;          /* "GET" (default) or "POST" */
	const char *url;             /* copied */
	const char *const *headers;  /* NULL-terminated "Name: value" lines, copied; may be NULL */
	const void *body;            /* copied */
	size_t body_len;
	long connect_timeout_ms;     /* 0: 10 s */
	long first_byte_timeout_ms;  /* 0: none */
	long idle_timeout_ms;        /* 0: none */
	long total_timeout_ms;       /* 0: none */
	size_t max_response;         /* buffered mode: body cap (0: 8 MiB); stream mode: unused */
	bool stream;                 /* true: body pieces go to on_data; false: buffered for on_done */
};

struct hc_cb {
	/* Optional; once, before the first on_data (or before on_done when there is no body). Returning < 0
	 * aborts the request; on_done then runs with E_UNAVAILABLE. */
	int (*on_headers)(void *arg, long status, struct hc_req *r);
	/* Stream mode: one piece of the body. Returning < 0 aborts the request (then on_done runs with
	 * E_UNAVAILABLE). */
	int (*on_data)(void *arg, const char *p, size_t n);
	/* Always exactly once unless cancelled: status (0 when no response), the buffered body (buffered mode;
	 * borrowed), and e = NULL on a complete response or the failure. The request is freed after it. */
	void (*on_done)(void *arg, long status, const char *body, size_t n, const cg_err *e);
};

int hc_new(struct event_base *base, struct hc **out, cg_err *e);
/* Cancels every request (no callbacks) and frees. Safe on NULL. */
void hc_free(struct hc *c);
/* Starts a request. NULL with e set on a synchronous failure (nothing is called then). */
struct hc_req *hc_start(struct hc *c, const struct hc_opts *o, const struct hc_cb *cb, void *arg, cg_err *e);
/* Stops a request: no callback runs afterwards. Safe from inside this request's callbacks. */
void hc_cancel(struct hc_req *r);
/* Copies a response header's value (case-insensitive name, first occurrence, trimmed) into out. Returns its
 * length, or -1 when absent or longer than cap - 1. Valid from on_headers on. */
long hc_header(struct hc_req *r, const char *name, char *out, size_t cap);
/* Number of requests in flight (metrics, tests). */
size_t hc_active(const struct hc *c);

#endif
