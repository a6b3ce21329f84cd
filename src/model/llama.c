#define CG_MODEL_INTERNAL 1
#include "model/llama.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/redact.h"
#include "model/llama_abi.h"

/* ---- the run-time loaded library ---- */

static struct {
#define X(ret, name, args) ret(*name) args;
	LLAMA_FUNCS(X)
	GGML_FUNCS(X)
#undef X
} L;

static pthread_once_t rt_once = PTHREAD_ONCE_INIT;
static const char *rt_lib_dir_arg;
static int rt_rc = -1;
static char rt_reason[320];
static char rt_dir[PATH_MAX + 256];
static char rt_variant[8] = "cpu";
static void *rt_llama, *rt_ggml;

/* llama.cpp logs through a callback, possibly from worker threads. The last error line of each thread is kept
 * so a failed load can say why. */
static _Thread_local char last_llama_error[256]; /* reset before each load and decode */

static void llama_log_cb(int level, const char *text, void *ud)
{
	(void)ud;
	char line[512];
	snprintf(line, sizeof line, "%s", text ? text : "");
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = 0;
	if (!n)
		return;
	/* ggml levels: 1 debug, 2 info, 3 warn, 4 error, 5 continuation. */
	if (level == 4) {
		/* Keep the first error since the reset: later lines only say that the step failed. */
		if (!last_llama_error[0])
			snprintf(last_llama_error, sizeof last_llama_error, "%.255s", line);
		log_warn("model", "llama.cpp error", "text=\"%s\"", line);
	} else {
		log_debug("model", "llama.cpp", "text=\"%s\"", line);
	}
}

static bool is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Finds a library in dir whose name starts with prefix (e.g. "libllama.") and ends in ".so". */
static bool find_lib(const char *dir, const char *prefix, char *out, size_t cap)
{
	DIR *d = opendir(dir);
	if (!d)
		return false;
	struct dirent *de;
	bool found = false;
	size_t pl = strlen(prefix);
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (strncmp(de->d_name, prefix, pl) == 0 && n > 3 && strcmp(de->d_name + n - 3, ".so") == 0) {
			snprintf(out, cap, "%s/%s", dir, de->d_name);
			found = true;
			break;
		}
	}
	closedir(d);
	return found;
}

static bool nvidia_present(void)
{
	return access("/proc/driver/nvidia/version", F_OK) == 0 || access("/dev/nvidia0", F_OK) == 0;
}

/* The prebuilt package folder under a third_party/llama root: CUDA when a GPU is present and the package is
 * installed, else the CPU build. */
static bool pick_in_root(const char *root)
{
	char p[PATH_MAX + 128];
	if (nvidia_present()) {
		snprintf(p, sizeof p, "%s/node_modules/@node-llama-cpp/linux-x64-cuda/bins/linux-x64-cuda", root);
		if (is_dir(p)) {
			snprintf(rt_dir, sizeof rt_dir, "%s", p);
			snprintf(rt_variant, sizeof rt_variant, "cuda");
			return true;
		}
	}
	snprintf(p, sizeof p, "%s/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64", root);
	if (is_dir(p)) {
		snprintf(rt_dir, sizeof rt_dir, "%s", p);
		return true;
	}
	return false;
}

static bool locate(void)
{
	const char *env = getenv("CLAWGRID_LLAMA_LIB");
	if (rt_lib_dir_arg && *rt_lib_dir_arg) {
		snprintf(rt_dir, sizeof rt_dir, "%s", rt_lib_dir_arg);
		return is_dir(rt_dir) || pick_in_root(rt_lib_dir_arg);
	}
	if (env && *env) {
		snprintf(rt_dir, sizeof rt_dir, "%s", env);
		return is_dir(rt_dir) || pick_in_root(env);
	}
	char p[PATH_MAX + 64];
	const char *root = getenv("CLAWGRID_ROOT");
	if (root && *root) {
		snprintf(p, sizeof p, "%s/third_party/llama", root);
		if (pick_in_root(p))
			return true;
	}
	/* Next to the binary (<repo>/build-x/clawgrid -> <repo>/third_party/llama), or installed: <prefix>/lib/clawgrid. */
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = 0;
		for (int up = 0; up < 4; up++) {
			char *s = strrchr(exe, '/');
			if (!s)
				break;
			*s = 0;
			snprintf(p, sizeof p, "%s/third_party/llama", exe);
			if (pick_in_root(p))
				return true;
			snprintf(p, sizeof p, "%s/lib/clawgrid/llama", exe);
			if (pick_in_root(p))
				return true;
		}
	}
	return pick_in_root("third_party/llama");
}

