/* enc — text encodings of bytes: hex, base64 (standard and URL-safe), base58btc, base32 (RFC 4648, lower
 * case, no padding; the multibase 'b' alphabet). Pure functions, no allocation unless the name says _alloc.
 * Decoders reject any invalid character and return -1; they never read past the given length. */
#ifndef CG_BASE_ENC_H
#define CG_BASE_ENC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* hex: out must hold 2*n+1 bytes. Lower case. */
void hex_encode(char *out, const uint8_t *in, size_t n);
/* Decodes exactly 2*outlen hex digits (either case, optional "0x" prefix when allow_0x). */
int hex_decode(uint8_t *out, size_t outlen, const char *in, size_t inlen, bool allow_0x);

/* base64: url=true uses -_ and no padding; url=false uses +/ with padding.
 * base64_encoded_len gives the length without NUL. */
size_t base64_encoded_len(size_t n, bool url);
void base64_encode(char *out, const uint8_t *in, size_t n, bool url);
/* Accepts padded or unpadded input of the chosen alphabet. Returns decoded length or -1. out holds
 * base64_decoded_max(inlen) bytes. */
size_t base64_decoded_max(size_t inlen);
long base64_decode(uint8_t *out, const char *in, size_t inlen, bool url);

/* base58btc (Bitcoin alphabet). encode: returns length written (without NUL) or -1 if cap too small. */
long base58_encode(char *out, size_t cap, const uint8_t *in, size_t n);
long base58_decode(uint8_t *out, size_t cap, const char *in, size_t inlen);

/* base32 lower, no padding. encode returns length or -1. */
long base32_encode(char *out, size_t cap, const uint8_t *in, size_t n);
long base32_decode(uint8_t *out, size_t cap, const char *in, size_t inlen);

#endif
