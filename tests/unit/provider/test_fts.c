/* FTS backend: extraction, ranking, snippets, site filter, incremental refresh, hostile queries, no paths out. */
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

#include "provider/fts.h"

static char dir[64], folder[128];

static void put(const char *rel, const char *text)
{
	char p[256];
	snprintf(p, sizeof p, "%s/%s", folder, rel);
	FILE *f = fopen(p, "we");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **s)
{
	snprintf(dir, sizeof dir, "/tmp/cg-fts-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(folder, sizeof folder, "%s/site", dir);
	assert_int_equal(mkdir(folder, 0700), 0);
	char sub[160];
	snprintf(sub, sizeof sub, "%s/guide", folder);
	assert_int_equal(mkdir(sub, 0700), 0);
	put("guide/lease.md", "# Leasing resources\n\nA lease grants access to a provider resource until it expires.\n");
	put("ledger.html", "<html><head><title>The &amp; ledger</title><style>.x{color:red}</style>"
			   "<script>var secretword=1;</script></head><body><p>Every <b>ledger</b> entry is signed.</p>"
			   "</body></html>");
	put("notes.txt", "Storage notes\nBlobs are content addressed by sha256.\n");
	put(".hidden.md", "# hidden\nzebra\n");
	put("binary.bin", "zebra");
	char target[200], link[200];
	snprintf(target, sizeof target, "%s/outside.md", dir);
	FILE *f = fopen(target, "we");
	fputs("# outside\nzebra unicorn\n", f);
	fclose(f);
	snprintf(link, sizeof link, "%s/link.md", folder);
	assert_int_equal(symlink(target, link), 0);
	return 0;
}

static int teardown(void **s)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static void t_extract(void **s)
{
	char *title, *text;
	const char *html = "<title>T&lt;1&gt;</title><p>a&nbsp;b &#65;&#x42;</p><SCRIPT>evil()</SCRIPT>c";
	assert_int_equal(fts_extract('h', html, strlen(html), &title, &text), 0);
	assert_string_equal(title, "T<1>");
	assert_string_equal(text, "a b AB c");
	free(title);
	free(text);
	assert_int_equal(fts_extract('m', "intro\n## Sub title\nbody", 23, &title, &text), 0);
	assert_string_equal(title, "Sub title");
	free(title);
	free(text);
	assert_int_equal(fts_extract('t', "\n\n  first line \nsecond", 22, &title, &text), 0);
	assert_string_equal(title, "first line");
	free(title);
	free(text);
	/* Unterminated tags and entities do not run off the end. */
	assert_int_equal(fts_extract('h', "<p>x &am", 8, &title, &text), 0);
	free(title);
	free(text);
	assert_int_equal(fts_extract('h', "<tit", 4, &title, &text), 0);
	free(title);
	free(text);
}

static void t_index_query(void **s)
{
	char db[160];
	snprintf(db, sizeof db, "%s/index.db", dir);
	struct fts *f;
	cg_err e;
	assert_int_equal(fts_open(folder, db, "https://docs.example/", &f, &e), 0);
	json_t *st = NULL, *res = NULL;
	assert_int_equal(fts_refresh(f, &st, &e), 0);
	assert_int_equal(json_integer_value(json_object_get(st, "indexed")), 3);
	json_decref(st);
	assert_int_equal(fts_query(f, "lease", NULL, 5, &res, &e), 0);
	assert_int_equal(json_array_size(res), 1);
	json_t *r0 = json_array_get(res, 0);
	assert_string_equal(json_string_value(json_object_get(r0, "url")), "https://docs.example/guide/lease.md");
	assert_string_equal(json_string_value(json_object_get(r0, "title")), "Leasing resources");
	assert_non_null(strstr(json_string_value(json_object_get(r0, "snippet")), "lease"));
	json_decref(res);
	/* Title words rank above body words. */
	assert_int_equal(fts_query(f, "ledger storage", NULL, 5, &res, &e), 0);
	assert_int_equal(json_array_size(res), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(res, 0), "title")), "The & ledger");
	json_decref(res);
	/* Hidden files, symlinks out of the folder, other extensions and script text are not indexed. */
	assert_int_equal(fts_query(f, "zebra unicorn secretword", NULL, 5, &res, &e), 0);
	assert_int_equal(json_array_size(res), 0);
	json_decref(res);
	/* FTS5 syntax in user input is just text. */
	static const char *const hostile[] = {"\"", "lease NEAR(", "title:lease", "*", "(", "AND OR NOT", "'; DROP", NULL};
	for (int i = 0; hostile[i]; i++) {
		assert_int_equal(fts_query(f, hostile[i], NULL, 5, &res, &e), 0);
		json_decref(res);
	}
	/* Site filter on the url. */
	assert_int_equal(fts_query(f, "lease ledger storage", "https://docs.example/guide/", 5, &res, &e), 0);
	assert_int_equal(json_array_size(res), 1);
	json_decref(res);
	/* Limit. */
	assert_int_equal(fts_query(f, "ledger storage lease", NULL, 2, &res, &e), 0);
	assert_int_equal(json_array_size(res), 2);
	char *dump = json_dumps(res, 0);
	assert_null(strstr(dump, dir)); /* no real path in results */
	free(dump);
	json_decref(res);
	/* Incremental: change one, delete one, add one. */
	sleep(0);
	put("notes.txt", "Storage notes v2\nQuotas are per lease; kangaroo.\n");
	char p[200];
	snprintf(p, sizeof p, "%s/ledger.html", folder);
	assert_int_equal(unlink(p), 0);
	put("guide/new.md", "# New page\nkangaroo facts\n");
	assert_int_equal(fts_refresh(f, &st, &e), 0);
	assert_int_equal(json_integer_value(json_object_get(st, "removed")), 1);
	assert_int_equal(json_integer_value(json_object_get(st, "indexed")), 1);
	assert_int_equal(json_integer_value(json_object_get(st, "unchanged")) + json_integer_value(json_object_get(st, "updated")), 2);
	json_decref(st);
	assert_int_equal(fts_query(f, "kangaroo", NULL, 5, &res, &e), 0);
	assert_int_equal(json_array_size(res), 2);
	json_decref(res);
	assert_int_equal(fts_query(f, "signed", NULL, 5, &res, &e), 0);
	assert_int_equal(json_array_size(res), 0);
	json_decref(res);
	fts_free(f);
	/* A reopened index keeps its rows: nothing is re-read. */
	assert_int_equal(fts_open(folder, db, NULL, &f, &e), 0);
	assert_int_equal(fts_refresh(f, &st, &e), 0);
	assert_int_equal(json_integer_value(json_object_get(st, "indexed")), 0);
	assert_int_equal(json_integer_value(json_object_get(st, "unchanged")), 3);
	json_decref(st);
	assert_int_equal(fts_query(f, "kangaroo", NULL, 5, &res, &e), 0);
	/* Without a base URL, documents are named doc:/<relative path>. */
	assert_int_equal(json_array_size(res), 2);
	const char *u0 = json_string_value(json_object_get(json_array_get(res, 0), "url"));
	const char *u1 = json_string_value(json_object_get(json_array_get(res, 1), "url"));
	assert_true((!strcmp(u0, "doc:/guide/new.md") && !strcmp(u1, "doc:/notes.txt")) ||
		    (!strcmp(u1, "doc:/guide/new.md") && !strcmp(u0, "doc:/notes.txt")));
	json_decref(res);
	fts_free(f);
	assert_int_equal(fts_open("/nonexistent-folder-xyz", db, NULL, &f, &e), -CG_E_INVALID_ARGUMENT);
	assert_null(strstr(e.msg, "nonexistent"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_extract),
		cmocka_unit_test_setup_teardown(t_index_query, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