static void rt_open_once(void)
{
	char lib[PATH_MAX + 640];
	if (!locate()) {
		snprintf(rt_reason, sizeof rt_reason,
			 "llama backend unavailable: the prebuilt llama.cpp library (npm @node-llama-cpp/linux-x64 3.21.1) "
			 "is not installed; run scripts/llama-deps.sh or set models.llamaLib / CLAWGRID_LLAMA_LIB");
		return;
	}
	if (!find_lib(rt_dir, "libggml.", lib, sizeof lib) || !(rt_ggml = dlopen(lib, RTLD_NOW | RTLD_LOCAL))) {
		snprintf(rt_reason, sizeof rt_reason, "llama backend unavailable: cannot load libggml from the %s build: %s",
			 rt_variant, rt_ggml ? "" : (dlerror() ? "dlopen failed" : "library missing"));
		return;
	}
	if (!find_lib(rt_dir, "libllama.", lib, sizeof lib) || !(rt_llama = dlopen(lib, RTLD_NOW | RTLD_LOCAL))) {
		const char *de = dlerror();
		snprintf(rt_reason, sizeof rt_reason, "llama backend unavailable: cannot load libllama: %s",
			 de ? de : "library missing");
		return;
	}
#define X(ret, name, args)                                                                                   \
	*(void **)(&L.name) = dlsym(rt_llama, #name);                                                        \
	if (!L.name)                                                                                         \
		*(void **)(&L.name) = dlsym(rt_ggml, #name);                                                 \
	if (!L.name) {                                                                                       \
		snprintf(rt_reason, sizeof rt_reason,                                                        \
			 "llama backend unavailable: the library lacks %s (llama.cpp release v0.4.0 expected)", #name); \
		return;                                                                                      \
	}
	LLAMA_FUNCS(X)
	GGML_FUNCS(X)
#undef X
	L.llama_log_set(llama_log_cb, NULL);
	/* CPU variants (haswell, skylakex, ...) and the CUDA backend are separate libraries in that folder. */
	L.ggml_backend_load_all_from_path(rt_dir);
	L.llama_backend_init();
	rt_rc = 0;
	log_info("model", "llama backend ready", "variant=%s gpus=%d", rt_variant, llm_gpu_count());
	if (nvidia_present() && strcmp(rt_variant, "cuda") != 0)
		log_warn("model", "NVIDIA driver present but the CUDA build is not installed; running on CPU", NULL);
}

int llm_runtime_open(const char *lib_dir, cg_err *e)
{
	rt_lib_dir_arg = lib_dir;
	pthread_once(&rt_once, rt_open_once);
	if (rt_rc != 0)
		return cg_fail(e, CG_E_UNAVAILABLE, "%s", rt_reason);
	return 0;
}

bool llm_runtime_available(void)
{
	return rt_rc == 0;
}

int llm_gpu_count(void)
{
	if (rt_rc != 0)
		return 0;
	int n = 0;
	size_t c = L.ggml_backend_dev_count();
	for (size_t i = 0; i < c; i++)
		if (L.ggml_backend_dev_type(L.ggml_backend_dev_get(i)) == GGML_DEV_GPU)
			n++;
	return n;
}

json_t *llm_runtime_status(void)
{
	json_t *o = json_object();
	json_object_set_new(o, "available", json_boolean(rt_rc == 0));
	if (rt_rc != 0) {
		json_object_set_new(o, "reason", json_string(rt_reason[0] ? rt_reason : "llama backend not started"));
	} else {
		json_object_set_new(o, "variant", json_string(rt_variant));
		json_t *gpus = json_array();
		size_t c = L.ggml_backend_dev_count();
		for (size_t i = 0; i < c; i++) {
			ggml_backend_dev_t d = L.ggml_backend_dev_get(i);
			if (L.ggml_backend_dev_type(d) != GGML_DEV_GPU)
				continue;
			size_t fr = 0, tot = 0;
			L.ggml_backend_dev_memory(d, &fr, &tot);
			json_array_append_new(gpus, json_pack("{s:s,s:s,s:I,s:I}", "name", L.ggml_backend_dev_name(d),
							      "description", L.ggml_backend_dev_description(d),
							      "free_mib", (json_int_t)(fr >> 20), "total_mib",
							      (json_int_t)(tot >> 20)));
		}
		json_object_set_new(o, "gpus", gpus);
		if (json_array_size(gpus) == 0)
			json_object_set_new(o, "gpu_note",
					    json_string(nvidia_present() ? "an NVIDIA driver is present but the library sees no "
									   "GPU (install @node-llama-cpp/linux-x64-cuda)"
									 : "no GPU found: running on CPU"));
	}
	return o;
}

/* ---- the engine ---- */

enum ev_kind { EV_LOADED, EV_TEXT, EV_DONE };

struct llm_event {
	struct llm_event *next;
	enum ev_kind kind;
	struct llm_req *req;
	char *text;
	size_t n;
	const char *finish;
	int prompt_tokens, completion_tokens;
	cg_err err;
	bool failed;
};

struct llm_req {
	struct llm_req *next; /* inbox link */
	void *user;
	atomic_bool cancelled;
	/* Copied request (owned, read by the worker). */
	struct llama_chat_message *msgs;
	size_t n_msgs;
	char *strings; /* storage for the message strings */
	int max_tokens;
	float temperature, top_p;
	uint32_t seed;
	char stop[4][65];
};

struct slot {
	struct llm_req *req;
	struct llama_sampler *smpl;
	llama_token *prompt;
	int n_prompt, n_fed, n_gen, n_past;
	llama_token last;
	bool generating;
	buf pending; /* generated bytes not yet sent: a possible stop prefix or a split UTF-8 character */
};

struct llm_engine {
	struct event_base *base;
	struct event *ev;
	int efd;
	char path[PATH_MAX];
	char name[128];
	struct llm_params p;
	struct llm_engine_cb cb;
	void *arg;
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct llm_req *inbox, **inbox_tail;
	struct llm_event *evq, **evq_tail;
	atomic_bool stopping;
	atomic_uint_least64_t size;
	/* Worker-only. */
	struct llama_model *model;
	struct llama_context *ctx;
	const struct llama_vocab *vocab;
	struct slot *slots;
};

static void post(struct llm_engine *eng, struct llm_event *ev)
{
	pthread_mutex_lock(&eng->mu);
	ev->next = NULL;
	*eng->evq_tail = ev;
	eng->evq_tail = &ev->next;
	pthread_mutex_unlock(&eng->mu);
	uint64_t one = 1;
	ssize_t w = write(eng->efd, &one, sizeof one); /* counter saturation is harmless: we drain all */
	(void)w;
}

static void post_done(struct llm_engine *eng, struct llm_req *r, const char *finish, int pt, int ct,
		      const cg_err *e)
{
	struct llm_event *ev = calloc(1, sizeof *ev);
	if (!ev) {
		/* Out of memory on the worker: the request would hang; this is the one place we cannot report. */
		log_error("model", "out of memory posting a completion", NULL);
		abort();
	}
	ev->kind = EV_DONE;
	ev->req = r;
	ev->finish = finish;
	ev->prompt_tokens = pt;
	ev->completion_tokens = ct;
	if (e) {
		ev->err = *e;
		ev->failed = true;
	}
	post(eng, ev);
}

static void req_free(struct llm_req *r)
{
	if (!r)
		return;
	free(r->msgs);
	free(r->strings);
	free(r);
}

/* Valid UTF-8 copy of p[0..n): invalid bytes become U+FFFD. */
static char *utf8_clean(const char *p, size_t n, size_t *outn)
{
	char *o = malloc(n * 3 + 1);
	if (!o)
		return NULL;
	size_t k = 0;
	const unsigned char *s = (const unsigned char *)p;
	for (size_t i = 0; i < n;) {
		unsigned c = s[i];
		size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
		bool ok = len > 0 && i + len <= n;
		for (size_t j = 1; ok && j < len; j++)
			ok = (s[i + j] & 0xc0) == 0x80;
		if (ok && len == 2 && c < 0xc2)
			ok = false; /* overlong */
		if (ok && len == 3) {
			unsigned cp = ((c & 0x0f) << 12) | ((s[i + 1] & 0x3f) << 6) | (s[i + 2] & 0x3f);
			ok = cp >= 0x800 && (cp < 0xd800 || cp > 0xdfff);
		}
		if (ok && len == 4) {
			unsigned cp = ((c & 0x07) << 18) | ((s[i + 1] & 0x3f) << 12) | ((s[i + 2] & 0x3f) << 6) |
				      (s[i + 3] & 0x3f);
			ok = cp >= 0x10000 && cp <= 0x10ffff;
		}
		if (ok) {
			memcpy(o + k, s + i, len);
			k += len;
			i += len;
		} else {
			memcpy(o + k, "\xef\xbf\xbd", 3);
			k += 3;
			i++;
		}
	}
	o[k] = 0;
	*outn = k;
	return o;
}

static void post_text(struct llm_engine *eng, struct llm_req *r, const char *p, size_t n)
{
	if (n == 0)
		return;
	struct llm_event *ev = calloc(1, sizeof *ev);
	size_t cn = 0;
	char *t = ev ? utf8_clean(p, n, &cn) : NULL;
	if (!t) {
		free(ev);
		log_error("model", "out of memory posting text", NULL);
		abort();
	}
	ev->kind = EV_TEXT;
	ev->req = r;
	ev->text = t;
	ev->n = cn;
	post(eng, ev);
}

/* Bytes at the end of p[0..n) that begin a UTF-8 character not yet complete. */
static size_t utf8_incomplete_tail(const char *p, size_t n)
{
	const unsigned char *s = (const unsigned char *)p;
	for (size_t back = 1; back <= 3 && back <= n; back++) {
		unsigned c = s[n - back];
		if ((c & 0xc0) == 0x80)
			continue; /* continuation byte: look further back */
		size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
		return len > back ? back : 0;
	}
	return 0;
}

/* Length of the longest suffix of p[0..n) that is a proper prefix of a stop sequence. */
static size_t stop_holdback(const struct llm_req *r, const char *p, size_t n)
{
	size_t best = 0;
	for (int i = 0; i < 4; i++) {
		size_t sl = strlen(r->stop[i]);
		for (size_t k = sl ? sl - 1 : 0; k > best; k--)
			if (k <= n && memcmp(p + n - k, r->stop[i], k) == 0) {
				best = k;
				break;
			}
	}
	return best;
}

/* First occurrence of any stop sequence in p[0..n): its offset, or -1. */
static long stop_find(const struct llm_req *r, const char *p, size_t n)
{
	long best = -1;
	for (int i = 0; i < 4; i++) {
		size_t sl = strlen(r->stop[i]);
		if (!sl || sl > n)
			continue;
		for (size_t k = 0; k + sl <= n; k++)
			if (memcmp(p + k, r->stop[i], sl) == 0) {
				if (best < 0 || (long)k < best)
					best = (long)k;
				break;
			}
	}
	return best;
}

static void slot_release(struct llm_engine *eng, int i)
{
	struct slot *s = &eng->slots[i];
	L.llama_memory_seq_rm(L.llama_get_memory(eng->ctx), i, -1, -1);
	if (s->smpl)
		L.llama_sampler_free(s->smpl);
	free(s->prompt);
	buf_done(&s->pending);
	memset(s, 0, sizeof *s);
}

static void slot_finish(struct llm_engine *eng, int i, const char *finish, const cg_err *e)
{
	struct slot *s = &eng->slots[i];
	if (!atomic_load(&s->req->cancelled) && !e && s->pending.len)
		post_text(eng, s->req, (const char *)s->pending.data, s->pending.len);
	if (atomic_load(&s->req->cancelled)) {
		/* The loop already forgot it; freeing goes through the loop so that it is never used after free. */
		post_done(eng, s->req, NULL, 0, 0, NULL);
	} else {
		post_done(eng, s->req, finish, s->n_prompt, s->n_gen, e);
	}
	slot_release(eng, i);
}

/* Renders the chat template and tokenizes; fills s->prompt. */
static int slot_prepare(struct llm_engine *eng, struct slot *s, cg_err *e)
{
	struct llm_req *r = s->req;
	const char *tmpl = L.llama_model_chat_template(eng->model, NULL);
	size_t total = 0;
	for (size_t i = 0; i < r->n_msgs; i++)
		total += strlen(r->msgs[i].content) + strlen(r->msgs[i].role) + 64;
	int32_t cap = (int32_t)(total * 2 + 256);
	char *txt = malloc((size_t)cap);
	if (!txt)
		return cg_fail(e, CG_E_INTERNAL, "out of memory rendering the prompt");
	int32_t n = L.llama_chat_apply_template(tmpl ? tmpl : "chatml", r->msgs, r->n_msgs, true, txt, cap);
	if (n < 0 && tmpl) {
		/* A template llama.cpp's built-in list does not know: ChatML is the most common format. */
		log_warn("model", "chat template not recognized; using chatml", "model=%s", eng->name);
		n = L.llama_chat_apply_template("chatml", r->msgs, r->n_msgs, true, txt, cap);
	}
	if (n > cap) {
		char *t2 = realloc(txt, (size_t)n + 1);
		if (!t2) {
			free(txt);
			return cg_fail(e, CG_E_INTERNAL, "out of memory rendering the prompt");
		}
		txt = t2;
		cap = n + 1;
		n = L.llama_chat_apply_template(tmpl ? tmpl : "chatml", r->msgs, r->n_msgs, true, txt, cap);
	}
	if (n < 0) {
		free(txt);
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "the chat template could not render these messages");
	}
	int max = eng->p.ctx_per_slot;
	s->prompt = malloc(sizeof(llama_token) * (size_t)max);
	if (!s->prompt) {
		free(txt);
		return cg_fail(e, CG_E_INTERNAL, "out of memory tokenizing the prompt");
	}
	int32_t nt = L.llama_tokenize(eng->vocab, txt, n, s->prompt, max, true, true);
	free(txt);
	if (nt < 0 || nt >= max)
		return cg_fail(e, CG_E_INVALID_ARGUMENT,
			       "the prompt is %d tokens; the context of a slot is %d tokens (no room to answer)",
			       nt < 0 ? -nt : nt, max);
	if (nt == 0)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "the prompt is empty");
	/* No max_tokens, or more than the slot has left: answer until the context is full ("length"), as
	 * llama-server does, rather than failing a request whose prompt size the client cannot know. */
	if (r->max_tokens == 0 || r->max_tokens > max - nt)
		r->max_tokens = max - nt;
	s->n_prompt = nt;
	struct llama_sampler_chain_params sp = L.llama_sampler_chain_default_params();
	sp.no_perf = true;
	s->smpl = L.llama_sampler_chain_init(sp);
	if (r->temperature <= 0.0f) {
		L.llama_sampler_chain_add(s->smpl, L.llama_sampler_init_greedy());
	} else {
		if (r->top_p < 1.0f)
			L.llama_sampler_chain_add(s->smpl, L.llama_sampler_init_top_p(r->top_p, 1));
		L.llama_sampler_chain_add(s->smpl, L.llama_sampler_init_temp(r->temperature));
		L.llama_sampler_chain_add(s->smpl, L.llama_sampler_init_dist(r->seed));
	}
	buf_init(&s->pending, 1 << 20);
	return 0;
}

/* Called after a token was sampled for slot i. Returns true when the slot finished. */
static bool slot_accept(struct llm_engine *eng, int i, llama_token tok)
{
	struct slot *s = &eng->slots[i];
	struct llm_req *r = s->req;
	s->n_gen++;
	if (L.llama_vocab_is_eog(eng->vocab, tok)) {
		slot_finish(eng, i, "stop", NULL);
		return true;
	}
	char small[256], *piece = small;
	int32_t n = L.llama_token_to_piece(eng->vocab, tok, piece, sizeof small, 0, false);
	if (n < 0 && -n <= 65536 && (piece = malloc((size_t)-n))) /* a long token (-n bytes): rare, big vocabs */
		n = L.llama_token_to_piece(eng->vocab, tok, piece, -n, 0, false);
	int ar = n > 0 ? buf_append(&s->pending, piece, (size_t)n) : 0;
	if (piece != small)
		free(piece);
	if (ar != 0) {
		slot_finish(eng, i, "length", NULL);
		return true;
	}
	const char *p = (const char *)s->pending.data;
	size_t len = s->pending.len;
	long at = len ? stop_find(r, p, len) : -1;
	if (at >= 0) {
		s->pending.len = (size_t)at; /* the stop sequence itself is not part of the answer */
		slot_finish(eng, i, "stop", NULL);
		return true;
	}
	size_t hold = stop_holdback(r, p, len);
	size_t tail = utf8_incomplete_tail(p, len);
	if (tail > hold)
		hold = tail;
	if (len > hold && !atomic_load(&r->cancelled)) {
		post_text(eng, r, p, len - hold);
		buf_consume(&s->pending, len - hold);
	}
	s->last = tok;
	if (s->n_gen >= r->max_tokens || s->n_past >= eng->p.ctx_per_slot) {
		slot_finish(eng, i, "length", NULL);
		return true;
	}
	return false;
}

static bool progress_cb(float progress, void *ud)
{
	(void)progress;
	return !atomic_load(&((struct llm_engine *)ud)->stopping);
}

static bool abort_cb(void *ud)
{
	return atomic_load(&((struct llm_engine *)ud)->stopping);
}

static int engine_load(struct llm_engine *eng, cg_err *e)
{
	struct llama_model_params mp = L.llama_model_default_params();
	mp.n_gpu_layers = eng->p.gpu_layers;
	mp.load_mode = 1; /* mmap: weights are paged in from the file, shared with the page cache */
	mp.progress_callback = progress_cb;
	mp.progress_callback_user_data = eng;
	last_llama_error[0] = 0;
	eng->model = L.llama_model_load_from_file(eng->path, mp);
	if (!eng->model) {
		if (atomic_load(&eng->stopping))
			return cg_fail(e, CG_E_UNAVAILABLE, "model %s: loading was cancelled", eng->name);
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "model %s: llama.cpp could not load it%s%s", eng->name,
			       last_llama_error[0] ? ": " : "", last_llama_error);
	}
	eng->vocab = L.llama_model_get_vocab(eng->model);
	struct llama_context_params cp = L.llama_context_default_params();
	cp.n_seq_max = (uint32_t)eng->p.slots;
	cp.n_ctx = (uint32_t)(eng->p.slots * eng->p.ctx_per_slot);
	cp.n_batch = (uint32_t)eng->p.batch;
	cp.n_ubatch = (uint32_t)eng->p.batch;
	cp.n_threads = eng->p.threads;
	cp.n_threads_batch = eng->p.threads;
	cp.kv_unified = false; /* each slot its own KV stream: no cross-slot interference, n_ctx/slots each */
	cp.no_perf = true;
	cp.abort_callback = abort_cb;
	cp.abort_callback_data = eng;
	eng->ctx = L.llama_init_from_model(eng->model, cp);
	if (!eng->ctx)
		return cg_fail(e, CG_E_UNAVAILABLE, "model %s: llama.cpp could not create a context of %d tokens%s%s",
			       eng->name, cp.n_ctx, last_llama_error[0] ? ": " : "", last_llama_error);
	eng->slots = calloc((size_t)eng->p.slots, sizeof *eng->slots);
	if (!eng->slots)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	atomic_store(&eng->size, L.llama_model_size(eng->model));
	return 0;
}

