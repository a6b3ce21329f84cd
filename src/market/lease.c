/* Leases: lease.issue (order + consent + delivery + lease in one transaction), revoke, get, list, the expire
 * sweep, token authorization for the provider routes, and the RevocationJob queue.
 *
 * The access token is "tok_" + base64url(32 random bytes). It exists in plaintext only in lease.issue's
 * result; the store keeps "sha256:<hex>" of it and checks compare in constant time. */
#define MKT_INTERNAL
#include "market/mkt.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "base/enc.h"
#include "base/log.h"
#include "crypto/hash.h"

#define TOKEN_BYTES 32

int mkt_lease_revoke_tx(struct market *m, json_t *lease, const char *actor, const char *reason, cg_err *e)
{
	const char *st = mkt_s(lease, "status");
	int r = fsm_lease(st, "lease_revoked", e);
	if (r < 0 || strcmp(st, "lease_revoked") == 0)
		return r;
	int64_t now = mkt_now();
	mkt_set_s(lease, "status", "lease_revoked");
	mkt_set_i(lease, "revokedAt", now);
	mkt_set_s(lease, "revokeReason", reason ? reason : "revoked");
	if ((r = mkt_put(m, T_LEASE, lease, e)) < 0 || (r = store_fault(m->st, "lease.revoke:lease", e)) < 0)
		return r;
	json_t *d = NULL;
	const char *did = mkt_s(lease, "deliveryId");
	if (*did && (r = mkt_get_opt(m, T_DELIVERY, did, &d, e)) < 0)
		return r;
	if (d && strcmp(mkt_s(d, "status"), "delivery_ready") == 0) {
		mkt_set_s(d, "status", "delivery_revoked");
		mkt_set_i(d, "revokedAt", now);
		mkt_set_s(d, "revokeReason", reason ? reason : "lease_revoked");
		if ((r = mkt_rehash(d, "deliveryHash", e)) < 0 || (r = mkt_put(m, T_DELIVERY, d, e)) < 0 ||
		    (r = store_fault(m->st, "lease.revoke:delivery", e)) < 0) {
			json_decref(d);
			return r;
		}
	}
	json_decref(d);
	return mkt_audit(m, "lease_revoked", mkt_s(lease, "leaseId"), mkt_s(lease, "accessTokenHash"), actor,
			 json_pack("{s:s,s:s}", "resourceId", mkt_s(lease, "resourceId"), "reason",
				   reason ? reason : "revoked"),
			 e);
}

static int queue_revocation_job(struct market *m, json_t *lease, const cg_err *why)
{
	char id[MKT_ID_MAX];
	cg_err e;
	mkt_new_id(id, "rvj");
	int64_t now = mkt_now();
	json_t *job = json_pack("{s:s,s:s,s:s,s:I,s:s,s:s,s:I,s:I}", "jobId", id, "deliveryId",
				mkt_s(lease, "deliveryId"), "leaseId", mkt_s(lease, "leaseId"), "attempts", (json_int_t)1,
				"status", "revocation_pending", "lastError", why->msg, "nextAttemptAt",
				(json_int_t)(now + mkt_backoff(m, 1)), "createdAt", (json_int_t)now);
	int r = store_tx_begin(m->st, &e);
	if (r == 0) {
		if ((r = mkt_put(m, T_REVOCATION, job, &e)) < 0 ||
		    (r = mkt_audit(m, "revocation_retry", id, NULL, NULL,
				   json_pack("{s:s,s:i}", "leaseId", mkt_s(lease, "leaseId"), "attempts", 1), &e)) < 0)
			store_tx_rollback(m->st);
		else
			r = store_tx_commit(m->st, &e);
	}
	if (r < 0)
		log_error("market", "cannot queue revocation job", "err=\"%s\"", e.msg);
	json_decref(job);
	return r;
}

