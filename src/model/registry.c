/* The model registry: the models folder, the LRU of loaded models under a memory budget, admission (slots,
 * bounded queue) and the OpenAI chat completion surface over the llama and upstream backends. */
#define CG_MODEL_INTERNAL 1
#include "model/model.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/enc.h"
#include "base/json.h"
#include "base/log.h"
#include "base/redact.h"
#include "model/gguf.h"
#include "model/llama.h"
#include "model/upstream.h"

#define MAX_NAME 64
#define MAX_MODELS 256
#define MAX_CONTENT (1u << 20) /* all message text of one request */
#define MAX_ANSWER (4u << 20)  /* generated text kept for a non-streamed answer */
#define INDEX_FILE ".clawgrid-index.json"

/* ---- configuration ---- */

static const char *const cfg_keys[] = {"folder", "memoryBudgetMiB", "threads", "slots", "queue",
				       "contextPerSlot", "batch", "preload", "llamaLib", "gpuLayers",
				       "gpuBudgetMiB", "engines", NULL};
static const char *const eng_keys[] = {"name", "kind", "url", "apiKey", "models", "maxConcurrent",
				       "maxWaiting", "queue", "healthIntervalMs", NULL};
static const char *const up_kinds[] = {"llama-server", "vllm", "ollama", NULL};

static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > MAX_NAME || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		      s[i] == '.' || s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

int model_config_check(json_t *c, cg_err *e)
{
	int64_t v;
	const char *s;
	json_t *a;
	if (!json_is_object(c))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "models: must be an object");
	if (jp_only(c, "models", cfg_keys, e) < 0 || jp_str(c, "models", "folder", 0, 1, 4000, &s, e) < 0 ||
	    jp_int(c, "models", "memoryBudgetMiB", 0, 1, 1 << 24, &v, e) < 0 ||
	    jp_int(c, "models", "threads", 0, 0, 256, &v, e) < 0 || jp_int(c, "models", "slots", 0, 1, 64, &v, e) < 0 ||
	    jp_int(c, "models", "queue", 0, 0, 4096, &v, e) < 0 ||
	    jp_int(c, "models", "contextPerSlot", 0, 64, 1 << 20, &v, e) < 0 ||
	    jp_int(c, "models", "batch", 0, 32, 8192, &v, e) < 0 ||
	    jp_str(c, "models", "llamaLib", 0, 1, 4000, &s, e) < 0 ||
	    jp_int(c, "models", "gpuLayers", 0, -1, 10000, &v, e) < 0 ||
	    jp_int(c, "models", "gpuBudgetMiB", 0, 0, 1 << 24, &v, e) < 0 ||
	    jp_arr(c, "models", "preload", 0, MAX_MODELS, &a, e) < 0)
		return -CG_E_INVALID_ARGUMENT;
	a = json_object_get(c, "preload");
	for (size_t i = 0; i < json_array_size(a); i++) {
		const char *n = json_string_value(json_array_get(a, i));
		if (!n || !name_ok(n))
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "models.preload[%zu]: must be a model name", i);
	}
	if (jp_arr(c, "models", "engines", 0, 32, &a, e) < 0)
		return -CG_E_INVALID_ARGUMENT;
	a = json_object_get(c, "engines");
	for (size_t i = 0; i < json_array_size(a); i++) {
		json_t *g = json_array_get(a, i), *ms;
		char p[48];
		snprintf(p, sizeof p, "models.engines[%zu]", i);
		if (!json_is_object(g))
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: must be an object", p);
		if (jp_only(g, p, eng_keys, e) < 0 || jp_str(g, p, "name", JP_REQUIRED, 1, MAX_NAME, &s, e) < 0)
			return -CG_E_INVALID_ARGUMENT;
		if (!name_ok(s))
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s.name: letters, digits, '.', '_' and '-' only", p);
		if (jp_enum(g, p, "kind", JP_REQUIRED, up_kinds, &s, e) < 0 ||
		    jp_str(g, p, "url", JP_REQUIRED, 8, 2000, &s, e) < 0)
			return -CG_E_INVALID_ARGUMENT;
		if (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s.url: must be an http:// or https:// URL", p);
		if (jp_str(g, p, "apiKey", 0, 1, 4096, &s, e) < 0 ||
		    jp_int(g, p, "maxConcurrent", 0, 1, 4096, &v, e) < 0 ||
		    jp_int(g, p, "maxWaiting", 0, 0, 4096, &v, e) < 0 || jp_int(g, p, "queue", 0, 0, 4096, &v, e) < 0 ||
		    jp_int(g, p, "healthIntervalMs", 0, 100, 600000, &v, e) < 0 ||
		    jp_arr(g, p, "models", JP_REQUIRED, MAX_MODELS, &ms, e) < 0)
			return -CG_E_INVALID_ARGUMENT;
		if (json_array_size(ms) == 0)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s.models: list at least one model", p);
		for (size_t k = 0; k < json_array_size(ms); k++) {
			const char *n = json_string_value(json_array_get(ms, k));
			if (!n || !*n || strlen(n) > 200)
				return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s.models[%zu]: must be a model name", p, k);
		}
	}
	return 0;
}

static int64_t cfg_int(json_t *c, const char *k, int64_t def)
{
	json_t *v = json_object_get(c, k);
	return json_is_integer(v) ? json_integer_value(v) : def;
}

void model_folder_path(json_t *section, const char *data_dir, char *out, size_t cap)
{
	const char *f = json_string_value(json_object_get(section, "folder"));
	if (!f)
		snprintf(out, cap, "%s/models", data_dir);
	else if (f[0] == '/')
		snprintf(out, cap, "%s", f);
	else
		snprintf(out, cap, "%s/%s", data_dir, f);
}

/* ---- the folder ---- */

static void ensure_dir(const char *d)
{
	if (mkdir(d, 0700) != 0 && errno != EEXIST)
		log_warn("model", "cannot create the models folder", "err=\"%s\"", strerror(errno));
}

/* The hash cache. jansson's file functions open without O_CLOEXEC, so descriptors are ours. A missing,
 * unreadable or oversized index is an empty one (hashes are recomputed). */
static json_t *index_load(const char *folder)
{
	char p[PATH_MAX + 64];
	snprintf(p, sizeof p, "%s/" INDEX_FILE, folder);
	json_t *j = NULL;
	int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= (16 << 20))
		j = json_loadfd(fd, 0, NULL);
	if (fd >= 0)
		close(fd);
	if (!json_is_object(j)) {
		json_decref(j);
		j = json_object();
	}
	return j;
}

