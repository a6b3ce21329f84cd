/* The gateway's budget (reserve-then-settle) and audit trail in the store (see bledger.h). */
#include "brain/bledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/amount.h"
#include "base/json.h"
#include "store/store.h"

static const struct store_migration migrations[] = {
	{1, "CREATE TABLE brain_budget(id INTEGER PRIMARY KEY CHECK(id = 1), credits TEXT, spent TEXT NOT NULL);"
	    "CREATE TABLE brain_reservations(id TEXT PRIMARY KEY, amount TEXT NOT NULL, createdAt INTEGER NOT NULL);"
	    "CREATE TABLE brain_audit(id TEXT PRIMARY KEY, ts INTEGER NOT NULL, model TEXT, brain TEXT, source TEXT,"
	    " upstream TEXT, stream INTEGER NOT NULL, status INTEGER NOT NULL, outcome TEXT NOT NULL, attempts TEXT,"
	    " promptTokens INTEGER, completionTokens INTEGER, usageSource TEXT, ttftMs REAL, durationMs REAL,"
	    " overheadMs REAL, cost TEXT NOT NULL, error TEXT);"
	    "CREATE INDEX brain_audit_ts ON brain_audit(ts);"},
};

static int step_done(struct store *st, sqlite3_stmt *s, cg_err *e, const char *what)
{
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : store_fail(st, e, what);
}

int bl_open(struct store *st, const char *credits, cg_err *e)
{
	int r = store_migrate(st, "brain", migrations, sizeof migrations / sizeof *migrations, e);
	if (r < 0)
		return r;
	if (credits && !amount_valid(credits))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "brain.budget.credits: must be a decimal amount");
	if ((r = store_tx_begin(st, e)) < 0)
		return r;
	sqlite3_stmt *s = store_prep(st, "DELETE FROM brain_reservations", e);
	if (!s || (r = step_done(st, s, e, "reservations")) < 0)
		goto fail;
	s = store_prep(st, "INSERT INTO brain_budget(id, credits, spent) VALUES(1, ?, '0')"
			   " ON CONFLICT(id) DO UPDATE SET credits = excluded.credits",
		       e);
	if (!s) {
		r = -CG_E_INTERNAL;
		goto fail;
	}
	if (credits)
		sqlite3_bind_text(s, 1, credits, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, 1);
	if ((r = step_done(st, s, e, "budget")) < 0)
		goto fail;
	return store_tx_commit(st, e);
fail:
	store_tx_rollback(st);
	return r < 0 ? r : -CG_E_INTERNAL;
}

/* Reads the budget row. credits[0] = 0 when unbounded. */
static int read_budget(struct store *st, char credits[static U256_DEC_MAX], char spent[static U256_DEC_MAX],
		       cg_err *e)
{
	sqlite3_stmt *s = store_prep(st, "SELECT credits, spent FROM brain_budget WHERE id = 1", e);
	if (!s)
		return -CG_E_INTERNAL;
	int rc = sqlite3_step(s);
	credits[0] = 0;
	snprintf(spent, U256_DEC_MAX, "0");
	if (rc == SQLITE_ROW) {
		const char *c = (const char *)sqlite3_column_text(s, 0);
		const char *sp = (const char *)sqlite3_column_text(s, 1);
		if (c)
			snprintf(credits, U256_DEC_MAX, "%s", c);
		if (sp)
			snprintf(spent, U256_DEC_MAX, "%s", sp);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_fail(st, e, "budget");
	return 0;
}

/* Sum of the open reservations (exact uint256 arithmetic: SQL SUM cannot hold amounts). */
static int reserved_sum(struct store *st, char out[static U256_DEC_MAX], cg_err *e)
{
	sqlite3_stmt *s = store_prep(st, "SELECT amount FROM brain_reservations", e);
	if (!s)
		return -CG_E_INTERNAL;
	char acc[U256_DEC_MAX] = "0";
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *a = (const char *)sqlite3_column_text(s, 0);
		if (!a || amount_add(acc, a, acc) < 0) {
			sqlite3_reset(s);
			return cg_fail(e, CG_E_INTERNAL, "brain: corrupt reservation amount");
		}
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return store_fail(st, e, "reservations");
	snprintf(out, U256_DEC_MAX, "%s", acc);
	return 0;
}

int bl_reserve(struct store *st, const char *id, const char *amount, cg_err *e)
{
	char credits[U256_DEC_MAX], spent[U256_DEC_MAX], held[U256_DEC_MAX], need[U256_DEC_MAX];
	if (!amount_valid(amount))
		return cg_fail(e, CG_E_INTERNAL, "brain: invalid reservation amount");
	int r = store_tx_begin(st, e);
	if (r < 0)
		return r;
	if ((r = read_budget(st, credits, spent, e)) < 0)
		goto fail;
	if (!credits[0]) {
		store_tx_rollback(st); /* unbounded: nothing to hold */
		return 0;
	}
	if ((r = reserved_sum(st, held, e)) < 0 || (r = store_fault(st, "brain.reserve.check", e)) < 0)
		goto fail;
	if (amount_add(spent, held, need) < 0 || amount_add(need, amount, need) < 0) {
		r = cg_fail(e, CG_E_QUOTA_EXCEEDED, "budget exhausted");
		goto fail;
	}
	if (amount_cmp(need, credits) > 0) {
		char left[U256_DEC_MAX] = "0", used[U256_DEC_MAX];
		if (amount_add(spent, held, used) == 0 && amount_cmp(credits, used) > 0)
			amount_sub(credits, used, left);
		r = cg_fail(e, CG_E_QUOTA_EXCEEDED,
			    "budget exhausted: %s credits left (%s spent, %s held by requests in flight), this request may "
			    "cost up to %s",
			    left, spent, held, amount);
		goto fail;
	}
	sqlite3_stmt *s = store_prep(st, "INSERT INTO brain_reservations(id, amount, createdAt) VALUES(?, ?, "
					 "CAST(strftime('%s','now') AS INTEGER) * 1000)",
				     e);
	if (!s) {
		r = -CG_E_INTERNAL;
		goto fail;
	}
	sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 2, amount, -1, SQLITE_TRANSIENT);
	if ((r = step_done(st, s, e, "reservation")) < 0)
		goto fail;
	return store_tx_commit(st, e);
fail:
	store_tx_rollback(st);
	return r;
}

