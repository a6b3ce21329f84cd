/* TEST DOUBLE of an OpenAI-compatible streaming server; see oai_double.h. */
#include "oai_double.h"

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
#include <event2/thread.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

struct oai_double {
	struct event_base *base;
	bool own_base;
	pthread_t thread;
	struct evhttp *http;
	struct event *stop_ev;
	struct oai_double_opts o;
	int port;
	char url[64];
	pthread_mutex_t mu;
	int requests, abandoned, open_streams;
	char *last_body, *last_auth;
	unsigned long seq;
	struct stream *streams; /* open streams (loop thread only), freed at stop */
};

struct stream {
	struct stream *prev, *next;
	struct oai_double *d;
	struct evhttp_request *req;
	struct evhttp_connection *conn;
	struct event *timer;
	char id[48], model[128];
	int sent, total, cut, stall, delay_ms, prompt_tokens;
	bool usage, role_sent, cutting;
};

static void count(struct oai_double *d, int *field, int delta)
{
	pthread_mutex_lock(&d->mu);
	*field += delta;
	pthread_mutex_unlock(&d->mu);
}

static int directive(const char *text, const char *name, int def)
{
	char pat[64];
	snprintf(pat, sizeof pat, "[double:%s=", name);
	const char *p = text ? strstr(text, pat) : NULL;
	if (!p)
		return def;
	int v = 0;
	for (p += strlen(pat); *p >= '0' && *p <= '9' && v < 1000000; p++)
		v = v * 10 + (*p - '0');
	return v;
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

static void error_reply(struct evhttp_request *req, int code, const char *msg)
{
	reply_json(req, code, json_pack("{s:{s:s,s:s,s:i}}", "error", "message", msg, "type", "server_error", "code",
					code));
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

static json_t *chunk_base(struct stream *s)
{
	return json_pack("{s:s,s:s,s:I,s:s,s:s}", "id", s->id, "object", "chat.completion.chunk", "created",
			 (json_int_t)time(NULL), "model", s->model, "system_fingerprint", "double");
}

static void send_event(struct stream *s, json_t *v)
{
	struct evbuffer *b = evbuffer_new();
	if (v) {
		char *txt = json_dumps(v, JSON_COMPACT);
		evbuffer_add_printf(b, "data: %s\n\n", txt);
		free(txt);
		json_decref(v);
	} else {
		evbuffer_add_printf(b, "data: [DONE]\n\n");
	}
	evhttp_send_reply_chunk(s->req, b);
	evbuffer_free(b);
}

static void stream_free(struct stream *s)
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
	struct stream *s = arg;
	/* The client went away mid-stream. libevent 2.1 detaches an unfinished streamed request from a failed
	 * connection and leaves it to the user: ending the reply is what frees it. When the whole server is
	 * being freed instead, the request is still attached and evhttp frees it. */
	count(s->d, &s->d->abandoned, 1);
	if (evhttp_request_get_connection(s->req) == NULL)
		evhttp_send_reply_end(s->req);
	stream_free(s);
}

static void step(evutil_socket_t fd, short what, void *arg)
{
	struct stream *s = arg;
	for (;;) {
		if (s->cut >= 0 && s->sent >= s->cut) {
			if (s->cutting) {
				/* Drop the connection without the terminating chunk: a cut stream. */
				evhttp_connection_set_closecb(s->conn, NULL, NULL);
				evhttp_connection_free(s->conn);
				stream_free(s);
				return;
			}
			/* Let what was sent reach the client first (and leave evhttp's callback). */
			s->cutting = true;
			struct timeval tv = {0, 50000};
			evtimer_add(s->timer, &tv);
			return;
		}
		if (s->stall >= 0 && s->sent >= s->stall)
			return; /* the client's timeout or disconnect ends it */
		if (s->sent < s->total) {
			char word[24];
			snprintf(word, sizeof word, "w%d ", s->sent + 1);
			json_t *c = chunk_base(s);
			json_object_set_new(c, "choices",
					    json_pack("[{s:i,s:{s:s},s:n}]", "index", 0, "delta", "content", word,
						      "finish_reason"));
			send_event(s, c);
			s->sent++;
		} else {
			json_t *c = chunk_base(s);
			json_object_set_new(c, "choices",
					    json_pack("[{s:i,s:{},s:s}]", "index", 0, "delta", "finish_reason", "stop"));
			send_event(s, c);
			if (s->usage) {
				c = chunk_base(s);
				json_object_set_new(c, "choices", json_array());
				json_object_set_new(c, "usage",
						    json_pack("{s:i,s:i,s:i}", "prompt_tokens", s->prompt_tokens,
							      "completion_tokens", s->total, "total_tokens",
							      s->prompt_tokens + s->total));
				send_event(s, c);
			}
			send_event(s, NULL);
			evhttp_connection_set_closecb(s->conn, NULL, NULL);
			evhttp_send_reply_end(s->req);
			stream_free(s);
			return;
		}
		if (s->delay_ms > 0) {
			struct timeval tv = {s->delay_ms / 1000, (s->delay_ms % 1000) * 1000};
			evtimer_add(s->timer, &tv);
			return;
		}
	}
}

static void on_chat(struct evhttp_request *req, struct oai_double *d)
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
	pthread_mutex_unlock(&d->mu);
	if (d->o.api_key) {
		char want[300];
		snprintf(want, sizeof want, "Bearer %s", d->o.api_key);
		if (!auth || strcmp(auth, want) != 0) {
			free(body);
			error_reply(req, 401, "invalid api key");
			return;
		}
	}
	json_error_t je;
	json_t *j = json_loads(body, 0, &je);
	free(body);
	json_t *msgs = json_object_get(j, "messages");
	if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
		json_decref(j);
		error_reply(req, 400, "messages: required");
		return;
	}
	int prompt = 0;
	size_t i;
	json_t *m;
	const char *last = NULL;
	json_array_foreach(msgs, i, m) {
		const char *c = json_string_value(json_object_get(m, "content"));
		prompt += count_words(c);
		last = c;
	}
	int fail = directive(last, "fail", 0);
	if (fail >= 400) {
		json_decref(j);
		error_reply(req, fail, "injected failure");
		return;
	}
	int total = directive(last, "tokens", d->o.tokens > 0 ? d->o.tokens : 8);
	json_int_t max_tokens = json_integer_value(json_object_get(j, "max_tokens"));
	if (max_tokens > 0 && max_tokens < total)
		total = (int)max_tokens;
	const char *model = json_string_value(json_object_get(j, "model"));
	bool stream = json_is_true(json_object_get(j, "stream"));
	bool asked = json_is_true(json_object_get(json_object_get(j, "stream_options"), "include_usage"));
	bool usage = d->o.usage == OAI_USAGE_ALWAYS || (d->o.usage == OAI_USAGE_ASKED && asked);
	if (!stream) {
		size_t cap = (size_t)total * 12 + 1, used = 0;
		char *text = calloc(1, cap);
		for (int k = 0; k < total; k++)
			used += (size_t)snprintf(text + used, cap - used, "w%d ", k + 1);
		json_t *r = json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:{s:s,s:s},s:s}]}", "id", "chatcmpl-double", "object",
				      "chat.completion", "created", (json_int_t)time(NULL), "model", model ? model : "double",
				      "choices", "index", 0, "message", "role", "assistant", "content", text,
				      "finish_reason", "stop");
		if (d->o.usage != OAI_USAGE_NEVER)
			json_object_set_new(r, "usage", json_pack("{s:i,s:i,s:i}", "prompt_tokens", prompt,
								  "completion_tokens", total, "total_tokens",
								  prompt + total));
		free(text);
		json_decref(j);
		reply_json(req, 200, r);
		return;
	}
	struct stream *s = calloc(1, sizeof *s);
	s->d = d;
	s->req = req;
	s->conn = evhttp_request_get_connection(req);
	snprintf(s->id, sizeof s->id, "chatcmpl-double-%lu", seq);
	snprintf(s->model, sizeof s->model, "%s", model ? model : "double");
	s->total = total;
	s->cut = directive(last, "cut", -1);
	s->stall = directive(last, "stall", -1);
	s->delay_ms = directive(last, "slow", d->o.token_delay_ms);
	s->prompt_tokens = prompt;
	s->usage = usage;
	s->timer = evtimer_new(d->base, step, s);
	s->next = d->streams;
	if (d->streams)
		d->streams->prev = s;
	d->streams = s;
	json_decref(j);
	count(d, &d->open_streams, 1);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Content-Type", "text/event-stream");
	evhttp_add_header(h, "Cache-Control", "no-cache");
	evhttp_send_reply_start(req, 200, "OK");
	evhttp_connection_set_closecb(s->conn, on_client_close, s);
	/* First chunk: the role, as llama-server sends it. */
	json_t *c = chunk_base(s);
	json_object_set_new(c, "choices",
			    json_pack("[{s:i,s:{s:s,s:n},s:n}]", "index", 0, "delta", "role", "assistant", "content",
				      "finish_reason"));
	send_event(s, c);
	step(-1, 0, s);
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct oai_double *d = arg;
	const char *uri = evhttp_request_get_uri(req);
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	if (cmd == EVHTTP_REQ_POST && strncmp(uri, "/v1/chat/completions", 20) == 0) {
		on_chat(req, d);
	} else if (cmd == EVHTTP_REQ_GET && strcmp(uri, "/v1/models") == 0) {
		reply_json(req, 200, json_pack("{s:s,s:[{s:s,s:s,s:s}]}", "object", "list", "data", "id", "double", "object",
					       "model", "owned_by", "double"));
	} else if (cmd == EVHTTP_REQ_GET && strcmp(uri, "/health") == 0) {
		reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
	} else {
		error_reply(req, 404, "not found");
	}
}