void mkt_lease_notify(struct market *m, json_t *lease)
{
	if (!m->notify)
		return;
	cg_err e;
	cg_err_clear(&e);
	if (m->notify(m->notify_arg, lease, &e) < 0) {
		log_warn("market", "revocation notification failed, queued", "lease=%s", mkt_s(lease, "leaseId"));
		queue_revocation_job(m, lease, &e);
	}
}

void mkt_lease_notify_all(struct market *m, json_t *leases)
{
	size_t i;
	json_t *l;
	json_array_foreach(leases, i, l) mkt_lease_notify(m, l);
}

static void token_hash(const char *token, char out[static 72])
{
	sha256_tagged_hex(out, token, strlen(token));
}

/* The lease's lifetime: ttlMs, or the [SPEC 02] form's absolute expiresAt (epoch ms or ISO 8601), exactly
 * one of them; either way the lifetime must lie within the seed's ttlMs range. */
static int lease_ttl(json_t *p, int64_t now, int64_t *ttl, cg_err *e)
{
	int64_t at = -1;
	int r;
	bool has_ttl = json_object_get(p, "ttlMs") && !json_is_null(json_object_get(p, "ttlMs"));
	if ((r = mkt_jp_time(p, "expiresAt", &at, e)) < 0)
		return r;
	if (has_ttl && at >= 0)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "ttlMs: give ttlMs or expiresAt, not both");
	if (at < 0)
		return jp_int(p, NULL, "ttlMs", JP_REQUIRED, MKT_TTL_MIN, MKT_TTL_MAX, ttl, e);
	/* The check uses a ttl rounded to whole seconds: an ISO time has only that much precision and the
	 * caller computed it a moment ago. */
	int64_t d = at - now;
	if (d < MKT_TTL_MIN - 1000 || d > MKT_TTL_MAX)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "expiresAt: must be %lld..%lld ms from now",
			       (long long)MKT_TTL_MIN, (long long)MKT_TTL_MAX);
	*ttl = d < MKT_TTL_MIN ? MKT_TTL_MIN : d;
	return 0;
}

/* The [SPEC 02] per-lease policy {maxRequests, rateLimit (requests per minute)}, kept on the lease for the
 * provider routes. */
static int lease_policy(json_t *p, json_t **out, cg_err *e)
{
	static const char *const keys[] = {"maxRequests", "rateLimit", NULL};
	json_t *pol = NULL;
	int64_t v;
	int r;
	*out = NULL;
	if ((r = jp_obj(p, NULL, "policy", JP_NULLABLE, &pol, e)) < 0 || !pol)
		return r;
	if ((r = jp_only(pol, "policy", keys, e)) < 0)
		return r;
	json_t *o = json_object();
	for (int i = 0; keys[i]; i++) {
		v = -1;
		if ((r = jp_int(pol, "policy", keys[i], JP_NULLABLE, 1, 1000000000, &v, e)) < 0) {
			json_decref(o);
			return r;
		}
		if (v > 0)
			mkt_set_i(o, keys[i], v);
	}
	*out = o;
	return 0;
}

