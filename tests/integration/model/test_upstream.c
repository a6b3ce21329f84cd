/* The `openai` upstream-engine backend: the pure health rule for llama-server, vLLM and Ollama, then the
 * registry against llama_server_double — a named test double of llama-server's /health, /metrics and
 * /v1/chat/completions (evhttp on 127.0.0.1, port 0) — to show that the provider stops admitting work while
 * the engine loads or is full, and forwards streamed and non-streamed completions with their usage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "base/buf.h"
#include "base/log.h"
#include "model/model.h"
#include "model/upstream.h"

static void t_metric(void **s)
{
	(void)s;
	const char *m = "# HELP llamacpp:requests_processing Number of requests processing.\n"
			"# TYPE llamacpp:requests_processing gauge\n"
			"llamacpp:requests_processing 2\n"
			"llamacpp:requests_deferred 1\n"
			"vllm:num_requests_running{model_name=\"a\"} 3.0\n"
			"vllm:num_requests_running{model_name=\"b\"} 1.0\n"
			"vllm:num_requests_waiting_total 9\n";
	assert_int_equal((int)up_metric(m, "llamacpp:requests_processing"), 2);
	assert_int_equal((int)up_metric(m, "llamacpp:requests_deferred"), 1);
	assert_int_equal((int)up_metric(m, "vllm:num_requests_running"), 4); /* labelled samples summed */
	assert_int_equal((int)up_metric(m, "vllm:num_requests_waiting"), -1); /* a longer name is another metric */
	assert_int_equal((int)up_metric(NULL, "x"), -1);
}

static void t_health_rule(void **s)
{
	(void)s;
	struct up_health h;
	up_health_eval(UP_LLAMA_SERVER, 0, NULL, 0, NULL, 2, 0, &h);
	assert_int_equal(h.state, UP_DOWN);
	up_health_eval(UP_LLAMA_SERVER, 503, "{\"error\":{\"code\":503,\"message\":\"Loading model\"}}", 0, NULL, 2, 0, &h);
	assert_int_equal(h.state, UP_LOADING);
	up_health_eval(UP_LLAMA_SERVER, 503, "{\"status\":\"no slot available\"}", 0, NULL, 2, 0, &h);
	assert_int_equal(h.state, UP_FULL);
	up_health_eval(UP_LLAMA_SERVER, 200, "{\"status\":\"ok\"}", 501, "metrics disabled", 2, 0, &h);
	assert_int_equal(h.state, UP_OK);
	up_health_eval(UP_LLAMA_SERVER, 200, "{\"status\":\"ok\"}", 200,
		       "llamacpp:requests_processing 1\nllamacpp:requests_deferred 0\n", 2, 0, &h);
	assert_int_equal(h.state, UP_OK);
	assert_int_equal(h.running, 1);
	up_health_eval(UP_LLAMA_SERVER, 200, "{\"status\":\"ok\"}", 200,
		       "llamacpp:requests_processing 2\nllamacpp:requests_deferred 0\n", 2, 0, &h);
	assert_int_equal(h.state, UP_FULL);
	up_health_eval(UP_VLLM, 200, "", 200, "vllm:num_requests_running 8\nvllm:num_requests_waiting 3\n", 64, 2, &h);
	assert_int_equal(h.state, UP_FULL);
	assert_int_equal(h.waiting, 3);
	up_health_eval(UP_VLLM, 200, "", 200, "vllm:num_requests_running 8\nvllm:num_requests_waiting 1\n", 64, 2, &h);
	assert_int_equal(h.state, UP_OK);
	up_health_eval(UP_VLLM, 500, "", 0, NULL, 64, 2, &h);
	assert_int_equal(h.state, UP_DOWN);
	up_health_eval(UP_OLLAMA, 200, "{\"version\":\"0.5.0\"}", 200, "{\"models\":[]}", 4, 0, &h);
	assert_int_equal(h.state, UP_OK);
	assert_int_equal(up_kind_parse("vllm"), UP_VLLM);
	assert_int_equal(up_kind_parse("tgi"), -1);
}

