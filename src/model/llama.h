/* llama — the embedded llama.cpp backend: the run-time loaded library and one inference engine per loaded
 * model. Internal to src/model/ (prefix llm_); the registry (model.h) is the public face.
 *
 * Runtime: libllama/libggml are dlopen'ed from the prebuilt node-llama-cpp packages (scripts/llama-deps.sh),
 * CPU variants picked by ggml_backend_load_all_from_path, the CUDA build when an NVIDIA GPU is present. When
 * the library is missing llm_runtime_open fails with a reason that says what to install; nothing else in
 * clawgrid depends on it.
 *
 * Engine: a worker thread owns the llama model and one context whose sequences are the model's slots. Each
 * step it decodes one batch holding the next token of every generating slot plus prompt chunks of new ones
 * (continuous batching), samples per slot and posts text and completion events to the libevent loop through
 * an eventfd. Callbacks run on the loop thread only. */
#ifndef CG_MODEL_LLAMA_H
#define CG_MODEL_LLAMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "base/err.h"

/* Loads the library once per process (later calls return the first result). lib_dir NULL: $CLAWGRID_LLAMA_LIB,
 * then third_party/llama/ next to the binary, under $CLAWGRID_ROOT or the working directory. */
int llm_runtime_open(const char *lib_dir, cg_err *e);
bool llm_runtime_available(void);
/* {available, reason?, library, variant:"cpu"|"cuda", system, gpus:[{name,description,free_mib,total_mib}]} */
json_t *llm_runtime_status(void);
/* Number of GPU devices the library sees (0 on CPU-only hosts or without the library). */
int llm_gpu_count(void);

struct llm_params {
	int slots;            /* sequences decoded together; >= 1 */
	int ctx_per_slot;     /* tokens of context each slot may use */
	int threads;          /* llama.cpp threads (generation and batch) */
	int batch;            /* tokens per decode step */
	int gpu_layers;       /* layers offloaded to the GPU (0 on CPU) */
};

struct llm_chat_params {
	json_t *messages;     /* validated [{role, content}] (borrowed until submit returns; copied) */
	int max_tokens;
	float temperature;    /* 0 = greedy */
	float top_p;          /* 1 = off */
	uint32_t seed;
	char stop[4][65];     /* up to 4 stop sequences, "" = unused */
};

struct llm_engine;
struct llm_req;

struct llm_engine_cb {
	/* The model finished loading (e NULL) or failed (e set). Called once. */
	void (*on_loaded)(void *arg, const cg_err *e);
	/* New text of a request (valid UTF-8, never splits a character or a possible stop sequence). */
	void (*on_text)(void *arg, void *user, const char *text, size_t n);
	/* The request ended: finish "stop"|"length" on success, e set on failure. After it, the request handle
	 * is gone. For a cancelled request it runs once with user NULL when its slot is free again. */
	void (*on_done)(void *arg, void *user, const char *finish, int prompt_tokens, int completion_tokens,
			const cg_err *e);
};

/* Starts an engine that loads `path` on its worker thread. cb/arg are used on the loop thread. */
int llm_engine_new(struct event_base *base, const char *path, const char *name, const struct llm_params *p,
		   const struct llm_engine_cb *cb, void *arg, struct llm_engine **out, cg_err *e);
/* Stops it: requests still running end with E_UNAVAILABLE ("unloaded") through on_done before it returns;
 * waits for the worker (a running decode step is aborted). Safe on NULL. */
void llm_engine_free(struct llm_engine *eng);
/* Queues a request into a free slot (the caller keeps at most `slots` running). */
int llm_engine_submit(struct llm_engine *eng, const struct llm_chat_params *cp, void *user, struct llm_req **out,
		      cg_err *e);
/* Cancels a request: no more callbacks for it; its slot frees at the next step. */
void llm_engine_cancel(struct llm_engine *eng, struct llm_req *r);
/* Bytes of the loaded weights (0 before loading finished). */
uint64_t llm_engine_size(const struct llm_engine *eng);

#endif
