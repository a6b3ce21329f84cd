/* The "sandbox" section of config.json: default backend and limits, strictly validated. */
#include <stdio.h>
#include <string.h>

#include "base/json.h"
#include "sandbox/sandbox.h"

void sandbox_defaults_init(struct sandbox_defaults *d)
{
	memset(d, 0, sizeof *d);
	d->backend = SANDBOX_NATIVE;
	d->mem_bytes = 512ull << 20;
	d->cpu_millis = 1000;
	d->pids = 256;
	d->timeout_ms = 60000;
	d->disk_bytes = 64ull << 20;
	d->out_cap = 1u << 20;
	d->nofile = 256;
}

/* A string limit parsed by fn; the error names the config path. */
static int str_limit(json_t *sec, const char *key, int (*fn)(const char *, uint64_t *, cg_err *), uint64_t min,
		     uint64_t max, uint64_t *out, cg_err *e)
{
	const char *v = NULL;
	int rc = jp_str(sec, "sandbox", key, 0, 1, 32, &v, e);
	if (rc || !v)
		return rc;
	uint64_t x;
	cg_err sub;
	if (fn(v, &x, &sub) != 0)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "sandbox.%s: %s", key, sub.msg);
	if (x < min || x > max)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "sandbox.%s: out of range", key);
	*out = x;
	return 0;
}

int sandbox_config_parse(json_t *sec, struct sandbox_defaults *d, cg_err *e)
{
	static const char *const keys[] = {"backend", "memory", "cpus", "pids", "timeout", "disk",
					   "output_cap", "nofile", NULL};
	static const char *const backends[] = {"native", "bwrap", "runsc", NULL};
	if (!sec)
		return 0;
	if (!json_is_object(sec))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "sandbox: must be an object");
	int rc = jp_only(sec, "sandbox", keys, e);
	const char *b = NULL;
	if (rc == 0)
		rc = jp_enum(sec, "sandbox", "backend", 0, backends, &b, e);
	if (rc == 0 && b)
		sandbox_backend_parse(b, &d->backend);
	uint64_t v;
	if (rc == 0 && (rc = str_limit(sec, "memory", sandbox_parse_size, 4u << 20, 1ull << 42, &d->mem_bytes, e)) == 0)
		rc = str_limit(sec, "disk", sandbox_parse_size, 64u << 10, 1ull << 40, &d->disk_bytes, e);
	if (rc == 0)
		rc = str_limit(sec, "timeout", sandbox_parse_duration, 1, 86400000, &d->timeout_ms, e);
	v = d->out_cap;
	if (rc == 0 && (rc = str_limit(sec, "output_cap", sandbox_parse_size, 1024, 1u << 30, &v, e)) == 0)
		d->out_cap = (size_t)v;
	const char *cpus = NULL;
	if (rc == 0 && (rc = jp_str(sec, "sandbox", "cpus", 0, 1, 16, &cpus, e)) == 0 && cpus) {
		cg_err sub;
		if (sandbox_parse_cpus(cpus, &d->cpu_millis, &sub) != 0)
			rc = cg_fail(e, CG_E_INVALID_ARGUMENT, "sandbox.cpus: %s", sub.msg);
	}
	int64_t n = d->pids;
	if (rc == 0 && (rc = jp_int(sec, "sandbox", "pids", 0, 1, 1 << 22, &n, e)) == 0)
		d->pids = (uint32_t)n;
	n = d->nofile;
	if (rc == 0 && (rc = jp_int(sec, "sandbox", "nofile", 0, 8, 1 << 20, &n, e)) == 0)
		d->nofile = (uint32_t)n;
	return rc;
}

void sandbox_defaults_apply(const struct sandbox_defaults *d, struct sandbox_spec *s, bool backend_unset)
{
	if (backend_unset)
		s->backend = d->backend;
	if (!s->mem_bytes)
		s->mem_bytes = d->mem_bytes;
	if (!s->cpu_millis)
		s->cpu_millis = d->cpu_millis;
	if (!s->pids)
		s->pids = d->pids;
	if (!s->timeout_ms)
		s->timeout_ms = d->timeout_ms;
	if (!s->disk_bytes)
		s->disk_bytes = d->disk_bytes;
	if (!s->out_cap)
		s->out_cap = d->out_cap;
	if (!s->nofile)
		s->nofile = d->nofile;
}
