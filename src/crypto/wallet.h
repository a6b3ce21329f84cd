/* wallet — the node's secp256k1 key (libsecp256k1 with the recovery module) and the Ethereum helpers
 * built on it: addresses (EIP-55), personal messages (EIP-191 version 0x45), signatures r||s||v and
 * public-key recovery.
 *
 * Key file format: one line "secp256k1:<64 hex digits>\n" (a bare "0x<64 hex>" line is accepted too, the
 * form other Ethereum tools export), mode 0600, with the same creation and permission rules as the node
 * key (crypto/identity.h). Signatures are deterministic (RFC 6979) and always low-s. */
#ifndef CG_CRYPTO_WALLET_H
#define CG_CRYPTO_WALLET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

struct wallet {
	uint8_t sk[32];
	uint8_t addr[20];
	char address[43]; /* EIP-55 "0x…" */
};

/* Same errors as node_key_load. */
int wallet_load(const char *path, bool create, struct wallet *out, cg_err *e);
/* E_INVALID_ARGUMENT when sk is zero or >= the curve order. */
int wallet_from_secret(const uint8_t sk[static 32], struct wallet *out, cg_err *e);
void wallet_generate(struct wallet *out);
void wallet_wipe(struct wallet *w);

/* EIP-55 mixed-case checksum form of an address. */
void eth_address_checksum(char out[static 43], const uint8_t addr[static 20]);
/* "0x" + 40 hex digits. All-lower and all-upper are accepted; mixed case must carry a valid EIP-55
 * checksum. E_INVALID_ARGUMENT otherwise. */
int eth_address_parse(const char *s, uint8_t addr[static 20], cg_err *e);
/* keccak256("\x19Ethereum Signed Message:\n" + decimal(n) + msg) */
void eip191_hash(uint8_t out[static 32], const void *msg, size_t n);
/* Signs a 32-byte digest: r||s||v with v = 27/28. Returns 0, or -1 (unusable key). */
int wallet_sign_hash(const struct wallet *w, const uint8_t hash[static 32], uint8_t sig[static 65]);
int wallet_personal_sign(const struct wallet *w, const void *msg, size_t n, uint8_t sig[static 65]);
/* Recovers the signer's address. v may be 0/1/27/28; high-s (malleable) signatures and r or s of zero or
 * >= n are rejected. Returns 0 or -1. */
int eth_recover(const uint8_t hash[static 32], const uint8_t sig[static 65], uint8_t addr[static 20])
    __attribute__((warn_unused_result));
/* msg signed with personal_sign, signature as 0x-hex (65 bytes) -> recovered EIP-55 address.
 * E_INVALID_ARGUMENT for a malformed signature, E_AUTH_REQUIRED when nothing can be recovered. */
int eip191_recover(const void *msg, size_t n, const char *sig_hex, char out[static 43], cg_err *e);
/* Signature hex: "0x" + 130 hex digits; out holds 133 bytes. And back (0 or -1). */
void eth_sig_to_hex(char out[static 133], const uint8_t sig[static 65]);
int eth_sig_from_hex(const char *s, uint8_t sig[static 65]);

#endif
