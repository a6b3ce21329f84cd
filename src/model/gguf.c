#include "model/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/hash.h"
#include "base/enc.h"

/* Value types of GGUF metadata. */
enum { GT_U8, GT_I8, GT_U16, GT_I16, GT_U32, GT_I32, GT_F32, GT_BOOL, GT_STR, GT_ARR, GT_U64, GT_I64, GT_F64 };

/* Block geometry of each ggml tensor type: elements per block and bytes per block (0: unknown type). */
static const struct {
	const char *name;
	uint32_t blck, size;
} types[] = {
	[0] = {"F32", 1, 4},         [1] = {"F16", 1, 2},        [2] = {"Q4_0", 32, 18},
	[3] = {"Q4_1", 32, 20},      [6] = {"Q5_0", 32, 22},     [7] = {"Q5_1", 32, 24},
	[8] = {"Q8_0", 32, 34},      [9] = {"Q8_1", 32, 36},     [10] = {"Q2_K", 256, 84},
	[11] = {"Q3_K", 256, 110},   [12] = {"Q4_K", 256, 144},  [13] = {"Q5_K", 256, 176},
	[14] = {"Q6_K", 256, 210},   [15] = {"Q8_K", 256, 292},  [16] = {"IQ2_XXS", 256, 66},
	[17] = {"IQ2_XS", 256, 74},  [18] = {"IQ3_XXS", 256, 98}, [19] = {"IQ1_S", 256, 50},
	[20] = {"IQ4_NL", 32, 18},   [21] = {"IQ3_S", 256, 110}, [22] = {"IQ2_S", 256, 82},
	[23] = {"IQ4_XS", 256, 136}, [24] = {"I8", 1, 1},        [25] = {"I16", 1, 2},
	[26] = {"I32", 1, 4},        [27] = {"I64", 1, 8},       [28] = {"F64", 1, 8},
	[29] = {"IQ1_M", 256, 56},   [30] = {"BF16", 1, 2},      [34] = {"TQ1_0", 256, 54},
	[35] = {"TQ2_0", 256, 66},   [39] = {"MXFP4", 32, 17},   [40] = {"NVFP4", 64, 36},
	[41] = {"Q1_0", 128, 18},    [42] = {"Q2_0", 64, 18},
};
#define N_TYPES (sizeof types / sizeof types[0])

const char *gguf_type_name(uint32_t t)
{
	return t < N_TYPES && types[t].name ? types[t].name : "?";
}

static const char *const ftypes[] = {
	[0] = "F32",       [1] = "F16",       [2] = "Q4_0",      [3] = "Q4_1",     [7] = "Q8_0",
	[8] = "Q5_0",      [9] = "Q5_1",      [10] = "Q2_K",     [11] = "Q3_K_S",  [12] = "Q3_K_M",
	[13] = "Q3_K_L",   [14] = "Q4_K_S",   [15] = "Q4_K_M",   [16] = "Q5_K_S",  [17] = "Q5_K_M",
	[18] = "Q6_K",     [19] = "IQ2_XXS",  [20] = "IQ2_XS",   [21] = "Q2_K_S",  [22] = "IQ3_XS",
	[23] = "IQ3_XXS",  [24] = "IQ1_S",    [25] = "IQ4_NL",   [26] = "IQ3_S",   [27] = "IQ3_M",
	[28] = "IQ2_S",    [29] = "IQ2_M",    [30] = "IQ4_XS",   [31] = "IQ1_M",   [32] = "BF16",
	[36] = "TQ1_0",    [37] = "TQ2_0",    [38] = "MXFP4_MOE", [39] = "NVFP4",  [40] = "Q1_0",
	[41] = "Q2_0",
};

const char *gguf_ftype_name(uint32_t ft)
{
	return ft < sizeof ftypes / sizeof ftypes[0] && ftypes[ft] ? ftypes[ft] : "?";
}

/* A read cursor; every read checks the remaining length first. */
struct cur {
	const uint8_t *p;
	size_t len, off;
	cg_err *e;
	const char *what; /* what is being read, for the error message */
};

static int trunc_err(struct cur *c, size_t need)
{
	return cg_fail(c->e, CG_E_INVALID_ARGUMENT, "GGUF truncated at offset %zu: %zu more bytes needed for %s",
		       c->off, need, c->what);
}

