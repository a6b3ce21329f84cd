#include "base/metrics.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"

#define NBUCKETS 256      /* hash buckets per family; series are few (route x status) */
#define KEY_MAX 640       /* label values joined; each value is capped at VAL_MAX */
#define VAL_MAX 128

enum kind { K_COUNTER, K_GAUGE, K_HIST };
static const char *const kind_name[] = {"counter", "gauge", "histogram"};

struct series {
	char *key;
	char *vals[METRICS_MAX_LABELS];
	double v;           /* counter / gauge value */
	double sum;         /* histogram */
	uint64_t count;     /* histogram */
	uint64_t *buckets;  /* histogram: per-bound counts (not cumulative) */
	struct series *hnext, *onext;
};

struct metric {
	char *name, *help;
	enum kind kind;
	int nlabels;
	char *labels[METRICS_MAX_LABELS];
	double *bounds;
	size_t nb;
	struct series *tab[NBUCKETS];
	struct series *first, *last; /* insertion order, for stable output */
	size_t nseries;
	struct metric *next;
};

struct gauge_cb {
	char *name, *help;
	double (*fn)(void *arg);
	void *arg;
	struct gauge_cb *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct metric *families, *families_last;
static struct gauge_cb *gauges;
static double dropped;

static const double default_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

static bool valid_name(const char *s, bool label)
{
	if (!s || !*s || (!isalpha((unsigned char)*s) && *s != '_' && (label || *s != ':')))
		return false;
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && (label || *p != ':'))
			return false;
	return !(label && strncmp(s, "__", 2) == 0);
}

static void series_free(struct series *s)
{
	for (int i = 0; i < METRICS_MAX_LABELS; i++)
		free(s->vals[i]);
	free(s->buckets);
	free(s->key);
	free(s);
}

static void family_free(struct metric *m)
{
	struct series *s = m->first;
	while (s) {
		struct series *n = s->onext;
		series_free(s);
		s = n;
	}
	for (int i = 0; i < m->nlabels; i++)
		free(m->labels[i]);
	free(m->bounds);
	free(m->name);
	free(m->help);
	free(m);
}

/* Splits "a,b" into m->labels. -1 when a name is invalid or there are too many. */
static int parse_labels(struct metric *m, const char *labels)
{
	if (!labels || !*labels)
		return 0;
	const char *p = labels;
	while (*p) {
		const char *c = strchr(p, ',');
		size_t n = c ? (size_t)(c - p) : strlen(p);
		if (m->nlabels == METRICS_MAX_LABELS || n == 0 || n > 64)
			return -1;
		char name[65];
		memcpy(name, p, n);
		name[n] = 0;
		if (!valid_name(name, true) || (m->kind == K_HIST && strcmp(name, "le") == 0))
			return -1;
		if (!(m->labels[m->nlabels++] = strdup(name)))
			return -1;
		p = c ? c + 1 : p + n;
	}
	return 0;
}

static struct metric *find_family(const char *name)
{
	for (struct metric *m = families; m; m = m->next)
		if (strcmp(m->name, name) == 0)
			return m;
	return NULL;
}

static struct metric *family(const char *name, const char *help, const char *labels, enum kind kind,
			     const double *bounds, size_t nb)
{
	if (!valid_name(name, false)) {
		log_error("metrics", "invalid metric name", "name=%s", name ? name : "");
		return NULL;
	}
	pthread_mutex_lock(&mu);
	struct metric *m = find_family(name);
	if (m) {
		pthread_mutex_unlock(&mu);
		if (m->kind != kind) {
			log_error("metrics", "metric registered with two kinds", "name=%s", name);
			return NULL;
		}
		return m;
	}
	m = calloc(1, sizeof *m);
	if (!m)
		goto fail;
	m->kind = kind;
	m->name = strdup(name);
	m->help = strdup(help ? help : "");
	if (!m->name || !m->help || parse_labels(m, labels) < 0)
		goto fail;
	if (kind == K_HIST) {
		if (!bounds) {
			bounds = default_bounds;
			nb = sizeof default_bounds / sizeof default_bounds[0];
		}
		for (size_t i = 1; i < nb; i++)
			if (!(bounds[i] > bounds[i - 1]))
				goto fail;
		m->bounds = malloc((nb ? nb : 1) * sizeof(double));
		if (!m->bounds)
			goto fail;
		memcpy(m->bounds, bounds, nb * sizeof(double));
		m->nb = nb;
	}
	if (families_last)
		families_last->next = m;
	else
		families = m;
	families_last = m;
	pthread_mutex_unlock(&mu);
	return m;
fail:
	pthread_mutex_unlock(&mu);
	log_error("metrics", "cannot register metric", "name=%s", name);
	if (m)
		family_free(m);
	return NULL;
}

