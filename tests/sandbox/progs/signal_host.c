/* Kill a host process by its host pid (given by the test), then everything we can see. */
#include <signal.h>
#include "hostile.h"
int main(int argc, char **argv)
{
	pid_t pid = (pid_t)atoi(argc > 1 ? argv[1] : "1");
	if (kill(pid, SIGTERM) == 0 && getpid() != pid && pid > 2)
		escaped("signalled a host pid");
	blocked(errno);
}