static int rd(struct cur *c, void *dst, size_t n)
{
	if (c->len - c->off < n)
		return trunc_err(c, n);
	memcpy(dst, c->p + c->off, n); /* GGUF is little-endian; so is every host llama.cpp supports here */
	c->off += n;
	return 0;
}

static int rd_u32(struct cur *c, uint32_t *v)
{
	return rd(c, v, 4);
}

static int rd_u64(struct cur *c, uint64_t *v)
{
	return rd(c, v, 8);
}

/* A GGUF string: u64 length then bytes (not NUL-terminated). Returns a borrowed pointer into the image. */
static int rd_str(struct cur *c, const char **s, uint64_t *n)
{
	if (rd_u64(c, n) < 0)
		return -CG_E_INVALID_ARGUMENT;
	if (*n > GGUF_MAX_STRING)
		return cg_fail(c->e, CG_E_INVALID_ARGUMENT, "GGUF string of %llu bytes at offset %zu exceeds %u (%s)",
			       (unsigned long long)*n, c->off - 8, GGUF_MAX_STRING, c->what);
	if (c->len - c->off < *n)
		return trunc_err(c, (size_t)*n);
	*s = (const char *)c->p + c->off;
	c->off += (size_t)*n;
	return 0;
}

static size_t scalar_size(uint32_t t)
{
	switch (t) {
	case GT_U8: case GT_I8: case GT_BOOL: return 1;
	case GT_U16: case GT_I16: return 2;
	case GT_U32: case GT_I32: case GT_F32: return 4;
	case GT_U64: case GT_I64: case GT_F64: return 8;
	default: return 0;
	}
}

/* Reads an integer-typed scalar as uint64 (negative values are rejected as not meaningful for the keys we
 * read). Returns 1 when the type is not an integer. */
static int rd_uint(struct cur *c, uint32_t t, uint64_t *v)
{
	uint8_t b[8] = {0};
	size_t n = scalar_size(t);
	if (n == 0 || t == GT_F32 || t == GT_F64 || t == GT_BOOL)
		return 1;
	if (rd(c, b, n) < 0)
		return -CG_E_INVALID_ARGUMENT;
	uint64_t x = 0;
	for (size_t i = 0; i < n; i++)
		x |= (uint64_t)b[i] << (8 * i);
	bool neg = (t == GT_I8 && (x & 0x80)) || (t == GT_I16 && (x & 0x8000)) ||
		   (t == GT_I32 && (x & 0x80000000u)) || (t == GT_I64 && (x >> 63));
	*v = neg ? 0 : x;
	return 0;
}

/* Skips one value of type t (arrays recursively, one level: GGUF arrays of arrays are legal but rare). */
static int skip_value(struct cur *c, uint32_t t, int depth)
{
	if (t == GT_STR) {
		const char *s;
		uint64_t n;
		return rd_str(c, &s, &n);
	}
	if (t == GT_ARR) {
		uint32_t et;
		uint64_t n;
		if (depth > 2)
			return cg_fail(c->e, CG_E_INVALID_ARGUMENT, "GGUF arrays nested too deep at offset %zu", c->off);
		if (rd_u32(c, &et) < 0 || rd_u64(c, &n) < 0)
			return -CG_E_INVALID_ARGUMENT;
		if (n > GGUF_MAX_ARRAY)
			return cg_fail(c->e, CG_E_INVALID_ARGUMENT, "GGUF array of %llu elements exceeds %u (%s)",
				       (unsigned long long)n, GGUF_MAX_ARRAY, c->what);
		size_t es = scalar_size(et);
		if (es) {
			if ((c->len - c->off) / es < n)
				return trunc_err(c, (size_t)(n * es));
			c->off += (size_t)(n * es);
			return 0;
		}
		if (et != GT_STR && et != GT_ARR)
			return cg_fail(c->e, CG_E_INVALID_ARGUMENT, "GGUF array of unknown type %u (%s)", et, c->what);
		for (uint64_t i = 0; i < n; i++)
			if (skip_value(c, et, depth + 1) < 0)
				return -CG_E_INVALID_ARGUMENT;
		return 0;
	}
	size_t n = scalar_size(t);
	if (n == 0)
		return cg_fail(c->e, CG_E_INVALID_ARGUMENT, "GGUF value of unknown type %u (%s)", t, c->what);
	if (c->len - c->off < n)
		return trunc_err(c, n);
	c->off += n;
	return 0;
}

