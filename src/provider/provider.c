/* The provider module: configuration, backends, authorization of lease holders, per-lease rate limits and
 * concurrency, metering and receipts, the resource list and the signed inter-node lease route. The
 * resource-specific handlers live in chat.c, search.c and storage.c. */
#define PV_INTERNAL
#include "provider/pv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "base/amount.h"
#include "base/clock.h"
#include "base/enc.h"
#include "base/json.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/redact.h"
#include "crypto/identity.h"
#include "crypto/wallet.h"
#include "http/server.h"
#include "market/market.h"
#include "provider/fts.h"
#include "http/client.h"
#include "provider/leasereq.h"
#include "provider/pstore.h"
#include "provider/receipt.h"
#include "store/store.h"

#define DAY_MS (24LL * 3600 * 1000)
#define CHAT_BODY_MAX (4u << 20)
#define SEARCH_BODY_MAX (16u << 10)
#define STORAGE_BODY_MAX (8u << 20)

static const struct store_migration nonce_migrations[] = {
	{1, "CREATE TABLE pv_nonces(consumer TEXT NOT NULL, nonce TEXT NOT NULL, expiresAt INTEGER NOT NULL,"
	    " PRIMARY KEY(consumer, nonce));"
	    "CREATE INDEX pv_nonces_exp ON pv_nonces(expiresAt);"},
};

/* ---- configuration ---- */

struct cfg {
	int64_t rate_n, rate_window_ms, connect_ms, first_byte_ms, idle_ms, total_ms, skew_ms;
	bool lease_route;
	json_t *allowed, *resources;
};

static const char *const model_types[] = {"openai", "openai-compat", "llama-server", "vllm", "ollama", "lmstudio",
					  "llama", NULL};
static const char *const search_types[] = {"fts", "searxng", NULL};
static const char *const storage_types[] = {"fs", "filesystem", NULL};
static const char *const kinds[] = {"model", "search", "storage", NULL};

static int check_addresses(json_t *arr, const char *path, cg_err *e)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) {
		uint8_t a[20];
		if (!json_is_string(v) || eth_address_parse(json_string_value(v), a, NULL) < 0)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s[%zu]: must be an Ethereum address", path, i);
	}
	return 0;
}

static int check_url(json_t *o, const char *pfx, const char *key, bool required, cg_err *e)
{
	const char *u = NULL;
	int r = jp_str(o, pfx, key, required ? JP_REQUIRED : 0, 8, 2000, &u, e);
	if (r < 0 || !u)
		return r;
	if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s.%s: must be an http:// or https:// URL", pfx, key);
	return 0;
}

static int check_backend(json_t *b, const char *kind, const char *pfx, cg_err *e)
{
	const char *type = NULL;
	int r;
	int64_t v;
	const char *s;
	if (!strcmp(kind, "model")) {
		static const char *const keys[] = {"type", "url", "apiKey", "model", NULL};
		if ((r = jp_only(b, pfx, keys, e)) < 0 || (r = jp_enum(b, pfx, "type", JP_REQUIRED, model_types, &type, e)) < 0 ||
		    (r = jp_str(b, pfx, "apiKey", 0, 1, 4096, &s, e)) < 0 || (r = jp_str(b, pfx, "model", 0, 1, 200, &s, e)) < 0)
			return r;
		if (!strcmp(type, "llama")) {
			if (json_object_get(b, "url"))
				return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s.url: not used by the embedded llama backend", pfx);
			return jp_str(b, pfx, "model", JP_REQUIRED, 1, 200, &s, e);
		}
		return check_url(b, pfx, "url", true, e);
	}
	if (!strcmp(kind, "search")) {
		static const char *const keys[] = {"type", "url", "folder", "baseUrl", "refreshMs", NULL};
		if ((r = jp_only(b, pfx, keys, e)) < 0 || (r = jp_enum(b, pfx, "type", JP_REQUIRED, search_types, &type, e)) < 0)
			return r;
		if (!strcmp(type, "searxng")) {
			if (json_object_get(b, "folder"))
				return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s.folder: only for type fts", pfx);
			return check_url(b, pfx, "url", true, e);
		}
		if (json_object_get(b, "url"))
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s.url: only for type searxng", pfx);
		if ((r = jp_str(b, pfx, "folder", JP_REQUIRED, 1, 3800, &s, e)) < 0 ||
		    (r = jp_str(b, pfx, "baseUrl", 0, 1, 400, &s, e)) < 0 ||
		    (r = jp_int(b, pfx, "refreshMs", 0, 1000, DAY_MS, &v, e)) < 0)
			return r;
		return 0;
	}
	static const char *const keys[] = {"type", "root", "quotaBytes", NULL};
	if ((r = jp_only(b, pfx, keys, e)) < 0 || (r = jp_enum(b, pfx, "type", JP_REQUIRED, storage_types, &type, e)) < 0 ||
	    (r = jp_str(b, pfx, "root", 0, 1, 3800, &s, e)) < 0 ||
	    (r = jp_int(b, pfx, "quotaBytes", 0, 1, INT64_C(1) << 50, &v, e)) < 0)
		return r;
	return 0;
}