static void index_save(const char *folder, json_t *idx)
{
	char p[PATH_MAX + 64], t[PATH_MAX + 80];
	snprintf(p, sizeof p, "%s/" INDEX_FILE, folder);
	snprintf(t, sizeof t, "%s.tmp.%d", p, (int)getpid());
	int fd = open(t, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	bool ok = fd >= 0 && json_dumpfd(idx, fd, JSON_COMPACT | JSON_SORT_KEYS) == 0;
	if (fd >= 0 && close(fd) != 0)
		ok = false;
	if (!ok || rename(t, p) != 0)
		unlink(t);
}

/* Reads one model file's header into a JSON entry, using the index for the hash when size and mtime match. */
static json_t *entry_from_file(const char *folder, const char *file, json_t *idx, bool *idx_dirty)
{
	char path[PATH_MAX + 300];
	snprintf(path, sizeof path, "%s/%s", folder, file);
	size_t fl = strlen(file);
	char name[MAX_NAME + 8];
	snprintf(name, sizeof name, "%.*s", (int)(fl - 5), file);
	json_t *o = json_pack("{s:s,s:s}", "name", name, "file", file);
	struct stat st;
	if (stat(path, &st) != 0) {
		json_object_set_new(o, "error", json_string("cannot stat the file"));
		return o;
	}
	json_object_set_new(o, "size", json_integer((json_int_t)st.st_size));
	json_t *cached = json_object_get(idx, file);
	const char *hash = json_string_value(json_object_get(cached, "sha256"));
	bool fresh = hash && json_integer_value(json_object_get(cached, "size")) == (json_int_t)st.st_size &&
		     json_integer_value(json_object_get(cached, "mtime")) == (json_int_t)st.st_mtime;
	struct gguf_info gi;
	char hex[65];
	cg_err e;
	if (gguf_read_file(path, &gi, fresh ? NULL : hex, &e) != 0) {
		json_object_set_new(o, "error", json_string(e.msg));
		return o;
	}
	if (!fresh) {
		json_object_set_new(idx, file, json_pack("{s:I,s:I,s:s}", "size", (json_int_t)st.st_size, "mtime",
							 (json_int_t)st.st_mtime, "sha256", hex));
		*idx_dirty = true;
		hash = hex;
	}
	json_object_set_new(o, "sha256", json_string(hash));
	json_object_set_new(o, "architecture", json_string(gi.architecture));
	if (gi.name[0])
		json_object_set_new(o, "display_name", json_string(gi.name));
	json_object_set_new(o, "parameters", json_integer((json_int_t)gi.n_params));
	json_object_set_new(o, "quantization", json_string(gi.quantization));
	json_object_set_new(o, "context_length", json_integer((json_int_t)gi.context_length));
	json_object_set_new(o, "embedding_length", json_integer((json_int_t)gi.embedding_length));
	json_object_set_new(o, "layers", json_integer((json_int_t)gi.block_count));
	json_object_set_new(o, "heads", json_integer((json_int_t)gi.head_count));
	json_object_set_new(o, "heads_kv", json_integer((json_int_t)gi.head_count_kv));
	json_object_set_new(o, "vocab_size", json_integer((json_int_t)gi.vocab_size));
	json_object_set_new(o, "chat_template", json_boolean(gi.chat_template != NULL));
	json_object_set_new(o, "gguf_version", json_integer(gi.version));
	gguf_info_done(&gi);
	return o;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int model_folder_list(const char *folder, json_t **out, cg_err *e)
{
	DIR *d = opendir(folder);
	*out = json_array();
	if (!d)
		return errno == ENOENT ? 0 : cg_fail(e, CG_E_INTERNAL, "cannot read the models folder: %s", strerror(errno));
	char *names[MAX_MODELS];
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) && n < MAX_MODELS) {
		size_t l = strlen(de->d_name);
		if (l > 5 && l <= MAX_NAME + 5 && strcmp(de->d_name + l - 5, ".gguf") == 0 && de->d_name[0] != '.')
			names[n++] = strdup(de->d_name);
		if (n && !names[n - 1])
			n--;
	}
	closedir(d);
	qsort(names, n, sizeof names[0], cmp_str);
	json_t *idx = index_load(folder);
	bool dirty = false;
	for (size_t i = 0; i < n; i++) {
		json_array_append_new(*out, entry_from_file(folder, names[i], idx, &dirty));
		free(names[i]);
	}
	if (dirty)
		index_save(folder, idx);
	json_decref(idx);
	return 0;
}

static int copy_file(const char *src, const char *dst, cg_err *e)
{
	int in = open(src, O_RDONLY | O_CLOEXEC), out = -1;
	if (in < 0)
		return cg_fail(e, errno == ENOENT ? CG_E_NOT_FOUND : CG_E_INVALID_ARGUMENT, "cannot open the source file: %s",
			       strerror(errno));
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (out < 0) {
		close(in);
		return cg_fail(e, CG_E_INTERNAL, "cannot create the model file: %s", strerror(errno));
	}
	static char bufc[1 << 16];
	ssize_t r;
	int rc = 0;
	while ((r = read(in, bufc, sizeof bufc)) > 0) {
		for (ssize_t off = 0; off < r;) {
			ssize_t w = write(out, bufc + off, (size_t)(r - off));
			if (w <= 0) {
				rc = cg_fail(e, CG_E_INTERNAL, "writing the model file failed: %s", strerror(errno));
				goto out;
			}
			off += w;
		}
	}
	if (r < 0)
		rc = cg_fail(e, CG_E_INTERNAL, "reading the source file failed: %s", strerror(errno));
	if (rc == 0 && fsync(out) != 0)
		rc = cg_fail(e, CG_E_INTERNAL, "fsync failed: %s", strerror(errno));
out:
	close(in);
	close(out);
	return rc;
}

