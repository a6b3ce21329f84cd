/* amount — uint256 arithmetic for money. Amounts are decimal strings of integer base units everywhere
 * (jansson cannot hold uint256); this module parses, checks and computes them exactly.
 *
 * u256 values are plain structs (four little-endian 64-bit limbs), no allocation anywhere. Functions that
 * can fail return 0 or -1 and leave *r unchanged on failure. */
#ifndef CG_BASE_AMOUNT_H
#define CG_BASE_AMOUNT_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
	uint64_t w[4]; /* w[0] is the least significant limb */
} u256;

/* The longest decimal form of a u256 is 78 digits; 80 leaves room for the NUL. */
#define U256_DEC_MAX 80

/* Strict money form: /^[0-9]+$/, no leading zeros except "0" itself, value < 2^256. -1 otherwise. */
int u256_parse(const char *s, u256 *out);
/* Same rules over a counted string (no NUL needed). */
int u256_parse_n(const char *s, size_t n, u256 *out);
/* Lenient decimal (leading zeros allowed, 1..100 digits) for foreign formats such as EIP-712 values. */
int u256_parse_dec_lenient(const char *s, size_t n, u256 *out);
/* "0x" followed by 1..64 hex digits (either case). -1 otherwise. */
int u256_parse_hex(const char *s, size_t n, u256 *out);
void u256_format(const u256 *a, char out[static 80]);

int u256_add(u256 *r, const u256 *a, const u256 *b); /* -1 on overflow */
int u256_sub(u256 *r, const u256 *a, const u256 *b); /* -1 on underflow */
int u256_mul(u256 *r, const u256 *a, const u256 *b); /* -1 on overflow */
/* q = a / b, r = a % b (either may be NULL). -1 when b == 0. */
int u256_divmod(u256 *q, u256 *r, const u256 *a, const u256 *b);
int u256_cmp(const u256 *a, const u256 *b); /* -1, 0, 1 */
int u256_is_zero(const u256 *a);
void u256_from_u64(u256 *r, uint64_t v);
/* Returns 0 and sets *v when a fits in 64 bits, -1 otherwise. */
int u256_to_u64(const u256 *a, uint64_t *v);
/* Big-endian 32 bytes (ABI / EIP-712 word), and back. */
void u256_to_be32(const u256 *a, uint8_t out[static 32]);
void u256_from_be32(u256 *r, const uint8_t in[static 32]);
/* Number of significant bits (0 for zero). */
unsigned u256_bits(const u256 *a);

/* String conveniences over strict amounts: 0, or -1 for invalid input, overflow or underflow
 * (out is written only on success). */
int amount_add(const char *a, const char *b, char out[static 80]);
int amount_sub(const char *a, const char *b, char out[static 80]);
int amount_mul(const char *a, const char *b, char out[static 80]);
/* Compares two valid amounts (-1, 0, 1). An invalid operand is a programmer error: it sorts as if it were
 * below every valid amount, so callers must validate first (json_is_amount_str / u256_parse). */
int amount_cmp(const char *a, const char *b);
/* 1 when s is a strict amount, 0 otherwise. */
int amount_valid(const char *s);

#endif
