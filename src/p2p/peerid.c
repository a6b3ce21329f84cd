/* libp2p peer ids: PublicKey protobuf, identity / sha2-256 multihash, base58btc and CIDv1 text. */
#include "p2p/peerid.h"

#include <string.h>

#include "base/enc.h"
#include "crypto/hash.h"
#include "crypto/identity.h"
#include "p2p/pb.h"
#include "p2p/varint.h"

#define MH_IDENTITY 0x00
#define MH_SHA256 0x12
#define CID_V1 0x01
#define CODEC_LIBP2P_KEY 0x72

int peerid_pubkey_encode(buf *out, enum peerid_keytype type, const uint8_t *data, size_t len)
{
	int r = pb_put_varint(out, 1, (uint64_t)type);
	return r ? r : pb_put_bytes(out, 2, data, len);
}

int peerid_pubkey_decode(const uint8_t *pb, size_t n, struct peerid_pubkey *out, cg_err *e)
{
	pb_reader r;
	pb_field f;
	bool have_type = false, have_data = false;
	struct peerid_pubkey k = {0};
	int rc;
	pb_reader_init(&r, pb, n);
	while ((rc = pb_next(&r, &f, e)) == 1) {
		if (f.num == 1 && f.wire == PB_VARINT && !have_type) {
			if (f.u > PEERID_KEY_ECDSA)
				return cg_fail(e, CG_E_INVALID_ARGUMENT, "public key: unknown key type");
			k.type = (enum peerid_keytype)f.u;
			have_type = true;
		} else if (f.num == 2 && f.wire == PB_LEN && !have_data) {
			k.data = f.data;
			k.len = f.len;
			have_data = true;
		} else {
			/* The encoding is hashed into the peer id, so anything beyond the two fields is refused. */
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "public key: unexpected or repeated field");
		}
	}
	if (rc < 0)
		return rc;
	if (!have_type || !have_data)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "public key: missing type or data");
	if (k.len == 0 || k.len > PEERID_MAX_KEY_BYTES)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "public key: bad data length");
	if (k.type == PEERID_KEY_ED25519 && k.len != 32)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "public key: Ed25519 key is not 32 bytes");
	*out = k;
	return 0;
}

int peerid_from_pubkey(peerid *out, const uint8_t *pb, size_t n, cg_err *e)
{
	struct peerid_pubkey k;
	int rc = peerid_pubkey_decode(pb, n, &k, e);
	if (rc)
		return rc;
	/* Peer ids hash the deterministic encoding; a differently encoded key would name another peer. */
	buf canon;
	buf_init(&canon, PEERID_MAX_KEY_BYTES + 16);
	rc = peerid_pubkey_encode(&canon, k.type, k.data, k.len);
	bool same = rc == 0 && canon.len == n && memcmp(canon.data, pb, n) == 0;
	buf_done(&canon);
	if (!same)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "public key: not deterministically encoded");
	peerid id = {0};
	if (n <= PEERID_IDENTITY_LIMIT) {
		id.b[0] = MH_IDENTITY;
		id.b[1] = (uint8_t)n;
		memcpy(id.b + 2, pb, n);
		id.len = (uint8_t)(n + 2);
	} else {
		id.b[0] = MH_SHA256;
		id.b[1] = 32;
		sha256(id.b + 2, pb, n);
		id.len = 34;
	}
	*out = id;
	return 0;
}

void peerid_from_ed25519(peerid *out, const uint8_t pk[static 32])
{
	/* One encoding of the node-key peer id in the tree: crypto/identity's. */
	_Static_assert(PEERID_ED25519_LEN <= PEERID_MAX_BYTES, "an Ed25519 peer id must fit a peerid");
	memset(out, 0, sizeof *out);
	peerid_bytes_from_ed25519(pk, out->b);
	out->len = PEERID_ED25519_LEN;
}

