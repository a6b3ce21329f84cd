/* Offers and market resources: offer.create|publish|update|close|get|list and resource.publish|unpublish|
 * get|list. A published resource always points at an offer that is not closed (seed §2 invariants). */
#define MKT_INTERNAL
#include "market/mkt.h"

#include <stdio.h>
#include <string.h>

static const char *const asset_types[] = {"data", "api", "service", NULL};
static const char *const delivery_types[] = {"download", "api", "service", NULL};
static const char *const kinds[] = {"model", "search", "storage", NULL};

static int jp_token_address(json_t *p, const char *pfx, json_t *dst, cg_err *e)
{
	bool present;
	char a[MKT_ACTOR_MAX + 1];
	json_t *v = json_object_get(p, "tokenAddress");
	if (v && !(json_is_string(v) && json_string_length(v) == 42 && json_string_value(v)[0] == '0'))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s%stokenAddress: must be a 0x address", pfx ? pfx : "",
			       pfx ? "." : "");
	int r = mkt_jp_actor(p, pfx, "tokenAddress", 0, a, &present, e);
	if (r < 0)
		return r;
	if (present)
		json_object_set_new(dst, "tokenAddress", json_string(a));
	return 0;
}

/* The offer fields shared by offer.create/update and resource.publish's "offer"; partial for update. */
static int parse_offer_fields(json_t *src, const char *pfx, json_t *dst, bool partial, cg_err *e)
{
	unsigned req = partial ? 0 : JP_REQUIRED;
	const char *s = NULL;
	json_t *o = NULL;
	int r;
	if ((r = jp_str(src, pfx, "assetId", req, 1, 128, &s, e)) < 0)
		return r;
	if (s)
		mkt_set_s(dst, "assetId", s), s = NULL;
	if ((r = jp_enum(src, pfx, "assetType", req, asset_types, &s, e)) < 0)
		return r;
	if (s)
		mkt_set_s(dst, "assetType", s), s = NULL;
	if ((r = jp_str(src, pfx, "currency", req, 1, MKT_CURRENCY_MAX, &s, e)) < 0)
		return r;
	if (s)
		mkt_set_s(dst, "currency", s), s = NULL;
	if ((r = jp_enum(src, pfx, "deliveryType", req, delivery_types, &s, e)) < 0)
		return r;
	if (s)
		mkt_set_s(dst, "deliveryType", s), s = NULL;
	if ((r = mkt_jp_meta(src, pfx, "usageScope", req, &o, e)) < 0)
		return r;
	if (o)
		json_object_set(dst, "usageScope", o), o = NULL;
	if ((r = mkt_jp_meta(src, pfx, "assetMeta", JP_NULLABLE, &o, e)) < 0)
		return r;
	if (o)
		json_object_set(dst, "assetMeta", o);
	return 0;
}

static int need_seller(const json_t *offer, const char *actor, cg_err *e)
{
	if (!mkt_actor_eq(mkt_s(offer, "sellerId"), actor))
		return cg_fail(e, CG_E_FORBIDDEN, "only the offer's seller may change it");
	return 0;
}

static int offer_save(struct market *m, json_t *offer, const char *kind, const char *actor, cg_err *e)
{
	mkt_set_i(offer, "updatedAt", mkt_now());
	int r = mkt_rehash(offer, "offerHash", e);
	if (r < 0)
		return r;
	if ((r = mkt_put(m, T_OFFER, offer, e)) < 0)
		return r;
	return mkt_audit(m, kind, mkt_s(offer, "offerId"), mkt_s(offer, "offerHash"), actor,
			 json_pack("{s:s}", "status", mkt_s(offer, "status")), e);
}

static json_t *offer_result(const json_t *offer)
{
	return json_pack("{s:s,s:s,s:s}", "offerId", mkt_s(offer, "offerId"), "offerHash", mkt_s(offer, "offerHash"),
			 "status", mkt_s(offer, "status"));
}

/* Runs body() in one transaction; used by the single-object operations of this file. */
static int commit_or_rollback(struct market *m, int r, cg_err *e)
{
	if (r < 0) {
		store_tx_rollback(m->st);
		return r;
	}
	return store_tx_commit(m->st, e);
}

