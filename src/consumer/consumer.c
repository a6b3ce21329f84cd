#include "consumer/consumer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "base/amount.h"
#include "base/clock.h"
#include "base/enc.h"
#include "base/json.h"
#include "base/log.h"
#include "base/redact.h"
#include "crypto/identity.h"
#include "crypto/wallet.h"
#include "http/server.h"
#include "http/client.h"
#include "provider/leasereq.h"
#include "provider/receipt.h"
#include "http/sse.h"
#include "rpc/rpc.h"
#include "store/store.h"

#define DAY_MS (24LL * 3600 * 1000)
#define MAX_PROVIDERS 64
#define RESPONSE_MAX (16u << 20)
#define EVENT_MAX (1u << 20)

static const struct store_migration migrations[] = {
	{1, "CREATE TABLE cs_receipts(ledgerId TEXT PRIMARY KEY, leaseId TEXT NOT NULL, resourceId TEXT NOT NULL,"
	    " providerPeerId TEXT NOT NULL, kind TEXT NOT NULL, unit TEXT NOT NULL, quantity TEXT NOT NULL,"
	    " cost TEXT NOT NULL, currency TEXT NOT NULL, requestId TEXT, receivedAt INTEGER NOT NULL,"
	    " data TEXT NOT NULL);"
	    "CREATE INDEX cs_receipts_lease ON cs_receipts(leaseId);"},
};

struct cs_provider {
	char name[64];
	char *url; /* base URL without trailing slash (redacted) */
	char peer_id[64], actor[43];
	bool ident_known;
	json_t *resources; /* resourceId -> kind, from the last listing */
};

struct cs_lease {
	struct cs_lease *next;
	struct cs_provider *prov;
	char resource_id[64], lease_id[64], order_id[64], kind[16];
	int64_t expires_at;
	char *token; /* sodium_malloc'd, zeroed on free */
};

enum cs_tool { T_LEASE, T_RESOURCES, T_SEARCH, T_PUT, T_GET, T_LIST, T_CHAT };

struct cs_op {
	struct cs_op *prev, *next;
	struct consumer *c;
	struct cs_provider *prov;
	enum cs_tool tool;
	struct rpc_call *call;  /* RPC mode */
	struct http_req *hreq;  /* streaming route mode */
	char resource_id[64];
	json_t *body;           /* what the provider route gets (tools) */
	int64_t ttl_ms;
	char max_cost[80];
	bool renew, retried, gone, started, stream, saw_receipt;
	struct hc_req *req;
	struct cs_lease *lease; /* used by the current call */
	char request_id[40];
	struct sse_parser sse;
	bool sse_init;
	buf errbody; /* streaming mode: a non-200 answer's body */
};

struct consumer {
	struct consumer_deps d;
	struct cs_provider prov[MAX_PROVIDERS];
	size_t nprov;
	struct cs_lease *leases;
	struct cs_op *ops;
	struct hc *hc;
	int64_t ttl_ms, renew_ms, connect_ms, total_ms;
	char max_cost[80];
};

static const char *tool_kind(enum cs_tool t)
{
	return t == T_SEARCH ? "search" : t == T_CHAT ? "model" : (t == T_PUT || t == T_GET || t == T_LIST) ? "storage" : "";
}

static const char *tool_path(enum cs_tool t)
{
	switch (t) {
	case T_SEARCH:
		return "/web3/resources/search/query";
	case T_PUT:
		return "/web3/resources/storage/put";
	case T_GET:
		return "/web3/resources/storage/get";
	case T_LIST:
		return "/web3/resources/storage/list";
	case T_CHAT:
		return "/web3/resources/model/chat";
	default:
		return "";
	}
}

/* ---- config ---- */

struct cfg {
	json_t *providers;
	int64_t ttl_ms, renew_ms, connect_ms, total_ms;
	const char *max_cost;
};

static int parse_cfg(json_t *sec, struct cfg *c, cg_err *e)
{
	static const char *const keys[] = {"providers", "leaseTtlMs", "renewBeforeMs", "maxCost", "timeouts", NULL};
	static const char *const pkeys[] = {"name", "url", "peerId", "actorId", NULL};
	static const char *const tkeys[] = {"connectMs", "totalMs", NULL};
	json_t *to = NULL;
	int r;
	memset(c, 0, sizeof *c);
	c->ttl_ms = 3600000;
	c->renew_ms = 30000;
	c->connect_ms = 10000;
	c->total_ms = 600000;
	if (!json_is_object(sec))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "consumer: must be an object");
	if ((r = jp_only(sec, "consumer", keys, e)) < 0 ||
	    (r = jp_arr(sec, "consumer", "providers", 0, MAX_PROVIDERS, &c->providers, e)) < 0 ||
	    (r = jp_int(sec, "consumer", "leaseTtlMs", 0, 10000, 7 * DAY_MS, &c->ttl_ms, e)) < 0 ||
	    (r = jp_int(sec, "consumer", "renewBeforeMs", 0, 0, DAY_MS, &c->renew_ms, e)) < 0 ||
	    (r = jp_amount(sec, "consumer", "maxCost", 0, &c->max_cost, e)) < 0 ||
	    (r = jp_obj(sec, "consumer", "timeouts", 0, &to, e)) < 0)
		return r;
	if (to && ((r = jp_only(to, "consumer.timeouts", tkeys, e)) < 0 ||
		   (r = jp_int(to, "consumer.timeouts", "connectMs", 0, 10, 600000, &c->connect_ms, e)) < 0 ||
		   (r = jp_int(to, "consumer.timeouts", "totalMs", 0, 10, DAY_MS, &c->total_ms, e)) < 0))
		return r;
	if (c->renew_ms >= c->ttl_ms)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "consumer.renewBeforeMs: must be below leaseTtlMs");
	size_t i;
	json_t *p;
	json_array_foreach(c->providers, i, p) {
		char pfx[48];
		snprintf(pfx, sizeof pfx, "consumer.providers[%zu]", i);
		const char *name, *url, *peer = NULL, *actor = NULL;
		if (!json_is_object(p))
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s: must be an object", pfx);
		if ((r = jp_only(p, pfx, pkeys, e)) < 0 || (r = jp_str(p, pfx, "name", JP_REQUIRED, 1, 63, &name, e)) < 0 ||
		    (r = jp_str(p, pfx, "url", JP_REQUIRED, 8, 2000, &url, e)) < 0 ||
		    (r = jp_str(p, pfx, "peerId", 0, 40, 63, &peer, e)) < 0 ||
		    (r = jp_str(p, pfx, "actorId", 0, 42, 42, &actor, e)) < 0)
			return r;
		if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s.url: must be an http:// or https:// URL", pfx);
		uint8_t a[20], pk[32];
		if (actor && eth_address_parse(actor, a, NULL) < 0)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s.actorId: must be an Ethereum address", pfx);
		if (peer && peerid_string_to_ed25519(peer, pk) < 0)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s.peerId: must be an Ed25519 peer id", pfx);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(json_string_value(json_object_get(json_array_get(c->providers, j), "name")), name))
				return cg_fail(e, CG_E_INVALID_ARGUMENT, "%s.name: duplicate provider %s", pfx, name);
	}
	return 0;
}

