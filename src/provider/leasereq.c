#include "provider/leasereq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "base/amount.h"
#include "base/enc.h"
#include "base/json.h"
#include "crypto/jcs.h"
#include "crypto/wallet.h"

#define TYPE "clawgrid-lease-request"

int leasereq_build(const struct wallet *w, const char *provider, const char *resource_id, int64_t ttl_ms,
		   const char *max_cost, int64_t now_ms, json_t **body, cg_err *e)
{
	uint8_t addr[20], rnd[16], sig[65];
	char prov[43], nonce[33], sighex[133];
	int r;
	if ((r = eth_address_parse(provider, addr, e)) < 0)
		return r;
	eth_address_checksum(prov, addr);
	randombytes_buf(rnd, sizeof rnd);
	hex_encode(nonce, rnd, sizeof rnd);
	json_t *req = json_pack("{s:s,s:i,s:s,s:s,s:s,s:I,s:s,s:I}", "type", TYPE, "v", 1, "provider", prov, "consumer",
				w->address, "resourceId", resource_id, "ttlMs", (json_int_t)ttl_ms, "nonce", nonce,
				"timestamp", (json_int_t)now_ms);
	if (!req)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "lease request: bad fields");
	if (max_cost)
		json_object_set_new(req, "maxCost", json_string(max_cost));
	size_t n;
	char *canon = jcs_canonicalize_n(req, &n, e);
	if (!canon) {
		json_decref(req);
		return -(int)e->code;
	}
	r = wallet_personal_sign(w, canon, n, sig);
	free(canon);
	if (r < 0) {
		json_decref(req);
		return cg_fail(e, CG_E_INTERNAL, "cannot sign the lease request");
	}
	eth_sig_to_hex(sighex, sig);
	*body = json_pack("{s:o,s:s}", "request", req, "signature", sighex);
	return 0;
}

static int norm_addr(json_t *o, const char *key, char out[static 43], cg_err *e)
{
	const char *s;
	uint8_t a[20];
	int r = jp_str(o, "request", key, JP_REQUIRED, 42, 42, &s, e);
	if (r < 0)
		return r;
	if ((r = eth_address_parse(s, a, e)) < 0)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "request.%s: not an Ethereum address", key);
	eth_address_checksum(out, a);
	return 0;
}

int leasereq_verify(const char *body, size_t len, const char *self, int64_t now_ms, int64_t skew_ms,
		    struct leasereq *out, cg_err *e)
{
	static const char *const top[] = {"request", "signature", NULL};
	static const char *const keys[] = {"type", "v", "provider", "consumer", "resourceId", "ttlMs", "maxCost",
					   "nonce", "timestamp", NULL};
	if (len == 0 || len > LEASEREQ_BODY_MAX)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "lease request: body must be 1..%d bytes", LEASEREQ_BODY_MAX);
	json_error_t je;
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je), *req = NULL;
	struct leasereq q;
	const char *s, *sig;
	int64_t v;
	int r;
	memset(&q, 0, sizeof q);
	if (!json_is_object(root)) {
		r = cg_fail(e, CG_E_INVALID_ARGUMENT, "lease request: body must be a JSON object");
		goto out;
	}
	if ((r = jp_only(root, NULL, top, e)) < 0 || (r = jp_obj(root, NULL, "request", JP_REQUIRED, &req, e)) < 0 ||
	    (r = jp_str(root, NULL, "signature", JP_REQUIRED, 132, 132, &sig, e)) < 0 ||
	    (r = jp_only(req, "request", keys, e)) < 0)
		goto out;
	if ((r = jp_str(req, "request", "type", JP_REQUIRED, 1, 64, &s, e)) < 0)
		goto out;
	if (strcmp(s, TYPE) != 0) {
		r = cg_fail(e, CG_E_INVALID_ARGUMENT, "request.type: must be %s", TYPE);
		goto out;
	}
	if ((r = jp_int(req, "request", "v", JP_REQUIRED, 1, 1, &v, e)) < 0 ||
	    (r = norm_addr(req, "provider", q.provider, e)) < 0 || (r = norm_addr(req, "consumer", q.consumer, e)) < 0 ||
	    (r = jp_int(req, "request", "ttlMs", JP_REQUIRED, 10000, 7LL * 24 * 3600 * 1000, &q.ttl_ms, e)) < 0 ||
	    (r = jp_int(req, "request", "timestamp", JP_REQUIRED, 0, INT64_C(1) << 50, &q.timestamp, e)) < 0)
		goto out;
	if ((r = jp_str(req, "request", "resourceId", JP_REQUIRED, 1, 63, &s, e)) < 0)
		goto out;
	if (strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:") != strlen(s)) {
		r = cg_fail(e, CG_E_INVALID_ARGUMENT, "request.resourceId: unexpected characters");
		goto out;
	}
	snprintf(q.resource_id, sizeof q.resource_id, "%s", s);
	if ((r = jp_str(req, "request", "nonce", JP_REQUIRED, 32, 64, &s, e)) < 0)
		goto out;
	if (strspn(s, "0123456789abcdef") != strlen(s)) {
		r = cg_fail(e, CG_E_INVALID_ARGUMENT, "request.nonce: must be lower-case hex");
		goto out;
	}
	snprintf(q.nonce, sizeof q.nonce, "%s", s);
	s = NULL;
	if ((r = jp_amount(req, "request", "maxCost", 0, &s, e)) < 0)
		goto out;
	if (s)
		snprintf(q.max_cost, sizeof q.max_cost, "%s", s);
	/* Signature before freshness and addressing: an unsigned request learns nothing about the provider. */
	size_t n;
	char *canon = jcs_canonicalize_n(req, &n, e), signer[43];
	if (!canon) {
		r = -(int)e->code;
		goto out;
	}
	r = eip191_recover(canon, n, sig, signer, e);
	free(canon);
	if (r < 0)
		goto out;
	if (strcmp(signer, q.consumer) != 0) {
		r = cg_fail(e, CG_E_AUTH_REQUIRED, "lease request: not signed by its consumer");
		goto out;
	}
	if (q.timestamp < now_ms - skew_ms || q.timestamp > now_ms + skew_ms) {
		r = cg_fail(e, CG_E_EXPIRED, "lease request: timestamp outside the allowed window");
		goto out;
	}
	uint8_t a[20];
	char me[43];
	if (eth_address_parse(self, a, NULL) < 0) {
		r = cg_fail(e, CG_E_INTERNAL, "provider address unusable");
		goto out;
	}
	eth_address_checksum(me, a);
	if (strcmp(me, q.provider) != 0) {
		r = cg_fail(e, CG_E_FORBIDDEN, "lease request: addressed to another provider");
		goto out;
	}
	*out = q;
	r = 0;
out:
	json_decref(root);
	return r;
}
