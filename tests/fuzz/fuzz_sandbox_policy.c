/* Fuzz what the sandbox parses from outside: seccomp policy files (--policy, custom policies from the
 * market) and the size/duration/CPU strings of flags and config. The first byte picks the parser. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox/policy.h"
#include "sandbox/sandbox.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	cg_err e;
	if (data[0] == 's' || data[0] == 'd' || data[0] == 'c') {
		char s[64];
		size_t n = size - 1 < sizeof s - 1 ? size - 1 : sizeof s - 1;
		memcpy(s, data + 1, n);
		s[n] = 0;
		uint64_t v;
		uint32_t m;
		if (data[0] == 's')
			sandbox_parse_size(s, &v, &e);
		else if (data[0] == 'd')
			sandbox_parse_duration(s, &v, &e);
		else
			sandbox_parse_cpus(s, &m, &e);
		return 0;
	}
	struct sandbox_policy *p = NULL;
	if (sandbox_policy_parse((const char *)data, size, &p, &e) == 0) {
		/* What parses must also compile or fail cleanly, and export to OCI JSON. */
		uint8_t *bpf = NULL;
		size_t len = 0;
		if (sandbox_policy_bpf(p, &bpf, &len, &e) == 0)
			free(bpf);
		json_t *o = sandbox_policy_oci(p);
		char *t = json_dumps(o, JSON_COMPACT);
		if (t)
			sandbox_policy_oci_fix(t);
		free(t);
		json_decref(o);
		sandbox_policy_free(p);
	}
	return 0;
}
