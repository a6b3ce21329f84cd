/* bench_brain_upstream — the fast OpenAI-compatible upstream under bench/bench_brain.sh: a small C server
 * (libevent, one thread) that answers POST .../chat/completions with a complete SSE stream at once
 * (role chunk, N one-word chunks, finish, usage when asked, [DONE]), or a plain chat.completion. A Node mock
 * would saturate long before the gateways under test; this one is not the bottleneck.
 * Usage: bench_brain_upstream PORT [TOKENS] — prints "ready PORT" when listening (PORT 0 = any). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

static int tokens = 16;
static unsigned long seq;

static void on_req(struct evhttp_request *req, void *arg)
{
	const char *uri = evhttp_request_get_uri(req);
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST || !strstr(uri, "/chat/completions")) {
		evhttp_send_error(req, 404, NULL);
		return;
	}
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);
	char body[8192];
	size_t k = n < sizeof body - 1 ? n : sizeof body - 1;
	evbuffer_copyout(in, body, k);
	body[k] = 0;
	/* Cheap substring checks: the bench sends fixed bodies and the gateways rewrite them predictably. */
	int stream = strstr(body, "\"stream\":true") || strstr(body, "\"stream\": true");
	int usage = strstr(body, "\"include_usage\":true") || strstr(body, "\"include_usage\": true");
	struct evbuffer *out = evbuffer_new();
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	unsigned long id = ++seq;
	if (!stream) {
		evbuffer_add_printf(out, "{\"id\":\"chatcmpl-b%lu\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"bench\","
					 "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"",
				    id);
		for (int i = 0; i < tokens; i++)
			evbuffer_add_printf(out, "w%d ", i + 1);
		evbuffer_add_printf(out, "\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":%d,"
					 "\"total_tokens\":%d}}",
				    tokens, tokens + 4);
		evhttp_add_header(h, "Content-Type", "application/json");
	} else {
		const char *pre = "data: {\"id\":\"chatcmpl-b";
		evbuffer_add_printf(out, "%s%lu\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"bench\",\"choices\":"
					 "[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
				    pre, id);
		for (int i = 0; i < tokens; i++)
			evbuffer_add_printf(out, "%s%lu\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"bench\","
						 "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"w%d \"},\"finish_reason\":null}]}\n\n",
					    pre, id, i + 1);
		evbuffer_add_printf(out, "%s%lu\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"bench\",\"choices\":"
					 "[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
				    pre, id);
		if (usage)
			evbuffer_add_printf(out, "%s%lu\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"bench\","
						 "\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":%d,"
						 "\"total_tokens\":%d}}\n\n",
					    pre, id, tokens, tokens + 4);
		evbuffer_add_printf(out, "data: [DONE]\n\n");
		evhttp_add_header(h, "Content-Type", "text/event-stream");
		evhttp_add_header(h, "Cache-Control", "no-cache");
	}
	evhttp_send_reply(req, 200, "OK", out);
	evbuffer_free(out);
}

int main(int argc, char **argv)
{
	int port = 0;
	if (argc > 1 && sscanf(argv[1], "%d", &port) != 1)
		return 2;
	if (argc > 2 && sscanf(argv[2], "%d", &tokens) != 1)
		return 2;
	if (tokens < 1 || tokens > 4096)
		tokens = 16;
	signal(SIGPIPE, SIG_IGN);
	struct event_base *base = event_base_new();
	struct evhttp *http = evhttp_new(base);
	evhttp_set_gencb(http, on_req, NULL);
	evhttp_set_max_body_size(http, 1 << 20);
	struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(http, "127.0.0.1", (ev_uint16_t)port);
	if (!bs) {
		fprintf(stderr, "bench_brain_upstream: cannot bind\n");
		return 1;
	}
	struct sockaddr_in sa;
	socklen_t sl = sizeof sa;
	getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl);
	printf("ready %d\n", ntohs(sa.sin_port));
	fflush(stdout);
	event_base_dispatch(base);
	evhttp_free(http);
	event_base_free(base);
	return 0;
}
