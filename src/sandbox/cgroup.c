/* Per-run cgroups. cgroup v2 is used for limits where the memory/pids/cpu controllers are delegated to us;
 * on hybrid hosts (v1 controllers, an empty v2 hierarchy) each limit falls back to its v1 controller. The
 * v2 cgroup is still created when it has no controllers: it tracks the whole tree and cgroup.kill ends it
 * in one write. */
#define CG_SANDBOX_INTERNAL 1
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/internal.h"

enum { V1_MEM, V1_PIDS, V1_CPU, V1_ACCT };
static const char *const v1_names[4] = {"memory", "pids", "cpu", "cpuacct"};

static atomic_uint run_seq;

/* Does the comma-separated list have this word? */
static bool has_word(const char *list, const char *w)
{
	size_t n = strlen(w);
	for (const char *p = list; (p = strstr(p, w)); p += n)
		if ((p == list || p[-1] == ',' || p[-1] == ' ') && (p[n] == 0 || p[n] == ',' || p[n] == ' ' ||
								    p[n] == '\n'))
			return true;
	return false;
}

void sb_cgroup_host(struct sb_cghost *h)
{
	memset(h, 0, sizeof *h);
	/* mountinfo: "id parent maj:min root mountpoint opts - fstype source superopts" */
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[1024];
	while (f && fgets(line, sizeof line, f)) {
		char root[256], mnt[256], fstype[32], superopts[256];
		char *dash = strstr(line, " - ");
		if (!dash || sscanf(line, "%*s %*s %*s %255s %255s", root, mnt) != 2 ||
		    sscanf(dash + 3, "%31s %*s %255s", fstype, superopts) != 2)
			continue;
		/* Only mounts of the hierarchy's root make "mount + own path" a valid directory. */
		if (strcmp(root, "/") != 0)
			continue;
		if (strcmp(fstype, "cgroup2") == 0 && !h->v2_mount[0])
			snprintf(h->v2_mount, sizeof h->v2_mount, "%s", mnt);
		else if (strcmp(fstype, "cgroup") == 0)
			for (int i = 0; i < 4; i++)
				if (!h->v1_mount[i][0] && has_word(superopts, v1_names[i]))
					snprintf(h->v1_mount[i], sizeof h->v1_mount[i], "%s", mnt);
	}
	if (f)
		fclose(f);
	/* /proc/self/cgroup: "id:controllers:path"; "0::path" is v2. */
	f = fopen("/proc/self/cgroup", "re");
	while (f && fgets(line, sizeof line, f)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c2 = 0;
		char *path = c2 + 1;
		path[strcspn(path, "\n")] = 0;
		if (strcmp(path, "/") == 0)
			path = "";
		if (c1[1] == 0)
			snprintf(h->v2_own, sizeof h->v2_own, "%s", path);
		else
			for (int i = 0; i < 4; i++)
				if (has_word(c1 + 1, v1_names[i]))
					snprintf(h->v1_own[i], sizeof h->v1_own[i], "%s", path);
	}
	if (f)
		fclose(f);
	if (h->v2_mount[0]) {
		char p[1024];
		snprintf(p, sizeof p, "%s%s/cgroup.controllers", h->v2_mount, h->v2_own);
		if (sb_read_file(p, h->v2_controllers, sizeof h->v2_controllers) < 0)
			h->v2_controllers[0] = 0;
		h->v2_controllers[strcspn(h->v2_controllers, "\n")] = 0;
	}
}

static int write_in(const char *dir, const char *file, const char *val)
{
	char p[1200];
	snprintf(p, sizeof p, "%s/%s", dir, file);
	return sb_write_file(p, val);
}

/* Enables the controllers in dir's subtree_control; true when all of them are on. */
static bool enable_ctrls(const char *dir, const char *want)
{
	char p[1200], cur[256];
	snprintf(p, sizeof p, "%s/cgroup.subtree_control", dir);
	if (sb_read_file(p, cur, sizeof cur) >= 0) {
		bool all = true;
		const char *names[] = {"memory", "pids", "cpu"};
		for (int i = 0; i < 3; i++)
			if (strstr(want, names[i]) && !has_word(cur, names[i]))
				all = false;
		if (all)
			return true;
	}
	return sb_write_file(p, want) == 0;
}

