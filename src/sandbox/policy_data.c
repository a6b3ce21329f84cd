/* The default seccomp policy, embedded byte for byte from src/sandbox/policy/default.policy at build time
 * (the Makefile makes this object depend on that file). The file stays the readable source of truth;
 * `clawgrid sandbox policy` prints this copy and the tests compare the two. */
#include <stddef.h>

#include "sandbox/policy.h"

__asm__(".section .rodata\n"
	".balign 16\n"
	".globl cg_sandbox_policy_text\n"
	".type cg_sandbox_policy_text, @object\n"
	"cg_sandbox_policy_text:\n"
	".incbin \"src/sandbox/policy/default.policy\"\n"
	".globl cg_sandbox_policy_end\n"
	"cg_sandbox_policy_end:\n"
	".byte 0\n"
	".previous\n");

extern const char cg_sandbox_policy_text[];
extern const char cg_sandbox_policy_end[];

const char *sandbox_policy_default_text(size_t *len)
{
	if (len)
		*len = (size_t)(cg_sandbox_policy_end - cg_sandbox_policy_text);
	return cg_sandbox_policy_text;
}