int op_offer_create(struct market *m, const char *actor, json_t *p, json_t **res, cg_err *e)
{
	static const char *const keys[] = {"actorId", "assetId", "assetType", "assetMeta", "price", "currency",
					   "tokenAddress", "usageScope", "deliveryType", NULL};
	const char *price = NULL;
	int r;
	if ((r = mkt_need_actor(actor, e)) < 0 || (r = jp_only(p, NULL, keys, e)) < 0)
		return r;
	json_t *offer = json_object();
	if ((r = parse_offer_fields(p, NULL, offer, false, e)) < 0 ||
	    (r = jp_amount(p, NULL, "price", JP_REQUIRED, &price, e)) < 0 || (r = jp_token_address(p, NULL, offer, e)) < 0)
		goto out;
	char id[MKT_ID_MAX];
	mkt_new_id(id, "off");
	int64_t now = mkt_now();
	mkt_set_s(offer, "offerId", id);
	mkt_set_s(offer, "sellerId", actor);
	mkt_set_s(offer, "price", price);
	mkt_set_s(offer, "status", "offer_created");
	mkt_set_i(offer, "createdAt", now);
	if ((r = store_tx_begin(m->st, e)) < 0)
		goto out;
	r = commit_or_rollback(m, offer_save(m, offer, "offer_created", actor, e), e);
	if (r == 0)
		*res = offer_result(offer);
out:
	json_decref(offer);
	return r;
}

/* Loads an offer the actor sells, for a state change. */
static int offer_for_change(struct market *m, const char *actor, json_t *p, const char *const *keys, json_t **offer,
			    cg_err *e)
{
	const char *id = NULL;
	int r;
	if ((r = mkt_need_actor(actor, e)) < 0 || (r = jp_only(p, NULL, keys, e)) < 0 ||
	    (r = mkt_jp_id(p, "offerId", JP_REQUIRED, &id, e)) < 0)
		return r;
	if ((r = mkt_get(m, T_OFFER, id, offer, e)) < 0)
		return r;
	if ((r = need_seller(*offer, actor, e)) < 0) {
		json_decref(*offer);
		*offer = NULL;
	}
	return r;
}

static int offer_move(struct market *m, const char *actor, json_t *p, const char *to, json_t **res, cg_err *e)
{
	static const char *const keys[] = {"actorId", "offerId", NULL};
	json_t *offer = NULL;
	int r = offer_for_change(m, actor, p, keys, &offer, e);
	if (r < 0)
		return r;
	if ((r = fsm_offer(mkt_s(offer, "status"), to, e)) < 0)
		goto out;
	if (strcmp(to, "offer_closed") == 0) {
		/* A published resource needs an offer that is not closed. */
		struct mkt_filter f[] = {{"offerId", "=", mkt_s(offer, "offerId"), 0},
					 {"status", "=", "resource_published", 0}};
		if (mkt_count(m, T_RESOURCE, f, 2) > 0) {
			r = cg_fail(e, CG_E_CONFLICT, "offer backs a published resource: unpublish the resource first");
			goto out;
		}
	}
	mkt_set_s(offer, "status", to);
	if ((r = store_tx_begin(m->st, e)) < 0)
		goto out;
	r = commit_or_rollback(m, offer_save(m, offer, to, actor, e), e);
	if (r == 0)
		*res = offer_result(offer);
out:
	json_decref(offer);
	return r;
}

int op_offer_publish(struct market *m, const char *actor, json_t *p, json_t **res, cg_err *e)
{
	return offer_move(m, actor, p, "offer_published", res, e);
}

int op_offer_close(struct market *m, const char *actor, json_t *p, json_t **res, cg_err *e)
{
	return offer_move(m, actor, p, "offer_closed", res, e);
}

