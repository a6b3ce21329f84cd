/* sandbox_run through the C API (native backend): output capture and caps, exit codes and signals, stdin,
 * the timeout, bind mounts, the report, spec validation, and the async variant on a libevent loop. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "sandbox/policy.h"
#include "sandbox/sandbox.h"

static struct sandbox_result R;

static int run(struct sandbox_spec *s, cg_err *e)
{
	memset(&R, 0, sizeof R);
	return sandbox_run(s, &R, e);
}

static void spec_sh(struct sandbox_spec *s, char **argv)
{
	sandbox_spec_init(s);
	s->argv = argv;
	s->timeout_ms = 20000;
	s->mem_bytes = 256u << 20;
	s->pids = 64;
}

static void test_output_and_exit(void **state)
{
	(void)state;
	char *argv[] = {"sh", "-c", "echo out; echo err >&2; hostname; exit 7", NULL};
	struct sandbox_spec s;
	spec_sh(&s, argv);
	cg_err e;
	assert_int_equal(run(&s, &e), 0);
	assert_int_equal(R.exit_code, 7);
	assert_int_equal(R.signal, 0);
	assert_int_equal(R.killed_by, SANDBOX_KILL_NONE);
	assert_string_equal(buf_cstr(&R.out), "out\nsandbox\n");
	assert_string_equal(buf_cstr(&R.err), "err\n");
	assert_string_equal(R.backend, "native");
	json_t *j = sandbox_result_json(&R, true);
	assert_int_equal(json_integer_value(json_object_get(j, "exit_code")), 7);
	assert_true(json_is_null(json_object_get(j, "signal")));
	assert_true(json_is_null(json_object_get(j, "killed_by")));
	assert_string_equal(json_string_value(json_object_get(j, "stdout")), "out\nsandbox\n");
	assert_true(json_integer_value(json_object_get(j, "wall_ms")) >= 0);
	assert_true(json_is_integer(json_object_get(j, "cpu_ms")));
	assert_true(json_integer_value(json_object_get(j, "peak_mem_bytes")) > 0);
	json_decref(j);
	sandbox_result_done(&R);
}

static void test_signal_and_isolation(void **state)
{
	(void)state;
	/* PID 2 in its own namespace, no host files, no capabilities, then killed by its own SIGTERM. */
	char *argv[] = {"sh", "-c",
			"test $$ -eq 2 && test ! -e /etc/shadow && test ! -e /home && "
			"grep -q 'CapEff:\t0000000000000000' /proc/self/status && kill -TERM $$",
			NULL};
	struct sandbox_spec s;
	spec_sh(&s, argv);
	cg_err e;
	assert_int_equal(run(&s, &e), 0);
	assert_int_equal(R.exit_code, -1);
	assert_int_equal(R.signal, SIGTERM);
	assert_int_equal(R.killed_by, SANDBOX_KILL_SIGNAL);
	sandbox_result_done(&R);
}

static void test_output_cap(void **state)
{
	(void)state;
	char *argv[] = {"sh", "-c", "head -c 100000 /dev/zero; echo done >&2", NULL};
	struct sandbox_spec s;
	spec_sh(&s, argv);
	s.out_cap = 1000;
	cg_err e;
	assert_int_equal(run(&s, &e), 0);
	assert_int_equal(R.exit_code, 0);
	assert_int_equal(R.out.len, 1000);
	assert_true(R.out_truncated);
	assert_int_equal(R.out_total, 100000);
	assert_false(R.err_truncated);
	assert_string_equal(buf_cstr(&R.err), "done\n");
	json_t *j = sandbox_result_json(&R, false);
	assert_true(json_is_true(json_object_get(j, "stdout_truncated")));
	assert_null(json_object_get(j, "stdout"));
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "limits_hit"), 0)), "output");
	json_decref(j);
	sandbox_result_done(&R);
}

