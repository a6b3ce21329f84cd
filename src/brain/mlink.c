/* The gateway's link to market providers: catalogs, leases, call info (see mlink.h). */
#include "brain/mlink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "base/amount.h"
#include "base/clock.h"
#include "base/json.h"
#include "base/log.h"
#include "base/redact.h"
#include "crypto/identity.h"
#include "crypto/wallet.h"
#include "http/client.h"
#include "provider/leasereq.h"

#define MAX_PROVIDERS 64
#define CATALOG_MAX (4u << 20)
#define LEASE_MARGIN_MS 30000 /* renew a lease this long before it expires */

struct ml_prov {
	char name[64];
	char *url; /* no trailing slash; registered with redact */
	char peer_id[64], actor[43];
	bool pinned_peer, pinned_actor, ident_known;
	struct hc_req *refresh;
	struct mlink *m;
};

struct ml_lease {
	struct ml_lease *next;
	struct ml_prov *prov;
	char resource_id[64], lease_id[64];
	int64_t expires_at;
	char *token; /* sodium_malloc'd */
	struct hc_req *pending;
	struct mlink_op *waiters;
};

struct mlink_op {
	struct mlink_op *next; /* waiters of one lease, or the ready list */
	struct mlink *m;
	struct ml_lease *lease;
	mlink_done_fn done;
	void *arg;
	cg_err err;
	bool failed, ready;
};

struct mlink {
	struct event_base *base;
	struct hc *hc;
	const struct wallet *w;
	int64_t connect_ms, ttl_ms;
	struct ml_prov prov[MAX_PROVIDERS];
	size_t nprov;
	struct mlink_res res[MLINK_MAX_RES];
	size_t nres;
	struct ml_lease *leases;
	struct mlink_op *ready; /* ops whose callback is due */
	struct event *ready_ev;
	uint64_t gen;
};

static void lease_wipe_token(struct ml_lease *l)
{
	if (l->token) {
		sodium_memzero(l->token, strlen(l->token));
		sodium_free(l->token);
		l->token = NULL;
	}
}

static void run_ready(evutil_socket_t fd, short what, void *arg)
{
	struct mlink *m = arg;
	(void)fd;
	(void)what;
	/* Detach the whole list first: callbacks may start new ops. */
	struct mlink_op *list = m->ready, *rev = NULL;
	m->ready = NULL;
	while (list) { /* restore FIFO order */
		struct mlink_op *n = list->next;
		list->next = rev;
		rev = list;
		list = n;
	}
	while (rev) {
		struct mlink_op *o = rev;
		rev = o->next;
		mlink_done_fn cb = o->done;
		void *a = o->arg;
		cg_err e = o->err;
		bool failed = o->failed;
		free(o);
		cb(a, failed ? &e : NULL);
	}
}

static void op_ready(struct mlink_op *o, const cg_err *e)
{
	struct mlink *m = o->m;
	o->ready = true;
	o->lease = NULL;
	if (e) {
		o->failed = true;
		o->err = *e;
	}
	o->next = m->ready;
	m->ready = o;
	event_active(m->ready_ev, EV_TIMEOUT, 1);
}

int mlink_new(struct event_base *base, struct hc *hc, const struct wallet *w, json_t *section, int64_t connect_ms,
	      int64_t lease_ttl_ms, struct mlink **out, cg_err *e)
{
	struct mlink *m = calloc(1, sizeof *m);
	if (!m)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	m->base = base;
	m->hc = hc;
	m->w = w;
	m->connect_ms = connect_ms;
	m->ttl_ms = lease_ttl_ms;
	m->ready_ev = event_new(base, -1, 0, run_ready, m);
	if (!m->ready_ev) {
		free(m);
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	}
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(section, "providers"), i, p) {
		if (m->nprov == MAX_PROVIDERS)
			break;
		const char *name = json_string_value(json_object_get(p, "name"));
		const char *url = json_string_value(json_object_get(p, "url"));
		if (!name || !url)
			continue; /* the consumer module's own check refuses such a config */
		struct ml_prov *pv = &m->prov[m->nprov];
		snprintf(pv->name, sizeof pv->name, "%s", name);
		size_t n = strlen(url);
		while (n && url[n - 1] == '/')
			n--;
		pv->url = strndup(url, n);
		if (!pv->url) {
			mlink_free(m);
			return cg_fail(e, CG_E_INTERNAL, "out of memory");
		}
		redact_register(pv->url);
		const char *peer = json_string_value(json_object_get(p, "peerId"));
		const char *actor = json_string_value(json_object_get(p, "actorId"));
		uint8_t a[20];
		if (peer) {
			snprintf(pv->peer_id, sizeof pv->peer_id, "%s", peer);
			pv->pinned_peer = true;
		}
		if (actor && eth_address_parse(actor, a, NULL) == 0) {
			eth_address_checksum(pv->actor, a);
			pv->pinned_actor = true;
		}
		pv->m = m;
		m->nprov++;
	}
	*out = m;
	return 0;
}

