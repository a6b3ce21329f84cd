/* Wiring of the libp2p swarm into the node: config section "p2p", the swarm on the node's loop, and the
 * p2p.* RPC methods (p2p.id, p2p.peers, p2p.dial, p2p.ping).
 *
 *   "p2p": {
 *     "enabled": true,
 *     "listen": ["/ip4/0.0.0.0/tcp/0"],          ip4/ip6 + tcp multiaddrs, at most 8
 *     "muxers": ["yamux", "mplex"],               preference order
 *     "maxPeers": 1024,
 *     "limits": {"maxConnections": 256, "maxStreamsPerConnection": 512, "maxPendingDials": 32,
 *                "dialBackoffBaseMs": 1000, "dialBackoffMaxMs": 300000, "idleTimeoutMs": 300000,
 *                "handshakeTimeoutMs": 10000, "streamBufferBytes": 1048576,
 *                "connectionBufferBytes": 8388608}
 *   } */
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/log.h"
#include "base/version.h"
#include "crypto/identity.h"
#include "node/modules.h"
#include "p2p/multiaddr.h"
#include "p2p/mplex.h"
#include "p2p/peerstore.h"
#include "p2p/ping.h"
#include "p2p/swarm.h"
#include "p2p/yamux.h"
#include "rpc/rpc.h"

#define DEFAULT_LISTEN "/ip4/0.0.0.0/tcp/0"
#define RPC_DIAL_WAIT_MS 10000

struct cfg {
	bool enabled;
	const char *listen[P2P_MAX_LISTEN];
	size_t n_listen;
	struct p2p_swarm_cfg sw;
};

/* An RPC waiting for a connection to be identified (p2p.dial) or for pings (p2p.ping). */
struct pending {
	struct mod *md;
	struct pending *next;
	struct rpc_call *call;
	struct p2p_conn *conn;
	struct event *timer;
	int count;      /* p2p.ping: rounds asked */
	json_t *rtts;   /* p2p.ping: results so far */
	bool want_ping;
	bool finished;
	bool dialing;  /* a dial callback is still due: the struct must outlive it */
	bool pinging;  /* ping callbacks are still due */
};

struct mod {
	struct node *n;
	struct p2p_swarm *sw;
	struct pending *pending;
	struct event *reap_ev;
};

static int parse_limits(json_t *l, struct p2p_connmgr_cfg *c, cg_err *e)
{
	static const char *const keys[] = {"maxConnections", "maxStreamsPerConnection", "maxPendingDials",
					   "dialBackoffBaseMs", "dialBackoffMaxMs", "idleTimeoutMs",
					   "handshakeTimeoutMs", "streamBufferBytes", "connectionBufferBytes", NULL};
	const char *p = "p2p.limits";
	int64_t v;
	int r;
	if ((r = jp_only(l, p, keys, e)) < 0)
		return r;
#define INT_FIELD(key, min, max, dst)                                                                      \
	v = (int64_t)(dst);                                                                                 \
	if ((r = jp_int(l, p, key, 0, min, max, &v, e)) < 0)                                                 \
		return r;                                                                                   \
	dst = v;
	INT_FIELD("maxConnections", 1, 100000, c->max_conns)
	INT_FIELD("maxStreamsPerConnection", 8, 65536, c->max_streams_per_conn)
	INT_FIELD("maxPendingDials", 1, 10000, c->max_pending_dials)
	INT_FIELD("dialBackoffBaseMs", 10, 3600000, c->backoff_base_ms)
	INT_FIELD("dialBackoffMaxMs", 10, 86400000, c->backoff_max_ms)
	INT_FIELD("idleTimeoutMs", 0, 86400000, c->idle_ms)
	INT_FIELD("handshakeTimeoutMs", 100, 600000, c->handshake_ms)
	INT_FIELD("streamBufferBytes", 131072, 1 << 28, c->stream_buf_cap)
	INT_FIELD("connectionBufferBytes", 262144, 1 << 30, c->conn_buf_cap)
#undef INT_FIELD
	if (c->backoff_max_ms < c->backoff_base_ms)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "p2p.limits.dialBackoffMaxMs: must not be below dialBackoffBaseMs");
	return 0;
}

