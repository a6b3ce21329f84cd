/* eip712: the EIP's "Mail" example (encodeType, domain separator, digest 0xbe609aee… and cow's
 * signature), the array variant used by eth-sig-util/ethers test suites (digest 0xa85c2e2b…), a bytes8
 * struct (0x2a3e6489…), and a voucher-like struct with every field kind whose digest and signature were
 * computed with ethers 6.17.0 (TypedDataEncoder.hash / Wallet.signTypedData); then range and shape
 * errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/enc.h"
#include "crypto/eip712.h"
#include "crypto/hash.h"

static const char DOMAIN_TYPES[] =
    "\"EIP712Domain\":[{\"name\":\"name\",\"type\":\"string\"},{\"name\":\"version\",\"type\":\"string\"},"
    "{\"name\":\"chainId\",\"type\":\"uint256\"},{\"name\":\"verifyingContract\",\"type\":\"address\"}]";
static const char MAIL_DOMAIN[] = "\"domain\":{\"name\":\"Ether Mail\",\"version\":\"1\",\"chainId\":1,"
                                  "\"verifyingContract\":\"0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC\"}";

static json_t *load(const char *fmt, ...)
{
	char text[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	json_error_t je;
	json_t *v = json_loads(text, 0, &je);
	if (!v)
		fail_msg("bad test JSON: %s at %d", je.text, je.position);
	return v;
}

static void hexeq(const uint8_t *b, size_t n, const char *want)
{
	char h[256];
	hex_encode(h, b, n);
	assert_string_equal(h, want);
}

static json_t *mail(void)
{
	return load(
	    "{\"types\":{%s,\"Person\":[{\"name\":\"name\",\"type\":\"string\"},{\"name\":\"wallet\",\"type\":"
	    "\"address\"}],\"Mail\":[{\"name\":\"from\",\"type\":\"Person\"},{\"name\":\"to\",\"type\":\"Person\"},"
	    "{\"name\":\"contents\",\"type\":\"string\"}]},\"primaryType\":\"Mail\",%s,\"message\":{\"from\":{"
	    "\"name\":\"Cow\",\"wallet\":\"0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826\"},\"to\":{\"name\":\"Bob\","
	    "\"wallet\":\"0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB\"},\"contents\":\"Hello, Bob!\"}}",
	    DOMAIN_TYPES, MAIL_DOMAIN);
}

static void t_mail(void **s)
{
	(void)s;
	json_t *t = mail();
	cg_err e;
	char *et = eip712_encode_type(json_object_get(t, "types"), "Mail", &e);
	assert_string_equal(et, "Mail(Person from,Person to,string contents)Person(string name,address wallet)");
	uint8_t h[32];
	keccak256(h, et, strlen(et));
	hexeq(h, 32, "a0cedeb2dc280ba39b857546d74f5549c3a1d7bdc2dd96bf881f76108e23dac2");
	free(et);
	assert_int_equal(eip712_domain_separator(t, h, &e), 0);
	hexeq(h, 32, "f2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f");
	assert_int_equal(eip712_hash_struct(json_object_get(t, "types"), "Mail", json_object_get(t, "message"), h, &e),
	                 0);
	hexeq(h, 32, "c52c0ee5d84264471806290a3f2c4cecfc5490626bf912d01f240d7a274b371e");
	assert_int_equal(eip712_hash(t, h, &e), 0);
	hexeq(h, 32, "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2");

	/* cow's key is keccak256("cow"); the EIP gives v=28, r=0x4355…1c9d, s=0x0729…1562 */
	uint8_t sk[32], sig[65];
	keccak256(sk, "cow", 3);
	struct wallet w;
	assert_int_equal(wallet_from_secret(sk, &w, &e), 0);
	assert_string_equal(w.address, "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826");
	assert_int_equal(eip712_sign(&w, t, sig, &e), 0);
	hexeq(sig, 32, "4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d");
	hexeq(sig + 32, 32, "07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b91562");
	assert_int_equal(sig[64], 28);
	uint8_t addr[20];
	assert_int_equal(eip712_recover(t, sig, addr, &e), 0);
	assert_memory_equal(addr, w.addr, 20);
	/* changing any signed field changes the signer */
	json_object_set_new(json_object_get(t, "message"), "contents", json_string("Hello, Bob?"));
	assert_int_equal(eip712_recover(t, sig, addr, &e), 0);
	assert_memory_not_equal(addr, w.addr, 20);
	wallet_wipe(&w);
	json_decref(t);
}