int consumer_config_check(json_t *section, cg_err *e)
{
	struct cfg c;
	return parse_cfg(section, &c, e);
}

/* ---- leases (token kept in guarded memory) ---- */

static void lease_free(struct cs_lease *l)
{
	if (l->token) {
		sodium_memzero(l->token, strlen(l->token));
		sodium_free(l->token);
	}
	free(l);
}

static struct cs_lease *lease_find(struct consumer *c, struct cs_provider *p, const char *rid)
{
	for (struct cs_lease *l = c->leases; l; l = l->next)
		if (l->prov == p && !strcmp(l->resource_id, rid))
			return l;
	return NULL;
}

static void lease_drop(struct consumer *c, struct cs_lease *x)
{
	for (struct cs_lease **pp = &c->leases; *pp; pp = &(*pp)->next)
		if (*pp == x) {
			*pp = x->next;
			/* An op may still point at it: ops look leases up again before each step. */
			for (struct cs_op *o = c->ops; o; o = o->next)
				if (o->lease == x)
					o->lease = NULL;
			lease_free(x);
			return;
		}
}

static json_t *lease_json(const struct cs_lease *l)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:s}", "leaseId", l->lease_id, "orderId", l->order_id, "resourceId",
			 l->resource_id, "kind", l->kind, "provider", l->prov->name, "expiresAt", (json_int_t)l->expires_at,
			 "accessToken", REDACTED);
}

/* ---- ops ---- */

static void op_step(struct cs_op *o);

static struct cs_op *op_new(struct consumer *c, enum cs_tool tool)
{
	struct cs_op *o = calloc(1, sizeof *o);
	if (!o)
		return NULL;
	o->c = c;
	o->tool = tool;
	o->ttl_ms = c->ttl_ms;
	buf_init(&o->errbody, 65536);
	snprintf(o->max_cost, sizeof o->max_cost, "%s", c->max_cost);
	o->next = c->ops;
	if (c->ops)
		c->ops->prev = o;
	c->ops = o;
	return o;
}

static void op_free(struct cs_op *o)
{
	struct consumer *c = o->c;
	if (o->prev)
		o->prev->next = o->next;
	else
		c->ops = o->next;
	if (o->next)
		o->next->prev = o->prev;
	if (o->req)
		hc_cancel(o->req);
	if (o->sse_init)
		sse_done(&o->sse);
	buf_done(&o->errbody);
	json_decref(o->body);
	free(o);
}

static void op_fail(struct cs_op *o, const cg_err *e)
{
	if (o->call) {
		rpc_call_finish(o->call, NULL, e);
	} else if (o->hreq) {
		if (o->started) {
			json_t *err = json_pack("{s:{s:s,s:s}}", "error", "code", cg_code_name(e->code), "message", e->msg);
			char *s = json_dumps(err, JSON_COMPACT);
			json_decref(err);
			if (s)
				http_sse_event(o->hreq, "error", s);
			free(s);
			http_stream_end(o->hreq);
		} else {
			http_reply_error(o->hreq, e);
		}
	}
	op_free(o);
}

static void op_ok(struct cs_op *o, json_t *result)
{
	rpc_call_finish(o->call, result, NULL);
	op_free(o);
}

/* Errors from a provider reply: {"ok":false,"error":{"code":"E_X","message":"E_X: text"}}. */
static void provider_error(long status, const char *body, size_t n, cg_err *e)
{
	json_error_t je;
	json_t *j = body && n ? json_loadb(body, n, 0, &je) : NULL;
	json_t *err = json_object_get(j, "error");
	const char *code = json_string_value(json_object_get(err, "code"));
	if (!code)
		code = json_string_value(err);
	const char *msg = json_string_value(json_object_get(err, "message"));
	int cc = code ? cg_code_from_name(code) : -1;
	if (cc <= 0)
		cc = status == 401 ? CG_E_AUTH_REQUIRED
		     : status == 403 ? CG_E_FORBIDDEN
		     : status == 404 ? CG_E_NOT_FOUND
		     : status == 429 ? CG_E_RATE_LIMITED
		     : status >= 400 && status < 500 ? CG_E_INVALID_ARGUMENT
						     : CG_E_UNAVAILABLE;
	/* The provider's message already starts with its code; keep only the text. */
	if (msg && code && !strncmp(msg, code, strlen(code)) && msg[strlen(code)] == ':')
		msg += strlen(code) + 1;
	while (msg && *msg == ' ')
		msg++;
	cg_fail(e, (enum cg_code)cc, "provider: %s", msg ? msg : "request failed");
	if (status == 413 || status == 415)
		e->http_status = (int)status;
	json_decref(j);
}

