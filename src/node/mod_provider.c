/* Wiring of the provider module into the node: the "provider" config section (docs/provider.md), the
 * provider routes on the node's HTTP server, lease revocation cutting in-flight streams, and the provider.*
 * status method. */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "market/market.h"
#include "node/modules.h"
#include "provider/provider.h"
#include "rpc/rpc.h"

struct mod {
	struct provider *p;
	struct market *market;
};

static int check(json_t *section, cg_err *e)
{
	return provider_config_check(section, e);
}

static int on_revoked(void *arg, const json_t *lease, cg_err *e)
{
	struct mod *md = arg;
	const char *id = json_string_value(json_object_get(lease, "leaseId"));
	if (id && md->p) {
		int n = provider_cut_lease(md->p, id);
		if (n)
			log_info("provider", "revoked lease: streams cut", "lease=%s streams=%d", id, n);
	}
	return 0;
}

static int m_status(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	struct mod *md = arg;
	const struct rpc_caller *who = rpc_call_caller(call);
	if (!who || !who->admin)
		return cg_fail(e, CG_E_FORBIDDEN, "provider.status is for the node's owner");
	*result = provider_status(md->p);
	return 0;
}

static int m_refresh(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	struct mod *md = arg;
	const struct rpc_caller *who = rpc_call_caller(call);
	if (!who || !who->admin)
		return cg_fail(e, CG_E_FORBIDDEN, "provider.refresh is for the node's owner");
	provider_refresh(md->p);
	*result = json_pack("{s:b}", "ok", 1);
	return 0;
}

static int start(struct node *n, int idx, cg_err *e)
{
	struct market *market = mod_market_get(n);
	if (!market)
		return cg_fail(e, CG_E_INTERNAL, "provider: the market module is not running");
	struct mod *md = calloc(1, sizeof *md);
	if (!md)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	n->mod[idx] = md;
	md->market = market;
	struct provider_deps d = {
		.base = n->base,
		.http = n->http,
		.store = n->store,
		.key = n->key,
		.market = market,
		.models = mod_model_get(n),
		.actor = n->address,
		.data_dir = n->data_dir,
	};
	int r = provider_new(&d, node_config_section(n, "provider"), &md->p, e);
	if (r < 0)
		return r;
	market_set_revocation_notifier(market, on_revoked, md);
	if (rpc_register(n->rpc, "provider.status", m_status, md) < 0 ||
	    rpc_register(n->rpc, "provider.refresh", m_refresh, md) < 0)
		return cg_fail(e, CG_E_INTERNAL, "provider: cannot register RPC methods");
	return 0;
}

static void stop(struct node *n, int idx)
{
	struct mod *md = n->mod[idx];
	if (!md)
		return;
	if (md->market)
		market_set_revocation_notifier(md->market, NULL, NULL);
	provider_free(md->p);
	free(md);
	n->mod[idx] = NULL;
}

const struct node_module mod_provider = {"provider", "provider", check, start, stop};