/* ---- llama_server_double ---- */

static struct {
	int health_status;   /* 200 or 503 */
	int processing, deferred;
	int chats;
	int closed;          /* streamed replies whose client went away */
	struct evhttp_request *held; /* a stream the double keeps open */
} dbl;

static void dbl_health(struct evhttp_request *r, void *a)
{
	(void)a;
	struct evbuffer *b = evbuffer_new();
	evbuffer_add_printf(b, dbl.health_status == 200 ? "{\"status\":\"ok\"}"
							: "{\"error\":{\"code\":503,\"message\":\"Loading model\"}}");
	evhttp_send_reply(r, dbl.health_status, dbl.health_status == 200 ? "OK" : "Unavailable", b);
	evbuffer_free(b);
}

static void dbl_metrics(struct evhttp_request *r, void *a)
{
	(void)a;
	struct evbuffer *b = evbuffer_new();
	evbuffer_add_printf(b, "# TYPE llamacpp:requests_processing gauge\nllamacpp:requests_processing %d\n"
			       "llamacpp:requests_deferred %d\n", dbl.processing, dbl.deferred);
	evhttp_send_reply(r, 200, "OK", b);
	evbuffer_free(b);
}

static void dbl_closed(struct evhttp_connection *c, void *a)
{
	(void)c;
	(void)a;
	dbl.closed++;
}

static void dbl_chat(struct evhttp_request *r, void *a)
{
	(void)a;
	dbl.chats++;
	struct evbuffer *in = evhttp_request_get_input_buffer(r);
	size_t n = evbuffer_get_length(in);
	char *body = calloc(1, n + 1);
	evbuffer_remove(in, body, n);
	json_t *j = json_loads(body, 0, NULL);
	free(body);
	assert_non_null(j);
	const char *model = json_string_value(json_object_get(j, "model"));
	assert_string_equal(model, "upstream-7b"); /* the engine's own name, not the local one */
	bool stream = json_is_true(json_object_get(j, "stream"));
	const char *first = json_string_value(json_object_get(json_array_get(json_object_get(j, "messages"), 0), "content"));
	bool hold = first && strcmp(first, "hold") == 0;
	struct evbuffer *b = evbuffer_new();
	if (!stream) {
		evbuffer_add_printf(b, "{\"id\":\"x\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":"
				       "{\"role\":\"assistant\",\"content\":\"Hello from the engine\"},\"finish_reason\":\"stop\"}],"
				       "\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":4,\"total_tokens\":11}}");
		evhttp_add_header(evhttp_request_get_output_headers(r), "Content-Type", "application/json");
		evhttp_send_reply(r, 200, "OK", b);
	} else {
		assert_true(json_is_true(json_object_get(json_object_get(j, "stream_options"), "include_usage")));
		evhttp_add_header(evhttp_request_get_output_headers(r), "Content-Type", "text/event-stream");
		evhttp_send_reply_start(r, 200, "OK");
		static const char *const parts[] = {"Hel", "lo ", "stream"};
		for (int i = 0; i < 3; i++) {
			evbuffer_add_printf(b, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"%s\"},"
					       "\"finish_reason\":null}]}\n\n", parts[i]);
			evhttp_send_reply_chunk(r, b);
		}
		if (hold) {
			dbl.held = r;
			evhttp_connection_set_closecb(evhttp_request_get_connection(r), dbl_closed, NULL);
		} else {
			evbuffer_add_printf(b, "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\n\n"
					       "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3,"
					       "\"total_tokens\":8}}\n\ndata: [DONE]\n\n");
			evhttp_send_reply_chunk(r, b);
			evhttp_send_reply_end(r);
		}
	}
	evbuffer_free(b);
	json_decref(j);
}

