#include "crypto/siwe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/wallet.h"

static const char HEADER[] = " wants you to sign in with your Ethereum account:";

/* ---- RFC 3339 ------------------------------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (era arithmetic, valid for every year >= 0). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = y / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int digits(const char *s, size_t n, unsigned *v)
{
	*v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		*v = *v * 10 + (unsigned)(s[i] - '0');
	}
	return 0;
}

int rfc3339_parse_ms(const char *s, size_t n, int64_t *ms)
{
	/* YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM) */
	unsigned Y, M, D, h, mi, sec, oh = 0, om = 0;
	if (n < 20 || digits(s, 4, &Y) || s[4] != '-' || digits(s + 5, 2, &M) || s[7] != '-' || digits(s + 8, 2, &D) ||
	    (s[10] != 'T' && s[10] != 't') || digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) ||
	    s[16] != ':' || digits(s + 17, 2, &sec))
		return -1;
	size_t i = 19;
	unsigned frac_ms = 0;
	if (s[i] == '.') {
		size_t start = ++i;
		while (i < n && s[i] >= '0' && s[i] <= '9') {
			if (i - start < 3)
				frac_ms = frac_ms * 10 + (unsigned)(s[i] - '0');
			i++;
		}
		if (i == start)
			return -1;
		for (size_t k = i - start; k < 3; k++)
			frac_ms *= 10;
	}
	int sign = 0;
	if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
		i++;
	} else if (i < n && (s[i] == '+' || s[i] == '-')) {
		sign = s[i] == '+' ? 1 : -1;
		if (n - i != 6 || digits(s + i + 1, 2, &oh) || s[i + 3] != ':' || digits(s + i + 4, 2, &om))
			return -1;
		i += 6;
	} else {
		return -1;
	}
	if (i != n)
		return -1;
	static const unsigned mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
	/* sec 60 is RFC 3339's leap second; it is counted as the next second */
	if (M < 1 || M > 12 || D < 1 || D > mdays[M - 1] || (M == 2 && D == 29 && !leap) || h > 23 || mi > 59 ||
	    sec > 60 || oh > 23 || om > 59)
		return -1;
	int64_t t = days_from_civil(Y, M, D) * 86400 + h * 3600 + mi * 60 + sec;
	t -= sign * (int64_t)(oh * 3600 + om * 60);
	*ms = t * 1000 + frac_ms;
	return 0;
}

void rfc3339_format_ms(int64_t ms, char out[static 32])
{
	int64_t secs = ms / 1000, rem = ms % 1000;
	if (rem < 0) {
		rem += 1000;
		secs--;
	}
	int64_t days = secs / 86400, sod = secs % 86400;
	if (sod < 0) {
		sod += 86400;
		days--;
	}
	int64_t y;
	unsigned m, d;
	civil_from_days(days, &y, &m, &d);
	if (y < 0 || y > 9999) { /* outside what the format can hold: clamp to the ends */
		snprintf(out, 32, "%s", y < 0 ? "0000-01-01T00:00:00.000Z" : "9999-12-31T23:59:59.999Z");
		return;
	}
	snprintf(out, 32, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", (int)y, m, d, (int)(sod / 3600), (int)(sod / 60 % 60),
	         (int)(sod % 60), (int)rem);
}

/* ---- character classes (RFC 3986) --------------------------------------------------------------- */

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}
static bool is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
static bool is_unreserved(char c)
{
	return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}
static bool is_subdelim(char c)
{
	return c && strchr("!$&'()*+,;=", c) != NULL;
}
static bool is_gendelim(char c)
{
	return c && strchr(":/?#[]@", c) != NULL;
}

/* Length of a pct-encoded triplet at s (3) or 0. */
static size_t pct(const char *s, size_t n)
{
	return (n >= 3 && s[0] == '%' && is_hex(s[1]) && is_hex(s[2])) ? 3 : 0;
}

/* *( unreserved / pct-encoded / sub-delims / extra ) — true when all of s[0..n) matches. */
static bool run_of(const char *s, size_t n, const char *extra)
{
	for (size_t i = 0; i < n;) {
		char c = s[i];
		if (is_unreserved(c) || is_subdelim(c) || (c && strchr(extra, c))) {
			i++;
			continue;
		}
		size_t k = pct(s + i, n - i);
		if (!k)
			return false;
		i += k;
	}
	return true;
}

