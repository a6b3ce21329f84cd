/* TEST DOUBLE of the brain gateway's upstreams (OpenAI-compatible server, optionally a market provider); see
 * brain_double.h. */
#include "brain_double.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <jansson.h>

#include "crypto/identity.h"
#include "crypto/wallet.h"

#define MAX_TOKENS_ISSUED 64

struct brain_double {
	struct event_base *base;
	pthread_t thread;
	struct evhttp *http;
	struct event *stop_ev;
	struct bd_opts o;
	char model[128], price[40];
	int port;
	char url[64];
	pthread_mutex_t mu;
	enum bd_mode mode;
	int mode_n, mode_ms;
	int requests, leases, abandoned, open_streams;
	char *last_body, *last_auth;
	unsigned long seq;
	char peer_id[64], actor[43];
	char tokens[MAX_TOKENS_ISSUED][48];
	int ntokens;
	struct bd_stream *streams;
};

struct bd_stream {
	struct bd_stream *prev, *next;
	struct brain_double *d;
	struct evhttp_request *req;
	struct evhttp_connection *conn;
	struct event *timer;
	char id[48], model[128], tool[80];
	enum bd_mode mode;
	int n, ms;
	int sent, total, delay_ms, prompt_tokens;
	bool usage, cutting, first_wait_done, provider_route;
};

static void count(struct brain_double *d, int *f, int delta)
{
	pthread_mutex_lock(&d->mu);
	*f += delta;
	pthread_mutex_unlock(&d->mu);
}

static void reply_json(struct evhttp_request *req, int code, json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT);
	struct evbuffer *b = evbuffer_new();
	evbuffer_add(b, s, strlen(s));
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
	evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", b);
	evbuffer_free(b);
	free(s);
	json_decref(v);
}

static void error_reply(struct evhttp_request *req, int code, const char *type, const char *ecode, const char *msg)
{
	reply_json(req, code,
		   json_pack("{s:{s:s,s:s,s:s}}", "error", "message", msg, "type", type, "code", ecode ? ecode : "error"));
}

static void stream_free(struct bd_stream *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		s->d->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	if (s->timer)
		event_free(s->timer);
	count(s->d, &s->d->open_streams, -1);
	free(s);
}

static void on_client_close(struct evhttp_connection *c, void *arg)
{
	struct bd_stream *s = arg;
	count(s->d, &s->d->abandoned, 1);
	/* evhttp detaches a request whose reply is still in progress and leaves it to us. */
	if (evhttp_request_get_connection(s->req) == NULL)
		evhttp_request_free(s->req);
	stream_free(s);
}

static json_t *chunk_base(struct bd_stream *s)
{
	return json_pack("{s:s,s:s,s:I,s:s}", "id", s->id, "object", "chat.completion.chunk", "created",
			 (json_int_t)time(NULL), "model", s->model);
}

static void send_raw(struct bd_stream *s, const char *text)
{
	struct evbuffer *b = evbuffer_new();
	evbuffer_add(b, text, strlen(text));
	evhttp_send_reply_chunk(s->req, b);
	evbuffer_free(b);
}

static void send_event(struct bd_stream *s, json_t *v)
{
	char *txt = json_dumps(v, JSON_COMPACT);
	struct evbuffer *b = evbuffer_new();
	evbuffer_add_printf(b, "data: %s\n\n", txt);
	evhttp_send_reply_chunk(s->req, b);
	evbuffer_free(b);
	free(txt);
	json_decref(v);
}

static void arm(struct bd_stream *s, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	evtimer_add(s->timer, &tv);
}

/* The k-th content chunk (0-based): a word, or a piece of the tool call. */
static json_t *content_chunk(struct bd_stream *s, int k)
{
	json_t *c = chunk_base(s), *delta;
	if (s->tool[0]) {
		static const char *const parts[] = {"{\"city\":", "\"Paris\"", "}"};
		if (k == 0)
			delta = json_pack("{s:[{s:i,s:s,s:s,s:{s:s,s:s}}]}", "tool_calls", "index", 0, "id", "call_double_1",
					  "type", "function", "function", "name", s->tool, "arguments", parts[0]);
		else
			delta = json_pack("{s:[{s:i,s:{s:s}}]}", "tool_calls", "index", 0, "function", "arguments",
					  parts[k < 3 ? k : 2]);
	} else {
		char word[24];
		snprintf(word, sizeof word, "w%d ", k + 1);
		delta = json_pack("{s:s}", "content", word);
	}
	json_object_set_new(c, "choices", json_pack("[{s:i,s:o,s:n}]", "index", 0, "delta", delta, "finish_reason"));
	return c;
}