int op_lease_issue(struct market *m, const char *actor, json_t *p, json_t **result, cg_err *e)
{
	static const char *const keys[] = {"actorId", "resourceId",  "consumerActorId", "providerActorId",
					   "ttlMs",   "expiresAt",   "maxCost",         "policy",
					   NULL};
	const char *rid = NULL, *max_cost = NULL;
	char consumer[MKT_ACTOR_MAX + 1], prov[MKT_ACTOR_MAX + 1];
	bool has_consumer, has_prov;
	int64_t ttl = 0, now = mkt_now();
	json_t *res = NULL, *offer = NULL, *order = NULL, *consent = NULL, *dlv = NULL, *lease = NULL, *pol = NULL;
	char token[4 + 64] = "tok_", th[72];
	int r;
	if ((r = mkt_need_actor(actor, e)) < 0 || (r = jp_only(p, NULL, keys, e)) < 0 ||
	    (r = mkt_jp_id(p, "resourceId", JP_REQUIRED, &rid, e)) < 0 ||
	    (r = mkt_jp_actor(p, NULL, "consumerActorId", JP_REQUIRED, consumer, &has_consumer, e)) < 0 ||
	    (r = mkt_jp_actor(p, NULL, "providerActorId", JP_NULLABLE, prov, &has_prov, e)) < 0 ||
	    (r = lease_ttl(p, now, &ttl, e)) < 0 || (r = jp_amount(p, NULL, "maxCost", JP_NULLABLE, &max_cost, e)) < 0 ||
	    (r = lease_policy(p, &pol, e)) < 0)
		return r;
	if ((r = mkt_get(m, T_RESOURCE, rid, &res, e)) < 0)
		goto out;
	/* The consumer asks for its lease, or the provider grants one (seed: the gateway issues for either). */
	if (!mkt_actor_eq(actor, consumer) && !mkt_actor_eq(actor, mkt_s(res, "providerActorId"))) {
		r = cg_fail(e, CG_E_FORBIDDEN, "actorId must be the consumer or the resource's provider");
		goto out;
	}
	if (has_prov && !mkt_actor_eq(prov, mkt_s(res, "providerActorId"))) {
		r = cg_fail(e, CG_E_CONFLICT, "providerActorId: the resource has another provider");
		goto out;
	}
	if (strcmp(mkt_s(res, "status"), "resource_published") != 0) {
		r = cg_fail(e, CG_E_CONFLICT, "resource is not published");
		goto out;
	}
	if ((r = mkt_get(m, T_OFFER, mkt_s(res, "offerId"), &offer, e)) < 0)
		goto out;
	if (strcmp(mkt_s(offer, "status"), "offer_published") != 0) {
		r = cg_fail(e, CG_E_CONFLICT, "the resource's offer is not published");
		goto out;
	}
	struct mkt_filter qf[] = {{"resourceId", "=", rid, 0}, {"status", "=", "lease_active", 0}};
	if (mkt_count(m, T_LEASE, qf, 2) >= m->o.max_active_leases_per_resource) {
		r = cg_fail(e, CG_E_QUOTA_EXCEEDED, "resource has the maximum number of active leases (%lld)",
			    (long long)m->o.max_active_leases_per_resource);
		goto out;
	}

	int64_t expires = now + ttl;
	char oid[MKT_ID_MAX], cid[MKT_ID_MAX], did[MKT_ID_MAX], lid[MKT_ID_MAX];
	mkt_new_id(oid, "ord");
	mkt_new_id(cid, "con");
	mkt_new_id(did, "dlv");
	mkt_new_id(lid, "lea");
	uint8_t raw[TOKEN_BYTES];
	randombytes_buf(raw, sizeof raw);
	base64_encode(token + 4, raw, sizeof raw, true);
	sodium_memzero(raw, sizeof raw);
	token_hash(token, th);

	/* Order: created -> payment_locked -> consent_granted -> delivery_ready, each edge checked. */
	order = json_pack("{s:s,s:s,s:s,s:s,s:i,s:s,s:s,s:s,s:s,s:I,s:I}", "orderId", oid, "offerId",
			  mkt_s(offer, "offerId"), "buyerId", consumer, "sellerId", mkt_s(res, "providerActorId"),
			  "quantity", 1, "currency", mkt_s(offer, "currency"), "resourceId", rid, "leaseId", lid, "status",
			  "order_created", "createdAt", (json_int_t)now, "updatedAt", (json_int_t)now);
	if (max_cost)
		mkt_set_s(order, "amount", max_cost);
	if ((r = mkt_order_to(order, "payment_locked", e)) < 0 || (r = mkt_order_to(order, "consent_granted", e)) < 0 ||
	    (r = mkt_order_to(order, "delivery_ready", e)) < 0)
		goto out;
	consent = json_pack("{s:s,s:s,s:O,s:s,s:s,s:I}", "consentId", cid, "orderId", oid, "scope",
			    json_object_get(offer, "usageScope"), "signature", "lease_issue", "status", "consent_granted",
			    "grantedAt", (json_int_t)now);
	dlv = json_pack("{s:s,s:s,s:s,s:s,s:I}", "deliveryId", did, "orderId", oid, "deliveryType", "api", "status",
			"delivery_ready", "issuedAt", (json_int_t)now);
	lease = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I}", "leaseId", lid, "resourceId", rid, "kind",
			  mkt_s(res, "kind"), "providerActorId", mkt_s(res, "providerActorId"), "consumerActorId",
			  consumer, "orderId", oid, "consentId", cid, "deliveryId", did, "accessTokenHash", th, "status",
			  "lease_active", "issuedAt", (json_int_t)now, "expiresAt", (json_int_t)expires);
	if (max_cost)
		mkt_set_s(lease, "maxCost", max_cost);
	if (pol)
		json_object_set(lease, "policy", pol);
	if ((r = mkt_rehash(consent, "consentHash", e)) < 0 || (r = mkt_rehash(dlv, "deliveryHash", e)) < 0)
		goto out;

	if ((r = store_tx_begin(m->st, e)) < 0)
		goto out;
	if ((r = mkt_put(m, T_ORDER, order, e)) < 0 || (r = store_fault(m->st, "lease.issue:order", e)) < 0 ||
	    (r = mkt_put(m, T_CONSENT, consent, e)) < 0 || (r = store_fault(m->st, "lease.issue:consent", e)) < 0 ||
	    (r = mkt_put(m, T_DELIVERY, dlv, e)) < 0 || (r = store_fault(m->st, "lease.issue:delivery", e)) < 0 ||
	    (r = mkt_put(m, T_LEASE, lease, e)) < 0 || (r = store_fault(m->st, "lease.issue:lease", e)) < 0 ||
	    (r = mkt_audit(m, "lease_issued", lid, th, actor,
			   json_pack("{s:s,s:s,s:s,s:s}", "resourceId", rid, "orderId", oid, "deliveryId", did,
				     "accessTokenHash", th),
			   e)) < 0 ||
	    (r = store_fault(m->st, "lease.issue:audit", e)) < 0) {
		store_tx_rollback(m->st);
		goto out;
	}
	if ((r = store_tx_commit(m->st, e)) < 0)
		goto out;
	*result = json_pack("{s:s,s:s,s:s,s:s,s:I,s:s}", "leaseId", lid, "orderId", oid, "consentId", cid, "deliveryId",
			    did, "expiresAt", (json_int_t)expires, "accessToken", token);
