/* store: pragmas, per-module numbered migrations (idempotent, recorded, a failing one rolls back alone),
 * nested transactions as savepoints, rollback, fault injection, statement cache, corrupted files. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store.h"

static char dir[64], path[128];
static struct store *st;

static int setup(void **s)
{
	(void)s;
	snprintf(dir, sizeof dir, "/tmp/cg-store-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof path, "%s/t.db", dir);
	cg_err e;
	return store_open(path, 0, &st, &e);
}

static int teardown(void **s)
{
	(void)s;
	store_close(st);
	char cmd[200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int count(const char *sql)
{
	sqlite3_stmt *s = store_prep(st, sql, NULL);
	assert_non_null(s);
	int n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
	sqlite3_reset(s);
	return n;
}

static void t_pragmas(void **s)
{
	(void)s;
	sqlite3_stmt *q = store_prep(st, "PRAGMA journal_mode", NULL);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
	sqlite3_reset(q);
	assert_int_equal(count("PRAGMA foreign_keys"), 1);
	assert_int_equal(count("PRAGMA synchronous"), 1); /* NORMAL */
}

static const struct store_migration m1[] = {
	{1, "CREATE TABLE a(id INTEGER PRIMARY KEY, v TEXT NOT NULL);"},
	{2, "CREATE TABLE b(id INTEGER PRIMARY KEY, a_id INTEGER NOT NULL REFERENCES a(id));"
	    "CREATE INDEX b_a ON b(a_id);"},
};

static void t_migrations(void **s)
{
	(void)s;
	cg_err e;
	assert_int_equal(store_schema_version(st, "mod"), 0);
	assert_int_equal(store_migrate(st, "mod", m1, 1, &e), 0);
	assert_int_equal(store_schema_version(st, "mod"), 1);
	assert_int_equal(store_migrate(st, "mod", m1, 2, &e), 0);
	assert_int_equal(store_schema_version(st, "mod"), 2);
	assert_int_equal(store_migrate(st, "mod", m1, 2, &e), 0); /* idempotent */
	assert_int_equal(count("SELECT count(*) FROM sqlite_master WHERE name IN ('a','b','b_a')"), 3);
	/* a failing migration leaves the version and schema as they were */
	static const struct store_migration bad[] = {
		{1, "CREATE TABLE c(x);"},
		{2, "CREATE TABLE d(x); CREATE TABLE d(x);"},
	};
	assert_true(store_migrate(st, "other", bad, 2, &e) < 0);
	assert_int_equal(store_schema_version(st, "other"), 1);
	assert_int_equal(count("SELECT count(*) FROM sqlite_master WHERE name='d'"), 0);
	assert_int_equal(count("SELECT count(*) FROM sqlite_master WHERE name='c'"), 1);
	assert_int_equal(store_schema_version(st, "mod"), 2); /* modules are independent */
}

static void t_transactions(void **s)
{
	(void)s;
	cg_err e;
	assert_int_equal(store_exec(st, "DELETE FROM b; DELETE FROM a;", &e), 0);
	assert_int_equal(store_tx_begin(st, &e), 0);
	assert_int_equal(store_exec(st, "INSERT INTO a VALUES(1,'outer')", &e), 0);
	assert_int_equal(store_tx_begin(st, &e), 0); /* savepoint */
	assert_int_equal(store_tx_depth(st), 2);
	assert_int_equal(store_exec(st, "INSERT INTO a VALUES(2,'inner')", &e), 0);
	store_tx_rollback(st); /* undoes only the inner part */
	assert_int_equal(store_tx_depth(st), 1);
	assert_int_equal(store_tx_begin(st, &e), 0);
	assert_int_equal(store_exec(st, "INSERT INTO a VALUES(3,'inner2')", &e), 0);
	assert_int_equal(store_tx_commit(st, &e), 0);
	assert_int_equal(store_tx_commit(st, &e), 0);
	assert_int_equal(store_tx_depth(st), 0);
	assert_int_equal(count("SELECT count(*) FROM a"), 2);
	assert_int_equal(count("SELECT count(*) FROM a WHERE id=2"), 0);
	/* outer rollback undoes committed inner savepoints too */
	assert_int_equal(store_tx_begin(st, &e), 0);
	assert_int_equal(store_tx_begin(st, &e), 0);
	assert_int_equal(store_exec(st, "INSERT INTO a VALUES(4,'x')", &e), 0);
	assert_int_equal(store_tx_commit(st, &e), 0);
	store_tx_rollback(st);
	assert_int_equal(count("SELECT count(*) FROM a WHERE id=4"), 0);
	assert_true(store_tx_commit(st, &e) < 0); /* nothing open */
	/* constraint errors map to E_CONFLICT, foreign keys are enforced */
	assert_int_equal(store_exec(st, "INSERT INTO a VALUES(1,'dup')", &e), -CG_E_CONFLICT);
	assert_int_equal(store_exec(st, "INSERT INTO b VALUES(1, 999)", &e), -CG_E_CONFLICT);
	/* a bad statement is an error, not a crash */
	assert_null(store_prep(st, "SELEC nonsense", &e));
	assert_int_equal(e.code, CG_E_INTERNAL);
}

