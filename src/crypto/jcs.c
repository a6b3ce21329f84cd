#include "crypto/jcs.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "crypto/hash.h"

/* ---- UTF-8 ---------------------------------------------------------------------------------------- */

/* Decodes one code point of valid UTF-8 (rejects overlongs, surrogates, > U+10FFFF).
 * Returns the byte length, or 0 for invalid input. */
static size_t utf8_next(const uint8_t *p, size_t n, uint32_t *cp)
{
	if (n == 0)
		return 0;
	uint8_t c = p[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	size_t len;
	uint32_t v, min;
	if ((c & 0xe0) == 0xc0) {
		len = 2, v = c & 0x1f, min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3, v = c & 0x0f, min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4, v = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (p[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return len;
}

static bool utf8_valid(const char *s, size_t n)
{
	const uint8_t *p = (const uint8_t *)s;
	while (n) {
		uint32_t cp;
		size_t k = utf8_next(p, n, &cp);
		if (!k)
			return false;
		p += k;
		n -= k;
	}
	return true;
}

/* Iterates a valid UTF-8 string as UTF-16 code units (the order RFC 8785 sorts keys by). */
struct u16it {
	const uint8_t *p;
	size_t n;
	int pending; /* low surrogate still to deliver, or -1 */
};

static int u16_next(struct u16it *it)
{
	if (it->pending >= 0) {
		int u = it->pending;
		it->pending = -1;
		return u;
	}
	uint32_t cp;
	size_t k = utf8_next(it->p, it->n, &cp);
	if (!k)
		return -1;
	it->p += k;
	it->n -= k;
	if (cp >= 0x10000) {
		cp -= 0x10000;
		it->pending = (int)(0xdc00 + (cp & 0x3ff));
		return (int)(0xd800 + (cp >> 10));
	}
	return (int)cp;
}

struct key {
	const char *s;
	size_t n;
	json_t *v;
};

static int key_cmp(const void *a, const void *b)
{
	const struct key *x = a, *y = b;
	struct u16it i = {(const uint8_t *)x->s, x->n, -1}, j = {(const uint8_t *)y->s, y->n, -1};
	for (;;) {
		int u = u16_next(&i), w = u16_next(&j);
		if (u != w)
			return u < w ? -1 : 1; /* end (-1) sorts first: a prefix precedes its extensions */
		if (u < 0)
			return 0;
	}
}

/* ---- numbers -------------------------------------------------------------------------------------- */

/* The exponent of printf's "%e" output ("e+05", "e-310"). */
static int exp_of(const char *q)
{
	int sign = 1, v = 0;
	if (*q == '+' || *q == '-')
		sign = *q++ == '-' ? -1 : 1;
	while (*q >= '0' && *q <= '9')
		v = v * 10 + (*q++ - '0');
	return sign * v;
}

/* Shortest decimal digits of a > 0 that read back as a, choosing the closest when several have the same
 * length (ECMAScript Number::toString, step 5). Writes digits (no dot) and returns their count k; *exp10 is
 * n in "value = 0.digits * 10^n". */
static int shortest_digits(double a, char digits[static 20], int *exp10)
{
	char buf[40];
	for (int p = 1; p <= 17; p++) {
		snprintf(buf, sizeof buf, "%.*e", p - 1, a);
		/* buf = d[.ddd]e±XX: glibc rounds correctly, so this is the nearest p-digit decimal */
		char d[20];
		int k = 0;
		const char *q = buf;
		for (; *q && *q != 'e'; q++)
			if (*q >= '0' && *q <= '9')
				d[k++] = *q;
		int e = exp_of(q + 1);
		double r = strtod(buf, NULL);
		if (r != a) {
			/* The nearest p-digit decimal misses; at a power of two the rounding interval is lopsided
			 * and the other p-digit neighbour (one unit toward a) can still hit. */
			int i = k - 1;
			if (r > a) {
				while (i >= 0 && d[i] == '0')
					d[i--] = '9';
				if (i < 0 || (i == 0 && d[0] == '1'))
					continue; /* would lose a digit: that length was already tried */
				d[i]--;
			} else {
				while (i >= 0 && d[i] == '9')
					d[i--] = '0';
				if (i < 0)
					continue; /* would gain a digit */
				d[i]++;
			}
			char t[48];
			snprintf(t, sizeof t, "%.*se%d", k, d, e - (k - 1));
			if (strtod(t, NULL) != a)
				continue;
		}
		while (k > 1 && d[k - 1] == '0')
			k--;
		memcpy(digits, d, (size_t)k);
		*exp10 = e + 1;
		return k;
	}
	/* Unreachable: 17 significant digits always round-trip a double. Fall back to them. */
	snprintf(buf, sizeof buf, "%.16e", a);
	int k = 0;
	const char *q = buf;
	for (; *q && *q != 'e'; q++)
		if (*q >= '0' && *q <= '9')
			digits[k++] = *q;
	*exp10 = exp_of(q + 1) + 1;
	return k;
}

int jcs_format_double(double d, char out[static 32])
{
	if (!isfinite(d))
		return -1;
	if (d == 0) { /* also -0 */
		out[0] = '0';
		out[1] = '\0';
		return 1;
	}
	char dg[20];
	int n, o = 0;
	if (d < 0) {
		out[o++] = '-';
		d = -d;
	}
	int k = shortest_digits(d, dg, &n);
	if (k <= n && n <= 21) {
		memcpy(out + o, dg, (size_t)k);
		o += k;
		for (int i = 0; i < n - k; i++)
			out[o++] = '0';
	} else if (0 < n && n <= 21) {
		memcpy(out + o, dg, (size_t)n);
		o += n;
		out[o++] = '.';
		memcpy(out + o, dg + n, (size_t)(k - n));
		o += k - n;
	} else if (-6 < n && n <= 0) {
		out[o++] = '0';
		out[o++] = '.';
		for (int i = 0; i < -n; i++)
			out[o++] = '0';
		memcpy(out + o, dg, (size_t)k);
		o += k;
	} else {
		out[o++] = dg[0];
		if (k > 1) {
			out[o++] = '.';
			memcpy(out + o, dg + 1, (size_t)(k - 1));
			o += k - 1;
		}
		o += snprintf(out + o, 32 - (size_t)o, "e%c%d", n - 1 < 0 ? '-' : '+', abs(n - 1));
	}
	out[o] = '\0';
	return o;
}

/* ---- serialization -------------------------------------------------------------------------------- */

static int too_big(cg_err *e)
{
	return cg_fail(e, CG_E_INVALID_ARGUMENT, "canonical JSON exceeds %u bytes", JCS_MAX_OUT);
}

static int emit_string(buf *b, const char *s, size_t n, cg_err *e)
{
	if (!utf8_valid(s, n))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "JSON string is not valid UTF-8");
	if (buf_putc(b, '"'))
		return too_big(e);
	size_t run = 0; /* copy unescaped runs in one append */
	for (size_t i = 0; i <= n; i++) {
		uint8_t c = i < n ? (uint8_t)s[i] : 0;
		if (i < n && c >= 0x20 && c != '"' && c != '\\')
			continue;
		if (buf_append(b, s + run, i - run))
			return too_big(e);
		run = i + 1;
		if (i == n)
			break;
		char esc[8];
		size_t el = 2;
		esc[0] = '\\';
		switch (c) {
		case '"':
			esc[1] = '"';
			break;
		case '\\':
			esc[1] = '\\';
			break;
		case '\b':
			esc[1] = 'b';
			break;
		case '\f':
			esc[1] = 'f';
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		default:
			el = (size_t)snprintf(esc, sizeof esc, "\\u%04x", c);
		}
		if (buf_append(b, esc, el))
			return too_big(e);
	}
	return buf_putc(b, '"') ? too_big(e) : 0;
}

static int emit(buf *b, const json_t *v, int depth, cg_err *e)
{
	if (depth > JCS_MAX_DEPTH)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "JSON nested deeper than %d levels", JCS_MAX_DEPTH);
	char num[32];
	switch (json_typeof(v)) {
	case JSON_NULL:
		return buf_append(b, "null", 4) ? too_big(e) : 0;
	case JSON_TRUE:
		return buf_append(b, "true", 4) ? too_big(e) : 0;
	case JSON_FALSE:
		return buf_append(b, "false", 5) ? too_big(e) : 0;
	case JSON_INTEGER: {
		json_int_t i = json_integer_value(v);
		int k;
		if (i <= 9007199254740992LL && i >= -9007199254740992LL) {
			/* every integer up to 2^53 is a double, and ECMAScript prints it as plain digits */
			k = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, i);
		} else {
			/* Beyond 2^53 JCS peers (which read numbers as doubles) print the nearest double's
			 * shortest form. Accept the integer only when that text is its own decimal form, so the
			 * canonical text never denotes another number: 10^18 passes, 2^53 + 1 (which would print
			 * as ...992) and 2^60 (which prints as ...847000) are refused. This also keeps the output
			 * a fixpoint: the text of a big real such as 1e20 reads back as an integer that passes. */
			char exact[32];
			snprintf(exact, sizeof exact, "%" JSON_INTEGER_FORMAT, i);
			k = jcs_format_double((double)i, num);
			if (strcmp(exact, num) != 0)
				return cg_fail(
				    e, CG_E_INVALID_ARGUMENT,
				    "JSON integer %s has no exact ECMAScript form (it would read as %s); use a "
				    "string",
				    exact, num);
		}
		return buf_append(b, num, (size_t)k) ? too_big(e) : 0;
	}
	case JSON_REAL: {
		int k = jcs_format_double(json_real_value(v), num);
		if (k < 0)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "JSON number is not finite");
		return buf_append(b, num, (size_t)k) ? too_big(e) : 0;
	}
	case JSON_STRING:
		return emit_string(b, json_string_value(v), json_string_length(v), e);
	case JSON_ARRAY: {
		if (buf_putc(b, '['))
			return too_big(e);
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (i && buf_putc(b, ','))
				return too_big(e);
			int r = emit(b, json_array_get(v, i), depth + 1, e);
			if (r)
				return r;
		}
		return buf_putc(b, ']') ? too_big(e) : 0;
	}
	case JSON_OBJECT: {
		size_t n = json_object_size(v), i = 0;
		struct key *keys = n ? calloc(n, sizeof *keys) : NULL;
		if (n && !keys)
			return cg_fail(e, CG_E_INTERNAL, "out of memory");
		int r = 0;
		/* json_object_iter takes a non-const object but does not modify it. */
		for (void *it = json_object_iter((json_t *)v); it && i < n;
		     it = json_object_iter_next((json_t *)v, it), i++) {
			keys[i].s = json_object_iter_key(it);
			keys[i].n = json_object_iter_key_len(it);
			keys[i].v = json_object_iter_value(it);
			if (!utf8_valid(keys[i].s, keys[i].n)) {
				r = cg_fail(e, CG_E_INVALID_ARGUMENT, "JSON object key is not valid UTF-8");
				goto obj_out;
			}
		}
		n = i;
		if (n > 1) /* qsort(NULL, 0, ...) is undefined behaviour */
			qsort(keys, n, sizeof *keys, key_cmp);
		if (buf_putc(b, '{')) {
			r = too_big(e);
			goto obj_out;
		}
		for (i = 0; i < n; i++) {
			if (i && buf_putc(b, ',')) {
				r = too_big(e);
				goto obj_out;
			}
			if ((r = emit_string(b, keys[i].s, keys[i].n, e)) != 0)
				goto obj_out;
			if (buf_putc(b, ':')) {
				r = too_big(e);
				goto obj_out;
			}
			if ((r = emit(b, keys[i].v, depth + 1, e)) != 0)
				goto obj_out;
		}
		if (buf_putc(b, '}'))
			r = too_big(e);
	obj_out:
		free(keys);
		return r;
	}
	}
	return cg_fail(e, CG_E_INVALID_ARGUMENT, "unknown JSON value type");
}

char *jcs_canonicalize_n(const json_t *v, size_t *len, cg_err *e)
{
	if (!v) {
		cg_fail(e, CG_E_INVALID_ARGUMENT, "no JSON value");
		return NULL;
	}
	buf b;
	buf_init(&b, JCS_MAX_OUT);
	if (emit(&b, v, 0, e) != 0) {
		buf_done(&b);
		return NULL;
	}
	size_t n = 0;
	/* Never empty (the shortest value is "0"), so data is allocated and NUL-terminated. */
	char *s = (char *)buf_steal(&b, &n);
	if (!s) {
		cg_fail(e, CG_E_INTERNAL, "out of memory");
		return NULL;
	}
	if (len)
		*len = n;
	return s;
}

char *jcs_canonicalize(const json_t *v, cg_err *e)
{
	return jcs_canonicalize_n(v, NULL, e);
}

int jcs_sha256(const json_t *v, char out[static 72], cg_err *e)
{
	size_t n;
	char *s = jcs_canonicalize_n(v, &n, e);
	if (!s)
		return -(int)(e ? e->code : CG_E_INVALID_ARGUMENT);
	sha256_tagged_hex(out, s, n);
	free(s);
	return 0;
}