out:
	sodium_memzero(token, sizeof token);
	json_decref(res);
	json_decref(offer);
	json_decref(order);
	json_decref(consent);
	json_decref(dlv);
	json_decref(lease);
	json_decref(pol);
	return r;
}

int mkt_lease_usable(const json_t *lease, cg_err *e)
{
	const char *st = mkt_s(lease, "status");
	if (strcmp(st, "lease_revoked") == 0)
		return cg_fail(e, CG_E_REVOKED, "lease is revoked");
	if (strcmp(st, "lease_expired") == 0 || mkt_i(lease, "expiresAt") <= mkt_now())
		return cg_fail(e, CG_E_EXPIRED, "lease has expired");
	if (strcmp(st, "lease_active") != 0)
		return cg_fail(e, CG_E_CONFLICT, "lease is %s", st);
	return 0;
}

static bool lease_party(const json_t *l, const char *actor)
{
	return mkt_actor_eq(mkt_s(l, "providerActorId"), actor) || mkt_actor_eq(mkt_s(l, "consumerActorId"), actor);
}

int op_lease_revoke(struct market *m, const char *actor, json_t *p, json_t **result, cg_err *e)
{
	static const char *const keys[] = {"actorId", "leaseId", "reason", NULL};
	const char *id = NULL, *reason = NULL;
	json_t *lease = NULL;
	int r;
	if ((r = mkt_need_actor(actor, e)) < 0 || (r = jp_only(p, NULL, keys, e)) < 0 ||
	    (r = mkt_jp_id(p, "leaseId", JP_REQUIRED, &id, e)) < 0 ||
	    (r = jp_str(p, NULL, "reason", 0, 0, MKT_REASON_MAX, &reason, e)) < 0 ||
	    (r = mkt_get(m, T_LEASE, id, &lease, e)) < 0)
		return r;
	if (!lease_party(lease, actor)) {
		r = cg_fail(e, CG_E_FORBIDDEN, "only the lease's provider or consumer may revoke it");
		goto out;
	}
	const char *st = mkt_s(lease, "status");
	if (strcmp(st, "lease_expired") == 0) {
		r = cg_fail(e, CG_E_EXPIRED, "lease already expired");
		goto out;
	}
	bool was_active = strcmp(st, "lease_active") == 0;
	if (was_active) {
		if ((r = store_tx_begin(m->st, e)) < 0)
			goto out;
		if ((r = mkt_lease_revoke_tx(m, lease, actor, reason, e)) < 0) {
			store_tx_rollback(m->st);
			goto out;
		}
		if ((r = store_tx_commit(m->st, e)) < 0)
			goto out;
		mkt_lease_notify(m, lease);
	}
	*result = json_pack("{s:s,s:s,s:I}", "leaseId", id, "status", "lease_revoked", "revokedAt",
			    (json_int_t)mkt_i(lease, "revokedAt"));
out:
	json_decref(lease);
	return r;
}

