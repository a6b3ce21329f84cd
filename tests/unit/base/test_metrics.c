/* metrics: counters, gauges and histograms with labels, rendered in Prometheus text format 0.0.4 with
 * escaping, cumulative buckets, callback gauges summed by name, the series cap and kind conflicts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/metrics.h"

static char *render(void)
{
	buf b;
	buf_init(&b, 8u << 20);
	assert_int_equal(metrics_render(&b), 0);
	return (char *)buf_steal(&b, NULL);
}

static void t_counter_gauge(void **st)
{
	(void)st;
	metrics_reset();
	struct metric *c = metrics_counter("test_requests_total", "Requests.\nSecond line \\ done", "route,status");
	assert_non_null(c);
	assert_ptr_equal(metrics_counter("test_requests_total", "other help", "route,status"), c);
	assert_null(metrics_gauge("test_requests_total", "x", NULL)); /* other kind */
	metrics_add(c, 1, "/rpc", "200");
	metrics_add(c, 2, "/rpc", "200");
	metrics_add(c, 1, "/a\"b\\c\nd", "500");
	metrics_add(c, -5, "/rpc", "200"); /* counters never go down */
	assert_true(metrics_value("test_requests_total", "/rpc", "200") == 3);
	assert_true(metrics_value("test_requests_total", "/none", "200") == -1);
	struct metric *g = metrics_gauge("test_temperature", "Temp.", NULL);
	metrics_set(g, 21.5);
	metrics_add(g, -1.5);
	assert_true(metrics_value("test_temperature") == 20);
	struct metric *u = metrics_counter("test_untouched_total", "Never incremented.", NULL);
	assert_non_null(u);
	char *t = render();
	assert_non_null(strstr(t, "# HELP test_requests_total Requests.\\nSecond line \\\\ done\n"));
	assert_non_null(strstr(t, "# TYPE test_requests_total counter\n"));
	assert_non_null(strstr(t, "test_requests_total{route=\"/rpc\",status=\"200\"} 3\n"));
	assert_non_null(strstr(t, "test_requests_total{route=\"/a\\\"b\\\\c\\nd\",status=\"500\"} 1\n"));
	assert_non_null(strstr(t, "# TYPE test_temperature gauge\ntest_temperature 20\n"));
	assert_non_null(strstr(t, "test_untouched_total 0\n"));
	assert_non_null(strstr(t, "# TYPE process_cpu_seconds_total counter\n"));
	assert_non_null(strstr(t, "process_open_fds "));
	free(t);
	/* invalid names and labels are refused */
	assert_null(metrics_counter("1bad", "x", NULL));
	assert_null(metrics_counter("bad-name", "x", NULL));
	assert_null(metrics_counter("ok_name", "x", "__reserved"));
	assert_null(metrics_histogram("h_bad", "x", "le", NULL, 0));
	assert_null(metrics_counter("too_many", "x", "a,b,c,d,e"));
}

static void t_histogram(void **st)
{
	(void)st;
	metrics_reset();
	static const double bounds[] = {0.1, 1, 10};
	struct metric *h = metrics_histogram("test_latency_seconds", "Latency.", "route", bounds, 3);
	assert_non_null(h);
	metrics_observe(h, 0.05, "/x");
	metrics_observe(h, 0.1, "/x"); /* le is inclusive */
	metrics_observe(h, 5, "/x");
	metrics_observe(h, 50, "/x");
	assert_true(metrics_value("test_latency_seconds", "/x") == 4);
	char *t = render();
	assert_non_null(strstr(t, "# TYPE test_latency_seconds histogram\n"
				  "test_latency_seconds_bucket{route=\"/x\",le=\"0.1\"} 2\n"
				  "test_latency_seconds_bucket{route=\"/x\",le=\"1\"} 2\n"
				  "test_latency_seconds_bucket{route=\"/x\",le=\"10\"} 3\n"
				  "test_latency_seconds_bucket{route=\"/x\",le=\"+Inf\"} 4\n"
				  "test_latency_seconds_sum{route=\"/x\"} 55.15\n"
				  "test_latency_seconds_count{route=\"/x\"} 4\n"));
	free(t);
	static const double unsorted[] = {1, 0.5};
	assert_null(metrics_histogram("test_bad_bounds", "x", NULL, unsorted, 2));
	struct metric *d = metrics_histogram("test_default_seconds", "Default buckets.", NULL, NULL, 0);
	metrics_observe(d, 0.003);
	t = render();
	assert_non_null(strstr(t, "test_default_seconds_bucket{le=\"0.005\"} 1\n"));
	assert_non_null(strstr(t, "test_default_seconds_bucket{le=\"10\"} 1\n"));
	free(t);
}

static double seven(void *arg)
{
	return *(double *)arg;
}

static void t_callbacks_and_cap(void **st)
{
	(void)st;
	metrics_reset();
	double a = 3, b = 4;
	assert_int_equal(metrics_gauge_fn("test_conns", "Connections.", seven, &a), 0);
	assert_int_equal(metrics_gauge_fn("test_conns", "Connections.", seven, &b), 0);
	char *t = render();
	assert_non_null(strstr(t, "# TYPE test_conns gauge\ntest_conns 7\n"));
	free(t);
	metrics_gauge_fn_remove(&a);
	t = render();
	assert_non_null(strstr(t, "test_conns 4\n"));
	free(t);
	metrics_gauge_fn_remove(&b);
	t = render();
	assert_null(strstr(t, "test_conns"));
	free(t);
	struct metric *c = metrics_counter("test_many_total", "Many.", "id");
	char id[16];
	for (int i = 0; i < METRICS_MAX_SERIES + 10; i++) {
		snprintf(id, sizeof id, "%d", i);
		metrics_add(c, 1, id);
	}
	assert_true(metrics_value("test_many_total", "0") == 1);
	snprintf(id, sizeof id, "%d", METRICS_MAX_SERIES + 5);
	assert_true(metrics_value("test_many_total", id) == -1);
	t = render();
	assert_non_null(strstr(t, "clawgrid_metrics_dropped_total 10\n"));
	free(t);
	metrics_reset();
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(t_counter_gauge), cmocka_unit_test(t_histogram),
					   cmocka_unit_test(t_callbacks_and_cap)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
