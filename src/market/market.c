/* The market's lifecycle, schema, method table and JSON-RPC binding. */
#define MKT_INTERNAL
#include "market/mkt.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "rpc/rpc.h"

/* Entity tables follow seed §2 "Storage" ((id, data) plus indexed columns); the ledger and the audit log
 * are (id, timestamp, data) with their time index, and refuse UPDATE/DELETE at the SQL level. */
static const struct store_migration migrations[] = {
	{1, "CREATE TABLE mkt_offers(id TEXT PRIMARY KEY, sellerId TEXT, status TEXT, data TEXT NOT NULL);"
	    "CREATE INDEX mkt_offers_seller ON mkt_offers(sellerId);"
	    "CREATE TABLE mkt_resources(id TEXT PRIMARY KEY, providerActorId TEXT, kind TEXT, status TEXT,"
	    " offerId TEXT, data TEXT NOT NULL);"
	    "CREATE INDEX mkt_resources_provider ON mkt_resources(providerActorId);"
	    "CREATE INDEX mkt_resources_offer ON mkt_resources(offerId);"
	    "CREATE TABLE mkt_orders(id TEXT PRIMARY KEY, offerId TEXT, buyerId TEXT, status TEXT, data TEXT NOT NULL);"
	    "CREATE INDEX mkt_orders_buyer ON mkt_orders(buyerId);"
	    "CREATE TABLE mkt_consents(id TEXT PRIMARY KEY, orderId TEXT, status TEXT, data TEXT NOT NULL);"
	    "CREATE INDEX mkt_consents_order ON mkt_consents(orderId);"
	    "CREATE TABLE mkt_deliveries(id TEXT PRIMARY KEY, orderId TEXT, status TEXT, data TEXT NOT NULL);"
	    "CREATE INDEX mkt_deliveries_order ON mkt_deliveries(orderId);"
	    "CREATE TABLE mkt_leases(id TEXT PRIMARY KEY, resourceId TEXT, providerActorId TEXT, consumerActorId TEXT,"
	    " orderId TEXT, status TEXT, expiresAt INTEGER, accessTokenHash TEXT UNIQUE, data TEXT NOT NULL);"
	    "CREATE INDEX mkt_leases_expiry ON mkt_leases(status, expiresAt);"
	    "CREATE INDEX mkt_leases_resource ON mkt_leases(resourceId, status);"
	    "CREATE INDEX mkt_leases_order ON mkt_leases(orderId);"
	    "CREATE INDEX mkt_leases_provider ON mkt_leases(providerActorId);"
	    "CREATE INDEX mkt_leases_consumer ON mkt_leases(consumerActorId);"
	    "CREATE TABLE mkt_settlements(id TEXT PRIMARY KEY, orderId TEXT NOT NULL UNIQUE, status TEXT,"
	    " data TEXT NOT NULL);"
	    "CREATE TABLE mkt_disputes(id TEXT PRIMARY KEY, orderId TEXT, status TEXT, initiatorActorId TEXT,"
	    " respondentActorId TEXT, data TEXT NOT NULL);"
	    "CREATE INDEX mkt_disputes_order ON mkt_disputes(orderId);"
	    "CREATE TABLE mkt_revocations(id TEXT PRIMARY KEY, deliveryId TEXT, status TEXT, nextAttemptAt INTEGER,"
	    " data TEXT NOT NULL);"
	    "CREATE INDEX mkt_revocations_due ON mkt_revocations(status, nextAttemptAt);"
	    "CREATE TABLE mkt_repairs(id TEXT PRIMARY KEY, orderId TEXT, status TEXT, nextAttemptAt INTEGER,"
	    " data TEXT NOT NULL);"
	    "CREATE INDEX mkt_repairs_due ON mkt_repairs(status, nextAttemptAt);"
	    "CREATE TABLE mkt_pending(id TEXT PRIMARY KEY, payer TEXT, nextAttemptAt INTEGER, data TEXT NOT NULL);"
	    "CREATE TABLE mkt_ledger(rid INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,"
	    " ts INTEGER NOT NULL, providerActorId TEXT NOT NULL, consumerActorId TEXT NOT NULL, leaseId TEXT NOT NULL,"
	    " resourceId TEXT NOT NULL, pseq INTEGER NOT NULL, idemKey TEXT, data TEXT NOT NULL,"
	    " UNIQUE(providerActorId, pseq), UNIQUE(providerActorId, idemKey));"
	    "CREATE INDEX mkt_ledger_ts ON mkt_ledger(ts);"
	    "CREATE INDEX mkt_ledger_lease ON mkt_ledger(leaseId);"
	    "CREATE INDEX mkt_ledger_resource ON mkt_ledger(resourceId);"
	    "CREATE INDEX mkt_ledger_consumer ON mkt_ledger(consumerActorId);"
	    "CREATE TABLE mkt_ledger_heads(providerActorId TEXT PRIMARY KEY, pseq INTEGER NOT NULL, hash TEXT NOT NULL,"
	    " sig TEXT NOT NULL);"
	    "CREATE TABLE mkt_audit(seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, ts INTEGER NOT NULL,"
	    " kind TEXT NOT NULL, refId TEXT, actor TEXT, data TEXT NOT NULL);"
	    "CREATE INDEX mkt_audit_ts ON mkt_audit(ts);"
	    "CREATE INDEX mkt_audit_ref ON mkt_audit(refId);"
	    "CREATE INDEX mkt_audit_kind ON mkt_audit(kind);"
	    "CREATE TRIGGER mkt_ledger_append_only_u BEFORE UPDATE ON mkt_ledger"
	    " BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;"
	    "CREATE TRIGGER mkt_ledger_append_only_d BEFORE DELETE ON mkt_ledger"
	    " BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;"
	    "CREATE TRIGGER mkt_audit_append_only_u BEFORE UPDATE ON mkt_audit"
	    " BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
	    "CREATE TRIGGER mkt_audit_append_only_d BEFORE DELETE ON mkt_audit"
	    " BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"},
};

