/* brain: configuration, keys, setup, RPC methods and live status of the gateway (see brain.h; the request
 * engine is gateway.c). */
#define BRAIN_INTERNAL
#include "brain/bint.h"

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
#include "base/json.h"
#include "base/log.h"
#include "base/redact.h"
#include "brain/bledger.h"
#include "crypto/hash.h"
#include "http/server.h"
#include "http/client.h"
#include "rpc/rpc.h"

#define KEY_MAX 4096

/* ---------------------------------------------------------------- config */

static int check_id(json_t *obj, const char *pfx, const char *key, unsigned flags, const char **out, cg_err *e)
{
	int r = jp_str(obj, pfx, key, flags, 1, 63, out, e);
	if (r < 0 || !*out)
		return r;
	size_t n = strlen(*out);
	if (strspn(*out, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != n)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s.%s: only letters, digits, '.', '_' and '-'", pfx, key);
	return 0;
}

static int check_models(json_t *obj, const char *pfx, json_t **list, cg_err *e)
{
	int r = jp_arr(obj, pfx, "allowlist", 0, 256, list, e);
	if (r < 0 || !*list)
		return r;
	size_t i;
	json_t *v;
	json_array_foreach(*list, i, v) {
		if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 256)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s.allowlist[%zu]: must be a model id (1..256 characters)",
				       pfx, i);
	}
	return 0;
}

static int check_timeouts(json_t *obj, const char *pfx, struct bg_timeouts *to, cg_err *e)
{
	static const char *const keys[] = {"connectMs", "firstTokenMs", "idleMs", NULL};
	json_t *t = NULL;
	char p[96];
	int r;
	if ((r = jp_int(obj, pfx, "timeoutMs", 0, 100, 24LL * 3600 * 1000, &to->total_ms, e)) < 0 ||
	    (r = jp_obj(obj, pfx, "timeouts", 0, &t, e)) < 0 || !t)
		return r;
	snprintf(p, sizeof p, "%s.timeouts", pfx);
	if ((r = jp_only(t, p, keys, e)) < 0 || (r = jp_int(t, p, "connectMs", 0, 10, 600000, &to->connect_ms, e)) < 0 ||
	    (r = jp_int(t, p, "firstTokenMs", 0, 10, 24LL * 3600 * 1000, &to->first_token_ms, e)) < 0 ||
	    (r = jp_int(t, p, "idleMs", 0, 10, 24LL * 3600 * 1000, &to->idle_ms, e)) < 0)
		return r;
	return 0;
}

