/* Storage: put/get/list over provider/pstore.h. Each consumer has its own namespace per resource
 * ("<resourceId>|<consumer>"), so leases of different consumers never see each other's objects.
 *
 *   put  {path, bytesBase64 | content, mime | contentType}, or raw bytes with ?path= and Content-Type;
 *        policy maxBytes -> 413, allowMime -> 415, the backend's per-lease quota -> 429 E_QUOTA_EXCEEDED.
 *   get  ?path= (GET) or {path} (POST): JSON {bytesBase64, etag, ...}, or the raw bytes with
 *        "Accept: application/octet-stream".
 *   list {prefix?, limit?} (POST) or ?prefix=&limit= (GET); limit 1..200, default 50.
 * put and get are metered (units put/get, or byte for gb_day pricing) and carry a receipt; list is free. */
#define PV_INTERNAL
#include "provider/pv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/enc.h"
#include "base/json.h"
#include "http/server.h"
#include "provider/pstore.h"
#include "provider/receipt.h"

static void ns_of(const struct pv_call *c, char out[static 256])
{
	snprintf(out, 256, "%s|%s", json_string_value(json_object_get(c->lease, "resourceId")),
		 json_string_value(json_object_get(c->lease, "consumerActorId")));
}

static bool mime_allowed(json_t *allow, const char *mime)
{
	if (!json_is_array(allow) || json_array_size(allow) == 0)
		return true;
	size_t ml = strcspn(mime, ";");
	while (ml && mime[ml - 1] == ' ')
		ml--;
	size_t i;
	json_t *v;
	json_array_foreach(allow, i, v) {
		const char *a = json_string_value(v);
		size_t al = strlen(a);
		if (al == ml && strncasecmp(a, mime, ml) == 0)
			return true;
		/* "image/" + "*" matches any subtype; "*" + "/" + "*" matches anything. */
		if (al >= 2 && a[al - 1] == '*' && a[al - 2] == '/' &&
		    (al == 3 && a[0] == '*' ? true : (ml >= al - 1 && strncasecmp(a, mime, al - 1) == 0)))
			return true;
	}
	return false;
}

/* The type of an object put without one (mime is optional in the spec's body): from the virtual path's
 * extension for the common text and data types, so that a resource allowing text types takes "notes.txt"
 * without the client naming it; application/octet-stream otherwise. */
static const char *mime_guess(const char *path)
{
	static const char *const map[][2] = {
		{"txt", "text/plain"},        {"text", "text/plain"},      {"log", "text/plain"},
		{"md", "text/markdown"},      {"markdown", "text/markdown"}, {"csv", "text/csv"},
		{"html", "text/html"},        {"htm", "text/html"},        {"css", "text/css"},
		{"xml", "application/xml"},   {"json", "application/json"}, {"js", "text/javascript"},
		{"pdf", "application/pdf"},   {"png", "image/png"},        {"jpg", "image/jpeg"},
		{"jpeg", "image/jpeg"},       {"gif", "image/gif"},        {"webp", "image/webp"},
		{"svg", "image/svg+xml"},     {"zip", "application/zip"},  {"gz", "application/gzip"},
		{"wasm", "application/wasm"},
	};
	const char *slash = path ? strrchr(path, '/') : NULL;
	const char *name = slash ? slash + 1 : path;
	const char *dot = name ? strrchr(name, '.') : NULL;
	if (dot && dot != name)
		for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
			if (strcasecmp(dot + 1, map[i][0]) == 0)
				return map[i][1];
	return "application/octet-stream";
}

