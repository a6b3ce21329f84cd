/* The seed's E2E matrix in-process: RES-01, RES-02, LEASE-01..03, plus the state machines of resources,
 * offers, leases, the expire sweep and market_lease_authorize. */
#include "fixture.h"

#include "crypto/jcs.h"

/* RES-01: publish creates and publishes an offer, writes the resource with version 1; same input again is
 * idempotent; a change bumps the version. */
static void t_res01_publish(void **s)
{
	(void)s;
	struct fx f;
	fx_open(&f);
	json_t *r = OK(&f, "market.resource.publish", res_params(PROV, NULL, "Llama 3 8B", "2"));
	assert_string_equal(S(r, "status"), "resource_published");
	assert_int_equal(json_integer_value(json_object_get(r, "version")), 1);
	char rid[64], oh[80];
	snprintf(rid, sizeof rid, "%s", S(r, "resourceId"));
	snprintf(oh, sizeof oh, "%s", S(r, "offerHash"));
	assert_true(strncmp(oh, "sha256:", 7) == 0);
	json_decref(r);

	json_t *g = OK(&f, "market.resource.get", json_pack("{s:s}", "resourceId", rid));
	json_t *res = json_object_get(g, "resource");
	assert_string_equal(S(res, "status"), "resource_published");
	assert_string_equal(S(res, "providerActorId"), PROV);
	assert_string_equal(S(json_object_get(res, "price"), "amount"), "2");
	json_t *o = OK(&f, "market.offer.get", json_pack("{s:s}", "offerId", S(res, "offerId")));
	assert_string_equal(S(json_object_get(o, "offer"), "status"), "offer_published");
	/* offerHash is recomputable: JCS of the offer without its hash. */
	json_t *offer = json_deep_copy(json_object_get(o, "offer"));
	json_object_del(offer, "offerHash");
	char h[72];
	cg_err e;
	assert_int_equal(jcs_sha256(offer, h, &e), 0);
	assert_string_equal(h, oh);
	json_decref(offer);
	json_decref(o);
	json_decref(g);

	/* Same publication again: idempotent, version stays 1. */
	char d1[72], d2[72];
	fx_digest(&f, d1);
	r = OK(&f, "market.resource.publish", res_params(PROV, rid, "Llama 3 8B", "2"));
	assert_int_equal(json_integer_value(json_object_get(r, "version")), 1);
	json_decref(r);
	fx_digest(&f, d2);
	assert_string_equal(d1, d2);
	/* A change: version 2. */
	r = OK(&f, "market.resource.publish", res_params(PROV, rid, "Llama 3 8B v2", "3"));
	assert_int_equal(json_integer_value(json_object_get(r, "version")), 2);
	json_decref(r);
	/* Someone else cannot republish it. */
	ERR(&f, CG_E_FORBIDDEN, "market.resource.publish", res_params(THIRD, rid, "x", "1"));
	/* Lists and filters. */
	json_t *l = OK(&f, "market.resource.list", json_pack("{s:s,s:s}", "tag", "llm", "kind", "model"));
	assert_int_equal(json_array_size(json_object_get(l, "resources")), 1);
	json_decref(l);
	l = OK(&f, "market.resource.list", json_pack("{s:s}", "tag", "nope"));
	assert_int_equal(json_array_size(json_object_get(l, "resources")), 0);
	json_decref(l);
	/* Audit trail has the publication. */
	json_t *a = OK(&f, "market.audit.query", json_pack("{s:s,s:s}", "kind", "resource_published", "refId", rid));
	assert_int_equal(json_array_size(json_object_get(a, "events")), 2);
	json_decref(a);
	fx_close(&f);
}

