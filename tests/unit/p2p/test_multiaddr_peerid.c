/* multiaddr (spec examples, round trips, dial targets, /p2p helpers, bad input) and peer ids (spec vectors,
 * both text forms, key extraction, bad input). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "base/enc.h"
#include "p2p/multiaddr.h"
#include "p2p/peerid.h"

static size_t unhex(uint8_t *out, size_t cap, const char *h)
{
	size_t n = strlen(h) / 2;
	assert_true(n <= cap);
	assert_int_equal(hex_decode(out, n, h, strlen(h), false), 0);
	return n;
}

static void t_ma_spec_example(void **s)
{
	(void)s;
	buf b;
	buf_init(&b, MA_MAX_BYTES);
	static const char *txt = "/ip4/127.0.0.1/tcp/4001";
	static const uint8_t bin[] = {0x04, 0x7f, 0x00, 0x00, 0x01, 0x06, 0x0f, 0xa1};
	assert_int_equal(ma_from_string(&b, txt, strlen(txt), NULL), 0);
	assert_int_equal(b.len, sizeof bin);
	assert_memory_equal(b.data, bin, sizeof bin);
	buf t;
	buf_init(&t, MA_MAX_TEXT);
	assert_int_equal(ma_to_string(&t, bin, sizeof bin, NULL), 0);
	assert_string_equal(buf_cstr(&t), txt);
	buf_done(&t);
	buf_done(&b);
}

static void t_ma_roundtrips(void **s)
{
	(void)s;
	static const char *ok[] = {
		"/ip4/1.2.3.4/tcp/0",
		"/ip6/::1/tcp/65535",
		"/ip6/2001:db8::ff00:42:8329/udp/53/quic-v1",
		"/dns/example.com/tcp/443/wss",
		"/dns4/localhost/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
		"/dns6/host.example/tcp/1",
		"/dnsaddr/bootstrap.libp2p.io",
		"/ip4/10.0.0.1/tcp/4001/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N/p2p-circuit/p2p/"
		"12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
		"/p2p-circuit",
		"/ip4/127.0.0.1/tcp/80/http",
		"/ip4/127.0.0.1/udp/9/quic-v1/webtransport/certhash/uEiDDq4_xNyDorZBH3TlGazyJdOWSwvo4PUo5YHFMrvDE8g",
		"/ip4/127.0.0.1/tcp/1/tls/sni/example.org/ws",
		"/ip6zone/eth0/ip6/fe80::1/tcp/5",
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		buf b, t;
		buf_init(&b, MA_MAX_BYTES);
		buf_init(&t, MA_MAX_TEXT);
		cg_err e = {0};
		int rc = ma_from_string(&b, ok[i], strlen(ok[i]), &e);
		if (rc)
			fail_msg("%s: %s", ok[i], e.msg);
		assert_int_equal(ma_validate(b.data, b.len, NULL), 0);
		assert_int_equal(ma_to_string(&t, b.data, b.len, &e), 0);
		assert_string_equal(buf_cstr(&t), ok[i]);
		buf_done(&b);
		buf_done(&t);
	}
	/* The legacy /ipfs/ alias parses to /p2p/, and a CIDv1 peer id prints as base58btc. */
	buf b, t;
	buf_init(&b, MA_MAX_BYTES);
	buf_init(&t, MA_MAX_TEXT);
	const char *alias = "/ip4/1.1.1.1/tcp/1/ipfs/bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe/";
	assert_int_equal(ma_from_string(&b, alias, strlen(alias), NULL), 0);
	assert_int_equal(ma_to_string(&t, b.data, b.len, NULL), 0);
	assert_string_equal(buf_cstr(&t), "/ip4/1.1.1.1/tcp/1/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N");
	buf_done(&b);
	buf_done(&t);
}

static void t_ma_bad_text(void **s)
{
	(void)s;
	static const char *bad[] = {
		"",		      "ip4/1.2.3.4",	"/ip4/1.2.3",	      "/ip4/256.1.1.1/tcp/1", "/ip4/1.2.3.4/tcp/65536",
		"/ip4/1.2.3.4/tcp/-1", "/ip4/1.2.3.4/tcp", "/ip4/1.2.3.4//tcp/1", "/foo/1",		 "/p2p/notapeerid",
		"/ip6/1.2.3.4",	      "/tcp/1x",	"/dns4/",	      "/certhash/zabc",	 "/unix/tmp",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		buf b;
		buf_init(&b, MA_MAX_BYTES);
		assert_int_equal(buf_append(&b, "x", 1), 0); /* on error the buffer is restored */
		cg_err e = {0};
		int rc = ma_from_string(&b, bad[i], strlen(bad[i]), &e);
		if (rc == 0)
			fail_msg("accepted %s", bad[i]);
		assert_int_equal(b.len, 1);
		assert_true(strlen(e.msg) > 0);
		buf_done(&b);
	}
}

