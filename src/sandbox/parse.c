/* Limits as people write them: sizes ("512M"), durations ("10s"), CPU counts ("1.5"). Pure and bounded. */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "sandbox/sandbox.h"

/* Leading decimal number with an optional fraction of up to 6 digits, as value * 10^6. Returns the
 * number of characters used, or -1. */
static int num_micro(const char *s, uint64_t *out)
{
	uint64_t ip = 0, frac = 0;
	int i = 0, nd = 0;
	for (; s[i] >= '0' && s[i] <= '9'; i++, nd++) {
		if (ip > (UINT64_MAX / 1000000u - 9) / 10)
			return -1;
		ip = ip * 10 + (uint64_t)(s[i] - '0');
	}
	if (s[i] == '.') {
		i++;
		int fd = 0;
		for (; s[i] >= '0' && s[i] <= '9'; i++, fd++) {
			if (fd >= 6)
				return -1;
			frac = frac * 10 + (uint64_t)(s[i] - '0');
		}
		if (fd == 0)
			return -1;
		nd += fd;
		for (; fd < 6; fd++)
			frac *= 10;
	}
	if (nd == 0)
		return -1;
	*out = ip * 1000000u + frac;
	return i;
}

/* v (scaled by 10^6) times mult, rounded down; -1 on overflow. */
static int scale(uint64_t micro, uint64_t mult, uint64_t *out)
{
	uint64_t ip = micro / 1000000u, fr = micro % 1000000u;
	if (mult && ip > UINT64_MAX / mult)
		return -1;
	uint64_t a = ip * mult;
	/* fr < 10^6 and mult <= 2^50 keeps this product below 2^70; split to stay in 64 bits. */
	uint64_t b = (mult / 1000000u) * fr + ((mult % 1000000u) * fr) / 1000000u;
	if (a > UINT64_MAX - b)
		return -1;
	*out = a + b;
	return 0;
}

int sandbox_parse_size(const char *s, uint64_t *out, cg_err *e)
{
	uint64_t m;
	int n = s ? num_micro(s, &m) : -1;
	if (n < 0 || strlen(s) > 32)
		goto bad;
	const char *u = s + n;
	uint64_t mult = 1;
	if (*u) {
		static const struct {
			const char *suf;
			uint64_t mult;
		} units[] = {
			{"", 1},
			{"b", 1},
			{"k", 1ull << 10},
			{"kb", 1ull << 10},
			{"kib", 1ull << 10},
			{"m", 1ull << 20},
			{"mb", 1ull << 20},
			{"mib", 1ull << 20},
			{"g", 1ull << 30},
			{"gb", 1ull << 30},
			{"gib", 1ull << 30},
			{"t", 1ull << 40},
			{"tb", 1ull << 40},
			{"tib", 1ull << 40},
		};
		bool found = false;
		for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
			if (strcasecmp(u, units[i].suf) == 0) {
				mult = units[i].mult;
				found = true;
				break;
			}
		if (!found)
			goto bad;
	}
	if (scale(m, mult, out) != 0)
		goto bad;
	return 0;
bad:
	return cg_fail(e, CG_E_INVALID_ARGUMENT, "size: expected a number with an optional unit (K, M, G, T), "
						 "e.g. 512M");
}

int sandbox_parse_duration(const char *s, uint64_t *ms, cg_err *e)
{
	uint64_t m;
	int n = s ? num_micro(s, &m) : -1;
	if (n < 0 || strlen(s) > 32)
		goto bad;
	const char *u = s + n;
	uint64_t mult; /* milliseconds per unit */
	if (!*u || strcmp(u, "s") == 0)
		mult = 1000;
	else if (strcmp(u, "ms") == 0)
		mult = 1;
	else if (strcmp(u, "m") == 0 || strcmp(u, "min") == 0)
		mult = 60000;
	else if (strcmp(u, "h") == 0)
		mult = 3600000;
	else
		goto bad;
	if (scale(m, mult, ms) != 0 || *ms > 365ull * 24 * 3600000)
		goto bad;
	return 0;
bad:
	return cg_fail(e, CG_E_INVALID_ARGUMENT, "duration: expected a number with a unit (ms, s, m, h), e.g. 30s "
						 "(at most a year)");
}

int sandbox_parse_cpus(const char *s, uint32_t *millis, cg_err *e)
{
	uint64_t m, v;
	int n = s ? num_micro(s, &m) : -1;
	if (n < 0 || s[n] || scale(m, 1000, &v) != 0 || v < 10 || v > 1024 * 1000)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "cpus: expected a number of CPUs from 0.01 to 1024, "
							 "e.g. 1.5");
	*millis = (uint32_t)v;
	return 0;
}
