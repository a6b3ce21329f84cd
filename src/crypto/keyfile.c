#include "crypto/keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "base/enc.h"

int keyfile_read(const char *path, const char *what, char *buf, size_t cap, size_t *len, cg_err *e)
{
	/* O_NONBLOCK: a FIFO planted at the path must not hang the node (it is refused below as not regular). */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT)
			return cg_fail(e, CG_E_NOT_FOUND, "%s does not exist", what);
		return cg_fail(e, CG_E_INTERNAL, "%s: cannot open: %s", what, strerror(errno));
	}
	int ret;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		ret = cg_fail(e, CG_E_INTERNAL, "%s: cannot stat: %s", what, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = cg_fail(e, CG_E_FORBIDDEN, "%s is not a regular file", what);
		goto out;
	}
	if (st.st_uid != geteuid()) {
		ret = cg_fail(e, CG_E_FORBIDDEN, "%s is not owned by the current user", what);
		goto out;
	}
	/* Any group/other bit means someone else could have read (or replaced) the secret: refuse, like ssh. */
	if (st.st_mode & 077) {
		ret = cg_fail(e, CG_E_FORBIDDEN, "%s has mode %04o; it must be 0600 (chmod 600)", what,
		              (unsigned)(st.st_mode & 07777));
		goto out;
	}
	size_t off = 0;
	for (;;) {
		if (off >= cap - 1) {
			char extra;
			ssize_t r = read(fd, &extra, 1);
			if (r > 0) {
				ret = cg_fail(e, CG_E_INVALID_ARGUMENT, "%s is malformed (too large)", what);
				goto out;
			}
			if (r < 0 && errno == EINTR)
				continue;
			break;
		}
		ssize_t r = read(fd, buf + off, cap - 1 - off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			ret = cg_fail(e, CG_E_INTERNAL, "%s: read failed: %s", what, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		off += (size_t)r;
	}
	buf[off] = '\0';
	*len = off;
	ret = 0;
out:
	if (ret != 0)
		sodium_memzero(buf, cap);
	close(fd);
	return ret;
}

static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *q = p;
	while (n) {
		ssize_t w = write(fd, q, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		q += w;
		n -= (size_t)w;
	}
	return 0;
}

static void fsync_parent(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	if (!slash) {
		dir[0] = '.';
		dir[1] = '\0';
	} else {
		size_t n = (size_t)(slash - path);
		if (n == 0)
			n = 1; /* "/key" lives in "/" */
		if (n >= sizeof dir)
			return;
		memcpy(dir, path, n);
		dir[n] = '\0';
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		/* Best effort: makes the new directory entry durable; some filesystems refuse fsync on dirs. */
		(void)fsync(fd);
		close(fd);
	}
}

int keyfile_create(const char *path, const char *what, const void *content, size_t n, cg_err *e)
{
	char tmp[PATH_MAX];
	int k = snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path);
	if (k < 0 || (size_t)k >= sizeof tmp)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: path too long", what);
	/* mkostemp creates the file with mode 0600 whatever the umask; O_CLOEXEC so no child inherits it. */
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return cg_fail(e, CG_E_INTERNAL, "%s: cannot create: %s", what, strerror(errno));
	int ret = 0;
	if (fchmod(fd, 0600) != 0 || write_all(fd, content, n) != 0 || fsync(fd) != 0) {
		ret = cg_fail(e, CG_E_INTERNAL, "%s: cannot write: %s", what, strerror(errno));
		close(fd);
		unlink(tmp);
		return ret;
	}
	if (close(fd) != 0) {
		ret = cg_fail(e, CG_E_INTERNAL, "%s: cannot write: %s", what, strerror(errno));
		unlink(tmp);
		return ret;
	}
	/* link() instead of rename(): it fails with EEXIST rather than replacing a key another process just
	 * created, so two racing creators agree on one key. */
	if (link(tmp, path) != 0) {
		int err = errno;
		unlink(tmp);
		if (err == EEXIST)
			return cg_fail(e, CG_E_CONFLICT, "%s was created concurrently", what);
		return cg_fail(e, CG_E_INTERNAL, "%s: cannot install: %s", what, strerror(err));
	}
	unlink(tmp);
	fsync_parent(path);
	return 0;
}

int keyfile_parse_hex32(const char *text, size_t n, const char *tag, uint8_t out[static 32])
{
	size_t tl = strlen(tag);
	if (n > 0 && text[n - 1] == '\n')
		n--;
	if (n != tl + 64 || memcmp(text, tag, tl) != 0)
		return -1;
	return hex_decode(out, 32, text + tl, 64, false);
}