/* One entry of brain.brains. With b != NULL the parsed values are stored in br. */
static int parse_brain(json_t *o, size_t i, const struct bg_timeouts *deflt, struct bg_brain *br, cg_err *e)
{
	static const char *const keys[] = {"providerId", "type",      "enabled",   "defaultModel", "allowlist",
					   "endpoint",   "protocol",  "timeoutMs", "timeouts",     "apiKeyEnv",
					   "apiKeyFile", "price",     "providers", NULL};
	static const char *const types[] = {"market", "centralized", NULL};
	static const char *const protos[] = {"openai-compat", "custom-ws", "p2p", NULL};
	char pfx[48];
	snprintf(pfx, sizeof pfx, "brain.brains[%zu]", i);
	const char *id = NULL, *type = NULL, *model = "", *endpoint = NULL, *proto = "openai-compat";
	const char *kenv = NULL, *kfile = NULL;
	bool enabled = true;
	json_t *allow = NULL, *price = NULL, *provs = NULL;
	struct bg_timeouts to = *deflt;
	int r;
	if (!json_is_object(o))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: must be an object", pfx);
	if (json_object_get(o, "apiKey"))
		return cg_fail(e, CG_E_INVALID_ARGUMENT,
			       "%s.apiKey: keys never go in config.json; use apiKeyEnv (an environment variable) or "
			       "apiKeyFile (a mode 0600 file)",
			       pfx);
	if ((r = jp_only(o, pfx, keys, e)) < 0 || (r = check_id(o, pfx, "providerId", JP_REQUIRED, &id, e)) < 0 ||
	    (r = jp_enum(o, pfx, "type", JP_REQUIRED, types, &type, e)) < 0 ||
	    (r = jp_bool(o, pfx, "enabled", 0, &enabled, e)) < 0 ||
	    (r = jp_str(o, pfx, "defaultModel", 0, 0, 256, &model, e)) < 0 || (r = check_models(o, pfx, &allow, e)) < 0 ||
	    (r = jp_str(o, pfx, "endpoint", 0, 8, 2000, &endpoint, e)) < 0 ||
	    (r = jp_enum(o, pfx, "protocol", 0, protos, &proto, e)) < 0 || (r = check_timeouts(o, pfx, &to, e)) < 0 ||
	    (r = jp_str(o, pfx, "apiKeyEnv", 0, 1, 128, &kenv, e)) < 0 ||
	    (r = jp_str(o, pfx, "apiKeyFile", 0, 1, 1024, &kfile, e)) < 0 ||
	    (r = jp_obj(o, pfx, "price", 0, &price, e)) < 0 || (r = jp_arr(o, pfx, "providers", 0, 64, &provs, e)) < 0)
		return r;
	if (strcmp(proto, "openai-compat") != 0)
		return cg_fail(e, CG_E_INVALID_ARGUMENT,
			       "%s.protocol: %s is not supported by this node; use openai-compat", pfx, proto);
	bool central = !strcmp(type, "centralized");
	if (central) {
		if (!endpoint)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s.endpoint: required for a centralized brain", pfx);
		if (strncmp(endpoint, "http://", 7) != 0 && strncmp(endpoint, "https://", 8) != 0)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s.endpoint: must be an http:// or https:// URL", pfx);
		if (provs)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s.providers: only for market brains", pfx);
		if (kenv && kfile)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: give apiKeyEnv or apiKeyFile, not both", pfx);
	} else {
		if (endpoint || kenv || kfile)
			return cg_fail(e, CG_E_INVALID_ARGUMENT,
				       "%s: a market brain reaches providers through leases (consumer.providers); endpoint "
				       "and API keys are for centralized brains",
				       pfx);
		size_t k;
		json_t *v;
		json_array_foreach(provs, k, v) if (!json_is_string(v) || json_string_length(v) == 0) return cg_fail(
			e, CG_E_INVALID_ARGUMENT, "%s.providers[%zu]: must be a provider name from consumer.providers", pfx,
			k);
	}
	const char *pp = "0", *pc = "0", *pcall = NULL;
	if (price) {
		static const char *const pkeys[] = {"prompt", "completion", "call", NULL};
		char p2[64];
		snprintf(p2, sizeof p2, "%s.price", pfx);
		if (!central)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: market prices come from the providers' offers", p2);
		if ((r = jp_only(price, p2, pkeys, e)) < 0 || (r = jp_amount(price, p2, "prompt", 0, &pp, e)) < 0 ||
		    (r = jp_amount(price, p2, "completion", 0, &pc, e)) < 0 ||
		    (r = jp_amount(price, p2, "call", 0, &pcall, e)) < 0)
			return r;
		if (pcall && (json_object_get(price, "prompt") || json_object_get(price, "completion")))
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: give call, or prompt and completion", p2);
	}
	if (central && !model[0] && json_array_size(allow) == 0 && enabled)
		log_debug("brain", "centralized brain without defaultModel serves only requested models", "brain=%s", id);
	if (!br)
		return 0;
	snprintf(br->id, sizeof br->id, "%s", id);
	br->kind = central ? BK_CENTRAL : BK_MARKET;
	br->enabled = enabled;
	snprintf(br->default_model, sizeof br->default_model, "%s", model);
	br->allowlist = allow ? json_incref(allow) : json_array();
	br->providers = provs ? json_incref(provs) : json_array();
	br->to = to;
	snprintf(br->price_prompt, sizeof br->price_prompt, "%s", pp);
	snprintf(br->price_completion, sizeof br->price_completion, "%s", pc);
	snprintf(br->price_call, sizeof br->price_call, "%s", pcall ? pcall : "0");
	br->per_call = pcall != NULL;
	if (central) {
		size_t n = strlen(endpoint);
		while (n && endpoint[n - 1] == '/')
			n--;
		if (!(br->url = malloc(n + 32)))
			return cg_fail(e, CG_E_INTERNAL, "out of memory");
		/* An endpoint given down to the route is used as is; otherwise it is the API base ("…/v1"). */
		if (n >= 17 && !strncmp(endpoint + n - 17, "/chat/completions", 17))
			snprintf(br->url, n + 32, "%.*s", (int)n, endpoint);
		else
			snprintf(br->url, n + 32, "%.*s/chat/completions", (int)n, endpoint);
		redact_register(br->url);
		char base[2100];
		snprintf(base, sizeof base, "%.*s", (int)n, endpoint);
		redact_register(base);
	}
	return 0;
}

