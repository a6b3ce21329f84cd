/* siwe: EIP-4361 messages — the EIP's example, the spruceid/siwe test vectors (parsing_positive,
 * parsing_negative, verification_positive/negative with their real signatures), exact round trips
 * through siwe_format, RFC 3339 times, and verification errors mapped to the spec's codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/siwe.h"
#include "crypto/wallet.h"

#define HDR   "service.org wants you to sign in with your Ethereum account:\n"
#define ADDR1 "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
#define STMT  "I accept the ServiceOrg Terms of Service: https://service.org/tos"
#define BODY  "URI: https://service.org/login\nVersion: 1\nChain ID: 1\nNonce: 32891757\n"

static void roundtrip(const char *text, struct siwe_msg *m)
{
	cg_err e;
	if (siwe_parse(text, strlen(text), m, &e) != 0)
		fail_msg("parse failed: %s\n%s", e.msg, text);
	char out[SIWE_MAX_MSG + 1];
	int n = siwe_format(m, out, sizeof out, &e);
	if (n < 0)
		fail_msg("format failed: %s", e.msg);
	assert_int_equal(n, (int)strlen(text));
	assert_string_equal(out, text);
}

static void t_parse_positive(void **s)
{
	(void)s;
	struct siwe_msg m;
	/* the EIP's example message */
	roundtrip(
	    "service.org wants you to sign in with your Ethereum account:\n" ADDR1 "\n\n" STMT "\n\n"
	    "URI: https://service.org/login\nVersion: 1\nChain ID: 1\nNonce: 32891756\nIssued At: "
	    "2021-09-30T16:25:24Z\nResources:\n- ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/\n"
	    "- https://example.com/my-web2-claim.json",
	    &m);
	assert_string_equal(m.domain, "service.org");
	assert_string_equal(m.address, ADDR1);
	assert_string_equal(m.statement, STMT);
	assert_string_equal(m.uri, "https://service.org/login");
	assert_string_equal(m.version, "1");
	assert_true(m.chain_id == 1);
	assert_string_equal(m.nonce, "32891756");
	assert_string_equal(m.issued_at, "2021-09-30T16:25:24Z");
	assert_int_equal(m.n_resources, 2);
	assert_string_equal(m.resources[1], "https://example.com/my-web2-claim.json");
	assert_string_equal(m.scheme, "");
	assert_false(m.has_request_id);

	/* spruceid/siwe parsing_positive.json */
	roundtrip(HDR ADDR1 "\n\n" STMT "\n\n" BODY "Issued At: 2021-09-30T16:25:24.000Z", &m);
	roundtrip("127.0.0.1 wants you to sign in with your Ethereum account:\n" ADDR1 "\n\n" STMT "\n\n" BODY
	          "Issued At: 2021-09-30T16:25:24.000Z",
	          &m);
	assert_string_equal(m.domain, "127.0.0.1");
	roundtrip("test@127.0.0.1:8080 wants you to sign in with your Ethereum account:\n" ADDR1 "\n\n" STMT "\n\n" BODY
	          "Issued At: 2021-09-30T16:25:24.000Z",
	          &m);
	assert_string_equal(m.domain, "test@127.0.0.1:8080");
	/* no statement: address, blank, blank, URI */
	roundtrip(HDR ADDR1 "\n\n\n" BODY "Issued At: 2021-09-30T16:25:24.000Z", &m);
	assert_string_equal(m.statement, "");
	/* every optional field, a scheme, an empty request id, an IPv6 authority */
	roundtrip("https://[::1]:8443 wants you to sign in with your Ethereum account:\n" ADDR1 "\n\n" STMT "\n\n" BODY
	          "Issued At: 2022-03-17T12:45:13.610Z\nExpiration Time: 2023-03-17T12:45:13.610+01:00\n"
	          "Not Before: 2022-03-17T12:45:13Z\nRequest ID: \nResources:",
	          &m);
	assert_string_equal(m.scheme, "https");
	assert_string_equal(m.domain, "[::1]:8443");
	assert_true(m.has_request_id);
	assert_string_equal(m.request_id, "");
	assert_int_equal(m.n_resources, 0);
	roundtrip(
	    HDR ADDR1
	    "\n\n" STMT "\n\nURI: did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK\nVersion: 1\n"
	    "Chain ID: 137\nNonce: abcdefgh12345678\nIssued At: 2021-09-30T16:25:24Z\nRequest ID: some_id%20x@y:z",
	    &m);
	assert_true(m.chain_id == 137);
	assert_string_equal(m.request_id, "some_id%20x@y:z");
}

