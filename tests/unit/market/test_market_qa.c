/* Regressions from the acceptance review of the market (issue 3):
 *   - times: ISO 8601 strings as the seed's handlers take them (expireSweep now, ledger since/until), and
 *     since > until refused;
 *   - lease.issue: the provider may grant a lease; the [SPEC 02] form (expiresAt, providerActorId,
 *     policy.maxRequests) is accepted; lease.list with only an actorId lists that actor's leases;
 *   - ledger.append: the provider's cost is not second-guessed (maxCost still caps it); mismatch codes;
 *   - third-party verification of the ledger from `clawgrid export` data alone, with plain libsodium and
 *     the canonical form written in docs/market.md (no market code involved);
 *   - web3.resources.lease for the consumer a session is bound to queues the pre-pay with that payer. */
#include "fixture.h"

#define MKT_INTERNAL
#include "market/mkt.h"

#include <time.h>

#include "base/enc.h"
#include "node/node_int.h"

static void t_iso_times(void **s)
{
	(void)s;
	int64_t t = 0;
	assert_int_equal(mkt_parse_iso8601("1970-01-01T00:00:00Z", &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(mkt_parse_iso8601("2026-03-01T12:34:56.789Z", &t), 0);
	assert_int_equal(t, 1772368496789LL);
	assert_int_equal(mkt_parse_iso8601("2026-03-01T14:34:56.789+02:00", &t), 0);
	assert_int_equal(t, 1772368496789LL);
	assert_int_equal(mkt_parse_iso8601("2024-02-29", &t), 0);
	assert_int_equal(t, 1709164800000LL);
	assert_int_equal(mkt_parse_iso8601("2000-01-01T00:00Z", &t), 0);
	assert_int_equal(t, 946684800000LL);
	static const char *const bad[] = {"2023-02-29", "2026-1-01",          "2026-01-01T",   "2026-01-01T25:00Z",
					  "2026-01-01Z", "2026-01-01T00:00:00.Z", "2026-01-01 x", "",
					  "20260101",   "2026-01-01T00:00:00+2", NULL};
	for (int i = 0; bad[i]; i++)
		if (mkt_parse_iso8601(bad[i], &t) == 0)
			fail_msg("accepted %s", bad[i]);

	struct fx f;
	fx_open(&f);
	char rid[64];
	publish(&f, rid);
	json_t *l = issue(&f, rid, NULL);
	/* The sweep takes "now" as an ISO time: a time past the lease's expiry expires it. */
	json_t *r = OK(&f, "market.lease.expireSweep", json_pack("{s:s}", "now", "2280-01-01T00:00:00Z"));
	assert_int_equal(json_integer_value(json_object_get(r, "expired")), 1);
	json_decref(r);
	json_t *g = OK(&f, "market.lease.get", json_pack("{s:s}", "leaseId", S(l, "leaseId")));
	assert_string_equal(S(json_object_get(g, "lease"), "status"), "lease_expired");
	json_decref(g);
	/* The ledger's since/until take ISO times too. */
	json_t *e0 = OK(&f, "market.ledger.list", json_pack("{s:s,s:s}", "since", "1970-01-01", "until", "2280-01-01"));
	assert_int_equal(json_array_size(json_object_get(e0, "entries")), 0);
	json_decref(e0);
	json_decref(l);
	fx_close(&f);
}

static void t_issue_forms(void **s)
{
	(void)s;
	struct fx f;
	fx_open(&f);
	char rid[64];
	publish(&f, rid);
	/* The provider grants a lease to a consumer. */
	json_t *l1 = OK(&f, "market.lease.issue",
			json_pack("{s:s,s:s,s:s,s:i}", "actorId", PROV, "resourceId", rid, "consumerActorId", CONS,
				  "ttlMs", 60000));
	assert_int_equal(strncmp(S(l1, "accessToken"), "tok_", 4), 0);
	/* The [SPEC 02] form: absolute expiresAt (ms), the provider named, a request policy. */
	int64_t at = clock_now_ms() + 3600000;
	json_t *l2 = OK(&f, "market.lease.issue",
			json_pack("{s:s,s:s,s:s,s:s,s:I,s:{s:i,s:i}}", "actorId", CONS, "resourceId", rid,
				  "consumerActorId", CONS, "providerActorId", PROV, "expiresAt", (json_int_t)at, "policy",
				  "maxRequests", 100, "rateLimit", 60));
	assert_int_equal(json_integer_value(json_object_get(l2, "expiresAt")), at);
	json_t *g = OK(&f, "market.lease.get", json_pack("{s:s}", "leaseId", S(l2, "leaseId")));
	json_t *lease = json_object_get(g, "lease");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(lease, "policy"), "maxRequests")), 100);
	assert_null(json_object_get(lease, "accessToken"));
	char *dump = json_dumps(g, 0);
	assert_null(strstr(dump, "tok_"));
	free(dump);
	json_decref(g);
	/* ...and with an ISO expiresAt, a day from now. */
	char iso[40];
	time_t day = (time_t)((clock_now_ms() + 86400000) / 1000);
	struct tm tm;
	gmtime_r(&day, &tm);
	strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_t *l3 = OK(&f, "market.lease.issue",
			json_pack("{s:s,s:s,s:s,s:s}", "actorId", CONS, "resourceId", rid, "consumerActorId", CONS,
				  "expiresAt", iso));
	assert_int_equal(json_integer_value(json_object_get(l3, "expiresAt")), (int64_t)day * 1000);
	json_decref(l3);
	ERR(&f, CG_E_INVALID_ARGUMENT, "market.lease.issue",
	    json_pack("{s:s,s:s,s:s,s:s}", "actorId", CONS, "resourceId", rid, "consumerActorId", CONS, "expiresAt",
		      "2290-01-01T00:00:00Z")); /* more than 7 days away */

	/* lease.list with just an actorId: that actor's leases (as provider or consumer), nobody else's. */
	json_t *other = OK(&f, "market.lease.issue",
			   json_pack("{s:s,s:s,s:s,s:i}", "actorId", THIRD, "resourceId", rid, "consumerActorId",
				     THIRD, "ttlMs", 60000));
	json_t *lc = OK(&f, "market.lease.list", json_pack("{s:s}", "actorId", CONS));
	assert_int_equal(json_array_size(json_object_get(lc, "leases")), 3);
	json_decref(lc);
	json_t *lp = OK(&f, "market.lease.list", json_pack("{s:s}", "actorId", PROV));
	assert_int_equal(json_array_size(json_object_get(lp, "leases")), 4);
	json_decref(lp);
	json_t *lt = OK(&f, "market.lease.list", json_pack("{s:s}", "actorId", THIRD));
	assert_int_equal(json_array_size(json_object_get(lt, "leases")), 1);
	assert_string_equal(S(json_array_get(json_object_get(lt, "leases"), 0), "leaseId"), S(other, "leaseId"));
	json_decref(lt);
	ERR(&f, CG_E_FORBIDDEN, "market.lease.list", json_pack("{s:s,s:s}", "actorId", THIRD, "consumerActorId", CONS));
	json_decref(other);
	json_decref(l1);
	json_decref(l2);
	fx_close(&f);
}

