/* Placeholder until the consumer subcommands land; replaced by the consumer module's own CLI. */
#include <stdio.h>

#include "cli/cli.h"

int cmd_consumer(struct cli *c, int argc, char **argv)
{
	(void)c;
	(void)argc;
	fprintf(stderr, "clawgrid: '%s' is not part of this build yet\n", argv[0]);
	return EXIT_FAIL;
}
