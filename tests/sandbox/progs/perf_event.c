/* Open a perf event (side channels, a long list of kernel bugs). */
#include <sys/syscall.h>
#include <linux/perf_event.h>
#include "hostile.h"
int main(void)
{
	struct perf_event_attr a;
	memset(&a, 0, sizeof a);
	a.type = PERF_TYPE_SOFTWARE;
	a.size = sizeof a;
	a.config = PERF_COUNT_SW_CPU_CLOCK;
	if (syscall(SYS_perf_event_open, &a, 0, -1, -1, 0) >= 0)
		escaped("perf_event_open");
	blocked(errno);
}
