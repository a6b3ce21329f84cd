/* Disputes: the record, its state machine (opened -> evidence_submitted -> resolved | rejected) and
 * evidence. An open dispute freezes the order's settlement; resolve drives it (release, refund, or a
 * partial release with the rest refunded) in the same transaction. The arbitrator is any actor that is not a
 * party (the platform arbitrator is the node operator); the arbitration engine comes later. */
#define MKT_INTERNAL
#include "market/mkt.h"

#include <stdio.h>
#include <string.h>

#include "base/amount.h"
#include "base/log.h"

static const char *const terminal[] = {"settlement_completed", "order_cancelled", "settlement_cancelled", NULL};

static bool party(const json_t *d, const char *actor)
{
	return mkt_actor_eq(mkt_s(d, "initiatorActorId"), actor) || mkt_actor_eq(mkt_s(d, "respondentActorId"), actor);
}

static int save(struct market *m, json_t *d, const char *kind, const char *actor, json_t *details, cg_err *e)
{
	mkt_set_i(d, "updatedAt", mkt_now());
	int r = mkt_rehash(d, "disputeHash", e);
	if (r < 0) {
		json_decref(details);
		return r;
	}
	if ((r = mkt_put(m, T_DISPUTE, d, e)) < 0) {
		json_decref(details);
		return r;
	}
	return mkt_audit(m, kind, mkt_s(d, "disputeId"), mkt_s(d, "disputeHash"), actor, details, e);
}

static json_t *result_of(const json_t *d)
{
	return json_pack("{s:s,s:s,s:s}", "disputeId", mkt_s(d, "disputeId"), "status", mkt_s(d, "status"),
			 "disputeHash", mkt_s(d, "disputeHash"));
}

int op_dispute_open(struct market *m, const char *actor, json_t *p, json_t **res, cg_err *e)
{
	static const char *const keys[] = {"actorId", "orderId", "reason", "arbitratorType", NULL};
	static const char *const arb[] = {"platform", "community", "onchain", NULL};
	const char *oid = NULL, *reason = NULL, *type = "platform";
	json_t *order = NULL, *open = NULL, *d = NULL;
	int r;
	if ((r = mkt_need_actor(actor, e)) < 0 || (r = jp_only(p, NULL, keys, e)) < 0 ||
	    (r = mkt_jp_id(p, "orderId", JP_REQUIRED, &oid, e)) < 0 ||
	    (r = jp_str(p, NULL, "reason", JP_REQUIRED, 1, MKT_REASON_MAX, &reason, e)) < 0 ||
	    (r = jp_enum(p, NULL, "arbitratorType", 0, arb, &type, e)) < 0 || (r = mkt_get(m, T_ORDER, oid, &order, e)) < 0)
		return r;
	const char *buyer = mkt_s(order, "buyerId"), *seller = mkt_s(order, "sellerId");
	if (!mkt_actor_eq(buyer, actor) && !mkt_actor_eq(seller, actor)) {
		r = cg_fail(e, CG_E_FORBIDDEN, "only the order's buyer or seller may open a dispute");
		goto out;
	}
	for (int i = 0; terminal[i]; i++)
		if (strcmp(mkt_s(order, "status"), terminal[i]) == 0) {
			r = cg_fail(e, CG_E_CONFLICT, "order is %s: too late to dispute", terminal[i]);
			goto out;
		}
	if ((r = mkt_dispute_open_for(m, oid, &open, e)) < 0)
		goto out;
	if (open) {
		r = cg_fail(e, CG_E_CONFLICT, "order already has an open dispute");
		goto out;
	}
	char id[MKT_ID_MAX];
	mkt_new_id(id, "dsp");
	int64_t now = mkt_now();
	d = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:[],s:I}", "disputeId", id, "orderId", oid, "initiatorActorId", actor,
		      "respondentActorId", mkt_actor_eq(buyer, actor) ? seller : buyer, "arbitratorType", type, "reason",
		      reason, "status", "dispute_opened", "evidence", "openedAt", (json_int_t)now);
	if ((r = store_tx_begin(m->st, e)) < 0)
		goto out;
	if ((r = save(m, d, "dispute_opened", actor, json_pack("{s:s}", "orderId", oid), e)) < 0) {
		store_tx_rollback(m->st);
		goto out;
	}
	if ((r = store_tx_commit(m->st, e)) < 0)
		goto out;
	*res = result_of(d);
out:
	json_decref(order);
	json_decref(open);
	json_decref(d);
	return r;
}

static int load(struct market *m, json_t *p, const char *const *keys, json_t **d, cg_err *e)
{
	const char *id = NULL;
	int r;
	if ((r = jp_only(p, NULL, keys, e)) < 0 || (r = mkt_jp_id(p, "disputeId", JP_REQUIRED, &id, e)) < 0)
		return r;
	return mkt_get(m, T_DISPUTE, id, d, e);
}

static bool valid_hash(const char *h)
{
	const char *hex = NULL;
	if (strncmp(h, "sha256:", 7) == 0)
		hex = h + 7;
	else if (strncmp(h, "0x", 2) == 0)
		hex = h + 2;
	return hex && strlen(hex) == 64 && strspn(hex, "0123456789abcdefABCDEF") == 64;
}

