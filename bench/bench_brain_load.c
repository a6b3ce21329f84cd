/* bench_brain_load — the one load tool of bench/bench_brain.sh, used the same way against the upstream
 * directly, the clawgrid gateway and Portkey's gateway: CONC connections in a closed loop (each sends its next
 * streamed chat request as soon as the previous answer is complete) for SECONDS after a short warm-up, with
 * libcurl multi on one thread. A request counts as ok only with status 200 and a body that ends in
 * "data: [DONE]". Prints one JSON line: requests, errors, rps, and p50/p99 of time to first byte and of the
 * whole request, in ms.
 * Usage: bench_brain_load URL CONC SECONDS [HEADER...] */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#define BODY "{\"model\":\"bench\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hello bench\"}]}"

struct slot {
	CURL *h;
	char tail[16]; /* the last bytes seen, to check for [DONE] */
	size_t tl;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
	struct slot *s = arg;
	size_t len = sz * n;
	/* Keep the last 15 bytes of the stream. */
	char buf[32];
	size_t keep = s->tl;
	memcpy(buf, s->tail, keep);
	size_t add = len < 15 ? len : 15;
	memcpy(buf + keep, p + len - add, add);
	size_t tot = keep + add;
	size_t from = tot > 15 ? tot - 15 : 0;
	memcpy(s->tail, buf + from, tot - from);
	s->tl = tot - from;
	s->tail[s->tl] = 0;
	return len;
}

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
	if (!n)
		return 0;
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i];
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s URL CONC SECONDS [HEADER...]\n", argv[0]);
		return 2;
	}
	const char *url = argv[1];
	int conc = 0;
	if (sscanf(argv[2], "%d", &conc) != 1)
		return 2;
	double secs = atof(argv[3]);
	if (conc < 1 || conc > 20000 || secs <= 0)
		return 2;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
	for (int i = 4; i < argc; i++)
		hl = curl_slist_append(hl, argv[i]);
	CURLM *m = curl_multi_init();
	curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)conc + 16);
	struct slot *slots = calloc((size_t)conc, sizeof *slots);
	size_t cap = 1 << 20, n = 0;
	double *ttfb = malloc(cap * sizeof *ttfb), *tot = malloc(cap * sizeof *tot);
	long errors = 0;
	double t0 = now_s(), warm = t0 + (secs < 2 ? 0.3 : 1.0), end = warm + secs;
	for (int i = 0; i < conc; i++) {
		struct slot *s = &slots[i];
		s->h = curl_easy_init();
		curl_easy_setopt(s->h, CURLOPT_URL, url);
		curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, hl);
		curl_easy_setopt(s->h, CURLOPT_POSTFIELDS, BODY);
		curl_easy_setopt(s->h, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(s->h, CURLOPT_WRITEDATA, s);
		curl_easy_setopt(s->h, CURLOPT_PRIVATE, s);
		curl_easy_setopt(s->h, CURLOPT_TIMEOUT, 60L);
		curl_easy_setopt(s->h, CURLOPT_TCP_NODELAY, 1L);
		curl_multi_add_handle(m, s->h);
	}
	int running = conc;
	double last = now_s();
	while (running > 0) {
		curl_multi_perform(m, &running);
		CURLMsg *msg;
		int left;
		double t = now_s();
		last = t;
		while ((msg = curl_multi_info_read(m, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			struct slot *s;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
			long code = 0;
			curl_off_t st = 0, tt = 0;
			curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &code);
			curl_easy_getinfo(s->h, CURLINFO_STARTTRANSFER_TIME_T, &st);
			curl_easy_getinfo(s->h, CURLINFO_TOTAL_TIME_T, &tt);
			bool ok = msg->data.result == CURLE_OK && code == 200 && strstr(s->tail, "[DONE]");
			if (t >= warm && t < end) {
				if (!ok)
					errors++;
				else if (n < cap) {
					ttfb[n] = (double)st / 1000.0;
					tot[n] = (double)tt / 1000.0;
					n++;
				}
			}
			curl_multi_remove_handle(m, s->h);
			s->tl = 0;
			s->tail[0] = 0;
			if (t < end) {
				curl_multi_add_handle(m, s->h);
				running++;
			}
		}
		if (running > 0)
			curl_multi_poll(m, NULL, 0, 10, NULL);
	}
	(void)last;
	qsort(ttfb, n, sizeof *ttfb, cmpd);
	qsort(tot, n, sizeof *tot, cmpd);
	printf("{\"conc\":%d,\"requests\":%zu,\"errors\":%ld,\"rps\":%.1f,\"ttfb_p50_ms\":%.3f,\"ttfb_p99_ms\":%.3f,"
	       "\"total_p50_ms\":%.3f,\"total_p99_ms\":%.3f}\n",
	       conc, n, errors, (double)n / secs, pct(ttfb, n, 0.5), pct(ttfb, n, 0.99), pct(tot, n, 0.5),
	       pct(tot, n, 0.99));
	for (int i = 0; i < conc; i++) {
		curl_multi_remove_handle(m, slots[i].h);
		curl_easy_cleanup(slots[i].h);
	}
	curl_multi_cleanup(m);
	curl_slist_free_all(hl);
	free(slots);
	free(ttfb);
	free(tot);
	curl_global_cleanup();
	return 0;
}
