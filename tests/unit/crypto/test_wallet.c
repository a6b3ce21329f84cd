/* wallet: secp256k1 + Ethereum helpers against published vectors — web3.js accounts.sign (private key
 * 0x4c08…2318), the EIP-55 test addresses, EIP-191 hashing, recovery with every v form, refusal of
 * high-s twins, and the wallet key file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/amount.h"
#include "base/enc.h"
#include "crypto/wallet.h"

static const char SK_HEX[] = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
static const char ADDR[] = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23";
static const char SIG_SOME_DATA[] =
    "0xb91467e570a6466aa9e9876cbcd013baba02900b8979d43fe208a4a4f339f5fd6007e74cd82e037b800186422fc2da167c747ef0"
    "45e5d18a5f5d4300f8e1a0291c";

static void unhex(uint8_t *out, size_t n, const char *h)
{
	assert_int_equal(hex_decode(out, n, h, strlen(h), true), 0);
}

static void load(struct wallet *w)
{
	uint8_t sk[32];
	cg_err e;
	unhex(sk, 32, SK_HEX);
	assert_int_equal(wallet_from_secret(sk, w, &e), 0);
}

static void t_web3js_vector(void **s)
{
	(void)s;
	struct wallet w;
	load(&w);
	assert_string_equal(w.address, ADDR);
	uint8_t h[32], want[32], sig[65];
	eip191_hash(h, "Some data", 9);
	unhex(want, 32, "1da44b586eb0729ff70a73c326926f6ed5a25f5b056e7f47fbc6e58d86871655");
	assert_memory_equal(h, want, 32);
	/* RFC 6979 deterministic and low-s: the exact published signature */
	assert_int_equal(wallet_personal_sign(&w, "Some data", 9, sig), 0);
	char hex[133];
	eth_sig_to_hex(hex, sig);
	assert_string_equal(hex, SIG_SOME_DATA);
	uint8_t addr[20];
	assert_int_equal(eth_recover(h, sig, addr), 0);
	assert_memory_equal(addr, w.addr, 20);
	char out[43];
	cg_err e;
	assert_int_equal(eip191_recover("Some data", 9, SIG_SOME_DATA, out, &e), 0);
	assert_string_equal(out, ADDR);
	/* another message recovers someone else */
	assert_int_equal(eip191_recover("Some datb", 9, SIG_SOME_DATA, out, &e), 0);
	assert_string_not_equal(out, ADDR);
	wallet_wipe(&w);
	static const uint8_t zero[sizeof w];
	assert_memory_equal(&w, zero, sizeof w);
}

static void t_eip55(void **s)
{
	(void)s;
	/* EIP-55 "Test Cases": all caps, all lower, normal — each is its own checksum form */
	const char *cases[] = {
	    "0x52908400098527886E0F7030069857D2E4169EE7", "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
	    "0xde709f2102306220921060314715629080e2fb77", "0x27b1fdb04752bbc536007a920d24acb045561c26",
	    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
	    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB", "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb"};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint8_t a[20];
		char out[43];
		cg_err e;
		assert_int_equal(eth_address_parse(cases[i], a, &e), 0);
		eth_address_checksum(out, a);
		assert_string_equal(out, cases[i]);
	}
	uint8_t a[20];
	cg_err e;
	/* all-lower and all-upper forms of a mixed-case address carry no checksum and are accepted */
	assert_int_equal(eth_address_parse("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", a, &e), 0);
	assert_int_equal(eth_address_parse("0x5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED", a, &e), 0);
	/* one flipped letter in a mixed-case address is a checksum error */
	assert_int_equal(eth_address_parse("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", a, &e),
	                 -CG_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "checksum"));
	const char *bad[] = {"",
	                     "0x",
	                     "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
	                     "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe",
	                     "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAedd",
	                     "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeg"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(eth_address_parse(bad[i], a, &e), -CG_E_INVALID_ARGUMENT);
	assert_int_equal(eth_address_parse(NULL, a, &e), -CG_E_INVALID_ARGUMENT);
}

