/* The usage ledger: append-only, provider-only, one hash chain per provider, every entry and every chain
 * head signed with the node's Ed25519 key.
 *
 *   entryHash = jcs_sha256(entry without entryHash and signature)   (covers seq, prevHash and signer)
 *   signature = Ed25519("clawgrid-ledger-entry/v1\n" + entryHash)
 *   head      = (provider, seq, entryHash) signed as "clawgrid-ledger-head/v1\n<provider>\n<seq>\n<hash>"
 *
 * Altering an entry breaks its hash or signature; dropping or inserting one breaks the seq run, the
 * prevHash links or (for the newest) the signed head; the store's UNIQUE(provider, seq) keeps two
 * concurrent appends from forking a chain. */
#define MKT_INTERNAL
#include "market/mkt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/amount.h"
#include "base/enc.h"
#include "crypto/identity.h"
#include "crypto/jcs.h"

#define ENTRY_CTX "clawgrid-ledger-entry/v1\n"
#define HEAD_CTX "clawgrid-ledger-head/v1\n"

static const char *const kinds[] = {"model", "search", "storage", NULL};
static const char *const units[] = {"token", "call", "query", "byte", "gb_day", "put", "get", NULL};

static bool unit_for_kind(const char *kind, const char *unit)
{
	if (strcmp(kind, "model") == 0)
		return strcmp(unit, "token") == 0 || strcmp(unit, "call") == 0;
	if (strcmp(kind, "search") == 0)
		return strcmp(unit, "query") == 0 || strcmp(unit, "call") == 0;
	return strcmp(unit, "byte") == 0 || strcmp(unit, "gb_day") == 0 || strcmp(unit, "put") == 0 ||
	       strcmp(unit, "get") == 0;
}

static void sign_msg(const struct node_key *k, const char *msg, char hex[129])
{
	uint8_t sig[64];
	node_key_sign(k, msg, strlen(msg), sig);
	hex_encode(hex, sig, 64);
}

static bool verify_msg(const uint8_t pk[32], const char *msg, const char *sighex)
{
	uint8_t sig[64];
	if (!sighex || strlen(sighex) != 128 || hex_decode(sig, 64, sighex, 128, false) < 0)
		return false;
	return ed25519_verify(pk, msg, strlen(msg), sig);
}

static void head_msg(char *out, size_t cap, const char *prov, int64_t seq, const char *hash)
{
	snprintf(out, cap, HEAD_CTX "%s\n%lld\n%s", prov, (long long)seq, hash);
}

/* Parses and checks the entry's own fields into a fresh doc. */
static int parse_entry(json_t *in, json_t **out, cg_err *e)
{
	static const char *const keys[] = {"leaseId",  "resourceId", "kind",     "providerActorId", "consumerActorId",
					   "unit",     "quantity",   "cost",     "currency",        "tokenAddress",
					   "sessionId", "runId",     NULL};
	const char *lease = NULL, *res = NULL, *kind = NULL, *unit = NULL, *qty = NULL, *cost = NULL, *cur = NULL,
		   *sid = NULL, *run = NULL;
	char prov[MKT_ACTOR_MAX + 1], cons[MKT_ACTOR_MAX + 1], tok[MKT_ACTOR_MAX + 1];
	bool b, has_tok;
	int r;
	if ((r = jp_only(in, "entry", keys, e)) < 0 || (r = jp_str(in, "entry", "leaseId", JP_REQUIRED, 1, 63, &lease, e)) < 0 ||
	    (r = jp_str(in, "entry", "resourceId", JP_REQUIRED, 1, 63, &res, e)) < 0 ||
	    (r = jp_enum(in, "entry", "kind", JP_REQUIRED, kinds, &kind, e)) < 0 ||
	    (r = mkt_jp_actor(in, "entry", "providerActorId", JP_REQUIRED, prov, &b, e)) < 0 ||
	    (r = mkt_jp_actor(in, "entry", "consumerActorId", JP_REQUIRED, cons, &b, e)) < 0 ||
	    (r = jp_enum(in, "entry", "unit", JP_REQUIRED, units, &unit, e)) < 0 ||
	    (r = jp_amount(in, "entry", "quantity", JP_REQUIRED, &qty, e)) < 0 ||
	    (r = jp_amount(in, "entry", "cost", JP_REQUIRED, &cost, e)) < 0 ||
	    (r = jp_str(in, "entry", "currency", JP_REQUIRED, 1, MKT_CURRENCY_MAX, &cur, e)) < 0 ||
	    (r = mkt_jp_actor(in, "entry", "tokenAddress", JP_NULLABLE, tok, &has_tok, e)) < 0 ||
	    (r = jp_str(in, "entry", "sessionId", JP_NULLABLE, 1, MKT_SESSION_MAX, &sid, e)) < 0 ||
	    (r = jp_str(in, "entry", "runId", JP_NULLABLE, 1, MKT_SESSION_MAX, &run, e)) < 0)
		return r;
	if (!unit_for_kind(kind, unit))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "entry.unit: %s is not a unit of kind %s", unit, kind);
	json_t *d = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "leaseId", lease, "resourceId", res, "kind", kind,
			      "providerActorId", prov, "consumerActorId", cons, "unit", unit, "quantity", qty, "cost",
			      cost, "currency", cur);
	if (has_tok)
		mkt_set_s(d, "tokenAddress", tok);
	if (sid)
		mkt_set_s(d, "sessionId", sid);
	if (run)
		mkt_set_s(d, "runId", run);
	*out = d;
	return 0;
}