static bool addr_eq(const char *a, const char *b)
{
	uint8_t x[20], y[20];
	return a && b && eth_address_parse(a, x, NULL) == 0 && eth_address_parse(b, y, NULL) == 0 && !memcmp(x, y, 20);
}

/* Verifies a receipt for this op and stores it. Returns 0 when it verifies. */
static int take_receipt(struct cs_op *o, json_t *r, cg_err *e)
{
	struct consumer *c = o->c;
	int rc = receipt_verify(r, o->prov->peer_id, e);
	if (rc < 0)
		return rc;
	const char *lid = json_string_value(json_object_get(r, "leaseId"));
	const char *rq = json_string_value(json_object_get(r, "requestId"));
	if (!o->lease || !lid || strcmp(lid, o->lease->lease_id) != 0 || !rq || strcmp(rq, o->request_id) != 0 ||
	    !addr_eq(json_string_value(json_object_get(r, "consumerActorId")), c->d.wallet->address) ||
	    !addr_eq(json_string_value(json_object_get(r, "providerActorId")), o->prov->actor))
		return cg_fail(e, CG_E_FORBIDDEN, "receipt: not for this request");
	char *data = json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS);
	sqlite3_stmt *s = store_prep(c->d.store,
				     "INSERT OR IGNORE INTO cs_receipts(ledgerId,leaseId,resourceId,providerPeerId,kind,unit,"
				     "quantity,cost,currency,requestId,receivedAt,data) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
				     e);
	if (!s || !data) {
		free(data);
		return -CG_E_INTERNAL;
	}
	static const char *const cols[] = {"ledgerId", "leaseId", "resourceId", "providerPeerId", "kind", "unit",
					   "quantity", "cost", "currency", "requestId", NULL};
	for (int i = 0; cols[i]; i++)
		sqlite3_bind_text(s, i + 1, json_string_value(json_object_get(r, cols[i])), -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 11, clock_now_ms());
	sqlite3_bind_text(s, 12, data, -1, SQLITE_TRANSIENT);
	int step = sqlite3_step(s);
	sqlite3_reset(s);
	free(data);
	if (step != SQLITE_DONE)
		return store_fail(c->d.store, e, "receipts");
	return 0;
}

/* The common end of every step against a provider: a transport failure, a refusal (its E_* code and
 * message) or a body that is not a JSON object fail the op (message "provider NAME: unreadable WHAT") and
 * return NULL; otherwise the parsed object (caller frees). */
static json_t *provider_answer(struct cs_op *o, long status, const char *body, size_t n, const cg_err *e,
			       const char *what)
{
	cg_err err;
	if (e) {
		op_fail(o, e);
		return NULL;
	}
	if (status != 200) {
		provider_error(status, body, n, &err);
		op_fail(o, &err);
		return NULL;
	}
	json_error_t je;
	json_t *j = json_loadb(body, n, 0, &je);
	if (!json_is_object(j)) {
		json_decref(j);
		cg_fail(&err, CG_E_UNAVAILABLE, "provider %s: unreadable %s", o->prov->name, what);
		op_fail(o, &err);
		return NULL;
	}
	return j;
}

/* ---- step: provider identity ---- */

static void ident_done(void *arg, long status, const char *body, size_t n, const cg_err *e)
{
	struct cs_op *o = arg;
	o->req = NULL;
	cg_err err;
	json_t *j = provider_answer(o, status, body, n, e, "identity");
	if (!j)
		return;
	json_t *pv = json_object_get(j, "provider");
	const char *peer = json_string_value(json_object_get(pv, "peerId"));
	const char *actor = json_string_value(json_object_get(pv, "actorId"));
	uint8_t pk[32], a[20];
	if (!peer || !actor || peerid_string_to_ed25519(peer, pk) < 0 || eth_address_parse(actor, a, NULL) < 0) {
		json_decref(j);
		cg_fail(&err, CG_E_UNAVAILABLE, "provider %s: unreadable identity", o->prov->name);
		op_fail(o, &err);
		return;
	}
	struct cs_provider *p = o->prov;
	/* Configured identities are pinned: a different node at that address is refused. */
	if ((p->peer_id[0] && strcmp(p->peer_id, peer) != 0) || (p->actor[0] && !addr_eq(p->actor, actor))) {
		json_decref(j);
		cg_fail(&err, CG_E_FORBIDDEN, "provider %s: identity does not match the configured one", p->name);
		op_fail(o, &err);
		return;
	}
	snprintf(p->peer_id, sizeof p->peer_id, "%s", peer);
	eth_address_checksum(p->actor, a);
	p->ident_known = true;
	json_decref(p->resources);
	p->resources = json_object();
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(j, "resources"), i, r) {
		const char *id = json_string_value(json_object_get(r, "resourceId"));
		const char *kind = json_string_value(json_object_get(r, "kind"));
		if (id && kind)
			json_object_set_new(p->resources, id, json_string(kind));
	}
	if (o->tool == T_RESOURCES) {
		json_t *res = json_pack("{s:s,s:s,s:s,s:O}", "provider", p->name, "peerId", p->peer_id, "actorId", p->actor,
					"resources", json_object_get(j, "resources"));
		json_decref(j);
		op_ok(o, res);
		return;
	}
	json_decref(j);
	op_step(o);
}