static void bind_text_or_null(sqlite3_stmt *s, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, i);
}

static void bind_ms(sqlite3_stmt *s, int i, double v)
{
	if (v >= 0)
		sqlite3_bind_double(s, i, v);
	else
		sqlite3_bind_null(s, i);
}

/* One request's settlement inside the caller's transaction. */
static int settle_one(struct store *st, const struct bl_audit *a, cg_err *e)
{
	const char *cost = a->cost && amount_valid(a->cost) ? a->cost : "0";
	int r;
	sqlite3_stmt *s = store_prep(st, "DELETE FROM brain_reservations WHERE id = ?", e);
	if (!s) {
		r = -CG_E_INTERNAL;
		goto fail;
	}
	sqlite3_bind_text(s, 1, a->id, -1, SQLITE_TRANSIENT);
	if ((r = step_done(st, s, e, "reservation")) < 0 || (r = store_fault(st, "brain.settle.spent", e)) < 0)
		goto fail;
	char credits[U256_DEC_MAX], spent[U256_DEC_MAX];
	if ((r = read_budget(st, credits, spent, e)) < 0)
		goto fail;
	if (amount_add(spent, cost, spent) < 0) {
		r = cg_fail(e, CG_E_INTERNAL, "brain: spent overflows");
		goto fail;
	}
	s = store_prep(st, "UPDATE brain_budget SET spent = ? WHERE id = 1", e);
	if (!s) {
		r = -CG_E_INTERNAL;
		goto fail;
	}
	sqlite3_bind_text(s, 1, spent, -1, SQLITE_TRANSIENT);
	if ((r = step_done(st, s, e, "budget")) < 0 || (r = store_fault(st, "brain.settle.audit", e)) < 0)
		goto fail;
	s = store_prep(st, "INSERT INTO brain_audit(id, ts, model, brain, source, upstream, stream, status, outcome,"
			   " attempts, promptTokens, completionTokens, usageSource, ttftMs, durationMs, overheadMs, cost,"
			   " error) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
		       e);
	if (!s) {
		r = -CG_E_INTERNAL;
		goto fail;
	}
	char *att = a->attempts ? json_dumps(a->attempts, JSON_COMPACT) : NULL;
	sqlite3_bind_text(s, 1, a->id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 2, a->ts);
	bind_text_or_null(s, 3, a->model);
	bind_text_or_null(s, 4, a->brain);
	bind_text_or_null(s, 5, a->source);
	bind_text_or_null(s, 6, a->upstream);
	sqlite3_bind_int(s, 7, a->stream);
	sqlite3_bind_int(s, 8, a->status);
	sqlite3_bind_text(s, 9, a->outcome ? a->outcome : "error", -1, SQLITE_TRANSIENT);
	bind_text_or_null(s, 10, att);
	if (a->prompt_tokens >= 0)
		sqlite3_bind_int64(s, 11, a->prompt_tokens);
	if (a->completion_tokens >= 0)
		sqlite3_bind_int64(s, 12, a->completion_tokens);
	bind_text_or_null(s, 13, a->usage_source);
	bind_ms(s, 14, a->ttft_ms);
	bind_ms(s, 15, a->duration_ms);
	bind_ms(s, 16, a->overhead_ms);
	sqlite3_bind_text(s, 17, cost, -1, SQLITE_TRANSIENT);
	bind_text_or_null(s, 18, a->error);
	r = step_done(st, s, e, "audit");
	free(att);
	return r;
fail:
	return r < 0 ? r : -CG_E_INTERNAL;
}

