/* `sandbox check`: what this host supports, measured by trying it (a namespace probe, a throwaway cgroup,
 * `true` run under every backend) rather than guessed from version numbers. */
#define CG_SANDBOX_INTERNAL 1
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/internal.h"

static json_t *verdict(bool ok, const char *why)
{
	return ok || !why ? json_pack("{s:b}", "ok", ok) : json_pack("{s:b,s:s}", "ok", ok, "why", why);
}

/* One namespace flag set, tried in a forked child. 0 or the errno. */
static int try_unshare(int flags)
{
	pid_t p = fork();
	if (p < 0)
		return errno;
	if (p == 0)
		_exit(unshare(flags) == 0 ? 0 : (errno & 0x7f));
	int st;
	while (waitpid(p, &st, 0) < 0)
		if (errno != EINTR)
			return errno;
	return WIFEXITED(st) ? WEXITSTATUS(st) : EINTR;
}

static json_t *check_namespaces(void)
{
	static const struct {
		const char *name;
		int flag;
	} ns[] = {{"user", CLONE_NEWUSER}, {"pid", CLONE_NEWPID}, {"mount", CLONE_NEWNS}, {"net", CLONE_NEWNET},
		  {"ipc", CLONE_NEWIPC},   {"uts", CLONE_NEWUTS},   {"cgroup", CLONE_NEWCGROUP}};
	json_t *o = json_object();
	for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
		/* Without root every other namespace needs a user namespace around it. */
		int flags = ns[i].flag | (geteuid() != 0 ? CLONE_NEWUSER : 0);
		int err = try_unshare(flags);
		json_object_set_new(o, ns[i].name, verdict(err == 0, err ? strerror(err) : NULL));
	}
	char v[32];
	if (sb_read_file("/proc/sys/user/max_user_namespaces", v, sizeof v) > 0 && v[0] == '0')
		json_object_set_new(o, "note", json_string("user namespaces disabled: user.max_user_namespaces=0"));
	if (sb_read_file("/proc/sys/kernel/unprivileged_userns_clone", v, sizeof v) > 0 && v[0] == '0' &&
	    geteuid() != 0)
		json_object_set_new(o, "note", json_string("kernel.unprivileged_userns_clone=0: rootless runs "
							   "are refused"));
	return o;
}

static json_t *check_cgroups(void)
{
	struct sb_cghost h;
	sb_cgroup_host(&h);
	json_t *o = json_object();
	json_object_set_new(o, "v2_mount", h.v2_mount[0] ? json_string(h.v2_mount) : json_null());
	json_object_set_new(o, "v2_controllers", json_string(h.v2_controllers));
	json_t *v1 = json_array();
	static const char *const names[4] = {"memory", "pids", "cpu", "cpuacct"};
	for (int i = 0; i < 4; i++)
		if (h.v1_mount[i][0])
			json_array_append_new(v1, json_string(names[i]));
	json_object_set_new(o, "v1_controllers", v1);

	/* A throwaway cgroup with every limit shows which mechanism each limit really gets. */
	struct sandbox_spec s;
	sandbox_spec_init(&s);
	s.mem_bytes = 64u << 20;
	s.pids = 64;
	s.cpu_millis = 1000;
	struct sb_cgroup cg;
	char notes[512] = "";
	sb_cgroup_create(&cg, &s, 0, notes, sizeof notes);
	json_object_set_new(o, "memory", json_string(cg.v2_mem ? "v2" : cg.mem_limited ? "v1" : "rlimit"));
	json_object_set_new(o, "pids", json_string(cg.v2_pids ? "v2" : cg.pids_limited ? "v1" : "rlimit"));
	json_object_set_new(o, "cpu", json_string(cg.v2_cpu ? "v2" : cg.cpu_limited ? "v1" : "none"));
	char p[1100];
	snprintf(p, sizeof p, "%s/cgroup.kill", cg.v2);
	json_object_set_new(o, "kill", json_string(cg.v2[0] && access(p, W_OK) == 0 ? "cgroup.kill"
										      : "pid namespace + signals"));
	if (h.v2_mount[0] && !cg.v2_mem && !cg.v2_pids)
		json_object_set_new(o, "v2_why",
				    json_string(h.v2_controllers[0] && !strstr(h.v2_controllers, "memory")
							? "hybrid host: the v2 hierarchy has no memory/pids/cpu "
							  "controllers (they are bound to v1)"
							: "memory/pids/cpu not delegated to this cgroup"));
	if (notes[0])
		json_object_set_new(o, "notes", json_string(notes));
	sb_cgroup_destroy(&cg);
	return o;
}

