/* Bad input to every method: wrong types, unknown fields, oversize fields, unknown ids, illegal transitions
 * -> the right E_* code, and no state change (digest of every table). */
#include "fixture.h"

struct ctx {
	struct fx *f;
	int n;
};

static void each_method(void *arg, const char *name)
{
	struct ctx *c = arg;
	char big[300];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = 0;
	/* actorId of the wrong type, oversize, with bad characters; an unknown field; a non-object param */
	ERR(c->f, CG_E_INVALID_ARGUMENT, name, json_pack("{s:i}", "actorId", 5));
	ERR(c->f, CG_E_INVALID_ARGUMENT, name, json_pack("{s:s}", "actorId", big));
	ERR(c->f, CG_E_INVALID_ARGUMENT, name, json_pack("{s:s}", "actorId", "bad actor\n"));
	ERR(c->f, CG_E_INVALID_ARGUMENT, name, json_pack("{s:s}", "actorId", "0x00000000000000000000000000000000000000zz"));
	ERR(c->f, CG_E_INVALID_ARGUMENT, name, json_pack("{s:s,s:i}", "actorId", PROV, "bogusField", 1));
	c->n++;
}

struct bad {
	const char *method;
	const char *params; /* JSON; $R resource id, $L lease id, $O order id, $D dispute id */
	enum cg_code code;
};

