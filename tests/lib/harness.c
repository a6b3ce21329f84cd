/* harness — see harness.h. */
#include "harness.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

extern char **environ;

#define CLI_TIMEOUT_MS 60000
#define STOP_TIMEOUT_MS 20000

void h_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool h_wait_until(bool (*cond)(void *arg), void *arg, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;
	for (;;) {
		if (cond(arg))
			return true;
		if (now_ms() >= end)
			return false;
		h_sleep_ms(20);
	}
}

const char *h_require_bin(void)
{
	const char *b = getenv("CLAWGRID_BIN");
	if (!b || !*b || access(b, X_OK) != 0) {
		printf("skip: CLAWGRID_BIN is not set to the built clawgrid binary (run through 'make test')\n");
		exit(77);
	}
	return b;
}

char *h_read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 4096, n = 0;
	char *p = malloc(cap);
	for (;;) {
		if (!p) {
			close(fd);
			return NULL;
		}
		if (n + 1 >= cap) {
			char *np = realloc(p, cap * 2);
			if (!np) {
				free(p);
				close(fd);
				return NULL;
			}
			p = np;
			cap *= 2;
		}
		ssize_t r = read(fd, p + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	p[n] = 0;
	if (len)
		*len = n;
	return p;
}

static int write_file(const char *path, const char *s, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	size_t n = strlen(s);
	bool ok = write(fd, s, n) == (ssize_t)n;
	close(fd);
	return ok ? 0 : -1;
}

const char *h_node_path(struct hnode *n, const char *name)
{
	static char p[PATH_MAX];
	snprintf(p, sizeof p, "%s/%s", n->dir, name);
	return p;
}

const char *h_root_path(struct hnode *n, const char *name)
{
	static char p[PATH_MAX];
	snprintf(p, sizeof p, "%s/%s", n->root, name);
	return p;
}

/* ---------------------------------------------------------------- processes */

/* environ + extra, as a new NULL-terminated array (the strings are borrowed). */
static char **make_env(const char *const *extra, const char *home)
{
	size_t ne = 0, nx = 0;
	while (environ[ne])
		ne++;
	while (extra && extra[nx])
		nx++;
	char **env = calloc(ne + nx + 2, sizeof *env);
	if (!env)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < ne; i++)
		if (strncmp(environ[i], "CLAWGRID_HOME=", 14) != 0)
			env[k++] = environ[i];
	for (size_t i = 0; i < nx; i++)
		env[k++] = (char *)extra[i];
	env[k++] = (char *)home;
	env[k] = NULL;
	return env;
}