int op_dispute_evidence(struct market *m, const char *actor, json_t *p, json_t **res, cg_err *e)
{
	static const char *const keys[] = {"actorId", "disputeId", "summary", "hash", "cid", NULL};
	const char *summary = NULL, *hash = NULL, *cid = NULL;
	json_t *d = NULL;
	int r;
	if ((r = mkt_need_actor(actor, e)) < 0)
		return r;
	if ((r = jp_str(p, NULL, "summary", JP_REQUIRED, 1, MKT_DESC_MAX, &summary, e)) < 0 ||
	    (r = jp_str(p, NULL, "hash", JP_REQUIRED, 1, 80, &hash, e)) < 0 ||
	    (r = jp_str(p, NULL, "cid", 0, 1, 128, &cid, e)) < 0)
		return r;
	if (!valid_hash(hash))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "hash: must be sha256:<64 hex> or 0x<64 hex>");
	if ((r = load(m, p, keys, &d, e)) < 0)
		return r;
	if (!party(d, actor)) {
		r = cg_fail(e, CG_E_FORBIDDEN, "only a party of the dispute may submit evidence");
		goto out;
	}
	const char *st = mkt_s(d, "status");
	/* More evidence on evidence_submitted keeps the state (a same-state repeat). */
	if (strcmp(st, "dispute_evidence_submitted") != 0 && (r = fsm_dispute(st, "dispute_evidence_submitted", e)) < 0)
		goto out;
	json_t *ev = json_object_get(d, "evidence");
	if ((int64_t)json_array_size(ev) >= m->o.max_evidence) {
		r = cg_fail(e, CG_E_QUOTA_EXCEEDED, "dispute has the maximum of %lld evidence items",
			    (long long)m->o.max_evidence);
		goto out;
	}
	char eid[MKT_ID_MAX];
	mkt_new_id(eid, "evd");
	json_t *item = json_pack("{s:s,s:s,s:s,s:s,s:I}", "evidenceId", eid, "summary", summary, "hash", hash,
				 "submittedBy", actor, "submittedAt", (json_int_t)mkt_now());
	if (cid)
		mkt_set_s(item, "cid", cid);
	json_array_append_new(ev, item);
	mkt_set_s(d, "status", "dispute_evidence_submitted");
	if ((r = store_tx_begin(m->st, e)) < 0)
		goto out;
	if ((r = save(m, d, "dispute_evidence_submitted", actor, json_pack("{s:s,s:s}", "evidenceId", eid, "hash", hash),
		      e)) < 0) {
		store_tx_rollback(m->st);
		goto out;
	}
	if ((r = store_tx_commit(m->st, e)) < 0)
		goto out;
	*res = result_of(d);
	json_object_set_new(*res, "evidenceId", json_string(eid));
out:
	json_decref(d);
	return r;
}

int op_dispute_resolve(struct market *m, const char *actor, json_t *p, json_t **res, cg_err *e)
{
	static const char *const keys[] = {"actorId", "disputeId", "resolution", "amount", "reason", NULL};
	static const char *const resolutions[] = {"release", "refund", "partial", NULL};
	const char *how = NULL, *amount = NULL, *reason = NULL;
	json_t *d = NULL, *payees = NULL, *sres = NULL, *revoked = json_array(), *order = NULL;
	int r;
	if ((r = mkt_need_actor(actor, e)) < 0 ||
	    (r = jp_enum(p, NULL, "resolution", JP_REQUIRED, resolutions, &how, e)) < 0 ||
	    (r = jp_amount(p, NULL, "amount", 0, &amount, e)) < 0 ||
	    (r = jp_str(p, NULL, "reason", 0, 0, MKT_REASON_MAX, &reason, e)) < 0)
		goto out;
	bool partial = strcmp(how, "partial") == 0;
	if (partial != (amount != NULL)) {
		r = cg_fail(e, CG_E_INVALID_ARGUMENT, "amount: required for a partial resolution, and only for it");
		goto out;
	}
	if ((r = load(m, p, keys, &d, e)) < 0)
		goto out;
	if (party(d, actor)) {
		r = cg_fail(e, CG_E_FORBIDDEN, "a party cannot resolve its own dispute");
		goto out;
	}
	if ((r = fsm_dispute(mkt_s(d, "status"), "dispute_resolved", e)) < 0 ||
	    (r = mkt_get(m, T_ORDER, mkt_s(d, "orderId"), &order, e)) < 0)
		goto out;
	const char *oid = mkt_s(d, "orderId");
	if ((r = store_tx_begin(m->st, e)) < 0)
		goto out;
	if (strcmp(how, "refund") == 0) {
		r = mkt_settle_refund_tx(m, oid, actor, true, revoked, &sres, e);
	} else {
		if (partial)
			payees = json_pack("[{s:s,s:s}]", "address", mkt_s(order, "sellerId"), "amount", amount);
		r = mkt_settle_release_tx(m, oid, payees, actor, true, &sres, e);
	}
	if (r < 0 || (r = store_fault(m->st, "dispute.resolve:settlement", e)) < 0)
		goto fail;
	mkt_set_s(d, "status", "dispute_resolved");
	mkt_set_s(d, "resolution", how);
	mkt_set_s(d, "resolvedBy", actor);
	mkt_set_i(d, "resolvedAt", mkt_now());
	if (amount)
		mkt_set_s(d, "releasedAmount", amount);
	if (reason)
		mkt_set_s(d, "resolutionReason", reason);
	if ((r = save(m, d, "dispute_resolved", actor, json_pack("{s:s,s:s}", "resolution", how, "orderId", oid), e)) < 0 ||
	    (r = store_fault(m->st, "dispute.resolve:dispute", e)) < 0)
		goto fail;
	if ((r = store_tx_commit(m->st, e)) < 0)
		goto out;
	mkt_lease_notify_all(m, revoked);
	*res = result_of(d);
	json_object_set_new(*res, "resolution", json_string(how));
	json_object_set(*res, "settlement", sres);
	goto out;
fail:
	store_tx_rollback(m->st);
	if (mkt_transient(e))
		mkt_repair_record(m, "market.dispute.resolve", actor, p, e);
out:
	json_decref(d);
	json_decref(payees);
	json_decref(sres);
	json_decref(revoked);
	json_decref(order);
	return r;
}