static void finish_ok(struct bd_stream *s)
{
	json_t *c = chunk_base(s);
	json_object_set_new(c, "choices", json_pack("[{s:i,s:{},s:s}]", "index", 0, "delta", "finish_reason",
						    s->tool[0] ? "tool_calls" : "stop"));
	send_event(s, c);
	if (s->usage) {
		c = chunk_base(s);
		json_object_set_new(c, "choices", json_array());
		json_object_set_new(c, "usage", json_pack("{s:i,s:i,s:i}", "prompt_tokens", s->prompt_tokens,
							  "completion_tokens", s->total, "total_tokens",
							  s->prompt_tokens + s->total));
		send_event(s, c);
	}
	send_raw(s, "data: [DONE]\n\n");
	if (s->provider_route)
		send_raw(s, "event: receipt\ndata: {\"double\":true}\n\n");
	evhttp_connection_set_closecb(s->conn, NULL, NULL);
	evhttp_send_reply_end(s->req);
	stream_free(s);
}

static void step(evutil_socket_t fd, short what, void *arg)
{
	struct bd_stream *s = arg;
	for (;;) {
		if (s->cutting) {
			/* Drop the connection without the terminating chunk: a cut stream. */
			evhttp_connection_set_closecb(s->conn, NULL, NULL);
			evhttp_connection_free(s->conn);
			stream_free(s);
			return;
		}
		if (s->sent >= s->n) {
			switch (s->mode) {
			case BD_STALL:
				return; /* the client's timer or disconnect ends it */
			case BD_CUT:
				s->cutting = true; /* let what was sent reach the client first */
				arm(s, 50);
				return;
			case BD_MALFORMED:
				send_raw(s, "data: {\"choices\": [ this is not json\n\n");
				s->mode = BD_STALL; /* a well-behaved client hangs up now */
				return;
			case BD_ERROR_EVENT:
				send_raw(s, "data: {\"error\":{\"message\":\"double: model crashed\",\"type\":\"server_error\"}}\n\n");
				s->mode = BD_STALL;
				return;
			default:
				break;
			}
		}
		if (s->mode == BD_SLOW_FIRST && !s->first_wait_done) {
			s->first_wait_done = true;
			arm(s, s->ms);
			return;
		}
		if (s->sent >= s->total) {
			finish_ok(s);
			return;
		}
		send_event(s, content_chunk(s, s->sent));
		s->sent++;
		if (s->delay_ms > 0) {
			arm(s, s->delay_ms);
			return;
		}
	}
}

static int count_words(const char *s)
{
	int n = 0;
	bool in = false;
	for (; s && *s; s++) {
		bool sp = *s == ' ' || *s == '\n' || *s == '\t';
		if (!sp && !in)
			n++;
		in = !sp;
	}
	return n;
}

static bool token_ok(struct brain_double *d, const char *auth)
{
	if (!auth || strncmp(auth, "Bearer ", 7) != 0)
		return false;
	bool ok = false;
	pthread_mutex_lock(&d->mu);
	for (int i = 0; i < d->ntokens && !ok; i++)
		ok = !strcmp(d->tokens[i], auth + 7);
	pthread_mutex_unlock(&d->mu);
	return ok;
}

