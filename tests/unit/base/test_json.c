/* json getters: absent optional fields leave *out alone, wrong types and ranges name the field with the
 * path prefix, unknown fields are refused by name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/json.h"

static json_t *obj;

static int setup(void **st)
{
	(void)st;
	obj = json_loads("{\"s\":\"abc\",\"i\":42,\"b\":true,\"o\":{},\"a\":[1,2,3],\"amt\":\"1000\","
			 "\"z\":\"007\",\"n\":null,\"e\":\"red\",\"nul\":\"a\\u0000b\"}",
			 JSON_ALLOW_NUL, NULL);
	return obj ? 0 : -1;
}

static int teardown(void **st)
{
	(void)st;
	json_decref(obj);
	return 0;
}

static void t_getters(void **st)
{
	(void)st;
	cg_err e;
	const char *s = "untouched";
	int64_t i = -1;
	bool b = false;
	json_t *o = NULL, *a = NULL;
	assert_int_equal(jp_str(obj, NULL, "s", JP_REQUIRED, 1, 10, &s, &e), 0);
	assert_string_equal(s, "abc");
	assert_int_equal(jp_int(obj, "p", "i", 0, 0, 100, &i, &e), 0);
	assert_int_equal(i, 42);
	assert_int_equal(jp_bool(obj, NULL, "b", 0, &b, &e), 0);
	assert_true(b);
	assert_int_equal(jp_obj(obj, NULL, "o", 0, &o, &e), 0);
	assert_non_null(o);
	assert_int_equal(jp_arr(obj, NULL, "a", 0, 3, &a, &e), 0);
	assert_int_equal(json_array_size(a), 3);
	/* absent optional: 0 and untouched */
	s = "untouched";
	assert_int_equal(jp_str(obj, NULL, "missing", 0, 1, 10, &s, &e), 0);
	assert_string_equal(s, "untouched");
	/* null counts as absent only when allowed */
	assert_int_equal(jp_str(obj, NULL, "n", JP_NULLABLE, 1, 10, &s, &e), 0);
	assert_int_equal(jp_str(obj, NULL, "n", 0, 1, 10, &s, &e), -CG_E_INVALID_ARGUMENT);
}

static void t_errors_name_fields(void **st)
{
	(void)st;
	cg_err e;
	const char *s;
	int64_t i;
	json_t *a;
	assert_int_equal(jp_str(obj, "resource", "missing", JP_REQUIRED, 1, 10, &s, &e), -CG_E_INVALID_ARGUMENT);
	assert_string_equal(e.msg, "resource.missing: is required");
	assert_int_equal(e.code, CG_E_INVALID_ARGUMENT);
	assert_int_equal(jp_str(obj, NULL, "i", 0, 1, 10, &s, &e), -CG_E_INVALID_ARGUMENT);
	assert_string_equal(e.msg, "i: must be a string");
	assert_int_equal(jp_str(obj, NULL, "s", 0, 4, 10, &s, &e), -CG_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "s: must be a string of 4..10"));
	assert_int_equal(jp_str(obj, NULL, "nul", 0, 1, 10, &s, &e), -CG_E_INVALID_ARGUMENT); /* embedded NUL */
	assert_int_equal(jp_int(obj, "x", "i", 0, 50, 60, &i, &e), -CG_E_INVALID_ARGUMENT);
	assert_string_equal(e.msg, "x.i: must be between 50 and 60");
	assert_int_equal(jp_int(obj, NULL, "s", 0, 0, 1, &i, &e), -CG_E_INVALID_ARGUMENT);
	assert_string_equal(e.msg, "s: must be an integer");
	assert_int_equal(jp_arr(obj, NULL, "a", 0, 2, &a, &e), -CG_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "a: must be an array of at most 2"));
	static const char *const colors[] = {"green", "blue", NULL};
	assert_int_equal(jp_enum(obj, NULL, "e", 0, colors, &s, &e), -CG_E_INVALID_ARGUMENT);
	assert_string_equal(e.msg, "e: must be one of green|blue");
	static const char *const keys[] = {"s", "i", NULL};
	assert_int_equal(jp_only(obj, "params", keys, &e), -CG_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "params."));
	assert_non_null(strstr(e.msg, ": unknown field"));
	json_t *arr = json_array();
	assert_int_equal(jp_str(arr, NULL, "x", 0, 0, 1, &s, &e), -CG_E_INVALID_ARGUMENT);
	assert_string_equal(e.msg, "params: params must be an object");
	json_decref(arr);
}

static void t_amounts(void **st)
{
	(void)st;
	cg_err e;
	const char *s;
	assert_int_equal(jp_amount(obj, NULL, "amt", JP_REQUIRED, &s, &e), 0);
	assert_string_equal(s, "1000");
	assert_int_equal(jp_amount(obj, NULL, "z", 0, &s, &e), -CG_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "z: must be a decimal string"));
	assert_int_equal(jp_amount(obj, NULL, "i", 0, &s, &e), -CG_E_INVALID_ARGUMENT); /* numbers are refused */
	assert_true(json_is_amount_str("0"));
	assert_false(json_is_amount_str(""));
	assert_false(json_is_amount_str("-1"));
	assert_false(json_is_amount_str("1.5"));
	char big[80];
	memset(big, '9', 78);
	big[78] = 0;
	assert_true(json_is_amount_str(big));
	big[78] = '9';
	big[79] = 0;
	assert_false(json_is_amount_str(big));
	char *d = json_dump_compact(obj);
	assert_non_null(strstr(d, "{\"a\":[1,2,3],\"amt\":\"1000\",\"b\":true"));
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(t_getters), cmocka_unit_test(t_errors_name_fields),
					   cmocka_unit_test(t_amounts)};
	return cmocka_run_group_tests(tests, setup, teardown);
}
