/* mkt — internals shared by the files of src/market/ (not a public header: use market/market.h). */
#ifndef CG_MARKET_MKT_H
#define CG_MARKET_MKT_H

#ifndef MKT_INTERNAL
#error "market/mkt.h is internal to src/market/; include market/market.h"
#endif

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <sqlite3.h>

#include "base/err.h"
#include "base/json.h"
#include "market/market.h"
#include "market/settle.h"
#include "store/store.h"

#define MKT_ACTOR_MAX 128
#define MKT_ID_MAX 64

/* Spec limits (seed-digest §2 "Validation"). */
#define MKT_TTL_MIN 10000
#define MKT_TTL_MAX (7LL * 24 * 3600 * 1000)
#define MKT_LABEL_MAX 80
#define MKT_DESC_MAX 400
#define MKT_TAGS_MAX 12
#define MKT_TAG_MAX 32
#define MKT_CURRENCY_MAX 16
#define MKT_REASON_MAX 200
#define MKT_SESSION_MAX 128
#define MKT_LIST_DEF 50
#define MKT_LIST_MAX 200
#define MKT_LEDGER_DEF 200
#define MKT_LEDGER_MAX 1000
#define MKT_SWEEP_DEF 200
#define MKT_SWEEP_MAX 1000
#define MKT_META_MAX 4096 /* canonical bytes of free-form objects (assetMeta, usageScope, details) */

struct market {
	struct store *st;
	const struct node_key *key;
	struct settle_backend *backend;
	struct market_opts o;
	char self[MKT_ACTOR_MAX + 1];
	market_notify_fn notify;
	void *notify_arg;
	bool in_repair;           /* market.repair.retry is re-running an op: do not queue it again */
	struct mkt_binding *bind; /* one per method, the rpc_register arg */
	size_t nbind;
	/* market_status() result, valid while the database is unchanged: this connection's total_changes and
	 * PRAGMA data_version (other connections' commits) both as they were when it was computed. */
	json_t *status_cache;
	int64_t status_changes, status_dv;
};

/* Entity tables: (id TEXT PRIMARY KEY, indexed columns named after the JSON fields, data TEXT). */
enum mkt_tbl {
	T_OFFER,
	T_RESOURCE,
	T_ORDER,
	T_CONSENT,
	T_DELIVERY,
	T_LEASE,
	T_SETTLEMENT,
	T_DISPUTE,
	T_REVOCATION,
	T_REPAIR,
	T_PENDING,
	T_COUNT
};

/* A column filter for mkt_list: string (s) or integer (i) compared with op ("=", ">=", "<="); "has" tests
 * membership in the JSON array col; "party" (leases) matches providerActorId or consumerActorId. Column
 * names come from code, values are bound. */
struct mkt_filter {
	const char *col;
	const char *op;
	const char *s;
	int64_t i;
};

typedef int (*mkt_op)(struct market *m, const char *actor, json_t *params, json_t **result, cg_err *e);

/* util.c */
const char *mkt_entity(enum mkt_tbl t); /* "lease" */
void mkt_new_id(char out[static MKT_ID_MAX], const char *prefix);
int mkt_get(struct market *m, enum mkt_tbl t, const char *id, json_t **out, cg_err *e); /* E_NOT_FOUND */
int mkt_get_opt(struct market *m, enum mkt_tbl t, const char *id, json_t **out, cg_err *e); /* NULL if none */
int mkt_find(struct market *m, enum mkt_tbl t, const char *col, const char *val, json_t **out, cg_err *e);
int mkt_put(struct market *m, enum mkt_tbl t, json_t *doc, cg_err *e);
int mkt_del(struct market *m, enum mkt_tbl t, const char *id, cg_err *e);
int mkt_list(struct market *m, enum mkt_tbl t, const struct mkt_filter *f, size_t nf, int64_t limit,
	     bool desc, json_t **out, cg_err *e);
int64_t mkt_count(struct market *m, enum mkt_tbl t, const struct mkt_filter *f, size_t nf);
/* Steps s (its column 0 holds JSON documents) into a new array *out, then finalizes s (always). */
int mkt_rows(struct market *m, sqlite3_stmt *s, const char *what, json_t **out, cg_err *e);
/* Retry queues (RevocationJob, repair jobs): table t, statuses <kind>_pending|_done|_failed, audit events
 * <kind>_done|_retry. attempt() re-runs one job; final(e) says a failure will not heal by retrying. */
struct mkt_jobs {
	enum mkt_tbl t;
	const char *kind;
	int (*attempt)(struct market *m, json_t *job, cg_err *e);
	bool (*final)(const cg_err *e); /* may be NULL */
};
/* Reads {limit?, maxAttempts?, dryRun?} (and actorId). */
int mkt_jobs_params(struct market *m, json_t *p, int64_t *limit, int64_t *max_attempts, bool *dry, cg_err *e);
/* Runs the due jobs; *result = {processed, succeeded, failed, pending, dryRun}. */
int mkt_jobs_run(struct market *m, const struct mkt_jobs *q, const char *actor, int64_t limit, int64_t max_attempts,
		 bool dry, json_t **result, cg_err *e);
/* Sets doc[field] = jcs_sha256(doc without field). */
int mkt_rehash(json_t *doc, const char *field, cg_err *e);
/* Audit event in the current transaction; details is stolen (may be NULL). */
int mkt_audit(struct market *m, const char *kind, const char *ref, const char *hash, const char *actor,
	      json_t *details, cg_err *e);
