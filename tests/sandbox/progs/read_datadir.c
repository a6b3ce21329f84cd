/* Read a secret file of the host's data directory (path given by the test). */
#include <fcntl.h>
#include "hostile.h"
int main(int argc, char **argv)
{
	int fd = open(argc > 1 ? argv[1] : "/root/.clawgrid/admin.token", O_RDONLY);
	if (fd < 0)
		blocked(errno);
	char b[64];
	ssize_t n = read(fd, b, sizeof b);
	if (n > 0)
		escaped("read the data directory secret");
	blocked(errno);
}
