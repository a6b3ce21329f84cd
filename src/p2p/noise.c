/* Noise_XX_25519_ChaChaPoly_SHA256 (Noise rev 34) with the libp2p handshake payload and secure channel. */
#include "p2p/noise.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/hash.h"
#include "p2p/keysig.h"
#include "p2p/pb.h"

#define PROTOCOL_NAME "Noise_XX_25519_ChaChaPoly_SHA256" /* exactly 32 bytes = HASHLEN: h = name */
#define SIG_PREFIX "noise-libp2p-static-key:"
#define DHLEN 32
#define HASHLEN 32
/* Nonce 2^64-1 is reserved by the Noise spec (rekey); reaching it ends the cipher state. */
#define NONCE_MAX UINT64_MAX
#define MAX_PAYLOAD 8192 /* libp2p handshake payloads are ~100 bytes plus extensions */

struct cipher {
	uint8_t k[32];
	uint64_t n;
	bool has_key;
};

struct noise_chan {
	struct cipher tx, rx;
	bool dead;
};

struct noise_hs {
	bool initiator, libp2p, done, split, failed;
	int msg; /* index of the next handshake message (0, 1, 2; 3 = finished) */
	struct cipher cs;
	uint8_t ck[HASHLEN], h[HASHLEN];
	uint8_t s_sk[DHLEN], s_pk[DHLEN], e_sk[DHLEN], e_pk[DHLEN];
	uint8_t rs[DHLEN], re[DHLEN];
	bool fixed_e;
	/* libp2p identity */
	uint8_t id_sk[crypto_sign_SECRETKEYBYTES];
	peerid expect;
	bool has_expect;
	char *muxers[NOISE_MAX_MUXERS];
	size_t n_muxers;
	/* what the remote proved */
	peerid remote;
	uint8_t remote_key[PEERID_MAX_KEY_BYTES + 8]; /* the PublicKey protobuf: Data plus its framing */
	size_t remote_key_len;
	char *rmuxers[NOISE_MAX_MUXERS];
	size_t n_rmuxers;
};

/* ---- CipherState ---- */

static void nonce12(uint8_t out[12], uint64_t n)
{
	memset(out, 0, 4);
	for (int i = 0; i < 8; i++)
		out[4 + i] = (uint8_t)(n >> (8 * i));
}

/* Encrypts n bytes at p in place, writing the tag at p+n. */
static int cipher_seal(struct cipher *c, const uint8_t *ad, size_t adlen, uint8_t *p, size_t n, cg_err *e)
{
	if (c->n == NONCE_MAX)
		return cg_fail(e, CG_E_UNAVAILABLE, "noise: nonce exhausted");
	uint8_t nonce[12];
	nonce12(nonce, c->n);
	crypto_aead_chacha20poly1305_ietf_encrypt_detached(p, p + n, NULL, p, n, ad, adlen, NULL, nonce, c->k);
	c->n++;
	return 0;
}

/* Decrypts n bytes (ciphertext + tag) at p in place; the plaintext is n - 16 bytes. */
static int cipher_open(struct cipher *c, const uint8_t *ad, size_t adlen, uint8_t *p, size_t n, cg_err *e)
{
	if (c->n == NONCE_MAX)
		return cg_fail(e, CG_E_UNAVAILABLE, "noise: nonce exhausted");
	if (n < NOISE_TAG_LEN)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "noise: message shorter than a tag");
	uint8_t nonce[12];
	nonce12(nonce, c->n);
	if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(p, NULL, p, n - NOISE_TAG_LEN,
							       p + n - NOISE_TAG_LEN, ad, adlen, nonce,
							       c->k) != 0)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "noise: authentication failed");
	c->n++;
	return 0;
}

/* ---- SymmetricState ---- */

static void mix_hash(noise_hs *hs, const uint8_t *p, size_t n)
{
	crypto_hash_sha256_state st;
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, hs->h, HASHLEN);
	crypto_hash_sha256_update(&st, p, n);
	crypto_hash_sha256_final(&st, hs->h);
}