static void expect_reject(const char *what, const char *text)
{
	struct siwe_msg m;
	cg_err e;
	if (siwe_parse(text, strlen(text), &m, &e) != -CG_E_INVALID_ARGUMENT)
		fail_msg("accepted (%s):\n%s", what, text);
	assert_memory_equal(e.msg, "siwe:", 5);
}

static void t_parse_negative(void **s)
{
	(void)s;
	/* spruceid/siwe parsing_negative.json (the cases that are negative under EIP-4361's grammar) */
#define FULL_TAIL                                                                                                      \
	"Issued At: 2022-03-17T12:45:13.610Z\nExpiration Time: 2023-03-17T12:45:13.610Z\nNot Before: "                 \
	"2022-03-17T12:45:13.610Z\nRequest ID: some_id\nResources:\n- https://service.org/login"
#define A2 "0xe5A12547fe4E872D192E3eCecb76F2Ce1aeA4946"
	expect_reject("missing mandatory field",
	              HDR "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2\n\n" STMT
	                  "\n\nVersion: 1\nNonce: 32891757\nIssued At: 2021-09-30T16:25:24Z");
	expect_reject("extra line breaks", HDR ADDR1 "\n\n\n" STMT "\n\n" BODY "Issued At: 2021-09-30T16:25:24Z");
	expect_reject("non-ISO datetime",
	              HDR ADDR1 "\n\n" STMT "\n\n" BODY "Issued At: Wed Oct 05 2011 16:48:00 GMT+0200 (CEST)");
	expect_reject("out of order", HDR ADDR1 "\n\n" STMT "\n\nVersion: 1\nNonce: 32891757\nURI: "
	                                        "https://service.org/login\nIssued At: 2021-09-30T16:25:24.000Z");
	expect_reject("wrong version",
	              HDR ADDR1 "\n\n" STMT "\n\nURI: https://service.org/login\nVersion: 2\nChain ID: "
	                        "1\nNonce: 32891757\nIssued At: 2021-09-30T16:25:24.000Z");
	expect_reject("missing domain",
	              " wants you to sign in with your Ethereum account:\n" A2 "\n\n" STMT "\n\n" BODY FULL_TAIL);
	expect_reject("missing address", HDR "\n\n" STMT "\n\n" BODY FULL_TAIL);
	expect_reject("missing uri", HDR A2 "\n\n" STMT "\n\n\nVersion: 1\nChain ID: 1\nNonce: 12341234\n" FULL_TAIL);
	expect_reject("missing version", HDR A2 "\n\n" STMT "\n\nURI: https://service.org/login\n\nChain ID: 1\nNonce: "
	                                        "12341234\n" FULL_TAIL);
	expect_reject("missing chain id", HDR A2 "\n\n" STMT "\n\nURI: https://service.org/login\nVersion: 1\n\nNonce: "
	                                         "12341234\n" FULL_TAIL);
	expect_reject("missing nonce", HDR A2 "\n\n" STMT "\n\nURI: https://service.org/login\nVersion: 1\nChain ID: "
	                                      "1\n\n" FULL_TAIL);
	expect_reject("out of order nonce",
	              HDR A2 "\n\n" STMT "\n\nURI: https://service.org/login\nVersion: 1\nChain ID: 1\nIssued At: "
	                     "2022-03-17T12:45:13.610Z\nNonce: 12341234");
	expect_reject("out of order expiration",
	              HDR A2 "\n\n" STMT "\n\n" BODY "Issued At: 2022-03-17T12:45:13.610Z\nNot Before: "
	                     "2022-03-17T12:45:13.610Z\nExpiration Time: 2023-03-17T12:45:13.610Z");
	expect_reject("out of order request id", HDR A2 "\n\n" STMT "\n\n" BODY "Issued At: 2022-03-17T12:45:13.610Z\n"
	                                                "Resources:\n- https://service.org/login\nRequest ID: some_id");
	expect_reject("address not EIP-55",
	              HDR "0xe5a12547fe4e872d192e3ececb76f2ce1aea4946\n\n" STMT "\n\n" BODY FULL_TAIL);
	expect_reject("statement has line break", HDR A2
	              "\n\nI accept the ServiceOrg Terms of Service: \nhttps://service.org/tos\n\n" BODY FULL_TAIL);
	expect_reject("uri not RFC 3986",
	              HDR A2 "\n\n" STMT "\n\nURI: _not_a_rfc3986_valid_uri_\nVersion: 1\nChain ID: "
	                     "1\nNonce: 12341234\n" FULL_TAIL);
	expect_reject("chain id not a number", HDR A2 "\n\n" STMT "\n\nURI: https://service.org/login\nVersion: 1\n"
	                                              "Chain ID: ?\nNonce: 12341234\n" FULL_TAIL);
	expect_reject("nonce under 8",
	              HDR A2 "\n\n" STMT "\n\nURI: https://service.org/login\nVersion: 1\nChain ID: 1\n"
	                     "Nonce: 1234567\n" FULL_TAIL);
	expect_reject("resources on one line",
	              HDR A2 "\n\n" STMT "\n\n" BODY "Issued At: 2022-03-17T12:45:13.610Z\n"
	                     "Resources:\n- https://service.org/login - https://service.org/login/2");
	expect_reject("bad second resource",
	              HDR A2 "\n\n" STMT "\n\n" BODY "Issued At: 2022-03-17T12:45:13.610Z\n"
	                     "Resources:\n- https://service.org/login\n- _not_a_rfc3986_valid_uri_");
	/* our own strictness: trailing newline, CRLF, repeated field, leading zero chain id, empty message,
	 * NUL bytes, non-ASCII statement, bad percent escapes, too many resources */
	expect_reject("trailing LF", HDR ADDR1 "\n\n" STMT "\n\n" BODY "Issued At: 2021-09-30T16:25:24Z\n");
	expect_reject("CRLF", "service.org wants you to sign in with your Ethereum account:\r\n" ADDR1 "\r\n\r\n" BODY
	                      "Issued At: 2021-09-30T16:25:24Z");
	expect_reject("repeated", HDR ADDR1 "\n\n" STMT "\n\n" BODY "Issued At: 2021-09-30T16:25:24Z\nExpiration Time: "
	                                    "2022-09-30T16:25:24Z\nExpiration Time: 2022-09-30T16:25:24Z");
	expect_reject("chain id 01", HDR ADDR1 "\n\n\nURI: https://service.org/login\nVersion: 1\nChain ID: 01\nNonce: "
	                                       "32891757\nIssued At: 2021-09-30T16:25:24Z");
	expect_reject("chain id overflow",
	              HDR ADDR1 "\n\n\nURI: https://service.org/login\nVersion: 1\nChain ID: "
	                        "99999999999999999999\nNonce: 32891757\nIssued At: 2021-09-30T16:25:24Z");
	expect_reject("empty", "");
	expect_reject("non-ASCII statement",
	              HDR ADDR1 "\n\nJ'accepte \xc3\xa9\n\n" BODY "Issued At: 2021-09-30T16:25:24Z");
	expect_reject("bad pct", HDR ADDR1 "\n\n\nURI: https://service.org/%zz\nVersion: 1\nChain ID: 1\nNonce: "
	                                   "32891757\nIssued At: 2021-09-30T16:25:24Z");
	expect_reject("bad scheme", "1http://service.org wants you to sign in with your Ethereum account:\n" ADDR1
	                            "\n\n\n" BODY "Issued At: 2021-09-30T16:25:24Z");
	expect_reject("unknown line", HDR ADDR1 "\n\n\n" BODY "Issued At: 2021-09-30T16:25:24Z\nFoo: bar");
	expect_reject("bad date", HDR ADDR1 "\n\n\n" BODY "Issued At: 2021-02-29T16:25:24Z");
	char big[2 * SIWE_MAX_MSG];
	int n = snprintf(big, sizeof big, HDR ADDR1 "\n\n\n" BODY "Issued At: 2021-09-30T16:25:24Z\nResources:");
	for (int i = 0; i < 17; i++)
		n += snprintf(big + n, sizeof big - (size_t)n, "\n- https://r%d.example", i);
	expect_reject("17 resources", big);
	struct siwe_msg m;
	cg_err e;
	const char nul[] = HDR ADDR1 "\n\n\n" BODY "Issued At: 2021-09-30T16:25:24Z";
	char with_nul[sizeof nul + 1];
	memcpy(with_nul, nul, sizeof nul);
	with_nul[5] = '\0';
	assert_int_equal(siwe_parse(with_nul, sizeof nul - 1, &m, &e), -CG_E_INVALID_ARGUMENT);
}