int op_lease_get(struct market *m, const char *actor, json_t *p, json_t **result, cg_err *e)
{
	static const char *const keys[] = {"actorId", "leaseId", NULL};
	const char *id = NULL;
	json_t *lease = NULL;
	int r;
	if ((r = jp_only(p, NULL, keys, e)) < 0 || (r = mkt_jp_id(p, "leaseId", JP_REQUIRED, &id, e)) < 0 ||
	    (r = mkt_get_opt(m, T_LEASE, id, &lease, e)) < 0)
		return r;
	if (lease && actor && !lease_party(lease, actor)) {
		json_decref(lease);
		return cg_fail(e, CG_E_FORBIDDEN, "only the lease's provider or consumer may read it");
	}
	*result = json_pack("{s:o}", "lease", lease ? lease : json_null());
	return 0;
}

int op_lease_list(struct market *m, const char *actor, json_t *p, json_t **result, cg_err *e)
{
	static const char *const keys[] = {"actorId",  "providerActorId", "consumerActorId", "resourceId",
					   "status",   "accessTokenHash", "limit",           NULL};
	static const char *const st[] = {"lease_active", "lease_revoked", "lease_expired", NULL};
	char prov[MKT_ACTOR_MAX + 1], cons[MKT_ACTOR_MAX + 1];
	bool has_prov, has_cons;
	const char *rid = NULL, *status = NULL, *th = NULL;
	int64_t limit;
	json_t *arr;
	int r;
	if ((r = jp_only(p, NULL, keys, e)) < 0 ||
	    (r = mkt_jp_actor(p, NULL, "providerActorId", 0, prov, &has_prov, e)) < 0 ||
	    (r = mkt_jp_actor(p, NULL, "consumerActorId", 0, cons, &has_cons, e)) < 0 ||
	    (r = mkt_jp_id(p, "resourceId", 0, &rid, e)) < 0 || (r = jp_enum(p, NULL, "status", 0, st, &status, e)) < 0 ||
	    (r = jp_str(p, NULL, "accessTokenHash", 0, 71, 71, &th, e)) < 0 ||
	    (r = mkt_jp_limit(p, MKT_LIST_DEF, MKT_LIST_MAX, &limit, e)) < 0)
		return r;
	/* A caller acting as someone sees only the leases that actor is a party of. */
	if (actor && (has_prov || has_cons) &&
	    !((has_prov && mkt_actor_eq(prov, actor)) || (has_cons && mkt_actor_eq(cons, actor))))
		return cg_fail(e, CG_E_FORBIDDEN, "actorId may list only its own leases");
	struct mkt_filter f[6];
	size_t nf = 0;
	if (actor && !has_prov && !has_cons)
		f[nf++] = (struct mkt_filter){"", "party", actor, 0};
	if (has_prov)
		f[nf++] = (struct mkt_filter){"providerActorId", "=", prov, 0};
	if (has_cons)
		f[nf++] = (struct mkt_filter){"consumerActorId", "=", cons, 0};
	if (rid)
		f[nf++] = (struct mkt_filter){"resourceId", "=", rid, 0};
	if (status)
		f[nf++] = (struct mkt_filter){"status", "=", status, 0};
	if (th)
		f[nf++] = (struct mkt_filter){"accessTokenHash", "=", th, 0};
	if ((r = mkt_list(m, T_LEASE, f, nf, limit, false, &arr, e)) < 0)
		return r;
	*result = json_pack("{s:o}", "leases", arr);
	return 0;
}

