/* keysig — verifies a libp2p identity signature under any key type js-libp2p and go-libp2p use for peer ids
 * (libp2p specs: peer-ids/peer-ids.md, "Keys"): Ed25519 (the default), Secp256k1 (ECDSA over SHA-256 of the
 * message, DER signature, compressed or uncompressed point) and RSA (RSASSA-PKCS1-v1_5 over SHA-256, the key
 * a DER SubjectPublicKeyInfo; 2048 to 8192 bits, as go-libp2p accepts). ECDSA (P-256) peer ids are refused:
 * js-libp2p cannot create them and go-libp2p does not default to them.
 *
 * Pure: bytes in, verdict out. The noise handshake uses it for the remote's payload signature. */
#ifndef CG_P2P_KEYSIG_H
#define CG_P2P_KEYSIG_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "p2p/peerid.h"

#define KEYSIG_RSA_MIN_BITS 2048
#define KEYSIG_RSA_MAX_BITS 8192

/* 0 when sig is a valid signature of msg under pk; -CG_E_FORBIDDEN for a signature that does not verify,
 * -CG_E_INVALID_ARGUMENT for a malformed or unsupported key (e says which). */
int keysig_verify(const struct peerid_pubkey *pk, const uint8_t *msg, size_t n, const uint8_t *sig, size_t siglen,
		  cg_err *e) __attribute__((warn_unused_result));

#endif
