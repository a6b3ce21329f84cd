/* libFuzzer target for amount: input "A<op>B" where op is one of + - * / < ; parses both sides strictly
 * and checks arithmetic identities (a+b-b = a, (a*b)/b = a, q*b+r = a with r < b) and that every valid
 * amount formats back to itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/amount.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_roundtrip(const char *s)
{
	u256 v;
	char out[U256_DEC_MAX];
	if (u256_parse(s, &v) != 0)
		return;
	u256_format(&v, out);
	if (strcmp(out, s) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 200)
		return 0;
	char buf[201];
	memcpy(buf, data, size);
	buf[size] = '\0';
	if (strlen(buf) != size)
		return 0;
	char *op = strpbrk(buf, "+-*/<");
	if (!op) {
		check_roundtrip(buf);
		u256 h;
		(void)u256_parse_hex(buf, size, &h);
		(void)u256_parse_dec_lenient(buf, size, &h);
		return 0;
	}
	char o = *op;
	*op = '\0';
	const char *as = buf, *bs = op + 1;
	check_roundtrip(as);
	check_roundtrip(bs);
	u256 a, b, r, t, q, rem;
	if (u256_parse(as, &a) != 0 || u256_parse(bs, &b) != 0) {
		char out[U256_DEC_MAX];
		if (amount_add(as, bs, out) == 0 || amount_sub(as, bs, out) == 0 || amount_mul(as, bs, out) == 0)
			abort();
		return 0;
	}
	char out[U256_DEC_MAX];
	switch (o) {
	case '+':
		if (u256_add(&r, &a, &b) == 0) {
			if (u256_sub(&t, &r, &b) != 0 || u256_cmp(&t, &a) != 0 || u256_cmp(&r, &a) < 0)
				abort();
			if (amount_add(as, bs, out) != 0)
				abort();
		} else if (amount_add(as, bs, out) == 0) {
			abort();
		}
		break;
	case '-':
		if (u256_sub(&r, &a, &b) == 0) {
			if (u256_add(&t, &r, &b) != 0 || u256_cmp(&t, &a) != 0)
				abort();
		} else if (u256_cmp(&a, &b) >= 0) {
			abort();
		}
		break;
	case '*':
		if (u256_mul(&r, &a, &b) == 0) {
			if (!u256_is_zero(&b) &&
			    (u256_divmod(&q, &rem, &r, &b) != 0 || u256_cmp(&q, &a) != 0 || !u256_is_zero(&rem)))
				abort();
		} else if (u256_bits(&a) + u256_bits(&b) <= 256) {
			abort(); /* a product of that many bits always fits */
		}
		break;
	case '/':
		if (u256_divmod(&q, &rem, &a, &b) == 0) {
			if (u256_cmp(&rem, &b) >= 0 || u256_mul(&t, &q, &b) != 0 || u256_add(&t, &t, &rem) != 0 ||
			    u256_cmp(&t, &a) != 0)
				abort();
		} else if (!u256_is_zero(&b)) {
			abort();
		}
		break;
	default:
		if (amount_cmp(as, bs) != -amount_cmp(bs, as) || amount_cmp(as, bs) != u256_cmp(&a, &b))
			abort();
		uint8_t be[32];
		u256_to_be32(&a, be);
		u256_from_be32(&t, be);
		if (u256_cmp(&t, &a) != 0)
			abort();
	}
	return 0;
}
