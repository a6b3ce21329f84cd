/* Storage backend: virtual path rules, content addressing, atomic blobs, namespaces, quota, listing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/enc.h"
#include "crypto/hash.h"
#include "provider/pstore.h"
#include "store/store.h"

struct fx {
	char dir[64], root[128];
	struct store *st;
	struct pstore *ps;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	snprintf(f->dir, sizeof f->dir, "/tmp/cg-pstore-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	char db[128];
	snprintf(db, sizeof db, "%s/db.sqlite", f->dir);
	snprintf(f->root, sizeof f->root, "%s/blobs-root", f->dir);
	cg_err e;
	assert_int_equal(store_open(db, 0, &f->st, &e), 0);
	assert_int_equal(pstore_open(f->st, f->root, &f->ps, &e), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	pstore_free(f->ps);
	store_close(f->st);
	char cmd[200];
	snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static int chk(const char *p)
{
	cg_err e;
	return pstore_path_check(p, strlen(p), &e);
}

static void t_paths(void **s)
{
	static const char *const good[] = {"a", "a/b/c.txt", "docs/report 2026.md", "émoji/日本.txt", "a..b", ".hidden",
					   "x/.y", "%_*", NULL};
	static const char *const bad[] = {"", "/abs", "../x", "a/../b", "a/..", "./a", "a/./b", "a//b", "a/", "a\\b",
					  "tab\there", "nl\nx", "del\x7f", "\xc0\xaf", "\xed\xa0\x80", "\xc2\x85",
					  "\xff", NULL};
	for (int i = 0; good[i]; i++)
		assert_int_equal(chk(good[i]), 0);
	for (int i = 0; bad[i]; i++) {
		cg_err e;
		assert_int_equal(pstore_path_check(bad[i], strlen(bad[i]), &e), -CG_E_INVALID_ARGUMENT);
		assert_true(strncmp(e.msg, "path:", 5) == 0);
	}
	/* An embedded NUL (length counts past it) is refused. */
	cg_err e;
	assert_int_equal(pstore_path_check("a\0b", 3, &e), -CG_E_INVALID_ARGUMENT);
	char longp[PSTORE_PATH_MAX + 2];
	memset(longp, 'a', sizeof longp - 1);
	longp[sizeof longp - 1] = 0;
	for (int i = 100; i < PSTORE_PATH_MAX; i += 100)
		longp[i] = '/';
	assert_int_equal(chk(longp), -CG_E_INVALID_ARGUMENT);
	char seg[300];
	memset(seg, 'b', 256);
	seg[256] = 0;
	assert_int_equal(chk(seg), -CG_E_INVALID_ARGUMENT);
	seg[255] = 0;
	assert_int_equal(chk(seg), 0);
	/* Prefixes may be empty or end with '/', nothing else changes. */
	assert_int_equal(pstore_prefix_check("", 0, &e), 0);
	assert_int_equal(pstore_prefix_check("docs/", 5, &e), 0);
	assert_int_equal(pstore_prefix_check("docs/re", 7, &e), 0);
	assert_int_equal(pstore_prefix_check("../", 3, &e), -CG_E_INVALID_ARGUMENT);
	assert_int_equal(pstore_prefix_check("/x", 2, &e), -CG_E_INVALID_ARGUMENT);
}

static void blob_file(struct fx *f, const char *etag, char *out, size_t cap)
{
	snprintf(out, cap, "%s/blobs/%.2s/%s", f->root, etag, etag);
}

static void t_roundtrip(void **state)
{
	struct fx *f = *state;
	cg_err e;
	json_t *out = NULL, *meta = NULL;
	const char *txt = "hello storage";
	assert_int_equal(pstore_put(f->ps, "ns1", "lea_1", "a/b.txt", (const uint8_t *)txt, strlen(txt), "text/plain", 0,
				    &out, &e),
			 0);
	uint8_t d[32];
	char hex[65];
	sha256(d, txt, strlen(txt));
	hex_encode(hex, d, 32);
	assert_string_equal(json_string_value(json_object_get(out, "etag")), hex);
	assert_int_equal(json_integer_value(json_object_get(out, "size")), strlen(txt));
	assert_true(strncmp(json_string_value(json_object_get(out, "cid")), "bafkrei", 7) == 0);
	char bf[256];
	blob_file(f, hex, bf, sizeof bf);
	struct stat sb;
	assert_int_equal(stat(bf, &sb), 0);
	json_decref(out);
	uint8_t *data = NULL;
	size_t n = 0;
	assert_int_equal(pstore_get(f->ps, "ns1", "a/b.txt", &data, &n, &meta, &e), 0);
	assert_int_equal(n, strlen(txt));
	assert_memory_equal(data, txt, n);
	assert_string_equal(json_string_value(json_object_get(meta, "mime")), "text/plain");
	free(data);
	json_decref(meta);
	/* Another namespace does not see it. */
	assert_int_equal(pstore_get(f->ps, "ns2", "a/b.txt", &data, &n, &meta, &e), -CG_E_NOT_FOUND);
	/* Same bytes at a second path share the blob; overwriting the first keeps it for the second. */
	assert_int_equal(pstore_put(f->ps, "ns1", "lea_1", "copy.txt", (const uint8_t *)txt, strlen(txt), NULL, 0, &out, &e),
			 0);
	assert_string_equal(json_string_value(json_object_get(out, "mime")), "application/octet-stream");
	json_decref(out);
	assert_int_equal(pstore_put(f->ps, "ns1", "lea_1", "a/b.txt", (const uint8_t *)"v2", 2, "text/plain", 0, &out, &e),
			 0);
	json_decref(out);
	assert_int_equal(stat(bf, &sb), 0);
	assert_int_equal(pstore_put(f->ps, "ns1", "lea_1", "copy.txt", (const uint8_t *)"v3", 2, NULL, 0, &out, &e), 0);
	json_decref(out);
	/* No path refers to the first content any more: its blob is gone. */
	assert_int_equal(stat(bf, &sb), -1);
	/* Empty objects are fine. */
	assert_int_equal(pstore_put(f->ps, "ns1", "lea_1", "empty", (const uint8_t *)"", 0, NULL, 0, &out, &e), 0);
	json_decref(out);
	assert_int_equal(pstore_get(f->ps, "ns1", "empty", &data, &n, &meta, &e), 0);
	assert_int_equal(n, 0);
	free(data);
	json_decref(meta);
	/* Bad paths never reach the index. */
	assert_int_equal(pstore_put(f->ps, "ns1", "lea_1", "../etc/passwd", (const uint8_t *)"x", 1, NULL, 0, &out, &e),
			 -CG_E_INVALID_ARGUMENT);
	assert_int_equal(pstore_get(f->ps, "ns1", "/etc/passwd", &data, &n, &meta, &e), -CG_E_INVALID_ARGUMENT);
}