struct method {
	const char *name;
	mkt_op fn;
};

static const struct method methods[] = {
	{"market.offer.create", op_offer_create},
	{"market.offer.publish", op_offer_publish},
	{"market.offer.update", op_offer_update},
	{"market.offer.close", op_offer_close},
	{"market.offer.get", op_offer_get},
	{"market.offer.list", op_offer_list},
	{"market.order.create", op_order_create},
	{"market.order.cancel", op_order_cancel},
	{"market.order.get", op_order_get},
	{"market.order.list", op_order_list},
	{"market.consent.grant", op_consent_grant},
	{"market.consent.revoke", op_consent_revoke},
	{"market.consent.get", op_consent_get},
	{"market.delivery.issue", op_delivery_issue},
	{"market.delivery.revoke", op_delivery_revoke},
	{"market.delivery.complete", op_delivery_complete},
	{"market.delivery.get", op_delivery_get},
	{"market.resource.publish", op_resource_publish},
	{"market.resource.unpublish", op_resource_unpublish},
	{"market.resource.get", op_resource_get},
	{"market.resource.list", op_resource_list},
	{"market.lease.issue", op_lease_issue},
	{"market.lease.revoke", op_lease_revoke},
	{"market.lease.get", op_lease_get},
	{"market.lease.list", op_lease_list},
	{"market.lease.expireSweep", op_lease_sweep},
	{"market.ledger.append", op_ledger_append},
	{"market.ledger.list", op_ledger_list},
	{"market.ledger.summary", op_ledger_summary},
	{"market.ledger.verify", op_ledger_verify},
	{"market.settlement.lock", op_settle_lock},
	{"market.settlement.release", op_settle_release},
	{"market.settlement.refund", op_settle_refund},
	{"market.settlement.status", op_settle_status},
	{"market.settlement.flush", op_settle_flush},
	{"market.settlement.queue", op_settle_queue},
	{"market.settlement.queueList", op_settle_queue_list},
	{"market.settlement.balance", op_settle_balance},
	{"market.settlement.faucet", op_settle_faucet},
	{"market.dispute.open", op_dispute_open},
	{"market.dispute.submitEvidence", op_dispute_evidence},
	{"market.dispute.resolve", op_dispute_resolve},
	{"market.dispute.reject", op_dispute_reject},
	{"market.dispute.get", op_dispute_get},
	{"market.dispute.list", op_dispute_list},
	{"market.audit.query", op_audit_query},
	{"market.repair.retry", op_repair_retry},
	{"market.revocation.retry", op_revocation_retry},
	{"web3.resources.publish", op_w3_publish},
	{"web3.resources.unpublish", op_w3_unpublish},
	{"web3.resources.list", op_w3_list},
	{"web3.resources.lease", op_w3_lease},
	{"web3.resources.revokeLease", op_w3_revoke},
	{"web3.resources.status", op_w3_status},
};
#define NMETHODS (sizeof methods / sizeof methods[0])

