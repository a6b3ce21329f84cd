/* identify — /ipfs/id/1.0.0 and /ipfs/id/push/1.0.0 (see identify.h). */
#define P2P_SWARM_INTERNAL
#include "p2p/identify.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "p2p/multiaddr.h"
#include "p2p/pb.h"
#include "p2p/peerstore.h"
#include "p2p/swarm_int.h"
#include "p2p/varint.h"

enum { ID_PUBKEY = 1, ID_LISTEN = 2, ID_PROTOCOLS = 3, ID_OBSERVED = 4, ID_PROTO_VERSION = 5, ID_AGENT = 6 };

/* Copies a protobuf string that must fit and hold no NUL; false (dropped) otherwise. */
static bool copy_str(char *dst, size_t cap, const uint8_t *p, size_t n)
{
	if (n >= cap || memchr(p, 0, n))
		return false;
	memcpy(dst, p, n);
	dst[n] = 0;
	return true;
}

/* Binary multiaddr -> text into dst; false when malformed or too long. */
static bool ma_text(char *dst, size_t cap, const uint8_t *p, size_t n)
{
	buf b;
	buf_init(&b, MA_MAX_TEXT);
	cg_err e = {0};
	bool ok = ma_to_string(&b, p, n, &e) == 0 && b.len < cap;
	if (ok)
		memcpy(dst, b.data, b.len + 1);
	buf_done(&b);
	return ok;
}

int p2p_identify_decode(const uint8_t *p, size_t n, struct p2p_id_info *out, cg_err *e)
{
	memset(out, 0, sizeof *out);
	pb_reader r;
	pb_field f;
	pb_reader_init(&r, p, n);
	int rc;
	while ((rc = pb_next(&r, &f, e)) == 1) {
		if (f.wire != PB_LEN)
			continue; /* every field we know is length-delimited; others are skipped */
		switch (f.num) {
		case ID_PUBKEY: {
			struct peerid_pubkey pk;
			if (f.len > sizeof out->pubkey || peerid_pubkey_decode(f.data, f.len, &pk, e) < 0)
				return cg_fail(e, CG_E_INVALID_ARGUMENT, "identify: bad publicKey");
			memcpy(out->pubkey, f.data, f.len);
			out->pubkey_len = f.len;
			out->has_pubkey = true;
			break;
		}
		case ID_LISTEN:
			if (out->n_addrs < P2P_ID_MAX_ADDRS &&
			    ma_text(out->addrs[out->n_addrs], sizeof out->addrs[0], f.data, f.len))
				out->n_addrs++;
			else
				out->dropped++;
			break;
		case ID_PROTOCOLS:
			if (out->n_protos < P2P_ID_MAX_PROTOS &&
			    copy_str(out->protos[out->n_protos], sizeof out->protos[0], f.data, f.len))
				out->n_protos++;
			else
				out->dropped++;
			break;
		case ID_OBSERVED:
			out->has_observed = ma_text(out->observed_addr, sizeof out->observed_addr, f.data, f.len);
			if (!out->has_observed)
				out->dropped++;
			break;
		case ID_PROTO_VERSION:
			out->has_proto_version =
				copy_str(out->protocol_version, sizeof out->protocol_version, f.data, f.len);
			break;
		case ID_AGENT:
			out->has_agent = copy_str(out->agent_version, sizeof out->agent_version, f.data, f.len);
			break;
		default:
			break; /* signedPeerRecord (8) and future fields */
		}
	}
	return rc < 0 ? rc : 0;
}