static void t_rfc3339(void **s)
{
	(void)s;
	static const struct {
		const char *s;
		int64_t ms;
	} ok[] = {
	    {"1970-01-01T00:00:00Z", 0},
	    {"1969-12-31T23:59:59Z", -1000},
	    {"2021-09-30T16:25:24Z", 1633019124000},
	    {"2021-09-30T18:25:24+02:00", 1633019124000},
	    {"2021-09-30t16:25:24z", 1633019124000},
	    {"2022-01-27T17:09:38.578Z", 1643303378578},
	    {"2022-01-27T17:09:38.5789999Z", 1643303378578},
	    {"2022-01-27T17:09:38.5Z", 1643303378500},
	    {"2000-02-29T23:59:59.999Z", 951868799999},
	    {"2100-01-07T14:31:43.952Z", 4103015503952},
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		int64_t ms;
		assert_int_equal(rfc3339_parse_ms(ok[i].s, strlen(ok[i].s), &ms), 0);
		assert_true(ms == ok[i].ms);
	}
	const char *bad[] = {"2021-02-29T00:00:00Z",
	                     "2021-13-01T00:00:00Z",
	                     "2021-09-30T16:25:24",
	                     "2021-09-30 16:25:24Z",
	                     "2021-09-30T24:00:00Z",
	                     "2021-09-30T16:25:24.Z",
	                     "2021-09-30T16:25:24+0200",
	                     "21-09-30T16:25:24Z",
	                     "2021-09-30T16:25:24Zx",
	                     "1900-02-29T00:00:00Z",
	                     ""};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int64_t ms;
		if (rfc3339_parse_ms(bad[i], strlen(bad[i]), &ms) == 0)
			fail_msg("accepted %s", bad[i]);
	}
	char out[32];
	rfc3339_format_ms(1643303378578, out);
	assert_string_equal(out, "2022-01-27T17:09:38.578Z");
	rfc3339_format_ms(-1, out);
	assert_string_equal(out, "1969-12-31T23:59:59.999Z");
	int64_t back;
	rfc3339_format_ms(951868799999, out);
	assert_int_equal(rfc3339_parse_ms(out, strlen(out), &back), 0);
	assert_true(back == 951868799999);
}

