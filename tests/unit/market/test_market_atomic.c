/* Gate-ATOMIC-01 and FAIL-01: a failure injected at every step of every multi-object operation leaves the
 * store exactly as it was (digest of every market and escrow table), and the operation succeeds once the
 * fault is past its last step. */
#include "fixture.h"

/* Runs method(params) with a fault armed at step 1, 2, ... until it succeeds; every failing run must leave
 * the digest unchanged. Returns the successful result (caller frees). */
static json_t *each_step(struct fx *f, const char *method, json_t *params, int *steps)
{
	char d0[72], d1[72];
	for (int n = 1; n < 100; n++) {
		fx_digest(f, d0);
		store_fault_arm(f->st, n);
		json_t *res = NULL;
		int code = fx_call(f, method, json_deep_copy(params), &res);
		int seen = store_fault_count(f->st);
		store_fault_arm(f->st, 0);
		if (code == 0) {
			assert_true(seen < n); /* it ran past every fault site */
			*steps = n - 1;
			json_decref(params);
			return res;
		}
		if (code != CG_E_INTERNAL || !strstr(S(res, "message"), "injected fault"))
			fail_msg("%s step %d: unexpected error %s", method, n, S(res, "message"));
		json_decref(res);
		fx_digest(f, d1);
		if (strcmp(d0, d1) != 0)
			fail_msg("%s: partial state after a fault at step %d", method, n);
		assert_int_equal(store_tx_depth(f->st), 0);
	}
	fail_msg("%s never succeeded", method);
	return NULL;
}

