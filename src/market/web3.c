/* web3.resources.*: the orchestration methods a node uses for itself. Every call acts as the node's own
 * actor (its wallet's EIP-55 address) and goes through the same market operations as market.*.
 *
 * web3.resources.lease leases a resource known to this node's market for a consumer (by default this node).
 * For a resource on another node, src/node/mod_consumer.c wraps this method (rpc_override) and asks the
 * remote provider instead, keeping that lease's token inside the node. */
#define MKT_INTERNAL
#include "market/mkt.h"

#include <string.h>

#include <sodium.h>

static int need_self(struct market *m, cg_err *e)
{
	if (!*m->self)
		return cg_fail(e, CG_E_UNAVAILABLE, "this node has no wallet address to act as");
	return 0;
}

/* web3.* act as this node; an actorId, when a caller sends one (the seed's gateway envelope carries it),
 * must name this node. The RPC layer has already normalized it into `actor`. */
static int self_only(struct market *m, const char *actor, cg_err *e)
{
	int r = need_self(m, e);
	if (r == 0 && actor && !mkt_actor_eq(actor, m->self))
		r = cg_fail(e, CG_E_FORBIDDEN, "actorId: web3.resources.* act as this node (%s)", m->self);
	return r;
}

/* Copies the listed keys of src into a new params object with actorId = self. */
static json_t *with_self(struct market *m, json_t *src, const char *const *keys)
{
	json_t *p = json_object();
	for (int i = 0; keys[i]; i++) {
		json_t *v = json_object_get(src, keys[i]);
		if (v)
			json_object_set(p, keys[i], v);
	}
	json_object_set_new(p, "actorId", json_string(m->self));
	return p;
}

static int call_as_self(struct market *m, const char *actor, mkt_op fn, json_t *src, const char *const *keys,
			json_t **res, cg_err *e)
{
	int r;
	if ((r = jp_only(src, NULL, keys, e)) < 0 || (r = self_only(m, actor, e)) < 0)
		return r;
	json_t *p = with_self(m, src, keys);
	r = fn(m, m->self, p, res, e);
	json_decref(p);
	return r;
}

int op_w3_publish(struct market *m, const char *actor, json_t *p, json_t **res, cg_err *e)
{
	static const char *const keys[] = {"actorId", "resource", NULL};
	return call_as_self(m, actor, op_resource_publish, p, keys, res, e);
}

int op_w3_unpublish(struct market *m, const char *actor, json_t *p, json_t **res, cg_err *e)
{
	static const char *const keys[] = {"actorId", "resourceId", NULL};
	return call_as_self(m, actor, op_resource_unpublish, p, keys, res, e);
}

int op_w3_list(struct market *m, const char *actor, json_t *p, json_t **res, cg_err *e)
{
	static const char *const keys[] = {"actorId", "kind", "status", "tag", "limit", NULL};
	int r;
	if ((r = jp_only(p, NULL, keys, e)) < 0 || (r = self_only(m, actor, e)) < 0)
		return r;
	json_t *q = with_self(m, p, keys);
	json_object_del(q, "actorId");
	json_object_set_new(q, "providerActorId", json_string(m->self));
	r = op_resource_list(m, NULL, q, res, e);
	json_decref(q);
	return r;
}

/* Issues the lease as the consumer asking for it (market.lease.issue with actorId = consumerActorId). */
static int lease_for(struct market *m, const char *consumer, json_t *p, json_t **res, cg_err *e)
{
	json_t *q = json_pack("{s:s,s:s}", "actorId", consumer, "consumerActorId", consumer);
	static const char *const pass[] = {"resourceId", "ttlMs", "maxCost", NULL};
	for (int i = 0; pass[i]; i++) {
		json_t *v = json_object_get(p, pass[i]);
		if (v)
			json_object_set(q, pass[i], v);
	}
	int r = op_lease_issue(m, consumer, q, res, e);
	json_decref(q);
	return r;
}

int op_w3_lease(struct market *m, const char *actor, json_t *p, json_t **res, cg_err *e)
{
	static const char *const keys[] = {"actorId", "resourceId", "consumerActorId", "ttlMs", "maxCost",
					   "sessionKey", NULL};
	char consumer[MKT_ACTOR_MAX + 1];
	bool has_consumer;
	const char *session = NULL;
	int r;
	if ((r = jp_only(p, NULL, keys, e)) < 0 || (r = self_only(m, actor, e)) < 0 ||
	    (r = mkt_jp_actor(p, NULL, "consumerActorId", JP_NULLABLE, consumer, &has_consumer, e)) < 0 ||
	    (r = jp_str(p, NULL, "sessionKey", 0, 1, MKT_SESSION_MAX, &session, e)) < 0)
		return r;
	/* The node's owner is the gateway of seed §1.4: it leases for the consumer the session is bound to,
	 * by default this node's own wallet. */
	const char *who = has_consumer ? consumer : m->self;
	json_t *lease = NULL;
	if ((r = lease_for(m, who, p, &lease, e)) < 0)
		return r;
	/* Pre-pay: with a maxCost the lease's order goes on the pending settlement queue (payer = the consumer),
	 * locked by the next flush; the session only keeps a hash of its key. */
	bool queued = false;
	const char *max_cost = json_string_value(json_object_get(p, "maxCost"));
	if (max_cost && strcmp(max_cost, "0") != 0) {
		json_t *qp = json_pack("{s:s,s:s,s:s}", "orderId", mkt_s(lease, "orderId"), "payer", who, "amount",
				       max_cost);
		if (session)
			mkt_set_s(qp, "sessionId", session);
		json_t *qr = NULL;
		cg_err qe;
		queued = op_settle_queue(m, who, qp, &qr, &qe) == 0;
		json_decref(qp);
		json_decref(qr);
	}
	*res = json_pack("{s:s,s:s,s:s,s:s,s:O,s:s,s:b}", "leaseId", mkt_s(lease, "leaseId"), "orderId",
			 mkt_s(lease, "orderId"), "consentId", mkt_s(lease, "consentId"), "deliveryId",
			 mkt_s(lease, "deliveryId"), "expiresAt", json_object_get(lease, "expiresAt"), "accessToken",
			 mkt_s(lease, "accessToken"), "settlementQueued", queued);
	/* The token lives on only in the result. */
	json_t *tok = json_object_get(lease, "accessToken");
	if (json_is_string(tok))
		sodium_memzero((char *)json_string_value(tok), json_string_length(tok));
	json_decref(lease);
	return 0;
}

int op_w3_revoke(struct market *m, const char *actor, json_t *p, json_t **res, cg_err *e)
{
	static const char *const keys[] = {"actorId", "leaseId", "reason", NULL};
	return call_as_self(m, actor, op_lease_revoke, p, keys, res, e);
}

int op_w3_status(struct market *m, const char *actor, json_t *p, json_t **res, cg_err *e)
{
	static const char *const keys[] = {"actorId", NULL};
	int r;
	if ((r = jp_only(p, NULL, keys, e)) < 0 || (actor && (r = self_only(m, actor, e)) < 0))
		return r;
	return market_status(m, res, e);
}
