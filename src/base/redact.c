#include "base/redact.h"

#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

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