struct metric *metrics_counter(const char *name, const char *help, const char *labels)
{
	return family(name, help, labels, K_COUNTER, NULL, 0);
}

struct metric *metrics_gauge(const char *name, const char *help, const char *labels)
{
	return family(name, help, labels, K_GAUGE, NULL, 0);
}

struct metric *metrics_histogram(const char *name, const char *help, const char *labels, const double *bounds,
				 size_t nbounds)
{
	return family(name, help, labels, K_HIST, bounds, nbounds);
}

static uint32_t hash(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

/* Finds or creates the series for the label values in ap. Caller holds mu. NULL when full or OOM. */
static struct series *series_get(struct metric *m, va_list ap)
{
	const char *vals[METRICS_MAX_LABELS];
	char key[KEY_MAX];
	size_t kn = 0;
	key[0] = 0;
	for (int i = 0; i < m->nlabels; i++) {
		vals[i] = va_arg(ap, const char *);
		if (!vals[i])
			vals[i] = "";
		/* Length-prefixed so that no value can make two label sets collide. */
		int w = snprintf(key + kn, sizeof key - kn, "%zu:%.*s;", strnlen(vals[i], VAL_MAX), VAL_MAX, vals[i]);
		if (w > 0 && (size_t)w < sizeof key - kn)
			kn += (size_t)w;
	}
	uint32_t h = hash(key) % NBUCKETS;
	for (struct series *s = m->tab[h]; s; s = s->hnext)
		if (strcmp(s->key, key) == 0)
			return s;
	if (m->nseries >= METRICS_MAX_SERIES) {
		dropped++;
		return NULL;
	}
	struct series *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->key = strdup(key);
	bool ok = s->key != NULL;
	for (int i = 0; i < m->nlabels && ok; i++)
		ok = (s->vals[i] = strndup(vals[i], VAL_MAX)) != NULL;
	if (ok && m->kind == K_HIST)
		ok = (s->buckets = calloc(m->nb ? m->nb : 1, sizeof(uint64_t))) != NULL;
	if (!ok) {
		series_free(s);
		return NULL;
	}
	s->hnext = m->tab[h];
	m->tab[h] = s;
	if (m->last)
		m->last->onext = s;
	else
		m->first = s;
	m->last = s;
	m->nseries++;
	return s;
}

void metrics_add(struct metric *m, double v, ...)
{
	if (!m || m->kind == K_HIST || (m->kind == K_COUNTER && !(v >= 0)))
		return;
	va_list ap;
	va_start(ap, v);
	pthread_mutex_lock(&mu);
	struct series *s = series_get(m, ap);
	if (s)
		s->v += v;
	pthread_mutex_unlock(&mu);
	va_end(ap);
}

void metrics_set(struct metric *m, double v, ...)
{
	if (!m || m->kind != K_GAUGE)
		return;
	va_list ap;
	va_start(ap, v);
	pthread_mutex_lock(&mu);
	struct series *s = series_get(m, ap);
	if (s)
		s->v = v;
	pthread_mutex_unlock(&mu);
	va_end(ap);
}

void metrics_observe(struct metric *m, double v, ...)
{
	if (!m || m->kind != K_HIST || isnan(v))
		return;
	va_list ap;
	va_start(ap, v);
	pthread_mutex_lock(&mu);
	struct series *s = series_get(m, ap);
	if (s) {
		s->count++;
		s->sum += v;
		for (size_t i = 0; i < m->nb; i++)
			if (v <= m->bounds[i]) {
				s->buckets[i]++;
				break;
			}
	}
	pthread_mutex_unlock(&mu);
	va_end(ap);
}

int metrics_gauge_fn(const char *name, const char *help, double (*fn)(void *arg), void *arg)
{
	if (!valid_name(name, false) || !fn)
		return -1;
	struct gauge_cb *g = calloc(1, sizeof *g);
	if (!g)
		return -1;
	g->name = strdup(name);
	g->help = strdup(help ? help : "");
	if (!g->name || !g->help) {
		free(g->name);
		free(g->help);
		free(g);
		return -1;
	}
	g->fn = fn;
	g->arg = arg;
	pthread_mutex_lock(&mu);
	struct gauge_cb **pp = &gauges;
	while (*pp)
		pp = &(*pp)->next;
	*pp = g;
	pthread_mutex_unlock(&mu);
	return 0;
}

void metrics_gauge_fn_remove(void *arg)
{
	pthread_mutex_lock(&mu);
	struct gauge_cb **pp = &gauges;
	while (*pp) {
		struct gauge_cb *g = *pp;
		if (g->arg == arg) {
			*pp = g->next;
			free(g->name);
			free(g->help);
			free(g);
		} else {
			pp = &g->next;
		}
	}
	pthread_mutex_unlock(&mu);
}

/* ---- rendering ---- */

static void fmt_num(char *out, size_t cap, double v)
{
	if (isnan(v)) {
		snprintf(out, cap, "NaN");
	} else if (isinf(v)) {
		snprintf(out, cap, v > 0 ? "+Inf" : "-Inf");
	} else {
		/* Shortest of %.15g / %.17g that reads back exactly. */
		snprintf(out, cap, "%.15g", v);
		if (strtod(out, NULL) != v)
			snprintf(out, cap, "%.17g", v);
	}
}

static int put_escaped(buf *b, const char *s, bool quote)
{
	for (; *s; s++) {
		int r;
		if (*s == '\\')
			r = buf_append(b, "\\\\", 2);
		else if (*s == '\n')
			r = buf_append(b, "\\n", 2);
		else if (*s == '"' && quote)
			r = buf_append(b, "\\\"", 2);
		else
			r = buf_putc(b, (uint8_t)*s);
		if (r < 0)
			return -1;
	}
	return 0;
}

static int put_header(buf *b, const char *name, const char *help, const char *kind)
{
	if (buf_printf(b, "# HELP %s ", name) < 0 || put_escaped(b, help, false) < 0 ||
	    buf_printf(b, "\n# TYPE %s %s\n", name, kind) < 0)
		return -1;
	return 0;
}

/* name{l1="v1",...[,le="x"]} value\n */
static int put_sample(buf *b, const char *name, const char *suffix, const struct metric *m,
		      const struct series *s, const char *le, double v)
{
	char num[40];
	if (buf_printf(b, "%s%s", name, suffix) < 0)
		return -1;
	int nl = m ? m->nlabels : 0;
	if (nl || le) {
		if (buf_putc(b, '{') < 0)
			return -1;
		for (int i = 0; i < nl; i++) {
			if (buf_printf(b, "%s%s=\"", i ? "," : "", m->labels[i]) < 0 ||
			    put_escaped(b, s->vals[i], true) < 0 || buf_putc(b, '"') < 0)
				return -1;
		}
		if (le && buf_printf(b, "%sle=\"%s\"", nl ? "," : "", le) < 0)
			return -1;
		if (buf_putc(b, '}') < 0)
			return -1;
	}
	fmt_num(num, sizeof num, v);
	return buf_printf(b, " %s\n", num);
}

static int render_family(buf *b, const struct metric *m)
{
	if (put_header(b, m->name, m->help, kind_name[m->kind]) < 0)
		return -1;
	if (m->nlabels == 0 && !m->first && m->kind != K_HIST) {
		/* An unlabelled counter or gauge that was never touched still reads 0. */
		return put_sample(b, m->name, "", NULL, NULL, NULL, 0);
	}
	for (const struct series *s = m->first; s; s = s->onext) {
		if (m->kind != K_HIST) {
			if (put_sample(b, m->name, "", m, s, NULL, s->v) < 0)
				return -1;
			continue;
		}
		uint64_t cum = 0;
		char le[40];
		for (size_t i = 0; i < m->nb; i++) {
			cum += s->buckets[i];
			fmt_num(le, sizeof le, m->bounds[i]);
			if (put_sample(b, m->name, "_bucket", m, s, le, (double)cum) < 0)
				return -1;
		}
		if (put_sample(b, m->name, "_bucket", m, s, "+Inf", (double)s->count) < 0 ||
		    put_sample(b, m->name, "_sum", m, s, NULL, s->sum) < 0 ||
		    put_sample(b, m->name, "_count", m, s, NULL, (double)s->count) < 0)
			return -1;
	}
	return 0;
}

/* Reads a small /proc file into buf. */
static ssize_t read_small(const char *path, char *out, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, out, cap - 1);
	close(fd);
	if (n < 0)
		return -1;
	out[n] = 0;
	return n;
}

