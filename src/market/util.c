/* Market internals: the entity tables (JSON documents plus indexed columns), ids, hashing, audit events,
 * actor ids and the parameter helpers shared by every operation. */
#define MKT_INTERNAL
#include "market/mkt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "base/clock.h"
#include "base/enc.h"
#include "base/log.h"
#include "crypto/jcs.h"
#include "crypto/wallet.h"

struct tdef {
	const char *table, *entity, *idf;
	const char *cols[8];
};

/* Column names equal the JSON field they index; the id column is always "id". Keep in sync with schema.c. */
static const struct tdef tdefs[T_COUNT] = {
	[T_OFFER] = {"mkt_offers", "offer", "offerId", {"sellerId", "status", NULL}},
	[T_RESOURCE] = {"mkt_resources", "resource", "resourceId",
			{"providerActorId", "kind", "status", "offerId", NULL}},
	[T_ORDER] = {"mkt_orders", "order", "orderId", {"offerId", "buyerId", "status", NULL}},
	[T_CONSENT] = {"mkt_consents", "consent", "consentId", {"orderId", "status", NULL}},
	[T_DELIVERY] = {"mkt_deliveries", "delivery", "deliveryId", {"orderId", "status", NULL}},
	[T_LEASE] = {"mkt_leases", "lease", "leaseId",
		     {"resourceId", "providerActorId", "consumerActorId", "orderId", "status", "expiresAt",
		      "accessTokenHash", NULL}},
	[T_SETTLEMENT] = {"mkt_settlements", "settlement", "settlementId", {"orderId", "status", NULL}},
	[T_DISPUTE] = {"mkt_disputes", "dispute", "disputeId",
		       {"orderId", "status", "initiatorActorId", "respondentActorId", NULL}},
	[T_REVOCATION] = {"mkt_revocations", "revocation job", "jobId",
			  {"deliveryId", "status", "nextAttemptAt", NULL}},
	[T_REPAIR] = {"mkt_repairs", "repair job", "jobId", {"orderId", "status", "nextAttemptAt", NULL}},
	[T_PENDING] = {"mkt_pending", "pending settlement", "orderId", {"payer", "nextAttemptAt", NULL}},
};

const char *mkt_entity(enum mkt_tbl t)
{
	return tdefs[t].entity;
}

int64_t mkt_now(void)
{
	return clock_now_ms();
}

void mkt_new_id(char out[static MKT_ID_MAX], const char *prefix)
{
	uint8_t r[16];
	char b32[40];
	randombytes_buf(r, sizeof r);
	base32_encode(b32, sizeof b32, r, sizeof r);
	snprintf(out, MKT_ID_MAX, "%s_%s", prefix, b32);
}

const char *mkt_s(const json_t *doc, const char *key)
{
	const char *s = json_string_value(json_object_get(doc, key));
	return s ? s : "";
}

int64_t mkt_i(const json_t *doc, const char *key)
{
	return (int64_t)json_integer_value(json_object_get(doc, key));
}

void mkt_set_s(json_t *doc, const char *key, const char *v)
{
	if (v)
		json_object_set_new(doc, key, json_string(v));
	else
		json_object_del(doc, key);
}

void mkt_set_i(json_t *doc, const char *key, int64_t v)
{
	json_object_set_new(doc, key, json_integer(v));
}

static int load_doc(struct market *m, sqlite3_stmt *s, enum mkt_tbl t, json_t **out, cg_err *e)
{
	int rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(s);
		*out = NULL;
		return 0;
	}
	if (rc != SQLITE_ROW) {
		int r = store_fail(m->st, e, tdefs[t].entity);
		sqlite3_reset(s);
		return r;
	}
	json_error_t je;
	json_t *d = json_loadb((const char *)sqlite3_column_text(s, 0), (size_t)sqlite3_column_bytes(s, 0), 0, &je);
	sqlite3_reset(s);
	if (!json_is_object(d)) {
		json_decref(d);
		return cg_fail(e, CG_E_INTERNAL, "store: %s record is not valid JSON", tdefs[t].entity);
	}
	*out = d;
	return 0;
}

int mkt_get_opt(struct market *m, enum mkt_tbl t, const char *id, json_t **out, cg_err *e)
{
	char sql[160];
	snprintf(sql, sizeof sql, "SELECT data FROM %s WHERE id=?", tdefs[t].table);
	sqlite3_stmt *s = store_prep(m->st, sql, e);
	if (!s)
		return -CG_E_INTERNAL;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
	return load_doc(m, s, t, out, e);
}

