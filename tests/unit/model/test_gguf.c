/* GGUF header reader on the generated test model and on damaged copies of it; the models folder
 * (add/list/rm, hash cache) and the "models" config validation. No llama library needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gguf_gen.h"
#include "model/gguf.h"
#include "model/model.h"

static uint8_t *img;
static size_t img_len;
static char dir[64];

static int setup(void **s)
{
	(void)s;
	struct gguf_gen_opts o = {0};
	assert_int_equal(gguf_gen_build(&o, &img, &img_len), 0);
	snprintf(dir, sizeof dir, "/tmp/cg-gguf-XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **s)
{
	(void)s;
	free(img);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wbe");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
}

static void t_metadata(void **s)
{
	(void)s;
	struct gguf_info gi;
	cg_err e;
	assert_int_equal(gguf_parse(img, img_len, img_len, &gi, &e), 0);
	assert_int_equal(gi.version, 3);
	assert_string_equal(gi.architecture, "llama");
	assert_string_equal(gi.name, "clawgrid-tiny");
	assert_string_equal(gi.quantization, "F32");
	assert_string_equal(gi.tokenizer, "llama");
	assert_int_equal(gi.context_length, 512);
	assert_int_equal(gi.embedding_length, 64);
	assert_int_equal(gi.block_count, 2);
	assert_int_equal(gi.head_count, 4);
	assert_int_equal(gi.head_count_kv, 4);
	assert_int_equal(gi.vocab_size, 3 + 256 + 95 + 26);
	/* Parameters: embeddings and output (E*V each), per block 4 E*E + 3 E*2E + 2 E norms, final norm. */
	uint64_t E = 64, V = 380, L = 2;
	assert_int_equal(gi.n_params, 2 * E * V + L * (4 * E * E + 3 * E * 2 * E + 2 * E) + E);
	assert_non_null(gi.chat_template);
	assert_non_null(strstr(gi.chat_template, "<|im_start|>"));
	assert_true(gi.data_offset % 32 == 0);
	assert_true(gi.data_offset + gi.data_size <= img_len);
	gguf_info_done(&gi);
	/* Deterministic: the same options give the same bytes. */
	uint8_t *again;
	size_t n;
	struct gguf_gen_opts o = {0};
	assert_int_equal(gguf_gen_build(&o, &again, &n), 0);
	assert_int_equal(n, img_len);
	assert_memory_equal(again, img, n);
	free(again);
	assert_true(img_len < 1024 * 1024);
}

static void t_wrong_magic(void **s)
{
	(void)s;
	uint8_t *c = malloc(img_len);
	memcpy(c, img, img_len);
	memcpy(c, "GGML", 4);
	struct gguf_info gi;
	cg_err e;
	assert_int_equal(gguf_parse(c, img_len, img_len, &gi, &e), -CG_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "bad magic"));
	memcpy(c, "GGUF", 4);
	c[4] = 9; /* version 9 */
	assert_int_equal(gguf_parse(c, img_len, img_len, &gi, &e), -CG_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "version 9"));
	free(c);
}

static void t_truncated(void **s)
{
	(void)s;
	struct gguf_info gi;
	cg_err e;
	/* Every cut inside the header says "truncated"; a cut in the tensor data says the data is short. */
	size_t hdr;
	assert_int_equal(gguf_parse(img, img_len, img_len, &gi, &e), 0);
	hdr = gi.data_offset;
	gguf_info_done(&gi);
	for (size_t cut = 4; cut < hdr; cut += 97) {
		assert_int_equal(gguf_parse(img, cut, cut, &gi, &e), -CG_E_INVALID_ARGUMENT);
		assert_non_null(strstr(e.msg, "truncated"));
	}
	assert_int_equal(gguf_parse(img, img_len - 100, img_len - 100, &gi, &e), -CG_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "tensor data is truncated"));
	/* The file path: the same through gguf_read_file. */
	char p[128];
	snprintf(p, sizeof p, "%s/short.gguf", dir);
	write_file(p, img, img_len / 2);
	assert_int_equal(gguf_read_file(p, &gi, NULL, &e), -CG_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "truncated"));
	snprintf(p, sizeof p, "%s/missing.gguf", dir);
	assert_int_equal(gguf_read_file(p, &gi, NULL, &e), -CG_E_NOT_FOUND);
}

/* Offset of the first tensor info (just after the metadata). */
static size_t tensor_infos_at(void)
{
	/* Walk: the parser reports the data offset; tensor infos precede it. Search for the first tensor name. */
	const char *needle = "token_embd.weight";
	for (size_t i = 0; i + strlen(needle) < img_len; i++)
		if (memcmp(img + i, needle, strlen(needle)) == 0)
			return i - 8; /* its u64 length */
	fail();
	return 0;
}

