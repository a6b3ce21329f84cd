#include "base/err.h"

#include <stdio.h>
#include <string.h>

#include "base/redact.h"

static const struct {
	const char *name;
	int http;
	int rpc;
} codes[CG_CODE_COUNT] = {
	[CG_OK] = {"OK", 200, 0},
	[CG_E_INVALID_ARGUMENT] = {"E_INVALID_ARGUMENT", 400, -32602},
	[CG_E_AUTH_REQUIRED] = {"E_AUTH_REQUIRED", 401, -32001},
	[CG_E_FORBIDDEN] = {"E_FORBIDDEN", 403, -32003},
	[CG_E_NOT_FOUND] = {"E_NOT_FOUND", 404, -32004},
	[CG_E_CONFLICT] = {"E_CONFLICT", 409, -32009},
	[CG_E_EXPIRED] = {"E_EXPIRED", 409, -32010},
	[CG_E_REVOKED] = {"E_REVOKED", 409, -32011},
	[CG_E_QUOTA_EXCEEDED] = {"E_QUOTA_EXCEEDED", 429, -32029},
	[CG_E_RATE_LIMITED] = {"E_RATE_LIMITED", 429, -32029},
	[CG_E_UNAVAILABLE] = {"E_UNAVAILABLE", 503, -32053},
	[CG_E_TIMEOUT] = {"E_TIMEOUT", 504, -32054},
	[CG_E_INTERNAL] = {"E_INTERNAL", 500, -32603},
};

int cg_vfail(cg_err *e, enum cg_code code, const char *fmt, va_list ap)
{
	if (code <= CG_OK || code >= CG_CODE_COUNT)
		code = CG_E_INTERNAL;
	if (e) {
		e->code = code;
		e->http_status = 0;
		e->retry_after_s = 0;
		vsnprintf(e->msg, sizeof e->msg, fmt, ap);
		redact_inplace(e->msg, sizeof e->msg);
	}
	return -(int)code;
}

int cg_fail(cg_err *e, enum cg_code code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = cg_vfail(e, code, fmt, ap);
	va_end(ap);
	return r;
}

int cg_fail_http(cg_err *e, enum cg_code code, int http_status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = cg_vfail(e, code, fmt, ap);
	va_end(ap);
	if (e)
		e->http_status = http_status;
	return r;
}

void cg_err_clear(cg_err *e)
{
	if (e)
		memset(e, 0, sizeof *e);
}

const char *cg_code_name(enum cg_code c)
{
	return (c >= 0 && c < CG_CODE_COUNT) ? codes[c].name : "E_INTERNAL";
}

int cg_code_from_name(const char *name)
{
	for (int i = 1; i < CG_CODE_COUNT; i++)
		if (strcmp(codes[i].name, name) == 0)
			return i;
	return -1;
}

int cg_code_http(enum cg_code c)
{
	return (c >= 0 && c < CG_CODE_COUNT) ? codes[c].http : 500;
}

int cg_code_rpc(enum cg_code c)
{
	return (c > 0 && c < CG_CODE_COUNT) ? codes[c].rpc : -32603;
}

int cg_err_http(const cg_err *e)
{
	return e->http_status ? e->http_status : cg_code_http(e->code);
}
