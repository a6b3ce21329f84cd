/* Gate-ATOMIC-01, crash half: writer processes run the market on one store file concurrently (two writers,
 * one SQLite file, WAL), each reporting what was acknowledged over a pipe; they are SIGKILLed at random
 * moments, many times. After every kill the store must hold no half-written order/lease, the ledger chains
 * must verify, every acknowledged ledger entry must be there exactly once, no settlement locked twice, and
 * money must balance (minted = balances + escrow).
 * Rounds: 6 by default (a few seconds); CLAWGRID_SOAK=N runs N rounds (the soak variant outside make test). */
#include "fixture.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include "base/amount.h"
#include "base/buf.h"

static uint8_t seed[32];
static char dbpath[200], rid[64];

static int open_market(struct store **st, struct node_key *k, struct market **m)
{
	cg_err e;
	struct settle_backend *b;
	node_key_from_seed(seed, k);
	if (store_open(dbpath, 0, st, &e) < 0 || chain_local_new(*st, &b, &e) < 0 ||
	    market_new(*st, k, b, "node-self", NULL, m, &e) < 0) {
		fprintf(stderr, "open: %s\n", e.msg);
		return -1;
	}
	return 0;
}

static void ack(int fd, const char *fmt, const char *a, const char *b)
{
	char line[256];
	int n = snprintf(line, sizeof line, fmt, a, b);
	if (write(fd, line, (size_t)n) != n)
		_exit(3);
}

/* A writer: leases, ledger appends (idempotency keys), queued settlements and flushes, forever. */
static void writer(int id, int round, int fd)
{
	struct store *st;
	struct node_key k;
	struct market *m;
	if (open_market(&st, &k, &m) < 0)
		_exit(2);
	for (int i = 0;; i++) {
		cg_err e;
		json_t *res = NULL;
		json_t *p = json_pack("{s:s,s:s,s:s,s:i,s:s}", "actorId", CONS, "resourceId", rid, "consumerActorId", CONS,
				      "ttlMs", 600000, "maxCost", "1000");
		int r = market_call(m, "market.lease.issue", p, &res, &e);
		json_decref(p);
		if (r < 0)
			continue; /* busy: try again */
		ack(fd, "L %s %s\n", S(res, "leaseId"), S(res, "orderId"));
		char lid[64], oid[64];
		snprintf(lid, sizeof lid, "%s", S(res, "leaseId"));
		snprintf(oid, sizeof oid, "%s", S(res, "orderId"));
		json_decref(res);
		for (int j = 0; j < 3; j++) {
			char key[64];
			snprintf(key, sizeof key, "w%d-r%d-i%d-j%d", id, round, i, j);
			json_t *ent = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "leaseId", lid, "resourceId", rid,
						"kind", "model", "providerActorId", PROV, "consumerActorId", CONS, "unit",
						"token", "quantity", "3", "cost", "6", "currency", "USDC");
			/* Retried until acknowledged: the key keeps a retry from booking twice. */
			while (market_ledger_append(m, PROV, ent, key, &res, &e) < 0)
				;
			ack(fd, "E %s %s\n", S(res, "ledgerId"), key);
			json_decref(res);
			json_decref(ent);
		}
		p = json_pack("{s:s,s:s,s:s}", "orderId", oid, "payer", CONS, "amount", "7");
		if (market_call(m, "market.settlement.queue", p, &res, &e) == 0)
			json_decref(res);
		json_decref(p);
		if (market_flush_pending(m, 50, &res, &e) == 0)
			json_decref(res);
		if (i % 4 == 3) {
			p = json_pack("{s:s,s:s}", "actorId", CONS, "leaseId", lid);
			if (market_call(m, "market.lease.revoke", p, &res, &e) == 0)
				json_decref(res);
			json_decref(p);
		}
	}
}

