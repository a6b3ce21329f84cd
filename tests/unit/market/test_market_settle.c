/* Gate-SETTLE-01 (queue fields; flush: ready / not ready / retry / clear on success / empty queue; a second
 * flush never locks twice), settlements over the local backend (lock idempotency, release with payees,
 * refund, balances, the faucet), disputes driving settlements, and repair jobs for transient backend
 * failures (through a backend double). */
#include "fixture.h"

static json_t *order_for(struct fx *f, char rid[64])
{
	publish(f, rid);
	return issue(f, rid, NULL);
}

static json_t *qparams(const char *oid, const char *payer, const char *amount)
{
	json_t *p = json_object();
	if (oid)
		json_object_set_new(p, "orderId", json_string(oid));
	if (payer)
		json_object_set_new(p, "payer", json_string(payer));
	if (amount)
		json_object_set_new(p, "amount", json_string(amount));
	return p;
}

static int64_t I(json_t *o, const char *k)
{
	return (int64_t)json_integer_value(json_object_get(o, k));
}

static void t_settle01_queue(void **s)
{
	(void)s;
	struct fx f;
	fx_open(&f);
	/* Empty queue. */
	json_t *r = OK(&f, "market.settlement.flush", json_object());
	assert_int_equal(I(r, "processed"), 0);
	assert_int_equal(I(r, "succeeded"), 0);
	assert_int_equal(I(r, "failed"), 0);
	assert_int_equal(I(r, "pending"), 0);
	json_decref(r);
	/* Entries without orderId, payer or amount are refused. */
	ERR(&f, CG_E_INVALID_ARGUMENT, "market.settlement.queue", qparams(NULL, CONS, "5"));
	ERR(&f, CG_E_INVALID_ARGUMENT, "market.settlement.queue", qparams("ord_x", NULL, "5"));
	ERR(&f, CG_E_INVALID_ARGUMENT, "market.settlement.queue", qparams("ord_x", CONS, NULL));
	ERR(&f, CG_E_INVALID_ARGUMENT, "market.settlement.queue", qparams("", CONS, "5"));
	ERR(&f, CG_E_INVALID_ARGUMENT, "market.settlement.queue", qparams("ord_x", "", "5"));
	ERR(&f, CG_E_INVALID_ARGUMENT, "market.settlement.queue", qparams("ord_x", CONS, ""));
	ERR(&f, CG_E_INVALID_ARGUMENT, "market.settlement.queue", qparams("ord_x", CONS, "1.5"));

	char rid[64];
	json_t *a = order_for(&f, rid);
	json_t *b = issue(&f, rid, NULL);
	/* a: ready and funded; b: ready but unfunded (fails, retried); c: unknown order (not ready). */
	fund(&f, CONS, "40");
	json_decref(OK(&f, "market.settlement.queue", qparams(S(a, "orderId"), CONS, "40")));
	json_decref(OK(&f, "market.settlement.queue", qparams(S(a, "orderId"), CONS, "40"))); /* duplicate */
	ERR(&f, CG_E_CONFLICT, "market.settlement.queue", qparams(S(a, "orderId"), CONS, "41"));
	json_decref(OK(&f, "market.settlement.queue", qparams(S(b, "orderId"), CONS, "25")));
	json_decref(OK(&f, "market.settlement.queue", qparams("ord_elsewhere", CONS, "1")));
	json_t *q = OK(&f, "market.settlement.queueList", json_object());
	assert_int_equal(I(q, "pending"), 3);
	json_t *e0 = json_array_get(json_object_get(q, "entries"), 0);
	assert_string_equal(S(e0, "orderId"), S(a, "orderId"));
	assert_string_equal(S(e0, "payer"), CONS);
	assert_string_equal(S(e0, "amount"), "40");
	assert_int_equal(I(e0, "attempts"), 0);
	json_decref(q);

	r = OK(&f, "market.settlement.flush", json_object());
	assert_int_equal(I(r, "processed"), 3);
	assert_int_equal(I(r, "succeeded"), 1);
	assert_int_equal(I(r, "failed"), 1);
	assert_int_equal(I(r, "skipped"), 1);
	assert_int_equal(I(r, "pending"), 2);
	json_decref(r);
	json_t *st = OK(&f, "market.settlement.status", json_pack("{s:s}", "orderId", S(a, "orderId")));
	assert_string_equal(S(json_object_get(st, "settlement"), "status"), "settlement_locked");
	assert_string_equal(S(json_object_get(st, "escrow"), "status"), "locked");
	json_decref(st);
	/* The failed one keeps attempts / lastError / a later next attempt. */
	json_t *pend = OK(&f, "market.settlement.queueList", json_object());
	json_t *eb = NULL;
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(pend, "entries"), i, x) if (strcmp(S(x, "orderId"), S(b, "orderId")) == 0) eb = x;
	assert_non_null(eb);
	assert_int_equal(I(eb, "attempts"), 1);
	assert_non_null(strstr(S(eb, "lastError"), "insufficient balance"));
	assert_true(I(eb, "nextAttemptAt") > clock_now_ms());
	json_decref(pend);
	/* Not due yet: nothing processed. */
	r = OK(&f, "market.settlement.flush", json_object());
	assert_int_equal(I(r, "failed"), 0);
	assert_int_equal(I(r, "succeeded"), 0);
	json_decref(r);
	/* Retry after the backoff, now funded: clears on success. */
	fund(&f, CONS, "25");
	clock_shift_ms(5000);
	r = OK(&f, "market.settlement.flush", json_object());
	assert_int_equal(I(r, "succeeded"), 1);
	assert_int_equal(I(r, "pending"), 1);
	json_decref(r);
	/* Never lock twice: re-queue a locked order, flush, the balance is not debited again. */
	json_decref(OK(&f, "market.settlement.queue", qparams(S(a, "orderId"), CONS, "40")));
	fund(&f, CONS, "100");
	r = OK(&f, "market.settlement.flush", json_object());
	assert_int_equal(I(r, "succeeded"), 1);
	json_decref(r);
	json_t *bal = OK(&f, "market.settlement.balance", json_pack("{s:s}", "address", CONS));
	assert_string_equal(S(bal, "balance"), "100");
	assert_string_equal(S(bal, "escrowed"), "65");
	json_decref(bal);
	/* direct lock again: idempotent with same terms, conflict with others */
	json_t *lk = OK(&f, "market.settlement.lock", json_pack("{s:s,s:s,s:s,s:s}", "actorId", CONS, "orderId",
							       S(a, "orderId"), "payer", CONS, "amount", "40"));
	assert_true(json_is_true(json_object_get(lk, "idempotent")));
	json_decref(lk);
	ERR(&f, CG_E_CONFLICT, "market.settlement.lock",
	    json_pack("{s:s,s:s,s:s,s:s}", "actorId", CONS, "orderId", S(a, "orderId"), "payer", CONS, "amount", "41"));
	ERR(&f, CG_E_FORBIDDEN, "market.settlement.lock",
	    json_pack("{s:s,s:s,s:s,s:s}", "actorId", THIRD, "orderId", S(a, "orderId"), "payer", THIRD, "amount", "1"));
	json_decref(a);
	json_decref(b);
	fx_close(&f);
}

