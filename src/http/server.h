/* http/server — the node's HTTP/1.1 server (libevent evhttp) for the API, provider routes, the OpenAI-compatible
 * gateway and the web UI.
 *
 * Routing: by method set + exact path, or by path prefix (the longest matching prefix wins; exact routes
 * win over prefixes). No match -> 404, path known but method not -> 405 with Allow. Each route has a body
 * cap: bigger bodies are refused with 413 before the handler runs (Content-Length over the server-wide
 * maximum is refused by the transport at once, without reading the body). Requests the transport itself
 * refuses (400 malformed, 413, 417, 501) get the same JSON errors as routes (a JSON-RPC envelope on
 * HTTP_RPC_ERRORS routes), are counted in the metrics and are followed by a short lingering close. HEAD
 * answers have no body. HTTP_ADMIN routes need
 * `Authorization: Bearer <admin token>` (compared in constant time), else 401 E_AUTH_REQUIRED.
 *
 * Lifetime and ownership: handlers run on the loop thread. A handler receives a `struct http_req *` that
 * the server owns; the handler must FINISH it exactly once, now or later, with http_reply(), http_reply_json(),
 * http_reply_error() or http_stream_end(). After finishing, r is freed: never touch it again. If the client
 * goes away first, the on_close callback (http_req_on_close) runs once, r stays valid, replies and stream
 * writes become no-ops, and the handler must still finish r (that is what frees it).
 *
 * Slow clients: a connection must deliver a complete header block within header_timeout_ms (also the idle
 * limit between keep-alive requests) and the body within body_timeout_ms, else it is closed. At most
 * max_connections connections are open; more are closed at once. Every request is counted in
 * clawgrid_http_requests_total{route,status} and clawgrid_http_request_duration_seconds{route}, where route is
 * the route's registered path (or "unmatched"). */
#ifndef CG_HTTP_SERVER_H
#define CG_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "base/err.h"

struct http_server;
struct http_req;

/* Methods (bit set). */
#define HTTP_GET 0x01u
#define HTTP_POST 0x02u
#define HTTP_PUT 0x04u
#define HTTP_DELETE 0x08u
#define HTTP_HEAD 0x10u
#define HTTP_OPTIONS 0x20u
#define HTTP_PATCH 0x40u

/* Route flags. */
#define HTTP_PREFIX 0x01u       /* path is a prefix ("/ui/") */
#define HTTP_ADMIN 0x02u        /* requires the admin bearer token */
#define HTTP_RPC_ERRORS 0x04u   /* errors the server itself sends (401, 413, 415...) are JSON-RPC envelopes */

struct http_server_opts {
	int max_connections;    /* default 512 */
	int header_timeout_ms;  /* default 10000 */
	int body_timeout_ms;    /* default 30000 */
	size_t max_body;        /* transport-wide body limit, >= every route cap; default 8 MiB */
	size_t stream_buf_max;  /* per-connection unsent streaming output before writes fail; default 4 MiB */
};

typedef void (*http_handler_fn)(struct http_req *r, void *arg);
typedef void (*http_close_fn)(struct http_req *r, void *arg);
typedef void (*http_drained_fn)(void *arg);

/* opts may be NULL (defaults). Caller frees with http_server_free(). NULL on OOM. */
struct http_server *http_server_new(struct event_base *base, const struct http_server_opts *opts);
/* Closes every connection (in-flight requests see on_close) and frees. NULL-safe. */
void http_server_free(struct http_server *s);
/* The admin token is hashed at once; only the hash is kept. */
void http_server_set_admin_token(struct http_server *s, const char *token);

/* Binds "HOST:PORT" (IPv4, [IPv6] or localhost; port 0 = any) and starts accepting. The bound address is
 * written to out ("127.0.0.1:40123"). E_INVALID_ARGUMENT for a malformed address, E_UNAVAILABLE when the bind
 * fails. May be called several times. */
int http_server_listen(struct http_server *s, const char *hostport, char *out, size_t cap, cg_err *e);
/* Parses "HOST:PORT" (as above) without binding. 0 or -1. */
int http_parse_hostport(const char *hostport, char *host, size_t hcap, int *port);

/* Registers a route; path is copied. body_cap 0 means "no body allowed". Returns 0, or -1 when the same
 * path/kind is registered twice (logged). */
