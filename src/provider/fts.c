#include "provider/fts.h"

#include <ctype.h>
#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "base/buf.h"
#include "base/log.h"

#define MAX_DEPTH 16
#define MAX_FILES 100000

struct fts {
	sqlite3 *db;
	char folder[4096];
	char base_url[512];
	int64_t gen;
};

static const char schema[] =
	"PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
	"CREATE TABLE IF NOT EXISTS files(path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime INTEGER NOT NULL,"
	" gen INTEGER NOT NULL);"
	"CREATE VIRTUAL TABLE IF NOT EXISTS docs USING fts5(path UNINDEXED, title, body,"
	" tokenize='unicode61 remove_diacritics 2');";

static int dbfail(struct fts *f, cg_err *e, const char *what)
{
	log_warn("provider", "search index error", "what=%s err=\"%s\"", what, sqlite3_errmsg(f->db));
	return cg_fail(e, CG_E_INTERNAL, "search index: %s failed", what);
}

int fts_open(const char *folder, const char *db_path, const char *base_url, struct fts **out, cg_err *e)
{
	struct stat sb;
	if (!folder || stat(folder, &sb) != 0 || !S_ISDIR(sb.st_mode))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "search folder: not a readable folder");
	struct fts *f = calloc(1, sizeof *f);
	if (!f)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	snprintf(f->folder, sizeof f->folder, "%s", folder);
	snprintf(f->base_url, sizeof f->base_url, "%s", base_url && *base_url ? base_url : "doc:/");
	if (sqlite3_open_v2(db_path, &f->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
		    SQLITE_OK ||
	    sqlite3_exec(f->db, schema, NULL, NULL, NULL) != SQLITE_OK) {
		int r = dbfail(f, e, "open");
		fts_free(f);
		return r;
	}
	sqlite3_busy_timeout(f->db, 2000);
	*out = f;
	return 0;
}

void fts_free(struct fts *f)
{
	if (!f)
		return;
	sqlite3_close(f->db);
	free(f);
}

/* ---- extraction ---- */

static void squeeze(buf *b)
{
	/* Collapse runs of whitespace to one space; trims both ends. */
	size_t w = 0;
	bool sp = true;
	for (size_t i = 0; i < b->len; i++) {
		unsigned char c = b->data[i];
		if (isspace(c) || c == 0) {
			if (!sp)
				b->data[w++] = ' ';
			sp = true;
		} else {
			b->data[w++] = c;
			sp = false;
		}
	}
	if (w && b->data[w - 1] == ' ')
		w--;
	b->len = w;
	if (b->data)
		b->data[w] = 0;
}

static const struct {
	const char *name;
	const char *text;
} entities[] = {{"amp", "&"}, {"lt", "<"}, {"gt", ">"}, {"quot", "\""}, {"apos", "'"}, {"nbsp", " "}, {"#39", "'"}};

static size_t entity(const char *s, size_t n, buf *out)
{
	/* s points after '&'. Returns bytes consumed (0: not an entity). */
	const char *semi = memchr(s, ';', n < 10 ? n : 10);
	if (!semi)
		return 0;
	size_t l = (size_t)(semi - s);
	for (size_t i = 0; i < sizeof entities / sizeof *entities; i++)
		if (strlen(entities[i].name) == l && strncmp(s, entities[i].name, l) == 0) {
			(void)!buf_append(out, entities[i].text, strlen(entities[i].text));
			return l + 1;
		}
	if (l >= 2 && s[0] == '#') {
		/* Numeric reference: decimal or x-hex, at most 8 digits (the search window above caps it). */
		bool hex = s[1] == 'x' || s[1] == 'X';
		long cp = 0;
		for (size_t k = hex ? 2 : 1; k < l; k++) {
			int dv = isdigit((unsigned char)s[k]) ? s[k] - '0'
				 : hex && isxdigit((unsigned char)s[k]) ? (tolower((unsigned char)s[k]) - 'a' + 10)
									: -1;
			if (dv < 0) {
				cp = 0;
				break;
			}
			cp = cp * (hex ? 16 : 10) + dv;
		}
		if (cp > 0 && cp < 0x80 && cp >= 0x20) {
			(void)!buf_putc(out, (uint8_t)cp);
			return l + 1;
		}
		(void)!buf_putc(out, ' ');
		return l + 1;
	}
	return 0;
}