int op_offer_update(struct market *m, const char *actor, json_t *p, json_t **res, cg_err *e)
{
	static const char *const keys[] = {"actorId", "offerId", "assetId", "assetType", "assetMeta", "price",
					   "currency", "tokenAddress", "usageScope", "deliveryType", NULL};
	json_t *offer = NULL;
	const char *price = NULL;
	int r = offer_for_change(m, actor, p, keys, &offer, e);
	if (r < 0)
		return r;
	if (strcmp(mkt_s(offer, "status"), "offer_closed") == 0) {
		r = cg_fail(e, CG_E_CONFLICT, "offer is closed");
		goto out;
	}
	if ((r = parse_offer_fields(p, NULL, offer, true, e)) < 0 ||
	    (r = jp_amount(p, NULL, "price", 0, &price, e)) < 0 || (r = jp_token_address(p, NULL, offer, e)) < 0)
		goto out;
	if (price)
		mkt_set_s(offer, "price", price);
	if ((r = store_tx_begin(m->st, e)) < 0)
		goto out;
	r = commit_or_rollback(m, offer_save(m, offer, "offer_updated", actor, e), e);
	if (r == 0)
		*res = offer_result(offer);
out:
	json_decref(offer);
	return r;
}

int op_offer_get(struct market *m, const char *actor, json_t *p, json_t **res, cg_err *e)
{
	static const char *const keys[] = {"actorId", "offerId", NULL};
	const char *id = NULL;
	json_t *offer = NULL;
	int r;
	if ((r = jp_only(p, NULL, keys, e)) < 0 || (r = mkt_jp_id(p, "offerId", JP_REQUIRED, &id, e)) < 0 ||
	    (r = mkt_get_opt(m, T_OFFER, id, &offer, e)) < 0)
		return r;
	*res = json_pack("{s:o}", "offer", offer ? offer : json_null());
	return 0;
}

int op_offer_list(struct market *m, const char *actor, json_t *p, json_t **res, cg_err *e)
{
	static const char *const keys[] = {"actorId", "sellerId", "status", "limit", NULL};
	static const char *const st[] = {"offer_created", "offer_published", "offer_closed", NULL};
	char seller[MKT_ACTOR_MAX + 1];
	bool has_seller;
	const char *status = NULL;
	int64_t limit;
	json_t *arr;
	int r;
	if ((r = jp_only(p, NULL, keys, e)) < 0 || (r = mkt_jp_actor(p, NULL, "sellerId", 0, seller, &has_seller, e)) < 0 ||
	    (r = jp_enum(p, NULL, "status", 0, st, &status, e)) < 0 ||
	    (r = mkt_jp_limit(p, MKT_LIST_DEF, MKT_LIST_MAX, &limit, e)) < 0)
		return r;
	struct mkt_filter f[2];
	size_t nf = 0;
	if (has_seller)
		f[nf++] = (struct mkt_filter){"sellerId", "=", seller, 0};
	if (status)
		f[nf++] = (struct mkt_filter){"status", "=", status, 0};
	if ((r = mkt_list(m, T_OFFER, f, nf, limit, false, &arr, e)) < 0)
		return r;
	*res = json_pack("{s:o}", "offers", arr);
	return 0;
}

/* ---- resources ---- */

static bool unit_ok(const char *kind, const char *unit)
{
	if (strcmp(kind, "model") == 0)
		return strcmp(unit, "token") == 0 || strcmp(unit, "call") == 0;
	if (strcmp(kind, "search") == 0)
		return strcmp(unit, "query") == 0;
	return strcmp(unit, "gb_day") == 0 || strcmp(unit, "put") == 0 || strcmp(unit, "get") == 0;
}

static int parse_tags(json_t *res, json_t *dst, cg_err *e)
{
	json_t *tags = NULL;
	int r = jp_arr(res, "resource", "tags", JP_NULLABLE, MKT_TAGS_MAX, &tags, e);
	if (r < 0 || !tags)
		return r;
	size_t i, j;
	json_t *t;
	json_array_foreach(tags, i, t)
	{
		size_t n = json_string_length(t);
		if (!json_is_string(t) || n < 1 || n > MKT_TAG_MAX || strlen(json_string_value(t)) != n)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "resource.tags[%zu]: must be a string of 1..%d characters",
				       i, MKT_TAG_MAX);
		for (j = 0; j < i; j++)
			if (json_equal(t, json_array_get(tags, j)))
				return cg_fail(e, CG_E_INVALID_ARGUMENT, "resource.tags[%zu]: duplicate tag", i);
	}
	json_object_set(dst, "tags", tags);
	return 0;
}

