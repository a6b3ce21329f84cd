/* amount: uint256 decimal arithmetic for money — parsing rules, the 2^256-1 edge, overflow, underflow,
 * division, big-endian words, and the string conveniences. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/amount.h"

static const char MAX[] = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
static const char MAX_PLUS_1[] = "115792089237316195423570985008687907853269984665640564039457584007913129639936";

static void t_parse(void **s)
{
	(void)s;
	u256 v;
	assert_int_equal(u256_parse("0", &v), 0);
	assert_true(u256_is_zero(&v));
	assert_int_equal(u256_parse("18446744073709551616", &v), 0); /* 2^64 */
	assert_int_equal(v.w[0], 0);
	assert_int_equal(v.w[1], 1);
	assert_int_equal(u256_parse(MAX, &v), 0);
	for (int i = 0; i < 4; i++)
		assert_true(v.w[i] == UINT64_MAX);
	/* rejected: empty, sign, leading zeros, spaces, non-digits, 2^256, too long */
	const char *bad[] = {"",
	                     "-1",
	                     "+1",
	                     "00",
	                     "01",
	                     " 1",
	                     "1 ",
	                     "1.0",
	                     "1e3",
	                     "0x1",
	                     "١",
	                     MAX_PLUS_1,
	                     "999999999999999999999999999999999999999999999999999999999999999999999999999999"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(u256_parse(bad[i], &v), -1);
	assert_int_equal(u256_parse(NULL, &v), -1);
	assert_int_equal(amount_valid("42"), 1);
	assert_int_equal(amount_valid("042"), 0);
	/* counted form does not need a NUL */
	assert_int_equal(u256_parse_n("12345", 3, &v), 0);
	assert_int_equal(v.w[0], 123);
}

static void t_lenient_and_hex(void **s)
{
	(void)s;
	u256 v;
	assert_int_equal(u256_parse_dec_lenient("000123", 6, &v), 0);
	assert_int_equal(v.w[0], 123);
	assert_int_equal(u256_parse_dec_lenient("12a", 3, &v), -1);
	assert_int_equal(u256_parse_hex("0xff", 4, &v), 0);
	assert_int_equal(v.w[0], 255);
	const char *h = "0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
	assert_int_equal(u256_parse_hex(h, strlen(h), &v), 0);
	char out[80];
	u256_format(&v, out);
	assert_string_equal(out, MAX);
	const char *h65 = "0x1ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
	assert_int_equal(u256_parse_hex(h65, strlen(h65), &v), -1);
	assert_int_equal(u256_parse_hex("0x", 2, &v), -1);
	assert_int_equal(u256_parse_hex("0xg1", 4, &v), -1);
	assert_int_equal(u256_parse_hex("ff", 2, &v), -1);
}

static void t_format_roundtrip(void **s)
{
	(void)s;
	const char *vals[] = {"0",
	                      "1",
	                      "9",
	                      "10",
	                      "9999999999999999999",
	                      "10000000000000000000",
	                      "18446744073709551615",
	                      "18446744073709551616",
	                      "1000000000000000000000000000000000000001",
	                      MAX};
	char out[80];
	for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
		u256 v;
		assert_int_equal(u256_parse(vals[i], &v), 0);
		u256_format(&v, out);
		assert_string_equal(out, vals[i]);
	}
}

static void t_add_sub(void **s)
{
	(void)s;
	char out[80];
	assert_int_equal(amount_add("18446744073709551615", "1", out), 0);
	assert_string_equal(out, "18446744073709551616"); /* carry across a limb */
	assert_int_equal(amount_add(MAX, "0", out), 0);
	assert_string_equal(out, MAX);
	snprintf(out, sizeof out, "unchanged");
	assert_int_equal(amount_add(MAX, "1", out), -1); /* overflow */
	assert_string_equal(out, "unchanged");
	assert_int_equal(amount_sub("18446744073709551616", "1", out), 0);
	assert_string_equal(out, "18446744073709551615"); /* borrow across a limb */
	assert_int_equal(amount_sub("5", "5", out), 0);
	assert_string_equal(out, "0");
	assert_int_equal(amount_sub("5", "6", out), -1); /* underflow */
	assert_int_equal(amount_sub("0", "1", out), -1);
	assert_int_equal(amount_add("01", "1", out), -1); /* invalid operand */
	assert_int_equal(amount_sub(MAX, MAX, out), 0);
	assert_string_equal(out, "0");
	u256 a, b, r;
	u256_from_u64(&a, 7);
	u256_from_u64(&b, 9);
	assert_int_equal(u256_sub(&r, &a, &b), -1);
}

