/* brain internals shared by brain.c (config, setup, RPC, status) and gateway.c (the request engine).
 * Not a public header: only src/brain/ includes it. */
#ifndef CG_BRAIN_BINT_H
#define CG_BRAIN_BINT_H

#ifndef BRAIN_INTERNAL
#error "brain/bint.h is internal to src/brain"
#endif

#include <stdbool.h>
#include <stdint.h>

#include "base/amount.h"
#include "brain/brain.h"
#include "brain/mlink.h"
#include "brain/oai.h"
#include "brain/policy.h"

#define BG_MAX_BRAINS 16
#define BG_MAX_UPS (BG_MAX_BRAINS + MLINK_MAX_RES)
#define BG_MAX_TARGETS 16
#define BG_ERRBODY_MAX (64u << 10)
#define BG_EVENT_MAX (1u << 20)
#define BG_HELD_MAX (4u << 20)

enum bg_kind { BK_MARKET = 0, BK_CENTRAL = 1 };
enum bg_fallback { FB_CENTRALIZED = 0, FB_MARKET, FB_NONE };

struct bg_timeouts {
	int64_t connect_ms, first_token_ms, idle_ms, total_ms;
};

struct bg_brain;

/* An upstream whose health the gateway tracks: one centralized brain, or one market resource. */
struct bg_up {
	char key[200];   /* "central:<providerId>" or "market:<provider>/<resourceId>" (no URL: safe to show) */
	enum bg_kind kind;
	struct bg_brain *brain;
	struct bh_health h;
	enum bh_state last_state;
	const struct mlink_res *res; /* market */
};

struct bg_brain {
	char id[64]; /* providerId */
	enum bg_kind kind;
	bool enabled;
	char default_model[257];
	json_t *allowlist; /* owned; empty = allow all */
	json_t *providers; /* market: provider names (owned; empty = all) */
	struct bg_timeouts to;
	/* centralized */
	char *url;         /* <endpoint>/chat/completions, registered with redact */
	char *auth;        /* "Authorization: Bearer <key>" in sodium_malloc'd memory, or NULL */
	char price_prompt[U256_DEC_MAX], price_completion[U256_DEC_MAX], price_call[U256_DEC_MAX];
	bool per_call;
	struct bg_up *up;
};

struct gw_req;

struct brain {
	struct brain_deps d;
	bool enabled;
	char provider_id[64], default_model[257];
	json_t *allowlist;
	enum bg_fallback fallback;
	struct bg_timeouts to;
	struct bh_cooldown cd;
	int max_attempts;
	bool usage_always;
	bool budget;
	int64_t reserve_max_tokens;
	int64_t refresh_ms;
	uint8_t key_hash[32];
	bool have_key;
	struct bg_brain brains[BG_MAX_BRAINS];
	size_t nbrains;
	struct bg_up *ups[BG_MAX_UPS];
	size_t nups;
	struct hc *hc;
	struct mlink *ml;
	struct event *timer;
	struct gw_req *reqs;
	uint64_t served, failed_over;
	/* group commit: settlements of finished requests, written together on the next loop turn */
	struct bg_settle **pend;
	size_t npend;
	struct event *flush_ev;
};

/* gateway.c */
int gw_register(struct brain *b, cg_err *e);
void gw_abort_all(struct brain *b);
/* Writes the pending settlements and audit records now (before reads of the budget or the audit). */
void gw_flush(struct brain *b);
/* Creates (once) the tracked upstream for a market resource. NULL when the table is full. */
struct bg_up *gw_market_up(struct brain *b, struct bg_brain *br, const struct mlink_res *res);
void gw_publish_state(struct brain *b, struct bg_up *u);
bool gw_brain_serves(const struct brain *b, const struct bg_brain *br, const char *model, const char **upstream_model);

#endif
