/* harness — the shared integration-test harness: real `clawgrid` nodes on loopback, spoken to over HTTP.
 *
 * Every integration and e2e test uses it the same way:
 *
 *   struct hnode *n = h_node_new(NULL);          // temp data dir + `clawgrid init` (NULL = defaults)
 *   h_node_start(n);                             // `clawgrid node --api 127.0.0.1:0`, waits for node.api
 *   json_t *res = h_rpc_ok(n, "node.info", NULL); // JSON-RPC with the admin token, result or test failure
 *   struct h_resp r; h_get(n, "/healthz", &r);   // plain HTTP (libcurl)
 *   assert_int_equal(h_node_stop(n), 0);         // SIGTERM, wait, exit status (0 = clean)
 *   h_node_free(n);                              // kills a leftover process, removes the temp dir
 *
 * The binary comes from $CLAWGRID_BIN (set by `make test`); h_require_bin() exits 77 (skip) without it.
 * Each node's stderr goes to a log file outside its data dir: h_node_log() returns it, for SEC-01 scans
 * (h_log_assert_clean). Functions that cannot go on (fork, temp dir, node does not come up) print why to
 * stderr and return an error; the _ok variants fail the current cmocka test instead.
 * Not thread-safe: call from the test's thread. Ports are never fixed: nodes bind port 0. A node dies with
 * the test process (PR_SET_PDEATHSIG), so a crashed or timed-out test leaves nothing running. */
#ifndef CG_TESTS_HARNESS_H
#define CG_TESTS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

struct hnode_opts {
	const char *config_json;     /* replaces config.json after init (NULL: keep the default) */
	const char *const *node_args; /* extra arguments after `node --api 127.0.0.1:0` (NULL-terminated) */
	const char *const *env;       /* extra "NAME=value" entries for the node process (NULL-terminated) */
	const char *api;              /* --api value (NULL: 127.0.0.1:0) */
	int start_timeout_ms;         /* how long h_node_start waits for node.api (0: 20000) */
};

struct hnode {
	char root[256];     /* temp root: data dir, log, scratch files */
	char dir[300];      /* the data dir (root/data) */
	char log_path[300]; /* the node's stderr+stdout (root/node.log) */
	char api[96];       /* "127.0.0.1:PORT" once started */
	char base_url[128]; /* "http://127.0.0.1:PORT" */
	char token[128];    /* the admin token (from admin.token) */
	char peer_id[64];   /* from `clawgrid id --json` (after h_node_new) */
	char address[64];
	pid_t pid;          /* 0 when not running */
	int exit_status;    /* last h_node_stop/h_node_wait result */
	struct hnode_opts opts;
};

/* Exits 77 with a message when $CLAWGRID_BIN is unset or not executable; returns the path otherwise. */
const char *h_require_bin(void);

/* Creates a temp dir and runs `clawgrid init` in it (plus opts->config_json). NULL on failure (printed).
 * opts is copied shallowly: its strings must outlive the node. */
struct hnode *h_node_new(const struct hnode_opts *opts);
/* Starts the node and waits until it answers /healthz. 0, or -1 (the log tail is printed). */
int h_node_start(struct hnode *n);
/* Sends SIGTERM, waits up to 20 s (SIGKILL after that) and returns the exit status: 0 for a clean stop,
 * the exit code otherwise, 128+signal when killed by a signal, -1 when it was not running. */
int h_node_stop(struct hnode *n);
/* Sends sig without waiting. */
int h_node_signal(struct hnode *n, int sig);
/* Waits up to timeout_ms for the process to exit; returns its status as h_node_stop, or -2 on timeout. */
int h_node_wait(struct hnode *n, int timeout_ms);
/* Stops (SIGKILL) a running node, removes the temp root, frees. NULL-safe. */
void h_node_free(struct hnode *n);

/* Overwrites <data dir>/config.json (node must be restarted to see it). 0 or -1. */
int h_node_write_config(struct hnode *n, const char *json);
/* Path of a file in the data dir / the temp root (static buffer, overwritten by the next call). */
const char *h_node_path(struct hnode *n, const char *name);
const char *h_root_path(struct hnode *n, const char *name);

