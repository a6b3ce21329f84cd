/* libFuzzer target for varint: decoding never reads past the input; whatever decodes re-encodes to exactly
 * the bytes consumed (minimal encoding is enforced), and every strict prefix of those bytes is "need more". */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "p2p/varint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;
	while (off < size) {
		uint64_t v;
		cg_err e;
		int k = varint_decode(data + off, size - off, &v, &e);
		if (k == 0)
			break;
		if (k < 0) {
			if (e.code != CG_E_INVALID_ARGUMENT || !e.msg[0])
				abort();
			off++;
			continue;
		}
		uint8_t out[VARINT_MAX_LEN];
		size_t n = varint_encode(out, v);
		if (n != (size_t)k || varint_len(v) != n || memcmp(out, data + off, n) != 0)
			abort();
		for (size_t p = 0; p < n; p++)
			if (varint_decode(data + off, p, &v, NULL) != 0)
				abort();
		off += (size_t)k;
	}
	return 0;
}