static void copy_str(char *dst, size_t cap, const char *s, uint64_t n)
{
	size_t k = n < cap - 1 ? (size_t)n : cap - 1;
	memcpy(dst, s, k);
	dst[k] = 0;
	/* Keep the summary printable: these names end up in JSON and logs. */
	for (size_t i = 0; i < k; i++)
		if ((unsigned char)dst[i] < 0x20 || dst[i] == 0x7f)
			dst[i] = '?';
}

static bool key_is(const char *k, uint64_t kn, const char *want)
{
	return kn == strlen(want) && memcmp(k, want, (size_t)kn) == 0;
}

/* "<arch>.<suffix>" */
static bool arch_key(const char *k, uint64_t kn, const char *arch, const char *suffix)
{
	size_t al = strlen(arch), sl = strlen(suffix);
	return al && kn == al + 1 + sl && memcmp(k, arch, al) == 0 && k[al] == '.' && memcmp(k + al + 1, suffix, sl) == 0;
}

/* The "<arch>.<suffix>" integer keys the summary keeps. Returns whether k was one of them. */
static bool arch_assign(struct gguf_info *out, const char *k, uint64_t kn, uint64_t v)
{
	static const struct {
		const char *suffix;
		size_t off;
	} keys[] = {
		{"context_length", offsetof(struct gguf_info, context_length)},
		{"embedding_length", offsetof(struct gguf_info, embedding_length)},
		{"block_count", offsetof(struct gguf_info, block_count)},
		{"feed_forward_length", offsetof(struct gguf_info, feed_forward_length)},
		{"attention.head_count", offsetof(struct gguf_info, head_count)},
		{"attention.head_count_kv", offsetof(struct gguf_info, head_count_kv)},
	};
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (arch_key(k, kn, out->architecture, keys[i].suffix)) {
			*(uint64_t *)((char *)out + keys[i].off) = v;
			return true;
		}
	return false;
}

/* general.architecture names the "<arch>." prefix of the keys we keep. llama.cpp's writer puts it first,
 * other writers need not: a first pass finds it. Errors are left to the main pass, which meets them again. */
static void find_architecture(struct cur c, uint64_t n_kv, struct gguf_info *out)
{
	cg_err quiet;
	c.e = &quiet;
	for (uint64_t i = 0; i < n_kv; i++) {
		const char *k, *s;
		uint64_t kn, sn;
		uint32_t t;
		if (rd_str(&c, &k, &kn) < 0 || rd_u32(&c, &t) < 0)
			return;
		if (t == GT_STR && key_is(k, kn, "general.architecture")) {
			if (rd_str(&c, &s, &sn) == 0)
				copy_str(out->architecture, sizeof out->architecture, s, sn);
			return;
		}
		if (skip_value(&c, t, 0) < 0)
			return;
	}
}

