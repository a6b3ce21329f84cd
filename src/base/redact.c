#include "base/redact.h"

#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_SECRETS 128

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *secrets[MAX_SECRETS];
static size_t nsecrets;

int redact_register(const char *secret)
{
	if (!secret || strlen(secret) < 4)
		return 0;
	int r = 0;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < nsecrets; i++)
		if (strcmp(secrets[i], secret) == 0)
			goto out;
	if (nsecrets == MAX_SECRETS) {
		r = -1;
		goto out;
	}
	secrets[nsecrets] = strdup(secret);
	if (!secrets[nsecrets])
		r = -1;
	else
		nsecrets++;
out:
	pthread_mutex_unlock(&lock);
	return r;
}

void redact_reset(void)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < nsecrets; i++)
		free(secrets[i]);
	nsecrets = 0;
	pthread_mutex_unlock(&lock);
}

static bool tokch(int c)
{
	return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '+' || c == '/' || c == '=';
}

/* Output builder bounded by cap (always leaves room for NUL). */
struct out {
	char *p;
	size_t n, cap;
};
static void put(struct out *o, const char *s, size_t n)
{
	for (size_t i = 0; i < n && o->n + 1 < o->cap; i++)
		o->p[o->n++] = s[i];
}

static bool ieq_prefix(const char *s, const char *pre)
{
	return strncasecmp(s, pre, strlen(pre)) == 0;
}

static const char *const qkeys[] = {"key=", "token=", "secret=", "password=", "sig=", "api_key=", "apikey=",
				    "access_token=", NULL};

/* Header names whose value is a credential in "Name: value" form (a header dump, an error quoting one). */
static const char *const hdr_names[] = {"authorization", "proxy-authorization", "x-lease-token", "x-api-key",
					"api-key", "cookie", NULL};
/* Field names whose value is a secret in name=value (logfmt, a query or form) and "name":"value" (JSON). */
static const char *const secret_names[] = {"authorization", "password", "passwd", "secret", "client_secret",
					   "api_key", "apikey", "apiKey", "private_key", "privateKey", "secret_key",
					   "secretKey", "access_token", "accessToken", "token", "mnemonic", NULL};
/* Key file lines ("ed25519:<hex seed>", "secp256k1:<hex>"): the hex is the secret key. */
static const char *const key_prefixes[] = {"ed25519:", "secp256k1:", NULL};

static bool wordch(int c)
{
	return isalnum(c) || c == '_' || c == '-';
}

/* Length of the value that starts at v (quoted: up to the closing quote; else one token, and for a header a
 * scheme word plus its credential, e.g. "Digest abc", where *scheme gets the length of "Digest " so that
 * the scheme stays readable). 0 when there is none. */
static size_t value_len(const char *v, size_t avail, bool header, size_t *scheme)
{
	*scheme = 0;
	if (avail && (*v == '"' || *v == '\'')) {
		char q = *v;
		size_t j = 1;
		while (j < avail && v[j] != q)
			j++;
		return j > 1 ? j - 1 : 0; /* the quotes stay, their content goes */
	}
	size_t j = 0;
	while (j < avail && !isspace((unsigned char)v[j]) && v[j] != '"' && v[j] != ',' && v[j] != '&' && v[j] != ';')
		j++;
	if (header && j && j < avail && v[j] == ' ') {
		bool alpha = true;
		for (size_t k = 0; k < j && alpha; k++)
			alpha = isalpha((unsigned char)v[k]);
		if (alpha) {
			size_t c0 = j;
			while (c0 < avail && v[c0] == ' ')
				c0++;
			size_t k = c0;
			while (k < avail && !isspace((unsigned char)v[k]) && v[k] != '"' && v[k] != ',')
				k++;
			if (k > c0) {
				*scheme = c0;
				j = k;
			}
		}
	}
	return j;
}

/* A secret-bearing name at src+i (at a word boundary): returns how many bytes up to and including the
 * separator (and an opening quote of the value) to keep, 0 when this is not one. */
static size_t secret_field(const char *src, size_t i, size_t len, bool *header)
{
	if (i > 0 && (wordch((unsigned char)src[i - 1]) || src[i - 1] == '.'))
		return 0;
	bool quoted = i > 0 && src[i - 1] == '"';
	for (int pass = 0; pass < 2; pass++) {
		const char *const *names = pass ? secret_names : hdr_names;
		for (int k = 0; names[k]; k++) {
			size_t nl = strlen(names[k]);
			if (nl > len - i || strncasecmp(src + i, names[k], nl) != 0 || (i + nl < len && wordch((unsigned char)src[i + nl])))
				continue;
			size_t j = i + nl;
			if (quoted && j < len && src[j] == '"')
				j++; /* "name": JSON */
			while (j < len && src[j] == ' ')
				j++;
			bool colon = j < len && src[j] == ':', eq = j < len && src[j] == '=';
			/* "Name: value" only for header names (an error saying "admin.token: must be ..." is no
			 * secret); name=value and "name":value for the others. */
			if (!(eq || (colon && (pass == 0 || quoted))))
				continue;
			j++;
			while (j < len && src[j] == ' ')
				j++;
			*header = pass == 0 && colon;
			return j - i;
		}
	}
	return 0;
}