static void html_extract(const char *in, size_t n, buf *title, buf *text)
{
	size_t i = 0;
	bool in_title = false;
	while (i < n) {
		if (in[i] == '<') {
			const char *end = memchr(in + i, '>', n - i);
			if (!end)
				break;
			size_t tl = (size_t)(end - (in + i)) + 1;
			const char *tag = in + i + 1;
			size_t rest = n - i - 1;
			if (rest >= 6 && strncasecmp(tag, "script", 6) == 0) {
				const char *close = memmem(in + i, n - i, "</script", 8);
				if (!close)
					close = memmem(in + i, n - i, "</SCRIPT", 8);
				i = close ? (size_t)(close - in) : n;
				continue;
			}
			if (rest >= 5 && strncasecmp(tag, "style", 5) == 0) {
				const char *close = memmem(in + i, n - i, "</style", 7);
				if (!close)
					close = memmem(in + i, n - i, "</STYLE", 7);
				i = close ? (size_t)(close - in) : n;
				continue;
			}
			if (rest >= 5 && strncasecmp(tag, "title", 5) == 0 && (tag[5] == '>' || tag[5] == ' '))
				in_title = true;
			else if (rest >= 6 && strncasecmp(tag, "/title", 6) == 0)
				in_title = false;
			(void)!buf_putc(text, ' ');
			i += tl;
			continue;
		}
		buf *dst = in_title ? title : text;
		if (in[i] == '&') {
			size_t used = entity(in + i + 1, n - i - 1, dst);
			if (used) {
				i += used + 1;
				continue;
			}
		}
		(void)!buf_putc(dst, (uint8_t)in[i]);
		i++;
	}
}

static void first_line_title(const char *in, size_t n, bool markdown, buf *title)
{
	size_t i = 0;
	while (i < n) {
		const char *nl = memchr(in + i, '\n', n - i);
		size_t l = nl ? (size_t)(nl - (in + i)) : n - i;
		const char *s = in + i;
		size_t sl = l;
		while (sl && isspace((unsigned char)*s))
			s++, sl--;
		if (markdown) {
			if (sl > 2 && s[0] == '#') {
				while (sl && (*s == '#' || *s == ' '))
					s++, sl--;
				(void)!buf_append(title, s, sl > 200 ? 200 : sl);
				return;
			}
		} else if (sl) {
			(void)!buf_append(title, s, sl > 200 ? 200 : sl);
			return;
		}
		if (!nl)
			break;
		i += l + 1;
	}
}

int fts_extract(char kind, const char *in, size_t n, char **title, char **text)
{
	buf t, b;
	buf_init(&t, 4096);
	buf_init(&b, n + 64);
	if (kind == 'h') {
		html_extract(in, n, &t, &b);
	} else {
		first_line_title(in, n, kind == 'm', &t);
		(void)!buf_append(&b, in, n);
	}
	squeeze(&t);
	squeeze(&b);
	*title = (char *)buf_steal(&t, NULL);
	*text = (char *)buf_steal(&b, NULL);
	if (!*title)
		*title = strdup("");
	if (!*text)
		*text = strdup("");
	if (!*title || !*text) {
		free(*title);
		free(*text);
		return -1;
	}
	return 0;
}

/* ---- refresh ---- */

struct walk {
	struct fts *f;
	int64_t indexed, updated, removed, unchanged, skipped, files;
	cg_err *e;
};

static char kind_of(const char *name)
{
	const char *dot = strrchr(name, '.');
	if (!dot)
		return 0;
	if (strcasecmp(dot, ".html") == 0 || strcasecmp(dot, ".htm") == 0)
		return 'h';
	if (strcasecmp(dot, ".md") == 0 || strcasecmp(dot, ".markdown") == 0)
		return 'm';
	if (strcasecmp(dot, ".txt") == 0 || strcasecmp(dot, ".text") == 0)
		return 't';
	return 0;
}

static char *read_file_at(int dirfd, const char *name, size_t *n)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	buf b;
	buf_init(&b, FTS_FILE_MAX);
	char tmp[16384];
	for (;;) {
		ssize_t r = read(fd, tmp, sizeof tmp);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		size_t room = b.cap - b.len;
		if (buf_append(&b, tmp, (size_t)r > room ? room : (size_t)r) < 0 || (size_t)r > room)
			break; /* documents are indexed up to the cap */
	}
	close(fd);
	char *s = (char *)buf_steal(&b, n);
	if (!s) {
		s = strdup("");
		*n = 0;
	}
	return s;
}