/* Starts argv with stdout/stderr to the given fds (or /dev/null for -1) and stdin from /dev/null. */
static pid_t spawn(const char *const *argv, const char *const *extra_env, const char *data_dir, int out_fd,
		   int err_fd)
{
	char home[PATH_MAX + 20];
	snprintf(home, sizeof home, "CLAWGRID_HOME=%s", data_dir);
	char **env = make_env(extra_env, home);
	if (!env)
		return -1;
	fflush(stdout);
	fflush(stderr);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		/* A test that dies (assert, crash, timeout) must not leave its nodes running. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		int devnull = open("/dev/null", O_RDWR);
		dup2(devnull, 0);
		dup2(out_fd >= 0 ? out_fd : devnull, 1);
		dup2(err_fd >= 0 ? err_fd : devnull, 2);
		signal(SIGPIPE, SIG_DFL);
		execve(argv[0], (char *const *)argv, env);
		_exit(127);
	}
	free(env);
	return pid;
}

static int status_code(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return -1;
}

/* Waits up to timeout_ms; returns status_code, or -2 on timeout. */
static int wait_pid(pid_t pid, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;
	for (;;) {
		int st;
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return status_code(st);
		if (r < 0 && errno != EINTR)
			return -1;
		if (now_ms() >= end)
			return -2;
		h_sleep_ms(5);
	}
}

int h_cliv(struct hnode *n, char **out, char **err, const char *const *args)
{
	const char *bin = h_require_bin();
	const char *argv[64];
	size_t k = 0;
	argv[k++] = bin;
	argv[k++] = "--data-dir";
	argv[k++] = n->dir;
	for (size_t i = 0; args && args[i] && k < 63; i++)
		argv[k++] = args[i];
	argv[k] = NULL;
	char op[PATH_MAX], ep[PATH_MAX];
	snprintf(op, sizeof op, "%s/cli.out", n->root);
	snprintf(ep, sizeof ep, "%s/cli.err", n->root);
	int ofd = open(op, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int efd = open(ep, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (ofd < 0 || efd < 0) {
		if (ofd >= 0)
			close(ofd);
		if (efd >= 0)
			close(efd);
		fprintf(stderr, "harness: cannot create CLI output files\n");
		return -1;
	}
	pid_t pid = spawn(argv, n->opts.env, n->dir, ofd, efd);
	close(ofd);
	close(efd);
	if (pid < 0)
		return -1;
	int st = wait_pid(pid, CLI_TIMEOUT_MS);
	if (st == -2) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		fprintf(stderr, "harness: clawgrid %s timed out\n", args && args[0] ? args[0] : "");
		st = -1;
	}
	if (out)
		*out = h_read_file(op, NULL);
	if (err)
		*err = h_read_file(ep, NULL);
	return st;
}

int h_cli(struct hnode *n, char **out, char **err, const char *arg, ...)
{
	const char *args[48];
	size_t k = 0;
	va_list ap;
	va_start(ap, arg);
	for (const char *a = arg; a && k < 47; a = va_arg(ap, const char *))
		args[k++] = a;
	va_end(ap);
	args[k] = NULL;
	return h_cliv(n, out, err, args);
}

/* ---------------------------------------------------------------- nodes */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	/* Tests may leave read-only directories behind (read-only data dir test). */
	chmod(path, 0700);
	remove(path);
	return 0;
}

static void rm_rf(const char *path)
{
	/* Make directories writable first (depth-first removal needs writable parents). */
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static bool parse_id(struct hnode *n)
{
	char *out = NULL;
	int rc = h_cli(n, &out, NULL, "id", "--json", NULL);
	json_t *j = (rc == 0 && out) ? json_loads(out, 0, NULL) : NULL;
	free(out);
	const char *p = json_string_value(json_object_get(j, "peerId"));
	const char *a = json_string_value(json_object_get(j, "address"));
	if (p)
		snprintf(n->peer_id, sizeof n->peer_id, "%s", p);
	if (a)
		snprintf(n->address, sizeof n->address, "%s", a);
	json_decref(j);
	return p && a;
}

struct hnode *h_node_new(const struct hnode_opts *opts)
{
	h_require_bin();
	static bool curl_ready;
	if (!curl_ready) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		curl_ready = true;
	}
	struct hnode *n = calloc(1, sizeof *n);
	if (!n)
		return NULL;
	if (opts)
		n->opts = *opts;
	const char *tmp = getenv("TMPDIR");
	snprintf(n->root, sizeof n->root, "%s/clawgrid-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(n->root)) {
		fprintf(stderr, "harness: mkdtemp: %s\n", strerror(errno));
		free(n);
		return NULL;
	}
	snprintf(n->dir, sizeof n->dir, "%s/data", n->root);
	snprintf(n->log_path, sizeof n->log_path, "%s/node.log", n->root);
	char *err = NULL;
	int rc = h_cli(n, NULL, &err, "init", NULL);
	if (rc != 0) {
		fprintf(stderr, "harness: clawgrid init failed (%d): %s\n", rc, err ? err : "");
		free(err);
		h_node_free(n);
		return NULL;
	}
	free(err);
	char *tok = h_read_file(h_node_path(n, "admin.token"), NULL);
	if (!tok) {
		fprintf(stderr, "harness: no admin.token after init\n");
		h_node_free(n);
		return NULL;
	}
	tok[strcspn(tok, "\r\n")] = 0;
	snprintf(n->token, sizeof n->token, "%s", tok);
	free(tok);
	if (opts && opts->config_json && h_node_write_config(n, opts->config_json) < 0) {
		h_node_free(n);
		return NULL;
	}
	if (!parse_id(n))
		fprintf(stderr, "harness: warning: 'clawgrid id --json' gave no peerId/address\n");
	return n;
}

int h_node_write_config(struct hnode *n, const char *json)
{
	if (write_file(h_node_path(n, "config.json"), json, 0600) < 0) {
		fprintf(stderr, "harness: cannot write config.json\n");
		return -1;
	}
	return 0;
}

static void print_log_tail(struct hnode *n)
{
	char *log = h_node_log(n);
	if (!log)
		return;
	size_t len = strlen(log);
	fprintf(stderr, "harness: node log (last 3000 bytes):\n%s\n", len > 3000 ? log + len - 3000 : log);
	free(log);
}

int h_node_start(struct hnode *n)
{
	const char *bin = h_require_bin();
	if (n->pid > 0) {
		fprintf(stderr, "harness: node already running\n");
		return -1;
	}
	unlink(h_node_path(n, "node.api"));
	const char *argv[48];
	size_t k = 0;
	argv[k++] = bin;
	argv[k++] = "--data-dir";
	argv[k++] = n->dir;
	argv[k++] = "node";
	argv[k++] = "--api";
	argv[k++] = n->opts.api ? n->opts.api : "127.0.0.1:0";
	for (size_t i = 0; n->opts.node_args && n->opts.node_args[i] && k < 47; i++)
		argv[k++] = n->opts.node_args[i];
	argv[k] = NULL;
	/* Append: a restarted node's log continues the same file. */
	int lfd = open(n->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (lfd < 0)
		return -1;
	pid_t pid = spawn(argv, n->opts.env, n->dir, lfd, lfd);
	close(lfd);
	if (pid < 0)
		return -1;
	n->pid = pid;
	int timeout = n->opts.start_timeout_ms > 0 ? n->opts.start_timeout_ms : 20000;
	int64_t end = now_ms() + timeout;
	for (;;) {
		int st;
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid) {
			n->pid = 0;
			n->exit_status = status_code(st);
			fprintf(stderr, "harness: node exited during start with status %d\n", n->exit_status);
			print_log_tail(n);
			return -1;
		}
		char *api = h_read_file(h_node_path(n, "node.api"), NULL);
		if (api) {
			api[strcspn(api, "\r\n")] = 0;
			if (*api) {
				snprintf(n->api, sizeof n->api, "%s", api);
				snprintf(n->base_url, sizeof n->base_url, "http://%s", api);
				free(api);
				break;
			}
			free(api);
		}
		if (now_ms() >= end) {
			fprintf(stderr, "harness: node did not write node.api within %d ms\n", timeout);
			print_log_tail(n);
			h_node_signal(n, SIGKILL);
			h_node_wait(n, 5000);
			return -1;
		}
		h_sleep_ms(10);
	}
	struct h_resp resp;
	for (int i = 0; i < 100; i++) {
		if (h_get(n, "/healthz", &resp) == 0 && resp.status == 200) {
			h_resp_free(&resp);
			return 0;
		}
		h_resp_free(&resp);
		h_sleep_ms(20);
	}
	fprintf(stderr, "harness: node does not answer /healthz\n");
	print_log_tail(n);
	return -1;
}

int h_node_signal(struct hnode *n, int sig)
{
	return n->pid > 0 ? kill(n->pid, sig) : -1;
}

int h_node_wait(struct hnode *n, int timeout_ms)
{
	if (n->pid <= 0)
		return -1;
	int st = wait_pid(n->pid, timeout_ms);
	if (st == -2)
		return -2;
	n->pid = 0;
	n->exit_status = st;
	return st;
}

int h_node_stop(struct hnode *n)
{
	if (n->pid <= 0)
		return -1;
	kill(n->pid, SIGTERM);
	int st = h_node_wait(n, STOP_TIMEOUT_MS);
	if (st == -2) {
		fprintf(stderr, "harness: node ignored SIGTERM for %d ms; killing it\n", STOP_TIMEOUT_MS);
		print_log_tail(n);
		kill(n->pid, SIGKILL);
		st = h_node_wait(n, STOP_TIMEOUT_MS);
	}
	return st;
}

void h_node_free(struct hnode *n)
{
	if (!n)
		return;
	if (n->pid > 0) {
		kill(n->pid, SIGKILL);
		waitpid(n->pid, NULL, 0);
	}
	if (n->root[0] && !getenv("CLAWGRID_KEEP_TEST_DIRS"))
		rm_rf(n->root);
	free(n);
}

char *h_node_log(struct hnode *n)
{
	return h_read_file(n->log_path, NULL);
}

bool h_log_contains(struct hnode *n, const char *needle)
{
	char *log = h_node_log(n);
	bool r = log && strstr(log, needle);
	free(log);
	return r;
}

void h_log_assert_clean(struct hnode *n, const char *const *secrets)
{
	char *log = h_node_log(n);
	if (!log)
		return;
	char real[PATH_MAX];
	if (n->token[0] && strstr(log, n->token))
		fail_msg("SEC-01: the admin token appears in the node log");
	if (realpath(n->dir, real) && strstr(log, real))
		fail_msg("SEC-01: the real data dir path appears in the node log");
	for (size_t i = 0; secrets && secrets[i]; i++)
		if (*secrets[i] && strstr(log, secrets[i]))
			fail_msg("SEC-01: secret #%zu appears in the node log", i);
	for (const char *p = strstr(log, "tok_"); p; p = strstr(p + 4, "tok_")) {
		size_t k = 4;
		while (p[k] && (isalnum((unsigned char)p[k]) || p[k] == '-' || p[k] == '_'))
			k++;
		if (k > 12)
			fail_msg("SEC-01: a tok_ token appears in the node log");
	}
	free(log);
}

/* ---------------------------------------------------------------- HTTP */

struct sink {
	char *p;
	size_t n, cap;
};

static size_t sink_write(char *ptr, size_t size, size_t nm, void *arg)
{
	struct sink *s = arg;
	size_t add = size * nm;
	if (s->n + add + 1 > s->cap) {
		size_t nc = s->cap ? s->cap : 1024;
		while (nc < s->n + add + 1)
			nc *= 2;
		char *np = realloc(s->p, nc);
		if (!np)
			return 0;
		s->p = np;
		s->cap = nc;
	}
	memcpy(s->p + s->n, ptr, add);
	s->n += add;
	s->p[s->n] = 0;
	return add;
}

void h_resp_free(struct h_resp *r)
{
	free(r->body);
	free(r->headers);
	memset(r, 0, sizeof *r);
}

bool h_resp_header(const struct h_resp *r, const char *name, char *out, size_t cap)
{
	if (!r->headers)
		return false;
	size_t nl = strlen(name);
	for (const char *line = r->headers; line && *line;) {
		const char *end = strstr(line, "\r\n");
		if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
			const char *v = line + nl + 1;
			while (*v == ' ')
				v++;
			size_t vl = end ? (size_t)(end - v) : strlen(v);
			snprintf(out, cap, "%.*s", (int)vl, v);
			return true;
		}
		line = end ? end + 2 : NULL;
	}
	return false;
}