/* HKDF(ck, ikm, 2) of the Noise spec is RFC 5869 with salt = ck, empty info, 64 bytes of output. */
static void hkdf2(const uint8_t ck[HASHLEN], const uint8_t *ikm, size_t n, uint8_t o1[32], uint8_t o2[32])
{
	uint8_t out[64];
	static const uint8_t none[1];
	hkdf_sha256(out, sizeof out, ck, HASHLEN, n ? ikm : none, n, NULL, 0);
	memcpy(o1, out, 32);
	memcpy(o2, out + 32, 32);
	sodium_memzero(out, sizeof out);
}

static void mix_key(noise_hs *hs, const uint8_t *ikm, size_t n)
{
	uint8_t ck[HASHLEN];
	hkdf2(hs->ck, ikm, n, ck, hs->cs.k);
	memcpy(hs->ck, ck, HASHLEN);
	sodium_memzero(ck, sizeof ck);
	hs->cs.n = 0;
	hs->cs.has_key = true;
}

/* Appends EncryptAndHash(pt) to out. */
static int encrypt_and_hash(noise_hs *hs, const uint8_t *pt, size_t n, buf *out, cg_err *e)
{
	size_t off = out->len, tag = hs->cs.has_key ? NOISE_TAG_LEN : 0;
	if (buf_append(out, pt, n) != 0)
		return cg_fail(e, CG_E_QUOTA_EXCEEDED, "noise: output buffer full");
	if (tag) {
		static const uint8_t zeros[NOISE_TAG_LEN];
		if (buf_append(out, zeros, tag) != 0)
			return cg_fail(e, CG_E_QUOTA_EXCEEDED, "noise: output buffer full");
		int rc = cipher_seal(&hs->cs, hs->h, HASHLEN, out->data + off, n, e);
		if (rc)
			return rc;
	}
	mix_hash(hs, out->data + off, n + tag);
	return 0;
}

/* DecryptAndHash of ct[0..n) into pt (room for n bytes). Returns the plaintext length or <0. */
static long decrypt_and_hash(noise_hs *hs, const uint8_t *ct, size_t n, uint8_t *pt, cg_err *e)
{
	memcpy(pt, ct, n);
	if (!hs->cs.has_key) {
		mix_hash(hs, ct, n);
		return (long)n;
	}
	int rc = cipher_open(&hs->cs, hs->h, HASHLEN, pt, n, e);
	if (rc)
		return rc;
	mix_hash(hs, ct, n);
	return (long)(n - NOISE_TAG_LEN);
}

static int dh(uint8_t out[32], const uint8_t sk[32], const uint8_t pk[32], cg_err *e)
{
	/* libsodium refuses an all-zero result (a small-order public key), as Noise allows. */
	if (crypto_scalarmult(out, sk, pk) != 0)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "noise: invalid remote public key");
	return 0;
}

static int mix_dh(noise_hs *hs, const uint8_t sk[32], const uint8_t pk[32], cg_err *e)
{
	uint8_t shared[32];
	int rc = dh(shared, sk, pk, e);
	if (!rc)
		mix_key(hs, shared, sizeof shared);
	sodium_memzero(shared, sizeof shared);
	return rc;
}

/* ---- handshake messages (XX) ---- */

static bool my_turn(const noise_hs *hs)
{
	return (hs->msg % 2 == 0) == hs->initiator;
}

/* XX: msg0 -> e; msg1 <- e, ee, s, es; msg2 -> s, se. Appends the unframed message to out. */
static int write_msg(noise_hs *hs, const uint8_t *payload, size_t n, buf *out, cg_err *e)
{
	int rc = 0;
	if (hs->msg > 2 || !my_turn(hs))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "noise: not our turn to write");
	switch (hs->msg) {
	case 0:
	case 1:
		if (!hs->fixed_e) {
			randombytes_buf(hs->e_sk, DHLEN);
		}
		crypto_scalarmult_base(hs->e_pk, hs->e_sk);
		if (buf_append(out, hs->e_pk, DHLEN) != 0)
			return cg_fail(e, CG_E_QUOTA_EXCEEDED, "noise: output buffer full");
		mix_hash(hs, hs->e_pk, DHLEN);
		if (hs->msg == 1) {
			if ((rc = mix_dh(hs, hs->e_sk, hs->re, e)))                      /* ee */
				return rc;
			if ((rc = encrypt_and_hash(hs, hs->s_pk, DHLEN, out, e)))        /* s */
				return rc;
			if ((rc = mix_dh(hs, hs->s_sk, hs->re, e)))                      /* es */
				return rc;
		}
		break;
	case 2:
		if ((rc = encrypt_and_hash(hs, hs->s_pk, DHLEN, out, e)))                /* s */
			return rc;
		if ((rc = mix_dh(hs, hs->s_sk, hs->re, e)))                              /* se */
			return rc;
		break;
	}
	if ((rc = encrypt_and_hash(hs, payload, n, out, e)))
		return rc;
	hs->msg++;
	return 0;
}

