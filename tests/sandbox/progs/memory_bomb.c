/* Allocate and touch memory until something stops us (1 GiB would be an escape of a 64M limit). */
#include "hostile.h"
int main(void)
{
	size_t total = 0;
	while (total < (1u << 30)) {
		char *p = malloc(1 << 20);
		if (!p)
			blocked(errno);
		memset(p, 0xa5, 1 << 20);
		total += 1 << 20;
	}
	escaped("allocated 1 GiB");
}