static void *engine_main(void *arg)
{
	struct llm_engine *eng = arg;
	cg_err err = {0};
	struct llm_event *lev = calloc(1, sizeof *lev);
	if (!lev)
		abort();
	lev->kind = EV_LOADED;
	int rc = engine_load(eng, &err);
	if (rc != 0) {
		lev->failed = true;
		lev->err = err;
	}
	post(eng, lev);
	struct llama_batch batch = {0};
	int nb = eng->p.batch;
	if (rc == 0)
		batch = L.llama_batch_init(nb, 0, 1);
	int *batch_slot = calloc((size_t)nb, sizeof *batch_slot);
	if (rc == 0 && !batch_slot)
		abort();
	for (;;) {
		/* Take new requests into free slots; wait when idle. */
		pthread_mutex_lock(&eng->mu);
		for (;;) {
			bool busy = false;
			for (int i = 0; rc == 0 && i < eng->p.slots; i++)
				if (eng->slots[i].req)
					busy = true;
			if (busy || eng->inbox || atomic_load(&eng->stopping))
				break;
			pthread_cond_wait(&eng->cv, &eng->mu);
		}
		struct llm_req *in = eng->inbox;
		eng->inbox = NULL;
		eng->inbox_tail = &eng->inbox;
		pthread_mutex_unlock(&eng->mu);
		bool stopping = atomic_load(&eng->stopping);
		cg_err ue;
		cg_fail(&ue, CG_E_UNAVAILABLE, "model %s was unloaded", eng->name);
		ue.retry_after_s = 1;
		while (in) {
			struct llm_req *r = in;
			in = in->next;
			int free_slot = -1;
			for (int i = 0; rc == 0 && i < eng->p.slots && free_slot < 0; i++)
				if (!eng->slots[i].req)
					free_slot = i;
			if (rc != 0 || stopping || free_slot < 0 || atomic_load(&r->cancelled)) {
				cg_err ce;
				if (rc != 0)
					ce = err;
				else if (stopping)
					ce = ue;
				else
					cg_fail(&ce, CG_E_UNAVAILABLE, "model %s has no free slot", eng->name);
				post_done(eng, r, NULL, 0, 0, atomic_load(&r->cancelled) ? NULL : &ce);
				continue;
			}
			struct slot *s = &eng->slots[free_slot];
			s->req = r;
			cg_err pe;
			if (slot_prepare(eng, s, &pe) != 0)
				slot_finish(eng, free_slot, NULL, &pe);
		}
		if (rc != 0) {
			if (stopping)
				break;
			continue; /* a failed engine answers every request with its load error until it is freed */
		}
		if (stopping) {
			for (int i = 0; i < eng->p.slots; i++)
				if (eng->slots[i].req)
					slot_finish(eng, i, NULL, &ue);
			break;
		}
		for (int i = 0; i < eng->p.slots; i++)
			if (eng->slots[i].req && atomic_load(&eng->slots[i].req->cancelled))
				slot_finish(eng, i, NULL, NULL);

		/* One batch: the next token of every generating slot, then prompt chunks. */
		batch.n_tokens = 0;
		for (int i = 0; i < eng->p.slots; i++) {
			struct slot *s = &eng->slots[i];
			if (!s->req || !s->generating || batch.n_tokens >= nb)
				continue;
			int k = batch.n_tokens++;
			batch.token[k] = s->last;
			batch.pos[k] = s->n_past++; /* n_past: tokens in this slot's KV cache */
			batch.n_seq_id[k] = 1;
			batch.seq_id[k][0] = i;
			batch.logits[k] = 1;
			batch_slot[k] = i;
		}
		for (int i = 0; i < eng->p.slots; i++) {
			struct slot *s = &eng->slots[i];
			if (!s->req || s->generating)
				continue;
			while (s->n_fed < s->n_prompt && batch.n_tokens < nb) {
				int k = batch.n_tokens++;
				batch.token[k] = s->prompt[s->n_fed];
				batch.pos[k] = s->n_fed;
				batch.n_seq_id[k] = 1;
				batch.seq_id[k][0] = i;
				batch.logits[k] = s->n_fed == s->n_prompt - 1;
				batch_slot[k] = i;
				s->n_fed++;
			}
		}
		if (batch.n_tokens == 0)
			continue;
		last_llama_error[0] = 0;
		int32_t dr = L.llama_decode(eng->ctx, batch);
		if (dr != 0) {
			cg_err de;
			if (atomic_load(&eng->stopping))
				continue; /* aborted for unload: the top of the loop ends every slot */
			cg_fail(&de, dr == 1 ? CG_E_UNAVAILABLE : CG_E_INTERNAL, "model %s: decoding failed (%d)%s%s",
				eng->name, dr, last_llama_error[0] ? ": " : "", last_llama_error);
			if (dr == 1)
				de.retry_after_s = 1;
			for (int k = 0; k < batch.n_tokens; k++) {
				int i = batch_slot[k];
				if (eng->slots[i].req)
					slot_finish(eng, i, NULL, &de);
			}
			continue;
		}
		for (int k = 0; k < batch.n_tokens; k++) {
			if (!batch.logits[k])
				continue;
			int i = batch_slot[k];
			struct slot *s = &eng->slots[i];
			if (!s->req)
				continue;
			if (!s->generating) {
				s->generating = true;
				s->n_past = s->n_prompt;
			}
			slot_accept(eng, i, L.llama_sampler_sample(s->smpl, eng->ctx, k));
		}
	}
	if (rc == 0)
		L.llama_batch_free(batch);
	free(batch_slot);
	if (eng->slots)
		for (int i = 0; i < eng->p.slots; i++)
			if (eng->slots[i].req)
				slot_release(eng, i);
	if (eng->ctx)
		L.llama_free(eng->ctx);
	if (eng->model)
		L.llama_model_free(eng->model);
	eng->ctx = NULL;
	eng->model = NULL;
	return NULL;
}