static void start_ident(struct cs_op *o)
{
	struct consumer *c = o->c;
	char url[2100];
	snprintf(url, sizeof url, "%s/web3/resources/list", o->prov->url);
	static const char *const headers[] = {"Accept: application/json", NULL};
	struct hc_opts ho = {.method = "GET", .url = url, .headers = headers, .connect_timeout_ms = c->connect_ms,
			     .total_timeout_ms = 30000, .max_response = RESPONSE_MAX};
	static const struct hc_cb cb = {NULL, NULL, ident_done};
	cg_err e;
	if (!(o->req = hc_start(c->hc, &ho, &cb, o, &e)))
		op_fail(o, &e);
}

/* ---- step: lease ---- */

static void lease_done(void *arg, long status, const char *body, size_t n, const cg_err *e)
{
	struct cs_op *o = arg;
	struct consumer *c = o->c;
	o->req = NULL;
	cg_err err;
	json_t *j = provider_answer(o, status, body, n, e, "lease answer");
	if (!j)
		return;
	const char *lid = json_string_value(json_object_get(j, "leaseId"));
	const char *oid = json_string_value(json_object_get(j, "orderId"));
	const char *tok = json_string_value(json_object_get(j, "accessToken"));
	const char *kind = json_string_value(json_object_get(j, "kind"));
	const char *peer = json_string_value(json_object_get(j, "providerPeerId"));
	json_int_t exp = json_integer_value(json_object_get(j, "expiresAt"));
	if (!lid || !oid || !tok || strncmp(tok, "tok_", 4) != 0 || strlen(tok) > 200 || strlen(lid) > 63 ||
	    strlen(oid) > 63 || !kind || strlen(kind) > 15 || exp <= 0 || !peer || strcmp(peer, o->prov->peer_id) != 0) {
		if (tok)
			sodium_memzero((char *)tok, strlen(tok));
		json_decref(j);
		cg_fail(&err, CG_E_UNAVAILABLE, "provider %s: unreadable lease answer", o->prov->name);
		op_fail(o, &err);
		return;
	}
	struct cs_lease *old = lease_find(c, o->prov, o->resource_id);
	if (old)
		lease_drop(c, old);
	struct cs_lease *l = calloc(1, sizeof *l);
	if (l)
		l->token = sodium_malloc(strlen(tok) + 1);
	if (!l || !l->token) {
		free(l);
		sodium_memzero((char *)tok, strlen(tok));
		json_decref(j);
		cg_fail(&err, CG_E_INTERNAL, "out of memory");
		op_fail(o, &err);
		return;
	}
	memcpy(l->token, tok, strlen(tok) + 1);
	sodium_memzero((char *)tok, strlen(tok));
	l->prov = o->prov;
	snprintf(l->resource_id, sizeof l->resource_id, "%s", o->resource_id);
	snprintf(l->lease_id, sizeof l->lease_id, "%s", lid);
	snprintf(l->order_id, sizeof l->order_id, "%s", oid);
	snprintf(l->kind, sizeof l->kind, "%s", kind);
	l->expires_at = exp;
	l->next = c->leases;
	c->leases = l;
	json_decref(j);
	log_info("consumer", "lease obtained", "provider=%s resource=%s lease=%s", o->prov->name, o->resource_id,
		 l->lease_id);
	o->renew = false;
	op_step(o);
}

static void start_lease(struct cs_op *o)
{
	struct consumer *c = o->c;
	json_t *body = NULL;
	cg_err e;
	if (leasereq_build(c->d.wallet, o->prov->actor, o->resource_id, o->ttl_ms, o->max_cost[0] ? o->max_cost : NULL,
			   clock_now_ms(), &body, &e) < 0) {
		op_fail(o, &e);
		return;
	}
	char *s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	char url[2100];
	snprintf(url, sizeof url, "%s/web3/market/lease", o->prov->url);
	static const char *const headers[] = {"Content-Type: application/json", "Accept: application/json", NULL};
	struct hc_opts ho = {.method = "POST", .url = url, .headers = headers, .body = s, .body_len = s ? strlen(s) : 0,
			     .connect_timeout_ms = c->connect_ms, .total_timeout_ms = 30000, .max_response = 65536};
	static const struct hc_cb cb = {NULL, NULL, lease_done};
	o->req = s ? hc_start(c->hc, &ho, &cb, o, &e) : NULL;
	if (!s)
		cg_fail(&e, CG_E_INTERNAL, "out of memory");
	free(s);
	if (!o->req)
		op_fail(o, &e);
}

/* ---- step: the call ---- */

static json_t *lease_view(struct cs_op *o)
{
	return json_pack("{s:s,s:s,s:s,s:s}", "resourceId", o->resource_id, "leaseId", o->lease ? o->lease->lease_id : "",
			 "provider", o->prov->name, "accessToken", REDACTED);
}

