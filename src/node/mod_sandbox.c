/* Wiring of the sandbox into the node: the config section "sandbox" (default backend and limits, see
 * sandbox_config_parse) and the admin RPC method sandbox.check, which probes the host on a worker thread
 * (the probes fork and run `true` under every backend, far too slow for the loop) and answers every call
 * that arrived meanwhile with the same report.
 *
 *   "sandbox": {"backend": "native", "memory": "512M", "cpus": "1", "pids": 256, "timeout": "60s",
 *               "disk": "64M", "output_cap": "1M", "nofile": 256} */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "base/log.h"
#include "node/modules.h"
#include "rpc/rpc.h"
#include "sandbox/sandbox.h"

#define MAX_WAITING 32

struct mod {
	struct sandbox_defaults d;
	/* one host probe at a time; calls arriving meanwhile share its answer */
	bool running;
	pthread_t th;
	int pipe[2];
	struct event *ev;
	json_t *report;
	struct rpc_call *waiting[MAX_WAITING];
	int n_waiting;
};

static int check(json_t *section, cg_err *e)
{
	struct sandbox_defaults d;
	sandbox_defaults_init(&d);
	return sandbox_config_parse(section, &d, e);
}

static json_t *defaults_json(const struct sandbox_defaults *d)
{
	return json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "backend", sandbox_backend_name(d->backend),
			 "memory_bytes", (json_int_t)d->mem_bytes, "cpu_millis", (json_int_t)d->cpu_millis, "pids",
			 (json_int_t)d->pids, "timeout_ms", (json_int_t)d->timeout_ms, "disk_bytes",
			 (json_int_t)d->disk_bytes, "output_cap", (json_int_t)d->out_cap, "nofile",
			 (json_int_t)d->nofile);
}

static void *probe_main(void *arg)
{
	struct mod *m = arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	m->report = sandbox_check();
	ssize_t w;
	do
		w = write(m->pipe[1], "x", 1);
	while (w < 0 && errno == EINTR);
	return NULL;
}

/* Joins the probe thread and answers everyone waiting: with the report, or with e when given. */
static void finish_all(struct mod *m, const cg_err *e)
{
	pthread_join(m->th, NULL);
	m->running = false;
	char c;
	while (read(m->pipe[0], &c, 1) > 0)
		;
	if (m->report)
		json_object_set_new(m->report, "defaults", defaults_json(&m->d));
	for (int i = 0; i < m->n_waiting; i++) {
		if (e || !m->report)
			rpc_call_finish(m->waiting[i], NULL, e);
		else
			rpc_call_finish(m->waiting[i], json_deep_copy(m->report), NULL);
	}
	m->n_waiting = 0;
	json_decref(m->report);
	m->report = NULL;
}

static void on_probe_done(evutil_socket_t fd, short what, void *arg)
{
	struct mod *m = arg;
	cg_err e;
	cg_fail(&e, CG_E_INTERNAL, "sandbox.check: the probe produced no report");
	finish_all(m, m->report ? NULL : &e);
}

static int rpc_check(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	struct mod *m = arg;
	const struct rpc_caller *who = rpc_call_caller(call);
	if (!who || !who->admin)
		return cg_fail(e, CG_E_FORBIDDEN, "sandbox.check: admin only");
	if (params && json_object_size(params) != 0)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "sandbox.check: takes no parameters");
	if (m->n_waiting == MAX_WAITING)
		return cg_fail(e, CG_E_RATE_LIMITED, "sandbox.check: too many calls waiting");
	if (!m->running) {
		if (pthread_create(&m->th, NULL, probe_main, m) != 0)
			return cg_fail(e, CG_E_UNAVAILABLE, "sandbox.check: cannot start a worker thread");
		m->running = true;
	}
	m->waiting[m->n_waiting++] = call;
	return RPC_ASYNC;
}

static void stop(struct node *n, int idx)
{
	struct mod *m = n->mod[idx];
	if (!m)
		return;
	if (m->running) {
		cg_err e;
		cg_fail(&e, CG_E_UNAVAILABLE, "sandbox.check: the node is stopping");
		finish_all(m, &e);
	}
	if (m->ev)
		event_free(m->ev);
	if (m->pipe[0] >= 0)
		close(m->pipe[0]);
	if (m->pipe[1] >= 0)
		close(m->pipe[1]);
	free(m);
	n->mod[idx] = NULL;
}

static int start(struct node *n, int idx, cg_err *e)
{
	struct mod *m = calloc(1, sizeof *m);
	if (!m)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	m->pipe[0] = m->pipe[1] = -1;
	n->mod[idx] = m;
	sandbox_defaults_init(&m->d);
	int rc = sandbox_config_parse(node_config_section(n, "sandbox"), &m->d, e);
	if (rc)
		return rc;
	if (pipe2(m->pipe, O_CLOEXEC | O_NONBLOCK) != 0 ||
	    !(m->ev = event_new(n->base, m->pipe[0], EV_READ | EV_PERSIST, on_probe_done, m)) ||
	    event_add(m->ev, NULL) != 0)
		return cg_fail(e, CG_E_INTERNAL, "sandbox: cannot set up the probe channel");
	if (n->rpc && rpc_register(n->rpc, "sandbox.check", rpc_check, m) != 0)
		return cg_fail(e, CG_E_INTERNAL, "sandbox: sandbox.check already registered");
	log_info("sandbox", "ready", "backend=%s memory=%llu pids=%u timeout_ms=%llu",
		 sandbox_backend_name(m->d.backend), (unsigned long long)m->d.mem_bytes, m->d.pids,
		 (unsigned long long)m->d.timeout_ms);
	return 0;
}

const struct node_module mod_sandbox = {"sandbox", "sandbox", check, start, stop};