static void t_release_payees(void **s)
{
	(void)s;
	struct fx f;
	fx_open(&f);
	char rid[64];
	json_t *a = order_for(&f, rid);
	fund(&f, CONS, "100");
	json_decref(OK(&f, "market.settlement.lock",
		       json_pack("{s:s,s:s,s:s,s:s}", "actorId", CONS, "orderId", S(a, "orderId"), "payer", CONS, "amount", "100")));
	ERR(&f, CG_E_INVALID_ARGUMENT, "market.settlement.release",
	    json_pack("{s:s,s:s,s:[{s:s,s:s}]}", "actorId", CONS, "orderId", S(a, "orderId"), "payees", "address", PROV,
		      "amount", "101"));
	ERR(&f, CG_E_FORBIDDEN, "market.settlement.release", json_pack("{s:s,s:s}", "actorId", PROV, "orderId", S(a, "orderId")));
	json_t *r = OK(&f, "market.settlement.release",
		       json_pack("{s:s,s:s,s:[{s:s,s:s},{s:s,s:s}]}", "actorId", CONS, "orderId", S(a, "orderId"), "payees",
				 "address", PROV, "amount", "60", "address", "platform", "amount", "5"));
	assert_string_equal(S(r, "status"), "settlement_released");
	json_decref(r);
	json_t *bal = OK(&f, "market.settlement.balance", json_pack("{s:s}", "address", CONS));
	assert_string_equal(S(bal, "balance"), "35"); /* the remainder came back */
	json_decref(bal);
	bal = OK(&f, "market.settlement.balance", json_pack("{s:s}", "address", PROV));
	assert_string_equal(S(bal, "balance"), "60");
	json_decref(bal);
	json_t *d = OK(&f, "market.delivery.get", json_pack("{s:s}", "deliveryId", S(a, "deliveryId")));
	assert_string_equal(S(json_object_get(d, "delivery"), "status"), "delivery_completed");
	json_decref(d);
	ERR(&f, CG_E_CONFLICT, "market.settlement.release", json_pack("{s:s,s:s}", "actorId", CONS, "orderId", S(a, "orderId")));
	ERR(&f, CG_E_CONFLICT, "market.settlement.refund", json_pack("{s:s,s:s}", "actorId", PROV, "orderId", S(a, "orderId")));
	json_decref(a);
	fx_close(&f);
}

