/* Test fixture for the market unit tests: a temp SQLite store, a fresh node key, the local settlement
 * backend, the market and an RPC registry; methods are called through rpc_dispatch_json like a transport. */
#ifndef CG_TEST_MARKET_FIXTURE_H
#define CG_TEST_MARKET_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>

#include "base/clock.h"
#include "base/log.h"
#include "chain/local.h"
#include "crypto/hash.h"
#include "crypto/identity.h"
#include "crypto/wallet.h"
#include "market/market.h"
#include "market/settle.h"
#include "rpc/rpc.h"
#include "store/store.h"

struct fx {
	char dir[128], path[200];
	struct store *st;
	struct node_key key;
	struct market *m;
	struct rpc_registry *reg;
	char self[43];
};

/* Well-formed actors used across tests. */
#define PROV "provider-1"
#define CONS "consumer-1"
#define THIRD "mallory"
#define ARB "arbiter"

static inline void fx_open_with(struct fx *f, struct settle_backend *b)
{
	cg_err e;
	struct wallet w;
	memset(f, 0, sizeof *f);
	assert_true(sodium_init() >= 0);
	log_set_level(LOG_OFF);
	snprintf(f->dir, sizeof f->dir, "/tmp/cgmkt-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof f->path, "%s/store.db", f->dir);
	assert_int_equal(store_open(f->path, 0, &f->st, &e), 0);
	node_key_generate(&f->key);
	wallet_generate(&w);
	memcpy(f->self, w.address, sizeof f->self);
	wallet_wipe(&w);
	if (!b)
		assert_int_equal(chain_local_new(f->st, &b, &e), 0);
	int r = market_new(f->st, &f->key, b, f->self, NULL, &f->m, &e);
	if (r)
		fail_msg("market_new: %s", e.msg);
	f->reg = rpc_registry_new();
	assert_int_equal(market_register_rpc(f->m, f->reg), 0);
}

static inline void fx_open(struct fx *f)
{
	fx_open_with(f, NULL);
}

static inline void fx_close(struct fx *f)
{
	market_free(f->m);
	rpc_registry_free(f->reg);
	store_close(f->st);
	char p[300];
	const char *sfx[] = {"", "-wal", "-shm"};
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "%s%s", f->path, sfx[i]);
		unlink(p);
	}
	rmdir(f->dir);
}

static void fx_done(void *arg, json_t *resp)
{
	*(json_t **)arg = resp;
}

/* Calls method with params (stolen). Returns 0 and *res (caller frees) on success, else the cg_code number
 * of the error (and *res = the error object when res is non-NULL). */
static inline int fx_call(struct fx *f, const char *method, json_t *params, json_t **res)
{
	json_t *req = json_pack("{s:s,s:i,s:s,s:o}", "jsonrpc", "2.0", "id", 1, "method", method, "params",
				params ? params : json_object());
	struct rpc_caller who = {.principal = "admin", .admin = true};
	json_t *resp = NULL;
	rpc_dispatch_json(f->reg, req, &who, fx_done, &resp);
	json_decref(req);
	assert_non_null(resp);
	json_t *err = json_object_get(resp, "error");
	int code = 0;
	if (err) {
		const char *c = json_string_value(json_object_get(json_object_get(err, "data"), "code"));
		code = c ? cg_code_from_name(c) : CG_E_INTERNAL;
		if (code <= 0)
			code = CG_E_INTERNAL;
		if (res)
			*res = json_incref(err);
	} else if (res) {
		*res = json_incref(json_object_get(resp, "result"));
	}
	json_decref(resp);
	return code;
}

/* Calls and asserts success; returns the result (caller frees). */
#define OK(f, method, params)                                                                                   \
	({                                                                                                      \
		json_t *res_ = NULL;                                                                            \
		int c_ = fx_call((f), (method), (params), &res_);                                               \
		if (c_ != 0)                                                                                    \
			fail_msg("%s failed: %s", (method),                                                     \
				 json_string_value(json_object_get(res_, "message")));                          \
		res_;                                                                                           \
	})

/* Calls and asserts the given error code. */
#define ERR(f, code, method, params)                                                                            \
	do {                                                                                                    \
		json_t *res_ = NULL;                                                                            \
		int c_ = fx_call((f), (method), (params), &res_);                                               \
		if (c_ != (code))                                                                               \
			fail_msg("%s: want %s, got %s (%s)", (method), cg_code_name(code), cg_code_name(c_),    \
				 res_ ? json_string_value(json_object_get(res_, "message")) : "");              \
		json_decref(res_);                                                                              \
	} while (0)

