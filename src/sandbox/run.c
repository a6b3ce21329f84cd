/* The supervisor: prepares a run (policy, layout, cgroups, pipes), clones the child into its namespaces,
 * then multiplexes output capture, stdin feeding, the wall-clock deadline and the child's exit. */
#define CG_SANDBOX_INTERNAL 1
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "sandbox/internal.h"
#include "sandbox/policy.h"

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif

static const char *const backend_names[SANDBOX_BACKEND_COUNT] = {"native", "bwrap", "runsc"};

const char *sandbox_backend_name(enum sandbox_backend b)
{
	return (unsigned)b < SANDBOX_BACKEND_COUNT ? backend_names[b] : "?";
}

int sandbox_backend_parse(const char *name, enum sandbox_backend *out)
{
	for (int i = 0; i < SANDBOX_BACKEND_COUNT; i++)
		if (name && strcmp(name, backend_names[i]) == 0) {
			*out = (enum sandbox_backend)i;
			return 0;
		}
	return -1;
}

bool sandbox_backend_available(enum sandbox_backend b, char *path, size_t cap)
{
	if (b == SANDBOX_NATIVE) {
		if (cap)
			path[0] = 0;
		return true;
	}
	return sb_find_exe(b == SANDBOX_BWRAP ? "bwrap" : "runsc", path, cap);
}

void sandbox_spec_init(struct sandbox_spec *s)
{
	memset(s, 0, sizeof *s);
	s->backend = SANDBOX_NATIVE;
}

void sandbox_result_done(struct sandbox_result *r)
{
	if (!r)
		return;
	buf_done(&r->out);
	buf_done(&r->err);
}

char *const sb_default_env[] = {
	"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
	"HOME=" SB_WORKDIR,
	"TMPDIR=/tmp",
	"LANG=C.UTF-8",
	"USER=root",
	NULL,
};

/* Everything a run owns, released in one place. */
struct run {
	struct sb_layout layout;
	struct sb_native nv;
	struct sb_cgroup cg;
	struct sb_argv helper_argv;
	struct sandbox_policy *pol;
	uint8_t *bpf;
	size_t bpf_len;
	char stage[64];  /* native: staging root */
	char bundle[64]; /* runsc: bundle + state dir */
	char helper[4096];
	int extra[SB_MAX_EXTRA_FDS];
	int n_extra;
	struct sb_idm_bind idm[SANDBOX_MAX_MOUNTS];
	int n_idm;
	int p_out[2], p_err[2], p_go[2], p_st[2], p_in[2], p_info[2];
	int fd_in, pidfd;
	pid_t pid;
	bool cg_made;
};

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void run_init(struct run *R)
{
	memset(R, 0, sizeof *R);
	int *fds[] = {R->p_out, R->p_err, R->p_go, R->p_st, R->p_in, R->p_info};
	for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
		fds[i][0] = fds[i][1] = -1;
	R->fd_in = R->pidfd = -1;
	for (int i = 0; i < SB_MAX_EXTRA_FDS; i++)
		R->extra[i] = -1;
}

static void run_done(struct run *R)
{
	int *fds[] = {R->p_out, R->p_err, R->p_go, R->p_st, R->p_in, R->p_info};
	for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) {
		close_fd(&fds[i][0]);
		close_fd(&fds[i][1]);
	}
	close_fd(&R->fd_in);
	close_fd(&R->pidfd);
	for (int i = 0; i < R->n_extra; i++)
		close_fd(&R->extra[i]);
	if (R->cg_made)
		sb_cgroup_destroy(&R->cg);
	if (R->stage[0])
		rmdir(R->stage);
	if (R->bundle[0])
		sb_rmtree(R->bundle);
	for (size_t i = 0; R->nv.staged && i < R->layout.n; i++) {
		free(R->nv.staged[i]);
		free(R->nv.opts[i]);
	}
	free(R->nv.staged);
	free(R->nv.opts);
	free(R->nv.mflags);
	free(R->nv.mnt_fd);
	sb_layout_done(&R->layout);
	sb_argv_done(&R->helper_argv);
	sandbox_policy_free(R->pol);
	free(R->bpf);
}