static void lease_free(struct ml_lease *l)
{
	if (l->pending)
		hc_cancel(l->pending);
	while (l->waiters) {
		struct mlink_op *o = l->waiters;
		l->waiters = o->next;
		free(o);
	}
	lease_wipe_token(l);
	free(l);
}

void mlink_free(struct mlink *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nprov; i++) {
		if (m->prov[i].refresh)
			hc_cancel(m->prov[i].refresh);
		free(m->prov[i].url);
	}
	while (m->leases) {
		struct ml_lease *l = m->leases;
		m->leases = l->next;
		lease_free(l);
	}
	while (m->ready) {
		struct mlink_op *o = m->ready;
		m->ready = o->next;
		free(o);
	}
	if (m->ready_ev)
		event_free(m->ready_ev);
	free(m);
}

bool mlink_has_provider(const struct mlink *m, const char *name)
{
	for (size_t i = 0; i < m->nprov; i++)
		if (!strcmp(m->prov[i].name, name))
			return true;
	return false;
}

size_t mlink_nproviders(const struct mlink *m)
{
	return m->nprov;
}

size_t mlink_resources(struct mlink *m, const struct mlink_res **out)
{
	*out = m->res;
	return m->nres;
}

uint64_t mlink_generation(const struct mlink *m)
{
	return m->gen;
}

/* ---- catalog ---- */

static bool addr_eq(const char *a, const char *b)
{
	uint8_t x[20], y[20];
	return a && b && eth_address_parse(a, x, NULL) == 0 && eth_address_parse(b, y, NULL) == 0 && !memcmp(x, y, 20);
}

static struct mlink_res *res_slot(struct mlink *m, const char *prov, const char *rid)
{
	for (size_t i = 0; i < m->nres; i++)
		if (!strcmp(m->res[i].provider, prov) && !strcmp(m->res[i].resource_id, rid))
			return &m->res[i];
	if (m->nres == MLINK_MAX_RES)
		return NULL;
	struct mlink_res *r = &m->res[m->nres++];
	memset(r, 0, sizeof *r);
	snprintf(r->provider, sizeof r->provider, "%s", prov);
	snprintf(r->resource_id, sizeof r->resource_id, "%s", rid);
	return r;
}

/* The model a resource serves: a "model:<id>" tag wins over the label. */
static const char *res_model(json_t *res)
{
	size_t i;
	json_t *t;
	json_array_foreach(json_object_get(res, "tags"), i, t) {
		const char *s = json_string_value(t);
		if (s && !strncmp(s, "model:", 6) && s[6])
			return s + 6;
	}
	return json_string_value(json_object_get(res, "label"));
}

static void catalog_done(void *arg, long status, const char *body, size_t n, const cg_err *e)
{
	struct ml_prov *p = arg;
	struct mlink *m = p->m;
	p->refresh = NULL;
	if (e || status != 200) {
		log_warn("brain", "market catalog unavailable", "provider=%s status=%ld err=\"%s\"", p->name, status,
			 e ? e->msg : "http status");
		return;
	}
	json_error_t je;
	json_t *j = json_loadb(body, n, 0, &je);
	json_t *pv = json_object_get(j, "provider");
	const char *peer = json_string_value(json_object_get(pv, "peerId"));
	const char *actor = json_string_value(json_object_get(pv, "actorId"));
	uint8_t pk[32], a[20];
	if (!peer || !actor || strlen(peer) >= sizeof p->peer_id || peerid_string_to_ed25519(peer, pk) < 0 ||
	    eth_address_parse(actor, a, NULL) < 0) {
		log_warn("brain", "market catalog unreadable", "provider=%s", p->name);
		json_decref(j);
		return;
	}
	if ((p->pinned_peer && strcmp(p->peer_id, peer) != 0) || (p->pinned_actor && !addr_eq(p->actor, actor))) {
		log_warn("brain", "market provider identity does not match the configured one", "provider=%s", p->name);
		json_decref(j);
		return;
	}
	snprintf(p->peer_id, sizeof p->peer_id, "%s", peer);
	eth_address_checksum(p->actor, a);
	p->ident_known = true;
	for (size_t i = 0; i < m->nres; i++)
		if (!strcmp(m->res[i].provider, p->name))
			m->res[i].present = false;
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(j, "resources"), i, r) {
		const char *rid = json_string_value(json_object_get(r, "resourceId"));
		const char *kind = json_string_value(json_object_get(r, "kind"));
		json_t *price = json_object_get(r, "price");
		if (!json_is_object(price))
			price = json_object_get(r, "pricing");
		const char *amount = json_string_value(json_object_get(price, "amount"));
		const char *unit = json_string_value(json_object_get(price, "unit"));
		const char *cur = json_string_value(json_object_get(price, "currency"));
		const char *model = res_model(r);
		if (!rid || !kind || strcmp(kind, "model") != 0 || strlen(rid) >= 64 || !model || !*model ||
		    strlen(model) >= 128)
			continue;
		struct mlink_res *s = res_slot(m, p->name, rid);
		if (!s)
			break;
		snprintf(s->model, sizeof s->model, "%s", model);
		snprintf(s->price, sizeof s->price, "%s", amount && amount_valid(amount) ? amount : "0");
		snprintf(s->currency, sizeof s->currency, "%s", cur && strlen(cur) < 16 ? cur : "");
		s->per_token = !unit || !strcmp(unit, "token") || !strcmp(unit, "tokens");
		s->present = true;
	}
	json_decref(j);
	m->gen++;
}