int model_folder_add(const char *folder, const char *src, const char *name, json_t **info, cg_err *e)
{
	char nm[MAX_NAME + 8];
	if (!name) {
		const char *b = strrchr(src, '/');
		b = b ? b + 1 : src;
		size_t l = strlen(b);
		if (l > 5 && strcmp(b + l - 5, ".gguf") == 0)
			l -= 5;
		snprintf(nm, sizeof nm, "%.*s", (int)(l > MAX_NAME ? MAX_NAME + 1 : l), b);
		name = nm;
	}
	if (!name_ok(name))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "model name '%s': 1..64 letters, digits, '.', '_' or '-'", name);
	struct gguf_info gi;
	if (gguf_read_file(src, &gi, NULL, e) != 0)
		return -(int)e->code;
	gguf_info_done(&gi);
	ensure_dir(folder);
	char dst[PATH_MAX + 100], tmp[PATH_MAX + 120];
	snprintf(dst, sizeof dst, "%s/%s.gguf", folder, name);
	if (access(dst, F_OK) == 0)
		return cg_fail(e, CG_E_CONFLICT, "model %s already exists", name);
	/* Copy under a hidden name, then rename: a crash never leaves a half model that lists as valid. */
	snprintf(tmp, sizeof tmp, "%s/.%s.gguf.part", folder, name);
	unlink(tmp);
	int rc = copy_file(src, tmp, e);
	if (rc == 0 && link(tmp, dst) != 0)
		rc = errno == EEXIST ? cg_fail(e, CG_E_CONFLICT, "model %s already exists", name)
				     : cg_fail(e, CG_E_INTERNAL, "cannot place the model file: %s", strerror(errno));
	unlink(tmp);
	if (rc != 0)
		return rc;
	json_t *idx = index_load(folder);
	bool dirty = false;
	char file[MAX_NAME + 80];
	snprintf(file, sizeof file, "%s.gguf", name);
	json_t *ent = entry_from_file(folder, file, idx, &dirty);
	if (dirty)
		index_save(folder, idx);
	json_decref(idx);
	if (info)
		*info = ent;
	else
		json_decref(ent);
	return 0;
}

int model_folder_rm(const char *folder, const char *name, cg_err *e)
{
	if (!name_ok(name))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "model name '%s' is not valid", name);
	char p[PATH_MAX + 100];
	snprintf(p, sizeof p, "%s/%s.gguf", folder, name);
	if (unlink(p) != 0)
		return cg_fail(e, errno == ENOENT ? CG_E_NOT_FOUND : CG_E_INTERNAL, "model %s: %s", name,
			       errno == ENOENT ? "no such model" : strerror(errno));
	json_t *idx = index_load(folder);
	char file[MAX_NAME + 80];
	snprintf(file, sizeof file, "%s.gguf", name);
	if (json_object_del(idx, file) == 0)
		index_save(folder, idx);
	json_decref(idx);
	return 0;
}

/* ---- the registry ---- */

enum mstate { M_UNLOADED, M_LOADING, M_READY, M_FAILED };
static const char *const mstate_names[] = {"unloaded", "loading", "ready", "failed"};

struct waiter {
	struct waiter *next;
	model_done_fn done;
	void *arg;
};

struct mentry {
	struct model_registry *reg;
	char name[MAX_NAME + 1];
	bool upstream;
	bool present; /* seen in the last folder scan (local) */
	json_t *meta; /* folder entry (local) */
	uint64_t file_size, est_bytes;
	enum mstate state;
	cg_err load_err;
	struct llm_engine *eng;
	int64_t last_used;
	bool unloading;
	struct waiter *waiters;
	/* upstream */
	struct up_engine *up;
	char up_model[201];
	/* admission */
	int max_active, max_queue, active, queued;
	struct model_chat *qhead, *qtail;
	uint64_t served, rejected;
};

struct model_registry {
	struct event_base *base;
	json_t *cfg;
	char folder[PATH_MAX];
	uint64_t budget;
	int threads, slots, queue, ctx, batch, gpu_layers;
	struct mentry *m[MAX_MODELS];
	size_t n;
	struct up_engine *engines[32];
	size_t n_engines;
	struct model_chat *all; /* every live chat, for teardown */
	bool freeing;
};

struct model_chat {
	struct model_registry *reg;
	struct mentry *m;
	struct model_chat *qnext;        /* queue link */
	struct model_chat *anext, *aprev; /* registry list */
	struct model_chat_cb cb;
	void *arg;
	json_t *messages; /* normalized [{role, content}] */
	struct llm_chat_params p;
	json_t *up_request; /* upstream: the request to forward */
	bool stream, queued, running;
	bool include_usage; /* stream_options.include_usage: usage in a chunk of its own, as OpenAI sends it */
	struct llm_req *lreq;
	struct up_req *ureq;
	char id[48];
	int64_t created;
	buf text;
	int prompt_tokens, completion_tokens;
	bool up_usage_seen;
	json_t *up_usage;
	char finish[16];
};

static struct mentry *find(struct model_registry *reg, const char *name)
{
	for (size_t i = 0; i < reg->n; i++)
		if (strcmp(reg->m[i]->name, name) == 0)
			return reg->m[i];
	return NULL;
}

/* A name not seen yet may be a file copied into the folder by hand since the last scan. */
static struct mentry *find_fresh(struct model_registry *reg, const char *name)
{
	struct mentry *m = find(reg, name);
	cg_err e;
	if (!m && name_ok(name) && model_rescan(reg, &e) == 0)
		m = find(reg, name);
	return m;
}

static uint64_t meminfo_total(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	unsigned long long kb = 0;
	char line[128];
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb ? (uint64_t)kb * 1024 : (uint64_t)4 << 30;
}

/* What loading costs: the mapped weights, the KV cache of every slot (f16 K and V) and compute buffers. */
static uint64_t estimate(struct model_registry *reg, json_t *meta, uint64_t size)
{
	uint64_t layers = (uint64_t)json_integer_value(json_object_get(meta, "layers"));
	uint64_t embd = (uint64_t)json_integer_value(json_object_get(meta, "embedding_length"));
	uint64_t heads = (uint64_t)json_integer_value(json_object_get(meta, "heads"));
	uint64_t kvh = (uint64_t)json_integer_value(json_object_get(meta, "heads_kv"));
	uint64_t vocab = (uint64_t)json_integer_value(json_object_get(meta, "vocab_size"));
	uint64_t embd_kv = heads ? embd * (kvh ? kvh : heads) / heads : embd;
	uint64_t ctx = (uint64_t)reg->slots * (uint64_t)reg->ctx;
	uint64_t kv = 2 * layers * ctx * embd_kv * 2;
	uint64_t compute = vocab * 4 * (uint64_t)reg->slots + embd * 4 * (uint64_t)reg->batch * 8 + (1u << 20);
	return size + kv + compute;
}

static void chat_fail(struct model_chat *c, const cg_err *e);
static void pump(struct mentry *m);

static void entry_free(struct mentry *m)
{
	json_decref(m->meta);
	free(m);
}