int h_http(struct hnode *n, const char *method, const char *url, const char *const *headers, const void *body,
	   size_t len, int timeout_ms, struct h_resp *r)
{
	memset(r, 0, sizeof *r);
	char full[1024];
	if (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0)
		snprintf(full, sizeof full, "%s", url);
	else
		snprintf(full, sizeof full, "%s%s", n ? n->base_url : "", url);
	CURL *h = curl_easy_init();
	if (!h)
		return -1;
	struct sink b = {0}, hd = {0};
	struct curl_slist *hl = NULL;
	for (size_t i = 0; headers && headers[i]; i++)
		hl = curl_slist_append(hl, headers[i]);
	hl = curl_slist_append(hl, "Expect:"); /* send bodies at once; the server answers 413 itself */
	curl_easy_setopt(h, CURLOPT_URL, full);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, sink_write);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &hd);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(timeout_ms > 0 ? timeout_ms : 20000));
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	CURLcode cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(hl);
	curl_easy_cleanup(h);
	r->curl_code = (int)cc;
	r->body = b.p ? b.p : strdup("");
	r->len = b.n;
	r->headers = hd.p ? hd.p : strdup("");
	return (cc == CURLE_OK || r->status > 0) ? 0 : -1;
}

int h_get(struct hnode *n, const char *path, struct h_resp *r)
{
	return h_http(n, "GET", path, NULL, NULL, 0, 0, r);
}

