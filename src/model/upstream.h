/* upstream — the `openai` backend: an OpenAI-compatible inference engine beside the node (llama.cpp's
 * llama-server, vLLM, Ollama) reached by URL through libcurl multi on the node's loop. Internal to
 * src/model/ (prefix up_).
 *
 * Health comes from the engine's own endpoints, polled periodically: llama-server /health (503 while the
 * model loads) and /metrics (requests_processing / requests_deferred), vLLM /health and /metrics
 * (num_requests_running / num_requests_waiting), Ollama /api/version and /api/ps plus its 503 "server busy"
 * replies. The registry admits work only while the engine is `ok`. */
#ifndef CG_MODEL_UPSTREAM_H
#define CG_MODEL_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>
#include <jansson.h>

#include "base/err.h"

enum up_kind { UP_LLAMA_SERVER, UP_VLLM, UP_OLLAMA };
enum up_state { UP_UNKNOWN, UP_OK, UP_LOADING, UP_FULL, UP_DOWN };

struct up_health {
	enum up_state state;
	long running, waiting; /* -1 when the engine does not say */
	char detail[160];
};

/* Pure health rule. http status 0 = unreachable; bodies may be NULL. max_concurrent: the configured number
 * of requests the engine takes at once; max_waiting: queued requests tolerated before it counts as full. */
void up_health_eval(enum up_kind kind, int health_status, const char *health_body, int metrics_status,
		    const char *metrics_body, long max_concurrent, long max_waiting, struct up_health *out);
/* Value of the first sample of a Prometheus metric (name without labels, e.g. "vllm:num_requests_waiting";
 * labelled samples are summed). Returns -1 when absent. */
double up_metric(const char *text, const char *name);
const char *up_state_name(enum up_state s);
int up_kind_parse(const char *s); /* "llama-server"|"vllm"|"ollama" -> kind, -1 */

struct up_engine;
struct up_req;

struct up_cb {
	void (*on_chunk)(void *arg, json_t *chunk);           /* streaming: a parsed chunk (borrowed) */
	void (*on_done)(void *arg, json_t *resp, const cg_err *e); /* non-stream body, or NULL after a stream */
};

/* cfg: a validated engine object {name, kind, url, apiKey?, maxConcurrent, maxWaiting, healthIntervalMs}. */
int up_engine_new(struct event_base *base, json_t *cfg, struct up_engine **out, cg_err *e);
void up_engine_free(struct up_engine *u); /* pending requests end without callbacks */
const char *up_engine_name(const struct up_engine *u);
/* 0 when the engine takes work now; else E_UNAVAILABLE with Retry-After and the reason. */
int up_engine_admit(struct up_engine *u, cg_err *e);
json_t *up_engine_status(struct up_engine *u); /* {name, kind, state, running, waiting, detail} */
/* Forwards an OpenAI chat request (borrowed; "model" already the engine's name). */
struct up_req *up_chat(struct up_engine *u, json_t *request, bool stream, const struct up_cb *cb, void *arg,
		       cg_err *e);
void up_cancel(struct up_req *r);

#endif