struct top {
	bool enabled;
	const char *provider_id, *default_model, *fallback, *usage, *key_env, *key_file, *credits;
	json_t *allowlist, *brains;
	struct bg_timeouts to;
	struct bh_cooldown cd;
	int64_t max_attempts, reserve_max_tokens, refresh_ms;
};

static int parse_top(json_t *sec, struct top *t, cg_err *e)
{
	static const char *const keys[] = {"enabled",  "providerId",    "defaultModel",   "allowlist", "fallback",
					   "timeoutMs", "timeouts",     "cooldown",       "budget",    "gatewayKeyEnv",
					   "gatewayKeyFile", "brains",  "streamUsage",    "maxAttempts", "refreshMs",
					   NULL};
	static const char *const fbs[] = {"centralized", "market", "none", NULL};
	static const char *const usages[] = {"asked", "always", NULL};
	static const char *const ckeys[] = {"failures", "windowMs", "cooldownMs", NULL};
	static const char *const bkeys[] = {"credits", "reserveMaxTokens", NULL};
	memset(t, 0, sizeof *t);
	t->provider_id = "web3-decentralized";
	t->default_model = "auto";
	t->fallback = "centralized";
	t->usage = "asked";
	t->to = (struct bg_timeouts){.connect_ms = 5000, .first_token_ms = 30000, .idle_ms = 30000, .total_ms = 600000};
	t->cd = (struct bh_cooldown){.failures = 3, .window_ms = 60000, .cooldown_ms = 5000};
	t->max_attempts = 4;
	t->reserve_max_tokens = 4096;
	t->refresh_ms = 30000;
	json_t *cd = NULL, *budget = NULL;
	int64_t fails = 3;
	int r;
	if (!json_is_object(sec))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "brain: must be an object");
	if ((r = jp_only(sec, "brain", keys, e)) < 0 || (r = jp_bool(sec, "brain", "enabled", 0, &t->enabled, e)) < 0 ||
	    (r = check_id(sec, "brain", "providerId", 0, &t->provider_id, e)) < 0 ||
	    (r = jp_str(sec, "brain", "defaultModel", 0, 1, 256, &t->default_model, e)) < 0 ||
	    (r = check_models(sec, "brain", &t->allowlist, e)) < 0 ||
	    (r = jp_enum(sec, "brain", "fallback", 0, fbs, &t->fallback, e)) < 0 ||
	    (r = check_timeouts(sec, "brain", &t->to, e)) < 0 || (r = jp_obj(sec, "brain", "cooldown", 0, &cd, e)) < 0 ||
	    (r = jp_obj(sec, "brain", "budget", 0, &budget, e)) < 0 ||
	    (r = jp_str(sec, "brain", "gatewayKeyEnv", 0, 1, 128, &t->key_env, e)) < 0 ||
	    (r = jp_str(sec, "brain", "gatewayKeyFile", 0, 1, 1024, &t->key_file, e)) < 0 ||
	    (r = jp_arr(sec, "brain", "brains", 0, BG_MAX_BRAINS, &t->brains, e)) < 0 ||
	    (r = jp_enum(sec, "brain", "streamUsage", 0, usages, &t->usage, e)) < 0 ||
	    (r = jp_int(sec, "brain", "maxAttempts", 0, 1, BG_MAX_TARGETS, &t->max_attempts, e)) < 0 ||
	    (r = jp_int(sec, "brain", "refreshMs", 0, 1000, 3600000, &t->refresh_ms, e)) < 0)
		return r;
	if (t->key_env && t->key_file)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "brain: give gatewayKeyEnv or gatewayKeyFile, not both");
	if (json_object_get(sec, "gatewayKey") || json_object_get(sec, "apiKey"))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "brain: keys never go in config.json");
	if (cd && ((r = jp_only(cd, "brain.cooldown", ckeys, e)) < 0 ||
		   (r = jp_int(cd, "brain.cooldown", "failures", 0, 1, BH_FAIL_RING, &fails, e)) < 0 ||
		   (r = jp_int(cd, "brain.cooldown", "windowMs", 0, 100, 3600000, &t->cd.window_ms, e)) < 0 ||
		   (r = jp_int(cd, "brain.cooldown", "cooldownMs", 0, 0, 3600000, &t->cd.cooldown_ms, e)) < 0))
		return r;
	t->cd.failures = (int)fails;
	if (budget && ((r = jp_only(budget, "brain.budget", bkeys, e)) < 0 ||
		       (r = jp_amount(budget, "brain.budget", "credits", JP_REQUIRED, &t->credits, e)) < 0 ||
		       (r = jp_int(budget, "brain.budget", "reserveMaxTokens", 0, 1, 10000000, &t->reserve_max_tokens,
				   e)) < 0))
		return r;
	size_t i;
	json_t *b;
	json_array_foreach(t->brains, i, b) {
		if ((r = parse_brain(b, i, &t->to, NULL, e)) < 0)
			return r;
		const char *id = json_string_value(json_object_get(b, "providerId"));
		for (size_t j = 0; j < i; j++)
			if (!strcmp(json_string_value(json_object_get(json_array_get(t->brains, j), "providerId")), id))
				return cg_fail(e, CG_E_INVALID_ARGUMENT, "brain.brains[%zu].providerId: %s is used twice", i,
					       id);
	}
	return 0;
}

