/* node — the daemon: data-dir checks and lock, config, store, keys, one libevent loop with the HTTP API,
 * the core routes and RPC methods, the feature modules (started in order, stopped in reverse) and a graceful
 * stop on SIGTERM/SIGINT (drain in-flight requests, bounded; a second signal forces exit). */
#include "node/node.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/exitcode.h"
#include "base/json.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/redact.h"
#include "base/version.h"
#include "crypto/identity.h"
#include "crypto/wallet.h"
#include "http/server.h"
#include "node/config.h"
#include "node/modules.h"
#include "node/node_int.h"
#include "rpc/rpc.h"
#include "store/store.h"

#define MAX_STATUS_FNS 32
#define METRICS_MAX_BYTES (16u << 20)

struct node_timer {
	struct node *n;
	struct event *ev;
	void (*cb)(struct node *n, void *arg);
	void *arg;
	struct node_timer *next;
};

struct node_priv {
	struct node_settings set;
	int lock_fd;
	char lock_path[4200], api_path[4200];
	struct event *sig[2];
	int signals;
	int nstarted; /* modules started (prefix of node_modules[]) */
	bool modules_stopped;
	struct node_timer *timers;
	struct {
		node_status_fn fn;
		void *arg;
	} status[MAX_STATUS_FNS];
	int nstatus;
	int64_t start_mono_ms, start_wall_ms;
	struct sleeper *sleepers; /* debug.sleep calls in flight */
};

/* ---------------------------------------------------------------- services for modules */

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct node_timer *t = arg;
	(void)fd;
	(void)what;
	if (!t->n->stopping)
		t->cb(t->n, t->arg);
}

int node_every(struct node *n, int interval_ms, void (*cb)(struct node *n, void *arg), void *arg)
{
	if (!n || !n->priv || interval_ms <= 0 || !cb)
		return -1;
	struct node_timer *t = calloc(1, sizeof *t);
	if (!t)
		return -1;
	t->n = n;
	t->cb = cb;
	t->arg = arg;
	t->ev = event_new(n->base, -1, EV_PERSIST, timer_cb, t);
	struct timeval tv = {interval_ms / 1000, (interval_ms % 1000) * 1000};
	if (!t->ev || event_add(t->ev, &tv) < 0) {
		if (t->ev)
			event_free(t->ev);
		free(t);
		return -1;
	}
	t->next = n->priv->timers;
	n->priv->timers = t;
	return 0;
}

json_t *node_config_section(struct node *n, const char *key)
{
	json_t *v = json_object_get(n->config, key);
	if (!json_is_object(v)) {
		/* node_config_parse adds every module section; this covers keys asked for by anyone else. */
		v = json_object();
		json_object_set_new(n->config, key, v);
	}
	return v;
}

int node_status_contribute(struct node *n, node_status_fn fn, void *arg)
{
	if (!n->priv || !fn || n->priv->nstatus == MAX_STATUS_FNS)
		return -1;
	n->priv->status[n->priv->nstatus].fn = fn;
	n->priv->status[n->priv->nstatus].arg = arg;
	n->priv->nstatus++;
	return 0;
}

json_t *node_status_summary(struct node *n)
{
	/* Honest defaults (spec §1.4): nothing configured means no brain, no billing binding, nothing pending. */
	json_t *s = json_pack("{s:{s:n,s:n,s:n,s:s},s:{s:s,s:s},s:{s:i}}", "brain", "source", "provider", "model",
			      "availability", "unavailable", "billing", "status", "unbound", "credits", "0",
			      "settlement", "pending", 0);
	for (int i = 0; n->priv && i < n->priv->nstatus; i++)
		n->priv->status[i].fn(n, n->priv->status[i].arg, s);
	node_status_normalize(s);
	return s;
}

static json_t *object_member(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_object(v)) {
		v = json_object();
		json_object_set_new(o, key, v);
	}
	return v;
}

static bool one_of(json_t *v, const char *const *allowed)
{
	for (int i = 0; json_is_string(v) && allowed[i]; i++)
		if (strcmp(json_string_value(v), allowed[i]) == 0)
			return true;
	return false;
}