static int parse_policy(json_t *res, json_t *dst, cg_err *e)
{
	static const char *const keys[] = {"maxConcurrent", "maxTokens", "maxBytes", "allowTools", "allowMime", NULL};
	json_t *pol = NULL, *out, *mime = NULL;
	int64_t v;
	bool b;
	int r = jp_obj(res, "resource", "policy", JP_NULLABLE, &pol, e);
	if (r < 0 || !pol)
		return r;
	if ((r = jp_only(pol, "resource.policy", keys, e)) < 0)
		return r;
	out = json_object();
	static const struct {
		const char *k;
		int64_t max;
	} ints[] = {{"maxConcurrent", 10000}, {"maxTokens", 100000000}, {"maxBytes", 1LL << 40}};
	for (size_t i = 0; i < 3; i++) {
		v = -1;
		if ((r = jp_int(pol, "resource.policy", ints[i].k, 0, 1, ints[i].max, &v, e)) < 0)
			goto fail;
		if (v > 0)
			mkt_set_i(out, ints[i].k, v);
	}
	if (json_object_get(pol, "allowTools")) {
		if ((r = jp_bool(pol, "resource.policy", "allowTools", 0, &b, e)) < 0)
			goto fail;
		json_object_set_new(out, "allowTools", json_boolean(b));
	}
	if ((r = jp_arr(pol, "resource.policy", "allowMime", 0, 32, &mime, e)) < 0)
		goto fail;
	if (mime) {
		size_t i;
		json_t *t;
		json_array_foreach(mime, i, t)
		{
			const char *s = json_string_value(t);
			if (!s || json_string_length(t) < 3 || json_string_length(t) > 100 || !strchr(s, '/') ||
			    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/+.-*") !=
				    json_string_length(t)) {
				r = cg_fail(e, CG_E_INVALID_ARGUMENT, "resource.policy.allowMime[%zu]: must be a MIME type", i);
				goto fail;
			}
		}
		json_object_set(out, "allowMime", mime);
	}
	json_object_set_new(dst, "policy", out);
	return 0;
fail:
	json_decref(out);
	return r;
}

static int parse_price(json_t *res, const char *kind, json_t *dst, cg_err *e)
{
	static const char *const keys[] = {"unit", "amount", "currency", "tokenAddress", NULL};
	static const char *const units[] = {"token", "call", "query", "gb_day", "put", "get", NULL};
	json_t *pr = NULL;
	const char *unit = NULL, *amount = NULL, *cur = NULL;
	int r;
	if ((r = jp_obj(res, "resource", "price", JP_REQUIRED, &pr, e)) < 0 ||
	    (r = jp_only(pr, "resource.price", keys, e)) < 0 ||
	    (r = jp_enum(pr, "resource.price", "unit", JP_REQUIRED, units, &unit, e)) < 0 ||
	    (r = jp_amount(pr, "resource.price", "amount", JP_REQUIRED, &amount, e)) < 0 ||
	    (r = jp_str(pr, "resource.price", "currency", JP_REQUIRED, 1, MKT_CURRENCY_MAX, &cur, e)) < 0)
		return r;
	if (!unit_ok(kind, unit))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "resource.price.unit: %s is not a unit of kind %s", unit, kind);
	json_t *out = json_pack("{s:s,s:s,s:s}", "unit", unit, "amount", amount, "currency", cur);
	if ((r = jp_token_address(pr, "resource.price", out, e)) < 0) {
		json_decref(out);
		return r;
	}
	json_object_set_new(dst, "price", out);
	return 0;
}

/* Fields that define a publication; equal on a re-publish means nothing to do (idempotent). */
static const char *const pub_fields[] = {"kind", "label", "description", "tags", "price", "policy", NULL};
static const char *const offer_fields[] = {"assetId", "assetType", "currency", "usageScope", "deliveryType",
					   "assetMeta", "price", "tokenAddress", NULL};

