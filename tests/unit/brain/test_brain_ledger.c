/* brain/bledger: reserve-then-settle budgets (never overspent, exact amounts beyond 64 bits, rollback on an
 * injected fault at every step, stale reservations dropped at open) and the audit trail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/amount.h"
#include "brain/bledger.h"
#include "store/store.h"

static char dir[64], path[128];

static struct store *open_store(void)
{
	struct store *st;
	cg_err e;
	assert_int_equal(store_open(path, 0, &st, &e), 0);
	return st;
}

static int setup(void **state)
{
	snprintf(dir, sizeof dir, "/tmp/cg-bledger-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof path, "%s/db.sqlite", dir);
	return 0;
}

static int teardown(void **state)
{
	char p[200];
	const char *suffix[] = {"", "-wal", "-shm"};
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "%s%s", path, suffix[i]);
		unlink(p);
	}
	rmdir(dir);
	return 0;
}

static const char *field(struct store *st, const char *k, char out[static 80])
{
	json_t *s;
	cg_err e;
	assert_int_equal(bl_status(st, &s, &e), 0);
	const char *v = json_string_value(json_object_get(s, k));
	snprintf(out, 80, "%s", v ? v : "(null)");
	json_decref(s);
	return out;
}

static struct bl_audit rec(const char *id, const char *cost)
{
	return (struct bl_audit){.id = id, .model = "m", .brain = "b", .outcome = "ok", .cost = cost, .ts = 1000,
				 .status = 200, .prompt_tokens = 1, .completion_tokens = 2, .ttft_ms = 1.5,
				 .duration_ms = 3, .overhead_ms = 0.1};
}

static void t_reserve_settle(void **state)
{
	struct store *st = open_store();
	cg_err e;
	char v[80];
	assert_int_equal(bl_open(st, "100", &e), 0);
	assert_string_equal(field(st, "status", v), "active");
	/* Many requests in flight: admitted only while the sum fits. */
	char id[16];
	int admitted = 0;
	for (int i = 0; i < 10; i++) {
		snprintf(id, sizeof id, "r%d", i);
		if (bl_reserve(st, id, "30", &e) == 0)
			admitted++;
		else
			assert_int_equal(e.code, CG_E_QUOTA_EXCEEDED);
	}
	assert_int_equal(admitted, 3);
	assert_string_equal(field(st, "reserved", v), "90");
	assert_string_equal(field(st, "remaining", v), "10");
	/* Settling releases the hold and charges the real cost. */
	struct bl_audit a = rec("r0", "12");
	assert_int_equal(bl_settle(st, &a, &e), 0);
	assert_string_equal(field(st, "spent", v), "12");
	assert_string_equal(field(st, "reserved", v), "60");
	assert_int_equal(bl_reserve(st, "r10", "28", &e), 0);
	assert_int_equal(bl_reserve(st, "r11", "1", &e), -CG_E_QUOTA_EXCEEDED);
	assert_non_null(strstr(e.msg, "budget exhausted"));
	/* The audit record reads back. */
	json_t *p = json_pack("{s:s}", "requestId", "r0"), *out;
	assert_int_equal(bl_audit_query(st, p, &out, &e), 0);
	json_t *r0 = json_array_get(json_object_get(out, "records"), 0);
	assert_string_equal(json_string_value(json_object_get(r0, "cost")), "12");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r0, "usage"), "completionTokens")), 2);
	json_decref(out);
	json_decref(p);
	p = json_pack("{s:i}", "limit", 0);
	assert_int_equal(bl_audit_query(st, p, &out, &e), -CG_E_INVALID_ARGUMENT);
	json_decref(p);
	/* A restart drops holds of requests that never settled; spent stays. */
	store_close(st);
	st = open_store();
	assert_int_equal(bl_open(st, "100", &e), 0);
	assert_string_equal(field(st, "reserved", v), "0");
	assert_string_equal(field(st, "spent", v), "12");
	/* Credits changed in the config: spent is kept. */
	assert_int_equal(bl_open(st, "10", &e), 0);
	assert_string_equal(field(st, "status", v), "exhausted");
	assert_int_equal(bl_reserve(st, "x", "1", &e), -CG_E_QUOTA_EXCEEDED);
	/* No budget: everything admitted, nothing held, still audited. */
	assert_int_equal(bl_open(st, NULL, &e), 0);
	assert_string_equal(field(st, "status", v), "unbound");
	assert_int_equal(bl_reserve(st, "y", "999999999999999999999999999999", &e), 0);
	assert_string_equal(field(st, "reserved", v), "0");
	store_close(st);
}