static int index_file(struct walk *w, int dirfd, const char *name, const char *rel, const struct stat *sb)
{
	struct fts *f = w->f;
	int64_t mtime = (int64_t)sb->st_mtim.tv_sec * 1000000000 + sb->st_mtim.tv_nsec;
	sqlite3_stmt *s = NULL;
	sqlite3_prepare_v2(f->db, "SELECT size, mtime FROM files WHERE path=?", -1, &s, NULL);
	sqlite3_bind_text(s, 1, rel, -1, SQLITE_TRANSIENT);
	bool known = false, same = false;
	if (sqlite3_step(s) == SQLITE_ROW) {
		known = true;
		same = sqlite3_column_int64(s, 0) == (int64_t)sb->st_size && sqlite3_column_int64(s, 1) == mtime;
	}
	sqlite3_finalize(s);
	if (same) {
		sqlite3_prepare_v2(f->db, "UPDATE files SET gen=? WHERE path=?", -1, &s, NULL);
		sqlite3_bind_int64(s, 1, f->gen);
		sqlite3_bind_text(s, 2, rel, -1, SQLITE_TRANSIENT);
		sqlite3_step(s);
		sqlite3_finalize(s);
		w->unchanged++;
		return 0;
	}
	size_t n;
	char *raw = read_file_at(dirfd, name, &n), *title = NULL, *text = NULL;
	if (!raw || fts_extract(kind_of(name), raw, n, &title, &text) < 0) {
		free(raw);
		w->skipped++;
		return 0;
	}
	free(raw);
	if (!*title) {
		free(title);
		title = strdup(name);
	}
	int rc = SQLITE_OK;
	sqlite3_prepare_v2(f->db, "DELETE FROM docs WHERE path=?", -1, &s, NULL);
	sqlite3_bind_text(s, 1, rel, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(s) != SQLITE_DONE)
		rc = SQLITE_ERROR;
	sqlite3_finalize(s);
	sqlite3_prepare_v2(f->db, "INSERT INTO docs(path,title,body) VALUES(?,?,?)", -1, &s, NULL);
	sqlite3_bind_text(s, 1, rel, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 2, title ? title : "", -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 3, text, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(s) != SQLITE_DONE)
		rc = SQLITE_ERROR;
	sqlite3_finalize(s);
	sqlite3_prepare_v2(f->db, "INSERT OR REPLACE INTO files(path,size,mtime,gen) VALUES(?,?,?,?)", -1, &s, NULL);
	sqlite3_bind_text(s, 1, rel, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 2, (int64_t)sb->st_size);
	sqlite3_bind_int64(s, 3, mtime);
	sqlite3_bind_int64(s, 4, f->gen);
	if (sqlite3_step(s) != SQLITE_DONE)
		rc = SQLITE_ERROR;
	sqlite3_finalize(s);
	free(title);
	free(text);
	if (rc != SQLITE_OK)
		return dbfail(f, w->e, "index");
	if (known)
		w->updated++;
	else
		w->indexed++;
	return 0;
}

