/* Race symlinks against the work folder. The test binds a host folder read-write at RW and keeps a secret
 * file at SECRET (outside every bound path) whose content starts with MARKER. We plant a symlink to the
 * secret in RW, then flip RW/d between a real folder and a symlink to / while opening RW/d/SECRET from
 * another process. Reading MARKER is an escape; merely opening some object (a race can land on the
 * sandbox's own root) is not. */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "hostile.h"

static int got_secret(int fd, const char *marker)
{
	char b[128];
	ssize_t n = read(fd, b, sizeof b - 1);
	close(fd);
	if (n <= 0)
		return 0;
	b[n] = 0;
	return strncmp(b, marker, strlen(marker)) == 0;
}

int main(int argc, char **argv)
{
	if (argc < 4)
		blocked_word("noarg");
	const char *dir = argv[1], *secret = argv[2], *marker = argv[3];
	char d[4096], l[4096], t[4096], target[8192];
	snprintf(d, sizeof d, "%s/d", dir);
	snprintf(l, sizeof l, "%s/link", dir);
	snprintf(t, sizeof t, "%s/tmp", dir);
	snprintf(target, sizeof target, "%s/d%s", dir, secret);
	unlink(l);
	if (symlink(secret, l) != 0)
		blocked(errno);
	int fd = open(l, O_RDONLY);
	int e = fd < 0 ? errno : 0;
	if (fd >= 0 && got_secret(fd, marker))
		escaped("followed a symlink to the host secret");
	pid_t p = fork();
	if (p == 0) {
		for (;;) {
			mkdir(t, 0755);
			rename(t, d);
			rmdir(d);
			symlink("/", t);
			rename(t, d);
			unlink(d);
		}
	}
	for (int i = 0; i < 20000; i++) {
		fd = open(target, O_RDONLY);
		if (fd >= 0 && got_secret(fd, marker)) {
			kill(p, SIGKILL);
			escaped("raced through the work folder to the host secret");
		}
	}
	kill(p, SIGKILL);
	waitpid(p, NULL, 0);
	blocked(e ? e : EISDIR);
}