/* Sum of the costs already booked on a lease (for maxCost). */
static int lease_spent(struct market *m, const char *lease_id, char out[static U256_DEC_MAX], cg_err *e)
{
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(store_db(m->st), "SELECT json_extract(data,'$.cost') FROM mkt_ledger WHERE leaseId=?",
			       -1, &s, NULL) != SQLITE_OK)
		return store_fail(m->st, e, "ledger");
	sqlite3_bind_text(s, 1, lease_id, -1, SQLITE_TRANSIENT);
	snprintf(out, U256_DEC_MAX, "0");
	int rc, r = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *c = (const char *)sqlite3_column_text(s, 0);
		if (!c || amount_add(out, c, out) < 0) {
			r = cg_fail(e, CG_E_INTERNAL, "ledger: lease total overflows");
			break;
		}
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_fail(m->st, e, "ledger");
	sqlite3_finalize(s);
	return r;
}

static int existing_by_key(struct market *m, const char *prov, const char *key, json_t **out, cg_err *e)
{
	sqlite3_stmt *s = store_prep(m->st, "SELECT data FROM mkt_ledger WHERE providerActorId=? AND idemKey=?", e);
	if (!s)
		return -CG_E_INTERNAL;
	sqlite3_bind_text(s, 1, prov, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 2, key, -1, SQLITE_TRANSIENT);
	*out = NULL;
	if (sqlite3_step(s) == SQLITE_ROW)
		*out = json_loads((const char *)sqlite3_column_text(s, 0), 0, NULL);
	sqlite3_reset(s);
	return 0;
}

static json_t *append_result(const json_t *d)
{
	return json_pack("{s:s,s:s,s:I}", "ledgerId", mkt_s(d, "ledgerId"), "entryHash", mkt_s(d, "entryHash"), "seq",
			 (json_int_t)mkt_i(d, "seq"));
}