static void t_recover_forms(void **s)
{
	(void)s;
	uint8_t h[32], sig[65], addr[20];
	struct wallet w;
	load(&w);
	eip191_hash(h, "Some data", 9);
	assert_int_equal(eth_sig_from_hex(SIG_SOME_DATA, sig), 0);
	/* v as 27/28 or 0/1 */
	sig[64] -= 27;
	assert_int_equal(eth_recover(h, sig, addr), 0);
	assert_memory_equal(addr, w.addr, 20);
	sig[64] = 29;
	assert_int_equal(eth_recover(h, sig, addr), -1);
	sig[64] = 2;
	assert_int_equal(eth_recover(h, sig, addr), -1);
	sig[64] = 28;

	/* the malleable twin (r, n - s, flipped v) is a valid ECDSA signature for the same key, but not
	 * accepted (EIP-2 low-s) */
	u256 n, sv, hs;
	const char *N = "0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";
	assert_int_equal(u256_parse_hex(N, strlen(N), &n), 0);
	u256_from_be32(&sv, sig + 32);
	assert_int_equal(u256_sub(&hs, &n, &sv), 0);
	uint8_t twin[65];
	memcpy(twin, sig, 32);
	u256_to_be32(&hs, twin + 32);
	twin[64] = sig[64] == 27 ? 28 : 27;
	assert_int_equal(eth_recover(h, twin, addr), -1);
	twin[64] = sig[64];
	assert_int_equal(eth_recover(h, twin, addr), -1);

	/* r = 0, s = 0 and r >= n are rejected */
	uint8_t z[65] = {0};
	z[64] = 27;
	assert_int_equal(eth_recover(h, z, addr), -1);
	memset(z, 0xff, 64);
	assert_int_equal(eth_recover(h, z, addr), -1);

	/* malformed hex */
	char out[43];
	cg_err e;
	assert_int_equal(eip191_recover("x", 1, "0x1234", out, &e), -CG_E_INVALID_ARGUMENT);
	assert_int_equal(eip191_recover("x", 1, NULL, out, &e), -CG_E_INVALID_ARGUMENT);
	char zs[133];
	memset(zs, '0', 132);
	zs[1] = 'x';
	zs[132] = '\0';
	assert_int_equal(eip191_recover("x", 1, zs, out, &e), -CG_E_AUTH_REQUIRED);
	wallet_wipe(&w);
}

static void t_sign_roundtrip(void **s)
{
	(void)s;
	struct wallet w;
	wallet_generate(&w);
	uint8_t a[20];
	cg_err e;
	assert_int_equal(eth_address_parse(w.address, a, &e), 0);
	assert_memory_equal(a, w.addr, 20);
	for (int i = 0; i < 20; i++) {
		uint8_t h[32], sig[65], addr[20];
		char m[32];
		int n = snprintf(m, sizeof m, "message %d", i);
		eip191_hash(h, m, (size_t)n);
		assert_int_equal(wallet_sign_hash(&w, h, sig), 0);
		assert_true(sig[64] == 27 || sig[64] == 28);
		assert_true(sig[32] < 0x80); /* low-s: s <= n/2 < 2^255 */
		assert_int_equal(eth_recover(h, sig, addr), 0);
		assert_memory_equal(addr, w.addr, 20);
		h[0] ^= 1;
		assert_int_equal(eth_recover(h, sig, addr) == 0 && memcmp(addr, w.addr, 20) == 0, 0);
	}
	/* invalid secrets */
	uint8_t sk[32] = {0};
	assert_int_equal(wallet_from_secret(sk, &w, &e), -CG_E_INVALID_ARGUMENT);
	unhex(sk, 32, "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141");
	assert_int_equal(wallet_from_secret(sk, &w, &e), -CG_E_INVALID_ARGUMENT);
	wallet_wipe(&w);
}

static void t_wallet_file(void **s)
{
	(void)s;
	char dir[] = "/tmp/cg-wallet-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char p[128];
	snprintf(p, sizeof p, "%s/wallet.key", dir);
	struct wallet w1, w2;
	cg_err e;
	assert_int_equal(wallet_load(p, false, &w1, &e), -CG_E_NOT_FOUND);
	assert_int_equal(wallet_load(p, true, &w1, &e), 0);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(wallet_load(p, true, &w2, &e), 0);
	assert_string_equal(w1.address, w2.address);
	assert_memory_equal(w1.sk, w2.sk, 32);
	assert_int_equal(chmod(p, 0640), 0);
	assert_int_equal(wallet_load(p, false, &w2, &e), -CG_E_FORBIDDEN);
	unlink(p);
	/* the "0x<hex>" form other tools export, and the tagged form */
	FILE *f = fopen(p, "we");
	assert_non_null(f);
	fprintf(f, "0x%s\n", SK_HEX);
	fclose(f);
	assert_int_equal(chmod(p, 0600), 0);
	assert_int_equal(wallet_load(p, false, &w2, &e), 0);
	assert_string_equal(w2.address, ADDR);
	f = fopen(p, "we");
	fprintf(f, "secp256k1:%s", SK_HEX);
	fclose(f);
	assert_int_equal(wallet_load(p, false, &w2, &e), 0);
	assert_string_equal(w2.address, ADDR);
	f = fopen(p, "we");
	fprintf(f, "secp256k1:%s\n", "0000000000000000000000000000000000000000000000000000000000000000");
	fclose(f);
	assert_int_equal(wallet_load(p, false, &w2, &e), -CG_E_INVALID_ARGUMENT);
	f = fopen(p, "we");
	fprintf(f, "ed25519:%s\n", SK_HEX);
	fclose(f);
	assert_int_equal(wallet_load(p, false, &w2, &e), -CG_E_INVALID_ARGUMENT);
	unlink(p);
	rmdir(dir);
	wallet_wipe(&w1);
	wallet_wipe(&w2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(t_web3js_vector),  cmocka_unit_test(t_eip55),       cmocka_unit_test(t_recover_forms),
	    cmocka_unit_test(t_sign_roundtrip), cmocka_unit_test(t_wallet_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