static void t_mul_div(void **s)
{
	(void)s;
	char out[80];
	/* 2^128 * 2^127 = 2^255 fits; * 2 more overflows */
	assert_int_equal(
	    amount_mul("340282366920938463463374607431768211456", "170141183460469231731687303715884105728", out), 0);
	assert_string_equal(out, "57896044618658097711785492504343953926634992332820282019728792003956564819968");
	assert_int_equal(amount_mul(out, "2", out), -1);
	assert_int_equal(amount_mul(MAX, "1", out), 0);
	assert_string_equal(out, MAX);
	assert_int_equal(amount_mul(MAX, "0", out), 0);
	assert_string_equal(out, "0");
	assert_int_equal(amount_mul("1000000000000000000", "1000000000000000000", out), 0);
	assert_string_equal(out, "1000000000000000000000000000000000000");

	u256 a, b, q, r;
	assert_int_equal(u256_parse(MAX, &a), 0);
	u256_from_u64(&b, 10);
	assert_int_equal(u256_divmod(&q, &r, &a, &b), 0);
	u256_format(&q, out);
	assert_string_equal(out, "11579208923731619542357098500868790785326998466564056403945758400791312963993");
	assert_int_equal(r.w[0], 5);
	/* multi-limb divisor: MAX / (2^128 + 1) */
	assert_int_equal(u256_parse("340282366920938463463374607431768211457", &b), 0);
	assert_int_equal(u256_divmod(&q, &r, &a, &b), 0);
	u256 back, chk;
	assert_int_equal(u256_mul(&back, &q, &b), 0);
	assert_int_equal(u256_add(&chk, &back, &r), 0);
	assert_int_equal(u256_cmp(&chk, &a), 0);
	assert_true(u256_cmp(&r, &b) < 0);
	u256 zero;
	u256_from_u64(&zero, 0);
	assert_int_equal(u256_divmod(&q, &r, &a, &zero), -1);
	/* divisor larger than dividend */
	assert_int_equal(u256_divmod(&q, &r, &b, &a), 0);
	assert_true(u256_is_zero(&q));
	assert_int_equal(u256_cmp(&r, &b), 0);
}

static void t_cmp_be(void **s)
{
	(void)s;
	assert_int_equal(amount_cmp("10", "9"), 1);
	assert_int_equal(amount_cmp("9", "10"), -1);
	assert_int_equal(amount_cmp(MAX, MAX), 0);
	assert_int_equal(amount_cmp("18446744073709551616", "18446744073709551615"), 1);
	u256 v, w;
	assert_int_equal(u256_parse("1000000000000000000", &v), 0); /* 1e18 = 0x0de0b6b3a7640000 */
	uint8_t be[32];
	u256_to_be32(&v, be);
	static const uint8_t want[32] = {[24] = 0x0d, 0xe0, 0xb6, 0xb3, 0xa7, 0x64, 0x00, 0x00};
	assert_memory_equal(be, want, 32);
	u256_from_be32(&w, be);
	assert_int_equal(u256_cmp(&v, &w), 0);
	assert_int_equal(u256_bits(&v), 60);
	uint64_t x;
	assert_int_equal(u256_to_u64(&v, &x), 0);
	assert_true(x == 1000000000000000000ull);
	assert_int_equal(u256_parse(MAX, &v), 0);
	assert_int_equal(u256_to_u64(&v, &x), -1);
	assert_int_equal(u256_bits(&v), 256);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(t_parse),   cmocka_unit_test(t_lenient_and_hex), cmocka_unit_test(t_format_roundtrip),
	    cmocka_unit_test(t_add_sub), cmocka_unit_test(t_mul_div),         cmocka_unit_test(t_cmp_be),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
