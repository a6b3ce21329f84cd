/* The seccomp policy: the embedded copy equals the file in the repository, the parser rejects bad input
 * with the line named, and compiled filters behave as written (loaded for real in a child). */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "sandbox/policy.h"

static char *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rbe");
	if (!f)
		return NULL;
	char *b = malloc(1 << 20);
	*n = fread(b, 1, 1 << 20, f);
	fclose(f);
	return b;
}

static void test_embedded_equals_file(void **state)
{
	(void)state;
	size_t n, m;
	char *file = slurp("src/sandbox/policy/default.policy", &n);
	assert_non_null(file);
	const char *emb = sandbox_policy_default_text(&m);
	assert_int_equal(n, m);
	assert_memory_equal(file, emb, n);
	free(file);
}

static void test_default_policy(void **state)
{
	(void)state;
	size_t n;
	const char *t = sandbox_policy_default_text(&n);
	struct sandbox_policy *p = NULL;
	cg_err e;
	assert_int_equal(sandbox_policy_parse(t, n, &p, &e), 0);
	assert_true(p->n > 200);
	assert_int_equal(p->def_action, SBA_ERRNO);
	assert_int_equal(p->def_err, EPERM);
	assert_int_equal(sandbox_policy_action_of(p, "read"), SBA_ALLOW);
	assert_int_equal(sandbox_policy_action_of(p, "ptrace"), SBA_KILL);
	assert_int_equal(sandbox_policy_action_of(p, "bpf"), SBA_KILL);
	assert_int_equal(sandbox_policy_action_of(p, "mknod"), SBA_ERRNO);  /* not listed: default */
	assert_int_equal(sandbox_policy_action_of(p, "socket"), -2);        /* depends on arguments */
	assert_int_equal(sandbox_policy_action_of(p, "no_such_call"), -1);
	uint8_t *bpf = NULL;
	size_t len = 0;
	assert_int_equal(sandbox_policy_bpf(p, &bpf, &len, &e), 0);
	assert_true(len > 0 && len % sizeof(struct sock_filter) == 0);
	json_t *oci = sandbox_policy_oci(p);
	assert_string_equal(json_string_value(json_object_get(oci, "defaultAction")), "SCMP_ACT_ERRNO");
	assert_true(json_array_size(json_object_get(oci, "syscalls")) > p->n); /* !=32 expands to 32 rules */
	char *text = json_dumps(oci, JSON_COMPACT);
	sandbox_policy_oci_fix(text);
	assert_null(strstr(text, "u64:"));
	assert_non_null(strstr(text, "18446744073709551615")); /* the bit-0 mask of !=32, as a plain uint64 */
	json_t *back = json_loads(text, JSON_DECODE_INT_AS_REAL, NULL);
	assert_non_null(back);
	json_decref(back);
	free(text);
	json_decref(oci);
	free(bpf);
	sandbox_policy_free(p);
}

static void test_parse_errors(void **state)
{
	(void)state;
	struct {
		const char *text, *want;
	} bad[] = {
		{"read\n", "missing '@default"},
		{"@default errno EPERM\n", "no rules"},
		{"@default errno EPERM\nnot_a_syscall\n", "line 2: unknown syscall"},
		{"@default errno EPERM\nread maybe\n", "line 2: expected arg0"},
		{"@default errno EPERM\nread errno\n", "line 2: errno needs"},
		{"@default errno EPERM\nread errno 5000\n", "line 2: errno needs"},
		{"@default errno EPERM\nsocket arg0 ~ 1\n", "line 2: unknown operator"},
		{"@default errno EPERM\nsocket arg0 == AF_NOPE\n", "line 2: bad number"},
		{"@default errno EPERM\nsocket arg0 ==\n", "line 2: incomplete"},
		{"@default errno EPERM\nsocket arg0 == 1 arg0 == 2\n", "compared twice"},
		{"@default errno EPERM\nsocket arg6 == 1\n", "expected arg0..arg5"},
		{"@default errno EPERM\nsocket arg0 & 1 != 1\n", "masked condition"},
		{"@default errno EPERM\nioctl arg1 !=32 0x100000000\n", "32-bit"},
		{"@default kill\n@default allow\nread\n", "line 2: @default given twice"},
		{"@default\nread\n", "@default needs"},
		{"@default errno EPERM\n@include x\n", "unknown directive"},
		{"@default errno EPERM\nRead\n", "not a syscall name"},
		{"@default errno EPERM\nread 0x\n", "expected arg0"},
		{"@default errno EPERM\nread arg0 == 99999999999999999999999\n", "bad number"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct sandbox_policy *p = NULL;
		cg_err e;
		int rc = sandbox_policy_parse(bad[i].text, strlen(bad[i].text), &p, &e);
		if (rc != -CG_E_INVALID_ARGUMENT || !strstr(e.msg, bad[i].want))
			fail_msg("case %zu: rc %d, message '%s', want '%s'", i, rc, e.msg, bad[i].want);
		assert_null(p);
	}
	/* A line that is too long, and a NUL byte. */
	char big[SANDBOX_POLICY_MAX_LINE + 64];
	memset(big, 'a', sizeof big);
	memcpy(big, "@default kill\n", 14);
	struct sandbox_policy *p = NULL;
	cg_err e;
	assert_int_equal(sandbox_policy_parse(big, sizeof big, &p, &e), -CG_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "line 2: longer"));
	assert_int_equal(sandbox_policy_parse("@default kill\nre\0ad\n", 20, &p, &e), -CG_E_INVALID_ARGUMENT);
	/* Same action as the default is refused when compiling (libseccomp would reject it anyway). */
	assert_int_equal(sandbox_policy_parse("@default allow\nread allow\n", 26, &p, &e), 0);
	uint8_t *bpf = NULL;
	size_t len;
	assert_int_equal(sandbox_policy_bpf(p, &bpf, &len, &e), -CG_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "line 2: same action"));
	sandbox_policy_free(p);
}

