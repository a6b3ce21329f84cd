/* LEDGER-01 (entryHash recomputable; consumers and third parties cannot append), LEDGER-02 (summary equals
 * the sum of list), the hash chain and signatures: verify catches altered, dropped, inserted and reordered
 * entries, a dropped newest entry, and entries signed by another key. */
#include "fixture.h"

#include "base/amount.h"
#include "base/enc.h"
#include "crypto/jcs.h"

static void setup_lease(struct fx *f, char rid[64], json_t **lease)
{
	publish(f, rid);
	*lease = issue(f, rid, NULL);
}

static void t_ledger01(void **s)
{
	(void)s;
	struct fx f;
	fx_open(&f);
	char rid[64];
	json_t *l;
	setup_lease(&f, rid, &l);
	char d0[72], d1[72];
	fx_digest(&f, d0);
	/* Consumer, third party, missing actor: refused, nothing written. */
	ERR(&f, CG_E_FORBIDDEN, "market.ledger.append", entry_params(CONS, l, rid, "10", "20"));
	ERR(&f, CG_E_FORBIDDEN, "market.ledger.append", entry_params(THIRD, l, rid, "10", "20"));
	json_t *p = entry_params(PROV, l, rid, "10", "20");
	json_object_del(p, "actorId");
	ERR(&f, CG_E_AUTH_REQUIRED, "market.ledger.append", p);
	/* A third party posing as the provider of someone else's lease: not allowed at all. */
	p = entry_params(THIRD, l, rid, "10", "20");
	json_object_set_new(json_object_get(p, "entry"), "providerActorId", json_string(THIRD));
	ERR(&f, CG_E_FORBIDDEN, "market.ledger.append", p);
	/* The lease's provider naming another consumer or resource: a mismatch (seed: E_CONFLICT). */
	p = entry_params(PROV, l, rid, "10", "20");
	json_object_set_new(json_object_get(p, "entry"), "consumerActorId", json_string(THIRD));
	ERR(&f, CG_E_CONFLICT, "market.ledger.append", p);
	p = entry_params(PROV, l, rid, "10", "20");
	json_object_set_new(json_object_get(p, "entry"), "resourceId", json_string("res_other"));
	ERR(&f, CG_E_CONFLICT, "market.ledger.append", p);
	p = entry_params(PROV, l, rid, "10", "20");
	json_object_set_new(json_object_get(p, "entry"), "kind", json_string("search"));
	ERR(&f, CG_E_INVALID_ARGUMENT, "market.ledger.append", p); /* token is not a search unit */
	p = entry_params(PROV, l, rid, "10", "20");
	json_object_set_new(json_object_get(p, "entry"), "currency", json_string("EUR"));
	ERR(&f, CG_E_INVALID_ARGUMENT, "market.ledger.append", p);
	fx_digest(&f, d1);
	assert_string_equal(d0, d1);

	json_t *r = OK(&f, "market.ledger.append", entry_params(PROV, l, rid, "10", "20"));
	char lid[64], eh[80];
	snprintf(lid, sizeof lid, "%s", S(r, "ledgerId"));
	snprintf(eh, sizeof eh, "%s", S(r, "entryHash"));
	json_decref(r);
	/* entryHash is recomputable: JCS of the listed entry without entryHash and signature (the signer key is
	 * covered, docs/market.md "Verifying the ledger"). */
	json_t *ls = OK(&f, "market.ledger.list", json_pack("{s:s}", "leaseId", S(l, "leaseId")));
	json_t *ent = json_deep_copy(json_array_get(json_object_get(ls, "entries"), 0));
	assert_string_equal(S(ent, "ledgerId"), lid);
	assert_int_equal(strlen(S(ent, "signer")), 64);
	json_object_del(ent, "entryHash");
	json_object_del(ent, "signature");
	char h[72];
	cg_err e;
	assert_int_equal(jcs_sha256(ent, h, &e), 0);
	assert_string_equal(h, eh);
	/* The signature verifies with the node key over the context string. */
	char msg[200];
	snprintf(msg, sizeof msg, "clawgrid-ledger-entry/v1\n%s", eh);
	uint8_t sig[64];
	json_t *full = json_array_get(json_object_get(ls, "entries"), 0);
	assert_int_equal(hex_decode(sig, 64, S(full, "signature"), 128, false), 0);
	assert_true(ed25519_verify(f.key.pk, msg, strlen(msg), sig));
	json_decref(ent);
	json_decref(ls);
	/* Idempotency key: a retry returns the first entry. */
	p = entry_params(PROV, l, rid, "1", "2");
	json_object_set_new(p, "idempotencyKey", json_string("req-1"));
	json_t *a = OK(&f, "market.ledger.append", json_deep_copy(p));
	json_t *b = OK(&f, "market.ledger.append", p);
	assert_string_equal(S(a, "ledgerId"), S(b, "ledgerId"));
	json_decref(a);
	json_decref(b);
	/* The C entry point the provider routes use. */
	json_t *cp = entry_params(PROV, l, rid, "3", "6");
	json_t *ce = json_incref(json_object_get(cp, "entry"));
	json_decref(cp);
	json_t *cr = NULL;
	assert_int_equal(market_ledger_append(f.m, PROV, ce, NULL, &cr, &e), 0);
	assert_int_equal(json_integer_value(json_object_get(cr, "seq")), 3);
	json_decref(cr);
	assert_int_equal(market_ledger_append(f.m, CONS, ce, NULL, &cr, &e), -CG_E_FORBIDDEN);
	json_decref(ce);
	json_decref(l);
	fx_close(&f);
}