/* RES-02: unpublish, then issue is rejected; unpublish again is idempotent; re-publish bumps the version. */
static void t_res02_unpublish(void **s)
{
	(void)s;
	struct fx f;
	fx_open(&f);
	char rid[64];
	publish(&f, rid);
	json_t *lease = issue(&f, rid, NULL);
	ERR(&f, CG_E_FORBIDDEN, "market.resource.unpublish", json_pack("{s:s,s:s}", "actorId", CONS, "resourceId", rid));
	json_t *r = OK(&f, "market.resource.unpublish", json_pack("{s:s,s:s}", "actorId", PROV, "resourceId", rid));
	assert_string_equal(S(r, "status"), "resource_unpublished");
	json_decref(r);
	json_decref(OK(&f, "market.resource.unpublish", json_pack("{s:s,s:s}", "actorId", PROV, "resourceId", rid)));
	ERR(&f, CG_E_CONFLICT, "market.lease.issue",
	    json_pack("{s:s,s:s,s:s,s:i}", "actorId", CONS, "resourceId", rid, "consumerActorId", CONS, "ttlMs", 60000));
	/* The existing lease no longer authorizes (strong-consistency reject) and cannot write the ledger. */
	cg_err e;
	assert_int_equal(market_lease_authorize(f.m, S(lease, "leaseId"), S(lease, "accessToken"), NULL, &e),
			 -CG_E_FORBIDDEN);
	ERR(&f, CG_E_CONFLICT, "market.ledger.append", entry_params(PROV, lease, rid, "10", "20"));
	r = OK(&f, "market.resource.publish", res_params(PROV, rid, "Llama 3 8B", "2"));
	assert_int_equal(json_integer_value(json_object_get(r, "version")), 2);
	json_decref(r);
	assert_int_equal(market_lease_authorize(f.m, S(lease, "leaseId"), S(lease, "accessToken"), NULL, &e), 0);
	json_decref(lease);
	fx_close(&f);
}

