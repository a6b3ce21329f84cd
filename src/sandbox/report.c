/* The JSON report of a run, and the asynchronous runner for event loops. */
#define CG_SANDBOX_INTERNAL 1
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "sandbox/internal.h"

const char *sandbox_kill_name(enum sandbox_kill k)
{
	static const char *const n[] = {NULL, "timeout", "memory", "seccomp", "signal", "cpu", "filesize", "pids"};
	return (unsigned)k < sizeof n / sizeof n[0] ? n[k] : NULL;
}

/* Output as a JSON string: valid UTF-8 kept, every invalid byte replaced by U+FFFD. */
static json_t *text_json(const buf *b)
{
	size_t n = b->len;
	char *t = malloc(n * 3 + 1);
	if (!t)
		return json_null();
	size_t o = 0;
	const uint8_t *p = b->data;
	for (size_t i = 0; i < n;) {
		uint8_t c = p[i];
		size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
		bool ok = len > 0 && i + len <= n && c != 0;
		for (size_t k = 1; ok && k < len; k++)
			ok = (p[i + k] & 0xc0) == 0x80;
		/* Reject overlongs and surrogates, as jansson does. */
		if (ok && len == 2 && c < 0xc2)
			ok = false;
		if (ok && len == 3 && ((c == 0xe0 && p[i + 1] < 0xa0) || (c == 0xed && p[i + 1] >= 0xa0)))
			ok = false;
		if (ok && len == 4 && ((c == 0xf0 && p[i + 1] < 0x90) || c > 0xf4 || (c == 0xf4 && p[i + 1] >= 0x90)))
			ok = false;
		if (ok) {
			memcpy(t + o, p + i, len);
			o += len;
			i += len;
		} else {
			memcpy(t + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	json_t *s = json_stringn(t, o);
	free(t);
	return s ? s : json_null();
}

json_t *sandbox_result_json(const struct sandbox_result *r, bool with_output)
{
	json_t *o = json_object();
	json_object_set_new(o, "backend", json_string(r->backend));
	json_object_set_new(o, "exit_code", r->signal ? json_null() : json_integer(r->exit_code));
	json_object_set_new(o, "signal", r->signal ? json_integer(r->signal) : json_null());
	const char *k = sandbox_kill_name(r->killed_by);
	json_object_set_new(o, "killed_by", k ? json_string(k) : json_null());
	json_t *hit = json_array();
	if (r->killed_by == SANDBOX_KILL_TIMEOUT)
		json_array_append_new(hit, json_string("timeout"));
	if (r->mem_limit_hit)
		json_array_append_new(hit, json_string("memory"));
	if (r->pids_limit_hit)
		json_array_append_new(hit, json_string("pids"));
	if (r->out_truncated || r->err_truncated)
		json_array_append_new(hit, json_string("output"));
	json_object_set_new(o, "limits_hit", hit);
	json_object_set_new(o, "wall_ms", json_integer(r->wall_ms));
	json_object_set_new(o, "cpu_ms", json_integer(r->cpu_ms));
	json_object_set_new(o, "peak_mem_bytes", json_integer((json_int_t)r->peak_mem_bytes));
	json_object_set_new(o, "stdout_bytes", json_integer((json_int_t)r->out_total));
	json_object_set_new(o, "stderr_bytes", json_integer((json_int_t)r->err_total));
	json_object_set_new(o, "stdout_truncated", json_boolean(r->out_truncated));
	json_object_set_new(o, "stderr_truncated", json_boolean(r->err_truncated));
	if (r->notes[0])
		json_object_set_new(o, "notes", json_string(r->notes));
	if (with_output) {
		json_object_set_new(o, "stdout", text_json(&r->out));
		json_object_set_new(o, "stderr", text_json(&r->err));
	}
	return o;
}

/* ---- async: one thread per run, the result posted back through a pipe watched by the loop ---- */

#define SB_MAX_ASYNC 64
static atomic_int async_running;

struct async_run {
	struct sandbox_spec spec;
	/* owned copies behind spec's pointers */
	char **argv, **env, **gpus;
	struct sandbox_mount *mounts;
	char *stdin_path, *policy, *hostname;
	void *stdin_data;
	struct sandbox_result res;
	cg_err err;
	int rc;
	int pipe[2];
	struct event *ev;
	pthread_t th;
	sandbox_done_fn done;
	void *arg;
};

static char **dup_vec(char *const *v)
{
	if (!v)
		return NULL;
	size_t n = 0;
	while (v[n])
		n++;
	char **c = calloc(n + 1, sizeof *c);
	for (size_t i = 0; c && i < n; i++)
		if (!(c[i] = strdup(v[i]))) {
			for (size_t j = 0; j < i; j++)
				free(c[j]);
			free(c);
			return NULL;
		}
	return c;
}

static void free_vec(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static void async_free(struct async_run *a)
{
	free_vec(a->argv);
	free_vec(a->env);
	free_vec(a->gpus);
	for (size_t i = 0; a->mounts && i < a->spec.n_mounts; i++)
		free((char *)a->mounts[i].path);
	free(a->mounts);
	free(a->stdin_path);
	free(a->policy);
	free(a->hostname);
	free(a->stdin_data);
	if (a->ev)
		event_free(a->ev);
	if (a->pipe[0] >= 0)
		close(a->pipe[0]);
	if (a->pipe[1] >= 0)
		close(a->pipe[1]);
	sandbox_result_done(&a->res);
	free(a);
}

static int spec_copy(struct async_run *a, const struct sandbox_spec *s)
{
	a->spec = *s;
	bool bad = false;
	a->argv = dup_vec(s->argv);
	bad |= !a->argv;
	if (s->env)
		bad |= !(a->env = dup_vec(s->env));
	if (s->gpus)
		bad |= !(a->gpus = dup_vec((char *const *)s->gpus));
	if (s->n_mounts) {
		a->mounts = calloc(s->n_mounts, sizeof *a->mounts);
		bad |= !a->mounts;
		for (size_t i = 0; !bad && i < s->n_mounts; i++) {
			a->mounts[i].rw = s->mounts[i].rw;
			bad |= !(a->mounts[i].path = s->mounts[i].path ? strdup(s->mounts[i].path) : NULL) &&
			       s->mounts[i].path;
		}
	}
	if (s->stdin_path)
		bad |= !(a->stdin_path = strdup(s->stdin_path));
	if (s->policy)
		bad |= !(a->policy = strdup(s->policy));
	if (s->hostname)
		bad |= !(a->hostname = strdup(s->hostname));
	if (s->stdin_data && s->stdin_len) {
		bad |= !(a->stdin_data = malloc(s->stdin_len));
		if (a->stdin_data)
			memcpy(a->stdin_data, s->stdin_data, s->stdin_len);
	}
	a->spec.argv = a->argv;
	a->spec.env = a->env;
	a->spec.gpus = (const char *const *)a->gpus;
	a->spec.mounts = a->mounts;
	a->spec.stdin_path = a->stdin_path;
	a->spec.policy = a->policy;
	a->spec.hostname = a->hostname;
	a->spec.stdin_data = a->stdin_data;
	return bad ? -1 : 0;
}

static void *async_main(void *p)
{
	struct async_run *a = p;
	/* Signals belong to the loop thread; this one only waits on its child. */
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	a->rc = sandbox_run(&a->spec, &a->res, &a->err);
	ssize_t w;
	do
		w = write(a->pipe[1], "x", 1);
	while (w < 0 && errno == EINTR);
	return NULL;
}

static void async_done(evutil_socket_t fd, short what, void *p)
{
	struct async_run *a = p;
	pthread_join(a->th, NULL);
	atomic_fetch_sub(&async_running, 1);
	if (a->rc == 0)
		a->done(a->arg, &a->res, NULL);
	else
		a->done(a->arg, NULL, &a->err);
	async_free(a);
}

int sandbox_run_async(struct event_base *base, const struct sandbox_spec *s, sandbox_done_fn done, void *arg,
		      cg_err *e)
{
	if (atomic_fetch_add(&async_running, 1) >= SB_MAX_ASYNC) {
		atomic_fetch_sub(&async_running, 1);
		return cg_fail(e, CG_E_RATE_LIMITED, "sandbox: %d runs already in progress", SB_MAX_ASYNC);
	}
	struct async_run *a = calloc(1, sizeof *a);
	if (!a) {
		atomic_fetch_sub(&async_running, 1);
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	}
	a->pipe[0] = a->pipe[1] = -1;
	a->done = done;
	a->arg = arg;
	int rc = 0;
	if (spec_copy(a, s) != 0)
		rc = cg_fail(e, CG_E_INTERNAL, "out of memory");
	else if (pipe2(a->pipe, O_CLOEXEC | O_NONBLOCK) != 0)
		rc = cg_fail(e, CG_E_INTERNAL, "pipe: %s", strerror(errno));
	else if (!(a->ev = event_new(base, a->pipe[0], EV_READ, async_done, a)) || event_add(a->ev, NULL) != 0)
		rc = cg_fail(e, CG_E_INTERNAL, "event_new failed");
	else if (pthread_create(&a->th, NULL, async_main, a) != 0)
		rc = cg_fail(e, CG_E_UNAVAILABLE, "sandbox: cannot start a worker thread");
	if (rc) {
		atomic_fetch_sub(&async_running, 1);
		async_free(a);
	}
	return rc;
}
