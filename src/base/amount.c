#include "base/amount.h"

#include <string.h>

/* Portable 64x64 -> 128 multiply: unsigned __int128 is a GCC/Clang extension that -std=c11 still
 * accepts (with __extension__), and both compilers we build with have it. */
__extension__ typedef unsigned __int128 u128;

int u256_is_zero(const u256 *a)
{
	return (a->w[0] | a->w[1] | a->w[2] | a->w[3]) == 0;
}

void u256_from_u64(u256 *r, uint64_t v)
{
	r->w[0] = v;
	r->w[1] = r->w[2] = r->w[3] = 0;
}

int u256_to_u64(const u256 *a, uint64_t *v)
{
	if (a->w[1] | a->w[2] | a->w[3])
		return -1;
	*v = a->w[0];
	return 0;
}

int u256_cmp(const u256 *a, const u256 *b)
{
	for (int i = 3; i >= 0; i--) {
		if (a->w[i] != b->w[i])
			return a->w[i] < b->w[i] ? -1 : 1;
	}
	return 0;
}

unsigned u256_bits(const u256 *a)
{
	for (int i = 3; i >= 0; i--)
		if (a->w[i])
			return (unsigned)(64 * i + 64 - __builtin_clzll(a->w[i]));
	return 0;
}

int u256_add(u256 *r, const u256 *a, const u256 *b)
{
	u256 t;
	uint64_t carry = 0;
	for (int i = 0; i < 4; i++) {
		u128 s = (u128)a->w[i] + b->w[i] + carry;
		t.w[i] = (uint64_t)s;
		carry = (uint64_t)(s >> 64);
	}
	if (carry)
		return -1;
	*r = t;
	return 0;
}

int u256_sub(u256 *r, const u256 *a, const u256 *b)
{
	if (u256_cmp(a, b) < 0)
		return -1;
	u256 t;
	uint64_t borrow = 0;
	for (int i = 0; i < 4; i++) {
		uint64_t x = a->w[i], y = b->w[i];
		uint64_t d = x - y - borrow;
		borrow = (x < y) || (x - y < borrow);
		t.w[i] = d;
	}
	*r = t;
	return 0;
}

int u256_mul(u256 *r, const u256 *a, const u256 *b)
{
	/* Schoolbook 4x4 limbs into 8; any non-zero high limb means overflow. */
	uint64_t p[8] = {0};
	for (int i = 0; i < 4; i++) {
		uint64_t carry = 0;
		if (!a->w[i])
			continue;
		for (int j = 0; j < 4; j++) {
			u128 t = (u128)a->w[i] * b->w[j] + p[i + j] + carry;
			p[i + j] = (uint64_t)t;
			carry = (uint64_t)(t >> 64);
		}
		p[i + 4] = carry;
	}
	if (p[4] | p[5] | p[6] | p[7])
		return -1;
	memcpy(r->w, p, sizeof r->w);
	return 0;
}

static void shl1(u256 *a, unsigned bit)
{
	for (int i = 3; i > 0; i--)
		a->w[i] = a->w[i] << 1 | a->w[i - 1] >> 63;
	a->w[0] = a->w[0] << 1 | bit;
}

int u256_divmod(u256 *q, u256 *r, const u256 *a, const u256 *b)
{
	if (u256_is_zero(b))
		return -1;
	u256 qq = {{0}}, rr = {{0}};
	if (b->w[1] == 0 && b->w[2] == 0 && b->w[3] == 0) {
		/* Fast path: single-limb divisor (every decimal conversion goes through here). */
		u128 rem = 0;
		for (int i = 3; i >= 0; i--) {
			u128 cur = rem << 64 | a->w[i];
			qq.w[i] = (uint64_t)(cur / b->w[0]);
			rem = cur % b->w[0];
		}
		rr.w[0] = (uint64_t)rem;
	} else {
		/* Binary long division: at most 256 steps, fine for money arithmetic. */
		for (int i = (int)u256_bits(a) - 1; i >= 0; i--) {
			shl1(&rr, (unsigned)(a->w[i / 64] >> (i % 64)) & 1u);
			shl1(&qq, 0);
			if (u256_cmp(&rr, b) >= 0) {
				(void)u256_sub(&rr, &rr, b);
				qq.w[0] |= 1;
			}
		}
	}
	if (q)
		*q = qq;
	if (r)
		*r = rr;
	return 0;
}

