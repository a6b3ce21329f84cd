/* Upstream health, cooldowns and ranking (see policy.h). */
#include "brain/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bh_init(struct bh_health *h)
{
	memset(h, 0, sizeof *h);
}

void bh_success(struct bh_health *h, int64_t now, double ttft_ms)
{
	(void)now;
	h->ok++;
	h->err_ewma *= 0.8;
	if (ttft_ms >= 0)
		h->ttft_ewma_ms = h->ttft_ewma_ms > 0 ? 0.8 * h->ttft_ewma_ms + 0.2 * ttft_ms : ttft_ms;
	/* A success after a cooldown closes the circuit for good. */
	if (h->cool_until && now >= h->cool_until)
		h->cool_until = 0;
}

int bh_recent_failures(const struct bh_health *h, const struct bh_cooldown *cfg, int64_t now)
{
	int n = 0;
	for (int i = 0; i < h->nfail; i++) {
		int64_t t = h->fail_ts[(h->head - 1 - i + BH_FAIL_RING) % BH_FAIL_RING];
		if (now - t <= cfg->window_ms)
			n++;
	}
	return n;
}

bool bh_failure(struct bh_health *h, const struct bh_cooldown *cfg, int64_t now, int64_t retry_after_ms,
		const char *reason)
{
	h->failed++;
	h->err_ewma = 0.8 * h->err_ewma + 0.2;
	snprintf(h->last_reason, sizeof h->last_reason, "%s", reason ? reason : "");
	h->fail_ts[h->head] = now;
	h->head = (h->head + 1) % BH_FAIL_RING;
	if (h->nfail < BH_FAIL_RING)
		h->nfail++;
	int64_t cool = 0;
	if (retry_after_ms > 0)
		cool = retry_after_ms > BH_RETRY_AFTER_MAX_MS ? BH_RETRY_AFTER_MAX_MS : retry_after_ms;
	if (bh_recent_failures(h, cfg, now) >= cfg->failures && cfg->cooldown_ms > cool)
		cool = cfg->cooldown_ms;
	if (cool <= 0)
		return false;
	bool started = !bh_cooling(h, now);
	if (now + cool > h->cool_until)
		h->cool_until = now + cool;
	/* Half-open after the cooldown: the next failures count from zero. */
	h->nfail = 0;
	h->head = 0;
	if (started)
		h->cooldowns++;
	return started;
}

bool bh_cooling(const struct bh_health *h, int64_t now)
{
	return h->cool_until && now < h->cool_until;
}

int64_t bh_cool_left_ms(const struct bh_health *h, int64_t now)
{
	return bh_cooling(h, now) ? h->cool_until - now : 0;
}

enum bh_state bh_state(const struct bh_health *h, const struct bh_cooldown *cfg, int64_t now)
{
	if (bh_cooling(h, now))
		return BH_COOLING;
	return bh_recent_failures(h, cfg, now) > 0 ? BH_DEGRADED : BH_OK;
}

const char *bh_state_name(enum bh_state s)
{
	return s == BH_OK ? "ok" : s == BH_DEGRADED ? "degraded" : "cooling";
}

static int64_t g_now; /* qsort has no context argument; ranking runs on the loop thread only */

static int cmp(const void *a, const void *b)
{
	const struct bp_cand *x = a, *y = b;
	bool cx = bh_cooling(x->h, g_now), cy = bh_cooling(y->h, g_now);
	if (cx != cy)
		return cx ? 1 : -1;
	if (cx) {
		int64_t lx = bh_cool_left_ms(x->h, g_now), ly = bh_cool_left_ms(y->h, g_now);
		if (lx != ly)
			return lx < ly ? -1 : 1;
	} else if (x->score != y->score) {
		return x->score < y->score ? -1 : 1;
	}
	return x->order - y->order;
}

void bp_rank(struct bp_cand *c, size_t n, const struct bh_cooldown *cfg, int64_t now)
{
	double maxp = 0, maxl = 0;
	for (size_t i = 0; i < n; i++) {
		if (c[i].price > maxp)
			maxp = c[i].price;
		if (c[i].h->ttft_ewma_ms > maxl)
			maxl = c[i].h->ttft_ewma_ms;
	}
	for (size_t i = 0; i < n; i++) {
		double p = maxp > 0 ? c[i].price / maxp : 0;
		/* Not measured yet: assume middling latency so new peers get tried. */
		double l = maxl > 0 ? (c[i].h->ttft_ewma_ms > 0 ? c[i].h->ttft_ewma_ms / maxl : 0.5) : 0;
		double recent = bh_recent_failures(c[i].h, cfg, now) > 0 ? 1 : 0;
		c[i].score = 0.4 * p + 0.3 * c[i].h->err_ewma + 0.2 * l + 0.1 * recent;
	}
	g_now = now;
	qsort(c, n, sizeof *c, cmp);
}
