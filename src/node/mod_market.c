/* Wiring of the market into the node: config section "market", migrations, the market.* and
 * web3.resources.* RPC methods, and the periodic jobs (expire sweep, pending settlement flush,
 * revocation retries).
 *
 *   "market": {
 *     "settlement": {"backend": "local", "flushIntervalMs": 60000, "faucet": true,
 *                    "maxAttempts": 10, "backoffBaseMs": 1000, "backoffMaxMs": 3600000},
 *     "sweepIntervalMs": 30000, "revocationRetryIntervalMs": 60000,
 *     "limits": {"maxResourcesPerProvider": 1000, "maxActiveLeasesPerResource": 1000, "maxEvidence": 32}
 *   } */
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/log.h"
#include "chain/local.h"
#include "market/market.h"
#include "node/modules.h"

#define DAY_MS (24LL * 3600 * 1000)

struct mod {
	struct market *m;
	int64_t sweep_ms, flush_ms, revoke_ms;
};

struct cfg {
	const char *backend;
	int64_t flush_ms, sweep_ms, revoke_ms;
	struct market_opts o;
};

static int parse(json_t *sec, struct cfg *c, cg_err *e)
{
	static const char *const keys[] = {"settlement", "sweepIntervalMs", "revocationRetryIntervalMs", "limits", NULL};
	static const char *const skeys[] = {"backend",     "flushIntervalMs", "faucet", "maxAttempts",
					    "backoffBaseMs", "backoffMaxMs",    NULL};
	static const char *const lkeys[] = {"maxResourcesPerProvider", "maxActiveLeasesPerResource", "maxEvidence",
					    NULL};
	static const char *const backends[] = {"local", NULL};
	json_t *s = NULL, *l = NULL;
	int r;
	memset(c, 0, sizeof *c);
	market_opts_default(&c->o);
	c->backend = "local";
	c->flush_ms = 60000;
	c->sweep_ms = 30000;
	c->revoke_ms = 60000;
	if ((r = jp_only(sec, "market", keys, e)) < 0 ||
	    (r = jp_int(sec, "market", "sweepIntervalMs", 0, 1000, DAY_MS, &c->sweep_ms, e)) < 0 ||
	    (r = jp_int(sec, "market", "revocationRetryIntervalMs", 0, 1000, DAY_MS, &c->revoke_ms, e)) < 0 ||
	    (r = jp_obj(sec, "market", "settlement", 0, &s, e)) < 0 || (r = jp_obj(sec, "market", "limits", 0, &l, e)) < 0)
		return r;
	if (s) {
		if ((r = jp_only(s, "market.settlement", skeys, e)) < 0 ||
		    (r = jp_enum(s, "market.settlement", "backend", 0, backends, &c->backend, e)) < 0 ||
		    (r = jp_int(s, "market.settlement", "flushIntervalMs", 0, 1000, DAY_MS, &c->flush_ms, e)) < 0 ||
		    (r = jp_bool(s, "market.settlement", "faucet", 0, &c->o.faucet, e)) < 0 ||
		    (r = jp_int(s, "market.settlement", "maxAttempts", 0, 1, 1000, &c->o.flush_max_attempts, e)) < 0 ||
		    (r = jp_int(s, "market.settlement", "backoffBaseMs", 0, 10, DAY_MS, &c->o.backoff_base_ms, e)) < 0 ||
		    (r = jp_int(s, "market.settlement", "backoffMaxMs", 0, 10, 7 * DAY_MS, &c->o.backoff_max_ms, e)) < 0)
			return r;
		if (c->o.backoff_max_ms < c->o.backoff_base_ms)
			return cg_fail(e, CG_E_INVALID_ARGUMENT,
				       "market.settlement.backoffMaxMs: must not be below backoffBaseMs");
	}
	if (l && ((r = jp_only(l, "market.limits", lkeys, e)) < 0 ||
		  (r = jp_int(l, "market.limits", "maxResourcesPerProvider", 0, 1, 1000000,
			      &c->o.max_resources_per_provider, e)) < 0 ||
		  (r = jp_int(l, "market.limits", "maxActiveLeasesPerResource", 0, 1, 1000000,
			      &c->o.max_active_leases_per_resource, e)) < 0 ||
		  (r = jp_int(l, "market.limits", "maxEvidence", 0, 1, 1000, &c->o.max_evidence, e)) < 0))
		return r;
	c->o.job_max_attempts = c->o.flush_max_attempts;
	return 0;
}