void node_status_normalize(json_t *s)
{
	/* The spec's fields keep their types and value sets whatever the contributors wrote (or failed to
	 * write): clients switch on them. Anything a contributor adds beside them is left alone. */
	static const char *const avail[] = {"ok", "degraded", "unavailable", NULL};
	static const char *const sources[] = {"web3/decentralized", "centralized", NULL};
	static const char *const bstat[] = {"active", "exhausted", "unbound", NULL};
	json_t *brain = object_member(s, "brain");
	if (!one_of(json_object_get(brain, "availability"), avail))
		json_object_set_new(brain, "availability", json_string("unavailable"));
	if (!one_of(json_object_get(brain, "source"), sources))
		json_object_set_new(brain, "source", json_null());
	for (int i = 0; i < 2; i++) {
		const char *k = i ? "model" : "provider";
		if (!json_is_string(json_object_get(brain, k)))
			json_object_set_new(brain, k, json_null());
	}
	json_t *bill = object_member(s, "billing");
	if (!one_of(json_object_get(bill, "status"), bstat))
		json_object_set_new(bill, "status", json_string("unbound"));
	/* credits is an amount (decimal string); no budget bound means none to spend: "0", not null. */
	if (!json_is_amount_str(json_string_value(json_object_get(bill, "credits"))))
		json_object_set_new(bill, "credits", json_string("0"));
	json_t *set = object_member(s, "settlement");
	json_t *pending = json_object_get(set, "pending");
	if (!json_is_integer(pending) || json_integer_value(pending) < 0)
		json_object_set_new(set, "pending", json_integer(0));
}

/* ---------------------------------------------------------------- core RPC methods */

static int no_params(json_t *params, cg_err *e)
{
	static const char *const none[] = {NULL};
	return jp_only(params, NULL, none, e);
}

static int m_summary(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	(void)call;
	if (no_params(params, e) < 0)
		return -CG_E_INVALID_ARGUMENT;
	*result = node_status_summary(arg);
	return 0;
}

static int m_info(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	struct node *n = arg;
	(void)call;
	if (no_params(params, e) < 0)
		return -CG_E_INVALID_ARGUMENT;
	int64_t up = (clock_mono_ms() - n->priv->start_mono_ms) / 1000;
	json_t *mods = json_array();
	for (int i = 0; i < n->priv->nstarted; i++)
		json_array_append_new(mods, json_string(node_modules[i]->name));
	*result = json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:o}", "peerId", n->peer_id, "address", n->address, "version",
			    CLAWGRID_VERSION, "uptime", (json_int_t)up, "startedAt", (json_int_t)n->priv->start_wall_ms,
			    "api", n->api_addr, "modules", mods);
	return 0;
}

struct methods_acc {
	json_t *arr;
	const char *prefix;
};

static void add_method(void *arg, const char *name)
{
	struct methods_acc *a = arg;
	if (!a->prefix || strncmp(name, a->prefix, strlen(a->prefix)) == 0)
		json_array_append_new(a->arr, json_string(name));
}

static int m_methods(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	struct node *n = arg;
	static const char *const keys[] = {"prefix", NULL};
	(void)call;
	struct methods_acc a = {json_array(), NULL};
	if (jp_only(params, NULL, keys, e) < 0 || jp_str(params, NULL, "prefix", 0, 1, 100, &a.prefix, e) < 0) {
		json_decref(a.arr);
		return -CG_E_INVALID_ARGUMENT;
	}
	rpc_each(n->rpc, add_method, &a);
	*result = json_pack("{s:o}", "methods", a.arr);
	return 0;
}

/* debug.sleep {ms}: an async method that answers after ms on the loop. Registered only when the
 * environment has CLAWGRID_TEST_HOOKS=1: the integration tests use it to hold a request in flight (drain on
 * SIGTERM, async dispatch through HTTP). */
struct sleeper {
	struct rpc_call *call;
	struct event *ev;
	struct sleeper **head, *next;
};

static void sleeper_end(struct sleeper *sl, bool ok)
{
	struct sleeper **pp = sl->head;
	while (*pp && *pp != sl)
		pp = &(*pp)->next;
	if (*pp)
		*pp = sl->next;
	event_free(sl->ev);
	cg_err e;
	cg_fail(&e, CG_E_UNAVAILABLE, "the node stopped");
	rpc_call_finish(sl->call, ok ? json_pack("{s:b}", "slept", 1) : NULL, ok ? NULL : &e);
	free(sl);
}

static void sleep_done(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	sleeper_end(arg, true);
}

