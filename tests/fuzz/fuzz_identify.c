/* libFuzzer target for the identify message decoder (src/p2p/identify.c): whatever a peer sends, the
 * decoder returns 0 or an error, never reads outside the input, keeps every field within its caps and
 * NUL-terminated, and what it accepted re-encodes to a message that decodes to the same fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "p2p/identify.h"
#include "p2p/multiaddr.h"
#include "p2p/pb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_str(const char *s, size_t cap)
{
	if (strnlen(s, cap) >= cap)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct p2p_id_info a, b;
	if (p2p_identify_decode(data, size, &a, NULL) < 0)
		return 0;
	if (a.n_addrs > P2P_ID_MAX_ADDRS || a.n_protos > P2P_ID_MAX_PROTOS || a.pubkey_len > sizeof a.pubkey)
		abort();
	check_str(a.agent_version, sizeof a.agent_version);
	check_str(a.protocol_version, sizeof a.protocol_version);
	check_str(a.observed_addr, sizeof a.observed_addr);
	/* Re-encode what was kept (fields in number order) and decode again: the same message. */
	buf m, ma;
	buf_init(&m, 1 << 20);
	buf_init(&ma, MA_MAX_BYTES);
	int rc = 0;
	if (a.has_pubkey)
		rc |= pb_put_bytes(&m, 1, a.pubkey, a.pubkey_len);
	for (size_t i = 0; i < a.n_addrs; i++) {
		check_str(a.addrs[i], sizeof a.addrs[i]);
		buf_reset(&ma);
		if (ma_from_string(&ma, a.addrs[i], strlen(a.addrs[i]), NULL) != 0)
			abort(); /* text we produced must parse back */
		rc |= pb_put_bytes(&m, 2, ma.data, ma.len);
	}
	for (size_t i = 0; i < a.n_protos; i++) {
		check_str(a.protos[i], sizeof a.protos[i]);
		rc |= pb_put_str(&m, 3, a.protos[i]);
	}
	if (rc != 0)
		abort();
	if (p2p_identify_decode(m.data, m.len, &b, NULL) != 0 || b.n_addrs != a.n_addrs || b.n_protos != a.n_protos ||
	    b.pubkey_len != a.pubkey_len)
		abort();
	for (size_t i = 0; i < a.n_addrs; i++)
		if (strcmp(a.addrs[i], b.addrs[i]) != 0)
			abort();
	buf_done(&m);
	buf_done(&ma);
	return 0;
}
