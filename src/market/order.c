/* Orders, consents and deliveries: order.create|cancel|get|list, consent.grant|revoke|get,
 * delivery.issue|revoke|complete|get. Payments lock through market.settlement.lock (settlement.c). */
#define MKT_INTERNAL
#include "market/mkt.h"

#include <string.h>

#include "base/amount.h"

static bool is_party(const json_t *order, const char *actor)
{
	return mkt_actor_eq(mkt_s(order, "buyerId"), actor) || mkt_actor_eq(mkt_s(order, "sellerId"), actor);
}

int op_order_create(struct market *m, const char *actor, json_t *p, json_t **res, cg_err *e)
{
	static const char *const keys[] = {"actorId", "offerId", "quantity", NULL};
	const char *oid = NULL;
	int64_t qty = 1;
	json_t *offer = NULL, *order = NULL;
	int r;
	if ((r = mkt_need_actor(actor, e)) < 0 || (r = jp_only(p, NULL, keys, e)) < 0 ||
	    (r = mkt_jp_id(p, "offerId", JP_REQUIRED, &oid, e)) < 0 ||
	    (r = jp_int(p, NULL, "quantity", 0, 1, 1000000000, &qty, e)) < 0 || (r = mkt_get(m, T_OFFER, oid, &offer, e)) < 0)
		return r;
	if (strcmp(mkt_s(offer, "status"), "offer_published") != 0) {
		r = cg_fail(e, CG_E_CONFLICT, "offer is not published");
		goto out;
	}
	char q[24], amount[U256_DEC_MAX], id[MKT_ID_MAX];
	snprintf(q, sizeof q, "%lld", (long long)qty);
	if (amount_mul(mkt_s(offer, "price"), q, amount) < 0) {
		r = cg_fail(e, CG_E_INVALID_ARGUMENT, "quantity: price x quantity overflows");
		goto out;
	}
	mkt_new_id(id, "ord");
	int64_t now = mkt_now();
	order = json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:I,s:I}", "orderId", id, "offerId", oid, "buyerId", actor,
			  "sellerId", mkt_s(offer, "sellerId"), "quantity", (json_int_t)qty, "amount", amount, "currency",
			  mkt_s(offer, "currency"), "status", "order_created", "createdAt", (json_int_t)now, "updatedAt",
			  (json_int_t)now);
	if ((r = mkt_rehash(order, "orderHash", e)) < 0 || (r = store_tx_begin(m->st, e)) < 0)
		goto out;
	if ((r = mkt_put(m, T_ORDER, order, e)) < 0 ||
	    (r = mkt_audit(m, "order_created", id, mkt_s(order, "orderHash"), actor, NULL, e)) < 0) {
		store_tx_rollback(m->st);
		goto out;
	}
	if ((r = store_tx_commit(m->st, e)) < 0)
		goto out;
	*res = json_pack("{s:s,s:s,s:s,s:s}", "orderId", id, "orderHash", mkt_s(order, "orderHash"), "status",
			 "order_created", "amount", amount);
out:
	json_decref(offer);
	json_decref(order);
	return r;
}

int op_order_cancel(struct market *m, const char *actor, json_t *p, json_t **res, cg_err *e)
{
	static const char *const keys[] = {"actorId", "orderId", "reason", NULL};
	const char *id = NULL, *reason = NULL;
	json_t *order = NULL;
	int r;
	if ((r = mkt_need_actor(actor, e)) < 0 || (r = jp_only(p, NULL, keys, e)) < 0 ||
	    (r = mkt_jp_id(p, "orderId", JP_REQUIRED, &id, e)) < 0 ||
	    (r = jp_str(p, NULL, "reason", 0, 0, MKT_REASON_MAX, &reason, e)) < 0 ||
	    (r = mkt_get(m, T_ORDER, id, &order, e)) < 0)
		return r;
	if (!is_party(order, actor)) {
		r = cg_fail(e, CG_E_FORBIDDEN, "only the order's buyer or seller may cancel it");
		goto out;
	}
	if ((r = mkt_order_to(order, "order_cancelled", e)) < 0 || (r = store_tx_begin(m->st, e)) < 0)
		goto out;
	if ((r = mkt_put(m, T_ORDER, order, e)) < 0 ||
	    (r = mkt_audit(m, "order_cancelled", id, mkt_s(order, "orderHash"), actor,
			   reason ? json_pack("{s:s}", "reason", reason) : NULL, e)) < 0) {
		store_tx_rollback(m->st);
		goto out;
	}
	if ((r = store_tx_commit(m->st, e)) < 0)
		goto out;
	*res = json_pack("{s:s,s:s}", "orderId", id, "status", "order_cancelled");
out:
	json_decref(order);
	return r;
}