static int check_against_lease(struct market *m, const json_t *d, cg_err *e)
{
	json_t *lease = NULL, *res = NULL;
	int r = mkt_get(m, T_LEASE, mkt_s(d, "leaseId"), &lease, e);
	if (r < 0)
		return r;
	/* A provider booking on someone else's lease is not allowed at all (E_FORBIDDEN, Gate-LEDGER-01); the
	 * lease's own provider naming the wrong resource, kind or consumer is a mismatch (E_CONFLICT, as the
	 * seed's "lease/resource mismatch"). */
	if (strcmp(mkt_s(lease, "providerActorId"), mkt_s(d, "providerActorId")) != 0) {
		r = cg_fail(e, CG_E_FORBIDDEN, "entry.providerActorId: not the lease's provider");
		goto out;
	}
	static const char *const match[] = {"resourceId", "kind", "consumerActorId", NULL};
	for (int i = 0; match[i]; i++)
		if (strcmp(mkt_s(lease, match[i]), mkt_s(d, match[i])) != 0) {
			r = cg_fail(e, CG_E_CONFLICT, "entry.%s does not match the lease", match[i]);
			goto out;
		}
	if ((r = mkt_lease_usable(lease, e)) < 0)
		goto out;
	if ((r = mkt_get(m, T_RESOURCE, mkt_s(d, "resourceId"), &res, e)) < 0)
		goto out;
	if (strcmp(mkt_s(res, "status"), "resource_published") != 0) {
		r = cg_fail(e, CG_E_CONFLICT, "resource is not published");
		goto out;
	}
	json_t *price = json_object_get(res, "price");
	if (strcmp(mkt_s(price, "currency"), mkt_s(d, "currency")) != 0) {
		r = cg_fail(e, CG_E_INVALID_ARGUMENT, "entry.currency: must be the resource's currency %s",
			    mkt_s(price, "currency"));
		goto out;
	}
	/* The cost is the provider's to compute (seed Gate-LEDGER-02: quantity x price for metered calls, but
	 * also minimum charges, free tiers, units other than the priced one): it is not second-guessed here;
	 * the lease's maxCost is what bounds it. */
	const char *max = mkt_s(lease, "maxCost");
	if (*max) {
		char spent[U256_DEC_MAX];
		if ((r = lease_spent(m, mkt_s(d, "leaseId"), spent, e)) < 0)
			goto out;
		if (amount_add(spent, mkt_s(d, "cost"), spent) < 0 || amount_cmp(spent, max) > 0) {
			r = cg_fail(e, CG_E_QUOTA_EXCEEDED, "lease maxCost %s would be exceeded", max);
			goto out;
		}
	}
out:
	json_decref(lease);
	json_decref(res);
	return r;
}

