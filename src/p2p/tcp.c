/* tcp — the bottom layer of every connection: listening sockets, outbound connects (DNS names resolved on
 * the loop with evdns), and the bufferevent that moves bytes. Every fd is created close-on-exec. */
#define P2P_SWARM_INTERNAL
#include "p2p/swarm_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/util.h>

#include "base/clock.h"
#include "base/log.h"
#include "p2p/multiaddr.h"

/* Stop reading the socket while this much is waiting in the input buffer, unconsumed by the layers above:
 * that is how a slow application pushes back on the peer. */
#define TCP_READ_HIGH (4u * P2P_READ_CHUNK)

static void tcp_check_eof(struct p2p_conn *c);

void p2p_tcp_sa_to_ma(const void *sa_, char *out, size_t cap)
{
	const struct sockaddr *sa = sa_;
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = sa_;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
		port = ntohs(in->sin_port);
		snprintf(out, cap, "/ip4/%s/tcp/%u", host, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = sa_;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
		port = ntohs(in6->sin6_port);
		snprintf(out, cap, "/ip6/%s/tcp/%u", host, port);
	} else {
		snprintf(out, cap, "/unknown");
	}
}

/* Fills a sockaddr from a numeric host. 0 or -1. */
static int make_sa(int family, const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof *ss);
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
			return -1;
		*len = sizeof *in;
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
			return -1;
		*len = sizeof *in6;
	}
	return 0;
}

/* ---- the tcp layer ------------------------------------------------------------------------------------ */

struct tcp_layer {
	struct p2p_layer l;
};

static int tcp_send(struct p2p_layer *l, const uint8_t *p, size_t n, cg_err *e)
{
	struct p2p_conn *c = l->conn;
	if (!c->bev)
		return cg_fail(e, CG_E_UNAVAILABLE, "connection closed");
	/* The layers above stop producing once the output exceeds conn_buf_cap; a small overshoot (one noise
	 * frame) is expected, anything far beyond it is a bug in the backpressure and is refused. */
	size_t cap = p2p_connmgr_cfg(c->sw->cm)->conn_buf_cap;
	if (p2p_tcp_out_pending(c) > cap + 4 * 65536)
		return cg_fail(e, CG_E_QUOTA_EXCEEDED, "connection output buffer cap exceeded");
	if (bufferevent_write(c->bev, p, n) != 0)
		return cg_fail(e, CG_E_INTERNAL, "socket write buffer");
	return 0;
}

static void tcp_free(struct p2p_layer *l)
{
	free(l);
}

static const struct p2p_layer_ops tcp_ops = {"tcp", tcp_send, NULL, tcp_free};

size_t p2p_tcp_out_pending(struct p2p_conn *c)
{
	return c->bev ? evbuffer_get_length(bufferevent_get_output(c->bev)) : 0;
}

/* Hands the input to the layer above, as long as it takes some. */
static void tcp_process(struct p2p_conn *c)
{
	if (!c->bev || !c->bottom->above || c->state == CONN_DEAD)
		return;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	for (;;) {
		size_t n = evbuffer_get_length(in);
		/* Two full noise frames contiguous, so a frame is never split for the layer above. */
		size_t chunk = n < 2 * (NOISE_MAX_MSG + 2) ? n : 2 * (NOISE_MAX_MSG + 2);
		const uint8_t *p = chunk ? evbuffer_pullup(in, (ev_ssize_t)chunk) : NULL;
		size_t used = 0;
		cg_err e = {0};
		struct p2p_layer *up = c->bottom->above;
		int rc = up->ops->recv(up, p, chunk, &used, &e);
		if (c->state == CONN_DEAD || !c->bev)
			return;
		if (rc < 0) {
			p2p_conn_fail(c, &e, "receive");
			return;
		}
		if (used)
			evbuffer_drain(in, used);
		if (used == 0 || n == used)
			break;
	}
}