static void t_dispute(void **s)
{
	(void)s;
	struct fx f;
	fx_open(&f);
	char rid[64];
	fund(&f, CONS, "300");
	json_t *o[3];
	for (int i = 0; i < 3; i++) {
		o[i] = i == 0 ? order_for(&f, rid) : issue(&f, rid, NULL);
		json_decref(OK(&f, "market.settlement.lock", json_pack("{s:s,s:s,s:s,s:s}", "actorId", CONS, "orderId",
									S(o[i], "orderId"), "payer", CONS, "amount", "100")));
	}
	const char *how[] = {"release", "refund", "partial"};
	for (int i = 0; i < 3; i++) {
		const char *oid = S(o[i], "orderId");
		ERR(&f, CG_E_FORBIDDEN, "market.dispute.open",
		    json_pack("{s:s,s:s,s:s}", "actorId", THIRD, "orderId", oid, "reason", "x"));
		json_t *d = OK(&f, "market.dispute.open",
			       json_pack("{s:s,s:s,s:s}", "actorId", CONS, "orderId", oid, "reason", "incorrect_result"));
		char did[64];
		snprintf(did, sizeof did, "%s", S(d, "disputeId"));
		assert_string_equal(S(d, "status"), "dispute_opened");
		json_decref(d);
		ERR(&f, CG_E_CONFLICT, "market.dispute.open",
		    json_pack("{s:s,s:s,s:s}", "actorId", PROV, "orderId", oid, "reason", "again"));
		/* frozen */
		ERR(&f, CG_E_CONFLICT, "market.settlement.release", json_pack("{s:s,s:s}", "actorId", CONS, "orderId", oid));
		ERR(&f, CG_E_INVALID_ARGUMENT, "market.dispute.submitEvidence",
		    json_pack("{s:s,s:s,s:s,s:s}", "actorId", CONS, "disputeId", did, "summary", "log", "hash", "md5:abc"));
		json_decref(OK(&f, "market.dispute.submitEvidence",
			       json_pack("{s:s,s:s,s:s,s:s,s:s}", "actorId", CONS, "disputeId", did, "summary", "output log",
					 "hash", "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
					 "cid", "bafy123")));
		json_decref(OK(&f, "market.dispute.submitEvidence",
			       json_pack("{s:s,s:s,s:s,s:s}", "actorId", PROV, "disputeId", did, "summary", "my log", "hash",
					 "0x00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")));
		ERR(&f, CG_E_FORBIDDEN, "market.dispute.resolve",
		    json_pack("{s:s,s:s,s:s}", "actorId", CONS, "disputeId", did, "resolution", "refund"));
		ERR(&f, CG_E_INVALID_ARGUMENT, "market.dispute.resolve",
		    json_pack("{s:s,s:s,s:s}", "actorId", ARB, "disputeId", did, "resolution", "partial"));
		json_t *p = json_pack("{s:s,s:s,s:s}", "actorId", ARB, "disputeId", did, "resolution", how[i]);
		if (i == 2)
			json_object_set_new(p, "amount", json_string("30"));
		json_t *r = OK(&f, "market.dispute.resolve", p);
		assert_string_equal(S(r, "status"), "dispute_resolved");
		json_decref(r);
		json_t *g = OK(&f, "market.dispute.get", json_pack("{s:s}", "disputeId", did));
		assert_int_equal(json_array_size(json_object_get(json_object_get(g, "dispute"), "evidence")), 2);
		json_decref(g);
		ERR(&f, CG_E_CONFLICT, "market.dispute.reject", json_pack("{s:s,s:s}", "actorId", ARB, "disputeId", did));
	}
	/* release 100 + partial 30 to the provider; refund 100 + partial rest 70 to the consumer */
	json_t *bal = OK(&f, "market.settlement.balance", json_pack("{s:s}", "address", PROV));
	assert_string_equal(S(bal, "balance"), "130");
	json_decref(bal);
	bal = OK(&f, "market.settlement.balance", json_pack("{s:s}", "address", CONS));
	assert_string_equal(S(bal, "balance"), "170");
	json_decref(bal);
	json_t *g = OK(&f, "market.order.get", json_pack("{s:s}", "orderId", S(o[1], "orderId")));
	assert_string_equal(S(json_object_get(g, "order"), "status"), "settlement_cancelled");
	json_decref(g);
	g = OK(&f, "market.lease.get", json_pack("{s:s}", "leaseId", S(o[1], "leaseId")));
	assert_string_equal(S(json_object_get(g, "lease"), "status"), "lease_revoked");
	json_decref(g);
	/* reject path */
	json_t *o4 = issue(&f, rid, NULL);
	json_t *d = OK(&f, "market.dispute.open", json_pack("{s:s,s:s,s:s}", "actorId", PROV, "orderId", S(o4, "orderId"),
							    "reason", "timeout"));
	json_decref(OK(&f, "market.dispute.reject", json_pack("{s:s,s:s}", "actorId", ARB, "disputeId", S(d, "disputeId"))));
	json_t *ls = OK(&f, "market.dispute.list", json_pack("{s:s}", "status", "dispute_resolved"));
	assert_int_equal(json_array_size(json_object_get(ls, "disputes")), 3);
	json_decref(ls);
	json_decref(d);
	json_decref(o4);
	for (int i = 0; i < 3; i++)
		json_decref(o[i]);
	fx_close(&f);
}

