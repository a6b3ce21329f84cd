/* Market benchmarks, each against an anchor measured in the same run:
 *   1. ledger appends per second (validated, signed, hash-chained, audited, one durable transaction each)
 *      versus raw SQLite inserts of rows of the same size, one transaction each, same store and pragmas
 *      (WAL, synchronous=NORMAL): the ratio is the price of the ledger's guarantees;
 *   2. lease-token verification (market_lease_authorize: hash, constant-time compare, lease/resource/offer
 *      checks) per call, versus the bare sha256 + compare it is built on.
 * Usage: bench_market [APPENDS] [VERIFIES] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "base/clock.h"
#include "base/log.h"
#include "chain/local.h"
#include "crypto/hash.h"
#include "crypto/identity.h"
#include "market/market.h"
#include "store/store.h"

static void die(const char *what, const cg_err *e)
{
	fprintf(stderr, "bench_market: %s: %s\n", what, e ? e->msg : "");
	exit(1);
}

int main(int argc, char **argv)
{
	int appends = argc > 1 ? atoi(argv[1]) : 3000;
	int verifies = argc > 2 ? atoi(argv[2]) : 20000;
	if (appends < 10 || verifies < 10 || sodium_init() < 0)
		die("usage: bench_market [APPENDS>=10] [VERIFIES>=10]", NULL);
	log_set_level(LOG_OFF);
	char dir[64] = "/tmp/cgbench-XXXXXX", path[128], rawp[128];
	if (!mkdtemp(dir))
		die("mkdtemp", NULL);
	snprintf(path, sizeof path, "%s/market.db", dir);
	snprintf(rawp, sizeof rawp, "%s/raw.db", dir);
	cg_err e;
	struct store *st, *raw;
	struct settle_backend *b;
	struct market *m;
	struct node_key key;
	node_key_generate(&key);
	if (store_open(path, 0, &st, &e) < 0 || chain_local_new(st, &b, &e) < 0 ||
	    market_new(st, &key, b, NULL, NULL, &m, &e) < 0)
		die("open", &e);
	json_t *res;
	json_t *p = json_loads("{\"actorId\":\"provider\",\"resource\":{\"kind\":\"model\",\"label\":\"bench\",\"price\":"
			       "{\"unit\":\"token\",\"amount\":\"2\",\"currency\":\"USDC\"},\"offer\":{\"assetId\":\"m\","
			       "\"assetType\":\"api\",\"currency\":\"USDC\",\"usageScope\":{},\"deliveryType\":\"api\"}}}",
			       0, NULL);
	if (market_call(m, "market.resource.publish", p, &res, &e) < 0)
		die("publish", &e);
	char rid[64], lid[64], token[80];
	snprintf(rid, sizeof rid, "%s", json_string_value(json_object_get(res, "resourceId")));
	json_decref(res);
	json_decref(p);
	p = json_pack("{s:s,s:s,s:s,s:i}", "actorId", "consumer", "resourceId", rid, "consumerActorId", "consumer", "ttlMs",
		      7 * 24 * 3600 * 1000);
	if (market_call(m, "market.lease.issue", p, &res, &e) < 0)
		die("issue", &e);
	snprintf(lid, sizeof lid, "%s", json_string_value(json_object_get(res, "leaseId")));
	snprintf(token, sizeof token, "%s", json_string_value(json_object_get(res, "accessToken")));
	json_decref(res);
	json_decref(p);

	/* 1. ledger appends */
	json_t *ent = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "leaseId", lid, "resourceId", rid, "kind",
				"model", "providerActorId", "provider", "consumerActorId", "consumer", "unit", "token",
				"quantity", "128", "cost", "256", "currency", "USDC", "sessionId", "bench-session");
	int64_t t0 = clock_mono_us();
	for (int i = 0; i < appends; i++) {
		if (market_ledger_append(m, "provider", ent, NULL, &res, &e) < 0)
			die("append", &e);
		json_decref(res);
	}
	int64_t t_ledger = clock_mono_us() - t0;
	json_decref(ent);
	/* the average stored row, to size the anchor's rows */
	sqlite3_stmt *s;
	sqlite3_prepare_v2(store_db(st), "SELECT avg(length(data)) FROM mkt_ledger", -1, &s, NULL);
	sqlite3_step(s);
	int rowlen = (int)sqlite3_column_double(s, 0);
	sqlite3_finalize(s);
	if (market_call(m, "market.ledger.verify", NULL, &res, &e) < 0 || !json_is_true(json_object_get(res, "ok")))
		die("verify after the run", &e);
	json_decref(res);

	/* anchor: raw inserts of rows of the same size, same store code (pragmas), one transaction each */
	if (store_open(rawp, 0, &raw, &e) < 0 ||
	    store_exec(raw, "CREATE TABLE raw(id INTEGER PRIMARY KEY, ts INTEGER, data TEXT NOT NULL)", &e) < 0)
		die("raw open", &e);
	char *row = malloc((size_t)rowlen + 1);
	memset(row, 'x', (size_t)rowlen);
	row[rowlen] = 0;
	t0 = clock_mono_us();
	for (int i = 0; i < appends; i++) {
		if (store_tx_begin(raw, &e) < 0)
			die("raw begin", &e);
		sqlite3_stmt *ins = store_prep(raw, "INSERT INTO raw(ts,data) VALUES(?,?)", &e);
		sqlite3_bind_int64(ins, 1, i);
		sqlite3_bind_text(ins, 2, row, rowlen, SQLITE_STATIC);
		if (sqlite3_step(ins) != SQLITE_DONE)
			die("raw insert", NULL);
		sqlite3_reset(ins);
		if (store_tx_commit(raw, &e) < 0)
			die("raw commit", &e);
	}
	int64_t t_raw = clock_mono_us() - t0;
	free(row);

	/* 2. token verification */
	t0 = clock_mono_us();
	for (int i = 0; i < verifies; i++)
		if (market_lease_authorize(m, lid, token, NULL, &e) < 0)
			die("authorize", &e);
	int64_t t_auth = clock_mono_us() - t0;
	char want[72], got[72];
	sha256_tagged_hex(want, token, strlen(token));
	volatile int sink = 0;
	t0 = clock_mono_us();
	for (int i = 0; i < verifies; i++) {
		sha256_tagged_hex(got, token, strlen(token));
		sink += sodium_memcmp(got, want, 71);
	}
	int64_t t_hash = clock_mono_us() - t0;
	(void)sink;

	double lps = appends / (t_ledger / 1e6), rps = appends / (t_raw / 1e6);
	printf("market.ledger_append: %d appends, %.0f/s (signed, hash-chained, audited, one durable tx each)\n", appends,
	       lps);
	printf("market.raw_insert:    %d inserts of %d-byte rows, %.0f/s (same pragmas, one tx each)\n", appends, rowlen,
	       rps);
	printf("market.ledger_vs_raw: ratio %.2fx slower (%.1f us vs %.1f us per write)\n", rps / lps,
	       (double)t_ledger / appends, (double)t_raw / appends);
	printf("market.token_verify:  %.2f us/call (market_lease_authorize, %d calls)\n", (double)t_auth / verifies,
	       verifies);
	printf("market.token_hash:    %.2f us/call (sha256 + constant-time compare alone), ratio %.1fx\n",
	       (double)t_hash / verifies, (double)t_auth / (double)(t_hash ? t_hash : 1));
	market_free(m);
	store_close(st);
	store_close(raw);
	const char *files[] = {path, rawp};
	for (int i = 0; i < 2; i++) {
		char f[160];
		const char *sfx[] = {"", "-wal", "-shm"};
		for (int k = 0; k < 3; k++) {
			snprintf(f, sizeof f, "%s%s", files[i], sfx[k]);
			unlink(f);
		}
	}
	rmdir(dir);
	return 0;
}
