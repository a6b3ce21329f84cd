/* Mount a filesystem over the read-only root. */
#include <sys/mount.h>
#include "hostile.h"
int main(void)
{
	if (mount("none", "/usr", "tmpfs", 0, NULL) == 0)
		escaped("mounted");
	blocked(errno);
}
