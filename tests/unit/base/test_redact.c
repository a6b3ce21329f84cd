/* redact: tokens, bearer/basic credentials, URL userinfo, secret query parameters and registered secrets
 * never survive — in redact_inplace, redact_dup, error messages and log lines. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/log.h"
#include "base/redact.h"

static char *red(const char *s)
{
	char *d = redact_dup(s);
	assert_non_null(d);
	return d;
}

static void expect(const char *in, const char *gone, const char *kept)
{
	char *d = red(in);
	if (gone && strstr(d, gone))
		fail_msg("'%s' survived in '%s'", gone, d);
	if (kept)
		assert_non_null(strstr(d, kept));
	free(d);
}

static void t_always(void **st)
{
	(void)st;
	redact_reset();
	expect("lease token tok_Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5 issued", "tok_Zm9v", "lease token [REDACTED] issued");
	expect("tok_abcdefghij", "tok_abc", REDACTED);
	expect("Authorization: Bearer eyJhbGciOi.JIUzI1NiJ9-x_y", "eyJhbG", "Authorization: Bearer [REDACTED]");
	expect("authorization: bearer   s3cr3t-t0ken", "s3cr3t", "[REDACTED]");
	expect("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpw", "Basic [REDACTED]");
	expect("upstream https://alice:hunter2@llm.example/v1 failed", "hunter2", "https://[REDACTED]@llm.example/v1");
	expect("GET /x?api_key=SECRETKEY&page=2", "SECRETKEY", "page=2");
	expect("GET /x?a=1&token=T0K3N&sig=0xabc", "T0K3N", "a=1");
	expect("GET /x?a=1&sig=0xdeadbeef", "deadbeef", NULL);
	/* a secret field is one wherever it appears, not only in a query string */
	expect("password=hunter2 at start", "hunter2", "password=[REDACTED] at start");
	/* not tokens: short or embedded */
	expect("mytok_abcdefghijkl", NULL, "mytok_abcdefghijkl");
	expect("tok_ab", NULL, "tok_ab");
}

/* Authorization values of any scheme, named secret fields (logfmt, JSON, headers) and key-file material. */
static void t_named_secrets(void **st)
{
	(void)st;
	redact_reset();
	expect("Authorization: Digest username-and-nonce-xyz", "username-and-nonce", "Authorization: Digest [REDACTED]");
	expect("authorization: Token s3cr3tvalue, next", "s3cr3tvalue", ", next");
	expect("Authorization: rawcredential12345", "rawcredential", "Authorization: [REDACTED]");
	expect("Proxy-Authorization: Basic Zm9vOmJhcg==", "Zm9vOmJhcg", "Proxy-Authorization: Basic [REDACTED]");
	expect("X-Lease-Token: opaque-lease-credential", "opaque-lease", "X-Lease-Token: [REDACTED]");
	expect("hdr authorization=\"Custom abcdef123456\" next=1", "abcdef123456", "next=1");
	expect("upstream api_key=sk-abcdef status=401", "sk-abcdef", "status=401");
	expect("{\"privateKey\":\"0x4c0883a69102937d\",\"ok\":true}", "4c0883a6", "\"ok\":true");
	expect("{\"token\": \"opaque-value-123\"}", "opaque-value", "\"token\": \"[REDACTED]\"");
	expect("secret=abc&page=3", "abc&", "page=3");
	expect("loaded ed25519:fddb8e2a33d54a1cc0b0ab8a3e9a51e84ad9d35ab41bcb4b0fbd5d6dcae7a0e1 ok", "fddb8e2a", "ed25519:[REDACTED] ok");
	expect("wallet secp256k1:0x80a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f", "80a1b2c3", "secp256k1:[REDACTED]");
	/* names inside other words, field errors and short hex are not secrets */
	expect("admin.token: must be a regular file", NULL, "admin.token: must be a regular file");
	expect("prompt_tokens=12 accessTokenHash=sha256:ab", NULL, "prompt_tokens=12 accessTokenHash=sha256:ab");
	expect("token: must be a string", NULL, "token: must be a string");
	expect("algorithm ed25519:abc", NULL, "ed25519:abc");
}

static void t_registered(void **st)
{
	(void)st;
	redact_reset();
	assert_int_equal(redact_register("/var/lib/clawgrid-real"), 0);
	assert_int_equal(redact_register("sk-live-ABCDEF"), 0);
	assert_int_equal(redact_register("sk-live-ABCDEF"), 0); /* twice is fine */
	assert_int_equal(redact_register("abc"), 0);             /* too short: ignored, not an error */
	expect("opened /var/lib/clawgrid-real/clawgrid.db", "/var/lib/clawgrid-real", "[REDACTED]/clawgrid.db");
	expect("key sk-live-ABCDEF and sk-live-ABCDEF again", "sk-live", NULL);
	expect("abc stays", NULL, "abc stays");
	/* growth is bounded by the buffer */
	char small[17];
	memcpy(small, "x sk-live-ABCDEF", 17);
	redact_inplace(small, sizeof small);
	assert_null(strstr(small, "sk-live"));
	assert_true(strlen(small) < sizeof small);
	/* errors go through redaction */
	cg_err e;
	cg_fail(&e, CG_E_UNAVAILABLE, "cannot open /var/lib/clawgrid-real/x with Bearer abcdefgh12345");
	assert_null(strstr(e.msg, "/var/lib/clawgrid-real"));
	assert_null(strstr(e.msg, "abcdefgh12345"));
	redact_reset();
	expect("/var/lib/clawgrid-real", NULL, "/var/lib/clawgrid-real");
}

static void t_log_lines(void **st)
{
	(void)st;
	redact_reset();
	redact_register("/srv/secret-dir");
	int p[2];
	assert_int_equal(pipe(p), 0);
	log_set_fd(p[1]);
	log_set_level(LOG_DEBUG);
	log_info("test", "upstream", "url=%s token=%s path=%s", "http://u:pw@h/", "tok_QWERTYUIOPASDF",
		 "/srv/secret-dir/x");
	log_debug("test", "hdr", "authz=\"Bearer abc.def.ghi\"");
	log_warn("test", "multi\nline", NULL);
	log_set_level(LOG_ERROR);
	log_info("test", "hidden", NULL);
	log_set_fd(2);
	log_set_level(LOG_INFO);
	close(p[1]);
	char buf[4096];
	ssize_t n = read(p[0], buf, sizeof buf - 1);
	close(p[0]);
	assert_true(n > 0);
	buf[n] = 0;
	assert_null(strstr(buf, "pw@"));
	assert_null(strstr(buf, "QWERTYUIOP"));
	assert_null(strstr(buf, "/srv/secret-dir"));
	assert_null(strstr(buf, "abc.def.ghi"));
	assert_null(strstr(buf, "hidden"));
	assert_non_null(strstr(buf, "level=info mod=test msg=\"upstream\""));
	assert_non_null(strstr(buf, "msg=\"multi line\"")); /* one event, one line */
	int lines = 0;
	for (char *q = buf; *q; q++)
		lines += *q == '\n';
	assert_int_equal(lines, 3);
	assert_int_equal(log_level_parse("WARN"), LOG_WARN);
	assert_int_equal(log_level_parse("loud"), -1);
	redact_reset();
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(t_always), cmocka_unit_test(t_named_secrets), cmocka_unit_test(t_registered),
					   cmocka_unit_test(t_log_lines)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
