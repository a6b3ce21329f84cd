/* sandbox internals shared by the backends; not part of the module's API. */
#ifndef CG_SANDBOX_INTERNAL_H
#define CG_SANDBOX_INTERNAL_H

#ifndef CG_SANDBOX_INTERNAL
#error "sandbox/internal.h is private to src/sandbox/ (define CG_SANDBOX_INTERNAL there only)"
#endif

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "sandbox/sandbox.h"

/* The sandbox's host identity when the supervisor runs as root: the workload is uid/gid 0 inside its user
 * namespace and nobody/nogroup outside, so an escape lands on an account that owns nothing. */
#define SB_HOST_UID_ROOT 65534
#define SB_HOST_GID_ROOT 65534
#define SB_DEFAULT_DISK (64ull << 20)
#define SB_DEFAULT_NOFILE 256
#define SB_WORKDIR "/work"
/* The workload's environment when the spec gives none (PATH, HOME=/work, TMPDIR, LANG, USER). */
extern char *const sb_default_env[];

/* ---- the filesystem the sandbox sees, as a backend-neutral list ---- */
enum sb_ent_kind {
	SBE_RO_BIND,  /* host src -> dst, read-only, nosuid, nodev */
	SBE_RW_BIND,  /* host src -> dst, nosuid, nodev */
	SBE_DEV_BIND, /* a device node src -> dst (devices usable) */
	SBE_SYMLINK,  /* dst -> src (link text) */
	SBE_FILE,     /* dst gets data (synthetic, read-only) */
	SBE_TMPFS,    /* dst is a tmpfs of size bytes, mode */
	SBE_PROC,     /* dst is a fresh procfs */
	SBE_DIR,      /* dst is an empty directory */
};

struct sb_ent {
	uint8_t kind;
	bool src_is_dir;
	int fd;        /* O_PATH fd of the source for user binds (race-free), else -1 */
	int mnt_fd;    /* detached idmapped copy of that source (sb_idmap_binds), else -1 */
	char *src;     /* host path, or link text */
	char *dst;     /* path inside the sandbox */
	char *data;    /* SBE_FILE */
	size_t len;
	uint64_t size; /* SBE_TMPFS */
	unsigned mode;
};

struct sb_layout {
	struct sb_ent *e;
	size_t n, cap;
};

int sb_layout_build(const struct sandbox_spec *s, struct sb_layout *L, cg_err *e);
void sb_layout_done(struct sb_layout *L);
/* Root only: gives every --ro/--rw bind a detached idmapped copy (mnt_fd) that shows the path's owner as the
 * sandbox's root, so a caller's folder is writable inside without changing it on the host. Binds that
 * cannot be idmapped stay plain, with a note. */
void sb_idmap_binds(struct sb_layout *L, char *notes, size_t cap);
/* For `sandbox check`: 0 when an idmapped mount of dir works here (why: ""), else -errno and why says so. */
int sb_idmap_probe(const char *dir, char *why, size_t cap);

/* ---- cgroups: v2 where controllers are delegated, v1 per controller otherwise ---- */
struct sb_cgroup {
	char v2[1024];                 /* this run's unified cgroup ("" = none): tracking, kill, maybe limits */
	char mem[1024], pids[1024], cpu[1024], acct[1024]; /* v1 dirs of this run ("" = none) */
	bool v2_mem, v2_pids, v2_cpu; /* limit applied through v2 */
	bool mem_limited, pids_limited, cpu_limited;
};

struct sb_cgstats {
	uint64_t peak_mem;  /* 0 = unknown */
	uint64_t oom_kills;
	bool mem_hit, pids_hit;
	int64_t cpu_us;     /* -1 = unknown */
};

/* Creates this run's cgroups with the spec's limits (pids_extra: helper processes of the backend that
 * count against pids.max). What cannot be limited is appended to notes. Never fails the run by itself:
 * the caller decides (a limit asked for but not enforceable falls back to rlimits). */
void sb_cgroup_create(struct sb_cgroup *cg, const struct sandbox_spec *s, uint32_t pids_extra, char *notes,
		      size_t cap);
/* Moves pid into this run's cgroups (in_v2: it was born in the v2 one with CLONE_INTO_CGROUP). */
int sb_cgroup_attach(const struct sb_cgroup *cg, pid_t pid, bool in_v2);
void sb_cgroup_kill(const struct sb_cgroup *cg);
void sb_cgroup_stats(const struct sb_cgroup *cg, struct sb_cgstats *st);
void sb_cgroup_destroy(struct sb_cgroup *cg);

/* What the host offers (for `sandbox check` and for picking cgroup paths). */
struct sb_cghost {
	char v2_mount[256], v2_own[512];
	char v2_controllers[256];              /* cgroup.controllers of our own v2 cgroup */
	char v1_mount[4][256], v1_own[4][512]; /* memory, pids, cpu, cpuacct */
};
void sb_cgroup_host(struct sb_cghost *h);