static int get_one(struct market *m, enum mkt_tbl t, const char *idkey, const char *outkey, json_t *p,
		   json_t **res, cg_err *e)
{
	const char *keys[] = {"actorId", idkey, NULL};
	const char *id = NULL;
	json_t *doc = NULL;
	int r;
	if ((r = jp_only(p, NULL, keys, e)) < 0 || (r = mkt_jp_id(p, idkey, JP_REQUIRED, &id, e)) < 0 ||
	    (r = mkt_get_opt(m, t, id, &doc, e)) < 0)
		return r;
	*res = json_pack("{s:o}", outkey, doc ? doc : json_null());
	return 0;
}

int op_order_get(struct market *m, const char *actor, json_t *p, json_t **res, cg_err *e)
{
	return get_one(m, T_ORDER, "orderId", "order", p, res, e);
}

int op_order_list(struct market *m, const char *actor, json_t *p, json_t **res, cg_err *e)
{
	static const char *const keys[] = {"actorId", "buyerId", "offerId", "status", "limit", NULL};
	static const char *const st[] = {"order_created",      "payment_locked",       "consent_granted",
					 "delivery_ready",     "delivery_completed",   "settlement_completed",
					 "order_cancelled",    "settlement_cancelled", "consent_revoked",
					 NULL};
	char buyer[MKT_ACTOR_MAX + 1];
	bool has_buyer;
	const char *offer = NULL, *status = NULL;
	int64_t limit;
	json_t *arr;
	int r;
	if ((r = jp_only(p, NULL, keys, e)) < 0 || (r = mkt_jp_actor(p, NULL, "buyerId", 0, buyer, &has_buyer, e)) < 0 ||
	    (r = mkt_jp_id(p, "offerId", 0, &offer, e)) < 0 || (r = jp_enum(p, NULL, "status", 0, st, &status, e)) < 0 ||
	    (r = mkt_jp_limit(p, MKT_LIST_DEF, MKT_LIST_MAX, &limit, e)) < 0)
		return r;
	struct mkt_filter f[3];
	size_t nf = 0;
	if (has_buyer)
		f[nf++] = (struct mkt_filter){"buyerId", "=", buyer, 0};
	if (offer)
		f[nf++] = (struct mkt_filter){"offerId", "=", offer, 0};
	if (status)
		f[nf++] = (struct mkt_filter){"status", "=", status, 0};
	if ((r = mkt_list(m, T_ORDER, f, nf, limit, false, &arr, e)) < 0)
		return r;
	*res = json_pack("{s:o}", "orders", arr);
	return 0;
}

/* ---- consent ---- */

