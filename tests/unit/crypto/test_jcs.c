/* jcs: RFC 8785 canonicalization — the examples of the RFC and its reference test data (cyberphone
 * json-canonicalization testdata: structures, weird, values, french, unicode), the RFC's Appendix B
 * number table, and 3386 doubles whose expected text was produced by ECMAScript's Number::toString
 * (node 20, tests/unit/crypto/jcs_numbers.txt: "hex-ieee,expected"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>

#include "crypto/hash.h"
#include "crypto/jcs.h"

static void canon_eq(const char *in, const char *want)
{
	json_error_t je;
	json_t *v = json_loads(in, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	if (!v)
		fail_msg("parse %s: %s", in, je.text);
	cg_err e;
	char *out = jcs_canonicalize(v, &e);
	if (!out)
		fail_msg("canonicalize %s: %s", in, e.msg);
	assert_string_equal(out, want);
	/* canonical output is a fixpoint */
	json_t *v2 = json_loads(out, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	assert_non_null(v2);
	char *out2 = jcs_canonicalize(v2, &e);
	assert_string_equal(out2, out);
	free(out2);
	json_decref(v2);
	free(out);
	json_decref(v);
}

static void t_reference_testdata(void **s)
{
	(void)s;
	canon_eq("{\n  \"1\": {\"f\": {\"f\": \"hi\",\"F\": 5} ,\"\\n\": 56.0},\n  \"10\": { },\n  \"\": \"empty\",\n"
	         "  \"a\": { },\n  \"111\": [ { } ],\n  \"A\": { }\n}",
	         "{\"\":\"empty\",\"1\":{\"\\n\":56,\"f\":{\"F\":5,\"f\":\"hi\"}},\"10\":{},\"111\":[{}],\"A\":{},"
	         "\"a\":{}}");
	/* keys sorted by UTF-16 code units: U+1F602 (surrogates D83D DE02) sorts before U+FB33 */
	canon_eq(
	    "{\"\\u20ac\": \"Euro Sign\", \"1\": \"One\", \"\\u0080\": \"Control\\u007f\", \"\\ud83d\\ude02\": "
	    "\"Smiley\", \"\\u00f6\": \"Latin Small Letter O With Diaeresis\", \"\\ufb33\": \"Hebrew Letter Dalet "
	    "With Dagesh\", \"</script>\": \"Browser Challenge\"}",
	    "{\"1\":\"One\",\"</script>\":\"Browser Challenge\",\"\xc2\x80\":\"Control\x7f\",\"\xc3\xb6\":\"Latin "
	    "Small "
	    "Letter O With Diaeresis\",\"\xe2\x82\xac\":\"Euro Sign\",\"\xf0\x9f\x98\x82\":\"Smiley\",\"\xef\xac\xb3\":"
	    "\"Hebrew Letter Dalet With Dagesh\"}");
	canon_eq("{\"numbers\": [1E30, 4.50, 333333333.33333329, 2e-3, 0.000000000000000000000000001],"
	         "\"escaping\": \"\\u20ac$\\u000F\\u000aA'\\u0042\\u0022\\u005c\\\\\\\"\\/\","
	         "\"literals\": [null, true, false]}",
	         "{\"escaping\":\"\xe2\x82\xac$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\",\"literals\":[null,true,false],"
	         "\"numbers\":[1e+30,4.5,333333333.3333333,0.002,1e-27]}");
	/* locale-independent ordering */
	canon_eq("{\"peach\": \"This sorting order\", \"p\\u00e9ch\\u00e9\": \"is wrong according to French\", "
	         "\"p\\u00eache\": \"but canonicalization MUST\", \"sin\": \"ingnore locale\"}",
	         "{\"peach\":\"This sorting order\",\"p\xc3\xa9\x63h\xc3\xa9\":\"is wrong according to French\","
	         "\"p\xc3\xaa\x63he\":\"but canonicalization MUST\",\"sin\":\"ingnore locale\"}");
	/* no Unicode normalization */
	canon_eq("{\"Unnormalized Unicode\":\"\\u1e0d\\u0307\"}",
	         "{\"Unnormalized Unicode\":\"\xe1\xb8\x8d\xcc\x87\"}");
}

