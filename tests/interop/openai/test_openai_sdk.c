/* Interop: the official openai npm SDK (tests/interop/openai/package.json, pinned) drives the brain gateway
 * of a real node: non-streamed and streamed chats, usage, tool calls (also through the SDK's own stream
 * assembly), /v1/models, abort mid-stream (the gateway cancels the upstream), an upstream that dies after
 * the first tokens (the SDK raises instead of seeing a clean end), typed 401 and 400 errors.
 * Upstreams are test doubles (tests/lib/brain_double.h). Skips (77) without node or the installed SDK. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "brain_double.h"
#include "harness.h"

#define GW_KEY "cgk_sdk_interop_key_0123456789"

static char root[4096];

static bool slow_abandoned(void *arg)
{
	return bd_abandoned(arg) > 0;
}

static void t_sdk(void **st)
{
	struct bd_opts fo = {0}, so = {.delay_ms = 100, .tokens = 100}, bo = {0};
	struct brain_double *fast = bd_start(&fo), *slow = bd_start(&so), *broken = bd_start(&bo);
	assert_non_null(fast);
	assert_non_null(slow);
	assert_non_null(broken);
	bd_set(broken, BD_CUT, 2, 0);
	char cfg[2048];
	snprintf(cfg, sizeof cfg,
		 "{\"brain\":{\"enabled\":true,\"gatewayKeyEnv\":\"CG_SDK_KEY\",\"defaultModel\":\"auto\","
		 "\"brains\":[{\"providerId\":\"fast\",\"type\":\"centralized\",\"endpoint\":\"%s/v1\",\"defaultModel\":\"fast-model\",\"allowlist\":[\"fast-model\"]},"
		 "{\"providerId\":\"slow\",\"type\":\"centralized\",\"endpoint\":\"%s/v1\",\"defaultModel\":\"slow-model\",\"allowlist\":[\"slow-model\"]},"
		 "{\"providerId\":\"broken\",\"type\":\"centralized\",\"endpoint\":\"%s/v1\",\"defaultModel\":\"broken-model\",\"allowlist\":[\"broken-model\"]}]}}",
		 bd_url(fast), bd_url(slow), bd_url(broken));
	static const char *const env[] = {"CG_SDK_KEY=" GW_KEY, NULL};
	struct hnode_opts o = {.config_json = cfg, .env = env};
	struct hnode *n = h_node_new(&o);
	assert_non_null(n);
	assert_int_equal(h_node_start(n), 0);

	char gw[200], script[4200];
	snprintf(gw, sizeof gw, "%s/v1", n->base_url);
	snprintf(script, sizeof script, "%s/tests/interop/openai/sdk.mjs", root);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setenv("GW_URL", gw, 1);
		setenv("GW_KEY", GW_KEY, 1);
		execlp("node", "node", script, (char *)NULL);
		_exit(127);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	/* The aborted stream: the gateway cancelled its upstream and audited the request. */
	assert_true(h_wait_until(slow_abandoned, slow, 10000));
	json_t *p = json_pack("{s:s}", "outcome", "client_closed");
	json_t *a = h_rpc_ok(n, "web3.brain.audit.query", p);
	assert_true(json_array_size(json_object_get(a, "records")) >= 1);
	json_decref(a);
	json_decref(p);
	p = json_pack("{s:s}", "outcome", "interrupted");
	a = h_rpc_ok(n, "web3.brain.audit.query", p);
	assert_int_equal(json_array_size(json_object_get(a, "records")), 1);
	json_decref(a);
	json_decref(p);

	assert_int_equal(h_node_stop(n), 0);
	h_log_assert_clean(n, (const char *const[]){GW_KEY, NULL});
	h_node_free(n);
	bd_stop(fast);
	bd_stop(slow);
	bd_stop(broken);
}

int main(void)
{
	h_require_bin();
	const char *r = getenv("CLAWGRID_ROOT");
	if (r)
		snprintf(root, sizeof root, "%s", r);
	else if (!getcwd(root, sizeof root))
		return 1;
	char sdk[4200];
	snprintf(sdk, sizeof sdk, "%s/tests/interop/openai/node_modules/openai/package.json", root);
	if (access(sdk, R_OK) != 0) {
		printf("skip: the openai SDK is not installed (scripts/npm-deps.sh installs it)\n");
		return 77;
	}
	if (system("node --version >/dev/null 2>&1") != 0) {
		printf("skip: node is not installed\n");
		return 77;
	}
	const struct CMUnitTest tests[] = {cmocka_unit_test(t_sdk)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
