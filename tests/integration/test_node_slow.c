/* Slow and abusive clients: idle connections, headers dripped byte by byte (total header deadline, not an
 * idle timer), bodies that never finish, and the connection cap. The node must close them and keep serving
 * everyone else. */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

/* True once the peer closed fd (reads EOF or a reset), waiting up to ms. */
static bool closed_within(int fd, int ms)
{
	char buf[4096];
	for (int waited = 0; waited <= ms; waited += 50) {
		struct pollfd p = {fd, POLLIN, 0};
		if (poll(&p, 1, 50) > 0) {
			ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
			if (r <= 0)
				return true;
		}
	}
	return false;
}

static double metric(struct hnode *n, const char *series)
{
	struct h_resp r;
	double v = -1;
	if (h_get(n, "/metrics", &r) == 0) {
		const char *p = strstr(r.body, series);
		if (p)
			v = strtod(p + strlen(series), NULL);
	}
	h_resp_free(&r);
	return v;
}

static void t_slow_clients(void **st)
{
	(void)st;
	struct hnode_opts o = {.config_json = "{\"api\":{\"headerTimeoutMs\":400,\"bodyTimeoutMs\":400}}"};
	struct hnode *n = h_node_new(&o);
	assert_non_null(n);
	assert_int_equal(h_node_start(n), 0);

	/* 1. connects and says nothing */
	int fd = h_connect(n);
	assert_true(fd >= 0);
	assert_true(closed_within(fd, 10000));
	close(fd);

	/* 2. drips header lines faster than any idle timeout would notice */
	fd = h_connect(n);
	assert_true(fd >= 0);
	assert_int_equal(h_send(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n"), 0);
	bool closed = false;
	for (int i = 0; i < 200 && !closed; i++) {
		if (h_send(fd, "X-Drip: 1\r\n") < 0) {
			closed = true;
			break;
		}
		closed = closed_within(fd, 50);
	}
	assert_true(closed);
	close(fd);

	/* 3. promises a body and never finishes it */
	fd = h_connect(n);
	assert_true(fd >= 0);
	char hdr[512];
	snprintf(hdr, sizeof hdr,
		 "POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer %s\r\n"
		 "Content-Length: 1000\r\n\r\n{\"jsonrpc\":",
		 n->token);
	assert_int_equal(h_send(fd, hdr), 0);
	assert_true(closed_within(fd, 10000));
	close(fd);

	/* 4. a well-behaved client on a raw socket still gets its answer, and keep-alive works */
	fd = h_connect(n);
	assert_true(fd >= 0);
	assert_int_equal(h_send(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n"
				    "Connection: close\r\n\r\n"),
			 0);
	char buf[8192];
	assert_true(h_recv_all(fd, buf, sizeof buf, 10000) > 0);
	const char *first = strstr(buf, "HTTP/1.1 200");
	assert_non_null(first);
	assert_non_null(strstr(first + 1, "HTTP/1.1 200"));
	close(fd);

	/* 5. garbage instead of HTTP: a 400, no crash */
	fd = h_connect(n);
	assert_true(fd >= 0);
	assert_int_equal(h_send(fd, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n"), 0);
	h_recv_all(fd, buf, sizeof buf, 5000);
	close(fd);

	assert_true(metric(n, "clawgrid_http_slow_client_timeouts_total{phase=\"headers\"} ") >= 1);
	assert_true(metric(n, "clawgrid_http_slow_client_timeouts_total{phase=\"body\"} ") >= 1);
	json_decref(h_rpc_ok(n, "node.info", NULL));
	assert_int_equal(h_node_stop(n), 0);
	h_node_free(n);
}

static void t_connection_cap(void **st)
{
	(void)st;
	struct hnode_opts o = {.config_json = "{\"api\":{\"maxConnections\":3,\"headerTimeoutMs\":60000}}"};
	struct hnode *n = h_node_new(&o);
	assert_non_null(n);
	assert_int_equal(h_node_start(n), 0);
	int fds[3];
	for (int i = 0; i < 3; i++) {
		fds[i] = h_connect(n);
		assert_true(fds[i] >= 0);
	}
	/* let the node adopt them */
	h_sleep_ms(200);
	int extra = h_connect(n);
	assert_true(extra >= 0);
	assert_true(closed_within(extra, 10000));
	close(extra);
	/* the held connections still work */
	assert_int_equal(h_send(fds[0], "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 0);
	char buf[4096];
	assert_true(h_recv_all(fds[0], buf, sizeof buf, 10000) > 0);
	assert_non_null(strstr(buf, "HTTP/1.1 200"));
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	/* once they are gone, new clients get in again */
	struct h_resp r;
	bool ok = false;
	for (int i = 0; i < 100 && !ok; i++) {
		ok = h_get(n, "/healthz", &r) == 0 && r.status == 200;
		h_resp_free(&r);
		if (!ok)
			h_sleep_ms(50);
	}
	assert_true(ok);
	assert_true(metric(n, "\nclawgrid_http_connections_rejected_total ") >= 1);
	assert_int_equal(h_node_stop(n), 0);
	h_node_free(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_slow_clients),
		cmocka_unit_test(t_connection_cap),
	};
	h_require_bin();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
