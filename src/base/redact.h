/* redact — keeps secrets out of every log line, error message and status output.
 *
 * Always redacted: lease tokens (tok_…), bearer credentials (Authorization values), URL userinfo
 * (scheme://user:pass@host), query-string values named key/token/secret/password/sig.
 * Also redacted: every string registered with redact_register() (upstream endpoints, API keys, real paths
 * of data and storage folders). Registered strings are copied; the table is process-wide and thread-safe. */
#ifndef CG_BASE_REDACT_H
#define CG_BASE_REDACT_H

#include <stddef.h>

#define REDACTED "[REDACTED]"

/* Rewrites s (NUL-terminated, buffer of cap bytes) in place; output is truncated to fit. */
void redact_inplace(char *s, size_t cap);
/* Returns a newly allocated redacted copy of s (caller frees), or NULL on OOM. */
char *redact_dup(const char *s);
/* Registers a sensitive string (length >= 4). Returns 0, or -1 when the table is full. */
int redact_register(const char *secret);
/* Forgets all registered strings (tests). */
void redact_reset(void);

#endif
