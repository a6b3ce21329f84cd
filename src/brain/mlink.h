/* brain/mlink — the gateway's link to market providers: their model resources (catalog with prices), leases
 * obtained with a wallet-signed request (provider/leasereq.h), and what a chat call needs (URL, headers).
 *
 * Providers are the consumer section's static list (consumer.providers: name, url, peerId?, actorId?), the
 * same ones `web3.provider.*` uses; configured identities are pinned. The catalog comes from each provider's
 * GET /web3/resources/list (model resources only) and is refreshed by mlink_refresh (the gateway runs it on a
 * timer). Lease tokens live in guarded memory (sodium_malloc), are zeroed on drop and never logged; URLs are
 * registered with redact. Loop thread only; callbacks never run from inside the call that started them.
 *
 * This overlaps the consumer module's own lease cache on purpose: consumer.h has no programmatic streaming
 * call yet (only RPC methods and an http_req-bound route), so the gateway keeps its own leases. */
#ifndef CG_BRAIN_MLINK_H
#define CG_BRAIN_MLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "base/err.h"

struct hc;
struct wallet;
struct mlink;
struct mlink_op;

#define MLINK_MAX_RES 256

/* One model resource on the market as the catalog last showed it. */
struct mlink_res {
	char provider[64];    /* the provider's configured name */
	char resource_id[64];
	char model[128];      /* tag "model:<id>", else the label */
	char price[80];       /* amount per unit (decimal base units) */
	char currency[16];
	bool per_token;       /* unit "token" (else one price per call) */
	bool present;         /* false once it left the catalog */
};

/* section: the consumer config section (borrowed for the call). connect_ms bounds catalog and lease calls. */
int mlink_new(struct event_base *base, struct hc *hc, const struct wallet *w, json_t *section, int64_t connect_ms, int64_t lease_ttl_ms,
	      struct mlink **out, cg_err *e);
void mlink_free(struct mlink *m);
/* Configured provider names (for config checks): true when name is one of them. */
bool mlink_has_provider(const struct mlink *m, const char *name);
size_t mlink_nproviders(const struct mlink *m);
/* Starts a catalog refresh of every provider (no-op for those with one in flight). */
void mlink_refresh(struct mlink *m);
/* Resources known so far (borrowed until the next refresh completes; entries are never moved or freed
 * while the mlink lives, so pointers stay valid). */
size_t mlink_resources(struct mlink *m, const struct mlink_res **out);
/* Catalog refreshes completed (any provider), for tests and status. */
uint64_t mlink_generation(const struct mlink *m);

/* Ensures a lease for res, then calls done(arg, NULL) or done(arg, error) exactly once, later on the loop.
 * Returns the op (cancel with mlink_cancel: no callback then), or NULL when out of memory. Concurrent asks
 * for the same resource share one lease request. */
typedef void (*mlink_done_fn)(void *arg, const cg_err *e);
struct mlink_op *mlink_lease(struct mlink *m, const struct mlink_res *res, mlink_done_fn done, void *arg);
void mlink_cancel(struct mlink_op *op);
/* The chat URL and the lease headers for res ("Authorization: Bearer tok_…", "X-OpenClaw-Lease: …").
 * auth must be wiped by the caller (sodium_memzero) after use. -1 when no lease is held. */
int mlink_call_info(struct mlink *m, const struct mlink_res *res, char *url, size_t ucap, char *auth, size_t acap,
		    char *lease, size_t lcap);
/* Forgets the lease of res (the provider refused it: expired or revoked). */
void mlink_drop_lease(struct mlink *m, const struct mlink_res *res);

#endif
