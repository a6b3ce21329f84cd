/* Read the host's password hashes. */
#include <fcntl.h>
#include "hostile.h"
int main(void)
{
	int fd = open("/etc/shadow", O_RDONLY);
	if (fd < 0)
		blocked(errno);
	escaped("opened /etc/shadow");
}