static void t_corrupt(void **s)
{
	(void)s;
	struct gguf_info gi;
	cg_err e;
	uint8_t *c = malloc(img_len);
	/* A metadata count no file could hold. */
	memcpy(c, img, img_len);
	uint64_t big = (uint64_t)1 << 40;
	memcpy(c + 16, &big, 8);
	assert_int_equal(gguf_parse(c, img_len, img_len, &gi, &e), -CG_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "metadata pairs"));
	/* A huge string length in the first key. */
	memcpy(c, img, img_len);
	memcpy(c + 24, &big, 8);
	assert_int_equal(gguf_parse(c, img_len, img_len, &gi, &e), -CG_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "exceeds"));
	/* The first tensor: 7 dimensions, then an unknown type, then a misaligned offset. */
	size_t t = tensor_infos_at();
	size_t nd_at = t + 8 + strlen("token_embd.weight");
	memcpy(c, img, img_len);
	uint32_t seven = 7;
	memcpy(c + nd_at, &seven, 4);
	assert_int_equal(gguf_parse(c, img_len, img_len, &gi, &e), -CG_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "dimensions"));
	memcpy(c, img, img_len);
	uint32_t badtype = 99;
	memcpy(c + nd_at + 4 + 16, &badtype, 4);
	assert_int_equal(gguf_parse(c, img_len, img_len, &gi, &e), -CG_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "unknown type 99"));
	memcpy(c, img, img_len);
	uint64_t off = 3;
	memcpy(c + nd_at + 4 + 16 + 4, &off, 8);
	assert_int_equal(gguf_parse(c, img_len, img_len, &gi, &e), -CG_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "aligned"));
	/* An offset that points past the end of the file. */
	memcpy(c, img, img_len);
	off = (uint64_t)1 << 32;
	memcpy(c + nd_at + 4 + 16 + 4, &off, 8);
	assert_int_equal(gguf_parse(c, img_len, img_len, &gi, &e), -CG_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "truncated"));
	free(c);
}

/* A hand-written GGUF v2 as other writers may lay it out: general.architecture last, after more
 * "<arch>." integer keys than any fixed buffer would hold, of several integer widths, plus a float key. */
struct w {
	uint8_t b[8192];
	size_t n;
};

static void w_bytes(struct w *w, const void *p, size_t n)
{
	assert_true(w->n + n <= sizeof w->b);
	memcpy(w->b + w->n, p, n);
	w->n += n;
}

static void w_u32(struct w *w, uint32_t v)
{
	w_bytes(w, &v, 4);
}

static void w_u64(struct w *w, uint64_t v)
{
	w_bytes(w, &v, 8);
}

static void w_str(struct w *w, const char *s)
{
	w_u64(w, strlen(s));
	w_bytes(w, s, strlen(s));
}

static void t_arch_last(void **s)
{
	(void)s;
	struct w w = {.n = 0};
	w_bytes(&w, "GGUF", 4);
	w_u32(&w, 2);
	w_u64(&w, 0);       /* tensors */
	w_u64(&w, 80 + 5);  /* metadata pairs */
	for (int i = 0; i < 80; i++) {
		char k[32];
		snprintf(k, sizeof k, "qwen2.extra_%d", i);
		w_str(&w, k);
		w_u32(&w, 4); /* u32 */
		w_u32(&w, (uint32_t)i);
	}
	w_str(&w, "qwen2.context_length");
	w_u32(&w, 10); /* u64 */
	w_u64(&w, 32768);
	w_str(&w, "qwen2.attention.head_count");
	w_u32(&w, 2); /* u16 */
	uint16_t h = 14;
	w_bytes(&w, &h, 2);
	w_str(&w, "qwen2.rope.freq_base");
	w_u32(&w, 6); /* f32 */
	float fb = 1e6f;
	w_bytes(&w, &fb, 4);
	w_str(&w, "qwen2.block_count");
	w_u32(&w, 5); /* i32 */
	w_u32(&w, 28);
	w_str(&w, "general.architecture");
	w_u32(&w, 8); /* string */
	w_str(&w, "qwen2");
	struct gguf_info gi;
	cg_err e;
	assert_int_equal(gguf_parse(w.b, w.n, w.n, &gi, &e), 0);
	assert_int_equal(gi.version, 2);
	assert_string_equal(gi.architecture, "qwen2");
	assert_int_equal(gi.context_length, 32768);
	assert_int_equal(gi.head_count, 14);
	assert_int_equal(gi.head_count_kv, 14);
	assert_int_equal(gi.block_count, 28);
	assert_string_equal(gi.quantization, "none");
	gguf_info_done(&gi);
	/* Cut anywhere: still a clean "truncated", never a read past the end. */
	for (size_t cut = 8; cut < w.n; cut += 13)
		assert_int_equal(gguf_parse(w.b, cut, cut, &gi, &e), -CG_E_INVALID_ARGUMENT);
}

