/* The CLI's JSON-RPC client: finds the running node through the data directory and calls it. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "base/buf.h"
#include "cli/cli.h"
#include "rpc/rpc.h"

char *cli_read_file(struct cli *c, const char *name, size_t max)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/%s", c->data_dir, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	buf b;
	buf_init(&b, max);
	char tmp[4096];
	ssize_t n;
	while ((n = read(fd, tmp, sizeof tmp)) > 0) {
		if (buf_append(&b, tmp, (size_t)n) != 0) {
			buf_wipe(&b);
			close(fd);
			return NULL;
		}
	}
	close(fd);
	if (!b.data)
		return strdup("");
	return (char *)buf_steal(&b, NULL);
}

static void trim(char *s)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		s[--n] = 0;
}

static bool exists_in(struct cli *c, const char *name)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/%s", c->data_dir, name);
	return access(path, F_OK) == 0;
}

/* True unless node.pid shows that no node runs: a running node keeps its pid there and empties the file on
 * exit. A node killed with SIGKILL leaves its pid and node.api behind; kill(pid, 0) tells that apart. The
 * lock itself is not probed: even a shared flock() taken here could make a node starting at that moment
 * believe the directory is in use. */
static bool pid_alive(struct cli *c)
{
	char *s = cli_read_file(c, "node.pid", 64);
	if (!s)
		return false;
	char *end = NULL;
	long pid = strtol(s, &end, 10);
	bool have = end != s && pid > 0;
	free(s);
	if (!have)
		return false;
	return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

int cli_node_addr(struct cli *c, char *out, size_t cap, cg_err *e)
{
	if (c->api) {
		size_t n = strlen(c->api);
		if (n >= 2 && strcmp(c->api + n - 2, ":0") == 0) {
			cg_fail(e, CG_E_INVALID_ARGUMENT, "--api: port 0 only makes sense for 'clawgrid node'");
			return EXIT_USAGE;
		}
		snprintf(out, cap, "%s", c->api);
		return EXIT_OK;
	}
	if (!exists_in(c, "node.key") && !exists_in(c, "admin.token")) {
		cg_fail(e, CG_E_UNAVAILABLE, "the data directory is not initialized (run 'clawgrid init', then "
					     "'clawgrid node')");
		return EXIT_NONODE;
	}
	/* Only node.api, which a running node writes: never api.listen or 127.0.0.1:7878, where another program
	 * (or the node of another data directory) may listen and would be handed the admin token. */
	char *s = cli_read_file(c, "node.api", 256);
	if (s) {
		trim(s);
		snprintf(out, cap, "%s", s);
		free(s);
	} else {
		out[0] = 0;
	}
	if (!out[0] || !pid_alive(c)) {
		cg_fail(e, CG_E_UNAVAILABLE, "no node running on this data directory (start it with 'clawgrid node', or "
					     "pass --api HOST:PORT)");
		return EXIT_NONODE;
	}
	return EXIT_OK;
}

int cli_admin_authz(struct cli *c, char *out, size_t cap, cg_err *e)
{
	char *token = cli_read_file(c, "admin.token", 4096);
	if (!token) {
		if (!exists_in(c, "node.key")) {
			cg_fail(e, CG_E_UNAVAILABLE, "the data directory is not initialized (run 'clawgrid init')");
			return EXIT_NONODE;
		}
		cg_fail(e, CG_E_AUTH_REQUIRED, "cannot read the admin token (admin.token) of the data directory");
		return EXIT_AUTH;
	}
	trim(token);
	int n = snprintf(out, cap, "Authorization: Bearer %s", token);
	bool empty = token[0] == 0;
	sodium_memzero(token, strlen(token));
	free(token);
	if (empty || n < 0 || (size_t)n >= cap) {
		sodium_memzero(out, cap);
		cg_fail(e, CG_E_AUTH_REQUIRED, "the admin token (admin.token) is empty or too long");
		return EXIT_AUTH;
	}
	return EXIT_OK;
}

void cli_curl_defaults(void *curl)
{
	CURL *h = curl;
	/* The admin token must only ever go to the node itself: never through an http_proxy from the
	 * environment, never along a redirect. */
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
}

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
	return buf_append(arg, p, sz * n) == 0 ? sz * n : 0;
}

/* The E_* code of a JSON-RPC error object: data.code when the node sent one, else from the protocol code
 * (-32700 parse error, -32600 invalid request, -32601 unknown method carry no E_* name of their own). */
static enum cg_code error_code(json_t *err)
{
	const char *name = json_string_value(json_object_get(json_object_get(err, "data"), "code"));
	int k = name ? cg_code_from_name(name) : -1;
	if (k > 0)
		return (enum cg_code)k;
	switch (json_integer_value(json_object_get(err, "code"))) {
	case -32700:
	case -32600:
	case -32602:
		return CG_E_INVALID_ARGUMENT;
	case -32601:
		return CG_E_NOT_FOUND;
	case -32001:
		return CG_E_AUTH_REQUIRED;
	default:
		return CG_E_INTERNAL;
	}
}

