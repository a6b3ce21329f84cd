/* keysig — identity signatures under Ed25519, Secp256k1 and RSA keys (see keysig.h). */
#include "p2p/keysig.h"

#include <string.h>

#include <gmp.h>
#include <nettle/asn1.h>
#include <nettle/bignum.h>
#include <nettle/rsa.h>
#include <secp256k1.h>
#include <sodium.h>

#include "crypto/hash.h"

static int verify_ed25519(const struct peerid_pubkey *pk, const uint8_t *msg, size_t n, const uint8_t *sig,
			  size_t siglen, cg_err *e)
{
	if (pk->len != crypto_sign_PUBLICKEYBYTES)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "bad Ed25519 public key");
	if (siglen != crypto_sign_BYTES || crypto_sign_verify_detached(sig, msg, n, pk->data) != 0)
		return cg_fail(e, CG_E_FORBIDDEN, "bad identity signature");
	return 0;
}

static int verify_secp256k1(const struct peerid_pubkey *pk, const uint8_t *msg, size_t n, const uint8_t *sig,
			    size_t siglen, cg_err *e)
{
	/* Verification needs no secret and no randomization: the library's static context does. */
	const secp256k1_context *ctx = secp256k1_context_static;
	secp256k1_pubkey pub;
	secp256k1_ecdsa_signature s;
	if (!secp256k1_ec_pubkey_parse(ctx, &pub, pk->data, pk->len))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "bad Secp256k1 public key");
	if (!secp256k1_ecdsa_signature_parse_der(ctx, &s, sig, siglen))
		return cg_fail(e, CG_E_FORBIDDEN, "bad identity signature");
	/* Signers are not required to produce low-S signatures (the key types predate that rule); the
	 * library verifies only normalized ones. */
	secp256k1_ecdsa_signature_normalize(ctx, &s, &s);
	uint8_t digest[32];
	sha256(digest, msg, n);
	if (!secp256k1_ecdsa_verify(ctx, &s, digest, &pub))
		return cg_fail(e, CG_E_FORBIDDEN, "bad identity signature");
	return 0;
}

/* SubjectPublicKeyInfo { AlgorithmIdentifier { rsaEncryption, NULL }, BIT STRING { RSAPublicKey { n, e } } }
 * into pub (initialized by the caller). 0 or -1. */
static int parse_rsa_pkix(struct rsa_public_key *pub, const uint8_t *der, size_t len)
{
	static const uint8_t rsa_oid[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01}; /* 1.2.840.113549.1.1.1 */
	struct asn1_der_iterator i, alg;
	if (asn1_der_iterator_first(&i, len, der) != ASN1_ITERATOR_CONSTRUCTED || i.type != ASN1_SEQUENCE ||
	    i.pos != len || asn1_der_decode_constructed_last(&i) != ASN1_ITERATOR_CONSTRUCTED ||
	    i.type != ASN1_SEQUENCE)
		return -1;
	if (asn1_der_decode_constructed(&i, &alg) != ASN1_ITERATOR_PRIMITIVE || alg.type != ASN1_IDENTIFIER ||
	    alg.length != sizeof rsa_oid || memcmp(alg.data, rsa_oid, sizeof rsa_oid) != 0)
		return -1;
	if (asn1_der_iterator_next(&i) != ASN1_ITERATOR_PRIMITIVE || i.type != ASN1_BITSTRING ||
	    asn1_der_decode_bitstring_last(&i) != ASN1_ITERATOR_CONSTRUCTED || i.type != ASN1_SEQUENCE)
		return -1;
	/* RSAPublicKey { n, e } and nothing after; rsa_public_key_prepare (inside) checks the modulus */
	return rsa_public_key_from_der_iterator(pub, KEYSIG_RSA_MAX_BITS, &i) ? 0 : -1;
}

static int verify_rsa(const struct peerid_pubkey *pk, const uint8_t *msg, size_t n, const uint8_t *sig,
		      size_t siglen, cg_err *e)
{
	struct rsa_public_key pub;
	rsa_public_key_init(&pub);
	mpz_t s;
	mpz_init(s);
	int rc = 0;
	if (parse_rsa_pkix(&pub, pk->data, pk->len) != 0) {
		rc = cg_fail(e, CG_E_INVALID_ARGUMENT, "bad RSA public key");
		goto out;
	}
	if (mpz_sizeinbase(pub.n, 2) < KEYSIG_RSA_MIN_BITS) {
		rc = cg_fail(e, CG_E_INVALID_ARGUMENT, "RSA key shorter than %d bits", KEYSIG_RSA_MIN_BITS);
		goto out;
	}
	uint8_t digest[32];
	sha256(digest, msg, n);
	nettle_mpz_set_str_256_u(s, siglen, sig);
	if (siglen != pub.size || !rsa_sha256_verify_digest(&pub, digest, s))
		rc = cg_fail(e, CG_E_FORBIDDEN, "bad identity signature");
out:
	mpz_clear(s);
	rsa_public_key_clear(&pub);
	return rc;
}

int keysig_verify(const struct peerid_pubkey *pk, const uint8_t *msg, size_t n, const uint8_t *sig, size_t siglen,
		  cg_err *e)
{
	switch (pk->type) {
	case PEERID_KEY_ED25519:
		return verify_ed25519(pk, msg, n, sig, siglen, e);
	case PEERID_KEY_SECP256K1:
		return verify_secp256k1(pk, msg, n, sig, siglen, e);
	case PEERID_KEY_RSA:
		return verify_rsa(pk, msg, n, sig, siglen, e);
	default:
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "ECDSA identity keys are not supported");
	}
}