static json_t *check_backend(enum sandbox_backend b)
{
	char path[4096];
	if (!sandbox_backend_available(b, path, sizeof path))
		return verdict(false, b == SANDBOX_BWRAP ? "bwrap not installed (Debian: bubblewrap)"
							 : "runsc not installed (Debian: runsc, gVisor)");
	struct sandbox_spec s;
	sandbox_spec_init(&s);
	s.backend = b;
	char *argv[] = {"true", NULL};
	s.argv = argv;
	s.timeout_ms = 30000;
	struct sandbox_result r;
	cg_err e;
	cg_err_clear(&e);
	if (sandbox_run(&s, &r, &e) != 0)
		return verdict(false, e.msg);
	json_t *o = verdict(r.exit_code == 0, r.exit_code == 0 ? NULL : "`true` did not exit 0");
	json_object_set_new(o, "wall_ms", json_integer(r.wall_ms));
	if (path[0])
		json_object_set_new(o, "path", json_string(path));
	if (r.notes[0])
		json_object_set_new(o, "notes", json_string(r.notes));
	sandbox_result_done(&r);
	return o;
}

json_t *sandbox_check(void)
{
	json_t *o = json_object();
	json_object_set_new(o, "euid", json_integer(geteuid()));
	json_object_set_new(o, "rootless", json_boolean(geteuid() != 0));
	json_object_set_new(o, "namespaces", check_namespaces());
	char acts[256] = "";
	int sc = prctl(PR_GET_SECCOMP, 0, 0, 0, 0);
	sb_read_file("/proc/sys/kernel/seccomp/actions_avail", acts, sizeof acts);
	acts[strcspn(acts, "\n")] = 0;
	json_t *sec = verdict(sc >= 0 && strstr(acts, "kill_process"), sc < 0 ? "seccomp not in this kernel"
									      : !strstr(acts, "kill_process")
										    ? "no kill_process action"
										    : NULL);
	json_object_set_new(sec, "actions", json_string(acts));
	json_object_set_new(o, "seccomp", sec);
	json_object_set_new(o, "cgroup", check_cgroups());
	/* --ro/--rw as root: the owner mapping that makes a caller's folder writable inside. */
	char tmpd[] = "/tmp/clawgrid-idmap-XXXXXX", why[256] = "";
	bool made = mkdtemp(tmpd) != NULL;
	int irc = made ? sb_idmap_probe(tmpd, why, sizeof why) : -errno;
	if (made)
		rmdir(tmpd);
	if (irc < 0 && !why[0])
		snprintf(why, sizeof why, "cannot probe: %s", strerror(-irc));
	json_object_set_new(o, "idmapped_binds", verdict(irc == 0, why[0] ? why : NULL));
	json_t *be = json_object();
	for (int b = 0; b < SANDBOX_BACKEND_COUNT; b++)
		json_object_set_new(be, sandbox_backend_name((enum sandbox_backend)b),
				    check_backend((enum sandbox_backend)b));
	json_object_set_new(o, "backends", be);
	json_t *gpu = json_array();
	DIR *d = opendir("/dev");
	struct dirent *de;
	while (d && (de = readdir(d)))
		if (strncmp(de->d_name, "nvidia", 6) == 0)
			json_array_append_new(gpu, json_sprintf("/dev/%s", de->d_name));
	if (d)
		closedir(d);
	json_object_set_new(o, "gpu", gpu);
	if (json_array_size(gpu) == 0)
		json_object_set_new(o, "gpu_why", json_string("no /dev/nvidia* device nodes on this host"));
	return o;
}