static bool same_fields(const json_t *a, const json_t *b, const char *const *f)
{
	for (int i = 0; f[i]; i++) {
		json_t *x = json_object_get(a, f[i]), *y = json_object_get(b, f[i]);
		if ((x == NULL) != (y == NULL) || (x && !json_equal(x, y)))
			return false;
	}
	return true;
}

int op_resource_publish(struct market *m, const char *actor, json_t *p, json_t **result, cg_err *e)
{
	static const char *const keys[] = {"actorId", "resource", NULL};
	static const char *const rkeys[] = {"resourceId", "kind", "label", "description", "tags", "price", "policy",
					    "offer", NULL};
	static const char *const okeys[] = {"assetId", "assetType", "currency", "usageScope", "deliveryType",
					    "assetMeta", NULL};
	json_t *res = NULL, *offin = NULL, *nr = json_object(), *no = json_object(), *old = NULL, *offer = NULL;
	const char *rid = NULL, *kind = NULL, *s = NULL;
	int r;
	if ((r = mkt_need_actor(actor, e)) < 0 || (r = jp_only(p, NULL, keys, e)) < 0 ||
	    (r = jp_obj(p, NULL, "resource", JP_REQUIRED, &res, e)) < 0 || (r = jp_only(res, "resource", rkeys, e)) < 0 ||
	    (r = mkt_jp_id(res, "resourceId", JP_NULLABLE, &rid, e)) < 0 ||
	    (r = jp_enum(res, "resource", "kind", JP_REQUIRED, kinds, &kind, e)) < 0)
		goto out;
	mkt_set_s(nr, "kind", kind);
	if ((r = jp_str(res, "resource", "label", JP_REQUIRED, 1, MKT_LABEL_MAX, &s, e)) < 0)
		goto out;
	mkt_set_s(nr, "label", s);
	s = NULL;
	if ((r = jp_str(res, "resource", "description", JP_NULLABLE, 0, MKT_DESC_MAX, &s, e)) < 0)
		goto out;
	if (s)
		mkt_set_s(nr, "description", s);
	if ((r = parse_tags(res, nr, e)) < 0 || (r = parse_price(res, kind, nr, e)) < 0 ||
	    (r = parse_policy(res, nr, e)) < 0 || (r = jp_obj(res, "resource", "offer", JP_REQUIRED, &offin, e)) < 0 ||
	    (r = jp_only(offin, "resource.offer", okeys, e)) < 0 ||
	    (r = parse_offer_fields(offin, "resource.offer", no, false, e)) < 0)
		goto out;
	json_t *price = json_object_get(nr, "price");
	if (strcmp(mkt_s(no, "currency"), mkt_s(price, "currency")) != 0) {
		r = cg_fail(e, CG_E_INVALID_ARGUMENT, "resource.offer.currency: must equal resource.price.currency");
		goto out;
	}
	mkt_set_s(no, "price", mkt_s(price, "amount"));
	if (json_object_get(price, "tokenAddress"))
		json_object_set(no, "tokenAddress", json_object_get(price, "tokenAddress"));

	if (rid && (r = mkt_get_opt(m, T_RESOURCE, rid, &old, e)) < 0)
		goto out;
	if (old) {
		if (!mkt_actor_eq(mkt_s(old, "providerActorId"), actor)) {
			r = cg_fail(e, CG_E_FORBIDDEN, "only the resource's provider may publish it");
			goto out;
		}
		if (strcmp(mkt_s(old, "kind"), kind) != 0) {
			r = cg_fail(e, CG_E_CONFLICT, "resource kind cannot change (was %s)", mkt_s(old, "kind"));
			goto out;
		}
		if ((r = mkt_get_opt(m, T_OFFER, mkt_s(old, "offerId"), &offer, e)) < 0)
			goto out;
	} else {
		struct mkt_filter f[] = {{"providerActorId", "=", actor, 0}};
		if (mkt_count(m, T_RESOURCE, f, 1) >= m->o.max_resources_per_provider) {
			r = cg_fail(e, CG_E_QUOTA_EXCEEDED, "provider has the maximum number of resources (%lld)",
				    (long long)m->o.max_resources_per_provider);
			goto out;
		}
	}
	if (old && offer && strcmp(mkt_s(old, "status"), "resource_published") == 0 &&
	    strcmp(mkt_s(offer, "status"), "offer_published") == 0 && same_fields(old, nr, pub_fields) &&
	    same_fields(offer, no, offer_fields)) {
		/* Same-state repeat: idempotent, nothing written. */
		*result = json_pack("{s:s,s:s,s:s,s:s,s:I}", "resourceId", rid, "offerId", mkt_s(offer, "offerId"),
				    "offerHash", mkt_s(offer, "offerHash"), "status", "resource_published", "version",
				    (json_int_t)mkt_i(old, "version"));
		r = 0;
		goto out;
	}

	int64_t now = mkt_now();
	if ((r = store_tx_begin(m->st, e)) < 0)
		goto out;
	/* Step 1: the offer (reuse an open one, else a new one), published. */
	if (offer && strcmp(mkt_s(offer, "status"), "offer_closed") != 0) {
		const char *k;
		json_t *v;
		json_object_del(offer, "assetMeta");
		json_object_del(offer, "tokenAddress");
		json_object_foreach(no, k, v) json_object_set(offer, k, v);
		if (strcmp(mkt_s(offer, "status"), "offer_created") == 0)
			mkt_set_s(offer, "status", "offer_published");
	} else {
		char oid[MKT_ID_MAX];
		mkt_new_id(oid, "off");
		json_decref(offer);
		offer = json_deep_copy(no);
		mkt_set_s(offer, "offerId", oid);
		mkt_set_s(offer, "sellerId", actor);
		mkt_set_s(offer, "status", "offer_created");
		mkt_set_i(offer, "createdAt", now);
		if ((r = fsm_offer("offer_created", "offer_published", e)) < 0)
			goto fail;
		mkt_set_s(offer, "status", "offer_published");
	}
	if ((r = offer_save(m, offer, "offer_published", actor, e)) < 0 ||
	    (r = store_fault(m->st, "resource.publish:offer", e)) < 0)
		goto fail;
	/* Step 2: the resource, version + 1. */
	const char *from = old ? mkt_s(old, "status") : "resource_draft";
	if ((r = fsm_resource(from, "resource_published", e)) < 0)
		goto fail;
	char nid[MKT_ID_MAX];
	if (!rid) {
		mkt_new_id(nid, "res");
		rid = nid;
	}
	mkt_set_s(nr, "resourceId", rid);
	mkt_set_s(nr, "status", "resource_published");
	mkt_set_s(nr, "providerActorId", actor);
	mkt_set_s(nr, "offerId", mkt_s(offer, "offerId"));
	mkt_set_s(nr, "offerHash", mkt_s(offer, "offerHash"));
	mkt_set_i(nr, "version", old ? mkt_i(old, "version") + 1 : 1);
	mkt_set_i(nr, "createdAt", old ? mkt_i(old, "createdAt") : now);
	mkt_set_i(nr, "updatedAt", now);
	if ((r = mkt_put(m, T_RESOURCE, nr, e)) < 0 || (r = store_fault(m->st, "resource.publish:resource", e)) < 0)
		goto fail;
	/* Step 3: the audit event. */
	if ((r = mkt_audit(m, "resource_published", rid, mkt_s(offer, "offerHash"), actor,
			   json_pack("{s:I,s:s}", "version", (json_int_t)mkt_i(nr, "version"), "offerId",
				     mkt_s(offer, "offerId")),
			   e)) < 0 ||
	    (r = store_fault(m->st, "resource.publish:audit", e)) < 0)
		goto fail;
	if ((r = store_tx_commit(m->st, e)) < 0)
		goto out;
	*result = json_pack("{s:s,s:s,s:s,s:s,s:I}", "resourceId", rid, "offerId", mkt_s(offer, "offerId"), "offerHash",
			    mkt_s(offer, "offerHash"), "status", "resource_published", "version",
			    (json_int_t)mkt_i(nr, "version"));
	goto out;
fail:
	store_tx_rollback(m->st);
out:
	json_decref(nr);
	json_decref(no);
	json_decref(old);
	json_decref(offer);
	return r;
}