int h_post_json(struct hnode *n, const char *path, const char *json, struct h_resp *r)
{
	char authz[200];
	snprintf(authz, sizeof authz, "Authorization: Bearer %s", n->token);
	const char *hdrs[] = {"Content-Type: application/json", authz, NULL};
	return h_http(n, "POST", path, hdrs, json, strlen(json), 0, r);
}

json_t *h_rpc(struct hnode *n, const char *method, json_t *params, long *http_status)
{
	json_t *req = json_pack("{s:s,s:i,s:s}", "jsonrpc", "2.0", "id", 1, "method", method);
	json_object_set(req, "params", params ? params : json_object());
	if (!params)
		json_decref(json_object_get(req, "params"));
	char *body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	struct h_resp r;
	int rc = h_post_json(n, "/rpc", body, &r);
	free(body);
	if (http_status)
		*http_status = r.status;
	json_t *out = rc == 0 ? json_loads(r.body, 0, NULL) : NULL;
	h_resp_free(&r);
	return out;
}

json_t *h_rpc_ok(struct hnode *n, const char *method, json_t *params)
{
	long st = 0;
	json_t *resp = h_rpc(n, method, params, &st);
	if (!resp)
		fail_msg("rpc %s: no JSON answer (HTTP %ld)", method, st);
	json_t *err = json_object_get(resp, "error");
	if (err) {
		char *s = json_dumps(err, JSON_COMPACT);
		fprintf(stderr, "rpc %s failed: %s\n", method, s ? s : "?");
		free(s);
		json_decref(resp);
		fail_msg("rpc %s returned an error", method);
	}
	json_t *res = json_incref(json_object_get(resp, "result"));
	json_decref(resp);
	if (!res)
		fail_msg("rpc %s: no result", method);
	return res;
}

