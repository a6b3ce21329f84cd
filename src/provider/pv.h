/* pv — internals shared by the files of src/provider/ (the routes); not a public header. */
#ifndef CG_PROVIDER_PV_H
#define CG_PROVIDER_PV_H

#ifndef PV_INTERNAL
#error "provider/pv.h is internal to src/provider/; include provider/provider.h"
#endif

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "base/err.h"
#include "provider/provider.h"
#include "http/sse.h"

struct http_req;
struct hc;
struct hc_req;
struct fts;
struct pstore;
struct model_chat;

enum pv_kind { PV_MODEL, PV_SEARCH, PV_STORAGE };
enum pv_backend { PVB_OPENAI, PVB_LLAMA, PVB_FTS, PVB_SEARXNG, PVB_FS };

struct pv_resource {
	char id[64];
	enum pv_kind kind;
	enum pv_backend backend;
	char *url;      /* openai: the chat completions URL; searxng: the search URL (secret: redacted) */
	char *api_key;  /* secret: redacted, never logged */
	char *model;    /* upstream / local model name sent in place of the client's */
	struct fts *fts;
	struct pstore *ps;
	int64_t quota_bytes;   /* storage: bytes a lease may keep stored (0: no limit) */
	int64_t refresh_ms, last_refresh;
	json_t *publish;       /* market resource spec to publish at start, or NULL */
	json_t *allowed;       /* allowed consumer addresses (array) or NULL: everyone with a lease */
};

/* Per-lease rate limit (sliding window counter: this window's count plus the previous window's, weighted by
 * how much of it still overlaps; O(1) memory whatever the limit) and concurrency. */
struct pv_rl {
	struct pv_rl *next;
	char lease[64];
	int64_t win_start; /* windows are anchored at the lease's first request */
	int64_t cur, prev;
	int inflight;
	int64_t last;
};

#define PV_RL_BUCKETS 256

/* One request being served (kept until the reply is finished). */
struct pv_call {
	struct pv_call *prev, *next;
	struct provider *p;
	struct http_req *r;
	struct pv_resource *res;
	json_t *lease;    /* authorized lease (no token material) */
	json_t *resource; /* the market resource (price, policy) */
	struct pv_rl *rl;
	char request_id[129];
	bool gone, finished;
	/* model chat */
	struct hc_req *up;
	struct model_chat *mc;
	struct sse_parser sse;
	bool stream, client_usage, sse_started, saw_done, failed, cut_pending;
	int in_cb;        /* > 0 while relaying inside an upstream callback: cuts are deferred to its end */
	long up_status;   /* upstream HTTP status */
	cg_err fail_err;
	int64_t total_tokens; /* from usage; -1 when unknown */
	int64_t chunks;
	/* search (searxng) */
	int64_t limit;
	char *site;
};

struct provider {
	struct provider_deps d;
	char actor[43], peer_id[64];
	struct pv_resource *res;
	size_t nres;
	struct hc *hc;
	struct pv_rl *rl[PV_RL_BUCKETS];
	struct pv_call *calls;
	int64_t rate_n, rate_window_ms;
	int64_t connect_ms, first_byte_ms, idle_ms, total_ms;
	int64_t lease_skew_ms;
	bool lease_route;
	json_t *allowed; /* provider-wide allowed consumers or NULL */
	struct event *timer;
	int64_t n_rate_limited, n_auth_failed, n_ledger_failed, n_served;
};

/* provider.c */
struct pv_call *pv_call_new(struct provider *p, struct http_req *r, struct pv_resource *res, json_t *lease,
			    json_t *resource, struct pv_rl *rl, const char *request_id);
/* Frees the call (after its reply is finished). */
void pv_call_free(struct pv_call *c);
/* Appends the ledger entry for a served call and returns the signed receipt (caller frees), or NULL when the
 * ledger refused (logged; Gate-LEDGER-02: the answer goes out anyway). unit/quantity as the ledger takes. */
json_t *pv_meter(struct pv_call *c, const char *unit, const char *quantity, bool priced);
/* Adds the receipt header (if any) and replies JSON; takes v and receipt. Finishes r and frees c. */
void pv_reply_json(struct pv_call *c, json_t *v, json_t *receipt);
void pv_reply_error(struct pv_call *c, const cg_err *e);
const char *pv_price_unit(const struct pv_call *c);
const char *pv_price_amount(const struct pv_call *c);
json_t *pv_policy(const struct pv_call *c); /* borrowed, may be NULL */

/* chat.c */
void pv_chat(struct pv_call *c);
void pv_chat_cut(struct pv_call *c, const char *why);
/* search.c */
void pv_search(struct pv_call *c);
/* storage.c */
void pv_storage_put(struct pv_call *c);
void pv_storage_get(struct pv_call *c);
void pv_storage_list(struct pv_call *c);

#endif
