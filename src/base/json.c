#include "base/json.h"

#include <stdio.h>
#include <string.h>

static const char *fname(char *buf, size_t cap, const char *pfx, const char *key)
{
	if (pfx && *pfx)
		snprintf(buf, cap, "%s.%s", pfx, key);
	else
		snprintf(buf, cap, "%s", key);
	return buf;
}

/* Looks up key; returns 1 if present (and not a tolerated null), 0 if absent, <0 on error. */
static int lookup(json_t *obj, const char *pfx, const char *key, unsigned flags, json_t **v, cg_err *e)
{
	char f[160];
	if (!json_is_object(obj))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: params must be an object",
			       (pfx && *pfx) ? pfx : "params");
	*v = json_object_get(obj, key);
	if (*v && json_is_null(*v) && (flags & JP_NULLABLE))
		*v = NULL;
	if (!*v) {
		if (flags & JP_REQUIRED)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: is required", fname(f, sizeof f, pfx, key));
		return 0;
	}
	return 1;
}

int jp_str(json_t *obj, const char *pfx, const char *key, unsigned flags, size_t minlen, size_t maxlen,
	   const char **out, cg_err *e)
{
	json_t *v;
	char f[160];
	int r = lookup(obj, pfx, key, flags, &v, e);
	if (r <= 0)
		return r;
	if (!json_is_string(v))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: must be a string", fname(f, sizeof f, pfx, key));
	size_t n = json_string_length(v);
	if (n < minlen || n > maxlen || strlen(json_string_value(v)) != n)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: must be a string of %zu..%zu characters",
			       fname(f, sizeof f, pfx, key), minlen, maxlen);
	*out = json_string_value(v);
	return 0;
}

int jp_int(json_t *obj, const char *pfx, const char *key, unsigned flags, int64_t min, int64_t max,
	   int64_t *out, cg_err *e)
{
	json_t *v;
	char f[160];
	int r = lookup(obj, pfx, key, flags, &v, e);
	if (r <= 0)
		return r;
	if (!json_is_integer(v))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: must be an integer", fname(f, sizeof f, pfx, key));
	int64_t x = (int64_t)json_integer_value(v);
	if (x < min || x > max)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: must be between %lld and %lld",
			       fname(f, sizeof f, pfx, key), (long long)min, (long long)max);
	*out = x;
	return 0;
}

int jp_bool(json_t *obj, const char *pfx, const char *key, unsigned flags, bool *out, cg_err *e)
{
	json_t *v;
	char f[160];
	int r = lookup(obj, pfx, key, flags, &v, e);
	if (r <= 0)
		return r;
	if (!json_is_boolean(v))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: must be a boolean", fname(f, sizeof f, pfx, key));
	*out = json_is_true(v);
	return 0;
}

int jp_obj(json_t *obj, const char *pfx, const char *key, unsigned flags, json_t **out, cg_err *e)
{
	json_t *v;
	char f[160];
	int r = lookup(obj, pfx, key, flags, &v, e);
	if (r <= 0)
		return r;
	if (!json_is_object(v))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: must be an object", fname(f, sizeof f, pfx, key));
	*out = v;
	return 0;
}

int jp_arr(json_t *obj, const char *pfx, const char *key, unsigned flags, size_t maxitems, json_t **out,
	   cg_err *e)
{
	json_t *v;
	char f[160];
	int r = lookup(obj, pfx, key, flags, &v, e);
	if (r <= 0)
		return r;
	if (!json_is_array(v) || json_array_size(v) > maxitems)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: must be an array of at most %zu items",
			       fname(f, sizeof f, pfx, key), maxitems);
	*out = v;
	return 0;
}

bool json_is_amount_str(const char *s)
{
	if (!s)
		return false; /* callers pass json_string_value(), NULL for a missing or non-string value */
	size_t n = strlen(s);
	if (n == 0 || n > 78 || (n > 1 && s[0] == '0'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

int jp_amount(json_t *obj, const char *pfx, const char *key, unsigned flags, const char **out, cg_err *e)
{
	json_t *v;
	char f[160];
	int r = lookup(obj, pfx, key, flags, &v, e);
	if (r <= 0)
		return r;
	if (!json_is_string(v) || !json_is_amount_str(json_string_value(v)))
		return cg_fail(e, CG_E_INVALID_ARGUMENT,
			       "%s: must be a decimal string of base units (digits only, no leading zeros)",
			       fname(f, sizeof f, pfx, key));
	*out = json_string_value(v);
	return 0;
}

int jp_enum(json_t *obj, const char *pfx, const char *key, unsigned flags, const char *const *allowed,
	    const char **out, cg_err *e)
{
	const char *s = NULL;
	char f[160];
	int r = jp_str(obj, pfx, key, flags, 1, 64, &s, e);
	if (r < 0 || !s)
		return r;
	for (int i = 0; allowed[i]; i++)
		if (strcmp(s, allowed[i]) == 0) {
			*out = s;
			return 0;
		}
	char list[256] = "";
	for (int i = 0; allowed[i]; i++) {
		size_t l = strlen(list);
		snprintf(list + l, sizeof list - l, "%s%s", i ? "|" : "", allowed[i]);
	}
	return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: must be one of %s", fname(f, sizeof f, pfx, key), list);
}

int jp_only(json_t *obj, const char *pfx, const char *const *allowed, cg_err *e)
{
	const char *k;
	json_t *v;
	char f[160];
	if (!json_is_object(obj))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: must be an object", (pfx && *pfx) ? pfx : "params");
	json_object_foreach(obj, k, v)
	{
		bool ok = false;
		for (int i = 0; allowed[i] && !ok; i++)
			ok = strcmp(k, allowed[i]) == 0;
		if (!ok)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: unknown field", fname(f, sizeof f, pfx, k));
	}
	return 0;
}

char *json_dump_compact(const json_t *v)
{
	return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}
