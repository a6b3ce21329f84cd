/* varint (multiformats unsigned-varint spec examples and limits) and the protobuf wire format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "p2p/pb.h"
#include "p2p/varint.h"

static void t_varint_spec_examples(void **s)
{
	(void)s;
	/* Examples from github.com/multiformats/unsigned-varint README. */
	static const struct {
		uint64_t v;
		uint8_t b[4];
		size_t n;
	} ex[] = {
		{1, {0x01}, 1},         {127, {0x7f}, 1},       {128, {0x80, 0x01}, 2},
		{255, {0xff, 0x01}, 2}, {300, {0xac, 0x02}, 2}, {16384, {0x80, 0x80, 0x01}, 3},
	};
	for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++) {
		uint8_t out[VARINT_MAX_LEN];
		assert_int_equal(varint_encode(out, ex[i].v), ex[i].n);
		assert_memory_equal(out, ex[i].b, ex[i].n);
		assert_int_equal(varint_len(ex[i].v), ex[i].n);
		uint64_t v = 0;
		assert_int_equal(varint_decode(ex[i].b, ex[i].n, &v, NULL), (int)ex[i].n);
		assert_true(v == ex[i].v);
		/* Every strict prefix is "need more". */
		for (size_t k = 0; k < ex[i].n; k++)
			assert_int_equal(varint_decode(ex[i].b, k, &v, NULL), 0);
	}
}

static void t_varint_limits(void **s)
{
	(void)s;
	uint8_t out[VARINT_MAX_LEN];
	uint64_t v;
	cg_err e;
	/* 2^63 - 1 is the largest value: 9 bytes. */
	assert_int_equal(varint_encode(out, VARINT_MAX_VALUE), 9);
	assert_int_equal(varint_decode(out, 9, &v, NULL), 9);
	assert_true(v == VARINT_MAX_VALUE);
	/* A tenth byte would be needed for 2^63: rejected, not "need more". */
	static const uint8_t ten[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
	assert_int_equal(varint_decode(ten, sizeof ten, &v, &e), -CG_E_INVALID_ARGUMENT);
	assert_int_equal(varint_decode(ten, 9, &v, NULL), -CG_E_INVALID_ARGUMENT);
	/* Non-minimal encodings are refused. */
	static const uint8_t pad1[] = {0x81, 0x00};
	static const uint8_t pad2[] = {0x80, 0x80, 0x00};
	assert_int_equal(varint_decode(pad1, 2, &v, &e), -CG_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "minimal"));
	assert_int_equal(varint_decode(pad2, 3, &v, NULL), -CG_E_INVALID_ARGUMENT);
	/* Zero is the single byte 00. */
	static const uint8_t zero[] = {0x00};
	assert_int_equal(varint_decode(zero, 1, &v, NULL), 1);
	assert_true(v == 0);
	assert_int_equal(varint_decode(zero, 0, &v, NULL), 0);
}

static void t_varint_roundtrip_and_put(void **s)
{
	(void)s;
	buf b;
	buf_init(&b, 4);
	assert_int_equal(varint_put(&b, 300), 0);
	assert_int_equal(b.len, 2);
	assert_int_equal(varint_put(&b, 1u << 21), -CG_E_QUOTA_EXCEEDED); /* 4 bytes do not fit */
	assert_int_equal(b.len, 2);
	buf_done(&b);
	for (int bit = 0; bit < 63; bit++) {
		uint64_t vals[] = {(UINT64_C(1) << bit), (UINT64_C(1) << bit) - 1, (UINT64_C(1) << bit) + 1};
		for (int j = 0; j < 3; j++) {
			uint8_t out[VARINT_MAX_LEN];
			uint64_t v;
			size_t n = varint_encode(out, vals[j]);
			assert_int_equal(varint_decode(out, n, &v, NULL), (int)n);
			assert_true(v == vals[j]);
		}
	}
}