int market_ledger_append(struct market *m, const char *prov, json_t *entry, const char *idem, json_t **result,
			 cg_err *e)
{
	json_t *d = NULL, *dup = NULL;
	int r;
	if ((r = mkt_need_actor(prov, e)) < 0 || (r = parse_entry(entry, &d, e)) < 0)
		return r;
	/* Gate-LEDGER-01: only the provider writes its ledger. */
	if (!mkt_actor_eq(prov, mkt_s(d, "providerActorId"))) {
		r = cg_fail(e, CG_E_FORBIDDEN, "only the entry's provider may append it");
		goto out;
	}
	if (idem) {
		if ((r = existing_by_key(m, prov, idem, &dup, e)) < 0)
			goto out;
		if (dup) {
			*result = append_result(dup);
			goto out;
		}
	}
	if ((r = check_against_lease(m, d, e)) < 0)
		goto out;

	if ((r = store_tx_begin(m->st, e)) < 0)
		goto out;
	int64_t seq = 1;
	char prev[80] = "";
	sqlite3_stmt *s = store_prep(m->st, "SELECT pseq, hash FROM mkt_ledger_heads WHERE providerActorId=?", e);
	if (!s) {
		r = -CG_E_INTERNAL;
		goto fail;
	}
	sqlite3_bind_text(s, 1, prov, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(s) == SQLITE_ROW) {
		seq = sqlite3_column_int64(s, 0) + 1;
		snprintf(prev, sizeof prev, "%s", (const char *)sqlite3_column_text(s, 1));
	}
	sqlite3_reset(s);
	char id[MKT_ID_MAX], pkhex[65], sig[129], msg[512];
	mkt_new_id(id, "led");
	int64_t now = mkt_now();
	mkt_set_s(d, "ledgerId", id);
	mkt_set_i(d, "timestamp", now);
	mkt_set_i(d, "seq", seq);
	if (*prev)
		mkt_set_s(d, "prevHash", prev);
	hex_encode(pkhex, m->key->pk, 32);
	mkt_set_s(d, "signer", pkhex);
	if ((r = mkt_rehash(d, "entryHash", e)) < 0)
		goto fail;
	const char *hash = mkt_s(d, "entryHash");
	snprintf(msg, sizeof msg, ENTRY_CTX "%s", hash);
	sign_msg(m->key, msg, sig);
	mkt_set_s(d, "signature", sig);
	char *data = json_dump_compact(d);
	s = store_prep(m->st,
		       "INSERT INTO mkt_ledger(id,ts,providerActorId,consumerActorId,leaseId,resourceId,pseq,idemKey,data)"
		       " VALUES(?,?,?,?,?,?,?,?,?)",
		       e);
	if (!s || !data) {
		free(data);
		r = s ? cg_fail(e, CG_E_INTERNAL, "out of memory") : -CG_E_INTERNAL;
		goto fail;
	}
	sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 2, now);
	sqlite3_bind_text(s, 3, prov, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 4, mkt_s(d, "consumerActorId"), -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 5, mkt_s(d, "leaseId"), -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 6, mkt_s(d, "resourceId"), -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 7, seq);
	if (idem)
		sqlite3_bind_text(s, 8, idem, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, 8);
	sqlite3_bind_text(s, 9, data, -1, free);
	r = sqlite3_step(s) == SQLITE_DONE ? 0 : store_fail(m->st, e, "ledger append");
	sqlite3_reset(s);
	if (r < 0 || (r = store_fault(m->st, "ledger.append:entry", e)) < 0)
		goto fail;
	/* The signed head: dropping the newest entry would otherwise go unnoticed. */
	head_msg(msg, sizeof msg, prov, seq, hash);
	sign_msg(m->key, msg, sig);
	s = store_prep(m->st,
		       "INSERT INTO mkt_ledger_heads(providerActorId,pseq,hash,sig) VALUES(?,?,?,?)"
		       " ON CONFLICT(providerActorId) DO UPDATE SET pseq=excluded.pseq,hash=excluded.hash,sig=excluded.sig",
		       e);
	if (!s) {
		r = -CG_E_INTERNAL;
		goto fail;
	}
	sqlite3_bind_text(s, 1, prov, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 2, seq);
	sqlite3_bind_text(s, 3, hash, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 4, sig, -1, SQLITE_TRANSIENT);
	r = sqlite3_step(s) == SQLITE_DONE ? 0 : store_fail(m->st, e, "ledger head");
	sqlite3_reset(s);
	if (r < 0 || (r = store_fault(m->st, "ledger.append:head", e)) < 0)
		goto fail;
	if ((r = mkt_audit(m, "ledger_appended", id, hash, prov,
			   json_pack("{s:s,s:s,s:s}", "leaseId", mkt_s(d, "leaseId"), "unit", mkt_s(d, "unit"), "cost",
				     mkt_s(d, "cost")),
			   e)) < 0)
		goto fail;
	if ((r = store_tx_commit(m->st, e)) < 0)
		goto out;
	*result = append_result(d);
	goto out;
fail:
	store_tx_rollback(m->st);
out:
	json_decref(d);
	json_decref(dup);
	return r;
}

int op_ledger_append(struct market *m, const char *actor, json_t *p, json_t **result, cg_err *e)
{
	static const char *const keys[] = {"actorId", "entry", "idempotencyKey", NULL};
	json_t *entry = NULL;
	const char *idem = NULL;
	int r;
	if ((r = mkt_need_actor(actor, e)) < 0 || (r = jp_only(p, NULL, keys, e)) < 0 ||
	    (r = jp_obj(p, NULL, "entry", JP_REQUIRED, &entry, e)) < 0 ||
	    (r = jp_str(p, NULL, "idempotencyKey", 0, 1, MKT_SESSION_MAX, &idem, e)) < 0)
		return r;
	return market_ledger_append(m, actor, entry, idem, result, e);
}

/* ---- queries ---- */

struct lfilter {
	const char *lease, *res, *since_s;
	char prov[MKT_ACTOR_MAX + 1], cons[MKT_ACTOR_MAX + 1];
	bool has_prov, has_cons;
	int64_t since, until, limit;
};

