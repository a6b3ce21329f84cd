/* json — typed, bounded access to JSON parameters over jansson, with errors that name the field.
 *
 * Every getter takes the object, an optional path prefix for messages ("resource" -> "resource.label"),
 * the key, and flags. Missing optional fields leave *out untouched and return 0. Wrong types, out-of-range
 * values and missing required fields return -CG_E_INVALID_ARGUMENT with a message such as
 *   "resource.label: must be a string of 1..80 characters".
 * Returned strings and objects are borrowed from the JSON value. */
#ifndef CG_BASE_JSON_H
#define CG_BASE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/err.h"

#define JP_REQUIRED 1u
#define JP_NULLABLE 2u /* an explicit null counts as absent */

int jp_str(json_t *obj, const char *pfx, const char *key, unsigned flags, size_t minlen, size_t maxlen,
	   const char **out, cg_err *e);
int jp_int(json_t *obj, const char *pfx, const char *key, unsigned flags, int64_t min, int64_t max,
	   int64_t *out, cg_err *e);
int jp_bool(json_t *obj, const char *pfx, const char *key, unsigned flags, bool *out, cg_err *e);
int jp_obj(json_t *obj, const char *pfx, const char *key, unsigned flags, json_t **out, cg_err *e);
int jp_arr(json_t *obj, const char *pfx, const char *key, unsigned flags, size_t maxitems, json_t **out,
	   cg_err *e);
/* A decimal string of base units: /^[0-9]+$/, at most 78 digits (uint256), no leading zeros except "0". */
int jp_amount(json_t *obj, const char *pfx, const char *key, unsigned flags, const char **out, cg_err *e);
/* One of the listed strings (NULL-terminated list). */
int jp_enum(json_t *obj, const char *pfx, const char *key, unsigned flags, const char *const *allowed,
	    const char **out, cg_err *e);
/* Rejects keys not in allowed (NULL-terminated). */
int jp_only(json_t *obj, const char *pfx, const char *const *allowed, cg_err *e);

bool json_is_amount_str(const char *s);

/* Serializes compactly with sorted keys; caller frees. */
char *json_dump_compact(const json_t *v);

#endif