int mkt_get(struct market *m, enum mkt_tbl t, const char *id, json_t **out, cg_err *e)
{
	int r = mkt_get_opt(m, t, id, out, e);
	if (r < 0)
		return r;
	if (!*out)
		return cg_fail(e, CG_E_NOT_FOUND, "%s not found", tdefs[t].entity);
	return 0;
}

int mkt_find(struct market *m, enum mkt_tbl t, const char *col, const char *val, json_t **out, cg_err *e)
{
	char sql[200];
	snprintf(sql, sizeof sql, "SELECT data FROM %s WHERE %s=? ORDER BY rowid LIMIT 1", tdefs[t].table, col);
	sqlite3_stmt *s = store_prep(m->st, sql, e);
	if (!s)
		return -CG_E_INTERNAL;
	sqlite3_bind_text(s, 1, val, -1, SQLITE_TRANSIENT);
	return load_doc(m, s, t, out, e);
}

static void bind_json(sqlite3_stmt *s, int i, json_t *v)
{
	if (json_is_string(v))
		sqlite3_bind_text(s, i, json_string_value(v), (int)json_string_length(v), SQLITE_TRANSIENT);
	else if (json_is_integer(v))
		sqlite3_bind_int64(s, i, (sqlite3_int64)json_integer_value(v));
	else
		sqlite3_bind_null(s, i);
}

int mkt_put(struct market *m, enum mkt_tbl t, json_t *doc, cg_err *e)
{
	const struct tdef *d = &tdefs[t];
	char sql[2048], cols[400] = "", vals[100] = "", upd[600] = "";
	int nc = 0;
	for (; d->cols[nc]; nc++) {
		size_t l = strlen(cols);
		snprintf(cols + l, sizeof cols - l, ",%s", d->cols[nc]);
		l = strlen(vals);
		snprintf(vals + l, sizeof vals - l, ",?");
		l = strlen(upd);
		snprintf(upd + l, sizeof upd - l, "%s=excluded.%s,", d->cols[nc], d->cols[nc]);
	}
	snprintf(sql, sizeof sql,
		 "INSERT INTO %s(id%s,data) VALUES(?%s,?) ON CONFLICT(id) DO UPDATE SET %sdata=excluded.data", d->table,
		 cols, vals, upd);
	const char *id = json_string_value(json_object_get(doc, d->idf));
	if (!id)
		return cg_fail(e, CG_E_INTERNAL, "%s without %s", d->entity, d->idf);
	char *data = json_dump_compact(doc);
	if (!data)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	sqlite3_stmt *s = store_prep(m->st, sql, e);
	if (!s) {
		free(data);
		return -CG_E_INTERNAL;
	}
	sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
	for (int i = 0; i < nc; i++)
		bind_json(s, i + 2, json_object_get(doc, d->cols[i]));
	sqlite3_bind_text(s, nc + 2, data, -1, free);
	int rc = sqlite3_step(s);
	int r = rc == SQLITE_DONE ? 0 : store_fail(m->st, e, d->entity);
	sqlite3_reset(s);
	return r;
}

int mkt_del(struct market *m, enum mkt_tbl t, const char *id, cg_err *e)
{
	char sql[160];
	snprintf(sql, sizeof sql, "DELETE FROM %s WHERE id=?", tdefs[t].table);
	sqlite3_stmt *s = store_prep(m->st, sql, e);
	if (!s)
		return -CG_E_INTERNAL;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
	int r = sqlite3_step(s) == SQLITE_DONE ? 0 : store_fail(m->st, e, tdefs[t].entity);
	sqlite3_reset(s);
	return r;
}

/* Builds "WHERE ..." for filters; the column names come from code, values are bound. */
static void where(char *w, size_t cap, const struct mkt_filter *f, size_t nf)
{
	snprintf(w, cap, "WHERE 1");
	for (size_t i = 0; i < nf; i++) {
		size_t l = strlen(w);
		/* Parameters are numbered (?N = filter N) so that "party" can use its value twice. */
		if (strcmp(f[i].op, "has") == 0)
			snprintf(w + l, cap - l, " AND EXISTS(SELECT 1 FROM json_each(data,'$.%s') WHERE value=?%zu)",
				 f[i].col, i + 1);
		else if (strcmp(f[i].op, "party") == 0)
			snprintf(w + l, cap - l, " AND (providerActorId=?%zu OR consumerActorId=?%zu)", i + 1, i + 1);
		else
			snprintf(w + l, cap - l, " AND %s%s?%zu", f[i].col, f[i].op, i + 1);
	}
}