static int prepare_native(struct run *R, cg_err *e)
{
	snprintf(R->stage, sizeof R->stage, "/tmp/clawgrid-sbx-XXXXXX");
	if (!mkdtemp(R->stage)) {
		R->stage[0] = 0;
		return cg_fail(e, CG_E_INTERNAL, "sandbox: cannot create a staging folder: %s", strerror(errno));
	}
	size_t n = R->layout.n;
	R->nv.staged = calloc(n, sizeof(char *));
	R->nv.opts = calloc(n, sizeof(char *));
	R->nv.mflags = calloc(n, sizeof(unsigned long));
	R->nv.mnt_fd = calloc(n, sizeof(int));
	if (!R->nv.staged || !R->nv.opts || !R->nv.mflags || !R->nv.mnt_fd)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const struct sb_ent *x = &R->layout.e[i];
		R->nv.mnt_fd[i] = -1;
		if (x->mnt_fd >= 0) {
			/* Inherited by the child as SB_FD_SECCOMP + its index among the extra descriptors. */
			int d = R->n_extra < SB_MAX_EXTRA_FDS ? fcntl(x->mnt_fd, F_DUPFD_CLOEXEC, 0) : -1;
			if (d < 0)
				return cg_fail(e, CG_E_INTERNAL, "sandbox: cannot pass a mount: %s", strerror(errno));
			R->nv.mnt_fd[i] = SB_FD_SECCOMP + R->n_extra;
			R->extra[R->n_extra++] = d;
		}
		if (asprintf(&R->nv.staged[i], "%s%s", R->stage, x->dst) < 0) {
			R->nv.staged[i] = NULL;
			return cg_fail(e, CG_E_INTERNAL, "out of memory");
		}
		if (x->kind == SBE_TMPFS) {
			if (asprintf(&R->nv.opts[i], "size=%llu,mode=%o", (unsigned long long)x->size, x->mode) < 0) {
				R->nv.opts[i] = NULL;
				return cg_fail(e, CG_E_INTERNAL, "out of memory");
			}
			R->nv.mflags[i] = MS_NOSUID | MS_NODEV;
			if (strncmp(x->dst, "/dev", 4) == 0)
				R->nv.mflags[i] |= MS_NOEXEC;
		}
	}
	return 0;
}

/* Rootless, setgroups must be denied before gid_map may be written; as root it stays allowed so the child
 * can drop root's supplementary groups. */
static int write_maps(pid_t pid, uid_t uid, gid_t gid, bool root)
{
	char p[64], v[64];
	int rc = 0;
	snprintf(p, sizeof p, "/proc/%d/setgroups", (int)pid);
	if (!root && (rc = sb_write_file(p, "deny")) != 0 && rc != -ENOENT)
		return rc;
	snprintf(p, sizeof p, "/proc/%d/uid_map", (int)pid);
	snprintf(v, sizeof v, "0 %u 1", (unsigned)uid);
	if ((rc = sb_write_file(p, v)) != 0)
		return rc;
	snprintf(p, sizeof p, "/proc/%d/gid_map", (int)pid);
	snprintf(v, sizeof v, "0 %u 1", (unsigned)gid);
	return sb_write_file(p, v);
}

static int last_cap(void)
{
	char b[16];
	if (sb_read_file("/proc/sys/kernel/cap_last_cap", b, sizeof b) <= 0)
		return 40;
	int v = 0;
	for (char *s = b; *s >= '0' && *s <= '9'; s++)
		v = v * 10 + (*s - '0');
	return v > 0 && v < 64 ? v : 40;
}

static void take(buf *b, const char *p, size_t n, bool *trunc, uint64_t *total)
{
	*total += n;
	size_t room = b->cap > b->len ? b->cap - b->len : 0;
	if (n > room) {
		*trunc = true;
		n = room;
	}
	if (n && buf_append(b, p, n) != 0)
		*trunc = true;
}

enum { PF_PID, PF_OUT, PF_ERR, PF_ST, PF_IN, PF_INFO, PF_N };

struct loop_out {
	bool exited, timed_out;
	int wstatus;
	struct rusage ru;
	struct sb_msg msg;
	bool have_msg;
	char info[1024];
	size_t info_len;
	int64_t t_start, t_end;
};