/* Loop side: drain the worker's events and run the callbacks. */
static void drain(struct llm_engine *eng)
{
	pthread_mutex_lock(&eng->mu);
	struct llm_event *ev = eng->evq;
	eng->evq = NULL;
	eng->evq_tail = &eng->evq;
	pthread_mutex_unlock(&eng->mu);
	while (ev) {
		struct llm_event *next = ev->next;
		switch (ev->kind) {
		case EV_LOADED:
			eng->cb.on_loaded(eng->arg, ev->failed ? &ev->err : NULL);
			break;
		case EV_TEXT:
			if (!atomic_load(&ev->req->cancelled))
				eng->cb.on_text(eng->arg, ev->req->user, ev->text, ev->n);
			break;
		case EV_DONE:
			/* A cancelled request reports with user NULL: its slot is free again. */
			if (!atomic_load(&ev->req->cancelled))
				eng->cb.on_done(eng->arg, ev->req->user, ev->finish, ev->prompt_tokens,
						ev->completion_tokens, ev->failed ? &ev->err : NULL);
			else
				eng->cb.on_done(eng->arg, NULL, NULL, 0, 0, NULL);
			req_free(ev->req);
			break;
		}
		free(ev->text);
		free(ev);
		ev = next;
	}
}

static void on_efd(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	uint64_t v;
	ssize_t r = read(fd, &v, sizeof v);
	(void)r;
	drain(arg);
}