static bool scheme_ok(const char *s, size_t n)
{
	if (n == 0 || !is_alpha(s[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!is_alpha(s[i]) && !is_digit(s[i]) && s[i] != '+' && s[i] != '-' && s[i] != '.')
			return false;
	return true;
}

/* authority = [ userinfo "@" ] host [ ":" port ]; host = IP-literal / reg-name (IPv4 is a reg-name
 * lexically). The host must not be empty: a sign-in domain names somebody. */
static bool authority_ok(const char *s, size_t n)
{
	const char *at = memrchr(s, '@', n);
	if (at) {
		if (!run_of(s, (size_t)(at - s), ":"))
			return false;
		n -= (size_t)(at + 1 - s);
		s = at + 1;
	}
	size_t hl;
	if (n && s[0] == '[') {
		const char *rb = memchr(s, ']', n);
		if (!rb || rb == s + 1)
			return false;
		/* IPv6address / IPvFuture: hex digits, colons, dots and the IPvFuture characters */
		for (const char *q = s + 1; q < rb; q++)
			if (!is_hex(*q) && *q != ':' && *q != '.' && !is_unreserved(*q) && !is_subdelim(*q))
				return false;
		hl = (size_t)(rb + 1 - s);
	} else {
		hl = 0;
		while (hl < n && s[hl] != ':')
			hl++;
		if (hl == 0 || !run_of(s, hl, ""))
			return false;
	}
	if (hl < n) {
		if (s[hl] != ':')
			return false;
		for (size_t i = hl + 1; i < n; i++)
			if (!is_digit(s[i]))
				return false;
		if (n - hl - 1 > 5)
			return false;
	}
	return true;
}

/* URI = scheme ":" hier-part [ "?" query ] [ "#" fragment ], checked lexically: a valid scheme, an
 * authority after "//" checked as above, and only URI characters (pct-encoded triplets well formed,
 * at most one '#', brackets only inside the authority). */
static bool uri_ok(const char *s, size_t n)
{
	const char *colon = memchr(s, ':', n);
	if (!colon || !scheme_ok(s, (size_t)(colon - s)))
		return false;
	size_t i = (size_t)(colon - s) + 1;
	if (n - i >= 2 && s[i] == '/' && s[i + 1] == '/') {
		size_t a = i + 2, b = a;
		while (b < n && s[b] != '/' && s[b] != '?' && s[b] != '#')
			b++;
		/* "file:///x" has an empty authority, which RFC 3986 allows in URIs */
		if (b > a && !authority_ok(s + a, b - a))
			return false;
		i = b;
	}
	bool frag = false;
	while (i < n) {
		char c = s[i];
		if (c == '#') {
			if (frag)
				return false;
			frag = true;
			i++;
		} else if (c == '[' || c == ']') {
			return false;
		} else if (is_unreserved(c) || is_subdelim(c) || c == ':' || c == '@' || c == '/' || c == '?') {
			i++;
		} else {
			size_t k = pct(s + i, n - i);
			if (!k)
				return false;
			i += k;
		}
	}
	return true;
}

/* statement = *( reserved / unreserved / " " ), non-empty here (an empty statement would need a blank
 * line that parsers, including the reference one, read as "no statement"). */
static bool statement_ok(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_unreserved(s[i]) && !is_subdelim(s[i]) && !is_gendelim(s[i]) && s[i] != ' ')
			return false;
	return true;
}

static bool nonce_ok(const char *s, size_t n)
{
	if (n < 8)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alpha(s[i]) && !is_digit(s[i]))
			return false;
	return true;
}

static bool time_ok(const char *s, size_t n)
{
	int64_t ms;
	return rfc3339_parse_ms(s, n, &ms) == 0;
}

/* ---- parser --------------------------------------------------------------------------------------- */

struct cur {
	const char *p, *end;
};

/* Next line (without its LF). Returns 1 when an LF ended it, 0 when the text ended, -1 when at end. */
static int next_line(struct cur *c, const char **s, size_t *n)
{
	if (c->p > c->end)
		return -1;
	const char *lf = memchr(c->p, '\n', (size_t)(c->end - c->p));
	*s = c->p;
	if (!lf) {
		*n = (size_t)(c->end - c->p);
		c->p = c->end + 1; /* past the end: no more lines */
		return 0;
	}
	*n = (size_t)(lf - c->p);
	c->p = lf + 1;
	return 1;
}

