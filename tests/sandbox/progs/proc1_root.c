/* Reach the host's files through /proc/1/root and /proc/self/root. */
#include <fcntl.h>
#include "hostile.h"
int main(void)
{
	const char *p[] = {"/proc/1/root/etc/shadow", "/proc/self/root/../../../etc/shadow", "/proc/1/cwd/../etc/shadow"};
	int first = 0;
	for (int i = 0; i < 3; i++) {
		int fd = open(p[i], O_RDONLY);
		if (fd >= 0)
			escaped(p[i]);
		if (i == 0)
			first = errno;
	}
	blocked(first);
}
