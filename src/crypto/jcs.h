/* jcs — RFC 8785 JSON Canonicalization Scheme over jansson values; the form everything hashed or signed
 * as JSON goes through (ledger entries, receipts, lease requests, audit events).
 *
 * - Object keys sorted by their UTF-16 code units; strings escaped exactly as RFC 8785 (only " \ and
 *   control characters; \b \f \n \r \t short forms; other controls as \u00xx lower case); everything
 *   else literal UTF-8.
 * - Numbers as ECMAScript Number.prototype.toString (shortest round-trip form, exact, also for reals).
 *   An integer beyond 2^53 is accepted only when ECMAScript prints its double as that same integer
 *   (10^18 yes; 2^53+1 and 2^60 no: they would read as ...992 and ...847000). Others are rejected with
 *   E_INVALID_ARGUMENT rather than hashed as a different number (amounts are decimal strings anyway).
 * - Strings must be valid UTF-8 (no surrogates); nesting is limited to JCS_MAX_DEPTH levels; the output to
 *   JCS_MAX_OUT bytes. */
#ifndef CG_CRYPTO_JCS_H
#define CG_CRYPTO_JCS_H

#include <stddef.h>

#include <jansson.h>

#include "base/err.h"

#define JCS_MAX_DEPTH 128
#define JCS_MAX_OUT   (64u << 20)

/* Canonical form as a NUL-terminated string (caller frees), or NULL with *e set. */
char *jcs_canonicalize(const json_t *v, cg_err *e);
/* Same, also returning the length. */
char *jcs_canonicalize_n(const json_t *v, size_t *len, cg_err *e);
/* "sha256:<64 hex>" of the canonical form. */
int jcs_sha256(const json_t *v, char out[static 72], cg_err *e);
/* ECMAScript Number::toString of a finite double into out (>= 32 bytes). Returns the length, or -1 for
 * NaN/Infinity. */
int jcs_format_double(double d, char out[static 32]);

#endif
