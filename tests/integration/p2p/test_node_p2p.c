/* The p2p module inside real nodes: two `clawgrid node` daemons on loopback, each listening on a libp2p
 * address from its config. Node B dials A over RPC (p2p.dial), pings it (p2p.ping), and both peer stores
 * record the other (p2p.peers, `clawgrid p2p peers`). Bad config (a listen address that is not a tcp
 * multiaddr, an unknown key, a bad muxer) keeps the node from starting, naming the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define P2P_CONFIG "{\"p2p\": {\"listen\": [\"/ip4/127.0.0.1/tcp/0\"], \"muxers\": [\"%s\"]}}"

static struct hnode *start_node(const char *muxer)
{
	static char cfg[2][256];
	static int which;
	char *c = cfg[which++ % 2];
	snprintf(c, 256, P2P_CONFIG, muxer);
	struct hnode_opts o = {.config_json = c};
	struct hnode *n = h_node_new(&o);
	assert_non_null(n);
	assert_int_equal(h_node_start(n), 0);
	return n;
}

static const char *first_addr(json_t *id)
{
	json_t *addrs = json_object_get(id, "addrs");
	assert_true(json_array_size(addrs) >= 1);
	return json_string_value(json_array_get(addrs, 0));
}

static json_t *find_peer(json_t *peers, const char *id)
{
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(peers, "peers"), i, p)
	{
		if (strcmp(json_string_value(json_object_get(p, "id")), id) == 0)
			return p;
	}
	return NULL;
}

static void t_two_nodes(void **st)
{
	struct hnode *a = start_node("yamux"), *b = start_node("mplex");
	json_t *ida = h_rpc_ok(a, "p2p.id", NULL);
	assert_string_equal(json_string_value(json_object_get(ida, "peerId")), a->peer_id);
	const char *addr = first_addr(ida);
	assert_non_null(strstr(addr, "/ip4/127.0.0.1/tcp/"));
	assert_non_null(strstr(addr, a->peer_id));

	/* B dials A: the answer is A's identify; the muxer is the one both support (A prefers yamux only, B
	 * only mplex -> no common muxer -> the dial fails with a reason). */
	json_t *params = json_pack("{s:s}", "addr", addr);
	json_t *err = h_rpc_err(b, "p2p.dial", params, NULL);
	assert_non_null(strstr(json_string_value(json_object_get(err, "message")), "dial failed"));
	json_decref(err);
	json_decref(params);
	h_node_stop(b);
	h_node_free(b);

	b = start_node("yamux");
	params = json_pack("{s:s}", "addr", addr);
	json_t *res = h_rpc_ok(b, "p2p.dial", params);
	assert_string_equal(json_string_value(json_object_get(res, "id")), a->peer_id);
	assert_string_equal(json_string_value(json_object_get(res, "muxer")), "/yamux/1.0.0");
	assert_non_null(strstr(json_string_value(json_object_get(res, "agentVersion")), "clawgrid/"));
	json_t *protos = json_object_get(res, "protocols");
	bool echo = false;
	for (size_t i = 0; i < json_array_size(protos); i++)
		echo |= strcmp(json_string_value(json_array_get(protos, i)), "/clawgrid/echo/1.0.0") == 0;
	assert_true(echo);
	json_decref(res);
	json_decref(params);

	/* ping by peer id over the open connection */
	params = json_pack("{s:s, s:i}", "peerId", a->peer_id, "count", 3);
	res = h_rpc_ok(b, "p2p.ping", params);
	assert_int_equal(json_array_size(json_object_get(res, "rttMs")), 3);
	json_decref(res);
	json_decref(params);

	/* both peer stores know the other */
	res = h_rpc_ok(b, "p2p.peers", NULL);
	json_t *pa = find_peer(res, a->peer_id);
	assert_non_null(pa);
	assert_int_equal(json_integer_value(json_object_get(pa, "connections")), 1);
	assert_non_null(json_object_get(pa, "rttMs"));
	json_decref(res);
	res = h_rpc_ok(a, "p2p.peers", NULL);
	assert_non_null(find_peer(res, b->peer_id));
	json_decref(res);
	char *out = NULL;
	assert_int_equal(h_cli(b, &out, NULL, "p2p", "peers", NULL), 0);
	assert_non_null(strstr(out, a->peer_id));
	free(out);
	/* --json after the subcommand, --all anywhere; each connected peer lists its connection */
	out = NULL;
	assert_int_equal(h_cli(b, &out, NULL, "p2p", "peers", "--json", "--all", NULL), 0);
	json_t *pj = json_loads(out, 0, NULL);
	assert_non_null(pj);
	json_t *conn = json_array_get(json_object_get(find_peer(pj, a->peer_id), "conns"), 0);
	assert_non_null(conn);
	assert_string_equal(json_string_value(json_object_get(conn, "direction")), "outbound");
	assert_string_equal(json_string_value(json_object_get(conn, "muxer")), "/yamux/1.0.0");
	assert_non_null(strstr(json_string_value(json_object_get(conn, "remoteAddr")), "/ip4/127.0.0.1/tcp/"));
	json_decref(pj);
	free(out);

	/* parameter validation */
	params = json_pack("{s:s}", "addr", "/ip4/127.0.0.1/udp/1");
	json_decref(h_rpc_err(b, "p2p.dial", params, NULL));
	json_decref(params);
	params = json_pack("{s:s, s:s}", "addr", addr, "bogus", "x");
	json_decref(h_rpc_err(b, "p2p.dial", params, "E_INVALID_ARGUMENT"));
	json_decref(params);
	params = json_pack("{s:s}", "peerId", "12D3KooWnotconnected");
	json_decref(h_rpc_err(b, "p2p.ping", params, "E_NOT_FOUND"));
	json_decref(params);

	json_decref(ida);
	assert_int_equal(h_node_stop(b), 0);
	assert_int_equal(h_node_stop(a), 0);
	h_log_assert_clean(a, NULL);
	h_log_assert_clean(b, NULL);
	h_node_free(a);
	h_node_free(b);
}

static void bad_config(const char *json, const char *needle)
{
	struct hnode_opts o = {.config_json = json, .start_timeout_ms = 5000};
	struct hnode *n = h_node_new(&o);
	assert_non_null(n);
	assert_int_not_equal(h_node_start(n), 0);
	assert_true(h_log_contains(n, needle));
	h_node_free(n);
}

static void t_bad_config(void **st)
{
	bad_config("{\"p2p\": {\"listen\": [\"/dns4/example.com/tcp/1\"]}}", "p2p.listen[0]");
	bad_config("{\"p2p\": {\"listen\": \"/ip4/127.0.0.1/tcp/0\"}}", "p2p.listen");
	bad_config("{\"p2p\": {\"muxers\": [\"spdy\"]}}", "p2p.muxers[0]");
	bad_config("{\"p2p\": {\"limits\": {\"maxConnections\": 0}}}", "p2p.limits.maxConnections");
	bad_config("{\"p2p\": {\"colour\": 1}}", "colour");
}

int main(void)
{
	h_require_bin();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_two_nodes),
		cmocka_unit_test(t_bad_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