static const struct bad cases[] = {
	/* resource.publish validation limits (seed §2) */
	{"market.resource.publish", "{\"actorId\":\"provider-1\"}", CG_E_INVALID_ARGUMENT},
	{"market.resource.publish", "{\"resource\":{}}", CG_E_AUTH_REQUIRED},
	{"market.resource.publish", "{\"actorId\":\"provider-1\",\"resource\":[]}", CG_E_INVALID_ARGUMENT},
	{"market.resource.publish", "{\"actorId\":\"provider-1\",\"resource\":{\"kind\":\"gpu\"}}", CG_E_INVALID_ARGUMENT},
	{"market.resource.publish",
	 "{\"actorId\":\"provider-1\",\"resource\":{\"kind\":\"model\",\"label\":\"\",\"price\":{\"unit\":\"token\","
	 "\"amount\":\"1\",\"currency\":\"USDC\"},\"offer\":{\"assetId\":\"a\",\"assetType\":\"api\",\"currency\":\"USDC\","
	 "\"usageScope\":{},\"deliveryType\":\"api\"}}}",
	 CG_E_INVALID_ARGUMENT},
	{"market.resource.publish",
	 "{\"actorId\":\"provider-1\",\"resource\":{\"kind\":\"model\",\"label\":"
	 "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"price\":{\"unit\":"
	 "\"token\",\"amount\":\"1\",\"currency\":\"USDC\"},\"offer\":{\"assetId\":\"a\",\"assetType\":\"api\","
	 "\"currency\":\"USDC\",\"usageScope\":{},\"deliveryType\":\"api\"}}}",
	 CG_E_INVALID_ARGUMENT},
	{"market.resource.publish",
	 "{\"actorId\":\"provider-1\",\"resource\":{\"kind\":\"model\",\"label\":\"l\",\"tags\":[\"a\",\"a\"],\"price\":"
	 "{\"unit\":\"token\",\"amount\":\"1\",\"currency\":\"USDC\"},\"offer\":{\"assetId\":\"a\",\"assetType\":\"api\","
	 "\"currency\":\"USDC\",\"usageScope\":{},\"deliveryType\":\"api\"}}}",
	 CG_E_INVALID_ARGUMENT},
	{"market.resource.publish",
	 "{\"actorId\":\"provider-1\",\"resource\":{\"kind\":\"model\",\"label\":\"l\",\"tags\":[\"1\",\"2\",\"3\",\"4\","
	 "\"5\",\"6\",\"7\",\"8\",\"9\",\"10\",\"11\",\"12\",\"13\"],\"price\":{\"unit\":\"token\",\"amount\":\"1\","
	 "\"currency\":\"USDC\"},\"offer\":{\"assetId\":\"a\",\"assetType\":\"api\",\"currency\":\"USDC\",\"usageScope\":"
	 "{},\"deliveryType\":\"api\"}}}",
	 CG_E_INVALID_ARGUMENT},
	{"market.resource.publish",
	 "{\"actorId\":\"provider-1\",\"resource\":{\"kind\":\"model\",\"label\":\"l\",\"tags\":["
	 "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"],\"price\":{\"unit\":\"token\",\"amount\":\"1\",\"currency\":\"USDC\"},"
	 "\"offer\":{\"assetId\":\"a\",\"assetType\":\"api\",\"currency\":\"USDC\",\"usageScope\":{},\"deliveryType\":"
	 "\"api\"}}}",
	 CG_E_INVALID_ARGUMENT},
	{"market.resource.publish",
	 "{\"actorId\":\"provider-1\",\"resource\":{\"kind\":\"model\",\"label\":\"l\",\"price\":{\"unit\":\"query\","
	 "\"amount\":\"1\",\"currency\":\"USDC\"},\"offer\":{\"assetId\":\"a\",\"assetType\":\"api\",\"currency\":\"USDC\","
	 "\"usageScope\":{},\"deliveryType\":\"api\"}}}",
	 CG_E_INVALID_ARGUMENT},
	{"market.resource.publish",
	 "{\"actorId\":\"provider-1\",\"resource\":{\"kind\":\"model\",\"label\":\"l\",\"price\":{\"unit\":\"token\","
	 "\"amount\":\"01\",\"currency\":\"USDC\"},\"offer\":{\"assetId\":\"a\",\"assetType\":\"api\",\"currency\":\"USDC\","
	 "\"usageScope\":{},\"deliveryType\":\"api\"}}}",
	 CG_E_INVALID_ARGUMENT},
	{"market.resource.publish",
	 "{\"actorId\":\"provider-1\",\"resource\":{\"kind\":\"model\",\"label\":\"l\",\"price\":{\"unit\":\"token\","
	 "\"amount\":1,\"currency\":\"USDC\"},\"offer\":{\"assetId\":\"a\",\"assetType\":\"api\",\"currency\":\"USDC\","
	 "\"usageScope\":{},\"deliveryType\":\"api\"}}}",
	 CG_E_INVALID_ARGUMENT},
	{"market.resource.publish",
	 "{\"actorId\":\"provider-1\",\"resource\":{\"kind\":\"model\",\"label\":\"l\",\"price\":{\"unit\":\"token\","
	 "\"amount\":\"1\",\"currency\":\"USDCUSDCUSDCUSDCX\"},\"offer\":{\"assetId\":\"a\",\"assetType\":\"api\","
	 "\"currency\":\"USDCUSDCUSDCUSDCX\",\"usageScope\":{},\"deliveryType\":\"api\"}}}",
	 CG_E_INVALID_ARGUMENT},
	{"market.resource.publish",
	 "{\"actorId\":\"provider-1\",\"resource\":{\"kind\":\"model\",\"label\":\"l\",\"price\":{\"unit\":\"token\","
	 "\"amount\":\"1\",\"currency\":\"USDC\"},\"offer\":{\"assetId\":\"a\",\"assetType\":\"api\",\"currency\":\"USDC\","
	 "\"usageScope\":{},\"deliveryType\":\"api\",\"assetMeta\":{\"endpoint\":\"http://10.0.0.1/v1\"}}}}",
	 CG_E_INVALID_ARGUMENT},
	{"market.resource.publish",
	 "{\"actorId\":\"provider-1\",\"resource\":{\"kind\":\"model\",\"label\":\"l\",\"endpoint\":\"http://x\","
	 "\"price\":{\"unit\":\"token\",\"amount\":\"1\",\"currency\":\"USDC\"},\"offer\":{\"assetId\":\"a\","
	 "\"assetType\":\"api\",\"currency\":\"USDC\",\"usageScope\":{},\"deliveryType\":\"api\"}}}",
	 CG_E_INVALID_ARGUMENT},
	{"market.resource.publish",
	 "{\"actorId\":\"provider-1\",\"resource\":{\"kind\":\"model\",\"label\":\"l\",\"policy\":{\"maxTokens\":0},"
	 "\"price\":{\"unit\":\"token\",\"amount\":\"1\",\"currency\":\"USDC\"},\"offer\":{\"assetId\":\"a\","
	 "\"assetType\":\"api\",\"currency\":\"USDC\",\"usageScope\":{},\"deliveryType\":\"api\"}}}",
	 CG_E_INVALID_ARGUMENT},
	{"market.resource.publish",
	 "{\"actorId\":\"provider-1\",\"resource\":{\"resourceId\":\"res_unknown\",\"kind\":\"model\",\"label\":\"l\","
	 "\"price\":{\"unit\":\"token\",\"amount\":\"1\",\"currency\":\"EUR\"},\"offer\":{\"assetId\":\"a\","
	 "\"assetType\":\"api\",\"currency\":\"USDC\",\"usageScope\":{},\"deliveryType\":\"api\"}}}",
	 CG_E_INVALID_ARGUMENT},
	{"market.resource.unpublish", "{\"actorId\":\"provider-1\",\"resourceId\":\"res_unknown\"}", CG_E_NOT_FOUND},
	{"market.resource.unpublish", "{\"actorId\":\"provider-1\",\"resourceId\":\"../etc\"}", CG_E_INVALID_ARGUMENT},
	{"market.resource.get", "{}", CG_E_INVALID_ARGUMENT},
	{"market.resource.list", "{\"limit\":0}", CG_E_INVALID_ARGUMENT},
	{"market.resource.list", "{\"limit\":201}", CG_E_INVALID_ARGUMENT},
	{"market.resource.list", "{\"status\":\"weird\"}", CG_E_INVALID_ARGUMENT},
	/* leases */
	{"market.lease.issue", "{\"actorId\":\"consumer-1\",\"resourceId\":\"$R\",\"consumerActorId\":\"consumer-1\","
			       "\"ttlMs\":9999}",
	 CG_E_INVALID_ARGUMENT},
	{"market.lease.issue", "{\"actorId\":\"consumer-1\",\"resourceId\":\"$R\",\"consumerActorId\":\"consumer-1\","
			       "\"ttlMs\":604800001}",
	 CG_E_INVALID_ARGUMENT},
	{"market.lease.issue", "{\"actorId\":\"consumer-1\",\"resourceId\":\"$R\",\"consumerActorId\":\"consumer-1\","
			       "\"ttlMs\":\"60000\"}",
	 CG_E_INVALID_ARGUMENT},
	{"market.lease.issue", "{\"actorId\":\"consumer-1\",\"resourceId\":\"$R\",\"consumerActorId\":\"consumer-1\","
			       "\"ttlMs\":60000,\"maxCost\":\"-5\"}",
	 CG_E_INVALID_ARGUMENT},
	{"market.lease.issue", "{\"actorId\":\"consumer-1\",\"resourceId\":\"res_unknown\",\"consumerActorId\":"
			       "\"consumer-1\",\"ttlMs\":60000}",
	 CG_E_NOT_FOUND},
	{"market.lease.issue", "{\"resourceId\":\"$R\",\"consumerActorId\":\"consumer-1\",\"ttlMs\":60000}",
	 CG_E_AUTH_REQUIRED},
	{"market.lease.revoke", "{\"actorId\":\"consumer-1\",\"leaseId\":\"lea_unknown\"}", CG_E_NOT_FOUND},
	{"market.lease.revoke", "{\"actorId\":\"consumer-1\",\"leaseId\":\"$L\",\"reason\":\"rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr"
				"rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr"
				"rrrrrrrrrrrrrrrrrrrrr\"}",
	 CG_E_INVALID_ARGUMENT},
	{"market.lease.expireSweep", "{\"limit\":1001}", CG_E_INVALID_ARGUMENT},
	{"market.lease.expireSweep", "{\"now\":\"2026-13-01\"}", CG_E_INVALID_ARGUMENT},
	{"market.lease.expireSweep", "{\"now\":\"2026-02-29T00:00:00Z\"}", CG_E_INVALID_ARGUMENT},
	{"market.lease.expireSweep", "{\"now\":\"yesterday\"}", CG_E_INVALID_ARGUMENT},
	{"market.lease.expireSweep", "{\"now\":\"2026-01-01T10:00:00+25:00\"}", CG_E_INVALID_ARGUMENT},
	{"market.lease.issue", "{\"actorId\":\"mallory\",\"resourceId\":\"$R\",\"consumerActorId\":\"consumer-1\","
			       "\"ttlMs\":60000}",
	 CG_E_FORBIDDEN},
	{"market.lease.issue", "{\"actorId\":\"consumer-1\",\"resourceId\":\"$R\",\"consumerActorId\":\"consumer-1\","
			       "\"ttlMs\":60000,\"expiresAt\":9999999999999}",
	 CG_E_INVALID_ARGUMENT},
	{"market.lease.issue", "{\"actorId\":\"consumer-1\",\"resourceId\":\"$R\",\"consumerActorId\":\"consumer-1\","
			       "\"expiresAt\":\"2001-01-01T00:00:00Z\"}",
	 CG_E_INVALID_ARGUMENT},
	{"market.lease.issue", "{\"actorId\":\"consumer-1\",\"resourceId\":\"$R\",\"consumerActorId\":\"consumer-1\","
			       "\"providerActorId\":\"mallory\",\"ttlMs\":60000}",
	 CG_E_CONFLICT},
	{"market.lease.issue", "{\"actorId\":\"consumer-1\",\"resourceId\":\"$R\",\"consumerActorId\":\"consumer-1\","
			       "\"ttlMs\":60000,\"policy\":{\"maxRequests\":0}}",
	 CG_E_INVALID_ARGUMENT},
	{"market.lease.issue", "{\"actorId\":\"consumer-1\",\"resourceId\":\"$R\",\"consumerActorId\":\"consumer-1\","
			       "\"ttlMs\":60000,\"policy\":{\"quota\":1}}",
	 CG_E_INVALID_ARGUMENT},
	{"market.ledger.list", "{\"since\":\"2026-02-01\",\"until\":\"2026-01-01\"}", CG_E_INVALID_ARGUMENT},
	{"market.audit.query", "{\"since\":20,\"until\":10}", CG_E_INVALID_ARGUMENT},
	{"web3.resources.unpublish", "{\"actorId\":\"mallory\",\"resourceId\":\"$R\"}", CG_E_FORBIDDEN},
	{"market.lease.list", "{\"status\":\"active\"}", CG_E_INVALID_ARGUMENT},
	/* ledger */
	{"market.ledger.append", "{\"actorId\":\"provider-1\",\"entry\":{}}", CG_E_INVALID_ARGUMENT},
	{"market.ledger.append", "{\"actorId\":\"provider-1\",\"entry\":{\"leaseId\":\"$L\",\"resourceId\":\"$R\","
				 "\"kind\":\"model\",\"providerActorId\":\"provider-1\",\"consumerActorId\":\"consumer-1\","
				 "\"unit\":\"token\",\"quantity\":\"1.5\",\"cost\":\"3\",\"currency\":\"USDC\"}}",
	 CG_E_INVALID_ARGUMENT},
	{"market.ledger.append", "{\"actorId\":\"provider-1\",\"entry\":{\"leaseId\":\"$L\",\"resourceId\":\"$R\","
				 "\"kind\":\"model\",\"providerActorId\":\"provider-1\",\"consumerActorId\":\"consumer-1\","
				 "\"unit\":\"token\",\"quantity\":\"1\",\"cost\":\"2\",\"currency\":\"USDC\",\"sessionId\":"
				 "\"ssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssss"
				 "sssssssssssssssssssssssssssssssssssssss\"}}",
	 CG_E_INVALID_ARGUMENT},
	{"market.ledger.append", "{\"actorId\":\"provider-1\",\"entry\":{\"leaseId\":\"lea_unknown\",\"resourceId\":"
				 "\"$R\",\"kind\":\"model\",\"providerActorId\":\"provider-1\",\"consumerActorId\":"
				 "\"consumer-1\",\"unit\":\"token\",\"quantity\":\"1\",\"cost\":\"2\",\"currency\":\"USDC\"}}",
	 CG_E_NOT_FOUND},
	{"market.ledger.append", "{\"actorId\":\"provider-1\",\"entry\":{\"leaseId\":\"$L\",\"resourceId\":\"$R\","
				 "\"kind\":\"model\",\"providerActorId\":\"provider-1\",\"consumerActorId\":\"consumer-1\","
				 "\"unit\":\"token\",\"quantity\":\"1\",\"cost\":"
				 "\"1000000000000000000000000000000000000000000000000000000000000000000000000000000\","
				 "\"currency\":\"USDC\"}}",
	 CG_E_INVALID_ARGUMENT},
	{"market.ledger.list", "{\"limit\":1001}", CG_E_INVALID_ARGUMENT},
	{"market.ledger.list", "{\"since\":-1}", CG_E_INVALID_ARGUMENT},
	{"market.ledger.summary", "{\"providerActorId\":7}", CG_E_INVALID_ARGUMENT},
	/* settlements */
	{"market.settlement.lock", "{\"actorId\":\"consumer-1\",\"orderId\":\"ord_unknown\",\"payer\":\"consumer-1\","
				   "\"amount\":\"5\"}",
	 CG_E_NOT_FOUND},
	{"market.settlement.lock", "{\"actorId\":\"consumer-1\",\"orderId\":\"$O\",\"payer\":\"consumer-1\","
				   "\"amount\":\"0\"}",
	 CG_E_INVALID_ARGUMENT},
	{"market.settlement.lock", "{\"actorId\":\"consumer-1\",\"orderId\":\"$O\",\"payer\":\"consumer-1\","
				   "\"amount\":5}",
	 CG_E_INVALID_ARGUMENT},
	{"market.settlement.release", "{\"actorId\":\"consumer-1\",\"orderId\":\"$O\",\"payees\":{}}",
	 CG_E_INVALID_ARGUMENT},
	{"market.settlement.release", "{\"actorId\":\"consumer-1\",\"orderId\":\"$O\"}", CG_E_NOT_FOUND},
	{"market.settlement.refund", "{\"actorId\":\"provider-1\",\"orderId\":\"ord_unknown\"}", CG_E_NOT_FOUND},
	{"market.settlement.queue", "{\"orderId\":\"$O\",\"payer\":\"consumer-1\",\"amount\":\"0\"}",
	 CG_E_INVALID_ARGUMENT},
	{"market.settlement.faucet", "{\"address\":\"consumer-1\",\"amount\":\"1e3\"}", CG_E_INVALID_ARGUMENT},
	{"market.settlement.balance", "{}", CG_E_INVALID_ARGUMENT},
	/* orders, consents, deliveries, offers */
	{"market.order.create", "{\"actorId\":\"consumer-1\",\"offerId\":\"off_unknown\"}", CG_E_NOT_FOUND},
	{"market.order.create", "{\"actorId\":\"consumer-1\",\"offerId\":\"off_x\",\"quantity\":0}", CG_E_INVALID_ARGUMENT},
	{"market.order.cancel", "{\"actorId\":\"consumer-1\",\"orderId\":\"$O\"}", CG_E_CONFLICT},
	{"market.order.cancel", "{\"actorId\":\"mallory\",\"orderId\":\"$O\"}", CG_E_FORBIDDEN},
	{"market.consent.revoke", "{\"actorId\":\"consumer-1\",\"consentId\":\"con_unknown\"}", CG_E_NOT_FOUND},
	{"market.delivery.complete", "{\"actorId\":\"consumer-1\",\"deliveryId\":\"dlv_unknown\"}", CG_E_NOT_FOUND},
	{"market.delivery.issue", "{\"actorId\":\"provider-1\",\"orderId\":\"$O\"}", CG_E_CONFLICT},
	{"market.offer.create", "{\"actorId\":\"provider-1\",\"assetId\":\"a\",\"assetType\":\"file\",\"price\":\"1\","
				"\"currency\":\"USDC\",\"usageScope\":{},\"deliveryType\":\"api\"}",
	 CG_E_INVALID_ARGUMENT},
	{"market.offer.publish", "{\"actorId\":\"provider-1\",\"offerId\":\"off_unknown\"}", CG_E_NOT_FOUND},
	/* disputes */
	{"market.dispute.open", "{\"actorId\":\"consumer-1\",\"orderId\":\"$O\",\"reason\":\"\"}", CG_E_INVALID_ARGUMENT},
	{"market.dispute.open", "{\"actorId\":\"consumer-1\",\"orderId\":\"$O\",\"reason\":\"x\",\"arbitratorType\":"
				"\"dao\"}",
	 CG_E_INVALID_ARGUMENT},
	{"market.dispute.submitEvidence", "{\"actorId\":\"consumer-1\",\"disputeId\":\"dsp_unknown\",\"summary\":\"s\","
					  "\"hash\":\"sha256:00112233445566778899aabbccddeeff00112233445566778899aabbc"
					  "cddeeff\"}",
	 CG_E_NOT_FOUND},
	{"market.dispute.resolve", "{\"actorId\":\"arbiter\",\"disputeId\":\"$D\",\"resolution\":\"split\"}",
	 CG_E_INVALID_ARGUMENT},
	{"market.dispute.resolve", "{\"actorId\":\"arbiter\",\"disputeId\":\"$D\",\"resolution\":\"release\"}",
	 CG_E_NOT_FOUND}, /* no settlement locked for that order */
	{"market.dispute.reject", "{\"actorId\":\"consumer-1\",\"disputeId\":\"$D\"}", CG_E_FORBIDDEN},
	{"market.audit.query", "{\"limit\":500}", CG_E_INVALID_ARGUMENT},
	{"market.repair.retry", "{\"maxAttempts\":0}", CG_E_INVALID_ARGUMENT},
	{"market.revocation.retry", "{\"dryRun\":\"yes\"}", CG_E_INVALID_ARGUMENT},
	{"web3.resources.lease", "{\"resourceId\":\"$R\",\"ttlMs\":1}", CG_E_INVALID_ARGUMENT},
	{"web3.resources.status", "{\"x\":1}", CG_E_INVALID_ARGUMENT},
};