static void tcp_read_cb(struct bufferevent *bev, void *arg)
{
	struct p2p_conn *c = arg;
	c->last_active_ms = clock_mono_ms();
	tcp_process(c);
	if (c->state != CONN_DEAD)
		p2p_conn_pump(c);
	p2p_swarm_schedule_reap(c->sw);
}

static void tcp_write_cb(struct bufferevent *bev, void *arg)
{
	struct p2p_conn *c = arg;
	p2p_conn_on_output_drained(c);
	if (c->state != CONN_DEAD)
		p2p_tcp_kick(c);
	p2p_swarm_schedule_reap(c->sw);
}

static void tcp_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct p2p_conn *c = arg;
	cg_err e = {0};
	if (what & BEV_EVENT_CONNECTED) {
		p2p_conn_connected(c);
	} else if (what & BEV_EVENT_EOF) {
		/* Bytes already received still count (a peer may send its last frames and close): the connection
		 * stays until the layers above have taken them (a paused reader may still be holding them back). */
		c->peer_eof = true;
		tcp_process(c);
		if (c->state != CONN_DEAD)
			p2p_conn_pump(c);
		tcp_check_eof(c);
	} else if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
		int err = EVUTIL_SOCKET_ERROR();
		cg_fail(&e, CG_E_UNAVAILABLE, "socket error: %s", err ? strerror(err) : "unknown");
		p2p_conn_fail(c, &e, NULL);
	}
	p2p_swarm_schedule_reap(c->sw);
}

static int attach_bev(struct p2p_conn *c, int fd, cg_err *e)
{
	c->bev = bufferevent_socket_new(c->sw->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		close(fd);
		return cg_fail(e, CG_E_INTERNAL, "bufferevent_socket_new failed");
	}
	c->fd = fd;
	struct tcp_layer *t = calloc(1, sizeof *t);
	if (!t)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	t->l.ops = &tcp_ops;
	t->l.conn = c;
	c->bottom = &t->l;
	bufferevent_setcb(c->bev, tcp_read_cb, tcp_write_cb, tcp_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, TCP_READ_HIGH);
	/* The write callback fires when the output drains below a quarter of the cap: time to produce more. */
	bufferevent_setwatermark(c->bev, EV_WRITE, p2p_connmgr_cfg(c->sw->cm)->conn_buf_cap / 4, 0);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return 0;
}

/* Wraps an accepted fd into c->bev and the bottom layer. */
static int tcp_attach(struct p2p_conn *c, int fd, cg_err *e)
{
	int rc = attach_bev(c, fd, e);
	if (rc < 0)
		return rc;
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	return 0;
}

void p2p_tcp_kick(struct p2p_conn *c)
{
	tcp_process(c);
	tcp_check_eof(c);
}

/* After the peer's EOF: closes the connection once every received byte was taken by the layers above. */
static void tcp_check_eof(struct p2p_conn *c)
{
	if (!c->peer_eof || c->state == CONN_DEAD)
		return;
	/* Called right after the input was processed as far as it goes. What is left either waits for an
	 * application (a paused mplex reader, or output that has to drain first: keep the connection, a later
	 * kick comes back here) or is an incomplete frame that can never complete (close). While upgrading
	 * nothing waits for an application: the peer is gone. */
	bool left = c->bev && (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0 || p2p_conn_input_pending(c));
	bool blocked = c->n_paused > 0 || p2p_tcp_out_pending(c) >= p2p_connmgr_cfg(c->sw->cm)->conn_buf_cap;
	if (c->state == CONN_OPEN && left && blocked)
		return;
	cg_err e = {0};
	cg_fail(&e, CG_E_UNAVAILABLE, left ? "connection closed by peer inside a frame" : "connection closed by peer");
	p2p_conn_fail(c, &e, NULL);
}

/* ---- dialing ----------------------------------------------------------------------------------------- */