/* Runs until the child has exited and every pipe is drained (or a short grace after the exit, for output
 * held open by something outside the tree, which cannot happen with a PID namespace but costs nothing). */
static void supervise(struct run *R, const struct sandbox_spec *s, struct sandbox_result *r, struct loop_out *o)
{
	int fds[PF_N] = {R->pidfd, R->p_out[0], R->p_err[0], R->p_st[0], R->p_in[1], R->p_info[0]};
	R->p_out[0] = R->p_err[0] = R->p_st[0] = R->p_in[1] = R->p_info[0] = -1;
	const uint8_t *in = s->stdin_data;
	size_t in_off = 0;
	if (fds[PF_IN] >= 0)
		fcntl(fds[PF_IN], F_SETFL, O_NONBLOCK);
	int64_t deadline = s->timeout_ms ? o->t_start + (int64_t)s->timeout_ms : 0, grace_end = 0;
	char tmp[65536];
	for (;;) {
		if (o->exited && fds[PF_OUT] < 0 && fds[PF_ERR] < 0 && fds[PF_ST] < 0 && fds[PF_INFO] < 0)
			break;
		int64_t now = clock_mono_ms();
		if (!o->exited && deadline && now >= deadline && !o->timed_out) {
			o->timed_out = true;
			kill(R->pid, SIGKILL);
			sb_cgroup_kill(&R->cg);
		}
		if (o->exited && now >= grace_end)
			break;
		int wait = -1;
		if (o->exited)
			wait = (int)(grace_end - now);
		else if (deadline && !o->timed_out)
			wait = (int)(deadline - now);
		else if (o->timed_out)
			wait = 100; /* re-kill until the tree is gone */
		struct pollfd p[PF_N];
		for (int i = 0; i < PF_N; i++) {
			p[i].fd = fds[i];
			p[i].events = i == PF_IN ? POLLOUT : POLLIN;
			p[i].revents = 0;
		}
		if (o->exited)
			p[PF_PID].fd = -1;
		int n = poll(p, PF_N, wait);
		if (n < 0 && errno != EINTR)
			break;
		if (o->timed_out && !o->exited) {
			kill(R->pid, SIGKILL);
			sb_cgroup_kill(&R->cg);
		}
		if (p[PF_PID].revents) {
			if (wait4(R->pid, &o->wstatus, WNOHANG, &o->ru) == R->pid) {
				o->exited = true;
				o->t_end = clock_mono_ms();
				grace_end = o->t_end + 2000;
				/* Stragglers of helper backends (runsc's sandbox and gofer) go with the tree. */
				sb_cgroup_kill(&R->cg);
				close_fd(&fds[PF_IN]);
			}
		}
		for (int i = PF_OUT; i <= PF_ERR; i++) {
			if (!p[i].revents)
				continue;
			ssize_t k = read(fds[i], tmp, sizeof tmp);
			if (k > 0) {
				if (i == PF_OUT)
					take(&r->out, tmp, (size_t)k, &r->out_truncated, &r->out_total);
				else
					take(&r->err, tmp, (size_t)k, &r->err_truncated, &r->err_total);
			} else if (k == 0 || (errno != EINTR && errno != EAGAIN)) {
				close_fd(&fds[i]);
			}
		}
		if (p[PF_ST].revents) {
			struct sb_msg m;
			ssize_t k = read(fds[PF_ST], &m, sizeof m);
			if (k == (ssize_t)sizeof m) {
				/* A setup failure or exec failure outranks a later exit report. */
				if (!o->have_msg || o->msg.kind == SBM_EXIT) {
					o->msg = m;
					o->have_msg = true;
				}
			} else if (k <= 0 && errno != EINTR) {
				close_fd(&fds[PF_ST]);
			}
		}
		if (p[PF_INFO].revents) {
			ssize_t k = read(fds[PF_INFO], tmp, sizeof tmp);
			if (k > 0) {
				size_t room = sizeof o->info - 1 - o->info_len;
				size_t c = (size_t)k < room ? (size_t)k : room;
				memcpy(o->info + o->info_len, tmp, c);
				o->info_len += c;
				o->info[o->info_len] = 0;
			} else if (k == 0 || errno != EINTR) {
				close_fd(&fds[PF_INFO]);
			}
		}
		if (p[PF_IN].revents) {
			if (p[PF_IN].revents & (POLLERR | POLLHUP)) {
				close_fd(&fds[PF_IN]);
			} else {
				ssize_t k = write(fds[PF_IN], in + in_off, s->stdin_len - in_off);
				if (k > 0)
					in_off += (size_t)k;
				if ((k < 0 && errno != EAGAIN && errno != EINTR) || in_off >= s->stdin_len)
					close_fd(&fds[PF_IN]);
			}
		}
	}
	if (!o->exited) {
		/* Only reachable when poll() itself failed: make sure the tree is gone and reaped. */
		kill(R->pid, SIGKILL);
		sb_cgroup_kill(&R->cg);
		while (wait4(R->pid, &o->wstatus, 0, &o->ru) < 0 && errno == EINTR)
			;
		o->exited = true;
		o->t_end = clock_mono_ms();
	}
	for (int i = 0; i < PF_N; i++)
		if (i != PF_PID)
			close_fd(&fds[i]);
}