static int check_resource(json_t *res, size_t i, json_t *seen, cg_err *e)
{
	static const char *const keys[] = {"id", "kind", "backend", "publish", "label", "description", "tags", "price",
					   "policy", "allowedConsumers", NULL};
	char pfx[64];
	snprintf(pfx, sizeof pfx, "provider.resources[%zu]", i);
	const char *id, *kind;
	json_t *b, *arr = NULL, *o = NULL;
	bool publish = false;
	int r;
	if (!json_is_object(res))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: must be an object", pfx);
	if ((r = jp_only(res, pfx, keys, e)) < 0 || (r = jp_str(res, pfx, "id", JP_REQUIRED, 1, 63, &id, e)) < 0 ||
	    (r = jp_enum(res, pfx, "kind", JP_REQUIRED, kinds, &kind, e)) < 0 ||
	    (r = jp_obj(res, pfx, "backend", JP_REQUIRED, &b, e)) < 0 || (r = jp_bool(res, pfx, "publish", 0, &publish, e)) < 0 ||
	    (r = jp_arr(res, pfx, "allowedConsumers", 0, 1000, &arr, e)) < 0)
		return r;
	if (strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:") != strlen(id))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s.id: must be an id of letters, digits and _-.:", pfx);
	if (json_object_get(seen, id))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s.id: duplicate resource id %s", pfx, id);
	json_object_set_new(seen, id, json_true());
	if (arr) {
		char ap[96];
		snprintf(ap, sizeof ap, "%s.allowedConsumers", pfx);
		if ((r = check_addresses(arr, ap, e)) < 0)
			return r;
	}
	char bp[96];
	snprintf(bp, sizeof bp, "%s.backend", pfx);
	if ((r = check_backend(b, kind, bp, e)) < 0)
		return r;
	if (publish) {
		const char *s;
		if ((r = jp_str(res, pfx, "label", JP_REQUIRED, 1, 80, &s, e)) < 0 ||
		    (r = jp_obj(res, pfx, "price", JP_REQUIRED, &o, e)) < 0)
			return r;
	}
	return 0;
}

static int parse_cfg(json_t *sec, struct cfg *c, cg_err *e)
{
	static const char *const keys[] = {"rateLimit", "timeouts", "leaseRoute", "allowedConsumers", "resources", NULL};
	static const char *const rkeys[] = {"requests", "windowMs", NULL};
	static const char *const tkeys[] = {"connectMs", "firstByteMs", "idleMs", "totalMs", NULL};
	static const char *const lkeys[] = {"enabled", "maxSkewMs", NULL};
	json_t *rl = NULL, *to = NULL, *lr = NULL;
	int r;
	memset(c, 0, sizeof *c);
	c->rate_n = 100;
	c->rate_window_ms = 60000;
	c->connect_ms = 10000;
	c->first_byte_ms = 60000;
	c->idle_ms = 60000;
	c->total_ms = 600000;
	c->skew_ms = LEASEREQ_SKEW_MS;
	c->lease_route = true;
	if (!json_is_object(sec))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "provider: must be an object");
	if ((r = jp_only(sec, "provider", keys, e)) < 0 || (r = jp_obj(sec, "provider", "rateLimit", 0, &rl, e)) < 0 ||
	    (r = jp_obj(sec, "provider", "timeouts", 0, &to, e)) < 0 ||
	    (r = jp_obj(sec, "provider", "leaseRoute", 0, &lr, e)) < 0 ||
	    (r = jp_arr(sec, "provider", "allowedConsumers", 0, 1000, &c->allowed, e)) < 0 ||
	    (r = jp_arr(sec, "provider", "resources", 0, 256, &c->resources, e)) < 0)
		return r;
	if (rl && ((r = jp_only(rl, "provider.rateLimit", rkeys, e)) < 0 ||
		   (r = jp_int(rl, "provider.rateLimit", "requests", 0, 1, 1000000, &c->rate_n, e)) < 0 ||
		   (r = jp_int(rl, "provider.rateLimit", "windowMs", 0, 100, DAY_MS, &c->rate_window_ms, e)) < 0))
		return r;
	if (to && ((r = jp_only(to, "provider.timeouts", tkeys, e)) < 0 ||
		   (r = jp_int(to, "provider.timeouts", "connectMs", 0, 10, 600000, &c->connect_ms, e)) < 0 ||
		   (r = jp_int(to, "provider.timeouts", "firstByteMs", 0, 10, DAY_MS, &c->first_byte_ms, e)) < 0 ||
		   (r = jp_int(to, "provider.timeouts", "idleMs", 0, 10, DAY_MS, &c->idle_ms, e)) < 0 ||
		   (r = jp_int(to, "provider.timeouts", "totalMs", 0, 10, DAY_MS, &c->total_ms, e)) < 0))
		return r;
	if (lr && ((r = jp_only(lr, "provider.leaseRoute", lkeys, e)) < 0 ||
		   (r = jp_bool(lr, "provider.leaseRoute", "enabled", 0, &c->lease_route, e)) < 0 ||
		   (r = jp_int(lr, "provider.leaseRoute", "maxSkewMs", 0, 1000, 3600000, &c->skew_ms, e)) < 0))
		return r;
	if (c->allowed && (r = check_addresses(c->allowed, "provider.allowedConsumers", e)) < 0)
		return r;
	if (c->resources) {
		json_t *seen = json_object();
		size_t i;
		json_t *v;
		json_array_foreach(c->resources, i, v) {
			if ((r = check_resource(v, i, seen, e)) < 0)
				break;
		}
		json_decref(seen);
		if (r < 0)
			return r;
	}
	return 0;
}

int provider_config_check(json_t *section, cg_err *e)
{
	struct cfg c;
	return parse_cfg(section, &c, e);
}

/* ---- backends ---- */

static void resolve_path(const struct provider *p, const char *in, char *out, size_t cap)
{
	if (in[0] == '/')
		snprintf(out, cap, "%s", in);
	else
		snprintf(out, cap, "%s/%s", p->d.data_dir, in);
}

static char *chat_url(const char *base)
{
	size_t n = strlen(base);
	while (n && base[n - 1] == '/')
		n--;
	char *u = malloc(n + 40);
	if (!u)
		return NULL;
	if (n >= 17 && strncmp(base + n - 17, "/chat/completions", 17) == 0)
		snprintf(u, n + 40, "%.*s", (int)n, base);
	else if (n >= 3 && strncmp(base + n - 3, "/v1", 3) == 0)
		snprintf(u, n + 40, "%.*s/chat/completions", (int)n, base);
	else
		snprintf(u, n + 40, "%.*s/v1/chat/completions", (int)n, base);
	return u;
}