/* Builds the message text of a spruceid/siwe verification vector through siwe_format. */
static void vector_text(char *out, size_t cap, const char *address, const char *nonce, const char *issued,
                        const char *exp, const char *nbf)
{
	struct siwe_msg m;
	memset(&m, 0, sizeof m);
	snprintf(m.domain, sizeof m.domain, "login.xyz");
	snprintf(m.address, sizeof m.address, "%s", address);
	snprintf(m.statement, sizeof m.statement, "Sign-In With Ethereum Example Statement");
	snprintf(m.uri, sizeof m.uri, "https://login.xyz");
	snprintf(m.version, sizeof m.version, "1");
	m.chain_id = 1;
	snprintf(m.nonce, sizeof m.nonce, "%s", nonce);
	snprintf(m.issued_at, sizeof m.issued_at, "%s", issued);
	if (exp)
		snprintf(m.expiration_time, sizeof m.expiration_time, "%s", exp);
	if (nbf)
		snprintf(m.not_before, sizeof m.not_before, "%s", nbf);
	cg_err e;
	if (siwe_format(&m, out, cap, &e) < 0)
		fail_msg("format: %s", e.msg);
}

static int64_t at(const char *t)
{
	int64_t ms;
	assert_int_equal(rfc3339_parse_ms(t, strlen(t), &ms), 0);
	return ms;
}