int op_resource_unpublish(struct market *m, const char *actor, json_t *p, json_t **result, cg_err *e)
{
	static const char *const keys[] = {"actorId", "resourceId", NULL};
	const char *rid = NULL;
	json_t *res = NULL;
	int r;
	if ((r = mkt_need_actor(actor, e)) < 0 || (r = jp_only(p, NULL, keys, e)) < 0 ||
	    (r = mkt_jp_id(p, "resourceId", JP_REQUIRED, &rid, e)) < 0 || (r = mkt_get(m, T_RESOURCE, rid, &res, e)) < 0)
		return r;
	if (!mkt_actor_eq(mkt_s(res, "providerActorId"), actor)) {
		r = cg_fail(e, CG_E_FORBIDDEN, "only the resource's provider may unpublish it");
		goto out;
	}
	const char *from = mkt_s(res, "status");
	if ((r = fsm_resource(from, "resource_unpublished", e)) < 0)
		goto out;
	if (strcmp(from, "resource_unpublished") != 0) {
		mkt_set_s(res, "status", "resource_unpublished");
		mkt_set_i(res, "updatedAt", mkt_now());
		if ((r = store_tx_begin(m->st, e)) < 0)
			goto out;
		if ((r = mkt_put(m, T_RESOURCE, res, e)) < 0 ||
		    (r = mkt_audit(m, "resource_unpublished", rid, mkt_s(res, "offerHash"), actor, NULL, e)) < 0) {
			store_tx_rollback(m->st);
			goto out;
		}
		if ((r = store_tx_commit(m->st, e)) < 0)
			goto out;
	}
	*result = json_pack("{s:s,s:s}", "resourceId", rid, "status", "resource_unpublished");
out:
	json_decref(res);
	return r;
}

