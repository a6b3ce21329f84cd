/* swarm — the set of listeners and connections of one node, the protocol handler table, connection
 * events, dials, the idle-pruning timer and the reaper that frees dead objects at a safe point. */
#define P2P_SWARM_INTERNAL
#include "p2p/swarm_int.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <sodium.h>

#include "base/clock.h"
#include "base/log.h"
#include "p2p/identify.h"
#include "p2p/multiaddr.h"
#include "p2p/mplex.h"
#include "p2p/peerstore.h"
#include "p2p/yamux.h"

void p2p_swarm_cfg_default(struct p2p_swarm_cfg *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	p2p_connmgr_cfg_default(&cfg->limits);
	cfg->muxers[0] = YAMUX_PROTOCOL;
	cfg->muxers[1] = MPLEX_PROTOCOL;
	cfg->max_peers = 1024;
}

static void reap_cb(evutil_socket_t fd, short what, void *arg);
static void prune_cb(evutil_socket_t fd, short what, void *arg);

struct p2p_swarm *p2p_swarm_new(struct event_base *base, const uint8_t sk[static 64],
				const struct p2p_swarm_cfg *cfg, cg_err *e)
{
	struct p2p_swarm *sw = calloc(1, sizeof *sw);
	if (!sw) {
		cg_fail(e, CG_E_INTERNAL, "out of memory");
		return NULL;
	}
	sw->base = base;
	memcpy(sw->sk, sk, 64);
	memcpy(sw->pk, sk + 32, 32);
	peerid_from_ed25519(&sw->self, sw->pk);
	peerid_to_string(&sw->self, sw->peer_id, sizeof sw->peer_id);
	/* PublicKey { Type = Ed25519, Data = pk }: 08 01 12 20 <pk> */
	sw->pubkey_pb[0] = 0x08;
	sw->pubkey_pb[1] = 0x01;
	sw->pubkey_pb[2] = 0x12;
	sw->pubkey_pb[3] = 0x20;
	memcpy(sw->pubkey_pb + 4, sw->pk, 32);
	if (cfg)
		sw->cfg = *cfg;
	else
		p2p_swarm_cfg_default(&sw->cfg);
	snprintf(sw->agent, sizeof sw->agent, "%s",
		 sw->cfg.agent_version ? sw->cfg.agent_version : "clawgrid");
	sw->cfg.agent_version = sw->agent;
	for (size_t i = 0; i < 2; i++) {
		const char *m = sw->cfg.muxers[i];
		if (!m)
			break;
		if (strcmp(m, YAMUX_PROTOCOL) == 0)
			sw->muxers[sw->n_muxers++] = YAMUX_PROTOCOL;
		else if (strcmp(m, MPLEX_PROTOCOL) == 0)
			sw->muxers[sw->n_muxers++] = MPLEX_PROTOCOL;
	}
	if (!sw->n_muxers) {
		sw->muxers[sw->n_muxers++] = YAMUX_PROTOCOL;
		sw->muxers[sw->n_muxers++] = MPLEX_PROTOCOL;
	}
	sw->cm = p2p_connmgr_new(&sw->cfg.limits);
	sw->ps = p2p_peerstore_new(sw->cfg.max_peers ? sw->cfg.max_peers : 1024);
	sw->reap_ev = event_new(base, -1, 0, reap_cb, sw);
	sw->prune_ev = event_new(base, -1, EV_PERSIST, prune_cb, sw);
	struct timeval tv = {1, 0};
	if (!sw->cm || !sw->ps || !sw->reap_ev || !sw->prune_ev || event_add(sw->prune_ev, &tv) != 0) {
		cg_fail(e, CG_E_INTERNAL, "out of memory");
		return p2p_swarm_free(sw);
	}
	if (p2p_identify_register(sw, e) < 0 || p2p_ping_register(sw, e) < 0 || p2p_echo_register(sw, e) < 0)
		return p2p_swarm_free(sw);
	return sw;
}