static enum sandbox_kill kill_of(int sig, bool timed_out, uint64_t ooms)
{
	if (timed_out)
		return SANDBOX_KILL_TIMEOUT;
	switch (sig) {
	case 0:
		return SANDBOX_KILL_NONE;
	case SIGSYS:
		return SANDBOX_KILL_SECCOMP;
	case SIGXCPU:
		return SANDBOX_KILL_CPU;
	case SIGXFSZ:
		return SANDBOX_KILL_FILESIZE;
	case SIGKILL:
		return ooms ? SANDBOX_KILL_MEMORY : SANDBOX_KILL_SIGNAL;
	default:
		return SANDBOX_KILL_SIGNAL;
	}
}

/* Like a shell: 127 when the command does not exist, 126 when it exists but cannot be executed, and a
 * message on the command's stderr (replacing whatever a helper printed about it). */
static void exec_failed(struct sandbox_result *r, const char *argv0, int err)
{
	r->exit_code = err == ENOENT || err == ENOTDIR || err == ELOOP || err == ENAMETOOLONG ? 127 : 126;
	r->signal = 0;
	char line[256];
	snprintf(line, sizeof line, "clawgrid sandbox: %.100s: %s\n", argv0, strerror(err));
	r->err.len = 0;
	r->err_total = 0;
	r->err_truncated = false;
	take(&r->err, line, strlen(line), &r->err_truncated, &r->err_total);
}

/* bwrap reports a command it cannot execute as exactly one line, "bwrap: execvp ARGV0: STRERROR", and
 * exit status 1. Returns the errno it names, or 0 when stderr is anything else. */
static int bwrap_exec_errno(const struct sandbox_result *r, const char *argv0)
{
	char want[160];
	int n = snprintf(want, sizeof want, "bwrap: execvp %s: ", argv0);
	if (n <= 0 || (size_t)n >= sizeof want || r->exit_code != 1 || r->err_truncated || r->err.len <= (size_t)n ||
	    memcmp(r->err.data, want, (size_t)n) != 0)
		return 0;
	const char *msg = (const char *)r->err.data + n;
	size_t ml = r->err.len - (size_t)n;
	if (memchr(msg, '\n', ml) != msg + ml - 1)
		return 0; /* more than one line: the command itself printed this */
	static const int errs[] = {ENOENT, ENOTDIR, EACCES, ENOEXEC, ELOOP, ENAMETOOLONG, EISDIR, ETXTBSY};
	for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
		const char *t = strerror(errs[i]);
		if (strlen(t) == ml - 1 && memcmp(msg, t, ml - 1) == 0)
			return errs[i];
	}
	return 0;
}

/* runsc resolves and loads the command itself and fails the whole start when it cannot. */
static int runsc_exec_errno(struct sandbox_result *r)
{
	const char *t = buf_cstr(&r->err);
	if (!strstr(t, "error finding executable") && !strstr(t, "failed to load"))
		return 0;
	if (strstr(t, "no such file or directory"))
		return ENOENT;
	if (strstr(t, "not a directory"))
		return ENOTDIR;
	if (strstr(t, "exec format error"))
		return ENOEXEC;
	return EACCES;
}