static inline const char *S(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

/* A model resource publish params for actor, price per token. */
static inline json_t *res_params(const char *actor, const char *rid, const char *label, const char *amount)
{
	json_t *r = json_pack("{s:s,s:{s:s,s:s,s:[s,s],s:{s:s,s:s,s:s},s:{s:i,s:i,s:b},s:{s:s,s:s,s:s,s:{s:s},s:s}}}",
			      "actorId", actor, "resource", "kind", "model", "label", label, "tags", "llm", "fast", "price",
			      "unit", "token", "amount", amount, "currency", "USDC", "policy", "maxConcurrent", 4,
			      "maxTokens", 4096, "allowTools", 0, "offer", "assetId", "llama-3-8b", "assetType", "api",
			      "currency", "USDC", "usageScope", "purpose", "inference", "deliveryType", "api");
	if (rid)
		json_object_set_new(json_object_get(r, "resource"), "resourceId", json_string(rid));
	return r;
}

/* Publishes a resource as PROV; returns its id (static buffer per call site is the caller's). */
static inline void publish(struct fx *f, char out[64])
{
	json_t *r = OK(f, "market.resource.publish", res_params(PROV, NULL, "Llama 3 8B", "2"));
	snprintf(out, 64, "%s", S(r, "resourceId"));
	json_decref(r);
}

/* Issues a lease of rid to CONS; returns the result (caller frees). */
static inline json_t *issue(struct fx *f, const char *rid, const char *max_cost)
{
	json_t *p = json_pack("{s:s,s:s,s:s,s:i}", "actorId", CONS, "resourceId", rid, "consumerActorId", CONS, "ttlMs",
			      60000);
	if (max_cost)
		json_object_set_new(p, "maxCost", json_string(max_cost));
	return OK(f, "market.lease.issue", p);
}

static inline json_t *entry_params(const char *actor, const json_t *lease, const char *rid, const char *qty,
				   const char *cost)
{
	return json_pack("{s:s,s:{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}}", "actorId", actor, "entry", "leaseId",
			 S((json_t *)lease, "leaseId"), "resourceId", rid, "kind", "model", "providerActorId", PROV,
			 "consumerActorId", CONS, "unit", "token", "quantity", qty, "cost", cost, "currency", "USDC");
}

/* A digest of every market and escrow table: equal digests mean no state changed. */
static inline void fx_digest(struct fx *f, char out[72])
{
	static const char *const tables[] = {"mkt_offers",      "mkt_resources",   "mkt_orders",    "mkt_consents",
					     "mkt_deliveries",  "mkt_leases",      "mkt_settlements", "mkt_disputes",
					     "mkt_revocations", "mkt_repairs",     "mkt_pending",   "mkt_ledger",
					     "mkt_ledger_heads", "mkt_audit",      "chain_local_accounts",
					     "chain_local_escrow", "chain_local_txs", NULL};
	crypto_hash_sha256_state h;
	crypto_hash_sha256_init(&h);
	for (int i = 0; tables[i]; i++) {
		char sql[200];
		snprintf(sql, sizeof sql, "SELECT * FROM %s ORDER BY 1", tables[i]);
		sqlite3_stmt *s = NULL;
		assert_int_equal(sqlite3_prepare_v2(store_db(f->st), sql, -1, &s, NULL), SQLITE_OK);
		while (sqlite3_step(s) == SQLITE_ROW) {
			for (int c = 0; c < sqlite3_column_count(s); c++) {
				const unsigned char *t = sqlite3_column_text(s, c);
				if (t)
					crypto_hash_sha256_update(&h, t, (unsigned long long)strlen((const char *)t));
				crypto_hash_sha256_update(&h, (const unsigned char *)"|", 1);
			}
			crypto_hash_sha256_update(&h, (const unsigned char *)"\n", 1);
		}
		sqlite3_finalize(s);
		crypto_hash_sha256_update(&h, (const unsigned char *)tables[i], strlen(tables[i]));
	}
	uint8_t d[32];
	crypto_hash_sha256_final(&h, d);
	sha256_tagged_hex(out, d, 32);
}

static inline void fund(struct fx *f, const char *who, const char *amount)
{
	json_decref(OK(f, "market.settlement.faucet", json_pack("{s:s,s:s}", "address", who, "amount", amount)));
}

#endif
