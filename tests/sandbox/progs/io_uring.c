/* io_uring: a second syscall interface seccomp cannot see into. */
#include <sys/syscall.h>
#include <linux/io_uring.h>
#include "hostile.h"
int main(void)
{
	struct io_uring_params p;
	memset(&p, 0, sizeof p);
	if (syscall(SYS_io_uring_setup, 4, &p) >= 0)
		escaped("io_uring_setup");
	blocked(errno);
}
