/* Create a BPF map (the first step of most eBPF kernel exploits). */
#include <sys/syscall.h>
#include <linux/bpf.h>
#include "hostile.h"
int main(void)
{
	union bpf_attr a;
	memset(&a, 0, sizeof a);
	a.map_type = BPF_MAP_TYPE_ARRAY;
	a.key_size = 4;
	a.value_size = 4;
	a.max_entries = 1;
	if (syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof a) >= 0)
		escaped("bpf map created");
	blocked(errno);
}
