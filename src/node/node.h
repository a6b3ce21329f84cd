/* node — one running clawgrid daemon: the event loop and the services every module is wired to.
 *
 * The fields are public on purpose: feature modules are wired in by src/node/mod_<area>.c files (the only
 * node-layer code a module owner writes), which read what they need from here. Everything is owned by the
 * node and lives until node_free(); modules keep borrowed pointers. All of it is used on the loop thread. */
#ifndef CG_NODE_NODE_H
#define CG_NODE_NODE_H

#include <stdbool.h>

#include <event2/event.h>
#include <jansson.h>

#include "base/err.h"

struct store;
struct rpc_registry;
struct http_server;
struct node_key;
struct wallet;

#define NODE_MOD_MAX 16

struct node {
	struct event_base *base;
	struct store *store;
	struct rpc_registry *rpc;
	struct http_server *http;
	struct node_key *key;  /* Ed25519: libp2p peer key, signs ledger entries and receipts */
	struct wallet *wallet; /* secp256k1: the actor id (EIP-55 address) */
	json_t *config;        /* the validated config.json root (defaults filled in) */
	char data_dir[4096];   /* never log it: it is registered with redact */
	char peer_id[64];      /* 12D3KooW... */
	char address[43];      /* 0x... EIP-55 */
	char api_addr[128];    /* the bound HTTP API address, HOST:PORT */
	bool stopping;
	void *mod[NODE_MOD_MAX]; /* module state, indexed like node_modules[] */
	struct node_priv *priv;  /* the daemon's own bookkeeping (node.c) */
};

/* Calls cb(n, arg) every interval_ms on the loop until the node stops. Returns 0 or -1. */
int node_every(struct node *n, int interval_ms, void (*cb)(struct node *n, void *arg), void *arg);
/* Config section of a module (borrowed; an empty object when absent). */
json_t *node_config_section(struct node *n, const char *key);

/* web3.status.summary is built from {brain, billing, settlement} defaults (nothing configured: brain
 * availability "unavailable", billing status "unbound", settlement pending 0), then every contributor runs
 * in registration order and may set or replace fields of `summary` (borrowed). Register from a module's
 * start; contributors live until the node stops. Returns 0 or -1. */
typedef void (*node_status_fn)(struct node *n, void *arg, json_t *summary);
int node_status_contribute(struct node *n, node_status_fn fn, void *arg);

/* The daemon behind `clawgrid node`: loads and checks the data dir, serves until SIGTERM/SIGINT, drains and
 * stops. api_override ("HOST:PORT") replaces api.listen. Returns a process exit code (base/exitcode.h EXIT_*). */
int node_run(const char *data_dir, const char *api_override);

#endif