static void t_verify_vectors(void **s)
{
	(void)s;
	char text[2048];
	cg_err e;
	struct siwe_msg m;
	/* "example message" */
	vector_text(text, sizeof text, "0x9D85ca56217D2bb651b00f15e694EB7E713637D4", "bTyXgcQxn2htgkjJn",
	            "2022-01-27T17:09:38.578Z", "2100-01-07T14:31:43.952Z", NULL);
	const char *sig1 =
	    "0xdc35c7f8ba2720df052e0092556456127f00f7707eaa8e3bbff7e56774e7f2e05a093cfc9e02964c33d86e8e066e2"
	    "21b7d153d27e5a2e97ccd5ca7d3f2ce06cb1b";
	struct siwe_expect x = {.domain = "login.xyz",
	                        .nonce = "bTyXgcQxn2htgkjJn",
	                        .chain_id = 1,
	                        .uri = "https://login.xyz",
	                        .now_ms = at("2022-01-27T17:10:00Z")};
	assert_int_equal(siwe_verify(text, strlen(text), sig1, &x, &m, &e), 0);
	assert_string_equal(m.address, "0x9D85ca56217D2bb651b00f15e694EB7E713637D4");
	assert_int_equal(siwe_verify(text, strlen(text), sig1, NULL, NULL, &e), 0);
	/* verification_negative: domain binding, custom nonce, custom time */
	struct siwe_expect y = x;
	y.domain = "example.com";
	assert_int_equal(siwe_verify(text, strlen(text), sig1, &y, NULL, &e), -CG_E_FORBIDDEN);
	y = x;
	y.nonce = "6548asdgf";
	assert_int_equal(siwe_verify(text, strlen(text), sig1, &y, NULL, &e), -CG_E_FORBIDDEN);
	y = x;
	y.now_ms = at("2200-01-05T00:00:00Z");
	assert_int_equal(siwe_verify(text, strlen(text), sig1, &y, NULL, &e), -CG_E_EXPIRED);
	y = x;
	y.chain_id = 5;
	assert_int_equal(siwe_verify(text, strlen(text), sig1, &y, NULL, &e), -CG_E_FORBIDDEN);
	y = x;
	y.uri = "https://login.xyz/other";
	assert_int_equal(siwe_verify(text, strlen(text), sig1, &y, NULL, &e), -CG_E_FORBIDDEN);
	/* one byte changed in the text: the signature belongs to someone else */
	text[0] = 'L';
	assert_int_equal(siwe_verify(text, strlen(text), sig1, NULL, NULL, &e), -CG_E_AUTH_REQUIRED);

	/* "not yet valid": valid from 2100 */
	vector_text(text, sizeof text, "0xE6D3Aa1F561A215E5eb1f02Ba8705385F03fCaFB", "lx2nx4so",
	            "2022-01-05T14:27:30.883Z", NULL, "2100-01-07T14:31:43.952Z");
	const char *sig2 =
	    "0xc2539ace78f13c7eb8c0852d38d269a6f97bebd9f7872097d2e3137b541f8bf50176062a46eeea83086bd2721423f"
	    "b5755a932ff6ccc046ed482d14e4576042f1c";
	struct siwe_expect z = {.now_ms = at("2101-01-07T14:31:43.952Z")};
	assert_int_equal(siwe_verify(text, strlen(text), sig2, &z, NULL, &e), 0);
	z.now_ms = at("2022-06-01T00:00:00Z");
	assert_int_equal(siwe_verify(text, strlen(text), sig2, &z, NULL, &e), -CG_E_AUTH_REQUIRED);
	assert_non_null(strstr(e.msg, "not valid yet"));

	/* "expired message": expired 2021-01-05, valid when checked at 2020-01-05 */
	vector_text(text, sizeof text, "0x2ecA0068307e706741445764A3D6A4402aC2A5a9", "lx2nx4so",
	            "2022-01-05T14:27:30.883Z", "2021-01-05T00:00:00Z", NULL);
	const char *sig3 =
	    "0x7337bc2826c7678cd6bc84f5b3b236efc969b0451f9feca2328b1d3401b030c113f19bdba359ba3f52762c66e9147"
	    "311fa95fe598a1a4ec9bb383a7b4e3874241b";
	z.now_ms = at("2020-01-05T00:00:00Z");
	assert_int_equal(siwe_verify(text, strlen(text), sig3, &z, NULL, &e), 0);
	z.now_ms = at("2022-06-01T00:00:00Z");
	assert_int_equal(siwe_verify(text, strlen(text), sig3, &z, NULL, &e), -CG_E_EXPIRED);
	/* clock skew tolerance */
	z.now_ms = at("2021-01-05T00:00:30Z");
	z.skew_ms = 60000;
	assert_int_equal(siwe_verify(text, strlen(text), sig3, &z, NULL, &e), 0);

	/* "recovery byte starting at 0" (tally.xyz, v = 0x01) */
	struct siwe_msg t;
	memset(&t, 0, sizeof t);
	snprintf(t.domain, sizeof t.domain, "www.tally.xyz");
	snprintf(t.address, sizeof t.address, "0xc95EB884FE852e241D409234bfC7045CB9E31BD7");
	snprintf(t.statement, sizeof t.statement, "Sign in with Ethereum to Tally");
	snprintf(t.uri, sizeof t.uri, "https://tally.xyz");
	snprintf(t.version, sizeof t.version, "1");
	t.chain_id = 1;
	snprintf(t.nonce, sizeof t.nonce, "15050747");
	snprintf(t.issued_at, sizeof t.issued_at, "2022-06-30T14:08:51.382Z");
	assert_true(siwe_format(&t, text, sizeof text, &e) > 0);
	assert_int_equal(
	    siwe_verify(text, strlen(text),
	                "0x8c46b6eb8505939892d8e9b075f89f8277321b17b993151f37810cdda38cce6f4a85909d2b53e6a14629c74c0"
	                "ac38bf4becde78ee5b2529812bf6cceaf7b2a2501",
	                NULL, NULL, &e),
	    0);

	/* "malformed signature" (133 characters) and "wrong signature" */
	vector_text(text, sizeof text, "0x6Da01670d8fc844e736095918bbE11fE8D564163", "rmplqh1gf",
	            "2022-01-05T14:31:43.954Z", "2100-01-07T14:31:43.952Z", NULL);
	assert_int_equal(
	    siwe_verify(text, strlen(text),
	                "0xf2e8420fc1b722bf4941f5a0464f98172a758ceda5039f622e425fb69fd19b20e444bba7c9a8a8d7e2b5e453"
	                "553efe7c9460be5d211abe473fc146d51bb04d0cb1b",
	                NULL, NULL, &e),
	    -CG_E_INVALID_ARGUMENT);
	assert_int_equal(
	    siwe_verify(text, strlen(text),
	                "0x31df81dc02344c9156e6f71da46e2db624b38f8f806290d670d46492b834b2e7575cbce9f48169356cfb577b"
	                "910d8e30732fcf23c1ac0021d08b945ed7ee118e1b",
	                NULL, NULL, &e),
	    -CG_E_AUTH_REQUIRED);
}

