/* Search: POST /web3/resources/search/query with {q, limit?, site?} (also {query, engines?}, the older form).
 * Backends: fts (SQLite FTS5 over a published folder, provider/fts.h) and searxng (a SearXNG-compatible JSON
 * upstream: GET <url>/search?q=...&format=json). One ledger entry per query (unit query). */
#define PV_INTERNAL
#include "provider/pv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/json.h"
#include "http/server.h"
#include "provider/fts.h"
#include "http/client.h"

#define LIMIT_DEF 5
#define LIMIT_MAX 20
#define SEARX_RESPONSE_MAX (4u << 20)

static size_t utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

static void meter_and_reply(struct pv_call *c, json_t *results)
{
	const bool priced = strcmp(pv_price_unit(c), "query") == 0;
	json_t *receipt = pv_meter(c, "query", "1", priced);
	pv_reply_json(c, json_pack("{s:b,s:o,s:{s:i}}", "ok", 1, "results", results, "usage", "queries", 1), receipt);
}

static void url_escape(buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
		    ch == '_' || ch == '.' || ch == '~') {
			(void)!buf_putc(b, ch);
		} else {
			char t[3] = {'%', hex[ch >> 4], hex[ch & 15]};
			(void)!buf_append(b, t, 3);
		}
	}
}

static void searx_done(void *arg, long status, const char *body, size_t n, const cg_err *e)
{
	struct pv_call *c = arg;
	c->up = NULL;
	cg_err err;
	if (e) {
		pv_reply_error(c, e);
		return;
	}
	json_error_t je;
	json_t *j = status == 200 ? json_loadb(body, n, 0, &je) : NULL;
	json_t *in = json_object_get(j, "results");
	if (!json_is_array(in)) {
		json_decref(j);
		cg_fail(&err, CG_E_UNAVAILABLE, "the search engine failed (HTTP %ld)", status);
		if (status == 429 || status == 503)
			err.retry_after_s = 1;
		pv_reply_error(c, &err);
		return;
	}
	json_t *out = json_array(), *r;
	size_t i;
	json_array_foreach(in, i, r) {
		if ((int64_t)json_array_size(out) >= c->limit)
			break;
		const char *url = json_string_value(json_object_get(r, "url"));
		if (!url)
			continue;
		const char *title = json_string_value(json_object_get(r, "title"));
		const char *snip = json_string_value(json_object_get(r, "content"));
		json_array_append_new(out, json_pack("{s:s,s:s,s:s}", "title", title ? title : "", "url", url, "snippet",
						     snip ? snip : ""));
	}
	json_decref(j);
	meter_and_reply(c, out);
}

static void start_searx(struct pv_call *c, const char *q, json_t *engines)
{
	struct provider *p = c->p;
	buf u;
	buf_init(&u, 16384);
	(void)!buf_printf(&u, "%s?format=json&q=", c->res->url);
	if (c->site && *c->site) {
		url_escape(&u, "site:");
		url_escape(&u, c->site);
		url_escape(&u, " ");
	}
	url_escape(&u, q);
	if (json_array_size(engines)) {
		(void)!buf_append(&u, "&engines=", 9);
		size_t i;
		json_t *v;
		json_array_foreach(engines, i, v) {
			if (i)
				(void)!buf_append(&u, "%2C", 3);
			url_escape(&u, json_string_value(v));
		}
	}
	static const char *const headers[] = {"Accept: application/json", NULL};
	struct hc_opts o = {
		.method = "GET",
		.url = buf_cstr(&u),
		.headers = headers,
		.connect_timeout_ms = p->connect_ms,
		.first_byte_timeout_ms = p->first_byte_ms,
		.total_timeout_ms = p->total_ms < 60000 ? p->total_ms : 60000,
		.max_response = SEARX_RESPONSE_MAX,
	};
	static const struct hc_cb cb = {NULL, NULL, searx_done};
	cg_err e;
	c->up = hc_start(p->hc, &o, &cb, c, &e);
	buf_done(&u);
	if (!c->up)
		pv_reply_error(c, &e);
}

void pv_search(struct pv_call *c)
{
	static const char *const keys[] = {"q", "query", "limit", "site", "engines", NULL};
	cg_err e;
	size_t len;
	const uint8_t *body = http_req_body(c->r, &len);
	json_t *j = NULL, *engines = NULL;
	const char *q = NULL, *q2 = NULL, *site = NULL;
	int64_t limit = LIMIT_DEF;
	if (http_req_require_type(c->r, "application/json", &e) < 0)
		goto fail;
	json_error_t je;
	j = len ? json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &je) : NULL;
	if (!json_is_object(j)) {
		cg_fail(&e, CG_E_INVALID_ARGUMENT, "body: must be a JSON object {q, limit?, site?}");
		goto fail;
	}
	/* SearXNG's own form of engines is one comma-separated string ("google,bing"); the spec's body says
	 * only "engines", so both that and an array of names are accepted. */
	json_t *es = json_object_get(j, "engines");
	if (json_is_string(es)) {
		const char *sv = json_string_value(es);
		json_t *arr = json_array();
		while (*sv) {
			size_t n = strcspn(sv, ",");
			size_t a = 0, b = n;
			while (a < b && sv[a] == ' ')
				a++;
			while (b > a && sv[b - 1] == ' ')
				b--;
			if (b > a)
				json_array_append_new(arr, json_stringn(sv + a, b - a));
			sv += n;
			if (*sv == ',')
				sv++;
		}
		json_object_set_new(j, "engines", arr);
	}
	if (jp_only(j, NULL, keys, &e) < 0 || jp_str(j, NULL, "q", 0, 1, 4096, &q, &e) < 0 ||
	    jp_str(j, NULL, "query", 0, 1, 4096, &q2, &e) < 0 || jp_int(j, NULL, "limit", 0, 1, LIMIT_MAX, &limit, &e) < 0 ||
	    jp_str(j, NULL, "site", 0, 1, 256, &site, &e) < 0 || jp_arr(j, NULL, "engines", 0, 16, &engines, &e) < 0)
		goto fail;
	if (q && q2) {
		cg_fail(&e, CG_E_INVALID_ARGUMENT, "q: give either q or query, not both");
		goto fail;
	}
	if (!q)
		q = q2;
	if (!q) {
		cg_fail(&e, CG_E_INVALID_ARGUMENT, "q: required");
		goto fail;
	}
	if (utf8_chars(q) > FTS_QUERY_MAX) {
		cg_fail(&e, CG_E_INVALID_ARGUMENT, "q: at most %d characters", FTS_QUERY_MAX);
		goto fail;
	}
	size_t i;
	json_t *v;
	json_array_foreach(engines, i, v) {
		if (!json_is_string(v) || json_string_length(v) < 1 || json_string_length(v) > 64) {
			cg_fail(&e, CG_E_INVALID_ARGUMENT, "engines[%zu]: must be an engine name", i);
			goto fail;
		}
	}
	c->limit = limit;
	if (site && !(c->site = strdup(site))) {
		cg_fail(&e, CG_E_INTERNAL, "out of memory");
		goto fail;
	}
	if (c->res->backend == PVB_SEARXNG) {
		start_searx(c, q, engines);
		json_decref(j);
		return;
	}
	json_t *results = NULL;
	if (fts_query(c->res->fts, q, site, limit, &results, &e) < 0)
		goto fail;
	json_decref(j);
	meter_and_reply(c, results);
	return;
fail:
	json_decref(j);
	pv_reply_error(c, &e);
}
