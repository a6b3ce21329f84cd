/* Raw throughput of the pure p2p codecs, in memory (no sockets): the noise secure channel against the bare
 * ChaCha20-Poly1305 it is built on, a yamux stream against memcpy, the two stacked (what one secured,
 * multiplexed stream costs in CPU), and the libp2p Noise XX handshake (both sides, one thread).
 * Usage: bench_p2p_codec [MiB] [handshakes] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "p2p/noise.h"
#include "p2p/yamux.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_p2p_codec: %s\n", what);
	exit(1);
}

static void pair(noise_chan **x, noise_chan **y)
{
	uint8_t pa[32], sa[64], pb[32], sb[64];
	crypto_sign_keypair(pa, sa);
	crypto_sign_keypair(pb, sb);
	struct noise_cfg ca = {.initiator = true, .identity_sk = sa}, cb = {.initiator = false, .identity_sk = sb};
	noise_hs *a = noise_hs_new(&ca, NULL), *b = noise_hs_new(&cb, NULL);
	buf m1, m2, m3, none;
	size_t u;
	buf_init(&m1, 1 << 17);
	buf_init(&m2, 1 << 17);
	buf_init(&m3, 1 << 17);
	buf_init(&none, 1 << 17);
	if (noise_hs_start(a, &m1, NULL) || noise_hs_feed(b, m1.data, m1.len, &u, &m2, NULL) != NOISE_CONTINUE ||
	    noise_hs_feed(a, m2.data, m2.len, &u, &m3, NULL) != NOISE_DONE ||
	    noise_hs_feed(b, m3.data, m3.len, &u, &none, NULL) != NOISE_DONE)
		die("handshake failed");
	if (x) {
		*x = noise_hs_split(a, NULL);
		*y = noise_hs_split(b, NULL);
	}
	noise_hs_free(a);
	noise_hs_free(b);
	buf_done(&m1);
	buf_done(&m2);
	buf_done(&m3);
	buf_done(&none);
}

/* Moves total bytes through a yamux stream A -> B; with chans, every byte also goes through noise. */
static void yamux_run(size_t total, noise_chan *x, noise_chan *y)
{
	muxer *a = yamux_new(true, NULL), *b = yamux_new(false, NULL);
	uint64_t id;
	if (muxer_open(a, &id, NULL))
		die("open");
	static uint8_t src[1 << 16], dst[1 << 16];
	buf wire, plain;
	buf_init(&wire, 8u << 20);
	buf_init(&plain, 8u << 20);
	size_t sent = 0, got = 0;
	while (got < total) {
		if (sent < total) {
			size_t k = total - sent < sizeof src ? total - sent : sizeof src;
			long w = muxer_write(a, id, src, k, NULL);
			if (w < 0)
				die("write");
			sent += (size_t)w;
		}
		size_t n, used;
		const uint8_t *p = muxer_out_peek(a, &n);
		size_t produced = n;
		if (x) {
			if (noise_chan_encrypt(x, p, n, &wire, NULL) || noise_chan_decrypt(y, wire.data, wire.len, &used, &plain, NULL))
				die("noise");
			buf_reset(&wire);
			p = plain.data;
			n = plain.len;
		}
		if (n && (muxer_feed(b, p, n, &used, NULL) || used != n))
			die("feed");
		muxer_out_consume(a, produced);
		buf_reset(&plain);
		bool eof;
		long r;
		while ((r = muxer_read(b, id, dst, sizeof dst, &eof, NULL)) > 0)
			got += (size_t)r;
		struct muxer_event ev;
		while (muxer_poll(b, &ev))
			;
		/* Window updates back to A. */
		p = muxer_out_peek(b, &n);
		if (n && muxer_feed(a, p, n, &used, NULL))
			die("feed back");
		muxer_out_consume(b, n);
		while (muxer_poll(a, &ev))
			;
	}
	muxer_free(a);
	muxer_free(b);
	buf_done(&wire);
	buf_done(&plain);
}

