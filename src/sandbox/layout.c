/* The filesystem the sandbox sees, described once and realized by each backend (native mounts, bwrap
 * arguments, an OCI bundle). Nothing of the host is visible unless listed here: the system folders
 * read-only, a synthetic /etc (no shadow, no host accounts), a fresh /proc, a /dev of five harmless
 * nodes (plus GPUs on request), private /tmp and /work, and the caller's --ro/--rw paths. */
#define CG_SANDBOX_INTERNAL 1
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/internal.h"

static struct sb_ent *add(struct sb_layout *L, uint8_t kind, const char *src, const char *dst)
{
	if (L->n == L->cap) {
		size_t nc = L->cap ? L->cap * 2 : 64;
		struct sb_ent *ne = realloc(L->e, nc * sizeof *ne);
		if (!ne)
			return NULL;
		L->e = ne;
		L->cap = nc;
	}
	struct sb_ent *x = &L->e[L->n];
	memset(x, 0, sizeof *x);
	x->kind = kind;
	x->fd = -1;
	x->mnt_fd = -1;
	x->src = src ? strdup(src) : NULL;
	x->dst = strdup(dst);
	if ((src && !x->src) || !x->dst) {
		free(x->src);
		free(x->dst);
		return NULL;
	}
	L->n++;
	return x;
}

static int add_file(struct sb_layout *L, const char *dst, const char *text)
{
	struct sb_ent *x = add(L, SBE_FILE, NULL, dst);
	if (!x || !(x->data = strdup(text)))
		return -1;
	x->len = strlen(text);
	x->mode = 0444;
	return 0;
}

static int add_tmpfs(struct sb_layout *L, const char *dst, uint64_t size, unsigned mode)
{
	struct sb_ent *x = add(L, SBE_TMPFS, NULL, dst);
	if (!x)
		return -1;
	x->size = size;
	x->mode = mode;
	return 0;
}

/* A host path that is a symlink is recreated as the same symlink (usr-merged /bin -> usr/bin), a
 * directory or file is bound read-only, a missing one is skipped. */
static int add_host(struct sb_layout *L, const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return 0;
	if (S_ISLNK(st.st_mode)) {
		char t[PATH_MAX];
		ssize_t n = readlink(path, t, sizeof t - 1);
		if (n <= 0)
			return 0;
		t[n] = 0;
		return add(L, SBE_SYMLINK, t, path) ? 0 : -1;
	}
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
		return 0;
	struct sb_ent *x = add(L, SBE_RO_BIND, path, path);
	if (!x)
		return -1;
	x->src_is_dir = S_ISDIR(st.st_mode);
	return 0;
}

/* Opens a resolved path refusing every symlink on the way, so the object checked is the object bound
 * (a swap of a path component for a symlink after realpath() cannot redirect the mount). */
static int open_nofollow(const char *path)
{
	struct open_how how = {.flags = O_PATH | O_CLOEXEC,
			       .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
	int fd = (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
	if (fd < 0 && errno == ENOSYS)
		fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	return fd;
}

static bool under(const char *p, const char *dir)
{
	size_t n = strlen(dir);
	return strncmp(p, dir, n) == 0 && (p[n] == 0 || p[n] == '/');
}

static int add_user_mount(struct sb_layout *L, const struct sandbox_mount *m, cg_err *e)
{
	const char *flag = m->rw ? "--rw" : "--ro";
	if (!m->path || m->path[0] != '/' || strlen(m->path) >= PATH_MAX)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: needs an absolute path", flag);
	char real[PATH_MAX];
	if (!realpath(m->path, real))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s %s: %s", flag, m->path, strerror(errno));
	if (strcmp(real, "/") == 0 || under(real, "/proc") || under(real, "/sys") || under(real, "/dev") ||
	    strcmp(real, SB_WORKDIR) == 0 || strcmp(real, "/tmp") == 0 || strcmp(real, "/etc") == 0)
		return cg_fail(e, CG_E_INVALID_ARGUMENT,
			       "%s %s: the root, /proc, /sys, /dev, /etc, /tmp and " SB_WORKDIR
			       " cannot be bound (use --gpu for devices)",
			       flag, m->path);
	int fd = open_nofollow(real);
	if (fd < 0)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s %s: %s", flag, m->path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0 || (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))) {
		close(fd);
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s %s: only directories and regular files", flag,
			       m->path);
	}
	struct sb_ent *x = add(L, m->rw ? SBE_RW_BIND : SBE_RO_BIND, real, real);
	if (!x) {
		close(fd);
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	}
	x->fd = fd;
	x->src_is_dir = S_ISDIR(st.st_mode);
	return 0;
}