static int open_backend(struct provider *p, struct pv_resource *pr, json_t *cfg, cg_err *e)
{
	json_t *b = json_object_get(cfg, "backend");
	const char *type = json_string_value(json_object_get(b, "type"));
	const char *kind = json_string_value(json_object_get(cfg, "kind"));
	const char *s;
	char path[4200], db[4300];
	snprintf(pr->id, sizeof pr->id, "%s", json_string_value(json_object_get(cfg, "id")));
	pr->allowed = json_incref(json_object_get(cfg, "allowedConsumers"));
	if (json_is_true(json_object_get(cfg, "publish")))
		pr->publish = json_incref(cfg);
	if ((s = json_string_value(json_object_get(b, "model"))))
		pr->model = strdup(s);
	if ((s = json_string_value(json_object_get(b, "apiKey")))) {
		pr->api_key = strdup(s);
		redact_register(s);
	}
	if (!strcmp(kind, "model")) {
		pr->kind = PV_MODEL;
		if (!strcmp(type, "llama")) {
			pr->backend = PVB_LLAMA;
			if (!p->d.models)
				return cg_fail(e, CG_E_UNAVAILABLE, "provider.resources: %s: no local model registry", pr->id);
			return 0;
		}
		pr->backend = PVB_OPENAI;
		const char *url = json_string_value(json_object_get(b, "url"));
		redact_register(url);
		pr->url = chat_url(url);
		if (pr->url)
			redact_register(pr->url);
		return pr->url ? 0 : cg_fail(e, CG_E_INTERNAL, "out of memory");
	}
	if (!strcmp(kind, "search")) {
		pr->kind = PV_SEARCH;
		if (!strcmp(type, "searxng")) {
			pr->backend = PVB_SEARXNG;
			const char *url = json_string_value(json_object_get(b, "url"));
			redact_register(url);
			size_t n = strlen(url);
			while (n && url[n - 1] == '/')
				n--;
			pr->url = malloc(n + 16);
			if (!pr->url)
				return cg_fail(e, CG_E_INTERNAL, "out of memory");
			snprintf(pr->url, n + 16, "%.*s/search", (int)n, url);
			redact_register(pr->url);
			return 0;
		}
		pr->backend = PVB_FTS;
		resolve_path(p, json_string_value(json_object_get(b, "folder")), path, sizeof path);
		redact_register(path);
		json_int_t refresh = json_integer_value(json_object_get(b, "refreshMs"));
		pr->refresh_ms = refresh > 0 ? refresh : 60000;
		snprintf(db, sizeof db, "%s/provider", p->d.data_dir);
		if (mkdir(db, 0700) != 0 && errno != EEXIST)
			return cg_fail(e, CG_E_INTERNAL, "provider: cannot create its folder: %s", strerror(errno));
		snprintf(db, sizeof db, "%s/provider/fts-%s.db", p->d.data_dir, pr->id);
		int r = fts_open(path, db, json_string_value(json_object_get(b, "baseUrl")), &pr->fts, e);
		if (r < 0)
			return cg_fail(e, e->code, "provider.resources: %s: %s", pr->id, e->msg);
		json_t *stats = NULL;
		if ((r = fts_refresh(pr->fts, &stats, e)) < 0)
			return r;
		log_info("provider", "search index ready", "resource=%s indexed=%lld", pr->id,
			 (long long)json_integer_value(json_object_get(stats, "indexed")));
		json_decref(stats);
		return 0;
	}
	pr->kind = PV_STORAGE;
	pr->backend = PVB_FS;
	pr->quota_bytes = json_integer_value(json_object_get(b, "quotaBytes"));
	if ((s = json_string_value(json_object_get(b, "root"))))
		resolve_path(p, s, path, sizeof path);
	else
		snprintf(path, sizeof path, "%s/provider/storage-%s", p->d.data_dir, pr->id);
	redact_register(path);
	return pstore_open(p->d.store, path, &pr->ps, e);
}

static void backend_free(struct pv_resource *pr)
{
	free(pr->url);
	if (pr->api_key) {
		sodium_memzero(pr->api_key, strlen(pr->api_key));
		free(pr->api_key);
	}
	free(pr->model);
	fts_free(pr->fts);
	pstore_free(pr->ps);
	json_decref(pr->publish);
	json_decref(pr->allowed);
}

static struct pv_resource *find_res(struct provider *p, const char *id)
{
	for (size_t i = 0; i < p->nres; i++)
		if (!strcmp(p->res[i].id, id))
			return &p->res[i];
	return NULL;
}

/* Publishes a configured resource (market.resource.publish with this node as the provider). */
static int publish(struct provider *p, struct pv_resource *pr, cg_err *e)
{
	json_t *cfg = pr->publish;
	const char *kind = json_string_value(json_object_get(cfg, "kind"));
	json_t *price = json_object_get(cfg, "price");
	json_t *res = json_pack("{s:s,s:s,s:O,s:O}", "resourceId", pr->id, "kind", kind, "label",
				json_object_get(cfg, "label"), "price", price);
	static const char *const opt[] = {"description", "tags", "policy", NULL};
	for (int i = 0; opt[i]; i++)
		if (json_object_get(cfg, opt[i]))
			json_object_set(res, opt[i], json_object_get(cfg, opt[i]));
	const char *cur = json_string_value(json_object_get(price, "currency"));
	json_object_set_new(res, "offer",
			    json_pack("{s:s,s:s,s:s,s:s,s:{s:s}}", "assetId", pr->id, "assetType", "api", "currency",
				      cur ? cur : "", "deliveryType", "api", "usageScope", "purpose", kind));
	json_t *params = json_pack("{s:s,s:o}", "actorId", p->actor, "resource", res), *out = NULL;
	int r = market_call(p->d.market, "market.resource.publish", params, &out, e);
	json_decref(params);
	json_decref(out);
	return r;
}

/* ---- rate limit and concurrency (per lease) ---- */

static unsigned rl_hash(const char *s)
{
	unsigned h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % PV_RL_BUCKETS;
}

static struct pv_rl *rl_get(struct provider *p, const char *lease)
{
	unsigned h = rl_hash(lease);
	for (struct pv_rl *x = p->rl[h]; x; x = x->next)
		if (!strcmp(x->lease, lease))
			return x;
	struct pv_rl *x = calloc(1, sizeof *x);
	if (!x)
		return NULL;
	snprintf(x->lease, sizeof x->lease, "%s", lease);
	x->win_start = -1;
	x->next = p->rl[h];
	p->rl[h] = x;
	return x;
}