int op_dispute_reject(struct market *m, const char *actor, json_t *p, json_t **res, cg_err *e)
{
	static const char *const keys[] = {"actorId", "disputeId", "reason", NULL};
	const char *reason = NULL;
	json_t *d = NULL;
	int r;
	if ((r = mkt_need_actor(actor, e)) < 0 || (r = jp_str(p, NULL, "reason", 0, 0, MKT_REASON_MAX, &reason, e)) < 0 ||
	    (r = load(m, p, keys, &d, e)) < 0)
		return r;
	if (party(d, actor)) {
		r = cg_fail(e, CG_E_FORBIDDEN, "a party cannot reject its own dispute");
		goto out;
	}
	if ((r = fsm_dispute(mkt_s(d, "status"), "dispute_rejected", e)) < 0)
		goto out;
	mkt_set_s(d, "status", "dispute_rejected");
	mkt_set_s(d, "resolvedBy", actor);
	mkt_set_i(d, "resolvedAt", mkt_now());
	if (reason)
		mkt_set_s(d, "rejectReason", reason);
	if ((r = store_tx_begin(m->st, e)) < 0)
		goto out;
	if ((r = save(m, d, "dispute_rejected", actor, NULL, e)) < 0) {
		store_tx_rollback(m->st);
		goto out;
	}
	if ((r = store_tx_commit(m->st, e)) < 0)
		goto out;
	*res = result_of(d);
out:
	json_decref(d);
	return r;
}

int op_dispute_get(struct market *m, const char *actor, json_t *p, json_t **res, cg_err *e)
{
	static const char *const keys[] = {"actorId", "disputeId", NULL};
	const char *id = NULL;
	json_t *d = NULL;
	int r;
	if ((r = jp_only(p, NULL, keys, e)) < 0 || (r = mkt_jp_id(p, "disputeId", JP_REQUIRED, &id, e)) < 0 ||
	    (r = mkt_get_opt(m, T_DISPUTE, id, &d, e)) < 0)
		return r;
	*res = json_pack("{s:o}", "dispute", d ? d : json_null());
	return 0;
}

int op_dispute_list(struct market *m, const char *actor, json_t *p, json_t **res, cg_err *e)
{
	static const char *const keys[] = {"actorId", "orderId", "status", "initiatorActorId", "limit", NULL};
	static const char *const st[] = {"dispute_opened", "dispute_evidence_submitted", "dispute_resolved",
					 "dispute_rejected", NULL};
	const char *oid = NULL, *status = NULL;
	char ini[MKT_ACTOR_MAX + 1];
	bool has_ini;
	int64_t limit;
	json_t *arr;
	int r;
	if ((r = jp_only(p, NULL, keys, e)) < 0 || (r = mkt_jp_id(p, "orderId", 0, &oid, e)) < 0 ||
	    (r = jp_enum(p, NULL, "status", 0, st, &status, e)) < 0 ||
	    (r = mkt_jp_actor(p, NULL, "initiatorActorId", 0, ini, &has_ini, e)) < 0 ||
	    (r = mkt_jp_limit(p, MKT_LIST_DEF, MKT_LIST_MAX, &limit, e)) < 0)
		return r;
	struct mkt_filter f[3];
	size_t nf = 0;
	if (oid)
		f[nf++] = (struct mkt_filter){"orderId", "=", oid, 0};
	if (status)
		f[nf++] = (struct mkt_filter){"status", "=", status, 0};
	if (has_ini)
		f[nf++] = (struct mkt_filter){"initiatorActorId", "=", ini, 0};
	if ((r = mkt_list(m, T_DISPUTE, f, nf, limit, false, &arr, e)) < 0)
		return r;
	*res = json_pack("{s:o}", "disputes", arr);
	return 0;
}