static int setup(struct oai_double *d, const struct oai_double_opts *o)
{
	if (o)
		d->o = *o;
	pthread_mutex_init(&d->mu, NULL);
	d->http = evhttp_new(d->base);
	if (!d->http)
		return -1;
	evhttp_set_gencb(d->http, on_request, d);
	evhttp_set_max_body_size(d->http, 4 << 20);
	struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(d->http, "127.0.0.1", (ev_uint16_t)d->o.port);
	if (!bs) {
		fprintf(stderr, "oai_double: cannot bind\n");
		return -1;
	}
	struct sockaddr_in sa;
	socklen_t sl = sizeof sa;
	getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl);
	d->port = ntohs(sa.sin_port);
	snprintf(d->url, sizeof d->url, "http://127.0.0.1:%d", d->port);
	return 0;
}

struct oai_double *oai_double_attach(struct event_base *base, const struct oai_double_opts *o)
{
	struct oai_double *d = calloc(1, sizeof *d);
	d->base = base;
	if (setup(d, o) < 0) {
		oai_double_stop(d);
		return NULL;
	}
	return d;
}

static void *run(void *arg)
{
	struct oai_double *d = arg;
	event_base_dispatch(d->base);
	return NULL;
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
	struct oai_double *d = arg;
	event_base_loopbreak(d->base);
}

