/* Overwrite a host binary through /proc/<pid>/exe (CVE-2019-5736 style): the sandbox's PID 1 and
 * ourselves. */
#include <fcntl.h>
#include "hostile.h"
int main(void)
{
	int fd = open("/proc/1/exe", O_WRONLY);
	int e1 = errno;
	if (fd >= 0 && write(fd, "", 0) == 0)
		escaped("opened /proc/1/exe for writing");
	fd = open("/proc/self/exe", O_WRONLY);
	if (fd >= 0)
		escaped("opened /proc/self/exe for writing");
	blocked(e1);
}
