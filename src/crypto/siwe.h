/* siwe — EIP-4361 Sign-In with Ethereum: a strict parser and formatter for the message text, and
 * verification of a personal_sign (EIP-191) signature over it.
 *
 * The parser accepts exactly the EIP's grammar (LF line ends, fields in order, optional fields absent or
 * present once) and every field is bounded by the sizes below; anything else is E_INVALID_ARGUMENT with a
 * message naming the field. For an accepted message, siwe_format reproduces the input byte for byte. */
#ifndef CG_CRYPTO_SIWE_H
#define CG_CRYPTO_SIWE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define SIWE_MAX_MSG       8192
#define SIWE_MAX_RESOURCES 16

struct siwe_msg {
	char scheme[32];     /* optional "https" of "https://domain wants you…"; "" when absent */
	char domain[256];    /* RFC 3986 authority */
	char address[43];    /* EIP-55 */
	char statement[512]; /* optional; "" when absent */
	char uri[512];
	char version[4]; /* "1" */
	uint64_t chain_id;
	char nonce[96];           /* >= 8 alphanumerics */
	char issued_at[40];       /* RFC 3339 */
	char expiration_time[40]; /* optional */
	char not_before[40];      /* optional */
	char request_id[128];     /* optional (presence tracked: may be empty) */
	bool has_request_id;
	bool has_resources; /* a "Resources:" line, possibly with no items; implied by n_resources > 0 */
	size_t n_resources;
	char resources[SIWE_MAX_RESOURCES][512];
};

int siwe_parse(const char *text, size_t n, struct siwe_msg *out, cg_err *e);
/* Writes the message text (NUL-terminated) into out. Returns its length, or a negative code when a field is
 * invalid or the text does not fit in cap. */
int siwe_format(const struct siwe_msg *m, char *out, size_t cap, cg_err *e);
/* What the verifier expects; NULL/0 members are not checked. */
struct siwe_expect {
	const char *domain;
	const char *nonce;
	const char *uri;
	uint64_t chain_id;
	int64_t now_ms;  /* checked against expiration/not-before when > 0 */
	int64_t skew_ms; /* clock tolerance for those checks */
};
/* Parses, checks the expectations and the signature (0x-hex, 65 bytes) against the message's address.
 * Errors: E_INVALID_ARGUMENT (malformed message or signature), E_AUTH_REQUIRED (signature from another
 * address, or not valid yet), E_FORBIDDEN (domain, uri or chain id mismatch, nonce mismatch), E_EXPIRED.
 * out (optional) receives the parsed message on success. */
int siwe_verify(const char *text, size_t n, const char *sig_hex, const struct siwe_expect *x, struct siwe_msg *out,
                cg_err *e);
/* RFC 3339 date-time -> milliseconds since the epoch (UTC). 0 or -1. */
int rfc3339_parse_ms(const char *s, size_t n, int64_t *ms);
/* Milliseconds since the epoch -> "YYYY-MM-DDTHH:MM:SS.mmmZ" (out >= 32 bytes). */
void rfc3339_format_ms(int64_t ms, char out[static 32]);

#endif