int brain_config_check(json_t *section, cg_err *e)
{
	struct top t;
	return parse_top(section, &t, e);
}

/* ---------------------------------------------------------------- keys */

/* Reads a secret file: regular, owned by us, no group/other bits. out is sodium_malloc'd (caller frees). */
static int read_secret_file(const char *data_dir, const char *path, const char *what, char **out, cg_err *e)
{
	char full[4200];
	if (path[0] == '/')
		snprintf(full, sizeof full, "%s", path);
	else
		snprintf(full, sizeof full, "%s/%s", data_dir, path);
	int fd = open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return cg_fail(e, errno == ENOENT ? CG_E_NOT_FOUND : CG_E_UNAVAILABLE, "%s: cannot open the key file: %s",
			       what, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)) {
		close(fd);
		return cg_fail(e, CG_E_FORBIDDEN, "%s: the key file must be a regular file owned by this user, mode 0600",
			       what);
	}
	char *buf = sodium_malloc(KEY_MAX + 1);
	if (!buf) {
		close(fd);
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	}
	ssize_t n = read(fd, buf, KEY_MAX);
	close(fd);
	if (n < 0)
		n = 0;
	buf[n] = 0;
	buf[strcspn(buf, "\r\n")] = 0;
	if (!buf[0]) {
		sodium_free(buf);
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: the key file is empty", what);
	}
	*out = buf;
	return 0;
}

static int read_secret_env(const char *name, const char *what, char **out, cg_err *e)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: environment variable %s is not set", what, name);
	size_t n = strlen(v);
	if (n > KEY_MAX)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: the key in %s is too long", what, name);
	char *buf = sodium_malloc(n + 1);
	if (!buf)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	memcpy(buf, v, n + 1);
	*out = buf;
	return 0;
}

static void secret_free(char *s)
{
	if (s) {
		sodium_memzero(s, strlen(s));
		sodium_free(s);
	}
}