void sb_cgroup_create(struct sb_cgroup *cg, const struct sandbox_spec *s, uint32_t pids_extra, char *notes,
		      size_t cap)
{
	memset(cg, 0, sizeof *cg);
	struct sb_cghost h;
	sb_cgroup_host(&h);
	char id[64];
	snprintf(id, sizeof id, "clawgrid-%d-%u", (int)getpid(), atomic_fetch_add(&run_seq, 1));
	bool want_mem = s->mem_bytes > 0, want_pids = s->pids > 0, want_cpu = s->cpu_millis > 0;

	/* v2: <mount><own>/clawgrid-sandbox/<id>. The intermediate cgroup holds no processes, so controllers
	 * can be enabled below it even when our own cgroup has processes (the no-internal-process rule). */
	if (h.v2_mount[0]) {
		char own[800], base[900];
		snprintf(own, sizeof own, "%s%s", h.v2_mount, h.v2_own);
		snprintf(base, sizeof base, "%s/clawgrid-sandbox", own);
		if (mkdir(base, 0755) == 0 || errno == EEXIST) {
			char want[64];
			snprintf(want, sizeof want, "%s%s%s",
				 want_mem && has_word(h.v2_controllers, "memory") ? "+memory " : "",
				 want_pids && has_word(h.v2_controllers, "pids") ? "+pids " : "",
				 want_cpu && has_word(h.v2_controllers, "cpu") ? "+cpu " : "");
			bool ctrl = want[0] && enable_ctrls(own, want) && enable_ctrls(base, want);
			snprintf(cg->v2, sizeof cg->v2, "%s/%s", base, id);
			if (mkdir(cg->v2, 0755) != 0) {
				cg->v2[0] = 0;
			} else if (ctrl) {
				char v[64];
				if (want_mem && strstr(want, "memory")) {
					snprintf(v, sizeof v, "%llu", (unsigned long long)s->mem_bytes);
					cg->v2_mem = write_in(cg->v2, "memory.max", v) == 0;
					write_in(cg->v2, "memory.swap.max", "0");
				}
				if (want_pids && strstr(want, "pids")) {
					snprintf(v, sizeof v, "%u", s->pids + pids_extra);
					cg->v2_pids = write_in(cg->v2, "pids.max", v) == 0;
				}
				if (want_cpu && strstr(want, "cpu")) {
					snprintf(v, sizeof v, "%u 100000", s->cpu_millis * 100);
					cg->v2_cpu = write_in(cg->v2, "cpu.max", v) == 0;
				}
			}
		}
	}

	/* v1 for whatever v2 could not limit (and cpuacct for CPU time). */
	bool need[4] = {want_mem && !cg->v2_mem, want_pids && !cg->v2_pids, want_cpu && !cg->v2_cpu, true};
	char *dirs[4] = {cg->mem, cg->pids, cg->cpu, cg->acct};
	for (int i = 0; i < 4; i++) {
		if (!need[i] || !h.v1_mount[i][0])
			continue;
		/* cpu and cpuacct are often one hierarchy: share the directory. */
		if (i == V1_ACCT && strcmp(h.v1_mount[V1_ACCT], h.v1_mount[V1_CPU]) == 0 && cg->cpu[0]) {
			snprintf(cg->acct, sizeof cg->acct, "%s", cg->cpu);
			continue;
		}
		snprintf(dirs[i], 1024, "%s%s/%s", h.v1_mount[i], h.v1_own[i], id);
		if (mkdir(dirs[i], 0755) != 0)
			dirs[i][0] = 0;
	}
	char v[64];
	if (cg->mem[0]) {
		snprintf(v, sizeof v, "%llu", (unsigned long long)s->mem_bytes);
		cg->mem_limited = write_in(cg->mem, "memory.limit_in_bytes", v) == 0;
		/* With swap accounting the limit must cover swap too, or a bomb just swaps. */
		write_in(cg->mem, "memory.memsw.limit_in_bytes", v);
		write_in(cg->mem, "memory.swappiness", "0");
	}
	if (cg->pids[0]) {
		snprintf(v, sizeof v, "%u", s->pids + pids_extra);
		cg->pids_limited = write_in(cg->pids, "pids.max", v) == 0;
	}
	if (cg->cpu[0]) {
		snprintf(v, sizeof v, "%u", s->cpu_millis * 100);
		cg->cpu_limited = write_in(cg->cpu, "cpu.cfs_period_us", "100000") == 0 &&
				  write_in(cg->cpu, "cpu.cfs_quota_us", v) == 0;
	}
	cg->mem_limited |= cg->v2_mem;
	cg->pids_limited |= cg->v2_pids;
	cg->cpu_limited |= cg->v2_cpu;

	const char *why = geteuid() != 0 ? "not delegated to this user" : "no usable v2 or v1 controller";
	if (want_mem && !cg->mem_limited)
		sb_note(notes, cap, "memory: cgroup %s, per-process RLIMIT_AS instead", why);
	if (want_pids && !cg->pids_limited)
		sb_note(notes, cap, "pids: cgroup %s, RLIMIT_NPROC instead", why);
	if (want_cpu && !cg->cpu_limited)
		sb_note(notes, cap, "cpus: cgroup %s, not enforced (the timeout still is)", why);
	if (!cg->v2[0] && !cg->mem[0] && !cg->pids[0] && !cg->acct[0])
		sb_note(notes, cap, "cgroups: none writable, the tree is tracked by its PID namespace only");
}

int sb_cgroup_attach(const struct sb_cgroup *cg, pid_t pid, bool in_v2)
{
	char v[32];
	snprintf(v, sizeof v, "%d", (int)pid);
	const char *dirs[] = {cg->v2, cg->mem, cg->pids, cg->cpu, cg->acct};
	for (size_t i = 0; i < 5; i++) {
		if (!dirs[i][0] || (i == 4 && strcmp(cg->acct, cg->cpu) == 0) || (i == 0 && in_v2))
			continue;
		int rc = write_in(dirs[i], "cgroup.procs", v);
		/* A limit that was set up but could not take the process would be a silent hole. */
		if (rc != 0 && i != 0 && i != 4)
			return rc;
	}
	return 0;
}