/* Reads one unframed message; the payload is appended to pl. */
static int read_msg(noise_hs *hs, const uint8_t *m, size_t n, buf *pl, cg_err *e)
{
	int rc;
	size_t off = 0;
	uint8_t tmp[DHLEN + NOISE_TAG_LEN];
	if (hs->msg > 2 || my_turn(hs))
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "noise: not our turn to read");
	switch (hs->msg) {
	case 0:
	case 1:
		if (n < DHLEN)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "noise: handshake message too short");
		memcpy(hs->re, m, DHLEN);
		mix_hash(hs, hs->re, DHLEN);
		off = DHLEN;
		if (hs->msg == 1) {
			if ((rc = mix_dh(hs, hs->e_sk, hs->re, e)))                       /* ee */
				return rc;
			if (n - off < DHLEN + NOISE_TAG_LEN)
				return cg_fail(e, CG_E_INVALID_ARGUMENT, "noise: handshake message too short");
			long k = decrypt_and_hash(hs, m + off, DHLEN + NOISE_TAG_LEN, tmp, e); /* s */
			if (k < 0)
				return (int)k;
			memcpy(hs->rs, tmp, DHLEN);
			off += DHLEN + NOISE_TAG_LEN;
			if ((rc = mix_dh(hs, hs->e_sk, hs->rs, e)))                       /* es */
				return rc;
		}
		break;
	case 2: {
		if (n < DHLEN + NOISE_TAG_LEN)
			return cg_fail(e, CG_E_INVALID_ARGUMENT, "noise: handshake message too short");
		long k = decrypt_and_hash(hs, m, DHLEN + NOISE_TAG_LEN, tmp, e);          /* s */
		if (k < 0)
			return (int)k;
		memcpy(hs->rs, tmp, DHLEN);
		off = DHLEN + NOISE_TAG_LEN;
		if ((rc = mix_dh(hs, hs->e_sk, hs->rs, e)))                               /* se */
			return rc;
		break;
	}
	}
	size_t plen = n - off;
	if (hs->cs.has_key && plen < NOISE_TAG_LEN)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "noise: handshake message too short");
	size_t start = pl->len;
	if (buf_append(pl, m + off, plen) != 0)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "noise: handshake payload too large");
	/* Decrypt in place in pl: decrypt_and_hash copies ct to pt first, so pass a copy of the ciphertext. */
	uint8_t *ct = malloc(plen ? plen : 1);
	if (!ct)
		return cg_fail(e, CG_E_INTERNAL, "noise: out of memory");
	memcpy(ct, m + off, plen);
	long k = decrypt_and_hash(hs, ct, plen, pl->data + start, e);
	free(ct);
	if (k < 0) {
		pl->len = start;
		return (int)k;
	}
	pl->len = start + (size_t)k;
	pl->data[pl->len] = 0;
	hs->msg++;
	return 0;
}

/* ---- construction ---- */

static noise_hs *hs_alloc(bool initiator, const uint8_t *prologue, size_t plen, const uint8_t *s_sk,
			  const uint8_t *e_sk)
{
	noise_hs *hs = calloc(1, sizeof *hs);
	if (!hs)
		return NULL;
	hs->initiator = initiator;
	memcpy(hs->h, PROTOCOL_NAME, HASHLEN);
	memcpy(hs->ck, hs->h, HASHLEN);
	mix_hash(hs, prologue ? prologue : (const uint8_t *)"", plen);
	if (s_sk)
		memcpy(hs->s_sk, s_sk, DHLEN);
	else
		randombytes_buf(hs->s_sk, DHLEN);
	crypto_scalarmult_base(hs->s_pk, hs->s_sk);
	if (e_sk) {
		memcpy(hs->e_sk, e_sk, DHLEN);
		hs->fixed_e = true;
	}
	return hs;
}

