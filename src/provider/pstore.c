#include "provider/pstore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "base/clock.h"
#include "base/enc.h"
#include "base/log.h"
#include "crypto/hash.h"
#include "store/store.h"

struct pstore {
	struct store *st;
	char root[4096];
};

static const struct store_migration migrations[] = {
	{1, "CREATE TABLE pv_objects(ns TEXT NOT NULL, path TEXT NOT NULL, etag TEXT NOT NULL, size INTEGER NOT NULL,"
	    " mime TEXT NOT NULL, leaseId TEXT NOT NULL, createdAt INTEGER NOT NULL, updatedAt INTEGER NOT NULL,"
	    " PRIMARY KEY(ns, path));"
	    "CREATE INDEX pv_objects_lease ON pv_objects(leaseId);"
	    "CREATE INDEX pv_objects_etag ON pv_objects(etag);"},
};

/* ---- virtual paths ---- */

/* Length of the UTF-8 sequence at s (at most n bytes), or 0 when it is not well formed (overlong forms,
 * surrogates and values above U+10FFFF are rejected). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len;
	unsigned min;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, min = 0x10000;
	else
		return 0;
	if (len > n)
		return 0;
	unsigned cp = c & (0x3f >> (len - 1));
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	/* C1 control characters are control characters too. */
	if (cp >= 0x80 && cp <= 0x9f)
		return 0;
	return len;
}

static int check_segments(const char *p, size_t len, bool allow_trailing_slash, const char *what, cg_err *e)
{
	const unsigned char *s = (const unsigned char *)p;
	size_t seg_start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len) {
			unsigned c = s[i];
			if (c == 0)
				return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: must not contain NUL", what);
			if (c < 0x20 || c == 0x7f)
				return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: must not contain control characters", what);
			if (c == '\\')
				return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: must not contain backslashes", what);
			if (c >= 0x80) {
				size_t l = utf8_len(s + i, len - i);
				if (!l)
					return cg_fail(e, CG_E_INVALID_ARGUMENT,
						       "%s: must be UTF-8 without control characters", what);
				i += l - 1;
				continue;
			}
			if (c != '/')
				continue;
		}
		size_t seg = i - seg_start;
		if (seg == 0) {
			if (i == 0 && i < len)
				return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: must be relative (no leading '/')", what);
			if (!(i == len && allow_trailing_slash))
				return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: must not contain empty segments", what);
		}
		if (seg > PSTORE_SEGMENT_MAX)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: segments are at most %d bytes", what,
				       PSTORE_SEGMENT_MAX);
		if ((seg == 1 && p[seg_start] == '.') || (seg == 2 && p[seg_start] == '.' && p[seg_start + 1] == '.'))
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: '.' and '..' segments are not allowed", what);
		seg_start = i + 1;
	}
	return 0;
}

int pstore_path_check(const char *path, size_t len, cg_err *e)
{
	if (!path || len == 0)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "path: must not be empty");
	if (len > PSTORE_PATH_MAX)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "path: at most %d bytes", PSTORE_PATH_MAX);
	return check_segments(path, len, false, "path", e);
}

int pstore_prefix_check(const char *prefix, size_t len, cg_err *e)
{
	if (!prefix || len == 0)
		return 0;
	if (len > PSTORE_PATH_MAX)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "prefix: at most %d bytes", PSTORE_PATH_MAX);
	/* A prefix may end inside a segment ("docs/rep") or with '/'; the same rules as paths otherwise. */
	return check_segments(prefix, len, true, "prefix", e);
}

void pstore_cid(char out[static 64], const uint8_t digest[static 32])
{
	uint8_t mh[36] = {0x01, 0x55, 0x12, 0x20};
	memcpy(mh + 4, digest, 32);
	out[0] = 'b';
	if (base32_encode(out + 1, 63, mh, sizeof mh) < 0)
		out[0] = 0;
}

/* ---- open ---- */

static int mkdir_p(const char *path, cg_err *e)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "storage root: too long");
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
			return cg_fail(e, CG_E_INTERNAL, "cannot create the storage folder: %s", strerror(errno));
		*p = '/';
	}
	if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
		return cg_fail(e, CG_E_INTERNAL, "cannot create the storage folder: %s", strerror(errno));
	return 0;
}