/* First line of the helper's stderr, for error messages. */
static void first_line(const buf *b, char *out, size_t cap)
{
	size_t n = 0;
	while (n < b->len && n + 1 < cap && b->data[n] != '\n')
		n++;
	if (n)
		memcpy(out, b->data, n);
	out[n] = 0;
}

static int finish(struct run *R, const struct sandbox_spec *s, struct sandbox_result *r, struct loop_out *o,
		  cg_err *e)
{
	struct sb_cgstats st;
	sb_cgroup_stats(&R->cg, &st);
	r->wall_ms = o->t_end - o->t_start;
	r->cpu_ms = st.cpu_us >= 0 ? st.cpu_us / 1000
				   : (int64_t)(o->ru.ru_utime.tv_sec + o->ru.ru_stime.tv_sec) * 1000 +
					     (o->ru.ru_utime.tv_usec + o->ru.ru_stime.tv_usec) / 1000;
	r->peak_mem_bytes = st.peak_mem ? st.peak_mem : (uint64_t)o->ru.ru_maxrss * 1024;
	r->mem_limit_hit = st.mem_hit || st.oom_kills > 0;
	r->pids_limit_hit = st.pids_hit;
	if (o->have_msg && o->msg.kind == SBM_SETUP_FAIL && !o->timed_out)
		return cg_fail(e, CG_E_INTERNAL, "sandbox setup failed at %s: %s", sb_stage_name(o->msg.stage),
			       strerror(o->msg.err));

	int ws = o->wstatus;
	bool helper = s->backend != SANDBOX_NATIVE;
	if (o->have_msg && o->msg.kind == SBM_EXEC_FAIL) {
		if (helper)
			return cg_fail(e, CG_E_UNAVAILABLE, "%s: cannot execute the helper: %s",
				       sandbox_backend_name(s->backend), strerror(o->msg.err));
		exec_failed(r, s->argv[0], o->msg.err);
		return 0;
	}
	if (!helper) {
		if (o->have_msg && o->msg.kind == SBM_EXIT) {
			ws = o->msg.status;
		} else if (!o->timed_out && st.oom_kills == 0) {
			return cg_fail(e, CG_E_INTERNAL, "sandbox init ended without a report (status 0x%x)", ws);
		} else {
			ws = SIGKILL; /* init itself was killed: by us on timeout, or by the OOM killer */
		}
	}
	if (WIFSIGNALED(ws)) {
		r->exit_code = -1;
		r->signal = WTERMSIG(ws);
	} else {
		r->exit_code = WEXITSTATUS(ws);
		/* bwrap and runsc report a signal as 128+N. */
		if (helper && r->exit_code > 128 && r->exit_code < 128 + 65) {
			r->signal = r->exit_code - 128;
			r->exit_code = -1;
		}
	}
	if (o->timed_out) {
		r->exit_code = -1;
		r->signal = SIGKILL;
	}
	int xe;
	if (s->backend == SANDBOX_BWRAP && !o->timed_out && (xe = bwrap_exec_errno(r, s->argv[0])) != 0) {
		exec_failed(r, s->argv[0], xe);
		return 0;
	}
	if (s->backend == SANDBOX_RUNSC && !o->timed_out && r->exit_code == 128 && (xe = runsc_exec_errno(r)) != 0) {
		exec_failed(r, s->argv[0], xe);
		return 0;
	}
	if (s->backend == SANDBOX_BWRAP && !o->timed_out && !strstr(o->info, "child-pid")) {
		char l[200];
		first_line(&r->err, l, sizeof l);
		return cg_fail(e, CG_E_INTERNAL, "bwrap could not set up the sandbox: %s", l);
	}
	if (s->backend == SANDBOX_RUNSC && !o->timed_out && r->exit_code == 128 &&
	    (strstr(buf_cstr(&r->err), "creating container") || strstr(buf_cstr(&r->err), "running container"))) {
		char l[200];
		first_line(&r->err, l, sizeof l);
		return cg_fail(e, CG_E_INTERNAL, "runsc could not start the sandbox: %s", l);
	}
	r->killed_by = kill_of(r->signal, o->timed_out, st.oom_kills);
	/* A command that failed after the pids cgroup refused a fork died of that limit, even though no signal
	 * came (a memory limit kills instead: the OOM killer). */
	if (((r->killed_by == SANDBOX_KILL_NONE && r->exit_code != 0) || r->killed_by == SANDBOX_KILL_SIGNAL) &&
	    r->pids_limit_hit)
		r->killed_by = SANDBOX_KILL_PIDS;
	return 0;
}

