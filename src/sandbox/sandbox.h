/* sandbox — run an untrusted command isolated from the host, with limits, and report what happened.
 *
 * Backends: "native" (our own namespaces + pivot_root + seccomp + cgroups, the default), "bwrap"
 * (bubblewrap, fed the same seccomp program) and "runsc" (gVisor, OCI bundle with --network=none).
 * Every backend gets the same spec; limits a backend cannot enforce are listed in result.notes, never
 * silently dropped. docs/sandbox.md has the design and the threat model.
 *
 *   struct sandbox_spec s;  sandbox_spec_init(&s);
 *   s.argv = argv;  s.mem_bytes = 256 << 20;  s.timeout_ms = 10000;
 *   struct sandbox_result r;
 *   if (sandbox_run(&s, &r, &e) == 0) { ...r.exit_code, r.out... }
 *   sandbox_result_done(&r);
 *
 * sandbox_run blocks until the command is gone (use sandbox_run_async on an event loop). It forks; the
 * caller must not hold locks another thread needs in the child (the child only makes system calls). */
#ifndef CG_SANDBOX_SANDBOX_H
#define CG_SANDBOX_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/buf.h"
#include "base/err.h"

struct event_base;

enum sandbox_backend { SANDBOX_NATIVE = 0, SANDBOX_BWRAP, SANDBOX_RUNSC, SANDBOX_BACKEND_COUNT };

/* What ended the run, beyond a plain exit. */
enum sandbox_kill {
	SANDBOX_KILL_NONE = 0,
	SANDBOX_KILL_TIMEOUT, /* wall-clock timeout: the whole tree was killed */
	SANDBOX_KILL_MEMORY,  /* the memory limit's OOM killer */
	SANDBOX_KILL_SECCOMP, /* a syscall the policy kills on (SIGSYS) */
	SANDBOX_KILL_SIGNAL,  /* any other signal */
	SANDBOX_KILL_CPU,     /* RLIMIT_CPU (SIGXCPU/SIGKILL) */
	SANDBOX_KILL_FILESIZE, /* RLIMIT_FSIZE (SIGXFSZ) */
	SANDBOX_KILL_PIDS     /* the command failed (error exit or signal) after a fork was refused by the limit */
};

#define SANDBOX_MAX_MOUNTS 64
#define SANDBOX_MAX_GPUS 16
#define SANDBOX_MAX_ARGS 1024
#define SANDBOX_DEFAULT_OUT_CAP (1u << 20)

struct sandbox_mount {
	const char *path; /* absolute host path, bound at the same path inside */
	bool rw;
};

/* Everything is borrowed for the duration of sandbox_run (sandbox_run_async copies what it needs).
 * Zero means "no limit" for every numeric limit except where noted. */
struct sandbox_spec {
	enum sandbox_backend backend;
	char *const *argv;      /* required; argv[0] is looked up in the sandbox's PATH */
	char *const *env;       /* NULL: PATH, HOME=/work, TMPDIR=/tmp, LANG=C.UTF-8 only */
	const struct sandbox_mount *mounts;
	size_t n_mounts;
	const char *stdin_path; /* host file fed to stdin; NULL: /dev/null (or stdin_data) */
	const void *stdin_data; /* bytes fed to stdin when stdin_path is NULL */
	size_t stdin_len;
	uint64_t mem_bytes;     /* memory of the whole tree (cgroup), else RLIMIT_AS per process */
	uint32_t cpu_millis;    /* CPU bandwidth, 1000 = one core */
	uint32_t pids;          /* processes + threads of the whole tree */
	uint64_t timeout_ms;    /* wall clock; the whole tree is killed when it passes */
	uint64_t disk_bytes;    /* size of the private /tmp and /work tmpfs; default 64 MiB */
	uint32_t nofile;        /* RLIMIT_NOFILE; default 256 */
	size_t out_cap;         /* bytes kept of stdout and of stderr each; default 1 MiB */
	const char *const *gpus;/* NULL-terminated device paths (/dev/nvidia0...), or NULL */
	const char *policy;     /* seccomp policy text; NULL: the embedded default policy */
	const char *hostname;   /* default "sandbox" */
};