static void bind_filters(sqlite3_stmt *s, const struct mkt_filter *f, size_t nf)
{
	for (size_t i = 0; i < nf; i++) {
		if (f[i].s)
			sqlite3_bind_text(s, (int)i + 1, f[i].s, -1, SQLITE_TRANSIENT);
		else
			sqlite3_bind_int64(s, (int)i + 1, f[i].i);
	}
}

int mkt_list(struct market *m, enum mkt_tbl t, const struct mkt_filter *f, size_t nf, int64_t limit, bool desc,
	     json_t **out, cg_err *e)
{
	char w[1024], sql[1400];
	where(w, sizeof w, f, nf);
	snprintf(sql, sizeof sql, "SELECT data FROM %s %s ORDER BY rowid %s LIMIT %lld", tdefs[t].table, w,
		 desc ? "DESC" : "ASC", (long long)limit);
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(store_db(m->st), sql, -1, &s, NULL) != SQLITE_OK)
		return store_fail(m->st, e, "list");
	bind_filters(s, f, nf);
	return mkt_rows(m, s, "list", out, e);
}

int mkt_rows(struct market *m, sqlite3_stmt *s, const char *what, json_t **out, cg_err *e)
{
	json_t *arr = json_array();
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		json_t *d = json_loadb((const char *)sqlite3_column_text(s, 0), (size_t)sqlite3_column_bytes(s, 0), 0,
				       NULL);
		if (d)
			json_array_append_new(arr, d);
	}
	int r = rc == SQLITE_DONE ? 0 : store_fail(m->st, e, what);
	sqlite3_finalize(s);
	if (r < 0) {
		json_decref(arr);
		return r;
	}
	*out = arr;
	return 0;
}

int64_t mkt_count(struct market *m, enum mkt_tbl t, const struct mkt_filter *f, size_t nf)
{
	char w[1024], sql[1400];
	where(w, sizeof w, f, nf);
	snprintf(sql, sizeof sql, "SELECT count(*) FROM %s %s", tdefs[t].table, w);
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(store_db(m->st), sql, -1, &s, NULL) != SQLITE_OK)
		return -1;
	bind_filters(s, f, nf);
	int64_t n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
	sqlite3_finalize(s);
	return n;
}

int mkt_rehash(json_t *doc, const char *field, cg_err *e)
{
	char h[72];
	json_object_del(doc, field);
	int r = jcs_sha256(doc, h, e);
	if (r < 0)
		return r;
	json_object_set_new(doc, field, json_string(h));
	return 0;
}

int mkt_audit(struct market *m, const char *kind, const char *ref, const char *hash, const char *actor,
	      json_t *details, cg_err *e)
{
	char id[MKT_ID_MAX];
	mkt_new_id(id, "aud");
	int64_t now = mkt_now();
	json_t *ev = json_pack("{s:s,s:s,s:s,s:I}", "id", id, "kind", kind, "refId", ref, "timestamp", (json_int_t)now);
	if (hash && *hash)
		json_object_set_new(ev, "hash", json_string(hash));
	if (actor && *actor)
		json_object_set_new(ev, "actor", json_string(actor));
	if (details)
		json_object_set_new(ev, "details", details);
	/* The event's own hash makes later tampering with the audit trail detectable by recomputation. */
	int r = mkt_rehash(ev, "eventHash", e);
	if (r < 0) {
		json_decref(ev);
		return r;
	}
	char *data = json_dump_compact(ev);
	json_decref(ev);
	if (!data)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	sqlite3_stmt *s = store_prep(m->st,
				     "INSERT INTO mkt_audit(id,ts,kind,refId,actor,data) VALUES(?,?,?,?,?,?)", e);
	if (!s) {
		free(data);
		return -CG_E_INTERNAL;
	}
	sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 2, now);
	sqlite3_bind_text(s, 3, kind, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 4, ref, -1, SQLITE_TRANSIENT);
	if (actor && *actor)
		sqlite3_bind_text(s, 5, actor, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, 5);
	sqlite3_bind_text(s, 6, data, -1, free);
	r = sqlite3_step(s) == SQLITE_DONE ? 0 : store_fail(m->st, e, "audit");
	sqlite3_reset(s);
	return r;
}