/* The node's captured output so far (caller frees). */
char *h_node_log(struct hnode *n);
/* True when the log contains needle. */
bool h_log_contains(struct hnode *n, const char *needle);
/* Gate SEC-01: fails the test if the log contains any of the given secrets (NULL-terminated), the admin
 * token, the real data dir path, or a tok_ token. */
void h_log_assert_clean(struct hnode *n, const char *const *secrets);

/* Runs `clawgrid --data-dir <dir> ARGS...` (NULL-terminated), stdin from /dev/null, and returns its exit
 * status; *out / *err get stdout / stderr (caller frees; either may be NULL). -1 if it cannot run. */
int h_cli(struct hnode *n, char **out, char **err, const char *arg, ...) __attribute__((sentinel));
int h_cliv(struct hnode *n, char **out, char **err, const char *const *argv);

/* ---- HTTP (libcurl) ---- */

struct h_resp {
	long status;   /* 0 when the request failed at the transport level */
	char *body;    /* NUL-terminated (caller frees with h_resp_free) */
	size_t len;
	char *headers; /* raw response headers, NUL-terminated */
	int curl_code; /* CURLcode */
};
void h_resp_free(struct h_resp *r);
/* Value of a response header (case-insensitive name) into out; false when absent. */
bool h_resp_header(const struct h_resp *r, const char *name, char *out, size_t cap);

/* Generic request: url may be a full URL or a path (then prefixed with n->base_url). headers is a
 * NULL-terminated list of "Name: value" lines (NULL: none). body may be NULL. timeout_ms 0 = 20000.
 * Returns 0 when an HTTP response came back (r->status set), -1 otherwise (r->curl_code set). */
int h_http(struct hnode *n, const char *method, const char *url, const char *const *headers, const void *body,
	   size_t len, int timeout_ms, struct h_resp *r);
int h_get(struct hnode *n, const char *path, struct h_resp *r);
/* POST with Content-Type: application/json and the admin bearer token. */
int h_post_json(struct hnode *n, const char *path, const char *json, struct h_resp *r);

/* JSON-RPC over POST /rpc with the admin token. params is borrowed (NULL = {}). Returns the whole
 * response object (caller frees) or NULL when there was no JSON answer; *http_status gets the status. */
json_t *h_rpc(struct hnode *n, const char *method, json_t *params, long *http_status);
/* Like h_rpc but returns the "result" (caller frees), failing the test on any error. */
json_t *h_rpc_ok(struct hnode *n, const char *method, json_t *params);
/* Calls method and expects an error: returns the error object (caller frees), failing the test when the
 * call succeeded. When code is non-NULL the error's data.code must equal it ("E_INVALID_ARGUMENT"). */
json_t *h_rpc_err(struct hnode *n, const char *method, json_t *params, const char *code);

/* ---- raw sockets (slow clients, malformed requests) ---- */

/* Connects to the node's API port; returns a blocking fd (O_CLOEXEC) or -1. */
int h_connect(struct hnode *n);
/* Writes all of s. 0 or -1. */
int h_send(int fd, const char *s);
/* Reads until EOF or timeout; returns bytes read (>= 0, NUL-terminated into buf), or -1 on error. */
long h_recv_all(int fd, char *buf, size_t cap, int timeout_ms);

/* ---- misc ---- */

/* A TCP port that was free a moment ago on 127.0.0.1 (for peers that cannot bind port 0 themselves). */
int h_free_port(void);
/* Reads a whole file (caller frees); NULL if missing. */
char *h_read_file(const char *path, size_t *len);
/* Sleeps ms milliseconds. */
void h_sleep_ms(int ms);
/* Polls cond(arg) every 20 ms up to timeout_ms; true as soon as it holds. For waiting on effects, never for
 * timing assertions. */
bool h_wait_until(bool (*cond)(void *arg), void *arg, int timeout_ms);

#endif
