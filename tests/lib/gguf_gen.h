/* gguf_gen — writes a deterministic random-weight llama-architecture GGUF for tests and benchmarks.
 *
 * The model is tiny (E=64, 2 blocks: about 0.5 MB) and has a byte-level SPM vocabulary: <unk>, <s>, </s>,
 * the 256 byte tokens <0x00>..<0xFF>, the printable ASCII characters (space as U+2581) and "▁a".."▁z". The
 * output-matrix rows of the special and byte tokens are zero, so greedy text stays printable ASCII. The same
 * options always give the same bytes (splitmix64 from `seed`), so generated text can be compared with a
 * golden file. Self-contained: libc only. */
#ifndef CG_TESTS_GGUF_GEN_H
#define CG_TESTS_GGUF_GEN_H

#include <stddef.h>
#include <stdint.h>

struct gguf_gen_opts {
	uint32_t embd;        /* embedding length, multiple of heads*2; 0 = 64 */
	uint32_t layers;      /* 0 = 2 */
	uint32_t heads;       /* 0 = 4 */
	uint32_t ctx;         /* context length in the metadata; 0 = 512 */
	uint64_t seed;        /* weights; 0 = 42 */
	const char *name;     /* general.name; NULL = "clawgrid-tiny" */
	int no_template;      /* 1: no tokenizer.chat_template */
	uint32_t pad_bytes;   /* extra zero tensor bytes (an "extra.pad" I8 tensor) to make a bigger file */
};

/* Builds the file in memory (caller frees *out). Returns 0, or -1 on OOM / bad options. */
int gguf_gen_build(const struct gguf_gen_opts *o, uint8_t **out, size_t *len);
/* Writes it to path (mode 0644). Returns 0 or -1 (errno set). */
int gguf_gen_write(const char *path, const struct gguf_gen_opts *o);

#endif