static void t_ledger_cost(void **s)
{
	(void)s;
	struct fx f;
	fx_open(&f);
	char rid[64];
	publish(&f, rid); /* 2 per token */
	json_t *l = issue(&f, rid, "100");
	/* A minimum charge, a free tier: the provider's cost stands as given. */
	json_decref(OK(&f, "market.ledger.append", entry_params(PROV, l, rid, "10", "25")));
	json_decref(OK(&f, "market.ledger.append", entry_params(PROV, l, rid, "5", "0")));
	/* ...but the lease's maxCost still bounds the total. */
	ERR(&f, CG_E_QUOTA_EXCEEDED, "market.ledger.append", entry_params(PROV, l, rid, "40", "80"));
	json_t *sum = OK(&f, "market.ledger.summary", json_pack("{s:s}", "leaseId", S(l, "leaseId")));
	assert_string_equal(S(json_object_get(sum, "summary"), "totalCost"), "25");
	json_decref(sum);
	json_decref(l);
	fx_close(&f);
}

/* The column index of name in an exported table. */
static int col(json_t *table, const char *name)
{
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(table, "columns"), i, c) if (strcmp(json_string_value(c), name) == 0) return (int)i;
	fail_msg("no column %s", name);
	return -1;
}

/* sha256:<hex> of the canonical form (docs/market.md): keys sorted, no whitespace. The entries hold only
 * ASCII strings and integers, for which this is exactly RFC 8785. */
