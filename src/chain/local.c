/* The local settlement backend (see chain/local.h). */
#include "chain/local.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/amount.h"
#include "base/clock.h"
#include "crypto/hash.h"
#include "store/store.h"

struct local {
	struct settle_backend b; /* first: the market holds a pointer to it */
	struct store *st;
	uint64_t nonce;
};

static const struct store_migration migrations[] = {
	{1, "CREATE TABLE chain_local_accounts(address TEXT PRIMARY KEY, balance TEXT NOT NULL);"
	    "CREATE TABLE chain_local_escrow(orderId TEXT PRIMARY KEY, payer TEXT NOT NULL, amount TEXT NOT NULL,"
	    " token TEXT, status TEXT NOT NULL, lockTx TEXT NOT NULL, closeTx TEXT, updatedAt INTEGER NOT NULL);"
	    "CREATE TABLE chain_local_txs(seq INTEGER PRIMARY KEY AUTOINCREMENT, tx TEXT NOT NULL UNIQUE,"
	    " kind TEXT NOT NULL, orderId TEXT, data TEXT NOT NULL, ts INTEGER NOT NULL);"},
};

static int balance_of(struct local *l, const char *addr, char out[static U256_DEC_MAX], cg_err *e)
{
	sqlite3_stmt *s = store_prep(l->st, "SELECT balance FROM chain_local_accounts WHERE address=?", e);
	if (!s)
		return -CG_E_INTERNAL;
	sqlite3_bind_text(s, 1, addr, -1, SQLITE_TRANSIENT);
	snprintf(out, U256_DEC_MAX, "0");
	if (sqlite3_step(s) == SQLITE_ROW)
		snprintf(out, U256_DEC_MAX, "%s", (const char *)sqlite3_column_text(s, 0));
	sqlite3_reset(s);
	return 0;
}

static int set_balance(struct local *l, const char *addr, const char *bal, cg_err *e)
{
	sqlite3_stmt *s = store_prep(l->st,
				     "INSERT INTO chain_local_accounts(address,balance) VALUES(?,?)"
				     " ON CONFLICT(address) DO UPDATE SET balance=excluded.balance",
				     e);
	if (!s)
		return -CG_E_INTERNAL;
	sqlite3_bind_text(s, 1, addr, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 2, bal, -1, SQLITE_TRANSIENT);
	int r = sqlite3_step(s) == SQLITE_DONE ? 0 : store_fail(l->st, e, "local balance");
	sqlite3_reset(s);
	return r;
}

/* delta > 0 credits, < 0 debits (E_QUOTA_EXCEEDED when the balance is short). */
static int move(struct local *l, const char *addr, const char *amount, int sign, cg_err *e)
{
	char bal[U256_DEC_MAX], nb[U256_DEC_MAX];
	int r = balance_of(l, addr, bal, e);
	if (r < 0)
		return r;
	if (sign > 0) {
		if (amount_add(bal, amount, nb) < 0)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "balance would overflow uint256");
	} else if (amount_sub(bal, amount, nb) < 0) {
		return cg_fail(e, CG_E_QUOTA_EXCEEDED, "insufficient balance: %s has %s, needs %s", addr, bal, amount);
	}
	return set_balance(l, addr, nb, e);
}

