/* settle — the settlement backend interface (the "chain" seam) the market drives.
 *
 * The market owns the state machine (Settlement locked -> released | refunded) and calls the backend to move
 * the money. Backends live in src/chain/ (layer 3) and implement this vtable; the market never includes
 * them, so it does not depend upward. A backend call happens inside the market's store transaction: the
 * `local` backend writes its escrow rows into the same store, so money and market state commit or roll back
 * together. A remote backend (EVM) must make each call idempotent by order id, because a rolled-back market
 * transaction may be retried (market.repair.retry).
 *
 * Every function returns 0 or a negative cg_code with e set. Transient failures (node unreachable, RPC
 * timeout) must be E_UNAVAILABLE or E_TIMEOUT: the market turns them into repair jobs; anything else is final.
 * tx_out receives the backend's transaction reference ("local:<hex>" or "0x<hash>"), NUL-terminated. */
#ifndef CG_MARKET_SETTLE_H
#define CG_MARKET_SETTLE_H

#include <stddef.h>

#include <jansson.h>

#include "base/err.h"

#define SETTLE_TX_MAX 80
#define SETTLE_MAX_PAYEES 16

struct settle_payee {
	const char *address; /* actor id / EVM address */
	const char *amount;  /* decimal string of base units */
};

struct settle_backend {
	const char *name; /* "local", "evm", ... */
	/* Moves `amount` from payer into escrow for order_id. Locking an order already locked with the same payer
	 * and amount returns the existing tx reference (never debits twice); with other terms: E_CONFLICT. */
	int (*lock)(struct settle_backend *b, const char *order_id, const char *payer, const char *amount,
		    const char *token_address, char tx_out[static SETTLE_TX_MAX], cg_err *e);
	/* Pays the payees out of the escrow; whatever the payees do not take goes back to the payer. The sum
	 * must not exceed the locked amount (E_INVALID_ARGUMENT). */
	int (*release)(struct settle_backend *b, const char *order_id, const struct settle_payee *payees, size_t n,
		       char tx_out[static SETTLE_TX_MAX], cg_err *e);
	/* Returns the whole escrow to the payer. */
	int (*refund)(struct settle_backend *b, const char *order_id, char tx_out[static SETTLE_TX_MAX], cg_err *e);
	/* {orderId, status: "none"|"locked"|"released"|"refunded", amount?, payer?} (caller frees *out). */
	int (*status)(struct settle_backend *b, const char *order_id, json_t **out, cg_err *e);
	/* {address, balance, escrowed}; NULL when the backend cannot tell. */
	int (*balance)(struct settle_backend *b, const char *address, json_t **out, cg_err *e);
	/* Dev-only minting; NULL for every backend where money is real. */
	int (*faucet)(struct settle_backend *b, const char *address, const char *amount, json_t **out, cg_err *e);
	void (*free)(struct settle_backend *b);
};

#endif
