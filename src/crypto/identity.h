/* identity — the node's Ed25519 key (libsodium), which is also its libp2p peer key.
 *
 * Key file format: one line "ed25519:<64 hex digits of the 32-byte seed>\n", mode 0600. The file is
 * created atomically (temp file + fsync + link into place, so two racing creators end with one key) and
 * refused when group/other have any permission bit, when it is not a regular file owned by the current
 * user, or when its content is malformed. Errors never include the path (paths are redacted by policy). */
#ifndef CG_CRYPTO_IDENTITY_H
#define CG_CRYPTO_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

struct node_key {
	uint8_t pk[32];
	uint8_t sk[64]; /* libsodium sk = seed || pk */
};

/* Loads the key file (create=true: creates it if missing). E_FORBIDDEN for unsafe permissions or owner,
 * E_INVALID_ARGUMENT for malformed content, E_NOT_FOUND when missing and !create, E_INTERNAL for I/O. */
int node_key_load(const char *path, bool create, struct node_key *out, cg_err *e);
/* Deterministic key from a 32-byte seed (RFC 8032 secret key). */
void node_key_from_seed(const uint8_t seed[static 32], struct node_key *out);
void node_key_generate(struct node_key *out);
void node_key_sign(const struct node_key *k, const void *msg, size_t n, uint8_t sig[static 64]);
/* Strict Ed25519 verification (libsodium: rejects non-canonical and small-order keys). */
bool ed25519_verify(const uint8_t pk[static 32], const void *msg, size_t n, const uint8_t sig[static 64])
    __attribute__((warn_unused_result));
void node_key_wipe(struct node_key *k);

/* libp2p peer id of an Ed25519 key (libp2p specs, peer-ids): the protobuf PublicKey {Type=Ed25519(1),
 * Data=pk} = 08 01 12 20 <pk> (36 bytes) wrapped in an identity multihash 00 24, i.e. 38 bytes. */
#define PEERID_ED25519_LEN 38
/* Base58btc form "12D3KooW…" is 52 characters; 64 is a comfortable buffer. */
#define PEERID_STR_MAX 64
void peerid_bytes_from_ed25519(const uint8_t pk[static 32], uint8_t out[static PEERID_ED25519_LEN]);
/* Writes the NUL-terminated base58btc string. Returns its length, or -1 when cap is too small. */
int peerid_string_from_ed25519(const uint8_t pk[static 32], char *out, size_t cap);
/* Parses a base58btc peer id that embeds an Ed25519 key (the only kind whose key is inline).
 * Returns 0 and the key, or -1. */
int peerid_string_to_ed25519(const char *s, uint8_t pk[static 32]);

#endif