/* A settlement backend double: wraps the local backend and fails release/refund with E_UNAVAILABLE while
 * `down` is set, as an unreachable chain node would. Also named "evm-double" for the faucet refusal. */
struct flaky {
	struct settle_backend b;
	struct settle_backend *inner;
};
static int down;
static int fl_lock(struct settle_backend *b, const char *o, const char *p, const char *a, const char *t, char tx[80],
		   cg_err *e)
{
	struct settle_backend *in = ((struct flaky *)b)->inner;
	return in->lock(in, o, p, a, t, tx, e);
}
static int fl_release(struct settle_backend *b, const char *o, const struct settle_payee *p, size_t n, char tx[80],
		      cg_err *e)
{
	struct settle_backend *in = ((struct flaky *)b)->inner;
	if (down)
		return cg_fail(e, CG_E_UNAVAILABLE, "chain node unreachable");
	return in->release(in, o, p, n, tx, e);
}
static int fl_refund(struct settle_backend *b, const char *o, char tx[80], cg_err *e)
{
	struct settle_backend *in = ((struct flaky *)b)->inner;
	if (down)
		return cg_fail(e, CG_E_TIMEOUT, "chain node timed out");
	return in->refund(in, o, tx, e);
}
static int fl_status(struct settle_backend *b, const char *o, json_t **out, cg_err *e)
{
	struct settle_backend *in = ((struct flaky *)b)->inner;
	return in->status(in, o, out, e);
}
static int fl_balance(struct settle_backend *b, const char *a, json_t **out, cg_err *e)
{
	struct settle_backend *in = ((struct flaky *)b)->inner;
	return in->balance(in, a, out, e);
}
static int fl_faucet(struct settle_backend *b, const char *a, const char *amt, json_t **out, cg_err *e)
{
	struct settle_backend *in = ((struct flaky *)b)->inner;
	return in->faucet(in, a, amt, out, e);
}
static void fl_free(struct settle_backend *b)
{
	struct flaky *f = (struct flaky *)b;
	f->inner->free(f->inner);
	free(f);
}