static void on_chat(struct evhttp_request *req, struct brain_double *d, bool provider_route)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);
	char *body = malloc(n + 1);
	evbuffer_remove(in, body, n);
	body[n] = 0;
	const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
	pthread_mutex_lock(&d->mu);
	d->requests++;
	free(d->last_body);
	d->last_body = strdup(body);
	free(d->last_auth);
	d->last_auth = auth ? strdup(auth) : NULL;
	unsigned long seq = ++d->seq;
	enum bd_mode mode = d->mode;
	int mn = d->mode_n, mms = d->mode_ms;
	pthread_mutex_unlock(&d->mu);
	if (provider_route) {
		if (!token_ok(d, auth) || !evhttp_find_header(evhttp_request_get_input_headers(req), "X-OpenClaw-Lease")) {
			free(body);
			reply_json(req, 401, json_pack("{s:b,s:{s:s,s:s}}", "ok", 0, "error", "code", "E_AUTH_REQUIRED",
						       "message", "E_AUTH_REQUIRED: lease token required"));
			return;
		}
	} else if (d->o.api_key) {
		char want[300];
		snprintf(want, sizeof want, "Bearer %s", d->o.api_key);
		if (!auth || strcmp(auth, want) != 0) {
			free(body);
			error_reply(req, 401, "invalid_request_error", "invalid_api_key", "invalid api key");
			return;
		}
	}
	json_error_t je;
	json_t *j = json_loads(body, 0, &je);
	free(body);
	json_t *msgs = json_object_get(j, "messages");
	if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
		json_decref(j);
		error_reply(req, 400, "invalid_request_error", "invalid_value", "messages: required");
		return;
	}
	if (mode == BD_STATUS) {
		json_decref(j);
		if (mn == 429 && mms > 0) {
			char ra[16];
			snprintf(ra, sizeof ra, "%d", (mms + 999) / 1000);
			evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", ra);
		}
		error_reply(req, mn, mn == 429 ? "rate_limit_error" : "server_error", mn == 429 ? "rate_limit_exceeded" : "error",
			    "double: injected failure");
		return;
	}
	if (mode == BD_CONTEXT) {
		json_decref(j);
		error_reply(req, 400, "invalid_request_error", "context_length_exceeded",
			    "This model's maximum context length is 8 tokens.");
		return;
	}
	int prompt = 0;
	size_t i;
	json_t *m;
	json_array_foreach(msgs, i, m) prompt += count_words(json_string_value(json_object_get(m, "content")));
	struct bd_stream *s = calloc(1, sizeof *s);
	s->d = d;
	s->req = req;
	s->conn = evhttp_request_get_connection(req);
	s->provider_route = provider_route;
	snprintf(s->id, sizeof s->id, "chatcmpl-bd-%lu", seq);
	const char *model = json_string_value(json_object_get(j, "model"));
	snprintf(s->model, sizeof s->model, "%s", provider_route ? d->model : model ? model : "double");
	json_t *tools = json_object_get(j, "tools");
	const char *choice = json_string_value(json_object_get(j, "tool_choice"));
	if (json_array_size(tools) > 0 && !(choice && !strcmp(choice, "none"))) {
		const char *tn = json_string_value(json_object_get(json_object_get(json_array_get(tools, 0), "function"), "name"));
		snprintf(s->tool, sizeof s->tool, "%s", tn ? tn : "tool");
	}
	s->total = s->tool[0] ? 3 : d->o.tokens > 0 ? d->o.tokens : 6;
	json_int_t mt = json_integer_value(json_object_get(j, "max_tokens"));
	if (!s->tool[0] && mt > 0 && mt < s->total)
		s->total = (int)mt;
	s->mode = mode;
	s->n = mn;
	s->ms = mms;
	s->delay_ms = d->o.delay_ms;
	s->prompt_tokens = prompt;
	s->usage = mode != BD_NO_USAGE &&
		   json_is_true(json_object_get(json_object_get(j, "stream_options"), "include_usage"));
	bool stream = json_is_true(json_object_get(j, "stream"));
	json_decref(j);
	if (!stream) {
		/* The gateway always streams upstream; a plain answer keeps the double usable on its own. */
		char text[512] = "";
		for (int k = 0; k < s->total && strlen(text) < 480; k++)
			snprintf(text + strlen(text), sizeof text - strlen(text), "w%d ", k + 1);
		json_t *r = json_pack("{s:s,s:s,s:s,s:[{s:i,s:{s:s,s:s},s:s}]}", "id", s->id, "object", "chat.completion",
				      "model", s->model, "choices", "index", 0, "message", "role", "assistant", "content", text,
				      "finish_reason", "stop");
		if (mode != BD_NO_USAGE)
			json_object_set_new(r, "usage", json_pack("{s:i,s:i,s:i}", "prompt_tokens", prompt,
								  "completion_tokens", s->total, "total_tokens",
								  prompt + s->total));
		free(s);
		reply_json(req, 200, r);
		return;
	}
	s->timer = evtimer_new(d->base, step, s);
	s->next = d->streams;
	if (d->streams)
		d->streams->prev = s;
	d->streams = s;
	count(d, &d->open_streams, 1);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Content-Type", "text/event-stream");
	evhttp_add_header(h, "Cache-Control", "no-cache");
	evhttp_send_reply_start(req, 200, "OK");
	evhttp_connection_set_closecb(s->conn, on_client_close, s);
	json_t *c = chunk_base(s);
	json_object_set_new(c, "choices", json_pack("[{s:i,s:{s:s,s:s},s:n}]", "index", 0, "delta", "role", "assistant",
						    "content", "", "finish_reason"));
	send_event(s, c);
	step(-1, 0, s);
}

