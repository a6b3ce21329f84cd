/* The child side of a sandbox, between clone() and execve().
 *
 * The supervisor may be multi-threaded (the node's worker pool), so after clone() only system calls are
 * safe: no malloc, no stdio, no locks, no glibc set*id wrappers (they signal threads that do not exist in
 * the child). Every string used here was prepared by the supervisor before clone(); failures are reported
 * as a fixed-size message on the status pipe and the child exits.
 *
 * Native backend, in order: wait for the supervisor (uid/gid maps, cgroups) -> cgroup namespace -> private
 * mounts -> a tmpfs root populated from the layout -> root read-only -> pivot_root and detach the host
 * tree -> hostname, loopback up -> rlimits -> securebits, empty capability sets, no_new_privs ->
 * seccomp -> fork the workload (PID 2) and reap until it exits, then report its wait status. */
#define CG_SANDBOX_INTERNAL 1
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/securebits.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/internal.h"

enum {
	ST_FDS = 1,
	ST_GO,
	ST_CGROUPNS,
	ST_PRIVATE,
	ST_ROOT,
	ST_MKDIR,
	ST_BIND,
	ST_REMOUNT,
	ST_SYMLINK,
	ST_FILE,
	ST_TMPFS,
	ST_PROC,
	ST_ROOT_RO,
	ST_PIVOT,
	ST_HOSTNAME,
	ST_LOOPBACK,
	ST_RLIMIT,
	ST_SECUREBITS,
	ST_CAPS,
	ST_NNP,
	ST_SECCOMP,
	ST_FORK,
	ST_IDS,
	ST_EXEC,
	ST_COUNT
};

const char *sb_stage_name(int stage)
{
	static const char *const names[ST_COUNT] = {
		"?",	       "descriptors", "start",	   "cgroup namespace", "private mounts",
		"root tmpfs",  "mkdir",	      "bind mount", "read-only remount", "symlink",
		"file",	       "tmpfs",	      "proc",	   "read-only root",   "pivot_root",
		"hostname",    "loopback",    "rlimits",   "securebits",       "capabilities",
		"no_new_privs", "seccomp",    "fork",	   "uid/gid",	       "exec",
	};
	return stage > 0 && stage < ST_COUNT ? names[stage] : "?";
}

static void report(int kind, int stage, int err, int status)
{
	struct sb_msg m = {kind, stage, err, status};
	ssize_t w = write(SB_FD_STATUS, &m, sizeof m);
	(void)w;
}

__attribute__((noreturn)) static void fail(int stage)
{
	report(SBM_SETUP_FAIL, stage, errno, 0);
	_exit(126);
}

/* Moves the supervisor's descriptors to fixed numbers and closes everything else (a parent that forgot
 * O_CLOEXEC somewhere must not leak a descriptor into the sandbox). */
static void place_fds(const struct sb_child *c, bool extra_cloexec)
{
	int src[5 + SB_MAX_EXTRA_FDS], n = 0;
	src[n++] = c->fd_in;
	src[n++] = c->fd_out;
	src[n++] = c->fd_err;
	src[n++] = c->fd_go;
	src[n++] = c->fd_status;
	for (int i = 0; i < c->n_extra; i++)
		src[n++] = c->fd_extra[i];
	int tmp[5 + SB_MAX_EXTRA_FDS];
	for (int i = 0; i < n; i++)
		if ((tmp[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 200)) < 0)
			_exit(125); /* the status pipe is not in place yet */
	for (int i = 0; i < n; i++) {
		int want = i < 5 ? i : SB_FD_SECCOMP + (i - 5);
		if (dup2(tmp[i], want) < 0)
			_exit(125);
		if (i == 3 || i == 4 || (i >= 5 && extra_cloexec))
			fcntl(want, F_SETFD, FD_CLOEXEC);
	}
	syscall(SYS_close_range, (unsigned)(SB_FD_SECCOMP + c->n_extra), ~0u, 0u);
}

static void wait_go(void)
{
	char b;
	ssize_t r;
	do
		r = read(SB_FD_GO, &b, 1);
	while (r < 0 && errno == EINTR);
	if (r != 1)
		_exit(125); /* the supervisor gave up on us */
	close(SB_FD_GO);
}

