/* node_int — internals of the node layer shared by node.c, dump.c and the CLI's node commands (and their
 * tests). Feature modules use node.h only. */
#ifndef CG_NODE_NODE_INT_H
#define CG_NODE_NODE_INT_H

#include <stddef.h>

#include <jansson.h>

#include "base/err.h"
#include "node/node.h"

struct store;

/* web3.status.summary as the node builds it (caller frees). */
json_t *node_status_summary(struct node *n);
/* Forces the spec's fields of a summary (seed-digest §1.4) into shape after the contributors ran:
 * brain {source: "web3/decentralized"|"centralized"|null, provider, model: string|null,
 * availability: "ok"|"degraded"|"unavailable"}, billing {status: "active"|"exhausted"|"unbound",
 * credits: decimal string ("0" when there is none)}, settlement {pending: integer >= 0}. */
void node_status_normalize(json_t *summary);
int node_register_core(struct node *n);
int node_register_routes(struct node *n, size_t rpc_max_body);

/* Takes the data dir's lock (<dir>/node.pid, flock). E_CONFLICT when a node holds it, E_UNAVAILABLE when
 * the directory is not writable. *fd_out stays open for as long as the lock must be held. */
int node_lock_data_dir(const char *dir, int *fd_out, cg_err *e);
/* Reads <dir>/admin.token (must be mode 0600, owned by us) into out. The caller wipes out. */
int node_read_admin_token(const char *dir, char *out, size_t cap, cg_err *e);

/* Export / import of the whole store (every table of every module, schema versions included):
 * {"format":"clawgrid-export","version":1,"schemaVersions":{module:n},
 *  "objects":[{"type","name","sql"}...], "tables":{name:{"columns":[...],"rows":[[...]...]}}}
 * BLOB values are {"$base64":"..."}. Import replaces the store's content in one transaction. */
#define NODE_EXPORT_FORMAT "clawgrid-export"
#define NODE_EXPORT_VERSION 1
int node_dump_export(struct store *st, json_t **out, cg_err *e);
int node_dump_import(struct store *st, json_t *doc, cg_err *e);

#endif