int gguf_parse(const uint8_t *p, size_t len, uint64_t file_size, struct gguf_info *out, cg_err *e)
{
	memset(out, 0, sizeof *out);
	struct cur c = {p, len, 0, e, "the header"};
	uint32_t magic = 0, ftype = UINT32_MAX;
	int rc = -CG_E_INVALID_ARGUMENT;
	if (file_size < len)
		file_size = len;
	if (len < 4 || memcmp(p, "GGUF", 4) != 0)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "not a GGUF file (bad magic)");
	if (rd_u32(&c, &magic) < 0 || rd_u32(&c, &out->version) < 0)
		return rc;
	if (out->version != 2 && out->version != 3)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "unsupported GGUF version %u (2 and 3 are)", out->version);
	c.what = "the counts";
	if (rd_u64(&c, &out->n_tensors) < 0 || rd_u64(&c, &out->n_kv) < 0)
		return rc;
	if (out->n_kv > GGUF_MAX_KV)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "GGUF declares %llu metadata pairs (max %u)",
			       (unsigned long long)out->n_kv, GGUF_MAX_KV);
	if (out->n_tensors > GGUF_MAX_TENSORS)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "GGUF declares %llu tensors (max %u)",
			       (unsigned long long)out->n_tensors, GGUF_MAX_TENSORS);
	out->alignment = 32;
	find_architecture(c, out->n_kv, out);
	for (uint64_t i = 0; i < out->n_kv; i++) {
		const char *k;
		uint64_t kn;
		uint32_t t;
		c.what = "a metadata key";
		if (rd_str(&c, &k, &kn) < 0 || rd_u32(&c, &t) < 0)
			goto fail;
		c.what = "a metadata value";
		const char *s;
		uint64_t sn, v;
		if (t == GT_STR && (key_is(k, kn, "general.architecture") || key_is(k, kn, "general.name") ||
				    key_is(k, kn, "tokenizer.ggml.model") || key_is(k, kn, "tokenizer.chat_template"))) {
			if (rd_str(&c, &s, &sn) < 0)
				goto fail;
			if (key_is(k, kn, "general.architecture"))
				copy_str(out->architecture, sizeof out->architecture, s, sn);
			else if (key_is(k, kn, "general.name"))
				copy_str(out->name, sizeof out->name, s, sn);
			else if (key_is(k, kn, "tokenizer.ggml.model"))
				copy_str(out->tokenizer, sizeof out->tokenizer, s, sn);
			else if (sn <= GGUF_MAX_TEMPLATE && !out->chat_template) {
				/* Kept verbatim (llama.cpp matches on it); only the length is capped. */
				out->chat_template = malloc((size_t)sn + 1);
				if (!out->chat_template) {
					cg_fail(e, CG_E_INTERNAL, "out of memory");
					rc = -CG_E_INTERNAL;
					goto fail;
				}
				memcpy(out->chat_template, s, (size_t)sn);
				out->chat_template[sn] = 0;
			}
			continue;
		}
		if (t == GT_ARR && key_is(k, kn, "tokenizer.ggml.tokens")) {
			size_t save = c.off;
			uint32_t et;
			if (rd_u32(&c, &et) < 0 || rd_u64(&c, &out->vocab_size) < 0)
				goto fail;
			c.off = save;
			if (skip_value(&c, t, 0) < 0)
				goto fail;
			continue;
		}
		if (key_is(k, kn, "general.alignment") || key_is(k, kn, "general.file_type")) {
			int r = rd_uint(&c, t, &v);
			if (r < 0)
				goto fail;
			if (r > 0) {
				cg_fail(e, CG_E_INVALID_ARGUMENT, "GGUF key %.*s must be an integer", (int)kn, k);
				goto fail;
			}
			if (key_is(k, kn, "general.alignment")) {
				if (v == 0 || v > 65536 || (v & (v - 1)) != 0) {
					cg_fail(e, CG_E_INVALID_ARGUMENT, "GGUF general.alignment %llu is not a power of two <= 65536",
						(unsigned long long)v);
					goto fail;
				}
				out->alignment = (uint32_t)v;
			} else {
				ftype = v > UINT32_MAX ? UINT32_MAX - 1 : (uint32_t)v;
			}
			continue;
		}
		if (t != GT_STR && t != GT_ARR && out->architecture[0]) {
			int r = rd_uint(&c, t, &v); /* reads nothing when the type is not an integer */
			if (r < 0)
				goto fail;
			if (r == 0) {
				arch_assign(out, k, kn, v);
				continue;
			}
		}
		if (skip_value(&c, t, 0) < 0)
			goto fail;
	}
	if (!out->head_count_kv)
		out->head_count_kv = out->head_count;

	/* Tensor infos: name, dims, type, offset relative to the data section. */
	uint64_t count_by_type[N_TYPES] = {0};
	for (uint64_t i = 0; i < out->n_tensors; i++) {
		const char *name;
		uint64_t nn, ne = 1, off;
		uint32_t nd, t;
		c.what = "a tensor info";
		if (rd_str(&c, &name, &nn) < 0 || rd_u32(&c, &nd) < 0)
			goto fail;
		if (nd == 0 || nd > 4) {
			cg_fail(e, CG_E_INVALID_ARGUMENT, "GGUF tensor %llu has %u dimensions (1..4)", (unsigned long long)i, nd);
			goto fail;
		}
		for (uint32_t d = 0; d < nd; d++) {
			uint64_t dim;
			if (rd_u64(&c, &dim) < 0)
				goto fail;
			if (dim == 0 || dim > (1ull << 40) || ne > UINT64_MAX / dim || ne * dim > (1ull << 50)) {
				cg_fail(e, CG_E_INVALID_ARGUMENT, "GGUF tensor %llu has an impossible shape",
					(unsigned long long)i);
				goto fail;
			}
			ne *= dim;
		}
		if (rd_u32(&c, &t) < 0 || rd_u64(&c, &off) < 0)
			goto fail;
		if (t >= N_TYPES || !types[t].blck) {
			cg_fail(e, CG_E_INVALID_ARGUMENT, "GGUF tensor %llu has unknown type %u", (unsigned long long)i, t);
			goto fail;
		}
		if (ne % types[t].blck) {
			cg_fail(e, CG_E_INVALID_ARGUMENT, "GGUF tensor %llu: %llu elements is not a multiple of the %s block",
				(unsigned long long)i, (unsigned long long)ne, types[t].name);
			goto fail;
		}
		if (off % out->alignment) {
			cg_fail(e, CG_E_INVALID_ARGUMENT, "GGUF tensor %llu is not aligned to %u", (unsigned long long)i,
				out->alignment);
			goto fail;
		}
		uint64_t nbytes = ne / types[t].blck * types[t].size; /* ne <= 2^50, size < 2^9: no overflow */
		if (off > (1ull << 56) || off + nbytes > out->data_size)
			out->data_size = off > (1ull << 56) ? UINT64_MAX : off + nbytes;
		out->n_params += ne;
		count_by_type[t] += ne;
		(void)name;
	}
	out->data_offset = (c.off + out->alignment - 1) / out->alignment * out->alignment;
	if (out->data_offset > GGUF_MAX_HEADER) {
		cg_fail(e, CG_E_INVALID_ARGUMENT, "GGUF header of %llu bytes exceeds %u",
			(unsigned long long)out->data_offset, GGUF_MAX_HEADER);
		goto fail;
	}
	/* No tensor data (a vocabulary-only file): the padding before the empty data section may be absent. */
	if (out->data_size && (out->data_size > file_size || out->data_offset + out->data_size > file_size)) {
		cg_fail(e, CG_E_INVALID_ARGUMENT,
			"GGUF tensor data is truncated: the tensors need %llu bytes from offset %llu, the file has %llu",
			(unsigned long long)out->data_size, (unsigned long long)out->data_offset,
			(unsigned long long)file_size);
		goto fail;
	}
	if (ftype != UINT32_MAX && strcmp(gguf_ftype_name(ftype), "?") != 0) {
		snprintf(out->quantization, sizeof out->quantization, "%s", gguf_ftype_name(ftype));
	} else {
		/* No (known) file type: name the type holding the most elements among the 2-D+ weights. */
		size_t best = 0;
		for (size_t t = 1; t < N_TYPES; t++)
			if (count_by_type[t] > count_by_type[best])
				best = t;
		snprintf(out->quantization, sizeof out->quantization, "%s",
			 out->n_tensors ? gguf_type_name((uint32_t)best) : "none");
	}
	return 0;