static bool actor_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
	       c == ':' || c == '@' || c == '+' || c == '-';
}

int mkt_actor_norm(const char *in, const char *field, char out[static MKT_ACTOR_MAX + 1], cg_err *e)
{
	size_t n = strlen(in);
	if (n == 42 && in[0] == '0' && (in[1] == 'x' || in[1] == 'X')) {
		uint8_t a[20];
		cg_err sub;
		if (eth_address_parse(in, a, &sub) < 0)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: %s", field, sub.msg);
		eth_address_checksum(out, a);
		return 0;
	}
	if (n == 0 || n > MKT_ACTOR_MAX)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: must be 1..%d characters", field, MKT_ACTOR_MAX);
	for (size_t i = 0; i < n; i++)
		if (!actor_char(in[i]))
			return cg_fail(e, CG_E_INVALID_ARGUMENT,
				       "%s: must be an address or an id of letters, digits and ._:@+-", field);
	memcpy(out, in, n + 1);
	return 0;
}

int mkt_jp_actor(json_t *p, const char *pfx, const char *key, unsigned flags, char out[static MKT_ACTOR_MAX + 1],
		 bool *present, cg_err *e)
{
	const char *s = NULL;
	char f[160];
	*present = false;
	int r = jp_str(p, pfx, key, flags, 1, MKT_ACTOR_MAX, &s, e);
	if (r < 0 || !s)
		return r;
	snprintf(f, sizeof f, "%s%s%s", pfx ? pfx : "", pfx ? "." : "", key);
	if ((r = mkt_actor_norm(s, f, out, e)) < 0)
		return r;
	*present = true;
	return 0;
}

bool mkt_actor_eq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

int mkt_need_actor(const char *actor, cg_err *e)
{
	if (!actor || !*actor)
		return cg_fail(e, CG_E_AUTH_REQUIRED, "actorId is required");
	return 0;
}

static bool id_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
	       c == '.' || c == ':';
}

int mkt_jp_id(json_t *p, const char *key, unsigned flags, const char **out, cg_err *e)
{
	const char *s = NULL;
	int r = jp_str(p, NULL, key, flags, 1, MKT_ID_MAX - 1, &s, e);
	if (r < 0 || !s)
		return r;
	for (const char *c = s; *c; c++)
		if (!id_char(*c))
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: must be an id of letters, digits and _-.:", key);
	*out = s;
	return 0;
}

int mkt_jp_limit(json_t *p, int64_t def, int64_t max, int64_t *out, cg_err *e)
{
	*out = def;
	return jp_int(p, NULL, "limit", 0, 1, max, out, e);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (the well-known days-from-civil arithmetic). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* Reads exactly n digits at *s (advancing it); -1 when they are not there. */
static int64_t digits(const char **s, int n)
{
	int64_t v = 0;
	for (int i = 0; i < n; i++, (*s)++) {
		if (**s < '0' || **s > '9')
			return -1;
		v = v * 10 + (**s - '0');
	}
	return v;
}

int mkt_parse_iso8601(const char *s, int64_t *out_ms)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int64_t y = digits(&s, 4), mo, d, h = 0, mi = 0, sec = 0, ms = 0, off = 0;
	if (y < 0 || *s++ != '-' || (mo = digits(&s, 2)) < 1 || mo > 12 || *s++ != '-' || (d = digits(&s, 2)) < 1 ||
	    d > mdays[mo - 1])
		return -1;
	if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return -1;
	if (*s == 'T' || *s == 't' || *s == ' ') {
		s++;
		if ((h = digits(&s, 2)) < 0 || h > 23 || *s++ != ':' || (mi = digits(&s, 2)) < 0 || mi > 59)
			return -1;
		if (*s == ':') {
			s++;
			if ((sec = digits(&s, 2)) < 0 || sec > 60)
				return -1;
			if (*s == '.') {
				/* Fractions beyond milliseconds are truncated, as Date.parse does. */
				int n = 0;
				for (s++; *s >= '0' && *s <= '9'; s++, n++)
					if (n < 3)
						ms = ms * 10 + (*s - '0');
				if (n == 0)
					return -1;
				for (; n < 3; n++)
					ms *= 10;
			}
		}
		if (*s == 'Z' || *s == 'z') {
			s++;
		} else if (*s == '+' || *s == '-') {
			int sign = *s++ == '-' ? -1 : 1;
			int64_t oh = digits(&s, 2), om;
			if (oh < 0 || oh > 23)
				return -1;
			if (*s == ':')
				s++;
			if ((om = digits(&s, 2)) < 0 || om > 59)
				return -1;
			off = sign * (oh * 60 + om) * 60000;
		}
	}
	if (*s)
		return -1;
	*out_ms = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + sec * 1000 + ms - off;
	return 0;
}