static void t_ma_binary(void **s)
{
	(void)s;
	uint8_t m[64];
	cg_err e;
	/* Truncated ip4 value, unknown code, bad varint, truncated var-length. */
	static const uint8_t trunc[] = {0x04, 0x7f, 0x00};
	static const uint8_t unknown[] = {0xff, 0x7f, 0x00};
	static const uint8_t badvar[] = {0x80};
	static const uint8_t dns_trunc[] = {0x35, 0x05, 'a', 'b'};
	static const uint8_t dns_slash[] = {0x35, 0x03, 'a', '/', 'b'};
	const struct {
		const uint8_t *p;
		size_t n;
	} bad[] = {{trunc, sizeof trunc}, {unknown, sizeof unknown}, {badvar, 1},
		   {dns_trunc, sizeof dns_trunc}, {dns_slash, sizeof dns_slash}};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(ma_validate(bad[i].p, bad[i].n, &e), -CG_E_INVALID_ARGUMENT);
	assert_int_equal(ma_validate(m, 0, &e), -CG_E_INVALID_ARGUMENT);
	/* Tolerant skipping: onion3 (no text form here) is well formed in binary and can be iterated over. */
	size_t n = 0;
	m[n++] = 0xbd; /* 445 = onion3 */
	m[n++] = 0x03;
	memset(m + n, 0x11, 37);
	n += 37;
	memcpy(m + n, "\x04\x0a\x00\x00\x01\x06\x00\x50", 8);
	n += 8;
	assert_int_equal(ma_validate(m, n, NULL), 0);
	ma_iter it;
	ma_comp c;
	ma_iter_init(&it, m, n);
	assert_int_equal(ma_next(&it, &c, NULL), 1);
	assert_string_equal(c.name, "onion3");
	assert_int_equal(c.len, 37);
	assert_int_equal(ma_next(&it, &c, NULL), 1);
	assert_int_equal(c.code, MA_IP4);
	assert_int_equal(ma_next(&it, &c, NULL), 1);
	assert_int_equal(c.code, MA_TCP);
	assert_int_equal(ma_next(&it, &c, NULL), 0);
	buf t;
	buf_init(&t, MA_MAX_TEXT);
	assert_int_equal(ma_to_string(&t, m, n, &e), -CG_E_INVALID_ARGUMENT);
	assert_int_equal(t.len, 0);
	buf_done(&t);
	/* The dial target skips the onion3 component. */
	struct ma_dial d;
	assert_int_equal(ma_dial_target(m, n, &d, NULL), 0);
	assert_string_equal(d.host, "10.0.0.1");
	assert_int_equal(d.port, 80);
}