/* Decimal argument in 1..max, or 0 when malformed. */
static size_t arg_num(const char *s, size_t max)
{
	size_t v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > max / 10)
			return 0;
		v = v * 10 + (size_t)(*s - '0');
	}
	return v <= max ? v : 0;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? arg_num(argv[1], 1 << 16) : 256;
	int hs_n = argc > 2 ? (int)arg_num(argv[2], 1 << 20) : 500;
	if (sodium_init() < 0 || mib == 0 || hs_n <= 0)
		die("bad arguments");
	size_t total = mib << 20;
	static uint8_t blk[NOISE_MAX_PLAINTEXT + NOISE_TAG_LEN];
	uint8_t key[32], nonce[12] = {0};
	randombytes_buf(key, sizeof key);

	/* Anchor 1: bare AEAD over 65519-byte records, seal + open. */
	double t0 = now();
	for (size_t done = 0; done < total; done += NOISE_MAX_PLAINTEXT) {
		unsigned long long cl;
		crypto_aead_chacha20poly1305_ietf_encrypt(blk, &cl, blk, NOISE_MAX_PLAINTEXT, NULL, 0, NULL, nonce, key);
		if (crypto_aead_chacha20poly1305_ietf_decrypt(blk, NULL, NULL, blk, cl, NULL, 0, nonce, key))
			die("aead");
		nonce[0]++;
	}
	double aead = (double)total / (now() - t0) / 1e6;

	/* Noise channel: encrypt into frames, decrypt them. */
	noise_chan *x, *y;
	pair(&x, &y);
	buf wire, plain;
	buf_init(&wire, 1u << 20);
	buf_init(&plain, 1u << 20);
	static uint8_t chunk[256 * 1024];
	t0 = now();
	for (size_t done = 0; done < total; done += sizeof chunk) {
		size_t used;
		if (noise_chan_encrypt(x, chunk, sizeof chunk, &wire, NULL) ||
		    noise_chan_decrypt(y, wire.data, wire.len, &used, &plain, NULL) || used != wire.len)
			die("noise channel");
		buf_reset(&wire);
		buf_reset(&plain);
	}
	double chan = (double)total / (now() - t0) / 1e6;

	/* Anchor 2: memcpy of the same volume in 64 KiB pieces. */
	static uint8_t a1[1 << 16], a2[1 << 16];
	t0 = now();
	for (size_t done = 0; done < total; done += sizeof a1) {
		memcpy(a2, a1, sizeof a1);
		__asm__ volatile("" : : "r"(a2) : "memory"); /* keep the copy: the compiler may not drop it */
	}
	double copy = (double)total / (now() - t0) / 1e6;

	t0 = now();
	yamux_run(total, NULL, NULL);
	double ymx = (double)total / (now() - t0) / 1e6;

	noise_chan *x2, *y2;
	pair(&x2, &y2);
	t0 = now();
	yamux_run(total, x2, y2);
	double stack = (double)total / (now() - t0) / 1e6;

	t0 = now();
	for (int i = 0; i < hs_n; i++)
		pair(NULL, NULL);
	double hs_us = (now() - t0) / hs_n * 1e6;

	printf("p2p codec: %zu MiB per run, %d handshakes\n", mib, hs_n);
	printf("  aead chacha20poly1305 (anchor)  %8.0f MB/s\n", aead);
	printf("  noise secure channel            %8.0f MB/s   ratio %.2f of aead\n", chan, chan / aead);
	printf("  memcpy 64 KiB (anchor)          %8.0f MB/s\n", copy);
	printf("  yamux stream, in memory         %8.0f MB/s   ratio %.3f of memcpy\n", ymx, ymx / copy);
	printf("  noise + yamux stream            %8.0f MB/s   ratio %.2f of aead\n", stack, stack / aead);
	printf("  noise XX handshake (both sides) %8.0f us\n", hs_us);
	noise_chan_free(x);
	noise_chan_free(y);
	noise_chan_free(x2);
	noise_chan_free(y2);
	buf_done(&wire);
	buf_done(&plain);
	return 0;
}