static int sweep(struct market *m, const char *actor, int64_t now, int64_t limit, bool dry, json_t **result, cg_err *e)
{
	struct mkt_filter f[] = {{"status", "=", "lease_active", 0}, {"expiresAt", "<=", NULL, now}};
	json_t *arr;
	int r = mkt_list(m, T_LEASE, f, 2, limit, false, &arr, e);
	if (r < 0)
		return r;
	int64_t processed = 0, expired = 0, skipped = 0, errors = 0;
	size_t i;
	json_t *l;
	json_array_foreach(arr, i, l)
	{
		processed++;
		if (dry) {
			expired++;
			continue;
		}
		cg_err le;
		if (fsm_lease(mkt_s(l, "status"), "lease_expired", &le) < 0) {
			skipped++;
			continue;
		}
		/* Each lease in its own transaction: one bad row does not hold back the others. Expiry never
		 * settles and never writes the ledger. */
		mkt_set_s(l, "status", "lease_expired");
		mkt_set_i(l, "expiredAt", now);
		int q = store_tx_begin(m->st, &le);
		if (q == 0) {
			if ((q = mkt_put(m, T_LEASE, l, &le)) < 0 ||
			    (q = mkt_audit(m, "lease_expired", mkt_s(l, "leaseId"), mkt_s(l, "accessTokenHash"), actor,
					   json_pack("{s:s}", "resourceId", mkt_s(l, "resourceId")), &le)) < 0)
				store_tx_rollback(m->st);
			else
				q = store_tx_commit(m->st, &le);
		}
		if (q < 0) {
			errors++;
			skipped++;
			log_warn("market", "expire failed", "lease=%s err=\"%s\"", mkt_s(l, "leaseId"), le.msg);
		} else {
			expired++;
		}
	}
	json_decref(arr);
	int64_t left = mkt_count(m, T_LEASE, f, 2);
	*result = json_pack("{s:I,s:I,s:I,s:I,s:I,s:b}", "processed", (json_int_t)processed, "expired",
			    (json_int_t)expired, "skipped", (json_int_t)skipped, "errors", (json_int_t)errors, "pending",
			    (json_int_t)(dry ? left - processed : left), "dryRun", dry);
	return 0;
}

