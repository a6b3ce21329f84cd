/* Receipts (Ed25519, canonical JSON) and the EIP-191 signed lease request. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/identity.h"
#include "crypto/wallet.h"
#include "provider/leasereq.h"
#include "provider/receipt.h"

static json_t *sample(void)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I}", "providerActorId",
			 "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23", "consumerActorId",
			 "0x0000000000000000000000000000000000000001", "leaseId", "lea_1", "resourceId", "res_1", "kind",
			 "model", "ledgerId", "led_1", "entryHash", "sha256:00", "unit", "token", "quantity", "42", "cost",
			 "84", "currency", "CLAW", "requestId", "req_1", "issuedAt", (json_int_t)1760000000000);
}

static void t_receipt(void **s)
{
	struct node_key k, other;
	uint8_t seed[32] = {1}, seed2[32] = {2};
	node_key_from_seed(seed, &k);
	node_key_from_seed(seed2, &other);
	char peer[PEERID_STR_MAX], peer2[PEERID_STR_MAX];
	peerid_string_from_ed25519(k.pk, peer, sizeof peer);
	peerid_string_from_ed25519(other.pk, peer2, sizeof peer2);
	cg_err e;
	json_t *r = sample();
	assert_int_equal(receipt_sign(&k, r, &e), 0);
	assert_string_equal(json_string_value(json_object_get(r, "providerPeerId")), peer);
	assert_int_equal(receipt_verify(r, NULL, &e), 0);
	assert_int_equal(receipt_verify(r, peer, &e), 0);
	assert_int_equal(receipt_verify(r, peer2, &e), -CG_E_FORBIDDEN);
	/* Header form round trip. */
	char *h = receipt_to_header(r, &e);
	assert_non_null(h);
	assert_null(strchr(h, '='));
	json_t *back = NULL;
	assert_int_equal(receipt_from_header(h, strlen(h), &back, &e), 0);
	assert_true(json_equal(back, r));
	assert_int_equal(receipt_verify(back, peer, &e), 0);
	free(h);
	json_decref(back);
	/* Every field is covered: changing any one breaks the signature. */
	const char *k2;
	json_t *v;
	json_object_foreach(r, k2, v) {
		if (!strcmp(k2, "signature") || !strcmp(k2, "providerPeerId"))
			continue;
		json_t *t = json_deep_copy(r);
		if (json_is_string(v))
			json_object_set_new(t, k2, json_string(!strcmp(k2, "quantity") || !strcmp(k2, "cost") ? "43" : "zz"));
		else
			json_object_set_new(t, k2, json_integer(json_integer_value(v) + 1));
		int rc = receipt_verify(t, NULL, &e);
		assert_true(rc == -CG_E_FORBIDDEN || rc == -CG_E_INVALID_ARGUMENT);
		json_decref(t);
	}
	/* A receipt re-signed by another key names that key: it verifies only without expectations. */
	json_t *t = json_deep_copy(r);
	assert_int_equal(receipt_sign(&other, t, &e), 0);
	assert_int_equal(receipt_verify(t, peer, &e), -CG_E_FORBIDDEN);
	/* Swapping in the real provider's peer id with the other key's signature fails. */
	json_object_set_new(t, "providerPeerId", json_string(peer));
	assert_int_equal(receipt_verify(t, NULL, &e), -CG_E_FORBIDDEN);
	json_decref(t);
	/* Strict shape. */
	t = json_deep_copy(r);
	json_object_set_new(t, "extra", json_true());
	assert_int_equal(receipt_verify(t, NULL, &e), -CG_E_INVALID_ARGUMENT);
	json_decref(t);
	t = json_deep_copy(r);
	json_object_set_new(t, "cost", json_string("01"));
	assert_int_equal(receipt_verify(t, NULL, &e), -CG_E_INVALID_ARGUMENT);
	json_decref(t);
	assert_int_equal(receipt_from_header("!!!", 3, &back, &e), -CG_E_INVALID_ARGUMENT);
	assert_int_equal(receipt_from_header("W10", 3, &back, &e), -CG_E_INVALID_ARGUMENT); /* "[]" */
	json_decref(r);
}