static void t_sign_and_verify(void **s)
{
	(void)s;
	struct wallet w;
	wallet_generate(&w);
	struct siwe_msg m;
	memset(&m, 0, sizeof m);
	snprintf(m.scheme, sizeof m.scheme, "http");
	snprintf(m.domain, sizeof m.domain, "localhost:7879");
	snprintf(m.address, sizeof m.address, "%s", w.address);
	snprintf(m.uri, sizeof m.uri, "http://localhost:7879/rpc");
	snprintf(m.version, sizeof m.version, "1");
	m.chain_id = 31337;
	snprintf(m.nonce, sizeof m.nonce, "Nonce1234abcd");
	snprintf(m.issued_at, sizeof m.issued_at, "2030-01-01T00:00:00Z");
	snprintf(m.expiration_time, sizeof m.expiration_time, "2030-01-01T00:10:00Z");
	m.has_request_id = true;
	snprintf(m.request_id, sizeof m.request_id, "req-1");
	m.n_resources = 1;
	snprintf(m.resources[0], sizeof m.resources[0], "urn:clawgrid:lease");
	char text[4096];
	cg_err e;
	int n = siwe_format(&m, text, sizeof text, &e);
	assert_true(n > 0);
	uint8_t sig[65];
	assert_int_equal(wallet_personal_sign(&w, text, (size_t)n, sig), 0);
	char hex[133];
	eth_sig_to_hex(hex, sig);
	struct siwe_expect x = {.domain = "localhost:7879",
	                        .nonce = "Nonce1234abcd",
	                        .chain_id = 31337,
	                        .now_ms = at("2030-01-01T00:05:00Z")};
	struct siwe_msg got;
	assert_int_equal(siwe_verify(text, (size_t)n, hex, &x, &got, &e), 0);
	assert_string_equal(got.resources[0], "urn:clawgrid:lease");
	x.now_ms = at("2030-01-01T00:10:00Z");
	assert_int_equal(siwe_verify(text, (size_t)n, hex, &x, NULL, &e), -CG_E_EXPIRED);
	/* a small output buffer fails cleanly */
	assert_true(siwe_format(&m, text, 20, &e) < 0);
	/* the formatter refuses fields that would break the grammar */
	snprintf(m.statement, sizeof m.statement, "line one\nURI: https://evil.example");
	assert_int_equal(siwe_format(&m, text, sizeof text, &e), -CG_E_INVALID_ARGUMENT);
	m.statement[0] = '\0';
	snprintf(m.address, sizeof m.address, "0xc95eb884fe852e241d409234bfc7045cb9e31bd7");
	assert_int_equal(siwe_format(&m, text, sizeof text, &e), -CG_E_INVALID_ARGUMENT);
	wallet_wipe(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(t_parse_positive), cmocka_unit_test(t_parse_negative),  cmocka_unit_test(t_rfc3339),
	    cmocka_unit_test(t_verify_vectors), cmocka_unit_test(t_sign_and_verify),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