int op_consent_grant(struct market *m, const char *actor, json_t *p, json_t **res, cg_err *e)
{
	static const char *const keys[] = {"actorId", "orderId", "scope", "signature", NULL};
	const char *id = NULL, *sig = NULL;
	json_t *scope = NULL, *order = NULL, *offer = NULL, *consent = NULL;
	int r;
	if ((r = mkt_need_actor(actor, e)) < 0 || (r = jp_only(p, NULL, keys, e)) < 0 ||
	    (r = mkt_jp_id(p, "orderId", JP_REQUIRED, &id, e)) < 0 ||
	    (r = mkt_jp_meta(p, NULL, "scope", JP_NULLABLE, &scope, e)) < 0 ||
	    (r = jp_str(p, NULL, "signature", 0, 1, 200, &sig, e)) < 0 || (r = mkt_get(m, T_ORDER, id, &order, e)) < 0)
		return r;
	if (!mkt_actor_eq(mkt_s(order, "buyerId"), actor)) {
		r = cg_fail(e, CG_E_FORBIDDEN, "only the order's buyer may grant consent");
		goto out;
	}
	if ((r = mkt_order_to(order, "consent_granted", e)) < 0 ||
	    (r = mkt_get(m, T_OFFER, mkt_s(order, "offerId"), &offer, e)) < 0)
		goto out;
	char cid[MKT_ID_MAX];
	mkt_new_id(cid, "con");
	consent = json_pack("{s:s,s:s,s:O,s:s,s:s,s:I}", "consentId", cid, "orderId", id, "scope",
			    scope ? scope : json_object_get(offer, "usageScope"), "signature", sig ? sig : "rpc", "status",
			    "consent_granted", "grantedAt", (json_int_t)mkt_now());
	if ((r = mkt_rehash(consent, "consentHash", e)) < 0 || (r = store_tx_begin(m->st, e)) < 0)
		goto out;
	if ((r = mkt_put(m, T_CONSENT, consent, e)) < 0 || (r = store_fault(m->st, "consent.grant:consent", e)) < 0 ||
	    (r = mkt_put(m, T_ORDER, order, e)) < 0 || (r = store_fault(m->st, "consent.grant:order", e)) < 0 ||
	    (r = mkt_audit(m, "consent_granted", cid, mkt_s(consent, "consentHash"), actor,
			   json_pack("{s:s}", "orderId", id), e)) < 0) {
		store_tx_rollback(m->st);
		goto out;
	}
	if ((r = store_tx_commit(m->st, e)) < 0)
		goto out;
	*res = json_pack("{s:s,s:s,s:s}", "consentId", cid, "consentHash", mkt_s(consent, "consentHash"), "status",
			 "consent_granted");
out:
	json_decref(order);
	json_decref(offer);
	json_decref(consent);
	return r;
}

int mkt_order_revoke_deps(struct market *m, const char *order_id, const char *actor, const char *reason,
			  json_t *revoked, cg_err *e)
{
	struct mkt_filter lf[] = {{"orderId", "=", order_id, 0}, {"status", "=", "lease_active", 0}};
	struct mkt_filter df[] = {{"orderId", "=", order_id, 0}, {"status", "=", "delivery_ready", 0}};
	json_t *arr;
	size_t i;
	json_t *x;
	int r = mkt_list(m, T_LEASE, lf, 2, 1000, false, &arr, e);
	if (r < 0)
		return r;
	json_array_foreach(arr, i, x)
	{
		if ((r = mkt_lease_revoke_tx(m, x, actor, reason, e)) < 0)
			break;
		json_array_append(revoked, x);
	}
	json_decref(arr);
	if (r < 0 || (r = mkt_list(m, T_DELIVERY, df, 2, 1000, false, &arr, e)) < 0)
		return r;
	/* Deliveries not bound to a lease (market.delivery.issue) are still ready: revoke them too. */
	int64_t now = mkt_now();
	json_array_foreach(arr, i, x)
	{
		mkt_set_s(x, "status", "delivery_revoked");
		mkt_set_i(x, "revokedAt", now);
		mkt_set_s(x, "revokeReason", reason);
		if ((r = mkt_rehash(x, "deliveryHash", e)) < 0 || (r = mkt_put(m, T_DELIVERY, x, e)) < 0)
			break;
	}
	json_decref(arr);
	return r;
}