int model_rescan(struct model_registry *reg, cg_err *e)
{
	json_t *list;
	if (model_folder_list(reg->folder, &list, e) != 0)
		return -(int)e->code;
	for (size_t i = 0; i < reg->n; i++)
		if (!reg->m[i]->upstream)
			reg->m[i]->present = false;
	size_t k;
	json_t *ent;
	json_array_foreach(list, k, ent) {
		const char *name = json_string_value(json_object_get(ent, "name"));
		struct mentry *m = find(reg, name);
		if (m && m->upstream)
			continue; /* an engine's model of the same name wins; the file stays listed by the CLI */
		if (!m) {
			if (reg->n >= MAX_MODELS)
				break;
			m = calloc(1, sizeof *m);
			if (!m)
				break;
			m->reg = reg;
			snprintf(m->name, sizeof m->name, "%s", name);
			m->max_active = reg->slots;
			m->max_queue = reg->queue;
			reg->m[reg->n++] = m;
		}
		m->present = true;
		json_decref(m->meta);
		m->meta = json_incref(ent);
		m->file_size = (uint64_t)json_integer_value(json_object_get(ent, "size"));
		m->est_bytes = estimate(reg, ent, m->file_size);
	}
	json_decref(list);
	/* Files that disappeared: forget unloaded entries; loaded ones stay until unloaded (mmap keeps them). */
	for (size_t i = 0; i < reg->n;) {
		struct mentry *m = reg->m[i];
		if (!m->upstream && !m->present && m->state == M_UNLOADED && !m->active && !m->queued) {
			entry_free(m);
			reg->m[i] = reg->m[--reg->n];
		} else {
			i++;
		}
	}
	return 0;
}

static uint64_t used_bytes(struct model_registry *reg)
{
	uint64_t u = 0;
	for (size_t i = 0; i < reg->n; i++)
		if (!reg->m[i]->upstream && (reg->m[i]->state == M_LOADING || reg->m[i]->state == M_READY))
			u += reg->m[i]->est_bytes;
	return u;
}

static void run_waiters(struct mentry *m, const cg_err *e)
{
	struct waiter *w = m->waiters;
	m->waiters = NULL;
	while (w) {
		struct waiter *n = w->next;
		w->done(w->arg, e);
		free(w);
		w = n;
	}
}

static void fail_queue(struct mentry *m, const cg_err *e)
{
	while (m->qhead) {
		struct model_chat *c = m->qhead;
		m->qhead = c->qnext;
		if (!m->qhead)
			m->qtail = NULL;
		m->queued--;
		c->queued = false;
		chat_fail(c, e);
	}
}

static void do_unload(struct mentry *m)
{
	cg_err ue;
	cg_fail(&ue, CG_E_UNAVAILABLE, "model %s was unloaded", m->name);
	ue.retry_after_s = 1;
	m->unloading = true;
	fail_queue(m, &ue);
	struct llm_engine *eng = m->eng;
	m->eng = NULL;
	llm_engine_free(eng); /* running requests end through on_done with "unloaded" */
	if (m->waiters)
		run_waiters(m, &ue);
	m->state = M_UNLOADED;
	m->unloading = false;
	log_info("model", "unloaded", "model=%s", m->name);
}

static void eng_loaded(void *arg, const cg_err *e)
{
	struct mentry *m = arg;
	if (e) {
		m->state = M_FAILED;
		m->load_err = *e;
		log_warn("model", "load failed", "model=%s err=\"%s\"", m->name, e->msg);
		run_waiters(m, e);
		fail_queue(m, e);
		return;
	}
	m->state = M_READY;
	log_info("model", "loaded", "model=%s size_mib=%llu", m->name,
		 (unsigned long long)(llm_engine_size(m->eng) >> 20));
	run_waiters(m, NULL);
	pump(m);
}

static void eng_text(void *arg, void *user, const char *text, size_t n);
static void eng_done(void *arg, void *user, const char *finish, int pt, int ct, const cg_err *e);

static int make_room(struct model_registry *reg, struct mentry *want, cg_err *e)
{
	if (want->est_bytes > reg->budget)
		return cg_fail(e, CG_E_QUOTA_EXCEEDED, "model %s needs about %llu MiB, more than the memory budget of %llu MiB",
			       want->name, (unsigned long long)(want->est_bytes >> 20),
			       (unsigned long long)(reg->budget >> 20));
	while (used_bytes(reg) + want->est_bytes > reg->budget) {
		struct mentry *lru = NULL;
		for (size_t i = 0; i < reg->n; i++) {
			struct mentry *m = reg->m[i];
			if (m == want || m->upstream || m->state != M_READY || m->active || m->queued)
				continue;
			if (!lru || m->last_used < lru->last_used)
				lru = m;
		}
		if (!lru) {
			cg_fail(e, CG_E_UNAVAILABLE, "model %s: the memory budget is held by busy models; retry later",
				want->name);
			e->retry_after_s = 5;
			return -CG_E_UNAVAILABLE;
		}
		log_info("model", "evicting least recently used", "model=%s for=%s", lru->name, want->name);
		do_unload(lru);
	}
	return 0;
}

/* The slots of a model share one batched context, so its threads split each decode step. ggml's threads
 * spin at barriers: on a small host (<= 4 cores) a second thread contends with the loop, the other models
 * and everything else, and throughput collapses (measured on 2 cores: 700 tok/s with 1 thread, 4 with 2
 * under load; see docs/models.md). Large hosts get one thread per slot, at most half the cores. */
static int default_threads(int slots, long ncpu)
{
	if (ncpu <= 4)
		return 1;
	long t = slots < ncpu / 2 ? slots : ncpu / 2;
	return t > 0 ? (int)t : 1;
}

static int start_load(struct model_registry *reg, struct mentry *m, cg_err *e)
{
	if (m->state == M_LOADING || m->state == M_READY)
		return 0;
	if (m->state == M_FAILED) {
		llm_engine_free(m->eng);
		m->eng = NULL;
		m->state = M_UNLOADED;
	}
	if (!m->present)
		return cg_fail(e, CG_E_NOT_FOUND, "model %s: the file is gone", m->name);
	const char *err = json_string_value(json_object_get(m->meta, "error"));
	if (err)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "model %s: %s", m->name, err);
	if (llm_runtime_open(json_string_value(json_object_get(reg->cfg, "llamaLib")), e) != 0)
		return -CG_E_UNAVAILABLE;
	if (make_room(reg, m, e) != 0)
		return -(int)e->code;
	char path[PATH_MAX + 100];
	snprintf(path, sizeof path, "%s/%s", reg->folder, json_string_value(json_object_get(m->meta, "file")));
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	struct llm_params p = {
		.slots = reg->slots,
		.ctx_per_slot = reg->ctx,
		.threads = reg->threads ? reg->threads : default_threads(reg->slots, ncpu),
		.batch = reg->batch,
		.gpu_layers = llm_gpu_count() > 0 ? reg->gpu_layers : 0,
	};
	static const struct llm_engine_cb cb = {eng_loaded, eng_text, eng_done};
	if (llm_engine_new(reg->base, path, m->name, &p, &cb, m, &m->eng, e) != 0)
		return -(int)e->code;
	m->state = M_LOADING;
	m->last_used = clock_mono_ms();
	log_info("model", "loading", "model=%s threads=%d slots=%d ctx=%d", m->name, p.threads, p.slots, p.ctx_per_slot);
	return 0;
}