/* ---- the child side ---- */

/* Status messages from the child to the supervisor over the status pipe. */
enum { SBM_SETUP_FAIL = 1, SBM_EXEC_FAIL, SBM_EXIT };
struct sb_msg {
	int32_t kind;
	int32_t stage; /* SBM_SETUP_FAIL: which step (index into sb_stage_name) */
	int32_t err;   /* errno */
	int32_t status;/* SBM_EXIT: wait status of the workload */
};
const char *sb_stage_name(int stage);

/* Fixed descriptor numbers inside the child before exec. */
enum { SB_FD_GO = 3, SB_FD_STATUS = 4, SB_FD_SECCOMP = 5, SB_FD_FIRST_DATA = 6 };
/* Descriptors a child inherits beyond the fixed ones (bwrap: status, seccomp, 5 files, 2 per user bind). */
#define SB_MAX_EXTRA_FDS (8 + 2 * SANDBOX_MAX_MOUNTS)

/* An idmapped bind a helper backend attaches over its host path before exec, so that bwrap, binding that
 * path through bind_fd, sees the owner mapping. Descriptor numbers are the child's. */
struct sb_idm_bind {
	const char *path; /* the resolved host path (borrowed from the layout) */
	int mnt_fd;       /* the detached idmapped mount */
	int bind_fd;      /* the descriptor bwrap's --bind-fd/--ro-bind-fd names; replaced by the mount's root */
};

/* Per-entry data the native child needs, computed before clone(): the layout's destinations under the
 * staging root, and tmpfs mount options and flags. */
struct sb_native {
	char **staged;
	char **opts;
	unsigned long *mflags;
	int *mnt_fd; /* per entry: the idmapped mount's descriptor in the child, or -1 */
};

struct sb_child {
	enum sandbox_backend backend;
	/* descriptors in the supervisor's numbering, moved into place by the child */
	int fd_in, fd_out, fd_err, fd_go, fd_status;
	int fd_extra[SB_MAX_EXTRA_FDS]; /* moved to SB_FD_SECCOMP + i (bwrap: seccomp program, data files) */
	int n_extra;
	/* native */
	const struct sb_layout *layout;
	const struct sb_native *native;
	const char *stage_root; /* empty host directory the new root is built on */
	const uint8_t *bpf;
	size_t bpf_len;
	char *const *argv;
	char *const *env;
	const char *hostname;
	int last_cap;
	uint64_t rl_as, rl_fsize, rl_nproc; /* 0 = leave */
	uint32_t rl_nofile;
	/* helper backends: exec this program (already resolved) with these args */
	bool clear_groups; /* native, supervisor is root: drop the host's supplementary groups */
	const char *helper;
	char *const *helper_argv;
	bool drop_to_nobody;
	const struct sb_idm_bind *idm; /* bwrap as root: owner-mapped binds to attach before exec */
	int n_idm;
};

/* The child after clone(); never returns. */
__attribute__((noreturn)) void sb_native_child(const struct sb_child *c);
__attribute__((noreturn)) void sb_helper_child(const struct sb_child *c);

/* ---- backends build the helper's command line ---- */
struct sb_argv {
	char **v;
	size_t n, cap;
};
int sb_argv_add(struct sb_argv *a, const char *s);
int sb_argv_addf(struct sb_argv *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_argv_done(struct sb_argv *a);

/* bwrap: argv plus descriptors it must inherit (seccomp program, synthetic files). */
int sb_bwrap_argv(const char *bwrap, const struct sandbox_spec *s, const struct sb_layout *L, const uint8_t *bpf,
		  size_t bpf_len, struct sb_argv *a, int *fds, int *nfds, struct sb_idm_bind *idm, int *n_idm,
		  cg_err *e);
/* runsc: writes an OCI bundle into dir and returns the runsc command line. */
/* rlimit_as: RLIMIT_AS for every guest process (0 = none), where no memory cgroup bounds the sandbox. */
int sb_runsc_prepare(const char *runsc, const struct sandbox_spec *s, const struct sb_layout *L,
		     const char *policy_text, const char *dir, uint64_t rlimit_as, struct sb_argv *a, cg_err *e);

/* Helpers. */
void sb_note(char *notes, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int sb_write_file(const char *path, const char *s); /* 0 or -errno; O_CLOEXEC, no O_CREAT */
int sb_read_file(const char *path, char *out, size_t cap); /* bytes read (NUL-terminated) or -errno */
bool sb_find_exe(const char *name, char *out, size_t cap);  /* in $PATH, else /usr/bin, /usr/sbin */
int sb_rmtree(const char *path);                             /* no symlink following */

#endif