/* Loads the compiled policy in a child and runs probe() there; returns the child's wait status. */
static int in_filtered_child(const char *policy, int (*probe)(void))
{
	struct sandbox_policy *p = NULL;
	cg_err e;
	uint8_t *bpf = NULL;
	size_t len = 0;
	assert_int_equal(sandbox_policy_parse(policy, strlen(policy), &p, &e), 0);
	assert_int_equal(sandbox_policy_bpf(p, &bpf, &len, &e), 0);
	sandbox_policy_free(p);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct sock_fprog prog = {(unsigned short)(len / sizeof(struct sock_filter)), (struct sock_filter *)bpf};
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog))
			_exit(99);
		syscall(SYS_exit_group, probe());
	}
	free(bpf);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return st;
}

/* Probes use raw system calls only: sanitizer interceptors may make calls the tiny test policies refuse. */
static int probe_ioctl(void)
{
	int fd = (int)syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY);
	char c = 'x';
	/* TCGETS on /dev/null is allowed by the filter and refused by the driver. */
	if (syscall(SYS_ioctl, fd, (unsigned long)TCGETS, &c) == 0 || errno != ENOTTY)
		return 1;
	if (syscall(SYS_ioctl, fd, (unsigned long)TIOCSTI, &c) == 0 || errno != EPERM)
		return 2;
	if (syscall(SYS_ioctl, fd, (1ul << 32) | TIOCSTI, &c) == 0 || errno != EPERM)
		return 3;
	if (syscall(SYS_ioctl, fd, (1ul << 32) | TCGETS, &c) == 0 || errno != EPERM)
		return 4;
	return 0;
}

static int probe_socket(void)
{
	if (syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0) < 0)
		return 1;
	if (syscall(SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0) < 0)
		return 2;
	if (syscall(SYS_socket, AF_INET, SOCK_RAW, 1) >= 0 || errno != EACCES)
		return 3;
	if (syscall(SYS_socket, AF_NETLINK, SOCK_RAW, 0) >= 0 || errno != EACCES)
		return 4;
	return 0;
}

static int probe_kill(void)
{
	syscall(SYS_getppid);
	syscall(SYS_ptrace, 0, 0, 0, 0); /* must not return */
	return 5;
}

static void test_filters_behave(void **state)
{
	(void)state;
	/* The shipped form: allow-list with !=32. */
	int st = in_filtered_child("@default errno EPERM\nioctl arg1 !=32 TIOCSTI\nopenat\nopen\nexit_group\n"
				   "exit\nclose\n",
				   probe_ioctl);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	st = in_filtered_child("@default errno EACCES\nsocket arg0 == AF_UNIX\n"
			       "socket arg0 == AF_INET arg1 & 0xf == SOCK_STREAM\nexit_group\nexit\n",
			       probe_socket);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	st = in_filtered_child("@default allow\nptrace kill\n", probe_kill);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSYS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_embedded_equals_file),
		cmocka_unit_test(test_default_policy),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_filters_behave),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
