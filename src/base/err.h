/* err — the one error convention of clawgrid.
 *
 * Functions return int: 0 on success, a negative cg_code on failure, and fill an optional cg_err with the
 * spec's code and a human message (already redacted). The code maps to exactly one HTTP status and one
 * JSON-RPC error code (ARCHITECTURE.md, "Errors and canonical forms"). */
#ifndef CG_BASE_ERR_H
#define CG_BASE_ERR_H

#include <stdarg.h>

enum cg_code {
	CG_OK = 0,
	CG_E_INVALID_ARGUMENT,
	CG_E_AUTH_REQUIRED,
	CG_E_FORBIDDEN,
	CG_E_NOT_FOUND,
	CG_E_CONFLICT,
	CG_E_EXPIRED,
	CG_E_REVOKED,
	CG_E_QUOTA_EXCEEDED,
	CG_E_RATE_LIMITED,
	CG_E_UNAVAILABLE,
	CG_E_TIMEOUT,
	CG_E_INTERNAL,
	CG_CODE_COUNT
};

typedef struct cg_err {
	enum cg_code code;
	int http_status;   /* 0: the code's default; set for 413/415 and friends */
	int retry_after_s; /* >0: send Retry-After */
	char msg[320];     /* "what failed and why", without the code prefix */
} cg_err;

/* Sets *e (if non-NULL) and returns -code. The message is formatted, then passed through redact_inplace(). */
int cg_fail(cg_err *e, enum cg_code code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int cg_vfail(cg_err *e, enum cg_code code, const char *fmt, va_list ap);
/* Like cg_fail but with an explicit HTTP status (413, 415, ...). */
int cg_fail_http(cg_err *e, enum cg_code code, int http_status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void cg_err_clear(cg_err *e);

const char *cg_code_name(enum cg_code c);      /* "E_CONFLICT" */
int cg_code_from_name(const char *name);       /* -1 when unknown */
int cg_code_http(enum cg_code c);              /* default HTTP status */
int cg_code_rpc(enum cg_code c);               /* JSON-RPC error.code */
int cg_err_http(const cg_err *e);              /* e->http_status or the code's default */

#endif
