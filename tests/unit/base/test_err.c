/* err: the one error convention — codes map to one HTTP status and one JSON-RPC code each, messages are
 * formatted and redacted, 413/415 keep their explicit status. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/redact.h"

static void t_codes(void **st)
{
	(void)st;
	static const struct {
		enum cg_code c;
		const char *name;
		int http, rpc;
	} want[] = {
		{CG_E_INVALID_ARGUMENT, "E_INVALID_ARGUMENT", 400, -32602},
		{CG_E_AUTH_REQUIRED, "E_AUTH_REQUIRED", 401, -32001},
		{CG_E_FORBIDDEN, "E_FORBIDDEN", 403, -32003},
		{CG_E_NOT_FOUND, "E_NOT_FOUND", 404, -32004},
		{CG_E_CONFLICT, "E_CONFLICT", 409, -32009},
		{CG_E_EXPIRED, "E_EXPIRED", 409, -32010},
		{CG_E_REVOKED, "E_REVOKED", 409, -32011},
		{CG_E_QUOTA_EXCEEDED, "E_QUOTA_EXCEEDED", 429, -32029},
		{CG_E_RATE_LIMITED, "E_RATE_LIMITED", 429, -32029},
		{CG_E_UNAVAILABLE, "E_UNAVAILABLE", 503, -32053},
		{CG_E_TIMEOUT, "E_TIMEOUT", 504, -32054},
		{CG_E_INTERNAL, "E_INTERNAL", 500, -32603},
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		assert_string_equal(cg_code_name(want[i].c), want[i].name);
		assert_int_equal(cg_code_from_name(want[i].name), want[i].c);
		assert_int_equal(cg_code_http(want[i].c), want[i].http);
		assert_int_equal(cg_code_rpc(want[i].c), want[i].rpc);
	}
	assert_int_equal(cg_code_from_name("E_NOPE"), -1);
	assert_string_equal(cg_code_name((enum cg_code)999), "E_INTERNAL");
	assert_int_equal(cg_code_http((enum cg_code)999), 500);
}

static void t_fail(void **st)
{
	(void)st;
	cg_err e;
	cg_err_clear(&e);
	assert_int_equal(e.code, CG_OK);
	int r = cg_fail(&e, CG_E_CONFLICT, "lease %s is %s", "L1", "revoked");
	assert_int_equal(r, -CG_E_CONFLICT);
	assert_int_equal(e.code, CG_E_CONFLICT);
	assert_string_equal(e.msg, "lease L1 is revoked");
	assert_int_equal(cg_err_http(&e), 409);
	/* explicit status wins */
	r = cg_fail_http(&e, CG_E_QUOTA_EXCEEDED, 413, "body of %d bytes", 9);
	assert_int_equal(r, -CG_E_QUOTA_EXCEEDED);
	assert_int_equal(cg_err_http(&e), 413);
	/* a new failure resets the explicit status and retry */
	e.retry_after_s = 5;
	cg_fail(&e, CG_E_UNAVAILABLE, "down");
	assert_int_equal(cg_err_http(&e), 503);
	assert_int_equal(e.retry_after_s, 0);
	/* bad codes become E_INTERNAL; NULL e is allowed */
	assert_int_equal(cg_fail(&e, (enum cg_code)77, "x"), -CG_E_INTERNAL);
	assert_int_equal(cg_fail(NULL, CG_E_TIMEOUT, "x"), -CG_E_TIMEOUT);
	/* messages are bounded and redacted */
	char longs[1000];
	memset(longs, 'a', sizeof longs - 1);
	longs[sizeof longs - 1] = 0;
	cg_fail(&e, CG_E_INTERNAL, "%s", longs);
	assert_true(strlen(e.msg) < sizeof e.msg);
	cg_fail(&e, CG_E_AUTH_REQUIRED, "token tok_AbCdEfGhIjKlMnOp rejected");
	assert_null(strstr(e.msg, "tok_AbCd"));
	assert_non_null(strstr(e.msg, REDACTED));
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(t_codes), cmocka_unit_test(t_fail)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