static void t_ledger02_summary(void **s)
{
	(void)s;
	struct fx f;
	fx_open(&f);
	char rid[64];
	json_t *l;
	setup_lease(&f, rid, &l);
	/* call units are not the priced unit: any cost is accepted, summed per unit */
	for (int i = 1; i <= 25; i++) {
		char q[16], c[16];
		snprintf(q, sizeof q, "%d", i);
		snprintf(c, sizeof c, "%d", i * 2);
		json_decref(OK(&f, "market.ledger.append", entry_params(PROV, l, rid, q, c)));
		if (i % 5 == 0) {
			json_t *p = entry_params(PROV, l, rid, "1", "7");
			json_object_set_new(json_object_get(p, "entry"), "unit", json_string("call"));
			json_decref(OK(&f, "market.ledger.append", p));
		}
	}
	/* a huge value exercises uint256 */
	json_t *p = entry_params(PROV, l, rid, "1", "100000000000000000000000000000000000000");
	json_object_set_new(json_object_get(p, "entry"), "unit", json_string("call"));
	json_decref(OK(&f, "market.ledger.append", p));
	json_t *ls = OK(&f, "market.ledger.list", json_pack("{s:s,s:i}", "resourceId", rid, "limit", 1000));
	json_t *ents = json_object_get(ls, "entries");
	assert_int_equal(json_array_size(ents), 31);
	char tot[U256_DEC_MAX] = "0", tok_q[U256_DEC_MAX] = "0", call_c[U256_DEC_MAX] = "0";
	size_t i;
	json_t *x;
	json_array_foreach(ents, i, x)
	{
		assert_int_equal(amount_add(tot, S(x, "cost"), tot), 0);
		if (strcmp(S(x, "unit"), "token") == 0)
			assert_int_equal(amount_add(tok_q, S(x, "quantity"), tok_q), 0);
		else
			assert_int_equal(amount_add(call_c, S(x, "cost"), call_c), 0);
	}
	json_t *sm = OK(&f, "market.ledger.summary", json_pack("{s:s}", "resourceId", rid));
	json_t *sum = json_object_get(sm, "summary");
	assert_string_equal(S(sum, "totalCost"), tot);
	assert_string_equal(S(sum, "currency"), "USDC");
	json_t *bu = json_object_get(sum, "byUnit");
	assert_string_equal(S(json_object_get(bu, "token"), "quantity"), tok_q);
	assert_string_equal(S(json_object_get(bu, "token"), "quantity"), "325");
	assert_string_equal(S(json_object_get(bu, "call"), "cost"), call_c);
	json_decref(sm);
	json_decref(ls);
	/* filters: consumer and time window */
	sm = OK(&f, "market.ledger.summary", json_pack("{s:s}", "consumerActorId", THIRD));
	assert_string_equal(S(json_object_get(sm, "summary"), "totalCost"), "0");
	json_decref(sm);
	ls = OK(&f, "market.ledger.list", json_pack("{s:I}", "since", (json_int_t)(clock_now_ms() + 100000)));
	assert_int_equal(json_array_size(json_object_get(ls, "entries")), 0);
	json_decref(ls);
	json_decref(l);
	fx_close(&f);
}

static json_t *verify(struct fx *f)
{
	return OK(f, "market.ledger.verify", json_object());
}

static void expect_problem(struct fx *f, const char *needle)
{
	json_t *v = verify(f);
	assert_false(json_is_true(json_object_get(v, "ok")));
	char *d = json_dumps(v, 0);
	if (!strstr(d, needle))
		fail_msg("verify did not report '%s': %s", needle, d);
	free(d);
	json_decref(v);
}

