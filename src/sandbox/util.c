/* Small helpers of the sandbox module: notes, tiny file I/O, PATH lookup, argv building, tree removal. */
#define CG_SANDBOX_INTERNAL 1
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/internal.h"

void sb_note(char *notes, size_t cap, const char *fmt, ...)
{
	size_t n = strlen(notes);
	if (n + 3 >= cap)
		return;
	if (n) {
		notes[n++] = ';';
		notes[n++] = ' ';
		notes[n] = 0;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(notes + n, cap - n, fmt, ap);
	va_end(ap);
}

int sb_write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	size_t n = strlen(s);
	ssize_t w = write(fd, s, n);
	int rc = w == (ssize_t)n ? 0 : (w < 0 ? -errno : -EIO);
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	return rc;
}

int sb_read_file(const char *path, char *out, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	size_t off = 0;
	while (off + 1 < cap) {
		ssize_t r = read(fd, out + off, cap - 1 - off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		off += (size_t)r;
	}
	out[off] = 0;
	close(fd);
	return (int)off;
}

bool sb_find_exe(const char *name, char *out, size_t cap)
{
	if (strchr(name, '/')) {
		snprintf(out, cap, "%s", name);
		return access(out, X_OK) == 0;
	}
	const char *path = getenv("PATH");
	char buf[4096];
	/* Helpers live in system folders; the fallback keeps a cleared PATH (sudo, cron) working. */
	snprintf(buf, sizeof buf, "%s:/usr/local/bin:/usr/bin:/usr/sbin:/bin", path && *path ? path : "");
	for (char *p = buf, *colon; p; p = colon ? colon + 1 : NULL) {
		colon = strchr(p, ':');
		if (colon)
			*colon = 0;
		if (!*p || *p != '/')
			continue;
		snprintf(out, cap, "%s/%s", p, name);
		struct stat st;
		if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
			return true;
	}
	out[0] = 0;
	return false;
}

static int rm_at(int at, const char *name, int depth)
{
	if (depth > 64)
		return -ELOOP;
	int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return unlinkat(at, name, 0) == 0 || errno == ENOENT ? 0 : -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			rm_at(dirfd(d), de->d_name, depth + 1);
	closedir(d);
	return unlinkat(at, name, AT_REMOVEDIR) == 0 || errno == ENOENT ? 0 : -errno;
}

int sb_rmtree(const char *path)
{
	return rm_at(AT_FDCWD, path, 0);
}

int sb_argv_add(struct sb_argv *a, const char *s)
{
	if (a->n + 2 > a->cap) {
		size_t nc = a->cap ? a->cap * 2 : 64;
		char **nv = realloc(a->v, nc * sizeof *nv);
		if (!nv)
			return -1;
		a->v = nv;
		a->cap = nc;
	}
	if (!(a->v[a->n] = strdup(s)))
		return -1;
	a->v[++a->n] = NULL;
	return 0;
}

int sb_argv_addf(struct sb_argv *a, const char *fmt, ...)
{
	char tmp[4200];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof tmp)
		return -1;
	return sb_argv_add(a, tmp);
}

void sb_argv_done(struct sb_argv *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	memset(a, 0, sizeof *a);
}
