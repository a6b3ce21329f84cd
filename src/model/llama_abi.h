/* llama_abi — the part of llama.cpp's C ABI (release v0.4.0 as shipped by node-llama-cpp 3.21.1) that the
 * embedded backend calls, declared here because clawgrid loads libllama with dlopen and must build without
 * the library or its headers. Layouts mirror include/llama.h of that release field for field;
 * tests/unit/model/test_llama_abi.sh compiles a check of every size and offset against the real header from
 * the release's source bundle. Internal to src/model/. */
#ifndef CG_MODEL_LLAMA_ABI_H
#define CG_MODEL_LLAMA_ABI_H

#ifndef CG_MODEL_INTERNAL
#error "llama_abi.h is internal to src/model/"
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef int32_t llama_token;
typedef int32_t llama_pos;
typedef int32_t llama_seq_id;
struct llama_model;
struct llama_context;
struct llama_vocab;
struct llama_sampler;
typedef struct llama_memory_i *llama_memory_t;
typedef struct ggml_backend_device *ggml_backend_dev_t;
typedef bool (*ggml_abort_callback)(void *data);
typedef void (*ggml_log_callback)(int level, const char *text, void *user_data);

struct llama_batch {
	int32_t n_tokens;
	llama_token *token;
	float *embd;
	llama_pos *pos;
	int32_t *n_seq_id;
	llama_seq_id **seq_id;
	int8_t *logits;
};

struct llama_model_params {
	ggml_backend_dev_t *devices;
	const void *tensor_buft_overrides;
	int32_t n_gpu_layers;
	int32_t split_mode; /* enum llama_split_mode */
	int32_t load_mode;  /* enum llama_load_mode: 1 = mmap */
	int32_t lazy_mode;
	int32_t main_gpu;
	const float *tensor_split;
	bool (*progress_callback)(float progress, void *user_data);
	void *progress_callback_user_data;
	const void *kv_overrides;
	bool vocab_only, check_tensors, use_extra_bufts, no_host, no_alloc, load_mtp;
};

struct llama_context_params {
	uint32_t n_ctx, n_batch, n_ubatch, n_seq_max, n_rs_seq, n_outputs_max, n_outputs_max_per_seq;
	int32_t n_threads, n_threads_batch;
	int32_t ctx_type, rope_scaling_type, pooling_type, attention_type, flash_attn_type; /* enums */
	float rope_freq_base, rope_freq_scale, yarn_ext_factor, yarn_attn_factor, yarn_beta_fast, yarn_beta_slow;
	uint32_t yarn_orig_ctx;
	float defrag_thold;
	void *cb_eval;
	void *cb_eval_user_data;
	int32_t type_k, type_v; /* enum ggml_type */
	ggml_abort_callback abort_callback;
	void *abort_callback_data;
	bool embeddings, offload_kqv, no_perf, op_offload, swa_full, kv_unified;
	void *samplers;
	size_t n_samplers;
	struct llama_context *ctx_other;
};

struct llama_sampler_chain_params {
	bool no_perf;
};

struct llama_chat_message {
	const char *role;
	const char *content;
};

enum { GGML_DEV_CPU = 0, GGML_DEV_GPU = 1, GGML_DEV_IGPU = 2, GGML_DEV_ACCEL = 3 };

/* The resolved entry points; every one is required. X(ret, name, args) */
#define LLAMA_FUNCS(X)                                                                                       \
	X(void, llama_backend_init, (void))                                                                  \
	X(void, llama_log_set, (ggml_log_callback cb, void *ud))                                             \
	X(const char *, llama_print_system_info, (void))                                                     \
	X(bool, llama_supports_gpu_offload, (void))                                                          \
	X(struct llama_model_params, llama_model_default_params, (void))                                     \
	X(struct llama_context_params, llama_context_default_params, (void))                                 \
	X(struct llama_sampler_chain_params, llama_sampler_chain_default_params, (void))                     \
	X(struct llama_model *, llama_model_load_from_file, (const char *path, struct llama_model_params p)) \
	X(void, llama_model_free, (struct llama_model * m))                                                  \
	X(struct llama_context *, llama_init_from_model, (struct llama_model * m, struct llama_context_params p)) \
	X(void, llama_free, (struct llama_context * c))                                                      \
	X(uint32_t, llama_n_ctx, (const struct llama_context *c))                                            \
	X(uint32_t, llama_n_batch, (const struct llama_context *c))                                          \
	X(llama_memory_t, llama_get_memory, (const struct llama_context *c))                                 \
	X(bool, llama_memory_seq_rm, (llama_memory_t m, llama_seq_id s, llama_pos p0, llama_pos p1))         \
	X(const struct llama_vocab *, llama_model_get_vocab, (const struct llama_model *m))                  \
	X(uint64_t, llama_model_size, (const struct llama_model *m))                                         \
	X(int32_t, llama_model_n_layer, (const struct llama_model *m))                                       \
	X(const char *, llama_model_chat_template, (const struct llama_model *m, const char *name))          \
	X(bool, llama_vocab_is_eog, (const struct llama_vocab *v, llama_token t))                            \
	X(int32_t, llama_tokenize, (const struct llama_vocab *v, const char *text, int32_t len,              \
				    llama_token *toks, int32_t max, bool add_special, bool parse_special))   \
	X(int32_t, llama_token_to_piece, (const struct llama_vocab *v, llama_token t, char *buf, int32_t len,  \
					  int32_t lstrip, bool special))                                     \
	X(int32_t, llama_chat_apply_template, (const char *tmpl, const struct llama_chat_message *chat,       \
					       size_t n, bool add_ass, char *buf, int32_t len))              \
	X(struct llama_batch, llama_batch_init, (int32_t n_tokens, int32_t embd, int32_t n_seq_max))         \
	X(void, llama_batch_free, (struct llama_batch b))                                                    \
	X(int32_t, llama_decode, (struct llama_context * c, struct llama_batch b))                           \
	X(void, llama_set_abort_callback, (struct llama_context * c, ggml_abort_callback cb, void *d))       \
	X(struct llama_sampler *, llama_sampler_chain_init, (struct llama_sampler_chain_params p))           \
	X(void, llama_sampler_chain_add, (struct llama_sampler * chain, struct llama_sampler * s))           \
	X(struct llama_sampler *, llama_sampler_init_greedy, (void))                                         \
	X(struct llama_sampler *, llama_sampler_init_dist, (uint32_t seed))                                  \
	X(struct llama_sampler *, llama_sampler_init_top_p, (float p, size_t min_keep))                      \
	X(struct llama_sampler *, llama_sampler_init_temp, (float t))                                        \
	X(llama_token, llama_sampler_sample, (struct llama_sampler * s, struct llama_context * c, int32_t i)) \
	X(void, llama_sampler_free, (struct llama_sampler * s))

#define GGML_FUNCS(X)                                                                                        \
	X(void, ggml_backend_load_all_from_path, (const char *dir))                                          \
	X(size_t, ggml_backend_dev_count, (void))                                                            \
	X(ggml_backend_dev_t, ggml_backend_dev_get, (size_t i))                                              \
	X(const char *, ggml_backend_dev_name, (ggml_backend_dev_t d))                                       \
	X(const char *, ggml_backend_dev_description, (ggml_backend_dev_t d))                                \
	X(void, ggml_backend_dev_memory, (ggml_backend_dev_t d, size_t *free, size_t *total))               \
	X(int, ggml_backend_dev_type, (ggml_backend_dev_t d))

#endif