static void t_mail_arrays(void **s)
{
	(void)s;
	json_t *t = load(
	    "{\"types\":{%s,\"Person\":[{\"name\":\"name\",\"type\":\"string\"},{\"name\":\"wallets\",\"type\":"
	    "\"address[]\"}],\"Mail\":[{\"name\":\"from\",\"type\":\"Person\"},{\"name\":\"to\",\"type\":\"Person[]\"},"
	    "{\"name\":\"contents\",\"type\":\"string\"}],\"Group\":[{\"name\":\"name\",\"type\":\"string\"},{\"name\":"
	    "\"members\",\"type\":\"Person[]\"}]},\"primaryType\":\"Mail\",%s,\"message\":{\"from\":{\"name\":\"Cow\","
	    "\"wallets\":[\"0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826\","
	    "\"0xDeaDbeefdEAdbeefdEadbEEFdeadbeEFdEaDbeeF\"]},"
	    "\"to\":[{\"name\":\"Bob\",\"wallets\":[\"0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB\","
	    "\"0xB0BdaBea57B0BDABeA57b0bdABEA57b0BDabEa57\",\"0xB0B0b0b0b0b0B000000000000000000000000000\"]}],"
	    "\"contents\":\"Hello, Bob!\"}}",
	    DOMAIN_TYPES, MAIL_DOMAIN);
	cg_err e;
	json_t *types = json_object_get(t, "types");
	char *et = eip712_encode_type(types, "Person", &e);
	uint8_t h[32];
	keccak256(h, et, strlen(et));
	hexeq(h, 32, "fabfe1ed996349fc6027709802be19d047da1aa5d6894ff5f6486d92db2e6860");
	free(et);
	et = eip712_encode_type(types, "Mail", &e);
	assert_string_equal(et, "Mail(Person from,Person[] to,string contents)Person(string name,address[] wallets)");
	keccak256(h, et, strlen(et));
	hexeq(h, 32, "4bd8a9a2b93427bb184aca81e24beb30ffa3c747e2a33d4225ec08bf12e2e753");
	free(et);
	assert_int_equal(
	    eip712_hash_struct(types, "Person", json_object_get(json_object_get(t, "message"), "from"), h, &e), 0);
	hexeq(h, 32, "9b4846dd48b866f0ac54d61b9b21a9e746f921cefa4ee94c4c0a1c49c774f67f");
	assert_int_equal(eip712_hash_struct(types, "Mail", json_object_get(t, "message"), h, &e), 0);
	hexeq(h, 32, "eb4221181ff3f1a83ea7313993ca9218496e424604ba9492bb4052c03d5c3df8");
	assert_int_equal(eip712_hash(t, h, &e), 0);
	hexeq(h, 32, "a85c2e2b118698e88db68a8105b794a8cc7cec074e89ef991cb4f5f533819cc2");
	json_decref(t);
}

static void t_bytes8(void **s)
{
	(void)s;
	json_t *t =
	    load("{\"types\":{%s,\"Person\":[{\"name\":\"name\",\"type\":\"string\"},{\"name\":\"wallet\","
	         "\"type\":\"address\"},{\"name\":\"count\",\"type\":\"bytes8\"}]},\"primaryType\":\"Person\",%s,"
	         "\"message\":{\"name\":\"Bob\",\"wallet\":\"0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB\","
	         "\"count\":\"0x1122334455667788\"}}",
	         DOMAIN_TYPES, MAIL_DOMAIN);
	uint8_t h[32];
	cg_err e;
	assert_int_equal(eip712_hash(t, h, &e), 0);
	hexeq(h, 32, "2a3e64893ed4ba30ea34dbff3b0aa08c7677876cfdf7112362eccf3111f58d1d");
	/* bytes8 with 7 bytes is refused (no silent padding) */
	json_object_set_new(json_object_get(t, "message"), "count", json_string("0x11223344556677"));
	assert_int_equal(eip712_hash(t, h, &e), -CG_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "Person.count"));
	json_decref(t);
}