static void t_strings(void **s)
{
	(void)s;
	/* short escapes, \u00xx lower case for other controls, "/" and DEL and U+2028 literal */
	canon_eq("\"\\b\\f\\n\\r\\t\\u0001\\u001F\\u007f/\\u2028\"",
	         "\"\\b\\f\\n\\r\\t\\u0001\\u001f\x7f/\xe2\x80\xa8\"");
	canon_eq("\"a\\u0000b\"", "\"a\\u0000b\"");
	canon_eq("[]", "[]");
	canon_eq("{}", "{}");
	canon_eq("[1,[2,[3,{\"b\":null,\"a\":[]}]]]", "[1,[2,[3,{\"a\":[],\"b\":null}]]]");
	/* a prefix sorts before its extensions */
	canon_eq("{\"ab\":1,\"a\":2,\"\":3}", "{\"\":3,\"a\":2,\"ab\":1}");
}

static void t_numbers_appendix_b(void **s)
{
	(void)s;
	static const struct {
		uint64_t bits;
		const char *want;
	} v[] = {
	    {0x0000000000000000, "0"},
	    {0x8000000000000000, "0"},
	    {0x0000000000000001, "5e-324"},
	    {0x8000000000000001, "-5e-324"},
	    {0x7fefffffffffffff, "1.7976931348623157e+308"},
	    {0xffefffffffffffff, "-1.7976931348623157e+308"},
	    {0x4340000000000000, "9007199254740992"},
	    {0xc340000000000000, "-9007199254740992"},
	    {0x4430000000000000, "295147905179352830000"},
	    {0x44b52d02c7e14af5, "9.999999999999997e+22"},
	    {0x44b52d02c7e14af6, "1e+23"},
	    {0x44b52d02c7e14af7, "1.0000000000000001e+23"},
	    {0x444b1ae4d6e2ef4e, "999999999999999700000"},
	    {0x444b1ae4d6e2ef4f, "999999999999999900000"},
	    {0x444b1ae4d6e2ef50, "1e+21"},
	    {0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
	    {0x3eb0c6f7a0b5ed8d, "0.000001"},
	    {0x41b3de4355555553, "333333333.3333332"},
	    {0x41b3de4355555554, "333333333.33333325"},
	    {0x41b3de4355555555, "333333333.3333333"},
	    {0x41b3de4355555556, "333333333.3333334"},
	    {0x41b3de4355555557, "333333333.33333343"},
	    {0xbecbf647612f3696, "-0.0000033333333333333333"},
	    {0x43143ff3c1cb0959, "1424953923781206.2"},
	};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		double d;
		memcpy(&d, &v[i].bits, 8);
		char out[32];
		assert_true(jcs_format_double(d, out) > 0);
		assert_string_equal(out, v[i].want);
	}
	char out[32];
	assert_int_equal(jcs_format_double(INFINITY, out), -1);
	assert_int_equal(jcs_format_double(-INFINITY, out), -1);
	assert_int_equal(jcs_format_double(NAN, out), -1);
}

static void t_numbers_es_vectors(void **s)
{
	(void)s;
	const char *root = getenv("CLAWGRID_ROOT");
	char path[512];
	snprintf(path, sizeof path, "%s/tests/unit/crypto/jcs_numbers.txt", root ? root : ".");
	FILE *f = fopen(path, "re");
	if (!f)
		fail_msg("cannot open %s", path);
	char line[128];
	int n = 0;
	while (fgets(line, sizeof line, f)) {
		char *comma = strchr(line, ',');
		assert_non_null(comma);
		*comma = '\0';
		char *want = comma + 1;
		want[strcspn(want, "\n")] = '\0';
		uint64_t bits = 0;
		for (const char *p = line; *p; p++)
			bits = bits << 4 | (uint64_t)(*p <= '9' ? *p - '0' : *p - 'a' + 10);
		double d;
		memcpy(&d, &bits, 8);
		char out[32];
		assert_true(jcs_format_double(d, out) > 0);
		if (strcmp(out, want) != 0)
			fail_msg("%s: got %s want %s", line, out, want);
		n++;
	}
	fclose(f);
	assert_true(n > 3000);
}