/* Accumulates decimal digits; ok only if every byte is a digit and the value fits. */
static int parse_digits(const char *s, size_t n, u256 *out)
{
	u256 v = {{0}}, ten, d;
	u256_from_u64(&ten, 10);
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		u256_from_u64(&d, (uint64_t)(s[i] - '0'));
		if (u256_mul(&v, &v, &ten) != 0 || u256_add(&v, &v, &d) != 0)
			return -1;
	}
	*out = v;
	return 0;
}

int u256_parse_n(const char *s, size_t n, u256 *out)
{
	/* 2^256-1 has 78 digits; anything longer is out of range (and leading zeros are refused). */
	if (!s || n == 0 || n > 78)
		return -1;
	if (s[0] == '0' && n > 1)
		return -1;
	return parse_digits(s, n, out);
}

int u256_parse(const char *s, u256 *out)
{
	if (!s)
		return -1;
	size_t n = strnlen(s, 79);
	return u256_parse_n(s, n, out);
}

int u256_parse_dec_lenient(const char *s, size_t n, u256 *out)
{
	if (!s || n == 0 || n > 100)
		return -1;
	return parse_digits(s, n, out);
}

int u256_parse_hex(const char *s, size_t n, u256 *out)
{
	if (!s || n < 3 || n > 66 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
		return -1;
	u256 v = {{0}};
	for (size_t i = 2; i < n; i++) {
		char c = s[i];
		unsigned d;
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			return -1;
		/* at most 64 digits, so shifting never loses bits */
		for (int k = 3; k > 0; k--)
			v.w[k] = v.w[k] << 4 | v.w[k - 1] >> 60;
		v.w[0] = v.w[0] << 4 | d;
	}
	*out = v;
	return 0;
}

void u256_format(const u256 *a, char out[static 80])
{
	/* Divide by 10^19 (largest power of ten in a limb) and print 19-digit chunks. */
	char tmp[80];
	size_t n = 0;
	u256 v = *a, chunk, div;
	u256_from_u64(&div, 10000000000000000000ull);
	do {
		(void)u256_divmod(&v, &chunk, &v, &div);
		uint64_t c = chunk.w[0];
		for (int k = 0; k < 19; k++) {
			tmp[n++] = (char)('0' + c % 10);
			c /= 10;
			if (u256_is_zero(&v) && c == 0)
				break;
		}
	} while (!u256_is_zero(&v));
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	out[n] = '\0';
}

void u256_to_be32(const u256 *a, uint8_t out[static 32])
{
	for (int i = 0; i < 4; i++)
		for (int b = 0; b < 8; b++)
			out[31 - (i * 8 + b)] = (uint8_t)(a->w[i] >> (8 * b));
}

void u256_from_be32(u256 *r, const uint8_t in[static 32])
{
	for (int i = 0; i < 4; i++) {
		uint64_t w = 0;
		for (int b = 7; b >= 0; b--)
			w = w << 8 | in[31 - (i * 8 + b)];
		r->w[i] = w;
	}
}

int amount_valid(const char *s)
{
	u256 v;
	return u256_parse(s, &v) == 0;
}

typedef int (*binop)(u256 *, const u256 *, const u256 *);

static int amount_op(binop op, const char *a, const char *b, char out[static 80])
{
	u256 x, y, r;
	if (u256_parse(a, &x) != 0 || u256_parse(b, &y) != 0 || op(&r, &x, &y) != 0)
		return -1;
	u256_format(&r, out);
	return 0;
}

int amount_add(const char *a, const char *b, char out[static 80])
{
	return amount_op(u256_add, a, b, out);
}

int amount_sub(const char *a, const char *b, char out[static 80])
{
	return amount_op(u256_sub, a, b, out);
}

int amount_mul(const char *a, const char *b, char out[static 80])
{
	return amount_op(u256_mul, a, b, out);
}

int amount_cmp(const char *a, const char *b)
{
	u256 x, y;
	int va = u256_parse(a, &x) == 0, vb = u256_parse(b, &y) == 0;
	if (!va || !vb)
		return va - vb;
	return u256_cmp(&x, &y);
}