static void canon_hash(json_t *v, char out[72])
{
	char *c = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
	uint8_t d[32];
	crypto_hash_sha256(d, (const unsigned char *)c, strlen(c));
	free(c);
	memcpy(out, "sha256:", 7);
	hex_encode(out + 7, d, 32);
}

static bool sig_ok(const char *pkhex, const char *msg, const char *sighex)
{
	uint8_t pk[32], sig[64];
	if (hex_decode(pk, 32, pkhex, strlen(pkhex), false) < 0 || hex_decode(sig, 64, sighex, strlen(sighex), false) < 0)
		return false;
	return crypto_sign_verify_detached(sig, (const unsigned char *)msg, strlen(msg), pk) == 0;
}

static void t_verify_from_export(void **s)
{
	(void)s;
	struct fx f;
	fx_open(&f);
	char rid[64];
	publish(&f, rid);
	json_t *l = issue(&f, rid, NULL);
	for (int i = 1; i <= 4; i++) {
		char q[16], c[16];
		snprintf(q, sizeof q, "%d", i);
		snprintf(c, sizeof c, "%d", i * 2);
		json_decref(OK(&f, "market.ledger.append", entry_params(PROV, l, rid, q, c)));
	}
	json_t *doc = NULL;
	cg_err e;
	assert_int_equal(node_dump_export(f.st, &doc, &e), 0);
	json_t *tables = json_object_get(doc, "tables");
	json_t *led = json_object_get(tables, "mkt_ledger"), *heads = json_object_get(tables, "mkt_ledger_heads");
	assert_non_null(led);
	assert_non_null(heads);
	int cdata = col(led, "data");
	char prev[80] = "", pk[72] = "";
	int64_t seq = 0;
	size_t i;
	json_t *row;
	json_array_foreach(json_object_get(led, "rows"), i, row)
	{
		json_t *ent = json_loads(json_string_value(json_array_get(row, (size_t)cdata)), 0, NULL);
		assert_non_null(ent);
		assert_int_equal(json_integer_value(json_object_get(ent, "seq")), ++seq);
		assert_string_equal(S(ent, "prevHash"), prev);
		if (!*pk)
			snprintf(pk, sizeof pk, "%s", S(ent, "signer"));
		assert_string_equal(S(ent, "signer"), pk);
		/* entryHash = sha256(canonical(entry without entryHash and signature)) */
		json_t *body = json_deep_copy(ent);
		json_object_del(body, "entryHash");
		json_object_del(body, "signature");
		char h[72];
		canon_hash(body, h);
		json_decref(body);
		assert_string_equal(h, S(ent, "entryHash"));
		/* signature = Ed25519("clawgrid-ledger-entry/v1\n" + entryHash) by signer */
		char msg[200];
		snprintf(msg, sizeof msg, "clawgrid-ledger-entry/v1\n%s", h);
		assert_true(sig_ok(pk, msg, S(ent, "signature")));
		snprintf(prev, sizeof prev, "%s", h);
		json_decref(ent);
	}
	assert_int_equal(seq, 4);
	/* The signed head names the newest entry: dropping it would show. */
	json_t *hr = json_array_get(json_object_get(heads, "rows"), 0);
	char msg[300];
	snprintf(msg, sizeof msg, "clawgrid-ledger-head/v1\n%s\n%lld\n%s",
		 json_string_value(json_array_get(hr, (size_t)col(heads, "providerActorId"))),
		 (long long)json_integer_value(json_array_get(hr, (size_t)col(heads, "pseq"))),
		 json_string_value(json_array_get(hr, (size_t)col(heads, "hash"))));
	assert_int_equal(json_integer_value(json_array_get(hr, (size_t)col(heads, "pseq"))), 4);
	assert_string_equal(json_string_value(json_array_get(hr, (size_t)col(heads, "hash"))), prev);
	assert_true(sig_ok(pk, msg, json_string_value(json_array_get(hr, (size_t)col(heads, "sig")))));
	/* The signer is this node's key. */
	char nodepk[65];
	hex_encode(nodepk, f.key.pk, 32);
	assert_string_equal(pk, nodepk);
	json_decref(doc);
	json_decref(l);
	fx_close(&f);
}

