#!/usr/bin/env bash
# src/model/llama_abi.h mirrors llama.h of the pinned llama.cpp release (clawgrid dlopens the library and
# builds without its headers). Check every mirrored struct's size and field offsets against the real header
# taken from the release's source bundle shipped in node-llama-cpp. Skips (77) without the bundle or git.
set -euo pipefail
root=${CLAWGRID_ROOT:-$(pwd)}
bundle=$root/third_party/llama/node_modules/node-llama-cpp/llama/gitRelease.bundle
[ -f "$bundle" ] || { echo "skip: $bundle missing (scripts/llama-deps.sh installs it)"; exit 77; }
command -v git >/dev/null || { echo "skip: git is needed to read the source bundle"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
git init -q "$tmp/src"
git -C "$tmp/src" fetch -q "$bundle" HEAD
git -C "$tmp/src" archive FETCH_HEAD include/llama.h ggml/include | tar x -C "$tmp"
# Both declarations in one program: the real ones, and ours renamed with a prefix.
sed -e 's/\bstruct llama_\(batch\|model_params\|context_params\|sampler_chain_params\|chat_message\)\b/struct cg_\1/g' \
    -e 's/#error.*//' "$root/src/model/llama_abi.h" > "$tmp/ours.h"
sed -i -e 's/typedef int32_t llama_\(token\|pos\|seq_id\);//' \
       -e '/^struct llama_\(model\|context\|vocab\|sampler\);$/d' \
       -e 's/^typedef struct llama_memory_i \*llama_memory_t;//' \
       -e 's/^typedef struct ggml_backend_device \*ggml_backend_dev_t;//' \
       -e 's/^typedef bool (\*ggml_abort_callback)(void \*data);//' \
       -e 's/^typedef void (\*ggml_log_callback).*//' "$tmp/ours.h"
cat > "$tmp/check.c" <<'C'
#include <stddef.h>
#include <stdio.h>
#include "llama.h"
#define CG_MODEL_INTERNAL 1
#include "ours.h"
static int bad;
#define SAME(T, f) do { if (offsetof(struct llama_##T, f) != offsetof(struct cg_##T, f)) { \
	printf("llama_%s.%s: offset %zu, ours %zu\n", #T, #f, offsetof(struct llama_##T, f), offsetof(struct cg_##T, f)); bad = 1; } } while (0)
#define SIZE(T) do { if (sizeof(struct llama_##T) != sizeof(struct cg_##T)) { \
	printf("llama_%s: size %zu, ours %zu\n", #T, sizeof(struct llama_##T), sizeof(struct cg_##T)); bad = 1; } } while (0)
int main(void) {
	SIZE(batch); SAME(batch, token); SAME(batch, pos); SAME(batch, n_seq_id); SAME(batch, seq_id); SAME(batch, logits);
	SIZE(model_params); SAME(model_params, n_gpu_layers); SAME(model_params, load_mode); SAME(model_params, main_gpu);
	SAME(model_params, tensor_split); SAME(model_params, progress_callback); SAME(model_params, progress_callback_user_data);
	SAME(model_params, kv_overrides); SAME(model_params, vocab_only); SAME(model_params, load_mtp);
	SIZE(context_params); SAME(context_params, n_ctx); SAME(context_params, n_batch); SAME(context_params, n_ubatch);
	SAME(context_params, n_seq_max); SAME(context_params, n_threads); SAME(context_params, n_threads_batch);
	SAME(context_params, flash_attn_type); SAME(context_params, cb_eval); SAME(context_params, type_k);
	SAME(context_params, abort_callback); SAME(context_params, abort_callback_data); SAME(context_params, embeddings);
	SAME(context_params, no_perf); SAME(context_params, kv_unified); SAME(context_params, samplers);
	SAME(context_params, n_samplers); SAME(context_params, ctx_other);
	SIZE(sampler_chain_params); SIZE(chat_message); SAME(chat_message, content);
	printf(bad ? "ABI MISMATCH\n" : "ABI ok\n");
	return bad;
}
C
cc -std=c11 -I"$tmp/include" -I"$tmp/ggml/include" -I"$tmp" "$tmp/check.c" -o "$tmp/check"
"$tmp/check"