/* Records a transaction and returns its reference "local:<hex>". */
static int record(struct local *l, const char *kind, const char *order_id, json_t *data, char tx[static SETTLE_TX_MAX],
		  cg_err *e)
{
	int64_t now = clock_now_ms();
	json_object_set_new(data, "kind", json_string(kind));
	json_object_set_new(data, "ts", json_integer(now));
	json_object_set_new(data, "nonce", json_integer((json_int_t)(++l->nonce & 0x1fffffffffffffULL)));
	char *s = json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(data);
	if (!s)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	char h[72];
	sha256_tagged_hex(h, s, strlen(s));
	snprintf(tx, SETTLE_TX_MAX, "local:%s", h + 7);
	sqlite3_stmt *st = store_prep(l->st, "INSERT INTO chain_local_txs(tx,kind,orderId,data,ts) VALUES(?,?,?,?,?)", e);
	if (!st) {
		free(s);
		return -CG_E_INTERNAL;
	}
	sqlite3_bind_text(st, 1, tx, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
	if (order_id)
		sqlite3_bind_text(st, 3, order_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 4, s, -1, free);
	sqlite3_bind_int64(st, 5, now);
	int r = sqlite3_step(st) == SQLITE_DONE ? 0 : store_fail(l->st, e, "local tx");
	sqlite3_reset(st);
	return r;
}

struct escrow {
	char payer[160], amount[U256_DEC_MAX], status[24], lock_tx[SETTLE_TX_MAX];
};

static int escrow_get(struct local *l, const char *order_id, struct escrow *x, bool *found, cg_err *e)
{
	sqlite3_stmt *s = store_prep(l->st, "SELECT payer, amount, status, lockTx FROM chain_local_escrow WHERE orderId=?",
				     e);
	if (!s)
		return -CG_E_INTERNAL;
	sqlite3_bind_text(s, 1, order_id, -1, SQLITE_TRANSIENT);
	*found = false;
	if (sqlite3_step(s) == SQLITE_ROW) {
		*found = true;
		snprintf(x->payer, sizeof x->payer, "%s", (const char *)sqlite3_column_text(s, 0));
		snprintf(x->amount, sizeof x->amount, "%s", (const char *)sqlite3_column_text(s, 1));
		snprintf(x->status, sizeof x->status, "%s", (const char *)sqlite3_column_text(s, 2));
		snprintf(x->lock_tx, sizeof x->lock_tx, "%s", (const char *)sqlite3_column_text(s, 3));
	}
	sqlite3_reset(s);
	return 0;
}

static int escrow_close(struct local *l, const char *order_id, const char *status, const char *tx, cg_err *e)
{
	sqlite3_stmt *s = store_prep(l->st,
				     "UPDATE chain_local_escrow SET status=?, closeTx=?, updatedAt=? WHERE orderId=?"
				     " AND status='locked'",
				     e);
	if (!s)
		return -CG_E_INTERNAL;
	sqlite3_bind_text(s, 1, status, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, tx, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 3, clock_now_ms());
	sqlite3_bind_text(s, 4, order_id, -1, SQLITE_TRANSIENT);
	int r = sqlite3_step(s) == SQLITE_DONE ? 0 : store_fail(l->st, e, "local escrow");
	if (r == 0 && sqlite3_changes(store_db(l->st)) != 1)
		r = cg_fail(e, CG_E_CONFLICT, "escrow is not locked");
	sqlite3_reset(s);
	return r;
}

/* Every operation is a savepoint of its own: a failure leaves no half-moved money even when the caller
 * would commit the rest of its transaction. */
#define WITH_TX(l, e, body)                                                                                     \
	do {                                                                                                    \
		int r_ = store_tx_begin((l)->st, (e));                                                          \
		if (r_ < 0)                                                                                     \
			return r_;                                                                              \
		r_ = (body);                                                                                    \
		if (r_ < 0) {                                                                                   \
			store_tx_rollback((l)->st);                                                             \
			return r_;                                                                              \
		}                                                                                               \
		return store_tx_commit((l)->st, (e));                                                           \
	} while (0)

static int do_lock(struct local *l, const char *order_id, const char *payer, const char *amount, const char *token,
		   char tx[static SETTLE_TX_MAX], cg_err *e)
{
	struct escrow x;
	bool found;
	int r = escrow_get(l, order_id, &x, &found, e);
	if (r < 0)
		return r;
	if (found) {
		if (strcmp(x.status, "locked") == 0 && strcmp(x.payer, payer) == 0 && strcmp(x.amount, amount) == 0) {
			snprintf(tx, SETTLE_TX_MAX, "%s", x.lock_tx);
			return 0; /* idempotent: never debits twice */
		}
		return cg_fail(e, CG_E_CONFLICT, "escrow for this order already exists (%s)", x.status);
	}
	if ((r = move(l, payer, amount, -1, e)) < 0 ||
	    (r = record(l, "lock", order_id, json_pack("{s:s,s:s,s:s}", "orderId", order_id, "payer", payer, "amount", amount),
			tx, e)) < 0)
		return r;
	sqlite3_stmt *s = store_prep(l->st,
				     "INSERT INTO chain_local_escrow(orderId,payer,amount,token,status,lockTx,updatedAt)"
				     " VALUES(?,?,?,?,'locked',?,?)",
				     e);
	if (!s)
		return -CG_E_INTERNAL;
	sqlite3_bind_text(s, 1, order_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 2, payer, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 3, amount, -1, SQLITE_TRANSIENT);
	if (token)
		sqlite3_bind_text(s, 4, token, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 5, tx, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 6, clock_now_ms());
	r = sqlite3_step(s) == SQLITE_DONE ? 0 : store_fail(l->st, e, "local escrow");
	sqlite3_reset(s);
	return r;
}

static int l_lock(struct settle_backend *b, const char *order_id, const char *payer, const char *amount,
		  const char *token, char tx_out[static SETTLE_TX_MAX], cg_err *e)
{
	struct local *l = (struct local *)b;
	if (!amount_valid(amount))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "amount: not a decimal amount");
	WITH_TX(l, e, do_lock(l, order_id, payer, amount, token, tx_out, e));
}