int mkt_jp_time(json_t *p, const char *key, int64_t *out, cg_err *e)
{
	/* Unix epoch milliseconds, or an ISO 8601 / RFC 3339 string as the seed's handlers take ("2026-03-01",
	 * "2026-03-01T12:00:00.000Z"; no offset means UTC). Up to year 2286 keeps clear of overflow. */
	json_t *v = json_object_get(p, key);
	int64_t t;
	if (!v || json_is_null(v))
		return 0;
	if (json_is_string(v)) {
		if (json_string_length(v) > 40 || mkt_parse_iso8601(json_string_value(v), &t) < 0 || t < 0 ||
		    t > MKT_TIME_MAX)
			return cg_fail(e, CG_E_INVALID_ARGUMENT,
				       "%s: must be epoch milliseconds or an ISO 8601 time (1970..2286)", key);
		*out = t;
		return 0;
	}
	return jp_int(p, NULL, key, 0, 0, MKT_TIME_MAX, out, e);
}

int mkt_jp_range(json_t *p, int64_t *since, int64_t *until, cg_err *e)
{
	int r;
	if ((r = mkt_jp_time(p, "since", since, e)) < 0 || (r = mkt_jp_time(p, "until", until, e)) < 0)
		return r;
	if (*since >= 0 && *until >= 0 && *since > *until)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "since: must not be after until");
	return 0;
}

static bool secret_key_name(const char *k)
{
	static const char *const bad[] = {"endpoint", "backendconfig", "baseurl", "apikey", "api_key", "token",
					  "accesstoken", "secret", "password", "authorization", "privatekey", NULL};
	char low[64];
	size_t n = strlen(k);
	if (n >= sizeof low)
		n = sizeof low - 1;
	for (size_t i = 0; i < n; i++)
		low[i] = (char)((k[i] >= 'A' && k[i] <= 'Z') ? k[i] + 32 : k[i]);
	low[n] = 0;
	for (int i = 0; bad[i]; i++)
		if (strcmp(low, bad[i]) == 0)
			return true;
	return false;
}

static int scan_meta(json_t *v, const char *field, int depth, cg_err *e)
{
	if (depth > 8)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: nested too deeply", field);
	if (json_is_object(v)) {
		const char *k;
		json_t *x;
		json_object_foreach(v, k, x)
		{
			if (secret_key_name(k))
				return cg_fail(e, CG_E_INVALID_ARGUMENT,
					       "%s: must not carry endpoints, credentials or backend configuration",
					       field);
			int r = scan_meta(x, field, depth + 1, e);
			if (r < 0)
				return r;
		}
	} else if (json_is_array(v)) {
		size_t i;
		json_t *x;
		json_array_foreach(v, i, x)
		{
			int r = scan_meta(x, field, depth + 1, e);
			if (r < 0)
				return r;
		}
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		if (strstr(s, "tok_") || strstr(s, "://"))
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: must not carry tokens or URLs", field);
	}
	return 0;
}

int mkt_jp_meta(json_t *p, const char *pfx, const char *key, unsigned flags, json_t **out, cg_err *e)
{
	json_t *v = NULL;
	char f[160];
	int r = jp_obj(p, pfx, key, flags, &v, e);
	if (r < 0 || !v)
		return r;
	snprintf(f, sizeof f, "%s%s%s", pfx ? pfx : "", pfx ? "." : "", key);
	if ((r = scan_meta(v, f, 0, e)) < 0)
		return r;
	size_t len = 0;
	cg_err sub;
	char *c = jcs_canonicalize_n(v, &len, &sub);
	if (!c)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: %s", f, sub.msg);
	free(c);
	if (len > MKT_META_MAX)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: at most %d bytes", f, MKT_META_MAX);
	*out = v;
	return 0;
}

int mkt_backoff(struct market *m, int64_t attempts)
{
	int64_t d = m->o.backoff_base_ms;
	for (int64_t i = 1; i < attempts && d < m->o.backoff_max_ms; i++)
		d *= 2;
	if (d > m->o.backoff_max_ms)
		d = m->o.backoff_max_ms;
	return (int)d;
}