static int parse(json_t *sec, struct cfg *c, cg_err *e)
{
	static const char *const keys[] = {"enabled", "listen", "muxers", "maxPeers", "limits", NULL};
	memset(c, 0, sizeof *c);
	p2p_swarm_cfg_default(&c->sw);
	c->enabled = true;
	json_t *listen = NULL, *muxers = NULL, *limits = NULL;
	int64_t max_peers = (int64_t)c->sw.max_peers;
	int r;
	if ((r = jp_only(sec, "p2p", keys, e)) < 0 || (r = jp_bool(sec, "p2p", "enabled", 0, &c->enabled, e)) < 0 ||
	    (r = jp_arr(sec, "p2p", "listen", 0, P2P_MAX_LISTEN, &listen, e)) < 0 ||
	    (r = jp_arr(sec, "p2p", "muxers", 0, 2, &muxers, e)) < 0 ||
	    (r = jp_int(sec, "p2p", "maxPeers", 0, 16, 1000000, &max_peers, e)) < 0 ||
	    (r = jp_obj(sec, "p2p", "limits", 0, &limits, e)) < 0)
		return r;
	c->sw.max_peers = (size_t)max_peers;
	if (limits && (r = parse_limits(limits, &c->sw.limits, e)) < 0)
		return r;
	if (listen) {
		size_t i;
		json_t *v;
		json_array_foreach(listen, i, v)
		{
			const char *s = json_string_value(v);
			buf b;
			buf_init(&b, MA_MAX_BYTES);
			struct ma_dial d;
			bool ok = s && ma_from_string(&b, s, strlen(s), NULL) == 0 &&
				  ma_dial_target(b.data, b.len, &d, NULL) == 0 &&
				  (d.kind == MA_HOST_IP4 || d.kind == MA_HOST_IP6) && !d.circuit;
			buf_done(&b);
			if (!ok)
				return cg_fail(e, CG_E_INVALID_ARGUMENT,
					       "p2p.listen[%zu]: not an /ip4|ip6/ADDR/tcp/PORT multiaddr", i);
			c->listen[c->n_listen++] = s;
		}
	}
	if (!c->n_listen)
		c->listen[c->n_listen++] = DEFAULT_LISTEN;
	if (muxers) {
		size_t i;
		json_t *v;
		c->sw.muxers[0] = c->sw.muxers[1] = NULL;
		if (json_array_size(muxers) == 0)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "p2p.muxers: must list yamux and/or mplex");
		json_array_foreach(muxers, i, v)
		{
			const char *s = json_string_value(v);
			if (!s || (strcmp(s, "yamux") != 0 && strcmp(s, "mplex") != 0))
				return cg_fail(e, CG_E_INVALID_ARGUMENT, "p2p.muxers[%zu]: must be \"yamux\" or \"mplex\"", i);
			if (i == 1 && strcmp(s, json_string_value(json_array_get(muxers, 0))) == 0)
				return cg_fail(e, CG_E_INVALID_ARGUMENT, "p2p.muxers[1]: listed twice");
			c->sw.muxers[i] = strcmp(s, "yamux") == 0 ? YAMUX_PROTOCOL : MPLEX_PROTOCOL;
		}
	}
	return 0;
}

static int check(json_t *section, cg_err *e)
{
	struct cfg c;
	return parse(section, &c, e);
}

/* ---- pending RPC calls ------------------------------------------------------------------------------- */

static void pending_finish(struct pending *p, json_t *result, const cg_err *err)
{
	if (p->finished) {
		json_decref(result);
		return;
	}
	p->finished = true;
	rpc_call_finish(p->call, result, err);
	if (p->timer)
		evtimer_del(p->timer);
}

