/* Reach raw devices: open host disks and memory, or make a device node for them. */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include "hostile.h"
int main(void)
{
	const char *devs[] = {"/dev/mem", "/dev/kmem", "/dev/sda", "/dev/vda", "/dev/kmsg", "/dev/port"};
	for (int i = 0; i < 6; i++)
		if (open(devs[i], O_RDONLY) >= 0)
			escaped(devs[i]);
	if (mknod("/tmp/mem", S_IFCHR | 0600, makedev(1, 1)) == 0) {
		int fd = open("/tmp/mem", O_RDONLY);
		if (fd >= 0)
			escaped("mknod /dev/mem");
	}
	blocked(errno);
}