void redact_inplace(char *s, size_t cap)
{
	if (!s || cap == 0)
		return;
	size_t len = strlen(s);
	char *src = malloc(len + 1);
	if (!src) {
		s[0] = 0;
		return;
	}
	memcpy(src, s, len + 1);
	struct out o = {s, 0, cap};

	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < len;) {
		/* registered secrets: longest first is not needed, each is matched exactly */
		size_t hit = 0;
		for (size_t k = 0; k < nsecrets; k++) {
			size_t sl = strlen(secrets[k]);
			if (sl <= len - i && memcmp(src + i, secrets[k], sl) == 0 && sl > hit)
				hit = sl;
		}
		if (hit) {
			put(&o, REDACTED, strlen(REDACTED));
			i += hit;
			continue;
		}
		/* lease tokens */
		/* A token starts at a word boundary; "=", "/" or ":" before it (token=tok_...) still count as one. */
		if (strncmp(src + i, "tok_", 4) == 0 &&
		    (i == 0 || !(isalnum((unsigned char)src[i - 1]) || src[i - 1] == '_'))) {
			size_t j = i + 4;
			while (j < len && tokch((unsigned char)src[j]))
				j++;
			if (j - i > 8) {
				put(&o, REDACTED, strlen(REDACTED));
				i = j;
				continue;
			}
		}
		/* key material from key files */
		bool key_hit = false;
		for (int k = 0; key_prefixes[k] && !key_hit; k++) {
			size_t pl = strlen(key_prefixes[k]);
			if (pl > len - i || strncmp(src + i, key_prefixes[k], pl) != 0 ||
			    (i > 0 && wordch((unsigned char)src[i - 1])))
				continue;
			size_t j = i + pl;
			if (j + 1 < len && src[j] == '0' && src[j + 1] == 'x')
				j += 2;
			size_t h = j;
			while (h < len && isxdigit((unsigned char)src[h]))
				h++;
			if (h - j >= 32) {
				put(&o, src + i, pl);
				put(&o, REDACTED, strlen(REDACTED));
				i = h;
				key_hit = true;
			}
		}
		if (key_hit)
			continue;
		/* named secrets: Authorization headers, password=..., "privateKey":"..." */
		if (isalpha((unsigned char)src[i])) {
			bool header = false;
			size_t keep = secret_field(src, i, len, &header);
			if (keep) {
				size_t scheme;
				size_t v = value_len(src + i + keep, len - i - keep, header, &scheme);
				if (v > 0) {
					size_t q = (src[i + keep] == '"' || src[i + keep] == '\'') ? 1 : 0;
					put(&o, src + i, keep + q + scheme);
					v -= scheme;
					put(&o, REDACTED, strlen(REDACTED));
					i += keep + q + v;
					continue;
				}
			}
		}
		/* bearer credentials */
		if (ieq_prefix(src + i, "bearer ") || ieq_prefix(src + i, "basic ")) {
			size_t kw = ieq_prefix(src + i, "bearer ") ? 7 : 6;
			size_t j = i + kw;
			while (j < len && src[j] == ' ')
				j++;
			size_t k = j;
			while (k < len && tokch((unsigned char)src[k]))
				k++;
			if (k > j) {
				put(&o, src + i, kw);
				put(&o, REDACTED, strlen(REDACTED));
				i = k;
				continue;
			}
		}
		/* URL userinfo: scheme://user:pass@ */
		if (strncmp(src + i, "://", 3) == 0) {
			size_t j = i + 3, k = j;
			while (k < len && src[k] != '@' && src[k] != '/' && src[k] != ' ' && src[k] != '"')
				k++;
			if (k < len && src[k] == '@' && k > j) {
				put(&o, "://", 3);
				put(&o, REDACTED, strlen(REDACTED));
				i = k;
				continue;
			}
		}
		/* secret-looking query parameters */
		if (i > 0 && (src[i - 1] == '?' || src[i - 1] == '&')) {
			bool done = false;
			for (int q = 0; qkeys[q]; q++) {
				if (ieq_prefix(src + i, qkeys[q])) {
					size_t kl = strlen(qkeys[q]), j = i + kl;
					while (j < len && src[j] != '&' && src[j] != ' ' && src[j] != '"')
						j++;
					put(&o, src + i, kl);
					put(&o, REDACTED, strlen(REDACTED));
					i = j;
					done = true;
					break;
				}
			}
			if (done)
				continue;
		}
		put(&o, src + i, 1);
		i++;
	}
	pthread_mutex_unlock(&lock);
	o.p[o.n] = 0;
	free(src);
}

char *redact_dup(const char *s)
{
	if (!s)
		return NULL;
	/* Redaction can grow the text (a short secret becomes "[REDACTED]"); give it room. */
	size_t cap = strlen(s) * 3 + 64;
	char *d = malloc(cap);
	if (!d)
		return NULL;
	memcpy(d, s, strlen(s) + 1);
	redact_inplace(d, cap);
	return d;
}