static int dial_sa(struct p2p_conn *c, const struct sockaddr *sa, socklen_t len, cg_err *e)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return cg_fail(e, CG_E_UNAVAILABLE, "socket: %s", strerror(errno));
	int rc = attach_bev(c, fd, e);
	if (rc < 0)
		return rc;
	p2p_tcp_sa_to_ma(sa, c->remote_addr, sizeof c->remote_addr);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(c->bev, sa, (int)len) != 0)
		return cg_fail(e, CG_E_UNAVAILABLE, "connect failed");
	return 0;
}

/* A pending DNS lookup outlives nothing: the connection clears `c` when it dies first. The lookup starts
 * from the loop (never inside p2p_swarm_dial), because evdns answers names from /etc/hosts synchronously
 * and a failure would then reach the dial callback from inside the dial call. */
struct dns_ctx {
	struct p2p_conn *c;
	struct evutil_addrinfo hints;
	char host[256];
	char port[8];
};

static void dns_cb(int result, struct evutil_addrinfo *res, void *arg)
{
	struct dns_ctx *ctx = arg;
	struct p2p_conn *c = ctx->c;
	free(ctx);
	/* the handshake deadline keeps running across the lookup */
	if (!c) {
		if (res)
			evutil_freeaddrinfo(res);
		return;
	}
	c->dns_ctx = NULL;
	cg_err e = {0};
	if (result != 0 || !res) {
		cg_fail(&e, CG_E_UNAVAILABLE, "dns lookup failed: %s", evutil_gai_strerror(result));
		if (res)
			evutil_freeaddrinfo(res);
		p2p_conn_fail(c, &e, NULL);
		p2p_swarm_schedule_reap(c->sw);
		return;
	}
	struct sockaddr_storage ss;
	socklen_t len = (socklen_t)res->ai_addrlen;
	memcpy(&ss, res->ai_addr, res->ai_addrlen < sizeof ss ? res->ai_addrlen : sizeof ss);
	evutil_freeaddrinfo(res);
	int rc = dial_sa(c, (struct sockaddr *)&ss, len, &e);
	if (rc < 0) {
		p2p_conn_fail(c, &e, NULL);
		p2p_swarm_schedule_reap(c->sw);
	}
}

static void dns_start(evutil_socket_t fd, short what, void *arg)
{
	struct dns_ctx *ctx = arg;
	if (!ctx->c) {
		free(ctx); /* the connection died before the lookup started */
		return;
	}
	evdns_getaddrinfo(ctx->c->sw->dns, ctx->host, ctx->port, &ctx->hints, dns_cb, ctx);
}

void p2p_tcp_forget(struct p2p_conn *c)
{
	if (c->dns_ctx)
		((struct dns_ctx *)c->dns_ctx)->c = NULL;
	c->dns_ctx = NULL;
}

int p2p_tcp_dial(struct p2p_conn *c, const uint8_t *ma, size_t n, cg_err *e)
{
	struct ma_dial d;
	int rc = ma_dial_target(ma, n, &d, e);
	if (rc < 0)
		return rc;
	if (d.circuit)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "relayed (/p2p-circuit) addresses need a relay transport");
	if (d.port == 0)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "cannot dial tcp port 0");
	struct sockaddr_storage ss;
	socklen_t len = 0;
	if (d.kind == MA_HOST_IP4 || d.kind == MA_HOST_IP6) {
		if (make_sa(d.kind == MA_HOST_IP4 ? AF_INET : AF_INET6, d.host, d.port, &ss, &len) != 0)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "bad ip address in multiaddr");
		return dial_sa(c, (struct sockaddr *)&ss, len, e);
	}
	struct p2p_swarm *sw = c->sw;
	if (!sw->dns) {
		sw->dns = evdns_base_new(sw->base, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
		if (!sw->dns)
			return cg_fail(e, CG_E_UNAVAILABLE, "dns resolver unavailable");
	}
	struct dns_ctx *ctx = calloc(1, sizeof *ctx);
	if (!ctx)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	ctx->c = c;
	ctx->hints.ai_family = d.kind == MA_HOST_DNS4 ? AF_INET : d.kind == MA_HOST_DNS6 ? AF_INET6 : AF_UNSPEC;
	ctx->hints.ai_socktype = SOCK_STREAM;
	snprintf(ctx->host, sizeof ctx->host, "%s", d.host);
	snprintf(ctx->port, sizeof ctx->port, "%u", d.port);
	struct timeval now = {0, 0};
	if (event_base_once(sw->base, -1, EV_TIMEOUT, dns_start, ctx, &now) != 0) {
		free(ctx);
		return cg_fail(e, CG_E_INTERNAL, "cannot schedule the dns lookup");
	}
	c->dns_ctx = ctx;
	return 0;
}

