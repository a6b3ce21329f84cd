#include "store/store.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"

#define STMT_CACHE 128

struct cached {
	char *sql;
	sqlite3_stmt *stmt;
};

struct store {
	sqlite3 *db;
	int depth;
	int fault_nth, fault_seen;
	struct cached cache[STMT_CACHE];
	size_t ncache;
};

int store_fail(struct store *st, cg_err *e, const char *what)
{
	int rc = sqlite3_errcode(st->db);
	const char *msg = sqlite3_errmsg(st->db);
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
	case SQLITE_READONLY:
	case SQLITE_FULL:
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
		return cg_fail(e, CG_E_UNAVAILABLE, "store: %s: %s", what, msg);
	case SQLITE_CONSTRAINT:
		return cg_fail(e, CG_E_CONFLICT, "store: %s: %s", what, msg);
	default:
		return cg_fail(e, CG_E_INTERNAL, "store: %s: %s", what, msg);
	}
}

int store_exec(struct store *st, const char *sql, cg_err *e)
{
	char *err = NULL;
	if (sqlite3_exec(st->db, sql, NULL, NULL, &err) != SQLITE_OK) {
		int r = store_fail(st, e, "exec");
		sqlite3_free(err);
		return r;
	}
	return 0;
}

int store_open(const char *path, unsigned flags, struct store **out, cg_err *e)
{
	struct store *st = calloc(1, sizeof *st);
	if (!st)
		return cg_fail(e, CG_E_INTERNAL, "store: out of memory");
	if (!(flags & STORE_READONLY) && strcmp(path, ":memory:") != 0) {
		/* SQLite would create the file with the process umask (0644 for most shells) and gives the -wal
		 * and -shm files the database's mode: create it 0600 first, and take group/other bits away from
		 * an existing one (the store holds hashes of tokens, signed records, balances). */
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		struct stat sb;
		if (fd >= 0 && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && (sb.st_mode & 077) &&
		    sb.st_uid == geteuid() && fchmod(fd, sb.st_mode & 0700) < 0)
			log_warn("store", "cannot restrict the database file to mode 0600", NULL);
		if (fd >= 0)
			close(fd);
	}
	int of = (flags & STORE_READONLY) ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
	of |= SQLITE_OPEN_NOMUTEX;
	if (sqlite3_open_v2(path, &st->db, of, NULL) != SQLITE_OK) {
		int r = cg_fail(e, CG_E_UNAVAILABLE, "store: cannot open database: %s",
				st->db ? sqlite3_errmsg(st->db) : "out of memory");
		sqlite3_close(st->db);
		free(st);
		return r;
	}
	sqlite3_busy_timeout(st->db, 5000);
	sqlite3_extended_result_codes(st->db, 1);
	int r;
	if (!(flags & STORE_READONLY)) {
		if ((r = store_exec(st, "PRAGMA journal_mode=WAL;", e)) < 0)
			goto fail;
	}
	if ((r = store_exec(st, "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA trusted_schema=OFF;",
			    e)) < 0)
		goto fail;
	/* Detect a corrupted file early with a cheap check instead of failing on first use. */
	if ((r = store_exec(st, "SELECT count(*) FROM sqlite_master;", e)) < 0)
		goto fail;
	if (!(flags & STORE_READONLY) &&
	    (r = store_exec(st,
			    "CREATE TABLE IF NOT EXISTS schema_version("
			    " module TEXT PRIMARY KEY, version INTEGER NOT NULL, applied_at INTEGER NOT NULL);",
			    e)) < 0)
		goto fail;
	*out = st;
	return 0;
fail:
	store_close(st);
	return r;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < st->ncache; i++) {
		sqlite3_finalize(st->cache[i].stmt);
		free(st->cache[i].sql);
	}
	sqlite3_close(st->db);
	free(st);
}

sqlite3 *store_db(struct store *st)
{
	return st->db;
}

sqlite3_stmt *store_prep(struct store *st, const char *sql, cg_err *e)
{
	for (size_t i = 0; i < st->ncache; i++) {
		if (st->cache[i].sql == sql || strcmp(st->cache[i].sql, sql) == 0) {
			sqlite3_reset(st->cache[i].stmt);
			sqlite3_clear_bindings(st->cache[i].stmt);
			return st->cache[i].stmt;
		}
	}
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) {
		store_fail(st, e, "prepare");
		log_error("store", "prepare failed", "err=\"%s\"", sqlite3_errmsg(st->db));
		return NULL;
	}
	if (st->ncache == STMT_CACHE) { /* full: evict the oldest */
		sqlite3_finalize(st->cache[0].stmt);
		free(st->cache[0].sql);
		memmove(st->cache, st->cache + 1, sizeof st->cache[0] * (STMT_CACHE - 1));
		st->ncache--;
	}
	st->cache[st->ncache].sql = strdup(sql);
	if (!st->cache[st->ncache].sql) {
		sqlite3_finalize(s);
		cg_fail(e, CG_E_INTERNAL, "store: out of memory");
		return NULL;
	}
	st->cache[st->ncache++].stmt = s;
	return s;
}