int llm_engine_new(struct event_base *base, const char *path, const char *name, const struct llm_params *p,
		   const struct llm_engine_cb *cb, void *arg, struct llm_engine **out, cg_err *e)
{
	if (llm_runtime_open(NULL, e) != 0)
		return -CG_E_UNAVAILABLE;
	struct llm_engine *eng = calloc(1, sizeof *eng);
	if (!eng)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	eng->base = base;
	snprintf(eng->path, sizeof eng->path, "%s", path);
	snprintf(eng->name, sizeof eng->name, "%s", name);
	eng->p = *p;
	if (eng->p.batch < 32)
		eng->p.batch = 32;
	eng->cb = *cb;
	eng->arg = arg;
	eng->inbox_tail = &eng->inbox;
	eng->evq_tail = &eng->evq;
	pthread_mutex_init(&eng->mu, NULL);
	pthread_cond_init(&eng->cv, NULL);
	eng->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (eng->efd < 0) {
		llm_engine_free(eng);
		return cg_fail(e, CG_E_INTERNAL, "eventfd: %s", strerror(errno));
	}
	eng->ev = event_new(base, eng->efd, EV_READ | EV_PERSIST, on_efd, eng);
	if (!eng->ev || event_add(eng->ev, NULL) != 0) {
		llm_engine_free(eng);
		return cg_fail(e, CG_E_INTERNAL, "cannot watch the engine's eventfd");
	}
	if (pthread_create(&eng->thread, NULL, engine_main, eng) != 0) {
		llm_engine_free(eng);
		return cg_fail(e, CG_E_INTERNAL, "cannot start the inference thread");
	}
	eng->thread_started = true;
	*out = eng;
	return 0;
}

