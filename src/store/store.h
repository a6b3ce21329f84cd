/* store — the node's SQLite database: WAL, synchronous=NORMAL, busy timeout, foreign keys, per-module
 * numbered migrations, nestable transactions, a prepared-statement cache and fault injection for the
 * atomicity tests. All calls happen on the loop thread (one connection).
 *
 *   if (store_tx_begin(st, e) < 0) return ...;
 *   ... writes ...            (any failure: store_tx_rollback(st); return r;)
 *   return store_tx_commit(st, e);
 *
 * Nested begin/commit pairs become SAVEPOINTs, so a helper that opens its own transaction can be called
 * from inside another one; an inner rollback undoes only the inner part. */
#ifndef CG_STORE_STORE_H
#define CG_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include <sqlite3.h>

#include "base/err.h"

struct store;

#define STORE_READONLY 1u

/* Opens (creating if needed) the database at path. Caller frees with store_close(). */
int store_open(const char *path, unsigned flags, struct store **out, cg_err *e);
void store_close(struct store *st);
sqlite3 *store_db(struct store *st);

struct store_migration {
	int version;     /* 1, 2, 3, ... in order */
	const char *sql; /* one or more statements */
};
/* Applies the migrations of `module` above its recorded version, each in its own transaction, recording the
 * new version in schema_version(module, version). Idempotent. */
int store_migrate(struct store *st, const char *module, const struct store_migration *m, size_t n, cg_err *e);
int store_schema_version(struct store *st, const char *module); /* 0 when none */

int store_tx_begin(struct store *st, cg_err *e) __attribute__((warn_unused_result));
int store_tx_commit(struct store *st, cg_err *e) __attribute__((warn_unused_result));
void store_tx_rollback(struct store *st);
int store_tx_depth(struct store *st);

/* Returns a cached prepared statement, reset and with bindings cleared; borrowed (do not finalize).
 * NULL on a prepare error (logged; e set). */
sqlite3_stmt *store_prep(struct store *st, const char *sql, cg_err *e);
int store_exec(struct store *st, const char *sql, cg_err *e);
/* Maps the last SQLite error on st to E_INTERNAL (or E_UNAVAILABLE when busy/read-only/full). */
int store_fail(struct store *st, cg_err *e, const char *what);

/* Fault injection (Gate-ATOMIC-01 tests): after store_fault_arm(st, n), the n-th call to store_fault()
 * fails with E_INTERNAL "injected fault at <site>"; n = 0 disarms. Operations call store_fault() between
 * their steps. Returns the number of store_fault() calls seen since arming (to enumerate steps). */
void store_fault_arm(struct store *st, int nth);
int store_fault(struct store *st, const char *site, cg_err *e) __attribute__((warn_unused_result));
int store_fault_count(struct store *st);

#endif