static void test_stdin(void **state)
{
	(void)state;
	char *argv[] = {"sh", "-c", "wc -c", NULL};
	struct sandbox_spec s;
	spec_sh(&s, argv);
	static char data[300000];
	memset(data, 'a', sizeof data);
	s.stdin_data = data;
	s.stdin_len = sizeof data;
	cg_err e;
	assert_int_equal(run(&s, &e), 0);
	assert_int_equal(atoi(buf_cstr(&R.out)), (int)sizeof data);
	sandbox_result_done(&R);

	/* A command that does not read its stdin must not make us block or die of SIGPIPE. */
	char *argv2[] = {"true", NULL};
	s.argv = argv2;
	assert_int_equal(run(&s, &e), 0);
	assert_int_equal(R.exit_code, 0);
	sandbox_result_done(&R);

	char path[] = "/tmp/clawgrid-stdin-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "hello\n", 6), 6);
	close(fd);
	char *argv3[] = {"cat", NULL};
	s.argv = argv3;
	s.stdin_data = NULL;
	s.stdin_len = 0;
	s.stdin_path = path;
	assert_int_equal(run(&s, &e), 0);
	assert_string_equal(buf_cstr(&R.out), "hello\n");
	sandbox_result_done(&R);
	unlink(path);
}

static void test_timeout(void **state)
{
	(void)state;
	/* A tree of sleepers: the timeout must take all of them, not just the first. */
	char *argv[] = {"sh", "-c", "sleep 30 & sleep 30 & echo started; wait", NULL};
	struct sandbox_spec s;
	spec_sh(&s, argv);
	s.timeout_ms = 300;
	cg_err e;
	assert_int_equal(run(&s, &e), 0);
	assert_int_equal(R.killed_by, SANDBOX_KILL_TIMEOUT);
	assert_int_equal(R.signal, SIGKILL);
	assert_string_equal(buf_cstr(&R.out), "started\n");
	json_t *j = sandbox_result_json(&R, false);
	assert_string_equal(json_string_value(json_object_get(j, "killed_by")), "timeout");
	json_decref(j);
	sandbox_result_done(&R);
}

static void test_binds(void **state)
{
	(void)state;
	char dir[] = "/tmp/clawgrid-bind-XXXXXX";
	assert_non_null(mkdtemp(dir));
	chmod(dir, 0777); /* the sandbox is nobody on the host when we are root */
	char ro[] = "/tmp/clawgrid-ro-XXXXXX";
	assert_non_null(mkdtemp(ro));
	chmod(ro, 0755);
	char f[128];
	snprintf(f, sizeof f, "%s/in.txt", ro);
	FILE *fp = fopen(f, "w");
	fputs("from host\n", fp);
	fclose(fp);
	chmod(f, 0644);
	char cmd[512];
	snprintf(cmd, sizeof cmd, "cat %s/in.txt > %s/out.txt && ! touch %s/nope 2>/dev/null", ro, dir, ro);
	char *argv[] = {"sh", "-c", cmd, NULL};
	struct sandbox_mount m[2] = {{dir, true}, {ro, false}};
	struct sandbox_spec s;
	spec_sh(&s, argv);
	s.mounts = m;
	s.n_mounts = 2;
	cg_err e;
	assert_int_equal(run(&s, &e), 0);
	assert_int_equal(R.exit_code, 0);
	sandbox_result_done(&R);
	snprintf(f, sizeof f, "%s/out.txt", dir);
	fp = fopen(f, "r");
	assert_non_null(fp);
	char line[64] = "";
	assert_non_null(fgets(line, sizeof line, fp));
	fclose(fp);
	assert_string_equal(line, "from host\n");
	unlink(f);
	snprintf(f, sizeof f, "%s/in.txt", ro);
	unlink(f);
	rmdir(dir);
	rmdir(ro);
}