static void call_done(void *arg, long status, const char *body, size_t n, const cg_err *e)
{
	struct cs_op *o = arg;
	struct consumer *c = o->c;
	o->req = NULL;
	cg_err err;
	if (e) {
		op_fail(o, e);
		return;
	}
	if (status == 401 && !o->retried && !o->started) {
		/* The lease no longer authorizes (expired or revoked): renew once. */
		o->retried = true;
		/* The refused answer's body must not stay in front of the retried call's (an error body of the
		 * retry would otherwise read as two JSON objects, and its message be lost). */
		buf_done(&o->errbody);
		buf_init(&o->errbody, 65536);
		if (o->lease)
			lease_drop(c, o->lease);
		log_info("consumer", "lease refused by the provider, renewing", "provider=%s resource=%s", o->prov->name,
			 o->resource_id);
		op_step(o);
		return;
	}
	if (o->stream) {
		if (o->started) {
			if (o->sse_init && sse_finish(&o->sse))
				log_warn("consumer", "stream ended mid-event", "provider=%s", o->prov->name);
			http_stream_end(o->hreq);
			op_free(o);
			return;
		}
		body = (const char *)o->errbody.data;
		n = o->errbody.len;
	}
	json_t *j = provider_answer(o, status, body, n, NULL, "answer");
	if (!j)
		return;
	json_object_del(j, "ok");
	/* The receipt travels in a header; verify it and keep it. */
	char hv[RECEIPT_MAX * 2];
	json_t *receipt = NULL, *rview = json_null();
	/* call_headers kept the header in o->body's "_receipt". */
	json_t *raw = json_object_get(o->body, "_receipt");
	if (json_is_string(raw)) {
		snprintf(hv, sizeof hv, "%s", json_string_value(raw));
		if (receipt_from_header(hv, strlen(hv), &receipt, &err) == 0 && take_receipt(o, receipt, &err) == 0) {
			rview = json_pack("{s:b,s:O,s:O,s:O,s:O,s:O,s:O}", "verified", 1, "ledgerId",
					  json_object_get(receipt, "ledgerId"), "entryHash", json_object_get(receipt, "entryHash"),
					  "unit", json_object_get(receipt, "unit"), "quantity", json_object_get(receipt, "quantity"),
					  "cost", json_object_get(receipt, "cost"), "currency", json_object_get(receipt, "currency"));
		} else {
			log_warn("consumer", "receipt rejected", "provider=%s err=\"%s\"", o->prov->name, err.msg);
			rview = json_pack("{s:b,s:s}", "verified", 0, "error", err.msg);
		}
		json_decref(receipt);
	}
	json_object_set_new(j, "receipt", rview);
	json_object_set_new(j, "_lease", lease_view(o));
	op_ok(o, j);
}

static int call_headers(void *arg, long status, struct hc_req *r)
{
	struct cs_op *o = arg;
	char hv[RECEIPT_MAX * 2];
	if (hc_header(r, RECEIPT_HEADER, hv, sizeof hv) > 0)
		json_object_set_new(o->body, "_receipt", json_string(hv));
	if (o->stream && status == 200 && !o->gone) {
		o->started = true;
		http_reply_header(o->hreq, "X-OpenClaw-Lease-Id", o->lease ? o->lease->lease_id : "");
		http_sse_start(o->hreq);
	}
	return 0;
}

/* Streaming route: relay each event; verify the receipt event before passing it on. */
static int stream_event(void *arg, const char *event, const char *data, size_t len)
{
	struct cs_op *o = arg;
	if (o->gone)
		return -1;
	if (!strcmp(event, "receipt")) {
		json_error_t je;
		json_t *r = json_loadb(data, len, 0, &je);
		cg_err e;
		json_t *out;
		if (r && take_receipt(o, r, &e) == 0) {
			out = json_pack("{s:b,s:O}", "verified", 1, "receipt", r);
		} else {
			if (!r)
				cg_fail(&e, CG_E_INVALID_ARGUMENT, "receipt: not JSON");
			log_warn("consumer", "receipt rejected", "provider=%s err=\"%s\"", o->prov->name, e.msg);
			out = json_pack("{s:b,s:s}", "verified", 0, "error", e.msg);
		}
		json_decref(r);
		char *s = json_dumps(out, JSON_COMPACT);
		json_decref(out);
		int rc = s ? http_sse_event(o->hreq, "receipt", s) : -1;
		free(s);
		return rc;
	}
	return http_sse_event(o->hreq, *event ? event : NULL, data);
}

static int call_data(void *arg, const char *p, size_t n)
{
	struct cs_op *o = arg;
	cg_err e;
	if (!o->started)
		return buf_append(&o->errbody, p, n) < 0 ? -1 : 0;
	return sse_feed(&o->sse, p, n, &e) < 0 ? -1 : 0;
}

static void start_call(struct cs_op *o)
{
	struct consumer *c = o->c;
	struct cs_lease *l = o->lease;
	cg_err e;
	uint8_t rnd[12];
	randombytes_buf(rnd, sizeof rnd);
	memcpy(o->request_id, "creq_", 5);
	hex_encode(o->request_id + 5, rnd, sizeof rnd);
	json_object_del(o->body, "_receipt");
	char *s = json_dumps(o->body, JSON_COMPACT);
	char url[2100], auth[300], lh[100], rh[80];
	snprintf(url, sizeof url, "%s%s", o->prov->url, tool_path(o->tool));
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", l->token);
	snprintf(lh, sizeof lh, "X-OpenClaw-Lease: %s", l->lease_id);
	snprintf(rh, sizeof rh, "X-OpenClaw-Request-Id: %s", o->request_id);
	const char *headers[] = {"Content-Type: application/json", auth, lh, rh,
				 o->stream ? "Accept: text/event-stream" : "Accept: application/json", NULL};
	struct hc_opts ho = {.method = "POST", .url = url, .headers = headers, .body = s, .body_len = s ? strlen(s) : 0,
			     .connect_timeout_ms = c->connect_ms, .total_timeout_ms = c->total_ms,
			     .max_response = RESPONSE_MAX, .stream = o->stream};
	static const struct hc_cb cb = {call_headers, call_data, call_done};
	if (o->stream && !o->sse_init) {
		sse_init(&o->sse, EVENT_MAX, stream_event, o);
		o->sse_init = true;
	}
	o->req = s ? hc_start(c->hc, &ho, &cb, o, &e) : NULL;
	if (!s)
		cg_fail(&e, CG_E_INTERNAL, "out of memory");
	sodium_memzero(auth, sizeof auth);
	free(s);
	if (!o->req)
		op_fail(o, &e);
}

