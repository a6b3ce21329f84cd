/* sandbox policy — the seccomp allow-list, parsed from its readable text form (src/sandbox/policy/
 * default.policy, whose syntax is described at the top of that file) and compiled with libseccomp.
 *
 * The parser is pure (text in, rules out, nothing executed) and bounded: at most SANDBOX_POLICY_MAX_RULES
 * rules and SANDBOX_POLICY_MAX_LINE bytes a line; errors name the line. */
#ifndef CG_SANDBOX_POLICY_H
#define CG_SANDBOX_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/err.h"

#define SANDBOX_POLICY_MAX_RULES 2048
#define SANDBOX_POLICY_MAX_LINE 512
#define SANDBOX_POLICY_MAX_BYTES (256u << 10)

enum sandbox_act { SBA_ALLOW = 0, SBA_KILL, SBA_ERRNO, SBA_LOG, SBA_TRAP };
enum sandbox_op { SBO_EQ = 0, SBO_NE, SBO_LT, SBO_LE, SBO_GT, SBO_GE, SBO_MASKED_EQ, SBO_NE32 };

struct sandbox_cond {
	uint8_t arg; /* 0..5 */
	uint8_t op;  /* enum sandbox_op */
	uint64_t mask, value;
};

struct sandbox_rule {
	int nr;             /* native syscall number */
	uint8_t action;     /* enum sandbox_act */
	uint16_t err;       /* errno for SBA_ERRNO */
	uint8_t ncond;
	struct sandbox_cond cond[6];
	unsigned line;
};

struct sandbox_policy {
	uint8_t def_action;
	uint16_t def_err;
	size_t n;
	struct sandbox_rule *rules;
};

/* The policy text embedded at build time (NUL-terminated; static storage). */
const char *sandbox_policy_default_text(size_t *len);

/* Parses text (len bytes, need not be NUL-terminated). On success *out is a new policy (caller frees with
 * sandbox_policy_free). Errors: E_INVALID_ARGUMENT "policy line N: ...". */
int sandbox_policy_parse(const char *text, size_t len, struct sandbox_policy **out, cg_err *e);
void sandbox_policy_free(struct sandbox_policy *p);

/* Compiles to a classic BPF program for the native architecture (other ABIs kill the process).
 * *prog gets malloc'd sock_filter bytes (caller frees), *len their size in bytes. */
int sandbox_policy_bpf(const struct sandbox_policy *p, uint8_t **prog, size_t *len, cg_err *e);
/* The same policy as an OCI runtime-spec "linux.seccomp" object (for runsc). Caller decrefs. */
json_t *sandbox_policy_oci(const struct sandbox_policy *p);
/* Rewrites the serialized JSON in place so uint64 values above INT64_MAX are plain numbers. */
void sandbox_policy_oci_fix(char *text);
/* Whether a syscall (by name) would be allowed unconditionally; for `sandbox check` and tests. */
int sandbox_policy_action_of(const struct sandbox_policy *p, const char *syscall_name);

#endif
