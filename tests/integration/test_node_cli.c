/* The CLI against a real node: init (idempotent, modes), id --json (offline, exact shape), status (text and
 * --json), rpc (params, errors, exit codes), export / import (round trip, refusal while a node runs,
 * atomic failure). */
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

#include "harness.h"

static struct hnode *node;

static int setup(void **st)
{
	(void)st;
	node = h_node_new(NULL);
	return node ? 0 : -1;
}

static int teardown(void **st)
{
	(void)st;
	if (node->pid)
		h_node_stop(node);
	h_log_assert_clean(node, NULL);
	h_node_free(node);
	return 0;
}

static mode_t mode_of(const char *path)
{
	struct stat s;
	assert_int_equal(stat(path, &s), 0);
	return s.st_mode & 0777;
}

static void t_init(void **st)
{
	(void)st;
	assert_int_equal(mode_of(node->dir), 0700);
	assert_int_equal(mode_of(h_node_path(node, "node.key")), 0600);
	assert_int_equal(mode_of(h_node_path(node, "wallet.key")), 0600);
	assert_int_equal(mode_of(h_node_path(node, "admin.token")), 0600);
	assert_int_equal(mode_of(h_node_path(node, "config.json")), 0600);
	/* the token: 32 random bytes, base64url */
	assert_int_equal(strlen(node->token), 43);
	assert_int_equal(strspn(node->token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), 43);
	char *before = h_read_file(h_node_path(node, "node.key"), NULL);
	char *err = NULL, *out = NULL;
	assert_int_equal(h_cli(node, &out, &err, "init", NULL), 1);
	assert_non_null(strstr(err, "already initialized"));
	free(err);
	free(out);
	assert_int_equal(h_cli(node, &out, &err, "init", "--quiet-if-exists", NULL), 0);
	assert_string_equal(out, "");
	free(err);
	free(out);
	char *after = h_read_file(h_node_path(node, "node.key"), NULL);
	assert_string_equal(before, after); /* the key was not replaced */
	free(before);
	free(after);
	/* the key material is never printed */
	char *key = h_read_file(h_node_path(node, "wallet.key"), NULL);
	assert_int_equal(h_cli(node, &out, &err, "id", NULL), 0);
	assert_null(strstr(out, key + 10));
	free(key);
	free(out);
	free(err);
}

static void t_id_json(void **st)
{
	(void)st;
	char *out = NULL;
	/* offline: no node is running */
	assert_int_equal(h_cli(node, &out, NULL, "id", "--json", NULL), 0);
	char expect[256];
	snprintf(expect, sizeof expect, "{\"peerId\":\"%s\",\"address\":\"%s\"}\n", node->peer_id, node->address);
	assert_string_equal(out, expect);
	assert_true(strncmp(node->peer_id, "12D3KooW", 8) == 0);
	assert_int_equal(strlen(node->address), 42);
	assert_true(strncmp(node->address, "0x", 2) == 0);
	free(out);
	/* --json before the command works too */
	assert_int_equal(h_cli(node, &out, NULL, "--json", "id", NULL), 0);
	assert_string_equal(out, expect);
	free(out);
}

static void t_status_and_rpc(void **st)
{
	(void)st;
	char *out = NULL, *err = NULL;
	/* no node yet: exit 3 */
	assert_int_equal(h_cli(node, &out, &err, "status", NULL), 3);
	assert_non_null(strstr(err, "clawgrid node"));
	free(out);
	free(err);
	assert_int_equal(h_node_start(node), 0);
	assert_int_equal(h_cli(node, &out, &err, "status", NULL), 0);
	assert_non_null(strstr(out, node->peer_id));
	assert_non_null(strstr(out, "unavailable"));
	assert_non_null(strstr(out, "unbound"));
	free(out);
	free(err);
	assert_int_equal(h_cli(node, &out, &err, "status", "--json", NULL), 0);
	json_t *j = json_loads(out, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "node"), "peerId")), node->peer_id);
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(json_object_get(j, "summary"), "brain"), "availability")),
		"unavailable");
	json_decref(j);
	free(out);
	free(err);
	/* rpc with params */
	assert_int_equal(h_cli(node, &out, &err, "rpc", "rpc.methods", "{\"prefix\":\"node.\"}", NULL), 0);
	j = json_loads(out, 0, NULL);
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "methods"), 0)), "node.info");
	json_decref(j);
	free(out);
	free(err);
	/* an RPC error: exit 1 with the code on stderr */
	assert_int_equal(h_cli(node, &out, &err, "rpc", "rpc.methods", "{\"prefix\":1}", NULL), 1);
	assert_non_null(strstr(err, "E_INVALID_ARGUMENT"));
	assert_non_null(strstr(err, "prefix"));
	free(out);
	free(err);
	/* bad params text: usage */
	assert_int_equal(h_cli(node, &out, &err, "rpc", "node.info", "{nope", NULL), 2);
	free(out);
	free(err);
	/* a wrong admin token: exit 4 */
	char *tok = h_read_file(h_node_path(node, "admin.token"), NULL);
	FILE *f = fopen(h_node_path(node, "admin.token"), "w");
	fputs("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n", f);
	fclose(f);
	assert_int_equal(h_cli(node, &out, &err, "status", NULL), 4);
	assert_non_null(strstr(err, "E_AUTH_REQUIRED"));
	free(out);
	free(err);
	f = fopen(h_node_path(node, "admin.token"), "w");
	fputs(tok, f);
	fclose(f);
	free(tok);
	assert_int_equal(h_cli(node, &out, &err, "status", NULL), 0);
	free(out);
	free(err);
	assert_int_equal(h_node_stop(node), 0);
}