static void t_ma_dial_and_p2p(void **s)
{
	(void)s;
	buf b;
	buf_init(&b, MA_MAX_BYTES);
	struct ma_dial d;
	const char *a = "/dns4/node.example/tcp/4001/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N/p2p-circuit/p2p/"
			"12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";
	assert_int_equal(ma_from_string(&b, a, strlen(a), NULL), 0);
	assert_int_equal(ma_dial_target(b.data, b.len, &d, NULL), 0);
	assert_int_equal(d.kind, MA_HOST_DNS4);
	assert_string_equal(d.host, "node.example");
	assert_int_equal(d.port, 4001);
	assert_true(d.circuit);
	/* The last /p2p is the target peer. */
	const uint8_t *id;
	size_t idlen;
	assert_int_equal(ma_get_p2p(b.data, b.len, &id, &idlen, NULL), 0);
	peerid want, got;
	assert_int_equal(peerid_parse(&want, "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA", 52, NULL), 0);
	assert_int_equal(peerid_from_bytes(&got, id, idlen, NULL), 0);
	assert_true(peerid_equal(&want, &got));
	/* Strip it and add it back. */
	size_t base = ma_without_p2p(b.data, b.len);
	assert_true(base < b.len);
	buf c;
	buf_init(&c, MA_MAX_BYTES);
	assert_int_equal(buf_append(&c, b.data, base), 0);
	assert_int_equal(ma_append_p2p(&c, want.b, want.len, NULL), 0);
	assert_int_equal(c.len, b.len);
	assert_memory_equal(c.data, b.data, b.len);
	uint8_t junk[3] = {1, 2, 3};
	assert_int_equal(ma_append_p2p(&c, junk, 3, NULL), -CG_E_INVALID_ARGUMENT);
	buf_done(&c);
	buf_reset(&b);
	/* ip6 + tcp, and no host at all. */
	const char *a6 = "/ip6/fe80::1/tcp/9";
	assert_int_equal(ma_from_string(&b, a6, strlen(a6), NULL), 0);
	assert_int_equal(ma_dial_target(b.data, b.len, &d, NULL), 0);
	assert_int_equal(d.kind, MA_HOST_IP6);
	assert_string_equal(d.host, "fe80::1");
	assert_false(d.circuit);
	assert_int_equal(ma_get_p2p(b.data, b.len, &id, &idlen, NULL), -CG_E_NOT_FOUND);
	assert_int_equal(ma_without_p2p(b.data, b.len), b.len);
	buf_reset(&b);
	const char *udp = "/ip4/1.2.3.4/udp/9/quic-v1";
	assert_int_equal(ma_from_string(&b, udp, strlen(udp), NULL), 0);
	assert_int_equal(ma_dial_target(b.data, b.len, &d, NULL), -CG_E_NOT_FOUND);
	/* Builder used by listeners. */
	buf_reset(&b);
	uint8_t lo[4] = {127, 0, 0, 1};
	assert_int_equal(ma_put_ip_tcp(&b, false, lo, 4001), 0);
	static const uint8_t bin[] = {0x04, 0x7f, 0x00, 0x00, 0x01, 0x06, 0x0f, 0xa1};
	assert_int_equal(b.len, sizeof bin);
	assert_memory_equal(b.data, bin, sizeof bin);
	buf_done(&b);
}

static void t_peerid_spec_vectors(void **s)
{
	(void)s;
	/* libp2p peer-ids spec test vector: Ed25519 public key 08 01 12 20 <32 bytes>. */
	uint8_t pb[64], pk[32];
	size_t n = unhex(pb, sizeof pb, "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e");
	struct peerid_pubkey k;
	assert_int_equal(peerid_pubkey_decode(pb, n, &k, NULL), 0);
	assert_int_equal(k.type, PEERID_KEY_ED25519);
	assert_int_equal(k.len, 32);
	peerid id, id2;
	assert_int_equal(peerid_from_pubkey(&id, pb, n, NULL), 0);
	assert_int_equal(id.len, 38);
	assert_int_equal(id.b[0], 0x00);
	assert_int_equal(id.b[1], 36);
	peerid_from_ed25519(&id2, k.data);
	assert_true(peerid_equal(&id, &id2));
	char txt[PEERID_TEXT_MAX];
	assert_int_equal(peerid_to_string(&id, txt, sizeof txt), 52);
	assert_string_equal(txt, "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq");
	assert_int_equal(peerid_get_ed25519(&id, pk, NULL), 0);
	assert_memory_equal(pk, pb + 4, 32);
	/* The Ed25519 key derived from the vector's private seed is the same key. */
	uint8_t seed[32], spk[32], ssk[64];
	unhex(seed, sizeof seed, "7e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d");
	crypto_sign_seed_keypair(spk, ssk, seed);
	assert_memory_equal(spk, pk, 32);
	/* CIDv1 form round trip. */
	char cid[PEERID_TEXT_MAX];
	int cl = peerid_to_cid(&id, cid, sizeof cid);
	assert_true(cl > 0 && cid[0] == 'b');
	assert_int_equal(peerid_parse(&id2, cid, (size_t)cl, NULL), 0);
	assert_true(peerid_equal(&id, &id2));

	/* Secp256k1 vector: 37 bytes, still inlined (identity multihash). */
	n = unhex(pb, sizeof pb, "08021221037777e994e452c21604f91de093ce415f5432f701dd8cd1a7a6fea0e630bfca99");
	assert_int_equal(peerid_from_pubkey(&id, pb, n, NULL), 0);
	assert_int_equal(id.b[0], 0x00);
	assert_int_equal(peerid_to_string(&id, txt, sizeof txt) > 0, 1);
	assert_memory_equal(txt, "16Uiu2", 6);
	assert_int_equal(peerid_get_ed25519(&id, pk, NULL), -CG_E_NOT_FOUND);
	assert_true(peerid_matches_pubkey(&id, pb, n));

	/* Spec string examples: the same sha2-256 peer as base58btc and as CIDv1. */
	assert_int_equal(peerid_parse(&id, "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N", 46, NULL), 0);
	const char *c1 = "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe";
	assert_int_equal(peerid_parse(&id2, c1, strlen(c1), NULL), 0);
	assert_true(peerid_equal(&id, &id2));
	assert_int_equal(id.b[0], 0x12);
	assert_int_equal(peerid_to_cid(&id, cid, sizeof cid), (int)strlen(c1));
	assert_string_equal(cid, c1);
	const uint8_t *kp;
	size_t kn;
	assert_int_equal(peerid_get_pubkey(&id, &kp, &kn, NULL), -CG_E_NOT_FOUND);
	assert_int_equal(peerid_to_string(&id, txt, 10), -1);
}