static void on_catalog(struct evhttp_request *req, struct brain_double *d)
{
	reply_json(req, 200,
		   json_pack("{s:b,s:{s:s,s:s},s:[{s:s,s:s,s:s,s:s,s:{s:s,s:s,s:s}}]}", "ok", 1, "provider", "actorId",
			     d->actor, "peerId", d->peer_id, "resources", "id", "res_double", "resourceId", "res_double",
			     "kind", "model", "label", d->model, "price", "unit", "token", "amount", d->price, "currency",
			     "USDC"));
}

static void on_lease(struct evhttp_request *req, struct brain_double *d)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);
	char *body = malloc(n + 1);
	evbuffer_remove(in, body, n);
	body[n] = 0;
	json_error_t je;
	json_t *j = json_loads(body, 0, &je);
	free(body);
	json_t *rq = json_object_get(j, "request");
	const char *rid = json_string_value(json_object_get(rq, "resourceId"));
	if (!json_is_string(json_object_get(j, "signature")) || !rid || strcmp(rid, "res_double") != 0) {
		json_decref(j);
		reply_json(req, 400, json_pack("{s:b,s:{s:s,s:s}}", "ok", 0, "error", "code", "E_INVALID_ARGUMENT", "message",
					       "E_INVALID_ARGUMENT: bad lease request"));
		return;
	}
	json_decref(j);
	char tok[48], lid[48];
	pthread_mutex_lock(&d->mu);
	int k = ++d->leases;
	snprintf(tok, sizeof tok, "tok_double%08d%06lu", k, (unsigned long)(time(NULL) % 1000000));
	if (d->ntokens < MAX_TOKENS_ISSUED)
		snprintf(d->tokens[d->ntokens++], sizeof d->tokens[0], "%s", tok);
	pthread_mutex_unlock(&d->mu);
	snprintf(lid, sizeof lid, "lease_double_%d", k);
	reply_json(req, 200,
		   json_pack("{s:s,s:s,s:s,s:s,s:s,s:I}", "leaseId", lid, "orderId", "order_double", "accessToken", tok,
			     "kind", "model", "providerPeerId", d->peer_id, "expiresAt",
			     (json_int_t)time(NULL) * 1000 + 3600000));
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct brain_double *d = arg;
	const char *uri = evhttp_request_get_uri(req);
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	if (cmd == EVHTTP_REQ_POST && !strncmp(uri, "/v1/chat/completions", 20))
		on_chat(req, d, false);
	else if (d->o.provider && cmd == EVHTTP_REQ_POST && !strcmp(uri, "/web3/resources/model/chat"))
		on_chat(req, d, true);
	else if (d->o.provider && cmd == EVHTTP_REQ_GET && !strcmp(uri, "/web3/resources/list"))
		on_catalog(req, d);
	else if (d->o.provider && cmd == EVHTTP_REQ_POST && !strcmp(uri, "/web3/market/lease"))
		on_lease(req, d);
	else
		error_reply(req, 404, "invalid_request_error", "not_found", "not found");
}

static void *run(void *arg)
{
	struct brain_double *d = arg;
	event_base_dispatch(d->base);
	return NULL;
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(((struct brain_double *)arg)->base);
}

