/* eip712 — EIP-712 typed structured data hashing and signing, from the standard JSON form used by
 * eth_signTypedData_v4: {types, primaryType, domain, message}.
 *
 * Supported field types: structs defined in types (also recursive), arrays T[] and T[n] (nested), bytes,
 * bytes1..32, string, address, bool, uint8..256 / int8..256 (multiples of 8). Integers may be JSON
 * integers or strings in decimal ("-" allowed for intN) or 0x-hex; they are range-checked. bytes/bytesN
 * are 0x-hex (bytesN exactly N bytes). Addresses follow eth_address_parse. A missing field is an error;
 * fields of the value that the type does not declare are not hashed (so not signed). When types has no
 * EIP712Domain entry it is derived from the domain's keys (name, version, chainId, verifyingContract,
 * salt, in that order), as ethers does. primaryType "EIP712Domain" hashes the domain alone.
 * Limits: 64 types, 64 fields per type, nesting depth 32, 4096 array items: E_INVALID_ARGUMENT beyond. */
#ifndef CG_CRYPTO_EIP712_H
#define CG_CRYPTO_EIP712_H

#include <stdint.h>

#include <jansson.h>

#include "base/err.h"
#include "crypto/wallet.h"

/* keccak256(0x19 0x01 || domainSeparator || hashStruct(message)). */
int eip712_hash(json_t *typed, uint8_t out[static 32], cg_err *e);
/* hashStruct(EIP712Domain, domain) of the typed data. */
int eip712_domain_separator(json_t *typed, uint8_t out[static 32], cg_err *e);
/* hashStruct(type, value) over a types object. */
int eip712_hash_struct(json_t *types, const char *type, json_t *value, uint8_t out[static 32], cg_err *e);
/* encodeType(type), e.g. "Mail(Person from,Person to,string contents)Person(string name,address wallet)".
 * Returns a string the caller frees, or NULL with *e set. */
char *eip712_encode_type(json_t *types, const char *type, cg_err *e);
int eip712_sign(const struct wallet *w, json_t *typed, uint8_t sig[static 65], cg_err *e);
/* Recovers the signer. E_INVALID_ARGUMENT for bad typed data, E_AUTH_REQUIRED for a bad signature. */
int eip712_recover(json_t *typed, const uint8_t sig[static 65], uint8_t addr[static 20], cg_err *e);

#endif