static int copy_field(char *dst, size_t cap, const char *s, size_t n, const char *name, cg_err *e)
{
	if (n >= cap)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "siwe: %s longer than %zu characters", name, cap - 1);
	memcpy(dst, s, n);
	dst[n] = '\0';
	return 0;
}

static bool has_prefix(const char *s, size_t n, const char *pfx, size_t *pl)
{
	*pl = strlen(pfx);
	return n >= *pl && memcmp(s, pfx, *pl) == 0;
}

static int bad(cg_err *e, const char *what)
{
	return cg_fail(e, CG_E_INVALID_ARGUMENT, "siwe: %s", what);
}

/* A "Label: value" line that must come next. */
static int expect_field(struct cur *c, const char *label, const char **v, size_t *vn, bool need_lf, cg_err *e)
{
	const char *s;
	size_t n, pl;
	int r = next_line(c, &s, &n);
	if (r < 0 || !has_prefix(s, n, label, &pl)) {
		char msg[64];
		snprintf(msg, sizeof msg, "expected \"%s\" line", label);
		return bad(e, msg);
	}
	if (need_lf && r != 1)
		return bad(e, "message ends too early");
	*v = s + pl;
	*vn = n - pl;
	return 0;
}

int siwe_parse(const char *text, size_t n, struct siwe_msg *out, cg_err *e)
{
	if (!text || n == 0)
		return bad(e, "empty message");
	if (n > SIWE_MAX_MSG)
		return bad(e, "message longer than 8192 bytes");
	if (memchr(text, '\0', n))
		return bad(e, "message contains a NUL byte");
	struct siwe_msg *m = calloc(1, sizeof *m);
	if (!m)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	struct cur c = {text, text + n};
	const char *s, *v;
	size_t ln, vn;
	int r;

	/* line 1: [ scheme "://" ] domain " wants you to sign in with your Ethereum account:" */
	if (next_line(&c, &s, &ln) != 1 || ln < sizeof HEADER - 1 ||
	    memcmp(s + ln - (sizeof HEADER - 1), HEADER, sizeof HEADER - 1) != 0) {
		r = bad(e, "first line must be \"<domain> wants you to sign in with your Ethereum account:\"");
		goto fail;
	}
	ln -= sizeof HEADER - 1;
	const char *sep = ln >= 3 ? memmem(s, ln, "://", 3) : NULL;
	if (sep) {
		if (!scheme_ok(s, (size_t)(sep - s))) {
			r = bad(e, "invalid scheme");
			goto fail;
		}
		if ((r = copy_field(m->scheme, sizeof m->scheme, s, (size_t)(sep - s), "scheme", e)))
			goto fail;
		ln -= (size_t)(sep + 3 - s);
		s = sep + 3;
	}
	if (!authority_ok(s, ln)) {
		r = bad(e, "domain is not an RFC 3986 authority");
		goto fail;
	}
	if ((r = copy_field(m->domain, sizeof m->domain, s, ln, "domain", e)))
		goto fail;

	/* line 2: the address, EIP-55 checksummed */
	if (next_line(&c, &s, &ln) != 1 || ln != 42) {
		r = bad(e, "second line must be the 0x address");
		goto fail;
	}
	memcpy(m->address, s, 42);
	m->address[42] = '\0';
	{
		uint8_t a[20];
		char want[43];
		if (eth_address_parse(m->address, a, NULL) != 0) {
			r = bad(e, "invalid address");
			goto fail;
		}
		eth_address_checksum(want, a);
		if (strcmp(want, m->address) != 0) {
			r = bad(e, "address must be in EIP-55 checksum form");
			goto fail;
		}
	}

	/* blank line, then either a blank line (no statement) or statement + blank line */
	if (next_line(&c, &s, &ln) != 1 || ln != 0) {
		r = bad(e, "expected a blank line after the address");
		goto fail;
	}
	if (next_line(&c, &s, &ln) != 1) {
		r = bad(e, "message ends too early");
		goto fail;
	}
	if (ln != 0) {
		if (!statement_ok(s, ln)) {
			r = bad(e, "statement has characters outside RFC 3986 reserved/unreserved and space");
			goto fail;
		}
		if ((r = copy_field(m->statement, sizeof m->statement, s, ln, "statement", e)))
			goto fail;
		if (next_line(&c, &s, &ln) != 1 || ln != 0) {
			r = bad(e, "expected a blank line after the statement");
			goto fail;
		}
	}

	if ((r = expect_field(&c, "URI: ", &v, &vn, true, e)))
		goto fail;
	if (!uri_ok(v, vn)) {
		r = bad(e, "URI is not an RFC 3986 URI");
		goto fail;
	}
	if ((r = copy_field(m->uri, sizeof m->uri, v, vn, "URI", e)))
		goto fail;

	if ((r = expect_field(&c, "Version: ", &v, &vn, true, e)))
		goto fail;
	if (vn != 1 || v[0] != '1') {
		r = bad(e, "version must be 1");
		goto fail;
	}
	memcpy(m->version, "1", 2);

	if ((r = expect_field(&c, "Chain ID: ", &v, &vn, true, e)))
		goto fail;
	if (vn == 0 || vn > 19 || (v[0] == '0' && vn > 1)) {
		r = bad(e, "chain id must be a decimal number without leading zeros");
		goto fail;
	}
	for (size_t i = 0; i < vn; i++) {
		if (!is_digit(v[i])) {
			r = bad(e, "chain id must be a decimal number without leading zeros");
			goto fail;
		}
		m->chain_id = m->chain_id * 10 + (uint64_t)(v[i] - '0');
	}

	if ((r = expect_field(&c, "Nonce: ", &v, &vn, true, e)))
		goto fail;
	if (!nonce_ok(v, vn)) {
		r = bad(e, "nonce must be at least 8 letters or digits");
		goto fail;
	}
	if ((r = copy_field(m->nonce, sizeof m->nonce, v, vn, "nonce", e)))
		goto fail;

	if ((r = expect_field(&c, "Issued At: ", &v, &vn, false, e)))
		goto fail;
	if (vn >= sizeof m->issued_at || !time_ok(v, vn)) {
		r = bad(e, "issued-at is not an RFC 3339 date-time");
		goto fail;
	}
	memcpy(m->issued_at, v, vn);

	/* Optional fields, each at most once and in this order. */
	enum { ST_EXP, ST_NBF, ST_RID, ST_RES, ST_DONE } st = ST_EXP;
	bool in_resources = false;
	while (next_line(&c, &s, &ln) >= 0) {
		size_t pl;
		if (in_resources) {
			if (!has_prefix(s, ln, "- ", &pl)) {
				r = bad(e, "expected \"- <URI>\" resource line");
				goto fail;
			}
			if (m->n_resources >= SIWE_MAX_RESOURCES) {
				r = bad(e, "more than 16 resources");
				goto fail;
			}
			if (!uri_ok(s + pl, ln - pl)) {
				r = bad(e, "resource is not an RFC 3986 URI");
				goto fail;
			}
			if ((r = copy_field(m->resources[m->n_resources], sizeof m->resources[0], s + pl, ln - pl,
			                    "resource", e)))
				goto fail;
			m->n_resources++;
		} else if (st <= ST_EXP && has_prefix(s, ln, "Expiration Time: ", &pl)) {
			if (ln - pl >= sizeof m->expiration_time || !time_ok(s + pl, ln - pl)) {
				r = bad(e, "expiration time is not an RFC 3339 date-time");
				goto fail;
			}
			memcpy(m->expiration_time, s + pl, ln - pl);
			st = ST_NBF;
		} else if (st <= ST_NBF && has_prefix(s, ln, "Not Before: ", &pl)) {
			if (ln - pl >= sizeof m->not_before || !time_ok(s + pl, ln - pl)) {
				r = bad(e, "not-before is not an RFC 3339 date-time");
				goto fail;
			}
			memcpy(m->not_before, s + pl, ln - pl);
			st = ST_RID;
		} else if (st <= ST_RID && has_prefix(s, ln, "Request ID: ", &pl)) {
			if (!run_of(s + pl, ln - pl, ":@")) {
				r = bad(e, "request id has characters outside RFC 3986 pchar");
				goto fail;
			}
			if ((r = copy_field(m->request_id, sizeof m->request_id, s + pl, ln - pl, "request id", e)))
				goto fail;
			m->has_request_id = true;
			st = ST_RES;
		} else if (st <= ST_RES && ln == 10 && memcmp(s, "Resources:", 10) == 0) {
			in_resources = true;
			m->has_resources = true;
			st = ST_DONE;
		} else {
			r = bad(e, "unexpected line (unknown, repeated or out of order field)");
			goto fail;
		}
	}
	*out = *m;
	free(m);
	return 0;
fail:
	free(m);
	return r;
}

