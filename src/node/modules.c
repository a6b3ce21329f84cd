#include "node/modules.h"

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
