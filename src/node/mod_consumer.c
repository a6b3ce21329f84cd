/* Wiring of the consumer module into the node; its owner replaces this placeholder. Until then the section
 * "consumer" of config.json may only be an empty object. */
#include "node/modules.h"

static int check(json_t *section, cg_err *e)
{
	if (json_object_size(section) != 0)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "consumer: no options are supported yet");
	return 0;
}

static int start(struct node *n, int idx, cg_err *e)
{
	(void)n;
	(void)idx;
	(void)e;
	return 0;
}

static void stop(struct node *n, int idx)
{
	(void)n;
	(void)idx;
}

const struct node_module mod_consumer = {"consumer", "consumer", check, start, stop};
