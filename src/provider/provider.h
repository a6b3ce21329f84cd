/* provider — the provider side of the market on a node's HTTP server: the resource routes a leaseholder calls
 * (model chat, search, storage), their authorization, policies and rate limits, metering into the ledger,
 * signed receipts, and the inter-node route where a consumer asks for a lease with a wallet-signed request.
 *
 * Routes (docs/provider.md):
 *   GET  /web3/resources/list                        published resources (no endpoints, no backend config)
 *   POST /web3/resources/model/chat, /v1/chat/completions   OpenAI chat, streamed as SSE
 *   POST /web3/resources/search/query                {q|query, limit?, site?}
 *   POST /web3/resources/storage/put                 {path, bytesBase64|content, mime?} (or raw bytes + ?path=)
 *   GET|POST /web3/resources/storage/get             ?path= or {path}
 *   POST|GET /web3/resources/storage/list            {prefix?, limit?}
 *   POST /web3/market/lease                          signed lease request (provider/leasereq.h)
 * Every resource route needs `Authorization: Bearer tok_…` (or `X-Lease-Token`) and `X-OpenClaw-Lease`.
 * Loop thread only. */
#ifndef CG_PROVIDER_PROVIDER_H
#define CG_PROVIDER_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>
#include <jansson.h>

#include "base/err.h"

struct http_server;
struct store;
struct node_key;
struct market;
struct model_registry;
struct provider;

struct provider_deps {
	struct event_base *base;
	struct http_server *http;
	struct store *store;
	const struct node_key *key;   /* signs receipts */
	struct market *market;
	struct model_registry *models; /* may be NULL: no embedded llama backend */
	const char *actor;             /* this node's EIP-55 address (the provider actor id) */
	const char *data_dir;          /* relative backend paths are resolved against it */
};

/* Validates the "provider" config section (unknown keys and bad values name the JSON path). */
int provider_config_check(json_t *section, cg_err *e);
/* Builds the backends of a validated section, registers the routes, and publishes the resources marked
 * "publish". deps is copied (its pointers are borrowed for the provider's life). */
int provider_new(const struct provider_deps *deps, json_t *section, struct provider **out, cg_err *e);
/* Cancels in-flight calls (their clients get an error event or reply) and frees. NULL-safe. */
void provider_free(struct provider *p);
/* Cuts the in-flight calls of a lease at once (revocation). Returns how many were cut. */
int provider_cut_lease(struct provider *p, const char *lease_id);
/* Re-indexes the fts backends (also run on a timer). */
void provider_refresh(struct provider *p);
/* Parses and checks an OpenAI chat request body against a resource policy (may be NULL): messages present,
 * max_tokens within maxTokens (filled in from the policy when absent), no tools when allowTools is false.
 * *out = the request (caller frees); *stream and *client_usage as the client asked. Pure (fuzzed). */
int provider_chat_prepare(const char *body, size_t len, json_t *policy, json_t **out, bool *stream,
			  bool *client_usage, cg_err *e);
/* {resources, inflight, rateLimited, ...} for status output (caller frees). */
json_t *provider_status(struct provider *p);

#endif
