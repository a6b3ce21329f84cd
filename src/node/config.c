#include "node/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/json.h"
#include "base/log.h"
#include "http/server.h"
#include "node/modules.h"

/* Limits of the node's own keys (docs/config.md). */
#define MAXCONN_MIN 1
#define MAXCONN_MAX 65536
#define TIMEOUT_MIN 100
#define TIMEOUT_MAX 3600000
#define RPCBODY_MIN 1024
#define RPCBODY_MAX (64 * 1024 * 1024)

static int check_api(json_t *api, cg_err *e)
{
	static const char *const keys[] = {"listen",        "maxConnections", "headerTimeoutMs",
					   "bodyTimeoutMs", "drainTimeoutMs", "maxBodyBytes",
					   NULL};
	int64_t v;
	const char *listen = NULL;
	if (!json_is_object(api))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "api: must be an object");
	if (jp_only(api, "api", keys, e) < 0 || jp_str(api, "api", "listen", 0, 3, 100, &listen, e) < 0 ||
	    jp_int(api, "api", "maxConnections", 0, MAXCONN_MIN, MAXCONN_MAX, &v, e) < 0 ||
	    jp_int(api, "api", "headerTimeoutMs", 0, TIMEOUT_MIN, TIMEOUT_MAX, &v, e) < 0 ||
	    jp_int(api, "api", "bodyTimeoutMs", 0, TIMEOUT_MIN, TIMEOUT_MAX, &v, e) < 0 ||
	    jp_int(api, "api", "drainTimeoutMs", 0, 0, TIMEOUT_MAX, &v, e) < 0 ||
	    jp_int(api, "api", "maxBodyBytes", 0, RPCBODY_MIN, RPCBODY_MAX, &v, e) < 0)
		return -CG_E_INVALID_ARGUMENT;
	char host[64];
	int port;
	if (listen && http_parse_hostport(listen, host, sizeof host, &port) < 0)
		return cg_fail(e, CG_E_INVALID_ARGUMENT,
			       "api.listen: must be HOST:PORT with a numeric IPv4 address, [IPv6] or localhost and a "
			       "port 0..65535");
	return 0;
}

static int check_log(json_t *log, cg_err *e)
{
	static const char *const keys[] = {"level", NULL};
	static const char *const levels[] = {"debug", "info", "warn", "error", "off", NULL};
	const char *lv;
	if (!json_is_object(log))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "log: must be an object");
	if (jp_only(log, "log", keys, e) < 0 || jp_enum(log, "log", "level", 0, levels, &lv, e) < 0)
		return -CG_E_INVALID_ARGUMENT;
	return 0;
}

static const struct node_module *module_for(const char *key)
{
	for (int i = 0; node_modules[i]; i++)
		if (node_modules[i]->config_key && strcmp(node_modules[i]->config_key, key) == 0)
			return node_modules[i];
	return NULL;
}

int node_config_check(json_t *root, cg_err *e)
{
	if (!json_is_object(root))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "config: the top level must be an object");
	const char *k;
	json_t *v;
	json_object_foreach(root, k, v)
	{
		if (strcmp(k, "api") == 0 || strcmp(k, "log") == 0 || module_for(k))
			continue;
		/* Keys are echoed only when they look like keys: a config can hold anything. */
		if (strlen(k) <= 64 && strspn(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-$") ==
					   strlen(k))
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: unknown key", k);
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "config: unknown top-level key");
	}
	json_t *api = json_object_get(root, "api");
	if (api && check_api(api, e) < 0)
		return -CG_E_INVALID_ARGUMENT;
	json_t *log = json_object_get(root, "log");
	if (log && check_log(log, e) < 0)
		return -CG_E_INVALID_ARGUMENT;
	for (int i = 0; node_modules[i]; i++) {
		const struct node_module *m = node_modules[i];
		if (!m->config_key || !m->config_check)
			continue;
		json_t *sec = json_object_get(root, m->config_key);
		json_t *empty = NULL;
		if (!sec)
			sec = empty = json_object();
		if (!json_is_object(sec)) {
			json_decref(empty);
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: must be an object", m->config_key);
		}
		cg_err me;
		cg_err_clear(&me);
		int r = m->config_check(sec, &me);
		json_decref(empty);
		if (r < 0) {
			if (e) {
				*e = me;
				if (e->code == CG_OK)
					cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: invalid section", m->config_key);
			}
			return -CG_E_INVALID_ARGUMENT;
		}
	}
	return 0;
}

int node_config_parse(const char *text, size_t len, json_t **out, cg_err *e)
{
	json_error_t jerr;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!root)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "config: not valid JSON at line %d column %d: %s", jerr.line,
			       jerr.column, jerr.text);
	if (node_config_check(root, e) < 0) {
		json_decref(root);
		return -CG_E_INVALID_ARGUMENT;
	}
	for (int i = 0; node_modules[i]; i++) {
		const char *key = node_modules[i]->config_key;
		if (key && !json_object_get(root, key))
			json_object_set_new(root, key, json_object());
	}
	*out = root;
	return 0;
}

int node_config_load(const char *path, json_t **out, cg_err *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT) {
			json_t *d = node_config_default();
			char *s = json_dumps(d, JSON_COMPACT);
			json_decref(d);
			if (!s)
				return cg_fail(e, CG_E_INTERNAL, "config: out of memory");
			int r = node_config_parse(s, strlen(s), out, e);
			free(s);
			return r;
		}
		return cg_fail(e, CG_E_UNAVAILABLE, "config.json: cannot open: %s", strerror(errno));
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "config.json: not a regular file");
	}
	buf b;
	buf_init(&b, NODE_CONFIG_MAX);
	char tmp[8192];
	ssize_t n;
	int r = 0;
	while ((n = read(fd, tmp, sizeof tmp)) > 0) {
		if (buf_append(&b, tmp, (size_t)n) < 0) {
			r = cg_fail(e, CG_E_INVALID_ARGUMENT, "config.json: larger than %u bytes", NODE_CONFIG_MAX);
			break;
		}
	}
	if (n < 0 && r == 0)
		r = cg_fail(e, CG_E_UNAVAILABLE, "config.json: read error: %s", strerror(errno));
	close(fd);
	if (r == 0)
		r = node_config_parse((const char *)buf_cstr(&b), b.len, out, e);
	buf_done(&b);
	return r;
}

static int64_t geti(json_t *o, const char *k, int64_t def)
{
	json_t *v = json_object_get(o, k);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

void node_config_settings(json_t *root, struct node_settings *out)
{
	memset(out, 0, sizeof *out);
	json_t *api = json_object_get(root, "api");
	const char *l = json_string_value(json_object_get(api, "listen"));
	snprintf(out->listen, sizeof out->listen, "%s", l ? l : NODE_DEFAULT_LISTEN);
	out->max_connections = (int)geti(api, "maxConnections", 512);
	out->header_timeout_ms = (int)geti(api, "headerTimeoutMs", 10000);
	out->body_timeout_ms = (int)geti(api, "bodyTimeoutMs", 30000);
	out->drain_timeout_ms = (int)geti(api, "drainTimeoutMs", 5000);
	out->rpc_max_body = (size_t)geti(api, "maxBodyBytes", 1 << 20);
	const char *lv = json_string_value(json_object_get(json_object_get(root, "log"), "level"));
	out->log_level = lv ? log_level_parse(lv) : LOG_INFO;
	if (out->log_level < 0)
		out->log_level = LOG_INFO;
}

json_t *node_config_default(void)
{
	return json_pack("{s:{s:s},s:{s:s}}", "api", "listen", NODE_DEFAULT_LISTEN, "log", "level", "info");
}