int model_load(struct model_registry *reg, const char *name, model_done_fn done, void *arg, cg_err *e)
{
	struct mentry *m = find_fresh(reg, name);
	if (!m)
		return cg_fail(e, CG_E_NOT_FOUND, "no model named %s", name);
	if (m->upstream)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "model %s is served by an upstream engine; it has no load step",
			       name);
	if (start_load(reg, m, e) != 0)
		return -(int)e->code;
	if (m->state == M_READY) {
		if (done)
			done(arg, NULL);
		return 0;
	}
	if (done) {
		struct waiter *w = calloc(1, sizeof *w);
		if (!w)
			return cg_fail(e, CG_E_INTERNAL, "out of memory");
		w->done = done;
		w->arg = arg;
		w->next = m->waiters;
		m->waiters = w;
	}
	return 0;
}

int model_unload(struct model_registry *reg, const char *name, cg_err *e)
{
	struct mentry *m = find(reg, name);
	if (!m)
		return cg_fail(e, CG_E_NOT_FOUND, "no model named %s", name);
	if (m->upstream)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "model %s is served by an upstream engine", name);
	if (m->state == M_UNLOADED)
		return cg_fail(e, CG_E_CONFLICT, "model %s is not loaded", name);
	do_unload(m);
	if (!m->present && !m->active) {
		for (size_t i = 0; i < reg->n; i++)
			if (reg->m[i] == m) {
				reg->m[i] = reg->m[--reg->n];
				entry_free(m);
				break;
			}
	}
	return 0;
}

static json_t *entry_json(struct mentry *m)
{
	json_t *o = m->meta ? json_deep_copy(m->meta) : json_object();
	json_object_set_new(o, "name", json_string(m->name));
	if (m->upstream) {
		json_object_set_new(o, "backend", json_string("openai"));
		json_object_set_new(o, "engine", json_string(up_engine_name(m->up)));
		json_t *st = up_engine_status(m->up);
		json_object_set(o, "state", json_object_get(st, "state"));
		json_decref(st);
	} else {
		json_object_set_new(o, "backend", json_string("llama"));
		json_object_set_new(o, "state", json_string(mstate_names[m->state]));
		json_object_set_new(o, "memory_estimate_mib", json_integer((json_int_t)(m->est_bytes >> 20)));
		if (m->state == M_FAILED)
			json_object_set_new(o, "load_error", json_string(m->load_err.msg));
		if (m->state == M_READY)
			json_object_set_new(o, "weights_mib", json_integer((json_int_t)(llm_engine_size(m->eng) >> 20)));
	}
	json_object_set_new(o, "slots", json_integer(m->max_active));
	json_object_set_new(o, "active", json_integer(m->active));
	json_object_set_new(o, "queued", json_integer(m->queued));
	json_object_set_new(o, "served", json_integer((json_int_t)m->served));
	json_object_set_new(o, "rejected", json_integer((json_int_t)m->rejected));
	return o;
}

json_t *model_list(struct model_registry *reg)
{
	cg_err e;
	if (model_rescan(reg, &e) != 0) /* files added or removed by hand show up; on failure, the last scan */
		log_warn("model", "cannot rescan the models folder", "err=\"%s\"", e.msg);
	json_t *a = json_array();
	for (size_t i = 0; i < reg->n; i++)
		json_array_append_new(a, entry_json(reg->m[i]));
	return a;
}

int model_info(struct model_registry *reg, const char *name, json_t **out, cg_err *e)
{
	struct mentry *m = find_fresh(reg, name);
	if (!m)
		return cg_fail(e, CG_E_NOT_FOUND, "no model named %s", name);
	*out = entry_json(m);
	return 0;
}

json_t *model_status(struct model_registry *reg)
{
	json_t *loaded = json_array(), *eng = json_array();
	for (size_t i = 0; i < reg->n; i++)
		if (!reg->m[i]->upstream && reg->m[i]->state != M_UNLOADED)
			json_array_append_new(loaded, json_string(reg->m[i]->name));
	for (size_t i = 0; i < reg->n_engines; i++)
		json_array_append_new(eng, up_engine_status(reg->engines[i]));
	return json_pack("{s:o,s:I,s:I,s:o,s:o,s:i,s:i}", "llama", llm_runtime_status(), "budget_mib",
			 (json_int_t)(reg->budget >> 20), "used_mib", (json_int_t)(used_bytes(reg) >> 20), "loaded",
			 loaded, "engines", eng, "slots", reg->slots, "queue", reg->queue);
}

static void preload_done(void *arg, const cg_err *e)
{
	(void)arg;
	(void)e; /* eng_loaded logged the outcome */
}

