/* rpc — JSON-RPC 2.0 dispatch (single and batch) over a method table; transport-free.
 *
 * Methods are registered by name with a handler. A handler either answers at once (returns 0 with
 * *result set, ownership passing to rpc; or a negative cg_code with e set), or returns RPC_ASYNC, keeps
 * `call`, and later calls rpc_call_finish() exactly once (from the loop thread). Errors follow
 * ARCHITECTURE.md: error.code is the JSON-RPC code of the E_* code, error.message starts with the E_* name,
 * error.data.code holds it alone. */
#ifndef CG_RPC_RPC_H
#define CG_RPC_RPC_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "base/err.h"

#define RPC_ASYNC 1
#define RPC_MAX_BATCH 100

struct rpc_registry;
struct rpc_call;

/* Who is calling: the transport fills this in. Borrowed for the duration of the dispatch and of every call
 * it starts (the transport keeps it alive until done() runs). */
struct rpc_caller {
	const char *principal; /* "admin" for the owner's bearer token; "cli"; a peer id or address otherwise */
	bool admin;
	void *transport; /* opaque to handlers */
};

typedef int (*rpc_fn)(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e);

struct rpc_registry *rpc_registry_new(void);
void rpc_registry_free(struct rpc_registry *reg);
/* name is copied. Returns -1 when already registered (programmer error: also logged). */
int rpc_register(struct rpc_registry *reg, const char *name, rpc_fn fn, void *arg);
bool rpc_has(const struct rpc_registry *reg, const char *name);
/* Replaces the handler of a registered method, returning the previous one through old_fn/old_arg so the new
 * handler can delegate to it (a later module extending an earlier one's method). -1 when not registered. */
int rpc_override(struct rpc_registry *reg, const char *name, rpc_fn fn, void *arg, rpc_fn *old_fn,
		 void **old_arg);
/* Calls fn(arg, name) for each method in name order (for `rpc.methods` and docs). */
void rpc_each(const struct rpc_registry *reg, void (*fn)(void *arg, const char *name), void *arg);

/* done() receives the response object or array (ownership passes), or NULL when nothing is to be sent
 * (notifications only). It may run before rpc_dispatch returns. */
typedef void (*rpc_done_fn)(void *arg, json_t *response);
void rpc_dispatch(struct rpc_registry *reg, const char *body, size_t len, const struct rpc_caller *who,
		  rpc_done_fn done, void *arg);
/* The same for one parsed request object or batch array (borrowed). */
void rpc_dispatch_json(struct rpc_registry *reg, json_t *req, const struct rpc_caller *who, rpc_done_fn done,
		       void *arg);

/* Finishes an async call: result (ownership passes) on success, else e. */
void rpc_call_finish(struct rpc_call *call, json_t *result, const cg_err *e);
const struct rpc_caller *rpc_call_caller(const struct rpc_call *call);
const char *rpc_call_method(const struct rpc_call *call);

/* Builds a JSON-RPC error object {code,message,data:{code}} from e. */
json_t *rpc_error_json(const cg_err *e);

#endif