static void t_folder(void **s)
{
	(void)s;
	char src[128], folder[128], bad[200];
	snprintf(src, sizeof src, "%s/tiny.gguf", dir);
	snprintf(folder, sizeof folder, "%s/models", dir);
	write_file(src, img, img_len);
	json_t *info, *list;
	cg_err e;
	assert_int_equal(model_folder_add(folder, src, NULL, &info, &e), 0);
	assert_string_equal(json_string_value(json_object_get(info, "name")), "tiny");
	const char *h = json_string_value(json_object_get(info, "sha256"));
	assert_non_null(h);
	assert_int_equal(strlen(h), 64);
	json_decref(info);
	assert_int_equal(model_folder_add(folder, src, "tiny", NULL, &e), -CG_E_CONFLICT);
	assert_int_equal(model_folder_add(folder, src, "../evil", NULL, &e), -CG_E_INVALID_ARGUMENT);
	/* A file that is not GGUF is refused by add, and listed with its error when dropped in by hand. */
	snprintf(bad, sizeof bad, "%s/bad.gguf", dir);
	write_file(bad, "GGMLnot a model at all", 22);
	assert_int_equal(model_folder_add(folder, bad, NULL, NULL, &e), -CG_E_INVALID_ARGUMENT);
	snprintf(bad, sizeof bad, "%s/broken.gguf", folder);
	write_file(bad, img, 1000);
	assert_int_equal(model_folder_list(folder, &list, &e), 0);
	assert_int_equal(json_array_size(list), 2);
	json_t *b = json_array_get(list, 0), *t = json_array_get(list, 1);
	assert_string_equal(json_string_value(json_object_get(b, "name")), "broken");
	assert_non_null(strstr(json_string_value(json_object_get(b, "error")), "truncated"));
	assert_string_equal(json_string_value(json_object_get(t, "name")), "tiny");
	assert_int_equal(json_integer_value(json_object_get(t, "parameters")), 130880);
	json_decref(list);
	/* The hash cache: listing again reads it from the index (same value). */
	char idx[160];
	snprintf(idx, sizeof idx, "%s/.clawgrid-index.json", folder);
	assert_int_equal(access(idx, F_OK), 0);
	assert_int_equal(model_folder_rm(folder, "tiny", &e), 0);
	assert_int_equal(model_folder_rm(folder, "tiny", &e), -CG_E_NOT_FOUND);
}

static void t_config(void **s)
{
	(void)s;
	cg_err e;
	static const struct {
		const char *json, *err;
	} cases[] = {
		{"{}", NULL},
		{"{\"slots\":2,\"queue\":4,\"threads\":1,\"memoryBudgetMiB\":512,\"preload\":[\"tiny\"]}", NULL},
		{"{\"engines\":[{\"name\":\"ls\",\"kind\":\"llama-server\",\"url\":\"http://127.0.0.1:8090\",\"models\":[\"m\"]}]}",
		 NULL},
		{"{\"slot\":2}", "slot"},
		{"{\"slots\":0}", "models.slots"},
		{"{\"preload\":[\"../x\"]}", "models.preload[0]"},
		{"{\"engines\":[{\"name\":\"x\",\"kind\":\"tgi\",\"url\":\"http://a\",\"models\":[\"m\"]}]}", "kind"},
		{"{\"engines\":[{\"name\":\"x\",\"kind\":\"vllm\",\"url\":\"ftp://host\",\"models\":[\"m\"]}]}", "url"},
		{"{\"engines\":[{\"name\":\"x\",\"kind\":\"vllm\",\"url\":\"http://host\",\"models\":[]}]}", "models"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_t *j = json_loads(cases[i].json, 0, NULL);
		assert_non_null(j);
		int rc = model_config_check(j, &e);
		if (cases[i].err) {
			assert_int_equal(rc, -CG_E_INVALID_ARGUMENT);
			assert_non_null(strstr(e.msg, cases[i].err));
		} else {
			assert_int_equal(rc, 0);
		}
		json_decref(j);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_metadata), cmocka_unit_test(t_wrong_magic), cmocka_unit_test(t_truncated),
		cmocka_unit_test(t_corrupt),  cmocka_unit_test(t_folder),      cmocka_unit_test(t_config),
		cmocka_unit_test(t_arch_last),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
