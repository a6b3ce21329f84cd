#include "gguf_gen.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A growable byte image. On OOM `bad` is set and later writes are dropped. */
struct img {
	uint8_t *p;
	size_t len, cap;
	int bad;
};

static void put(struct img *m, const void *src, size_t n)
{
	if (m->bad)
		return;
	if (m->len + n > m->cap) {
		size_t nc = m->cap ? m->cap : 4096;
		while (nc < m->len + n)
			nc *= 2;
		uint8_t *q = realloc(m->p, nc);
		if (!q) {
			m->bad = 1;
			return;
		}
		m->p = q;
		m->cap = nc;
	}
	memcpy(m->p + m->len, src, n);
	m->len += n;
}

static void u32(struct img *m, uint32_t v)
{
	put(m, &v, 4); /* GGUF is little-endian, as is x86-64 */
}

static void u64(struct img *m, uint64_t v)
{
	put(m, &v, 8);
}

static void f32(struct img *m, float v)
{
	put(m, &v, 4);
}

static void str(struct img *m, const char *s)
{
	u64(m, strlen(s));
	put(m, s, strlen(s));
}

enum { T_U32 = 4, T_I32 = 5, T_F32 = 6, T_BOOL = 7, T_STR = 8, T_ARR = 9 };

static void kv_u32(struct img *m, const char *k, uint32_t v)
{
	str(m, k);
	u32(m, T_U32);
	u32(m, v);
}

static void kv_f32(struct img *m, const char *k, float v)
{
	str(m, k);
	u32(m, T_F32);
	f32(m, v);
}

static void kv_str(struct img *m, const char *k, const char *v)
{
	str(m, k);
	u32(m, T_STR);
	str(m, v);
}

