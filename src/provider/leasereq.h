/* leasereq — the signed request a consumer node sends to a provider node to obtain a lease
 * (POST /web3/market/lease), and its pure parser/verifier.
 *
 * Wire form: {"request": R, "signature": "0x<130 hex>"} where
 *   R = {type:"clawgrid-lease-request", v:1, provider, consumer, resourceId, ttlMs, maxCost?, nonce, timestamp}
 * and signature = EIP-191 personal_sign by the consumer's wallet over the RFC 8785 canonical bytes of R.
 * provider and consumer are Ethereum addresses; nonce is 32..64 lower-case hex digits; timestamp is Unix ms.
 * The provider accepts R only when the signer is R.consumer, R.provider is itself, the timestamp is within the
 * allowed skew, and (its job, outside this pure module) the (consumer, nonce) pair was never seen. */
#ifndef CG_PROVIDER_LEASEREQ_H
#define CG_PROVIDER_LEASEREQ_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/err.h"

struct wallet;

#define LEASEREQ_BODY_MAX 4096
#define LEASEREQ_SKEW_MS (5 * 60 * 1000)

struct leasereq {
	char provider[43], consumer[43]; /* EIP-55 */
	char resource_id[64];
	char max_cost[80]; /* "" when absent */
	char nonce[65];
	int64_t ttl_ms, timestamp;
};

/* Builds a signed request body (caller frees *body). max_cost may be NULL. */
int leasereq_build(const struct wallet *w, const char *provider, const char *resource_id, int64_t ttl_ms,
		   const char *max_cost, int64_t now_ms, json_t **body, cg_err *e);
/* Parses and verifies a body of len bytes (at most LEASEREQ_BODY_MAX). self: this provider's address.
 * E_INVALID_ARGUMENT for malformed input, E_AUTH_REQUIRED for a bad signature or signer mismatch,
 * E_EXPIRED for a timestamp outside now ± skew_ms, E_FORBIDDEN when addressed to another provider. */
int leasereq_verify(const char *body, size_t len, const char *self, int64_t now_ms, int64_t skew_ms,
		    struct leasereq *out, cg_err *e) __attribute__((warn_unused_result));

#endif
