/* "Shocker": open_by_handle_at() reaches files by inode handle, bypassing the mount namespace. */
#include <fcntl.h>
#include "hostile.h"
int main(void)
{
	union {
		struct file_handle h;
		unsigned char raw[sizeof(struct file_handle) + 8];
	} u;
	memset(&u, 0, sizeof u);
	u.h.handle_bytes = 8;
	u.h.handle_type = 1;
	u.h.f_handle[0] = 2; /* inode 2: a filesystem root */
	int fd = open_by_handle_at(AT_FDCWD, &u.h, O_RDONLY);
	if (fd >= 0)
		escaped("open_by_handle_at");
	blocked(errno);
}
