/* Idmapped copies of the caller's --ro/--rw binds, for a supervisor running as root.
 *
 * As root the workload is uid/gid 0 of its user namespace and nobody (65534) on the host, so an escape
 * lands on an account that owns nothing — but then a --rw folder the caller created (owned by root, mode
 * 0755) is not writable inside, and a 0600 file of a --ro folder is not readable. An idmapped mount fixes
 * that without touching the host: the folder's owner on disk is shown inside as the sandbox's root, and
 * files the sandbox creates there belong on disk to that same owner. The mapping is built here, before
 * clone(), as a detached mount (open_tree + mount_setattr, which need CAP_SYS_ADMIN in the host); the child
 * attaches it with move_mount() (native) or mounts it over the path in a private namespace before exec'ing
 * bwrap. Writing as the owner must not let the workload plant a set-id binary for the host to run: the
 * policy refuses S_ISUID/S_ISGID in chmod and file-creation modes (src/sandbox/policy/default.policy), and
 * the mounts are nosuid, nodev as before.
 *
 * Where idmapped mounts are unavailable (kernel < 5.12, a filesystem without support) the bind stays a plain
 * one and the report's notes say that the sandbox acts there as uid 65534. */
#define CG_SANDBOX_INTERNAL 1
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/internal.h"

#define MAX_OWNERS 8

/* A user namespace whose only mapping is host uid/gid (the folder's owner) -> the sandbox's host identity,
 * held by a throwaway child that exits as soon as we have a descriptor of the namespace. Returns an
 * O_CLOEXEC descriptor or -errno. */
static int owner_userns(uid_t uid, gid_t gid)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0)
		return -errno;
	pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), 0UL, 0UL, 0UL, 0UL);
	if (pid < 0) {
		int rc = -errno;
		close(p[0]);
		close(p[1]);
		return rc;
	}
	if (pid == 0) {
		/* Only system calls here: the supervisor may be multi-threaded. */
		close(p[1]);
		char b;
		while (read(p[0], &b, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(p[0]);
	char path[64], map[64];
	int rc = 0;
	snprintf(map, sizeof map, "%u %u 1", (unsigned)uid, (unsigned)SB_HOST_UID_ROOT);
	snprintf(path, sizeof path, "/proc/%d/uid_map", (int)pid);
	rc = sb_write_file(path, map);
	snprintf(path, sizeof path, "/proc/%d/setgroups", (int)pid);
	if (rc == 0 && (rc = sb_write_file(path, "deny")) == -ENOENT)
		rc = 0;
	snprintf(map, sizeof map, "%u %u 1", (unsigned)gid, (unsigned)SB_HOST_GID_ROOT);
	snprintf(path, sizeof path, "/proc/%d/gid_map", (int)pid);
	if (rc == 0)
		rc = sb_write_file(path, map);
	int fd = -1;
	if (rc == 0) {
		snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			rc = -errno;
	}
	close(p[1]); /* the holder exits; the namespace lives on through fd */
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	return rc ? rc : fd;
}

/* A detached, recursive copy of the tree at src_fd, idmapped through nsfd, nosuid and nodev (and read-only
 * when asked). Returns its O_CLOEXEC descriptor or -errno. */
static int idmapped_clone(int src_fd, int nsfd, bool ro)
{
	int m = open_tree(src_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
	if (m < 0)
		return -errno;
	struct mount_attr a;
	memset(&a, 0, sizeof a);
	a.attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (ro ? MOUNT_ATTR_RDONLY : 0);
	a.userns_fd = (uint64_t)nsfd;
	if (mount_setattr(m, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof a) != 0) {
		int rc = -errno;
		close(m);
		return rc;
	}
	return m;
}

int sb_idmap_probe(const char *dir, char *why, size_t cap)
{
	if (geteuid() != 0) {
		snprintf(why, cap, "not needed rootless (the sandbox writes as the caller)");
		return 0;
	}
	int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC), rc;
	if (fd < 0) {
		rc = -errno;
	} else {
		struct stat st;
		int ns = fstat(fd, &st) == 0 ? owner_userns(st.st_uid, st.st_gid) : -errno;
		rc = ns < 0 ? ns : idmapped_clone(fd, ns, false);
		if (rc >= 0)
			close(rc);
		if (ns >= 0)
			close(ns);
		close(fd);
	}
	if (rc < 0) {
		snprintf(why, cap, "idmapped mounts unavailable (%s): --ro/--rw paths are accessed as the host's uid %d",
			 strerror(-rc), SB_HOST_UID_ROOT);
		return rc;
	}
	why[0] = 0;
	return 0;
}

void sb_idmap_binds(struct sb_layout *L, char *notes, size_t cap)
{
	if (geteuid() != 0)
		return; /* rootless: the workload is the caller's own uid on the host already */
	struct {
		uid_t uid;
		gid_t gid;
		int fd;
	} ns[MAX_OWNERS];
	int nns = 0, err = 0;
	size_t plain = 0;
	for (size_t i = 0; i < L->n; i++) {
		struct sb_ent *x = &L->e[i];
		if (x->fd < 0 || (x->kind != SBE_RO_BIND && x->kind != SBE_RW_BIND))
			continue;
		struct stat st;
		int nsfd = -1;
		if (fstat(x->fd, &st) != 0) {
			err = errno;
			plain++;
			continue;
		}
		for (int k = 0; k < nns && nsfd < 0; k++)
			if (ns[k].uid == st.st_uid && ns[k].gid == st.st_gid)
				nsfd = ns[k].fd;
		if (nsfd < 0 && nns < MAX_OWNERS) {
			int fd = owner_userns(st.st_uid, st.st_gid);
			if (fd >= 0) {
				ns[nns].uid = st.st_uid;
				ns[nns].gid = st.st_gid;
				ns[nns++].fd = nsfd = fd;
			} else {
				err = -fd;
			}
		}
		if (nsfd < 0) {
			plain++;
			continue;
		}
		int m = idmapped_clone(x->fd, nsfd, x->kind == SBE_RO_BIND);
		if (m < 0) {
			err = -m;
			plain++;
			continue;
		}
		x->mnt_fd = m;
	}
	for (int k = 0; k < nns; k++)
		close(ns[k].fd);
	if (plain)
		sb_note(notes, cap,
			"%zu --ro/--rw path(s) bound without an owner mapping (idmapped mounts: %s): inside, files there "
			"are accessed as the host's uid %d",
			plain, strerror(err ? err : EOPNOTSUPP), SB_HOST_UID_ROOT);
}