/* The default gateway key file: created once (like admin.token) so a fresh node is never open. */
static int ensure_key_file(const char *data_dir, const char *name, cg_err *e)
{
	char full[4200];
	snprintf(full, sizeof full, "%s/%s", data_dir, name);
	int fd = open(full, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return errno == EEXIST ? 0 : cg_fail(e, CG_E_UNAVAILABLE, "brain: cannot create %s: %s", name, strerror(errno));
	uint8_t raw[32];
	char key[4 + 64];
	randombytes_buf(raw, sizeof raw);
	memcpy(key, "cgk_", 4);
	base64_encode(key + 4, raw, sizeof raw, true);
	size_t n = strlen(key);
	key[n++] = '\n';
	bool ok = write(fd, key, n) == (ssize_t)n && fsync(fd) == 0;
	close(fd);
	sodium_memzero(raw, sizeof raw);
	sodium_memzero(key, sizeof key);
	if (!ok) {
		unlink(full);
		return cg_fail(e, CG_E_UNAVAILABLE, "brain: cannot write %s", name);
	}
	log_info("brain", "gateway key created", "file=%s", name);
	return 0;
}

/* ---------------------------------------------------------------- status */

static bool brain_best(struct brain *b, struct bg_brain *br, int64_t now, enum bh_state *state, const char **model)
{
	*model = br->default_model;
	if (br->kind == BK_CENTRAL) {
		*state = bh_state(&br->up->h, &b->cd, now);
		return *state != BH_COOLING;
	}
	if (!b->ml)
		return false;
	const struct mlink_res *res;
	size_t n = mlink_resources(b->ml, &res);
	bool found = false;
	*state = BH_COOLING;
	for (size_t i = 0; i < n; i++) {
		if (!res[i].present)
			continue;
		bool listed = json_array_size(br->providers) == 0;
		size_t k;
		json_t *v;
		json_array_foreach(br->providers, k, v) listed |= !strcmp(json_string_value(v), res[i].provider);
		if (!listed)
			continue;
		struct bg_up *u = gw_market_up(b, br, &res[i]);
		if (!u)
			continue;
		enum bh_state s = bh_state(&u->h, &b->cd, now);
		if (s < *state) {
			*state = s;
			if (!br->default_model[0])
				*model = res[i].model;
			found = s != BH_COOLING;
		}
	}
	return found;
}

json_t *brain_summary(struct brain *b)
{
	json_t *out = json_pack("{s:n,s:n,s:n,s:s}", "source", "provider", "model", "availability", "unavailable");
	if (!b || !b->enabled)
		return out;
	int64_t now = clock_mono_ms();
	enum bg_kind order[2] = {BK_MARKET, BK_CENTRAL};
	int ngroups = b->fallback == FB_NONE ? 1 : 2;
	if (b->fallback == FB_MARKET) {
		order[0] = BK_CENTRAL;
		order[1] = BK_MARKET;
	}
	for (int gi = 0; gi < ngroups; gi++)
		for (size_t k = 0; k < b->nbrains; k++) {
			struct bg_brain *br = &b->brains[k];
			enum bh_state st;
			const char *model;
			if (!br->enabled || br->kind != order[gi] || !brain_best(b, br, now, &st, &model))
				continue;
			json_object_set_new(out, "source",
					    json_string(br->kind == BK_MARKET ? "web3/decentralized" : "centralized"));
			json_object_set_new(out, "provider", json_string(br->id));
			json_object_set_new(out, "model", model && *model ? json_string(model) : json_null());
			json_object_set_new(out, "availability",
					    json_string(gi == 0 && st == BH_OK ? "ok" : "degraded"));
			return out;
		}
	return out;
}

json_t *brain_billing(struct brain *b)
{
	json_t *st = NULL;
	cg_err e;
	if (b)
		gw_flush(b);
	if (!b || bl_status(b->d.store, &st, &e) < 0)
		return json_pack("{s:s,s:n}", "status", "unbound", "credits");
	json_t *out = json_pack("{s:O,s:O}", "status", json_object_get(st, "status"), "credits",
				json_object_get(st, "remaining"));
	json_decref(st);
	return out;
}

/* ---------------------------------------------------------------- RPC */

static int m_status(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	struct brain *b = arg;
	gw_flush(b); /* read what finished requests wrote */
	int64_t now = clock_mono_ms();
	json_t *ups = json_array(), *brains = json_array();
	for (size_t k = 0; k < b->nbrains; k++) {
		struct bg_brain *br = &b->brains[k];
		json_array_append_new(brains, json_pack("{s:s,s:s,s:b,s:s,s:O}", "providerId", br->id, "type",
							br->kind == BK_MARKET ? "market" : "centralized", "enabled",
							br->enabled, "defaultModel", br->default_model, "allowlist",
							br->allowlist));
	}
	for (size_t i = 0; i < b->nups; i++) {
		struct bg_up *u = b->ups[i];
		enum bh_state s = bh_state(&u->h, &b->cd, now);
		json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:f,s:s}", "upstream", u->key, "brain",
				      u->brain->id, "source", u->kind == BK_MARKET ? "web3/decentralized" : "centralized",
				      "state", bh_state_name(s), "coolingMs", (json_int_t)bh_cool_left_ms(&u->h, now),
				      "recentFailures", (json_int_t)bh_recent_failures(&u->h, &b->cd, now), "ok",
				      (json_int_t)u->h.ok, "failed", (json_int_t)u->h.failed, "cooldowns",
				      (json_int_t)u->h.cooldowns, "ttftMs", u->h.ttft_ewma_ms, "lastReason", u->h.last_reason);
		if (u->kind == BK_MARKET && u->res)
			json_object_set_new(j, "market",
					    json_pack("{s:s,s:s,s:s,s:s,s:b}", "provider", u->res->provider, "resourceId",
						      u->res->resource_id, "model", u->res->model, "price", u->res->price,
						      "listed", u->res->present));
		json_array_append_new(ups, j);
		if (s != u->last_state)
			gw_publish_state(b, u);
	}
	json_t *budget = NULL;
	if (bl_status(b->d.store, &budget, e) < 0) {
		json_decref(ups);
		json_decref(brains);
		return -CG_E_INTERNAL;
	}
	*result = json_pack("{s:b,s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:I,s:I}", "enabled", b->enabled, "providerId",
			    b->provider_id, "defaultModel", b->default_model, "fallback",
			    b->fallback == FB_CENTRALIZED ? "centralized" : b->fallback == FB_MARKET ? "market" : "none",
			    "summary", brain_summary(b), "brains", brains, "upstreams", ups, "budget", budget, "requests",
			    (json_int_t)b->served, "failovers", (json_int_t)b->failed_over);
	if (b->ml)
		json_object_set_new(*result, "catalogGeneration", json_integer((json_int_t)mlink_generation(b->ml)));
	return 0;
}

