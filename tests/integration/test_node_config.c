/* Start-up checks of the daemon: config errors name the JSON path and the reason, an uninitialized or
 * read-only data dir and a corrupted store give a clear error and an exit code, never a crash, and change
 * nothing. */
#include <fcntl.h>
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
	h_node_free(node);
	return 0;
}

/* Starts the node with config text and expects exit status `code` with `needle` on stderr. */
static void expect_refused(const char *config, int code, const char *needle)
{
	assert_int_equal(h_node_write_config(node, config), 0);
	char *err = NULL;
	int rc = h_cli(node, NULL, &err, "node", "--api", "127.0.0.1:0", NULL);
	if (rc != code || !err || !strstr(err, needle))
		fprintf(stderr, "config %s -> rc %d, stderr: %s\n", config, rc, err ? err : "");
	assert_int_equal(rc, code);
	assert_non_null(strstr(err, needle));
	/* no crash traces, no half-started state */
	assert_null(strstr(err, "AddressSanitizer"));
	assert_true(access(h_node_path(node, "node.api"), F_OK) != 0);
	free(err);
}

static void t_config_errors(void **st)
{
	(void)st;
	expect_refused("{\"apii\":{}}", 1, "apii: unknown key");
	expect_refused("{\"api\":{\"listen\":\"nope\"}}", 1, "api.listen:");
	expect_refused("{\"api\":{\"listen\":\"127.0.0.1:99999\"}}", 1, "api.listen:");
	expect_refused("{\"api\":{\"listen\":7878}}", 1, "api.listen: must be a string");
	expect_refused("{\"api\":{\"maxConnections\":0}}", 1, "api.maxConnections: must be between");
	expect_refused("{\"api\":{\"headerTimeoutMs\":\"10\"}}", 1, "api.headerTimeoutMs: must be an integer");
	expect_refused("{\"api\":{\"color\":\"red\"}}", 1, "api.color: unknown field");
	expect_refused("{\"log\":{\"level\":\"loud\"}}", 1, "log.level: must be one of");
	expect_refused("{\"api\":[]}", 1, "api: must be an object");
	expect_refused("[1,2]", 1, "top level must be an object");
	expect_refused("{\"api\":{\"listen\":\"127.0.0.1:0\"},}", 1, "not valid JSON at line 1");
	expect_refused("{\"log\":{},\"log\":{}}", 1, "not valid JSON");
	/* a module's own section is checked by the module and still named */
	expect_refused("{\"p2p\":5}", 1, "p2p");
	/* back to a good config: the node starts */
	assert_int_equal(h_node_write_config(node, "{\"api\":{\"listen\":\"127.0.0.1:0\"},\"log\":{\"level\":\"debug\"}}"), 0);
	assert_int_equal(h_node_start(node), 0);
	assert_int_equal(h_node_stop(node), 0);
	/* --api is validated too (usage error) */
	char *err = NULL;
	assert_int_equal(h_cli(node, NULL, &err, "node", "--api", "127.0.0.1", NULL), 2);
	assert_non_null(strstr(err, "--api"));
	free(err);
}

static void t_not_initialized(void **st)
{
	(void)st;
	struct hnode tmp;
	memset(&tmp, 0, sizeof tmp);
	snprintf(tmp.root, sizeof tmp.root, "%s", node->root);
	snprintf(tmp.dir, sizeof tmp.dir, "%s/never-initialized", node->root);
	char *err = NULL;
	assert_int_equal(h_cli(&tmp, NULL, &err, "node", "--api", "127.0.0.1:0", NULL), 3);
	assert_non_null(strstr(err, "clawgrid init"));
	free(err);
	assert_int_equal(h_cli(&tmp, NULL, &err, "id", NULL), 3);
	free(err);
	assert_int_equal(h_cli(&tmp, NULL, &err, "status", NULL), 3);
	free(err);
	/* nothing was created by those attempts */
	assert_true(access(tmp.dir, F_OK) != 0);
}

static void t_corrupted_store(void **st)
{
	(void)st;
	int fd = open(h_node_path(node, "clawgrid.db"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	char junk[8192];
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] = (char)(i * 37 + 11);
	assert_int_equal(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
	close(fd);
	char *err = NULL;
	int rc = h_cli(node, NULL, &err, "node", "--api", "127.0.0.1:0", NULL);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(err, "cannot open the store"));
	assert_non_null(strstr(err, "not a database"));
	free(err);
	/* the bad file is left alone for the owner to inspect */
	char *after = h_read_file(h_node_path(node, "clawgrid.db"), NULL);
	assert_non_null(after);
	assert_memory_equal(after, junk, 64);
	free(after);
	unlink(h_node_path(node, "clawgrid.db"));
	unlink(h_node_path(node, "clawgrid.db-wal"));
	unlink(h_node_path(node, "clawgrid.db-shm"));
}

static void t_bad_key_permissions(void **st)
{
	(void)st;
	assert_int_equal(chmod(h_node_path(node, "admin.token"), 0644), 0);
	char *err = NULL;
	assert_int_equal(h_cli(node, NULL, &err, "node", "--api", "127.0.0.1:0", NULL), 1);
	assert_non_null(strstr(err, "admin.token"));
	free(err);
	assert_int_equal(chmod(h_node_path(node, "admin.token"), 0600), 0);
}

/* A data dir the node cannot write: as root, permissions do not bind, so the node runs as nobody on a
 * copy owned by nobody with every write bit removed. */
static void t_read_only_dir(void **st)
{
	(void)st;
	const char *bin = h_require_bin();
	char cmd[16384];
	char ro[600];
	snprintf(ro, sizeof ro, "%s/ro", node->root);
	if (geteuid() == 0) {
		if (system("command -v setpriv >/dev/null 2>&1") != 0) {
			printf("skip part: setpriv missing\n");
			return;
		}
		snprintf(cmd, sizeof cmd,
			 "cp -a '%s' '%s' && rm -f '%s/node.pid' && chown -R 65534:65534 '%s' && chmod 0700 '%s' && "
			 "chmod 0500 '%s' && chmod 0400 '%s'/* && chmod 0755 '%s' && "
			 "setpriv --reuid=65534 --regid=65534 --clear-groups '%s' --data-dir '%s' node --api "
			 "127.0.0.1:0 >'%s/ro.out' 2>&1",
			 node->dir, ro, ro, ro, ro, ro, ro, node->root, bin, ro, node->root);
	} else {
		snprintf(cmd, sizeof cmd,
			 "cp -a '%s' '%s' && rm -f '%s/node.pid' && chmod 0500 '%s' && '%s' --data-dir '%s' node --api "
			 "127.0.0.1:0 >'%s/ro.out' 2>&1",
			 node->dir, ro, ro, ro, bin, ro, node->root);
	}
	int st_ = system(cmd);
	assert_true(WIFEXITED(st_));
	assert_int_equal(WEXITSTATUS(st_), 1);
	char out[700];
	snprintf(out, sizeof out, "%s/ro.out", node->root);
	char *text = h_read_file(out, NULL);
	assert_non_null(text);
	assert_non_null(strstr(text, "not writable"));
	assert_null(strstr(text, "AddressSanitizer"));
	/* the real path of the data dir is never printed */
	assert_null(strstr(text, ro));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_config_errors),   cmocka_unit_test(t_not_initialized),
		cmocka_unit_test(t_corrupted_store), cmocka_unit_test(t_bad_key_permissions),
		cmocka_unit_test(t_read_only_dir),
	};
	h_require_bin();
	return cmocka_run_group_tests(tests, setup, teardown);
}