int op_lease_sweep(struct market *m, const char *actor, json_t *p, json_t **result, cg_err *e)
{
	static const char *const keys[] = {"actorId", "now", "limit", "dryRun", NULL};
	int64_t now = mkt_now(), limit;
	bool dry = false;
	int r;
	if ((r = jp_only(p, NULL, keys, e)) < 0 || (r = mkt_jp_time(p, "now", &now, e)) < 0 ||
	    (r = mkt_jp_limit(p, MKT_SWEEP_DEF, MKT_SWEEP_MAX, &limit, e)) < 0 ||
	    (r = jp_bool(p, NULL, "dryRun", 0, &dry, e)) < 0)
		return r;
	return sweep(m, actor, now, limit, dry, result, e);
}

int market_expire_sweep(struct market *m, int64_t now_ms, int64_t limit, json_t **result, cg_err *e)
{
	return sweep(m, NULL, now_ms > 0 ? now_ms : mkt_now(), limit, false, result, e);
}

int market_lease_authorize(struct market *m, const char *lease_id, const char *token, json_t **lease_out,
			   cg_err *e)
{
	char th[72];
	json_t *lease = NULL, *res = NULL, *offer = NULL;
	int r;
	if (!token || strncmp(token, "tok_", 4) != 0 || strlen(token) > 200)
		return cg_fail(e, CG_E_AUTH_REQUIRED, "a lease token is required");
	token_hash(token, th);
	if (lease_id)
		r = mkt_get_opt(m, T_LEASE, lease_id, &lease, e);
	else
		r = mkt_find(m, T_LEASE, "accessTokenHash", th, &lease, e);
	if (r < 0)
		return r;
	/* The same answer for an unknown lease and a wrong token: lease ids cannot be probed. */
	const char *want = lease ? mkt_s(lease, "accessTokenHash") : "";
	if (!lease || strlen(want) != 71 || sodium_memcmp(want, th, 71) != 0) {
		r = cg_fail(e, CG_E_FORBIDDEN, "lease token does not match");
		goto out;
	}
	if ((r = mkt_lease_usable(lease, e)) < 0)
		goto out;
	if ((r = mkt_get_opt(m, T_RESOURCE, mkt_s(lease, "resourceId"), &res, e)) < 0)
		goto out;
	if (!res || strcmp(mkt_s(res, "status"), "resource_published") != 0) {
		r = cg_fail(e, CG_E_FORBIDDEN, "resource is no longer published");
		goto out;
	}
	if ((r = mkt_get_opt(m, T_OFFER, mkt_s(res, "offerId"), &offer, e)) < 0)
		goto out;
	if (!offer || strcmp(mkt_s(offer, "status"), "offer_closed") == 0) {
		r = cg_fail(e, CG_E_FORBIDDEN, "the resource's offer is closed");
		goto out;
	}
	if (lease_out) {
		*lease_out = lease;
		lease = NULL;
	}
out:
	sodium_memzero(th, sizeof th);
	json_decref(lease);
	json_decref(res);
	json_decref(offer);
	return r;
}

/* ---- revocation jobs ---- */

static int notify_again(struct market *m, json_t *job, cg_err *e)
{
	json_t *lease = NULL;
	int r = mkt_get(m, T_LEASE, mkt_s(job, "leaseId"), &lease, e);
	if (r == 0 && m->notify)
		r = m->notify(m->notify_arg, lease, e);
	json_decref(lease);
	return r;
}

static const struct mkt_jobs revocations = {T_REVOCATION, "revocation", notify_again, NULL};

int op_revocation_retry(struct market *m, const char *actor, json_t *p, json_t **result, cg_err *e)
{
	int64_t limit, max_attempts;
	bool dry;
	int r = mkt_jobs_params(m, p, &limit, &max_attempts, &dry, e);
	if (r < 0)
		return r;
	return mkt_jobs_run(m, &revocations, NULL, limit, max_attempts, dry, result, e);
}

int market_retry_revocations(struct market *m, int64_t limit, json_t **result, cg_err *e)
{
	return mkt_jobs_run(m, &revocations, NULL, limit, m->o.job_max_attempts, false, result, e);
}