static void exec(struct fx *f, const char *sql)
{
	char *err = NULL;
	if (sqlite3_exec(store_db(f->st), sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", sql, err);
}

static void t_verify_tamper(void **s)
{
	(void)s;
	struct fx f;
	fx_open(&f);
	char rid[64];
	json_t *l;
	setup_lease(&f, rid, &l);
	for (int i = 0; i < 6; i++)
		json_decref(OK(&f, "market.ledger.append", entry_params(PROV, l, rid, "5", "10")));
	json_t *v = verify(&f);
	assert_true(json_is_true(json_object_get(v, "ok")));
	assert_int_equal(json_integer_value(json_object_get(v, "entries")), 6);
	json_decref(v);
	/* The table refuses edits outright... */
	assert_int_not_equal(sqlite3_exec(store_db(f.st), "UPDATE mkt_ledger SET ts=0", NULL, NULL, NULL), SQLITE_OK);
	assert_int_not_equal(sqlite3_exec(store_db(f.st), "DELETE FROM mkt_ledger WHERE pseq=6", NULL, NULL, NULL),
			     SQLITE_OK);
	/* ...so an attacker with the file drops the guards first; verify still catches every edit. */
	exec(&f, "DROP TRIGGER mkt_ledger_append_only_u; DROP TRIGGER mkt_ledger_append_only_d;");
	exec(&f, "SAVEPOINT t; UPDATE mkt_ledger SET data=json_set(data,'$.cost','1') WHERE pseq=3;");
	expect_problem(&f, "entryHash does not match");
	exec(&f, "ROLLBACK TO t; RELEASE t;");
	exec(&f, "SAVEPOINT t; UPDATE mkt_ledger SET data=json_set(data,'$.cost','1',"
		 "'$.entryHash','sha256:0000000000000000000000000000000000000000000000000000000000000000') WHERE pseq=3;");
	expect_problem(&f, "signature does not verify");
	exec(&f, "ROLLBACK TO t; RELEASE t;");
	exec(&f, "SAVEPOINT t; DELETE FROM mkt_ledger WHERE pseq=2;");
	expect_problem(&f, "entries missing");
	exec(&f, "ROLLBACK TO t; RELEASE t;");
	exec(&f, "SAVEPOINT t; DELETE FROM mkt_ledger WHERE pseq=6;");
	expect_problem(&f, "newest entries are missing");
	exec(&f, "ROLLBACK TO t; RELEASE t;");
	/* Insert a copy of an entry (replay) under a new id/seq. */
	exec(&f, "SAVEPOINT t; INSERT INTO mkt_ledger(id,ts,providerActorId,consumerActorId,leaseId,resourceId,pseq,data)"
		 " SELECT 'led_x',ts,providerActorId,consumerActorId,leaseId,resourceId,7,data FROM mkt_ledger WHERE pseq=6;");
	expect_problem(&f, "index columns disagree");
	exec(&f, "ROLLBACK TO t; RELEASE t;");
	/* Swap two entries' positions. */
	exec(&f, "SAVEPOINT t; UPDATE mkt_ledger SET pseq=100 WHERE pseq=2; UPDATE mkt_ledger SET pseq=2 WHERE pseq=3;"
		 " UPDATE mkt_ledger SET pseq=3 WHERE pseq=100;");
	expect_problem(&f, "prevHash does not link");
	exec(&f, "ROLLBACK TO t; RELEASE t;");
	/* Roll the head back one entry. */
	exec(&f, "SAVEPOINT t; UPDATE mkt_ledger_heads SET pseq=5;");
	expect_problem(&f, "head signature does not verify");
	exec(&f, "ROLLBACK TO t; RELEASE t;");
	v = verify(&f);
	assert_true(json_is_true(json_object_get(v, "ok")));
	json_decref(v);
	json_decref(l);
	fx_close(&f);
}

/* A market with another node key sees the entries as foreign. */
static void t_verify_foreign_key(void **s)
{
	(void)s;
	struct fx f;
	fx_open(&f);
	char rid[64];
	json_t *l;
	setup_lease(&f, rid, &l);
	json_decref(OK(&f, "market.ledger.append", entry_params(PROV, l, rid, "5", "10")));
	node_key_generate(&f.key); /* the market borrows f.key: now it holds another key */
	expect_problem(&f, "not this node's");
	json_decref(l);
	fx_close(&f);
}

static void t_max_cost(void **s)
{
	(void)s;
	struct fx f;
	fx_open(&f);
	char rid[64];
	publish(&f, rid);
	json_t *l = issue(&f, rid, "30");
	json_decref(OK(&f, "market.ledger.append", entry_params(PROV, l, rid, "10", "20")));
	ERR(&f, CG_E_QUOTA_EXCEEDED, "market.ledger.append", entry_params(PROV, l, rid, "6", "12"));
	json_decref(OK(&f, "market.ledger.append", entry_params(PROV, l, rid, "5", "10")));
	json_decref(l);
	fx_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_ledger01),        cmocka_unit_test(t_ledger02_summary),
		cmocka_unit_test(t_verify_tamper),   cmocka_unit_test(t_verify_foreign_key),
		cmocka_unit_test(t_max_cost),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