static char *subst(const char *in, const char *r, const char *l, const char *o, const char *d)
{
	size_t cap = strlen(in) * 4 + 512;
	char *out = calloc(1, cap);
	size_t n = 0;
	for (const char *p = in; *p; p++) {
		const char *rep = NULL;
		if (p[0] == '$' && p[1] == 'R')
			rep = r;
		else if (p[0] == '$' && p[1] == 'L')
			rep = l;
		else if (p[0] == '$' && p[1] == 'O')
			rep = o;
		else if (p[0] == '$' && p[1] == 'D')
			rep = d;
		if (rep) {
			n += (size_t)snprintf(out + n, cap - n, "%s", rep);
			p++;
		} else {
			out[n++] = *p;
		}
	}
	return out;
}

static void t_bad_input(void **s)
{
	(void)s;
	struct fx f;
	fx_open(&f);
	char rid[64];
	publish(&f, rid);
	json_t *l = issue(&f, rid, NULL);
	json_t *d = OK(&f, "market.dispute.open", json_pack("{s:s,s:s,s:s}", "actorId", CONS, "orderId", S(l, "orderId"),
							    "reason", "x"));
	char d0[72], d1[72];
	fx_digest(&f, d0);
	struct ctx c = {&f, 0};
	rpc_each(f.reg, each_method, &c);
	assert_true(c.n >= 54);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *js = subst(cases[i].params, rid, S(l, "leaseId"), S(l, "orderId"), S(d, "disputeId"));
		json_error_t je;
		json_t *p = json_loads(js, 0, &je);
		if (!p)
			fail_msg("case %zu: bad JSON %s", i, je.text);
		free(js);
		json_t *res = NULL;
		int code = fx_call(&f, cases[i].method, p, &res);
		if (code != (int)cases[i].code)
			fail_msg("case %zu %s: want %s got %s (%s)", i, cases[i].method, cg_code_name(cases[i].code),
				 cg_code_name(code), S(res, "message"));
		/* Error messages name the field and never echo secrets or whole params. */
		assert_true(strlen(S(res, "message")) < 400);
		json_decref(res);
	}
	fx_digest(&f, d1);
	assert_string_equal(d0, d1);
	json_decref(d);
	json_decref(l);
	fx_close(&f);
}

/* Non-admin callers may act only as themselves. */
static void t_caller_principal(void **s)
{
	(void)s;
	struct fx f;
	fx_open(&f);
	json_t *req = json_pack("{s:s,s:i,s:s,s:o}", "jsonrpc", "2.0", "id", 1, "method", "market.resource.publish",
				"params", res_params(PROV, NULL, "x", "1"));
	struct rpc_caller who = {.principal = "someone-else", .admin = false};
	json_t *resp = NULL;
	rpc_dispatch_json(f.reg, req, &who, fx_done, &resp);
	assert_string_equal(S(json_object_get(json_object_get(resp, "error"), "data"), "code"), "E_FORBIDDEN");
	json_decref(resp);
	who.principal = PROV;
	rpc_dispatch_json(f.reg, req, &who, fx_done, &resp);
	assert_non_null(json_object_get(resp, "result"));
	json_decref(resp);
	json_decref(req);
	fx_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_bad_input),
		cmocka_unit_test(t_caller_principal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