static int open_stdin(struct run *R, const struct sandbox_spec *s, cg_err *e)
{
	if (s->stdin_path) {
		R->fd_in = open(s->stdin_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (R->fd_in < 0)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "stdin: %s", strerror(errno));
		struct stat st;
		if (fstat(R->fd_in, &st) != 0 || S_ISCHR(st.st_mode) || S_ISDIR(st.st_mode))
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "stdin: must be a file or a pipe");
		return 0;
	}
	if (s->stdin_data && s->stdin_len) {
		if (pipe2(R->p_in, O_CLOEXEC) != 0)
			return cg_fail(e, CG_E_INTERNAL, "pipe: %s", strerror(errno));
		R->fd_in = R->p_in[0];
		R->p_in[0] = -1;
		return 0;
	}
	R->fd_in = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return R->fd_in < 0 ? cg_fail(e, CG_E_INTERNAL, "/dev/null: %s", strerror(errno)) : 0;
}

static int validate(const struct sandbox_spec *s, cg_err *e)
{
	if (!s->argv || !s->argv[0] || !s->argv[0][0])
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "sandbox: no command given");
	size_t n = 0;
	while (s->argv[n])
		if (++n > SANDBOX_MAX_ARGS)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "sandbox: more than %d arguments", SANDBOX_MAX_ARGS);
	for (n = 0; s->env && s->env[n]; n++)
		if (n >= SANDBOX_MAX_ARGS || !strchr(s->env[n], '='))
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "sandbox: environment entries are NAME=VALUE");
	if ((unsigned)s->backend >= SANDBOX_BACKEND_COUNT)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "sandbox: unknown backend");
	if (s->mem_bytes && s->mem_bytes < (4u << 20))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "mem: at least 4M");
	if (s->pids && s->pids > 1u << 22)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "pids: at most 4194304");
	if (s->nofile && (s->nofile < 8 || s->nofile > 1u << 20))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "nofile: 8..1048576");
	if (s->disk_bytes && s->disk_bytes < (64u << 10))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "disk: at least 64K");
	if (s->hostname && (!s->hostname[0] || strlen(s->hostname) > 63 || strchr(s->hostname, '/')))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "hostname: 1..63 characters");
	if (s->stdin_path && s->stdin_data)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "stdin: a file or data, not both");
	return 0;
}

