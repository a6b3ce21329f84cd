/* modules — the feature modules wired into a node, in start order (stop runs in reverse).
 *
 * Each module owner writes src/node/mod_<area>.c with one `const struct node_module mod_<area>` value:
 *   config_key  the top-level key of its section in config.json (NULL: none);
 *   config_check validates that section (unknown keys and bad values -> E_INVALID_ARGUMENT naming the JSON
 *               path, e.g. "p2p.listen[0]: not a multiaddr"); called before anything starts;
 *   start       creates the module's state (store it in n->mod[idx]), registers RPC methods, HTTP routes
 *               and timers;
 *   stop        drains and frees it (may be called after a failed start). */
#ifndef CG_NODE_MODULES_H
#define CG_NODE_MODULES_H

#include <jansson.h>

#include "base/err.h"
#include "node/node.h"

struct node_module {
	const char *name;
	const char *config_key;
	int (*config_check)(json_t *section, cg_err *e);
	int (*start)(struct node *n, int idx, cg_err *e);
	void (*stop)(struct node *n, int idx);
};

extern const struct node_module mod_market;
extern const struct node_module mod_p2p;
extern const struct node_module mod_sandbox;
extern const struct node_module mod_model;
extern const struct node_module mod_provider;
extern const struct node_module mod_consumer;
extern const struct node_module mod_brain;

/* Running modules' handles for modules that build on them (NULL when that module is not running). */
struct market;
struct model_registry;
struct market *mod_market_get(struct node *n);
struct model_registry *mod_model_get(struct node *n);
/* A module's state by name (n->mod is indexed like node_modules[]); NULL when absent. */
void *node_module_state(struct node *n, const char *name);

/* NULL-terminated, in start order. */
extern const struct node_module *const node_modules[];

#endif
