/* libFuzzer target for peer ids: the input as text, as a binary multihash and as a PublicKey protobuf.
 * Whatever is accepted prints in both text forms, and both parse back to the same peer id. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "p2p/peerid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void roundtrip(const peerid *id)
{
	char t[PEERID_TEXT_MAX], c[PEERID_TEXT_MAX];
	peerid a, b;
	int tl = peerid_to_string(id, t, sizeof t), cl = peerid_to_cid(id, c, sizeof c);
	if (tl <= 0 || cl <= 0)
		abort();
	if (peerid_parse(&a, t, (size_t)tl, NULL) != 0 || !peerid_equal(&a, id))
		abort();
	if (peerid_parse(&b, c, (size_t)cl, NULL) != 0 || !peerid_equal(&b, id))
		abort();
	const uint8_t *pb;
	size_t n;
	if (peerid_get_pubkey(id, &pb, &n, NULL) == 0 && !peerid_matches_pubkey(id, pb, n))
		abort();
	uint8_t pk[32];
	peerid e;
	if (peerid_get_ed25519(id, pk, NULL) == 0) {
		peerid_from_ed25519(&e, pk);
		if (!peerid_equal(&e, id))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	peerid id;
	cg_err e;
	if (peerid_parse(&id, (const char *)data, size, &e) == 0)
		roundtrip(&id);
	else if (!e.msg[0])
		abort();
	if (peerid_from_bytes(&id, data, size, NULL) == 0) {
		if (id.len != size || memcmp(id.b, data, size) != 0)
			abort();
		roundtrip(&id);
	}
	if (peerid_from_pubkey(&id, data, size, NULL) == 0) {
		roundtrip(&id);
		if (!peerid_matches_pubkey(&id, data, size))
			abort();
	}
	return 0;
}
