/* Attach to a host process (its host pid given by the test) with ptrace. */
#include <sys/ptrace.h>
#include "hostile.h"
int main(int argc, char **argv)
{
	pid_t pid = (pid_t)atoi(argc > 1 ? argv[1] : "1");
	if (ptrace(PTRACE_ATTACH, pid, 0, 0) == 0)
		escaped("attached");
	blocked(errno);
}