static struct event_base *base;

static void on_deadline(evutil_socket_t fd, short w, void *arg)
{
	(void)fd;
	(void)w;
	(void)arg;
	fprintf(stderr, "test deadline passed\n");
	abort();
}

static void spin_until(bool (*cond)(void *), void *arg)
{
	struct event *dl = evtimer_new(base, on_deadline, NULL);
	struct timeval tv = {30, 0};
	evtimer_add(dl, &tv);
	while (!cond(arg))
		event_base_loop(base, EVLOOP_ONCE);
	event_free(dl);
}

static struct model_registry *reg;

static bool state_is(void *want)
{
	json_t *info;
	cg_err e;
	assert_int_equal(model_info(reg, "upstream-7b", &info, &e), 0);
	bool r = strcmp(json_string_value(json_object_get(info, "state")), want) == 0;
	json_decref(info);
	return r;
}

struct res {
	int done;
	bool failed;
	cg_err err;
	buf text;
	json_t *resp;
};

static void on_chunk(void *arg, json_t *chunk)
{
	struct res *r = arg;
	const char *t = json_string_value(
		json_object_get(json_object_get(json_array_get(json_object_get(chunk, "choices"), 0), "delta"), "content"));
	if (t)
		assert_int_equal(buf_append(&r->text, t, strlen(t)), 0);
}

static void on_done(void *arg, json_t *resp, const cg_err *e)
{
	struct res *r = arg;
	r->done = 1;
	if (e) {
		r->failed = true;
		r->err = *e;
	} else {
		r->resp = json_incref(resp);
	}
}

static bool done_set(void *arg)
{
	return ((struct res *)arg)->done;
}

static const struct model_chat_cb cbs = {on_chunk, on_done};

static json_t *req(const char *content, bool stream)
{
	return json_pack("{s:s,s:[{s:s,s:s}],s:b}", "model", "upstream-7b", "messages", "role", "user", "content", content,
			 "stream", stream);
}

static bool held_set(void *a)
{
	(void)a;
	return dbl.held != NULL;
}

static bool closed_set(void *a)
{
	(void)a;
	return dbl.closed > 0;
}

/* Our sockets to the engine (peer port `port`) are close-on-exec: a child the node forks (a sandbox helper,
 * anything) must not inherit a connection to an engine. Returns how many were checked. */
static int check_engine_sockets_cloexec(int port)
{
	int n = 0;
	for (int fd = 3; fd < 1024; fd++) {
		struct stat st;
		struct sockaddr_storage peer;
		socklen_t pl = sizeof peer;
		if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode) || getpeername(fd, (struct sockaddr *)&peer, &pl) != 0 ||
		    peer.ss_family != AF_INET || ntohs(((struct sockaddr_in *)&peer)->sin_port) != port)
			continue;
		assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
		n++;
	}
	return n;
}