static int64_t count(struct store *st, const char *sql)
{
	sqlite3_stmt *s = NULL;
	assert_int_equal(sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	int64_t n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return n;
}

static void check_store(json_t *acked_entries)
{
	struct store *st;
	struct node_key k;
	struct market *m;
	cg_err e;
	json_t *res;
	assert_int_equal(open_market(&st, &k, &m), 0);
	assert_int_equal(market_call(m, "market.ledger.verify", NULL, &res, &e), 0);
	if (!json_is_true(json_object_get(res, "ok"))) {
		char *d = json_dumps(res, 0);
		fail_msg("ledger does not verify after a crash: %s", d);
	}
	json_decref(res);
	/* Every acknowledged entry is there exactly once. */
	const char *key;
	json_t *v;
	json_object_foreach(acked_entries, key, v)
	{
		sqlite3_stmt *s = NULL;
		assert_int_equal(sqlite3_prepare_v2(store_db(st), "SELECT count(*), max(idemKey) FROM mkt_ledger WHERE id=?",
						    -1, &s, NULL),
				 SQLITE_OK);
		sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
		assert_int_equal(sqlite3_step(s), SQLITE_ROW);
		if (sqlite3_column_int(s, 0) != 1)
			fail_msg("acknowledged ledger entry %s lost", key);
		assert_string_equal((const char *)sqlite3_column_text(s, 1), json_string_value(v));
		sqlite3_finalize(s);
	}
	assert_int_equal(count(st, "SELECT count(*) FROM (SELECT idemKey FROM mkt_ledger GROUP BY providerActorId, "
				   "idemKey HAVING count(*) > 1)"),
			 0);
	/* No half-written lease: every lease-issued order has its lease, consent and delivery, and back. */
	assert_int_equal(count(st, "SELECT count(*) FROM mkt_orders o WHERE json_extract(o.data,'$.leaseId') IS NOT NULL"
				   " AND NOT EXISTS(SELECT 1 FROM mkt_leases l WHERE l.orderId=o.id)"),
			 0);
	assert_int_equal(count(st, "SELECT count(*) FROM mkt_leases l WHERE NOT EXISTS(SELECT 1 FROM mkt_orders o"
				   " WHERE o.id=l.orderId) OR NOT EXISTS(SELECT 1 FROM mkt_consents c WHERE"
				   " c.id=json_extract(l.data,'$.consentId')) OR NOT EXISTS(SELECT 1 FROM mkt_deliveries d"
				   " WHERE d.id=json_extract(l.data,'$.deliveryId'))"),
			 0);
	/* A revoked lease always has its delivery revoked with it. */
	assert_int_equal(count(st, "SELECT count(*) FROM mkt_leases l JOIN mkt_deliveries d ON"
				   " d.id=json_extract(l.data,'$.deliveryId') WHERE l.status='lease_revoked' AND"
				   " d.status='delivery_ready'"),
			 0);
	/* Settlements: one per order, matched 1:1 by a locked escrow of the same amount; queue entries for
	 * locked orders may remain only if the flush did not get to them. */
	assert_int_equal(count(st, "SELECT count(*) FROM mkt_settlements s LEFT JOIN chain_local_escrow x ON"
				   " x.orderId=s.orderId WHERE x.orderId IS NULL OR x.amount != json_extract(s.data,'$.amount')"
				   " OR x.status != 'locked'"),
			 0);
	assert_int_equal(count(st, "SELECT count(*) FROM chain_local_escrow x WHERE NOT EXISTS(SELECT 1 FROM"
				   " mkt_settlements s WHERE s.orderId=x.orderId)"),
			 0);
	assert_int_equal(count(st, "SELECT count(*) FROM mkt_pending p JOIN mkt_settlements s ON s.orderId=p.id"
				   " WHERE p.nextAttemptAt > 0 AND json_extract(p.data,'$.attempts') > 0"),
			 0);
	/* Money balances: minted (faucet txs) = balances + escrowed. */
	char minted[U256_DEC_MAX] = "0", held[U256_DEC_MAX] = "0";
	sqlite3_stmt *s;
	assert_int_equal(sqlite3_prepare_v2(store_db(st),
					    "SELECT json_extract(data,'$.amount') FROM chain_local_txs WHERE kind='faucet'",
					    -1, &s, NULL),
			 SQLITE_OK);
	while (sqlite3_step(s) == SQLITE_ROW)
		assert_int_equal(amount_add(minted, (const char *)sqlite3_column_text(s, 0), minted), 0);
	sqlite3_finalize(s);
	assert_int_equal(sqlite3_prepare_v2(store_db(st),
					    "SELECT balance FROM chain_local_accounts UNION ALL SELECT amount FROM "
					    "chain_local_escrow WHERE status='locked'",
					    -1, &s, NULL),
			 SQLITE_OK);
	while (sqlite3_step(s) == SQLITE_ROW)
		assert_int_equal(amount_add(held, (const char *)sqlite3_column_text(s, 0), held), 0);
	sqlite3_finalize(s);
	assert_string_equal(minted, held);
	market_free(m);
	store_close(st);
}

static void read_acks(int fd, buf *b)
{
	char tmp[4096];
	ssize_t n;
	while ((n = read(fd, tmp, sizeof tmp)) > 0)
		assert_int_equal(buf_append(b, tmp, (size_t)n), 0);
}

static void t_crash(void **s)
{
	(void)s;
	char dir[64] = "/tmp/cgcrash-XXXXXX";
	assert_non_null(mkdtemp(dir));
	snprintf(dbpath, sizeof dbpath, "%s/store.db", dir);
	randombytes_buf(seed, sizeof seed);
	log_set_level(LOG_OFF);
	/* Setup: one resource, a funded consumer. */
	{
		struct store *st;
		struct node_key k;
		struct market *m;
		cg_err e;
		json_t *res;
		assert_int_equal(open_market(&st, &k, &m), 0);
		json_t *rp = res_params(PROV, NULL, "crash", "2");
		assert_int_equal(market_call(m, "market.resource.publish", rp, &res, &e), 0);
		json_decref(rp);
		snprintf(rid, sizeof rid, "%s", S(res, "resourceId"));
		json_decref(res);
		json_t *p = json_pack("{s:s,s:s}", "address", CONS, "amount", "1000000000");
		assert_int_equal(market_call(m, "market.settlement.faucet", p, &res, &e), 0);
		json_decref(p);
		json_decref(res);
		market_free(m);
		store_close(st);
	}
	int rounds = 6;
	const char *soak = getenv("CLAWGRID_SOAK");
	if (soak && atoi(soak) > 0)
		rounds = atoi(soak);
	json_t *acked = json_object();
	int64_t total_acks = 0;
	for (int round = 0; round < rounds; round++) {
		pid_t pid[2];
		int fds[2][2];
		for (int w = 0; w < 2; w++) {
			assert_int_equal(pipe2(fds[w], O_CLOEXEC), 0);
			pid[w] = fork();
			assert_true(pid[w] >= 0);
			if (pid[w] == 0) {
				close(fds[w][0]);
				writer(w, round, fds[w][1]);
				_exit(0);
			}
			close(fds[w][1]);
		}
		/* Let them get going, then kill at a random moment. */
		usleep(40000 + randombytes_uniform(160000));
		for (int w = 0; w < 2; w++)
			kill(pid[w], SIGKILL);
		for (int w = 0; w < 2; w++) {
			int status;
			assert_int_equal(waitpid(pid[w], &status, 0), pid[w]);
			assert_true(WIFSIGNALED(status));
			buf b;
			buf_init(&b, 16u << 20);
			read_acks(fds[w][0], &b);
			close(fds[w][0]);
			/* Only whole lines count: a line cut by the kill was never acknowledged. */
			char *line = buf_cstr(&b), *nl;
			while ((nl = strchr(line, '\n'))) {
				*nl = 0;
				char kind, a[80], k2[80];
				if (sscanf(line, "%c %79s %79s", &kind, a, k2) == 3 && kind == 'E') {
					json_object_set_new(acked, a, json_string(k2));
					total_acks++;
				}
				line = nl + 1;
			}
			buf_done(&b);
		}
		check_store(acked);
	}
	assert_true(total_acks > 0);
	printf("crash rounds: %d, acknowledged ledger entries: %lld\n", rounds, (long long)total_acks);
	json_decref(acked);
	char p[300];
	const char *sfx[] = {"", "-wal", "-shm"};
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "%s%s", dbpath, sfx[i]);
		unlink(p);
	}
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(t_crash)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