static int do_release(struct local *l, const char *order_id, const struct settle_payee *p, size_t n,
		      char tx[static SETTLE_TX_MAX], cg_err *e)
{
	struct escrow x;
	bool found;
	int r = escrow_get(l, order_id, &x, &found, e);
	if (r < 0)
		return r;
	if (!found || strcmp(x.status, "locked") != 0)
		return cg_fail(e, CG_E_CONFLICT, "no locked escrow for this order");
	char left[U256_DEC_MAX];
	snprintf(left, sizeof left, "%s", x.amount);
	json_t *pay = json_array();
	for (size_t i = 0; i < n; i++) {
		if (!amount_valid(p[i].amount) || amount_sub(left, p[i].amount, left) < 0) {
			json_decref(pay);
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "payees exceed the escrowed amount %s", x.amount);
		}
		if ((r = move(l, p[i].address, p[i].amount, +1, e)) < 0) {
			json_decref(pay);
			return r;
		}
		json_array_append_new(pay, json_pack("{s:s,s:s}", "address", p[i].address, "amount", p[i].amount));
	}
	/* What the payees do not take goes back to the payer (partial release). */
	if (strcmp(left, "0") != 0 && (r = move(l, x.payer, left, +1, e)) < 0) {
		json_decref(pay);
		return r;
	}
	if ((r = record(l, "release", order_id,
			json_pack("{s:s,s:o,s:s}", "orderId", order_id, "payees", pay, "returned", left), tx, e)) < 0)
		return r;
	return escrow_close(l, order_id, "released", tx, e);
}

static int l_release(struct settle_backend *b, const char *order_id, const struct settle_payee *payees, size_t n,
		     char tx_out[static SETTLE_TX_MAX], cg_err *e)
{
	struct local *l = (struct local *)b;
	if (n > SETTLE_MAX_PAYEES)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "too many payees");
	WITH_TX(l, e, do_release(l, order_id, payees, n, tx_out, e));
}

static int do_refund(struct local *l, const char *order_id, char tx[static SETTLE_TX_MAX], cg_err *e)
{
	struct escrow x;
	bool found;
	int r = escrow_get(l, order_id, &x, &found, e);
	if (r < 0)
		return r;
	if (!found || strcmp(x.status, "locked") != 0)
		return cg_fail(e, CG_E_CONFLICT, "no locked escrow for this order");
	if ((r = move(l, x.payer, x.amount, +1, e)) < 0 ||
	    (r = record(l, "refund", order_id, json_pack("{s:s,s:s,s:s}", "orderId", order_id, "payer", x.payer, "amount",
							 x.amount),
			tx, e)) < 0)
		return r;
	return escrow_close(l, order_id, "refunded", tx, e);
}

