/* Gate-SEC-01 in-process: run a whole market flow with debug logging into a file, collect every RPC output
 * (results and errors), and prove that no lease token, no token fragment, no secret key material and no
 * registered path appears anywhere except the one lease.issue result that hands the token out. */
#include "fixture.h"

#include <fcntl.h>

#include "base/enc.h"
#include "base/redact.h"

static json_t *outputs;

static int call(struct fx *f, const char *method, json_t *params, json_t **res)
{
	json_t *r = NULL;
	int code = fx_call(f, method, params, &r);
	json_array_append(outputs, r ? r : json_null());
	if (res)
		*res = r;
	else
		json_decref(r);
	return code;
}

static void t_sec01(void **s)
{
	(void)s;
	struct fx f;
	fx_open(&f);
	outputs = json_array();
	char logp[256];
	snprintf(logp, sizeof logp, "%s/node.log", f.dir);
	int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	log_set_fd(fd);
	log_set_level(LOG_DEBUG);
	redact_register(f.dir);

	char rid[64];
	publish(&f, rid);
	json_t *l = issue(&f, rid, "100");
	const char *tok = S(l, "accessToken");
	char token[80];
	snprintf(token, sizeof token, "%s", tok);
	json_t *l2 = NULL;
	assert_int_equal(call(&f, "web3.resources.lease", json_pack("{s:s,s:i}", "resourceId", rid, "ttlMs", 60000), &l2), 0);
	char token2[80];
	snprintf(token2, sizeof token2, "%s", S(l2, "accessToken"));
	json_decref(l2);
	json_array_remove(outputs, json_array_size(outputs) - 1); /* the one place the token is handed out */

	json_t *r;
	call(&f, "market.lease.get", json_pack("{s:s}", "leaseId", S(l, "leaseId")), NULL);
	call(&f, "market.lease.list", json_pack("{s:s}", "consumerActorId", CONS), NULL);
	call(&f, "market.audit.query", json_pack("{s:i}", "limit", 200), NULL);
	call(&f, "market.ledger.append", entry_params(PROV, l, rid, "5", "10"), NULL);
	call(&f, "market.ledger.list", json_object(), NULL);
	call(&f, "market.order.list", json_object(), NULL);
	call(&f, "web3.resources.status", json_object(), NULL);
	/* Hostile input carrying the token: the errors must not echo it. */
	call(&f, "market.lease.get", json_pack("{s:s}", "leaseId", token), NULL);
	json_t *hp = json_object();
	json_object_set_new(hp, token, json_integer(1));
	call(&f, "market.lease.list", hp, NULL);
	call(&f, "market.lease.revoke", json_pack("{s:s,s:s,s:s}", "actorId", CONS, "leaseId", S(l, "leaseId"), "reason", token),
	     NULL);
	call(&f, "market.resource.publish", json_pack("{s:s,s:{s:s}}", "actorId", PROV, "resource", "label", token), NULL);
	call(&f, "market.settlement.queue", json_pack("{s:s,s:s,s:s}", "orderId", token, "payer", CONS, "amount", "1"),
	     NULL);
	assert_int_equal(call(&f, "market.lease.revoke",
			      json_pack("{s:s,s:s,s:s}", "actorId", CONS, "leaseId", S(l, "leaseId"), "reason", "done"), NULL),
			 0);
	call(&f, "market.lease.get", json_pack("{s:s}", "leaseId", S(l, "leaseId")), NULL);
	call(&f, "market.audit.query", json_pack("{s:i}", "limit", 200), NULL);
	cg_err e;
	assert_int_equal(market_lease_authorize(f.m, S(l, "leaseId"), token, NULL, &e), -CG_E_REVOKED);
	json_array_append_new(outputs, json_string(e.msg));
	assert_int_equal(market_lease_authorize(f.m, "lea_nope", token, NULL, &e), -CG_E_FORBIDDEN);
	json_array_append_new(outputs, json_string(e.msg));
	call(&f, "market.revocation.retry", json_object(), NULL);
	call(&f, "market.lease.expireSweep", json_object(), &r);
	json_decref(r);

	log_set_level(LOG_OFF);
	log_set_fd(2);
	close(fd);
	char *dump = json_dumps(outputs, JSON_COMPACT);
	size_t n = 0;
	char *log = NULL;
	{
		FILE *lf = fopen(logp, "re");
		assert_non_null(lf);
		log = calloc(1, 1 << 20);
		n = fread(log, 1, (1 << 20) - 1, lf);
		fclose(lf);
	}
	(void)n;
	char skhex[129];
	hex_encode(skhex, f.key.sk, 32);
	const char *haystacks[] = {dump, log};
	for (int i = 0; i < 2; i++) {
		const char *h = haystacks[i];
		if (strstr(h, token + 4)) fail_msg("leak in %d: %.300s", i, strstr(h, token + 4) - 120);
		assert_null(strstr(h, token2 + 4));
		assert_null(strstr(h, "tok_"));
		assert_null(strstr(h, skhex));
		assert_null(strstr(h, f.dir));
	}
	/* every hostile call was refused without echoing the token */
	int refusals = 0;
	for (const char *p = strstr(dump, "must not carry a lease token"); p; p = strstr(p + 1, "must not carry a lease token"))
		refusals++;
	assert_int_equal(refusals, 5);
	free(dump);
	free(log);
	json_decref(outputs);
	json_decref(l);
	fx_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(t_sec01)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