void mlink_refresh(struct mlink *m)
{
	for (size_t i = 0; i < m->nprov; i++) {
		struct ml_prov *p = &m->prov[i];
		if (p->refresh)
			continue;
		char url[2100];
		snprintf(url, sizeof url, "%s/web3/resources/list", p->url);
		static const char *const headers[] = {"Accept: application/json", NULL};
		struct hc_opts o = {.method = "GET", .url = url, .headers = headers, .connect_timeout_ms = m->connect_ms,
				    .total_timeout_ms = 30000, .max_response = CATALOG_MAX};
		static const struct hc_cb cb = {NULL, NULL, catalog_done};
		cg_err e;
		if (!(p->refresh = hc_start(m->hc, &o, &cb, p, &e)))
			log_warn("brain", "market catalog request failed", "provider=%s err=\"%s\"", p->name, e.msg);
	}
}

/* ---- leases ---- */

static struct ml_prov *find_prov(struct mlink *m, const char *name)
{
	for (size_t i = 0; i < m->nprov; i++)
		if (!strcmp(m->prov[i].name, name))
			return &m->prov[i];
	return NULL;
}

static struct ml_lease *find_lease(struct mlink *m, const struct mlink_res *res)
{
	for (struct ml_lease *l = m->leases; l; l = l->next)
		if (!strcmp(l->prov->name, res->provider) && !strcmp(l->resource_id, res->resource_id))
			return l;
	return NULL;
}

static void lease_unlink(struct mlink *m, struct ml_lease *x)
{
	for (struct ml_lease **pp = &m->leases; *pp; pp = &(*pp)->next)
		if (*pp == x) {
			*pp = x->next;
			return;
		}
}

static void lease_settle_waiters(struct ml_lease *l, const cg_err *e)
{
	while (l->waiters) {
		struct mlink_op *o = l->waiters;
		l->waiters = o->next;
		op_ready(o, e);
	}
}

/* The provider's error body {"ok":false,"error":{"code","message"}} as our error. */
static void provider_error(long status, const char *body, size_t n, cg_err *e)
{
	json_error_t je;
	json_t *j = body && n ? json_loadb(body, n, 0, &je) : NULL;
	json_t *err = json_object_get(j, "error");
	const char *msg = json_string_value(json_object_get(err, "message"));
	if (!msg)
		msg = json_string_value(json_object_get(j, "message"));
	enum cg_code code = status == 401 ? CG_E_AUTH_REQUIRED
			    : status == 403 ? CG_E_FORBIDDEN
			    : status == 429 ? CG_E_RATE_LIMITED
			    : status == 409 ? CG_E_CONFLICT
					    : CG_E_UNAVAILABLE;
	cg_fail(e, code, "market lease refused (HTTP %ld): %s", status, msg ? msg : "no reason given");
	json_decref(j);
}