int op_resource_get(struct market *m, const char *actor, json_t *p, json_t **result, cg_err *e)
{
	static const char *const keys[] = {"actorId", "resourceId", NULL};
	const char *rid = NULL;
	json_t *res = NULL;
	int r;
	if ((r = jp_only(p, NULL, keys, e)) < 0 || (r = mkt_jp_id(p, "resourceId", JP_REQUIRED, &rid, e)) < 0 ||
	    (r = mkt_get_opt(m, T_RESOURCE, rid, &res, e)) < 0)
		return r;
	*result = json_pack("{s:o}", "resource", res ? res : json_null());
	return 0;
}

int op_resource_list(struct market *m, const char *actor, json_t *p, json_t **result, cg_err *e)
{
	static const char *const keys[] = {"actorId", "kind", "providerActorId", "status", "tag", "limit", NULL};
	static const char *const st[] = {"resource_draft", "resource_published", "resource_unpublished", NULL};
	const char *kind = NULL, *status = NULL, *tag = NULL;
	char prov[MKT_ACTOR_MAX + 1];
	bool has_prov;
	int64_t limit;
	json_t *arr;
	int r;
	if ((r = jp_only(p, NULL, keys, e)) < 0 || (r = jp_enum(p, NULL, "kind", 0, kinds, &kind, e)) < 0 ||
	    (r = mkt_jp_actor(p, NULL, "providerActorId", 0, prov, &has_prov, e)) < 0 ||
	    (r = jp_enum(p, NULL, "status", 0, st, &status, e)) < 0 ||
	    (r = jp_str(p, NULL, "tag", 0, 1, MKT_TAG_MAX, &tag, e)) < 0 ||
	    (r = mkt_jp_limit(p, MKT_LIST_DEF, MKT_LIST_MAX, &limit, e)) < 0)
		return r;
	struct mkt_filter f[4];
	size_t nf = 0;
	if (kind)
		f[nf++] = (struct mkt_filter){"kind", "=", kind, 0};
	if (has_prov)
		f[nf++] = (struct mkt_filter){"providerActorId", "=", prov, 0};
	if (status)
		f[nf++] = (struct mkt_filter){"status", "=", status, 0};
	if (tag)
		f[nf++] = (struct mkt_filter){"tags", "has", tag, 0};
	if ((r = mkt_list(m, T_RESOURCE, f, nf, limit, false, &arr, e)) < 0)
		return r;
	*result = json_pack("{s:o}", "resources", arr);
	return 0;
}