static int parse_lfilter(json_t *p, struct lfilter *f, cg_err *e)
{
	static const char *const keys[] = {"actorId", "leaseId", "resourceId", "providerActorId", "consumerActorId",
					   "since",   "until",   "limit",      NULL};
	memset(f, 0, sizeof *f);
	f->since = -1;
	f->until = -1;
	int r;
	if ((r = jp_only(p, NULL, keys, e)) < 0 || (r = mkt_jp_id(p, "leaseId", 0, &f->lease, e)) < 0 ||
	    (r = mkt_jp_id(p, "resourceId", 0, &f->res, e)) < 0 ||
	    (r = mkt_jp_actor(p, NULL, "providerActorId", 0, f->prov, &f->has_prov, e)) < 0 ||
	    (r = mkt_jp_actor(p, NULL, "consumerActorId", 0, f->cons, &f->has_cons, e)) < 0 ||
	    (r = mkt_jp_range(p, &f->since, &f->until, e)) < 0 ||
	    (r = mkt_jp_limit(p, MKT_LEDGER_DEF, MKT_LEDGER_MAX, &f->limit, e)) < 0)
		return r;
	return 0;
}

static int ledger_query(struct market *m, const struct lfilter *f, bool limited, sqlite3_stmt **out, cg_err *e)
{
	char sql[600] = "SELECT data FROM mkt_ledger WHERE 1";
	if (f->lease)
		strcat(sql, " AND leaseId=:lease");
	if (f->res)
		strcat(sql, " AND resourceId=:res");
	if (f->has_prov)
		strcat(sql, " AND providerActorId=:prov");
	if (f->has_cons)
		strcat(sql, " AND consumerActorId=:cons");
	if (f->since >= 0)
		strcat(sql, " AND ts>=:since");
	if (f->until >= 0)
		strcat(sql, " AND ts<=:until");
	strcat(sql, " ORDER BY rid");
	if (limited)
		strcat(sql, " LIMIT :limit");
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(store_db(m->st), sql, -1, &s, NULL) != SQLITE_OK)
		return store_fail(m->st, e, "ledger query");
#define BIND_T(name, v)                                                                                         \
	if ((v))                                                                                                \
	sqlite3_bind_text(s, sqlite3_bind_parameter_index(s, name), (v), -1, SQLITE_TRANSIENT)
	BIND_T(":lease", f->lease);
	BIND_T(":res", f->res);
	if (f->has_prov)
		sqlite3_bind_text(s, sqlite3_bind_parameter_index(s, ":prov"), f->prov, -1, SQLITE_TRANSIENT);
	if (f->has_cons)
		sqlite3_bind_text(s, sqlite3_bind_parameter_index(s, ":cons"), f->cons, -1, SQLITE_TRANSIENT);
#undef BIND_T
	if (f->since >= 0)
		sqlite3_bind_int64(s, sqlite3_bind_parameter_index(s, ":since"), f->since);
	if (f->until >= 0)
		sqlite3_bind_int64(s, sqlite3_bind_parameter_index(s, ":until"), f->until);
	if (limited)
		sqlite3_bind_int64(s, sqlite3_bind_parameter_index(s, ":limit"), f->limit);
	*out = s;
	return 0;
}

int op_ledger_list(struct market *m, const char *actor, json_t *p, json_t **result, cg_err *e)
{
	struct lfilter f;
	sqlite3_stmt *s;
	int r;
	json_t *arr;
	if ((r = parse_lfilter(p, &f, e)) < 0 || (r = ledger_query(m, &f, true, &s, e)) < 0 ||
	    (r = mkt_rows(m, s, "ledger list", &arr, e)) < 0)
		return r;
	*result = json_pack("{s:o}", "entries", arr);
	return 0;
}

/* Adds amount to obj[key] (a decimal string, "0" when absent). */
static int add_into(json_t *obj, const char *key, const char *amount)
{
	char sum[U256_DEC_MAX];
	const char *cur = json_string_value(json_object_get(obj, key));
	if (amount_add(cur ? cur : "0", amount, sum) < 0)
		return -1;
	json_object_set_new(obj, key, json_string(sum));
	return 0;
}