int cli_rpc_quiet(struct cli *c, const char *method, json_t *params, json_t **result, cg_err *e)
{
	char addr[300], url[400], authz[4200];
	int rc = cli_node_addr(c, addr, sizeof addr, e);
	if (rc != EXIT_OK)
		return rc;
	snprintf(url, sizeof url, "http://%s/rpc", addr);
	if ((rc = cli_admin_authz(c, authz, sizeof authz, e)) != EXIT_OK)
		return rc;

	json_t *req = json_pack("{s:s,s:i,s:s}", "jsonrpc", "2.0", "id", 1, "method", method);
	json_object_set_new(req, "params", params ? json_incref(params) : json_object());
	char *body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!body) {
		sodium_memzero(authz, sizeof authz);
		cg_fail(e, CG_E_INTERNAL, "out of memory");
		return EXIT_FAIL;
	}

	CURL *h = curl_easy_init();
	if (!h) {
		sodium_memzero(authz, sizeof authz);
		free(body);
		cg_fail(e, CG_E_INTERNAL, "cannot start an HTTP client");
		return EXIT_FAIL;
	}
	struct curl_slist *hdr = NULL;
	hdr = curl_slist_append(hdr, "Content-Type: application/json");
	hdr = curl_slist_append(hdr, authz);
	sodium_memzero(authz, sizeof authz);
	buf resp;
	buf_init(&resp, 256u << 20);
	cli_curl_defaults(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 600000L);
	CURLcode cc = curl_easy_perform(h);
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdr); /* the token header is freed here; libcurl keeps no copy after cleanup */
	curl_easy_cleanup(h);
	free(body);

	rc = EXIT_OK;
	json_t *r = NULL;
	if (cc != CURLE_OK) {
		cg_fail(e, CG_E_UNAVAILABLE, "cannot reach the node at %s: %s (is 'clawgrid node' running?)", addr,
			curl_easy_strerror(cc));
		rc = EXIT_NONODE;
		goto out;
	}
	if (status == 401) {
		cg_fail(e, CG_E_AUTH_REQUIRED, "the node refused the admin token");
		rc = EXIT_AUTH;
		goto out;
	}
	json_error_t jerr;
	r = json_loadb((const char *)resp.data, resp.len, 0, &jerr);
	json_t *err = json_object_get(r, "error");
	if (!r || (!err && !json_object_get(r, "result"))) {
		cg_fail(e, CG_E_INTERNAL, "bad response from the node (HTTP %ld)", status);
		rc = EXIT_FAIL;
		goto out;
	}
	if (json_is_object(err) && !json_object_get(r, "jsonrpc")) {
		/* Not a JSON-RPC answer: the transport refused the request ({"ok":false,"error":{code,message}}),
		 * e.g. 503 while the node shuts down. */
		const char *name = json_string_value(json_object_get(err, "code"));
		const char *msg = json_string_value(json_object_get(err, "message"));
		int k = name ? cg_code_from_name(name) : -1;
		cg_fail(e, k > 0 ? (enum cg_code)k : CG_E_INTERNAL, "%s", msg ? msg : "the node refused the request");
		rc = status == 503 ? EXIT_NONODE : EXIT_FAIL;
		goto out;
	}
	if (err) {
		enum cg_code code = error_code(err);
		const char *msg = json_string_value(json_object_get(err, "message"));
		const char *m = msg ? msg : "error";
		/* message is "E_CODE: text": keep only the text in e->msg */
		const char *name = cg_code_name(code);
		if (strncmp(m, name, strlen(name)) == 0 && m[strlen(name)] == ':')
			m += strlen(name) + (m[strlen(name) + 1] == ' ' ? 2 : 1);
		if (json_integer_value(json_object_get(err, "code")) == -32601)
			cg_fail(e, code, "%s: %s", m, method);
		else
			cg_fail(e, code, "%s", m);
		rc = code == CG_E_AUTH_REQUIRED ? EXIT_AUTH : EXIT_FAIL;
		goto out;
	}
	*result = json_incref(json_object_get(r, "result"));
out:
	json_decref(r);
	buf_done(&resp);
	return rc;
}

int cli_rpc(struct cli *c, const char *method, json_t *params, json_t **result)
{
	cg_err e;
	cg_err_clear(&e);
	int rc = cli_rpc_quiet(c, method, params, result, &e);
	if (rc != EXIT_OK)
		cli_print_error(c, &e);
	return rc;
}

void cli_print_error(struct cli *c, const cg_err *e)
{
	if (c->json) {
		json_t *o = rpc_error_json(e);
		char *s = json_dumps(o, JSON_COMPACT);
		fprintf(stderr, "%s\n", s ? s : "{}");
		free(s);
		json_decref(o);
	} else {
		fprintf(stderr, "clawgrid: %s: %s\n", cg_code_name(e->code), e->msg);
	}
}

void cli_print(struct cli *c, json_t *v)
{
	char *s = json_dumps(v, (c->json ? JSON_COMPACT : JSON_INDENT(2)) | JSON_ENCODE_ANY | JSON_SORT_KEYS);
	if (s) {
		puts(s);
		free(s);
	}
}