noise_hs *noise_hs_new_raw(bool initiator, const uint8_t *prologue, size_t plen, const uint8_t *s_sk,
			   const uint8_t *e_sk, cg_err *e)
{
	if (!s_sk) {
		cg_fail(e, CG_E_INVALID_ARGUMENT, "noise: a static key is required");
		return NULL;
	}
	noise_hs *hs = hs_alloc(initiator, prologue, plen, s_sk, e_sk);
	if (!hs)
		cg_fail(e, CG_E_INTERNAL, "noise: out of memory");
	return hs;
}

noise_hs *noise_hs_new(const struct noise_cfg *cfg, cg_err *e)
{
	if (!cfg->identity_sk) {
		cg_fail(e, CG_E_INVALID_ARGUMENT, "noise: an identity key is required");
		return NULL;
	}
	if (cfg->n_muxers > NOISE_MAX_MUXERS) {
		cg_fail(e, CG_E_INVALID_ARGUMENT, "noise: too many muxers");
		return NULL;
	}
	noise_hs *hs = hs_alloc(cfg->initiator, NULL, 0, cfg->static_sk, cfg->ephemeral_sk);
	if (!hs) {
		cg_fail(e, CG_E_INTERNAL, "noise: out of memory");
		return NULL;
	}
	hs->libp2p = true;
	memcpy(hs->id_sk, cfg->identity_sk, sizeof hs->id_sk);
	if (cfg->initiator && cfg->expect) {
		hs->expect = *cfg->expect;
		hs->has_expect = true;
	}
	for (size_t i = 0; i < cfg->n_muxers; i++) {
		if (!cfg->muxers[i] || !(hs->muxers[i] = strdup(cfg->muxers[i]))) {
			noise_hs_free(hs);
			cg_fail(e, CG_E_INVALID_ARGUMENT, "noise: bad muxer list");
			return NULL;
		}
		hs->n_muxers++;
	}
	return hs;
}

void noise_hs_free(noise_hs *hs)
{
	if (!hs)
		return;
	for (size_t i = 0; i < hs->n_muxers; i++)
		free(hs->muxers[i]);
	for (size_t i = 0; i < hs->n_rmuxers; i++)
		free(hs->rmuxers[i]);
	sodium_memzero(hs, sizeof *hs);
	free(hs);
}

int noise_hs_write_msg(noise_hs *hs, const uint8_t *payload, size_t n, buf *out, cg_err *e)
{
	int rc = write_msg(hs, payload, n, out, e);
	if (rc)
		hs->failed = true;
	else if (hs->msg == 3)
		hs->done = true;
	return rc;
}

int noise_hs_read_msg(noise_hs *hs, const uint8_t *msg, size_t n, buf *payload, cg_err *e)
{
	int rc = read_msg(hs, msg, n, payload, e);
	if (rc)
		hs->failed = true;
	else if (hs->msg == 3)
		hs->done = true;
	return rc;
}

/* ---- libp2p payload ---- */

static int make_payload(noise_hs *hs, buf *pl, cg_err *e)
{
	uint8_t sig[64];
	buf kb, ext;
	int rc = 0;
	buf_init(&kb, 64);
	buf_init(&ext, 4096);
	/* PublicKey{Ed25519, pk}; the public half is the last 32 bytes of a libsodium secret key. */
	if (pb_put_varint(&kb, 1, 1) || pb_put_bytes(&kb, 2, hs->id_sk + 32, 32)) {
		rc = cg_fail(e, CG_E_INTERNAL, "noise: cannot encode identity key");
		goto out;
	}
	uint8_t msg[sizeof SIG_PREFIX - 1 + DHLEN];
	memcpy(msg, SIG_PREFIX, sizeof SIG_PREFIX - 1);
	memcpy(msg + sizeof SIG_PREFIX - 1, hs->s_pk, DHLEN);
	crypto_sign_detached(sig, NULL, msg, sizeof msg, hs->id_sk);
	for (size_t i = 0; i < hs->n_muxers; i++)
		if (pb_put_str(&ext, 2, hs->muxers[i])) {
			rc = cg_fail(e, CG_E_INVALID_ARGUMENT, "noise: muxer list too long");
			goto out;
		}
	if (pb_put_bytes(pl, 1, kb.data, kb.len) || pb_put_bytes(pl, 2, sig, sizeof sig) ||
	    (ext.len && pb_put_bytes(pl, 4, ext.data, ext.len)))
		rc = cg_fail(e, CG_E_INTERNAL, "noise: cannot encode payload");
out:
	buf_done(&kb);
	buf_done(&ext);
	return rc;
}