int op_ledger_summary(struct market *m, const char *actor, json_t *p, json_t **result, cg_err *e)
{
	struct lfilter f;
	sqlite3_stmt *s;
	int r;
	if ((r = parse_lfilter(p, &f, e)) < 0 || (r = ledger_query(m, &f, false, &s, e)) < 0)
		return r;
	json_t *by_unit = json_object(), *by_cur = json_object(), *tot = json_object();
	int rc;
	int64_t n = 0;
	bool mixed = false;
	r = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		json_t *d = json_loads((const char *)sqlite3_column_text(s, 0), 0, NULL);
		if (!d)
			continue;
		const char *unit = mkt_s(d, "unit"), *cur = mkt_s(d, "currency");
		json_t *u = json_object_get(by_unit, unit);
		if (!u) {
			u = json_object();
			json_object_set_new(by_unit, unit, u);
		}
		if (add_into(u, "quantity", mkt_s(d, "quantity")) < 0 || add_into(u, "cost", mkt_s(d, "cost")) < 0 ||
		    add_into(tot, "total", mkt_s(d, "cost")) < 0 || add_into(by_cur, cur, mkt_s(d, "cost")) < 0)
			r = cg_fail(e, CG_E_INTERNAL, "ledger summary overflows uint256");
		if (n == 0)
			json_object_set_new(tot, "currency", json_string(cur));
		else if (strcmp(mkt_s(tot, "currency"), cur) != 0)
			mixed = true;
		n++;
		json_decref(d);
		if (r < 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		r = store_fail(m->st, e, "ledger summary");
	sqlite3_finalize(s);
	if (r < 0) {
		json_decref(by_unit);
		json_decref(by_cur);
		json_decref(tot);
		return r;
	}
	const char *total = json_string_value(json_object_get(tot, "total"));
	json_t *sum = json_pack("{s:o,s:s,s:o,s:I}", "byUnit", by_unit, "totalCost", total ? total : "0", "byCurrency",
				by_cur, "entries", (json_int_t)n);
	json_t *c = json_object_get(tot, "currency");
	json_object_set(sum, "currency", (!mixed && c) ? c : json_null());
	json_decref(tot);
	*result = json_pack("{s:o}", "summary", sum);
	return 0;
}

/* ---- verification ---- */

static void problem(json_t *errs, const char *prov, int64_t seq, const char *id, const char *what)
{
	if (json_array_size(errs) >= 100)
		return;
	json_t *x = json_pack("{s:s,s:I,s:s}", "providerActorId", prov, "seq", (json_int_t)seq, "problem", what);
	if (id && *id)
		mkt_set_s(x, "ledgerId", id);
	json_array_append_new(errs, x);
}

static int verify_provider(struct market *m, const char *prov, json_t *errs, int64_t *count, cg_err *e)
{
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(store_db(m->st),
			       "SELECT id, pseq, providerActorId, data FROM mkt_ledger WHERE providerActorId=? ORDER BY pseq",
			       -1, &s, NULL) != SQLITE_OK)
		return store_fail(m->st, e, "ledger verify");
	sqlite3_bind_text(s, 1, prov, -1, SQLITE_TRANSIENT);
	int64_t expect = 1;
	char prev[80] = "", msg[512];
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(s, 0);
		int64_t pseq = sqlite3_column_int64(s, 1);
		json_t *d = json_loads((const char *)sqlite3_column_text(s, 3), 0, NULL);
		(*count)++;
		if (!d) {
			problem(errs, prov, pseq, id, "entry is not valid JSON");
			expect = pseq + 1;
			continue;
		}
		if (pseq != expect)
			problem(errs, prov, pseq, id, pseq > expect ? "entries missing before this one" : "sequence repeats");
		if (mkt_i(d, "seq") != pseq || strcmp(mkt_s(d, "ledgerId"), id) != 0 ||
		    strcmp(mkt_s(d, "providerActorId"), prov) != 0)
			problem(errs, prov, pseq, id, "index columns disagree with the signed entry");
		if (strcmp(mkt_s(d, "prevHash"), prev) != 0)
			problem(errs, prov, pseq, id, "prevHash does not link to the previous entry");
		json_t *body = json_deep_copy(d);
		json_object_del(body, "entryHash");
		json_object_del(body, "signature");
		char h[72];
		cg_err he;
		if (jcs_sha256(body, h, &he) < 0 || strcmp(h, mkt_s(d, "entryHash")) != 0)
			problem(errs, prov, pseq, id, "entryHash does not match the entry");
		json_decref(body);
		uint8_t pk[32];
		const char *signer = mkt_s(d, "signer");
		snprintf(msg, sizeof msg, ENTRY_CTX "%s", mkt_s(d, "entryHash"));
		if (strlen(signer) != 64 || hex_decode(pk, 32, signer, 64, false) < 0 || memcmp(pk, m->key->pk, 32) != 0)
			problem(errs, prov, pseq, id, "signed by a key that is not this node's");
		else if (!verify_msg(pk, msg, mkt_s(d, "signature")))
			problem(errs, prov, pseq, id, "signature does not verify");
		snprintf(prev, sizeof prev, "%s", mkt_s(d, "entryHash"));
		expect = pseq + 1;
		json_decref(d);
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return store_fail(m->st, e, "ledger verify");
	/* The head must be the newest entry, signed. */
	s = store_prep(m->st, "SELECT pseq, hash, sig FROM mkt_ledger_heads WHERE providerActorId=?", e);
	if (!s)
		return -CG_E_INTERNAL;
	sqlite3_bind_text(s, 1, prov, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(s) == SQLITE_ROW) {
		int64_t hseq = sqlite3_column_int64(s, 0);
		char hhash[80], hsig[140];
		snprintf(hhash, sizeof hhash, "%s", (const char *)sqlite3_column_text(s, 1));
		snprintf(hsig, sizeof hsig, "%s", (const char *)sqlite3_column_text(s, 2));
		head_msg(msg, sizeof msg, prov, hseq, hhash);
		if (!verify_msg(m->key->pk, msg, hsig))
			problem(errs, prov, hseq, NULL, "chain head signature does not verify");
		else if (hseq != expect - 1 || strcmp(hhash, prev) != 0)
			problem(errs, prov, hseq, NULL,
				hseq > expect - 1 ? "newest entries are missing (head is ahead)" : "head is behind the chain");
	} else if (expect > 1) {
		problem(errs, prov, expect - 1, NULL, "chain has no signed head");
	}
	sqlite3_reset(s);
	return 0;
}

