/* dump — `clawgrid export` / `import`: the whole store as one JSON document (node_int.h has the format).
 *
 * Export reads inside one read transaction, so it is consistent even while a node writes. Import replaces
 * everything in one write transaction: drop the current schema, create the exported tables, insert the
 * rows, then create indexes, triggers and views (triggers last so they do not fire on restored rows).
 * Foreign keys are checked once, at commit. The DDL comes from a file, so each statement is checked to be a
 * single CREATE of an allowed kind before it runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/enc.h"
#include "base/log.h"
#include "node/node_int.h"
#include "store/store.h"

#define MAX_IDENT 200

static int sql_fail(struct store *st, cg_err *e, const char *what)
{
	return store_fail(st, e, what);
}

/* "name" with embedded quotes doubled, into out. -1 when too long. */
static int quote_ident(char *out, size_t cap, const char *name)
{
	size_t n = 0;
	if (cap < 3)
		return -1;
	out[n++] = '"';
	for (const char *p = name; *p; p++) {
		if (n + 3 >= cap)
			return -1;
		if (*p == '"')
			out[n++] = '"';
		out[n++] = *p;
	}
	out[n++] = '"';
	out[n] = 0;
	return 0;
}

/* Names of shadow tables (FTS internals): recreated by their virtual table, never dumped themselves. */
static bool is_shadow(sqlite3 *db, const char *name)
{
	sqlite3_stmt *s = NULL;
	bool shadow = false;
	if (sqlite3_prepare_v2(db, "SELECT type FROM pragma_table_list WHERE schema='main' AND name=?", -1, &s,
			       NULL) == SQLITE_OK) {
		sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
		if (sqlite3_step(s) == SQLITE_ROW)
			shadow = strcmp((const char *)sqlite3_column_text(s, 0), "shadow") == 0;
	}
	sqlite3_finalize(s);
	return shadow;
}

static json_t *value_json(sqlite3_stmt *s, int col)
{
	switch (sqlite3_column_type(s, col)) {
	case SQLITE_INTEGER:
		return json_integer(sqlite3_column_int64(s, col));
	case SQLITE_FLOAT:
		return json_real(sqlite3_column_double(s, col));
	case SQLITE_TEXT: {
		const char *t = (const char *)sqlite3_column_text(s, col);
		size_t n = (size_t)sqlite3_column_bytes(s, col);
		json_t *v = json_stringn(t, n);
		if (v)
			return v;
		/* Not valid UTF-8: keep the bytes exactly. */
		char *b64 = malloc(base64_encoded_len(n, false) + 1);
		if (!b64)
			return NULL;
		base64_encode(b64, (const uint8_t *)t, n, false);
		v = json_pack("{s:s}", "$text64", b64);
		free(b64);
		return v;
	}
	case SQLITE_BLOB: {
		const uint8_t *p = sqlite3_column_blob(s, col);
		size_t n = (size_t)sqlite3_column_bytes(s, col);
		char *b64 = malloc(base64_encoded_len(n, false) + 1);
		if (!b64)
			return NULL;
		base64_encode(b64, p, n, false);
		json_t *v = json_pack("{s:s}", "$base64", b64);
		free(b64);
		return v;
	}
	default:
		return json_null();
	}
}

static int dump_table(struct store *st, const char *name, json_t *tables, cg_err *e)
{
	char q[MAX_IDENT * 2 + 8], sql[MAX_IDENT * 2 + 40];
	if (quote_ident(q, sizeof q, name) < 0)
		return cg_fail(e, CG_E_INTERNAL, "export: table name too long");
	snprintf(sql, sizeof sql, "SELECT * FROM %s", q);
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL) != SQLITE_OK)
		return sql_fail(st, e, "export: read table");
	int nc = sqlite3_column_count(s);
	json_t *cols = json_array(), *rows = json_array();
	for (int i = 0; i < nc; i++)
		json_array_append_new(cols, json_string(sqlite3_column_name(s, i)));
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		json_t *row = json_array();
		for (int i = 0; i < nc; i++)
			json_array_append_new(row, value_json(s, i));
		json_array_append_new(rows, row);
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		json_decref(cols);
		json_decref(rows);
		return sql_fail(st, e, "export: read rows");
	}
	json_object_set_new(tables, name, json_pack("{s:o,s:o}", "columns", cols, "rows", rows));
	return 0;
}