static void kill_procs(const char *dir)
{
	char p[1200], buf[8192];
	snprintf(p, sizeof p, "%s/cgroup.procs", dir);
	if (sb_read_file(p, buf, sizeof buf) <= 0)
		return;
	/* A kernel-written list of decimal pids, one a line. */
	long pid = 0;
	for (char *s = buf;; s++) {
		if (*s >= '0' && *s <= '9' && pid < 1000000000) {
			pid = pid * 10 + (*s - '0');
			continue;
		}
		if (pid > 1)
			kill((pid_t)pid, SIGKILL);
		pid = 0;
		if (!*s)
			break;
	}
}

void sb_cgroup_kill(const struct sb_cgroup *cg)
{
	if (cg->v2[0] && write_in(cg->v2, "cgroup.kill", "1") == 0)
		return;
	const char *dirs[] = {cg->v2, cg->pids, cg->mem, cg->acct, cg->cpu};
	for (size_t i = 0; i < 5; i++)
		if (dirs[i][0])
			kill_procs(dirs[i]);
}

static uint64_t read_u64(const char *dir, const char *file, bool *ok)
{
	char p[1200], buf[64];
	snprintf(p, sizeof p, "%s/%s", dir, file);
	*ok = false;
	if (sb_read_file(p, buf, sizeof buf) <= 0 || buf[0] < '0' || buf[0] > '9')
		return 0;
	uint64_t v = 0;
	for (char *s = buf; *s >= '0' && *s <= '9'; s++)
		v = v * 10 + (uint64_t)(*s - '0');
	*ok = true;
	return v;
}

/* "key N" lines (memory.events, pids.events, cpu.stat, memory.oom_control). */
static uint64_t read_key(const char *dir, const char *file, const char *key, bool *ok)
{
	char p[1200], buf[2048];
	snprintf(p, sizeof p, "%s/%s", dir, file);
	*ok = false;
	if (sb_read_file(p, buf, sizeof buf) <= 0)
		return 0;
	size_t kl = strlen(key);
	for (char *s = buf; s && *s; s = strchr(s, '\n') ? strchr(s, '\n') + 1 : NULL) {
		if (strncmp(s, key, kl) == 0 && s[kl] == ' ') {
			uint64_t v = 0;
			for (char *d = s + kl + 1; *d >= '0' && *d <= '9'; d++)
				v = v * 10 + (uint64_t)(*d - '0');
			*ok = true;
			return v;
		}
	}
	return 0;
}

void sb_cgroup_stats(const struct sb_cgroup *cg, struct sb_cgstats *st)
{
	memset(st, 0, sizeof *st);
	st->cpu_us = -1;
	bool ok;
	if (cg->v2_mem) {
		st->peak_mem = read_u64(cg->v2, "memory.peak", &ok);
		st->oom_kills = read_key(cg->v2, "memory.events", "oom_kill", &ok);
		st->mem_hit = read_key(cg->v2, "memory.events", "max", &ok) > 0;
	} else if (cg->mem[0]) {
		st->peak_mem = read_u64(cg->mem, "memory.max_usage_in_bytes", &ok);
		st->oom_kills = read_key(cg->mem, "memory.oom_control", "oom_kill", &ok);
		st->mem_hit = read_u64(cg->mem, "memory.failcnt", &ok) > 0;
	}
	if (cg->v2_pids)
		st->pids_hit = read_key(cg->v2, "pids.events", "max", &ok) > 0;
	else if (cg->pids[0])
		st->pids_hit = read_key(cg->pids, "pids.events", "max", &ok) > 0;
	if (cg->v2[0]) {
		uint64_t us = read_key(cg->v2, "cpu.stat", "usage_usec", &ok);
		if (ok)
			st->cpu_us = (int64_t)us;
	}
	if (st->cpu_us < 0 && cg->acct[0]) {
		uint64_t ns = read_u64(cg->acct, "cpuacct.usage", &ok);
		if (ok)
			st->cpu_us = (int64_t)(ns / 1000);
	}
}

void sb_cgroup_destroy(struct sb_cgroup *cg)
{
	char *dirs[] = {cg->v2, cg->mem, cg->pids, cg->cpu, cg->acct};
	for (size_t i = 0; i < 5; i++) {
		if (!dirs[i][0] || (i == 4 && strcmp(cg->acct, cg->cpu) == 0))
			continue;
		/* A killed tree takes a moment to leave the cgroup; rmdir fails with EBUSY until then. */
		for (int t = 0; t < 200; t++) {
			if (rmdir(dirs[i]) == 0 || errno == ENOENT)
				break;
			if (errno != EBUSY)
				break;
			if (t % 20 == 19)
				kill_procs(dirs[i]);
			nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
		}
	}
	memset(cg, 0, sizeof *cg);
}