int pstore_open(struct store *st, const char *root, struct pstore **out, cg_err *e)
{
	if (!root || !*root || strlen(root) > 3900)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "storage root: must be a path of at most 3900 bytes");
	char sub[4096];
	int r = mkdir_p(root, e);
	if (r < 0)
		return r;
	snprintf(sub, sizeof sub, "%s/blobs", root);
	if ((r = mkdir_p(sub, e)) < 0)
		return r;
	snprintf(sub, sizeof sub, "%s/tmp", root);
	if ((r = mkdir_p(sub, e)) < 0)
		return r;
	if ((r = store_migrate(st, "provider_storage", migrations, sizeof migrations / sizeof *migrations, e)) < 0)
		return r;
	struct pstore *ps = calloc(1, sizeof *ps);
	if (!ps)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	ps->st = st;
	snprintf(ps->root, sizeof ps->root, "%s", root);
	*out = ps;
	return 0;
}

void pstore_free(struct pstore *ps)
{
	free(ps);
}

/* ---- blobs ---- */

static void blob_path(const struct pstore *ps, const char *etag, char *out, size_t cap)
{
	snprintf(out, cap, "%s/blobs/%.2s/%s", ps->root, etag, etag);
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int r = fsync(fd);
	close(fd);
	return r;
}

/* Writes the blob unless it already exists (content addressing makes an existing file the same bytes). */
static int blob_write(struct pstore *ps, const char *etag, const uint8_t *data, size_t n, cg_err *e)
{
	char final[4200], dir[4200], tmp[4200];
	blob_path(ps, etag, final, sizeof final);
	struct stat sb;
	if (stat(final, &sb) == 0 && S_ISREG(sb.st_mode) && (size_t)sb.st_size == n)
		return 0;
	snprintf(dir, sizeof dir, "%s/blobs/%.2s", ps->root, etag);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return cg_fail(e, CG_E_INTERNAL, "storage: cannot create a blob folder: %s", strerror(errno));
	uint8_t rnd[8];
	char rhex[17];
	randombytes_buf(rnd, sizeof rnd);
	hex_encode(rhex, rnd, sizeof rnd);
	snprintf(tmp, sizeof tmp, "%s/tmp/%s.%s", ps->root, etag, rhex);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return cg_fail(e, CG_E_INTERNAL, "storage: cannot write: %s", strerror(errno));
	size_t off = 0;
	while (off < n) {
		ssize_t w = write(fd, data + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int err = errno;
			close(fd);
			unlink(tmp);
			return cg_fail(e, err == ENOSPC ? CG_E_UNAVAILABLE : CG_E_INTERNAL, "storage: write failed: %s",
				       strerror(err));
		}
		off += (size_t)w;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		unlink(tmp);
		return cg_fail(e, CG_E_INTERNAL, "storage: fsync failed: %s", strerror(errno));
	}
	if (rename(tmp, final) != 0) {
		int err = errno;
		unlink(tmp);
		return cg_fail(e, CG_E_INTERNAL, "storage: rename failed: %s", strerror(err));
	}
	fsync_dir(dir);
	return 0;
}

static void blob_release(struct pstore *ps, const char *etag)
{
	cg_err e;
	sqlite3_stmt *s = store_prep(ps->st, "SELECT 1 FROM pv_objects WHERE etag=? LIMIT 1", &e);
	if (!s)
		return;
	sqlite3_bind_text(s, 1, etag, -1, SQLITE_TRANSIENT);
	bool used = sqlite3_step(s) == SQLITE_ROW;
	sqlite3_reset(s);
	if (!used) {
		char p[4200];
		blob_path(ps, etag, p, sizeof p);
		unlink(p);
	}
}

/* ---- index ---- */