static void pending_free(struct pending *p)
{
	struct mod *md = p->md;
	for (struct pending **pp = &md->pending; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	if (p->timer)
		event_free(p->timer);
	json_decref(p->rtts);
	free(p);
}

/* Finishes later at a safe point: these run from swarm callbacks, which must not free what they use. */
static void pending_reap(evutil_socket_t fd, short what, void *arg)
{
	struct mod *md = arg;
	for (struct pending *p = md->pending; p;) {
		struct pending *next = p->next;
		if (p->finished && !p->dialing && !p->pinging)
			pending_free(p);
		p = next;
	}
}

static void schedule_reap(struct mod *md)
{
	if (!event_pending(md->reap_ev, EV_TIMEOUT, NULL))
		event_active(md->reap_ev, EV_TIMEOUT, 0);
}

static json_t *conn_json(struct mod *md, struct p2p_conn *c)
{
	struct p2p_peer *p = p2p_peerstore_get(p2p_swarm_peerstore(md->sw), p2p_conn_peer_id(c));
	json_t *o = p ? p2p_peer_json(p) : json_pack("{s:s}", "id", p2p_conn_peer_id(c));
	json_object_set_new(o, "remoteAddr", json_string(p2p_conn_remote_addr(c)));
	json_object_set_new(o, "muxer", json_string(p2p_conn_muxer(c)));
	json_object_set_new(o, "direction", json_string(p2p_conn_inbound(c) ? "inbound" : "outbound"));
	return o;
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct pending *p = arg;
	cg_err e = {0};
	if (!p->want_ping && p->conn) {
		/* Connected but the peer never identified itself: answer with what we know. */
		pending_finish(p, conn_json(p->md, p->conn), NULL);
	} else {
		cg_fail(&e, CG_E_TIMEOUT, "no answer from the peer in time");
		pending_finish(p, NULL, &e);
	}
	schedule_reap(p->md);
}

static void on_ping(struct p2p_conn *c, int seq, int64_t rtt_us, const cg_err *err, void *arg)
{
	struct pending *p = arg;
	if (err || seq + 1 == p->count)
		p->pinging = false; /* the last callback of this ping */
	if (p->finished) {
		schedule_reap(p->md);
		return;
	}
	if (err) {
		pending_finish(p, NULL, err);
	} else {
		json_array_append_new(p->rtts, json_real((double)rtt_us / 1000.0));
		if (seq + 1 == p->count)
			pending_finish(p, json_pack("{s:s, s:O}", "peerId", p2p_conn_peer_id(c), "rttMs", p->rtts), NULL);
	}
	if (p->finished)
		schedule_reap(p->md);
}

static void start_ping(struct pending *p, struct p2p_conn *c)
{
	cg_err e = {0};
	p->conn = c;
	p->pinging = true;
	if (p2p_ping(c, p->count, on_ping, p, &e) < 0) {
		p->pinging = false;
		pending_finish(p, NULL, &e);
		schedule_reap(p->md);
	}
}

static void on_dial(struct p2p_conn *c, const cg_err *err, void *arg)
{
	struct pending *p = arg;
	p->dialing = false;
	if (p->finished) {
		schedule_reap(p->md);
		return;
	}
	if (!c) {
		pending_finish(p, NULL, err);
		schedule_reap(p->md);
		return;
	}
	p->conn = c;
	if (p->want_ping)
		start_ping(p, c);
	else if (p2p_peerstore_get(p2p_swarm_peerstore(p->md->sw), p2p_conn_peer_id(c)) &&
		 p2p_peerstore_get(p2p_swarm_peerstore(p->md->sw), p2p_conn_peer_id(c))->identified) {
		pending_finish(p, conn_json(p->md, c), NULL);
		schedule_reap(p->md);
	}
}

static void on_event(struct p2p_swarm *sw, enum p2p_event ev, struct p2p_conn *c, const char *reason, void *arg)
{
	struct mod *md = arg;
	for (struct pending *p = md->pending; p; p = p->next) {
		if (p->finished || p->conn != c)
			continue;
		if ((ev == P2P_EV_IDENTIFIED || ev == P2P_EV_IDENTIFY_FAILED) && !p->want_ping) {
			/* Without identify the answer holds what the connection itself tells (id, address, muxer). */
			pending_finish(p, conn_json(md, c), NULL);
			schedule_reap(md);
		} else if (ev == P2P_EV_CONN_DOWN) {
			cg_err e = {0};
			cg_fail(&e, CG_E_UNAVAILABLE, "connection closed: %s", reason ? reason : "");
			p->conn = NULL;
			pending_finish(p, NULL, &e);
			schedule_reap(md);
		}
	}
}

static struct pending *pending_new(struct mod *md, struct rpc_call *call, cg_err *e)
{
	struct pending *p = calloc(1, sizeof *p);
	if (!p) {
		cg_fail(e, CG_E_INTERNAL, "out of memory");
		return NULL;
	}
	p->md = md;
	p->call = call;
	p->timer = evtimer_new(md->n->base, on_timeout, p);
	struct timeval tv = {RPC_DIAL_WAIT_MS / 1000, 0};
	if (!p->timer || evtimer_add(p->timer, &tv) != 0) {
		if (p->timer)
			event_free(p->timer);
		free(p);
		cg_fail(e, CG_E_INTERNAL, "out of memory");
		return NULL;
	}
	p->next = md->pending;
	md->pending = p;
	return p;
}

/* ---- RPC methods ------------------------------------------------------------------------------------ */

static int rpc_id(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	struct mod *md = arg;
	static const char *const keys[] = {NULL};
	int r = jp_only(params, "params", keys, e);
	if (r < 0)
		return r;
	const char *list[64];
	json_t *addrs = json_array(), *protos = json_array();
	size_t n = p2p_swarm_listen_addrs(md->sw, list, 64);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(addrs, json_string(list[i]));
	n = p2p_swarm_protocols(md->sw, list, 64);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(protos, json_string(list[i]));
	struct p2p_conn *conns[1];
	*result = json_pack("{s:s, s:o, s:o, s:s, s:I}", "peerId", p2p_swarm_peer_id(md->sw), "addrs", addrs,
			    "protocols", protos, "agentVersion", "clawgrid/" CLAWGRID_VERSION, "connections",
			    (json_int_t)p2p_swarm_conns(md->sw, conns, 0));
	return 0;
}

static int rpc_peers(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	struct mod *md = arg;
	static const char *const keys[] = {"all", NULL};
	bool all = false;
	int r;
	if ((r = jp_only(params, "params", keys, e)) < 0 || (r = jp_bool(params, "params", "all", 0, &all, e)) < 0)
		return r;
	json_t *peers = p2p_peerstore_json(p2p_swarm_peerstore(md->sw), all);
	/* Each live connection under its peer: where it comes from and how it is multiplexed. */
	struct p2p_conn *conns[256];
	size_t nc = p2p_swarm_conns(md->sw, conns, 256);
	if (nc > 256)
		nc = 256;
	size_t i;
	json_t *peer;
	json_array_foreach(peers, i, peer)
	{
		const char *id = json_string_value(json_object_get(peer, "id"));
		json_t *list = json_array();
		for (size_t k = 0; id && k < nc; k++) {
			if (strcmp(p2p_conn_peer_id(conns[k]), id) != 0)
				continue;
			json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:i}", "remoteAddr",
							      p2p_conn_remote_addr(conns[k]), "muxer",
							      p2p_conn_muxer(conns[k]), "direction",
							      p2p_conn_inbound(conns[k]) ? "inbound" : "outbound",
							      "streams", p2p_conn_stream_count(conns[k])));
		}
		json_object_set_new(peer, "conns", list);
	}
	*result = json_pack("{s:o}", "peers", peers);
	return 0;
}