static int m_audit(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	struct brain *b = arg;
	gw_flush(b); /* read what finished requests wrote */
	return bl_audit_query(b->d.store, params, result, e);
}

static int m_billing(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	struct brain *b = arg;
	gw_flush(b); /* read what finished requests wrote */
	return bl_status(b->d.store, result, e);
}

/* ---------------------------------------------------------------- setup */

static void on_refresh(evutil_socket_t fd, short what, void *arg)
{
	struct brain *b = arg;
	if (b->ml)
		mlink_refresh(b->ml);
	/* Cooldowns end by time alone: publish the state changes for /metrics. */
	int64_t now = clock_mono_ms();
	for (size_t i = 0; i < b->nups; i++)
		if (bh_state(&b->ups[i]->h, &b->cd, now) != b->ups[i]->last_state)
			gw_publish_state(b, b->ups[i]);
}

int brain_new(const struct brain_deps *deps, json_t *section, struct brain **out, cg_err *e)
{
	struct top t;
	int r = parse_top(section, &t, e);
	if (r < 0)
		return r;
	struct brain *b = calloc(1, sizeof *b);
	if (!b)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	b->d = *deps;
	b->d.consumer = NULL;
	b->enabled = t.enabled;
	snprintf(b->provider_id, sizeof b->provider_id, "%s", t.provider_id);
	snprintf(b->default_model, sizeof b->default_model, "%s", t.default_model);
	b->allowlist = t.allowlist ? json_incref(t.allowlist) : json_array();
	b->fallback = !strcmp(t.fallback, "market") ? FB_MARKET : !strcmp(t.fallback, "none") ? FB_NONE : FB_CENTRALIZED;
	b->to = t.to;
	b->cd = t.cd;
	b->max_attempts = (int)t.max_attempts;
	b->usage_always = !strcmp(t.usage, "always");
	b->budget = t.credits != NULL;
	b->reserve_max_tokens = t.reserve_max_tokens;
	b->refresh_ms = t.refresh_ms;
	char *key = NULL;
	size_t i;
	json_t *o;
	bool any_market = false;
	json_array_foreach(t.brains, i, o) {
		struct bg_brain *br = &b->brains[b->nbrains++];
		if ((r = parse_brain(o, i, &t.to, br, e)) < 0)
			goto fail;
		any_market |= br->kind == BK_MARKET && br->enabled;
		if (br->kind != BK_CENTRAL)
			continue;
		const char *kenv = json_string_value(json_object_get(o, "apiKeyEnv"));
		const char *kfile = json_string_value(json_object_get(o, "apiKeyFile"));
		char what[64];
		snprintf(what, sizeof what, "brain.brains[%zu]", i);
		if (br->enabled && (kenv || kfile)) {
			r = kenv ? read_secret_env(kenv, what, &key, e) : read_secret_file(deps->data_dir, kfile, what, &key, e);
			if (r < 0)
				goto fail;
			redact_register(key);
			size_t n = strlen(key) + 32;
			if (!(br->auth = sodium_malloc(n))) {
				r = cg_fail(e, CG_E_INTERNAL, "out of memory");
				goto fail;
			}
			snprintf(br->auth, n, "Authorization: Bearer %s", key);
			secret_free(key);
			key = NULL;
		}
		struct bg_up *u = calloc(1, sizeof *u);
		if (!u) {
			r = cg_fail(e, CG_E_INTERNAL, "out of memory");
			goto fail;
		}
		snprintf(u->key, sizeof u->key, "central:%s", br->id);
		u->kind = BK_CENTRAL;
		u->brain = br;
		bh_init(&u->h);
		br->up = u;
		b->ups[b->nups++] = u;
	}
	if ((r = bl_open(deps->store, t.credits, e)) < 0)
		goto fail;
	if ((r = hc_new(deps->base, &b->hc, e)) < 0)
		goto fail;
	if (any_market) {
		if ((r = mlink_new(deps->base, b->hc, deps->wallet, deps->consumer, t.to.connect_ms, 3600000, &b->ml, e)) < 0)
			goto fail;
		for (size_t k = 0; k < b->nbrains; k++) {
			json_t *v;
			size_t j;
			json_array_foreach(b->brains[k].providers, j, v) {
				if (!mlink_has_provider(b->ml, json_string_value(v))) {
					r = cg_fail(e, CG_E_INVALID_ARGUMENT,
						    "brain.brains[%zu].providers[%zu]: %s is not in consumer.providers", k, j,
						    json_string_value(v));
					goto fail;
				}
			}
		}
		if (mlink_nproviders(b->ml) == 0)
			log_warn("brain", "market brain without providers (consumer.providers is empty)", NULL);
	}
	if (b->enabled) {
		if (t.key_env) {
			r = read_secret_env(t.key_env, "brain.gatewayKeyEnv", &key, e);
		} else {
			const char *f = t.key_file ? t.key_file : "gateway.key";
			if (!t.key_file && (r = ensure_key_file(deps->data_dir, f, e)) < 0)
				goto fail;
			r = read_secret_file(deps->data_dir, f, "brain.gatewayKeyFile", &key, e);
		}
		if (r < 0)
			goto fail;
		redact_register(key);
		sha256(b->key_hash, key, strlen(key));
		b->have_key = true;
		secret_free(key);
		key = NULL;
		if ((r = gw_register(b, e)) < 0)
			goto fail;
	}
	static const struct {
		const char *name;
		rpc_fn fn;
	} methods[] = {{"web3.brain.status", m_status}, {"web3.brain.audit.query", m_audit}, {"web3.billing.status", m_billing}};
	for (size_t k = 0; k < sizeof methods / sizeof *methods; k++)
		if (deps->rpc && rpc_register(deps->rpc, methods[k].name, methods[k].fn, b) < 0) {
			r = cg_fail(e, CG_E_INTERNAL, "brain: method %s is taken", methods[k].name);
			goto fail;
		}
	if (b->ml) {
		mlink_refresh(b->ml);
		b->timer = event_new(deps->base, -1, EV_PERSIST, on_refresh, b);
		struct timeval tv = {b->refresh_ms / 1000, (b->refresh_ms % 1000) * 1000};
		if (!b->timer || event_add(b->timer, &tv) < 0) {
			r = cg_fail(e, CG_E_INTERNAL, "brain: cannot start its timer");
			goto fail;
		}
	}
	log_info("brain", "started", "enabled=%d brains=%zu fallback=%s budget=%s", b->enabled, b->nbrains, t.fallback,
		 b->budget ? "on" : "off");
	*out = b;
	return 0;
fail:
	secret_free(key);
	brain_free(b);
	return r;
}

void brain_free(struct brain *b)
{
	if (!b)
		return;
	gw_abort_all(b);
	gw_flush(b);
	if (b->flush_ev)
		event_free(b->flush_ev);
	free(b->pend);
	if (b->timer)
		event_free(b->timer);
	mlink_free(b->ml);
	hc_free(b->hc);
	for (size_t k = 0; k < b->nbrains; k++) {
		struct bg_brain *br = &b->brains[k];
		json_decref(br->allowlist);
		json_decref(br->providers);
		free(br->url);
		secret_free(br->auth);
	}
	for (size_t i = 0; i < b->nups; i++)
		free(b->ups[i]);
	json_decref(b->allowlist);
	sodium_memzero(b->key_hash, sizeof b->key_hash);
	free(b);
}