static void threads_init(void)
{
	evthread_use_pthreads();
}

struct oai_double *oai_double_start(const struct oai_double_opts *o)
{
	/* The loop runs on its own thread and is stopped from the caller's: libevent must know about threads
	 * (event_active from another thread then wakes the loop). */
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, threads_init);
	struct oai_double *d = calloc(1, sizeof *d);
	d->base = event_base_new();
	d->own_base = true;
	if (!d->base || setup(d, o) < 0) {
		oai_double_stop(d);
		return NULL;
	}
	/* A persistent never-firing event keeps the loop alive between requests; stop_ev ends it. */
	d->stop_ev = event_new(d->base, -1, EV_PERSIST, on_stop, d);
	struct timeval day = {86400, 0};
	event_add(d->stop_ev, &day);
	if (pthread_create(&d->thread, NULL, run, d) != 0) {
		d->thread = 0;
		oai_double_stop(d);
		return NULL;
	}
	return d;
}

void oai_double_stop(struct oai_double *d)
{
	if (!d)
		return;
	if (d->own_base && d->thread) {
		event_active(d->stop_ev, EV_TIMEOUT, 0);
		pthread_join(d->thread, NULL);
	}
	if (d->http)
		evhttp_free(d->http);
	while (d->streams)
		stream_free(d->streams);
	if (d->stop_ev)
		event_free(d->stop_ev);
	if (d->own_base && d->base)
		event_base_free(d->base);
	free(d->last_body);
	free(d->last_auth);
	pthread_mutex_destroy(&d->mu);
	free(d);
}

int oai_double_port(const struct oai_double *d)
{
	return d->port;
}

const char *oai_double_url(const struct oai_double *d)
{
	return d->url;
}

static int get(struct oai_double *d, int *f)
{
	pthread_mutex_lock(&d->mu);
	int v = *f;
	pthread_mutex_unlock(&d->mu);
	return v;
}

int oai_double_requests(struct oai_double *d)
{
	return get(d, &d->requests);
}

int oai_double_abandoned(struct oai_double *d)
{
	return get(d, &d->abandoned);
}

int oai_double_open_streams(struct oai_double *d)
{
	return get(d, &d->open_streams);
}

static char *dup_locked(struct oai_double *d, char **f)
{
	pthread_mutex_lock(&d->mu);
	char *v = *f ? strdup(*f) : NULL;
	pthread_mutex_unlock(&d->mu);
	return v;
}

char *oai_double_last_body(struct oai_double *d)
{
	return dup_locked(d, &d->last_body);
}

char *oai_double_last_auth(struct oai_double *d)
{
	return dup_locked(d, &d->last_auth);
}

void oai_double_reset_stats(struct oai_double *d)
{
	pthread_mutex_lock(&d->mu);
	d->requests = d->abandoned = 0;
	pthread_mutex_unlock(&d->mu);
}