static bool mime_ok(const char *m)
{
	size_t n = strlen(m);
	return n >= 3 && n <= 127 && strchr(m, '/') &&
	       strspn(m, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/+.-_;= ") == n;
}

static json_t *meter(struct pv_call *c, const char *op, size_t size)
{
	const char *unit = pv_price_unit(c);
	if (!strcmp(unit, op))
		return pv_meter(c, op, "1", true);
	/* gb_day pricing is settled over time, not per request: record the bytes moved at no cost. */
	char q[32];
	snprintf(q, sizeof q, "%zu", size);
	return pv_meter(c, strcmp(op, "put") == 0 ? "byte" : "get", strcmp(op, "put") == 0 ? q : "1", false);
}

void pv_storage_put(struct pv_call *c)
{
	static const char *const keys[] = {"path", "bytesBase64", "content", "mime", "contentType", NULL};
	cg_err e;
	size_t len;
	const uint8_t *body = http_req_body(c->r, &len);
	json_t *j = NULL, *out = NULL;
	uint8_t *data = NULL;
	const uint8_t *bytes;
	size_t n;
	const char *path = NULL, *mime = NULL, *b64 = NULL, *content = NULL, *mime2 = NULL;
	char ns[256];
	if (http_req_content_type_is(c->r, "application/json")) {
		json_error_t je;
		j = len ? json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &je) : NULL;
		if (!json_is_object(j)) {
			cg_fail(&e, CG_E_INVALID_ARGUMENT, "body: must be a JSON object {path, bytesBase64, mime?}");
			goto fail;
		}
		if (jp_only(j, NULL, keys, &e) < 0 || jp_str(j, NULL, "path", JP_REQUIRED, 1, PSTORE_PATH_MAX, &path, &e) < 0 ||
		    jp_str(j, NULL, "bytesBase64", 0, 0, SIZE_MAX, &b64, &e) < 0 ||
		    jp_str(j, NULL, "content", 0, 0, SIZE_MAX, &content, &e) < 0 ||
		    jp_str(j, NULL, "mime", 0, 1, 127, &mime, &e) < 0 || jp_str(j, NULL, "contentType", 0, 1, 127, &mime2, &e) < 0)
			goto fail;
		if (!mime)
			mime = mime2;
		if ((b64 != NULL) == (content != NULL)) {
			cg_fail(&e, CG_E_INVALID_ARGUMENT, "bytesBase64: give exactly one of bytesBase64 or content");
			goto fail;
		}
		if (b64) {
			size_t bl = strlen(b64);
			data = malloc(base64_decoded_max(bl) + 1);
			long dn = data ? base64_decode(data, b64, bl, false) : -1;
			if (dn < 0)
				dn = data ? base64_decode(data, b64, bl, true) : -1;
			if (dn < 0) {
				cg_fail(&e, CG_E_INVALID_ARGUMENT, "bytesBase64: not valid base64");
				goto fail;
			}
			bytes = data;
			n = (size_t)dn;
		} else {
			bytes = (const uint8_t *)content;
			n = strlen(content);
			if (!mime)
				mime = "text/plain; charset=utf-8";
		}
	} else {
		/* Raw form: the body is the object, the path a query parameter. */
		path = http_req_query(c->r, "path");
		mime = http_req_header(c->r, "Content-Type");
		if (!path) {
			cg_fail(&e, CG_E_INVALID_ARGUMENT, "path: required (?path= with a raw body)");
			goto fail;
		}
		bytes = body ? body : (const uint8_t *)"";
		n = len;
	}
	if (!mime)
		mime = mime_guess(path);
	if (!mime_ok(mime)) {
		cg_fail(&e, CG_E_INVALID_ARGUMENT, "mime: must be a MIME type");
		goto fail;
	}
	if (pstore_path_check(path, strlen(path), &e) < 0)
		goto fail;
	json_t *pol = pv_policy(c);
	json_int_t max = json_integer_value(json_object_get(pol, "maxBytes"));
	if (max > 0 && (json_int_t)n > max) {
		cg_fail_http(&e, CG_E_QUOTA_EXCEEDED, 413, "object of %zu bytes is over this resource's maxBytes (%lld)", n,
			     (long long)max);
		goto fail;
	}
	if (!mime_allowed(json_object_get(pol, "allowMime"), mime)) {
		cg_fail_http(&e, CG_E_INVALID_ARGUMENT, 415, "mime: this resource does not accept this type");
		goto fail;
	}
	ns_of(c, ns);
	if (pstore_put(c->res->ps, ns, json_string_value(json_object_get(c->lease, "leaseId")), path, bytes, n, mime,
		       c->res->quota_bytes, &out, &e) < 0)
		goto fail;
	free(data);
	json_decref(j);
	json_t *receipt = meter(c, "put", n);
	json_object_set_new(out, "ok", json_true());
	json_object_set_new(out, "usage", json_pack("{s:I}", "bytes", (json_int_t)n));
	pv_reply_json(c, out, receipt);
	return;
fail:
	free(data);
	json_decref(j);
	pv_reply_error(c, &e);
}

