/* fts — the `fts` search backend: an SQLite FTS5 index (bm25 ranking, snippets) over a folder of text,
 * Markdown and HTML files that the provider publishes.
 *
 * The index lives in its own database file (it can be deleted and rebuilt at any time). fts_refresh walks
 * the folder and reindexes only files whose size or mtime changed, and drops files that vanished; symbolic
 * links and dot-files are skipped so the index never reaches outside the folder. Results name documents by
 * their path relative to the folder (prefixed with the configured base URL), never by their real path.
 * Loop thread only (a refresh of a big folder blocks; the node runs it on a timer). */
#ifndef CG_PROVIDER_FTS_H
#define CG_PROVIDER_FTS_H

#include <stdint.h>

#include <jansson.h>

#include "base/err.h"

struct fts;

#define FTS_FILE_MAX (4 << 20) /* bytes read per document */
#define FTS_QUERY_MAX 1024

/* folder: the real folder to index; db_path: the index file (created); base_url: prefix of result urls
 * (may be NULL: "doc:/"). Does not index yet (call fts_refresh). */
int fts_open(const char *folder, const char *db_path, const char *base_url, struct fts **out, cg_err *e);
void fts_free(struct fts *f);
/* Incremental rebuild; *stats (may be NULL) = {indexed, updated, removed, unchanged, skipped} (caller frees). */
int fts_refresh(struct fts *f, json_t **stats, cg_err *e);
/* Searches q (1..FTS_QUERY_MAX characters of free text; operators are not interpreted). site (may be NULL)
 * keeps results whose url starts with it. *results = [{title, url, snippet, score}] best first (caller frees). */
int fts_query(struct fts *f, const char *q, const char *site, int64_t limit, json_t **results, cg_err *e);

/* Text extraction, exposed for tests: plain text and title of an HTML page / a Markdown or text file.
 * *title and *text are caller-freed. kind: 'h' HTML, 'm' Markdown, 't' text. */
int fts_extract(char kind, const char *in, size_t n, char **title, char **text);

#endif