static int m_sleep(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	struct node *n = arg;
	static const char *const keys[] = {"ms", NULL};
	int64_t ms = 0;
	(void)result;
	if (jp_only(params, NULL, keys, e) < 0 || jp_int(params, NULL, "ms", JP_REQUIRED, 0, 600000, &ms, e) < 0)
		return -CG_E_INVALID_ARGUMENT;
	struct sleeper *sl = calloc(1, sizeof *sl);
	if (!sl || !(sl->ev = evtimer_new(n->base, sleep_done, sl))) {
		free(sl);
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	}
	sl->call = call;
	sl->head = &n->priv->sleepers;
	sl->next = n->priv->sleepers;
	n->priv->sleepers = sl;
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
	evtimer_add(sl->ev, &tv);
	return RPC_ASYNC;
}

int node_register_core(struct node *n)
{
	int r = 0;
	const char *hooks = getenv("CLAWGRID_TEST_HOOKS");
	if (hooks && strcmp(hooks, "1") == 0)
		r |= rpc_register(n->rpc, "debug.sleep", m_sleep, n);
	r |= rpc_register(n->rpc, "web3.status.summary", m_summary, n);
	r |= rpc_register(n->rpc, "node.info", m_info, n);
	r |= rpc_register(n->rpc, "rpc.methods", m_methods, n);
	return r;
}

/* ---------------------------------------------------------------- core HTTP routes */

struct rpc_ctx {
	struct rpc_caller who;
	struct http_req *r;
};

static void rpc_done(void *arg, json_t *resp)
{
	struct rpc_ctx *c = arg;
	if (resp)
		http_reply_json(c->r, 200, resp);
	else
		http_reply(c->r, 204, NULL, NULL, 0); /* only notifications: nothing to answer */
	free(c);
}

static void h_rpc(struct http_req *r, void *arg)
{
	struct node *n = arg;
	cg_err e;
	cg_err_clear(&e);
	if (http_req_require_type(r, "application/json", &e) < 0) {
		json_t *env = json_pack("{s:s,s:n,s:o}", "jsonrpc", "2.0", "id", "error", rpc_error_json(&e));
		http_reply_json(r, cg_err_http(&e), env);
		return;
	}
	struct rpc_ctx *c = calloc(1, sizeof *c);
	if (!c) {
		cg_fail(&e, CG_E_INTERNAL, "out of memory");
		http_reply_error(r, &e);
		return;
	}
	c->r = r;
	c->who.principal = "admin";
	c->who.admin = http_req_is_admin(r);
	c->who.transport = r;
	size_t len;
	const uint8_t *body = http_req_body(r, &len);
	rpc_dispatch(n->rpc, body ? (const char *)body : "", len, &c->who, rpc_done, c);
}

static void h_healthz(struct http_req *r, void *arg)
{
	struct node *n = arg;
	http_reply_json(r, 200, json_pack("{s:b,s:s,s:s}", "ok", 1, "status", n->stopping ? "stopping" : "ok",
					  "version", CLAWGRID_VERSION));
}

static void h_metrics(struct http_req *r, void *arg)
{
	(void)arg;
	buf b;
	buf_init(&b, METRICS_MAX_BYTES);
	if (metrics_render(&b) < 0) {
		cg_err e;
		cg_fail(&e, CG_E_INTERNAL, "metrics exceed %u bytes", METRICS_MAX_BYTES);
		http_reply_error(r, &e);
	} else {
		http_reply(r, 200, METRICS_CONTENT_TYPE, b.data, b.len);
	}
	buf_done(&b);
}

int node_register_routes(struct node *n, size_t rpc_max_body)
{
	int r = 0;
	r |= http_route(n->http, HTTP_POST, "/rpc", HTTP_ADMIN | HTTP_RPC_ERRORS, rpc_max_body, h_rpc, n);
	r |= http_route(n->http, HTTP_GET | HTTP_HEAD, "/healthz", 0, 0, h_healthz, n);
	r |= http_route(n->http, HTTP_GET | HTTP_HEAD, "/metrics", 0, 0, h_metrics, n);
	return r;
}

/* ---------------------------------------------------------------- data dir */

static const struct store_migration node_migrations[] = {
	{1, "CREATE TABLE node_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"},
};