/* p2p.dial {addr}: connects (or reuses a connection) and answers with the peer's identify. */
static int rpc_dial(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	struct mod *md = arg;
	static const char *const keys[] = {"addr", NULL};
	const char *addr;
	int r;
	if ((r = jp_only(params, "params", keys, e)) < 0 ||
	    (r = jp_str(params, "params", "addr", JP_REQUIRED, 1, MA_MAX_TEXT - 1, &addr, e)) < 0)
		return r;
	struct pending *p = pending_new(md, call, e);
	if (!p)
		return -e->code;
	/* An explicit dial by the owner overrides the automatic backoff. */
	p2p_connmgr_backoff_clear(p2p_swarm_connmgr(md->sw), addr);
	const char *id = strstr(addr, "/p2p/");
	while (id && strstr(id + 1, "/p2p/"))
		id = strstr(id + 1, "/p2p/");
	if (id)
		p2p_connmgr_backoff_clear(p2p_swarm_connmgr(md->sw), id + 5); /* the key is the peer id then */
	if ((r = p2p_swarm_dial(md->sw, addr, on_dial, p, e)) < 0) {
		p->finished = true;
		pending_free(p);
		return r;
	}
	p->dialing = true;
	return RPC_ASYNC;
}

/* p2p.ping {addr | peerId, count=1..10}: RTTs in ms. */
static int rpc_ping(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	struct mod *md = arg;
	static const char *const keys[] = {"addr", "peerId", "count", NULL};
	const char *addr = NULL, *peer = NULL;
	int64_t count = 1;
	int r;
	if ((r = jp_only(params, "params", keys, e)) < 0 ||
	    (r = jp_str(params, "params", "addr", 0, 1, MA_MAX_TEXT - 1, &addr, e)) < 0 ||
	    (r = jp_str(params, "params", "peerId", 0, 1, 100, &peer, e)) < 0 ||
	    (r = jp_int(params, "params", "count", 0, 1, 10, &count, e)) < 0)
		return r;
	if (!addr == !peer)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "params: give exactly one of addr and peerId");
	struct p2p_conn *c = peer ? p2p_swarm_conn_to(md->sw, peer) : NULL;
	if (peer && !c)
		return cg_fail(e, CG_E_NOT_FOUND, "params.peerId: not connected to that peer");
	struct pending *p = pending_new(md, call, e);
	if (!p)
		return -e->code;
	p->want_ping = true;
	p->count = (int)count;
	p->rtts = json_array();
	if (c) {
		start_ping(p, c);
		return RPC_ASYNC;
	}
	if ((r = p2p_swarm_dial(md->sw, addr, on_dial, p, e)) < 0) {
		p->finished = true;
		pending_free(p);
		return r;
	}
	p->dialing = true;
	return RPC_ASYNC;
}