static double process_start_time(void)
{
	static double start;
	if (start > 0)
		return start;
	char st[1024], ps[4096];
	long hz = sysconf(_SC_CLK_TCK);
	if (hz > 0 && read_small("/proc/self/stat", st, sizeof st) > 0 && read_small("/proc/stat", ps, sizeof ps) > 0) {
		/* Field 22 (starttime, in ticks since boot) counts from after the ")" that ends the comm field. */
		const char *p = strrchr(st, ')');
		const char *bt = strstr(ps, "btime ");
		if (p && bt) {
			p += 2; /* field 3 */
			for (int f = 3; f < 22 && p; f++) {
				p = strchr(p, ' ');
				if (p)
					p++;
			}
			if (p) {
				double ticks = strtod(p, NULL);
				double boot = strtod(bt + 6, NULL);
				start = boot + ticks / (double)hz;
				return start;
			}
		}
	}
	start = (double)time(NULL);
	return start;
}

static int render_process(buf *b)
{
	struct rusage ru;
	double cpu = 0, rss = 0, vsz = 0, fds = 0, maxfds = 0;
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
		      (double)ru.ru_stime.tv_usec / 1e6;
	char statm[256];
	if (read_small("/proc/self/statm", statm, sizeof statm) > 0) {
		double pages_v = 0, pages_r = 0;
		if (sscanf(statm, "%lf %lf", &pages_v, &pages_r) == 2) {
			double ps = (double)sysconf(_SC_PAGESIZE);
			vsz = pages_v * ps;
			rss = pages_r * ps;
		}
	}
	DIR *d = opendir("/proc/self/fd");
	if (d) {
		struct dirent *de;
		while ((de = readdir(d)))
			if (de->d_name[0] != '.')
				fds++;
		closedir(d);
		fds--; /* the directory's own descriptor */
	}
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		maxfds = rl.rlim_cur == RLIM_INFINITY ? INFINITY : (double)rl.rlim_cur;
	struct {
		const char *name, *help, *kind;
		double v;
	} p[] = {
		{"process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", "counter", cpu},
		{"process_resident_memory_bytes", "Resident memory size in bytes.", "gauge", rss},
		{"process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge", vsz},
		{"process_open_fds", "Number of open file descriptors.", "gauge", fds},
		{"process_max_fds", "Maximum number of open file descriptors.", "gauge", maxfds},
		{"process_start_time_seconds", "Start time of the process since unix epoch in seconds.", "gauge",
		 process_start_time()},
	};
	for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
		if (put_header(b, p[i].name, p[i].help, p[i].kind) < 0 ||
		    put_sample(b, p[i].name, "", NULL, NULL, NULL, p[i].v) < 0)
			return -1;
	return 0;
}