struct p2p_swarm *p2p_swarm_free(struct p2p_swarm *sw)
{
	if (!sw)
		return NULL;
	for (size_t i = 0; i < sw->n_listeners; i++)
		p2p_tcp_listener_close(&sw->listeners[i]);
	/* Close everything with a reason: stream owners get their last callback (on_close, open_cb, the
	 * dial callback) and can free what they attached. Subscribers are not told (they are going away
	 * with the swarm). */
	sw->freeing = true;
	while (sw->conns)
		p2p_conn_close(sw->conns, "swarm shutting down");
	while (sw->reap_streams) {
		struct p2p_stream *s = sw->reap_streams;
		sw->reap_streams = s->reap_next;
		p2p_stream_last_call(s);
		p2p_stream_free_now(s);
	}
	while (sw->reap_conns) {
		struct p2p_conn *c = sw->reap_conns;
		sw->reap_conns = c->reap_next;
		p2p_conn_free_now(c);
	}
	for (size_t i = 0; i < sw->n_listen_text; i++)
		free(sw->listen_text[i]);
	if (sw->dns)
		evdns_base_free(sw->dns, 0);
	if (sw->reap_ev)
		event_free(sw->reap_ev);
	if (sw->prune_ev)
		event_free(sw->prune_ev);
	p2p_connmgr_free(sw->cm);
	p2p_peerstore_free(sw->ps);
	sodium_memzero(sw->sk, sizeof sw->sk);
	free(sw);
	return NULL;
}

const char *p2p_swarm_peer_id(const struct p2p_swarm *sw)
{
	return sw->peer_id;
}

struct p2p_peerstore *p2p_swarm_peerstore(struct p2p_swarm *sw)
{
	return sw->ps;
}

struct p2p_connmgr *p2p_swarm_connmgr(struct p2p_swarm *sw)
{
	return sw->cm;
}

/* ---- listen addresses -------------------------------------------------------------------------------- */

static void add_listen_text(struct p2p_swarm *sw, const char *ma)
{
	if (sw->n_listen_text >= sizeof sw->listen_text / sizeof sw->listen_text[0])
		return;
	char full[P2P_ADDR_MAX + PEERID_TEXT_MAX + 8];
	snprintf(full, sizeof full, "%s/p2p/%s", ma, sw->peer_id);
	for (size_t i = 0; i < sw->n_listen_text; i++)
		if (strcmp(sw->listen_text[i], full) == 0)
			return;
	char *s = strdup(full);
	if (s)
		sw->listen_text[sw->n_listen_text++] = s;
}

/* Listening on 0.0.0.0 (or ::) means every interface: advertise each interface address instead. */
static void rebuild_listen_text(struct p2p_swarm *sw)
{
	for (size_t i = 0; i < sw->n_listen_text; i++)
		free(sw->listen_text[i]);
	sw->n_listen_text = 0;
	struct ifaddrs *ifs = NULL;
	for (size_t i = 0; i < sw->n_listeners; i++) {
		struct p2p_listener *l = &sw->listeners[i];
		if (!l->unspecified) {
			add_listen_text(sw, l->addr);
			continue;
		}
		if (!ifs && getifaddrs(&ifs) != 0) {
			add_listen_text(sw, l->addr);
			continue;
		}
		for (struct ifaddrs *it = ifs; it; it = it->ifa_next) {
			if (!it->ifa_addr || it->ifa_addr->sa_family != (l->ip6 ? AF_INET6 : AF_INET))
				continue;
			char ma[P2P_ADDR_MAX];
			if (l->ip6) {
				struct sockaddr_in6 a = *(struct sockaddr_in6 *)it->ifa_addr;
				if (IN6_IS_ADDR_LINKLOCAL(&a.sin6_addr))
					continue; /* needs a zone; not dialable as a plain /ip6 address */
				a.sin6_port = htons(l->port);
				p2p_tcp_sa_to_ma(&a, ma, sizeof ma);
			} else {
				struct sockaddr_in a = *(struct sockaddr_in *)it->ifa_addr;
				a.sin_port = htons(l->port);
				p2p_tcp_sa_to_ma(&a, ma, sizeof ma);
			}
			add_listen_text(sw, ma);
		}
	}
	if (ifs)
		freeifaddrs(ifs);
}