struct sandbox_result {
	char backend[8];
	int exit_code;         /* the command's exit status, or -1 when a signal ended it */
	int signal;            /* the terminating signal, or 0 */
	enum sandbox_kill killed_by;
	bool pids_limit_hit;   /* a fork or clone failed on the process limit */
	bool mem_limit_hit;    /* the memory limit was reached (even if nothing was killed) */
	int64_t wall_ms, cpu_ms;
	uint64_t peak_mem_bytes; /* whole tree when a memory cgroup exists, else the largest process */
	buf out, err;          /* captured output, at most out_cap each */
	bool out_truncated, err_truncated;
	uint64_t out_total, err_total; /* bytes written, kept or not */
	char notes[512];       /* limits not enforced here and why, "; "-separated */
};

void sandbox_spec_init(struct sandbox_spec *s);
/* Runs the command. Returns 0 when it ran (whatever its exit status) with *r filled (caller calls
 * sandbox_result_done), or a negative code: E_INVALID_ARGUMENT for a bad spec, E_UNAVAILABLE when the
 * backend or a requested device is missing on this host, E_INTERNAL when setting up isolation failed. */
int sandbox_run(const struct sandbox_spec *s, struct sandbox_result *r, cg_err *e);
void sandbox_result_done(struct sandbox_result *r);
/* The JSON report: backend, exit_code|signal, killed_by, cpu_ms, wall_ms, peak_mem_bytes, truncation,
 * limits hit, notes; with_output adds stdout/stderr (as text, invalid UTF-8 replaced). Caller decrefs. */
json_t *sandbox_result_json(const struct sandbox_result *r, bool with_output);
const char *sandbox_kill_name(enum sandbox_kill k); /* "timeout", ... NULL for NONE */

/* Runs on a worker thread; done(arg, r, e) is called on base's loop thread exactly once, with r NULL
 * when the run could not start (e says why). r is borrowed for the call. The spec is copied. */
typedef void (*sandbox_done_fn)(void *arg, const struct sandbox_result *r, const cg_err *e);
int sandbox_run_async(struct event_base *base, const struct sandbox_spec *s, sandbox_done_fn done, void *arg,
		      cg_err *e);

const char *sandbox_backend_name(enum sandbox_backend b);
int sandbox_backend_parse(const char *name, enum sandbox_backend *out); /* 0 or -1 */
/* Path of the backend's helper binary (bwrap, runsc) in PATH; false when missing. native: always true. */
bool sandbox_backend_available(enum sandbox_backend b, char *path, size_t cap);

/* What this host supports, and why not: {"euid", "rootless", "namespaces": {...}, "cgroup": {...},
 * "seccomp": ..., "backends": {"native": {"ok":true}, "bwrap": {"ok":false,"why":"..."}}, "gpu": [...]}.
 * Runs tiny probes (forks). Caller decrefs. */
json_t *sandbox_check(void);

/* Defaults for runs that do not say otherwise: the config section "sandbox" of config.json
 *   {"backend": "native", "memory": "512M", "cpus": "1", "pids": 256, "timeout": "60s", "disk": "64M",
 *    "output_cap": "1M", "nofile": 256}
 * All keys optional; unknown keys and bad values are E_INVALID_ARGUMENT naming "sandbox.<key>". */
struct sandbox_defaults {
	enum sandbox_backend backend;
	uint64_t mem_bytes, disk_bytes, timeout_ms;
	uint32_t cpu_millis, pids, nofile;
	size_t out_cap;
};
void sandbox_defaults_init(struct sandbox_defaults *d); /* the values shown above */
int sandbox_config_parse(json_t *section, struct sandbox_defaults *d, cg_err *e);
/* Fills the spec's unset (zero) limits and, when backend_unset, its backend. */
void sandbox_defaults_apply(const struct sandbox_defaults *d, struct sandbox_spec *s, bool backend_unset);

/* Parsers for limits given by people (CLI flags, config). 0 or -1 (with e set). */
int sandbox_parse_size(const char *s, uint64_t *out, cg_err *e);      /* "512M", "1g", "4096", "2KiB" */
int sandbox_parse_duration(const char *s, uint64_t *ms, cg_err *e);   /* "10s", "500ms", "2m", "1h", "3" (s) */
int sandbox_parse_cpus(const char *s, uint32_t *millis, cg_err *e);   /* "1.5" -> 1500, "0.25" -> 250 */

#endif