static int check_payload(noise_hs *hs, const uint8_t *p, size_t n, cg_err *e)
{
	pb_reader r, xr;
	pb_field f, xf;
	const uint8_t *key = NULL, *sig = NULL;
	size_t keylen = 0, siglen = 0;
	int rc;
	pb_reader_init(&r, p, n);
	while ((rc = pb_next(&r, &f, e)) == 1) {
		if (f.wire != PB_LEN)
			continue; /* unknown scalar fields are ignored (protobuf forward compatibility) */
		if (f.num == 1) {
			key = f.data;
			keylen = f.len;
		} else if (f.num == 2) {
			sig = f.data;
			siglen = f.len;
		} else if (f.num == 4) {
			pb_reader_init(&xr, f.data, f.len);
			while ((rc = pb_next(&xr, &xf, e)) == 1) {
				if (xf.num != 2 || xf.wire != PB_LEN || hs->n_rmuxers >= NOISE_MAX_MUXERS)
					continue;
				if (xf.len == 0 || xf.len > 256 || memchr(xf.data, 0, xf.len))
					return cg_fail(e, CG_E_INVALID_ARGUMENT, "noise: bad muxer in extensions");
				if (!(hs->rmuxers[hs->n_rmuxers] = strndup((const char *)xf.data, xf.len)))
					return cg_fail(e, CG_E_INTERNAL, "noise: out of memory");
				hs->n_rmuxers++;
			}
			if (rc < 0)
				return rc;
		}
	}
	if (rc < 0)
		return rc;
	if (!key || !sig)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "noise: payload without identity key or signature");
	struct peerid_pubkey pk;
	if ((rc = peerid_pubkey_decode(key, keylen, &pk, e)))
		return rc;
	if (keylen > sizeof hs->remote_key)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "noise: identity key too long");
	/* Any identity key type js-libp2p and go-libp2p use: Ed25519, Secp256k1, RSA (keysig.h). */
	uint8_t msg[sizeof SIG_PREFIX - 1 + DHLEN];
	memcpy(msg, SIG_PREFIX, sizeof SIG_PREFIX - 1);
	memcpy(msg + sizeof SIG_PREFIX - 1, hs->rs, DHLEN);
	cg_err ke = {0};
	if ((rc = keysig_verify(&pk, msg, sizeof msg, sig, siglen, &ke)) < 0)
		return cg_fail(e, (enum cg_code)-rc, "noise: %s", ke.msg);
	peerid id;
	if ((rc = peerid_from_pubkey(&id, key, keylen, e)))
		return rc;
	if (hs->has_expect && !peerid_equal(&id, &hs->expect))
		return cg_fail(e, CG_E_FORBIDDEN, "noise: remote peer id differs from the dialed one");
	hs->remote = id;
	memcpy(hs->remote_key, key, keylen); /* fits: checked above */
	hs->remote_key_len = keylen;
	return 0;
}

/* ---- libp2p driver ---- */

static int write_framed(noise_hs *hs, buf *out, cg_err *e)
{
	buf pl;
	int rc = 0;
	size_t start = out->len;
	buf_init(&pl, MAX_PAYLOAD);
	if (hs->msg > 0 && (rc = make_payload(hs, &pl, e)))
		goto out;
	static const uint8_t hdr[2];
	if (buf_append(out, hdr, 2) != 0) {
		rc = cg_fail(e, CG_E_QUOTA_EXCEEDED, "noise: output buffer full");
		goto out;
	}
	if ((rc = write_msg(hs, pl.data ? pl.data : hdr, pl.len, out, e)))
		goto out;
	size_t len = out->len - start - 2;
	if (len > NOISE_MAX_MSG) {
		rc = cg_fail(e, CG_E_INTERNAL, "noise: handshake message too large");
		goto out;
	}
	out->data[start] = (uint8_t)(len >> 8);
	out->data[start + 1] = (uint8_t)len;
out:
	if (rc) {
		hs->failed = true;
		if (out->len > start) {
			out->len = start;
			out->data[start] = 0;
		}
	}
	buf_done(&pl);
	return rc;
}