static int add_gpu(struct sb_layout *L, const char *path, cg_err *e)
{
	if (!path || strncmp(path, "/dev/nvidia", 11) != 0 || strchr(path + 5, '/') || strstr(path, ".."))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "gpu: '%s' is not an NVIDIA device node (/dev/nvidia*)",
			       path ? path : "");
	struct stat st;
	if (lstat(path, &st) != 0)
		return cg_fail(e, CG_E_UNAVAILABLE, "gpu: %s does not exist on this host (no NVIDIA driver loaded?)",
			       path);
	if (!S_ISCHR(st.st_mode))
		return cg_fail(e, CG_E_UNAVAILABLE, "gpu: %s is not a character device", path);
	return add(L, SBE_DEV_BIND, path, path) ? 0 : cg_fail(e, CG_E_INTERNAL, "out of memory");
}

int sb_layout_build(const struct sandbox_spec *s, struct sb_layout *L, cg_err *e)
{
	memset(L, 0, sizeof *L);
	uint64_t disk = s->disk_bytes ? s->disk_bytes : SB_DEFAULT_DISK;
	const char *host = s->hostname ? s->hostname : "sandbox";
	char hosts[512];
	snprintf(hosts, sizeof hosts, "127.0.0.1\tlocalhost %s\n::1\tlocalhost ip6-localhost\n", host);
	char hostname[128];
	snprintf(hostname, sizeof hostname, "%s\n", host);

	static const char *const sys[] = {"/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"};
	static const char *const etc[] = {"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
					  "/etc/alternatives", "/etc/ssl", "/etc/ca-certificates",
					  "/etc/localtime", "/etc/mime.types", "/etc/os-release"};
	int rc = 0;
	for (size_t i = 0; i < sizeof sys / sizeof sys[0] && rc == 0; i++)
		rc = add_host(L, sys[i]);
	if (rc == 0)
		rc = add(L, SBE_DIR, NULL, "/etc") ? 0 : -1;
	for (size_t i = 0; i < sizeof etc / sizeof etc[0] && rc == 0; i++)
		rc = add_host(L, etc[i]);
	if (rc == 0)
		rc = add_file(L, "/etc/passwd",
			      "root:x:0:0:sandbox:" SB_WORKDIR ":/bin/sh\n"
			      "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
	if (rc == 0)
		rc = add_file(L, "/etc/group", "root:x:0:\nnogroup:x:65534:\n");
	if (rc == 0)
		rc = add_file(L, "/etc/hosts", hosts);
	if (rc == 0)
		rc = add_file(L, "/etc/hostname", hostname);
	if (rc == 0)
		rc = add_file(L, "/etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files\n");
	if (rc == 0)
		rc = add(L, SBE_PROC, NULL, "/proc") ? 0 : -1;
	if (rc == 0)
		rc = add_tmpfs(L, "/dev", 1 << 20, 0755);
	static const char *const devs[] = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"};
	for (size_t i = 0; i < sizeof devs / sizeof devs[0] && rc == 0; i++)
		rc = add(L, SBE_DEV_BIND, devs[i], devs[i]) ? 0 : -1;
	static const char *const links[][2] = {{"/proc/self/fd", "/dev/fd"},
					       {"/proc/self/fd/0", "/dev/stdin"},
					       {"/proc/self/fd/1", "/dev/stdout"},
					       {"/proc/self/fd/2", "/dev/stderr"}};
	for (size_t i = 0; i < 4 && rc == 0; i++)
		rc = add(L, SBE_SYMLINK, links[i][0], links[i][1]) ? 0 : -1;
	if (rc == 0)
		rc = add_tmpfs(L, "/dev/shm", disk, 01777);
	if (rc == 0)
		rc = add_tmpfs(L, "/tmp", disk, 01777);
	if (rc == 0)
		rc = add_tmpfs(L, SB_WORKDIR, disk, 0755);
	if (rc != 0) {
		sb_layout_done(L);
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	}
	for (size_t i = 0; s->gpus && s->gpus[i]; i++) {
		if (i >= SANDBOX_MAX_GPUS) {
			sb_layout_done(L);
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "gpu: at most %d device nodes", SANDBOX_MAX_GPUS);
		}
		if ((rc = add_gpu(L, s->gpus[i], e)) != 0) {
			sb_layout_done(L);
			return rc;
		}
	}
	if (s->n_mounts > SANDBOX_MAX_MOUNTS) {
		sb_layout_done(L);
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "at most %d --ro/--rw paths", SANDBOX_MAX_MOUNTS);
	}
	for (size_t i = 0; i < s->n_mounts; i++)
		if ((rc = add_user_mount(L, &s->mounts[i], e)) != 0) {
			sb_layout_done(L);
			return rc;
		}
	return 0;
}

void sb_layout_done(struct sb_layout *L)
{
	for (size_t i = 0; i < L->n; i++) {
		if (L->e[i].fd >= 0)
			close(L->e[i].fd);
		if (L->e[i].mnt_fd >= 0)
			close(L->e[i].mnt_fd);
		free(L->e[i].src);
		free(L->e[i].dst);
		free(L->e[i].data);
	}
	free(L->e);
	memset(L, 0, sizeof *L);
}