fail:
	gguf_info_done(out);
	return rc;
}

void gguf_info_done(struct gguf_info *gi)
{
	if (!gi)
		return;
	free(gi->chat_template);
	gi->chat_template = NULL;
}

int gguf_read_file(const char *path, struct gguf_info *out, char sha256_hex[65], cg_err *e)
{
	memset(out, 0, sizeof *out);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cg_fail(e, errno == ENOENT ? CG_E_NOT_FOUND : CG_E_INVALID_ARGUMENT, "cannot open the model file: %s",
			       strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "the model path is not a regular file");
	}
	if (st.st_size < 4) {
		close(fd);
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "not a GGUF file (%lld bytes)", (long long)st.st_size);
	}
	size_t len = (size_t)st.st_size;
	/* Map the whole file: the parser touches only the header pages, hashing streams the rest once. */
	uint8_t *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return cg_fail(e, CG_E_INTERNAL, "cannot map the model file: %s", strerror(errno));
	size_t hdr = len < GGUF_MAX_HEADER ? len : GGUF_MAX_HEADER;
	int rc = gguf_parse(m, hdr, (uint64_t)len, out, e);
	if (rc == 0 && sha256_hex) {
		uint8_t h[32];
		madvise(m, len, MADV_SEQUENTIAL);
		sha256(h, m, len);
		hex_encode(sha256_hex, h, sizeof h);
	}
	munmap(m, len);
	return rc;
}