int p2p_identify_encode(struct p2p_swarm *sw, const char *observed_ma, buf *out, cg_err *e)
{
	buf m, ma;
	buf_init(&m, P2P_ID_MAX_MSG);
	buf_init(&ma, MA_MAX_BYTES);
	int rc = pb_put_bytes(&m, ID_PUBKEY, sw->pubkey_pb, sizeof sw->pubkey_pb);
	/* Listen addresses without the /p2p suffix, as js-libp2p and go-libp2p send them. */
	for (size_t i = 0; rc == 0 && i < sw->n_listen_text; i++) {
		buf_reset(&ma);
		if (ma_from_string(&ma, sw->listen_text[i], strlen(sw->listen_text[i]), NULL) < 0)
			continue;
		rc = pb_put_bytes(&m, ID_LISTEN, ma.data, ma_without_p2p(ma.data, ma.len));
	}
	for (size_t i = 0; rc == 0 && i < sw->n_handlers; i++)
		rc = pb_put_str(&m, ID_PROTOCOLS, sw->handlers[i].proto);
	if (rc == 0 && observed_ma && observed_ma[0]) {
		buf_reset(&ma);
		if (ma_from_string(&ma, observed_ma, strlen(observed_ma), NULL) == 0)
			rc = pb_put_bytes(&m, ID_OBSERVED, ma.data, ma.len);
	}
	if (rc == 0)
		rc = pb_put_str(&m, ID_PROTO_VERSION, P2P_PROTOCOL_VERSION);
	if (rc == 0)
		rc = pb_put_str(&m, ID_AGENT, sw->agent);
	if (rc == 0)
		rc = pb_put_raw_varint(out, m.len);
	if (rc == 0 && buf_append(out, m.data, m.len) < 0)
		rc = -CG_E_QUOTA_EXCEEDED;
	buf_done(&m);
	buf_done(&ma);
	return rc < 0 ? cg_fail(e, CG_E_QUOTA_EXCEEDED, "identify message too large") : 0;
}

/* Records a decoded message for the connection's peer; false when the key does not belong to it. */
static bool record(struct p2p_conn *c, const struct p2p_id_info *info, bool push)
{
	struct p2p_swarm *sw = c->sw;
	const peerid *rp = NULL;
	peerid pid;
	cg_err e = {0};
	if (peerid_parse(&pid, c->peer_id, strlen(c->peer_id), &e) == 0)
		rp = &pid;
	if (info->has_pubkey && (!rp || !peerid_matches_pubkey(rp, info->pubkey, info->pubkey_len))) {
		log_warn("p2p", "identify: public key does not match the peer id", "peer=%s", c->peer_id);
		return false;
	}
	struct p2p_peer *p = p2p_peerstore_upsert(sw->ps, c->peer_id);
	if (!p)
		return false;
	const char *list[P2P_ID_MAX_PROTOS > P2P_ID_MAX_ADDRS ? P2P_ID_MAX_PROTOS : P2P_ID_MAX_ADDRS];
	/* A push may carry only what changed: keep the old value of an absent field. */
	if (!push || info->n_protos) {
		for (size_t i = 0; i < info->n_protos; i++)
			list[i] = info->protos[i];
		p2p_peer_set_protos(p, list, info->n_protos);
	}
	if (!push || info->n_addrs) {
		for (size_t i = 0; i < info->n_addrs; i++)
			list[i] = info->addrs[i];
		p2p_peer_set_addrs(p, list, info->n_addrs);
	}
	if (info->has_agent)
		p2p_peer_set_str(p->agent_version, info->agent_version, strlen(info->agent_version));
	if (info->has_proto_version)
		p2p_peer_set_str(p->protocol_version, info->protocol_version, strlen(info->protocol_version));
	if (info->has_observed)
		p2p_peer_set_str(p->observed_addr, info->observed_addr, strlen(info->observed_addr));
	if (info->has_pubkey && info->pubkey_len <= sizeof p->pubkey) {
		memcpy(p->pubkey, info->pubkey, info->pubkey_len);
		p->pubkey_len = info->pubkey_len;
	}
	p->identified = 1;
	log_debug("p2p", "identified", "peer=%s agent=\"%s\" protocols=%zu addrs=%zu", c->peer_id,
		  p->agent_version, p->n_protos, p->n_addrs);
	return true;
}

/* ---- reading one length-prefixed message from a stream --------------------------------------------- */

