/* cli — the `clawgrid` command line: global options, the subcommand table, and the client that talks to a
 * running node over its JSON-RPC API. Every subcommand lives in src/cli/cmd_<area>.c.
 * The exit codes (EXIT_*) are in base/exitcode.h, shared with the daemon. */
#ifndef CG_CLI_CLI_H
#define CG_CLI_CLI_H

#include <stdbool.h>

#include <jansson.h>

#include "base/err.h"
#include "base/exitcode.h"

struct cli {
	char data_dir[4096]; /* resolved: --data-dir, $CLAWGRID_HOME, ~/.clawgrid */
	bool json;           /* --json: machine-readable output */
	const char *api;     /* global --api HOST:PORT: the node clients talk to, NULL = <data dir>/node.api */
};

typedef int (*cli_cmd_fn)(struct cli *c, int argc, char **argv);

/* Calls METHOD on the node with params (borrowed; NULL = {}). On success *result gets the result (caller
 * frees) and 0 is returned; otherwise an EXIT_* code, with the error printed to stderr (or as JSON with
 * --json). The admin token is read from <data dir>/admin.token; the address is --api, else <data dir>/node.api
 * (written by the running node). Without either: EXIT_NONODE, "no node running" (never a guessed address:
 * whatever listens there would be handed the admin token). */
int cli_rpc(struct cli *c, const char *method, json_t *params, json_t **result);
/* Same, but returns the error instead of printing it (e->code set; return value as above). */
int cli_rpc_quiet(struct cli *c, const char *method, json_t *params, json_t **result, cg_err *e);
/* The node's API address "HOST:PORT" into out, as cli_rpc finds it: EXIT_OK, or EXIT_NONODE with e set. */
int cli_node_addr(struct cli *c, char *out, size_t cap, cg_err *e);
/* "Authorization: Bearer <admin token>" into out (the caller wipes it with sodium_memzero): EXIT_OK, or
 * EXIT_NONODE (not initialized) / EXIT_AUTH (no readable token) with e set. */
int cli_admin_authz(struct cli *c, char *out, size_t cap, cg_err *e);
/* Options every CLI request to the node needs (a CURL *): no proxy from the environment, no redirects,
 * http only, connect timeout. */
void cli_curl_defaults(void *curl);
/* Prints e on stderr: "clawgrid: E_CODE: message", or the JSON-RPC error object with --json. */
void cli_print_error(struct cli *c, const cg_err *e);
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