int node_dump_export(struct store *st, json_t **out, cg_err *e)
{
	sqlite3 *db = store_db(st);
	int r = store_exec(st, "BEGIN", e); /* one read snapshot for the whole export */
	if (r < 0)
		return r;
	/* No timestamp in the document: the same store always exports to the same bytes, so an export, an
	 * import into a fresh data directory and a second export can be compared with cmp. */
	json_t *doc = json_pack("{s:s,s:i,s:{},s:[],s:{}}", "format", NODE_EXPORT_FORMAT, "version",
				NODE_EXPORT_VERSION, "schemaVersions", "objects", "tables");
	json_t *objects = json_object_get(doc, "objects"), *tables = json_object_get(doc, "tables");
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(db,
			       "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE "
			       "'sqlite_%' ORDER BY type <> 'table', rowid",
			       -1, &s, NULL) != SQLITE_OK) {
		r = sql_fail(st, e, "export: read schema");
		goto out;
	}
	while (sqlite3_step(s) == SQLITE_ROW) {
		const char *type = (const char *)sqlite3_column_text(s, 0);
		const char *name = (const char *)sqlite3_column_text(s, 1);
		const char *sql = (const char *)sqlite3_column_text(s, 2);
		if (!type || !name || !sql || (strcmp(type, "table") == 0 && is_shadow(db, name)))
			continue;
		json_array_append_new(objects, json_pack("{s:s,s:s,s:s}", "type", type, "name", name, "sql", sql));
		if (strcmp(type, "table") == 0 && (r = dump_table(st, name, tables, e)) < 0)
			goto out;
	}
	sqlite3_finalize(s);
	s = NULL;
	/* AUTOINCREMENT counters live in sqlite_sequence. */
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE name='sqlite_sequence'", -1, &s, NULL) ==
		    SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW && (r = dump_table(st, "sqlite_sequence", tables, e)) < 0)
		goto out;
	sqlite3_finalize(s);
	s = NULL;
	if (sqlite3_prepare_v2(db, "SELECT module, version FROM schema_version ORDER BY module", -1, &s, NULL) ==
	    SQLITE_OK) {
		json_t *sv = json_object_get(doc, "schemaVersions");
		while (sqlite3_step(s) == SQLITE_ROW)
			json_object_set_new(sv, (const char *)sqlite3_column_text(s, 0),
					    json_integer(sqlite3_column_int(s, 1)));
	}
	r = 0;
out:
	sqlite3_finalize(s);
	store_exec(st, "COMMIT", NULL);
	if (r < 0) {
		json_decref(doc);
		return r;
	}
	*out = doc;
	return 0;
}

/* ---------------------------------------------------------------- import */

static const char *allowed_ddl(const char *type, const char *sql)
{
	static const struct {
		const char *type, *prefix;
	} ok[] = {
		{"table", "CREATE TABLE "},    {"table", "CREATE VIRTUAL TABLE "}, {"index", "CREATE INDEX "},
		{"index", "CREATE UNIQUE INDEX "}, {"trigger", "CREATE TRIGGER "}, {"view", "CREATE VIEW "},
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		if (strcmp(type, ok[i].type) == 0 && strncasecmp(sql, ok[i].prefix, strlen(ok[i].prefix)) == 0)
			return ok[i].type;
	return NULL;
}

/* Runs exactly one statement; anything after it (a second statement) is refused. */
static int exec_one(struct store *st, const char *sql, const char *what, cg_err *e)
{
	sqlite3_stmt *s = NULL;
	const char *tail = NULL;
	if (sqlite3_prepare_v2(store_db(st), sql, -1, &s, &tail) != SQLITE_OK || !s) {
		sqlite3_finalize(s);
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "import: %s: %s", what, sqlite3_errmsg(store_db(st)));
	}
	while (tail && (*tail == ' ' || *tail == '\n' || *tail == '\t' || *tail == '\r' || *tail == ';'))
		tail++;
	if (tail && *tail) {
		sqlite3_finalize(s);
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "import: %s: more than one statement", what);
	}
	int rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "import: %s: %s", what, sqlite3_errmsg(store_db(st)));
	return 0;
}

