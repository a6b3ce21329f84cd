#include "p2p/connmgr.h"

#include <stdlib.h>
#include <string.h>

/* The backoff table is bounded: when it is full the entry that expires first is reused, so a flood of
 * distinct failing targets cannot grow memory. */
#define BACKOFF_SLOTS 256
#define KEY_MAX 160

struct backoff {
	char key[KEY_MAX];
	int64_t until_ms;
	int failures;
};

struct p2p_connmgr {
	struct p2p_connmgr_cfg cfg;
	int conns;   /* open + pending */
	int pending; /* outbound, not yet upgraded */
	struct backoff bo[BACKOFF_SLOTS];
};

void p2p_connmgr_cfg_default(struct p2p_connmgr_cfg *c)
{
	c->max_conns = 256;
	c->max_streams_per_conn = 512;
	c->max_pending_dials = 32;
	c->backoff_base_ms = 1000;
	c->backoff_max_ms = 5 * 60 * 1000;
	c->idle_ms = 5 * 60 * 1000;
	c->handshake_ms = 10 * 1000;
	c->stream_buf_cap = 1u << 20;
	c->conn_buf_cap = 8u << 20;
}

struct p2p_connmgr *p2p_connmgr_new(const struct p2p_connmgr_cfg *cfg)
{
	struct p2p_connmgr *cm = calloc(1, sizeof *cm);
	if (!cm)
		return NULL;
	if (cfg)
		cm->cfg = *cfg;
	else
		p2p_connmgr_cfg_default(&cm->cfg);
	return cm;
}

struct p2p_connmgr *p2p_connmgr_free(struct p2p_connmgr *cm)
{
	free(cm);
	return NULL;
}

const struct p2p_connmgr_cfg *p2p_connmgr_cfg(const struct p2p_connmgr *cm)
{
	return &cm->cfg;
}

static struct backoff *bo_find(struct p2p_connmgr *cm, const char *key)
{
	for (int i = 0; i < BACKOFF_SLOTS; i++)
		if (cm->bo[i].key[0] && strcmp(cm->bo[i].key, key) == 0)
			return &cm->bo[i];
	return NULL;
}

int p2p_connmgr_dial_begin(struct p2p_connmgr *cm, const char *key, int64_t now_ms, cg_err *e)
{
	struct backoff *b = bo_find(cm, key);
	if (b && b->until_ms > now_ms)
		return cg_fail(e, CG_E_RATE_LIMITED, "dial backoff: %d failed dial(s), retry in %lld ms", b->failures,
			       (long long)(b->until_ms - now_ms));
	if (cm->pending >= cm->cfg.max_pending_dials)
		return cg_fail(e, CG_E_QUOTA_EXCEEDED, "too many pending dials (limit %d)", cm->cfg.max_pending_dials);
	if (cm->conns >= cm->cfg.max_conns)
		return cg_fail(e, CG_E_QUOTA_EXCEEDED, "too many connections (limit %d)", cm->cfg.max_conns);
	cm->pending++;
	cm->conns++;
	return 0;
}

void p2p_connmgr_dial_end(struct p2p_connmgr *cm, const char *key, int ok, int64_t now_ms)
{
	if (cm->pending > 0)
		cm->pending--;
	struct backoff *b = bo_find(cm, key);
	if (ok) {
		if (b)
			memset(b, 0, sizeof *b);
		return;
	}
	if (cm->conns > 0)
		cm->conns--;
	if (strlen(key) >= KEY_MAX)
		return;
	if (!b) {
		/* Reuse an empty slot, else the one whose backoff ends first. */
		for (int i = 0; i < BACKOFF_SLOTS; i++) {
			if (!cm->bo[i].key[0]) {
				b = &cm->bo[i];
				break;
			}
			if (!b || cm->bo[i].until_ms < b->until_ms)
				b = &cm->bo[i];
		}
		memset(b, 0, sizeof *b);
		memcpy(b->key, key, strlen(key) + 1); /* length checked above */
	}
	b->failures++;
	int64_t d = cm->cfg.backoff_base_ms;
	for (int i = 1; i < b->failures && d < cm->cfg.backoff_max_ms; i++)
		d *= 2;
	if (d > cm->cfg.backoff_max_ms)
		d = cm->cfg.backoff_max_ms;
	b->until_ms = now_ms + d;
}

void p2p_connmgr_backoff_clear(struct p2p_connmgr *cm, const char *key)
{
	struct backoff *b = bo_find(cm, key);
	if (b)
		memset(b, 0, sizeof *b);
}

int p2p_connmgr_accept(struct p2p_connmgr *cm, cg_err *e)
{
	if (cm->conns >= cm->cfg.max_conns)
		return cg_fail(e, CG_E_QUOTA_EXCEEDED, "too many connections (limit %d)", cm->cfg.max_conns);
	cm->conns++;
	return 0;
}

void p2p_connmgr_conn_closed(struct p2p_connmgr *cm)
{
	if (cm->conns > 0)
		cm->conns--;
}

int p2p_connmgr_stream_ok(const struct p2p_connmgr *cm, int n_streams, cg_err *e)
{
	if (n_streams >= cm->cfg.max_streams_per_conn)
		return cg_fail(e, CG_E_QUOTA_EXCEEDED, "too many streams on this connection (limit %d)",
			       cm->cfg.max_streams_per_conn);
	return 0;
}

int p2p_connmgr_is_idle(const struct p2p_connmgr *cm, int n_streams, int64_t last_active_ms, int64_t now_ms)
{
	return cm->cfg.idle_ms > 0 && n_streams == 0 && now_ms - last_active_ms >= cm->cfg.idle_ms;
}

int p2p_connmgr_conns(const struct p2p_connmgr *cm)
{
	return cm->conns;
}

int p2p_connmgr_pending(const struct p2p_connmgr *cm)
{
	return cm->pending;
}
