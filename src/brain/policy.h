/* brain/policy — upstream health, cooldowns and candidate ranking for the gateway. Pure: time comes in as
 * arguments (monotonic ms), so the rules are unit-tested without sleeping.
 *
 * Cooldown (LiteLLM's defaults, configurable): `failures` failed attempts within `window_ms` put the upstream
 * in cooldown for `cooldown_ms`; an upstream that answered 429 with Retry-After is cooled for that long at
 * once (capped at BH_RETRY_AFTER_MAX_MS). A cooled upstream is skipped while another one can serve; when
 * the cooldown ends it is tried again (half-open) with a clean failure count.
 *
 * Ranking (market candidates): lower score is better, from price (0.4), recent error rate (0.3), measured
 * time to first token (0.2) and recent failures (0.1), the seed's matching weights with reputation read as
 * measured reliability. Ties keep configuration order. Cooling candidates go last, soonest-available
 * first, so a request still has somewhere to go when everything is cooling. */
#ifndef CG_BRAIN_POLICY_H
#define CG_BRAIN_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BH_FAIL_RING 64
#define BH_RETRY_AFTER_MAX_MS (10 * 60 * 1000)

struct bh_cooldown {
	int failures;        /* default 3 */
	int64_t window_ms;   /* default 60000 */
	int64_t cooldown_ms; /* default 5000 */
};

enum bh_state { BH_OK = 0, BH_DEGRADED = 1, BH_COOLING = 2 };

struct bh_health {
	int64_t fail_ts[BH_FAIL_RING]; /* recent failure times (ring) */
	int nfail, head;
	int64_t cool_until;            /* 0 when not cooling */
	double ttft_ewma_ms;           /* 0 until measured */
	double err_ewma;               /* 0..1 */
	uint64_t ok, failed, cooldowns;
	char last_reason[64];
};

void bh_init(struct bh_health *h);
void bh_success(struct bh_health *h, int64_t now, double ttft_ms);
/* Records a failure; retry_after_ms > 0 when the upstream said when to come back. True when it started a
 * cooldown. */
bool bh_failure(struct bh_health *h, const struct bh_cooldown *cfg, int64_t now, int64_t retry_after_ms,
		const char *reason);
/* Failures within the window (drops older ones from the count). */
int bh_recent_failures(const struct bh_health *h, const struct bh_cooldown *cfg, int64_t now);
bool bh_cooling(const struct bh_health *h, int64_t now);
int64_t bh_cool_left_ms(const struct bh_health *h, int64_t now);
enum bh_state bh_state(const struct bh_health *h, const struct bh_cooldown *cfg, int64_t now);
const char *bh_state_name(enum bh_state s);

struct bp_cand {
	const struct bh_health *h;
	double price;  /* cost per token in base units (ranking only; money math uses amounts) */
	int order;     /* configuration order: the tie-breaker */
	double score;  /* out */
	void *ptr;     /* the caller's object */
};
/* Scores and sorts in place (see above). */
void bp_rank(struct bp_cand *c, size_t n, const struct bh_cooldown *cfg, int64_t now);

#endif
