/* Join a namespace through its /proc handle (setns is how a process hops into another container). */
#include <fcntl.h>
#include <sched.h>
#include "hostile.h"
int main(void)
{
	int fd = open("/proc/self/ns/mnt", O_RDONLY);
	if (fd < 0)
		blocked(errno);
	if (setns(fd, 0) == 0)
		escaped("setns");
	blocked(errno);
}