struct id_reader {
	buf in;
	bool push;
	bool done;
	bool recorded; /* the message was accepted */
};

/* Our own request on a new connection ended without a usable answer (refused, reset, bad, or no answer in
 * time): subscribers waiting for the peer's identify (the CLI's dial, p2p.dial) go on without it. Reported
 * once per connection; later endings of the same request are not news. */
static void identify_failed(struct p2p_conn *c, const char *why)
{
	if (!c->id_pending)
		return;
	c->id_pending = false;
	if (c->id_timer)
		evtimer_del(c->id_timer);
	log_debug("p2p", "identify failed", "peer=%s reason=\"%s\"", c->peer_id, why ? why : "");
	if (c->state == CONN_OPEN)
		p2p_swarm_emit(c->sw, P2P_EV_IDENTIFY_FAILED, c, why ? why : "identify failed");
}

static void identify_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct p2p_conn *c = arg;
	identify_failed(c, "identify: no answer in time");
	/* the stream's own close comes later and changes nothing */
	if (c->id_stream)
		p2p_stream_reset(c->id_stream, "identify: no answer in time");
	p2p_swarm_schedule_reap(c->sw);
}

static void rd_data(struct p2p_stream *s, const uint8_t *p, size_t n, void *arg)
{
	struct id_reader *r = arg;
	if (r->done)
		return;
	if (buf_append(&r->in, p, n) < 0) {
		p2p_stream_reset(s, "identify message too large");
		r->done = true;
		return;
	}
	uint64_t len;
	cg_err e = {0};
	int k = varint_decode(r->in.data, r->in.len, &len, &e);
	if (k == 0)
		return;
	if (k < 0 || len > P2P_ID_MAX_MSG) {
		p2p_stream_reset(s, k < 0 ? "identify: bad length prefix" : "identify message too large");
		r->done = true;
		return;
	}
	if (r->in.len - (size_t)k < len)
		return;
	r->done = true;
	struct p2p_id_info *info = malloc(sizeof *info);
	struct p2p_conn *c = p2p_stream_conn(s);
	if (!info) {
		p2p_stream_reset(s, "out of memory");
		return;
	}
	if (p2p_identify_decode(r->in.data + k, (size_t)len, info, &e) < 0) {
		log_warn("p2p", "bad identify message", "peer=%s reason=\"%s\"", c->peer_id, e.msg);
		p2p_stream_reset(s, "bad identify message");
	} else if (!record(c, info, r->push)) {
		p2p_stream_reset(s, "identify: public key does not match the peer id");
	} else {
		r->recorded = true;
		if (!r->push) {
			c->id_pending = false;
			if (c->id_timer)
				evtimer_del(c->id_timer);
		}
		p2p_stream_close_write(s);
		p2p_swarm_emit(c->sw, P2P_EV_IDENTIFIED, c, NULL);
	}
	free(info);
}

static void rd_eof(struct p2p_stream *s, void *arg)
{
	struct id_reader *r = arg;
	if (!r->done) {
		r->done = true;
		p2p_stream_reset(s, "identify: stream ended before the message");
		return;
	}
	p2p_stream_close_write(s);
}

static void rd_close(struct p2p_stream *s, const char *reason, void *arg)
{
	struct id_reader *r = arg;
	struct p2p_conn *c = p2p_stream_conn(s);
	if (!r->push && c->id_stream == s)
		c->id_stream = NULL;
	if (!r->push && !r->recorded)
		identify_failed(c, reason ? reason : "no identify message");
	else if (reason && !r->recorded)
		log_debug("p2p", "identify push failed", "peer=%s reason=\"%s\"", p2p_stream_conn(s)->peer_id, reason);
	buf_done(&r->in);
	free(r);
}

static const struct p2p_stream_cbs reader_cbs = {rd_data, rd_eof, NULL, rd_close};

static struct id_reader *reader_new(bool push)
{
	struct id_reader *r = calloc(1, sizeof *r);
	if (r) {
		buf_init(&r->in, P2P_ID_MAX_MSG + VARINT_MAX_LEN);
		r->push = push;
	}
	return r;
}