static json_t *row_meta(sqlite3_stmt *s)
{
	/* columns: path, etag, size, mime, createdAt, updatedAt */
	const char *etag = (const char *)sqlite3_column_text(s, 1);
	uint8_t d[32];
	char cid[64] = "";
	if (etag && hex_decode(d, 32, etag, strlen(etag), false) == 0)
		pstore_cid(cid, d);
	return json_pack("{s:s,s:s,s:s,s:I,s:s,s:I,s:I}", "path", (const char *)sqlite3_column_text(s, 0), "etag",
			 etag ? etag : "", "cid", cid, "size", (json_int_t)sqlite3_column_int64(s, 2), "mime",
			 (const char *)sqlite3_column_text(s, 3), "createdAt", (json_int_t)sqlite3_column_int64(s, 4),
			 "updatedAt", (json_int_t)sqlite3_column_int64(s, 5));
}

int64_t pstore_lease_bytes(struct pstore *ps, const char *lease_id)
{
	cg_err e;
	sqlite3_stmt *s = store_prep(ps->st, "SELECT COALESCE(SUM(size),0) FROM pv_objects WHERE leaseId=?", &e);
	if (!s)
		return 0;
	sqlite3_bind_text(s, 1, lease_id, -1, SQLITE_TRANSIENT);
	int64_t v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
	sqlite3_reset(s);
	return v;
}

int pstore_put(struct pstore *ps, const char *ns, const char *lease_id, const char *path, const uint8_t *data,
	       size_t n, const char *mime, int64_t quota_bytes, json_t **out, cg_err *e)
{
	int r = pstore_path_check(path, strlen(path), e);
	if (r < 0)
		return r;
	if (!mime || !*mime)
		mime = "application/octet-stream";
	/* What the path holds now: its size no longer counts once replaced (only if it is this lease's). */
	char old_etag[65] = "";
	int64_t old_size = 0, created = clock_now_ms();
	bool same_lease = false;
	sqlite3_stmt *s = store_prep(ps->st, "SELECT etag, size, leaseId, createdAt FROM pv_objects WHERE ns=? AND path=?", e);
	if (!s)
		return -CG_E_INTERNAL;
	sqlite3_bind_text(s, 1, ns, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 2, path, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(s) == SQLITE_ROW) {
		snprintf(old_etag, sizeof old_etag, "%s", (const char *)sqlite3_column_text(s, 0));
		old_size = sqlite3_column_int64(s, 1);
		same_lease = strcmp((const char *)sqlite3_column_text(s, 2), lease_id) == 0;
		created = sqlite3_column_int64(s, 3);
	}
	sqlite3_reset(s);
	if (quota_bytes > 0) {
		int64_t used = pstore_lease_bytes(ps, lease_id) - (same_lease ? old_size : 0);
		if (used + (int64_t)n > quota_bytes)
			return cg_fail(e, CG_E_QUOTA_EXCEEDED, "storage quota of the lease exceeded (%lld of %lld bytes used)",
				       (long long)used, (long long)quota_bytes);
	}
	uint8_t d[32];
	char etag[65];
	sha256(d, data, n);
	hex_encode(etag, d, 32);
	if ((r = blob_write(ps, etag, data, n, e)) < 0)
		return r;
	int64_t now = clock_now_ms();
	if ((r = store_tx_begin(ps->st, e)) < 0)
		return r;
	s = store_prep(ps->st,
		       "INSERT INTO pv_objects(ns,path,etag,size,mime,leaseId,createdAt,updatedAt) VALUES(?,?,?,?,?,?,?,?)"
		       " ON CONFLICT(ns,path) DO UPDATE SET etag=excluded.etag, size=excluded.size, mime=excluded.mime,"
		       " leaseId=excluded.leaseId, updatedAt=excluded.updatedAt",
		       e);
	if (!s) {
		store_tx_rollback(ps->st);
		return -CG_E_INTERNAL;
	}
	sqlite3_bind_text(s, 1, ns, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 2, path, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 3, etag, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 4, (sqlite3_int64)n);
	sqlite3_bind_text(s, 5, mime, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 6, lease_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 7, created);
	sqlite3_bind_int64(s, 8, now);
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		r = store_fail(ps->st, e, "storage index");
		store_tx_rollback(ps->st);
		return r;
	}
	if ((r = store_tx_commit(ps->st, e)) < 0)
		return r;
	if (*old_etag && strcmp(old_etag, etag) != 0)
		blob_release(ps, old_etag);
	char cid[64];
	pstore_cid(cid, d);
	*out = json_pack("{s:s,s:s,s:s,s:I,s:s,s:I,s:I}", "path", path, "etag", etag, "cid", cid, "size", (json_int_t)n,
			 "mime", mime, "createdAt", (json_int_t)created, "updatedAt", (json_int_t)now);
	return 0;
}

