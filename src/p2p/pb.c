/* Protobuf wire format: a field writer over buf and a bounds-checked field iterator. */
#include "p2p/pb.h"

#include <assert.h>
#include <string.h>

static int put_raw(buf *b, uint64_t v)
{
	uint8_t tmp[10];
	size_t n = 0;
	while (v >= 0x80) {
		tmp[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	tmp[n++] = (uint8_t)v;
	return buf_append(b, tmp, n) == 0 ? 0 : -CG_E_QUOTA_EXCEEDED;
}

int pb_put_raw_varint(buf *b, uint64_t v)
{
	return put_raw(b, v);
}

static int put_tag(buf *b, uint32_t field, enum pb_wire w)
{
	assert(field >= 1 && field <= PB_MAX_FIELD);
	return put_raw(b, ((uint64_t)field << 3) | (uint64_t)w);
}

int pb_put_varint(buf *b, uint32_t field, uint64_t v)
{
	int r = put_tag(b, field, PB_VARINT);
	return r ? r : put_raw(b, v);
}

int pb_put_bytes(buf *b, uint32_t field, const void *p, size_t n)
{
	int r = put_tag(b, field, PB_LEN);
	if (!r)
		r = put_raw(b, n);
	if (!r && buf_append(b, p, n) != 0)
		r = -CG_E_QUOTA_EXCEEDED;
	return r;
}

int pb_put_str(buf *b, uint32_t field, const char *s)
{
	return pb_put_bytes(b, field, s, strlen(s));
}

int pb_put_fixed32(buf *b, uint32_t field, uint32_t v)
{
	uint8_t t[4];
	for (int i = 0; i < 4; i++)
		t[i] = (uint8_t)(v >> (8 * i));
	int r = put_tag(b, field, PB_FIXED32);
	return r ? r : (buf_append(b, t, 4) == 0 ? 0 : -CG_E_QUOTA_EXCEEDED);
}

int pb_put_fixed64(buf *b, uint32_t field, uint64_t v)
{
	uint8_t t[8];
	for (int i = 0; i < 8; i++)
		t[i] = (uint8_t)(v >> (8 * i));
	int r = put_tag(b, field, PB_FIXED64);
	return r ? r : (buf_append(b, t, 8) == 0 ? 0 : -CG_E_QUOTA_EXCEEDED);
}

int pb_get_raw_varint(const uint8_t *p, size_t n, uint64_t *out, cg_err *e)
{
	uint64_t v = 0;
	for (size_t i = 0; i < 10; i++) {
		if (i >= n)
			return 0;
		uint8_t c = p[i];
		/* The tenth byte may only carry the single remaining bit of a 64-bit value. */
		if (i == 9 && c > 1)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "protobuf: varint overflows 64 bits");
		v |= (uint64_t)(c & 0x7f) << (7 * i);
		if (!(c & 0x80)) {
			*out = v;
			return (int)(i + 1);
		}
	}
	return cg_fail(e, CG_E_INVALID_ARGUMENT, "protobuf: varint longer than 10 bytes");
}

void pb_reader_init(pb_reader *r, const uint8_t *p, size_t n)
{
	r->p = p;
	r->end = n ? p + n : p; /* (NULL, 0) is a valid empty message; NULL + 0 is not valid C */
}

static int get_varint(pb_reader *r, uint64_t *v, cg_err *e)
{
	int k = pb_get_raw_varint(r->p, (size_t)(r->end - r->p), v, e);
	if (k == 0)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "protobuf: truncated varint");
	if (k < 0)
		return k;
	r->p += k;
	return 0;
}

int pb_next(pb_reader *r, pb_field *f, cg_err *e)
{
	if (r->p >= r->end)
		return 0;
	uint64_t tag;
	int rc = get_varint(r, &tag, e);
	if (rc)
		return rc;
	uint64_t num = tag >> 3;
	if (num == 0 || num > PB_MAX_FIELD)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "protobuf: bad field number");
	memset(f, 0, sizeof *f);
	f->num = (uint32_t)num;
	size_t left;
	switch (tag & 7) {
	case PB_VARINT:
		f->wire = PB_VARINT;
		return (rc = get_varint(r, &f->u, e)) ? rc : 1;
	case PB_FIXED64:
	case PB_FIXED32: {
		size_t w = (tag & 7) == PB_FIXED64 ? 8 : 4;
		f->wire = (enum pb_wire)(tag & 7);
		if ((size_t)(r->end - r->p) < w)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "protobuf: truncated fixed field");
		for (size_t i = 0; i < w; i++)
			f->u |= (uint64_t)r->p[i] << (8 * i);
		r->p += w;
		return 1;
	}
	case PB_LEN: {
		uint64_t len;
		if ((rc = get_varint(r, &len, e)))
			return rc;
		left = (size_t)(r->end - r->p);
		if (len > left)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "protobuf: length-delimited field past the end");
		f->wire = PB_LEN;
		f->data = r->p;
		f->len = (size_t)len;
		r->p += len;
		return 1;
	}
	default:
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "protobuf: unsupported wire type");
	}
}