json_t *h_rpc_err(struct hnode *n, const char *method, json_t *params, const char *code)
{
	long st = 0;
	json_t *resp = h_rpc(n, method, params, &st);
	if (!resp)
		fail_msg("rpc %s: no JSON answer (HTTP %ld)", method, st);
	json_t *err = json_incref(json_object_get(resp, "error"));
	json_decref(resp);
	if (!err)
		fail_msg("rpc %s: expected an error, got a result", method);
	if (code) {
		const char *got = json_string_value(json_object_get(json_object_get(err, "data"), "code"));
		if (!got || strcmp(got, code) != 0) {
			const char *msg = json_string_value(json_object_get(err, "message"));
			fprintf(stderr, "rpc %s: expected %s, got %s (%s)\n", method, code, got ? got : "no code",
				msg ? msg : "");
			json_decref(err);
			fail_msg("rpc %s: wrong error code", method);
		}
	}
	return err;
}

/* ---------------------------------------------------------------- raw sockets */

int h_connect(struct hnode *n)
{
	char host[64];
	int port = 0;
	const char *colon = strrchr(n->api, ':');
	if (!colon)
		return -1;
	snprintf(host, sizeof host, "%.*s", (int)(colon - n->api), n->api);
	port = (int)strtoul(colon + 1, NULL, 10);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, host, &a.sin_addr) != 1 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int h_send(int fd, const char *s)
{
	size_t n = strlen(s);
	while (n) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

long h_recv_all(int fd, char *buf, size_t cap, int timeout_ms)
{
	size_t n = 0;
	int64_t end = now_ms() + timeout_ms;
	while (n + 1 < cap) {
		int left = (int)(end - now_ms());
		if (left <= 0)
			break;
		struct pollfd p = {fd, POLLIN, 0};
		int pr = poll(&p, 1, left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			break;
		ssize_t r = recv(fd, buf + n, cap - n - 1, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			if (n == 0 && errno != ECONNRESET) {
				buf[0] = 0;
				return -1;
			}
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = 0;
	return (long)n;
}

int h_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t l = sizeof a;
	int port = -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &l) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}
