/* market — the authoritative state of the compute market: resources, offers, orders, consents, deliveries,
 * leases, the signed hash-chained ledger, settlements, disputes, audit events and the retry queues
 * (docs/market.md has every method, field and state machine).
 *
 * All state lives in the node's SQLite store; every multi-object operation runs in one store transaction
 * with store_fault() sites between its steps (Gate-ATOMIC-01). Everything runs on the loop thread.
 * Operations take an actor id (who is acting: an EIP-55 address or an opaque id) and JSON params, and
 * return a JSON result the caller frees; errors follow base/err.h. */
#ifndef CG_MARKET_MARKET_H
#define CG_MARKET_MARKET_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "base/err.h"

struct store;
struct node_key;
struct rpc_registry;
struct settle_backend;
struct market;

struct market_opts {
	int64_t flush_max_attempts;       /* pending settlements: stop automatic retries after this many */
	int64_t backoff_base_ms;          /* retry delay = base * 2^(attempts-1), capped */
	int64_t backoff_max_ms;
	int64_t job_max_attempts;         /* revocation and repair jobs */
	int64_t max_resources_per_provider;
	int64_t max_active_leases_per_resource;
	int64_t max_evidence;             /* evidence items per dispute */
	bool faucet;                      /* allow market.settlement.faucet (local backend only) */
};
void market_opts_default(struct market_opts *o);

/* Creates the market over st (borrowed), signing ledger entries with key (borrowed) and settling through
 * backend (ownership passes; freed by market_free). self_actor is this node's actor id (its wallet's EIP-55
 * address), used by the web3.resources.* orchestration. Runs the "market" migrations. */
int market_new(struct store *st, const struct node_key *key, struct settle_backend *backend,
	       const char *self_actor, const struct market_opts *opts, struct market **out, cg_err *e);
void market_free(struct market *m);

/* Registers every market.* and web3.resources.* method (docs/market.md) on reg. */
int market_register_rpc(struct market *m, struct rpc_registry *reg);

/* Revocation notification (a lease was revoked: cut its streams, tell the peer). Returning < 0 queues a
 * RevocationJob retried by market.revocation.retry. With no notifier set nothing needs telling. */
typedef int (*market_notify_fn)(void *arg, const json_t *lease, cg_err *e);
void market_set_revocation_notifier(struct market *m, market_notify_fn fn, void *arg);

/* Provider routes (next issue): checks a presented lease token. lease_id may be NULL (then the lease is
 * found by the token's hash). Checks, in order: the lease exists and the token's sha256 matches in constant
 * time (else E_FORBIDDEN, same message for both so ids cannot be probed), not revoked (E_REVOKED), not
 * expired (E_EXPIRED), resource still published with an open offer (E_FORBIDDEN). On success *lease_out
 * (may be NULL) gets the lease without any token material (caller frees). */
int market_lease_authorize(struct market *m, const char *lease_id, const char *token, json_t **lease_out,
			   cg_err *e);

/* Appends a usage entry as the provider (what the provider routes call after serving a request). entry has
 * the market.ledger.append "entry" shape; idem_key (may be NULL) makes a retry return the first result.
 * On success *result = {ledgerId, entryHash, seq} (caller frees). */
int market_ledger_append(struct market *m, const char *provider_actor, json_t *entry, const char *idem_key,
			 json_t **result, cg_err *e);

/* Periodic jobs (the node runs them on timers); each returns its counters as JSON (caller frees).
 * now_ms <= 0 means the current time. */
int market_expire_sweep(struct market *m, int64_t now_ms, int64_t limit, json_t **result, cg_err *e);
int market_flush_pending(struct market *m, int64_t limit, json_t **result, cg_err *e);
int market_retry_revocations(struct market *m, int64_t limit, json_t **result, cg_err *e);

/* Counters for the node's status summary: {pending, active leases, ...}. */
int market_status(struct market *m, json_t **out, cg_err *e);

/* Generic call of a market method by name without a transport (tests, fuzzers, the web3 orchestration):
 * actor may be NULL (then params.actorId is used). */
int market_call(struct market *m, const char *method, json_t *params, json_t **result, cg_err *e);

#endif
