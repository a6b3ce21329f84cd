/* libFuzzer target for the config loader (node_config_parse: JSON parse, validation of the node's keys and
 * every module's section, defaults). Invariants: an error always has E_INVALID_ARGUMENT and a non-empty
 * message; an accepted config yields settings inside the documented ranges with a listen address that
 * parses, and every module section present as an object. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/server.h"
#include "node/config.h"
#include "node/modules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > NODE_CONFIG_MAX)
		return 0;
	json_t *root = NULL;
	cg_err e;
	cg_err_clear(&e);
	if (node_config_parse((const char *)data, size, &root, &e) < 0) {
		if (root || e.code != CG_E_INVALID_ARGUMENT || e.msg[0] == 0)
			abort();
		return 0;
	}
	struct node_settings s;
	node_config_settings(root, &s);
	char host[64];
	int port;
	if (http_parse_hostport(s.listen, host, sizeof host, &port) < 0 || port < 0 || port > 65535)
		abort();
	if (s.max_connections < 1 || s.header_timeout_ms < 100 || s.body_timeout_ms < 100 || s.drain_timeout_ms < 0 ||
	    s.rpc_max_body < 1024 || s.log_level < 0)
		abort();
	for (int i = 0; node_modules[i]; i++)
		if (node_modules[i]->config_key && !json_is_object(json_object_get(root, node_modules[i]->config_key)))
			abort();
	/* validation is stable: the filled-in config validates again */
	if (node_config_check(root, &e) < 0)
		abort();
	json_decref(root);
	return 0;
}