/* Every field kind, the domain type derived from the domain's keys; expected values from ethers 6.17.0. */
static const char VOUCHER[] =
    "{\"types\":{\"Voucher\":[{\"name\":\"orderId\",\"type\":\"string\"},{\"name\":\"cumulative\",\"type\":\"uint256\"}"
    ","
    "{\"name\":\"delta\",\"type\":\"int64\"},{\"name\":\"neg\",\"type\":\"int256\"},{\"name\":\"small\",\"type\":"
    "\"int8\"},"
    "{\"name\":\"flag\",\"type\":\"bool\"},{\"name\":\"data\",\"type\":\"bytes\"},{\"name\":\"tag\",\"type\":"
    "\"bytes32\"},"
    "{\"name\":\"grid\",\"type\":\"uint8[2][]\"},{\"name\":\"payee\",\"type\":\"Party\"}],"
    "\"Party\":[{\"name\":\"who\",\"type\":\"address\"},{\"name\":\"labels\",\"type\":\"string[]\"}]},"
    "\"primaryType\":\"Voucher\",\"domain\":{\"name\":\"clawgrid\",\"version\":\"1\",\"chainId\":31337,"
    "\"verifyingContract\":\"0x5FbDB2315678afecb367f032d93F642f64180aa3\"},"
    "\"message\":{\"orderId\":\"ord_123\",\"cumulative\":"
    "\"115792089237316195423570985008687907853269984665640564039457584007913129639935\",\"delta\":-5,"
    "\"neg\":\"-57896044618658097711785492504343953926634992332820282019728792003956564819968\",\"small\":-128,"
    "\"flag\":true,\"data\":\"0xdeadbeef\",\"tag\":"
    "\"0x1111111111111111111111111111111111111111111111111111111111111111\","
    "\"grid\":[[1,2],[3,255]],\"payee\":{\"who\":\"0x2c7536E3605D9C16a7a3D7b1898e529396a65c23\","
    "\"labels\":[\"a\",\"bc\"]}}}";

static void t_ethers_all_kinds(void **s)
{
	(void)s;
	json_t *t = load("%s", VOUCHER);
	cg_err e;
	char *et = eip712_encode_type(json_object_get(t, "types"), "Voucher", &e);
	assert_string_equal(et,
	                    "Voucher(string orderId,uint256 cumulative,int64 delta,int256 neg,int8 small,bool flag,"
	                    "bytes data,bytes32 tag,uint8[2][] grid,Party payee)Party(address who,string[] labels)");
	free(et);
	uint8_t h[32], sig[65];
	assert_int_equal(eip712_domain_separator(t, h, &e), 0);
	hexeq(h, 32, "d60a1404b69aa4f689210e91d4abf34db2372d2f6844593f13dd82727d2f21f7");
	assert_int_equal(eip712_hash(t, h, &e), 0);
	hexeq(h, 32, "69399786575dcf2a525071eaeff1090e5c431c896adbdc7258f3a49d5a691cda");
	uint8_t sk[32];
	assert_int_equal(
	    hex_decode(sk, 32, "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318", 64, false), 0);
	struct wallet w;
	assert_int_equal(wallet_from_secret(sk, &w, &e), 0);
	assert_int_equal(eip712_sign(&w, t, sig, &e), 0);
	char hex[133];
	eth_sig_to_hex(hex, sig);
	assert_string_equal(
	    hex, "0x1aeefa535ca214e679c13dde21d8a08d05950f57aec6ed5bc76764fbe2c8dea93fae0555d00f11b9e21168d4b0"
	         "3da4be38d7cda09750e45a91094dcde78443941c");
	/* integers as decimal strings, hex strings or JSON numbers hash the same */
	json_t *m = json_object_get(t, "message");
	json_object_set_new(m, "delta", json_string("-5"));
	json_object_set_new(m, "cumulative",
	                    json_string("0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"));
	uint8_t h2[32];
	assert_int_equal(eip712_hash(t, h2, &e), 0);
	assert_memory_equal(h, h2, 32);
	wallet_wipe(&w);
	json_decref(t);
}