/* LEASE-01: the full order/consent/delivery/lease chain; the token is returned once, never stored. */
static void t_lease01_chain(void **s)
{
	(void)s;
	struct fx f;
	fx_open(&f);
	char rid[64];
	publish(&f, rid);
	/* Only the consumer may ask for its lease. */
	ERR(&f, CG_E_FORBIDDEN, "market.lease.issue",
	    json_pack("{s:s,s:s,s:s,s:i}", "actorId", THIRD, "resourceId", rid, "consumerActorId", CONS, "ttlMs", 60000));
	json_t *l = issue(&f, rid, NULL);
	const char *tok = S(l, "accessToken");
	assert_int_equal(strncmp(tok, "tok_", 4), 0);
	assert_int_equal(strlen(tok), 4 + 43);
	json_t *o = OK(&f, "market.order.get", json_pack("{s:s}", "orderId", S(l, "orderId")));
	assert_string_equal(S(json_object_get(o, "order"), "status"), "delivery_ready");
	json_decref(o);
	o = OK(&f, "market.consent.get", json_pack("{s:s}", "consentId", S(l, "consentId")));
	assert_string_equal(S(json_object_get(o, "consent"), "status"), "consent_granted");
	json_decref(o);
	o = OK(&f, "market.delivery.get", json_pack("{s:s}", "deliveryId", S(l, "deliveryId")));
	assert_string_equal(S(json_object_get(o, "delivery"), "status"), "delivery_ready");
	json_decref(o);
	/* The stored hash is sha256 of the token; the plaintext is nowhere in the database file. */
	char th[72];
	sha256_tagged_hex(th, tok, strlen(tok));
	json_t *g = OK(&f, "market.lease.get", json_pack("{s:s,s:s}", "actorId", CONS, "leaseId", S(l, "leaseId")));
	assert_string_equal(S(json_object_get(g, "lease"), "accessTokenHash"), th);
	assert_string_equal(S(json_object_get(g, "lease"), "status"), "lease_active");
	json_decref(g);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(store_db(f.st),
					    "SELECT count(*) FROM (SELECT data FROM mkt_leases UNION ALL SELECT data FROM "
					    "mkt_audit UNION ALL SELECT data FROM mkt_orders UNION ALL SELECT data FROM "
					    "mkt_deliveries) WHERE instr(data, ?) > 0",
					    -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_text(st, 1, tok + 4, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 0);
	sqlite3_finalize(st);
	/* Lookup by token hash works (seed SPEC auth path). */
	json_t *byhash = NULL;
	cg_err e;
	assert_int_equal(market_lease_authorize(f.m, NULL, tok, &byhash, &e), 0);
	assert_string_equal(S(byhash, "leaseId"), S(l, "leaseId"));
	assert_null(json_object_get(byhash, "accessToken"));
	json_decref(byhash);
	/* A wrong token and an unknown lease look the same. */
	assert_int_equal(market_lease_authorize(f.m, S(l, "leaseId"), "tok_AAAA", NULL, &e), -CG_E_FORBIDDEN);
	assert_int_equal(market_lease_authorize(f.m, "lea_nope", tok, NULL, &e), -CG_E_FORBIDDEN);
	assert_int_equal(market_lease_authorize(f.m, S(l, "leaseId"), "Bearer x", NULL, &e), -CG_E_AUTH_REQUIRED);
	json_decref(l);
	fx_close(&f);
}

/* LEASE-02: get/list never show the token; only the provider or consumer may read. */
static void t_lease02_redacted(void **s)
{
	(void)s;
	struct fx f;
	fx_open(&f);
	char rid[64];
	publish(&f, rid);
	json_t *l = issue(&f, rid, NULL);
	const char *tok = S(l, "accessToken");
	json_t *g = OK(&f, "market.lease.get", json_pack("{s:s,s:s}", "actorId", PROV, "leaseId", S(l, "leaseId")));
	char *dump = json_dumps(g, 0);
	assert_null(strstr(dump, tok + 4));
	assert_null(strstr(dump, "tok_"));
	free(dump);
	json_decref(g);
	ERR(&f, CG_E_FORBIDDEN, "market.lease.get", json_pack("{s:s,s:s}", "actorId", THIRD, "leaseId", S(l, "leaseId")));
	json_t *ls = OK(&f, "market.lease.list", json_pack("{s:s}", "consumerActorId", CONS));
	assert_int_equal(json_array_size(json_object_get(ls, "leases")), 1);
	dump = json_dumps(ls, 0);
	assert_null(strstr(dump, "tok_"));
	free(dump);
	json_decref(ls);
	ERR(&f, CG_E_FORBIDDEN, "market.lease.list", json_pack("{s:s,s:s}", "actorId", THIRD, "consumerActorId", CONS));
	json_t *none = OK(&f, "market.lease.get", json_pack("{s:s}", "leaseId", "lea_unknown"));
	assert_true(json_is_null(json_object_get(none, "lease")));
	json_decref(none);
	json_decref(l);
	fx_close(&f);
}

static int notify_calls;
static int notify_fail = 0;
static int notifier(void *arg, const json_t *lease, cg_err *e)
{
	(void)arg;
	notify_calls++;
	assert_null(json_object_get(lease, "accessToken"));
	if (notify_fail)
		return cg_fail(e, CG_E_UNAVAILABLE, "peer unreachable");
	return 0;
}

/* LEASE-03: revoke, then append is rejected; revoke marks the delivery revoked; a failed notification queues
 * a RevocationJob that revocation.retry completes. */
static void t_lease03_revoke(void **s)
{
	(void)s;
	struct fx f;
	fx_open(&f);
	market_set_revocation_notifier(f.m, notifier, NULL);
	char rid[64];
	publish(&f, rid);
	json_t *l = issue(&f, rid, NULL);
	json_decref(OK(&f, "market.ledger.append", entry_params(PROV, l, rid, "10", "20")));
	ERR(&f, CG_E_FORBIDDEN, "market.lease.revoke", json_pack("{s:s,s:s}", "actorId", THIRD, "leaseId", S(l, "leaseId")));
	notify_fail = 1;
	notify_calls = 0;
	json_t *r = OK(&f, "market.lease.revoke",
		       json_pack("{s:s,s:s,s:s}", "actorId", CONS, "leaseId", S(l, "leaseId"), "reason", "done"));
	assert_string_equal(S(r, "status"), "lease_revoked");
	assert_true(json_integer_value(json_object_get(r, "revokedAt")) > 0);
	json_decref(r);
	assert_int_equal(notify_calls, 1);
	/* Same-state repeat is idempotent. */
	json_decref(OK(&f, "market.lease.revoke", json_pack("{s:s,s:s}", "actorId", PROV, "leaseId", S(l, "leaseId"))));
	assert_int_equal(notify_calls, 1);
	ERR(&f, CG_E_REVOKED, "market.ledger.append", entry_params(PROV, l, rid, "10", "20"));
	cg_err e;
	assert_int_equal(market_lease_authorize(f.m, S(l, "leaseId"), S(l, "accessToken"), NULL, &e), -CG_E_REVOKED);
	json_t *d = OK(&f, "market.delivery.get", json_pack("{s:s}", "deliveryId", S(l, "deliveryId")));
	assert_string_equal(S(json_object_get(d, "delivery"), "status"), "delivery_revoked");
	json_decref(d);
	/* The job: retried (fails again, attempts 2), then succeeds. */
	clock_shift_ms(10 * 1000);
	r = OK(&f, "market.revocation.retry", json_object());
	assert_int_equal(json_integer_value(json_object_get(r, "processed")), 1);
	assert_int_equal(json_integer_value(json_object_get(r, "failed")), 1);
	assert_int_equal(json_integer_value(json_object_get(r, "pending")), 1);
	json_decref(r);
	notify_fail = 0;
	clock_shift_ms(60 * 1000);
	r = OK(&f, "market.revocation.retry", json_object());
	assert_int_equal(json_integer_value(json_object_get(r, "succeeded")), 1);
	assert_int_equal(json_integer_value(json_object_get(r, "pending")), 0);
	json_decref(r);
	json_decref(l);
	fx_close(&f);
}

/* Expiry: the sweep expires due leases only, never settles or writes the ledger; revoke after expiry is
 * E_EXPIRED; authorize says E_EXPIRED even before the sweep. */
static void t_sweep(void **s)
{
	(void)s;
	struct fx f;
	fx_open(&f);
	char rid[64];
	publish(&f, rid);
	json_t *a = issue(&f, rid, NULL);
	json_t *p = json_pack("{s:s,s:s,s:s,s:i}", "actorId", CONS, "resourceId", rid, "consumerActorId", CONS, "ttlMs",
			      3600000);
	json_t *b = OK(&f, "market.lease.issue", p);
	int64_t exp = json_integer_value(json_object_get(a, "expiresAt"));
	json_t *r = OK(&f, "market.lease.expireSweep", json_pack("{s:I,s:b}", "now", (json_int_t)(exp + 1), "dryRun", 1));
	assert_int_equal(json_integer_value(json_object_get(r, "expired")), 1);
	json_decref(r);
	json_t *g = OK(&f, "market.lease.get", json_pack("{s:s}", "leaseId", S(a, "leaseId")));
	assert_string_equal(S(json_object_get(g, "lease"), "status"), "lease_active");
	json_decref(g);
	clock_shift_ms(61 * 1000);
	cg_err e;
	assert_int_equal(market_lease_authorize(f.m, S(a, "leaseId"), S(a, "accessToken"), NULL, &e), -CG_E_EXPIRED);
	ERR(&f, CG_E_EXPIRED, "market.ledger.append", entry_params(PROV, a, rid, "1", "2"));
	char d0[72];
	r = OK(&f, "market.lease.expireSweep", json_object());
	assert_int_equal(json_integer_value(json_object_get(r, "processed")), 1);
	assert_int_equal(json_integer_value(json_object_get(r, "expired")), 1);
	json_decref(r);
	g = OK(&f, "market.lease.get", json_pack("{s:s}", "leaseId", S(a, "leaseId")));
	assert_string_equal(S(json_object_get(g, "lease"), "status"), "lease_expired");
	json_decref(g);
	g = OK(&f, "market.lease.get", json_pack("{s:s}", "leaseId", S(b, "leaseId")));
	assert_string_equal(S(json_object_get(g, "lease"), "status"), "lease_active");
	json_decref(g);
	ERR(&f, CG_E_EXPIRED, "market.lease.revoke", json_pack("{s:s,s:s}", "actorId", CONS, "leaseId", S(a, "leaseId")));
	/* Nothing was settled or booked. */
	fx_digest(&f, d0);
	json_t *sum = OK(&f, "market.ledger.summary", json_object());
	assert_string_equal(S(json_object_get(sum, "summary"), "totalCost"), "0");
	json_decref(sum);
	r = OK(&f, "market.lease.expireSweep", json_object());
	assert_int_equal(json_integer_value(json_object_get(r, "processed")), 0);
	json_decref(r);
	json_decref(a);
	json_decref(b);
	fx_close(&f);
}

/* Offers and orders by hand: created -> published -> closed; order/consent/delivery transitions; illegal
 * moves are E_CONFLICT. */
static void t_offer_order_fsm(void **s)
{
	(void)s;
	struct fx f;
	fx_open(&f);
	json_t *o = OK(&f, "market.offer.create",
		       json_pack("{s:s,s:s,s:s,s:s,s:s,s:{s:s},s:s}", "actorId", PROV, "assetId", "ds-1", "assetType", "data",
				 "price", "100", "currency", "USDC", "usageScope", "purpose", "research", "deliveryType",
				 "download"));
	char oid[64];
	snprintf(oid, sizeof oid, "%s", S(o, "offerId"));
	assert_string_equal(S(o, "status"), "offer_created");
	json_decref(o);
	ERR(&f, CG_E_CONFLICT, "market.order.create", json_pack("{s:s,s:s}", "actorId", CONS, "offerId", oid));
	ERR(&f, CG_E_FORBIDDEN, "market.offer.publish", json_pack("{s:s,s:s}", "actorId", CONS, "offerId", oid));
	json_decref(OK(&f, "market.offer.publish", json_pack("{s:s,s:s}", "actorId", PROV, "offerId", oid)));
	ERR(&f, CG_E_CONFLICT, "market.offer.publish", json_pack("{s:s,s:s}", "actorId", PROV, "offerId", oid));
	json_decref(OK(&f, "market.offer.update", json_pack("{s:s,s:s,s:s}", "actorId", PROV, "offerId", oid, "price", "7")));
	json_t *ord = OK(&f, "market.order.create", json_pack("{s:s,s:s,s:i}", "actorId", CONS, "offerId", oid, "quantity", 3));
	assert_string_equal(S(ord, "amount"), "21");
	char orid[64];
	snprintf(orid, sizeof orid, "%s", S(ord, "orderId"));
	json_decref(ord);
	/* consent before payment: illegal */
	ERR(&f, CG_E_CONFLICT, "market.consent.grant", json_pack("{s:s,s:s}", "actorId", CONS, "orderId", orid));
	fund(&f, CONS, "100");
	json_decref(OK(&f, "market.settlement.lock",
		       json_pack("{s:s,s:s,s:s,s:s}", "actorId", CONS, "orderId", orid, "payer", CONS, "amount", "21")));
	json_t *g = OK(&f, "market.order.get", json_pack("{s:s}", "orderId", orid));
	assert_string_equal(S(json_object_get(g, "order"), "status"), "payment_locked");
	json_decref(g);
	ERR(&f, CG_E_FORBIDDEN, "market.consent.grant", json_pack("{s:s,s:s}", "actorId", PROV, "orderId", orid));
	json_t *c = OK(&f, "market.consent.grant", json_pack("{s:s,s:s}", "actorId", CONS, "orderId", orid));
	json_decref(c);
	json_t *d = OK(&f, "market.delivery.issue", json_pack("{s:s,s:s,s:s}", "actorId", PROV, "orderId", orid,
							     "payloadRef", "cid-1"));
	char did[64];
	snprintf(did, sizeof did, "%s", S(d, "deliveryId"));
	json_decref(d);
	ERR(&f, CG_E_CONFLICT, "market.order.cancel", json_pack("{s:s,s:s}", "actorId", CONS, "orderId", orid));
	json_decref(OK(&f, "market.delivery.complete", json_pack("{s:s,s:s}", "actorId", CONS, "deliveryId", did)));
	ERR(&f, CG_E_CONFLICT, "market.delivery.revoke", json_pack("{s:s,s:s}", "actorId", CONS, "deliveryId", did));
	/* release pays the seller; the order completes */
	json_decref(OK(&f, "market.settlement.release", json_pack("{s:s,s:s}", "actorId", CONS, "orderId", orid)));
	g = OK(&f, "market.order.get", json_pack("{s:s}", "orderId", orid));
	assert_string_equal(S(json_object_get(g, "order"), "status"), "settlement_completed");
	json_decref(g);
	json_t *bal = OK(&f, "market.settlement.balance", json_pack("{s:s}", "address", PROV));
	assert_string_equal(S(bal, "balance"), "21");
	json_decref(bal);
	/* the offer cannot close while... it backs no resource here, so it closes; then orders are refused */
	json_decref(OK(&f, "market.offer.close", json_pack("{s:s,s:s}", "actorId", PROV, "offerId", oid)));
	ERR(&f, CG_E_CONFLICT, "market.offer.close", json_pack("{s:s,s:s}", "actorId", PROV, "offerId", oid));
	ERR(&f, CG_E_CONFLICT, "market.offer.update", json_pack("{s:s,s:s,s:s}", "actorId", PROV, "offerId", oid, "price", "1"));
	ERR(&f, CG_E_CONFLICT, "market.order.create", json_pack("{s:s,s:s}", "actorId", CONS, "offerId", oid));
	/* a second order is cancelled by the buyer */
	fx_close(&f);
}

/* Consent revoke cascades: order consent_revoked, lease revoked, delivery revoked; refund cancels. */
static void t_consent_revoke(void **s)
{
	(void)s;
	struct fx f;
	fx_open(&f);
	char rid[64];
	publish(&f, rid);
	json_t *l = issue(&f, rid, "50");
	fund(&f, CONS, "50");
	json_decref(OK(&f, "market.settlement.lock", json_pack("{s:s,s:s,s:s,s:s}", "actorId", CONS, "orderId",
								S(l, "orderId"), "payer", CONS, "amount", "50")));
	json_decref(OK(&f, "market.consent.revoke", json_pack("{s:s,s:s}", "actorId", CONS, "consentId", S(l, "consentId"))));
	json_t *g = OK(&f, "market.lease.get", json_pack("{s:s}", "leaseId", S(l, "leaseId")));
	assert_string_equal(S(json_object_get(g, "lease"), "status"), "lease_revoked");
	json_decref(g);
	g = OK(&f, "market.order.get", json_pack("{s:s}", "orderId", S(l, "orderId")));
	assert_string_equal(S(json_object_get(g, "order"), "status"), "consent_revoked");
	json_decref(g);
	ERR(&f, CG_E_FORBIDDEN, "market.settlement.refund", json_pack("{s:s,s:s}", "actorId", CONS, "orderId", S(l, "orderId")));
	json_decref(OK(&f, "market.settlement.refund", json_pack("{s:s,s:s}", "actorId", PROV, "orderId", S(l, "orderId"))));
	g = OK(&f, "market.order.get", json_pack("{s:s}", "orderId", S(l, "orderId")));
	assert_string_equal(S(json_object_get(g, "order"), "status"), "settlement_cancelled");
	json_decref(g);
	json_t *bal = OK(&f, "market.settlement.balance", json_pack("{s:s}", "address", CONS));
	assert_string_equal(S(bal, "balance"), "50");
	assert_string_equal(S(bal, "escrowed"), "0");
	json_decref(bal);
	ERR(&f, CG_E_CONFLICT, "market.settlement.refund", json_pack("{s:s,s:s}", "actorId", PROV, "orderId", S(l, "orderId")));
	json_decref(l);
	fx_close(&f);
}

/* web3.resources.*: act as the node's own address. */
static void t_web3(void **s)
{
	(void)s;
	struct fx f;
	fx_open(&f);
	json_t *p = res_params("ignored", NULL, "Mine", "1");
	json_object_del(p, "actorId");
	json_t *r = OK(&f, "web3.resources.publish", p);
	char rid[64];
	snprintf(rid, sizeof rid, "%s", S(r, "resourceId"));
	json_decref(r);
	json_t *g = OK(&f, "market.resource.get", json_pack("{s:s}", "resourceId", rid));
	assert_string_equal(S(json_object_get(g, "resource"), "providerActorId"), f.self);
	json_decref(g);
	json_t *ls = OK(&f, "web3.resources.list", json_object());
	assert_int_equal(json_array_size(json_object_get(ls, "resources")), 1);
	json_decref(ls);
	/* web3.* act as this node: another actorId is refused, this node's own is accepted. */
	ERR(&f, CG_E_FORBIDDEN, "web3.resources.publish", json_pack("{s:s}", "actorId", "x"));
	ERR(&f, CG_E_FORBIDDEN, "web3.resources.list", json_pack("{s:s}", "actorId", CONS));
	json_decref(OK(&f, "web3.resources.list", json_pack("{s:s}", "actorId", f.self)));
	/* The gateway leases for the consumer a session is bound to (seed §1.4 {resourceId, consumerActorId}). */
	json_t *lc = OK(&f, "web3.resources.lease",
			json_pack("{s:s,s:s,s:i}", "resourceId", rid, "consumerActorId", CONS, "ttlMs", 60000));
	json_t *lg = OK(&f, "market.lease.get", json_pack("{s:s}", "leaseId", S(lc, "leaseId")));
	assert_string_equal(S(json_object_get(lg, "lease"), "consumerActorId"), CONS);
	assert_false(json_is_true(json_object_get(lc, "settlementQueued")));
	json_decref(lg);
	json_decref(lc);
	json_t *l = OK(&f, "web3.resources.lease",
		       json_pack("{s:s,s:i,s:s,s:s}", "resourceId", rid, "ttlMs", 60000, "maxCost", "10", "sessionKey", "s1"));
	assert_int_equal(strncmp(S(l, "accessToken"), "tok_", 4), 0);
	assert_true(json_is_true(json_object_get(l, "settlementQueued")));
	json_t *q = OK(&f, "market.settlement.queueList", json_object());
	json_t *ent = json_array_get(json_object_get(q, "entries"), 0);
	assert_string_equal(S(ent, "orderId"), S(l, "orderId"));
	assert_string_equal(S(ent, "payer"), f.self);
	assert_int_equal(strncmp(S(ent, "sessionIdHash"), "sha256:", 7), 0);
	json_decref(q);
	json_t *st = OK(&f, "web3.resources.status", json_object());
	assert_int_equal(json_integer_value(json_object_get(st, "activeLeases")), 2);
	assert_int_equal(json_integer_value(json_object_get(st, "pending")), 1);
	json_decref(st);
	json_decref(OK(&f, "web3.resources.revokeLease", json_pack("{s:s}", "leaseId", S(l, "leaseId"))));
	json_decref(OK(&f, "web3.resources.unpublish", json_pack("{s:s}", "resourceId", rid)));
	json_decref(l);
	fx_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_res01_publish),   cmocka_unit_test(t_res02_unpublish),
		cmocka_unit_test(t_lease01_chain),   cmocka_unit_test(t_lease02_redacted),
		cmocka_unit_test(t_lease03_revoke),  cmocka_unit_test(t_sweep),
		cmocka_unit_test(t_offer_order_fsm), cmocka_unit_test(t_consent_revoke),
		cmocka_unit_test(t_web3),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
