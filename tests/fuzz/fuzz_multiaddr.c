/* libFuzzer target for multiaddr. First byte picks the form. Binary: validate, iterate, dial target, /p2p
 * helpers; when it has a text form, text -> binary must give back the same bytes. Text: parse; whatever
 * parses prints, and the printed text parses to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "p2p/multiaddr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_binary(const uint8_t *m, size_t n)
{
	cg_err e;
	if (ma_validate(m, n, &e) != 0) {
		if (e.code != CG_E_INVALID_ARGUMENT || !e.msg[0])
			abort();
		return;
	}
	struct ma_dial d;
	if (ma_dial_target(m, n, &d, NULL) == 0 && (d.port == 0 && d.host[0] == 0))
		abort();
	const uint8_t *id;
	size_t idlen;
	if (ma_get_p2p(m, n, &id, &idlen, NULL) == 0 && (id < m || id + idlen > m + n))
		abort();
	size_t base = ma_without_p2p(m, n);
	if (base > n)
		abort();
	buf t, b;
	buf_init(&t, MA_MAX_TEXT * 4);
	buf_init(&b, MA_MAX_BYTES * 2);
	if (ma_to_string(&t, m, n, NULL) == 0) {
		if (ma_from_string(&b, (const char *)t.data, t.len, &e) != 0)
			abort();
		if (b.len != n || memcmp(b.data, m, n) != 0)
			abort();
	}
	buf_done(&t);
	buf_done(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 4096)
		return 0;
	if (data[0] & 1) {
		check_binary(data + 1, size - 1);
		return 0;
	}
	buf b;
	buf_init(&b, MA_MAX_BYTES * 2);
	if (ma_from_string(&b, (const char *)data + 1, size - 1, NULL) == 0) {
		if (ma_validate(b.data, b.len, NULL) != 0)
			abort();
		buf t, b2;
		buf_init(&t, MA_MAX_TEXT * 4);
		buf_init(&b2, MA_MAX_BYTES * 2);
		if (ma_to_string(&t, b.data, b.len, NULL) != 0)
			abort();
		if (ma_from_string(&b2, (const char *)t.data, t.len, NULL) != 0 || b2.len != b.len ||
		    memcmp(b2.data, b.data, b.len) != 0)
			abort();
		buf_done(&t);
		buf_done(&b2);
		check_binary(b.data, b.len);
	} else if (b.len != 0) {
		abort(); /* a failed parse leaves the buffer as it was */
	}
	buf_done(&b);
	return 0;
}
