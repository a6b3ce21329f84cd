/* Leave a set-user-ID or set-group-ID file in a --rw folder for the host to run later. As root that folder
 * is idmapped, so what we create there belongs on disk to its owner (root): a set-id bit would make it a
 * root program on the host. Tries chmod, fchmod, fchmodat, open/openat/creat with a set-id mode and an
 * O_TMPFILE made visible with linkat; any file that ends up with S_ISUID or S_ISGID is an escape. */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include "hostile.h"

static void check(const char *p)
{
	struct stat st;
	if (stat(p, &st) == 0 && (st.st_mode & (S_ISUID | S_ISGID)))
		escaped(p);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		blocked_word("noarg");
	char a[4096], b[4096], c[4096], d[4096], t[4096];
	snprintf(a, sizeof a, "%s/plant-a", argv[1]);
	snprintf(b, sizeof b, "%s/plant-b", argv[1]);
	snprintf(c, sizeof c, "%s/plant-c", argv[1]);
	snprintf(d, sizeof d, "%s/plant-d", argv[1]);
	umask(0);
	int fd = open(a, O_WRONLY | O_CREAT | O_TRUNC, 0755);
	if (fd < 0)
		blocked(errno); /* the folder is not writable at all: nothing to plant */
	int last = 0;
	if (fchmod(fd, 04755) != 0)
		last = errno;
	close(fd);
	check(a);
	if (chmod(a, 06755) != 0)
		last = errno;
	check(a);
	if (fchmodat(AT_FDCWD, a, 02755, 0) != 0)
		last = errno;
	check(a);
	fd = open(b, O_WRONLY | O_CREAT | O_EXCL, 04755);
	if (fd >= 0)
		close(fd);
	else
		last = errno;
	check(b);
	fd = (int)syscall(SYS_openat, AT_FDCWD, c, O_WRONLY | O_CREAT | O_EXCL, 02755);
	if (fd >= 0)
		close(fd);
	else
		last = errno;
	check(c);
	fd = creat(d, 06755);
	if (fd >= 0)
		close(fd);
	else
		last = errno;
	check(d);
	fd = open(argv[1], O_TMPFILE | O_WRONLY, 04755);
	if (fd >= 0) {
		snprintf(t, sizeof t, "/proc/self/fd/%d", fd);
		char e[4096];
		snprintf(e, sizeof e, "%s/plant-e", argv[1]);
		if (linkat(AT_FDCWD, t, AT_FDCWD, e, AT_SYMLINK_FOLLOW) == 0)
			check(e);
		close(fd);
	} else {
		last = errno;
	}
	blocked(last ? last : EPERM);
}
