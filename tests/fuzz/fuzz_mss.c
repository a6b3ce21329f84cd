/* libFuzzer target for multistream-select. Byte 0 picks the role (responder, initiator, initiator with ls)
 * and byte 1 the chunk size; the rest is what the peer sends. Checks: consumption never exceeds the input,
 * a result is final, a selected protocol is one we offered, replies stay bounded. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "p2p/mss.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2 || size > 1 << 16)
		return 0;
	static const char *protos[] = {"/noise", "/yamux/1.0.0", "/mplex/6.7.0", "/ipfs/id/1.0.0"};
	int role = data[0] % 3;
	size_t chunk = (size_t)data[1] + 1;
	data += 2;
	size -= 2;
	mss *m = role == 0 ? mss_new_responder(protos, 4, NULL) : mss_new_initiator(protos, 4, role == 2, NULL);
	buf out, in;
	buf_init(&out, 1 << 20);
	buf_init(&in, 1 << 17);
	if (!m || mss_start(m, &out) != 0)
		abort();
	int rc = MSS_CONTINUE;
	size_t off = 0;
	while (off < size && rc == MSS_CONTINUE) {
		size_t k = size - off < chunk ? size - off : chunk;
		if (buf_append(&in, data + off, k) != 0)
			abort();
		off += k;
		size_t used;
		rc = mss_feed(m, in.data, in.len, &used, &out, NULL);
		if (used > in.len)
			abort();
		buf_consume(&in, used);
		if (in.len > MSS_MAX_MSG * 8 + 16 && rc == MSS_CONTINUE)
			abort(); /* an unfinished message can never be longer than the biggest accepted one */
	}
	if (rc == MSS_DONE) {
		const char *sel = mss_selected(m);
		int idx = mss_selected_index(m);
		if (!sel || idx < 0 || idx > 3 || strcmp(sel, protos[idx]) != 0)
			abort();
	} else if (mss_selected(m)) {
		abort();
	}
	for (size_t i = 0; i < mss_ls_count(m); i++)
		if (!mss_ls_get(m, i))
			abort();
	mss_free(m);
	buf_done(&out);
	buf_done(&in);
	return 0;
}
