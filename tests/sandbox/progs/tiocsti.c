/* Push characters into a terminal's input queue (TIOCSTI), also with the upper bits of the request set
 * (the kernel only reads 32 bits), on stdin and on /dev/tty. */
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include "hostile.h"
int main(void)
{
	char c = 'x';
	if (syscall(SYS_ioctl, 0, (unsigned long)TIOCSTI, &c) == 0)
		escaped("TIOCSTI on stdin");
	int e = errno;
	if (syscall(SYS_ioctl, 0, (1ul << 32) | TIOCSTI, &c) == 0)
		escaped("TIOCSTI with high bits");
	int fd = open("/dev/tty", O_RDWR);
	if (fd >= 0 && ioctl(fd, TIOCSTI, &c) == 0)
		escaped("TIOCSTI on /dev/tty");
	blocked(e);
}
