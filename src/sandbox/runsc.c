/* The gVisor backend: the layout becomes an OCI bundle (an empty read-only rootfs plus bind and tmpfs
 * mounts), the policy becomes the OCI seccomp section, rlimits go into the process section, and
 * `runsc --network=none --ignore-cgroups run` starts it. Our own cgroups (created around the runsc process)
 * bound the whole sandbox, sentry and gofer included. gVisor brings its own /dev, so the /dev entries of the
 * layout are not mapped. */
#define CG_SANDBOX_INTERNAL 1
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/internal.h"
#include "sandbox/policy.h"

static int mkdir_p(const char *path, mode_t mode)
{
	char p[4200];
	snprintf(p, sizeof p, "%s", path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(p, 0755) != 0 && errno != EEXIST)
			return -1;
		*s = '/';
	}
	return mkdir(p, mode) == 0 || errno == EEXIST ? 0 : -1;
}

static int write_all(const char *path, const char *data, size_t n, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return -1;
	for (size_t off = 0; off < n;) {
		ssize_t w = write(fd, data + off, n - off);
		if (w <= 0) {
			close(fd);
			return -1;
		}
		off += (size_t)w;
	}
	return close(fd);
}

/* The mount point must exist in the read-only rootfs: a directory or an empty file. */
static int make_point(const char *rootfs, const char *dst, bool dir)
{
	char p[4200];
	snprintf(p, sizeof p, "%s%s", rootfs, dst);
	if (dir)
		return mkdir_p(p, 0755);
	char parent[4200];
	snprintf(parent, sizeof parent, "%s", p);
	char *slash = strrchr(parent, '/');
	if (slash && slash != parent) {
		*slash = 0;
		if (mkdir_p(parent, 0755) != 0)
			return -1;
	}
	return write_all(p, "", 0, 0444);
}

static json_t *mount_obj(const char *dst, const char *type, const char *src, json_t *opts)
{
	return json_pack("{s:s,s:s,s:s,s:o}", "destination", dst, "type", type, "source", src, "options", opts);
}

static json_t *rlimit(const char *type, uint64_t v)
{
	return json_pack("{s:s,s:I,s:I}", "type", type, "hard", (json_int_t)v, "soft", (json_int_t)v);
}

/* The policy answers clone3 with ENOSYS so that glibc falls back to clone, whose flags seccomp can check.
 * runsc 20221219 ignores the OCI errnoRet and answers EPERM, and glibc then fails every pthread_create and
 * posix_spawn. gVisor has no clone3 of its own (it answers ENOSYS), so the call is passed through to it. */
static void clone3_to_gvisor(json_t *seccomp)
{
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(seccomp, "syscalls"), i, r) {
		json_t *names = json_object_get(r, "names");
		const char *name = json_string_value(json_array_get(names, 0));
		if (json_array_size(names) == 1 && name && strcmp(name, "clone3") == 0 &&
		    json_integer_value(json_object_get(r, "errnoRet")) == ENOSYS) {
			json_object_set_new(r, "action", json_string("SCMP_ACT_ALLOW"));
			json_object_del(r, "errnoRet");
		}
	}
}

