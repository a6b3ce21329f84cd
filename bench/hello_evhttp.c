/* The anchor of bench_node.sh: a bare libevent evhttp server that answers every request with a small JSON
 * body, nothing else (no routing, auth, parsing or metrics). Usage: hello_evhttp HOST:PORT ADDRFILE — binds
 * (port 0 = any), writes the bound "HOST:PORT" to ADDRFILE, serves until SIGTERM/SIGINT. */
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

static void hello(struct evhttp_request *req, void *arg)
{
	(void)arg;
	struct evbuffer *b = evbuffer_new();
	evbuffer_add(b, "{\"ok\":true}", 11);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	event_base_loopexit(arg, NULL);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: hello_evhttp HOST:PORT ADDRFILE\n");
		return 2;
	}
	char host[64];
	const char *colon = strrchr(argv[1], ':');
	if (!colon || (size_t)(colon - argv[1]) >= sizeof host)
		return 2;
	snprintf(host, sizeof host, "%.*s", (int)(colon - argv[1]), argv[1]);
	struct event_base *base = event_base_new();
	struct evhttp *http = evhttp_new(base);
	evhttp_set_gencb(http, hello, NULL);
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(http, host, (ev_uint16_t)strtoul(colon + 1, NULL, 10));
	if (!bs) {
		fprintf(stderr, "hello_evhttp: cannot bind %s\n", argv[1]);
		return 1;
	}
	struct sockaddr_in a;
	socklen_t l = sizeof a;
	getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&a, &l);
	FILE *f = fopen(argv[2], "we");
	if (!f)
		return 1;
	fprintf(f, "%s:%u\n", host, ntohs(a.sin_port));
	fclose(f);
	struct event *s1 = evsignal_new(base, SIGTERM, on_signal, base);
	struct event *s2 = evsignal_new(base, SIGINT, on_signal, base);
	evsignal_add(s1, NULL);
	evsignal_add(s2, NULL);
	event_base_dispatch(base);
	event_free(s1);
	event_free(s2);
	evhttp_free(http);
	event_base_free(base);
	return 0;
}