/* ---- formatter ------------------------------------------------------------------------------------ */

int siwe_format(const struct siwe_msg *m, char *out, size_t cap, cg_err *e)
{
	if (!out || cap == 0)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "siwe: no output buffer");
	char tmp[SIWE_MAX_MSG + 1];
	size_t o = 0;
#define PUT(...)                                                                                                       \
	do {                                                                                                           \
		int k_ = snprintf(tmp + o, sizeof tmp - o, __VA_ARGS__);                                               \
		if (k_ < 0 || (size_t)k_ >= sizeof tmp - o)                                                            \
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "siwe: message too long");                            \
		o += (size_t)k_;                                                                                       \
	} while (0)
	if (m->scheme[0])
		PUT("%s://", m->scheme);
	PUT("%s%s\n%s\n\n", m->domain, HEADER, m->address);
	if (m->statement[0])
		PUT("%s\n\n", m->statement);
	else
		PUT("\n");
	PUT("URI: %s\nVersion: %s\nChain ID: %llu\nNonce: %s\nIssued At: %s", m->uri, m->version,
	    (unsigned long long)m->chain_id, m->nonce, m->issued_at);
	if (m->expiration_time[0])
		PUT("\nExpiration Time: %s", m->expiration_time);
	if (m->not_before[0])
		PUT("\nNot Before: %s", m->not_before);
	if (m->has_request_id)
		PUT("\nRequest ID: %s", m->request_id);
	if (m->n_resources || m->has_resources) {
		if (m->n_resources > SIWE_MAX_RESOURCES)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "siwe: more than 16 resources");
		PUT("\nResources:");
		for (size_t i = 0; i < m->n_resources; i++)
			PUT("\n- %s", m->resources[i]);
	}