int op_consent_revoke(struct market *m, const char *actor, json_t *p, json_t **res, cg_err *e)
{
	static const char *const keys[] = {"actorId", "consentId", "reason", NULL};
	const char *id = NULL, *reason = NULL;
	json_t *consent = NULL, *order = NULL, *revoked = json_array();
	int r;
	if ((r = mkt_need_actor(actor, e)) < 0 || (r = jp_only(p, NULL, keys, e)) < 0 ||
	    (r = mkt_jp_id(p, "consentId", JP_REQUIRED, &id, e)) < 0 ||
	    (r = jp_str(p, NULL, "reason", 0, 0, MKT_REASON_MAX, &reason, e)) < 0 ||
	    (r = mkt_get(m, T_CONSENT, id, &consent, e)) < 0 ||
	    (r = mkt_get(m, T_ORDER, mkt_s(consent, "orderId"), &order, e)) < 0)
		goto out;
	if (!mkt_actor_eq(mkt_s(order, "buyerId"), actor)) {
		r = cg_fail(e, CG_E_FORBIDDEN, "only the order's buyer may revoke consent");
		goto out;
	}
	if ((r = fsm_consent(mkt_s(consent, "status"), "consent_revoked", e)) < 0 ||
	    (r = mkt_order_to(order, "consent_revoked", e)) < 0)
		goto out;
	int64_t now = mkt_now();
	mkt_set_s(consent, "status", "consent_revoked");
	mkt_set_i(consent, "revokedAt", now);
	if (reason)
		mkt_set_s(consent, "revokeReason", reason);
	if ((r = mkt_rehash(consent, "consentHash", e)) < 0 || (r = store_tx_begin(m->st, e)) < 0)
		goto out;
	if ((r = mkt_put(m, T_CONSENT, consent, e)) < 0 || (r = store_fault(m->st, "consent.revoke:consent", e)) < 0 ||
	    (r = mkt_put(m, T_ORDER, order, e)) < 0 || (r = store_fault(m->st, "consent.revoke:order", e)) < 0 ||
	    (r = mkt_order_revoke_deps(m, mkt_s(order, "orderId"), actor, reason ? reason : "consent_revoked",
				       revoked, e)) < 0 ||
	    (r = store_fault(m->st, "consent.revoke:leases", e)) < 0)
		goto fail;
	if ((r = mkt_audit(m, "consent_revoked", id, mkt_s(consent, "consentHash"), actor,
			   json_pack("{s:s}", "orderId", mkt_s(order, "orderId")), e)) < 0)
		goto fail;
	if ((r = store_tx_commit(m->st, e)) < 0)
		goto out;
	mkt_lease_notify_all(m, revoked);
	*res = json_pack("{s:s,s:s,s:I}", "consentId", id, "status", "consent_revoked", "revokedAt", (json_int_t)now);
	goto out;
fail:
	store_tx_rollback(m->st);
out:
	json_decref(consent);
	json_decref(order);
	json_decref(revoked);
	return r;
}

int op_consent_get(struct market *m, const char *actor, json_t *p, json_t **res, cg_err *e)
{
	return get_one(m, T_CONSENT, "consentId", "consent", p, res, e);
}

/* ---- delivery ---- */

int op_delivery_issue(struct market *m, const char *actor, json_t *p, json_t **res, cg_err *e)
{
	static const char *const keys[] = {"actorId", "orderId", "payloadRef", NULL};
	const char *id = NULL, *ref = NULL;
	json_t *order = NULL, *offer = NULL, *d = NULL;
	int r;
	if ((r = mkt_need_actor(actor, e)) < 0 || (r = jp_only(p, NULL, keys, e)) < 0 ||
	    (r = mkt_jp_id(p, "orderId", JP_REQUIRED, &id, e)) < 0 ||
	    (r = mkt_jp_id(p, "payloadRef", 0, &ref, e)) < 0 || (r = mkt_get(m, T_ORDER, id, &order, e)) < 0)
		return r;
	if (!mkt_actor_eq(mkt_s(order, "sellerId"), actor)) {
		r = cg_fail(e, CG_E_FORBIDDEN, "only the order's seller may issue the delivery");
		goto out;
	}
	if ((r = mkt_order_to(order, "delivery_ready", e)) < 0 ||
	    (r = mkt_get(m, T_OFFER, mkt_s(order, "offerId"), &offer, e)) < 0)
		goto out;
	char did[MKT_ID_MAX];
	mkt_new_id(did, "dlv");
	d = json_pack("{s:s,s:s,s:s,s:s,s:I}", "deliveryId", did, "orderId", id, "deliveryType",
		      mkt_s(offer, "deliveryType"), "status", "delivery_ready", "issuedAt", (json_int_t)mkt_now());
	if (ref)
		mkt_set_s(d, "payloadRef", ref);
	if ((r = mkt_rehash(d, "deliveryHash", e)) < 0 || (r = store_tx_begin(m->st, e)) < 0)
		goto out;
	if ((r = mkt_put(m, T_DELIVERY, d, e)) < 0 || (r = store_fault(m->st, "delivery.issue:delivery", e)) < 0 ||
	    (r = mkt_put(m, T_ORDER, order, e)) < 0 || (r = store_fault(m->st, "delivery.issue:order", e)) < 0 ||
	    (r = mkt_audit(m, "delivery_issued", did, mkt_s(d, "deliveryHash"), actor, json_pack("{s:s}", "orderId", id),
			   e)) < 0) {
		store_tx_rollback(m->st);
		goto out;
	}
	if ((r = store_tx_commit(m->st, e)) < 0)
		goto out;
	*res = json_pack("{s:s,s:s,s:s}", "deliveryId", did, "deliveryHash", mkt_s(d, "deliveryHash"), "status",
			 "delivery_ready");
out:
	json_decref(order);
	json_decref(offer);
	json_decref(d);
	return r;
}

