/* node/config — config.json: parsing, validation (every key of every section, with the JSON path and the
 * reason in errors) and defaults. Pure: no I/O except node_config_load.
 *
 * The node owns "api" and "log"; each feature module owns the section named by its config_key and checks
 * it with its config_check (modules.h). Any other top-level key is rejected. Every key is documented in
 * docs/config.md. */
#ifndef CG_NODE_CONFIG_H
#define CG_NODE_CONFIG_H

#include <stddef.h>

#include <jansson.h>

#include "base/err.h"

#define NODE_DEFAULT_LISTEN "127.0.0.1:7878"
#define NODE_CONFIG_MAX (1u << 20) /* config.json bigger than this is refused */

/* The node's own settings after validation and defaults. */
struct node_settings {
	char listen[128];
	int max_connections;
	int header_timeout_ms, body_timeout_ms, drain_timeout_ms;
	size_t rpc_max_body;
	int log_level; /* enum log_level */
};

/* Validates root (borrowed, not modified). 0 or -CG_E_INVALID_ARGUMENT with e naming the path. */
int node_config_check(json_t *root, cg_err *e);
/* Parses text (len bytes) and validates it; on success *out is the root with an empty object added for
 * every absent module section (caller frees). Parse errors name line and column. */
int node_config_parse(const char *text, size_t len, json_t **out, cg_err *e);
/* Reads <path> (at most NODE_CONFIG_MAX bytes) then node_config_parse. A missing file gives the defaults. */
int node_config_load(const char *path, json_t **out, cg_err *e);
/* Extracts the node's settings (defaults for absent keys) from a validated root. */
void node_config_settings(json_t *root, struct node_settings *out);
/* The config.json written by `clawgrid init` (caller frees). */
json_t *node_config_default(void);

#endif