static int drop_all(struct store *st, cg_err *e)
{
	sqlite3 *db = store_db(st);
	/* Views first, then tables (which take their indexes and triggers along). */
	static const char *const kinds[] = {"view", "table"};
	for (int k = 0; k < 2; k++) {
		json_t *names = json_array();
		sqlite3_stmt *s = NULL;
		if (sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type=? AND name NOT LIKE 'sqlite_%'", -1,
				       &s, NULL) != SQLITE_OK) {
			json_decref(names);
			return sql_fail(st, e, "import: read schema");
		}
		sqlite3_bind_text(s, 1, kinds[k], -1, SQLITE_STATIC);
		while (sqlite3_step(s) == SQLITE_ROW)
			json_array_append_new(names, json_string((const char *)sqlite3_column_text(s, 0)));
		sqlite3_finalize(s);
		size_t i;
		json_t *v;
		json_array_foreach(names, i, v)
		{
			const char *name = json_string_value(v);
			if (k == 1 && is_shadow(db, name))
				continue; /* dropped with its virtual table */
			char q[MAX_IDENT * 2 + 8], sql[MAX_IDENT * 2 + 40];
			if (quote_ident(q, sizeof q, name) < 0) {
				json_decref(names);
				return cg_fail(e, CG_E_INTERNAL, "import: name too long");
			}
			snprintf(sql, sizeof sql, "DROP %s IF EXISTS %s", k == 0 ? "VIEW" : "TABLE", q);
			if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
				json_decref(names);
				return sql_fail(st, e, "import: drop");
			}
		}
		json_decref(names);
	}
	return 0;
}

static int bind_value(sqlite3_stmt *s, int idx, json_t *v, uint8_t **tmp, cg_err *e, const char *where)
{
	if (json_is_null(v))
		return sqlite3_bind_null(s, idx) == SQLITE_OK ? 0 : -1;
	if (json_is_integer(v))
		return sqlite3_bind_int64(s, idx, json_integer_value(v)) == SQLITE_OK ? 0 : -1;
	if (json_is_real(v))
		return sqlite3_bind_double(s, idx, json_real_value(v)) == SQLITE_OK ? 0 : -1;
	if (json_is_boolean(v))
		return sqlite3_bind_int(s, idx, json_is_true(v)) == SQLITE_OK ? 0 : -1;
	if (json_is_string(v))
		return sqlite3_bind_text(s, idx, json_string_value(v), (int)json_string_length(v), SQLITE_TRANSIENT) ==
				       SQLITE_OK
			       ? 0
			       : -1;
	const char *b64 = json_string_value(json_object_get(v, "$base64"));
	const char *t64 = json_string_value(json_object_get(v, "$text64"));
	if (json_is_object(v) && json_object_size(v) == 1 && (b64 || t64)) {
		const char *src = b64 ? b64 : t64;
		size_t sl = strlen(src);
		*tmp = malloc(base64_decoded_max(sl) + 1);
		if (!*tmp)
			return cg_fail(e, CG_E_INTERNAL, "import: out of memory");
		long n = base64_decode(*tmp, src, sl, false);
		if (n < 0)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: bad base64", where);
		int rc = b64 ? sqlite3_bind_blob(s, idx, *tmp, (int)n, SQLITE_TRANSIENT)
			     : sqlite3_bind_text(s, idx, (const char *)*tmp, (int)n, SQLITE_TRANSIENT);
		return rc == SQLITE_OK ? 0 : -1;
	}
	return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: unsupported value", where);
}

static int load_table(struct store *st, const char *name, json_t *t, cg_err *e)
{
	json_t *cols = json_object_get(t, "columns"), *rows = json_object_get(t, "rows");
	size_t nc = json_array_size(cols);
	if (!json_is_array(cols) || !json_is_array(rows) || nc == 0 || nc > 2000)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "tables.%.*s: needs columns[] and rows[]", MAX_IDENT, name);
	buf sql;
	buf_init(&sql, 1u << 20);
	char q[MAX_IDENT * 2 + 8];
	int r = 0;
	if (quote_ident(q, sizeof q, name) < 0 || buf_printf(&sql, "INSERT INTO %s(", q) < 0)
		r = cg_fail(e, CG_E_INVALID_ARGUMENT, "tables: name too long");
	for (size_t i = 0; i < nc && r == 0; i++) {
		const char *c = json_string_value(json_array_get(cols, i));
		if (!c || quote_ident(q, sizeof q, c) < 0 || buf_printf(&sql, "%s%s", i ? "," : "", q) < 0)
			r = cg_fail(e, CG_E_INVALID_ARGUMENT, "tables.%.*s.columns[%zu]: bad column name", MAX_IDENT, name,
				    i);
	}
	if (r == 0 && buf_printf(&sql, ") VALUES(") < 0)
		r = cg_fail(e, CG_E_INTERNAL, "import: statement too long");
	for (size_t i = 0; i < nc && r == 0; i++)
		if (buf_printf(&sql, "%s?", i ? "," : "") < 0 || (i + 1 == nc && buf_putc(&sql, ')') < 0))
			r = cg_fail(e, CG_E_INTERNAL, "import: statement too long");
	sqlite3_stmt *s = NULL;
	if (r == 0 && sqlite3_prepare_v2(store_db(st), buf_cstr(&sql), -1, &s, NULL) != SQLITE_OK)
		r = cg_fail(e, CG_E_INVALID_ARGUMENT, "tables.%.*s: %s", MAX_IDENT, name, sqlite3_errmsg(store_db(st)));
	buf_done(&sql);
	size_t i;
	json_t *row;
	json_array_foreach(rows, i, row)
	{
		if (r < 0)
			break;
		if (!json_is_array(row) || json_array_size(row) != nc) {
			r = cg_fail(e, CG_E_INVALID_ARGUMENT, "tables.%.*s.rows[%zu]: must have %zu values", MAX_IDENT, name,
				    i, nc);
			break;
		}
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
		for (size_t j = 0; j < nc && r == 0; j++) {
			char where[300];
			snprintf(where, sizeof where, "tables.%.*s.rows[%zu][%zu]", MAX_IDENT, name, i, j);
			uint8_t *tmp = NULL;
			if (bind_value(s, (int)j + 1, json_array_get(row, j), &tmp, e, where) < 0)
				r = e && e->code ? -(int)e->code : -CG_E_INVALID_ARGUMENT;
			free(tmp);
		}
		if (r == 0 && sqlite3_step(s) != SQLITE_DONE)
			r = cg_fail(e, CG_E_CONFLICT, "tables.%.*s.rows[%zu]: %s", MAX_IDENT, name, i,
				    sqlite3_errmsg(store_db(st)));
	}
	sqlite3_finalize(s);
	return r;
}