int model_registry_new(struct event_base *base, json_t *section, const char *data_dir,
		       struct model_registry **out, cg_err *e)
{
	if (model_config_check(section, e) != 0)
		return -CG_E_INVALID_ARGUMENT;
	struct model_registry *reg = calloc(1, sizeof *reg);
	if (!reg)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	reg->base = base;
	reg->cfg = json_deep_copy(section);
	model_folder_path(section, data_dir, reg->folder, sizeof reg->folder);
	redact_register(reg->folder);
	ensure_dir(reg->folder);
	int64_t mib = cfg_int(section, "memoryBudgetMiB", 0);
	reg->budget = mib ? (uint64_t)mib << 20 : meminfo_total() / 2;
	reg->threads = (int)cfg_int(section, "threads", 0);
	reg->slots = (int)cfg_int(section, "slots", 2);
	reg->queue = (int)cfg_int(section, "queue", 16);
	reg->ctx = (int)cfg_int(section, "contextPerSlot", 2048);
	reg->batch = (int)cfg_int(section, "batch", 512);
	reg->gpu_layers = (int)cfg_int(section, "gpuLayers", -1);
	json_t *engines = json_object_get(section, "engines");
	for (size_t i = 0; i < json_array_size(engines); i++) {
		json_t *g = json_array_get(engines, i);
		struct up_engine *u;
		if (up_engine_new(base, g, &u, e) != 0) {
			model_registry_free(reg);
			return -(int)e->code;
		}
		reg->engines[reg->n_engines++] = u;
		json_t *ms = json_object_get(g, "models");
		for (size_t k = 0; k < json_array_size(ms) && reg->n < MAX_MODELS; k++) {
			const char *mn = json_string_value(json_array_get(ms, k));
			struct mentry *m = calloc(1, sizeof *m);
			if (!m)
				continue;
			m->reg = reg;
			m->upstream = true;
			m->up = u;
			m->present = true;
			/* The local name is the engine's model name made safe; both are shown. */
			snprintf(m->up_model, sizeof m->up_model, "%s", mn);
			snprintf(m->name, sizeof m->name, "%.64s", mn);
			if (find(reg, m->name)) {
				free(m);
				continue;
			}
			m->meta = json_pack("{s:s}", "upstream_model", mn);
			m->max_active = (int)cfg_int(g, "maxConcurrent", 4);
			m->max_queue = (int)cfg_int(g, "queue", 16);
			reg->m[reg->n++] = m;
		}
	}
	if (model_rescan(reg, e) != 0) {
		model_registry_free(reg);
		return -(int)e->code;
	}
	json_t *pre = json_object_get(section, "preload");
	for (size_t i = 0; i < json_array_size(pre); i++) {
		const char *n = json_string_value(json_array_get(pre, i));
		cg_err pe;
		if (model_load(reg, n, preload_done, NULL, &pe) != 0)
			log_warn("model", "preload failed", "model=%s err=\"%s\"", n, pe.msg);
	}
	*out = reg;
	return 0;
}

static void chat_free(struct model_chat *c);

void model_registry_free(struct model_registry *reg)
{
	if (!reg)
		return;
	reg->freeing = true;
	/* Drop every chat without callbacks, then stop engines. */
	while (reg->all)
		model_chat_cancel(reg->all);
	for (size_t i = 0; i < reg->n; i++) {
		struct mentry *m = reg->m[i];
		if (m->eng) {
			llm_engine_free(m->eng);
			m->eng = NULL;
		}
		struct waiter *w = m->waiters;
		while (w) {
			struct waiter *n = w->next;
			free(w);
			w = n;
		}
		entry_free(m);
	}
	for (size_t i = 0; i < reg->n_engines; i++)
		up_engine_free(reg->engines[i]);
	json_decref(reg->cfg);
	free(reg);
}

/* ---- chat ---- */

static json_t *usage_json(int pt, int ct)
{
	return json_pack("{s:i,s:i,s:i}", "prompt_tokens", pt, "completion_tokens", ct, "total_tokens", pt + ct);
}

static json_t *chunk_json(struct model_chat *c, json_t *delta, const char *finish)
{
	json_t *ch = json_pack("{s:i,s:o,s:n,s:o}", "index", 0, "delta", delta, "logprobs", "finish_reason",
			       finish ? json_string(finish) : json_null());
	return json_pack("{s:s,s:s,s:I,s:s,s:[o],s:n}", "id", c->id, "object", "chat.completion.chunk", "created",
			 (json_int_t)c->created, "model", c->m->name, "choices", ch, "usage");
}

static json_t *response_json(struct model_chat *c)
{
	json_t *msg = json_pack("{s:s,s:s%}", "role", "assistant", "content", buf_cstr(&c->text), c->text.len);
	json_t *usage = c->up_usage ? json_incref(c->up_usage) : usage_json(c->prompt_tokens, c->completion_tokens);
	return json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:n,s:s}],s:o}", "id", c->id, "object", "chat.completion",
			 "created", (json_int_t)c->created, "model", c->m->name, "choices", "index", 0, "message", msg,
			 "logprobs", "finish_reason", c->finish[0] ? c->finish : "stop", "usage", usage);
}

static void chat_unlink(struct model_chat *c)
{
	struct model_registry *reg = c->reg;
	if (c->aprev)
		c->aprev->anext = c->anext;
	else if (reg->all == c)
		reg->all = c->anext;
	if (c->anext)
		c->anext->aprev = c->aprev;
	c->anext = c->aprev = NULL;
}

static void chat_free(struct model_chat *c)
{
	chat_unlink(c);
	json_decref(c->messages);
	json_decref(c->up_request);
	json_decref(c->up_usage);
	buf_done(&c->text);
	free(c);
}

/* A request that was running ended: free its slot and start the next queued one. */
static void slot_freed(struct mentry *m)
{
	if (m->active > 0)
		m->active--;
	m->last_used = clock_mono_ms();
	if (!m->reg->freeing && !m->unloading)
		pump(m);
}

static void chat_fail(struct model_chat *c, const cg_err *e)
{
	struct mentry *m = c->m;
	bool was_running = c->running;
	c->running = false;
	c->cb.on_done(c->arg, NULL, e);
	chat_free(c);
	if (was_running)
		slot_freed(m);
}

static void chat_finish(struct model_chat *c)
{
	struct mentry *m = c->m;
	c->running = false;
	m->served++;
	if (c->stream) {
		json_t *usage = c->up_usage ? json_incref(c->up_usage) : usage_json(c->prompt_tokens, c->completion_tokens);
		json_t *ch = chunk_json(c, json_object(), c->finish[0] ? c->finish : "stop");
		if (c->include_usage) {
			/* OpenAI's form: the finish chunk, then one with no choices and the usage. */
			c->cb.on_chunk(c->arg, ch);
			json_decref(ch);
			ch = chunk_json(c, json_object(), NULL);
			json_object_set_new(ch, "choices", json_array());
		}
		/* Either way the last chunk carries the usage (seed spec: usage null before, totals at the end). */
		json_object_set_new(ch, "usage", usage);
		c->cb.on_chunk(c->arg, ch);
		json_decref(ch);
	}
	json_t *resp = response_json(c);
	c->cb.on_done(c->arg, resp, NULL);
	json_decref(resp);
	chat_free(c);
	slot_freed(m);
}

static void emit_text(struct model_chat *c, const char *t, size_t n)
{
	if (buf_append(&c->text, t, n) != 0) {
		/* Answers beyond MAX_ANSWER are still streamed; the stored copy stops growing. */
	}
	if (c->stream) {
		json_t *ch = chunk_json(c, json_pack("{s:s%}", "content", t, n), NULL);
		c->cb.on_chunk(c->arg, ch);
		json_decref(ch);
	}
}

static void eng_text(void *arg, void *user, const char *text, size_t n)
{
	(void)arg;
	emit_text(user, text, n);
}

