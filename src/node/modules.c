#include "node/modules.h"

#include <string.h>

const struct node_module *const node_modules[] = {
	&mod_market,
	&mod_model,
	&mod_sandbox,
	&mod_p2p,
	&mod_provider,
	&mod_consumer,
	&mod_brain,
	NULL,
};

void *node_module_state(struct node *n, const char *name)
{
	for (int i = 0; i < NODE_MOD_MAX && node_modules[i]; i++)
		if (strcmp(node_modules[i]->name, name) == 0)
			return n->mod[i];
	return NULL;
}
