/* consumer — the consumer side of the market on a node: leases from remote providers (a static list in the
 * config for now), and the tools that use them, as JSON-RPC methods:
 *
 *   web3.provider.list                     configured providers (name, peerId, actorId; never their URL)
 *   web3.provider.resources {provider}     the provider's published resources (GET /web3/resources/list)
 *   web3.provider.lease {provider?, resourceId, ttlMs?, maxCost?, renew?}  (also web3.resources.lease, see
 *                                          src/node/mod_consumer.c)
 *                                          a lease via the provider's signed lease route: {leaseId, orderId,
 *                                          expiresAt, ...}; the token stays in this node's memory
 *   web3.search.query {resourceId, q|query, limit?, site?, provider?}
 *   web3.storage.put {resourceId, path, bytesBase64|content, mime?}  .get {resourceId, path}
 *   web3.storage.list {resourceId, prefix?, limit?}
 *   web3.model.chat {resourceId, messages, max_tokens?, temperature?, ...}
 *   web3.consumer.leases / web3.consumer.receipts {leaseId?, limit?}
 * and POST /web3/consumer/chat (admin token): the same chat streamed as SSE, for `clawgrid chat`.
 *
 * A lease is reused until it expires (minus a margin) or the provider refuses it (401: expired/revoked), then
 * renewed once on demand. Every receipt is verified against the provider's peer id and kept in the store.
 * Tool results show the lease as {resourceId, provider, accessToken:"[REDACTED]"}. Loop thread only. */
#ifndef CG_CONSUMER_CONSUMER_H
#define CG_CONSUMER_CONSUMER_H

#include <event2/event.h>
#include <jansson.h>

#include "base/err.h"

struct http_server;
struct store;
struct wallet;
struct rpc_registry;
struct rpc_call;
struct consumer;

struct consumer_deps {
	struct event_base *base;
	struct http_server *http; /* may be NULL: no streaming route */
	struct store *store;
	const struct wallet *wallet;
	struct rpc_registry *rpc;
};

int consumer_config_check(json_t *section, cg_err *e);
/* Registers the RPC methods (and the chat route when http is set). */
int consumer_new(const struct consumer_deps *deps, json_t *section, struct consumer **out, cg_err *e);
/* Drops every lease token (zeroed), cancels in-flight calls. NULL-safe. */
void consumer_free(struct consumer *c);
/* The remote lease as an RPC handler body, for a market web3.resources.lease that delegates here. */
int consumer_rpc_lease(void *consumer, struct rpc_call *call, json_t *params, json_t **result, cg_err *e);

#endif