static void t_peerid_rsa_hashed(void **s)
{
	(void)s;
	/* An opaque RSA key longer than 42 bytes once encoded gets a sha2-256 peer id. */
	uint8_t der[270];
	for (size_t i = 0; i < sizeof der; i++)
		der[i] = (uint8_t)(i * 7);
	buf b;
	buf_init(&b, 4096);
	assert_int_equal(peerid_pubkey_encode(&b, PEERID_KEY_RSA, der, sizeof der), 0);
	peerid id;
	assert_int_equal(peerid_from_pubkey(&id, b.data, b.len, NULL), 0);
	assert_int_equal(id.len, 34);
	assert_int_equal(id.b[0], 0x12);
	char txt[PEERID_TEXT_MAX];
	assert_true(peerid_to_string(&id, txt, sizeof txt) > 0);
	assert_memory_equal(txt, "Qm", 2);
	assert_true(peerid_matches_pubkey(&id, b.data, b.len));
	b.data[b.len - 1] ^= 1;
	assert_false(peerid_matches_pubkey(&id, b.data, b.len));
	buf_done(&b);
}

static void t_peerid_bad(void **s)
{
	(void)s;
	peerid id;
	cg_err e;
	uint8_t pb[64];
	/* Fields out of order (non-deterministic encoding), unknown type, short Ed25519 key, extra field. */
	static const char *badkeys[] = {
		"12201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e0801",
		"080912021234",
		"08011203010203",
		"080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e1801",
		"0801",
	};
	for (size_t i = 0; i < sizeof badkeys / sizeof badkeys[0]; i++) {
		size_t n = unhex(pb, sizeof pb, badkeys[i]);
		assert_int_equal(peerid_from_pubkey(&id, pb, n, &e), -CG_E_INVALID_ARGUMENT);
	}
	static const char *badtext[] = {
		"",
		"12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5S", /* truncated */
		"12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5S0", /* '0' is not base58 */
		"QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5",
		"bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi", /* dag-pb CID, not libp2p-key */
		"xyz",
		"b!!",
	};
	for (size_t i = 0; i < sizeof badtext / sizeof badtext[0]; i++)
		assert_true(peerid_parse(&id, badtext[i], strlen(badtext[i]), &e) < 0);
	static const uint8_t mh_md5[] = {0xd5, 0x01, 0x02, 0x00, 0x00};
	assert_int_equal(peerid_from_bytes(&id, mh_md5, sizeof mh_md5, &e), -CG_E_INVALID_ARGUMENT);
	static const uint8_t mh_short[] = {0x12, 0x20, 0x00};
	assert_int_equal(peerid_from_bytes(&id, mh_short, sizeof mh_short, &e), -CG_E_INVALID_ARGUMENT);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_ma_spec_example),	 cmocka_unit_test(t_ma_roundtrips),
		cmocka_unit_test(t_ma_bad_text),	 cmocka_unit_test(t_ma_binary),
		cmocka_unit_test(t_ma_dial_and_p2p),	 cmocka_unit_test(t_peerid_spec_vectors),
		cmocka_unit_test(t_peerid_rsa_hashed), cmocka_unit_test(t_peerid_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