/* Domain with salt and a hex chain id, no EIP712Domain in types (ethers 6.17.0 gives 0xe888dad4…). */
static void t_ethers_salt_domain(void **s)
{
	(void)s;
	json_t *t = load(
	    "{\"types\":{\"Voucher\":[{\"name\":\"orderId\",\"type\":\"string\"},{\"name\":\"cumulative\","
	    "\"type\":\"uint256\"},{\"name\":\"delta\",\"type\":\"int64\"},{\"name\":\"flag\",\"type\":\"bool\"},"
	    "{\"name\":\"data\",\"type\":\"bytes\"},{\"name\":\"tag\",\"type\":\"bytes4\"},{\"name\":\"grid\","
	    "\"type\":\"uint8[2][]\"}]},\"primaryType\":\"Voucher\",\"domain\":{\"name\":\"clawgrid\","
	    "\"chainId\":\"0x7a69\",\"salt\":\"0x1111111111111111111111111111111111111111111111111111111111111111\"},"
	    "\"message\":{\"orderId\":\"ord_1\",\"cumulative\":\"1000\",\"delta\":-5,\"flag\":true,\"data\":"
	    "\"0xdeadbeef\",\"tag\":\"0x01020304\",\"grid\":[[1,2]]}}");
	uint8_t h[32];
	cg_err e;
	assert_int_equal(eip712_hash(t, h, &e), 0);
	hexeq(h, 32, "e888dad4804a4df37ddc1b0a153b4d63727524cb58d760011ebdf85bf1bdec63");
	json_decref(t);
}

static void expect_bad(const char *field, json_t *value, const char *msg_part)
{
	json_t *t = load("%s", VOUCHER);
	assert_non_null(value);
	char *shown = json_dumps(value, JSON_ENCODE_ANY);
	json_object_set_new(json_object_get(t, "message"), field, value);
	uint8_t h[32];
	cg_err e;
	if (eip712_hash(t, h, &e) != -CG_E_INVALID_ARGUMENT)
		fail_msg("%s = %s accepted", field, shown);
	free(shown);
	if (!strstr(e.msg, msg_part))
		fail_msg("%s: message \"%s\" lacks \"%s\"", field, e.msg, msg_part);
	json_decref(t);
}

static void t_ranges_and_shapes(void **s)
{
	(void)s;
	/* uint256 overflow, negative uint, int8 bounds, int256 min - 1 */
	expect_bad("cumulative",
	           json_string("115792089237316195423570985008687907853269984665640564039457584007913129639936"),
	           "Voucher.cumulative");
	expect_bad("cumulative", json_string("-1"), "range");
	expect_bad("cumulative", json_real(1.5), "integer");
	expect_bad("cumulative", json_string("12a"), "integer");
	expect_bad("cumulative", json_true(), "integer");
	expect_bad("small", json_integer(-129), "range");
	expect_bad("small", json_integer(128), "range");
	expect_bad("neg", json_string("-57896044618658097711785492504343953926634992332820282019728792003956564819969"),
	           "range");
	expect_bad("flag", json_integer(1), "true or false");
	expect_bad("data", json_string("0xabc"), "even number");
	expect_bad("data", json_string("deadbeef"), "0x");
	expect_bad("tag", json_string("0x11"), "length");
	expect_bad("grid", json_loads("[[1,2],[3]]", 0, NULL), "fixed-size");
	expect_bad("grid", json_loads("[[1,256],[3,4]]", 0, NULL), "Voucher.grid");
	expect_bad("grid", json_string("x"), "array");
	expect_bad("payee", json_pack("{s:s,s:[]}", "who", "0x2c7536E3605D9C16a7a3D7b1898e529396a65c24", "labels"),
	           "checksum");
	expect_bad("payee", json_pack("{s:[]}", "labels"), "Voucher.payee.who: missing");
	expect_bad("orderId", json_integer(5), "string");

	/* int8 edges are accepted */
	json_t *t = load("%s", VOUCHER);
	uint8_t h[32];
	cg_err e;
	json_object_set_new(json_object_get(t, "message"), "small", json_integer(127));
	assert_int_equal(eip712_hash(t, h, &e), 0);
	json_decref(t);

	/* structural errors */
	const char *bad_docs[] = {
	    "[]",
	    "{\"types\":{},\"primaryType\":\"X\",\"domain\":{},\"message\":{}}",
	    "{\"types\":{\"X\":[{\"name\":\"a\",\"type\":\"uint7\"}]},\"primaryType\":\"X\",\"domain\":{},"
	    "\"message\":{\"a\":1}}",
	    "{\"types\":{\"X\":[{\"name\":\"a\",\"type\":\"Y\"}]},\"primaryType\":\"X\",\"domain\":{},\"message\":{"
	    "\"a\":1}}",
	    "{\"types\":{\"X\":[{\"name\":\"a\"}]},\"primaryType\":\"X\",\"domain\":{},\"message\":{\"a\":1}}",
	    "{\"types\":{\"X\":[{\"name\":\"a\",\"type\":\"uint8\"}]},\"primaryType\":\"X\",\"domain\":{\"foo\":1},"
	    "\"message\":{\"a\":1}}",
	    "{\"types\":{\"X\":[{\"name\":\"a\",\"type\":\"uint8\"}]},\"primaryType\":\"X\",\"domain\":{}}",
	    "{\"types\":{\"X\":[{\"name\":\"a\",\"type\":\"uint8[\"}]},\"primaryType\":\"X\",\"domain\":{},"
	    "\"message\":{\"a\":[]}}",
	    "{\"types\":{\"X\":[{\"name\":\"a\",\"type\":\"bytes33\"}]},\"primaryType\":\"X\",\"domain\":{},"
	    "\"message\":{\"a\":\"0x00\"}}",
	    /* names that would make encodeType ambiguous, also in a struct only reached via an empty array */
	    "{\"types\":{\"X\":[{\"name\":\"a\",\"type\":\"Y[]\"}],\"Y\":[{\"name\":\"b\",\"type\":\"uint8 "
	    "c,uint8\"}]},"
	    "\"primaryType\":\"X\",\"domain\":{},\"message\":{\"a\":[]}}",
	    "{\"types\":{\"X(uint8 a)Y\":[{\"name\":\"a\",\"type\":\"uint8\"}]},\"primaryType\":\"X(uint8 a)Y\","
	    "\"domain\":{},\"message\":{\"a\":1}}",
	    "{\"types\":{\"X\":[{\"name\":\"a b\",\"type\":\"uint8\"}]},\"primaryType\":\"X\",\"domain\":{},"
	    "\"message\":{\"a b\":1}}",
	};
	for (size_t i = 0; i < sizeof bad_docs / sizeof bad_docs[0]; i++) {
		json_t *d = json_loads(bad_docs[i], 0, NULL);
		assert_non_null(d);
		if (eip712_hash(d, h, &e) != -CG_E_INVALID_ARGUMENT)
			fail_msg("accepted: %s", bad_docs[i]);
		json_decref(d);
	}
}

