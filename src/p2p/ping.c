/* ping — /ipfs/ping/1.0.0 client and server (see ping.h). */
#define P2P_SWARM_INTERNAL
#include "p2p/ping.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "base/clock.h"
#include "p2p/peerstore.h"
#include "p2p/swarm_int.h"

struct ping {
	struct p2p_conn *conn;
	struct p2p_stream *s;
	int count, seq;
	p2p_ping_cb cb;
	void *arg;
	uint8_t sent[P2P_PING_SIZE], got[P2P_PING_SIZE];
	size_t got_n;
	int64_t t0_us;
	bool finished; /* the callback has seen the last round or an error */
	struct event *timer;
};

static void ping_finish(struct ping *pg, const char *why)
{
	if (pg->finished)
		return;
	pg->finished = true;
	cg_err e = {0};
	cg_fail(&e, why && strstr(why, "timeout") ? CG_E_TIMEOUT : CG_E_UNAVAILABLE, "ping failed: %s",
		why ? why : "stream closed");
	pg->cb(pg->conn, pg->seq, -1, &e, pg->arg);
}

static int send_round(struct ping *pg)
{
	randombytes_buf(pg->sent, sizeof pg->sent);
	pg->got_n = 0;
	pg->t0_us = clock_mono_us();
	struct timeval tv = {P2P_PING_TIMEOUT_MS / 1000, (P2P_PING_TIMEOUT_MS % 1000) * 1000};
	evtimer_add(pg->timer, &tv);
	return p2p_stream_write(pg->s, pg->sent, sizeof pg->sent, NULL);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct ping *pg = arg;
	ping_finish(pg, "timeout waiting for the echo");
	p2p_stream_reset(pg->s, "ping timeout");
	p2p_swarm_schedule_reap(pg->conn->sw);
}

static void cl_data(struct p2p_stream *s, const uint8_t *p, size_t n, void *arg)
{
	struct ping *pg = arg;
	while (n && !pg->finished) {
		size_t take = P2P_PING_SIZE - pg->got_n;
		if (take > n)
			take = n;
		memcpy(pg->got + pg->got_n, p, take);
		pg->got_n += take;
		p += take;
		n -= take;
		if (pg->got_n < P2P_PING_SIZE)
			return;
		evtimer_del(pg->timer);
		if (sodium_memcmp(pg->got, pg->sent, P2P_PING_SIZE) != 0) {
			ping_finish(pg, "echo does not match");
			p2p_stream_reset(s, "ping mismatch");
			return;
		}
		int64_t rtt = clock_mono_us() - pg->t0_us;
		struct p2p_peer *peer = p2p_peerstore_get(pg->conn->sw->ps, pg->conn->peer_id);
		if (peer)
			peer->rtt_us = rtt;
		int seq = pg->seq++;
		if (pg->seq == pg->count) {
			pg->finished = true;
			p2p_stream_close_write(s);
		}
		pg->cb(pg->conn, seq, rtt, NULL, pg->arg);
		if (!pg->finished && send_round(pg) < 0) {
			ping_finish(pg, "cannot send");
			p2p_stream_reset(s, "ping send failed");
			return;
		}
	}
	if (n && pg->finished)
		p2p_stream_reset(s, "unexpected ping data");
}

static void cl_eof(struct p2p_stream *s, void *arg)
{
	struct ping *pg = arg;
	ping_finish(pg, "peer closed the stream");
	p2p_stream_close_write(s);
}

static void cl_close(struct p2p_stream *s, const char *reason, void *arg)
{
	struct ping *pg = arg;
	ping_finish(pg, reason);
	event_free(pg->timer);
	free(pg);
}

static const struct p2p_stream_cbs client_cbs = {cl_data, cl_eof, NULL, cl_close};

static void opened(struct p2p_stream *s, const cg_err *err, void *arg)
{
	struct ping *pg = arg;
	if (!s) {
		ping_finish(pg, err ? err->msg : "cannot open stream");
		event_free(pg->timer);
		free(pg);
		return;
	}
	pg->s = s;
	p2p_stream_set_cbs(s, &client_cbs, pg);
	if (send_round(pg) < 0) {
		ping_finish(pg, "cannot send");
		p2p_stream_reset(s, "ping send failed");
	}
}

int p2p_ping(struct p2p_conn *c, int count, p2p_ping_cb cb, void *arg, cg_err *e)
{
	if (count < 1 || count > 1000)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "ping count must be 1..1000");
	struct ping *pg = calloc(1, sizeof *pg);
	if (!pg)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	pg->conn = c;
	pg->count = count;
	pg->cb = cb;
	pg->arg = arg;
	pg->timer = evtimer_new(c->sw->base, on_timeout, pg);
	int rc = pg->timer ? p2p_conn_open_stream(c, P2P_PING_PROTOCOL, opened, pg, e)
			   : cg_fail(e, CG_E_INTERNAL, "out of memory");
	if (rc < 0) {
		if (pg->timer)
			event_free(pg->timer);
		free(pg);
	}
	return rc;
}

/* ---- server: echo 32-byte payloads back; anything that does not fit the send buffer is a flood ---- */

static void srv_data(struct p2p_stream *s, const uint8_t *p, size_t n, void *arg)
{
	cg_err e = {0};
	if (p2p_stream_write(s, p, n, &e) < 0)
		p2p_stream_reset(s, "ping flood: send buffer full");
}

static void srv_eof(struct p2p_stream *s, void *arg)
{
	p2p_stream_close_write(s);
}

static void srv_close(struct p2p_stream *s, const char *reason, void *arg)
{
}

static const struct p2p_stream_cbs server_cbs = {srv_data, srv_eof, NULL, srv_close};

static void handler(struct p2p_stream *s, void *arg)
{
	p2p_stream_set_cbs(s, &server_cbs, NULL);
}

int p2p_ping_register(struct p2p_swarm *sw, cg_err *e)
{
	return p2p_swarm_handle(sw, P2P_PING_PROTOCOL, handler, NULL, e);
}