int metrics_render(buf *out)
{
	process_start_time(); /* outside the lock: reads /proc once */
	if (render_process(out) < 0)
		return -1;
	int r = 0;
	pthread_mutex_lock(&mu);
	for (struct metric *m = families; m && r == 0; m = m->next)
		r = render_family(out, m);
	/* Callback gauges, one sample per name (summed over its callbacks), in registration order. */
	for (struct gauge_cb *g = gauges; g && r == 0; g = g->next) {
		bool seen = false;
		for (struct gauge_cb *h = gauges; h != g && !seen; h = h->next)
			seen = strcmp(h->name, g->name) == 0;
		if (seen)
			continue;
		double sum = 0;
		for (struct gauge_cb *h = g; h; h = h->next)
			if (strcmp(h->name, g->name) == 0)
				sum += h->fn(h->arg);
		if (put_header(out, g->name, g->help, "gauge") < 0 ||
		    put_sample(out, g->name, "", NULL, NULL, NULL, sum) < 0)
			r = -1;
	}
	if (r == 0 && (put_header(out, "clawgrid_metrics_dropped_total",
				  "Metric updates dropped because a family reached its series limit.", "counter") < 0 ||
		       put_sample(out, "clawgrid_metrics_dropped_total", "", NULL, NULL, NULL, dropped) < 0))
		r = -1;
	pthread_mutex_unlock(&mu);
	return r;
}

double metrics_value(const char *name, ...)
{
	double v = -1;
	va_list ap;
	va_start(ap, name);
	pthread_mutex_lock(&mu);
	struct metric *m = find_family(name);
	if (m) {
		const char *vals[METRICS_MAX_LABELS];
		for (int i = 0; i < m->nlabels; i++)
			vals[i] = va_arg(ap, const char *);
		for (struct series *s = m->first; s; s = s->onext) {
			bool eq = true;
			for (int i = 0; i < m->nlabels && eq; i++)
				eq = strncmp(s->vals[i], vals[i] ? vals[i] : "", VAL_MAX) == 0;
			if (eq) {
				v = m->kind == K_HIST ? (double)s->count : s->v;
				break;
			}
		}
		if (!m->first && m->nlabels == 0 && m->kind != K_HIST)
			v = 0;
	}
	pthread_mutex_unlock(&mu);
	va_end(ap);
	return v;
}

void metrics_reset(void)
{
	pthread_mutex_lock(&mu);
	struct metric *m = families;
	while (m) {
		struct metric *n = m->next;
		family_free(m);
		m = n;
	}
	families = families_last = NULL;
	struct gauge_cb *g = gauges;
	while (g) {
		struct gauge_cb *n = g->next;
		free(g->name);
		free(g->help);
		free(g);
		g = n;
	}
	gauges = NULL;
	dropped = 0;
	pthread_mutex_unlock(&mu);
}