static void test_errors(void **state)
{
	(void)state;
	struct sandbox_spec s;
	cg_err e;
	char *none[] = {NULL};
	spec_sh(&s, none);
	assert_int_equal(run(&s, &e), -CG_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "no command"));

	char *argv[] = {"no-such-program-here", NULL};
	spec_sh(&s, argv);
	assert_int_equal(run(&s, &e), 0);
	assert_int_equal(R.exit_code, 127);
	assert_non_null(strstr(buf_cstr(&R.err), "No such file"));
	sandbox_result_done(&R);

	char *t[] = {"true", NULL};
	spec_sh(&s, t);
	struct sandbox_mount bad = {"relative/path", false};
	s.mounts = &bad;
	s.n_mounts = 1;
	assert_int_equal(run(&s, &e), -CG_E_INVALID_ARGUMENT);
	struct sandbox_mount root = {"/", true};
	s.mounts = &root;
	assert_int_equal(run(&s, &e), -CG_E_INVALID_ARGUMENT);
	struct sandbox_mount missing = {"/nonexistent/clawgrid", false};
	s.mounts = &missing;
	assert_int_equal(run(&s, &e), -CG_E_INVALID_ARGUMENT);
	s.n_mounts = 0;

	const char *gpu_missing[] = {"/dev/nvidia97", NULL};
	s.gpus = gpu_missing;
	assert_int_equal(run(&s, &e), -CG_E_UNAVAILABLE);
	assert_non_null(strstr(e.msg, "does not exist"));
	const char *gpu_bad[] = {"/dev/sda", NULL};
	s.gpus = gpu_bad;
	assert_int_equal(run(&s, &e), -CG_E_INVALID_ARGUMENT);
	s.gpus = NULL;

	s.policy = "@default allow\nbogus_call\n";
	assert_int_equal(run(&s, &e), -CG_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "line 2"));
	s.policy = NULL;
	s.mem_bytes = 1024;
	assert_int_equal(run(&s, &e), -CG_E_INVALID_ARGUMENT);
}

static void test_custom_policy(void **state)
{
	(void)state;
	/* A policy that kills on uname: the report must say seccomp. */
	size_t n;
	const char *def = sandbox_policy_default_text(&n);
	char *pol = malloc(n + 32);
	memcpy(pol, def, n);
	memcpy(pol + n, "\n\n", 3);
	/* Replace the allow rule for uname with a kill rule. */
	char *u = strstr(pol, "\nuname\n");
	assert_non_null(u);
	memcpy(u + 1, "#name\n", 6);
	strcat(pol, "uname kill\n");
	char *argv[] = {"uname", NULL};
	struct sandbox_spec s;
	spec_sh(&s, argv);
	s.policy = pol;
	cg_err e;
	assert_int_equal(run(&s, &e), 0);
	assert_int_equal(R.signal, SIGSYS);
	assert_int_equal(R.killed_by, SANDBOX_KILL_SECCOMP);
	sandbox_result_done(&R);
	free(pol);
}

struct async_ctx {
	struct event_base *base;
	int calls;
	int exit_code;
	char out[64];
	enum cg_code err;
};

static void on_done(void *arg, const struct sandbox_result *r, const cg_err *e)
{
	struct async_ctx *c = arg;
	c->calls++;
	if (r) {
		c->exit_code = r->exit_code;
		snprintf(c->out, sizeof c->out, "%s", (const char *)(r->out.data ? r->out.data : (uint8_t *)""));
	} else {
		c->err = e->code;
	}
	event_base_loopbreak(c->base);
}

static void test_async(void **state)
{
	(void)state;
	struct async_ctx c = {0};
	c.base = event_base_new();
	char *argv[] = {"sh", "-c", "echo async; exit 3", NULL};
	struct sandbox_spec s;
	spec_sh(&s, argv);
	cg_err e;
	assert_int_equal(sandbox_run_async(c.base, &s, on_done, &c, &e), 0);
	event_base_dispatch(c.base);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.exit_code, 3);
	assert_string_equal(c.out, "async\n");

	/* A run that cannot start reports through the same callback. */
	const char *gpu[] = {"/dev/nvidia96", NULL};
	s.gpus = gpu;
	assert_int_equal(sandbox_run_async(c.base, &s, on_done, &c, &e), 0);
	event_base_dispatch(c.base);
	assert_int_equal(c.calls, 2);
	assert_int_equal(c.err, CG_E_UNAVAILABLE);
	event_base_free(c.base);
}

static int setup(void **state)
{
	(void)state;
	/* Skip (77) where this host cannot run the native backend at all, saying why. */
	char *argv[] = {"true", NULL};
	struct sandbox_spec s;
	spec_sh(&s, argv);
	cg_err e;
	if (run(&s, &e) != 0) {
		printf("SKIP: native sandbox unavailable here: %s\n", e.msg);
		exit(77);
	}
	sandbox_result_done(&R);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_output_and_exit), cmocka_unit_test(test_signal_and_isolation),
		cmocka_unit_test(test_output_cap),      cmocka_unit_test(test_stdin),
		cmocka_unit_test(test_timeout),         cmocka_unit_test(test_binds),
		cmocka_unit_test(test_errors),          cmocka_unit_test(test_custom_policy),
		cmocka_unit_test(test_async),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
