/* gguf — a bounded reader of GGUF model headers (the llama.cpp file format, version 2 and 3).
 *
 * Pure: bytes in, a summary out; no I/O except gguf_read_file(), which maps the file read-only. Every count,
 * string and array length a file declares is checked against the bytes present and against hard caps, so a
 * hostile or truncated file yields E_INVALID_ARGUMENT with a message saying what is wrong and where, never a
 * crash or an unbounded allocation. The tensor table is walked to count parameters, find the dominant
 * quantization and check that every tensor's data lies inside the file (a truncated download is caught). */
#ifndef CG_MODEL_GGUF_H
#define CG_MODEL_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define GGUF_MAX_KV 65536           /* metadata pairs */
#define GGUF_MAX_TENSORS 65536      /* tensor infos */
#define GGUF_MAX_STRING (1u << 20)  /* one string value or key */
#define GGUF_MAX_ARRAY (1u << 24)   /* elements of one array */
#define GGUF_MAX_TEMPLATE 65536     /* chat template kept in the summary */
#define GGUF_MAX_HEADER (256u << 20) /* metadata + tensor infos together */

struct gguf_info {
	uint32_t version;
	uint64_t n_tensors, n_kv;
	char architecture[64]; /* general.architecture, "" when absent */
	char name[128];        /* general.name */
	char quantization[32]; /* from general.file_type, else the dominant tensor type ("F32", "Q4_K", ...) */
	uint64_t n_params;     /* sum of tensor element counts */
	uint64_t context_length, embedding_length, block_count, head_count, head_count_kv, feed_forward_length;
	uint64_t vocab_size;   /* elements of tokenizer.ggml.tokens */
	char tokenizer[32];    /* tokenizer.ggml.model */
	uint32_t alignment;
	uint64_t data_offset;  /* start of the tensor data */
	uint64_t data_size;    /* bytes the tensors need from data_offset (end of the last one) */
	char *chat_template;   /* tokenizer.chat_template (heap, caller frees with gguf_info_done), or NULL */
};

/* Parses the header of a GGUF image of `len` bytes. When `file_size` is larger than len (only a prefix was
 * given), tensor bounds are checked against file_size. Returns 0 or -E_INVALID_ARGUMENT. */
int gguf_parse(const uint8_t *p, size_t len, uint64_t file_size, struct gguf_info *out, cg_err *e);
/* Maps path read-only and parses it. E_NOT_FOUND when missing, E_INVALID_ARGUMENT for a bad file. If sha256
 * is non-NULL the whole file's SHA-256 (hex, 64 chars + NUL) is written there. */
int gguf_read_file(const char *path, struct gguf_info *out, char sha256_hex[65], cg_err *e);
void gguf_info_done(struct gguf_info *gi);

/* Name of a ggml tensor type ("Q4_K"), "?" when unknown; and the name of a llama file type ("Q4_K_M"). */
const char *gguf_type_name(uint32_t type);
const char *gguf_ftype_name(uint32_t ftype);

#endif
