/* The classic double-chroot escape: chroot into a subfolder, walk up, chroot("."). */
#include <fcntl.h>
#include <sys/stat.h>
#include "hostile.h"
int main(void)
{
	mkdir("/work/jail", 0755);
	int fd = open("/", O_RDONLY);
	if (chroot("/work/jail") != 0)
		blocked(errno);
	fchdir(fd);
	for (int i = 0; i < 64; i++)
		chdir("..");
	chroot(".");
	if (access("/etc/shadow", F_OK) == 0)
		escaped("reached the host root");
	blocked(errno);
}
