/* Use the kernel keyring (shared across containers on many kernels). */
#include <sys/syscall.h>
#include <linux/keyctl.h>
#include "hostile.h"
int main(void)
{
	long id = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0);
	if (id >= 0)
		escaped("keyctl");
	blocked(errno);
}