static int record_identity(struct node *n, cg_err *e)
{
	int r = store_migrate(n->store, "node", node_migrations, sizeof node_migrations / sizeof node_migrations[0],
			      e);
	if (r < 0)
		return r;
	sqlite3_stmt *s = store_prep(n->store, "SELECT value FROM node_meta WHERE key='peerId'", e);
	if (!s)
		return -CG_E_INTERNAL;
	if (sqlite3_step(s) == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(s, 0);
		if (v && strcmp(v, n->peer_id) != 0)
			log_warn("node", "the store was created by another node identity", "store_peer=%s peer=%s", v,
				 n->peer_id);
		sqlite3_reset(s);
		return 0;
	}
	sqlite3_reset(s);
	s = store_prep(n->store, "INSERT OR IGNORE INTO node_meta(key,value) VALUES('peerId',?),('address',?)", e);
	if (!s)
		return -CG_E_INTERNAL;
	sqlite3_bind_text(s, 1, n->peer_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, n->address, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : store_fail(n->store, e, "record identity");
}

int node_lock_data_dir(const char *dir, int *fd_out, cg_err *e)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/node.pid", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return cg_fail(e, CG_E_UNAVAILABLE, "the data directory is not writable (node.pid: %s)", strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		char pid[32] = "";
		ssize_t k = pread(fd, pid, sizeof pid - 1, 0);
		if (k > 0)
			pid[k] = 0;
		pid[strcspn(pid, "\n")] = 0;
		close(fd);
		return cg_fail(e, CG_E_CONFLICT, "another node%s%s%s is running on this data directory",
			       *pid ? " (pid " : "", pid, *pid ? ")" : "");
	}
	*fd_out = fd;
	return 0;
}

int node_read_admin_token(const char *dir, char *out, size_t cap, cg_err *e)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/admin.token", dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return cg_fail(e, errno == ENOENT ? CG_E_NOT_FOUND : CG_E_UNAVAILABLE, "admin.token: %s",
			       errno == ENOENT ? "missing (run 'clawgrid init')" : strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)) {
		close(fd);
		return cg_fail(e, CG_E_FORBIDDEN,
			       "admin.token: must be a regular file owned by this user with mode 0600");
	}
	ssize_t n = read(fd, out, cap - 1);
	close(fd);
	if (n <= 0)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "admin.token: empty or unreadable");
	out[n] = 0;
	out[strcspn(out, "\r\n")] = 0;
	size_t len = strlen(out);
	if (len < 16 || strspn(out, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != len) {
		sodium_memzero(out, cap);
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "admin.token: must be at least 16 base64url characters");
	}
	return 0;
}

