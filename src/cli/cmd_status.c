/* `clawgrid status` and `clawgrid rpc`: thin clients of the running node's JSON-RPC API. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "cli/cli.h"

static const char *str_or(json_t *o, const char *k, const char *def)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : def;
}

/* Prints a JSON scalar as text ("0", "none" for null). */
static void scalar(char *out, size_t cap, json_t *v)
{
	if (json_is_string(v))
		snprintf(out, cap, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(out, cap, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(out, cap, "%g", json_real_value(v));
	else if (json_is_boolean(v))
		snprintf(out, cap, "%s", json_is_true(v) ? "true" : "false");
	else
		snprintf(out, cap, "none");
}

int cmd_status(struct cli *c, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0) {
			printf("usage: clawgrid status [--json]\n"
			       "Shows the running node's identity, uptime and web3.status.summary (brain, billing,\n"
			       "settlement). Exit 3 when no node runs on the data directory.\n");
			return EXIT_OK;
		}
		if (strcmp(argv[i], "--json") != 0) {
			fprintf(stderr, "clawgrid status: unexpected argument '%s'\nusage: clawgrid status [--json]\n",
				argv[i]);
			return EXIT_USAGE;
		}
	}
	json_t *info = NULL, *sum = NULL;
	int rc = cli_rpc(c, "node.info", NULL, &info);
	if (rc != EXIT_OK)
		return rc;
	rc = cli_rpc(c, "web3.status.summary", NULL, &sum);
	if (rc != EXIT_OK) {
		json_decref(info);
		return rc;
	}
	if (c->json) {
		json_t *o = json_pack("{s:O,s:O}", "node", info, "summary", sum);
		cli_print(c, o);
		json_decref(o);
	} else {
		json_t *brain = json_object_get(sum, "brain"), *bill = json_object_get(sum, "billing");
		json_t *settle = json_object_get(sum, "settlement");
		char src[128], prov[128], model[128], credits[96], pending[64];
		scalar(src, sizeof src, json_object_get(brain, "source"));
		scalar(prov, sizeof prov, json_object_get(brain, "provider"));
		scalar(model, sizeof model, json_object_get(brain, "model"));
		scalar(credits, sizeof credits, json_object_get(bill, "credits"));
		scalar(pending, sizeof pending, json_object_get(settle, "pending"));
		printf("node        %s\n", str_or(info, "peerId", "?"));
		printf("address     %s\n", str_or(info, "address", "?"));
		printf("version     %s, up %llds, api %s\n", str_or(info, "version", "?"),
		       (long long)json_integer_value(json_object_get(info, "uptime")), str_or(info, "api", "?"));
		printf("brain       %s (source %s, provider %s, model %s)\n", str_or(brain, "availability", "?"), src,
		       prov, model);
		printf("billing     %s, credits %s\n", str_or(bill, "status", "?"), credits);
		printf("settlement  %s pending\n", pending);
	}
	json_decref(info);
	json_decref(sum);
	return EXIT_OK;
}

static char *read_stdin(size_t max)
{
	buf b;
	buf_init(&b, max);
	char tmp[4096];
	ssize_t n;
	while ((n = read(0, tmp, sizeof tmp)) > 0)
		if (buf_append(&b, tmp, (size_t)n) < 0) {
			buf_done(&b);
			return NULL;
		}
	if (!b.data)
		return strdup("");
	return (char *)buf_steal(&b, NULL);
}

int cmd_rpc(struct cli *c, int argc, char **argv)
{
	const char *method = NULL, *params_text = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			continue;
		if (!method)
			method = argv[i];
		else if (!params_text)
			params_text = argv[i];
		else
			method = NULL, params_text = NULL, i = argc; /* too many: usage below */
	}
	bool help = argc > 1 && strcmp(argv[1], "--help") == 0;
	if (!method || help) {
		/* Asked for: stdout and success. A usage error: stderr and exit 2. */
		fprintf(help ? stdout : stderr,
			"usage: clawgrid rpc METHOD [JSON-PARAMS | -]\n"
			"Calls METHOD on the running node with the admin token; '-' reads params from stdin.\n"
			"'clawgrid rpc rpc.methods' lists the methods.\n");
		return help ? EXIT_OK : EXIT_USAGE;
	}
	json_t *params = NULL;
	if (params_text) {
		char *owned = NULL;
		if (strcmp(params_text, "-") == 0) {
			owned = read_stdin(64u << 20);
			if (!owned) {
				fprintf(stderr, "clawgrid rpc: params on stdin are too big\n");
				return EXIT_USAGE;
			}
			params_text = owned;
		}
		json_error_t jerr;
		params = json_loads(params_text, JSON_REJECT_DUPLICATES, &jerr);
		free(owned);
		if (!params || !json_is_object(params)) {
			fprintf(stderr, "clawgrid rpc: params must be a JSON object (%s)\n",
				params ? "got another JSON value" : jerr.text);
			json_decref(params);
			return EXIT_USAGE;
		}
	}
	json_t *res = NULL;
	int rc = cli_rpc(c, method, params, &res);
	json_decref(params);
	if (rc != EXIT_OK)
		return rc;
	cli_print(c, res);
	json_decref(res);
	return EXIT_OK;
}