void llm_engine_free(struct llm_engine *eng)
{
	if (!eng)
		return;
	if (eng->thread_started) {
		pthread_mutex_lock(&eng->mu);
		atomic_store(&eng->stopping, true);
		pthread_cond_signal(&eng->cv);
		pthread_mutex_unlock(&eng->mu);
		pthread_join(eng->thread, NULL);
		/* Deliver what the worker posted last: the "unloaded" completions. on_loaded may be among them. */
		drain(eng);
	}
	if (eng->ev)
		event_free(eng->ev);
	if (eng->efd >= 0)
		close(eng->efd);
	pthread_mutex_destroy(&eng->mu);
	pthread_cond_destroy(&eng->cv);
	free(eng->slots);
	free(eng);
}

static char *dupn(char **cur, const char *s)
{
	size_t n = strlen(s) + 1;
	memcpy(*cur, s, n);
	char *r = *cur;
	*cur += n;
	return r;
}

int llm_engine_submit(struct llm_engine *eng, const struct llm_chat_params *cp, void *user, struct llm_req **out,
		      cg_err *e)
{
	struct llm_req *r = calloc(1, sizeof *r);
	size_t n = json_array_size(cp->messages), total = 0;
	for (size_t i = 0; i < n; i++) {
		json_t *m = json_array_get(cp->messages, i);
		total += strlen(json_string_value(json_object_get(m, "role"))) +
			 strlen(json_string_value(json_object_get(m, "content"))) + 2;
	}
	if (r) {
		r->msgs = calloc(n ? n : 1, sizeof *r->msgs);
		r->strings = malloc(total + 1);
	}
	if (!r || !r->msgs || !r->strings) {
		req_free(r);
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	}
	char *cur = r->strings;
	for (size_t i = 0; i < n; i++) {
		json_t *m = json_array_get(cp->messages, i);
		r->msgs[i].role = dupn(&cur, json_string_value(json_object_get(m, "role")));
		r->msgs[i].content = dupn(&cur, json_string_value(json_object_get(m, "content")));
	}
	r->n_msgs = n;
	r->user = user;
	r->max_tokens = cp->max_tokens;
	r->temperature = cp->temperature;
	r->top_p = cp->top_p;
	r->seed = cp->seed;
	memcpy(r->stop, cp->stop, sizeof r->stop);
	pthread_mutex_lock(&eng->mu);
	*eng->inbox_tail = r;
	eng->inbox_tail = &r->next;
	pthread_cond_signal(&eng->cv);
	pthread_mutex_unlock(&eng->mu);
	*out = r;
	return 0;
}

void llm_engine_cancel(struct llm_engine *eng, struct llm_req *r)
{
	atomic_store(&r->cancelled, true);
	pthread_mutex_lock(&eng->mu);
	pthread_cond_signal(&eng->cv);
	pthread_mutex_unlock(&eng->mu);
}

uint64_t llm_engine_size(const struct llm_engine *eng)
{
	return atomic_load(&((struct llm_engine *)eng)->size);
}
