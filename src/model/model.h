/* model — local models for the provider: a registry over a models folder (GGUF files), an LRU of loaded
 * models bounded by a memory budget, the embedded llama.cpp backend and OpenAI-compatible upstream engines
 * (llama-server, vLLM, Ollama), all served as OpenAI chat completions.
 *
 * The C API is the primary interface (the provider routes and the node's RPC/HTTP wiring call it). Everything
 * runs on the node's libevent loop thread; inference runs on worker threads that post back to the loop.
 * Errors follow base/err.h: E_NOT_FOUND (unknown model), E_INVALID_ARGUMENT (bad request or bad GGUF),
 * E_QUOTA_EXCEEDED (a model larger than the memory budget), E_RATE_LIMITED (slots and queue full, 429 with
 * Retry-After), E_UNAVAILABLE (engine loading, full, unloaded or the llama library missing, 503). */
#ifndef CG_MODEL_MODEL_H
#define CG_MODEL_MODEL_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>
#include <jansson.h>

#include "base/err.h"

struct model_registry;
struct model_chat;

/* Validates the "models" config section (unknown keys and bad values name the JSON path). */
int model_config_check(json_t *section, cg_err *e);
/* The models folder of a config section: "folder" (relative to data_dir) or <data_dir>/models. */
void model_folder_path(json_t *section, const char *data_dir, char *out, size_t cap);

/* Folder operations, usable without a running registry (the CLI works offline with them). */
/* Copies a GGUF file into the folder as <name>.gguf after validating its header. *info: the entry (caller
 * frees). E_CONFLICT when the name exists. */
int model_folder_add(const char *folder, const char *src, const char *name, json_t **info, cg_err *e);
int model_folder_rm(const char *folder, const char *name, cg_err *e);
/* Array of entries {name, file, size, architecture, parameters, quantization, context_length, sha256, ...}
 * (caller frees); files that are not valid GGUF are listed with "error". Hashes are cached in the folder's
 * .clawgrid-index.json (keyed by size and mtime). */
int model_folder_list(const char *folder, json_t **out, cg_err *e);

/* Starts the registry on base with a validated config section; preloads the models marked so. */
int model_registry_new(struct event_base *base, json_t *section, const char *data_dir,
		       struct model_registry **out, cg_err *e);
/* Cancels every request (no more callbacks), unloads every model. Safe on NULL. */
void model_registry_free(struct model_registry *reg);

/* Rescans the folder (after add/rm). */
int model_rescan(struct model_registry *reg, cg_err *e);
/* Every model (local and upstream) with its state: array, caller frees. */
json_t *model_list(struct model_registry *reg);
int model_info(struct model_registry *reg, const char *name, json_t **out, cg_err *e);
/* {llama:{available, reason|variant, gpus}, budget_mib, used_mib, loaded:[...], engines:[...]} (caller frees) */
json_t *model_status(struct model_registry *reg);

typedef void (*model_done_fn)(void *arg, const cg_err *e);
/* Loads a local model (evicting least recently used idle models to fit the budget). done runs once on the
 * loop when it is ready or failed; immediately when already loaded. Synchronous failures (unknown, too big,
 * library missing) return an error and do not call done. */
int model_load(struct model_registry *reg, const char *name, model_done_fn done, void *arg, cg_err *e);
/* Unloads: running and queued requests end with E_UNAVAILABLE. */
int model_unload(struct model_registry *reg, const char *name, cg_err *e);

struct model_chat_cb {
	/* Streaming only: one chat.completion.chunk object (borrowed for the call). */
	void (*on_chunk)(void *arg, json_t *chunk);
	/* Once, at the end: the whole chat.completion (with usage; borrowed) or an error. After it the handle is
	 * gone. */
	void (*on_done)(void *arg, json_t *response, const cg_err *e);
};

/* Starts an OpenAI chat completion ({model, messages, stream, max_tokens, temperature, top_p, seed, stop,
 * stream_options}; borrowed). Returns a handle, or NULL with e set (nothing is called then). The callbacks
 * run on the loop thread, never from inside this call. */
struct model_chat *model_chat_start(struct model_registry *reg, json_t *request, const struct model_chat_cb *cb,
				    void *arg, cg_err *e);
/* The client went away: stops generation; no callback runs afterwards; the handle is freed. */
void model_chat_cancel(struct model_chat *c);

#endif