/* We asked (/ipfs/id/1.0.0 opened by us): the answer is read, nothing is sent. */
static void id_opened(struct p2p_stream *s, const cg_err *err, void *arg)
{
	struct p2p_conn *c = arg;
	if (!s) {
		identify_failed(c, err ? err->msg : "cannot open the identify stream");
		return;
	}
	if (!c->id_pending) { /* negotiated after the deadline: already reported as failed */
		p2p_stream_reset(s, "identify: no answer in time");
		return;
	}
	struct id_reader *r = reader_new(false);
	if (!r) {
		p2p_stream_reset(s, "out of memory");
		identify_failed(c, "out of memory");
		return;
	}
	c->id_stream = s;
	p2p_stream_set_cbs(s, &reader_cbs, r);
	p2p_stream_close_write(s);
}

void p2p_identify_conn_up(struct p2p_conn *c)
{
	cg_err e = {0};
	c->id_pending = true;
	if (!c->id_timer)
		c->id_timer = evtimer_new(c->sw->base, identify_timeout, c);
	struct timeval tv = {P2P_ID_TIMEOUT_MS / 1000, (P2P_ID_TIMEOUT_MS % 1000) * 1000};
	if (c->id_timer)
		evtimer_add(c->id_timer, &tv);
	if (p2p_conn_open_stream(c, P2P_ID_PROTOCOL, id_opened, c, &e) < 0)
		identify_failed(c, e.msg);
}

/* ---- answering --------------------------------------------------------------------------------------- */

static void srv_close(struct p2p_stream *s, const char *reason, void *arg)
{
}

static void srv_eof(struct p2p_stream *s, void *arg)
{
	p2p_stream_close_write(s);
}

static void srv_data(struct p2p_stream *s, const uint8_t *p, size_t n, void *arg)
{
	/* The asker sends nothing on this protocol. */
	p2p_stream_reset(s, "identify: unexpected data");
}

static const struct p2p_stream_cbs server_cbs = {srv_data, srv_eof, NULL, srv_close};

static void send_identify(struct p2p_stream *s)
{
	struct p2p_conn *c = p2p_stream_conn(s);
	buf out;
	buf_init(&out, P2P_ID_MAX_MSG + VARINT_MAX_LEN);
	cg_err e = {0};
	if (p2p_identify_encode(c->sw, c->remote_addr, &out, &e) < 0 || p2p_stream_write(s, out.data, out.len, &e) < 0)
		p2p_stream_reset(s, e.msg);
	else
		p2p_stream_close_write(s);
	buf_done(&out);
}

static void id_handler(struct p2p_stream *s, void *arg)
{
	p2p_stream_set_cbs(s, &server_cbs, NULL);
	send_identify(s);
}

static void push_handler(struct p2p_stream *s, void *arg)
{
	struct id_reader *r = reader_new(true);
	if (!r) {
		p2p_stream_reset(s, "out of memory");
		return;
	}
	p2p_stream_set_cbs(s, &reader_cbs, r);
}

static void push_opened(struct p2p_stream *s, const cg_err *err, void *arg)
{
	if (!s)
		return;
	p2p_stream_set_cbs(s, &server_cbs, NULL);
	send_identify(s);
}

void p2p_identify_push_all(struct p2p_swarm *sw)
{
	for (struct p2p_conn *c = sw->conns; c; c = c->next)
		if (c->state == CONN_OPEN)
			p2p_conn_open_stream(c, P2P_ID_PUSH_PROTOCOL, push_opened, NULL, NULL);
}

int p2p_identify_register(struct p2p_swarm *sw, cg_err *e)
{
	int rc = p2p_swarm_handle(sw, P2P_ID_PROTOCOL, id_handler, NULL, e);
	return rc < 0 ? rc : p2p_swarm_handle(sw, P2P_ID_PUSH_PROTOCOL, push_handler, NULL, e);
}