int noise_hs_start(noise_hs *hs, buf *out, cg_err *e)
{
	if (!hs->libp2p || hs->failed || hs->msg != 0)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "noise: handshake cannot start");
	if (!hs->initiator)
		return 0;
	return write_framed(hs, out, e);
}

int noise_hs_feed(noise_hs *hs, const uint8_t *in, size_t n, size_t *consumed, buf *out, cg_err *e)
{
	*consumed = 0;
	if (hs->done)
		return NOISE_DONE;
	if (!hs->libp2p || hs->failed)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "noise: handshake not running");
	if (hs->initiator && hs->msg == 0)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "noise: handshake not started");
	size_t off = 0;
	int rc = NOISE_CONTINUE;
	while (!hs->done && n - off >= 2) {
		size_t len = (size_t)in[off] << 8 | in[off + 1];
		if (n - off - 2 < len)
			break;
		buf pl;
		buf_init(&pl, NOISE_MAX_MSG);
		rc = read_msg(hs, in + off + 2, len, &pl, e);
		/* The first message carries no libp2p payload (nothing is encrypted yet, so any bytes there
		 * would be unauthenticated): they are hashed into h as Noise requires, then ignored. */
		if (!rc && hs->msg > 1)
			rc = check_payload(hs, pl.data, pl.len, e);
		buf_done(&pl);
		if (rc)
			break;
		off += 2 + len;
		if (hs->msg == 3) {
			hs->done = true;
			rc = NOISE_DONE;
			break;
		}
		if ((rc = write_framed(hs, out, e)))
			break;
		if (hs->msg == 3) {
			hs->done = true;
			rc = NOISE_DONE;
			break;
		}
	}
	if (rc < 0)
		hs->failed = true;
	*consumed = off;
	return rc;
}

bool noise_hs_done(const noise_hs *hs)
{
	return hs->done;
}

const peerid *noise_hs_remote_peer(const noise_hs *hs)
{
	return hs->done && hs->libp2p ? &hs->remote : NULL;
}

const uint8_t *noise_hs_remote_key(const noise_hs *hs, size_t *len)
{
	*len = hs->done ? hs->remote_key_len : 0;
	return hs->done && hs->libp2p ? hs->remote_key : NULL;
}

size_t noise_hs_remote_muxer_count(const noise_hs *hs)
{
	return hs->done ? hs->n_rmuxers : 0;
}

const char *noise_hs_remote_muxer(const noise_hs *hs, size_t i)
{
	return hs->done && i < hs->n_rmuxers ? hs->rmuxers[i] : NULL;
}

void noise_hs_hash(const noise_hs *hs, uint8_t h[static 32])
{
	memcpy(h, hs->h, HASHLEN);
}

noise_chan *noise_hs_split(noise_hs *hs, cg_err *e)
{
	if (!hs->done || hs->split) {
		cg_fail(e, CG_E_INVALID_ARGUMENT, "noise: handshake not finished or already split");
		return NULL;
	}
	noise_chan *c = calloc(1, sizeof *c);
	if (!c) {
		cg_fail(e, CG_E_INTERNAL, "noise: out of memory");
		return NULL;
	}
	uint8_t k1[32], k2[32];
	hkdf2(hs->ck, NULL, 0, k1, k2);
	/* k1 protects initiator -> responder, k2 the other way. */
	memcpy(c->tx.k, hs->initiator ? k1 : k2, 32);
	memcpy(c->rx.k, hs->initiator ? k2 : k1, 32);
	c->tx.has_key = c->rx.has_key = true;
	sodium_memzero(k1, sizeof k1);
	sodium_memzero(k2, sizeof k2);
	/* The handshake secrets are no longer needed; keep only what identifies the remote. */
	sodium_memzero(hs->ck, sizeof hs->ck);
	sodium_memzero(&hs->cs, sizeof hs->cs);
	sodium_memzero(hs->s_sk, sizeof hs->s_sk);
	sodium_memzero(hs->e_sk, sizeof hs->e_sk);
	sodium_memzero(hs->id_sk, sizeof hs->id_sk);
	hs->split = true;
	return c;
}

/* ---- secure channel ---- */

