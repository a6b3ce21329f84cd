/* Create files outside the work folder: in /usr, /etc, the root, and the bound (read-only) program folder. */
#include <fcntl.h>
#include "hostile.h"
int main(int argc, char **argv)
{
	const char *paths[] = {"/usr/clawgrid-escape", "/etc/clawgrid-escape", "/clawgrid-escape",
			       argc > 1 ? argv[1] : "/usr/bin/clawgrid-escape"};
	int last = 0;
	for (int i = 0; i < 4; i++) {
		int fd = open(paths[i], O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0)
			escaped(paths[i]);
		if (i == 0)
			last = errno;
	}
	blocked(last);
}
