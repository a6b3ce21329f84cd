/* metrics — the process-wide Prometheus registry, rendered as text exposition format 0.0.4 at /metrics.
 *
 * Families are created once (by name; asking again with the same name and kind returns the same family)
 * and live until metrics_reset(). Label names are given as one comma-separated string ("route,status");
 * values are passed in the same order on every update. Each family holds at most METRICS_MAX_SERIES label
 * combinations; updates beyond that are dropped and counted in clawgrid_metrics_dropped_total.
 *
 *   static struct metric *m;
 *   if (!m) m = metrics_counter("clawgrid_leases_issued_total", "Leases issued.", "kind");
 *   metrics_add(m, 1, "model");
 *
 * Gauges whose value lives elsewhere are read through a callback at render time (metrics_gauge_fn); the
 * callback is removed with metrics_gauge_fn_remove(arg) before arg dies. Several callbacks may feed the
 * same name: their values are summed. Thread-safe (one mutex); callbacks run under it, so they must not
 * call back into metrics. */
#ifndef CG_BASE_METRICS_H
#define CG_BASE_METRICS_H

#include <stddef.h>

#include "base/buf.h"

#define METRICS_MAX_SERIES 2000
#define METRICS_MAX_LABELS 4

struct metric;

/* Returns the family, or NULL (bad name, label count, or same name with another kind: logged). */
struct metric *metrics_counter(const char *name, const char *help, const char *labels);
struct metric *metrics_gauge(const char *name, const char *help, const char *labels);
/* bounds: ascending upper bounds, without +Inf; NULL = the default latency buckets (5 ms .. 10 s). */
struct metric *metrics_histogram(const char *name, const char *help, const char *labels, const double *bounds,
				 size_t nbounds);

/* Counter: adds v (>= 0). Gauge: adds v (any sign). Label values follow; pass exactly as many as declared. */
void metrics_add(struct metric *m, double v, ...);
/* Gauge: sets the value. */
void metrics_set(struct metric *m, double v, ...);
/* Histogram: records one observation. */
void metrics_observe(struct metric *m, double v, ...);

/* Callback gauge without labels. Returns 0 or -1. */
int metrics_gauge_fn(const char *name, const char *help, double (*fn)(void *arg), void *arg);
/* Removes every callback registered with this arg. */
void metrics_gauge_fn_remove(void *arg);

/* Appends the whole registry, process metrics first, in text format 0.0.4. 0 or -1 (buffer cap). */
int metrics_render(buf *out);
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Reads a sample back (tests): the value of a counter/gauge series or a histogram's count; -1 if absent. */
double metrics_value(const char *name, ...);
/* Drops every family and callback (tests); family pointers obtained earlier become invalid. */
void metrics_reset(void);

#endif