int sb_runsc_prepare(const char *runsc, const struct sandbox_spec *s, const struct sb_layout *L,
		     const char *policy_text, const char *dir, uint64_t rlimit_as, struct sb_argv *a, cg_err *e)
{
	char rootfs[256], files[256], state[256], cfg[256];
	snprintf(rootfs, sizeof rootfs, "%s/rootfs", dir);
	snprintf(files, sizeof files, "%s/files", dir);
	snprintf(state, sizeof state, "%s/state", dir);
	snprintf(cfg, sizeof cfg, "%s/config.json", dir);
	if (mkdir(rootfs, 0755) || mkdir(files, 0755) || mkdir(state, 0700))
		return cg_fail(e, CG_E_INTERNAL, "runsc bundle: %s", strerror(errno));

	json_t *mounts = json_array();
	int rc = 0;
	for (size_t i = 0; i < L->n && rc == 0; i++) {
		const struct sb_ent *x = &L->e[i];
		bool in_dev = strncmp(x->dst, "/dev", 4) == 0 && (x->dst[4] == 0 || x->dst[4] == '/');
		if (in_dev && strcmp(x->dst, "/dev/shm") != 0)
			continue;
		char p[4200];
		switch (x->kind) {
		case SBE_RO_BIND:
		case SBE_RW_BIND:
			rc = make_point(rootfs, x->dst, x->src_is_dir);
			json_array_append_new(
				mounts, mount_obj(x->dst, "bind", x->src,
						  x->kind == SBE_RO_BIND ? json_pack("[s,s,s,s]", "rbind", "ro", "nosuid", "nodev")
									 : json_pack("[s,s,s]", "rbind", "nosuid", "nodev")));
			break;
		case SBE_SYMLINK:
			snprintf(p, sizeof p, "%s%s", rootfs, x->dst);
			rc = symlink(x->src, p);
			break;
		case SBE_FILE: {
			char f[300];
			snprintf(f, sizeof f, "%s/%zu", files, i);
			rc = write_all(f, x->data, x->len, x->mode);
			if (rc == 0)
				rc = make_point(rootfs, x->dst, false);
			json_array_append_new(mounts, mount_obj(x->dst, "bind", f, json_pack("[s,s]", "bind", "ro")));
			break;
		}
		case SBE_TMPFS: {
			char sz[64], md[32];
			snprintf(sz, sizeof sz, "size=%llu", (unsigned long long)x->size);
			snprintf(md, sizeof md, "mode=%o", x->mode);
			rc = make_point(rootfs, x->dst, true);
			json_array_append_new(mounts, mount_obj(x->dst, "tmpfs", "tmpfs",
								json_pack("[s,s,s,s]", sz, md, "nosuid", "nodev")));
			break;
		}
		case SBE_PROC:
			rc = make_point(rootfs, x->dst, true);
			json_array_append_new(mounts, mount_obj(x->dst, "proc", "proc", json_array()));
			break;
		case SBE_DIR:
			rc = make_point(rootfs, x->dst, true);
			break;
		default:
			break;
		}
	}
	if (rc == 0)
		rc = make_point(rootfs, "/dev", true);
	if (rc != 0) {
		json_decref(mounts);
		return cg_fail(e, CG_E_INTERNAL, "runsc bundle: %s", strerror(errno));
	}

	json_t *args = json_array(), *env = json_array();
	for (size_t i = 0; s->argv[i]; i++)
		json_array_append_new(args, json_string(s->argv[i]));
	char *const *ev = s->env ? s->env : sb_default_env;
	for (size_t i = 0; ev[i]; i++)
		json_array_append_new(env, json_string(ev[i]));
	uint64_t disk = s->disk_bytes ? s->disk_bytes : SB_DEFAULT_DISK;
	json_t *rl = json_pack("[o,o,o]", rlimit("RLIMIT_NOFILE", s->nofile ? s->nofile : SB_DEFAULT_NOFILE),
			       rlimit("RLIMIT_FSIZE", disk), rlimit("RLIMIT_CORE", 0));
	if (s->pids)
		json_array_append_new(rl, rlimit("RLIMIT_NPROC", s->pids));
	if (rlimit_as)
		json_array_append_new(rl, rlimit("RLIMIT_AS", rlimit_as));
	json_t *caps = json_pack("{s:[],s:[],s:[],s:[],s:[]}", "bounding", "effective", "inheritable", "permitted",
				 "ambient");
	json_t *proc = json_pack("{s:b,s:{s:i,s:i},s:o,s:o,s:s,s:o,s:o,s:b}", "terminal", 0, "user", "uid", 0, "gid",
				 0, "args", args, "env", env, "cwd", SB_WORKDIR, "capabilities", caps, "rlimits", rl,
				 "noNewPrivileges", 1);

	struct sandbox_policy *pol = NULL;
	if ((rc = sandbox_policy_parse(policy_text, strlen(policy_text), &pol, e)) != 0) {
		json_decref(proc);
		json_decref(mounts);
		return rc;
	}
	json_t *seccomp = sandbox_policy_oci(pol);
	clone3_to_gvisor(seccomp);
	json_t *linux_ = json_pack("{s:[{s:s},{s:s},{s:s},{s:s},{s:s}],s:o}", "namespaces", "type", "pid", "type",
				   "network", "type", "ipc", "type", "uts", "type", "mount", "seccomp", seccomp);
	sandbox_policy_free(pol);
	json_t *root = json_pack("{s:s,s:o,s:{s:s,s:b},s:s,s:o,s:o}", "ociVersion", "1.0.2", "process", proc, "root",
				 "path", rootfs, "readonly", 1, "hostname", s->hostname ? s->hostname : "sandbox",
				 "mounts", mounts, "linux", linux_);
	char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
	json_decref(root);
	if (text)
		sandbox_policy_oci_fix(text);
	if (!text || write_all(cfg, text, strlen(text), 0600) != 0) {
		free(text);
		return cg_fail(e, CG_E_INTERNAL, "runsc bundle: cannot write config.json");
	}
	free(text);

	char id[64];
	snprintf(id, sizeof id, "clawgrid-%s", strrchr(dir, '-') + 1);
	rc = 0;
	rc |= sb_argv_add(a, runsc);
	if (geteuid() != 0)
		rc |= sb_argv_add(a, "--rootless");
	rc |= sb_argv_add(a, "--network=none");
	rc |= sb_argv_add(a, "--ignore-cgroups");
	rc |= sb_argv_add(a, "--oci-seccomp");
	rc |= sb_argv_addf(a, "--root=%s", state);
	rc |= sb_argv_add(a, "run");
	rc |= sb_argv_addf(a, "--bundle=%s", dir);
	rc |= sb_argv_add(a, id);
	return rc ? cg_fail(e, CG_E_INTERNAL, "out of memory") : 0;
}
