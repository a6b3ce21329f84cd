/* Open descriptors until something stops us (more than 4096 would be an escape of a 64 limit). */
#include <fcntl.h>
#include "hostile.h"
int main(void)
{
	for (int n = 0; n < 4096; n++)
		if (open("/dev/null", O_RDONLY) < 0)
			blocked(errno);
	escaped("4096 descriptors");
}