static void t_web3_lease_for_consumer(void **s)
{
	(void)s;
	struct fx f;
	fx_open(&f);
	char rid[64];
	publish(&f, rid);
	json_t *l = OK(&f, "web3.resources.lease",
		       json_pack("{s:s,s:s,s:i,s:s}", "resourceId", rid, "consumerActorId", CONS, "ttlMs", 60000, "maxCost",
				 "30"));
	assert_true(json_is_true(json_object_get(l, "settlementQueued")));
	json_t *q = OK(&f, "market.settlement.queueList", json_object());
	json_t *ent = json_array_get(json_object_get(q, "entries"), 0);
	assert_string_equal(S(ent, "orderId"), S(l, "orderId"));
	assert_string_equal(S(ent, "payer"), CONS);
	json_decref(q);
	/* The flush locks it once the payer has the funds; a second flush locks nothing. */
	fund(&f, CONS, "30");
	json_t *r = OK(&f, "market.settlement.flush", json_object());
	assert_int_equal(json_integer_value(json_object_get(r, "succeeded")), 1);
	json_decref(r);
	r = OK(&f, "market.settlement.flush", json_object());
	assert_int_equal(json_integer_value(json_object_get(r, "processed")), 0);
	json_decref(r);
	json_t *b = OK(&f, "market.settlement.balance", json_pack("{s:s}", "address", CONS));
	assert_string_equal(S(b, "balance"), "0");
	assert_string_equal(S(b, "escrowed"), "30");
	json_decref(b);
	json_decref(l);
	fx_close(&f);
}

/* Consent revocation and refunds share one helper: both revoke the order's leases and its other ready
 * deliveries (the leases then stop authorizing). */
static void t_revoke_deps(void **s)
{
	(void)s;
	struct fx f;
	fx_open(&f);
	char rid[64];
	publish(&f, rid);
	json_t *l = issue(&f, rid, NULL);
	json_t *o = OK(&f, "market.order.get", json_pack("{s:s}", "orderId", S(l, "orderId")));
	const char *cid = S(l, "consentId");
	json_decref(OK(&f, "market.consent.revoke", json_pack("{s:s,s:s,s:s}", "actorId", CONS, "consentId", cid, "reason",
							      "changed my mind")));
	json_t *g = OK(&f, "market.lease.get", json_pack("{s:s}", "leaseId", S(l, "leaseId")));
	assert_string_equal(S(json_object_get(g, "lease"), "status"), "lease_revoked");
	json_decref(g);
	json_t *d = OK(&f, "market.delivery.get", json_pack("{s:s}", "deliveryId", S(l, "deliveryId")));
	assert_string_equal(S(json_object_get(d, "delivery"), "status"), "delivery_revoked");
	json_decref(d);
	json_t *oo = OK(&f, "market.order.get", json_pack("{s:s}", "orderId", S(l, "orderId")));
	assert_string_equal(S(json_object_get(oo, "order"), "status"), "consent_revoked");
	json_decref(oo);
	json_decref(o);
	json_decref(l);
	fx_close(&f);
}

/* Flush: entries that used up their attempts must not take the places of due entries within the limit
 * (they used to stay selected and starve the queue once `limit` of them piled up). */
