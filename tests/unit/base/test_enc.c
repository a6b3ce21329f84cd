/* Encodings against published vectors (RFC 4648 §10, Bitcoin base58 vectors). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/enc.h"

static void t_base64(void **s)
{
	(void)s;
	static const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *std[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
	static const char *url[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
	char out[64];
	uint8_t dec[64];
	for (int i = 0; i < 7; i++) {
		size_t n = strlen(in[i]);
		base64_encode(out, (const uint8_t *)in[i], n, false);
		assert_string_equal(out, std[i]);
		assert_int_equal(base64_encoded_len(n, false), strlen(std[i]));
		base64_encode(out, (const uint8_t *)in[i], n, true);
		assert_string_equal(out, url[i]);
		assert_int_equal(base64_decode(dec, std[i], strlen(std[i]), false), (long)n);
		assert_memory_equal(dec, in[i], n);
		assert_int_equal(base64_decode(dec, url[i], strlen(url[i]), true), (long)n);
	}
	assert_int_equal(base64_decode(dec, "Zm9v!", 5, false), -1);
	assert_int_equal(base64_decode(dec, "Zh", 2, true), -1); /* non-canonical trailing bits */
}

static void t_base32(void **s)
{
	(void)s;
	static const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *b32[] = {"", "my", "mzxq", "mzxw6", "mzxw6yq", "mzxw6ytb", "mzxw6ytboi"};
	char out[64];
	uint8_t dec[64];
	for (int i = 0; i < 7; i++) {
		size_t n = strlen(in[i]);
		assert_int_equal(base32_encode(out, sizeof out, (const uint8_t *)in[i], n), (long)strlen(b32[i]));
		assert_string_equal(out, b32[i]);
		assert_int_equal(base32_decode(dec, sizeof dec, b32[i], strlen(b32[i])), (long)n);
		assert_memory_equal(dec, in[i], n);
	}
	assert_int_equal(base32_decode(dec, sizeof dec, "m1", 2), -1);
}

static void t_base58(void **s)
{
	(void)s;
	char out[128];
	uint8_t dec[128];
	assert_int_equal(base58_encode(out, sizeof out, (const uint8_t *)"Hello World!", 12), 17);
	assert_string_equal(out, "2NEpo7TZRRrLZSi2U");
	static const uint8_t z[] = {0, 0, 0x28, 0x7f, 0xb4, 0xcd};
	assert_int_equal(base58_encode(out, sizeof out, z, sizeof z), 8);
	assert_string_equal(out, "11233QC4");
	assert_int_equal(base58_decode(dec, sizeof dec, "11233QC4", 8), 6);
	assert_memory_equal(dec, z, 6);
	assert_int_equal(base58_decode(dec, sizeof dec, "0OIl", 4), -1);
	assert_int_equal(base58_encode(out, 4, (const uint8_t *)"Hello World!", 12), -1);
}

static void t_hex(void **s)
{
	(void)s;
	uint8_t b[3];
	char out[7];
	assert_int_equal(hex_decode(b, 3, "0xAbCdEf", 8, true), 0);
	hex_encode(out, b, 3);
	assert_string_equal(out, "abcdef");
	assert_int_equal(hex_decode(b, 3, "abcdeg", 6, false), -1);
	assert_int_equal(hex_decode(b, 3, "abcd", 4, false), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_base64),
		cmocka_unit_test(t_base32),
		cmocka_unit_test(t_base58),
		cmocka_unit_test(t_hex),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
