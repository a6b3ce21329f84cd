/* libFuzzer target: storage virtual paths and list prefixes (provider/pstore.h). A path that passes the check
 * must hold no NUL, control character, backslash, leading '/', empty, "." or ".." segment. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "provider/pstore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cg_err e;
	const char *p = (const char *)data;
	if (pstore_path_check(p, size, &e) == 0) {
		if (size == 0 || size > PSTORE_PATH_MAX || p[0] == '/' || p[size - 1] == '/')
			abort();
		for (size_t i = 0; i < size; i++)
			if (data[i] < 0x20 || data[i] == 0x7f || data[i] == '\\')
				abort();
		if (memmem(p, size, "//", 2) || (size >= 2 && !memcmp(p, "./", 2)) || (size >= 3 && !memcmp(p, "../", 3)) ||
		    memmem(p, size, "/../", 4) || memmem(p, size, "/./", 3) ||
		    (size >= 3 && !memcmp(p + size - 3, "/..", 3)) || (size >= 2 && !memcmp(p + size - 2, "/.", 2)) ||
		    (size == 1 && p[0] == '.') || (size == 2 && !memcmp(p, "..", 2)))
			abort();
	}
	(void)pstore_prefix_check(p, size, &e);
	return 0;
}
