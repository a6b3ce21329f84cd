/* Read another process's memory directly (process_vm_readv on the host pid given by the test). */
#include <sys/uio.h>
#include "hostile.h"
int main(int argc, char **argv)
{
	char b[16];
	struct iovec l = {b, sizeof b}, r = {(void *)0x400000, sizeof b};
	if (process_vm_readv((pid_t)atoi(argc > 1 ? argv[1] : "1"), &l, 1, &r, 1, 0) > 0)
		escaped("read foreign memory");
	blocked(errno);
}