static void eng_done(void *arg, void *user, const char *finish, int pt, int ct, const cg_err *e)
{
	struct mentry *m = arg;
	struct model_chat *c = user;
	if (!c) { /* a cancelled request's slot is free now */
		slot_freed(m);
		return;
	}
	c->lreq = NULL;
	if (e) {
		chat_fail(c, e);
		return;
	}
	c->prompt_tokens = pt;
	c->completion_tokens = ct;
	snprintf(c->finish, sizeof c->finish, "%s", finish ? finish : "stop");
	chat_finish(c);
}

/* Upstream callbacks. */
static void up_chunk(void *arg, json_t *chunk)
{
	struct model_chat *c = arg;
	json_t *ch0 = json_array_get(json_object_get(chunk, "choices"), 0);
	const char *t = json_string_value(json_object_get(json_object_get(ch0, "delta"), "content"));
	const char *fin = json_string_value(json_object_get(ch0, "finish_reason"));
	json_t *usage = json_object_get(chunk, "usage");
	if (json_is_object(usage)) {
		json_decref(c->up_usage);
		c->up_usage = json_incref(usage);
	}
	if (fin)
		snprintf(c->finish, sizeof c->finish, "%s", fin);
	if (t && *t)
		emit_text(c, t, strlen(t));
}

static void up_done(void *arg, json_t *resp, const cg_err *e)
{
	struct model_chat *c = arg;
	c->ureq = NULL;
	if (e) {
		chat_fail(c, e);
		return;
	}
	if (resp) {
		json_t *ch0 = json_array_get(json_object_get(resp, "choices"), 0);
		const char *t = json_string_value(json_object_get(json_object_get(ch0, "message"), "content"));
		const char *fin = json_string_value(json_object_get(ch0, "finish_reason"));
		if (t && buf_append(&c->text, t, strlen(t)) != 0) {
			cg_err te;
			cg_fail(&te, CG_E_INTERNAL, "the engine's answer exceeds %u bytes", MAX_ANSWER);
			chat_fail(c, &te);
			return;
		}
		if (fin)
			snprintf(c->finish, sizeof c->finish, "%s", fin);
		json_t *usage = json_object_get(resp, "usage");
		if (json_is_object(usage)) {
			json_decref(c->up_usage);
			c->up_usage = json_incref(usage);
		}
	}
	chat_finish(c);
}

static int chat_run(struct model_chat *c, cg_err *e)
{
	struct mentry *m = c->m;
	if (m->upstream) {
		static const struct up_cb ucb = {up_chunk, up_done};
		c->ureq = up_chat(m->up, c->up_request, c->stream, &ucb, c, e);
		if (!c->ureq)
			return -(int)e->code;
	} else {
		c->p.messages = c->messages;
		if (llm_engine_submit(m->eng, &c->p, c, &c->lreq, e) != 0)
			return -(int)e->code;
	}
	m->active++;
	c->running = true;
	m->last_used = clock_mono_ms();
	if (c->stream) {
		json_t *ch = chunk_json(c, json_pack("{s:s,s:s}", "role", "assistant", "content", ""), NULL);
		c->cb.on_chunk(c->arg, ch);
		json_decref(ch);
	}
	return 0;
}

/* Starts queued requests while slots are free (and the model is ready). */
static void pump(struct mentry *m)
{
	if (!m->upstream && m->state != M_READY)
		return;
	while (m->qhead && m->active < m->max_active) {
		struct model_chat *c = m->qhead;
		m->qhead = c->qnext;
		if (!m->qhead)
			m->qtail = NULL;
		m->queued--;
		c->queued = false;
		cg_err e;
		if (m->upstream && up_engine_admit(m->up, &e) != 0) {
			chat_fail(c, &e);
			continue;
		}
		if (chat_run(c, &e) != 0)
			chat_fail(c, &e);
	}
}

static void enqueue(struct mentry *m, struct model_chat *c)
{
	c->qnext = NULL;
	if (m->qtail)
		m->qtail->qnext = c;
	else
		m->qhead = c;
	m->qtail = c;
	m->queued++;
	c->queued = true;
}

static const char *const roles[] = {"system", "user", "assistant", "tool", "developer", NULL};