/* An operation in three steps with fault points between them, run in one transaction. */
static int three_steps(cg_err *e)
{
	int r;
	if ((r = store_tx_begin(st, e)) < 0)
		return r;
	if ((r = store_exec(st, "INSERT INTO a VALUES(10,'s1')", e)) < 0 || (r = store_fault(st, "after s1", e)) < 0 ||
	    (r = store_exec(st, "INSERT INTO a VALUES(11,'s2')", e)) < 0 || (r = store_fault(st, "after s2", e)) < 0 ||
	    (r = store_exec(st, "INSERT INTO b VALUES(1, 10)", e)) < 0) {
		store_tx_rollback(st);
		return r;
	}
	return store_tx_commit(st, e);
}

static void t_fault_injection(void **s)
{
	(void)s;
	cg_err e;
	store_fault_arm(st, 0);
	assert_int_equal(store_exec(st, "DELETE FROM b; DELETE FROM a;", &e), 0);
	/* count the fault points, then fail at each one: nothing may remain */
	assert_int_equal(three_steps(&e), 0);
	int steps = store_fault_count(st);
	assert_int_equal(steps, 2);
	assert_int_equal(store_exec(st, "DELETE FROM b; DELETE FROM a;", &e), 0);
	for (int k = 1; k <= steps; k++) {
		store_fault_arm(st, k);
		assert_int_equal(three_steps(&e), -CG_E_INTERNAL);
		assert_non_null(strstr(e.msg, "injected fault at after s"));
		assert_int_equal(count("SELECT count(*) FROM a"), 0);
		assert_int_equal(count("SELECT count(*) FROM b"), 0);
		assert_int_equal(store_tx_depth(st), 0);
	}
	store_fault_arm(st, 0);
	assert_int_equal(three_steps(&e), 0);
	assert_int_equal(count("SELECT count(*) FROM a"), 2);
}

static void t_bad_files(void **s)
{
	(void)s;
	char p[160];
	snprintf(p, sizeof p, "%s/junk.db", dir);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	char junk[4096];
	memset(junk, 0x5a, sizeof junk);
	assert_int_equal(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
	close(fd);
	struct store *x = NULL;
	cg_err e;
	assert_true(store_open(p, 0, &x, &e) < 0);
	assert_null(x);
	assert_non_null(strstr(e.msg, "not a database"));
	snprintf(p, sizeof p, "%s/missing.db", dir);
	assert_true(store_open(p, STORE_READONLY, &x, &e) < 0);
	snprintf(p, sizeof p, "%s/no/such/dir/x.db", dir);
	assert_true(store_open(p, 0, &x, &e) < 0);
	assert_int_equal(e.code, CG_E_UNAVAILABLE);
	/* read-only open of a real store: reads work, writes fail cleanly */
	assert_int_equal(store_open(path, STORE_READONLY, &x, &e), 0);
	sqlite3_stmt *q = store_prep(x, "SELECT count(*) FROM a", &e);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	sqlite3_reset(q);
	assert_int_equal(store_exec(x, "INSERT INTO a VALUES(99,'ro')", &e), -CG_E_UNAVAILABLE);
	store_close(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_pragmas),	     cmocka_unit_test(t_migrations), cmocka_unit_test(t_transactions),
		cmocka_unit_test(t_fault_injection), cmocka_unit_test(t_bad_files),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
