/* The CLI's JSON-RPC client: finds the running node through the data directory and calls it. */
#include <errno.h>
#include <fcntl.h>
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

/* Address of the node: --api, node.api (written by the running node), config.json api.listen, default. */
static void node_addr(struct cli *c, char *out, size_t cap)
{
	if (c->api) {
		snprintf(out, cap, "%s", c->api);
		return;
	}
	char *s = cli_read_file(c, "node.api", 256);
	if (s) {
		trim(s);
		snprintf(out, cap, "%s", s);
		free(s);
		if (*out)
			return;
	}
	snprintf(out, cap, "127.0.0.1:7878");
	char *cfg = cli_read_file(c, "config.json", 1 << 20);
	if (cfg) {
		json_t *root = json_loads(cfg, 0, NULL);
		const char *l = json_string_value(json_object_get(json_object_get(root, "api"), "listen"));
		if (l)
			snprintf(out, cap, "%s", l);
		json_decref(root);
		free(cfg);
	}
}

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
	return buf_append(arg, p, sz * n) == 0 ? sz * n : 0;
}

int cli_rpc_quiet(struct cli *c, const char *method, json_t *params, json_t **result, cg_err *e)
{
	char addr[300], url[400];
	node_addr(c, addr, sizeof addr);
	snprintf(url, sizeof url, "http://%s/rpc", addr);
	char *token = cli_read_file(c, "admin.token", 4096);
	if (!token) {
		cg_fail(e, CG_E_AUTH_REQUIRED, "no admin token in the data directory (run 'clawgrid init')");
		return EXIT_NONODE;
	}
	trim(token);
	char authz[4200];
	snprintf(authz, sizeof authz, "Authorization: Bearer %s", token);
	sodium_memzero(token, strlen(token));
	free(token);

	json_t *req = json_pack("{s:s,s:i,s:s,s:O}", "jsonrpc", "2.0", "id", 1, "method", method, "params",
				params ? params : json_object());
	if (!params)
		json_decref(json_object_get(req, "params")); /* json_pack took a ref of a temporary */
	char *body = json_dumps(req, JSON_COMPACT);
	json_decref(req);

	CURL *h = curl_easy_init();
	struct curl_slist *hdr = NULL;
	hdr = curl_slist_append(hdr, "Content-Type: application/json");
	hdr = curl_slist_append(hdr, authz);
	sodium_memzero(authz, sizeof authz);
	buf resp;
	buf_init(&resp, 256u << 20);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 600000L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	CURLcode cc = curl_easy_perform(h);
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdr); /* the token header is freed here; libcurl keeps no copy after cleanup */
	curl_easy_cleanup(h);
	free(body);

	int rc = EXIT_OK;
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
	json_t *r = json_loadb((const char *)resp.data, resp.len, 0, &jerr);
	if (!r) {
		cg_fail(e, CG_E_INTERNAL, "bad response from node (HTTP %ld)", status);
		rc = EXIT_FAIL;
		goto out;
	}
	json_t *err = json_object_get(r, "error");
	if (err) {
		const char *code = json_string_value(json_object_get(json_object_get(err, "data"), "code"));
		const char *msg = json_string_value(json_object_get(err, "message"));
		int k = code ? cg_code_from_name(code) : -1;
		const char *m = msg ? msg : "error";
		/* message is "E_CODE: text": keep only the text in e->msg */
		if (code && strncmp(m, code, strlen(code)) == 0 && m[strlen(code)] == ':')
			m += strlen(code) + 2;
		cg_fail(e, k > 0 ? (enum cg_code)k : CG_E_INTERNAL, "%s", m);
		rc = (k == CG_E_AUTH_REQUIRED) ? EXIT_AUTH : EXIT_FAIL;
		json_decref(r);
		goto out;
	}
	*result = json_incref(json_object_get(r, "result"));
	json_decref(r);
out:
	buf_done(&resp);
	return rc;
}

int cli_rpc(struct cli *c, const char *method, json_t *params, json_t **result)
{
	cg_err e;
	cg_err_clear(&e);
	int rc = cli_rpc_quiet(c, method, params, result, &e);
	if (rc != EXIT_OK) {
		if (c->json) {
			json_t *o = rpc_error_json(&e);
			char *s = json_dumps(o, JSON_COMPACT);
			fprintf(stderr, "%s\n", s);
			free(s);
			json_decref(o);
		} else {
			fprintf(stderr, "clawgrid: %s: %s\n", cg_code_name(e.code), e.msg);
		}
	}
	return rc;
}

void cli_print(struct cli *c, json_t *v)
{
	char *s = json_dumps(v, (c->json ? JSON_COMPACT : JSON_INDENT(2)) | JSON_ENCODE_ANY | JSON_SORT_KEYS);
	if (s) {
		puts(s);
		free(s);
	}
}
