/* node/config in-process: defaults, every node key's bounds and types, unknown keys at each level named by
 * their JSON path, module sections filled in, settings extraction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/log.h"
#include "node/config.h"
#include "node/modules.h"

static void expect_err(const char *text, const char *msg)
{
	json_t *root = NULL;
	cg_err e;
	cg_err_clear(&e);
	int r = node_config_parse(text, strlen(text), &root, &e);
	if (r == 0 || !strstr(e.msg, msg))
		fail_msg("config %s: got r=%d msg='%s', want '%s'", text, r, e.msg, msg);
	assert_int_equal(r, -CG_E_INVALID_ARGUMENT);
	assert_int_equal(e.code, CG_E_INVALID_ARGUMENT);
	assert_null(root);
}

static void t_defaults(void **st)
{
	(void)st;
	json_t *d = node_config_default();
	char *text = json_dumps(d, 0);
	json_decref(d);
	json_t *root = NULL;
	cg_err e;
	assert_int_equal(node_config_parse(text, strlen(text), &root, &e), 0);
	free(text);
	for (int i = 0; node_modules[i]; i++)
		if (node_modules[i]->config_key)
			assert_true(json_is_object(json_object_get(root, node_modules[i]->config_key)));
	struct node_settings s;
	node_config_settings(root, &s);
	assert_string_equal(s.listen, NODE_DEFAULT_LISTEN);
	assert_int_equal(s.max_connections, 512);
	assert_int_equal(s.header_timeout_ms, 10000);
	assert_int_equal(s.body_timeout_ms, 30000);
	assert_int_equal(s.drain_timeout_ms, 5000);
	assert_int_equal(s.rpc_max_body, 1 << 20);
	assert_int_equal(s.log_level, LOG_INFO);
	json_decref(root);
	/* an empty object is all defaults too */
	assert_int_equal(node_config_parse("{}", 2, &root, &e), 0);
	node_config_settings(root, &s);
	assert_string_equal(s.listen, NODE_DEFAULT_LISTEN);
	json_decref(root);
}

static void t_values(void **st)
{
	(void)st;
	const char *ok = "{\"api\":{\"listen\":\"[::1]:0\",\"maxConnections\":1,\"headerTimeoutMs\":100,"
			 "\"bodyTimeoutMs\":3600000,\"drainTimeoutMs\":0,\"maxBodyBytes\":1024},\"log\":{\"level\":\"off\"}}";
	json_t *root = NULL;
	cg_err e;
	assert_int_equal(node_config_parse(ok, strlen(ok), &root, &e), 0);
	struct node_settings s;
	node_config_settings(root, &s);
	assert_string_equal(s.listen, "[::1]:0");
	assert_int_equal(s.max_connections, 1);
	assert_int_equal(s.header_timeout_ms, 100);
	assert_int_equal(s.body_timeout_ms, 3600000);
	assert_int_equal(s.drain_timeout_ms, 0);
	assert_int_equal(s.rpc_max_body, 1024);
	assert_int_equal(s.log_level, LOG_OFF);
	json_decref(root);
	assert_int_equal(node_config_parse("{\"api\":{\"listen\":\"localhost:8080\"}}", 35, &root, &e), 0);
	json_decref(root);

	expect_err("{\"api\":{\"maxConnections\":0}}", "api.maxConnections: must be between 1 and 65536");
	expect_err("{\"api\":{\"maxConnections\":65537}}", "api.maxConnections");
	expect_err("{\"api\":{\"maxConnections\":1.5}}", "api.maxConnections: must be an integer");
	expect_err("{\"api\":{\"headerTimeoutMs\":99}}", "api.headerTimeoutMs");
	expect_err("{\"api\":{\"bodyTimeoutMs\":true}}", "api.bodyTimeoutMs: must be an integer");
	expect_err("{\"api\":{\"drainTimeoutMs\":-1}}", "api.drainTimeoutMs");
	expect_err("{\"api\":{\"maxBodyBytes\":1023}}", "api.maxBodyBytes");
	expect_err("{\"api\":{\"listen\":\"\"}}", "api.listen");
	expect_err("{\"api\":{\"listen\":\"0.0.0.0\"}}", "api.listen");
	expect_err("{\"api\":{\"listen\":\"host.example:80\"}}", "api.listen");
	expect_err("{\"api\":{\"listen\":null}}", "api.listen");
	expect_err("{\"api\":{\"Listen\":\"127.0.0.1:1\"}}", "api.Listen: unknown field");
	expect_err("{\"log\":{\"level\":\"verbose\"}}", "log.level: must be one of debug|info|warn|error|off");
	expect_err("{\"log\":{\"file\":\"/tmp/x\"}}", "log.file: unknown field");
	expect_err("{\"log\":\"debug\"}", "log: must be an object");
	expect_err("{\"nodes\":{}}", "nodes: unknown key");
	expect_err("{\"a b\\n\":{}}", "config: unknown top-level key"); /* odd keys are not echoed */
	expect_err("{\"market\":[]}", "market: must be an object");
	expect_err("null", "config: the top level must be an object");
	expect_err("", "not valid JSON");
	expect_err("{\"api\":{}} trailing", "not valid JSON");
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(t_defaults), cmocka_unit_test(t_values)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