int64_t mkt_now(void);
const char *mkt_s(const json_t *doc, const char *key); /* "" when absent */
int64_t mkt_i(const json_t *doc, const char *key);
void mkt_set_s(json_t *doc, const char *key, const char *v);
void mkt_set_i(json_t *doc, const char *key, int64_t v);
/* Actor ids: "0x"+40 hex becomes EIP-55; otherwise 1..128 of [A-Za-z0-9._:@+-]. */
int mkt_actor_norm(const char *in, const char *field, char out[static MKT_ACTOR_MAX + 1], cg_err *e);
int mkt_jp_actor(json_t *p, const char *pfx, const char *key, unsigned flags, char out[static MKT_ACTOR_MAX + 1],
		 bool *present, cg_err *e);
bool mkt_actor_eq(const char *a, const char *b);
int mkt_need_actor(const char *actor, cg_err *e); /* E_AUTH_REQUIRED */
int mkt_jp_id(json_t *p, const char *key, unsigned flags, const char **out, cg_err *e);
int mkt_jp_limit(json_t *p, int64_t def, int64_t max, int64_t *out, cg_err *e);
#define MKT_TIME_MAX 9999999999999LL
/* Times: epoch milliseconds or an ISO 8601 string (null/absent leaves *out alone). */
int mkt_jp_time(json_t *p, const char *key, int64_t *out, cg_err *e);
int mkt_parse_iso8601(const char *s, int64_t *out_ms); /* 0 or -1 */
/* "since"/"until" (-1 when absent; since <= until). */
int mkt_jp_range(json_t *p, int64_t *since, int64_t *until, cg_err *e);
/* Free-form object: at most MKT_META_MAX canonical bytes, and no key that smells of a secret or endpoint. */
int mkt_jp_meta(json_t *p, const char *pfx, const char *key, unsigned flags, json_t **out, cg_err *e);
int mkt_backoff(struct market *m, int64_t attempts);
/* Runs a write op in a transaction: begin, fn, commit; any failure rolls back. */
int mkt_conflict(cg_err *e, const char *entity, const char *from, const char *to);

/* state machines (fsm.c): 0 when allowed, E_CONFLICT otherwise. */
int fsm_offer(const char *from, const char *to, cg_err *e);
int fsm_order(const char *from, const char *to, cg_err *e);
int fsm_delivery(const char *from, const char *to, cg_err *e);
int fsm_settlement(const char *from, const char *to, cg_err *e);
int fsm_resource(const char *from, const char *to, cg_err *e); /* same state allowed */
int fsm_lease(const char *from, const char *to, cg_err *e);    /* same state allowed */
int fsm_dispute(const char *from, const char *to, cg_err *e);
int fsm_consent(const char *from, const char *to, cg_err *e);
/* Moves the order doc through `to` (checked), updating status/updatedAt/hash. */
int mkt_order_to(json_t *order, const char *to, cg_err *e);

/* Operations, one per method (files named after the entity). */
int op_offer_create(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_offer_publish(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_offer_update(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_offer_close(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_offer_get(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_offer_list(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_resource_publish(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_resource_unpublish(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_resource_get(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_resource_list(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_order_create(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_order_cancel(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_order_get(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_order_list(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_consent_grant(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_consent_revoke(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_consent_get(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_delivery_issue(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_delivery_revoke(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_delivery_complete(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_delivery_get(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_lease_issue(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_lease_revoke(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_lease_get(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_lease_list(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_lease_sweep(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_ledger_append(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_ledger_list(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_ledger_summary(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_ledger_verify(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_settle_lock(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_settle_release(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_settle_refund(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_settle_status(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_settle_flush(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_settle_queue(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_settle_queue_list(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_settle_balance(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_settle_faucet(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_dispute_open(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_dispute_evidence(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_dispute_resolve(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_dispute_reject(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_dispute_get(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_dispute_list(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_audit_query(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_repair_retry(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_revocation_retry(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_w3_publish(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_w3_unpublish(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_w3_list(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_w3_lease(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_w3_revoke(struct market *, const char *, json_t *, json_t **, cg_err *);
int op_w3_status(struct market *, const char *, json_t *, json_t **, cg_err *);

/* Internal helpers crossing files. */
/* E_REVOKED / E_EXPIRED (also past expiresAt before the sweep ran) unless the lease authorizes use now. */
int mkt_lease_usable(const json_t *lease, cg_err *e);
/* Revokes a lease doc in the current transaction (lease + delivery); sets *notify when a notification is due. */
int mkt_lease_revoke_tx(struct market *m, json_t *lease, const char *actor, const char *reason, cg_err *e);
/* Runs the revocation notifier for a committed revocation; queues a RevocationJob on failure. */
void mkt_lease_notify(struct market *m, json_t *lease);
void mkt_lease_notify_all(struct market *m, json_t *leases); /* each lease of the array */
/* Inside the caller's transaction: revokes the order's active leases (appended to `revoked` for
 * notification after commit) and its deliveries still ready. */
int mkt_order_revoke_deps(struct market *m, const char *order_id, const char *actor, const char *reason,
			  json_t *revoked, cg_err *e);
/* Settlement money movements inside the caller's transaction (dispute resolution uses them). */
int mkt_settle_release_tx(struct market *m, const char *order_id, json_t *payees, const char *actor, bool by_dispute,
			  json_t **result, cg_err *e);
int mkt_settle_refund_tx(struct market *m, const char *order_id, const char *actor, bool by_dispute, json_t *revoked,
			 json_t **result, cg_err *e);
/* Records a repair job for a failed op (transient backend failure), outside any transaction. */
void mkt_repair_record(struct market *m, const char *method, const char *actor, json_t *params, const cg_err *why);
bool mkt_transient(const cg_err *e);
/* An open dispute freezes the order's settlement. */
int mkt_dispute_open_for(struct market *m, const char *order_id, json_t **out, cg_err *e);
int mkt_call_op(struct market *m, const char *method, const char *actor, json_t *params, json_t **result,
		cg_err *e);

#endif