int store_schema_version(struct store *st, const char *module)
{
	sqlite3_stmt *s = store_prep(st, "SELECT version FROM schema_version WHERE module=?", NULL);
	if (!s)
		return 0;
	sqlite3_bind_text(s, 1, module, -1, SQLITE_STATIC);
	int v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
	sqlite3_reset(s);
	return v;
}

int store_migrate(struct store *st, const char *module, const struct store_migration *m, size_t n, cg_err *e)
{
	int cur = store_schema_version(st, module);
	for (size_t i = 0; i < n; i++) {
		if (m[i].version <= cur)
			continue;
		int r;
		if ((r = store_tx_begin(st, e)) < 0)
			return r;
		if ((r = store_exec(st, m[i].sql, e)) < 0) {
			store_tx_rollback(st);
			log_error("store", "migration failed", "module=%s version=%d", module, m[i].version);
			return r;
		}
		sqlite3_stmt *s = store_prep(st,
					     "INSERT INTO schema_version(module,version,applied_at) VALUES(?,?,"
					     "CAST(strftime('%s','now') AS INTEGER)*1000) ON CONFLICT(module) DO UPDATE"
					     " SET version=excluded.version, applied_at=excluded.applied_at",
					     e);
		if (!s) {
			store_tx_rollback(st);
			return -CG_E_INTERNAL;
		}
		sqlite3_bind_text(s, 1, module, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 2, m[i].version);
		if (sqlite3_step(s) != SQLITE_DONE) {
			r = store_fail(st, e, "record migration");
			sqlite3_reset(s);
			store_tx_rollback(st);
			return r;
		}
		sqlite3_reset(s);
		if ((r = store_tx_commit(st, e)) < 0)
			return r;
		cur = m[i].version;
		log_info("store", "migrated", "module=%s version=%d", module, cur);
	}
	return 0;
}

int store_tx_begin(struct store *st, cg_err *e)
{
	char sql[64];
	if (st->depth == 0)
		snprintf(sql, sizeof sql, "BEGIN IMMEDIATE");
	else
		snprintf(sql, sizeof sql, "SAVEPOINT sp%d", st->depth);
	int r = store_exec(st, sql, e);
	if (r < 0)
		return r;
	st->depth++;
	return 0;
}

int store_tx_commit(struct store *st, cg_err *e)
{
	char sql[64];
	if (st->depth <= 0)
		return cg_fail(e, CG_E_INTERNAL, "store: commit without transaction");
	if (st->depth == 1)
		snprintf(sql, sizeof sql, "COMMIT");
	else
		snprintf(sql, sizeof sql, "RELEASE sp%d", st->depth - 1);
	int r = store_exec(st, sql, e);
	if (r < 0) {
		store_tx_rollback(st);
		return r;
	}
	st->depth--;
	return 0;
}

void store_tx_rollback(struct store *st)
{
	char sql[96];
	if (st->depth <= 0)
		return;
	if (st->depth == 1)
		snprintf(sql, sizeof sql, "ROLLBACK");
	else
		snprintf(sql, sizeof sql, "ROLLBACK TO sp%d; RELEASE sp%d", st->depth - 1, st->depth - 1);
	/* Statements left mid-step would keep the transaction open; reset them all first. */
	for (size_t i = 0; i < st->ncache; i++)
		sqlite3_reset(st->cache[i].stmt);
	if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		log_error("store", "rollback failed", "err=\"%s\"", sqlite3_errmsg(st->db));
	st->depth--;
}

int store_tx_depth(struct store *st)
{
	return st->depth;
}

void store_fault_arm(struct store *st, int nth)
{
	st->fault_nth = nth;
	st->fault_seen = 0;
}

int store_fault(struct store *st, const char *site, cg_err *e)
{
	st->fault_seen++;
	if (st->fault_nth > 0 && st->fault_seen == st->fault_nth)
		return cg_fail(e, CG_E_INTERNAL, "injected fault at %s", site);
	return 0;
}

int store_fault_count(struct store *st)
{
	return st->fault_seen;
}
