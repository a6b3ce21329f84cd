/* keysig: identity signatures under every key type js-libp2p creates, checked against vectors that
 * js-libp2p 3.x (@libp2p/crypto 5) produced: for each key, the PublicKey protobuf, its peer id, a message
 * ("noise-libp2p-static-key:" || 32 bytes, as in the noise payload) and js's signature. A bit flipped
 * anywhere must fail; so must keys that are malformed or too short (RSA < 2048 bits), and ECDSA keys.
 * Secp256k1 signatures are accepted in high-S form too (DER ECDSA without a low-S rule). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <secp256k1.h>
#include <sodium.h>

#include "base/buf.h"
#include "base/enc.h"
#include "crypto/hash.h"
#include "p2p/keysig.h"
#include "p2p/peerid.h"

struct vec {
	const char *type, *peer, *pub, *msg, *sig;
};

static const struct vec vecs[] = {
	{"secp256k1", "16Uiu2HAmA49yCyvG6ftYwhMTofU6L94id8zrHEHFbNzG1vdVLRWp",
		"0802122102d95c2ca3850c67d445349eac5635e157edc31f596ea92fc6bf6af67778edb399",
		"6e6f6973652d6c69627032702d7374617469632d6b65793a740ab2378945fef9f3ab3133f13e30f6b90bdd05fb992743"
		"21dc4d1788faa22e",
		"3044022018facb1ae8d4d664f8d5ede2b925eeb41afe89c03636f2459ba0e4194767d3bc02206c67b728dcb80149362b"
		"62a9a8badb87272e58b9a1a01954af3c74bc13a12fd5"},
	{"RSA", "QmbXDhF1rD2qxSK8PvHWgDeK6EcyMyvTd1bLVSMB4gzq7J",
		"080012a60230820122300d06092a864886f70d01010105000382010f003082010a028201010096be3b1e95950857a6ed"
		"a03c7e1369955876bab4bad783db087dfa1f6d73a6b6f9949236e7dd3023d2f512e4489f8e1edc747bd90e33de52a5c7"
		"040d49bdc7bd7d24f6101bc557dbfc8adf59e8945929dfc2215a4a715cb389d505128a44b8aa91d7b972ef585fcf5b68"
		"227392f889e23c8c331cf7642375b1263eca2327a10e2ee520a70a1079149d826e0a48d47b3329852af6f58eba1cd173"
		"53fe952925daf7a6c01d86b5843589e282f23ca6c2301296e23793a4c41c75ea7dd6faad0d9ebc15c6548f9719e2c20f"
		"2328cc48ba6317110f80453943e42e9c3f99a3887ce11938c2c4362948478d8d67845be8c88d36241274be5ade0703b4"
		"c9d0f0ff820b0203010001",
		"6e6f6973652d6c69627032702d7374617469632d6b65793a212836da47db20f2dcfdd6d365ac6a61a548bbca8e87d4e6"
		"8146279615a7c6ab",
		"2616764baae0465e74db5b7b5a2b8ef392bbab5b88b30ce892d5dfbe3951785e8aca8004532de2046e8aebd9466087be"
		"5d6c80de36dcc2e6e4d9811ac7b219f36812464b9ca309168f534165a22259b88a7963e6b33670cda1da6eafb66acc0e"
		"6ae9ea7d33f506881d873bffabb705d828a8b4c9b8034ed29e934922612b89df71be7acc955b1ca1b90cc7914c309fca"
		"0e1e9aa662caae78d0363a0f920475f6dcf115370596a547c9994bc402ffb1bebd0aee9cd6088e8ffc15b4a554dd4f56"
		"5b570a78ca4ae3013a943fb538ba16b108adda826aeb54b6cc9cd0d9359a072c37d863f0596cc5ba4403824f11fd110f"
		"789967d78db3a311596d7ab139c8b9b8"},
	{"Ed25519", "12D3KooWNFbmdCcjG5uzEeU6GnzcPNQNPhNdL5vhKn7JLU1BDqny",
		"08011220b8c32479ad8c4706c741df49c618f78e9668730b5328c95b42bfa961a7aefeea",
		"6e6f6973652d6c69627032702d7374617469632d6b65793a36c174651d090e448dd320c577a985968705f47fe4b80f96"
		"2bc3718688073ed3",
		"48183202c700735532a6b077240d7af94b0e16e456bf3d4436aa4ed730cd904ea98a27e5d1ee4fb246920ff1c591e248"
		"af08417f1c81764012307db78c63610c"},
};

static size_t unhex(const char *h, uint8_t *out, size_t cap)
{
	size_t n = strlen(h) / 2;
	assert_true(n <= cap);
	assert_int_equal(hex_decode(out, n, h, strlen(h), false), 0);
	return n;
}

static void t_js_vectors(void **st)
{
	for (size_t v = 0; v < sizeof vecs / sizeof vecs[0]; v++) {
		uint8_t pub[1200], msg[128], sig[600];
		size_t pn = unhex(vecs[v].pub, pub, sizeof pub), mn = unhex(vecs[v].msg, msg, sizeof msg),
		       sn = unhex(vecs[v].sig, sig, sizeof sig);
		struct peerid_pubkey pk;
		cg_err e = {0};
		assert_int_equal(peerid_pubkey_decode(pub, pn, &pk, &e), 0);
		/* the peer id js printed is the one this key hashes to */
		peerid id, want;
		assert_int_equal(peerid_from_pubkey(&id, pub, pn, &e), 0);
		assert_int_equal(peerid_parse(&want, vecs[v].peer, strlen(vecs[v].peer), &e), 0);
		assert_true(peerid_equal(&id, &want));
		assert_int_equal(keysig_verify(&pk, msg, mn, sig, sn, &e), 0);
		/* any change breaks it */
		msg[mn - 1] ^= 1;
		assert_int_equal(keysig_verify(&pk, msg, mn, sig, sn, &e), -CG_E_FORBIDDEN);
		msg[mn - 1] ^= 1;
		sig[sn / 2] ^= 0x10;
		assert_true(keysig_verify(&pk, msg, mn, sig, sn, &e) < 0);
		sig[sn / 2] ^= 0x10;
		assert_true(keysig_verify(&pk, msg, mn, sig, sn - 1, &e) < 0);
		assert_true(keysig_verify(&pk, msg, mn, sig, 0, &e) < 0);
	}
}