/* mkdir -p of the parent folders of path (a copy is modified on the stack). */
static int mkdir_parents(const char *path)
{
	char p[4200];
	size_t n = strlen(path);
	if (n >= sizeof p)
		return -1;
	memcpy(p, path, n + 1);
	for (size_t i = 1; i < n; i++) {
		if (p[i] != '/')
			continue;
		p[i] = 0;
		if (mkdir(p, 0755) != 0 && errno != EEXIST)
			return -1;
		p[i] = '/';
	}
	return 0;
}

static int make_target(const char *path, bool dir)
{
	if (mkdir_parents(path) != 0)
		return -1;
	if (dir)
		return mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : -1;
	int fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0444);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

/* The flags a remount inside a user namespace must keep (the kernel locks them). */
static unsigned long locked_flags(const char *path)
{
	struct statfs sf;
	if (statfs(path, &sf) != 0)
		return 0;
	unsigned long f = 0;
	if (sf.f_flags & ST_RDONLY)
		f |= MS_RDONLY;
	if (sf.f_flags & ST_NOSUID)
		f |= MS_NOSUID;
	if (sf.f_flags & ST_NODEV)
		f |= MS_NODEV;
	if (sf.f_flags & ST_NOEXEC)
		f |= MS_NOEXEC;
	if (sf.f_flags & ST_NOATIME)
		f |= MS_NOATIME;
	if (sf.f_flags & ST_NODIRATIME)
		f |= MS_NODIRATIME;
	if (sf.f_flags & ST_RELATIME)
		f |= MS_RELATIME;
	return f;
}

static void fmt_fd_path(char *out, int fd)
{
	static const char pre[] = "/proc/self/fd/";
	memcpy(out, pre, sizeof pre - 1);
	char d[12];
	int n = 0;
	do
		d[n++] = (char)('0' + fd % 10);
	while ((fd /= 10) > 0);
	int o = (int)sizeof pre - 1;
	while (n)
		out[o++] = d[--n];
	out[o] = 0;
}