/* ---- module ----------------------------------------------------------------------------------------- */

static int start(struct node *n, int idx, cg_err *e)
{
	struct cfg c;
	int r = parse(node_config_section(n, "p2p"), &c, e);
	if (r < 0 || !c.enabled)
		return r;
	if (!n->key || !n->rpc)
		return cg_fail(e, CG_E_INTERNAL, "p2p: the node has no key or RPC registry");
	struct mod *md = calloc(1, sizeof *md);
	if (!md)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	n->mod[idx] = md;
	md->n = n;
	md->reap_ev = event_new(n->base, -1, 0, pending_reap, md);
	if (!md->reap_ev)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	c.sw.agent_version = "clawgrid/" CLAWGRID_VERSION;
	md->sw = p2p_swarm_new(n->base, n->key->sk, &c.sw, e);
	if (!md->sw)
		return -e->code;
	if ((r = p2p_swarm_subscribe(md->sw, on_event, md, e)) < 0)
		return r;
	for (size_t i = 0; i < c.n_listen; i++)
		if ((r = p2p_swarm_listen(md->sw, c.listen[i], e)) < 0)
			return r;
	if (rpc_register(n->rpc, "p2p.id", rpc_id, md) < 0 || rpc_register(n->rpc, "p2p.peers", rpc_peers, md) < 0 ||
	    rpc_register(n->rpc, "p2p.dial", rpc_dial, md) < 0 || rpc_register(n->rpc, "p2p.ping", rpc_ping, md) < 0)
		return cg_fail(e, CG_E_INTERNAL, "p2p: RPC methods already registered");
	const char *addrs[16];
	size_t na = p2p_swarm_listen_addrs(md->sw, addrs, 16);
	for (size_t i = 0; i < na; i++)
		log_info("p2p", "listen address", "addr=%s", addrs[i]);
	return 0;
}

static void stop(struct node *n, int idx)
{
	struct mod *md = n->mod[idx];
	if (!md)
		return;
	/* The swarm first: its last callbacks finish the pending calls that wait on it. */
	p2p_swarm_free(md->sw);
	md->sw = NULL;
	cg_err e = {0};
	cg_fail(&e, CG_E_UNAVAILABLE, "node stopping");
	while (md->pending) {
		struct pending *p = md->pending;
		pending_finish(p, NULL, &e);
		pending_free(p);
	}
	if (md->reap_ev)
		event_free(md->reap_ev);
	free(md);
	n->mod[idx] = NULL;
}

const struct node_module mod_p2p = {"p2p", "p2p", check, start, stop};
