#include "base/enc.h"

#include <stdlib.h>
#include <string.h>

static const char hexd[] = "0123456789abcdef";

void hex_encode(char *out, const uint8_t *in, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hexd[in[i] >> 4];
		out[2 * i + 1] = hexd[in[i] & 15];
	}
	out[2 * n] = 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int hex_decode(uint8_t *out, size_t outlen, const char *in, size_t inlen, bool allow_0x)
{
	if (allow_0x && inlen >= 2 && in[0] == '0' && (in[1] == 'x' || in[1] == 'X')) {
		in += 2;
		inlen -= 2;
	}
	if (inlen != 2 * outlen)
		return -1;
	for (size_t i = 0; i < outlen; i++) {
		int h = hexval(in[2 * i]), l = hexval(in[2 * i + 1]);
		if (h < 0 || l < 0)
			return -1;
		out[i] = (uint8_t)(h << 4 | l);
	}
	return 0;
}

static const char b64s[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64u[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t base64_encoded_len(size_t n, bool url)
{
	return url ? (n / 3) * 4 + (n % 3 ? n % 3 + 1 : 0) : ((n + 2) / 3) * 4;
}

void base64_encode(char *out, const uint8_t *in, size_t n, bool url)
{
	const char *a = url ? b64u : b64s;
	size_t o = 0, i = 0;
	for (; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = a[v >> 18];
		out[o++] = a[(v >> 12) & 63];
		out[o++] = a[(v >> 6) & 63];
		out[o++] = a[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		out[o++] = a[v >> 18];
		out[o++] = a[(v >> 12) & 63];
		if (!url) {
			out[o++] = '=';
			out[o++] = '=';
		}
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = a[v >> 18];
		out[o++] = a[(v >> 12) & 63];
		out[o++] = a[(v >> 6) & 63];
		if (!url)
			out[o++] = '=';
	}
	out[o] = 0;
}

size_t base64_decoded_max(size_t inlen)
{
	return (inlen / 4 + 1) * 3;
}

static int b64val(char c, bool url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}

long base64_decode(uint8_t *out, const char *in, size_t inlen, bool url)
{
	while (inlen && in[inlen - 1] == '=')
		inlen--;
	if (inlen % 4 == 1)
		return -1;
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < inlen; i++) {
		int v = b64val(in[i], url);
		if (v < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	/* leftover bits must be zero (canonical encoding) */
	if (bits && (acc & ((1u << bits) - 1)))
		return -1;
	return (long)o;
}

static const char b58[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

long base58_encode(char *out, size_t cap, const uint8_t *in, size_t n)
{
	size_t zeros = 0;
	while (zeros < n && in[zeros] == 0)
		zeros++;
	size_t size = (n - zeros) * 138 / 100 + 1;
	uint8_t *tmp = calloc(size ? size : 1, 1);
	if (!tmp)
		return -1;
	size_t high = size - 1, j = size - 1;
	for (size_t i = zeros; i < n; i++, high = j) {
		unsigned carry = in[i];
		for (j = size - 1; j > high || carry; j--) {
			carry += 256u * tmp[j];
			tmp[j] = (uint8_t)(carry % 58);
			carry /= 58;
			if (j == 0)
				break;
		}
	}
	size_t k = 0;
	while (k < size && tmp[k] == 0)
		k++;
	size_t len = zeros + (size - k);
	if (len + 1 > cap) {
		free(tmp);
		return -1;
	}
	memset(out, '1', zeros);
	for (size_t o = zeros; k < size; k++, o++)
		out[o] = b58[tmp[k]];
	out[len] = 0;
	free(tmp);
	return (long)len;
}

long base58_decode(uint8_t *out, size_t cap, const char *in, size_t inlen)
{
	size_t zeros = 0;
	while (zeros < inlen && in[zeros] == '1')
		zeros++;
	size_t size = (inlen - zeros) * 733 / 1000 + 1;
	uint8_t *tmp = calloc(size, 1);
	if (!tmp)
		return -1;
	for (size_t i = zeros; i < inlen; i++) {
		const char *p = memchr(b58, in[i], 58);
		if (!p || in[i] == 0) {
			free(tmp);
			return -1;
		}
		unsigned carry = (unsigned)(p - b58);
		for (size_t j = size; j-- > 0;) {
			carry += 58u * tmp[j];
			tmp[j] = (uint8_t)(carry & 0xff);
			carry >>= 8;
		}
		if (carry) {
			free(tmp);
			return -1;
		}
	}
	size_t k = 0;
	while (k < size && tmp[k] == 0)
		k++;
	size_t len = zeros + (size - k);
	if (len > cap) {
		free(tmp);
		return -1;
	}
	memset(out, 0, zeros);
	memcpy(out + zeros, tmp + k, size - k);
	free(tmp);
	return (long)len;
}

static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";

long base32_encode(char *out, size_t cap, const uint8_t *in, size_t n)
{
	size_t need = (n * 8 + 4) / 5;
	if (need + 1 > cap)
		return -1;
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8 | in[i]) & 0xffff;
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			out[o++] = b32[(acc >> bits) & 31];
		}
	}
	if (bits)
		out[o++] = b32[(acc << (5 - bits)) & 31];
	out[o] = 0;
	return (long)o;
}

long base32_decode(uint8_t *out, size_t cap, const char *in, size_t inlen)
{
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < inlen; i++) {
		char c = in[i];
		int v;
		if (c >= 'a' && c <= 'z')
			v = c - 'a';
		else if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= '2' && c <= '7')
			v = c - '2' + 26;
		else
			return -1;
		acc = (acc << 5 | (uint32_t)v) & 0xffff;
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			if (o >= cap)
				return -1;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	if (bits >= 5 || (acc & ((1u << bits) - 1)))
		return -1;
	return (long)o;
}