static void t_leasereq(void **s)
{
	struct wallet consumer, provider, other;
	uint8_t a[32] = {7}, b[32] = {8}, c[32] = {9};
	cg_err e;
	assert_int_equal(wallet_from_secret(a, &consumer, &e), 0);
	assert_int_equal(wallet_from_secret(b, &provider, &e), 0);
	assert_int_equal(wallet_from_secret(c, &other, &e), 0);
	int64_t now = 1760000000000;
	json_t *body = NULL;
	assert_int_equal(leasereq_build(&consumer, provider.address, "res_chat", 60000, "1000", now, &body, &e), 0);
	char *s1 = json_dumps(body, JSON_COMPACT);
	struct leasereq q;
	assert_int_equal(leasereq_verify(s1, strlen(s1), provider.address, now + 1000, 300000, &q, &e), 0);
	assert_string_equal(q.consumer, consumer.address);
	assert_string_equal(q.resource_id, "res_chat");
	assert_int_equal(q.ttl_ms, 60000);
	assert_string_equal(q.max_cost, "1000");
	assert_int_equal(strlen(q.nonce), 32);
	/* Lower-case addresses are the same provider. */
	char lower[43];
	for (int i = 0; i < 43; i++)
		lower[i] = (char)(provider.address[i] >= 'A' && provider.address[i] <= 'F' ? provider.address[i] + 32
											   : provider.address[i]);
	assert_int_equal(leasereq_verify(s1, strlen(s1), lower, now, 300000, &q, &e), 0);
	/* Stale and future timestamps. */
	assert_int_equal(leasereq_verify(s1, strlen(s1), provider.address, now + 300001, 300000, &q, &e), -CG_E_EXPIRED);
	assert_int_equal(leasereq_verify(s1, strlen(s1), provider.address, now - 300001, 300000, &q, &e), -CG_E_EXPIRED);
	/* Addressed to someone else. */
	assert_int_equal(leasereq_verify(s1, strlen(s1), other.address, now, 300000, &q, &e), -CG_E_FORBIDDEN);
	/* Tampering with any signed field breaks the signature (the signer no longer matches). */
	static const char *const fields[] = {"resourceId", "ttlMs", "maxCost", "nonce", "timestamp", NULL};
	for (int i = 0; fields[i]; i++) {
		json_t *t = json_deep_copy(body);
		json_t *req = json_object_get(t, "request");
		json_t *v = json_object_get(req, fields[i]);
		if (json_is_integer(v))
			json_object_set_new(req, fields[i], json_integer(json_integer_value(v) + 1));
		else if (!strcmp(fields[i], "nonce"))
			json_object_set_new(req, fields[i], json_string("00000000000000000000000000000000"));
		else
			json_object_set_new(req, fields[i], json_string("2000"));
		char *s2 = json_dumps(t, JSON_COMPACT);
		assert_int_equal(leasereq_verify(s2, strlen(s2), provider.address, now, 300000, &q, &e), -CG_E_AUTH_REQUIRED);
		free(s2);
		json_decref(t);
	}
	/* Claiming to be another consumer. */
	json_t *t = json_deep_copy(body);
	json_object_set_new(json_object_get(t, "request"), "consumer", json_string(other.address));
	char *s3 = json_dumps(t, JSON_COMPACT);
	assert_int_equal(leasereq_verify(s3, strlen(s3), provider.address, now, 300000, &q, &e), -CG_E_AUTH_REQUIRED);
	free(s3);
	json_decref(t);
	/* Malformed. */
	static const char *const bad[] = {"", "null", "[]", "{}", "{\"request\":{},\"signature\":\"0x\"}",
					  "{\"request\":1,\"signature\":1}", NULL};
	for (int i = 0; bad[i]; i++)
		assert_int_equal(leasereq_verify(bad[i], strlen(bad[i]), provider.address, now, 300000, &q, &e),
				 -CG_E_INVALID_ARGUMENT);
	t = json_deep_copy(body);
	json_object_set_new(t, "extra", json_true());
	s3 = json_dumps(t, JSON_COMPACT);
	assert_int_equal(leasereq_verify(s3, strlen(s3), provider.address, now, 300000, &q, &e), -CG_E_INVALID_ARGUMENT);
	free(s3);
	json_decref(t);
	free(s1);
	json_decref(body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_receipt),
		cmocka_unit_test(t_leasereq),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