int bl_settle_many(struct store *st, const struct bl_audit *const *a, size_t n, cg_err *e)
{
	int r = store_tx_begin(st, e);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if ((r = settle_one(st, a[i], e)) < 0) {
			store_tx_rollback(st);
			return r;
		}
	return store_tx_commit(st, e);
}

int bl_settle(struct store *st, const struct bl_audit *a, cg_err *e)
{
	return bl_settle_many(st, &a, 1, e);
}

int bl_status(struct store *st, json_t **out, cg_err *e)
{
	char credits[U256_DEC_MAX], spent[U256_DEC_MAX], held[U256_DEC_MAX], used[U256_DEC_MAX];
	char left[U256_DEC_MAX] = "0";
	int r;
	if ((r = read_budget(st, credits, spent, e)) < 0 || (r = reserved_sum(st, held, e)) < 0)
		return r;
	if (!credits[0]) {
		*out = json_pack("{s:s,s:n,s:s,s:s,s:n}", "status", "unbound", "credits", "spent", spent, "reserved", held,
				 "remaining");
		return *out ? 0 : cg_fail(e, CG_E_INTERNAL, "out of memory");
	}
	if (amount_add(spent, held, used) == 0 && amount_cmp(credits, used) > 0)
		amount_sub(credits, used, left);
	bool exhausted = amount_cmp(credits, spent) <= 0 || !strcmp(left, "0");
	*out = json_pack("{s:s,s:s,s:s,s:s,s:s}", "status", exhausted ? "exhausted" : "active", "credits", credits,
			 "spent", spent, "reserved", held, "remaining", left);
	return *out ? 0 : cg_fail(e, CG_E_INTERNAL, "out of memory");
}

static json_t *col_text(sqlite3_stmt *s, int i)
{
	const char *v = (const char *)sqlite3_column_text(s, i);
	return v ? json_string(v) : json_null();
}

static json_t *col_num(sqlite3_stmt *s, int i, bool real)
{
	if (sqlite3_column_type(s, i) == SQLITE_NULL)
		return json_null();
	return real ? json_real(sqlite3_column_double(s, i)) : json_integer(sqlite3_column_int64(s, i));
}

int bl_audit_query(struct store *st, json_t *params, json_t **out, cg_err *e)
{
	static const char *const keys[] = {"limit", "before", "requestId", "outcome", NULL};
	int64_t limit = 100, before = INT64_MAX;
	const char *rid = NULL, *outcome = NULL;
	int r;
	if (params && !json_is_object(params))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "params: must be an object");
	if (params && ((r = jp_only(params, NULL, keys, e)) < 0 ||
		       (r = jp_int(params, NULL, "limit", 0, 1, 1000, &limit, e)) < 0 ||
		       (r = jp_int(params, NULL, "before", 0, 0, INT64_MAX, &before, e)) < 0 ||
		       (r = jp_str(params, NULL, "requestId", 0, 1, 64, &rid, e)) < 0 ||
		       (r = jp_str(params, NULL, "outcome", 0, 1, 32, &outcome, e)) < 0))
		return r;
	sqlite3_stmt *s = store_prep(st, "SELECT id, ts, model, brain, source, upstream, stream, status, outcome, attempts,"
					 " promptTokens, completionTokens, usageSource, ttftMs, durationMs, overheadMs, cost,"
					 " error FROM brain_audit WHERE ts < ? AND (?2 IS NULL OR id = ?2)"
					 " AND (?3 IS NULL OR outcome = ?3) ORDER BY ts DESC, rowid DESC LIMIT ?4",
				     e);
	if (!s)
		return -CG_E_INTERNAL;
	sqlite3_bind_int64(s, 1, before);
	bind_text_or_null(s, 2, rid);
	bind_text_or_null(s, 3, outcome);
	sqlite3_bind_int64(s, 4, limit);
	json_t *list = json_array();
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *att = (const char *)sqlite3_column_text(s, 9);
		json_t *attempts = att ? json_loads(att, 0, NULL) : NULL;
		json_t *rec = json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:b,s:o,s:o,s:o,s:{s:o,s:o,s:o},s:o,s:o,s:o,s:o,s:o}",
					"requestId", col_text(s, 0), "ts", col_num(s, 1, false), "model", col_text(s, 2),
					"brain", col_text(s, 3), "source", col_text(s, 4), "upstream", col_text(s, 5),
					"stream", sqlite3_column_int(s, 6), "status", col_num(s, 7, false), "outcome",
					col_text(s, 8), "attempts", attempts ? attempts : json_array(), "usage",
					"promptTokens", col_num(s, 10, false), "completionTokens", col_num(s, 11, false),
					"source", col_text(s, 12), "ttftMs", col_num(s, 13, true), "durationMs",
					col_num(s, 14, true), "overheadMs", col_num(s, 15, true), "cost", col_text(s, 16),
					"error", col_text(s, 17));
		if (rec)
			json_array_append_new(list, rec);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		json_decref(list);
		return store_fail(st, e, "audit");
	}
	*out = json_pack("{s:o}", "records", list);
	return 0;
}