static void op_step(struct cs_op *o)
{
	struct consumer *c = o->c;
	if (!o->prov->ident_known || o->tool == T_RESOURCES) {
		if (o->tool == T_RESOURCES || !o->prov->ident_known) {
			start_ident(o);
			return;
		}
	}
	struct cs_lease *l = lease_find(c, o->prov, o->resource_id);
	if (l && (o->renew || l->expires_at - c->renew_ms <= clock_now_ms())) {
		lease_drop(c, l);
		l = NULL;
	}
	if (!l) {
		start_lease(o);
		return;
	}
	o->lease = l;
	if (o->tool == T_LEASE) {
		json_t *r = lease_json(l);
		json_object_set_new(r, "providerPeerId", json_string(o->prov->peer_id));
		json_object_set_new(r, "providerActorId", json_string(o->prov->actor));
		op_ok(o, r);
		return;
	}
	const char *want = tool_kind(o->tool);
	if (strcmp(l->kind, want) != 0) {
		cg_err e;
		cg_fail(&e, CG_E_INVALID_ARGUMENT, "resourceId: %s is a %s resource, not %s", o->resource_id, l->kind, want);
		op_fail(o, &e);
		return;
	}
	start_call(o);
}

/* ---- RPC methods ---- */

static int need_admin(struct rpc_call *call, cg_err *e)
{
	const struct rpc_caller *who = rpc_call_caller(call);
	if (!who || !who->admin)
		return cg_fail(e, CG_E_FORBIDDEN, "consumer tools are for the node's owner");
	return 0;
}

static struct cs_provider *pick_provider(struct consumer *c, json_t *params, const char *rid, cg_err *e)
{
	const char *name = NULL;
	if (jp_str(params, NULL, "provider", 0, 1, 63, &name, e) < 0)
		return NULL;
	if (name) {
		for (size_t i = 0; i < c->nprov; i++)
			if (!strcmp(c->prov[i].name, name))
				return &c->prov[i];
		cg_fail(e, CG_E_NOT_FOUND, "provider: no provider named %s in the consumer config", name);
		return NULL;
	}
	if (c->nprov == 1)
		return &c->prov[0];
	/* Several providers: the one whose listing has this resource. */
	for (size_t i = 0; rid && i < c->nprov; i++)
		if (json_object_get(c->prov[i].resources, rid))
			return &c->prov[i];
	cg_fail(e, c->nprov ? CG_E_INVALID_ARGUMENT : CG_E_NOT_FOUND,
		c->nprov ? "provider: required (several providers are configured; list one's resources first)"
			 : "no providers are configured (consumer.providers)");
	return NULL;
}

static int get_rid(json_t *params, char out[static 64], cg_err *e)
{
	const char *rid;
	int r = jp_str(params, NULL, "resourceId", JP_REQUIRED, 1, 63, &rid, e);
	if (r < 0)
		return r;
	if (strspn(rid, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:") != strlen(rid))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "resourceId: must be an id of letters, digits and _-.:");
	snprintf(out, 64, "%s", rid);
	return 0;
}

/* Starts a tool op: the provider route gets params minus the consumer-side keys. */
static int tool(struct consumer *c, enum cs_tool t, struct rpc_call *call, json_t *params, const char *const *keys,
		cg_err *e)
{
	int r;
	char rid[64];
	if ((r = need_admin(call, e)) < 0)
		return r;
	if (!json_is_object(params))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "params: must be an object");
	if ((r = jp_only(params, NULL, keys, e)) < 0 || (r = get_rid(params, rid, e)) < 0)
		return r;
	struct cs_provider *p = pick_provider(c, params, rid, e);
	if (!p)
		return -(int)e->code;
	struct cs_op *o = op_new(c, t);
	if (!o)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	o->prov = p;
	o->call = call;
	snprintf(o->resource_id, sizeof o->resource_id, "%s", rid);
	o->body = json_deep_copy(params);
	json_object_del(o->body, "provider");
	json_object_del(o->body, "resourceId");
	if (t == T_CHAT)
		json_object_set_new(o->body, "stream", json_false());
	op_step(o);
	return RPC_ASYNC;
}

static int m_search(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	static const char *const keys[] = {"provider", "resourceId", "q", "query", "limit", "site", "engines", NULL};
	return tool(arg, T_SEARCH, call, params, keys, e);
}

static int m_put(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	static const char *const keys[] = {"provider", "resourceId", "path", "bytesBase64", "content", "mime",
					   "contentType", NULL};
	return tool(arg, T_PUT, call, params, keys, e);
}

static int m_get(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	static const char *const keys[] = {"provider", "resourceId", "path", NULL};
	return tool(arg, T_GET, call, params, keys, e);
}

static int m_list(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	static const char *const keys[] = {"provider", "resourceId", "prefix", "limit", NULL};
	return tool(arg, T_LIST, call, params, keys, e);
}

static const char *const chat_keys[] = {"provider", "resourceId", "messages", "max_tokens", "max_completion_tokens",
					"temperature", "top_p", "seed", "stop", "model", "tools", "tool_choice",
					"stream_options", "stream", NULL};

static int m_chat(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	return tool(arg, T_CHAT, call, params, chat_keys, e);
}

int consumer_rpc_lease(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	static const char *const keys[] = {"provider", "resourceId", "ttlMs", "maxCost", "renew", "consumerActorId",
					   "sessionKey", NULL};
	struct consumer *c = arg;
	char rid[64];
	int64_t ttl = c->ttl_ms;
	const char *max = NULL, *cons = NULL;
	bool renew = false;
	int r;
	if ((r = need_admin(call, e)) < 0)
		return r;
	if (!json_is_object(params))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "params: must be an object");
	if ((r = jp_only(params, NULL, keys, e)) < 0 || (r = get_rid(params, rid, e)) < 0 ||
	    (r = jp_int(params, NULL, "ttlMs", 0, 10000, 7 * DAY_MS, &ttl, e)) < 0 ||
	    (r = jp_amount(params, NULL, "maxCost", 0, &max, e)) < 0 || (r = jp_bool(params, NULL, "renew", 0, &renew, e)) < 0 ||
	    (r = jp_str(params, NULL, "consumerActorId", 0, 1, 128, &cons, e)) < 0)
		return r;
	if (cons && !addr_eq(cons, c->d.wallet->address))
		return cg_fail(e, CG_E_FORBIDDEN, "consumerActorId: this node leases only for itself");
	struct cs_provider *p = pick_provider(c, params, rid, e);
	if (!p)
		return -(int)e->code;
	struct cs_op *o = op_new(c, T_LEASE);
	if (!o)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	o->prov = p;
	o->call = call;
	o->ttl_ms = ttl;
	o->renew = renew;
	if (max)
		snprintf(o->max_cost, sizeof o->max_cost, "%s", max);
	snprintf(o->resource_id, sizeof o->resource_id, "%s", rid);
	op_step(o);
	return RPC_ASYNC;
}