/* Records one attempt of a job (why NULL = it worked; final = give up) with its audit event. */
static void job_record(struct market *m, const struct mkt_jobs *q, json_t *job, const cg_err *why, bool final,
		       const char *actor)
{
	int64_t att = mkt_i(job, "attempts") + (why ? 1 : 0);
	char st[48], ev[48];
	mkt_set_i(job, "attempts", att);
	if (!why) {
		snprintf(st, sizeof st, "%s_done", q->kind);
		json_object_del(job, "lastError");
	} else {
		snprintf(st, sizeof st, "%s_%s", q->kind, final ? "failed" : "pending");
		mkt_set_s(job, "lastError", why->msg);
		mkt_set_i(job, "nextAttemptAt", mkt_now() + mkt_backoff(m, att));
	}
	mkt_set_s(job, "status", st);
	snprintf(ev, sizeof ev, "%s_%s", q->kind, why ? "retry" : "done");
	cg_err we;
	if (store_tx_begin(m->st, &we) < 0)
		goto fail;
	if (mkt_put(m, q->t, job, &we) < 0 ||
	    mkt_audit(m, ev, mkt_s(job, "jobId"), NULL, actor, json_pack("{s:I}", "attempts", (json_int_t)att), &we) < 0) {
		store_tx_rollback(m->st);
		goto fail;
	}
	if (store_tx_commit(m->st, &we) == 0)
		return;
fail:
	/* The job stays as it was and comes round again: a retry runs the operation twice at worst, which the
	 * operations tolerate (revocation notices and backend calls are idempotent). */
	log_error("market", "job update failed", "kind=%s err=\"%s\"", q->kind, we.msg);
}

int mkt_jobs_params(struct market *m, json_t *p, int64_t *limit, int64_t *max_attempts, bool *dry, cg_err *e)
{
	static const char *const keys[] = {"actorId", "limit", "maxAttempts", "dryRun", NULL};
	int r;
	*max_attempts = m->o.job_max_attempts;
	*dry = false;
	if ((r = jp_only(p, NULL, keys, e)) < 0 || (r = mkt_jp_limit(p, MKT_LIST_DEF, MKT_LIST_MAX, limit, e)) < 0 ||
	    (r = jp_int(p, NULL, "maxAttempts", 0, 1, 1000, max_attempts, e)) < 0 ||
	    (r = jp_bool(p, NULL, "dryRun", 0, dry, e)) < 0)
		return r;
	return 0;
}

int mkt_jobs_run(struct market *m, const struct mkt_jobs *q, const char *actor, int64_t limit, int64_t max_attempts,
		 bool dry, json_t **result, cg_err *e)
{
	char pending[48];
	snprintf(pending, sizeof pending, "%s_pending", q->kind);
	struct mkt_filter f[] = {{"status", "=", pending, 0}, {"nextAttemptAt", "<=", NULL, mkt_now()}};
	json_t *jobs;
	int r = mkt_list(m, q->t, f, 2, limit, false, &jobs, e);
	if (r < 0)
		return r;
	int64_t processed = 0, ok = 0, failed = 0;
	size_t i;
	json_t *job;
	json_array_foreach(jobs, i, job)
	{
		processed++;
		if (dry)
			continue;
		cg_err je;
		cg_err_clear(&je);
		if (q->attempt(m, job, &je) == 0) {
			ok++;
			job_record(m, q, job, NULL, false, actor);
		} else {
			failed++;
			bool final = mkt_i(job, "attempts") + 1 >= max_attempts || (q->final && q->final(&je));
			job_record(m, q, job, &je, final, actor);
		}
	}
	json_decref(jobs);
	struct mkt_filter pf[] = {{"status", "=", pending, 0}};
	*result = json_pack("{s:I,s:I,s:I,s:I,s:b}", "processed", (json_int_t)processed, "succeeded", (json_int_t)ok,
			    "failed", (json_int_t)failed, "pending", (json_int_t)mkt_count(m, q->t, pf, 1), "dryRun", dry);
	return 0;
}

int mkt_conflict(cg_err *e, const char *entity, const char *from, const char *to)
{
	return cg_fail(e, CG_E_CONFLICT, "%s cannot go from %s to %s", entity, from, to);
}

bool mkt_transient(const cg_err *e)
{
	return e->code == CG_E_UNAVAILABLE || e->code == CG_E_TIMEOUT;
}