struct mkt_binding {
	struct market *m;
	const struct method *meth;
};

void market_opts_default(struct market_opts *o)
{
	o->flush_max_attempts = 10;
	o->backoff_base_ms = 1000;
	o->backoff_max_ms = 3600000;
	o->job_max_attempts = 10;
	o->max_resources_per_provider = 1000;
	o->max_active_leases_per_resource = 1000;
	o->max_evidence = 32;
	o->faucet = true;
}

int market_new(struct store *st, const struct node_key *key, struct settle_backend *backend, const char *self_actor,
	       const struct market_opts *opts, struct market **out, cg_err *e)
{
	int r;
	if (!st || !key || !backend)
		return cg_fail(e, CG_E_INTERNAL, "market: store, key and settlement backend are required");
	struct market *m = calloc(1, sizeof *m);
	if (!m) {
		backend->free(backend);
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	}
	m->st = st;
	m->key = key;
	m->backend = backend;
	if (opts)
		m->o = *opts;
	else
		market_opts_default(&m->o);
	if (self_actor && (r = mkt_actor_norm(self_actor, "self", m->self, e)) < 0)
		goto fail;
	if ((r = store_migrate(st, "market", migrations, sizeof migrations / sizeof migrations[0], e)) < 0)
		goto fail;
	*out = m;
	return 0;
fail:
	market_free(m);
	return r;
}

void market_free(struct market *m)
{
	if (!m)
		return;
	if (m->backend)
		m->backend->free(m->backend);
	json_decref(m->status_cache);
	free(m->bind);
	free(m);
}

void market_set_revocation_notifier(struct market *m, market_notify_fn fn, void *arg)
{
	m->notify = fn;
	m->notify_arg = arg;
}

static const struct method *find(const char *name)
{
	for (size_t i = 0; i < NMETHODS; i++)
		if (strcmp(methods[i].name, name) == 0)
			return &methods[i];
	return NULL;
}

int mkt_call_op(struct market *m, const char *method, const char *actor, json_t *params, json_t **result,
		cg_err *e)
{
	const struct method *mt = find(method);
	if (!mt)
		return cg_fail(e, CG_E_NOT_FOUND, "no market method %s", method);
	json_t *p = params ? params : json_object();
	json_t *res = NULL;
	int r = mt->fn(m, actor, p, &res, e);
	if (!params)
		json_decref(p);
	if (r < 0) {
		json_decref(res);
		return r;
	}
	if (!res)
		return cg_fail(e, CG_E_INTERNAL, "%s returned nothing", method);
	*result = res;
	return 0;
}

/* Lease tokens go out once (lease.issue) and never come back in through parameters: a token pasted into a
 * reason, a label or an id would be stored and echoed later (Gate-SEC-01). Keys and string values are
 * checked; nesting is bounded by jansson's parser depth. */
static bool has_token(const char *s)
{
	for (const char *p = strstr(s, "tok_"); p; p = strstr(p + 4, "tok_")) {
		size_t n = strspn(p + 4, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
		if (n >= 16)
			return true;
	}
	return false;
}

static bool carries_token(json_t *v, int depth)
{
	if (depth > 32)
		return false;
	if (json_is_string(v))
		return has_token(json_string_value(v));
	if (json_is_object(v)) {
		const char *k;
		json_t *x;
		json_object_foreach(v, k, x) if (has_token(k) || carries_token(x, depth + 1)) return true;
	} else if (json_is_array(v)) {
		size_t i;
		json_t *x;
		json_array_foreach(v, i, x) if (carries_token(x, depth + 1)) return true;
	}
	return false;
}

static int no_tokens(json_t *params, cg_err *e)
{
	if (carries_token(params, 0))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "params: must not carry a lease token");
	return 0;
}