/* Admits a request when fewer than rate_n are estimated within the last window: prev * (remaining overlap of
 * the previous window) + cur. Retry-After is when the estimate drops below the limit again. */
static int rl_admit(struct provider *p, struct pv_rl *x, cg_err *e)
{
	const int64_t now = clock_mono_ms(), w = p->rate_window_ms;
	x->last = now;
	if (x->win_start < 0) {
		x->win_start = now;
	} else if (now - x->win_start >= w) {
		int64_t passed = (now - x->win_start) / w;
		x->prev = passed == 1 ? x->cur : 0;
		x->cur = 0;
		x->win_start += passed * w;
	}
	const int64_t into = now - x->win_start;
	/* estimate = prev * (w - into) / w + cur, compared as integers: prev * (w - into) + cur * w < n * w. */
	if (x->prev * (w - into) + x->cur * w >= p->rate_n * w) {
		p->n_rate_limited++;
		int64_t wait_ms;
		if (x->cur >= p->rate_n)
			/* This window alone is full: past its end it becomes `prev`, whose weight must fall enough. */
			wait_ms = (w - into) + (w - p->rate_n * w / x->cur) + 1;
		else
			/* prev * (w - into - t) + cur * w < n * w  <=>  t > w - into - (n - cur) * w / prev */
			wait_ms = w - into - (p->rate_n - x->cur) * w / x->prev + 1;
		cg_fail(e, CG_E_RATE_LIMITED, "rate limit of %lld requests per %lld ms reached for this lease",
			(long long)p->rate_n, (long long)w);
		e->retry_after_s = (int)((wait_ms + 999) / 1000);
		if (e->retry_after_s < 1)
			e->retry_after_s = 1;
		return -CG_E_RATE_LIMITED;
	}
	x->cur++;
	return 0;
}

static void rl_gc(struct provider *p)
{
	int64_t now = clock_mono_ms();
	for (int h = 0; h < PV_RL_BUCKETS; h++) {
		struct pv_rl **pp = &p->rl[h];
		while (*pp) {
			struct pv_rl *x = *pp;
			/* Idle for two windows: its counts no longer matter. */
			if (x->inflight == 0 && x->last < now - 2 * p->rate_window_ms) {
				*pp = x->next;
				free(x);
			} else {
				pp = &x->next;
			}
		}
	}
}

/* ---- request helpers ---- */

static void request_id(struct http_req *r, char out[static 129])
{
	const char *h = http_req_header(r, "X-OpenClaw-Request-Id");
	if (h && *h && strlen(h) <= 128 &&
	    strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-") == strlen(h)) {
		snprintf(out, 129, "%s", h);
		return;
	}
	uint8_t rnd[12];
	randombytes_buf(rnd, sizeof rnd);
	memcpy(out, "req_", 4);
	hex_encode(out + 4, rnd, sizeof rnd);
}

static struct metric *m_requests(void)
{
	static struct metric *m;
	if (!m)
		m = metrics_counter("clawgrid_provider_requests_total", "Provider resource requests by kind and outcome.",
				    "kind,code");
	return m;
}

static const char *kind_name(enum pv_kind k)
{
	return k == PV_MODEL ? "model" : k == PV_SEARCH ? "search" : "storage";
}

/* Every 429 and 503 of a provider route carries Retry-After (spec §1.2): clients back off on it, and an
 * OpenAI SDK retries by it. Where the cause sets no delay of its own, one second for a transient engine or
 * concurrency condition; a full storage quota frees only when the consumer deletes, so a minute. */
static void retry_after_default(cg_err *e)
{
	if (e->retry_after_s > 0)
		return;
	int st = cg_err_http(e);
	if (st == 503)
		e->retry_after_s = 1;
	else if (st == 429)
		e->retry_after_s = e->code == CG_E_QUOTA_EXCEEDED ? 60 : 1;
}

static void reply_err(struct http_req *r, const char *rid, const cg_err *e)
{
	cg_err copy = *e;
	retry_after_default(&copy);
	http_reply_header(r, "X-OpenClaw-Request-Id", rid);
	http_reply_error(r, &copy);
}

/* The lease token: "Authorization: Bearer tok_…" or "X-Lease-Token: tok_…". */
static const char *token_of(const struct http_req *r)
{
	const char *a = http_req_header(r, "Authorization");
	if (a && strncasecmp(a, "Bearer ", 7) == 0) {
		a += 7;
		while (*a == ' ')
			a++;
		if (!strncmp(a, "tok_", 4))
			return a;
	}
	const char *x = http_req_header(r, "X-Lease-Token");
	return x && *x ? x : NULL;
}

static bool has_lease_token(const struct http_req *r, void *arg)
{
	return token_of(r) != NULL;
}

static bool allowed_in(json_t *list, const char *consumer)
{
	if (!list || json_array_size(list) == 0)
		return true;
	uint8_t want[20], a[20];
	if (eth_address_parse(consumer, want, NULL) < 0)
		return false;
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v) {
		if (eth_address_parse(json_string_value(v), a, NULL) == 0 && !memcmp(a, want, 20))
			return true;
	}
	return false;
}