#undef PUT
	/* Whatever we emit must parse back: this validates every field with the parser's own rules
	 * (a statement with a newline or a bad URI would otherwise smuggle extra lines in). */
	struct siwe_msg *chk = malloc(sizeof *chk);
	if (!chk)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	int r = siwe_parse(tmp, o, chk, e);
	free(chk);
	if (r)
		return r;
	if (o >= cap)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "siwe: output buffer too small");
	memcpy(out, tmp, o);
	out[o] = '\0';
	return (int)o;
}

/* ---- verification --------------------------------------------------------------------------------- */

int siwe_verify(const char *text, size_t n, const char *sig_hex, const struct siwe_expect *x, struct siwe_msg *out,
                cg_err *e)
{
	struct siwe_msg *m = malloc(sizeof *m);
	if (!m)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	int r = siwe_parse(text, n, m, e);
	if (r)
		goto out;
	char signer[43];
	if ((r = eip191_recover(text, n, sig_hex, signer, e)))
		goto out;
	if (strcmp(signer, m->address) != 0) {
		r = cg_fail(e, CG_E_AUTH_REQUIRED, "siwe: signature is not from the message's address");
		goto out;
	}
	if (x && x->domain && strcmp(x->domain, m->domain) != 0) {
		r = cg_fail(e, CG_E_FORBIDDEN, "siwe: message is for another domain");
		goto out;
	}
	if (x && x->uri && strcmp(x->uri, m->uri) != 0) {
		r = cg_fail(e, CG_E_FORBIDDEN, "siwe: message is for another URI");
		goto out;
	}
	if (x && x->chain_id && x->chain_id != m->chain_id) {
		r = cg_fail(e, CG_E_FORBIDDEN, "siwe: message is for chain %llu", (unsigned long long)m->chain_id);
		goto out;
	}
	if (x && x->nonce && strcmp(x->nonce, m->nonce) != 0) {
		r = cg_fail(e, CG_E_FORBIDDEN, "siwe: nonce does not match the challenge");
		goto out;
	}
	if (x && x->now_ms > 0) {
		int64_t t, skew = x->skew_ms > 0 ? x->skew_ms : 0;
		if (m->expiration_time[0] &&
		    rfc3339_parse_ms(m->expiration_time, strlen(m->expiration_time), &t) == 0 &&
		    x->now_ms >= t + skew) {
			r = cg_fail(e, CG_E_EXPIRED, "siwe: message expired");
			goto out;
		}
		if (m->not_before[0] && rfc3339_parse_ms(m->not_before, strlen(m->not_before), &t) == 0 &&
		    x->now_ms + skew < t) {
			r = cg_fail(e, CG_E_AUTH_REQUIRED, "siwe: message is not valid yet");
			goto out;
		}
	}
	if (out)
		*out = *m;
	r = 0;
out:
	free(m);
	return r;
}
