/* multistream-select 1.0 negotiator (initiator and responder) as an incremental state machine. */
#include "p2p/mss.h"

#include <stdlib.h>
#include <string.h>

#include "p2p/varint.h"

/* An "ls" answer lists every protocol, so it may be longer than a single proposal. */
#define MSS_MAX_LS_MSG (8 * MSS_MAX_MSG)
/* Proposals a responder answers with "na" before it gives up on the peer. */
#define MSS_MAX_ATTEMPTS 64

enum mss_state { S_WAIT_HDR, S_WAIT_LS, S_WAIT_ANSWER, S_WAIT_PROPOSAL, S_DONE, S_FAILED };

struct mss {
	bool initiator, ls;
	bool started;
	enum mss_state state;
	char **protos;
	size_t n;
	size_t next;     /* initiator: index of the protocol awaiting an answer */
	size_t attempts; /* responder: proposals refused so far */
	int selected;
	char *lsv[MSS_MAX_LS];
	size_t n_ls;
};

static bool proto_ok(const char *p)
{
	size_t l = p ? strlen(p) : 0;
	return l > 0 && l + 1 <= MSS_MAX_MSG && !memchr(p, '\n', l);
}

static mss *mss_new(bool initiator, const char *const *protos, size_t n, bool ls, cg_err *e)
{
	if (n == 0 || n > MSS_MAX_PROTOS) {
		cg_fail(e, CG_E_INVALID_ARGUMENT, "multistream: need 1 to %d protocols", MSS_MAX_PROTOS);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		if (!proto_ok(protos[i])) {
			cg_fail(e, CG_E_INVALID_ARGUMENT, "multistream: bad protocol name");
			return NULL;
		}
	}
	mss *m = calloc(1, sizeof *m);
	if (!m || !(m->protos = calloc(n, sizeof *m->protos))) {
		free(m);
		cg_fail(e, CG_E_INTERNAL, "multistream: out of memory");
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		if (!(m->protos[m->n] = strdup(protos[i]))) {
			mss_free(m);
			cg_fail(e, CG_E_INTERNAL, "multistream: out of memory");
			return NULL;
		}
		m->n++;
	}
	m->initiator = initiator;
	m->ls = ls;
	m->selected = -1;
	m->state = S_WAIT_HDR;
	return m;
}

mss *mss_new_initiator(const char *const *protos, size_t n, bool ls, cg_err *e)
{
	return mss_new(true, protos, n, ls, e);
}

mss *mss_new_responder(const char *const *protos, size_t n, cg_err *e)
{
	return mss_new(false, protos, n, false, e);
}

void mss_free(mss *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		free(m->protos[i]);
	free(m->protos);
	for (size_t i = 0; i < m->n_ls; i++)
		free(m->lsv[i]);
	free(m);
}

int mss_put_msg(buf *out, const char *s, size_t len)
{
	size_t start = out->len;
	if (varint_put(out, (uint64_t)len + 1) || buf_append(out, s, len) || buf_putc(out, '\n')) {
		out->len = start;
		if (out->data)
			out->data[start] = 0;
		return -CG_E_QUOTA_EXCEEDED;
	}
	return 0;
}

static int put_str(buf *out, const char *s)
{
	return mss_put_msg(out, s, strlen(s));
}

int mss_start(mss *m, buf *out)
{
	int r = put_str(out, MSS_PROTOCOL);
	if (!r && m->initiator)
		r = put_str(out, m->ls ? "ls" : m->protos[0]);
	if (!r)
		m->started = true;
	return r;
}

static bool msg_is(const uint8_t *p, size_t n, const char *s)
{
	return strlen(s) == n && memcmp(p, s, n) == 0;
}

/* Builds the "ls" answer: one message whose body is <varint><proto>\n ... followed by "\n". Protocols that
 * would push the answer past MSS_MAX_LS_MSG are left out. */
static int put_ls(mss *m, buf *out)
{
	buf in;
	int r = 0;
	buf_init(&in, MSS_MAX_LS_MSG - 1);
	for (size_t i = 0; i < m->n; i++) {
		size_t before = in.len;
		if (mss_put_msg(&in, m->protos[i], strlen(m->protos[i])) != 0) {
			in.len = before;
			break;
		}
	}
	r = mss_put_msg(out, (const char *)in.data, in.len);
	buf_done(&in);
	return r;
}

static int parse_ls(mss *m, const uint8_t *p, size_t n, cg_err *e)
{
	if (msg_is(p, n, "na")) /* the responder does not implement ls: an empty list */
		return 0;
	size_t i = 0;
	while (n - i > 0) {
		uint64_t l;
		int k = varint_decode(p + i, n - i, &l, NULL);
		if (k <= 0 || l == 0 || l > n - i - (size_t)k || p[i + (size_t)k + l - 1] != '\n')
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "multistream: malformed ls answer");
		const uint8_t *s = p + i + (size_t)k;
		size_t sl = (size_t)l - 1;
		i += (size_t)k + (size_t)l;
		if (m->n_ls < MSS_MAX_LS && sl > 0) {
			char *c = strndup((const char *)s, sl);
			if (!c)
				return cg_fail(e, CG_E_INTERNAL, "multistream: out of memory");
			m->lsv[m->n_ls++] = c;
		}
	}
	return 0;
}