/* Authorizes a resource request and creates its call. On failure replies the error and returns NULL. */
static struct pv_call *authorize(struct provider *p, struct http_req *r, enum pv_kind kind)
{
	char rid[129];
	request_id(r, rid);
	cg_err e;
	cg_err_clear(&e);
	json_t *lease = NULL, *resource = NULL, *out = NULL;
	struct pv_resource *pr = NULL;
	struct pv_rl *rl = NULL;
	const char *token = token_of(r);
	const char *lease_id = http_req_header(r, "X-OpenClaw-Lease");
	int rc;
	if (!token) {
		rc = cg_fail(&e, CG_E_AUTH_REQUIRED, "a lease token is required (Authorization header or X-Lease-Token)");
		goto fail;
	}
	if (lease_id && (!*lease_id || strlen(lease_id) > 63)) {
		rc = cg_fail(&e, CG_E_FORBIDDEN, "lease token does not match");
		goto fail;
	}
	if ((rc = market_lease_authorize(p->d.market, lease_id, token, &lease, &e)) < 0)
		goto fail;
	const char *lid = json_string_value(json_object_get(lease, "leaseId"));
	const char *res_id = json_string_value(json_object_get(lease, "resourceId"));
	const char *consumer = json_string_value(json_object_get(lease, "consumerActorId"));
	const char *lkind = json_string_value(json_object_get(lease, "kind"));
	if (!lid || !res_id || !consumer || !lkind || strcmp(lkind, kind_name(kind)) != 0) {
		rc = cg_fail(&e, CG_E_FORBIDDEN, "this lease is for a %s resource", lkind ? lkind : "different");
		goto fail;
	}
	pr = find_res(p, res_id);
	if (!pr || pr->kind != kind) {
		rc = cg_fail(&e, CG_E_UNAVAILABLE, "resource is not served by this node");
		goto fail;
	}
	if (!allowed_in(p->allowed, consumer) || !allowed_in(pr->allowed, consumer)) {
		rc = cg_fail(&e, CG_E_FORBIDDEN, "consumer is not allowed to use this resource");
		goto fail;
	}
	json_t *params = json_pack("{s:s}", "resourceId", res_id);
	rc = market_call(p->d.market, "market.resource.get", params, &out, &e);
	json_decref(params);
	if (rc < 0)
		goto fail;
	resource = json_incref(json_object_get(out, "resource"));
	json_decref(out);
	if (!json_is_object(resource)) {
		rc = cg_fail(&e, CG_E_FORBIDDEN, "resource is no longer published");
		goto fail;
	}
	if (!(rl = rl_get(p, lid))) {
		rc = cg_fail(&e, CG_E_INTERNAL, "out of memory");
		goto fail;
	}
	json_t *policy = json_object_get(resource, "policy");
	json_int_t maxc = json_integer_value(json_object_get(policy, "maxConcurrent"));
	if (maxc > 0 && rl->inflight >= maxc) {
		rc = cg_fail(&e, CG_E_RATE_LIMITED, "lease already has %lld requests in flight (maxConcurrent)",
			     (long long)maxc);
		e.retry_after_s = 1;
		goto fail;
	}
	if ((rc = rl_admit(p, rl, &e)) < 0)
		goto fail;
	struct pv_call *c = pv_call_new(p, r, pr, lease, resource, rl, rid);
	if (!c) {
		rc = cg_fail(&e, CG_E_INTERNAL, "out of memory");
		goto fail;
	}
	return c;
fail:
	/* A lease that no longer authorizes is 401 on provider routes (ARCHITECTURE.md error table). */
	if (e.code == CG_E_EXPIRED || e.code == CG_E_REVOKED)
		e.http_status = 401;
	if (e.code == CG_E_AUTH_REQUIRED || e.code == CG_E_FORBIDDEN || e.code == CG_E_EXPIRED || e.code == CG_E_REVOKED) {
		p->n_auth_failed++;
		log_info("provider", "request refused", "kind=%s code=%s request_id=%s", kind_name(kind),
			 cg_code_name(e.code), rid);
	}
	metrics_add(m_requests(), 1, kind_name(kind), cg_code_name(e.code));
	json_decref(lease);
	json_decref(resource);
	reply_err(r, rid, &e);
	return NULL;
}

static void on_call_close(struct http_req *r, void *arg)
{
	struct pv_call *c = arg;
	c->gone = true;
	if (c->res->kind == PV_MODEL) {
		pv_chat_cut(c, NULL);
	} else if (c->up) {
		/* A pending upstream search: stop it; the reply below is a no-op that frees the call. */
		hc_cancel(c->up);
		c->up = NULL;
		cg_err e;
		cg_fail(&e, CG_E_UNAVAILABLE, "client went away");
		pv_reply_error(c, &e);
	}
}

struct pv_call *pv_call_new(struct provider *p, struct http_req *r, struct pv_resource *res, json_t *lease,
			    json_t *resource, struct pv_rl *rl, const char *request_id)
{
	struct pv_call *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->p = p;
	c->r = r;
	c->res = res;
	c->lease = lease;
	c->resource = resource;
	c->rl = rl;
	c->total_tokens = -1;
	snprintf(c->request_id, sizeof c->request_id, "%s", request_id);
	rl->inflight++;
	c->next = p->calls;
	if (p->calls)
		p->calls->prev = c;
	p->calls = c;
	http_req_on_close(r, on_call_close, c);
	return c;
}

void pv_call_free(struct pv_call *c)
{
	if (!c)
		return;
	struct provider *p = c->p;
	if (c->prev)
		c->prev->next = c->next;
	else
		p->calls = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->rl->inflight--;
	json_decref(c->lease);
	json_decref(c->resource);
	sse_done(&c->sse);
	free(c->site);
	free(c);
}

const char *pv_price_unit(const struct pv_call *c)
{
	return json_string_value(json_object_get(json_object_get(c->resource, "price"), "unit")) ?: "";
}

const char *pv_price_amount(const struct pv_call *c)
{
	return json_string_value(json_object_get(json_object_get(c->resource, "price"), "amount")) ?: "0";
}

json_t *pv_policy(const struct pv_call *c)
{
	return json_object_get(c->resource, "policy");
}

static struct metric *m_ledger(void)
{
	static struct metric *m;
	if (!m)
		m = metrics_counter("clawgrid_provider_ledger_appends_total", "Ledger appends after served requests.",
				    "kind,status");
	return m;
}