static void t_flush_given_up(void **s)
{
	(void)s;
	struct fx f;
	fx_open(&f);
	/* A market over the same store with one attempt per entry and a 10 ms backoff. */
	struct market_opts o;
	market_opts_default(&o);
	o.flush_max_attempts = 1;
	o.backoff_base_ms = 10;
	o.backoff_max_ms = 10;
	struct settle_backend *b = NULL;
	struct market *m2 = NULL;
	cg_err e;
	assert_int_equal(chain_local_new(f.st, &b, &e), 0);
	assert_int_equal(market_new(f.st, &f.key, b, f.self, &o, &m2, &e), 0);
	char rid[64];
	publish(&f, rid);
	json_t *la = issue(&f, rid, NULL), *lb = issue(&f, rid, NULL);
	fund(&f, CONS, "10");
	json_t *r = NULL, *qp;
	/* A cannot be paid (1000 > 10) and is given up after its one attempt; B can. (market_call borrows its
	 * params.) */
	qp = json_pack("{s:s,s:s,s:s}", "orderId", S(la, "orderId"), "payer", CONS, "amount", "1000");
	assert_int_equal(market_call(m2, "market.settlement.queue", qp, &r, &e), 0);
	json_decref(qp);
	json_decref(r);
	json_t *p = json_pack("{s:i}", "limit", 1);
	assert_int_equal(market_call(m2, "market.settlement.flush", p, &r, &e), 0);
	assert_int_equal(json_integer_value(json_object_get(r, "failed")), 1);
	json_decref(r);
	qp = json_pack("{s:s,s:s,s:s}", "orderId", S(lb, "orderId"), "payer", CONS, "amount", "5");
	assert_int_equal(market_call(m2, "market.settlement.queue", qp, &r, &e), 0);
	json_decref(qp);
	json_decref(r);
	usleep(30 * 1000); /* A's next attempt time passes: only its used-up attempts keep it out now */
	assert_int_equal(market_call(m2, "market.settlement.flush", p, &r, &e), 0);
	assert_int_equal(json_integer_value(json_object_get(r, "succeeded")), 1);
	assert_int_equal(json_integer_value(json_object_get(r, "pending")), 1); /* A stays visible */
	json_decref(r);
	json_decref(p);
	json_t *st = OK(&f, "market.settlement.status", json_pack("{s:s}", "orderId", S(lb, "orderId")));
	assert_string_equal(S(json_object_get(st, "settlement"), "status"), "settlement_locked");
	json_decref(st);
	market_free(m2);
	json_decref(la);
	json_decref(lb);
	fx_close(&f);
}

/* Flush: an entry whose order is not ready is skipped and stays due, but behind the others, so that a
 * pile of them cannot starve ready entries; it locks as soon as its order is ready. */
static void t_flush_skipped_fair(void **s)
{
	(void)s;
	struct fx f;
	fx_open(&f);
	char rid[64];
	publish(&f, rid);
	json_t *l = issue(&f, rid, NULL);
	fund(&f, CONS, "10");
	json_decref(OK(&f, "market.settlement.queue",
		       json_pack("{s:s,s:s,s:s}", "orderId", "ord_elsewhere", "payer", CONS, "amount", "3")));
	json_decref(OK(&f, "market.settlement.queue",
		       json_pack("{s:s,s:s,s:s}", "orderId", S(l, "orderId"), "payer", CONS, "amount", "5")));
	json_t *r = OK(&f, "market.settlement.flush", json_pack("{s:i}", "limit", 1));
	assert_int_equal(json_integer_value(json_object_get(r, "skipped")), 1);
	json_decref(r);
	r = OK(&f, "market.settlement.flush", json_pack("{s:i}", "limit", 1));
	assert_int_equal(json_integer_value(json_object_get(r, "succeeded")), 1);
	assert_int_equal(json_integer_value(json_object_get(r, "pending")), 1);
	json_decref(r);
	/* The skipped one is still due: the next flush looks at it again at once. */
	r = OK(&f, "market.settlement.flush", json_object());
	assert_int_equal(json_integer_value(json_object_get(r, "processed")), 1);
	assert_int_equal(json_integer_value(json_object_get(r, "skipped")), 1);
	json_decref(r);
	json_decref(l);
	fx_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_iso_times),	       cmocka_unit_test(t_issue_forms),
		cmocka_unit_test(t_ledger_cost),	       cmocka_unit_test(t_verify_from_export),
		cmocka_unit_test(t_web3_lease_for_consumer), cmocka_unit_test(t_revoke_deps),
		cmocka_unit_test(t_flush_given_up),	       cmocka_unit_test(t_flush_skipped_fair),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
