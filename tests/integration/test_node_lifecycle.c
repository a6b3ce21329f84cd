/* The daemon's lifecycle: SIGTERM drains in-flight requests then exits 0; the drain is bounded; a second
 * signal forces exit; node.api appears while running and goes away on exit; two nodes cannot share a data
 * dir; a taken port fails cleanly. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static const char *const hooks[] = {"CLAWGRID_TEST_HOOKS=1", NULL};

/* Runs one JSON-RPC call in a child process and returns its pid; the child exits 0 when the answer was a
 * result, 1 otherwise. */
static pid_t rpc_in_child(struct hnode *n, const char *method, const char *params)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		json_t *p = json_loads(params, 0, NULL);
		long st = 0;
		json_t *resp = h_rpc(n, method, p, &st);
		int ok = resp && json_object_get(resp, "result") != NULL;
		_exit(ok ? 0 : 1);
	}
	return pid;
}

static int child_status(pid_t pid)
{
	int st;
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

struct inflight_arg {
	struct hnode *n;
	int want;
};

/* The call is in the node once it shows up as in flight (the /metrics request itself counts as one). */
static bool node_busy(void *arg)
{
	struct inflight_arg *a = arg;
	struct h_resp r;
	bool busy = false;
	static const char key[] = "\nclawgrid_http_inflight_requests ";
	if (h_get(a->n, "/metrics", &r) == 0) {
		const char *p = strstr(r.body, key);
		busy = p && (int)strtoul(p + sizeof key - 1, NULL, 10) >= a->want;
	}
	h_resp_free(&r);
	return busy;
}

static void t_sigterm_drains(void **st)
{
	(void)st;
	struct hnode_opts o = {.env = hooks};
	struct hnode *n = h_node_new(&o);
	assert_non_null(n);
	assert_int_equal(h_node_start(n), 0);
	assert_true(access(h_node_path(n, "node.api"), F_OK) == 0);
	pid_t c = rpc_in_child(n, "debug.sleep", "{\"ms\":800}");
	struct inflight_arg a = {n, 2};
	assert_true(h_wait_until(node_busy, &a, 20000));
	assert_int_equal(h_node_signal(n, SIGTERM), 0);
	/* the in-flight call still gets its answer */
	assert_int_equal(child_status(c), 0);
	assert_int_equal(h_node_wait(n, 20000), 0);
	assert_true(access(h_node_path(n, "node.api"), F_OK) != 0);
	assert_true(h_log_contains(n, "msg=\"stopping\""));
	assert_true(h_log_contains(n, "msg=\"stopped\""));
	/* a clean stop can be followed by a clean start */
	assert_int_equal(h_node_start(n), 0);
	assert_int_equal(h_node_stop(n), 0);
	h_node_free(n);
}

static void t_drain_is_bounded(void **st)
{
	(void)st;
	struct hnode_opts o = {.env = hooks};
	struct hnode *n = h_node_new(&o);
	assert_non_null(n);
	assert_int_equal(h_node_write_config(n, "{\"api\":{\"drainTimeoutMs\":200}}"), 0);
	assert_int_equal(h_node_start(n), 0);
	pid_t c = rpc_in_child(n, "debug.sleep", "{\"ms\":60000}");
	struct inflight_arg a = {n, 2};
	assert_true(h_wait_until(node_busy, &a, 20000));
	assert_int_equal(h_node_signal(n, SIGTERM), 0);
	/* exits on its own (well before the 60 s call would finish) with status 0 */
	assert_int_equal(h_node_wait(n, 20000), 0);
	assert_true(h_log_contains(n, "drain timed out"));
	/* the cut-off call did not get a result */
	assert_int_equal(child_status(c), 1);
	h_node_free(n);
}

static void t_second_signal_forces(void **st)
{
	(void)st;
	struct hnode_opts o = {.env = hooks};
	struct hnode *n = h_node_new(&o);
	assert_non_null(n);
	assert_int_equal(h_node_write_config(n, "{\"api\":{\"drainTimeoutMs\":60000}}"), 0);
	assert_int_equal(h_node_start(n), 0);
	pid_t c = rpc_in_child(n, "debug.sleep", "{\"ms\":60000}");
	struct inflight_arg a = {n, 2};
	assert_true(h_wait_until(node_busy, &a, 20000));
	assert_int_equal(h_node_signal(n, SIGINT), 0);
	assert_int_equal(h_node_wait(n, 300), -2); /* still draining */
	assert_int_equal(h_node_signal(n, SIGINT), 0);
	assert_int_equal(h_node_wait(n, 20000), 1);
	assert_true(h_log_contains(n, "forced exit"));
	assert_true(access(h_node_path(n, "node.api"), F_OK) != 0);
	child_status(c);
	h_node_free(n);
}

static void t_one_node_per_dir(void **st)
{
	(void)st;
	struct hnode *n = h_node_new(NULL);
	assert_non_null(n);
	assert_int_equal(h_node_start(n), 0);
	char *err = NULL;
	/* a second node on the same data dir refuses to start */
	int rc = h_cli(n, NULL, &err, "node", "--api", "127.0.0.1:0", NULL);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(err, "another node"));
	free(err);
	/* the first one is unaffected */
	json_decref(h_rpc_ok(n, "node.info", NULL));
	/* a second data dir on the same port fails with a clear error */
	struct hnode *m = h_node_new(NULL);
	assert_non_null(m);
	rc = h_cli(m, NULL, &err, "node", "--api", n->api, NULL);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(err, "cannot listen"));
	free(err);
	assert_int_equal(h_node_stop(n), 0);
	h_node_free(m);
	h_node_free(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_sigterm_drains),
		cmocka_unit_test(t_drain_is_bounded),
		cmocka_unit_test(t_second_signal_forces),
		cmocka_unit_test(t_one_node_per_dir),
	};
	h_require_bin();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