static void t_pb_roundtrip(void **s)
{
	(void)s;
	buf b;
	buf_init(&b, 1024);
	assert_int_equal(pb_put_varint(&b, 1, 150), 0);
	/* Protobuf docs example: field 1 = 150 encodes as 08 96 01. */
	static const uint8_t ex[] = {0x08, 0x96, 0x01};
	assert_memory_equal(b.data, ex, 3);
	assert_int_equal(pb_put_str(&b, 2, "testing"), 0);
	assert_int_equal(pb_put_fixed32(&b, 3, 0xdeadbeef), 0);
	assert_int_equal(pb_put_fixed64(&b, 4, UINT64_C(0x0102030405060708)), 0);
	assert_int_equal(pb_put_varint(&b, PB_MAX_FIELD, UINT64_MAX), 0);
	assert_int_equal(pb_put_bytes(&b, 5, "", 0), 0);

	pb_reader r;
	pb_field f;
	pb_reader_init(&r, b.data, b.len);
	assert_int_equal(pb_next(&r, &f, NULL), 1);
	assert_true(f.num == 1 && f.wire == PB_VARINT && f.u == 150);
	assert_int_equal(pb_next(&r, &f, NULL), 1);
	assert_true(f.num == 2 && f.wire == PB_LEN && f.len == 7);
	assert_memory_equal(f.data, "testing", 7);
	assert_int_equal(pb_next(&r, &f, NULL), 1);
	assert_true(f.num == 3 && f.wire == PB_FIXED32 && f.u == 0xdeadbeef);
	assert_int_equal(pb_next(&r, &f, NULL), 1);
	assert_true(f.num == 4 && f.wire == PB_FIXED64 && f.u == UINT64_C(0x0102030405060708));
	assert_int_equal(pb_next(&r, &f, NULL), 1);
	assert_true(f.num == PB_MAX_FIELD && f.u == UINT64_MAX);
	assert_int_equal(pb_next(&r, &f, NULL), 1);
	assert_true(f.num == 5 && f.len == 0);
	assert_int_equal(pb_next(&r, &f, NULL), 0);
	buf_done(&b);
}

static void t_pb_malformed(void **s)
{
	(void)s;
	pb_reader r;
	pb_field f;
	cg_err e;
	static const uint8_t trunc_len[] = {0x12, 0x05, 'a', 'b'};      /* length past the end */
	static const uint8_t trunc_fixed[] = {0x1d, 0x01, 0x02};        /* fixed32 with 2 bytes */
	static const uint8_t group[] = {0x0b};                           /* start-group wire type */
	static const uint8_t field0[] = {0x00, 0x01};                    /* field number 0 */
	static const uint8_t overlong[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
	static const uint8_t trunc_varint[] = {0x08, 0x80};
	const struct {
		const uint8_t *p;
		size_t n;
	} bad[] = {{trunc_len, sizeof trunc_len},	{trunc_fixed, sizeof trunc_fixed},
		   {group, sizeof group},		{field0, sizeof field0},
		   {overlong, sizeof overlong},		{trunc_varint, sizeof trunc_varint}};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		pb_reader_init(&r, bad[i].p, bad[i].n);
		e.msg[0] = 0;
		assert_int_equal(pb_next(&r, &f, &e), -CG_E_INVALID_ARGUMENT);
		assert_true(strlen(e.msg) > 0);
	}
	/* A length that would wrap the pointer arithmetic. */
	static const uint8_t huge[] = {0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
	pb_reader_init(&r, huge, sizeof huge);
	assert_int_equal(pb_next(&r, &f, NULL), -CG_E_INVALID_ARGUMENT);
	uint64_t v;
	assert_int_equal(pb_get_raw_varint(overlong + 1, sizeof overlong - 1, &v, NULL), -CG_E_INVALID_ARGUMENT);
	/* Protobuf, unlike multiformats, accepts a 10-byte varint for UINT64_MAX. */
	static const uint8_t max[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
	assert_int_equal(pb_get_raw_varint(max, sizeof max, &v, NULL), 10);
	assert_true(v == UINT64_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_varint_spec_examples), cmocka_unit_test(t_varint_limits),
		cmocka_unit_test(t_varint_roundtrip_and_put), cmocka_unit_test(t_pb_roundtrip),
		cmocka_unit_test(t_pb_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
