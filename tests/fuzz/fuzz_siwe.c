/* libFuzzer target for siwe: the strict parser must never crash, every accepted message must format back
 * to exactly the input, and verification of an accepted message must fail cleanly for a bogus signature. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/siwe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct siwe_msg m;
	static char out[SIWE_MAX_MSG + 1];
	cg_err e;
	if (siwe_parse((const char *)data, size, &m, &e) != 0) {
		if (e.code != CG_E_INVALID_ARGUMENT)
			abort();
		return 0;
	}
	int n = siwe_format(&m, out, sizeof out, &e);
	if (n < 0 || (size_t)n != size || memcmp(out, data, size) != 0)
		abort();
	/* a syntactically valid signature that recovers some other address (or none) */
	static const char sig[] = "0x"
	                          "1111111111111111111111111111111111111111111111111111111111111111"
	                          "2222222222222222222222222222222222222222222222222222222222222222"
	                          "1b";
	struct siwe_expect x = {.domain = m.domain, .nonce = m.nonce, .now_ms = 1};
	int r = siwe_verify((const char *)data, size, sig, &x, NULL, &e);
	if (r != -CG_E_AUTH_REQUIRED && r != -CG_E_INVALID_ARGUMENT)
		abort();
	return 0;
}