int node_dump_import(struct store *st, json_t *doc, cg_err *e)
{
	const char *fmt = json_string_value(json_object_get(doc, "format"));
	json_t *ver = json_object_get(doc, "version");
	json_t *objects = json_object_get(doc, "objects"), *tables = json_object_get(doc, "tables");
	if (!fmt || strcmp(fmt, NODE_EXPORT_FORMAT) != 0)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "format: must be \"%s\"", NODE_EXPORT_FORMAT);
	if (!json_is_integer(ver) || json_integer_value(ver) != NODE_EXPORT_VERSION)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "version: only version %d is supported", NODE_EXPORT_VERSION);
	if (!json_is_array(objects) || !json_is_object(tables))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "objects/tables: missing");
	size_t i;
	json_t *o;
	json_array_foreach(objects, i, o)
	{
		const char *type = json_string_value(json_object_get(o, "type"));
		const char *name = json_string_value(json_object_get(o, "name"));
		const char *sql = json_string_value(json_object_get(o, "sql"));
		if (!type || !name || !sql || strlen(name) > MAX_IDENT || !allowed_ddl(type, sql))
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "objects[%zu]: must be {type,name,sql} with a CREATE "
				       "statement of that type", i);
	}
	const char *tname;
	json_t *t;
	json_object_foreach(tables, tname, t)
	{
		bool known = strcmp(tname, "sqlite_sequence") == 0;
		json_array_foreach(objects, i, o) known = known || (strcmp(json_string_value(json_object_get(o, "type")),
								     "table") == 0 &&
								     strcmp(json_string_value(json_object_get(o, "name")),
									    tname) == 0);
		if (!known)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "tables.%.*s: no such table in objects", MAX_IDENT, tname);
	}

	int r = store_tx_begin(st, e);
	if (r < 0)
		return r;
	if ((r = store_exec(st, "PRAGMA defer_foreign_keys=ON", e)) < 0 || (r = drop_all(st, e)) < 0)
		goto fail;
	/* Tables first, then rows, then indexes, triggers and views. */
	for (int pass = 0; pass < 2; pass++) {
		json_array_foreach(objects, i, o)
		{
			bool is_table = strcmp(json_string_value(json_object_get(o, "type")), "table") == 0;
			if (is_table != (pass == 0))
				continue;
			char what[260];
			snprintf(what, sizeof what, "objects[%zu]", i);
			if ((r = exec_one(st, json_string_value(json_object_get(o, "sql")), what, e)) < 0)
				goto fail;
		}
		if (pass == 0) {
			json_object_foreach(tables, tname, t)
			{
				if (strcmp(tname, "sqlite_sequence") == 0 &&
				    (r = store_exec(st, "DELETE FROM sqlite_sequence", e)) < 0)
					goto fail;
				if ((r = load_table(st, tname, t, e)) < 0)
					goto fail;
			}
		}
	}
	if ((r = store_tx_commit(st, e)) < 0) /* foreign keys are checked here */
		return r;
	log_info("node", "store imported", "objects=%zu tables=%zu", json_array_size(objects),
		 json_object_size(tables));
	return 0;
fail:
	store_tx_rollback(st);
	return r;
}
