#include "crypto/hash.h"

#include <string.h>

#include <nettle/sha3.h>
#include <sodium.h>

#include "base/enc.h"

void sha256(uint8_t out[static 32], const void *p, size_t n)
{
	crypto_hash_sha256(out, p, n);
}

void sha256_tagged_hex(char out[static 72], const void *p, size_t n)
{
	uint8_t h[32];
	sha256(h, p, n);
	memcpy(out, "sha256:", 7);
	hex_encode(out + 7, h, 32);
}

void hmac_sha256(uint8_t out[static 32], const uint8_t *key, size_t keylen, const void *p, size_t n)
{
	crypto_auth_hmacsha256_state st;
	crypto_auth_hmacsha256_init(&st, key, keylen);
	crypto_auth_hmacsha256_update(&st, p, n);
	crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(&st, sizeof st);
}

int hkdf_sha256(uint8_t *out, size_t outlen, const uint8_t *salt, size_t saltlen, const uint8_t *ikm,
		size_t ikmlen, const uint8_t *info, size_t infolen)
{
	if (outlen > 255 * 32)
		return -1;
	static const uint8_t zero[32];
	uint8_t prk[32], t[32];
	if (!salt || saltlen == 0) {
		salt = zero;
		saltlen = 32;
	}
	hmac_sha256(prk, salt, saltlen, ikm, ikmlen);
	size_t done = 0, tlen = 0;
	for (uint8_t i = 1; done < outlen; i++) {
		crypto_auth_hmacsha256_state st;
		crypto_auth_hmacsha256_init(&st, prk, sizeof prk);
		crypto_auth_hmacsha256_update(&st, t, tlen);
		if (infolen)
			crypto_auth_hmacsha256_update(&st, info, infolen);
		crypto_auth_hmacsha256_update(&st, &i, 1);
		crypto_auth_hmacsha256_final(&st, t);
		tlen = 32;
		size_t k = outlen - done < 32 ? outlen - done : 32;
		memcpy(out + done, t, k);
		done += k;
	}
	sodium_memzero(prk, sizeof prk);
	sodium_memzero(t, sizeof t);
	return 0;
}

/* Keccak-256: rate 136 bytes, Ethereum's original padding (0x01 ... 0x80), not NIST SHA3's 0x06. */
static void absorb(struct keccak256_ctx *c)
{
	struct sha3_state s;
	memcpy(s.a, c->a, sizeof c->a);
	for (size_t i = 0; i < 136 / 8; i++) {
		uint64_t w = 0;
		for (int b = 7; b >= 0; b--)
			w = w << 8 | c->buf[i * 8 + (size_t)b];
		s.a[i] ^= w;
	}
	nettle_sha3_permute(&s);
	memcpy(c->a, s.a, sizeof c->a);
	c->n = 0;
}

void keccak256_init(struct keccak256_ctx *c)
{
	memset(c, 0, sizeof *c);
}

void keccak256_update(struct keccak256_ctx *c, const void *p, size_t n)
{
	const uint8_t *q = p;
	while (n) {
		size_t k = 136 - c->n;
		if (k > n)
			k = n;
		memcpy(c->buf + c->n, q, k);
		c->n += k;
		q += k;
		n -= k;
		if (c->n == 136)
			absorb(c);
	}
}

void keccak256_final(struct keccak256_ctx *c, uint8_t out[static 32])
{
	memset(c->buf + c->n, 0, 136 - c->n);
	c->buf[c->n] ^= 0x01;
	c->buf[135] ^= 0x80;
	absorb(c);
	for (int i = 0; i < 4; i++)
		for (int b = 0; b < 8; b++)
			out[i * 8 + b] = (uint8_t)(c->a[i] >> (8 * b));
	memset(c, 0, sizeof *c);
}

void keccak256(uint8_t out[static 32], const void *p, size_t n)
{
	struct keccak256_ctx c;
	keccak256_init(&c);
	keccak256_update(&c, p, n);
	keccak256_final(&c, out);
}