static void t_atomic_all(void **s)
{
	(void)s;
	struct fx f;
	fx_open(&f);
	int steps;
	fund(&f, CONS, "1000");
	json_t *r = each_step(&f, "market.resource.publish", res_params(PROV, NULL, "Model", "2"), &steps);
	assert_true(steps >= 3);
	char rid[64];
	snprintf(rid, sizeof rid, "%s", S(r, "resourceId"));
	json_decref(r);
	json_decref(each_step(&f, "market.resource.publish", res_params(PROV, rid, "Model v2", "2"), &steps));
	json_t *lp = json_pack("{s:s,s:s,s:s,s:i}", "actorId", CONS, "resourceId", rid, "consumerActorId", CONS, "ttlMs",
			       60000);
	json_t *l = each_step(&f, "market.lease.issue", lp, &steps);
	assert_true(steps >= 5);
	json_decref(each_step(&f, "market.ledger.append", entry_params(PROV, l, rid, "4", "8"), &steps));
	assert_true(steps >= 2);
	json_t *lk = json_pack("{s:s,s:s,s:s,s:s}", "actorId", CONS, "orderId", S(l, "orderId"), "payer", CONS, "amount",
			       "100");
	json_decref(each_step(&f, "market.settlement.lock", lk, &steps));
	assert_true(steps >= 3);
	json_decref(each_step(&f, "market.settlement.release",
			      json_pack("{s:s,s:s,s:[{s:s,s:s}]}", "actorId", CONS, "orderId", S(l, "orderId"), "payees",
					"address", PROV, "amount", "70"),
			      &steps));
	assert_true(steps >= 4);

	/* refund of a live lease order: consent, leases, deliveries, order, escrow, in one go */
	json_t *l2 = issue(&f, rid, NULL);
	json_decref(OK(&f, "market.settlement.lock", json_pack("{s:s,s:s,s:s,s:s}", "actorId", CONS, "orderId",
							       S(l2, "orderId"), "payer", CONS, "amount", "50")));
	json_decref(each_step(&f, "market.settlement.refund", json_pack("{s:s,s:s}", "actorId", PROV, "orderId", S(l2, "orderId")),
			      &steps));
	assert_true(steps >= 5);
	json_t *g = OK(&f, "market.lease.get", json_pack("{s:s}", "leaseId", S(l2, "leaseId")));
	assert_string_equal(S(json_object_get(g, "lease"), "status"), "lease_revoked");
	json_decref(g);

	/* dispute resolve: partial release drives the settlement inside the dispute's transaction */
	json_t *l3 = issue(&f, rid, NULL);
	json_decref(OK(&f, "market.settlement.lock", json_pack("{s:s,s:s,s:s,s:s}", "actorId", CONS, "orderId",
							       S(l3, "orderId"), "payer", CONS, "amount", "60")));
	json_t *d = OK(&f, "market.dispute.open", json_pack("{s:s,s:s,s:s}", "actorId", CONS, "orderId", S(l3, "orderId"),
							    "reason", "quality_issue"));
	json_decref(each_step(&f, "market.dispute.resolve",
			      json_pack("{s:s,s:s,s:s,s:s}", "actorId", ARB, "disputeId", S(d, "disputeId"), "resolution",
					"partial", "amount", "20"),
			      &steps));
	assert_true(steps >= 5);
	json_t *bal = OK(&f, "market.settlement.balance", json_pack("{s:s}", "address", PROV));
	assert_string_equal(S(bal, "balance"), "90"); /* 70 + 20 */
	json_decref(bal);

	/* lease revoke (lease + delivery) and the order/consent/delivery methods */
	json_t *l4 = issue(&f, rid, NULL);
	json_decref(each_step(&f, "market.lease.revoke", json_pack("{s:s,s:s}", "actorId", PROV, "leaseId", S(l4, "leaseId")),
			      &steps));
	assert_true(steps >= 2);
	json_t *l5 = issue(&f, rid, NULL);
	json_decref(each_step(&f, "market.consent.revoke",
			      json_pack("{s:s,s:s}", "actorId", CONS, "consentId", S(l5, "consentId")), &steps));
	assert_true(steps >= 3);
	json_t *oc = OK(&f, "market.offer.create",
			json_pack("{s:s,s:s,s:s,s:s,s:s,s:{s:s},s:s}", "actorId", PROV, "assetId", "a", "assetType", "api",
				  "price", "5", "currency", "USDC", "usageScope", "purpose", "x", "deliveryType", "api"));
	json_decref(OK(&f, "market.offer.publish", json_pack("{s:s,s:s}", "actorId", PROV, "offerId", S(oc, "offerId"))));
	json_t *ord = OK(&f, "market.order.create", json_pack("{s:s,s:s}", "actorId", CONS, "offerId", S(oc, "offerId")));
	json_decref(each_step(&f, "market.settlement.lock",
			      json_pack("{s:s,s:s,s:s,s:s}", "actorId", CONS, "orderId", S(ord, "orderId"), "payer", CONS,
					"amount", "5"),
			      &steps));
	json_decref(each_step(&f, "market.consent.grant", json_pack("{s:s,s:s}", "actorId", CONS, "orderId", S(ord, "orderId")),
			      &steps));
	assert_true(steps >= 2);
	json_t *dv = each_step(&f, "market.delivery.issue", json_pack("{s:s,s:s}", "actorId", PROV, "orderId", S(ord, "orderId")),
			       &steps);
	json_decref(each_step(&f, "market.delivery.complete",
			      json_pack("{s:s,s:s}", "actorId", CONS, "deliveryId", S(dv, "deliveryId")), &steps));
	json_decref(dv);
	json_t *v = OK(&f, "market.ledger.verify", json_object());
	assert_true(json_is_true(json_object_get(v, "ok")));
	json_decref(v);
	json_decref(ord);
	json_decref(oc);
	json_decref(d);
	json_decref(l);
	json_decref(l2);
	json_decref(l3);
	json_decref(l4);
	json_decref(l5);
	fx_close(&f);
}