static void t_engine(void **s)
{
	(void)s;
	log_set_level(LOG_WARN);
	base = event_base_new();
	struct evhttp *http = evhttp_new(base);
	evhttp_set_cb(http, "/health", dbl_health, NULL);
	evhttp_set_cb(http, "/metrics", dbl_metrics, NULL);
	evhttp_set_cb(http, "/v1/chat/completions", dbl_chat, NULL);
	struct evhttp_bound_socket *sock = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
	assert_non_null(sock);
	struct sockaddr_storage ss;
	ev_socklen_t sl = sizeof ss;
	getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&ss, &sl);
	int port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
	dbl.health_status = 503;
	char dir[] = "/tmp/cg-up-XXXXXX";
	assert_non_null(mkdtemp(dir));
	json_t *cfg = json_pack("{s:[{s:s,s:s,s:s,s:[s],s:i,s:i}]}", "engines", "name", "ls1", "kind", "llama-server",
				"url", url, "models", "upstream-7b", "maxConcurrent", 2, "healthIntervalMs", 100);
	cg_err e;
	assert_int_equal(model_registry_new(base, cfg, dir, &reg, &e), 0);
	json_decref(cfg);
	/* Loading: refused with 503 and Retry-After. */
	spin_until(state_is, "loading");
	struct res r = {0};
	buf_init(&r.text, 4096);
	json_t *rq = req("hi", false);
	assert_null(model_chat_start(reg, rq, &cbs, &r, &e));
	assert_int_equal(e.code, CG_E_UNAVAILABLE);
	assert_int_equal(cg_err_http(&e), 503);
	assert_true(e.retry_after_s > 0);
	assert_non_null(strstr(e.msg, "loading"));
	assert_int_equal(dbl.chats, 0);
	/* Ready: a non-streamed completion, usage as the engine counted it. */
	dbl.health_status = 200;
	spin_until(state_is, "ok");
	assert_non_null(model_chat_start(reg, rq, &cbs, &r, &e));
	spin_until(done_set, &r);
	assert_false(r.failed);
	json_t *msg = json_object_get(json_array_get(json_object_get(r.resp, "choices"), 0), "message");
	assert_string_equal(json_string_value(json_object_get(msg, "content")), "Hello from the engine");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r.resp, "usage"), "total_tokens")), 11);
	assert_string_equal(json_string_value(json_object_get(r.resp, "model")), "upstream-7b");
	json_decref(r.resp);
	json_decref(rq);
	/* Streamed. */
	struct res st = {0};
	buf_init(&st.text, 4096);
	rq = req("stream please", true);
	assert_non_null(model_chat_start(reg, rq, &cbs, &st, &e));
	json_decref(rq);
	spin_until(done_set, &st);
	assert_false(st.failed);
	assert_string_equal(buf_cstr(&st.text), "Hello stream");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(st.resp, "usage"), "completion_tokens")), 3);
	json_decref(st.resp);
	buf_done(&st.text);
	/* Cancel mid-stream: the engine sees its client go away. */
	struct res h = {0};
	buf_init(&h.text, 4096);
	rq = req("hold", true);
	struct model_chat *hc = model_chat_start(reg, rq, &cbs, &h, &e);
	json_decref(rq);
	assert_non_null(hc);
	spin_until(held_set, NULL);
	assert_true(check_engine_sockets_cloexec(port) >= 1);
	model_chat_cancel(hc);
	spin_until(closed_set, NULL);
	assert_false(h.done);
	evhttp_send_reply_end(dbl.held); /* lets evhttp free the request of the closed connection */
	dbl.held = NULL;
	buf_done(&h.text);
	/* Full (all slots processing): refused until it drains. */
	dbl.processing = 2;
	spin_until(state_is, "full");
	rq = req("hi", false);
	assert_null(model_chat_start(reg, rq, &cbs, &r, &e));
	assert_int_equal(e.code, CG_E_UNAVAILABLE);
	assert_non_null(strstr(e.msg, "full"));
	dbl.processing = 0;
	spin_until(state_is, "ok");
	r.done = 0;
	assert_non_null(model_chat_start(reg, rq, &cbs, &r, &e));
	spin_until(done_set, &r);
	assert_false(r.failed);
	json_decref(r.resp);
	json_decref(rq);
	json_t *status = model_status(reg);
	json_t *eng = json_array_get(json_object_get(status, "engines"), 0);
	assert_string_equal(json_string_value(json_object_get(eng, "kind")), "llama-server");
	/* The endpoint is a secret of the provider: not in status output. */
	char *dump = json_dumps(status, 0);
	assert_null(strstr(dump, url));
	free(dump);
	json_decref(status);
	buf_done(&r.text);
	model_registry_free(reg);
	evhttp_free(http);
	event_base_free(base);
	char cmd[64];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(t_metric), cmocka_unit_test(t_health_rule),
					   cmocka_unit_test(t_engine)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