/* Validates the OpenAI request into c (messages normalized to {role, content} strings). */
static int parse_request(struct model_chat *c, json_t *req, int ctx, cg_err *e)
{
	json_t *msgs, *v;
	if (!json_is_object(req))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "the request must be a JSON object");
	if (jp_arr(req, NULL, "messages", JP_REQUIRED, 1024, &msgs, e) < 0)
		return -CG_E_INVALID_ARGUMENT;
	if (json_array_size(msgs) == 0)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "messages: at least one message is required");
	c->messages = json_array();
	size_t total = 0;
	for (size_t i = 0; i < json_array_size(msgs); i++) {
		json_t *m = json_array_get(msgs, i);
		char p[32];
		const char *role;
		snprintf(p, sizeof p, "messages[%zu]", i);
		if (!json_is_object(m))
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: must be an object", p);
		if (jp_enum(m, p, "role", JP_REQUIRED, roles, &role, e) < 0)
			return -CG_E_INVALID_ARGUMENT;
		json_t *content = json_object_get(m, "content");
		buf t;
		buf_init(&t, MAX_CONTENT);
		int rc = 0;
		if (json_is_string(content)) {
			rc = buf_append(&t, json_string_value(content), json_string_length(content));
		} else if (json_is_array(content)) {
			for (size_t k = 0; k < json_array_size(content) && rc == 0; k++) {
				json_t *part = json_array_get(content, k);
				const char *type = json_string_value(json_object_get(part, "type"));
				const char *text = json_string_value(json_object_get(part, "text"));
				if (!type || strcmp(type, "text") != 0 || !text) {
					buf_done(&t);
					return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s.content[%zu]: only text parts are supported",
						       p, k);
				}
				rc = buf_append(&t, text, strlen(text));
			}
		} else {
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s.content: must be a string or an array of text parts", p);
		}
		total += t.len;
		if (rc != 0 || total > MAX_CONTENT || memchr(buf_cstr(&t), 0, t.len)) {
			buf_done(&t);
			return cg_fail_http(e, CG_E_INVALID_ARGUMENT, rc != 0 || total > MAX_CONTENT ? 413 : 400,
					    "%s.content: %s", p,
					    rc != 0 || total > MAX_CONTENT ? "messages exceed 1 MiB of text"
									   : "must not contain NUL characters");
		}
		json_array_append_new(c->messages, json_pack("{s:s,s:s%}", "role", role, "content", buf_cstr(&t), t.len));
		buf_done(&t);
	}
	int64_t mt = 0;
	if (jp_int(req, NULL, "max_tokens", JP_NULLABLE, 1, ctx, &mt, e) < 0 ||
	    jp_int(req, NULL, "max_completion_tokens", JP_NULLABLE, 1, ctx, &mt, e) < 0)
		return -CG_E_INVALID_ARGUMENT;
	c->p.max_tokens = (int)mt; /* 0: until the context of the slot is full (set by the engine) */
	bool stream = false;
	if (jp_bool(req, NULL, "stream", JP_NULLABLE, &stream, e) < 0)
		return -CG_E_INVALID_ARGUMENT;
	c->stream = stream;
	if ((v = json_object_get(req, "stream_options")) && !json_is_null(v)) {
		bool iu = false;
		if (!json_is_object(v))
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "stream_options: must be an object");
		if (jp_bool(v, "stream_options", "include_usage", JP_NULLABLE, &iu, e) < 0)
			return -CG_E_INVALID_ARGUMENT;
		c->include_usage = iu;
	}
	c->p.temperature = 1.0f;
	c->p.top_p = 1.0f;
	if ((v = json_object_get(req, "temperature")) && !json_is_null(v)) {
		if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 2)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "temperature: must be a number in 0..2");
		c->p.temperature = (float)json_number_value(v);
	}
	if ((v = json_object_get(req, "top_p")) && !json_is_null(v)) {
		if (!json_is_number(v) || json_number_value(v) <= 0 || json_number_value(v) > 1)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "top_p: must be a number in (0, 1]");
		c->p.top_p = (float)json_number_value(v);
	}
	int64_t seed = -1;
	if (jp_int(req, NULL, "seed", JP_NULLABLE, INT64_MIN, INT64_MAX, &seed, e) < 0)
		return -CG_E_INVALID_ARGUMENT;
	c->p.seed = seed == -1 ? randombytes_random() : (uint32_t)((uint64_t)seed & 0xffffffffu);
	int64_t n = 1;
	if (jp_int(req, NULL, "n", JP_NULLABLE, 1, 1, &n, e) < 0)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "n: only 1 choice is supported");
	json_t *tools = json_object_get(req, "tools");
	if ((json_is_array(tools) && json_array_size(tools)) || json_object_get(req, "functions"))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "tools: tool calling is not supported by local models");
	v = json_object_get(req, "stop");
	if (json_is_string(v)) {
		if (json_string_length(v) == 0 || json_string_length(v) > 64)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "stop: 1..64 bytes");
		snprintf(c->p.stop[0], sizeof c->p.stop[0], "%s", json_string_value(v));
	} else if (json_is_array(v)) {
		if (json_array_size(v) > 4)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "stop: at most 4 sequences");
		for (size_t i = 0; i < json_array_size(v); i++) {
			json_t *s = json_array_get(v, i);
			if (!json_is_string(s) || json_string_length(s) == 0 || json_string_length(s) > 64)
				return cg_fail(e, CG_E_INVALID_ARGUMENT, "stop[%zu]: a string of 1..64 bytes", i);
			snprintf(c->p.stop[i], sizeof c->p.stop[i], "%s", json_string_value(s));
		}
	} else if (v && !json_is_null(v)) {
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "stop: a string or an array of strings");
	}
	return 0;
}

struct model_chat *model_chat_start(struct model_registry *reg, json_t *request, const struct model_chat_cb *cb,
				    void *arg, cg_err *e)
{
	const char *name;
	if (!json_is_object(request)) {
		cg_fail(e, CG_E_INVALID_ARGUMENT, "the request must be a JSON object");
		return NULL;
	}
	if (jp_str(request, NULL, "model", JP_REQUIRED, 1, 200, &name, e) < 0)
		return NULL;
	struct mentry *m = find_fresh(reg, name);
	if (!m) {
		cg_fail(e, CG_E_NOT_FOUND, "no model named %s", name);
		return NULL;
	}
	struct model_chat *c = calloc(1, sizeof *c);
	if (!c) {
		cg_fail(e, CG_E_INTERNAL, "out of memory");
		return NULL;
	}
	c->reg = reg;
	c->m = m;
	c->cb = *cb;
	c->arg = arg;
	buf_init(&c->text, MAX_ANSWER);
	c->created = clock_now_ms() / 1000;
	uint8_t rnd[12];
	randombytes_buf(rnd, sizeof rnd);
	memcpy(c->id, "chatcmpl-", 9);
	hex_encode(c->id + 9, rnd, sizeof rnd);
	c->anext = reg->all;
	if (reg->all)
		reg->all->aprev = c;
	reg->all = c;
	if (parse_request(c, request, m->upstream ? 1 << 20 : reg->ctx, e) != 0)
		goto fail;
	if (m->upstream) {
		c->up_request = json_deep_copy(request);
		json_object_set_new(c->up_request, "model", json_string(m->up_model));
		if (c->stream)
			json_object_set_new(c->up_request, "stream_options", json_pack("{s:b}", "include_usage", 1));
		if (up_engine_admit(m->up, e) != 0)
			goto reject;
	} else if (start_load(reg, m, e) != 0) {
		goto reject;
	}
	if (m->active < m->max_active && m->qhead == NULL && (m->upstream || m->state == M_READY)) {
		if (chat_run(c, e) != 0)
			goto fail;
		return c;
	}
	if (m->queued >= m->max_queue) {
		cg_fail(e, CG_E_RATE_LIMITED, "model %s: all %d slots are busy and the queue of %d is full", m->name,
			m->max_active, m->max_queue);
		e->retry_after_s = 1;
		goto reject;
	}
	enqueue(m, c);
	return c;
reject:
	m->rejected++;
fail:
	chat_free(c);
	return NULL;
}

void model_chat_cancel(struct model_chat *c)
{
	if (!c)
		return;
	struct mentry *m = c->m;
	if (c->queued) {
		struct model_chat **pp = &m->qhead, *prev = NULL;
		while (*pp && *pp != c) {
			prev = *pp;
			pp = &(*pp)->qnext;
		}
		if (*pp) {
			*pp = c->qnext;
			if (m->qtail == c)
				m->qtail = prev;
			m->queued--;
		}
		chat_free(c);
		return;
	}
	if (c->lreq) {
		/* The slot stays counted until the worker lets it go (eng_done with user NULL). */
		llm_engine_cancel(m->eng, c->lreq);
		chat_free(c);
		return;
	}
	if (c->ureq) {
		up_cancel(c->ureq);
		c->ureq = NULL;
	}
	bool was_running = c->running;
	chat_free(c);
	if (was_running)
		slot_freed(m);
}