int peerid_from_bytes(peerid *out, const uint8_t *p, size_t n, cg_err *e)
{
	if (n < 2)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "peer id: too short");
	if (p[0] == MH_IDENTITY) {
		size_t klen = p[1];
		if (klen > PEERID_IDENTITY_LIMIT || n != klen + 2)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "peer id: bad identity multihash length");
		peerid tmp;
		int rc = peerid_from_pubkey(&tmp, p + 2, klen, e);
		if (rc)
			return rc;
		*out = tmp;
		return 0;
	}
	if (p[0] == MH_SHA256) {
		if (p[1] != 32 || n != 34)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "peer id: bad sha2-256 multihash length");
		memset(out, 0, sizeof *out);
		memcpy(out->b, p, n);
		out->len = (uint8_t)n;
		return 0;
	}
	return cg_fail(e, CG_E_INVALID_ARGUMENT, "peer id: unsupported multihash");
}

int peerid_parse(peerid *out, const char *s, size_t len, cg_err *e)
{
	uint8_t raw[128];
	long n;
	if (len == 0 || len >= PEERID_TEXT_MAX)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "peer id: bad text length");
	/* Spec rule: a leading '1' or "Qm" is a bare base58btc multihash; anything else is a multibase CID. */
	if (s[0] == '1' || (len >= 2 && s[0] == 'Q' && s[1] == 'm')) {
		n = base58_decode(raw, sizeof raw, s, len);
		if (n < 0)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "peer id: bad base58btc text");
		return peerid_from_bytes(out, raw, (size_t)n, e);
	}
	if (s[0] == 'b')
		n = base32_decode(raw, sizeof raw, s + 1, len - 1);
	else if (s[0] == 'z')
		n = base58_decode(raw, sizeof raw, s + 1, len - 1);
	else
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "peer id: unknown text form");
	if (n < 0)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "peer id: bad multibase text");
	uint64_t ver, codec;
	int a = varint_decode(raw, (size_t)n, &ver, NULL);
	if (a <= 0 || ver != CID_V1)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "peer id: not a CIDv1");
	int b = varint_decode(raw + a, (size_t)n - (size_t)a, &codec, NULL);
	if (b <= 0 || codec != CODEC_LIBP2P_KEY)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "peer id: CID codec is not libp2p-key");
	return peerid_from_bytes(out, raw + a + b, (size_t)n - (size_t)a - (size_t)b, e);
}

int peerid_to_string(const peerid *id, char *out, size_t cap)
{
	long n = base58_encode(out, cap, id->b, id->len);
	return n < 0 ? -1 : (int)n;
}

int peerid_to_cid(const peerid *id, char *out, size_t cap)
{
	uint8_t raw[2 + PEERID_MAX_BYTES];
	raw[0] = CID_V1;
	raw[1] = CODEC_LIBP2P_KEY;
	memcpy(raw + 2, id->b, id->len);
	if (cap < 2)
		return -1;
	out[0] = 'b';
	long n = base32_encode(out + 1, cap - 1, raw, (size_t)id->len + 2);
	return n < 0 ? -1 : (int)n + 1;
}

bool peerid_equal(const peerid *a, const peerid *b)
{
	return a->len == b->len && memcmp(a->b, b->b, a->len) == 0;
}

int peerid_get_pubkey(const peerid *id, const uint8_t **pb, size_t *n, cg_err *e)
{
	if (id->len < 2 || id->b[0] != MH_IDENTITY)
		return cg_fail(e, CG_E_NOT_FOUND, "peer id: the public key is not inlined");
	*pb = id->b + 2;
	*n = id->b[1];
	return 0;
}

int peerid_get_ed25519(const peerid *id, uint8_t pk[static 32], cg_err *e)
{
	const uint8_t *pb = NULL;
	size_t n = 0;
	struct peerid_pubkey k;
	int rc = peerid_get_pubkey(id, &pb, &n, e);
	if (rc)
		return rc;
	if (peerid_pubkey_decode(pb, n, &k, e) != 0 || k.type != PEERID_KEY_ED25519)
		return cg_fail(e, CG_E_NOT_FOUND, "peer id: not an Ed25519 key");
	memcpy(pk, k.data, 32);
	return 0;
}

bool peerid_matches_pubkey(const peerid *id, const uint8_t *pb, size_t n)
{
	peerid other;
	return peerid_from_pubkey(&other, pb, n, NULL) == 0 && peerid_equal(id, &other);
}