/* A fault inside a flush's lock keeps the entry (attempts + 1) and leaves no settlement or escrow behind. */
static void t_atomic_flush(void **s)
{
	(void)s;
	struct fx f;
	fx_open(&f);
	char rid[64];
	publish(&f, rid);
	json_t *l = issue(&f, rid, NULL);
	fund(&f, CONS, "10");
	json_decref(OK(&f, "market.settlement.queue", json_pack("{s:s,s:s,s:s}", "orderId", S(l, "orderId"), "payer", CONS,
								  "amount", "10")));
	for (int n = 1; n <= 6; n++) {
		store_fault_arm(f.st, n);
		json_t *r = OK(&f, "market.settlement.flush", json_object());
		int64_t ok = json_integer_value(json_object_get(r, "succeeded"));
		json_decref(r);
		store_fault_arm(f.st, 0);
		json_t *st = OK(&f, "market.settlement.status", json_pack("{s:s}", "orderId", S(l, "orderId")));
		bool locked = !json_is_null(json_object_get(st, "settlement"));
		assert_string_equal(S(json_object_get(st, "escrow"), "status"), locked ? "locked" : "none");
		json_decref(st);
		json_t *q = OK(&f, "market.settlement.queueList", json_object());
		int64_t pending = json_integer_value(json_object_get(q, "pending"));
		json_decref(q);
		if (ok) {
			assert_true(locked);
			assert_int_equal(pending, 0);
			break;
		}
		assert_false(locked);
		assert_int_equal(pending, 1);
		clock_shift_ms(3600 * 1000); /* past any backoff */
	}
	json_t *bal = OK(&f, "market.settlement.balance", json_pack("{s:s}", "address", CONS));
	assert_string_equal(S(bal, "balance"), "0");
	assert_string_equal(S(bal, "escrowed"), "10");
	json_decref(bal);
	json_decref(l);
	fx_close(&f);
}

/* FAIL-01: failing operations (bad state, missing funds, conflicts) leave no state behind. */
static void t_fail01(void **s)
{
	(void)s;
	struct fx f;
	fx_open(&f);
	char rid[64];
	publish(&f, rid);
	json_t *l = issue(&f, rid, NULL);
	char d0[72], d1[72];
	fx_digest(&f, d0);
	ERR(&f, CG_E_QUOTA_EXCEEDED, "market.settlement.lock",
	    json_pack("{s:s,s:s,s:s,s:s}", "actorId", CONS, "orderId", S(l, "orderId"), "payer", CONS, "amount", "5"));
	ERR(&f, CG_E_NOT_FOUND, "market.settlement.release", json_pack("{s:s,s:s}", "actorId", CONS, "orderId", S(l, "orderId")));
	ERR(&f, CG_E_NOT_FOUND, "market.settlement.refund", json_pack("{s:s,s:s}", "actorId", PROV, "orderId", S(l, "orderId")));
	ERR(&f, CG_E_CONFLICT, "market.delivery.issue", json_pack("{s:s,s:s}", "actorId", PROV, "orderId", S(l, "orderId")));
	ERR(&f, CG_E_CONFLICT, "market.consent.grant", json_pack("{s:s,s:s}", "actorId", CONS, "orderId", S(l, "orderId")));
	ERR(&f, CG_E_CONFLICT, "market.order.cancel", json_pack("{s:s,s:s}", "actorId", CONS, "orderId", S(l, "orderId")));
	ERR(&f, CG_E_CONFLICT, "market.resource.publish", json_pack("{s:s,s:{s:s,s:s,s:s,s:{s:s,s:s,s:s},s:{s:s,s:s,s:s,s:{},s:s}}}",
								     "actorId", PROV, "resource", "resourceId", rid, "kind",
								     "search", "label", "x", "price", "unit", "query",
								     "amount", "1", "currency", "USDC", "offer", "assetId",
								     "a", "assetType", "api", "currency", "USDC",
								     "usageScope", "deliveryType", "api"));
	fx_digest(&f, d1);
	assert_string_equal(d0, d1);
	json_decref(l);
	fx_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_atomic_all),
		cmocka_unit_test(t_atomic_flush),
		cmocka_unit_test(t_fail01),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