/* Secp256k1: a signature made here, also in its high-S twin (s -> n - s), both verify; a wrong key does not. */
static void t_secp256k1_high_s(void **st)
{
	secp256k1_context *ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
	uint8_t sk[32], msg[56], digest[32], der[80], comp[33];
	do
		randombytes_buf(sk, sizeof sk);
	while (!secp256k1_ec_seckey_verify(ctx, sk));
	randombytes_buf(msg, sizeof msg);
	sha256(digest, msg, sizeof msg);
	secp256k1_pubkey pub;
	assert_true(secp256k1_ec_pubkey_create(ctx, &pub, sk));
	size_t cl = sizeof comp;
	assert_true(secp256k1_ec_pubkey_serialize(ctx, comp, &cl, &pub, SECP256K1_EC_COMPRESSED));
	secp256k1_ecdsa_signature s;
	assert_true(secp256k1_ecdsa_sign(ctx, &s, digest, sk, NULL, NULL));
	struct peerid_pubkey pk = {PEERID_KEY_SECP256K1, comp, sizeof comp};
	size_t dl = sizeof der;
	assert_true(secp256k1_ecdsa_signature_serialize_der(ctx, der, &dl, &s));
	cg_err e = {0};
	assert_int_equal(keysig_verify(&pk, msg, sizeof msg, der, dl, &e), 0);
	/* high S: s' = n - s, from the compact form */
	static const uint8_t n[32] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
				      0xff, 0xff, 0xff, 0xff, 0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48,
				      0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41};
	uint8_t c[64];
	assert_true(secp256k1_ecdsa_signature_serialize_compact(ctx, c, &s));
	int borrow = 0;
	for (int i = 31; i >= 0; i--) {
		int d = n[i] - c[32 + i] - borrow;
		borrow = d < 0;
		c[32 + i] = (uint8_t)(d + (borrow ? 256 : 0));
	}
	secp256k1_ecdsa_signature hs;
	assert_true(secp256k1_ecdsa_signature_parse_compact(ctx, &hs, c));
	dl = sizeof der;
	assert_true(secp256k1_ecdsa_signature_serialize_der(ctx, der, &dl, &hs));
	assert_int_equal(keysig_verify(&pk, msg, sizeof msg, der, dl, &e), 0);
	/* another key */
	comp[5] ^= 1;
	int rc = keysig_verify(&pk, msg, sizeof msg, der, dl, &e);
	assert_true(rc == -CG_E_FORBIDDEN || rc == -CG_E_INVALID_ARGUMENT);
	secp256k1_context_destroy(ctx);
}

/* Malformed and unsupported keys are refused as such (not as bad signatures). */
static void t_bad_keys(void **st)
{
	uint8_t sig[256] = {0}, msg[8] = {0};
	cg_err e = {0};
	struct peerid_pubkey pk = {PEERID_KEY_RSA, (const uint8_t *)"\x30\x03\x02\x01\x01", 5};
	assert_int_equal(keysig_verify(&pk, msg, sizeof msg, sig, sizeof sig, &e), -CG_E_INVALID_ARGUMENT);
	/* a well-formed 1024-bit RSA key: too short */
	uint8_t der[200];
	size_t n = 0;
	static const uint8_t head[] = {0x30, 0x81, 0x9f, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d,
				       0x01, 0x01, 0x01, 0x05, 0x00, 0x03, 0x81, 0x8d, 0x00, 0x30, 0x81, 0x89,
				       0x02, 0x81, 0x81, 0x00};
	memcpy(der, head, sizeof head);
	n = sizeof head;
	memset(der + n, 0xc5, 128); /* an odd modulus with the top bit set */
	n += 128;
	der[n++] = 0x02, der[n++] = 0x03, der[n++] = 0x01, der[n++] = 0x00, der[n++] = 0x01;
	pk.data = der;
	pk.len = n;
	assert_int_equal(keysig_verify(&pk, msg, sizeof msg, sig, 128, &e), -CG_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "2048"));
	uint8_t p33[33] = {0x02};
	pk = (struct peerid_pubkey){PEERID_KEY_SECP256K1, p33, sizeof p33}; /* x = 0: not on the curve */
	assert_int_equal(keysig_verify(&pk, msg, sizeof msg, sig, 70, &e), -CG_E_INVALID_ARGUMENT);
	pk = (struct peerid_pubkey){PEERID_KEY_ECDSA, p33, sizeof p33};
	assert_int_equal(keysig_verify(&pk, msg, sizeof msg, sig, 64, &e), -CG_E_INVALID_ARGUMENT);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_js_vectors),
		cmocka_unit_test(t_secp256k1_high_s),
		cmocka_unit_test(t_bad_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
