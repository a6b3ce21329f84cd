/* cli — the `clawgrid` command line: global options, the subcommand table, and the client that talks to a
 * running node over its JSON-RPC API. Every subcommand lives in src/cli/cmd_<area>.c.
 *
 * Exit codes (documented in docs/cli.md and `clawgrid help`):
 *   0 success; 1 the operation failed (the node or the command reported an error);
 *   2 usage error (unknown command, bad flags); 3 no node reachable or data directory not initialized;
 *   4 authentication refused (admin token missing or wrong). */
#ifndef CG_CLI_CLI_H
#define CG_CLI_CLI_H

#include <stdbool.h>

#include <jansson.h>

#include "base/err.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_NONODE = 3, EXIT_AUTH = 4 };

struct cli {
	char data_dir[4096]; /* resolved: --data-dir, $CLAWGRID_HOME, ~/.clawgrid */
	bool json;           /* --json: machine-readable output */
	const char *api;     /* --api HOST:PORT override for clients, NULL = from the data directory */
};

typedef int (*cli_cmd_fn)(struct cli *c, int argc, char **argv);

/* Calls METHOD on the node with params (borrowed; NULL = {}). On success *result gets the result (caller
 * frees) and 0 is returned; otherwise an EXIT_* code, with the error printed to stderr (or as JSON with
 * --json). The admin token is read from <data dir>/admin.token; the address from <data dir>/node.api (written
 * by the running node), else config.json's api.listen, else 127.0.0.1:7878. */
int cli_rpc(struct cli *c, const char *method, json_t *params, json_t **result);
/* Same, but returns the error instead of printing it (e->code set; return value as above). */
int cli_rpc_quiet(struct cli *c, const char *method, json_t *params, json_t **result, cg_err *e);
/* Prints a result: JSON (pretty) with --json, else the `text` callback's rendering, else JSON. */
void cli_print(struct cli *c, json_t *v);
/* Reads a whole small file of the data directory (caller frees); NULL if missing. */
char *cli_read_file(struct cli *c, const char *name, size_t max);

/* Subcommands (one file each). */
int cmd_init(struct cli *c, int argc, char **argv);
int cmd_node(struct cli *c, int argc, char **argv);
int cmd_status(struct cli *c, int argc, char **argv);
int cmd_id(struct cli *c, int argc, char **argv);
int cmd_rpc(struct cli *c, int argc, char **argv);
int cmd_export(struct cli *c, int argc, char **argv);
int cmd_import(struct cli *c, int argc, char **argv);
int cmd_market(struct cli *c, int argc, char **argv); /* resource|offer|order|lease|ledger|settle|dispute|... */
int cmd_p2p(struct cli *c, int argc, char **argv);
int cmd_sandbox(struct cli *c, int argc, char **argv);
int cmd_model(struct cli *c, int argc, char **argv);
int cmd_consumer(struct cli *c, int argc, char **argv); /* search|storage|chat|provider */

#endif
