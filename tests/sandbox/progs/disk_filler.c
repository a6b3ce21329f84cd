/* Fill the work folder until something stops us (256 MiB would be an escape of an 8M quota). */
#include <fcntl.h>
#include <signal.h>
#include "hostile.h"
int main(void)
{
	signal(SIGXFSZ, SIG_IGN);
	int fd = open("/work/fill", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		blocked(errno);
	static char b[1 << 16];
	memset(b, 'x', sizeof b);
	for (size_t total = 0; total < (256u << 20); total += sizeof b)
		if (write(fd, b, sizeof b) != (ssize_t)sizeof b)
			blocked(errno);
	escaped("wrote 256 MiB");
}