json_t *pv_meter(struct pv_call *c, const char *unit, const char *quantity, bool priced)
{
	struct provider *p = c->p;
	char cost[U256_DEC_MAX] = "0";
	const char *kind = kind_name(c->res->kind);
	if (priced && amount_mul(quantity, pv_price_amount(c), cost) < 0) {
		log_warn("provider", "ledger entry not written", "kind=%s reason=cost_overflow request_id=%s", kind,
			 c->request_id);
		return NULL;
	}
	json_t *price = json_object_get(c->resource, "price");
	json_t *entry = json_pack("{s:O,s:O,s:s,s:s,s:O,s:s,s:s,s:s,s:O}", "leaseId", json_object_get(c->lease, "leaseId"),
				  "resourceId", json_object_get(c->lease, "resourceId"), "kind", kind, "providerActorId",
				  p->actor, "consumerActorId", json_object_get(c->lease, "consumerActorId"), "unit", unit,
				  "quantity", quantity, "cost", cost, "currency", json_object_get(price, "currency"));
	json_t *res = NULL;
	cg_err e;
	cg_err_clear(&e);
	if (!entry || market_ledger_append(p->d.market, p->actor, entry, NULL, &res, &e) < 0) {
		/* Gate-LEDGER-02: the answer is served regardless; the failure is logged and counted. */
		p->n_ledger_failed++;
		metrics_add(m_ledger(), 1, kind, "failed");
		log_warn("provider", "ledger append failed", "kind=%s request_id=%s err=\"%s\"", kind, c->request_id,
			 entry ? e.msg : "bad entry");
		json_decref(entry);
		return NULL;
	}
	metrics_add(m_ledger(), 1, kind, "ok");
	json_t *rc = json_pack("{s:s,s:O,s:O,s:O,s:s,s:O,s:O,s:s,s:s,s:s,s:O,s:s,s:I}", "providerActorId", p->actor,
			       "consumerActorId", json_object_get(c->lease, "consumerActorId"), "leaseId",
			       json_object_get(c->lease, "leaseId"), "resourceId", json_object_get(c->lease, "resourceId"),
			       "kind", kind, "ledgerId", json_object_get(res, "ledgerId"), "entryHash",
			       json_object_get(res, "entryHash"), "unit", unit, "quantity", quantity, "cost", cost,
			       "currency", json_object_get(price, "currency"), "requestId", c->request_id, "issuedAt",
			       (json_int_t)clock_now_ms());
	json_decref(entry);
	json_decref(res);
	if (!rc || receipt_sign(p->d.key, rc, &e) < 0) {
		json_decref(rc);
		return NULL;
	}
	return rc;
}

static void finish_common(struct pv_call *c, const char *code)
{
	c->finished = true;
	c->p->n_served++;
	metrics_add(m_requests(), 1, kind_name(c->res->kind), code);
	http_reply_header(c->r, "X-OpenClaw-Request-Id", c->request_id);
}

void pv_reply_json(struct pv_call *c, json_t *v, json_t *receipt)
{
	finish_common(c, "OK");
	if (receipt) {
		cg_err e;
		char *h = receipt_to_header(receipt, &e);
		if (h)
			http_reply_header(c->r, RECEIPT_HEADER, h);
		free(h);
		json_decref(receipt);
	}
	http_reply_json(c->r, 200, v);
	pv_call_free(c);
}

void pv_reply_error(struct pv_call *c, const cg_err *e)
{
	cg_err copy = *e;
	if (copy.code == CG_E_EXPIRED || copy.code == CG_E_REVOKED)
		copy.http_status = 401;
	retry_after_default(&copy);
	finish_common(c, cg_code_name(copy.code));
	http_reply_error(c->r, &copy);
	pv_call_free(c);
}

/* ---- routes ---- */

static void on_chat(struct http_req *r, void *arg)
{
	struct pv_call *c = authorize(arg, r, PV_MODEL);
	if (c)
		pv_chat(c);
}

static void on_search(struct http_req *r, void *arg)
{
	struct pv_call *c = authorize(arg, r, PV_SEARCH);
	if (c)
		pv_search(c);
}

static void on_put(struct http_req *r, void *arg)
{
	struct pv_call *c = authorize(arg, r, PV_STORAGE);
	if (c)
		pv_storage_put(c);
}

static void on_get(struct http_req *r, void *arg)
{
	struct pv_call *c = authorize(arg, r, PV_STORAGE);
	if (c)
		pv_storage_get(c);
}

static void on_list_storage(struct http_req *r, void *arg)
{
	struct pv_call *c = authorize(arg, r, PV_STORAGE);
	if (c)
		pv_storage_list(c);
}

/* GET /web3/resources/list: what this node serves, as the market has it published. Never endpoints,
 * backend types or paths. */
static void on_list(struct http_req *r, void *arg)
{
	struct provider *p = arg;
	char rid[129];
	request_id(r, rid);
	cg_err e;
	cg_err_clear(&e);
	json_t *params = json_pack("{s:s,s:s,s:i}", "providerActorId", p->actor, "status", "resource_published", "limit",
				   200),
	       *out = NULL;
	int rc = market_call(p->d.market, "market.resource.list", params, &out, &e);
	json_decref(params);
	if (rc < 0) {
		reply_err(r, rid, &e);
		return;
	}
	json_t *list = json_array(), *res;
	size_t i;
	json_array_foreach(json_object_get(out, "resources"), i, res) {
		const char *id = json_string_value(json_object_get(res, "resourceId"));
		if (!id || !find_res(p, id))
			continue;
		json_t *price = json_object_get(res, "price");
		json_t *item = json_pack("{s:s,s:s,s:O,s:O,s:O,s:{s:O,s:O,s:O}}", "id", id, "resourceId", id, "kind",
					 json_object_get(res, "kind"), "label", json_object_get(res, "label"), "price", price,
					 "pricing", "unit", json_object_get(price, "unit"), "amount",
					 json_object_get(price, "amount"), "currency", json_object_get(price, "currency"));
		static const char *const opt[] = {"description", "tags", "policy", "version", "offerId", NULL};
		for (int k = 0; opt[k]; k++)
			if (json_object_get(res, opt[k]))
				json_object_set(item, opt[k], json_object_get(res, opt[k]));
		json_array_append_new(list, item);
	}
	json_decref(out);
	http_reply_header(r, "X-OpenClaw-Request-Id", rid);
	http_reply_json(r, 200,
			json_pack("{s:b,s:{s:s,s:s},s:o}", "ok", 1, "provider", "actorId", p->actor, "peerId", p->peer_id,
				  "resources", list));
}