/* ---- listening --------------------------------------------------------------------------------------- */

static void accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct p2p_swarm *sw = arg;
	/* Bounded per wakeup so one busy listener cannot starve the loop. */
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof ss;
		int fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_warn("p2p", "accept failed", "err=%d", errno);
			break;
		}
		cg_err e = {0};
		if (p2p_connmgr_accept(sw->cm, &e) < 0) {
			log_warn("p2p", "inbound connection refused", "reason=\"%s\"", e.msg);
			close(fd);
			continue;
		}
		struct p2p_conn *c = p2p_conn_new(sw, true);
		if (!c) {
			p2p_connmgr_conn_closed(sw->cm);
			close(fd);
			continue;
		}
		c->counted = true;
		p2p_tcp_sa_to_ma(&ss, c->remote_addr, sizeof c->remote_addr);
		if (tcp_attach(c, fd, &e) < 0) {
			p2p_conn_fail(c, &e, "accept");
			continue;
		}
		p2p_conn_connected(c);
	}
	p2p_swarm_schedule_reap(sw);
}

int p2p_tcp_listen(struct p2p_swarm *sw, const uint8_t *ma, size_t n, struct p2p_listener *l, cg_err *e)
{
	struct ma_dial d;
	int rc = ma_dial_target(ma, n, &d, e);
	if (rc < 0)
		return rc == -CG_E_NOT_FOUND ? cg_fail(e, CG_E_INVALID_ARGUMENT, "listen address needs /ip4|ip6/…/tcp/PORT")
					     : rc;
	if (d.kind != MA_HOST_IP4 && d.kind != MA_HOST_IP6)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "listen address must be an ip4 or ip6 address");
	if (d.circuit)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "cannot listen on a relayed address");
	struct sockaddr_storage ss;
	socklen_t len;
	int family = d.kind == MA_HOST_IP4 ? AF_INET : AF_INET6;
	if (make_sa(family, d.host, d.port, &ss, &len) != 0)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "bad ip address in listen multiaddr");
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return cg_fail(e, CG_E_UNAVAILABLE, "socket: %s", strerror(errno));
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 128) != 0) {
		int err = errno;
		close(fd);
		return cg_fail(e, CG_E_UNAVAILABLE, "cannot listen on tcp port %u: %s", d.port, strerror(err));
	}
	len = sizeof ss;
	getsockname(fd, (struct sockaddr *)&ss, &len);
	memset(l, 0, sizeof *l);
	l->fd = fd;
	l->ip6 = family == AF_INET6;
	l->port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					  : ((struct sockaddr_in6 *)&ss)->sin6_port);
	l->unspecified = strcmp(d.host, "0.0.0.0") == 0 || strcmp(d.host, "::") == 0;
	p2p_tcp_sa_to_ma(&ss, l->addr, sizeof l->addr);
	l->ev = event_new(sw->base, fd, EV_READ | EV_PERSIST, accept_cb, sw);
	if (!l->ev || event_add(l->ev, NULL) != 0) {
		p2p_tcp_listener_close(l);
		return cg_fail(e, CG_E_INTERNAL, "cannot watch the listening socket");
	}
	return 0;
}

void p2p_tcp_listener_close(struct p2p_listener *l)
{
	if (l->ev)
		event_free(l->ev);
	if (l->fd >= 0)
		close(l->fd);
	l->ev = NULL;
	l->fd = -1;
}