/* Without node.api (no node running on this data dir) the CLI never guesses an address: not api.listen, not
 * 127.0.0.1:7878. Here another node listens exactly at api.listen; the CLI must not send it our token. A
 * stale node.api (the node was killed) is no better. --api names a node explicitly. */
static void t_no_guessing(void **st)
{
	(void)st;
	char *out = NULL, *err = NULL;
	struct hnode *other = h_node_new(NULL);
	assert_non_null(other);
	assert_int_equal(h_node_start(other), 0);
	char cfg[160];
	snprintf(cfg, sizeof cfg, "{\"api\":{\"listen\":\"%s\"}}", other->api);
	assert_int_equal(h_node_write_config(node, cfg), 0);
	assert_int_equal(h_cli(node, &out, &err, "status", NULL), 3);
	assert_non_null(strstr(err, "no node running"));
	assert_non_null(strstr(err, "clawgrid node"));
	free(out);
	free(err);
	assert_int_equal(h_cli(node, &out, &err, "--json", "rpc", "node.info", NULL), 3);
	json_t *j = json_loads(err, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "data"), "code")), "E_UNAVAILABLE");
	json_decref(j);
	free(out);
	free(err);
	/* a stale node.api left by a killed node, its pid gone */
	FILE *f = fopen(h_node_path(node, "node.api"), "w");
	fprintf(f, "%s\n", other->api);
	fclose(f);
	f = fopen(h_node_path(node, "node.pid"), "w");
	fputs("999999999\n", f);
	fclose(f);
	assert_int_equal(h_cli(node, &out, &err, "status", NULL), 3);
	assert_non_null(strstr(err, "no node running"));
	free(out);
	free(err);
	unlink(h_node_path(node, "node.api"));
	/* --api: talks to that node, with this data dir's token (refused there: exit 4) */
	assert_int_equal(h_cli(node, &out, &err, "--api", other->api, "status", NULL), 4);
	assert_non_null(strstr(err, "E_AUTH_REQUIRED"));
	free(out);
	free(err);
	assert_int_equal(h_cli(other, &out, &err, "--api", other->api, "status", "--json", NULL), 0);
	assert_non_null(strstr(out, other->peer_id));
	free(out);
	free(err);
	assert_int_equal(h_cli(node, &out, &err, "--api", "not-an-address", "status", NULL), 2);
	free(out);
	free(err);
	/* no token file in an initialized dir: authentication (4); an uninitialized dir: 3 */
	char *tok = h_read_file(h_node_path(node, "admin.token"), NULL);
	unlink(h_node_path(node, "admin.token"));
	assert_int_equal(h_cli(node, &out, &err, "--api", other->api, "status", NULL), 4);
	free(out);
	free(err);
	f = fopen(h_node_path(node, "admin.token"), "w");
	fputs(tok, f);
	fclose(f);
	chmod(h_node_path(node, "admin.token"), 0600);
	free(tok);
	const char *const argv[] = {"--data-dir", h_root_path(node, "never-initialized"), "status", NULL};
	assert_int_equal(h_cliv(node, &out, &err, argv), 3);
	assert_non_null(strstr(err, "not initialized"));
	free(out);
	free(err);
	assert_int_equal(h_node_stop(other), 0);
	h_node_free(other);
	assert_int_equal(h_node_write_config(node, "{}"), 0);
}

