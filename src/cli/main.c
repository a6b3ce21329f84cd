/* clawgrid — entry point: global options, then the subcommand table. */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "base/version.h"
#include "cli/cli.h"
#include "http/server.h"

struct command {
	const char *name;
	cli_cmd_fn fn;
	const char *help;
};

static int cmd_version(struct cli *c, int argc, char **argv);
static int cmd_help(struct cli *c, int argc, char **argv);

static const struct command commands[] = {
	{"init", cmd_init, "create the data directory: keys, admin token, default config"},
	{"node", cmd_node, "run the node in the foreground [--api HOST:PORT]"},
	{"status", cmd_status, "show the running node's status summary"},
	{"id", cmd_id, "print this node's peer id and wallet address"},
	{"rpc", cmd_rpc, "call a JSON-RPC method: rpc METHOD [JSON-PARAMS]"},
	{"export", cmd_export, "write the whole store as JSON to stdout (or FILE)"},
	{"import", cmd_import, "load a store export (JSON) into a stopped node's data directory"},
	{"resource", cmd_market, "market resources: publish|unpublish|get|list|mine|status"},
	{"offer", cmd_market, "offers: create|publish|update|close|get|list"},
	{"order", cmd_market, "orders: create|cancel|get|list"},
	{"consent", cmd_market, "consents of orders: grant|revoke|get"},
	{"delivery", cmd_market, "deliveries of orders: issue|revoke|complete|get"},
	{"lease", cmd_market, "leases: issue|revoke|get|list|sweep|revocations"},
	{"ledger", cmd_market, "the signed ledger: list|summary|verify"},
	{"settle", cmd_market, "settlements: lock|release|refund|status|flush|queue|balance|faucet|repair"},
	{"dispute", cmd_market, "disputes: open|evidence|resolve|reject|get|list"},
	{"audit", cmd_market, "audit events: query"},
	{"search", cmd_consumer, "search through a leased provider: search [--resource ID] QUERY"},
	{"storage", cmd_consumer, "leased storage: put|get|ls"},
	{"chat", cmd_consumer, "chat with a leased model, streamed to the terminal"},
	{"provider", cmd_consumer, "remote providers: list|resources|lease"},
	{"p2p", cmd_p2p, "libp2p: id|listen|dial|ping|peers"},
	{"sandbox", cmd_sandbox, "isolated execution: run|check"},
	{"model", cmd_model, "local models: add|ls|rm|load|unload|info"},
	{"version", cmd_version, "print the version"},
	{"help", cmd_help, "this text"},
};

static int cmd_version(struct cli *c, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (c->json)
		printf("{\"version\":\"%s\"}\n", CLAWGRID_VERSION);
	else
		printf("clawgrid %s\n", CLAWGRID_VERSION);
	return EXIT_OK;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: clawgrid [--data-dir DIR] [--api HOST:PORT] [--json] COMMAND [ARGS...]\n\n"
		   "clawgrid is a node of the OpenClaw compute market: providers rent out models, search,\n"
		   "storage and sandboxed compute; consumers lease them and pay through escrow.\n\ncommands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\nglobal options:\n"
		   "  --data-dir DIR  data directory (default $CLAWGRID_HOME, else ~/.clawgrid)\n"
		   "  --api HOST:PORT the node that client commands talk to (default: the address the\n"
		   "                  node running on the data directory wrote to DIR/node.api)\n"
		   "  --json          machine-readable output\n"
		   "\nexit codes: 0 ok, 1 operation failed, 2 usage error, 3 no node running / not initialized,\n"
		   "            4 authentication refused\n"
		   "\nrun 'clawgrid COMMAND --help' for a command's options; see also clawgrid(1).\n");
}

static int cmd_help(struct cli *c, int argc, char **argv)
{
	(void)c;
	(void)argc;
	(void)argv;
	usage(stdout);
	return EXIT_OK;
}

static void resolve_data_dir(struct cli *c, const char *flag)
{
	const char *env = getenv("CLAWGRID_HOME");
	if (flag && *flag) {
		snprintf(c->data_dir, sizeof c->data_dir, "%s", flag);
	} else if (env && *env) {
		snprintf(c->data_dir, sizeof c->data_dir, "%s", env);
	} else {
		const char *home = getenv("HOME");
		if (!home || !*home) {
			struct passwd *pw = getpwuid(getuid());
			home = pw ? pw->pw_dir : "/";
		}
		snprintf(c->data_dir, sizeof c->data_dir, "%s/.clawgrid", home);
	}
}

int main(int argc, char **argv)
{
	struct cli c;
	memset(&c, 0, sizeof c);
	const char *dd = NULL;
	int i = 1;
	for (; i < argc; i++) {
		if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc) {
			dd = argv[++i];
		} else if (strncmp(argv[i], "--data-dir=", 11) == 0) {
			dd = argv[i] + 11;
		} else if (strcmp(argv[i], "--api") == 0 && i + 1 < argc) {
			c.api = argv[++i];
		} else if (strncmp(argv[i], "--api=", 6) == 0) {
			c.api = argv[i] + 6;
		} else if (strcmp(argv[i], "--json") == 0) {
			c.json = true;
		} else if (strcmp(argv[i], "--version") == 0) {
			return cmd_version(&c, 0, NULL);
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return EXIT_OK;
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "clawgrid: unknown option %s\n", argv[i]);
			usage(stderr);
			return EXIT_USAGE;
		} else {
			break;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (c.api) {
		char host[64];
		int port;
		if (http_parse_hostport(c.api, host, sizeof host, &port) < 0) {
			fprintf(stderr, "clawgrid: --api must be HOST:PORT (numeric IPv4, [IPv6] or localhost)\n");
			return EXIT_USAGE;
		}
	}
	resolve_data_dir(&c, dd);
	if (sodium_init() < 0) {
		fprintf(stderr, "clawgrid: libsodium failed to initialize\n");
		return EXIT_FAIL;
	}
	/* --json is also accepted after the command name (not after "--": those are another program's). */
	for (int k = i + 1; k < argc && strcmp(argv[k], "--") != 0; k++)
		if (strcmp(argv[k], "--json") == 0)
			c.json = true;
	for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
		if (strcmp(argv[i], commands[k].name) == 0)
			return commands[k].fn(&c, argc - i, argv + i);
	fprintf(stderr, "clawgrid: unknown command '%s' (see 'clawgrid help')\n", argv[i]);
	return EXIT_USAGE;
}
