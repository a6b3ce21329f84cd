/* Load a kernel module. */
#include <fcntl.h>
#include <sys/syscall.h>
#include "hostile.h"
int main(void)
{
	int fd = open("/dev/null", O_RDONLY);
	if (syscall(SYS_finit_module, fd, "", 0) == 0)
		escaped("finit_module");
	blocked(errno);
}