static int write_api_file(struct node *n, cg_err *e)
{
	char tmp[4300];
	snprintf(tmp, sizeof tmp, "%s.tmp", n->priv->api_path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return cg_fail(e, CG_E_UNAVAILABLE, "node.api: %s", strerror(errno));
	char line[160];
	int len = snprintf(line, sizeof line, "%s\n", n->api_addr);
	bool ok = write(fd, line, (size_t)len) == len;
	close(fd);
	/* rename() makes the file appear complete: the CLI and the test harness poll for it. */
	if (!ok || rename(tmp, n->priv->api_path) < 0) {
		unlink(tmp);
		return cg_fail(e, CG_E_UNAVAILABLE, "node.api: cannot write");
	}
	return 0;
}

/* ---------------------------------------------------------------- start / stop */

static void stop_modules(struct node *n)
{
	while (n->priv->sleepers)
		sleeper_end(n->priv->sleepers, false);
	if (n->priv->modules_stopped)
		return;
	n->priv->modules_stopped = true;
	for (int i = n->priv->nstarted - 1; i >= 0; i--) {
		log_debug("node", "stopping module", "module=%s", node_modules[i]->name);
		node_modules[i]->stop(n, i);
	}
	n->priv->nstarted = 0;
}

static void on_drained(void *arg)
{
	struct node *n = arg;
	stop_modules(n);
	event_base_loopexit(n->base, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct node *n = arg;
	(void)what;
	if (++n->priv->signals > 1) {
		log_warn("node", "second signal: forced exit", "signal=%d", (int)sig);
		unlink(n->priv->api_path);
		_exit(EXIT_FAIL);
	}
	log_info("node", "stopping", "signal=%d inflight=%d", (int)sig, http_server_inflight(n->http));
	n->stopping = true;
	/* The API address goes first so that no client picks up a node that is going away. */
	unlink(n->priv->api_path);
	http_server_drain(n->http, n->priv->set.drain_timeout_ms, on_drained, n);
}

static void node_free(struct node *n)
{
	if (!n)
		return;
	if (n->priv) {
		stop_modules(n);
		struct node_timer *t = n->priv->timers;
		while (t) {
			struct node_timer *next = t->next;
			event_free(t->ev);
			free(t);
			t = next;
		}
		for (int i = 0; i < 2; i++)
			if (n->priv->sig[i])
				event_free(n->priv->sig[i]);
	}
	http_server_free(n->http);
	store_close(n->store);
	rpc_registry_free(n->rpc);
	json_decref(n->config);
	if (n->key) {
		node_key_wipe(n->key);
		sodium_free(n->key);
	}
	if (n->wallet) {
		wallet_wipe(n->wallet);
		sodium_free(n->wallet);
	}
	if (n->priv) {
		if (n->priv->api_path[0])
			unlink(n->priv->api_path);
		if (n->priv->lock_fd >= 0) {
			/* Keep the file (unlinking a held lock races with a starting node); empty the pid. */
			if (ftruncate(n->priv->lock_fd, 0) < 0)
				log_debug("node", "cannot clear node.pid", NULL);
			close(n->priv->lock_fd);
		}
		free(n->priv);
	}
	if (n->base)
		event_base_free(n->base);
	free(n);
}

static int fail_start(int code, const cg_err *e)
{
	fprintf(stderr, "clawgrid: %s\n", e->msg);
	log_error("node", "cannot start", "code=%s", cg_code_name(e->code));
	return code;
}

static int exit_for(const cg_err *e)
{
	return e->code == CG_E_NOT_FOUND ? EXIT_NONODE : EXIT_FAIL;
}

int node_run(const char *data_dir, const char *api_override)
{
	cg_err e;
	cg_err_clear(&e);
	char real[PATH_MAX];
	redact_register(data_dir);
	if (!realpath(data_dir, real)) {
		cg_fail(&e, CG_E_NOT_FOUND, "the data directory does not exist (run 'clawgrid init')");
		return fail_start(EXIT_NONODE, &e);
	}
	redact_register(real); /* the real path never reaches a log line or an error */
	struct stat st;
	if (stat(real, &st) < 0 || !S_ISDIR(st.st_mode)) {
		cg_fail(&e, CG_E_INVALID_ARGUMENT, "the data directory is not a directory");
		return fail_start(EXIT_FAIL, &e);
	}
	char path[PATH_MAX + 64];
	snprintf(path, sizeof path, "%s/node.key", real);
	if (access(path, F_OK) < 0) {
		cg_fail(&e, CG_E_NOT_FOUND, "the data directory is not initialized (run 'clawgrid init')");
		return fail_start(EXIT_NONODE, &e);
	}
	if (api_override) {
		char h[64];
		int p;
		if (http_parse_hostport(api_override, h, sizeof h, &p) < 0) {
			cg_fail(&e, CG_E_INVALID_ARGUMENT, "--api: must be HOST:PORT (numeric IPv4, [IPv6] or localhost)");
			return fail_start(EXIT_USAGE, &e);
		}
	}

	struct node *n = calloc(1, sizeof *n);
	if (!n || !(n->priv = calloc(1, sizeof *n->priv))) {
		free(n);
		cg_fail(&e, CG_E_INTERNAL, "out of memory");
		return fail_start(EXIT_FAIL, &e);
	}
	struct node_priv *p = n->priv;
	p->lock_fd = -1;
	p->start_mono_ms = clock_mono_ms();
	p->start_wall_ms = clock_now_ms();
	snprintf(n->data_dir, sizeof n->data_dir, "%s", real);
	int rc = EXIT_FAIL;
	char token[256];
	token[0] = 0;

	if (node_lock_data_dir(real, &p->lock_fd, &e) < 0)
		goto fail;
	char pidline[32];
	int pl = snprintf(pidline, sizeof pidline, "%ld\n", (long)getpid());
	if (ftruncate(p->lock_fd, 0) < 0 || pwrite(p->lock_fd, pidline, (size_t)pl, 0) != pl) {
		cg_fail(&e, CG_E_UNAVAILABLE, "the data directory is not writable (node.pid)");
		goto fail;
	}
	snprintf(p->api_path, sizeof p->api_path, "%s/node.api", real);
	unlink(p->api_path); /* left over from a crash: never point clients at a dead address */

	snprintf(path, sizeof path, "%s/config.json", real);
	if (node_config_load(path, &n->config, &e) < 0) {
		char msg[sizeof e.msg];
		snprintf(msg, sizeof msg, "%s", e.msg);
		cg_fail(&e, CG_E_INVALID_ARGUMENT, "config.json: %s", msg);
		goto fail;
	}
	node_config_settings(n->config, &p->set);
	const char *lv = getenv("CLAWGRID_LOG_LEVEL");
	if (lv && log_level_parse(lv) >= 0)
		log_set_level((enum log_level)log_level_parse(lv));
	else
		log_set_level((enum log_level)p->set.log_level);

	n->key = sodium_malloc(sizeof *n->key);
	n->wallet = sodium_malloc(sizeof *n->wallet);
	if (!n->key || !n->wallet) {
		cg_fail(&e, CG_E_INTERNAL, "out of memory for keys");
		goto fail;
	}
	snprintf(path, sizeof path, "%s/node.key", real);
	if (node_key_load(path, false, n->key, &e) < 0)
		goto fail;
	snprintf(path, sizeof path, "%s/wallet.key", real);
	if (wallet_load(path, false, n->wallet, &e) < 0)
		goto fail;
	peerid_string_from_ed25519(n->key->pk, n->peer_id, sizeof n->peer_id);
	snprintf(n->address, sizeof n->address, "%s", n->wallet->address);
	if (node_read_admin_token(real, token, sizeof token, &e) < 0)
		goto fail;

	snprintf(path, sizeof path, "%s/clawgrid.db", real);
	if (store_open(path, 0, &n->store, &e) < 0 || record_identity(n, &e) < 0) {
		char msg[sizeof e.msg];
		snprintf(msg, sizeof msg, "%s", e.msg);
		cg_fail(&e, e.code, "cannot open the store (clawgrid.db): %s", msg);
		goto fail;
	}

	n->base = event_base_new();
	n->rpc = rpc_registry_new();
	struct http_server_opts ho = {
		.max_connections = p->set.max_connections,
		.header_timeout_ms = p->set.header_timeout_ms,
		.body_timeout_ms = p->set.body_timeout_ms,
		/* Feature routes may take bigger bodies than /rpc (storage puts); 8 MiB bounds them all. */
		.max_body = p->set.rpc_max_body > (8u << 20) ? p->set.rpc_max_body : (8u << 20),
	};
	if (!n->base || !n->rpc || !(n->http = http_server_new(n->base, &ho))) {
		cg_fail(&e, CG_E_INTERNAL, "out of memory");
		goto fail;
	}
	http_server_set_admin_token(n->http, token);
	sodium_memzero(token, sizeof token);
	if (node_register_routes(n, p->set.rpc_max_body) < 0 || node_register_core(n) < 0) {
		cg_fail(&e, CG_E_INTERNAL, "cannot register the core routes");
		goto fail;
	}
	if (http_server_listen(n->http, api_override ? api_override : p->set.listen, n->api_addr,
			       sizeof n->api_addr, &e) < 0)
		goto fail;

	for (int i = 0; node_modules[i]; i++) {
		if (i >= NODE_MOD_MAX) {
			cg_fail(&e, CG_E_INTERNAL, "too many modules");
			goto fail;
		}
		cg_err me;
		cg_err_clear(&me);
		if (node_modules[i]->start(n, i, &me) < 0) {
			p->nstarted = i + 1; /* stop() may be called after a failed start */
			cg_fail(&e, me.code ? me.code : CG_E_INTERNAL, "module %s: %s", node_modules[i]->name,
				me.msg[0] ? me.msg : "failed to start");
			goto fail;
		}
		p->nstarted = i + 1;
	}

	signal(SIGPIPE, SIG_IGN); /* a client that hangs up must not kill the node */
	p->sig[0] = evsignal_new(n->base, SIGTERM, on_signal, n);
	p->sig[1] = evsignal_new(n->base, SIGINT, on_signal, n);
	if (!p->sig[0] || !p->sig[1] || evsignal_add(p->sig[0], NULL) < 0 || evsignal_add(p->sig[1], NULL) < 0) {
		cg_fail(&e, CG_E_INTERNAL, "cannot install signal handlers");
		goto fail;
	}
	if (write_api_file(n, &e) < 0)
		goto fail;
	log_info("node", "started", "peer=%s address=%s api=%s version=%s modules=%d", n->peer_id, n->address,
		 n->api_addr, CLAWGRID_VERSION, p->nstarted);

	event_base_dispatch(n->base);

	log_info("node", "stopped", "uptime_s=%lld", (long long)((clock_mono_ms() - p->start_mono_ms) / 1000));
	node_free(n);
	return EXIT_OK;

fail:
	sodium_memzero(token, sizeof token);
	rc = fail_start(exit_for(&e), &e);
	node_free(n);
	return rc;
}
