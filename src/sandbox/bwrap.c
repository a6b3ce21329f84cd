/* The bubblewrap backend: the same layout and the same compiled seccomp program, handed to bwrap on its
 * command line and through inherited descriptors. bwrap runs unprivileged (as nobody when we are root),
 * so it can only ever create what an unprivileged user namespace can. */
#define CG_SANDBOX_INTERNAL 1
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sandbox/internal.h"

/* A sealed-size memfd holding bytes, for --seccomp and --ro-bind-data. */
static int data_fd(const void *p, size_t n)
{
	int fd = memfd_create("clawgrid-bwrap", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	for (size_t off = 0; off < n;) {
		ssize_t w = write(fd, (const char *)p + off, n - off);
		if (w <= 0) {
			close(fd);
			return -1;
		}
		off += (size_t)w;
	}
	if (lseek(fd, 0, SEEK_SET) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* fds[] gets the descriptors bwrap must inherit, in the order the child places them: the caller already
 * put the --json-status-fd pipe at index 0 (fd SB_FD_SECCOMP), so ours follow. */
int sb_bwrap_argv(const char *bwrap, const struct sandbox_spec *s, const struct sb_layout *L, const uint8_t *bpf,
		  size_t bpf_len, struct sb_argv *a, int *fds, int *nfds, struct sb_idm_bind *idm, int *n_idm,
		  cg_err *e)
{
	int base = *nfds; /* descriptors already placed before ours */
	int k = 0;
#define NEXT_FD(fd_)                                                                                           \
	do {                                                                                                   \
		if (base + k >= SB_MAX_EXTRA_FDS) {                                                            \
			close(fd_);                                                                            \
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "too many files for bwrap");                  \
		}                                                                                              \
		fds[k] = (fd_);                                                                                \
		k++;                                                                                           \
		(*nfds)++;                                                                                     \
	} while (0)
	int rc = 0;
	rc |= sb_argv_add(a, bwrap);
	rc |= sb_argv_add(a, "--unshare-all");
	rc |= sb_argv_add(a, "--unshare-user");
	rc |= sb_argv_add(a, "--disable-userns");
	rc |= sb_argv_add(a, "--die-with-parent");
	rc |= sb_argv_add(a, "--new-session");
	rc |= sb_argv_add(a, "--uid");
	rc |= sb_argv_add(a, "0");
	rc |= sb_argv_add(a, "--gid");
	rc |= sb_argv_add(a, "0");
	rc |= sb_argv_add(a, "--hostname");
	rc |= sb_argv_add(a, s->hostname ? s->hostname : "sandbox");
	rc |= sb_argv_add(a, "--json-status-fd");
	rc |= sb_argv_addf(a, "%d", SB_FD_SECCOMP); /* index 0 of the inherited list */
	int sfd = data_fd(bpf, bpf_len);
	if (sfd < 0)
		return cg_fail(e, CG_E_INTERNAL, "memfd: %s", strerror(errno));
	NEXT_FD(sfd);
	rc |= sb_argv_add(a, "--seccomp");
	rc |= sb_argv_addf(a, "%d", SB_FD_SECCOMP + base + k - 1);
	rc |= sb_argv_add(a, "--clearenv");
	char *const *env = s->env ? s->env : sb_default_env;
	for (size_t i = 0; env[i]; i++) {
		const char *eq = strchr(env[i], '=');
		char name[256];
		size_t nl = (size_t)(eq - env[i]);
		if (nl == 0 || nl >= sizeof name)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "environment: bad name");
		memcpy(name, env[i], nl);
		name[nl] = 0;
		rc |= sb_argv_add(a, "--setenv");
		rc |= sb_argv_add(a, name);
		rc |= sb_argv_add(a, eq + 1);
	}
	for (size_t i = 0; i < L->n; i++) {
		const struct sb_ent *x = &L->e[i];
		switch (x->kind) {
		case SBE_RO_BIND:
		case SBE_RW_BIND:
			if (x->fd >= 0) {
				int d = fcntl(x->fd, F_DUPFD_CLOEXEC, 0);
				if (d < 0)
					return cg_fail(e, CG_E_INTERNAL, "dup: %s", strerror(errno));
				NEXT_FD(d);
				int bind_fd = SB_FD_SECCOMP + base + k - 1;
				rc |= sb_argv_add(a, x->kind == SBE_RO_BIND ? "--ro-bind-fd" : "--bind-fd");
				rc |= sb_argv_addf(a, "%d", bind_fd);
				if (x->mnt_fd >= 0) {
					/* The child mounts this idmapped copy over the path and points bind_fd at
					 * it before exec'ing bwrap (see sb_idmap_binds). */
					int m = fcntl(x->mnt_fd, F_DUPFD_CLOEXEC, 0);
					if (m < 0)
						return cg_fail(e, CG_E_INTERNAL, "dup: %s", strerror(errno));
					NEXT_FD(m);
					idm[*n_idm].path = x->src;
					idm[*n_idm].bind_fd = bind_fd;
					idm[(*n_idm)++].mnt_fd = SB_FD_SECCOMP + base + k - 1;
				}
			} else {
				rc |= sb_argv_add(a, x->kind == SBE_RO_BIND ? "--ro-bind" : "--bind");
				rc |= sb_argv_add(a, x->src);
			}
			rc |= sb_argv_add(a, x->dst);
			break;
		case SBE_DEV_BIND:
			rc |= sb_argv_add(a, "--dev-bind");
			rc |= sb_argv_add(a, x->src);
			rc |= sb_argv_add(a, x->dst);
			break;
		case SBE_SYMLINK:
			rc |= sb_argv_add(a, "--symlink");
			rc |= sb_argv_add(a, x->src);
			rc |= sb_argv_add(a, x->dst);
			break;
		case SBE_FILE: {
			int d = data_fd(x->data, x->len);
			if (d < 0)
				return cg_fail(e, CG_E_INTERNAL, "memfd: %s", strerror(errno));
			NEXT_FD(d);
			rc |= sb_argv_add(a, "--perms");
			rc |= sb_argv_addf(a, "%04o", x->mode);
			rc |= sb_argv_add(a, "--ro-bind-data");
			rc |= sb_argv_addf(a, "%d", SB_FD_SECCOMP + base + k - 1);
			rc |= sb_argv_add(a, x->dst);
			break;
		}
		case SBE_TMPFS:
			rc |= sb_argv_add(a, "--perms");
			rc |= sb_argv_addf(a, "%04o", x->mode);
			rc |= sb_argv_add(a, "--size");
			rc |= sb_argv_addf(a, "%llu", (unsigned long long)x->size);
			rc |= sb_argv_add(a, "--tmpfs");
			rc |= sb_argv_add(a, x->dst);
			break;
		case SBE_PROC:
			rc |= sb_argv_add(a, "--proc");
			rc |= sb_argv_add(a, x->dst);
			break;
		case SBE_DIR:
			rc |= sb_argv_add(a, "--dir");
			rc |= sb_argv_add(a, x->dst);
			break;
		}
	}
	rc |= sb_argv_add(a, "--remount-ro");
	rc |= sb_argv_add(a, "/");
	rc |= sb_argv_add(a, "--chdir");
	rc |= sb_argv_add(a, SB_WORKDIR);
	rc |= sb_argv_add(a, "--");
	for (size_t i = 0; s->argv[i]; i++)
		rc |= sb_argv_add(a, s->argv[i]);
	if (rc)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	return 0;
#undef NEXT_FD
}
