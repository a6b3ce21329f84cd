/* hash — SHA-256, HMAC-SHA256, HKDF-SHA256 (RFC 5869; libsodium 1.0.18 has none) and Ethereum's
 * Keccak-256 (legacy 0x01 padding, built on nettle's Keccak-f[1600] permutation). */
#ifndef CG_CRYPTO_HASH_H
#define CG_CRYPTO_HASH_H

#include <stddef.h>
#include <stdint.h>

void sha256(uint8_t out[static 32], const void *p, size_t n);
void hmac_sha256(uint8_t out[static 32], const uint8_t *key, size_t keylen, const void *p, size_t n);
/* RFC 5869 extract+expand. outlen <= 255*32. Returns 0, or -1 for a bad length. */
int hkdf_sha256(uint8_t *out, size_t outlen, const uint8_t *salt, size_t saltlen, const uint8_t *ikm,
		size_t ikmlen, const uint8_t *info, size_t infolen);

struct keccak256_ctx {
	uint64_t a[25];
	uint8_t buf[136];
	size_t n;
};
void keccak256_init(struct keccak256_ctx *c);
void keccak256_update(struct keccak256_ctx *c, const void *p, size_t n);
void keccak256_final(struct keccak256_ctx *c, uint8_t out[static 32]);
void keccak256(uint8_t out[static 32], const void *p, size_t n);

/* "sha256:<hex>" of the bytes into out (>= 72 bytes). */
void sha256_tagged_hex(char out[static 72], const void *p, size_t n);

#endif