/* POST /web3/market/lease: a consumer node asks for a lease with a wallet-signed request. */
static void on_lease(struct http_req *r, void *arg)
{
	struct provider *p = arg;
	char rid[129];
	request_id(r, rid);
	cg_err e;
	cg_err_clear(&e);
	size_t len;
	const uint8_t *body = http_req_body(r, &len);
	struct leasereq q;
	json_t *params = NULL, *out = NULL;
	int rc;
	if ((rc = http_req_require_type(r, "application/json", &e)) < 0 ||
	    (rc = leasereq_verify((const char *)body, len, p->actor, clock_now_ms(), p->lease_skew_ms, &q, &e)) < 0)
		goto fail;
	struct pv_resource *pr = find_res(p, q.resource_id);
	if (!pr) {
		rc = cg_fail(&e, CG_E_NOT_FOUND, "resource %s is not served by this node", q.resource_id);
		goto fail;
	}
	if (!allowed_in(p->allowed, q.consumer) || !allowed_in(pr->allowed, q.consumer)) {
		rc = cg_fail(&e, CG_E_FORBIDDEN, "consumer is not allowed to lease this resource");
		goto fail;
	}
	/* Replays: each (consumer, nonce) is accepted once; entries outlive the skew window, after which the
	 * timestamp check alone refuses the request. */
	sqlite3_stmt *s = store_prep(p->d.store, "INSERT INTO pv_nonces(consumer, nonce, expiresAt) VALUES(?,?,?)", &e);
	if (!s) {
		rc = -CG_E_INTERNAL;
		goto fail;
	}
	sqlite3_bind_text(s, 1, q.consumer, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 2, q.nonce, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 3, q.timestamp + p->lease_skew_ms + 1000);
	int step = sqlite3_step(s);
	sqlite3_reset(s);
	if (step == SQLITE_CONSTRAINT) {
		rc = cg_fail(&e, CG_E_CONFLICT, "lease request replayed (nonce already used)");
		goto fail;
	}
	if (step != SQLITE_DONE) {
		rc = store_fail(p->d.store, &e, "nonce");
		goto fail;
	}
	params = json_pack("{s:s,s:s,s:s,s:I}", "actorId", q.consumer, "resourceId", q.resource_id, "consumerActorId",
			   q.consumer, "ttlMs", (json_int_t)q.ttl_ms);
	if (q.max_cost[0])
		json_object_set_new(params, "maxCost", json_string(q.max_cost));
	if ((rc = market_call(p->d.market, "market.lease.issue", params, &out, &e)) < 0)
		goto fail;
	log_info("provider", "lease issued to a remote consumer", "lease=%s resource=%s consumer=%s",
		 json_string_value(json_object_get(out, "leaseId")), q.resource_id, q.consumer);
	/* The token is copied into the reply (the source string is wiped right after). */
	json_t *reply = json_pack("{s:b,s:O,s:O,s:O,s:s,s:s,s:s,s:s,s:s}", "ok", 1, "leaseId", json_object_get(out, "leaseId"),
				  "orderId", json_object_get(out, "orderId"), "expiresAt", json_object_get(out, "expiresAt"),
				  "accessToken", json_string_value(json_object_get(out, "accessToken")) ?: "", "resourceId",
				  q.resource_id, "kind",
				  kind_name(pr->kind), "providerActorId", p->actor, "providerPeerId", p->peer_id);
	json_t *tok = json_object_get(out, "accessToken");
	if (json_is_string(tok))
		sodium_memzero((char *)json_string_value(tok), json_string_length(tok));
	json_decref(out);
	json_decref(params);
	http_reply_header(r, "X-OpenClaw-Request-Id", rid);
	http_reply_header(r, "Cache-Control", "no-store");
	http_reply_json(r, 200, reply);
	return;
fail:
	json_decref(params);
	log_info("provider", "lease request refused", "code=%s request_id=%s", cg_code_name(e.code), rid);
	reply_err(r, rid, &e);
}

/* ---- lifecycle ---- */

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct provider *p = arg;
	rl_gc(p);
	cg_err e;
	sqlite3_stmt *s = store_prep(p->d.store, "DELETE FROM pv_nonces WHERE expiresAt < ?", &e);
	if (s) {
		sqlite3_bind_int64(s, 1, clock_now_ms());
		sqlite3_step(s);
		sqlite3_reset(s);
	}
	int64_t now = clock_mono_ms();
	for (size_t i = 0; i < p->nres; i++) {
		struct pv_resource *pr = &p->res[i];
		if (!pr->fts || now - pr->last_refresh < pr->refresh_ms)
			continue;
		pr->last_refresh = now;
		json_t *st = NULL;
		if (fts_refresh(pr->fts, &st, &e) < 0)
			log_warn("provider", "search index refresh failed", "resource=%s err=\"%s\"", pr->id, e.msg);
		json_decref(st);
	}
}

void provider_refresh(struct provider *p)
{
	for (size_t i = 0; i < p->nres; i++) {
		cg_err e;
		if (p->res[i].fts && fts_refresh(p->res[i].fts, NULL, &e) < 0)
			log_warn("provider", "search index refresh failed", "resource=%s err=\"%s\"", p->res[i].id, e.msg);
	}
}

static double g_inflight(void *arg)
{
	struct provider *p = arg;
	double n = 0;
	for (struct pv_call *c = p->calls; c; c = c->next)
		n++;
	return n;
}