/* Reads and normalizes params.actorId (NULL when absent). */
static int actor_of(json_t *params, char buf[static MKT_ACTOR_MAX + 1], const char **out, cg_err *e)
{
	bool present;
	int r = mkt_jp_actor(params, NULL, "actorId", JP_NULLABLE, buf, &present, e);
	if (r < 0)
		return r;
	*out = present ? buf : NULL;
	return 0;
}

int market_call(struct market *m, const char *method, json_t *params, json_t **result, cg_err *e)
{
	char buf[MKT_ACTOR_MAX + 1];
	const char *actor = NULL;
	json_t *p = params ? params : json_object();
	int r = no_tokens(p, e);
	if (r == 0)
		r = actor_of(p, buf, &actor, e);
	if (r == 0)
		r = mkt_call_op(m, method, actor, p, result, e);
	if (!params)
		json_decref(p);
	return r;
}

static int rpc_handler(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	struct mkt_binding *b = arg;
	char buf[MKT_ACTOR_MAX + 1];
	const char *actor = NULL;
	int r = no_tokens(params, e);
	if (r < 0 || (r = actor_of(params, buf, &actor, e)) < 0)
		return r;
	/* The owner (admin token) may act as any actor: it is the gateway of seed §2 "assertAccess". Any other
	 * authenticated principal may act only as itself. */
	const struct rpc_caller *who = rpc_call_caller(call);
	if (who && !who->admin) {
		if (!who->principal)
			return cg_fail(e, CG_E_AUTH_REQUIRED, "market methods need an authenticated caller");
		if (actor && !mkt_actor_eq(actor, who->principal))
			return cg_fail(e, CG_E_FORBIDDEN, "actorId must be the authenticated caller");
		if (strncmp(b->meth->name, "web3.", 5) == 0)
			return cg_fail(e, CG_E_FORBIDDEN, "web3.* methods act for this node and need the admin token");
	}
	return b->meth->fn(b->m, actor, params, result, e);
}

int market_register_rpc(struct market *m, struct rpc_registry *reg)
{
	if (!m->bind) {
		m->bind = calloc(NMETHODS, sizeof *m->bind);
		if (!m->bind)
			return -1;
		m->nbind = NMETHODS;
	}
	for (size_t i = 0; i < NMETHODS; i++) {
		m->bind[i].m = m;
		m->bind[i].meth = &methods[i];
		if (rpc_register(reg, methods[i].name, rpc_handler, &m->bind[i]) < 0)
			return -1;
	}
	return 0;
}

int op_audit_query(struct market *m, const char *actor, json_t *p, json_t **result, cg_err *e)
{
	static const char *const keys[] = {"actorId", "kind", "refId", "actor", "since", "until", "limit", NULL};
	const char *kind = NULL, *ref = NULL, *who = NULL;
	int64_t since = -1, until = -1, limit;
	int r;
	if ((r = jp_only(p, NULL, keys, e)) < 0 || (r = jp_str(p, NULL, "kind", 0, 1, 64, &kind, e)) < 0 ||
	    (r = mkt_jp_id(p, "refId", 0, &ref, e)) < 0 || (r = jp_str(p, NULL, "actor", 0, 1, MKT_ACTOR_MAX, &who, e)) < 0 ||
	    (r = mkt_jp_range(p, &since, &until, e)) < 0 ||
	    (r = mkt_jp_limit(p, MKT_LIST_DEF, MKT_LIST_MAX, &limit, e)) < 0)
		return r;
	char norm[MKT_ACTOR_MAX + 1];
	if (who && (r = mkt_actor_norm(who, "actor", norm, e)) < 0)
		return r;
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(store_db(m->st),
			       "SELECT data FROM mkt_audit WHERE (?1 IS NULL OR kind=?1) AND (?2 IS NULL OR refId=?2)"
			       " AND (?3 IS NULL OR actor=?3) AND (?4 < 0 OR ts>=?4) AND (?5 < 0 OR ts<=?5)"
			       " ORDER BY seq LIMIT ?6",
			       -1, &s, NULL) != SQLITE_OK)
		return store_fail(m->st, e, "audit query");
	if (kind)
		sqlite3_bind_text(s, 1, kind, -1, SQLITE_TRANSIENT);
	if (ref)
		sqlite3_bind_text(s, 2, ref, -1, SQLITE_TRANSIENT);
	if (who)
		sqlite3_bind_text(s, 3, norm, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 4, since);
	sqlite3_bind_int64(s, 5, until);
	sqlite3_bind_int64(s, 6, limit);
	json_t *arr;
	if ((r = mkt_rows(m, s, "audit query", &arr, e)) < 0)
		return r;
	*result = json_pack("{s:o}", "events", arr);
	return 0;
}