int op_ledger_verify(struct market *m, const char *actor, json_t *p, json_t **result, cg_err *e)
{
	static const char *const keys[] = {"actorId", "providerActorId", NULL};
	char prov[MKT_ACTOR_MAX + 1];
	bool has_prov;
	int r;
	if ((r = jp_only(p, NULL, keys, e)) < 0 ||
	    (r = mkt_jp_actor(p, NULL, "providerActorId", 0, prov, &has_prov, e)) < 0)
		return r;
	json_t *provs = json_array(), *errs = json_array();
	if (has_prov) {
		json_array_append_new(provs, json_string(prov));
	} else {
		sqlite3_stmt *s = NULL;
		if (sqlite3_prepare_v2(store_db(m->st),
				       "SELECT providerActorId FROM mkt_ledger UNION SELECT providerActorId FROM mkt_ledger_heads",
				       -1, &s, NULL) != SQLITE_OK) {
			json_decref(provs);
			json_decref(errs);
			return store_fail(m->st, e, "ledger verify");
		}
		while (sqlite3_step(s) == SQLITE_ROW)
			json_array_append_new(provs, json_string((const char *)sqlite3_column_text(s, 0)));
		sqlite3_finalize(s);
	}
	int64_t count = 0;
	size_t i;
	json_t *v;
	json_array_foreach(provs, i, v)
	{
		if ((r = verify_provider(m, json_string_value(v), errs, &count, e)) < 0)
			break;
	}
	if (r < 0) {
		json_decref(provs);
		json_decref(errs);
		return r;
	}
	*result = json_pack("{s:b,s:I,s:I,s:o}", "ok", json_array_size(errs) == 0, "entries", (json_int_t)count,
			    "providers", (json_int_t)json_array_size(provs), "errors", errs);
	json_decref(provs);
	return 0;
}