static int delivery_move(struct market *m, const char *actor, json_t *p, const char *to, json_t **res, cg_err *e)
{
	static const char *const keys[] = {"actorId", "deliveryId", "reason", NULL};
	const char *id = NULL, *reason = NULL;
	json_t *d = NULL, *order = NULL, *revoked = json_array();
	int r;
	bool complete = strcmp(to, "delivery_completed") == 0;
	if ((r = mkt_need_actor(actor, e)) < 0 || (r = jp_only(p, NULL, keys, e)) < 0 ||
	    (r = mkt_jp_id(p, "deliveryId", JP_REQUIRED, &id, e)) < 0 ||
	    (r = jp_str(p, NULL, "reason", 0, 0, MKT_REASON_MAX, &reason, e)) < 0 ||
	    (r = mkt_get(m, T_DELIVERY, id, &d, e)) < 0 || (r = mkt_get(m, T_ORDER, mkt_s(d, "orderId"), &order, e)) < 0)
		goto out;
	if (!is_party(order, actor)) {
		r = cg_fail(e, CG_E_FORBIDDEN, "only the order's buyer or seller may change its delivery");
		goto out;
	}
	if ((r = fsm_delivery(mkt_s(d, "status"), to, e)) < 0)
		goto out;
	if (complete && (r = mkt_order_to(order, "delivery_completed", e)) < 0)
		goto out;
	int64_t now = mkt_now();
	mkt_set_s(d, "status", to);
	mkt_set_i(d, complete ? "completedAt" : "revokedAt", now);
	if (!complete)
		mkt_set_s(d, "revokeReason", reason ? reason : "revoked");
	if ((r = mkt_rehash(d, "deliveryHash", e)) < 0 || (r = store_tx_begin(m->st, e)) < 0)
		goto out;
	if ((r = mkt_put(m, T_DELIVERY, d, e)) < 0 || (r = store_fault(m->st, "delivery:delivery", e)) < 0)
		goto fail;
	if (complete) {
		if ((r = mkt_put(m, T_ORDER, order, e)) < 0 || (r = store_fault(m->st, "delivery:order", e)) < 0)
			goto fail;
	} else {
		/* Leases delivered through this delivery stop authorizing at once. */
		struct mkt_filter f[] = {{"orderId", "=", mkt_s(order, "orderId"), 0}, {"status", "=", "lease_active", 0}};
		json_t *leases;
		if ((r = mkt_list(m, T_LEASE, f, 2, 1000, false, &leases, e)) < 0)
			goto fail;
		size_t i;
		json_t *l;
		json_array_foreach(leases, i, l)
		{
			if (strcmp(mkt_s(l, "deliveryId"), id) != 0)
				continue;
			/* The delivery row is already revoked above, so the helper leaves it alone. */
			if ((r = mkt_lease_revoke_tx(m, l, actor, reason ? reason : "delivery_revoked", e)) < 0)
				break;
			json_array_append(revoked, l);
		}
		json_decref(leases);
		if (r < 0)
			goto fail;
	}
	if ((r = mkt_audit(m, complete ? "delivery_completed" : "delivery_revoked", id, mkt_s(d, "deliveryHash"), actor,
			   json_pack("{s:s}", "orderId", mkt_s(order, "orderId")), e)) < 0)
		goto fail;
	if ((r = store_tx_commit(m->st, e)) < 0)
		goto out;
	mkt_lease_notify_all(m, revoked);
	*res = json_pack("{s:s,s:s}", "deliveryId", id, "status", to);
	goto out;
fail:
	store_tx_rollback(m->st);
out:
	json_decref(d);
	json_decref(order);
	json_decref(revoked);
	return r;
}

int op_delivery_revoke(struct market *m, const char *actor, json_t *p, json_t **res, cg_err *e)
{
	return delivery_move(m, actor, p, "delivery_revoked", res, e);
}

int op_delivery_complete(struct market *m, const char *actor, json_t *p, json_t **res, cg_err *e)
{
	return delivery_move(m, actor, p, "delivery_completed", res, e);
}

int op_delivery_get(struct market *m, const char *actor, json_t *p, json_t **res, cg_err *e)
{
	return get_one(m, T_DELIVERY, "deliveryId", "delivery", p, res, e);
}
