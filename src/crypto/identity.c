#include "crypto/identity.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "base/enc.h"
#include "crypto/keyfile.h"

#define TAG "ed25519:"

void node_key_from_seed(const uint8_t seed[static 32], struct node_key *out)
{
	/* crypto_sign_seed_keypair only fails on misuse; with valid buffers it always returns 0. */
	(void)crypto_sign_seed_keypair(out->pk, out->sk, seed);
}

void node_key_generate(struct node_key *out)
{
	/* Idempotent and thread-safe; lets library users (tests, tools) skip the explicit call main() makes. */
	if (sodium_init() < 0)
		abort();
	uint8_t seed[32];
	randombytes_buf(seed, sizeof seed);
	node_key_from_seed(seed, out);
	sodium_memzero(seed, sizeof seed);
}

void node_key_sign(const struct node_key *k, const void *msg, size_t n, uint8_t sig[static 64])
{
	(void)crypto_sign_detached(sig, NULL, msg, n, k->sk);
}

bool ed25519_verify(const uint8_t pk[static 32], const void *msg, size_t n, const uint8_t sig[static 64])
{
	return crypto_sign_verify_detached(sig, msg, n, pk) == 0;
}

void node_key_wipe(struct node_key *k)
{
	sodium_memzero(k, sizeof *k);
}

int node_key_load(const char *path, bool create, struct node_key *out, cg_err *e)
{
	static const char what[] = "node key file";
	char text[KEYFILE_MAX];
	uint8_t seed[32];
	size_t n = 0;
	int ret = keyfile_read(path, what, text, sizeof text, &n, e);
	if (ret == -CG_E_NOT_FOUND && create) {
		struct node_key k;
		node_key_generate(&k);
		memcpy(text, TAG, sizeof TAG - 1);
		hex_encode(text + sizeof TAG - 1, k.sk, 32); /* the first 32 bytes of sk are the seed */
		n = sizeof TAG - 1 + 64;
		text[n++] = '\n';
		ret = keyfile_create(path, what, text, n, e);
		sodium_memzero(text, sizeof text);
		if (ret == 0) {
			*out = k;
			node_key_wipe(&k);
			return 0;
		}
		node_key_wipe(&k);
		if (ret != -CG_E_CONFLICT)
			return ret;
		/* Lost a creation race: the winner's key is the node's key. */
		ret = keyfile_read(path, what, text, sizeof text, &n, e);
	}
	if (ret != 0)
		return ret;
	if (keyfile_parse_hex32(text, n, TAG, seed) != 0) {
		sodium_memzero(text, sizeof text);
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s is malformed (want \"" TAG "<64 hex digits>\")", what);
	}
	node_key_from_seed(seed, out);
	sodium_memzero(seed, sizeof seed);
	sodium_memzero(text, sizeof text);
	return 0;
}

void peerid_bytes_from_ed25519(const uint8_t pk[static 32], uint8_t out[static PEERID_ED25519_LEN])
{
	/* identity multihash (code 0x00, length 36) of the protobuf PublicKey {Type: Ed25519 = 1, Data: pk}:
	 * field 1 varint (08 01), field 2 bytes of length 32 (12 20). Keys of <= 42 bytes are inlined. */
	static const uint8_t prefix[6] = {0x00, 0x24, 0x08, 0x01, 0x12, 0x20};
	memcpy(out, prefix, sizeof prefix);
	memcpy(out + sizeof prefix, pk, 32);
}

int peerid_string_from_ed25519(const uint8_t pk[static 32], char *out, size_t cap)
{
	uint8_t b[PEERID_ED25519_LEN];
	peerid_bytes_from_ed25519(pk, b);
	long n = base58_encode(out, cap, b, sizeof b);
	if (n < 0 || (size_t)n >= cap)
		return -1;
	out[n] = '\0';
	return (int)n;
}

int peerid_string_to_ed25519(const char *s, uint8_t pk[static 32])
{
	uint8_t b[PEERID_ED25519_LEN + 8];
	size_t n = strnlen(s, PEERID_STR_MAX + 1);
	if (n > PEERID_STR_MAX)
		return -1;
	long k = base58_decode(b, sizeof b, s, n);
	if (k != PEERID_ED25519_LEN)
		return -1;
	static const uint8_t prefix[6] = {0x00, 0x24, 0x08, 0x01, 0x12, 0x20};
	if (memcmp(b, prefix, sizeof prefix) != 0)
		return -1;
	memcpy(pk, b + sizeof prefix, 32);
	return 0;
}
