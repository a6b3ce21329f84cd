/* libFuzzer target for eip712: typed data from a peer (vouchers) must hash or be refused with
 * E_INVALID_ARGUMENT, never crash; hashing is deterministic and recovery of a fixed signature is clean. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "crypto/eip712.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 15)
		return 0;
	json_t *v = json_loadb((const char *)data, size, 0, NULL);
	if (!v)
		return 0;
	uint8_t h1[32], h2[32], addr[20];
	cg_err e;
	int r = eip712_hash(v, h1, &e);
	if (r != 0) {
		if (r != -CG_E_INVALID_ARGUMENT || e.msg[0] == '\0')
			abort();
	} else {
		if (eip712_hash(v, h2, &e) != 0 || memcmp(h1, h2, 32) != 0)
			abort();
		uint8_t sig[65];
		memset(sig, 0x11, 32);
		memset(sig + 32, 0x22, 32);
		sig[64] = 27;
		r = eip712_recover(v, sig, addr, &e);
		if (r != 0 && r != -CG_E_AUTH_REQUIRED)
			abort();
	}
	json_decref(v);
	return 0;
}