int pstore_get(struct pstore *ps, const char *ns, const char *path, uint8_t **data, size_t *n, json_t **meta,
	       cg_err *e)
{
	int r = pstore_path_check(path, strlen(path), e);
	if (r < 0)
		return r;
	sqlite3_stmt *s = store_prep(
		ps->st, "SELECT path, etag, size, mime, createdAt, updatedAt FROM pv_objects WHERE ns=? AND path=?", e);
	if (!s)
		return -CG_E_INTERNAL;
	sqlite3_bind_text(s, 1, ns, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 2, path, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_reset(s);
		return cg_fail(e, CG_E_NOT_FOUND, "no object at this path");
	}
	json_t *m = row_meta(s);
	sqlite3_reset(s);
	const char *etag = json_string_value(json_object_get(m, "etag"));
	size_t size = (size_t)json_integer_value(json_object_get(m, "size"));
	char bp[4200];
	blob_path(ps, etag, bp, sizeof bp);
	uint8_t *buf = malloc(size ? size : 1);
	int fd = buf ? open(bp, O_RDONLY | O_CLOEXEC) : -1;
	size_t off = 0;
	if (fd >= 0) {
		while (off < size) {
			ssize_t got = read(fd, buf + off, size - off);
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0)
				break;
			off += (size_t)got;
		}
		close(fd);
	}
	uint8_t d[32];
	char hex[65];
	if (fd >= 0 && off == size) {
		sha256(d, buf, size);
		hex_encode(hex, d, 32);
	}
	if (fd < 0 || off != size || strcmp(hex, etag) != 0) {
		/* The blob vanished or rotted: refuse rather than serve bytes that do not match the etag. */
		log_error("provider", "storage blob missing or corrupt", "etag=%s", etag);
		free(buf);
		json_decref(m);
		return cg_fail(e, CG_E_INTERNAL, "stored object is unreadable");
	}
	*data = buf;
	*n = size;
	*meta = m;
	return 0;
}

int pstore_list(struct pstore *ps, const char *ns, const char *prefix, int64_t limit, json_t **out, cg_err *e)
{
	size_t plen = prefix ? strlen(prefix) : 0;
	int r = pstore_prefix_check(prefix, plen, e);
	if (r < 0)
		return r;
	if (limit <= 0)
		limit = PSTORE_LIST_DEF;
	if (limit > PSTORE_LIST_MAX)
		limit = PSTORE_LIST_MAX;
	/* Prefix match with substr() rather than LIKE/GLOB so '%', '_', '*' in paths are literal. */
	sqlite3_stmt *s = store_prep(ps->st,
				     "SELECT path, etag, size, mime, createdAt, updatedAt FROM pv_objects WHERE ns=?1 AND"
				     " substr(path,1,length(CAST(?2 AS BLOB)))=?2 ORDER BY path LIMIT ?3",
				     e);
	if (!s)
		return -CG_E_INTERNAL;
	sqlite3_bind_text(s, 1, ns, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 2, prefix ? prefix : "", -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 3, limit + 1);
	json_t *items = json_array();
	int64_t count = 0;
	bool truncated = false;
	while (sqlite3_step(s) == SQLITE_ROW) {
		if (count == limit) {
			truncated = true;
			break;
		}
		json_t *m = row_meta(s);
		json_object_del(m, "createdAt");
		json_object_del(m, "cid");
		json_array_append_new(items, m);
		count++;
	}
	sqlite3_reset(s);
	*out = json_pack("{s:o,s:b}", "items", items, "truncated", truncated);
	return 0;
}