void noise_chan_free(noise_chan *c)
{
	if (!c)
		return;
	sodium_memzero(c, sizeof *c);
	free(c);
}

int noise_chan_seal(noise_chan *c, const uint8_t *pt, size_t n, buf *out, cg_err *e)
{
	if (c->dead)
		return cg_fail(e, CG_E_UNAVAILABLE, "noise: channel failed earlier");
	if (n > NOISE_MAX_PLAINTEXT)
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "noise: message too long");
	size_t off = out->len;
	static const uint8_t zeros[NOISE_TAG_LEN];
	if (buf_append(out, pt, n) || buf_append(out, zeros, NOISE_TAG_LEN)) {
		out->len = off;
		if (out->data)
			out->data[off] = 0;
		return cg_fail(e, CG_E_QUOTA_EXCEEDED, "noise: output buffer full");
	}
	int rc = cipher_seal(&c->tx, NULL, 0, out->data + off, n, e);
	if (rc) {
		c->dead = true;
		out->len = off;
		out->data[off] = 0;
	}
	return rc;
}

int noise_chan_open(noise_chan *c, const uint8_t *ct, size_t n, buf *out, cg_err *e)
{
	if (c->dead)
		return cg_fail(e, CG_E_UNAVAILABLE, "noise: channel failed earlier");
	if (n < NOISE_TAG_LEN || n > NOISE_MAX_MSG) {
		c->dead = true;
		return cg_fail(e, CG_E_INVALID_ARGUMENT, "noise: bad transport message length");
	}
	size_t off = out->len;
	if (buf_append(out, ct, n) != 0)
		return cg_fail(e, CG_E_QUOTA_EXCEEDED, "noise: output buffer full");
	int rc = cipher_open(&c->rx, NULL, 0, out->data + off, n, e);
	if (rc) {
		c->dead = true;
		sodium_memzero(out->data + off, n);
		out->len = off;
	} else {
		out->len = off + n - NOISE_TAG_LEN;
	}
	out->data[out->len] = 0;
	return rc;
}

int noise_chan_encrypt(noise_chan *c, const uint8_t *pt, size_t n, buf *out, cg_err *e)
{
	size_t frames = (n + NOISE_MAX_PLAINTEXT - 1) / NOISE_MAX_PLAINTEXT;
	size_t need = n + frames * (2 + NOISE_TAG_LEN);
	if (c->dead)
		return cg_fail(e, CG_E_UNAVAILABLE, "noise: channel failed earlier");
	if (need > out->cap - out->len)
		return cg_fail(e, CG_E_QUOTA_EXCEEDED, "noise: output buffer full");
	for (size_t off = 0; off < n;) {
		size_t chunk = n - off < NOISE_MAX_PLAINTEXT ? n - off : NOISE_MAX_PLAINTEXT;
		size_t len = chunk + NOISE_TAG_LEN;
		uint8_t hdr[2] = {(uint8_t)(len >> 8), (uint8_t)len};
		size_t start = out->len;
		int rc = buf_append(out, hdr, 2) ? cg_fail(e, CG_E_QUOTA_EXCEEDED, "noise: output buffer full")
						 : noise_chan_seal(c, pt + off, chunk, out, e);
		if (rc) {
			out->len = start;
			if (out->data)
				out->data[start] = 0;
			return rc;
		}
		off += chunk;
	}
	return 0;
}

int noise_chan_decrypt(noise_chan *c, const uint8_t *in, size_t n, size_t *consumed, buf *out, cg_err *e)
{
	size_t off = 0;
	int rc = 0;
	*consumed = 0;
	if (c->dead)
		return cg_fail(e, CG_E_UNAVAILABLE, "noise: channel failed earlier");
	while (n - off >= 2) {
		size_t len = (size_t)in[off] << 8 | in[off + 1];
		if (len < NOISE_TAG_LEN) {
			c->dead = true;
			rc = cg_fail(e, CG_E_INVALID_ARGUMENT, "noise: frame shorter than a tag");
			break;
		}
		/* Decryption happens in place in out, so the whole frame must fit there. */
		if (n - off - 2 < len || len > out->cap - out->len)
			break; /* incomplete frame, or no room for it yet */
		if ((rc = noise_chan_open(c, in + off + 2, len, out, e)))
			break;
		off += 2 + len;
	}
	*consumed = off;
	return rc;
}
