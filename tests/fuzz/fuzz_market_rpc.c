/* libFuzzer target: the parameter validation of every market.* / web3.resources.* method. The first byte
 * picks the method, the rest is the JSON params; the market runs over an in-memory store with a published
 * resource and a live lease, so ids in the input can hit real rows ("res_fuzz", "lea_fuzz" are replaced by
 * them). Any input must give a result or a clean E_* error, never a crash or a leak. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "base/log.h"
#include "chain/local.h"
#include "crypto/identity.h"
#include "market/market.h"
#include "rpc/rpc.h"
#include "store/store.h"

static struct store *st;
static struct market *m;
static struct node_key key;
static char *names[128];
static size_t nnames;
static char rid[64], lid[64], oid[64];

static void add_name(void *arg, const char *name)
{
	(void)arg;
	if (nnames < 128)
		names[nnames++] = strdup(name);
}

static void init(void)
{
	cg_err e;
	struct settle_backend *b;
	uint8_t seed[32] = {1};
	if (sodium_init() < 0)
		abort();
	log_set_level(LOG_OFF);
	node_key_from_seed(seed, &key);
	if (store_open(":memory:", 0, &st, &e) < 0 || chain_local_new(st, &b, &e) < 0 ||
	    market_new(st, &key, b, "0x52908400098527886E0F7030069857D2E4169EE7", NULL, &m, &e) < 0)
		abort();
	struct rpc_registry *reg = rpc_registry_new();
	market_register_rpc(m, reg);
	rpc_each(reg, add_name, NULL);
	rpc_registry_free(reg);
	json_t *res = NULL;
	json_t *p = json_loads("{\"actorId\":\"p\",\"resource\":{\"kind\":\"model\",\"label\":\"l\",\"price\":{\"unit\":"
			       "\"token\",\"amount\":\"2\",\"currency\":\"USDC\"},\"offer\":{\"assetId\":\"a\",\"assetType\":"
			       "\"api\",\"currency\":\"USDC\",\"usageScope\":{},\"deliveryType\":\"api\"}}}",
			       0, NULL);
	if (market_call(m, "market.resource.publish", p, &res, &e) < 0)
		abort();
	snprintf(rid, sizeof rid, "%s", json_string_value(json_object_get(res, "resourceId")));
	json_decref(res);
	json_decref(p);
	p = json_pack("{s:s,s:s,s:s,s:i}", "actorId", "c", "resourceId", rid, "consumerActorId", "c", "ttlMs", 600000);
	if (market_call(m, "market.lease.issue", p, &res, &e) < 0)
		abort();
	snprintf(lid, sizeof lid, "%s", json_string_value(json_object_get(res, "leaseId")));
	snprintf(oid, sizeof oid, "%s", json_string_value(json_object_get(res, "orderId")));
	json_decref(res);
	json_decref(p);
}

/* Replaces placeholder ids by the live ones, recursively. */
static void patch(json_t *v, int depth)
{
	if (depth > 8)
		return;
	if (json_is_object(v)) {
		const char *k;
		json_t *x;
		void *tmp;
		json_object_foreach_safe(v, tmp, k, x)
		{
			const char *s = json_string_value(x);
			if (s && strcmp(s, "res_fuzz") == 0)
				json_object_set_new(v, k, json_string(rid));
			else if (s && strcmp(s, "lea_fuzz") == 0)
				json_object_set_new(v, k, json_string(lid));
			else if (s && strcmp(s, "ord_fuzz") == 0)
				json_object_set_new(v, k, json_string(oid));
			else
				patch(x, depth + 1);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!m)
		init();
	if (size < 1 || size > 8192)
		return 0;
	const char *method = names[data[0] % nnames];
	json_error_t je;
	json_t *p = json_loadb((const char *)data + 1, size - 1, JSON_REJECT_DUPLICATES, &je);
	if (!p)
		return 0;
	patch(p, 0);
	json_t *res = NULL;
	cg_err e;
	cg_err_clear(&e);
	int r = market_call(m, method, json_is_object(p) ? p : NULL, &res, &e);
	if (r == 0 && !res)
		abort(); /* success always carries a result */
	if (r < 0 && (e.code <= 0 || e.code >= CG_CODE_COUNT || !e.msg[0]))
		abort(); /* every failure names its code and reason */
	json_decref(res);
	json_decref(p);
	return 0;
}