static void kv_bool(struct img *m, const char *k, int v)
{
	uint8_t b = (uint8_t)(v != 0);
	str(m, k);
	u32(m, T_BOOL);
	put(m, &b, 1);
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [-a, a], from the top 24 bits so the float is exact and identical everywhere. */
static float rnd(uint64_t *s, float a)
{
	return ((float)(splitmix(s) >> 40) / 16777216.0f * 2.0f - 1.0f) * a;
}

#define MAX_VOCAB 400
struct vocab {
	char text[MAX_VOCAB][16];
	float score[MAX_VOCAB];
	int32_t type[MAX_VOCAB];
	uint32_t n;
};

static void vocab_add(struct vocab *v, const char *t, float score, int32_t type)
{
	snprintf(v->text[v->n], sizeof v->text[0], "%s", t);
	v->score[v->n] = score;
	v->type[v->n] = type;
	v->n++;
}

/* Token types: 1 normal, 2 unknown, 3 control, 6 byte. */
static void make_vocab(struct vocab *v)
{
	v->n = 0;
	vocab_add(v, "<unk>", 0, 2);
	vocab_add(v, "<s>", 0, 3);
	vocab_add(v, "</s>", 0, 3);
	for (int b = 0; b < 256; b++) {
		char t[8];
		snprintf(t, sizeof t, "<0x%02X>", b);
		vocab_add(v, t, 0, 6);
	}
	for (int ch = 0x20; ch < 0x7f; ch++) {
		char t[4] = {(char)ch, 0};
		vocab_add(v, ch == ' ' ? "\xe2\x96\x81" : t, -1.0f, 1);
	}
	for (int ch = 'a'; ch <= 'z'; ch++) {
		char t[8];
		snprintf(t, sizeof t, "\xe2\x96\x81%c", ch);
		vocab_add(v, t, -0.5f, 1); /* merges "▁"+"x" win over the single characters */
	}
}

struct tensor {
	char name[48];
	uint32_t nd;
	uint64_t ne[2];
	uint32_t type; /* 0 F32, 24 I8 */
	uint64_t off;
};

static uint64_t tensor_bytes(const struct tensor *t)
{
	uint64_t n = t->ne[0] * (t->nd > 1 ? t->ne[1] : 1);
	return t->type == 0 ? n * 4 : n;
}

int gguf_gen_build(const struct gguf_gen_opts *o, uint8_t **out, size_t *len)
{
	uint32_t E = o->embd ? o->embd : 64, L = o->layers ? o->layers : 2, H = o->heads ? o->heads : 4;
	uint32_t C = o->ctx ? o->ctx : 512, F = 2 * E;
	uint64_t seed = o->seed ? o->seed : 42;
	if (E % (2 * H) || L > 64)
		return -1;
	static struct vocab v; /* 6 KB; tests are single-threaded when they build models */
	make_vocab(&v);

	struct tensor ts[4 + 9 * 64];
	uint32_t nt = 0;
#define T2(nm, a, b)                                                                                         \
	do {                                                                                                 \
		snprintf(ts[nt].name, sizeof ts[nt].name, "%s", nm);                                         \
		ts[nt].nd = 2;                                                                               \
		ts[nt].ne[0] = (a);                                                                          \
		ts[nt].ne[1] = (b);                                                                          \
		ts[nt].type = 0;                                                                             \
		nt++;                                                                                        \
	} while (0)
#define T1(nm, a)                                                                                            \
	do {                                                                                                 \
		snprintf(ts[nt].name, sizeof ts[nt].name, "%s", nm);                                         \
		ts[nt].nd = 1;                                                                               \
		ts[nt].ne[0] = (a);                                                                          \
		ts[nt].ne[1] = 1;                                                                            \
		ts[nt].type = 0;                                                                             \
		nt++;                                                                                        \
	} while (0)
	T2("token_embd.weight", E, v.n);
	for (uint32_t l = 0; l < L; l++) {
		char n[48];
		static const char *const sq[] = {"attn_q", "attn_k", "attn_v", "attn_output"};
		snprintf(n, sizeof n, "blk.%u.attn_norm.weight", l);
		T1(n, E);
		for (int k = 0; k < 4; k++) {
			snprintf(n, sizeof n, "blk.%u.%s.weight", l, sq[k]);
			T2(n, E, E);
		}
		snprintf(n, sizeof n, "blk.%u.ffn_norm.weight", l);
		T1(n, E);
		snprintf(n, sizeof n, "blk.%u.ffn_gate.weight", l);
		T2(n, E, F);
		snprintf(n, sizeof n, "blk.%u.ffn_up.weight", l);
		T2(n, E, F);
		snprintf(n, sizeof n, "blk.%u.ffn_down.weight", l);
		T2(n, F, E);
	}
	T1("output_norm.weight", E);
	T2("output.weight", E, v.n);
	if (o->pad_bytes) {
		T1("extra.pad", (o->pad_bytes + 31) / 32 * 32);
		ts[nt - 1].type = 24;
	}
#undef T1
#undef T2
	uint64_t off = 0;
	for (uint32_t i = 0; i < nt; i++) {
		ts[i].off = off;
		off += (tensor_bytes(&ts[i]) + 31) / 32 * 32;
	}

	struct img m = {0};
	put(&m, "GGUF", 4);
	u32(&m, 3);
	u64(&m, nt);
	uint64_t nkv = 20 + (o->no_template ? 0 : 1);
	u64(&m, nkv);
	kv_str(&m, "general.architecture", "llama");
	kv_str(&m, "general.name", o->name ? o->name : "clawgrid-tiny");
	kv_u32(&m, "general.alignment", 32);
	kv_u32(&m, "general.file_type", 0);
	kv_u32(&m, "llama.context_length", C);
	kv_u32(&m, "llama.embedding_length", E);
	kv_u32(&m, "llama.block_count", L);
	kv_u32(&m, "llama.feed_forward_length", F);
	kv_u32(&m, "llama.attention.head_count", H);
	kv_u32(&m, "llama.attention.head_count_kv", H);
	kv_f32(&m, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
	kv_u32(&m, "llama.rope.dimension_count", E / H);
	kv_str(&m, "tokenizer.ggml.model", "llama");
	str(&m, "tokenizer.ggml.tokens");
	u32(&m, T_ARR);
	u32(&m, T_STR);
	u64(&m, v.n);
	for (uint32_t i = 0; i < v.n; i++)
		str(&m, v.text[i]);
	str(&m, "tokenizer.ggml.scores");
	u32(&m, T_ARR);
	u32(&m, T_F32);
	u64(&m, v.n);
	for (uint32_t i = 0; i < v.n; i++)
		f32(&m, v.score[i]);
	str(&m, "tokenizer.ggml.token_type");
	u32(&m, T_ARR);
	u32(&m, T_I32);
	u64(&m, v.n);
	for (uint32_t i = 0; i < v.n; i++)
		put(&m, &v.type[i], 4);
	kv_u32(&m, "tokenizer.ggml.bos_token_id", 1);
	kv_u32(&m, "tokenizer.ggml.eos_token_id", 2);
	kv_u32(&m, "tokenizer.ggml.unknown_token_id", 0);
	kv_bool(&m, "tokenizer.ggml.add_bos_token", 1);
	if (!o->no_template)
		kv_str(&m, "tokenizer.chat_template",
		       "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
		       "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
		       "{% endif %}");
	for (uint32_t i = 0; i < nt; i++) {
		str(&m, ts[i].name);
		u32(&m, ts[i].nd);
		for (uint32_t d = 0; d < ts[i].nd; d++)
			u64(&m, ts[i].ne[d]);
		u32(&m, ts[i].type);
		u64(&m, ts[i].off);
	}
	static const uint8_t zero[32];
	if (m.len % 32)
		put(&m, zero, 32 - m.len % 32);

	uint64_t s = seed;
	for (uint32_t i = 0; i < nt; i++) {
		const struct tensor *t = &ts[i];
		uint64_t n = t->ne[0] * (t->nd > 1 ? t->ne[1] : 1);
		int is_norm = strstr(t->name, "norm") != NULL, is_out = strcmp(t->name, "output.weight") == 0;
		float a = strcmp(t->name, "token_embd.weight") == 0 ? 1.0f : 6.0f / (float)E;
		if (is_out)
			a = 4.0f / (float)E;
		if (strstr(t->name, "ffn_down") || strstr(t->name, "attn_output"))
			a = 4.0f / (float)E;
		for (uint64_t k = 0; k < n && t->type == 0; k++) {
			float x = is_norm ? 1.0f : rnd(&s, a * 8.0f);
			/* Row k/E of output.weight is token k/E's logit vector: zero it for special and byte tokens. */
			if (is_out && v.type[k / E] != 1)
				x = 0.0f;
			f32(&m, x);
		}
		if (t->type == 24)
			for (uint64_t k = 0; k < n; k++)
				put(&m, zero, 1);
		uint64_t b = tensor_bytes(t);
		if (b % 32)
			put(&m, zero, 32 - b % 32);
	}
	if (m.bad) {
		free(m.p);
		return -1;
	}
	*out = m.p;
	*len = m.len;
	return 0;
}

int gguf_gen_write(const char *path, const struct gguf_gen_opts *o)
{
	uint8_t *p;
	size_t n;
	if (gguf_gen_build(o, &p, &n) != 0) {
		errno = ENOMEM;
		return -1;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		free(p);
		return -1;
	}
	size_t off = 0;
	while (off < n) {
		ssize_t w = write(fd, p + off, n - off);
		if (w <= 0) {
			int er = errno;
			close(fd);
			free(p);
			errno = er;
			return -1;
		}
		off += (size_t)w;
	}
	free(p);
	return close(fd);
}
