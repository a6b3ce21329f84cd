/* libFuzzer target for the protobuf reader: iterate every field (and, for length-delimited fields, the
 * nested message they may hold, a few levels deep) checking that borrowed data stays inside the input; the
 * PublicKey decoder runs on every length-delimited field too. Re-encoding what was read gives a message that
 * reads back the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "p2p/pb.h"
#include "p2p/peerid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(const uint8_t *p, size_t n, const uint8_t *lo, const uint8_t *hi, int depth)
{
	pb_reader r;
	pb_field f;
	buf re;
	buf_init(&re, 1 << 20);
	pb_reader_init(&r, p, n);
	int rc;
	size_t count = 0;
	while ((rc = pb_next(&r, &f, NULL)) == 1) {
		count++;
		if (f.num == 0 || f.num > PB_MAX_FIELD)
			abort();
		if (f.wire == PB_LEN) {
			if (f.data < lo || f.data + f.len > hi)
				abort();
			struct peerid_pubkey k;
			if (peerid_pubkey_decode(f.data, f.len, &k, NULL) == 0 &&
			    (k.data < f.data || k.data + k.len > f.data + f.len))
				abort();
			if (depth < 3)
				walk(f.data, f.len, lo, hi, depth + 1);
			if (pb_put_bytes(&re, f.num, f.data, f.len))
				abort();
		} else if (f.wire == PB_VARINT) {
			if (pb_put_varint(&re, f.num, f.u))
				abort();
		} else if (f.wire == PB_FIXED32) {
			if (f.u > UINT32_MAX || pb_put_fixed32(&re, f.num, (uint32_t)f.u))
				abort();
		} else if (f.wire == PB_FIXED64) {
			if (pb_put_fixed64(&re, f.num, f.u))
				abort();
		} else {
			abort();
		}
	}
	if (rc < 0 && rc != -CG_E_INVALID_ARGUMENT)
		abort();
	if (rc == 0) {
		/* The canonical re-encoding has the same fields. */
		pb_reader_init(&r, re.data, re.len);
		size_t again = 0;
		while (pb_next(&r, &f, NULL) == 1)
			again++;
		if (again != count)
			abort();
	}
	buf_done(&re);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 16)
		return 0;
	walk(data, size, data, data + size, 0);
	return 0;
}
