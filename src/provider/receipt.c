#include "provider/receipt.h"

#include <stdlib.h>
#include <string.h>

#include "base/amount.h"
#include "base/enc.h"
#include "crypto/identity.h"
#include "crypto/jcs.h"

#define CTX "clawgrid-receipt/v1\n"

static int digest_msg(const json_t *r, char msg[static 128], cg_err *e)
{
	json_t *c = json_copy((json_t *)r);
	if (!c)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	json_object_del(c, "signature");
	char h[72];
	int rc = jcs_sha256(c, h, e);
	json_decref(c);
	if (rc < 0)
		return rc;
	memcpy(msg, CTX, sizeof CTX - 1);
	memcpy(msg + sizeof CTX - 1, h, strlen(h) + 1);
	return 0;
}

int receipt_sign(const struct node_key *k, json_t *r, cg_err *e)
{
	char peer[PEERID_STR_MAX], msg[128], hex[129];
	if (peerid_string_from_ed25519(k->pk, peer, sizeof peer) < 0)
		return cg_fail(e, CG_E_INTERNAL, "cannot form the peer id");
	json_object_set_new(r, "v", json_integer(1));
	json_object_set_new(r, "type", json_string("clawgrid-receipt"));
	json_object_set_new(r, "providerPeerId", json_string(peer));
	json_object_del(r, "signature");
	int rc = digest_msg(r, msg, e);
	if (rc < 0)
		return rc;
	uint8_t sig[64];
	node_key_sign(k, msg, strlen(msg), sig);
	hex_encode(hex, sig, 64);
	json_object_set_new(r, "signature", json_string(hex));
	return 0;
}

static int bad(cg_err *e, const char *field)
{
	return cg_fail(e, CG_E_INVALID_ARGUMENT, "receipt.%s: missing or malformed", field);
}

int receipt_verify(const json_t *r, const char *expect_peer, cg_err *e)
{
	static const char *const strs[] = {"providerPeerId", "providerActorId", "consumerActorId", "leaseId",
					   "resourceId", "kind", "ledgerId", "entryHash", "unit", "currency",
					   "signature", NULL};
	static const char *const allowed[] = {"v", "type", "providerPeerId", "providerActorId", "consumerActorId",
					      "leaseId", "resourceId", "kind", "ledgerId", "entryHash", "unit",
					      "quantity", "cost", "currency", "requestId", "issuedAt", "signature", NULL};
	if (!json_is_object(r))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "receipt: must be an object");
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)r, k, v) {
		bool ok = false;
		for (int i = 0; allowed[i] && !ok; i++)
			ok = strcmp(allowed[i], k) == 0;
		if (!ok)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "receipt: unknown field");
	}
	for (int i = 0; strs[i]; i++) {
		json_t *s = json_object_get(r, strs[i]);
		if (!json_is_string(s) || json_string_length(s) < 1 || json_string_length(s) > 200)
			return bad(e, strs[i]);
	}
	if (json_integer_value(json_object_get(r, "v")) != 1 || !json_is_integer(json_object_get(r, "v")))
		return bad(e, "v");
	const char *type = json_string_value(json_object_get(r, "type"));
	if (!type || strcmp(type, "clawgrid-receipt") != 0)
		return bad(e, "type");
	if (!json_is_integer(json_object_get(r, "issuedAt")))
		return bad(e, "issuedAt");
	json_t *rq = json_object_get(r, "requestId");
	if (rq && (!json_is_string(rq) || json_string_length(rq) > 128))
		return bad(e, "requestId");
	const char *q = json_string_value(json_object_get(r, "quantity"));
	const char *c = json_string_value(json_object_get(r, "cost"));
	if (!q || !amount_valid(q))
		return bad(e, "quantity");
	if (!c || !amount_valid(c))
		return bad(e, "cost");
	const char *peer = json_string_value(json_object_get(r, "providerPeerId"));
	if (expect_peer && strcmp(peer, expect_peer) != 0)
		return cg_fail(e, CG_E_FORBIDDEN, "receipt: signed by another provider");
	uint8_t pk[32], sig[64];
	if (peerid_string_to_ed25519(peer, pk) < 0)
		return bad(e, "providerPeerId");
	const char *sighex = json_string_value(json_object_get(r, "signature"));
	if (strlen(sighex) != 128 || hex_decode(sig, 64, sighex, 128, false) < 0)
		return bad(e, "signature");
	char msg[128];
	int rc = digest_msg(r, msg, e);
	if (rc < 0)
		return rc;
	if (!ed25519_verify(pk, msg, strlen(msg), sig))
		return cg_fail(e, CG_E_FORBIDDEN, "receipt: signature does not verify");
	return 0;
}

char *receipt_to_header(const json_t *r, cg_err *e)
{
	size_t n;
	char *c = jcs_canonicalize_n(r, &n, e);
	if (!c)
		return NULL;
	char *out = malloc(base64_encoded_len(n, true) + 1);
	if (out)
		base64_encode(out, (const uint8_t *)c, n, true);
	else
		cg_fail(e, CG_E_INTERNAL, "out of memory");
	free(c);
	return out;
}

int receipt_from_header(const char *s, size_t len, json_t **out, cg_err *e)
{
	if (!s || len == 0 || len > base64_encoded_len(RECEIPT_MAX, true))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "receipt header: missing or too long");
	uint8_t *raw = malloc(base64_decoded_max(len) + 1);
	if (!raw)
		return cg_fail(e, CG_E_INTERNAL, "out of memory");
	long n = base64_decode(raw, s, len, true);
	if (n < 0) {
		free(raw);
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "receipt header: not base64url");
	}
	json_error_t je;
	json_t *j = json_loadb((const char *)raw, (size_t)n, JSON_REJECT_DUPLICATES, &je);
	free(raw);
	if (!json_is_object(j)) {
		json_decref(j);
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "receipt header: not a JSON object");
	}
	*out = j;
	return 0;
}
