/* Wiring of the consumer module into the node: the "consumer" config section (docs/provider.md), the
 * consumer tools as RPC methods and the streaming chat route for `clawgrid chat`.
 *
 * It also extends `web3.resources.lease` (registered by the market for this node's own resources) so that the
 * one method serves both cases of seed §1.4 and issue 4: with a `provider` (a name from consumer.providers),
 * or for a resource this node doesn't hold while remote providers are configured, the lease is asked from
 * the remote provider over its signed lease route and the token stays inside this node. */
#include <stdlib.h>
#include <string.h>

#include "consumer/consumer.h"
#include "market/market.h"
#include "node/modules.h"
#include "rpc/rpc.h"

struct mod {
	struct consumer *c;
	rpc_fn local_fn; /* the market's own web3.resources.lease */
	void *local_arg;
	bool has_providers;
	struct market *market; /* NULL when the node runs no market */
};

static int check(json_t *section, cg_err *e)
{
	return consumer_config_check(section, e);
}

/* The remote form takes {provider?, resourceId, ttlMs?, maxCost?, renew?, consumerActorId?, sessionKey?}:
 * the local form's actorId (this node) has no meaning there. */
static json_t *remote_params(json_t *p)
{
	json_t *q = json_deep_copy(p);
	json_object_del(q, "actorId");
	return q;
}

/* Whether this node's own market holds the resource (then the lease is issued locally). */
static bool local_resource(struct mod *md, json_t *params)
{
	json_t *rid = json_object_get(params, "resourceId");
	if (!md->market || !json_is_string(rid))
		return true; /* let the local method report what is wrong */
	json_t *q = json_pack("{s:O}", "resourceId", rid), *res = NULL;
	cg_err e;
	bool found = market_call(md->market, "market.resource.get", q, &res, &e) == 0 &&
		     json_is_object(json_object_get(res, "resource"));
	json_decref(q);
	json_decref(res);
	return found;
}

static int w3_lease(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	struct mod *md = arg;
	if (json_object_get(params, "provider")) {
		json_t *q = remote_params(params);
		int r = consumer_rpc_lease(md->c, call, q, result, e);
		json_decref(q);
		return r;
	}
	if (md->has_providers && !local_resource(md, params)) {
		json_t *q = remote_params(params);
		int r = consumer_rpc_lease(md->c, call, q, result, e);
		json_decref(q);
		return r;
	}
	return md->local_fn(md->local_arg, call, params, result, e);
}

static int start(struct node *n, int idx, cg_err *e)
{
	struct mod *md = calloc(1, sizeof *md);
	if (!md)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	n->mod[idx] = md;
	struct consumer_deps d = {
		.base = n->base,
		.http = n->http,
		.store = n->store,
		.wallet = n->wallet,
		.rpc = n->rpc,
	};
	json_t *section = node_config_section(n, "consumer");
	int r = consumer_new(&d, section, &md->c, e);
	if (r < 0)
		return r;
	md->market = mod_market_get(n);
	md->has_providers = json_array_size(json_object_get(section, "providers")) > 0;
	if (rpc_override(n->rpc, "web3.resources.lease", w3_lease, md, &md->local_fn, &md->local_arg) < 0) {
		/* No market on this node: the method is the remote lease alone. */
		if (rpc_register(n->rpc, "web3.resources.lease", consumer_rpc_lease, md->c) < 0)
			return cg_fail(e, CG_E_INTERNAL, "consumer: cannot register web3.resources.lease");
	}
	return 0;
}

static void stop(struct node *n, int idx)
{
	struct mod *md = n->mod[idx];
	if (!md)
		return;
	consumer_free(md->c);
	free(md);
	n->mod[idx] = NULL;
}

const struct node_module mod_consumer = {"consumer", "consumer", check, start, stop};