static void build_root(const struct sb_child *c, const struct sb_native *nv)
{
	const struct sb_layout *L = c->layout;
	if (mount("tmpfs", c->stage_root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1048576,mode=0755") != 0)
		fail(ST_ROOT);
	for (size_t i = 0; i < L->n; i++) {
		const struct sb_ent *x = &L->e[i];
		const char *dst = nv->staged[i];
		switch (x->kind) {
		case SBE_DIR:
			if (make_target(dst, true) != 0)
				fail(ST_MKDIR);
			break;
		case SBE_RO_BIND:
		case SBE_RW_BIND:
		case SBE_DEV_BIND: {
			bool dev = x->kind == SBE_DEV_BIND;
			if (make_target(dst, x->src_is_dir) != 0)
				fail(ST_MKDIR);
			if (nv->mnt_fd[i] >= 0) {
				/* The supervisor's idmapped copy (owner shown as our root), already nosuid, nodev
				 * and read-only where asked: attach it as it is. */
				if (syscall(SYS_move_mount, nv->mnt_fd[i], "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH) != 0)
					fail(ST_BIND);
				break;
			}
			/* --ro/--rw sources are reopened here, in our own copy of the mount table (a mount
			 * cannot be bound across namespaces), refusing every symlink on the way: a path
			 * component swapped for a symlink after the supervisor checked it fails instead of
			 * redirecting the bind. */
			char fdp[32];
			const char *src = x->src;
			int sfd = -1;
			if (x->fd >= 0) {
				struct open_how how = {.flags = O_PATH | O_CLOEXEC,
						       .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
				sfd = (int)syscall(SYS_openat2, AT_FDCWD, x->src, &how, sizeof how);
				if (sfd < 0)
					fail(ST_BIND);
				fmt_fd_path(fdp, sfd);
				src = fdp;
			}
			if (mount(src, dst, NULL, MS_BIND | (dev ? 0 : MS_REC), NULL) != 0)
				fail(ST_BIND);
			if (sfd >= 0)
				close(sfd);
			unsigned long fl = MS_REMOUNT | MS_BIND | MS_NOSUID | locked_flags(dst);
			if (dev)
				fl = (fl | MS_NOEXEC) & ~(unsigned long)MS_NODEV;
			else
				fl |= MS_NODEV;
			if (x->kind == SBE_RO_BIND)
				fl |= MS_RDONLY;
			if (mount(NULL, dst, NULL, fl, NULL) != 0)
				fail(ST_REMOUNT);
			break;
		}
		case SBE_SYMLINK:
			if (mkdir_parents(dst) != 0)
				fail(ST_MKDIR);
			if (symlink(x->src, dst) != 0)
				fail(ST_SYMLINK);
			break;
		case SBE_FILE: {
			if (mkdir_parents(dst) != 0)
				fail(ST_MKDIR);
			int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, x->mode);
			if (fd < 0)
				fail(ST_FILE);
			for (size_t off = 0; off < x->len;) {
				ssize_t w = write(fd, x->data + off, x->len - off);
				if (w <= 0)
					fail(ST_FILE);
				off += (size_t)w;
			}
			close(fd);
			break;
		}
		case SBE_TMPFS:
			if (make_target(dst, true) != 0)
				fail(ST_MKDIR);
			if (mount("tmpfs", dst, "tmpfs", nv->mflags[i], nv->opts[i]) != 0)
				fail(ST_TMPFS);
			break;
		case SBE_PROC:
			if (make_target(dst, true) != 0)
				fail(ST_MKDIR);
			if (mount("proc", dst, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
				fail(ST_PROC);
			break;
		}
	}
	if (mount(NULL, c->stage_root, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0)
		fail(ST_ROOT_RO);
	/* pivot_root(".", ".") stacks the old root under the new one; detaching it leaves no path back. */
	if (chdir(c->stage_root) != 0 || syscall(SYS_pivot_root, ".", ".") != 0)
		fail(ST_PIVOT);
	if (umount2(".", MNT_DETACH) != 0 || chdir("/") != 0)
		fail(ST_PIVOT);
}

static void loopback_up(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		fail(ST_LOOPBACK);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	memcpy(ifr.ifr_name, "lo", 3);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0)
		fail(ST_LOOPBACK);
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0)
		fail(ST_LOOPBACK);
	close(s);
}

static void set_limit(int res, uint64_t v)
{
	struct rlimit rl = {v, v};
	struct rlimit cur;
	/* Only ever lower: raising a hard limit needs CAP_SYS_RESOURCE in the host namespace. */
	if (getrlimit(res, &cur) == 0 && cur.rlim_max != RLIM_INFINITY && cur.rlim_max < v)
		rl.rlim_cur = rl.rlim_max = cur.rlim_max;
	if (setrlimit(res, &rl) != 0)
		fail(ST_RLIMIT);
}

static void apply_rlimits(const struct sb_child *c)
{
	set_limit(RLIMIT_CORE, 0);
	set_limit(RLIMIT_NOFILE, c->rl_nofile);
	if (c->rl_fsize)
		set_limit(RLIMIT_FSIZE, c->rl_fsize);
	if (c->rl_as)
		set_limit(RLIMIT_AS, c->rl_as);
	if (c->rl_nproc)
		set_limit(RLIMIT_NPROC, c->rl_nproc);
	set_limit(RLIMIT_MEMLOCK, 64 << 10);
}

/* No capability survives: bounding and ambient sets emptied, effective/permitted/inheritable zeroed, and
 * securebits locked so that execve() as uid 0 of the namespace grants nothing back. */
static void drop_privileges(int last_cap)
{
	if (prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
					     SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED |
					     SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED) != 0)
		fail(ST_SECUREBITS);
	for (int cap = 0; cap <= last_cap; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
			fail(ST_CAPS);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0)
		fail(ST_CAPS);
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof d);
	if (syscall(SYS_capset, &h, d) != 0)
		fail(ST_CAPS);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		fail(ST_NNP);
}

static void load_seccomp(const uint8_t *bpf, size_t len)
{
	struct sock_fprog prog = {(unsigned short)(len / sizeof(struct sock_filter)),
				  (struct sock_filter *)(uintptr_t)bpf};
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
		fail(ST_SECCOMP);
}

/* execvpe() without its allocations: PATH taken from env, default when absent. */
static void exec_path(char *const *argv, char *const *env)
{
	const char *name = argv[0];
	if (strchr(name, '/')) {
		execve(name, argv, env);
		return;
	}
	const char *path = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
	for (size_t i = 0; env[i]; i++)
		if (strncmp(env[i], "PATH=", 5) == 0)
			path = env[i] + 5;
	size_t nl = strlen(name);
	int saved = ENOENT;
	for (const char *p = path;;) {
		const char *colon = strchr(p, ':');
		size_t dl = colon ? (size_t)(colon - p) : strlen(p);
		char full[4200];
		if (dl && dl + nl + 2 < sizeof full) {
			memcpy(full, p, dl);
			full[dl] = '/';
			memcpy(full + dl + 1, name, nl + 1);
			execve(full, argv, env);
			if (errno == EACCES)
				saved = EACCES;
			else if (errno != ENOENT && errno != ENOTDIR)
				return;
		}
		if (!colon)
			break;
		p = colon + 1;
	}
	errno = saved;
}

void sb_native_child(const struct sb_child *c)
{
	const struct sb_native *nv = c->native;
	place_fds(c, true);
	wait_go();
	/* The supervisor has written our uid/gid maps. Become uid/gid 0 of the namespace (the mapped host
	 * account; when the supervisor is root we were still its unmapped uid 0) and shed host groups. */
	if (c->clear_groups && syscall(SYS_setgroups, 0, NULL) != 0)
		fail(ST_IDS);
	if (syscall(SYS_setresgid, 0, 0, 0) != 0 || syscall(SYS_setresuid, 0, 0, 0) != 0)
		fail(ST_IDS);
	if (unshare(CLONE_NEWCGROUP) != 0)
		fail(ST_CGROUPNS);
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		fail(ST_PRIVATE);
	build_root(c, nv);
	if (sethostname(c->hostname, strlen(c->hostname)) != 0)
		fail(ST_HOSTNAME);
	loopback_up();
	apply_rlimits(c);
	/* Descriptors of the --ro/--rw sources are mounted now; nothing may carry them further. */
	syscall(SYS_close_range, (unsigned)SB_FD_SECCOMP, ~0u, 0u);
	drop_privileges(c->last_cap);
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		fail(ST_NNP);
	load_seccomp(c->bpf, c->bpf_len);

	pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)SIGCHLD, 0UL, 0UL, 0UL, 0UL);
	if (pid < 0)
		fail(ST_FORK);
	if (pid == 0) {
		/* The workload: its own session (no controlling terminal to push input into), in /work. */
		setsid();
		if (chdir(SB_WORKDIR) != 0)
			fail(ST_EXEC);
		exec_path(c->argv, c->env);
		report(SBM_EXEC_FAIL, ST_EXEC, errno, 0);
		_exit(127);
	}
	/* PID 1: hold no pipe ends (EOF must follow the workload), reap everything, report the workload. */
	close(0);
	close(1);
	close(2);
	int status = 0;
	for (;;) {
		int st;
		pid_t w = (pid_t)syscall(SYS_wait4, -1, &st, 0, NULL);
		if (w == pid) {
			status = st;
			break;
		}
		if (w < 0 && errno != EINTR)
			break;
	}
	report(SBM_EXIT, 0, 0, status);
	_exit(0);
}

/* bwrap as root: in a private mount namespace, each idmapped copy goes over its host path and the
 * descriptor bwrap binds from is reopened through it. Path walks refuse symlinks, as in build_root. */
static void attach_idmapped(const struct sb_child *c)
{
	if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		fail(ST_PRIVATE);
	struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
	for (int i = 0; i < c->n_idm; i++) {
		const struct sb_idm_bind *b = &c->idm[i];
		int t = (int)syscall(SYS_openat2, AT_FDCWD, b->path, &how, sizeof how);
		if (t < 0 || syscall(SYS_move_mount, b->mnt_fd, "", t, "",
				     MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0)
			fail(ST_BIND);
		close(t);
		close(b->mnt_fd);
		int n = (int)syscall(SYS_openat2, AT_FDCWD, b->path, &how, sizeof how);
		if (n < 0 || dup2(n, b->bind_fd) < 0) /* dup2 leaves the copy inheritable, as bwrap needs it */
			fail(ST_BIND);
		close(n);
	}
}

void sb_helper_child(const struct sb_child *c)
{
	place_fds(c, false);
	wait_go();
	setsid();
	apply_rlimits(c);
	if (c->n_idm)
		attach_idmapped(c);
	if (c->drop_to_nobody) {
		if (syscall(SYS_setgroups, 0, NULL) != 0 ||
		    syscall(SYS_setresgid, SB_HOST_GID_ROOT, SB_HOST_GID_ROOT, SB_HOST_GID_ROOT) != 0 ||
		    syscall(SYS_setresuid, SB_HOST_UID_ROOT, SB_HOST_UID_ROOT, SB_HOST_UID_ROOT) != 0)
			fail(ST_IDS);
	}
	/* After the id change (which clears it): a supervisor that dies must not leave the sandbox running
	 * (bwrap --die-with-parent and runsc carry it further). */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
		fail(ST_NNP);
	execve(c->helper, c->helper_argv, c->env);
	report(SBM_EXEC_FAIL, ST_EXEC, errno, 0);
	_exit(127);
}
