/* Embedded llama backend benchmark: time to first token and tokens/s through the registry's C API (the
 * path the provider serves), at 1 and 4 concurrent requests, plus the latency of a 64-token answer.
 * Writes the generated model to argv[1] so bench_model.sh can run node-llama-cpp on the very same file.
 * Output: one JSON object per line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "../tests/lib/gguf_gen.c" /* the deterministic test model generator, self-contained */
#include "base/clock.h"
#include "base/log.h"
#include "model/model.h"

#define MAXTOK 64

static struct event_base *base;

struct run {
	int64_t t0, t_first, t_end;
	int tokens, done;
	bool failed;
	char err[320];
};

static void on_chunk(void *arg, json_t *ch)
{
	struct run *r = arg;
	const char *t = json_string_value(
		json_object_get(json_object_get(json_array_get(json_object_get(ch, "choices"), 0), "delta"), "content"));
	if (t && *t && !r->t_first)
		r->t_first = clock_mono_us();
}

static void on_done(void *arg, json_t *resp, const cg_err *e)
{
	struct run *r = arg;
	r->t_end = clock_mono_us();
	r->done = 1;
	if (e) {
		r->failed = true;
		snprintf(r->err, sizeof r->err, "%s", e->msg);
		return;
	}
	r->tokens = (int)json_integer_value(json_object_get(json_object_get(resp, "usage"), "completion_tokens"));
}

static int round_(struct model_registry *reg, int conc, double *ttft_ms, double *tps, double *lat_ms)
{
	static const struct model_chat_cb cb = {on_chunk, on_done};
	struct run r[8];
	memset(r, 0, sizeof r);
	int64_t start = clock_mono_us();
	for (int i = 0; i < conc; i++) {
		json_t *rq = json_pack("{s:s,s:[{s:s,s:s}],s:i,s:f,s:b}", "model", "bench", "messages", "role", "user",
				       "content", "Write a short story about a robot.", "max_tokens", MAXTOK,
				       "temperature", 0.0, "stream", 1);
		cg_err e;
		r[i].t0 = clock_mono_us();
		if (!model_chat_start(reg, rq, &cb, &r[i], &e)) {
			fprintf(stderr, "bench: %s\n", e.msg);
			return -1;
		}
		json_decref(rq);
	}
	for (;;) {
		int d = 0;
		for (int i = 0; i < conc; i++)
			d += r[i].done;
		if (d == conc)
			break;
		event_base_loop(base, EVLOOP_ONCE);
	}
	int64_t end = clock_mono_us();
	double ttft = 0, lat = 0;
	int toks = 0;
	for (int i = 0; i < conc; i++) {
		if (r[i].failed) {
			fprintf(stderr, "bench: %s\n", r[i].err);
			return -1;
		}
		ttft += (double)(r[i].t_first - r[i].t0) / 1000.0;
		lat += (double)(r[i].t_end - r[i].t0) / 1000.0;
		toks += r[i].tokens;
	}
	*ttft_ms = ttft / conc;
	*lat_ms = lat / conc;
	*tps = toks / ((double)(end - start) / 1e6); /* aggregate generated tokens per second */
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_model MODEL_OUT.gguf [rounds]\n");
		return 2;
	}
	int rounds = argc > 2 ? atoi(argv[2]) : 5;
	log_set_level(LOG_WARN);
	/* A bigger sibling of the test model (E=256, 4 blocks: about 11 MB) so the numbers measure inference. */
	struct gguf_gen_opts o = {.embd = 256, .layers = 4, .heads = 8, .ctx = 1024};
	char dir[] = "/tmp/cg-bench-model-XXXXXX";
	if (!mkdtemp(dir))
		return 1;
	char models[64], path[128];
	snprintf(models, sizeof models, "%s/models", dir);
	mkdir(models, 0700);
	snprintf(path, sizeof path, "%s/bench.gguf", models);
	if (gguf_gen_write(path, &o) != 0 || gguf_gen_write(argv[1], &o) != 0) {
		perror("bench: writing the model");
		return 1;
	}
	base = event_base_new();
	json_t *cfg = json_pack("{s:i,s:i,s:i}", "slots", 4, "contextPerSlot", 256, "queue", 8);
	if (getenv("BENCH_THREADS")) /* default: the registry's own rule (one per slot, at most the cores) */
		json_object_set_new(cfg, "threads", json_integer(atoi(getenv("BENCH_THREADS"))));
	struct model_registry *reg;
	cg_err e;
	if (model_registry_new(base, cfg, dir, &reg, &e) != 0) {
		fprintf(stderr, "bench: %s\n", e.msg);
		return 1;
	}
	json_decref(cfg);
	int64_t t = clock_mono_us();
	double ttft, tps, lat;
	if (round_(reg, 1, &ttft, &tps, &lat) != 0) { /* warm-up: loads the model */
		printf("{\"engine\":\"clawgrid\",\"skipped\":true}\n");
		return 77;
	}
	printf("{\"engine\":\"clawgrid\",\"load_and_first_ms\":%.1f}\n", (double)(clock_mono_us() - t) / 1000.0);
	for (int conc = 1; conc <= 4; conc += 3) {
		double s_ttft = 0, s_tps = 0, s_lat = 0;
		for (int i = 0; i < rounds; i++) {
			if (round_(reg, conc, &ttft, &tps, &lat) != 0)
				return 1;
			s_ttft += ttft;
			s_tps += tps;
			s_lat += lat;
		}
		printf("{\"engine\":\"clawgrid\",\"concurrency\":%d,\"ttft_ms\":%.2f,\"tokens_per_s\":%.1f,"
		       "\"latency_64_ms\":%.1f}\n",
		       conc, s_ttft / rounds, s_tps / rounds, s_lat / rounds);
	}
	model_registry_free(reg);
	event_base_free(base);
	char cmd[96];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : 1;
}
