/* brain/policy: cooldowns (N failures in a window, Retry-After, half-open after the cooldown), states, and
 * ranking of market candidates by price, reliability and latency with cooling ones last. Time is passed in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "brain/policy.h"

static const struct bh_cooldown cd = {.failures = 3, .window_ms = 60000, .cooldown_ms = 5000};

static void t_cooldown(void **st)
{
	struct bh_health h;
	bh_init(&h);
	assert_int_equal(bh_state(&h, &cd, 1000), BH_OK);
	assert_false(bh_failure(&h, &cd, 1000, 0, "http_500"));
	assert_int_equal(bh_state(&h, &cd, 1001), BH_DEGRADED);
	/* failures outside the window do not add up */
	assert_false(bh_failure(&h, &cd, 70000, 0, "http_500"));
	assert_int_equal(bh_recent_failures(&h, &cd, 70000), 1);
	assert_false(bh_failure(&h, &cd, 71000, 0, "cut"));
	assert_true(bh_failure(&h, &cd, 72000, 0, "timeout_idle"));
	assert_true(bh_cooling(&h, 72000));
	assert_int_equal(bh_cool_left_ms(&h, 73000), 4000);
	assert_int_equal(bh_state(&h, &cd, 73000), BH_COOLING);
	assert_string_equal(h.last_reason, "timeout_idle");
	/* after the cooldown: tried again with a clean count */
	assert_false(bh_cooling(&h, 77000));
	assert_int_equal(bh_recent_failures(&h, &cd, 77000), 0);
	assert_false(bh_failure(&h, &cd, 77001, 0, "x"));
	bh_success(&h, 77002, 120);
	assert_int_equal(h.cooldowns, 1);
	assert_true(h.ttft_ewma_ms > 0);
}

static void t_retry_after(void **st)
{
	struct bh_health h;
	bh_init(&h);
	/* One 429 with Retry-After cools at once, for as long as asked. */
	assert_true(bh_failure(&h, &cd, 1000, 30000, "http_429"));
	assert_int_equal(bh_cool_left_ms(&h, 1000), 30000);
	/* capped */
	bh_init(&h);
	assert_true(bh_failure(&h, &cd, 0, 24LL * 3600 * 1000, "http_429"));
	assert_int_equal(bh_cool_left_ms(&h, 0), BH_RETRY_AFTER_MAX_MS);
}

static void t_rank(void **st)
{
	struct bh_health cheap, dear, flaky, cooling;
	bh_init(&cheap);
	bh_init(&dear);
	bh_init(&flaky);
	bh_init(&cooling);
	bh_success(&cheap, 0, 100);
	bh_success(&dear, 0, 100);
	bh_success(&flaky, 0, 100);
	for (int i = 0; i < 2; i++)
		bh_failure(&flaky, &cd, 1000, 0, "http_500");
	bh_failure(&cooling, &cd, 1000, 60000, "http_429");
	int a = 1, b = 2, c = 3, d = 4;
	struct bp_cand v[] = {
		{.h = &cooling, .price = 1, .order = 0, .ptr = &d},
		{.h = &dear, .price = 10, .order = 1, .ptr = &b},
		{.h = &flaky, .price = 1, .order = 2, .ptr = &c},
		{.h = &cheap, .price = 1, .order = 3, .ptr = &a},
	};
	bp_rank(v, 4, &cd, 2000);
	assert_ptr_equal(v[0].ptr, &a); /* cheapest and healthy */
	assert_ptr_equal(v[3].ptr, &d); /* cooling: last resort */
	assert_true(v[0].score < v[1].score);
	/* equal candidates keep configuration order */
	struct bh_health x, y;
	bh_init(&x);
	bh_init(&y);
	struct bp_cand w[] = {{.h = &y, .price = 2, .order = 1, .ptr = &b}, {.h = &x, .price = 2, .order = 0, .ptr = &a}};
	bp_rank(w, 2, &cd, 0);
	assert_ptr_equal(w[0].ptr, &a);
	/* a slower peer ranks below an equally priced faster one */
	struct bh_health fast, slow;
	bh_init(&fast);
	bh_init(&slow);
	bh_success(&fast, 0, 50);
	bh_success(&slow, 0, 900);
	struct bp_cand z[] = {{.h = &slow, .price = 1, .order = 0, .ptr = &b}, {.h = &fast, .price = 1, .order = 1, .ptr = &a}};
	bp_rank(z, 2, &cd, 0);
	assert_ptr_equal(z[0].ptr, &a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(t_cooldown), cmocka_unit_test(t_retry_after), cmocka_unit_test(t_rank)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