static void t_corrupt(void **state)
{
	struct fx *f = *state;
	cg_err e;
	json_t *out = NULL, *meta = NULL;
	assert_int_equal(pstore_put(f->ps, "ns", "lea", "x", (const uint8_t *)"abcdef", 6, NULL, 0, &out, &e), 0);
	char bf[256];
	blob_file(f, json_string_value(json_object_get(out, "etag")), bf, sizeof bf);
	json_decref(out);
	FILE *fp = fopen(bf, "r+e");
	assert_non_null(fp);
	fputs("XYZ", fp);
	fclose(fp);
	uint8_t *data = NULL;
	size_t n;
	assert_int_equal(pstore_get(f->ps, "ns", "x", &data, &n, &meta, &e), -CG_E_INTERNAL);
	/* The error never names the real folder. */
	assert_null(strstr(e.msg, f->root));
	assert_null(strstr(e.msg, "/tmp"));
}

static void t_quota(void **state)
{
	struct fx *f = *state;
	cg_err e;
	json_t *out = NULL;
	uint8_t buf[1000];
	memset(buf, 'q', sizeof buf);
	assert_int_equal(pstore_put(f->ps, "ns", "lea_q", "one", buf, 600, NULL, 1000, &out, &e), 0);
	json_decref(out);
	assert_int_equal(pstore_put(f->ps, "ns", "lea_q", "two", buf, 500, NULL, 1000, &out, &e), -CG_E_QUOTA_EXCEEDED);
	/* Replacing an object counts the new size instead of the old. */
	assert_int_equal(pstore_put(f->ps, "ns", "lea_q", "one", buf, 900, NULL, 1000, &out, &e), 0);
	json_decref(out);
	assert_int_equal(pstore_lease_bytes(f->ps, "lea_q"), 900);
	/* Another lease has its own budget. */
	assert_int_equal(pstore_put(f->ps, "ns", "lea_r", "two", buf, 500, NULL, 1000, &out, &e), 0);
	json_decref(out);
}

static void t_list(void **state)
{
	struct fx *f = *state;
	cg_err e;
	json_t *out = NULL;
	static const char *const paths[] = {"docs/a.md", "docs/b.md", "docs%/c", "img/x.png", "zz", NULL};
	for (int i = 0; paths[i]; i++) {
		assert_int_equal(pstore_put(f->ps, "L", "lea", paths[i], (const uint8_t *)paths[i], strlen(paths[i]), NULL,
					    0, &out, &e),
				 0);
		json_decref(out);
	}
	assert_int_equal(pstore_list(f->ps, "L", "docs/", 50, &out, &e), 0);
	json_t *items = json_object_get(out, "items");
	assert_int_equal(json_array_size(items), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "path")), "docs/a.md");
	assert_false(json_is_true(json_object_get(out, "truncated")));
	json_decref(out);
	/* '%' is literal, not a LIKE wildcard. */
	assert_int_equal(pstore_list(f->ps, "L", "docs%", 50, &out, &e), 0);
	assert_int_equal(json_array_size(json_object_get(out, "items")), 1);
	json_decref(out);
	assert_int_equal(pstore_list(f->ps, "L", NULL, 2, &out, &e), 0);
	assert_int_equal(json_array_size(json_object_get(out, "items")), 2);
	assert_true(json_is_true(json_object_get(out, "truncated")));
	json_decref(out);
	assert_int_equal(pstore_list(f->ps, "other", NULL, 50, &out, &e), 0);
	assert_int_equal(json_array_size(json_object_get(out, "items")), 0);
	json_decref(out);
	assert_int_equal(pstore_list(f->ps, "L", "../", 50, &out, &e), -CG_E_INVALID_ARGUMENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_paths),
		cmocka_unit_test_setup_teardown(t_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(t_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(t_quota, setup, teardown),
		cmocka_unit_test_setup_teardown(t_list, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