static int m_resources(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	static const char *const keys[] = {"provider", NULL};
	struct consumer *c = arg;
	int r;
	if ((r = need_admin(call, e)) < 0 || (r = jp_only(params, NULL, keys, e)) < 0)
		return r;
	struct cs_provider *p = pick_provider(c, params, NULL, e);
	if (!p)
		return -(int)e->code;
	struct cs_op *o = op_new(c, T_RESOURCES);
	if (!o)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	o->prov = p;
	o->call = call;
	op_step(o);
	return RPC_ASYNC;
}

static int m_providers(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	struct consumer *c = arg;
	int r;
	if ((r = need_admin(call, e)) < 0)
		return r;
	json_t *arr = json_array();
	for (size_t i = 0; i < c->nprov; i++) {
		json_t *p = json_pack("{s:s}", "name", c->prov[i].name);
		if (c->prov[i].peer_id[0])
			json_object_set_new(p, "peerId", json_string(c->prov[i].peer_id));
		if (c->prov[i].actor[0])
			json_object_set_new(p, "actorId", json_string(c->prov[i].actor));
		json_object_set_new(p, "identityVerified", json_boolean(c->prov[i].ident_known));
		json_array_append_new(arr, p);
	}
	*result = json_pack("{s:o}", "providers", arr);
	return 0;
}

static int m_leases(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	struct consumer *c = arg;
	int r;
	if ((r = need_admin(call, e)) < 0)
		return r;
	json_t *arr = json_array();
	for (struct cs_lease *l = c->leases; l; l = l->next)
		json_array_append_new(arr, lease_json(l));
	*result = json_pack("{s:o}", "leases", arr);
	return 0;
}

static int m_receipts(void *arg, struct rpc_call *call, json_t *params, json_t **result, cg_err *e)
{
	static const char *const keys[] = {"leaseId", "limit", NULL};
	struct consumer *c = arg;
	const char *lid = NULL;
	int64_t limit = 100;
	int r;
	if ((r = need_admin(call, e)) < 0 || (r = jp_only(params, NULL, keys, e)) < 0 ||
	    (r = jp_str(params, NULL, "leaseId", 0, 1, 63, &lid, e)) < 0 ||
	    (r = jp_int(params, NULL, "limit", 0, 1, 1000, &limit, e)) < 0)
		return r;
	sqlite3_stmt *s = store_prep(c->d.store,
				     "SELECT data FROM cs_receipts WHERE (?1 IS NULL OR leaseId=?1) ORDER BY receivedAt, rowid"
				     " LIMIT ?2",
				     e);
	if (!s)
		return -CG_E_INTERNAL;
	if (lid)
		sqlite3_bind_text(s, 1, lid, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 2, limit);
	json_t *arr = json_array();
	char total[U256_DEC_MAX] = "0";
	while (sqlite3_step(s) == SQLITE_ROW) {
		json_error_t je;
		json_t *rc = json_loads((const char *)sqlite3_column_text(s, 0), 0, &je);
		if (!rc)
			continue;
		const char *cost = json_string_value(json_object_get(rc, "cost"));
		if (cost && amount_add(total, cost, total) < 0)
			snprintf(total, sizeof total, "overflow");
		json_array_append_new(arr, rc);
	}
	sqlite3_reset(s);
	*result = json_pack("{s:o,s:s}", "receipts", arr, "totalCost", total);
	return 0;
}

/* ---- streaming chat route ---- */

