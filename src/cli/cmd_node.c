/* Placeholder until the node foundation lands. */
#include <stdio.h>

#include "cli/cli.h"

#define PLACEHOLDER(fn)                                                                                      \
	int fn(struct cli *c, int argc, char **argv)                                                         \
	{                                                                                                    \
		(void)c;                                                                                     \
		(void)argc;                                                                                  \
		fprintf(stderr, "clawgrid: '%s' is not part of this build yet\n", argv[0]);                  \
		return EXIT_FAIL;                                                                            \
	}
PLACEHOLDER(cmd_init)
PLACEHOLDER(cmd_node)
PLACEHOLDER(cmd_status)
PLACEHOLDER(cmd_id)
PLACEHOLDER(cmd_rpc)
PLACEHOLDER(cmd_export)
PLACEHOLDER(cmd_import)