static int walk_dir(struct walk *w, int dirfd, const char *rel, int depth)
{
	DIR *d = fdopendir(dirfd);
	if (!d) {
		close(dirfd);
		return 0;
	}
	struct dirent *de;
	int r = 0;
	while (r == 0 && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue; /* ., .., and hidden files */
		struct stat sb;
		if (fstatat(dirfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		char sub[2048];
		if (snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", de->d_name) >= (int)sizeof sub) {
			w->skipped++;
			continue;
		}
		if (S_ISDIR(sb.st_mode)) {
			if (depth >= MAX_DEPTH) {
				w->skipped++;
				continue;
			}
			int fd = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
			if (fd >= 0)
				r = walk_dir(w, fd, sub, depth + 1);
		} else if (S_ISREG(sb.st_mode) && kind_of(de->d_name)) {
			if (++w->files > MAX_FILES) {
				w->skipped++;
				continue;
			}
			r = index_file(w, dirfd, de->d_name, sub, &sb);
		}
	}
	closedir(d);
	return r;
}

int fts_refresh(struct fts *f, json_t **stats, cg_err *e)
{
	struct walk w = {.f = f, .e = e};
	int fd = open(f->folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return cg_fail(e, CG_E_UNAVAILABLE, "search folder is not readable");
	f->gen++;
	/* The generation marks files seen in this walk; the rest are gone. Kept across restarts via MAX(gen). */
	sqlite3_stmt *s = NULL;
	sqlite3_prepare_v2(f->db, "SELECT COALESCE(MAX(gen),0)+1 FROM files", -1, &s, NULL);
	if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_int64(s, 0) > f->gen)
		f->gen = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	if (sqlite3_exec(f->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		close(fd);
		return dbfail(f, e, "refresh");
	}
	int r = walk_dir(&w, fd, "", 0);
	if (r == 0) {
		sqlite3_prepare_v2(f->db, "DELETE FROM docs WHERE path IN (SELECT path FROM files WHERE gen<?)", -1, &s,
				   NULL);
		sqlite3_bind_int64(s, 1, f->gen);
		sqlite3_step(s);
		sqlite3_finalize(s);
		sqlite3_prepare_v2(f->db, "DELETE FROM files WHERE gen<?", -1, &s, NULL);
		sqlite3_bind_int64(s, 1, f->gen);
		sqlite3_step(s);
		w.removed = sqlite3_changes(f->db);
		sqlite3_finalize(s);
	}
	if (r < 0 || sqlite3_exec(f->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		sqlite3_exec(f->db, "ROLLBACK", NULL, NULL, NULL);
		return r < 0 ? r : dbfail(f, e, "refresh");
	}
	if (stats)
		*stats = json_pack("{s:I,s:I,s:I,s:I,s:I}", "indexed", (json_int_t)w.indexed, "updated",
				   (json_int_t)w.updated, "removed", (json_int_t)w.removed, "unchanged",
				   (json_int_t)w.unchanged, "skipped", (json_int_t)w.skipped);
	return 0;
}

/* ---- query ---- */

/* Builds an FTS5 query from free text: every word becomes a quoted phrase, OR-ed, so user input can never
 * be read as FTS5 syntax (column filters, NEAR, parentheses...). Returns 0 words as an empty buffer. */
static void fts_terms(const char *q, buf *out)
{
	const unsigned char *s = (const unsigned char *)q;
	size_t i = 0, words = 0;
	while (s[i] && words < 32) {
		while (s[i] && !(isalnum(s[i]) || s[i] >= 0x80))
			i++;
		size_t st = i;
		while (s[i] && (isalnum(s[i]) || s[i] >= 0x80 || s[i] == '_'))
			i++;
		if (i == st)
			continue;
		if (words++ && buf_append(out, " OR ", 4) < 0)
			return;
		(void)!buf_putc(out, '"');
		(void)!buf_append(out, s + st, i - st);
		(void)!buf_putc(out, '"');
	}
}

int fts_query(struct fts *f, const char *q, const char *site, int64_t limit, json_t **results, cg_err *e)
{
	if (!q || !*q || strlen(q) > FTS_QUERY_MAX * 4)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "q: must be 1..%d characters", FTS_QUERY_MAX);
	if (limit < 1)
		limit = 5;
	buf terms;
	buf_init(&terms, 16384);
	fts_terms(q, &terms);
	json_t *arr = json_array();
	if (terms.len == 0) {
		buf_done(&terms);
		*results = arr;
		return 0;
	}
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(f->db,
			       "SELECT path, title, snippet(docs, 2, '', '', '...', 24), bm25(docs, 0.0, 5.0, 1.0) AS rank"
			       " FROM docs WHERE docs MATCH ?1 AND (?2 IS NULL OR substr(?3 || path, 1, length(?2))=?2)"
			       " ORDER BY rank LIMIT ?4",
			       -1, &s, NULL) != SQLITE_OK) {
		buf_done(&terms);
		json_decref(arr);
		return dbfail(f, e, "query");
	}
	sqlite3_bind_text(s, 1, buf_cstr(&terms), -1, SQLITE_TRANSIENT);
	if (site && *site)
		sqlite3_bind_text(s, 2, site, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 3, f->base_url, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 4, limit);
	int rc;
	char url[2600];
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		snprintf(url, sizeof url, "%s%s", f->base_url, (const char *)sqlite3_column_text(s, 0));
		json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:f}", "title", (const char *)sqlite3_column_text(s, 1),
						     "url", url, "snippet", (const char *)sqlite3_column_text(s, 2),
						     "score", -sqlite3_column_double(s, 3)));
	}
	sqlite3_finalize(s);
	buf_done(&terms);
	if (rc != SQLITE_DONE) {
		json_decref(arr);
		return dbfail(f, e, "query");
	}
	*results = arr;
	return 0;
}
