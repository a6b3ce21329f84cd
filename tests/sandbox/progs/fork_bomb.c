/* Fork until something stops us; every child just waits. */
#include <signal.h>
#include "hostile.h"
int main(void)
{
	for (int n = 0; n < 100000; n++) {
		pid_t p = fork();
		if (p == 0) {
			pause();
			_exit(0);
		}
		if (p < 0)
			blocked(errno);
	}
	escaped("100000 processes");
}