int provider_new(const struct provider_deps *deps, json_t *section, struct provider **out, cg_err *e)
{
	struct cfg c;
	int r;
	if ((r = parse_cfg(section, &c, e)) < 0)
		return r;
	if (!deps->market || !deps->http || !deps->store || !deps->key || !deps->actor)
		return cg_fail(e, CG_E_INTERNAL, "provider: the node has no market, HTTP server, store, key or address");
	struct provider *p = calloc(1, sizeof *p);
	if (!p)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	p->d = *deps;
	snprintf(p->actor, sizeof p->actor, "%s", deps->actor);
	peerid_string_from_ed25519(deps->key->pk, p->peer_id, sizeof p->peer_id);
	p->rate_n = c.rate_n;
	p->rate_window_ms = c.rate_window_ms;
	p->connect_ms = c.connect_ms;
	p->first_byte_ms = c.first_byte_ms;
	p->idle_ms = c.idle_ms;
	p->total_ms = c.total_ms;
	p->lease_skew_ms = c.skew_ms;
	p->lease_route = c.lease_route;
	p->allowed = json_incref(c.allowed);
	if ((r = hc_new(deps->base, &p->hc, e)) < 0 ||
	    (r = store_migrate(deps->store, "provider_nonces", nonce_migrations, 1, e)) < 0)
		goto fail;
	size_t n = json_array_size(c.resources);
	p->res = calloc(n ? n : 1, sizeof *p->res);
	if (!p->res) {
		r = cg_fail(e, CG_E_INTERNAL, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		p->nres = i + 1;
		if ((r = open_backend(p, &p->res[i], json_array_get(c.resources, i), e)) < 0)
			goto fail;
	}
	for (size_t i = 0; i < p->nres; i++) {
		if (p->res[i].publish && (r = publish(p, &p->res[i], e)) < 0) {
			r = cg_fail(e, e->code, "provider.resources[%zu]: cannot publish: %s", i, e->msg);
			goto fail;
		}
	}
	struct {
		unsigned methods;
		const char *path;
		size_t cap;
		http_handler_fn fn;
	} routes[] = {
		{HTTP_GET, "/web3/resources/list", 0, on_list},
		{HTTP_POST, "/web3/resources/model/chat", CHAT_BODY_MAX, on_chat},
		{HTTP_POST, "/v1/chat/completions", CHAT_BODY_MAX, on_chat},
		{HTTP_POST, "/web3/resources/search/query", SEARCH_BODY_MAX, on_search},
		{HTTP_POST | HTTP_PUT, "/web3/resources/storage/put", STORAGE_BODY_MAX, on_put},
		{HTTP_GET | HTTP_POST, "/web3/resources/storage/get", SEARCH_BODY_MAX, on_get},
		{HTTP_GET | HTTP_POST, "/web3/resources/storage/list", SEARCH_BODY_MAX, on_list_storage},
		{HTTP_POST, "/web3/market/lease", LEASEREQ_BODY_MAX, on_lease},
	};
	bool has_model = false;
	for (size_t i = 0; i < p->nres; i++)
		has_model |= p->res[i].kind == PV_MODEL;
	for (size_t i = 0; i < sizeof routes / sizeof *routes; i++) {
		if (routes[i].fn == on_lease && !p->lease_route)
			continue;
		bool alias = !strcmp(routes[i].path, "/v1/chat/completions");
		if (alias && !has_model)
			continue;
		/* The OpenAI path is shared with the node's gateway (src/brain): this route takes the requests
		 * that present a lease token, whichever module registers first. */
		int rr = alias ? http_route_when(deps->http, routes[i].methods, routes[i].path, 0, routes[i].cap,
						 has_lease_token, routes[i].fn, p)
			       : http_route(deps->http, routes[i].methods, routes[i].path, 0, routes[i].cap, routes[i].fn, p);
		if (rr < 0) {
			if (alias) {
				/* Another module serves the OpenAI path on this node; the /web3 route still works. */
				log_warn("provider", "route taken, alias not served", "path=%s", routes[i].path);
				continue;
			}
			r = cg_fail(e, CG_E_INTERNAL, "provider: route %s is taken", routes[i].path);
			goto fail;
		}
	}
	p->timer = event_new(deps->base, -1, EV_PERSIST, on_timer, p);
	struct timeval tv = {5, 0};
	if (!p->timer || event_add(p->timer, &tv) < 0) {
		r = cg_fail(e, CG_E_INTERNAL, "provider: cannot start its timer");
		goto fail;
	}
	metrics_gauge_fn("clawgrid_provider_inflight", "Provider requests in flight.", g_inflight, p);
	log_info("provider", "started", "resources=%zu rate=%lld/%lldms", p->nres, (long long)p->rate_n,
		 (long long)p->rate_window_ms);
	*out = p;
	return 0;
fail:
	provider_free(p);
	return r;
}

int provider_cut_lease(struct provider *p, const char *lease_id)
{
	int n = 0;
	struct pv_call *c = p->calls, *next;
	for (; c; c = next) {
		next = c->next;
		const char *lid = json_string_value(json_object_get(c->lease, "leaseId"));
		if (lid && !strcmp(lid, lease_id) && c->res->kind == PV_MODEL) {
			pv_chat_cut(c, "lease revoked");
			n++;
		}
	}
	return n;
}

json_t *provider_status(struct provider *p)
{
	json_t *res = json_array();
	for (size_t i = 0; i < p->nres; i++)
		json_array_append_new(res, json_pack("{s:s,s:s}", "id", p->res[i].id, "kind", kind_name(p->res[i].kind)));
	int64_t inflight = 0;
	for (struct pv_call *c = p->calls; c; c = c->next)
		inflight++;
	return json_pack("{s:o,s:I,s:I,s:I,s:I,s:I}", "resources", res, "inflight", (json_int_t)inflight, "served",
			 (json_int_t)p->n_served, "rateLimited", (json_int_t)p->n_rate_limited, "authFailed",
			 (json_int_t)p->n_auth_failed, "ledgerFailed", (json_int_t)p->n_ledger_failed);
}

void provider_free(struct provider *p)
{
	if (!p)
		return;
	metrics_gauge_fn_remove(p);
	while (p->calls) {
		struct pv_call *c = p->calls;
		if (c->res->kind == PV_MODEL) {
			pv_chat_cut(c, "provider stopping");
		} else {
			/* A pending searxng query: answer it before the server goes. */
			cg_err e;
			cg_fail(&e, CG_E_UNAVAILABLE, "provider stopping");
			if (c->up)
				hc_cancel(c->up);
			c->up = NULL;
			pv_reply_error(c, &e);
		}
	}
	if (p->timer)
		event_free(p->timer);
	hc_free(p->hc);
	for (size_t i = 0; i < p->nres; i++)
		backend_free(&p->res[i]);
	free(p->res);
	for (int h = 0; h < PV_RL_BUCKETS; h++)
		while (p->rl[h]) {
			struct pv_rl *x = p->rl[h];
			p->rl[h] = x->next;
			free(x);
		}
	json_decref(p->allowed);
	free(p);
}
