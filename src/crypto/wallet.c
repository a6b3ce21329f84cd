#include "crypto/wallet.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <secp256k1.h>
#include <secp256k1_recovery.h>
#include <sodium.h>

#include "base/enc.h"
#include "crypto/hash.h"
#include "crypto/keyfile.h"

#define TAG "secp256k1:"

/* One context for the process: creating one costs a table build, and a context is safe to share across
 * threads once created (its only mutation, randomization, happens here under pthread_once). */
static secp256k1_context *g_ctx;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void ctx_init(void)
{
	if (sodium_init() < 0)
		abort();
	g_ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
	if (!g_ctx)
		abort();
	/* Blinding against side channels in signing. */
	uint8_t seed[32];
	randombytes_buf(seed, sizeof seed);
	if (!secp256k1_context_randomize(g_ctx, seed))
		abort(); /* only fails on a broken library */
	sodium_memzero(seed, sizeof seed);
}

static secp256k1_context *ctx(void)
{
	pthread_once(&g_once, ctx_init);
	return g_ctx;
}

static void address_of_pubkey(const secp256k1_pubkey *pk, uint8_t addr[static 20])
{
	uint8_t ser[65], h[32];
	size_t n = sizeof ser;
	(void)secp256k1_ec_pubkey_serialize(ctx(), ser, &n, pk, SECP256K1_EC_UNCOMPRESSED);
	/* Ethereum address: last 20 bytes of keccak256 of the 64-byte X||Y (without the 0x04 tag). */
	keccak256(h, ser + 1, 64);
	memcpy(addr, h + 12, 20);
}

int wallet_from_secret(const uint8_t sk[static 32], struct wallet *out, cg_err *e)
{
	secp256k1_pubkey pk;
	if (!secp256k1_ec_seckey_verify(ctx(), sk) || !secp256k1_ec_pubkey_create(ctx(), &pk, sk))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "wallet key is not a valid secp256k1 secret");
	struct wallet w;
	memcpy(w.sk, sk, 32);
	address_of_pubkey(&pk, w.addr);
	eth_address_checksum(w.address, w.addr);
	*out = w;
	sodium_memzero(&w, sizeof w);
	return 0;
}

void wallet_generate(struct wallet *out)
{
	uint8_t sk[32];
	(void)ctx();
	/* A uniformly random 32-byte string is a valid key except with probability ~2^-128. */
	do
		randombytes_buf(sk, sizeof sk);
	while (wallet_from_secret(sk, out, NULL) != 0);
	sodium_memzero(sk, sizeof sk);
}

void wallet_wipe(struct wallet *w)
{
	sodium_memzero(w, sizeof *w);
}

static int parse_wallet_file(const char *text, size_t n, uint8_t sk[static 32])
{
	if (keyfile_parse_hex32(text, n, TAG, sk) == 0)
		return 0;
	return keyfile_parse_hex32(text, n, "0x", sk);
}

int wallet_load(const char *path, bool create, struct wallet *out, cg_err *e)
{
	static const char what[] = "wallet key file";
	char text[KEYFILE_MAX];
	uint8_t sk[32];
	size_t n = 0;
	int ret = keyfile_read(path, what, text, sizeof text, &n, e);
	if (ret == -CG_E_NOT_FOUND && create) {
		struct wallet w;
		wallet_generate(&w);
		memcpy(text, TAG, sizeof TAG - 1);
		hex_encode(text + sizeof TAG - 1, w.sk, 32);
		n = sizeof TAG - 1 + 64;
		text[n++] = '\n';
		ret = keyfile_create(path, what, text, n, e);
		sodium_memzero(text, sizeof text);
		if (ret == 0) {
			*out = w;
			wallet_wipe(&w);
			return 0;
		}
		wallet_wipe(&w);
		if (ret != -CG_E_CONFLICT)
			return ret;
		ret = keyfile_read(path, what, text, sizeof text, &n, e);
	}
	if (ret != 0)
		return ret;
	ret = parse_wallet_file(text, n, sk);
	sodium_memzero(text, sizeof text);
	if (ret != 0)
		return cg_fail(e, CG_E_INVALID_ARGUMENT,
		               "%s is malformed (want \"" TAG "<64 hex digits>\" or \"0x<64 hex digits>\")", what);
	ret = wallet_from_secret(sk, out, e);
	sodium_memzero(sk, sizeof sk);
	return ret;
}

void eth_address_checksum(char out[static 43], const uint8_t addr[static 20])
{
	char lower[41];
	uint8_t h[32];
	hex_encode(lower, addr, 20);
	keccak256(h, lower, 40);
	out[0] = '0';
	out[1] = 'x';
	for (int i = 0; i < 40; i++) {
		unsigned nib = (h[i / 2] >> (i % 2 ? 0 : 4)) & 0xf;
		char c = lower[i];
		out[2 + i] = (c >= 'a' && nib >= 8) ? (char)(c - 'a' + 'A') : c;
	}
	out[42] = '\0';
}

