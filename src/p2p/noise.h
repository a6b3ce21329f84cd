/* noise — Noise_XX_25519_ChaChaPoly_SHA256 with the libp2p handshake payload (noiseprotocol.org rev 34;
 * libp2p specs: noise/README.md), and the secure channel that follows it.
 *
 * Handshake (XX):  -> e   <- e, ee, s, es, payload   -> s, se, payload
 * Every handshake and transport message travels as <2-byte big-endian length><bytes>, at most 65535 bytes.
 * The libp2p payload is the protobuf NoiseHandshakePayload { identity_key = 1 (PublicKey bytes),
 * identity_sig = 2 (over "noise-libp2p-static-key:" || the sender's static X25519 public key; ours with
 * Ed25519, the remote's under its key type: Ed25519, Secp256k1 or RSA, see keysig.h),
 * extensions = 4 { webtransport_certhashes = 1, stream_muxers = 2 } }. The prologue is empty.
 * The handshake verifies the remote payload and, when dialing with an expected peer id, fails on mismatch.
 *
 * Pure: bytes in, bytes out (randomness and keys from libsodium; hashing from crypto/hash.h). All secret
 * state is zeroed when freed. The swarm drives it: noise_hs_start, then noise_hs_feed with received bytes
 * until NOISE_DONE, then noise_hs_split for the channel. Bytes after the last handshake message are not
 * consumed: they are the first transport frames. */
#ifndef CG_P2P_NOISE_H
#define CG_P2P_NOISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "p2p/peerid.h"

#define NOISE_PROTOCOL "/noise"
#define NOISE_MAX_MSG 65535                       /* largest frame body (length prefix excluded) */
#define NOISE_TAG_LEN 16
#define NOISE_MAX_PLAINTEXT (NOISE_MAX_MSG - NOISE_TAG_LEN) /* 65519 */
#define NOISE_MAX_MUXERS 8                        /* stream_muxers extension entries kept */

typedef struct noise_hs noise_hs;
typedef struct noise_chan noise_chan;

struct noise_cfg {
	bool initiator;
	/* The node's Ed25519 identity: libsodium 64-byte secret key (seed || pk). Copied (and later wiped). */
	const uint8_t *identity_sk;
	/* Initiator only, optional: the peer id the remote must prove (from the dialed /p2p/ address). */
	const peerid *expect;
	/* Optional stream_muxers extension to advertise (e.g. "/yamux/1.0.0"), in preference order. */
	const char *const *muxers;
	size_t n_muxers;
	/* Tests only: fixed X25519 static / ephemeral secret keys (32 bytes); NULL = fresh random keys. */
	const uint8_t *static_sk;
	const uint8_t *ephemeral_sk;
};

enum noise_result { NOISE_CONTINUE = 0, NOISE_DONE = 1 };

/* NULL on bad configuration (missing identity key, too many muxers), with e set. Caller frees. */
noise_hs *noise_hs_new(const struct noise_cfg *cfg, cg_err *e);
void noise_hs_free(noise_hs *hs); /* wipes; NULL ok */

/* Initiator: appends the first framed message (-> e) to out. Responder: no-op. 0 or <0. */
int noise_hs_start(noise_hs *hs, buf *out, cg_err *e) __attribute__((warn_unused_result));
/* Feeds received bytes; consumes whole frames only and stops after the final handshake message. Appends any
 * reply to out. Returns NOISE_CONTINUE (need more), NOISE_DONE, or <0:
 *   -CG_E_INVALID_ARGUMENT  malformed message / payload, decryption failure,
 *   -CG_E_FORBIDDEN         bad identity signature or peer id different from cfg->expect.
 * Any failure is fatal for the handshake. */
int noise_hs_feed(noise_hs *hs, const uint8_t *in, size_t n, size_t *consumed, buf *out, cg_err *e);
bool noise_hs_done(const noise_hs *hs);

/* After NOISE_DONE: the authenticated remote peer id and its PublicKey protobuf (borrowed from hs). */
const peerid *noise_hs_remote_peer(const noise_hs *hs);
const uint8_t *noise_hs_remote_key(const noise_hs *hs, size_t *len);
/* After NOISE_DONE: the remote's stream_muxers extension (borrowed from hs); 0 when absent. */
size_t noise_hs_remote_muxer_count(const noise_hs *hs);
const char *noise_hs_remote_muxer(const noise_hs *hs, size_t i);
/* The handshake hash h (channel binding; tests). */
void noise_hs_hash(const noise_hs *hs, uint8_t h[static 32]);

/* After NOISE_DONE: the transport cipher states as a secure channel (caller frees). hs keeps only the
 * remote identity afterwards. NULL (with e) when the handshake is not done or already split. */
noise_chan *noise_hs_split(noise_hs *hs, cg_err *e);

/* Secure channel. Encrypt: splits pt into frames of <= NOISE_MAX_PLAINTEXT and appends them to out.
 * 0, or <0: -CG_E_QUOTA_EXCEEDED (out full; nothing appended), -CG_E_UNAVAILABLE (nonce exhausted). */
int noise_chan_encrypt(noise_chan *c, const uint8_t *pt, size_t n, buf *out, cg_err *e)
	__attribute__((warn_unused_result));
/* Decrypt: consumes whole frames from in while they fit into out's free space (a frame is decrypted in place
 * there: give out at least NOISE_MAX_MSG bytes of room), appending the plaintext. *consumed says how much
 * was used (the rest is an incomplete frame, or a frame that does not fit yet: feed it again).
 * 0, or <0 (fatal, the channel is dead): -CG_E_INVALID_ARGUMENT (authentication failure, frame shorter
 * than a tag), -CG_E_UNAVAILABLE (nonce exhausted). */
int noise_chan_decrypt(noise_chan *c, const uint8_t *in, size_t n, size_t *consumed, buf *out, cg_err *e);
void noise_chan_free(noise_chan *c); /* wipes; NULL ok */

/* Raw Noise XX without the libp2p payload or framing: for the protocol's test vectors (cacophony).
 * prologue is copied; s_sk/e_sk are 32-byte X25519 secrets (e_sk NULL = random). Messages are unframed:
 * write appends one handshake message carrying payload; read decrypts one and appends its payload. */
noise_hs *noise_hs_new_raw(bool initiator, const uint8_t *prologue, size_t plen, const uint8_t *s_sk,
			   const uint8_t *e_sk, cg_err *e);
int noise_hs_write_msg(noise_hs *hs, const uint8_t *payload, size_t n, buf *out, cg_err *e)
	__attribute__((warn_unused_result));
int noise_hs_read_msg(noise_hs *hs, const uint8_t *msg, size_t n, buf *payload, cg_err *e)
	__attribute__((warn_unused_result));
/* One unframed transport message each way (used by the vectors and by noise_chan_encrypt/decrypt). */
int noise_chan_seal(noise_chan *c, const uint8_t *pt, size_t n, buf *out, cg_err *e)
	__attribute__((warn_unused_result));
int noise_chan_open(noise_chan *c, const uint8_t *ct, size_t n, buf *out, cg_err *e)
	__attribute__((warn_unused_result));

#endif