/* Handles one complete message (body without the trailing newline). Returns MSS_CONTINUE, MSS_DONE or <0. */
static int on_msg(mss *m, const uint8_t *p, size_t n, buf *out, cg_err *e)
{
	int r;
	switch (m->state) {
	case S_WAIT_HDR:
		if (!msg_is(p, n, MSS_PROTOCOL))
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "multistream: unexpected header");
		m->state = !m->initiator ? S_WAIT_PROPOSAL : m->ls ? S_WAIT_LS : S_WAIT_ANSWER;
		return MSS_CONTINUE;
	case S_WAIT_LS:
		if ((r = parse_ls(m, p, n, e)))
			return r;
		m->state = S_WAIT_ANSWER;
		if ((r = put_str(out, m->protos[0])))
			return cg_fail(e, CG_E_QUOTA_EXCEEDED, "multistream: output buffer full");
		return MSS_CONTINUE;
	case S_WAIT_ANSWER:
		if (msg_is(p, n, m->protos[m->next])) {
			m->selected = (int)m->next;
			m->state = S_DONE;
			return MSS_DONE;
		}
		if (!msg_is(p, n, "na"))
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "multistream: unexpected answer to a proposal");
		if (++m->next == m->n)
			return cg_fail(e, CG_E_NOT_FOUND, "multistream: no protocol in common");
		if ((r = put_str(out, m->protos[m->next])))
			return cg_fail(e, CG_E_QUOTA_EXCEEDED, "multistream: output buffer full");
		return MSS_CONTINUE;
	case S_WAIT_PROPOSAL:
		if (msg_is(p, n, "ls")) {
			if ((r = put_ls(m, out)))
				return cg_fail(e, CG_E_QUOTA_EXCEEDED, "multistream: output buffer full");
			return MSS_CONTINUE;
		}
		for (size_t i = 0; i < m->n; i++) {
			if (msg_is(p, n, m->protos[i])) {
				if ((r = put_str(out, m->protos[i])))
					return cg_fail(e, CG_E_QUOTA_EXCEEDED, "multistream: output buffer full");
				m->selected = (int)i;
				m->state = S_DONE;
				return MSS_DONE;
			}
		}
		if (++m->attempts > MSS_MAX_ATTEMPTS)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "multistream: too many refused proposals");
		if ((r = put_str(out, "na")))
			return cg_fail(e, CG_E_QUOTA_EXCEEDED, "multistream: output buffer full");
		return MSS_CONTINUE;
	default:
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "multistream: negotiation already finished");
	}
}

int mss_feed(mss *m, const uint8_t *in, size_t n, size_t *consumed, buf *out, cg_err *e)
{
	size_t off = 0;
	int r = MSS_CONTINUE;
	*consumed = 0;
	if (m->state == S_DONE)
		return MSS_DONE;
	if (m->state == S_FAILED || !m->started)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "multistream: negotiator not running");
	while (off < n) {
		uint64_t len;
		int k = varint_decode(in + off, n - off, &len, NULL);
		if (k < 0) {
			r = cg_fail(e, CG_E_INVALID_ARGUMENT, "multistream: bad length prefix");
			break;
		}
		size_t max = m->state == S_WAIT_LS ? MSS_MAX_LS_MSG : MSS_MAX_MSG;
		if (k > 0 && (len == 0 || len > max)) {
			r = cg_fail(e, CG_E_INVALID_ARGUMENT, "multistream: message length out of bounds");
			break;
		}
		if (k == 0 || len > n - off - (size_t)k)
			break; /* incomplete: wait for more */
		const uint8_t *body = in + off + k;
		if (body[len - 1] != '\n') {
			r = cg_fail(e, CG_E_INVALID_ARGUMENT, "multistream: message without newline");
			break;
		}
		r = on_msg(m, body, (size_t)len - 1, out, e);
		if (r < 0)
			break;
		off += (size_t)k + (size_t)len;
		if (r == MSS_DONE)
			break;
	}
	if (r < 0)
		m->state = S_FAILED;
	*consumed = off;
	return r;
}

const char *mss_selected(const mss *m)
{
	return m->selected >= 0 ? m->protos[m->selected] : NULL;
}

int mss_selected_index(const mss *m)
{
	return m->selected;
}

size_t mss_ls_count(const mss *m)
{
	return m->n_ls;
}

const char *mss_ls_get(const mss *m, size_t i)
{
	return i < m->n_ls ? m->lsv[i] : NULL;
}