static int l_refund(struct settle_backend *b, const char *order_id, char tx_out[static SETTLE_TX_MAX], cg_err *e)
{
	struct local *l = (struct local *)b;
	WITH_TX(l, e, do_refund(l, order_id, tx_out, e));
}

static int l_status(struct settle_backend *b, const char *order_id, json_t **out, cg_err *e)
{
	struct local *l = (struct local *)b;
	struct escrow x;
	bool found;
	int r = escrow_get(l, order_id, &x, &found, e);
	if (r < 0)
		return r;
	if (!found)
		*out = json_pack("{s:s,s:s}", "orderId", order_id, "status", "none");
	else
		*out = json_pack("{s:s,s:s,s:s,s:s,s:s}", "orderId", order_id, "status", x.status, "amount", x.amount,
				 "payer", x.payer, "lockTxHash", x.lock_tx);
	return 0;
}

static int l_balance(struct settle_backend *b, const char *addr, json_t **out, cg_err *e)
{
	struct local *l = (struct local *)b;
	char bal[U256_DEC_MAX], esc[U256_DEC_MAX] = "0";
	int r = balance_of(l, addr, bal, e);
	if (r < 0)
		return r;
	sqlite3_stmt *s = store_prep(l->st, "SELECT amount FROM chain_local_escrow WHERE payer=? AND status='locked'", e);
	if (!s)
		return -CG_E_INTERNAL;
	sqlite3_bind_text(s, 1, addr, -1, SQLITE_TRANSIENT);
	while (sqlite3_step(s) == SQLITE_ROW)
		if (amount_add(esc, (const char *)sqlite3_column_text(s, 0), esc) < 0)
			break;
	sqlite3_reset(s);
	*out = json_pack("{s:s,s:s,s:s}", "address", addr, "balance", bal, "escrowed", esc);
	return 0;
}

static int do_faucet(struct local *l, const char *addr, const char *amount, char tx[static SETTLE_TX_MAX], cg_err *e)
{
	int r = move(l, addr, amount, +1, e);
	if (r < 0)
		return r;
	return record(l, "faucet", NULL, json_pack("{s:s,s:s}", "address", addr, "amount", amount), tx, e);
}

static int l_faucet(struct settle_backend *b, const char *addr, const char *amount, json_t **out, cg_err *e)
{
	struct local *l = (struct local *)b;
	char tx[SETTLE_TX_MAX];
	if (!amount_valid(amount))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "amount: not a decimal amount");
	int r = store_tx_begin(l->st, e);
	if (r < 0)
		return r;
	if ((r = do_faucet(l, addr, amount, tx, e)) < 0) {
		store_tx_rollback(l->st);
		return r;
	}
	if ((r = store_tx_commit(l->st, e)) < 0)
		return r;
	return l_balance(b, addr, out, e) < 0 ? -CG_E_INTERNAL
					       : (json_object_set_new(*out, "txHash", json_string(tx)), 0);
}

static void l_free(struct settle_backend *b)
{
	free(b);
}

int chain_local_new(struct store *st, struct settle_backend **out, cg_err *e)
{
	int r = store_migrate(st, "chain.local", migrations, sizeof migrations / sizeof migrations[0], e);
	if (r < 0)
		return r;
	struct local *l = calloc(1, sizeof *l);
	if (!l)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	l->st = st;
	l->b.name = "local";
	l->b.lock = l_lock;
	l->b.release = l_release;
	l->b.refund = l_refund;
	l->b.status = l_status;
	l->b.balance = l_balance;
	l->b.faucet = l_faucet;
	l->b.free = l_free;
	*out = &l->b;
	return 0;
}