int sandbox_run(const struct sandbox_spec *s, struct sandbox_result *r, cg_err *e)
{
	memset(r, 0, sizeof *r);
	size_t cap = s->out_cap ? s->out_cap : SANDBOX_DEFAULT_OUT_CAP;
	buf_init(&r->out, cap);
	buf_init(&r->err, cap);
	snprintf(r->backend, sizeof r->backend, "%s", sandbox_backend_name(s->backend));
	int rc = validate(s, e);
	if (rc)
		return rc;

	struct run R;
	run_init(&R);
	struct loop_out o;
	memset(&o, 0, sizeof o);
	char *const *env = s->env ? s->env : sb_default_env;
	bool root = geteuid() == 0;

	if (!sandbox_backend_available(s->backend, R.helper, sizeof R.helper)) {
		rc = cg_fail(e, CG_E_UNAVAILABLE, "backend %s: '%s' is not installed (not found in PATH)",
			     sandbox_backend_name(s->backend), s->backend == SANDBOX_BWRAP ? "bwrap" : "runsc");
		goto out;
	}
	if (s->backend == SANDBOX_RUNSC && s->gpus && s->gpus[0]) {
		rc = cg_fail(e, CG_E_UNAVAILABLE, "backend runsc: GPU pass-through needs gVisor's nvproxy, which "
						  "this runsc does not have; use --backend native or bwrap");
		goto out;
	}
	size_t plen;
	const char *ptext = s->policy ? s->policy : sandbox_policy_default_text(&plen);
	if (s->policy)
		plen = strlen(s->policy);
	if ((rc = sandbox_policy_parse(ptext, plen, &R.pol, e)) != 0)
		goto out;
	if ((rc = sandbox_policy_bpf(R.pol, &R.bpf, &R.bpf_len, e)) != 0)
		goto out;
	if ((rc = sb_layout_build(s, &R.layout, e)) != 0)
		goto out;
	if (root && s->backend != SANDBOX_RUNSC) /* runsc's gofer does the I/O as root itself */
		sb_idmap_binds(&R.layout, r->notes, sizeof r->notes);
	if ((rc = open_stdin(&R, s, e)) != 0)
		goto out;
	if (pipe2(R.p_out, O_CLOEXEC) || pipe2(R.p_err, O_CLOEXEC) || pipe2(R.p_go, O_CLOEXEC) ||
	    pipe2(R.p_st, O_CLOEXEC)) {
		rc = cg_fail(e, CG_E_INTERNAL, "pipe: %s", strerror(errno));
		goto out;
	}

	struct sb_child c;
	memset(&c, 0, sizeof c);
	c.backend = s->backend;
	c.argv = s->argv;
	c.env = env;
	c.hostname = s->hostname ? s->hostname : "sandbox";
	c.last_cap = last_cap();
	c.rl_nofile = s->nofile ? s->nofile : SB_DEFAULT_NOFILE;
	c.rl_fsize = s->disk_bytes ? s->disk_bytes : SB_DEFAULT_DISK;
	c.bpf = R.bpf;
	c.bpf_len = R.bpf_len;
	c.layout = &R.layout;
	unsigned long flags = 0;
	/* Helper processes that count against pids.max: our init; bwrap's monitor and its PID 1; runsc's sentry
	 * and gofer threads (the process limit then counts host threads, not the guest's tasks). */
	static const uint32_t pids_extra_of[SANDBOX_BACKEND_COUNT] = {1, 2, 256};
	uint32_t pids_extra = pids_extra_of[s->backend];
	sb_cgroup_create(&R.cg, s, pids_extra, r->notes, sizeof r->notes);
	R.cg_made = true;

	switch (s->backend) {
	case SANDBOX_NATIVE:
		if ((rc = prepare_native(&R, e)) != 0)
			goto out;
		c.native = &R.nv;
		c.clear_groups = root;
		c.stage_root = R.stage;
		flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS;
		break;
	case SANDBOX_BWRAP:
		if (pipe2(R.p_info, O_CLOEXEC) != 0) {
			rc = cg_fail(e, CG_E_INTERNAL, "pipe: %s", strerror(errno));
			goto out;
		}
		R.extra[R.n_extra++] = R.p_info[1];
		R.p_info[1] = -1;
		if ((rc = sb_bwrap_argv(R.helper, s, &R.layout, R.bpf, R.bpf_len, &R.helper_argv,
					R.extra + R.n_extra, &R.n_extra, R.idm, &R.n_idm, e)) != 0)
			goto out;
		c.drop_to_nobody = root;
		break;
	case SANDBOX_RUNSC:
		snprintf(R.bundle, sizeof R.bundle, "/tmp/clawgrid-runsc-XXXXXX");
		if (!mkdtemp(R.bundle)) {
			R.bundle[0] = 0;
			rc = cg_fail(e, CG_E_INTERNAL, "sandbox: cannot create a bundle folder: %s", strerror(errno));
			goto out;
		}
		/* Without a memory cgroup, gVisor applies RLIMIT_AS to each guest process. */
		if ((rc = sb_runsc_prepare(R.helper, s, &R.layout, ptext, R.bundle,
					   R.cg.mem_limited ? 0 : s->mem_bytes, &R.helper_argv, e)) != 0)
			goto out;
		break;
	default:
		break;
	}
	if (s->backend != SANDBOX_RUNSC) {
		if (s->mem_bytes && !R.cg.mem_limited)
			c.rl_as = s->mem_bytes;
		if (s->pids && !R.cg.pids_limited)
			c.rl_nproc = s->pids + pids_extra;
	} else {
		c.rl_fsize = 0; /* the Go runtime of runsc must not be capped; limits go in the OCI spec */
		c.rl_nofile = 65536;
	}
	c.helper = R.helper;
	c.helper_argv = R.helper_argv.v;
	if (s->backend != SANDBOX_NATIVE)
		c.env = sb_default_env;
	c.fd_in = R.fd_in;
	c.fd_out = R.p_out[1];
	c.fd_err = R.p_err[1];
	c.fd_go = R.p_go[0];
	c.fd_status = R.p_st[1];
	c.n_extra = R.n_extra;
	memcpy(c.fd_extra, R.extra, sizeof(int) * (size_t)R.n_extra);
	c.idm = R.idm;
	c.n_idm = R.n_idm;

	/* Born straight into the v2 cgroup when there is one (CLONE_INTO_CGROUP): migrating a running task
	 * into a v2 cgroup costs a synchronize_rcu() in the kernel, most of a cold start. */
	int pidfd = -1;
	pid_t pid = -1;
	bool in_v2 = false;
	int cgfd = R.cg.v2[0] ? open(R.cg.v2, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (cgfd >= 0) {
		struct clone_args ca;
		memset(&ca, 0, sizeof ca);
		ca.flags = flags | CLONE_PIDFD | CLONE_INTO_CGROUP;
		ca.pidfd = (uint64_t)(uintptr_t)&pidfd;
		ca.exit_signal = SIGCHLD;
		ca.cgroup = (uint64_t)cgfd;
		pid = (pid_t)syscall(SYS_clone3, &ca, sizeof ca);
		in_v2 = pid >= 0;
		if (pid != 0)
			close(cgfd);
	}
	if (pid < 0)
		pid = (pid_t)syscall(SYS_clone, flags | CLONE_PIDFD | SIGCHLD, 0UL, &pidfd, 0UL, 0UL);
	if (pid < 0) {
		rc = cg_fail(e, errno == EPERM || errno == EINVAL || errno == ENOSPC ? CG_E_UNAVAILABLE : CG_E_INTERNAL,
			     "sandbox: cannot create the %s namespaces: %s (see 'clawgrid sandbox check')",
			     sandbox_backend_name(s->backend), strerror(errno));
		goto out;
	}
	if (pid == 0) {
		if (s->backend == SANDBOX_NATIVE)
			sb_native_child(&c);
		sb_helper_child(&c);
	}
	R.pid = pid;
	R.pidfd = pidfd;
	close_fd(&R.p_out[1]);
	close_fd(&R.p_err[1]);
	close_fd(&R.p_go[0]);
	close_fd(&R.p_st[1]);
	close_fd(&R.fd_in);
	for (int i = 0; i < R.n_extra; i++)
		close_fd(&R.extra[i]);

	int prc = 0;
	if (s->backend == SANDBOX_NATIVE)
		prc = write_maps(pid, root ? SB_HOST_UID_ROOT : geteuid(), root ? SB_HOST_GID_ROOT : getegid(), root);
	if (prc == 0)
		prc = sb_cgroup_attach(&R.cg, pid, in_v2);
	o.t_start = clock_mono_ms();
	if (prc != 0 || write(R.p_go[1], "g", 1) != 1) {
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		rc = cg_fail(e, CG_E_INTERNAL, "sandbox: preparing the child failed: %s",
			     strerror(prc ? -prc : errno));
		goto out;
	}
	close_fd(&R.p_go[1]);

	/* Writing stdin to a command that exits early must not SIGPIPE the whole process. */
	sigset_t pipe_set, old;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	supervise(&R, s, r, &o);
	struct timespec zero = {0, 0};
	while (sigtimedwait(&pipe_set, NULL, &zero) > 0)
		;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	rc = finish(&R, s, r, &o, e);
out:
	if (rc)
		sandbox_result_done(r);
	run_done(&R);
	return rc;
}
