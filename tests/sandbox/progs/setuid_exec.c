/* Execute a setuid-root binary (prepared by the test) and see whether it gained anything. With an
 * argument "probe" this program is that binary: it reports its effective capabilities. */
#include <sys/wait.h>
#include "hostile.h"
int main(int argc, char **argv)
{
	if (argc > 2 && strcmp(argv[1], "probe") == 0) {
		FILE *f = fopen("/proc/self/status", "r");
		char line[256];
		while (f && fgets(line, sizeof line, f))
			if (strncmp(line, "CapEff:", 7) == 0) {
				unsigned long long caps = strtoull(line + 7, NULL, 16);
				if (caps)
					escaped("setuid exec gained capabilities");
				blocked_word("nocaps");
			}
		blocked_word("nostatus");
	}
	if (argc < 2)
		blocked_word("noarg");
	execl(argv[1], argv[1], "probe", "x", (char *)NULL);
	blocked(errno);
}
