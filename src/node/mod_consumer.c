/* Wiring of the consumer module into the node: the "consumer" config section (docs/provider.md), the
 * consumer tools as RPC methods and the streaming chat route for `clawgrid chat`. */
#include <stdlib.h>

#include "consumer/consumer.h"
#include "node/modules.h"

static int check(json_t *section, cg_err *e)
{
	return consumer_config_check(section, e);
}

static int start(struct node *n, int idx, cg_err *e)
{
	struct consumer_deps d = {
		.base = n->base,
		.http = n->http,
		.store = n->store,
		.wallet = n->wallet,
		.rpc = n->rpc,
	};
	struct consumer *c = NULL;
	int r = consumer_new(&d, node_config_section(n, "consumer"), &c, e);
	if (r < 0)
		return r;
	n->mod[idx] = c;
	return 0;
}

static void stop(struct node *n, int idx)
{
	consumer_free(n->mod[idx]);
	n->mod[idx] = NULL;
}

const struct node_module mod_consumer = {"consumer", "consumer", check, start, stop};
