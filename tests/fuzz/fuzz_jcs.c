/* libFuzzer target for jcs: parse arbitrary JSON with jansson, canonicalize it, and check that the
 * canonical form is a fixpoint (canonicalizing its own parse gives the same bytes). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "crypto/jcs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 16)
		return 0;
	json_error_t je;
	json_t *v = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	if (!v)
		return 0;
	cg_err e;
	size_t n;
	char *out = jcs_canonicalize_n(v, &n, &e);
	json_decref(v);
	if (!out) {
		/* rejection must say why, with the documented code */
		if (e.code != CG_E_INVALID_ARGUMENT || e.msg[0] == '\0')
			abort();
		return 0;
	}
	if (strlen(out) != n && !memchr(out, '\0', n))
		abort();
	json_t *v2 = json_loadb(out, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	if (!v2) {
		/* ECMAScript prints big doubles as digits ("1e+20" -> 100000000000000000000), which jansson
		 * cannot hold as an integer; anything else is an invalid canonical form. */
		if (json_error_code(&je) != json_error_numeric_overflow)
			abort();
		free(out);
		return 0;
	}
	size_t n2;
	char *out2 = jcs_canonicalize_n(v2, &n2, &e);
	json_decref(v2);
	if (!out2 || n2 != n || memcmp(out, out2, n) != 0)
		abort();
	free(out);
	free(out2);
	return 0;
}
