/* receipt — a provider's signed statement of what one metered response cost, handed to the consumer with
 * the response (header X-OpenClaw-Receipt for unary calls, a final "receipt" SSE event for streams).
 *
 *   {v:1, type:"clawgrid-receipt", providerPeerId, providerActorId, consumerActorId, leaseId, resourceId, kind,
 *    ledgerId, entryHash, unit, quantity, cost, currency, requestId?, issuedAt, signature}
 *
 * signature = hex(Ed25519(node key, "clawgrid-receipt/v1\n" + jcs_sha256(receipt without signature))). The
 * key is the one inside providerPeerId (an Ed25519 libp2p peer id), so a receipt verifies on its own; the
 * consumer also checks that the peer id is the provider it called. Field checks are strict: any unknown
 * field, wrong type or malformed amount fails verification. */
#ifndef CG_PROVIDER_RECEIPT_H
#define CG_PROVIDER_RECEIPT_H

#include <stddef.h>

#include <jansson.h>

#include "base/err.h"

struct node_key;

#define RECEIPT_HEADER "X-OpenClaw-Receipt"
#define RECEIPT_MAX 4096 /* bytes of the canonical form */

/* Adds providerPeerId (from the key), v, type and signature to r (every other field set by the caller). */
int receipt_sign(const struct node_key *k, json_t *r, cg_err *e);
/* 0 when r is well formed and its signature verifies; expect_peer (may be NULL) must equal providerPeerId.
 * E_INVALID_ARGUMENT for a malformed receipt, E_FORBIDDEN for a bad signature or another signer. */
int receipt_verify(const json_t *r, const char *expect_peer, cg_err *e) __attribute__((warn_unused_result));
/* Header form: base64url (no padding) of the canonical JSON (caller frees), and back (bounded). */
char *receipt_to_header(const json_t *r, cg_err *e);
int receipt_from_header(const char *s, size_t len, json_t **out, cg_err *e);

#endif