int p2p_swarm_listen(struct p2p_swarm *sw, const char *maddr, cg_err *e)
{
	if (sw->n_listeners == P2P_MAX_LISTEN)
		return cg_fail(e, CG_E_QUOTA_EXCEEDED, "too many listen addresses (limit %d)", P2P_MAX_LISTEN);
	buf b;
	buf_init(&b, MA_MAX_BYTES);
	int rc = ma_from_string(&b, maddr, strlen(maddr), e);
	if (rc == 0)
		rc = p2p_tcp_listen(sw, b.data, b.len, &sw->listeners[sw->n_listeners], e);
	buf_done(&b);
	if (rc < 0)
		return rc;
	sw->n_listeners++;
	rebuild_listen_text(sw);
	/* Peers already connected learn the new address now (identify push), not at their next connect. */
	p2p_identify_push_all(sw);
	log_info("p2p", "listening", "addr=%s peer=%s", sw->listeners[sw->n_listeners - 1].addr, sw->peer_id);
	return 0;
}

size_t p2p_swarm_listen_addrs(struct p2p_swarm *sw, const char **out, size_t max)
{
	size_t n = 0;
	for (; n < sw->n_listen_text && n < max; n++)
		out[n] = sw->listen_text[n];
	return n;
}

/* ---- events ------------------------------------------------------------------------------------------ */

int p2p_swarm_subscribe(struct p2p_swarm *sw, p2p_event_fn fn, void *arg, cg_err *e)
{
	if (sw->n_subs == P2P_MAX_SUBS)
		return cg_fail(e, CG_E_QUOTA_EXCEEDED, "too many swarm subscribers");
	sw->subs[sw->n_subs].fn = fn;
	sw->subs[sw->n_subs].arg = arg;
	sw->n_subs++;
	return 0;
}

void p2p_swarm_emit(struct p2p_swarm *sw, enum p2p_event ev, struct p2p_conn *c, const char *reason)
{
	if (sw->freeing)
		return;
	for (size_t i = 0; i < sw->n_subs; i++)
		sw->subs[i].fn(sw, ev, c, reason, sw->subs[i].arg);
}

void p2p_swarm_conn_established(struct p2p_conn *c)
{
	struct p2p_swarm *sw = c->sw;
	if (c->dial_pending) {
		p2p_connmgr_dial_end(sw->cm, c->dial_key, 1, clock_mono_ms());
		c->dial_pending = false;
	}
	struct p2p_peer *p = p2p_peerstore_upsert(sw->ps, c->peer_id);
	if (p) {
		p->connections++;
		c->peer_counted = true;
		/* A dialed address is one the peer listens on; an inbound one is an ephemeral port. */
		if (!c->inbound)
			p2p_peer_add_addr(p, c->remote_addr);
	}
	log_info("p2p", "connection open", "peer=%s addr=%s dir=%s muxer=%s", c->peer_id, c->remote_addr,
		 c->inbound ? "in" : "out", c->muxer_proto);
	p2p_swarm_emit(sw, P2P_EV_CONN_UP, c, NULL);
	if (c->state != CONN_OPEN)
		return;
	p2p_identify_conn_up(c);
	if (c->state == CONN_OPEN && c->dial_cb) {
		p2p_dial_cb cb = c->dial_cb;
		c->dial_cb = NULL;
		cb(c, NULL, c->dial_arg);
	}
}

/* ---- dialing ----------------------------------------------------------------------------------------- */