static int64_t data_version(struct market *m)
{
	sqlite3_stmt *s = store_prep(m->st, "PRAGMA data_version", NULL);
	int64_t v = -1;
	if (s && sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	if (s)
		sqlite3_reset(s);
	return v;
}

static int status_compute(struct market *m, json_t **out, cg_err *e);

/* web3.status.summary calls this on every request: the counts are recomputed only after a write. */
int market_status(struct market *m, json_t **out, cg_err *e)
{
	int64_t changes = sqlite3_total_changes64(store_db(m->st)), dv = data_version(m);
	if (m->status_cache && changes == m->status_changes && dv == m->status_dv && dv >= 0) {
		*out = json_deep_copy(m->status_cache);
		return *out ? 0 : cg_fail(e, CG_E_INTERNAL, "out of memory");
	}
	int r = status_compute(m, out, e);
	if (r < 0 || store_tx_depth(m->st) > 0) /* uncommitted rows may still roll back: don't keep them */
		return r;
	json_decref(m->status_cache);
	m->status_cache = json_deep_copy(*out);
	m->status_changes = changes;
	m->status_dv = dv;
	return 0;
}

static int status_compute(struct market *m, json_t **out, cg_err *e)
{
	struct mkt_filter la[] = {{"status", "=", "lease_active", 0}};
	struct mkt_filter rp[] = {{"status", "=", "resource_published", 0}};
	struct mkt_filter sl[] = {{"status", "=", "settlement_locked", 0}};
	struct mkt_filter rv[] = {{"status", "=", "revocation_pending", 0}};
	struct mkt_filter rj[] = {{"status", "=", "repair_pending", 0}};
	struct mkt_filter dp[] = {{"status", "=", "dispute_opened", 0}};
	struct mkt_filter de[] = {{"status", "=", "dispute_evidence_submitted", 0}};
	int64_t ledger = -1;
	sqlite3_stmt *s = store_prep(m->st, "SELECT count(*) FROM mkt_ledger", e);
	if (!s)
		return -CG_E_INTERNAL;
	if (sqlite3_step(s) == SQLITE_ROW)
		ledger = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	*out = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "backend", m->backend->name, "pending",
			 (json_int_t)mkt_count(m, T_PENDING, NULL, 0), "activeLeases", (json_int_t)mkt_count(m, T_LEASE, la, 1),
			 "publishedResources", (json_int_t)mkt_count(m, T_RESOURCE, rp, 1), "lockedSettlements",
			 (json_int_t)mkt_count(m, T_SETTLEMENT, sl, 1), "ledgerEntries", (json_int_t)ledger,
			 "revocationJobs", (json_int_t)mkt_count(m, T_REVOCATION, rv, 1), "repairJobs",
			 (json_int_t)mkt_count(m, T_REPAIR, rj, 1), "openDisputes",
			 (json_int_t)(mkt_count(m, T_DISPUTE, dp, 1) + mkt_count(m, T_DISPUTE, de, 1)));
	if (*m->self)
		mkt_set_s(*out, "actorId", m->self);
	return 0;
}