/* rpc: an unknown method is E_NOT_FOUND naming it (exit 1), --help is not an error. */
static void t_rpc_cli_errors(void **st)
{
	(void)st;
	char *out = NULL, *err = NULL;
	assert_int_equal(h_node_start(node), 0);
	assert_int_equal(h_cli(node, &out, &err, "rpc", "no.such.method", NULL), 1);
	assert_non_null(strstr(err, "E_NOT_FOUND"));
	assert_non_null(strstr(err, "no.such.method"));
	free(out);
	free(err);
	assert_int_equal(h_cli(node, &out, &err, "rpc", "--help", NULL), 0);
	assert_non_null(strstr(out, "usage: clawgrid rpc"));
	free(out);
	free(err);
	assert_int_equal(h_cli(node, &out, &err, "rpc", NULL), 2);
	assert_non_null(strstr(err, "usage"));
	free(out);
	free(err);
	assert_int_equal(h_cli(node, &out, &err, "status", "--help", NULL), 0);
	free(out);
	free(err);
	/* the summary's billing credits are an amount even when nothing is bound */
	assert_int_equal(h_cli(node, &out, &err, "status", NULL), 0);
	assert_non_null(strstr(out, "credits 0"));
	free(out);
	free(err);
	assert_int_equal(h_node_stop(node), 0);
	/* the node created its store 0600 */
	assert_int_equal(mode_of(h_node_path(node, "clawgrid.db")), 0600);
}

/* export -> import into a fresh data dir -> export: the same bytes. */
static void t_export_bytes(void **st)
{
	(void)st;
	char *one = NULL, *two = NULL, *err = NULL;
	assert_int_equal(h_cli(node, &one, &err, "export", NULL), 0);
	free(err);
	char path[600];
	snprintf(path, sizeof path, "%s/bytes.json", node->root);
	FILE *f = fopen(path, "w");
	fputs(one, f);
	fclose(f);
	struct hnode *fresh = h_node_new(NULL);
	assert_non_null(fresh);
	assert_int_equal(h_cli(fresh, NULL, &err, "import", path, NULL), 0);
	free(err);
	assert_int_equal(mode_of(h_node_path(fresh, "clawgrid.db")), 0600);
	assert_int_equal(h_cli(fresh, &two, &err, "export", NULL), 0);
	free(err);
	assert_string_equal(one, two);
	assert_null(strstr(one, "exportedAt"));
	free(one);
	free(two);
	h_node_free(fresh);
}

static int count_rows(json_t *doc, const char *table)
{
	return (int)json_array_size(json_object_get(json_object_get(json_object_get(doc, "tables"), table), "rows"));
}

