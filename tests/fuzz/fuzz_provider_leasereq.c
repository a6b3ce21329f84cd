/* libFuzzer target: the signed lease request a provider receives (provider/leasereq.h). Anything accepted
 * must carry a checksummed consumer address, a nonce of lower-case hex and a timestamp in the window. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "provider/leasereq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct leasereq q;
	cg_err e;
	/* The seed corpus is signed for this provider at this time. */
	const char *self = "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4";
	const int64_t now = 1760000000000;
	if (leasereq_verify((const char *)data, size, self, now, LEASEREQ_SKEW_MS, &q, &e) == 0) {
		if (strlen(q.consumer) != 42 || strlen(q.nonce) < 32 || q.timestamp < now - LEASEREQ_SKEW_MS ||
		    q.timestamp > now + LEASEREQ_SKEW_MS || q.ttl_ms < 10000)
			abort();
	}
	return 0;
}