static void on_chat_close(struct http_req *r, void *arg)
{
	struct cs_op *o = arg;
	o->gone = true;
	if (o->req) {
		hc_cancel(o->req);
		o->req = NULL;
	}
	if (o->started)
		http_stream_end(o->hreq);
	else
		http_reply(o->hreq, 499, "text/plain", "", 0);
	op_free(o);
}

static void on_chat_route(struct http_req *r, void *arg)
{
	struct consumer *c = arg;
	cg_err e;
	size_t len;
	const uint8_t *body = http_req_body(r, &len);
	json_error_t je;
	json_t *j = NULL;
	char rid[64];
	if (http_req_require_type(r, "application/json", &e) < 0)
		goto fail;
	j = len ? json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &je) : NULL;
	if (!json_is_object(j)) {
		cg_fail(&e, CG_E_INVALID_ARGUMENT, "body: must be a JSON object");
		goto fail;
	}
	if (jp_only(j, NULL, chat_keys, &e) < 0 || get_rid(j, rid, &e) < 0)
		goto fail;
	struct cs_provider *p = pick_provider(c, j, rid, &e);
	if (!p)
		goto fail;
	struct cs_op *o = op_new(c, T_CHAT);
	if (!o) {
		cg_fail(&e, CG_E_INTERNAL, "out of memory");
		goto fail;
	}
	o->prov = p;
	o->hreq = r;
	o->stream = true;
	snprintf(o->resource_id, sizeof o->resource_id, "%s", rid);
	json_object_del(j, "provider");
	json_object_del(j, "resourceId");
	json_object_set_new(j, "stream", json_true());
	o->body = j;
	http_req_on_close(r, on_chat_close, o);
	op_step(o);
	return;
fail:
	json_decref(j);
	http_reply_error(r, &e);
}

/* ---- lifecycle ---- */

int consumer_new(const struct consumer_deps *deps, json_t *section, struct consumer **out, cg_err *e)
{
	struct cfg cf;
	int r;
	if ((r = parse_cfg(section, &cf, e)) < 0)
		return r;
	if (!deps->wallet || !deps->store || !deps->rpc)
		return cg_fail(e, CG_E_INTERNAL, "consumer: the node has no wallet, store or RPC registry");
	struct consumer *c = calloc(1, sizeof *c);
	if (!c)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	c->d = *deps;
	c->ttl_ms = cf.ttl_ms;
	c->renew_ms = cf.renew_ms;
	c->connect_ms = cf.connect_ms;
	c->total_ms = cf.total_ms;
	if (cf.max_cost)
		snprintf(c->max_cost, sizeof c->max_cost, "%s", cf.max_cost);
	size_t i;
	json_t *p;
	json_array_foreach(cf.providers, i, p) {
		struct cs_provider *cp = &c->prov[c->nprov++];
		snprintf(cp->name, sizeof cp->name, "%s", json_string_value(json_object_get(p, "name")));
		const char *url = json_string_value(json_object_get(p, "url"));
		size_t n = strlen(url);
		while (n && url[n - 1] == '/')
			n--;
		cp->url = strndup(url, n);
		if (!cp->url) {
			consumer_free(c);
			return cg_fail(e, CG_E_INTERNAL, "out of memory");
		}
		redact_register(cp->url);
		const char *s;
		if ((s = json_string_value(json_object_get(p, "peerId"))))
			snprintf(cp->peer_id, sizeof cp->peer_id, "%s", s);
		if ((s = json_string_value(json_object_get(p, "actorId")))) {
			uint8_t a[20];
			if (eth_address_parse(s, a, NULL) == 0)
				eth_address_checksum(cp->actor, a);
		}
		cp->resources = json_object();
	}
	if ((r = hc_new(deps->base, &c->hc, e)) < 0 ||
	    (r = store_migrate(deps->store, "consumer", migrations, sizeof migrations / sizeof *migrations, e)) < 0) {
		consumer_free(c);
		return r;
	}
	static const struct {
		const char *name;
		rpc_fn fn;
	} methods[] = {
		{"web3.provider.list", m_providers},     {"web3.provider.resources", m_resources},
		{"web3.provider.lease", consumer_rpc_lease}, {"web3.search.query", m_search},
		{"web3.storage.put", m_put},             {"web3.storage.get", m_get},
		{"web3.storage.list", m_list},           {"web3.model.chat", m_chat},
		{"web3.consumer.leases", m_leases},      {"web3.consumer.receipts", m_receipts},
	};
	for (size_t k = 0; k < sizeof methods / sizeof *methods; k++)
		if (rpc_register(deps->rpc, methods[k].name, methods[k].fn, c) < 0) {
			consumer_free(c);
			return cg_fail(e, CG_E_INTERNAL, "consumer: method %s is taken", methods[k].name);
		}
	if (deps->http &&
	    http_route(deps->http, HTTP_POST, "/web3/consumer/chat", HTTP_ADMIN, 4u << 20, on_chat_route, c) < 0) {
		consumer_free(c);
		return cg_fail(e, CG_E_INTERNAL, "consumer: route /web3/consumer/chat is taken");
	}
	log_info("consumer", "started", "providers=%zu", c->nprov);
	*out = c;
	return 0;
}

void consumer_free(struct consumer *c)
{
	if (!c)
		return;
	cg_err e;
	cg_fail(&e, CG_E_UNAVAILABLE, "node stopping");
	while (c->ops)
		op_fail(c->ops, &e);
	while (c->leases) {
		struct cs_lease *l = c->leases;
		c->leases = l->next;
		lease_free(l);
	}
	hc_free(c->hc);
	for (size_t i = 0; i < c->nprov; i++) {
		free(c->prov[i].url);
		json_decref(c->prov[i].resources);
	}
	free(c);
}
