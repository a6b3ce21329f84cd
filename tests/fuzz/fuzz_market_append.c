/* libFuzzer target: market_ledger_append (what the provider routes call after serving a request) with a
 * fuzzed entry and idempotency key, against a live lease. Valid entries append; every appended chain must
 * still verify. */
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
#include "store/store.h"

static struct store *st;
static struct market *m;
static struct node_key key;
static char rid[64], lid[64];
static unsigned runs;

static void init(void)
{
	cg_err e;
	struct settle_backend *b;
	uint8_t seed[32] = {2};
	if (sodium_init() < 0)
		abort();
	log_set_level(LOG_OFF);
	node_key_from_seed(seed, &key);
	if (store_open(":memory:", 0, &st, &e) < 0 || chain_local_new(st, &b, &e) < 0 ||
	    market_new(st, &key, b, NULL, NULL, &m, &e) < 0)
		abort();
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
	p = json_pack("{s:s,s:s,s:s,s:i}", "actorId", "c", "resourceId", rid, "consumerActorId", "c", "ttlMs",
		      7 * 24 * 3600 * 1000);
	if (market_call(m, "market.lease.issue", p, &res, &e) < 0)
		abort();
	snprintf(lid, sizeof lid, "%s", json_string_value(json_object_get(res, "leaseId")));
	json_decref(res);
	json_decref(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!m)
		init();
	if (size > 8192)
		return 0;
	json_t *ent = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (!ent)
		return 0;
	if (json_is_object(ent)) {
		/* Point the entry at the live lease unless the input names other ids. */
		if (json_is_string(json_object_get(ent, "leaseId")) &&
		    strcmp(json_string_value(json_object_get(ent, "leaseId")), "live") == 0)
			json_object_set_new(ent, "leaseId", json_string(lid));
		if (json_is_string(json_object_get(ent, "resourceId")) &&
		    strcmp(json_string_value(json_object_get(ent, "resourceId")), "live") == 0)
			json_object_set_new(ent, "resourceId", json_string(rid));
	}
	const char *idem = json_string_value(json_object_get(ent, "sessionId"));
	json_t *res = NULL;
	cg_err e;
	if (market_ledger_append(m, "p", ent, idem, &res, &e) == 0) {
		if (!json_is_string(json_object_get(res, "entryHash")))
			abort();
		json_decref(res);
		if (++runs % 64 == 0) {
			json_t *v = NULL;
			if (market_call(m, "market.ledger.verify", NULL, &v, &e) < 0 || !json_is_true(json_object_get(v, "ok")))
				abort();
			json_decref(v);
		}
	}
	json_decref(ent);
	return 0;
}