static void t_repair(void **s)
{
	(void)s;
	struct fx f;
	cg_err e;
	/* store first, so the double can wrap a local backend on it */
	struct flaky *fl = calloc(1, sizeof *fl);
	fl->b = (struct settle_backend){"evm-double", fl_lock, fl_release, fl_refund, fl_status, fl_balance, fl_faucet,
					fl_free};
	memset(&f, 0, sizeof f);
	assert_true(sodium_init() >= 0);
	log_set_level(LOG_OFF);
	snprintf(f.dir, sizeof f.dir, "/tmp/cgmkt-XXXXXX");
	assert_non_null(mkdtemp(f.dir));
	snprintf(f.path, sizeof f.path, "%s/store.db", f.dir);
	assert_int_equal(store_open(f.path, 0, &f.st, &e), 0);
	node_key_generate(&f.key);
	snprintf(f.self, sizeof f.self, "node-self");
	assert_int_equal(chain_local_new(f.st, &fl->inner, &e), 0);
	assert_int_equal(market_new(f.st, &f.key, &fl->b, NULL, NULL, &f.m, &e), 0);
	f.reg = rpc_registry_new();
	assert_int_equal(market_register_rpc(f.m, f.reg), 0);

	/* The faucet refuses with a non-local backend. */
	ERR(&f, CG_E_FORBIDDEN, "market.settlement.faucet", json_pack("{s:s,s:s}", "address", CONS, "amount", "5"));
	json_t *minted = NULL;
	assert_int_equal(store_tx_begin(f.st, &e), 0);
	assert_int_equal(fl->inner->faucet(fl->inner, CONS, "200", &minted, &e), 0);
	assert_int_equal(store_tx_commit(f.st, &e), 0);
	json_decref(minted);
	char rid[64];
	json_t *a = order_for(&f, rid);
	json_t *b = issue(&f, rid, NULL);
	for (int i = 0; i < 2; i++)
		json_decref(OK(&f, "market.settlement.lock", json_pack("{s:s,s:s,s:s,s:s}", "actorId", CONS, "orderId",
									S(i ? b : a, "orderId"), "payer", CONS, "amount", "100")));
	down = 1;
	char d0[72], d1[72];
	fx_digest(&f, d0);
	ERR(&f, CG_E_UNAVAILABLE, "market.settlement.release", json_pack("{s:s,s:s}", "actorId", CONS, "orderId", S(a, "orderId")));
	ERR(&f, CG_E_TIMEOUT, "market.settlement.refund", json_pack("{s:s,s:s}", "actorId", PROV, "orderId", S(b, "orderId")));
	/* Nothing moved in the market or the escrow, only the two repair jobs (and their audit events). */
	json_t *st = OK(&f, "market.settlement.status", json_pack("{s:s}", "orderId", S(a, "orderId")));
	assert_string_equal(S(json_object_get(st, "settlement"), "status"), "settlement_locked");
	json_decref(st);
	fx_digest(&f, d1);
	assert_string_not_equal(d0, d1);
	json_t *r = OK(&f, "market.repair.retry", json_pack("{s:b}", "dryRun", 1));
	assert_int_equal(I(r, "processed"), 0); /* not due yet */
	assert_int_equal(I(r, "pending"), 2);
	json_decref(r);
	clock_shift_ms(2000);
	r = OK(&f, "market.repair.retry", json_object());
	assert_int_equal(I(r, "processed"), 2);
	assert_int_equal(I(r, "failed"), 2);
	assert_int_equal(I(r, "pending"), 2); /* still transient: kept, no duplicates */
	json_decref(r);
	down = 0;
	clock_shift_ms(10000);
	r = OK(&f, "market.repair.retry", json_object());
	assert_int_equal(I(r, "succeeded"), 2);
	assert_int_equal(I(r, "pending"), 0);
	json_decref(r);
	st = OK(&f, "market.settlement.status", json_pack("{s:s}", "orderId", S(a, "orderId")));
	assert_string_equal(S(json_object_get(st, "settlement"), "status"), "settlement_released");
	json_decref(st);
	st = OK(&f, "market.settlement.status", json_pack("{s:s}", "orderId", S(b, "orderId")));
	assert_string_equal(S(json_object_get(st, "settlement"), "status"), "settlement_refunded");
	json_decref(st);
	json_decref(a);
	json_decref(b);
	fx_close(&f);
}

static void t_faucet_disabled(void **s)
{
	(void)s;
	struct fx f;
	cg_err e;
	struct market_opts o;
	market_opts_default(&o);
	o.faucet = false;
	memset(&f, 0, sizeof f);
	log_set_level(LOG_OFF);
	snprintf(f.dir, sizeof f.dir, "/tmp/cgmkt-XXXXXX");
	assert_non_null(mkdtemp(f.dir));
	snprintf(f.path, sizeof f.path, "%s/store.db", f.dir);
	assert_int_equal(store_open(f.path, 0, &f.st, &e), 0);
	node_key_generate(&f.key);
	struct settle_backend *b;
	assert_int_equal(chain_local_new(f.st, &b, &e), 0);
	assert_int_equal(market_new(f.st, &f.key, b, NULL, &o, &f.m, &e), 0);
	f.reg = rpc_registry_new();
	assert_int_equal(market_register_rpc(f.m, f.reg), 0);
	ERR(&f, CG_E_FORBIDDEN, "market.settlement.faucet", json_pack("{s:s,s:s}", "address", CONS, "amount", "5"));
	fx_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_settle01_queue), cmocka_unit_test(t_release_payees), cmocka_unit_test(t_dispute),
		cmocka_unit_test(t_repair),         cmocka_unit_test(t_faucet_disabled),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
