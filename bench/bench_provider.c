/* bench_provider — the two programs behind bench/bench_provider.sh:
 *
 *   bench_provider upstream           a fast OpenAI streaming upstream: the C TEST DOUBLE of tests/lib on one
 *                                     libevent loop; prints "ready PORT"
 *   bench_provider load URL CONC TOTAL TOKENS [TOKEN LEASE] [PACE_MS]
 *                                     TOTAL streamed chat completions of TOKENS words, CONC at a time, through
 *                                     libcurl multi on libevent (the provider's own client code); with a lease
 *                                     token it calls a provider route. Prints one line:
 *                                     "conc N ok N err N ttft_p50_us X ttft_p90_us X tok_us X"
 *                                     tok_us = mean time between tokens after the first; PACE_MS > 0 makes the
 *                                     upstream wait that long between tokens (as a real engine does). The line
 *                                     "holding" is printed once all CONC streams are open at the same time
 *                                     (memory measurements). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "base/clock.h"
#include "http/client.h"

#include "../tests/lib/oai_double.c"

struct load {
	struct event_base *base;
	struct hc *hc;
	const char *url;
	char body[256];
	const char *headers[6];
	int conc, total, started, finished, ok, err, open, hold_printed;
	int64_t *ttft, *tok;
	int nt;
};

struct one {
	struct load *l;
	int64_t t0, t_first, t_last;
	int pieces;
};

static void start_one(struct load *l);

static int on_data(void *arg, const char *p, size_t n)
{
	struct one *o = arg;
	int64_t now = clock_mono_us();
	if (!o->t_first && memmem(p, n, "\"content\":\"w", 12)) {
		o->t_first = now;
		struct load *l = o->l;
		if (++l->open == l->conc && !l->hold_printed) {
			l->hold_printed = 1;
			printf("holding\n");
			fflush(stdout);
		}
	}
	o->t_last = now;
	o->pieces++;
	return 0;
}

static void on_done(void *arg, long status, const char *body, size_t n, const cg_err *e)
{
	struct one *o = arg;
	struct load *l = o->l;
	l->finished++;
	if (o->t_first)
		l->open--;
	if (!e && status == 200 && o->t_first) {
		l->ok++;
		l->ttft[l->nt] = o->t_first - o->t0;
		l->tok[l->nt] = o->t_last - o->t_first;
		l->nt++;
	} else {
		l->err++;
	}
	free(o);
	if (l->started < l->total)
		start_one(l);
	else if (l->finished == l->total)
		event_base_loopbreak(l->base);
}

static void start_one(struct load *l)
{
	static const struct hc_cb cb = {NULL, on_data, on_done};
	struct one *o = calloc(1, sizeof *o);
	o->l = l;
	o->t0 = clock_mono_us();
	struct hc_opts ho = {.method = "POST", .url = l->url, .headers = l->headers, .body = l->body,
			     .body_len = strlen(l->body), .stream = true, .total_timeout_ms = 300000};
	cg_err e;
	l->started++;
	if (!hc_start(l->hc, &ho, &cb, o, &e)) {
		fprintf(stderr, "bench_provider: %s\n", e.msg);
		exit(1);
	}
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int num(const char *s)
{
	int v = 0;
	for (; *s >= '0' && *s <= '9' && v < 10000000; s++)
		v = v * 10 + (*s - '0');
	return *s ? -1 : v;
}

static int load_main(int argc, char **argv)
{
	struct load l = {0};
	l.url = argv[2];
	l.conc = num(argv[3]);
	l.total = num(argv[4]);
	int tokens = num(argv[5]);
	int slow = argc > 8 ? num(argv[8]) : 0;
	if (l.conc < 1 || l.total < l.conc || tokens < 2 || slow < 0)
		return 2;
	snprintf(l.body, sizeof l.body,
		 "{\"model\":\"bench\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":"
		 "\"hello [double:tokens=%d] [double:slow=%d]\"}]}",
		 tokens, slow);
	char auth[256] = "", lease[128] = "";
	int nh = 0;
	l.headers[nh++] = "Content-Type: application/json";
	if (argc > 7 && *argv[6]) {
		snprintf(auth, sizeof auth, "Authorization: Bearer %s", argv[6]);
		snprintf(lease, sizeof lease, "X-OpenClaw-Lease: %s", argv[7]);
		l.headers[nh++] = auth;
		l.headers[nh++] = lease;
	}
	l.headers[nh] = NULL;
	l.ttft = calloc((size_t)l.total, sizeof *l.ttft);
	l.tok = calloc((size_t)l.total, sizeof *l.tok);
	l.base = event_base_new();
	cg_err e;
	if (hc_new(l.base, &l.hc, &e) < 0)
		return 1;
	for (int i = 0; i < l.conc; i++)
		start_one(&l);
	event_base_dispatch(l.base);
	hc_free(l.hc);
	event_base_free(l.base);
	if (l.nt == 0) {
		printf("conc %d ok 0 err %d\n", l.conc, l.err);
		return 1;
	}
	qsort(l.ttft, (size_t)l.nt, sizeof *l.ttft, cmp64);
	double tok_sum = 0;
	for (int i = 0; i < l.nt; i++)
		tok_sum += (double)l.tok[i] / (tokens - 1);
	printf("conc %d ok %d err %d ttft_p50_us %lld ttft_p90_us %lld tok_us %.2f\n", l.conc, l.ok, l.err,
	       (long long)l.ttft[l.nt / 2], (long long)l.ttft[l.nt * 9 / 10], tok_sum / l.nt);
	free(l.ttft);
	free(l.tok);
	return l.err ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "upstream")) {
		struct event_base *base = event_base_new();
		struct oai_double_opts o = {.tokens = 32, .usage = OAI_USAGE_ASKED};
		struct oai_double *d = oai_double_attach(base, &o);
		if (!d)
			return 1;
		printf("ready %d\n", oai_double_port(d));
		fflush(stdout);
		event_base_dispatch(base);
		return 0;
	}
	if (argc >= 6 && !strcmp(argv[1], "load"))
		return load_main(argc, argv);
	fprintf(stderr, "usage: bench_provider upstream | load URL CONC TOTAL TOKENS [TOKEN LEASE] [PACE_MS]\n");
	return 2;
}