int eth_address_parse(const char *s, uint8_t addr[static 20], cg_err *e)
{
	if (!s)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "address: missing");
	size_t n = strnlen(s, 43);
	if (n != 42 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "address: must be 0x followed by 40 hex digits");
	uint8_t a[20];
	if (hex_decode(a, 20, s + 2, 40, false) != 0)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "address: must be 0x followed by 40 hex digits");
	bool upper = false, lower = false;
	for (int i = 2; i < 42; i++) {
		upper |= s[i] >= 'A' && s[i] <= 'F';
		lower |= s[i] >= 'a' && s[i] <= 'f';
	}
	/* Mixed case claims an EIP-55 checksum: it must be right (a typo would otherwise send money astray). */
	if (upper && lower) {
		char want[43];
		eth_address_checksum(want, a);
		if (memcmp(want + 2, s + 2, 40) != 0)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "address: bad EIP-55 checksum");
	}
	memcpy(addr, a, 20);
	return 0;
}

void eip191_hash(uint8_t out[static 32], const void *msg, size_t n)
{
	char prefix[64];
	int k = snprintf(prefix, sizeof prefix,
	                 "\x19"
	                 "Ethereum Signed Message:\n%zu",
	                 n);
	struct keccak256_ctx c;
	keccak256_init(&c);
	keccak256_update(&c, prefix, (size_t)k);
	keccak256_update(&c, msg, n);
	keccak256_final(&c, out);
}

int wallet_sign_hash(const struct wallet *w, const uint8_t hash[static 32], uint8_t sig[static 65])
{
	secp256k1_ecdsa_recoverable_signature rs;
	int recid = 0;
	/* NULL nonce function = RFC 6979 deterministic nonces; libsecp256k1 always produces low-s. */
	if (!secp256k1_ecdsa_sign_recoverable(ctx(), &rs, hash, w->sk, NULL, NULL))
		return -1;
	(void)secp256k1_ecdsa_recoverable_signature_serialize_compact(ctx(), sig, &recid, &rs);
	sig[64] = (uint8_t)(27 + recid);
	return 0;
}

int wallet_personal_sign(const struct wallet *w, const void *msg, size_t n, uint8_t sig[static 65])
{
	uint8_t h[32];
	eip191_hash(h, msg, n);
	return wallet_sign_hash(w, h, sig);
}

int eth_recover(const uint8_t hash[static 32], const uint8_t sig[static 65], uint8_t addr[static 20])
{
	int v = sig[64];
	if (v >= 27)
		v -= 27;
	if (v != 0 && v != 1)
		return -1;
	/* Reject high-s: each signature has a malleable twin (n - s); accepting only low-s (EIP-2) makes a
	 * signature a unique identifier, which replay protection relies on. */
	secp256k1_ecdsa_signature plain;
	if (!secp256k1_ecdsa_signature_parse_compact(ctx(), &plain, sig))
		return -1;
	if (secp256k1_ecdsa_signature_normalize(ctx(), NULL, &plain))
		return -1;
	secp256k1_ecdsa_recoverable_signature rs;
	if (!secp256k1_ecdsa_recoverable_signature_parse_compact(ctx(), &rs, sig, v))
		return -1;
	secp256k1_pubkey pk;
	if (!secp256k1_ecdsa_recover(ctx(), &pk, &rs, hash))
		return -1;
	address_of_pubkey(&pk, addr);
	return 0;
}

void eth_sig_to_hex(char out[static 133], const uint8_t sig[static 65])
{
	out[0] = '0';
	out[1] = 'x';
	hex_encode(out + 2, sig, 65);
}

int eth_sig_from_hex(const char *s, uint8_t sig[static 65])
{
	if (!s)
		return -1;
	size_t n = strnlen(s, 133);
	if (n != 132 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
		return -1;
	return hex_decode(sig, 65, s + 2, 130, false);
}

int eip191_recover(const void *msg, size_t n, const char *sig_hex, char out[static 43], cg_err *e)
{
	uint8_t sig[65], h[32], addr[20];
	if (eth_sig_from_hex(sig_hex, sig) != 0)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "signature: must be 0x followed by 130 hex digits");
	eip191_hash(h, msg, n);
	if (eth_recover(h, sig, addr) != 0)
		return cg_fail(e, CG_E_AUTH_REQUIRED, "signature: invalid (no signer can be recovered)");
	eth_address_checksum(out, addr);
	return 0;
}
