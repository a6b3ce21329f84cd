/* Create a fresh user namespace (new capabilities over new mount and network stacks). */
#include <sched.h>
#include "hostile.h"
int main(void)
{
	if (unshare(CLONE_NEWUSER | CLONE_NEWNS) == 0)
		escaped("unshared");
	blocked(errno);
}
