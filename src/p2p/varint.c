/* Multiformats unsigned varint: minimal LEB128 of at most 9 bytes. */
#include "p2p/varint.h"

#include <assert.h>

size_t varint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

size_t varint_encode(uint8_t out[static VARINT_MAX_LEN], uint64_t v)
{
	assert(v <= VARINT_MAX_VALUE);
	size_t n = 0;
	while (v >= 0x80) {
		out[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (uint8_t)v;
	return n;
}

int varint_put(buf *b, uint64_t v)
{
	uint8_t tmp[VARINT_MAX_LEN];
	size_t n = varint_encode(tmp, v);
	if (buf_append(b, tmp, n) != 0)
		return -CG_E_QUOTA_EXCEEDED;
	return 0;
}

int varint_decode(const uint8_t *p, size_t n, uint64_t *out, cg_err *e)
{
	uint64_t v = 0;
	for (size_t i = 0; i < VARINT_MAX_LEN; i++) {
		if (i >= n)
			return 0;
		uint8_t c = p[i];
		v |= (uint64_t)(c & 0x7f) << (7 * i);
		if (!(c & 0x80)) {
			/* A last byte of 0 after at least one byte means the value fit in fewer bytes. */
			if (c == 0 && i > 0)
				return cg_fail(e, CG_E_INVALID_ARGUMENT, "varint: not minimally encoded");
			*out = v;
			return (int)(i + 1);
		}
	}
	/* Nine bytes all with the continuation bit: the value would need 64 or more bits. */
	return cg_fail(e, CG_E_INVALID_ARGUMENT, "varint: longer than 9 bytes");
}