struct p2p_conn *p2p_swarm_conn_to(struct p2p_swarm *sw, const char *peer_id)
{
	for (struct p2p_conn *c = sw->conns; c; c = c->next)
		if (c->state == CONN_OPEN && strcmp(c->peer_id, peer_id) == 0)
			return c;
	return NULL;
}

/* A dial answered from an existing connection still calls back later, never from inside p2p_swarm_dial. */
struct reuse {
	struct p2p_swarm *sw;
	char peer_id[PEERID_TEXT_MAX];
	p2p_dial_cb cb;
	void *arg;
};

static void reuse_cb(evutil_socket_t fd, short what, void *arg)
{
	struct reuse *r = arg;
	struct p2p_conn *c = p2p_swarm_conn_to(r->sw, r->peer_id);
	if (c) {
		r->cb(c, NULL, r->arg);
	} else {
		cg_err e = {0};
		cg_fail(&e, CG_E_UNAVAILABLE, "connection closed before use");
		r->cb(NULL, &e, r->arg);
	}
	free(r);
}

int p2p_swarm_dial(struct p2p_swarm *sw, const char *maddr, p2p_dial_cb cb, void *arg, cg_err *e)
{
	buf b;
	buf_init(&b, MA_MAX_BYTES);
	int rc = ma_from_string(&b, maddr, strlen(maddr), e);
	if (rc < 0) {
		buf_done(&b);
		return rc;
	}
	peerid expect;
	bool have_expect = false;
	const uint8_t *idb;
	size_t idlen;
	rc = ma_get_p2p(b.data, b.len, &idb, &idlen, e);
	if (rc == 0) {
		rc = peerid_from_bytes(&expect, idb, idlen, e);
		if (rc < 0) {
			buf_done(&b);
			return rc;
		}
		have_expect = true;
		if (peerid_equal(&expect, &sw->self)) {
			buf_done(&b);
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "cannot dial ourselves");
		}
	} else if (rc != -CG_E_NOT_FOUND) {
		buf_done(&b);
		return rc;
	}
	char key[P2P_ADDR_MAX];
	if (have_expect) {
		peerid_to_string(&expect, key, sizeof key);
		if (p2p_swarm_conn_to(sw, key)) {
			struct reuse *r = calloc(1, sizeof *r);
			if (!r) {
				buf_done(&b);
				return cg_fail(e, CG_E_INTERNAL, "out of memory");
			}
			r->sw = sw;
			snprintf(r->peer_id, sizeof r->peer_id, "%.90s", key);
			r->cb = cb;
			r->arg = arg;
			buf_done(&b);
			struct timeval now = {0, 0};
			if (event_base_once(sw->base, -1, EV_TIMEOUT, reuse_cb, r, &now) != 0) {
				free(r);
				return cg_fail(e, CG_E_INTERNAL, "cannot schedule");
			}
			return 0;
		}
	} else {
		snprintf(key, sizeof key, "%.*s", (int)(sizeof key - 1), maddr);
	}
	rc = p2p_connmgr_dial_begin(sw->cm, key, clock_mono_ms(), e);
	if (rc < 0) {
		buf_done(&b);
		return rc;
	}
	struct p2p_conn *c = p2p_conn_new(sw, false);
	if (!c) {
		p2p_connmgr_dial_end(sw->cm, key, 0, clock_mono_ms());
		buf_done(&b);
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	}
	c->counted = true;
	c->dial_pending = true;
	memcpy(c->dial_key, key, sizeof c->dial_key);
	c->expect = expect;
	c->have_expect = have_expect;
	rc = p2p_tcp_dial(c, b.data, ma_without_p2p(b.data, b.len), e);
	buf_done(&b);
	if (rc < 0) {
		p2p_conn_close(c, e && e->msg[0] ? e->msg : "dial failed");
		return rc;
	}
	c->dial_cb = cb;
	c->dial_arg = arg;
	return 0;
}

