/* chain/local — the embedded settlement backend: escrow accounting in the node's own store.
 *
 * Balances per address (decimal strings of base units) and one escrow row per order, in tables of the node's
 * SQLite store, written inside the market's transaction (nested savepoints), so money and market state
 * commit together. No chain is involved; tx references are "local:<sha256 hex>" of the operation. The dev
 * faucet mints into a balance. */
#ifndef CG_CHAIN_LOCAL_H
#define CG_CHAIN_LOCAL_H

#include "base/err.h"
#include "market/settle.h"

struct store;

/* Runs the "chain.local" migrations on st (borrowed; must outlive the backend). Caller frees with b->free. */
int chain_local_new(struct store *st, struct settle_backend **out, cg_err *e);

#endif
