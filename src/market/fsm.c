/* The state machines of seed-digest §2 "Transitions", as tables. Same-state repeats are allowed only for
 * resources and leases (the callers make them no-ops); any other move not listed is E_CONFLICT. */
#define MKT_INTERNAL
#include "market/mkt.h"

#include <string.h>

struct edge {
	const char *from, *to;
};

static int check(const struct edge *t, const char *entity, const char *from, const char *to, bool same_ok,
		 cg_err *e)
{
	if (same_ok && strcmp(from, to) == 0)
		return 0;
	for (; t->from; t++)
		if (strcmp(t->from, from) == 0 && strcmp(t->to, to) == 0)
			return 0;
	return mkt_conflict(e, entity, from, to);
}

static const struct edge offer_t[] = {
	{"offer_created", "offer_published"},
	{"offer_created", "offer_closed"},
	{"offer_published", "offer_closed"},
	{NULL, NULL},
};

static const struct edge order_t[] = {
	{"order_created", "payment_locked"},
	{"order_created", "order_cancelled"},
	{"payment_locked", "consent_granted"},
	{"payment_locked", "settlement_cancelled"},
	{"consent_granted", "delivery_ready"},
	{"consent_granted", "consent_revoked"},
	{"delivery_ready", "delivery_completed"},
	{"delivery_ready", "consent_revoked"},
	{"delivery_completed", "settlement_completed"},
	{"consent_revoked", "settlement_cancelled"},
	{NULL, NULL},
};

static const struct edge delivery_t[] = {
	{"delivery_ready", "delivery_completed"},
	{"delivery_ready", "delivery_revoked"},
	{NULL, NULL},
};

static const struct edge settlement_t[] = {
	{"settlement_locked", "settlement_released"},
	{"settlement_locked", "settlement_refunded"},
	{NULL, NULL},
};

/* unpublished -> published is the re-publish of seed §2 ("no return unless re-published with version+1"):
 * resource.publish is the only caller that takes it, and it always bumps the version. */
static const struct edge resource_t[] = {
	{"resource_draft", "resource_published"},
	{"resource_published", "resource_unpublished"},
	{"resource_unpublished", "resource_published"},
	{NULL, NULL},
};

static const struct edge lease_t[] = {
	{"lease_active", "lease_revoked"},
	{"lease_active", "lease_expired"},
	{NULL, NULL},
};

static const struct edge dispute_t[] = {
	{"dispute_opened", "dispute_evidence_submitted"},
	{"dispute_opened", "dispute_resolved"},
	{"dispute_opened", "dispute_rejected"},
	{"dispute_evidence_submitted", "dispute_resolved"},
	{"dispute_evidence_submitted", "dispute_rejected"},
	{NULL, NULL},
};

static const struct edge consent_t[] = {
	{"consent_granted", "consent_revoked"},
	{NULL, NULL},
};

int fsm_offer(const char *from, const char *to, cg_err *e)
{
	return check(offer_t, "offer", from, to, false, e);
}

int fsm_order(const char *from, const char *to, cg_err *e)
{
	return check(order_t, "order", from, to, false, e);
}

int fsm_delivery(const char *from, const char *to, cg_err *e)
{
	return check(delivery_t, "delivery", from, to, false, e);
}

int fsm_settlement(const char *from, const char *to, cg_err *e)
{
	return check(settlement_t, "settlement", from, to, false, e);
}

int fsm_resource(const char *from, const char *to, cg_err *e)
{
	return check(resource_t, "resource", from, to, true, e);
}

int fsm_lease(const char *from, const char *to, cg_err *e)
{
	return check(lease_t, "lease", from, to, true, e);
}

int fsm_dispute(const char *from, const char *to, cg_err *e)
{
	return check(dispute_t, "dispute", from, to, false, e);
}

int fsm_consent(const char *from, const char *to, cg_err *e)
{
	return check(consent_t, "consent", from, to, false, e);
}

int mkt_order_to(json_t *order, const char *to, cg_err *e)
{
	int r = fsm_order(mkt_s(order, "status"), to, e);
	if (r < 0)
		return r;
	mkt_set_s(order, "status", to);
	mkt_set_i(order, "updatedAt", mkt_now());
	return mkt_rehash(order, "orderHash", e);
}