static void t_integers(void **s)
{
	(void)s;
	canon_eq("[0,-0,1,-1,9007199254740992,-9007199254740992,1e2,100.0,-0.0]",
	         "[0,0,1,-1,9007199254740992,-9007199254740992,100,100,0]");
	/* beyond 2^53: accepted when ECMAScript prints the same integer */
	json_t *big = json_pack("[I,I,I]", (json_int_t)9007199254740994LL, (json_int_t)1000000000000000000LL,
	                        (json_int_t)(-9007199254740317000LL));
	cg_err e0;
	char *bs = jcs_canonicalize(big, &e0);
	assert_string_equal(bs, "[9007199254740994,1000000000000000000,-9007199254740317000]");
	free(bs);
	json_decref(big);
	/* 2^60 is an exact double but String(2**60) is "1152921504606847000": refused, not rewritten */
	big = json_integer(1152921504606846976LL);
	assert_null(jcs_canonicalize(big, &e0));
	assert_non_null(strstr(e0.msg, "1152921504606847000"));
	json_decref(big);
	/* the text of a big real reads back as an integer, which canonicalizes to the same text */
	canon_eq("[1e18,9.007199254740317e18]", "[1000000000000000000,9007199254740317000]");
	/* 2^53 + 1 would be hashed as 2^53 by a JavaScript peer: refused */
	json_t *v = json_loads("{\"a\":9007199254740993}", 0, NULL);
	cg_err e;
	assert_null(jcs_canonicalize(v, &e));
	assert_int_equal(e.code, CG_E_INVALID_ARGUMENT);
	json_decref(v);
	v = json_integer(-9007199254740993LL);
	assert_null(jcs_canonicalize(v, &e));
	json_decref(v);
	v = json_integer(9223372036854775807LL); /* rounds up to 2^63 */
	assert_null(jcs_canonicalize(v, &e));
	assert_non_null(strstr(e.msg, "9223372036854775807"));
	json_decref(v);
}

static void t_errors_and_hash(void **s)
{
	(void)s;
	cg_err e;
	/* invalid UTF-8 in a value or key (jansson's *_nocheck constructors let it through) */
	json_t *v = json_stringn_nocheck("\xff", 1);
	assert_null(jcs_canonicalize(v, &e));
	assert_int_equal(e.code, CG_E_INVALID_ARGUMENT);
	json_decref(v);
	v = json_object();
	json_object_set_new_nocheck(v, "\xed\xa0\x80", json_true()); /* UTF-8 encoded surrogate */
	assert_null(jcs_canonicalize(v, &e));
	json_decref(v);
	v = json_real(INFINITY);
	if (v) { /* jansson refuses non-finite reals; if it ever accepts one we must */
		assert_null(jcs_canonicalize(v, &e));
		json_decref(v);
	}
	assert_null(jcs_canonicalize(NULL, &e));
	/* too deep */
	json_t *root = json_array(), *cur = root;
	for (int i = 0; i < JCS_MAX_DEPTH + 5; i++) {
		json_t *n = json_array();
		json_array_append_new(cur, n);
		cur = n;
	}
	assert_null(jcs_canonicalize(root, &e));
	assert_non_null(strstr(e.msg, "deeper"));
	json_decref(root);

	/* jcs_sha256 is sha256 of the canonical bytes, key order of the input does not matter */
	json_t *a = json_loads("{\"b\":[1,2.50],\"a\":\"x\"}", 0, NULL);
	json_t *b = json_loads("{ \"a\" : \"x\", \"b\" : [ 1 , 2.5 ] }", 0, NULL);
	char ha[72], hb[72], want[72];
	assert_int_equal(jcs_sha256(a, ha, &e), 0);
	assert_int_equal(jcs_sha256(b, hb, &e), 0);
	assert_string_equal(ha, hb);
	const char *canon = "{\"a\":\"x\",\"b\":[1,2.5]}";
	sha256_tagged_hex(want, canon, strlen(canon));
	assert_string_equal(ha, want);
	size_t len;
	char *c = jcs_canonicalize_n(a, &len, &e);
	assert_int_equal(len, strlen(canon));
	free(c);
	json_decref(a);
	json_decref(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(t_reference_testdata), cmocka_unit_test(t_strings),
	    cmocka_unit_test(t_numbers_appendix_b), cmocka_unit_test(t_numbers_es_vectors),
	    cmocka_unit_test(t_integers),           cmocka_unit_test(t_errors_and_hash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