static void t_recursive_type(void **s)
{
	(void)s;
	/* A self-referencing type terminates (encodeType lists it once); deep data hits the depth cap. */
	json_t *t =
	    load("{\"types\":{\"Node\":[{\"name\":\"v\",\"type\":\"uint8\"},{\"name\":\"kids\",\"type\":\"Node[]\"}]},"
	         "\"primaryType\":\"Node\",\"domain\":{\"name\":\"x\"},\"message\":{\"v\":1,\"kids\":[{\"v\":2,"
	         "\"kids\":[]}]}}");
	cg_err e;
	char *et = eip712_encode_type(json_object_get(t, "types"), "Node", &e);
	assert_string_equal(et, "Node(uint8 v,Node[] kids)");
	free(et);
	uint8_t h[32];
	assert_int_equal(eip712_hash(t, h, &e), 0);
	json_t *deep = json_pack("{s:i,s:[]}", "v", 0, "kids");
	for (int i = 0; i < 40; i++)
		deep = json_pack("{s:i,s:[o]}", "v", i, "kids", deep);
	json_object_set_new(t, "message", deep);
	assert_int_equal(eip712_hash(t, h, &e), -CG_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "deeply"));
	/* primaryType EIP712Domain hashes the domain alone */
	json_object_set_new(t, "primaryType", json_string("EIP712Domain"));
	assert_int_equal(eip712_hash(t, h, &e), 0);
	uint8_t dom[32], pre[66], want[32];
	assert_int_equal(eip712_domain_separator(t, dom, &e), 0);
	pre[0] = 0x19;
	pre[1] = 0x01;
	memcpy(pre + 2, dom, 32);
	keccak256(want, pre, 34);
	assert_memory_equal(h, want, 32);
	json_decref(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(t_mail),
	    cmocka_unit_test(t_mail_arrays),
	    cmocka_unit_test(t_bytes8),
	    cmocka_unit_test(t_ethers_all_kinds),
	    cmocka_unit_test(t_ethers_salt_domain),
	    cmocka_unit_test(t_ranges_and_shapes),
	    cmocka_unit_test(t_recursive_type),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