static void t_export_import(void **st)
{
	(void)st;
	char *out = NULL, *err = NULL;
	/* the node has run once, so the store exists */
	assert_int_equal(h_cli(node, &out, &err, "export", NULL), 0);
	json_t *doc = json_loads(out, 0, NULL);
	assert_non_null(doc);
	free(out);
	free(err);
	assert_string_equal(json_string_value(json_object_get(doc, "format")), "clawgrid-export");
	assert_int_equal(json_integer_value(json_object_get(doc, "version")), 1);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(doc, "schemaVersions"), "node")), 1);
	assert_int_equal(count_rows(doc, "node_meta"), 2);
	assert_true(count_rows(doc, "schema_version") >= 1);

	/* add a table with every value kind, export to a file, wipe it, import, compare */
	json_t *tables = json_object_get(doc, "tables");
	json_array_append_new(json_object_get(doc, "objects"),
			      json_pack("{s:s,s:s,s:s}", "type", "table", "name", "t_kinds", "sql",
					"CREATE TABLE t_kinds(id INTEGER PRIMARY KEY AUTOINCREMENT, i INTEGER, r REAL, s TEXT, "
					"b BLOB, n)"));
	json_array_append_new(json_object_get(doc, "objects"),
			      json_pack("{s:s,s:s,s:s}", "type", "index", "name", "t_kinds_s", "sql",
					"CREATE INDEX t_kinds_s ON t_kinds(s)"));
	json_object_set_new(tables, "t_kinds",
			    json_pack("{s:[s,s,s,s,s,s],s:[[i,I,f,s,{s:s},n]]}", "columns", "id", "i", "r", "s", "b", "n",
				      "rows", 7, (json_int_t)9007199254740993LL, 2.5, "héllo", "$base64", "AAEC/w=="));
	char path[600], path2[600];
	snprintf(path, sizeof path, "%s/in.json", node->root);
	snprintf(path2, sizeof path2, "%s/out.json", node->root);
	assert_int_equal(json_dump_file(doc, path, JSON_COMPACT), 0);
	assert_int_equal(h_cli(node, &out, &err, "import", path, NULL), 0);
	free(out);
	free(err);
	assert_int_equal(h_cli(node, &out, &err, "export", path2, NULL), 0);
	free(out);
	free(err);
	assert_int_equal(mode_of(path2), 0600);
	json_t *back = json_load_file(path2, 0, NULL);
	assert_non_null(back);
	json_t *row = json_array_get(json_object_get(json_object_get(json_object_get(back, "tables"), "t_kinds"), "rows"), 0);
	assert_int_equal(json_integer_value(json_array_get(row, 0)), 7);
	assert_int_equal(json_integer_value(json_array_get(row, 1)), 9007199254740993LL);
	assert_true(json_real_value(json_array_get(row, 2)) == 2.5);
	assert_string_equal(json_string_value(json_array_get(row, 3)), "héllo");
	assert_string_equal(json_string_value(json_object_get(json_array_get(row, 4), "$base64")), "AAEC/w==");
	assert_true(json_is_null(json_array_get(row, 5)));
	assert_true(json_equal(json_object_get(json_object_get(back, "tables"), "node_meta"),
			       json_object_get(tables, "node_meta")));
	assert_int_equal(count_rows(back, "sqlite_sequence"), 1);
	json_decref(back);

	/* the node starts on the imported store */
	assert_int_equal(h_node_start(node), 0);
	/* import refuses a running node, and changes nothing */
	assert_int_equal(h_cli(node, &out, &err, "import", path, NULL), 1);
	assert_non_null(strstr(err, "another node"));
	free(out);
	free(err);
	/* export works next to a running node */
	assert_int_equal(h_cli(node, &out, &err, "export", NULL), 0);
	assert_non_null(strstr(out, "t_kinds"));
	free(out);
	free(err);
	assert_int_equal(h_node_stop(node), 0);

	/* a bad row rolls the whole import back */
	json_object_set_new(tables, "t_kinds",
			    json_pack("{s:[s,s],s:[[i,i],[i]]}", "columns", "id", "i", "rows", 1, 2, 3));
	assert_int_equal(json_dump_file(doc, path, JSON_COMPACT), 0);
	assert_int_equal(h_cli(node, &out, &err, "import", path, NULL), 1);
	assert_non_null(strstr(err, "rows[1]"));
	assert_non_null(strstr(err, "nothing was changed"));
	free(out);
	free(err);
	/* a statement smuggled into the schema is refused */
	json_array_append_new(json_object_get(doc, "objects"),
			      json_pack("{s:s,s:s,s:s}", "type", "table", "name", "evil", "sql",
					"CREATE TABLE evil(a); DROP TABLE node_meta"));
	assert_int_equal(json_dump_file(doc, path, JSON_COMPACT), 0);
	assert_int_equal(h_cli(node, &out, &err, "import", path, NULL), 1);
	free(out);
	free(err);
	assert_int_equal(h_cli(node, &out, &err, "export", NULL), 0);
	back = json_loads(out, 0, NULL);
	/* still the state of the good import */
	assert_int_equal(count_rows(back, "t_kinds"), 1);
	assert_int_equal(count_rows(back, "node_meta"), 2);
	assert_null(json_object_get(json_object_get(back, "tables"), "evil"));
	json_decref(back);
	free(out);
	free(err);
	json_decref(doc);
	/* not JSON */
	FILE *f = fopen(path, "w");
	fputs("{oops", f);
	fclose(f);
	assert_int_equal(h_cli(node, &out, &err, "import", path, NULL), 1);
	assert_non_null(strstr(err, "not valid JSON"));
	free(out);
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_init),
		cmocka_unit_test(t_id_json),
		cmocka_unit_test(t_status_and_rpc),
		cmocka_unit_test(t_no_guessing),
		cmocka_unit_test(t_rpc_cli_errors),
		cmocka_unit_test(t_export_import),
		cmocka_unit_test(t_export_bytes),
	};
	h_require_bin();
	return cmocka_run_group_tests(tests, setup, teardown);
}
