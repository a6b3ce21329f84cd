/* brain — the consumer node's OpenAI-compatible gateway with brain switching (B-1): market providers through
 * leases and centralized OpenAI-compatible APIs, several of each, behind one gateway key.
 *
 *   POST /v1/chat/completions   stream and not; tool calls; stream_options; OpenAI-shaped errors
 *   GET  /v1/models             the models the gateway routes
 *   RPC  web3.brain.status      brains, upstream health, budget
 *        web3.brain.audit.query {limit?, before?, requestId?, outcome?}
 *        web3.billing.status    the credit budget
 *
 * Failover: the response status is held until the first content token; before it any upstream failure
 * (connect error, 5xx, 429, the four timers, context length, malformed or cut streams) moves on to the next
 * candidate; after it the stream ends with an in-band error event and no [DONE]. Usage always comes from
 * the upstream (include_usage is forced and stripped again when the client did not ask); a missing usage is
 * estimated and flagged. Every request reserves its worst-case cost before it starts and settles the real
 * cost with its audit record in one transaction (brain/bledger.h). Config keys: docs/brain.md.
 * Loop thread only. */
#ifndef CG_BRAIN_BRAIN_H
#define CG_BRAIN_BRAIN_H

#include <event2/event.h>
#include <jansson.h>

#include "base/err.h"

struct http_server;
struct store;
struct wallet;
struct rpc_registry;
struct brain;

struct brain_deps {
	struct event_base *base;
	struct http_server *http;
	struct store *store;
	const struct wallet *wallet;
	struct rpc_registry *rpc;
	const char *data_dir;   /* relative key files resolve against it; never logged */
	json_t *consumer;       /* the consumer config section: the market providers (borrowed for brain_new) */
};

/* Validates the "brain" section (every key; errors name the JSON path). */
int brain_config_check(json_t *section, cg_err *e);
/* Reads the keys (environment or files), opens the budget and audit tables, registers routes and RPC
 * methods. A disabled section registers only the RPC methods. deps is copied. */
int brain_new(const struct brain_deps *deps, json_t *section, struct brain **out, cg_err *e);
/* Ends in-flight requests (clients get an error), zeroes keys and frees. NULL-safe. */
void brain_free(struct brain *b);

/* web3.status.summary's brain object {source, provider, model, availability} from live health, and its
 * billing object {status, credits} (caller frees each). */
json_t *brain_summary(struct brain *b);
json_t *brain_billing(struct brain *b);

#endif