/* ---- handlers ---------------------------------------------------------------------------------------- */

int p2p_swarm_handle(struct p2p_swarm *sw, const char *proto, p2p_handler_fn fn, void *arg, cg_err *e)
{
	size_t len = strlen(proto);
	if (len == 0 || len >= P2P_PROTO_MAX || strchr(proto, '\n'))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "bad protocol id");
	if (p2p_swarm_find_handler(sw, proto))
		return cg_fail(e, CG_E_CONFLICT, "protocol %s already has a handler", proto);
	if (sw->n_handlers == P2P_MAX_HANDLERS)
		return cg_fail(e, CG_E_QUOTA_EXCEEDED, "too many protocol handlers");
	struct p2p_handler *h = &sw->handlers[sw->n_handlers++];
	memcpy(h->proto, proto, len + 1);
	h->fn = fn;
	h->arg = arg;
	/* Connected peers learn the new protocol now (identify push), as they do a new listen address. */
	p2p_identify_push_all(sw);
	return 0;
}

const struct p2p_handler *p2p_swarm_find_handler(const struct p2p_swarm *sw, const char *proto)
{
	for (size_t i = 0; i < sw->n_handlers; i++)
		if (strcmp(sw->handlers[i].proto, proto) == 0)
			return &sw->handlers[i];
	return NULL;
}

size_t p2p_swarm_protocols(const struct p2p_swarm *sw, const char **out, size_t max)
{
	size_t n = 0;
	for (; n < sw->n_handlers && n < max; n++)
		out[n] = sw->handlers[n].proto;
	return n;
}

size_t p2p_swarm_conns(struct p2p_swarm *sw, struct p2p_conn **out, size_t max)
{
	size_t n = 0;
	for (struct p2p_conn *c = sw->conns; c; c = c->next)
		if (c->state == CONN_OPEN) {
			if (n < max)
				out[n] = c;
			n++;
		}
	return n;
}

/* ---- safe points ------------------------------------------------------------------------------------- */

void p2p_swarm_schedule_reap(struct p2p_swarm *sw)
{
	if (!sw->freeing && !event_pending(sw->reap_ev, EV_TIMEOUT, NULL))
		event_active(sw->reap_ev, EV_TIMEOUT, 0);
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct p2p_swarm *sw = arg;
	/* Callbacks run here may end more objects: loop until nothing is left (bounded by what exists). */
	for (int round = 0; round < 64; round++) {
		bool did = false;
		for (struct p2p_conn *c = sw->conns; c;) {
			struct p2p_conn *next = c->next;
			if (c->want_pump && c->state == CONN_OPEN) {
				c->want_pump = false;
				p2p_conn_pump(c);
				/* A resumed reader may unblock input that waits in the socket buffer. */
				if (c->state == CONN_OPEN)
					p2p_tcp_kick(c);
				did = true;
			}
			c = next;
		}
		while (sw->reap_streams) {
			struct p2p_stream *s = sw->reap_streams;
			sw->reap_streams = s->reap_next;
			p2p_stream_last_call(s);
			p2p_stream_free_now(s);
			did = true;
		}
		if (!did)
			break;
	}
	while (sw->reap_conns) {
		struct p2p_conn *c = sw->reap_conns;
		sw->reap_conns = c->reap_next;
		p2p_conn_free_now(c);
	}
}

static void prune_cb(evutil_socket_t fd, short what, void *arg)
{
	struct p2p_swarm *sw = arg;
	int64_t now = clock_mono_ms();
	for (struct p2p_conn *c = sw->conns; c;) {
		struct p2p_conn *next = c->next;
		if (c->state == CONN_OPEN && p2p_connmgr_is_idle(sw->cm, c->n_streams, c->last_active_ms, now))
			p2p_conn_close(c, "idle");
		c = next;
	}
	p2p_swarm_schedule_reap(sw);
}
