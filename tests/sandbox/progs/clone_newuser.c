/* The same through clone() flags (not unshare), and through clone3(). */
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/sched.h>
#include "hostile.h"
int main(void)
{
	long pid = syscall(SYS_clone, CLONE_NEWUSER | CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0);
	if (pid == 0)
		_exit(0);
	if (pid > 0)
		escaped("clone(CLONE_NEWUSER)");
	int e1 = errno;
	struct clone_args ca = {.flags = CLONE_NEWUSER, .exit_signal = SIGCHLD};
	pid = syscall(SYS_clone3, &ca, sizeof ca);
	if (pid == 0)
		_exit(0);
	if (pid > 0)
		escaped("clone3(CLONE_NEWUSER)");
	blocked(e1);
}
