/* Write the host's magic SysRq trigger and kernel tunables. */
#include <fcntl.h>
#include "hostile.h"
int main(void)
{
	int fd = open("/proc/sysrq-trigger", O_WRONLY);
	if (fd >= 0)
		escaped("/proc/sysrq-trigger writable");
	int e = errno;
	fd = open("/proc/sys/kernel/hostname", O_WRONLY);
	if (fd >= 0 && write(fd, "pwned", 5) == 5)
		escaped("/proc/sys writable");
	blocked(e);
}
