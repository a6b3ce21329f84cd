/* libFuzzer target for keysig: an identity key (PublicKey protobuf, any type: RSA DER, Secp256k1 points,
 * Ed25519) and a signature from the input, verified over a fixed noise-payload message. Nothing may crash or
 * read out of bounds, and every refusal is a bad signature or a bad key with a reason. The seeds hold
 * js-libp2p's real keys and signatures over this message, so mutations start from valid ones.
 * Input: <2-byte big-endian key length><PublicKey protobuf><signature>. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "p2p/keysig.h"
#include "p2p/peerid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t msg[] = "noise-libp2p-static-key:0123456789abcdef0123456789abcdef";
	if (size < 2 || size > 8192)
		return 0;
	if (sodium_init() < 0)
		abort();
	size_t kl = (size_t)data[0] << 8 | data[1];
	if (kl > size - 2)
		return 0;
	struct peerid_pubkey pk;
	if (peerid_pubkey_decode(data + 2, kl, &pk, NULL) < 0)
		return 0;
	cg_err e = {0};
	int rc = keysig_verify(&pk, msg, sizeof msg - 1, data + 2 + kl, size - 2 - kl, &e);
	if (rc < 0 && !e.msg[0])
		abort(); /* every refusal says why */
	if (rc != 0 && rc != -CG_E_FORBIDDEN && rc != -CG_E_INVALID_ARGUMENT)
		abort();
	return 0;
}