static const char *param(struct pv_call *c, json_t **j, const char *name, cg_err *e, bool *bad)
{
	*bad = false;
	if (!strcmp(http_req_method(c->r), "GET"))
		return http_req_query(c->r, name);
	if (!*j) {
		size_t len;
		const uint8_t *body = http_req_body(c->r, &len);
		if (!len)
			return NULL;
		if (http_req_require_type(c->r, "application/json", e) < 0) {
			*bad = true;
			return NULL;
		}
		json_error_t je;
		*j = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &je);
		if (!json_is_object(*j)) {
			cg_fail(e, CG_E_INVALID_ARGUMENT, "body: must be a JSON object");
			*bad = true;
			return NULL;
		}
	}
	json_t *v = json_object_get(*j, name);
	if (v && !json_is_string(v) && !json_is_integer(v)) {
		cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: must be a string", name);
		*bad = true;
		return NULL;
	}
	return json_string_value(v);
}

void pv_storage_get(struct pv_call *c)
{
	cg_err e;
	json_t *j = NULL, *meta = NULL;
	bool bad;
	uint8_t *data = NULL;
	size_t n;
	char ns[256];
	const char *path = param(c, &j, "path", &e, &bad);
	if (bad)
		goto fail;
	if (!path) {
		cg_fail(&e, CG_E_INVALID_ARGUMENT, "path: required");
		goto fail;
	}
	ns_of(c, ns);
	if (pstore_get(c->res->ps, ns, path, &data, &n, &meta, &e) < 0)
		goto fail;
	json_decref(j);
	json_t *receipt = meter(c, "get", n);
	const char *accept = http_req_header(c->r, "Accept");
	if (accept && strstr(accept, "application/octet-stream") && !strstr(accept, "json")) {
		/* Raw bytes, with the metadata in headers. */
		c->finished = true;
		http_reply_header(c->r, "X-OpenClaw-Request-Id", c->request_id);
		http_reply_header(c->r, "ETag", json_string_value(json_object_get(meta, "etag")));
		if (receipt) {
			char *h = receipt_to_header(receipt, &e);
			if (h)
				http_reply_header(c->r, RECEIPT_HEADER, h);
			free(h);
			json_decref(receipt);
		}
		http_reply(c->r, 200, json_string_value(json_object_get(meta, "mime")), data, n);
		json_decref(meta);
		free(data);
		pv_call_free(c);
		return;
	}
	char *b64 = malloc(base64_encoded_len(n, false) + 1);
	if (!b64) {
		json_decref(meta);
		json_decref(receipt);
		free(data);
		cg_fail(&e, CG_E_INTERNAL, "out of memory");
		pv_reply_error(c, &e);
		return;
	}
	base64_encode(b64, data, n, false);
	free(data);
	json_object_set_new(meta, "bytesBase64", json_string(b64));
	json_object_set_new(meta, "ok", json_true());
	free(b64);
	pv_reply_json(c, meta, receipt);
	return;
fail:
	json_decref(j);
	pv_reply_error(c, &e);
}

void pv_storage_list(struct pv_call *c)
{
	cg_err e;
	json_t *j = NULL, *out = NULL;
	bool bad;
	char ns[256];
	const char *prefix = param(c, &j, "prefix", &e, &bad);
	if (bad)
		goto fail;
	int64_t limit = PSTORE_LIST_DEF;
	json_t *lv = j ? json_object_get(j, "limit") : NULL;
	const char *ls = !j ? http_req_query(c->r, "limit") : NULL;
	if (lv && !json_is_null(lv)) {
		if (!json_is_integer(lv) || json_integer_value(lv) < 1 || json_integer_value(lv) > PSTORE_LIST_MAX) {
			cg_fail(&e, CG_E_INVALID_ARGUMENT, "limit: must be an integer of 1..%d", PSTORE_LIST_MAX);
			goto fail;
		}
		limit = json_integer_value(lv);
	} else if (ls) {
		long v = 0;
		size_t k = 0;
		for (; ls[k] >= '0' && ls[k] <= '9' && k < 4; k++)
			v = v * 10 + (ls[k] - '0');
		if (k == 0 || ls[k] || v < 1 || v > PSTORE_LIST_MAX) {
			cg_fail(&e, CG_E_INVALID_ARGUMENT, "limit: must be an integer of 1..%d", PSTORE_LIST_MAX);
			goto fail;
		}
		limit = v;
	}
	if (j) {
		static const char *const keys[] = {"prefix", "limit", NULL};
		if (jp_only(j, NULL, keys, &e) < 0)
			goto fail;
	}
	ns_of(c, ns);
	if (pstore_list(c->res->ps, ns, prefix, limit, &out, &e) < 0)
		goto fail;
	json_decref(j);
	json_object_set_new(out, "ok", json_true());
	pv_reply_json(c, out, NULL);
	return;
fail:
	json_decref(j);
	pv_reply_error(c, &e);
}
