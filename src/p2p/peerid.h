/* peerid — libp2p peer ids and public keys (libp2p specs: peer-ids/peer-ids.md).
 *
 * A public key travels as the protobuf PublicKey { Type = 1 (KeyType enum: RSA 0, Ed25519 1, Secp256k1 2,
 * ECDSA 3); Data = 2 (bytes) }, encoded deterministically. The peer id is a multihash of that encoding:
 * identity (code 0x00) when the encoding is <= 42 bytes (Ed25519, Secp256k1), otherwise sha2-256 (0x12).
 * Text forms: base58btc of the multihash ("12D3KooW..." for Ed25519, "Qm..." for sha2-256, "16U..." for
 * Secp256k1) and CIDv1 (multibase 'b' base32 of <0x01><0x72 libp2p-key><multihash>); parsing accepts both
 * (and CIDv1 in multibase 'z'). Only Ed25519 keys are used for signatures here; the other types are parsed
 * and hashed as opaque bytes.
 *
 * Relation to crypto/identity.h: that header has Ed25519-only helpers for the node's own key; this module is
 * the general codec (all key types, both text forms, validation). Names differ so both can be included. */
#ifndef CG_P2P_PEERID_H
#define CG_P2P_PEERID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"

enum peerid_keytype { PEERID_KEY_RSA = 0, PEERID_KEY_ED25519 = 1, PEERID_KEY_SECP256K1 = 2, PEERID_KEY_ECDSA = 3 };

#define PEERID_MAX_BYTES 44      /* identity multihash of a <= 42-byte key: 00 <len> <key> */
#define PEERID_TEXT_MAX 96       /* base58btc or CIDv1 text plus NUL */
#define PEERID_MAX_KEY_BYTES 2048/* longest PublicKey.Data accepted (RSA-8192 DER fits) */
#define PEERID_IDENTITY_LIMIT 42 /* encoded keys up to this length are inlined */

/* A peer id in binary form (the multihash). Plain value type: copy freely, compare with peerid_equal. */
typedef struct peerid {
	uint8_t len;
	uint8_t b[PEERID_MAX_BYTES];
} peerid;

/* A decoded PublicKey; data points into the decoded input (borrowed). */
struct peerid_pubkey {
	enum peerid_keytype type;
	const uint8_t *data;
	size_t len;
};

/* Encodes PublicKey{type, data} (deterministic) into out. */
int peerid_pubkey_encode(buf *out, enum peerid_keytype type, const uint8_t *data, size_t len)
	__attribute__((warn_unused_result));
/* Decodes a PublicKey protobuf. Requires both fields, a known type, Ed25519 data of exactly 32 bytes, and
 * data <= PEERID_MAX_KEY_BYTES. -CG_E_INVALID_ARGUMENT otherwise. */
int peerid_pubkey_decode(const uint8_t *pb, size_t n, struct peerid_pubkey *out, cg_err *e);

/* Peer id of an encoded PublicKey (identity or sha2-256 multihash per the 42-byte rule). Validates it. */
int peerid_from_pubkey(peerid *out, const uint8_t *pb, size_t n, cg_err *e);
/* Peer id of a raw Ed25519 public key. Never fails. */
void peerid_from_ed25519(peerid *out, const uint8_t pk[static 32]);

/* Binary multihash -> peer id: accepts identity multihashes holding a valid PublicKey (<= 42 bytes) and
 * sha2-256 multihashes of 32 bytes; -CG_E_INVALID_ARGUMENT otherwise. */
int peerid_from_bytes(peerid *out, const uint8_t *p, size_t n, cg_err *e);
/* Text (base58btc multihash, or CIDv1 'b'/'z' with codec libp2p-key) -> peer id. */
int peerid_parse(peerid *out, const char *s, size_t len, cg_err *e);
/* Writes the base58btc text (NUL-terminated) into out. Returns the length, or -1 if cap is too small. */
int peerid_to_string(const peerid *id, char *out, size_t cap);
/* Writes the CIDv1 base32 text "b..." (NUL-terminated). Returns the length, or -1 if cap is too small. */
int peerid_to_cid(const peerid *id, char *out, size_t cap);

bool peerid_equal(const peerid *a, const peerid *b);
/* For identity peer ids: the embedded PublicKey protobuf (borrowed from id). -CG_E_NOT_FOUND for sha2-256
 * ids (the key is not inside; it comes from the noise handshake or identify). */
int peerid_get_pubkey(const peerid *id, const uint8_t **pb, size_t *n, cg_err *e);
/* For identity Ed25519 peer ids: the 32-byte public key. -CG_E_NOT_FOUND otherwise. */
int peerid_get_ed25519(const peerid *id, uint8_t pk[static 32], cg_err *e);
/* True when the encoded PublicKey pb hashes to id (e.g. a key received in identify or noise). */
bool peerid_matches_pubkey(const peerid *id, const uint8_t *pb, size_t n);

#endif
