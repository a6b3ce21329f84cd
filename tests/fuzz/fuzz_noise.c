/* libFuzzer target for noise. Byte 0 picks the mode:
 *   0: a responder fed arbitrary handshake bytes (as from a dialer);
 *   1: an initiator that sent msg1 fed arbitrary bytes (as from a listener);
 *   2: a responder that already got a valid msg1 fed arbitrary bytes as msg3;
 *   3: a secure channel (after a real handshake) fed arbitrary frames, and the same bytes as plaintext
 *      through the other direction, which must decrypt to themselves.
 * Keys are fixed so every input replays the same way (and the seed corpus can hold the real handshake
 * messages, letting the fuzzer mutate past the first failure). Nothing may crash or consume past the input,
 * and a handshake that completes must have authenticated the one identity that could sign it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "p2p/noise.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t id_a[64], id_b[64];
static const uint8_t st_a[32] = {1}, st_b[32] = {2}, eph_a[32] = {3}, eph_b[32] = {4};

static void init_keys(void)
{
	static int done;
	if (done)
		return;
	uint8_t pk[32], seed[32] = {9};
	if (sodium_init() < 0)
		abort();
	crypto_sign_seed_keypair(pk, id_a, seed);
	seed[0] = 10;
	crypto_sign_seed_keypair(pk, id_b, seed);
	done = 1;
}

static noise_hs *mk(bool initiator)
{
	struct noise_cfg c = {.initiator = initiator,
			      .identity_sk = initiator ? id_a : id_b,
			      .static_sk = initiator ? st_a : st_b,
			      .ephemeral_sk = initiator ? eph_a : eph_b};
	noise_hs *hs = noise_hs_new(&c, NULL);
	if (!hs)
		abort();
	return hs;
}

static void feed_all(noise_hs *hs, const uint8_t *p, size_t n, buf *out, const uint8_t *remote_sk)
{
	size_t used = 0;
	int rc = noise_hs_feed(hs, p, n, &used, out, NULL);
	if (used > n)
		abort();
	if (rc == NOISE_DONE) {
		peerid want;
		peerid_from_ed25519(&want, remote_sk + 32);
		if (!noise_hs_done(hs) || !peerid_equal(noise_hs_remote_peer(hs), &want))
			abort();
		noise_chan *c = noise_hs_split(hs, NULL);
		buf plain;
		buf_init(&plain, 1 << 17);
		noise_chan_decrypt(c, p + used, n - used, &used, &plain, NULL);
		buf_done(&plain);
		noise_chan_free(c);
	} else if (rc == NOISE_CONTINUE && noise_hs_done(hs)) {
		abort();
	}
}

static void channel(const uint8_t *p, size_t n)
{
	noise_hs *a = mk(true), *b = mk(false);
	buf m1, m2, m3;
	size_t used;
	buf_init(&m1, 1 << 17);
	buf_init(&m2, 1 << 17);
	buf_init(&m3, 1 << 17);
	if (noise_hs_start(a, &m1, NULL) || noise_hs_feed(b, m1.data, m1.len, &used, &m2, NULL) != NOISE_CONTINUE ||
	    noise_hs_feed(a, m2.data, m2.len, &used, &m3, NULL) != NOISE_DONE ||
	    noise_hs_feed(b, m3.data, m3.len, &used, &m1, NULL) != NOISE_DONE)
		abort();
	noise_chan *x = noise_hs_split(a, NULL), *y = noise_hs_split(b, NULL);
	buf out;
	buf_init(&out, 1 << 18);
	/* Arbitrary frames into y. */
	int rc = noise_chan_decrypt(y, p, n, &used, &out, NULL);
	if (used > n || (rc == 0 && out.len > used))
		abort();
	/* The same bytes as plaintext from y to x come back intact. */
	buf wire, back;
	buf_init(&wire, 1 << 18);
	buf_init(&back, 1 << 18);
	if (noise_chan_encrypt(y, p, n, &wire, NULL) == 0) {
		if (noise_chan_decrypt(x, wire.data, wire.len, &used, &back, NULL) != 0 || used != wire.len ||
		    back.len != n || (n && memcmp(back.data, p, n) != 0))
			abort();
	}
	noise_chan_free(x);
	noise_chan_free(y);
	noise_hs_free(a);
	noise_hs_free(b);
	buf_done(&m1);
	buf_done(&m2);
	buf_done(&m3);
	buf_done(&out);
	buf_done(&wire);
	buf_done(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 3 * 65537)
		return 0;
	init_keys();
	int mode = data[0] & 3;
	data++;
	size--;
	if (mode == 3) {
		channel(data, size);
		return 0;
	}
	buf out;
	buf_init(&out, 1 << 17);
	size_t used;
	if (mode == 0) {
		noise_hs *b = mk(false);
		feed_all(b, data, size, &out, id_a);
		noise_hs_free(b);
	} else if (mode == 1) {
		noise_hs *a = mk(true);
		if (noise_hs_start(a, &out, NULL))
			abort();
		feed_all(a, data, size, &out, id_b);
		noise_hs_free(a);
	} else {
		noise_hs *a = mk(true), *b = mk(false);
		buf m1;
		buf_init(&m1, 1 << 17);
		if (noise_hs_start(a, &m1, NULL) ||
		    noise_hs_feed(b, m1.data, m1.len, &used, &out, NULL) != NOISE_CONTINUE)
			abort();
		feed_all(b, data, size, &out, id_a);
		buf_done(&m1);
		noise_hs_free(a);
		noise_hs_free(b);
	}
	buf_done(&out);
	return 0;
}
