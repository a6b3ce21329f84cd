/* Wiring of the brain module into the node: the "brain" config section (docs/brain.md), the OpenAI-compatible
 * gateway routes, its RPC methods, and the brain and billing fields of web3.status.summary. */
#include <stdlib.h>

#include "brain/brain.h"
#include "node/modules.h"

static int check(json_t *section, cg_err *e)
{
	return brain_config_check(section, e);
}

static void status(struct node *n, void *arg, json_t *summary)
{
	struct brain *b = arg;
	json_object_set_new(summary, "brain", brain_summary(b));
	json_object_set_new(summary, "billing", brain_billing(b));
}

static int start(struct node *n, int idx, cg_err *e)
{
	struct brain_deps d = {
		.base = n->base,
		.http = n->http,
		.store = n->store,
		.wallet = n->wallet,
		.rpc = n->rpc,
		.data_dir = n->data_dir,
		.consumer = node_config_section(n, "consumer"),
	};
	struct brain *b = NULL;
	int r = brain_new(&d, node_config_section(n, "brain"), &b, e);
	if (r < 0)
		return r;
	n->mod[idx] = b;
	if (node_status_contribute(n, status, b) < 0)
		return cg_fail(e, CG_E_INTERNAL, "brain: cannot contribute to the status summary");
	return 0;
}

static void stop(struct node *n, int idx)
{
	brain_free(n->mod[idx]);
	n->mod[idx] = NULL;
}

const struct node_module mod_brain = {"brain", "brain", check, start, stop};
