/* Keccak-256 (Ethereum), SHA-256, HKDF (RFC 5869 test case 1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/enc.h"
#include "crypto/hash.h"

static void hexeq(const uint8_t *b, size_t n, const char *want)
{
	char h[256];
	hex_encode(h, b, n);
	assert_string_equal(h, want);
}

static void t_keccak(void **s)
{
	(void)s;
	uint8_t o[32];
	keccak256(o, "", 0);
	hexeq(o, 32, "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
	keccak256(o, "abc", 3);
	hexeq(o, 32, "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45");
	/* multi-block, incremental == one-shot */
	uint8_t big[1000], o2[32];
	for (int i = 0; i < 1000; i++)
		big[i] = (uint8_t)i;
	keccak256(o, big, sizeof big);
	struct keccak256_ctx c;
	keccak256_init(&c);
	for (int i = 0; i < 1000; i += 7)
		keccak256_update(&c, big + i, (size_t)(1000 - i < 7 ? 1000 - i : 7));
	keccak256_final(&c, o2);
	assert_memory_equal(o, o2, 32);
}

static void t_sha256(void **s)
{
	(void)s;
	uint8_t o[32];
	sha256(o, "abc", 3);
	hexeq(o, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	char t[72];
	sha256_tagged_hex(t, "abc", 3);
	assert_string_equal(t, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void t_hkdf(void **s)
{
	(void)s;
	uint8_t ikm[22], salt[13], info[10], okm[42];
	memset(ikm, 0x0b, sizeof ikm);
	for (int i = 0; i < 13; i++)
		salt[i] = (uint8_t)i;
	for (int i = 0; i < 10; i++)
		info[i] = (uint8_t)(0xf0 + i);
	assert_int_equal(hkdf_sha256(okm, 42, salt, 13, ikm, 22, info, 10), 0);
	hexeq(okm, 42,
	      "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_keccak),
		cmocka_unit_test(t_sha256),
		cmocka_unit_test(t_hkdf),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