static void t_big_amounts(void **state)
{
	struct store *st = open_store();
	cg_err e;
	char v[80];
	/* 10^30: far beyond 64 bits, exact all the way. */
	assert_int_equal(bl_open(st, "1000000000000000000000000000000", &e), 0);
	assert_int_equal(bl_reserve(st, "big", "999999999999999999999999999999", &e), 0);
	assert_int_equal(bl_reserve(st, "big2", "2", &e), -CG_E_QUOTA_EXCEEDED);
	struct bl_audit a = rec("big", "999999999999999999999999999999");
	assert_int_equal(bl_settle(st, &a, &e), 0);
	assert_string_equal(field(st, "spent", v), "999999999999999999999999999999");
	assert_string_equal(field(st, "remaining", v), "1");
	assert_int_equal(bl_reserve(st, "big3", "2", &e), -CG_E_QUOTA_EXCEEDED);
	assert_int_equal(bl_reserve(st, "big4", "1", &e), 0);
	a = rec("big4", "1");
	assert_int_equal(bl_settle(st, &a, &e), 0);
	assert_string_equal(field(st, "status", v), "exhausted");
	store_close(st);
}

static void t_fault_rollback(void **state)
{
	struct store *st = open_store();
	cg_err e;
	char v[80], spent[80];
	assert_int_equal(bl_open(st, "500", &e), 0);
	/* Count the fault sites of one settle, then fail each in turn: nothing may change. */
	assert_int_equal(bl_reserve(st, "f0", "5", &e), 0);
	store_fault_arm(st, 1000);
	struct bl_audit a = rec("f0", "5");
	assert_int_equal(bl_settle(st, &a, &e), 0);
	int sites = store_fault_count(st);
	store_fault_arm(st, 0);
	assert_true(sites >= 2);
	for (int k = 1; k <= sites; k++) {
		char id[16];
		snprintf(id, sizeof id, "g%d", k);
		assert_int_equal(bl_reserve(st, id, "7", &e), 0);
		field(st, "spent", spent);
		store_fault_arm(st, k);
		struct bl_audit b = rec(id, "7");
		assert_int_equal(bl_settle(st, &b, &e), -CG_E_INTERNAL);
		store_fault_arm(st, 0);
		assert_string_equal(field(st, "spent", v), spent);
		assert_string_equal(field(st, "reserved", v), "7"); /* the hold is still there */
		json_t *p = json_pack("{s:s}", "requestId", id), *out;
		assert_int_equal(bl_audit_query(st, p, &out, &e), 0);
		assert_int_equal(json_array_size(json_object_get(out, "records")), 0);
		json_decref(out);
		json_decref(p);
		assert_int_equal(bl_settle(st, &b, &e), 0);
	}
	/* Group commit: several settlements in one transaction, all or none. */
	assert_int_equal(bl_reserve(st, "m1", "3", &e), 0);
	assert_int_equal(bl_reserve(st, "m2", "4", &e), 0);
	field(st, "spent", spent);
	struct bl_audit m1 = rec("m1", "3"), m2 = rec("m2", "4");
	const struct bl_audit *both[] = {&m1, &m2};
	store_fault_arm(st, 3); /* the first site of the second record */
	assert_int_equal(bl_settle_many(st, both, 2, &e), -CG_E_INTERNAL);
	store_fault_arm(st, 0);
	assert_string_equal(field(st, "spent", v), spent);
	assert_string_equal(field(st, "reserved", v), "7");
	assert_int_equal(bl_settle_many(st, both, 2, &e), 0);
	assert_string_equal(field(st, "reserved", v), "0");
	char want[80];
	assert_int_equal(amount_add(spent, "7", want), 0);
	assert_string_equal(field(st, "spent", v), want);
	/* A fault inside reserve leaves no hold either. */
	store_fault_arm(st, 1);
	assert_int_equal(bl_reserve(st, "h", "1", &e), -CG_E_INTERNAL);
	store_fault_arm(st, 0);
	assert_string_equal(field(st, "reserved", v), "0");
	store_close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(t_reserve_settle, setup, teardown),
		cmocka_unit_test_setup_teardown(t_big_amounts, setup, teardown),
		cmocka_unit_test_setup_teardown(t_fault_rollback, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