static int check(json_t *section, cg_err *e)
{
	struct cfg c;
	return parse(section, &c, e);
}

static void log_job(const char *what, json_t *res, int r, const cg_err *e)
{
	if (r < 0) {
		log_warn("market", "periodic job failed", "job=%s err=\"%s\"", what, e->msg);
		return;
	}
	json_int_t n = json_integer_value(json_object_get(res, "processed"));
	if (n > 0)
		log_info("market", "periodic job", "job=%s processed=%lld", what, (long long)n);
}

static void on_sweep(struct node *n, void *arg)
{
	struct mod *md = arg;
	json_t *res = NULL;
	cg_err e;
	cg_err_clear(&e);
	int r = market_expire_sweep(md->m, 0, 1000, &res, &e);
	log_job("expireSweep", res, r, &e);
	json_decref(res);
}

static void on_flush(struct node *n, void *arg)
{
	struct mod *md = arg;
	json_t *res = NULL;
	cg_err e;
	cg_err_clear(&e);
	int r = market_flush_pending(md->m, 200, &res, &e);
	log_job("settlementFlush", res, r, &e);
	json_decref(res);
}

static void on_revoke(struct node *n, void *arg)
{
	struct mod *md = arg;
	json_t *res = NULL;
	cg_err e;
	cg_err_clear(&e);
	int r = market_retry_revocations(md->m, 200, &res, &e);
	log_job("revocationRetry", res, r, &e);
	json_decref(res);
}

/* web3.status.summary: settlement.pending is the consumer-side queue (seed §1.4), plus the market's own
 * counters for operators. */
static void on_status(struct node *n, void *arg, json_t *summary)
{
	struct mod *md = arg;
	json_t *st = NULL;
	cg_err e;
	if (market_status(md->m, &st, &e) < 0) {
		log_warn("market", "status failed", "err=\"%s\"", e.msg);
		return;
	}
	json_t *set = json_object_get(summary, "settlement");
	if (!json_is_object(set)) {
		set = json_object();
		json_object_set_new(summary, "settlement", set);
	}
	json_object_set(set, "pending", json_object_get(st, "pending"));
	json_object_set(set, "locked", json_object_get(st, "lockedSettlements"));
	json_object_set(set, "backend", json_object_get(st, "backend"));
	json_object_set(set, "repairJobs", json_object_get(st, "repairJobs"));
	json_object_set_new(summary, "market", st);
}

static int start(struct node *n, int idx, cg_err *e)
{
	struct cfg c;
	int r;
	if ((r = parse(node_config_section(n, "market"), &c, e)) < 0)
		return r;
	if (!n->store || !n->key || !n->rpc)
		return cg_fail(e, CG_E_INTERNAL, "market: the node has no store, key or RPC registry");
	struct mod *md = calloc(1, sizeof *md);
	if (!md)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	n->mod[idx] = md;
	struct settle_backend *b = NULL;
	if ((r = chain_local_new(n->store, &b, e)) < 0)
		return r;
	if ((r = market_new(n->store, n->key, b, n->address[0] ? n->address : NULL, &c.o, &md->m, e)) < 0)
		return r;
	if (market_register_rpc(md->m, n->rpc) < 0)
		return cg_fail(e, CG_E_INTERNAL, "market: cannot register RPC methods");
	if (node_status_contribute(n, on_status, md) < 0)
		return cg_fail(e, CG_E_INTERNAL, "market: cannot register the status contributor");
	if (node_every(n, (int)c.sweep_ms, on_sweep, md) < 0 || node_every(n, (int)c.flush_ms, on_flush, md) < 0 ||
	    node_every(n, (int)c.revoke_ms, on_revoke, md) < 0)
		return cg_fail(e, CG_E_INTERNAL, "market: cannot start timers");
	log_info("market", "started", "backend=%s flush_ms=%lld sweep_ms=%lld", c.backend, (long long)c.flush_ms,
		 (long long)c.sweep_ms);
	return 0;
}

static void stop(struct node *n, int idx)
{
	struct mod *md = n->mod[idx];
	if (!md)
		return;
	market_free(md->m);
	free(md);
	n->mod[idx] = NULL;
}

struct market *mod_market_get(struct node *n)
{
	struct mod *md = node_module_state(n, "market");
	return md ? md->m : NULL;
}

const struct node_module mod_market = {"market", "market", check, start, stop};