static void lease_done(void *arg, long status, const char *body, size_t n, const cg_err *e)
{
	struct ml_lease *l = arg;
	struct mlink *m = l->prov->m;
	l->pending = NULL;
	cg_err err;
	if (e) {
		cg_fail(&err, e->code, "market lease request failed: %s", e->msg);
		goto fail;
	}
	if (status != 200) {
		provider_error(status, body, n, &err);
		goto fail;
	}
	json_error_t je;
	json_t *j = json_loadb(body, n, 0, &je);
	const char *lid = json_string_value(json_object_get(j, "leaseId"));
	const char *tok = json_string_value(json_object_get(j, "accessToken"));
	const char *peer = json_string_value(json_object_get(j, "providerPeerId"));
	json_int_t exp = json_integer_value(json_object_get(j, "expiresAt"));
	bool ok = lid && tok && !strncmp(tok, "tok_", 4) && strlen(tok) <= 200 && strlen(lid) < sizeof l->lease_id &&
		  exp > 0 && (!peer || !strcmp(peer, l->prov->peer_id));
	if (ok && (l->token = sodium_malloc(strlen(tok) + 1)))
		memcpy(l->token, tok, strlen(tok) + 1);
	if (tok)
		sodium_memzero((char *)tok, strlen(tok));
	if (!ok || !l->token) {
		json_decref(j);
		cg_fail(&err, CG_E_UNAVAILABLE, "market provider %s: unreadable lease answer", l->prov->name);
		goto fail;
	}
	snprintf(l->lease_id, sizeof l->lease_id, "%s", lid);
	l->expires_at = exp;
	json_decref(j);
	log_info("brain", "market lease obtained", "provider=%s resource=%s lease=%s", l->prov->name, l->resource_id,
		 l->lease_id);
	lease_settle_waiters(l, NULL);
	return;
fail:
	lease_settle_waiters(l, &err);
	lease_unlink(m, l);
	lease_free(l);
}

static int lease_start(struct mlink *m, struct ml_lease *l, cg_err *e)
{
	if (!l->prov->ident_known)
		return cg_fail(e, CG_E_UNAVAILABLE, "market provider %s: identity not known yet", l->prov->name);
	json_t *body = NULL;
	int r = leasereq_build(m->w, l->prov->actor, l->resource_id, m->ttl_ms, NULL, clock_now_ms(), &body, e);
	if (r < 0)
		return r;
	char *s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (!s)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	char url[2100];
	snprintf(url, sizeof url, "%s/web3/market/lease", l->prov->url);
	static const char *const headers[] = {"Content-Type: application/json", "Accept: application/json", NULL};
	struct hc_opts o = {.method = "POST", .url = url, .headers = headers, .body = s, .body_len = strlen(s),
			    .connect_timeout_ms = m->connect_ms, .total_timeout_ms = 30000, .max_response = 65536};
	static const struct hc_cb cb = {NULL, NULL, lease_done};
	l->pending = hc_start(m->hc, &o, &cb, l, e);
	free(s);
	return l->pending ? 0 : -CG_E_UNAVAILABLE;
}

struct mlink_op *mlink_lease(struct mlink *m, const struct mlink_res *res, mlink_done_fn done, void *arg)
{
	struct mlink_op *o = calloc(1, sizeof *o);
	if (!o)
		return NULL;
	o->m = m;
	o->done = done;
	o->arg = arg;
	cg_err e;
	struct ml_prov *p = find_prov(m, res->provider);
	if (!p) {
		cg_fail(&e, CG_E_NOT_FOUND, "market provider %s is not configured", res->provider);
		op_ready(o, &e);
		return o;
	}
	struct ml_lease *l = find_lease(m, res);
	if (l && !l->pending && l->expires_at - LEASE_MARGIN_MS <= clock_now_ms()) {
		lease_unlink(m, l);
		lease_free(l);
		l = NULL;
	}
	if (l && !l->pending) {
		op_ready(o, NULL);
		return o;
	}
	if (!l) {
		if (!(l = calloc(1, sizeof *l))) {
			free(o);
			return NULL;
		}
		l->prov = p;
		snprintf(l->resource_id, sizeof l->resource_id, "%s", res->resource_id);
		if (lease_start(m, l, &e) < 0) {
			free(l);
			op_ready(o, &e);
			return o;
		}
		l->next = m->leases;
		m->leases = l;
	}
	o->lease = l;
	o->next = l->waiters;
	l->waiters = o;
	return o;
}

void mlink_cancel(struct mlink_op *op)
{
	if (!op)
		return;
	struct mlink *m = op->m;
	struct mlink_op **list = op->ready ? &m->ready : op->lease ? &op->lease->waiters : NULL;
	for (; list && *list; list = &(*list)->next)
		if (*list == op) {
			*list = op->next;
			free(op);
			return;
		}
}

int mlink_call_info(struct mlink *m, const struct mlink_res *res, char *url, size_t ucap, char *auth, size_t acap,
		    char *lease, size_t lcap)
{
	struct ml_lease *l = find_lease(m, res);
	if (!l || l->pending || !l->token)
		return -1;
	snprintf(url, ucap, "%s/web3/resources/model/chat", l->prov->url);
	snprintf(auth, acap, "Authorization: Bearer %s", l->token);
	snprintf(lease, lcap, "X-OpenClaw-Lease: %s", l->lease_id);
	return 0;
}

void mlink_drop_lease(struct mlink *m, const struct mlink_res *res)
{
	struct ml_lease *l = find_lease(m, res);
	if (!l || l->pending)
		return;
	lease_unlink(m, l);
	lease_free(l);
}