int http_route(struct http_server *s, unsigned methods, const char *path, unsigned flags, size_t body_cap,
	       http_handler_fn fn, void *arg);

/* A guarded route (http_route_when): it shares its path and methods with other routes and takes only the
 * requests its accept(r, arg) says yes to (headers are readable; the body is not read yet). Matching for an
 * exact path: the first guarded route that accepts, else the plain route (at most one per path/method),
 * else the first guarded route anyway (so a lone guarded route still answers). Lets two modules serve one
 * path whichever registers first, e.g. the provider's lease-token /v1/chat/completions and the gateway. */
typedef bool (*http_accept_fn)(const struct http_req *r, void *arg);
int http_route_when(struct http_server *s, unsigned methods, const char *path, unsigned flags, size_t body_cap,
		    http_accept_fn accept, http_handler_fn fn, void *arg);

/* Graceful stop: stops accepting, closes idle connections, lets in-flight requests finish; done(arg) runs
 * once they are all finished or after timeout_ms (whichever comes first). Requests arriving meanwhile get
 * 503. */
void http_server_drain(struct http_server *s, int timeout_ms, http_drained_fn done, void *arg);
/* Requests accepted and not yet finished. */
int http_server_inflight(const struct http_server *s);
int http_server_connections(const struct http_server *s);

/* ---- request accessors (borrowed until r is finished) ---- */
const char *http_req_method(const struct http_req *r); /* "GET" */
unsigned http_req_method_bit(const struct http_req *r);
const char *http_req_path(const struct http_req *r);   /* decoded path, no query */
const char *http_req_route(const struct http_req *r);  /* the matched route's path */
/* Decoded query parameter (first occurrence), NULL if absent. */
const char *http_req_query(struct http_req *r, const char *name);
const char *http_req_header(const struct http_req *r, const char *name);
/* Body bytes (not NUL-terminated; NULL with *len 0 when empty). */
const uint8_t *http_req_body(struct http_req *r, size_t *len);
/* True when Content-Type's media type equals mime (case-insensitive, parameters ignored). */
bool http_req_content_type_is(const struct http_req *r, const char *mime);
/* Content-Type check for handlers: 0, or fills e with 415 and returns -CG_E_INVALID_ARGUMENT. */
int http_req_require_type(const struct http_req *r, const char *mime, cg_err *e);
/* Peer address "IP:port" (borrowed). */
const char *http_req_peer(const struct http_req *r);
bool http_req_is_admin(const struct http_req *r); /* a valid admin token was presented */
bool http_req_gone(const struct http_req *r);     /* the client went away */
/* Runs cb once if the client disconnects before r is finished (e.g. to cancel an upstream call). */
void http_req_on_close(struct http_req *r, http_close_fn cb, void *arg);

/* ---- replies (each one finishes r) ---- */
/* Adds a response header (before the reply or stream start). */
void http_reply_header(struct http_req *r, const char *name, const char *value);
void http_reply(struct http_req *r, int status, const char *content_type, const void *body, size_t len);
/* Takes ownership of v. */
void http_reply_json(struct http_req *r, int status, json_t *v);
/* {"ok":false,"error":{"code":"E_X","message":"E_X: text"}}, status from cg_err_http(e), Retry-After when
 * e->retry_after_s > 0. */
void http_reply_error(struct http_req *r, const cg_err *e);

/* ---- streaming (chunked) ---- */
/* Sends the status line and headers; later writes go out as chunks. */
void http_stream_start(struct http_req *r, int status, const char *content_type);
/* Queues bytes. -1 when the client is gone or more than stream_buf_max bytes are waiting to be sent. */
int http_stream_write(struct http_req *r, const void *data, size_t len);
/* Bytes queued and not yet written to the socket. */
size_t http_stream_pending(const struct http_req *r);
/* Finishes r. */
void http_stream_end(struct http_req *r);
/* Server-sent events: start = 200 text/event-stream, no caching; event may be NULL; data may hold several
 * lines (each becomes a "data:" line). comment sends ": text" (keeps idle proxies and clients alive). */
void http_sse_start(struct http_req *r);
int http_sse_event(struct http_req *r, const char *event, const char *data);
int http_sse_comment(struct http_req *r, const char *text);

#endif
