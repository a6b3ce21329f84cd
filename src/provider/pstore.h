/* pstore — the provider's storage backend: content-addressed blobs behind virtual paths.
 *
 * Bytes live once per content in <root>/blobs/<2 hex>/<64 hex> (sha256 = etag); an index in the node's SQLite
 * store maps (namespace, virtual path) to (etag, size, mime, lease, times). The namespace is the consumer's
 * actor id, so consumers never see each other's files. Virtual paths are validated by pstore_path_check and
 * never touch the filesystem, so no request can name a real path. Blob writes are atomic (temp file, fsync,
 * rename, fsync of the directory); the index update is one transaction. Loop thread only. */
#ifndef CG_PROVIDER_PSTORE_H
#define CG_PROVIDER_PSTORE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/err.h"

struct store;
struct pstore;

#define PSTORE_PATH_MAX 1024
#define PSTORE_SEGMENT_MAX 255
#define PSTORE_LIST_DEF 50
#define PSTORE_LIST_MAX 200

/* Pure check of a virtual path (len bytes, need not be NUL-terminated): 1..PSTORE_PATH_MAX bytes of valid
 * UTF-8, '/'-separated non-empty segments of at most PSTORE_SEGMENT_MAX bytes; rejects absolute paths, "."
 * and ".." segments, backslashes, NUL and every control character. E_INVALID_ARGUMENT naming the rule. */
int pstore_path_check(const char *path, size_t len, cg_err *e);
/* The same for a list prefix: may be empty and may end with '/'. */
int pstore_prefix_check(const char *prefix, size_t len, cg_err *e);

/* Opens the backend over st (borrowed) with blobs under root (created 0700 if missing; never shown to
 * anyone: callers register it with redact). Runs the "provider_storage" migrations. */
int pstore_open(struct store *st, const char *root, struct pstore **out, cg_err *e);
void pstore_free(struct pstore *ps);

/* Stores data at (ns, path), replacing what was there. quota_bytes > 0 caps the bytes the lease keeps
 * stored (its objects, counting this one instead of the one it replaces): E_QUOTA_EXCEEDED when over.
 * *out = {path, etag, cid, size, mime, createdAt, updatedAt} (caller frees). */
int pstore_put(struct pstore *ps, const char *ns, const char *lease_id, const char *path, const uint8_t *data,
	       size_t n, const char *mime, int64_t quota_bytes, json_t **out, cg_err *e);
/* Reads (ns, path): *data (caller frees, n bytes) and *meta = {path, etag, cid, size, mime, updatedAt}.
 * E_NOT_FOUND when absent; E_INTERNAL when the blob is missing or no longer matches its etag. */
int pstore_get(struct pstore *ps, const char *ns, const char *path, uint8_t **data, size_t *n, json_t **meta,
	       cg_err *e);
/* Lists paths of ns starting with prefix (may be NULL), in path order: *out = {items:[{path,size,etag,
 * mime,updatedAt}], truncated}. */
int pstore_list(struct pstore *ps, const char *ns, const char *prefix, int64_t limit, json_t **out, cg_err *e);
/* Bytes currently stored through a lease. */
int64_t pstore_lease_bytes(struct pstore *ps, const char *lease_id);

/* CIDv1 (raw codec, sha2-256 multihash) in base32 of a sha256 digest: "bafkrei..." into out (>= 64 bytes). */
void pstore_cid(char out[static 64], const uint8_t digest[static 32]);

#endif
