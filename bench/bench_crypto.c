/* Crypto benchmarks, each against an anchor measured in the same run:
 *   1. secp256k1 personal_sign and eth_recover (how every voucher and SIWE signature is checked) versus
 *      Ed25519 sign/verify (libsodium), the node key's primitive;
 *   2. EIP-712 voucher digest (type encoding, struct hashing, domain) versus a bare keccak256 of the same
 *      JSON text: the price of typed data;
 *   3. RFC 8785 canonicalization of a ledger-entry-sized object versus jansson's own sorted compact dump;
 *   4. SIWE verification (strict parse + EIP-191 recover + checks) versus eip191_recover alone.
 * Usage: bench_crypto [N] (signature operations; the cheaper ones run 10 N times). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "base/clock.h"
#include "crypto/eip712.h"
#include "crypto/hash.h"
#include "crypto/identity.h"
#include "crypto/jcs.h"
#include "crypto/siwe.h"
#include "crypto/wallet.h"

static void die(const char *what)
{
	fprintf(stderr, "bench_crypto: %s\n", what);
	exit(1);
}

static const char VOUCHER[] =
    "{\"types\":{\"EIP712Domain\":[{\"name\":\"name\",\"type\":\"string\"},{\"name\":\"version\",\"type\":\"string\"},"
    "{\"name\":\"chainId\",\"type\":\"uint256\"},{\"name\":\"verifyingContract\",\"type\":\"address\"}],"
    "\"Voucher\":[{\"name\":\"orderId\",\"type\":\"string\"},{\"name\":\"payer\",\"type\":\"address\"},"
    "{\"name\":\"cumulative\",\"type\":\"uint256\"},{\"name\":\"nonce\",\"type\":\"uint64\"}]},"
    "\"primaryType\":\"Voucher\",\"domain\":{\"name\":\"clawgrid\",\"version\":\"1\",\"chainId\":31337,"
    "\"verifyingContract\":\"0x5FbDB2315678afecb367f032d93F642f64180aa3\"},\"message\":{\"orderId\":"
    "\"ord_9f1c2b7e4d3a\",\"payer\":\"0x2c7536E3605D9C16a7a3D7b1898e529396a65c23\",\"cumulative\":"
    "\"125000000000000000000\",\"nonce\":42}}";

static const char ENTRY[] =
    "{\"entryId\":\"led_5b0c9a\",\"leaseId\":\"lease_77d1\",\"resourceId\":\"res_llama3_70b\",\"kind\":\"usage\","
    "\"quantity\":\"1532\",\"unit\":\"token\",\"cost\":\"4596000000000000\",\"currency\":\"USDC\",\"timestamp\":"
    "1767225600123,\"metadata\":{\"requestId\":\"req_\\u00e9t\\u00e9\",\"duration\":812.5,\"model\":\"llama3-70b\"},"
    "\"prevHash\":\"sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae\"}";

int main(int argc, char **argv)
{
	int n = 2000;
	if ((argc > 1 && sscanf(argv[1], "%d", &n) != 1) || n < 10 || sodium_init() < 0)
		die("usage: bench_crypto [N>=10]");
	struct wallet w;
	wallet_generate(&w);
	struct node_key nk;
	node_key_generate(&nk);
	uint8_t h[32], sig[65], addr[20], esig[64];
	eip191_hash(h, "bench", 5);

	/* 1. secp256k1 vs Ed25519 */
	int64_t t0 = clock_mono_us();
	for (int i = 0; i < n; i++) {
		h[0] = (uint8_t)i;
		if (wallet_sign_hash(&w, h, sig) != 0)
			die("sign");
	}
	int64_t t_sign = clock_mono_us() - t0;
	t0 = clock_mono_us();
	for (int i = 0; i < n; i++)
		if (eth_recover(h, sig, addr) != 0)
			die("recover");
	int64_t t_rec = clock_mono_us() - t0;
	t0 = clock_mono_us();
	for (int i = 0; i < n; i++) {
		h[0] = (uint8_t)i;
		node_key_sign(&nk, h, 32, esig);
	}
	int64_t t_esign = clock_mono_us() - t0;
	t0 = clock_mono_us();
	for (int i = 0; i < n; i++)
		if (!ed25519_verify(nk.pk, h, 32, esig))
			die("ed25519 verify");
	int64_t t_ever = clock_mono_us() - t0;
	printf("crypto.secp256k1_sign:   %.1f us/op (RFC 6979, recoverable)\n", (double)t_sign / n);
	printf("crypto.secp256k1_recover: %.1f us/op (eth_recover)\n", (double)t_rec / n);
	printf("crypto.ed25519_sign:     %.1f us/op; verify %.1f us/op\n", (double)t_esign / n, (double)t_ever / n);
	printf("crypto.recover_vs_ed25519_verify: ratio %.2fx\n", (double)t_rec / (double)t_ever);

	/* 2. EIP-712 digest vs keccak of the same text */
	json_t *typed = json_loads(VOUCHER, 0, NULL);
	if (!typed)
		die("voucher json");
	int m = 10 * n;
	cg_err e;
	t0 = clock_mono_us();
	for (int i = 0; i < m; i++)
		if (eip712_hash(typed, h, &e) != 0)
			die(e.msg);
	int64_t t_712 = clock_mono_us() - t0;
	t0 = clock_mono_us();
	for (int i = 0; i < m; i++)
		keccak256(h, VOUCHER, sizeof VOUCHER - 1);
	int64_t t_kec = clock_mono_us() - t0;
	printf("crypto.eip712_hash:      %.2f us/op (voucher: 4 fields + domain); keccak of its %zu-byte JSON %.2f us, "
	       "ratio %.1fx\n",
	       (double)t_712 / m, sizeof VOUCHER - 1, (double)t_kec / m, (double)t_712 / (double)t_kec);

	/* 3. JCS vs jansson sorted dump */
	json_t *entry = json_loads(ENTRY, 0, NULL);
	if (!entry)
		die("entry json");
	t0 = clock_mono_us();
	for (int i = 0; i < m; i++) {
		char *c = jcs_canonicalize(entry, &e);
		if (!c)
			die(e.msg);
		free(c);
	}
	int64_t t_jcs = clock_mono_us() - t0;
	t0 = clock_mono_us();
	for (int i = 0; i < m; i++)
		free(json_dumps(entry, JSON_COMPACT | JSON_SORT_KEYS));
	int64_t t_dump = clock_mono_us() - t0;
	printf(
	    "crypto.jcs_canonicalize: %.2f us/op (ledger-entry-sized object); json_dumps sorted %.2f us, ratio %.2fx\n",
	    (double)t_jcs / m, (double)t_dump / m, (double)t_jcs / (double)t_dump);

	/* 4. SIWE verify vs the bare EIP-191 recovery it contains */
	struct siwe_msg sm;
	memset(&sm, 0, sizeof sm);
	snprintf(sm.domain, sizeof sm.domain, "provider.example:7879");
	snprintf(sm.address, sizeof sm.address, "%s", w.address);
	snprintf(sm.statement, sizeof sm.statement, "Lease access for clawgrid");
	snprintf(sm.uri, sizeof sm.uri, "https://provider.example:7879/v1/chat/completions");
	snprintf(sm.version, sizeof sm.version, "1");
	sm.chain_id = 31337;
	snprintf(sm.nonce, sizeof sm.nonce, "k2Jd8sLq0Zx7");
	snprintf(sm.issued_at, sizeof sm.issued_at, "2030-01-01T00:00:00.000Z");
	snprintf(sm.expiration_time, sizeof sm.expiration_time, "2030-01-01T00:10:00.000Z");
	char text[2048], hex[133], out[43];
	int len = siwe_format(&sm, text, sizeof text, &e);
	if (len < 0 || wallet_personal_sign(&w, text, (size_t)len, sig) != 0)
		die("siwe setup");
	eth_sig_to_hex(hex, sig);
	struct siwe_expect x = {.domain = sm.domain, .nonce = sm.nonce, .chain_id = 31337, .now_ms = 1893456100000};
	t0 = clock_mono_us();
	for (int i = 0; i < n; i++)
		if (siwe_verify(text, (size_t)len, hex, &x, NULL, &e) != 0)
			die(e.msg);
	int64_t t_siwe = clock_mono_us() - t0;
	t0 = clock_mono_us();
	for (int i = 0; i < n; i++)
		if (eip191_recover(text, (size_t)len, hex, out, &e) != 0)
			die(e.msg);
	int64_t t_191 = clock_mono_us() - t0;
	printf("crypto.siwe_verify:      %.1f us/op; eip191_recover alone %.1f us, ratio %.2fx\n", (double)t_siwe / n,
	       (double)t_191 / n, (double)t_siwe / (double)t_191);
	json_decref(typed);
	json_decref(entry);
	wallet_wipe(&w);
	node_key_wipe(&nk);
	return 0;
}