struct brain_double *bd_start(const struct bd_opts *o)
{
	struct brain_double *d = calloc(1, sizeof *d);
	if (o)
		d->o = *o;
	snprintf(d->model, sizeof d->model, "%s", d->o.model ? d->o.model : "market-model");
	snprintf(d->price, sizeof d->price, "%s", d->o.price ? d->o.price : "1");
	d->o.model = NULL;
	d->o.price = NULL;
	d->o.api_key = o && o->api_key ? strdup(o->api_key) : NULL;
	pthread_mutex_init(&d->mu, NULL);
	/* A fixed identity per port would do; a random one shows the gateway learns it from the catalog. */
	struct node_key k;
	node_key_generate(&k);
	peerid_string_from_ed25519(k.pk, d->peer_id, sizeof d->peer_id);
	struct wallet w;
	wallet_generate(&w);
	snprintf(d->actor, sizeof d->actor, "%s", w.address);
	wallet_wipe(&w);
	node_key_wipe(&k);
	/* bd_stop wakes the double's loop from the test's thread. */
	evthread_use_pthreads();
	d->base = event_base_new();
	d->http = d->base ? evhttp_new(d->base) : NULL;
	if (!d->http)
		goto fail;
	evhttp_set_gencb(d->http, on_request, d);
	evhttp_set_max_body_size(d->http, 8 << 20);
	struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(d->http, "127.0.0.1", 0);
	if (!bs) {
		fprintf(stderr, "brain_double: cannot bind\n");
		goto fail;
	}
	struct sockaddr_in sa;
	socklen_t sl = sizeof sa;
	getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl);
	d->port = ntohs(sa.sin_port);
	snprintf(d->url, sizeof d->url, "http://127.0.0.1:%d", d->port);
	d->stop_ev = event_new(d->base, -1, EV_PERSIST, on_stop, d);
	struct timeval day = {86400, 0};
	event_add(d->stop_ev, &day);
	if (pthread_create(&d->thread, NULL, run, d) != 0) {
		d->thread = 0;
		goto fail;
	}
	return d;
fail:
	bd_stop(d);
	return NULL;
}

void bd_stop(struct brain_double *d)
{
	if (!d)
		return;
	if (d->thread) {
		event_active(d->stop_ev, EV_TIMEOUT, 0);
		pthread_join(d->thread, NULL);
	}
	/* Streams still open (stalled on purpose): drop their connections, which frees their requests. */
	while (d->streams) {
		struct bd_stream *st = d->streams;
		evhttp_connection_set_closecb(st->conn, NULL, NULL);
		evhttp_connection_free(st->conn);
		stream_free(st);
	}
	if (d->http)
		evhttp_free(d->http);
	if (d->stop_ev)
		event_free(d->stop_ev);
	if (d->base)
		event_base_free(d->base);
	free(d->last_body);
	free(d->last_auth);
	free((char *)d->o.api_key);
	pthread_mutex_destroy(&d->mu);
	free(d);
}

void bd_set(struct brain_double *d, enum bd_mode mode, int n, int ms)
{
	pthread_mutex_lock(&d->mu);
	d->mode = mode;
	d->mode_n = n;
	d->mode_ms = ms;
	pthread_mutex_unlock(&d->mu);
}

int bd_port(const struct brain_double *d)
{
	return d->port;
}

const char *bd_url(const struct brain_double *d)
{
	return d->url;
}

static int get(struct brain_double *d, int *f)
{
	pthread_mutex_lock(&d->mu);
	int v = *f;
	pthread_mutex_unlock(&d->mu);
	return v;
}

int bd_requests(struct brain_double *d)
{
	return get(d, &d->requests);
}

int bd_leases(struct brain_double *d)
{
	return get(d, &d->leases);
}

int bd_abandoned(struct brain_double *d)
{
	return get(d, &d->abandoned);
}

int bd_open_streams(struct brain_double *d)
{
	return get(d, &d->open_streams);
}

static char *dup_locked(struct brain_double *d, char **f)
{
	pthread_mutex_lock(&d->mu);
	char *v = *f ? strdup(*f) : NULL;
	pthread_mutex_unlock(&d->mu);
	return v;
}

char *bd_last_body(struct brain_double *d)
{
	return dup_locked(d, &d->last_body);
}

char *bd_last_auth(struct brain_double *d)
{
	return dup_locked(d, &d->last_auth);
}

void bd_reset_stats(struct brain_double *d)
{
	pthread_mutex_lock(&d->mu);
	d->requests = d->abandoned = 0;
	pthread_mutex_unlock(&d->mu);
}
