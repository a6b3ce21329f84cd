/* Noise XX: the published cacophony and snow vectors for Noise_XX_25519_ChaChaPoly_SHA256, the libp2p
 * handshake in both roles (chunked delivery, extensions, peer ids), wrong expected peer id, forged identity
 * signatures, tampered messages, and the secure channel (framing, tampering, truncation, nonce exhaustion).
 * The .c is included to reach the cipher state for the nonce-exhaustion case (STYLE.md habit 15). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "p2p/noise.c"

static size_t unhex(uint8_t *out, size_t cap, const char *h)
{
	size_t n = strlen(h) / 2;
	assert_true(n <= cap);
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
	return n;
}

struct vector {
	const char *prologue, *init_static, *init_ephemeral, *resp_static, *resp_ephemeral, *hash;
	const char *payload[6], *ciphertext[6];
	int n;
};

/* Copied from cacophony (haskell-cryptography/cacophony vectors/cacophony.txt) and snow
 * (mcginty/snow tests/vectors/snow.txt), entries with protocol_name Noise_XX_25519_ChaChaPoly_SHA256. */
static const struct vector vectors[] = {
	{"4a6f686e2047616c74",
	 "e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1",
	 "893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a",
	 "4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893",
	 "bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b",
	 "c8e5f64e846193be2a834104c2a009868d6c9f3bd3c186299888b488b2f1f58e",
	 {"4c756477696720766f6e204d69736573", "4d757272617920526f746862617264", "462e20412e20486179656b",
	  "4361726c204d656e676572", "4a65616e2d426170746973746520536179", "457567656e2042f6686d20766f6e2042617765726b"},
	 {"ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c79444c756477696720766f6e204d69736573",
	  "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f14480884381cbad1f276e038c48378ffce2b65285e08d6b68aa"
	  "a3629a5a8639392490e5b9bd5269c2f1e4f488ed8831161f19b7815528f8982ffe09be9b5c412f8a0db50f8814c7194e83f23dbd"
	  "8d162c9326ad",
	  "c7195ffacac1307ff99046f219750fc47693e23c3cb08b89c2af808b444850a80ae475b9df0f169ae80a89be0865b57f58c9fea0d4"
	  "ec82a286427402f113e4b6ae769a1d95941d49b25030",
	  "96763ed773f8e47bb3712f0e29b3060ffc956ffc146cee53d5e1df",
	  "3e40f15f6f3a46ae446b253bf8b1d9ffb6ed9b174d272328ff91a7e2e5c79c07f5",
	  "eb3f3515110702e047a6c9da4478b6ead94873c11c0f2d710ddb3f09fce024b3a58502ae3f"},
	 6},
	{"5468657265206973206e6f20726967687420616e642077726f6e672e2054686572652773206f6e6c792066756e20616e642062"
	 "6f72696e672e",
	 "7dec208517a3b81a2861d7a71266d5d6dc944c5a8816634a86fe63198a0148ee",
	 "a32daf21e93c0131495ce1d903181fde81cc46937daaeb990bae7c992709421e",
	 "4d0aed5098e3b4ef20357e9f686ce66204c792b358da2e475017d6c485304881",
	 "4eece0f195d026db035ff987597c429d3ad3bcc2944df37d649528951b2a27c5",
	 NULL,
	 {"d03c489139e645d0711a3c9e810d776b46a84912463fafa87b884eebf242dc34",
	  "d8190a92f7dc0c93dbea9118ba8055751fb7c6590c416ffbd419964132b99a85",
	  "77891b19dcb92ef7c055b672c4a5aa7fdf1c84146b8b303459022729473ce254",
	  "d7efdf988072881941db045a42882433817555128fbf5663e56081712ec7d212",
	  "dd7bf01a588bafb52c6cfba952e5d8fe35cc2b3f92b4730ae2474615157345ce"},
	 {"f9fa868ba97ab8a2686deccfaad5a484ee10a5bb85e3d1dce015a84797f92818d03c489139e645d0711a3c9e810d776b46a849124"
	  "63fafa87b884eebf242dc34",
	  "8c4e6fdb7d09d501a86f7eca5c234522751706ed409182c05cdf5f827d4dae47b81c6c5f43b025692c24391eefee725c17d8cb0fbe"
	  "3e4abb8aedf42c4fd2592d4ea48ac08989d6ae8b4adae08b2c34087c808c7aa55a63c02b0fab9e930612336bd43eaea04d3c670a0a"
	  "146691aa9cc9d357872320dc735dbc48580cffb553db",
	  "933ca6b5ed60df3df66121f0ab49a09e49efa45c613a86a3cecbf4c535cef2f83f72b42837b18e3572f2fdc2b74c331e2368a545ce"
	  "f54bdca081678ab0e9dd5348122459e0c034c851984d88ce610963d43cde6cfe73a67fbd5a63e8bfca96d0",
	  "54ef0ff0629e1aaa7685a2806ab111cba76b52331f2642276736f415868eacb69ab2577f3bda0cbf72f879685f6ed25f",
	  "356be70f110306d5c699bb834bb9d58d909e325924dfbec972e406e6f294dc63e1daebefe8a62a334facc8048ab4ad66"},
	 5},
};

static void t_vectors(void **s)
{
	(void)s;
	for (size_t v = 0; v < sizeof vectors / sizeof vectors[0]; v++) {
		const struct vector *V = &vectors[v];
		uint8_t pro[128], is[32], ie[32], rs[32], re[32], pl[256], ct[256];
		size_t pn = unhex(pro, sizeof pro, V->prologue);
		unhex(is, 32, V->init_static);
		unhex(ie, 32, V->init_ephemeral);
		unhex(rs, 32, V->resp_static);
		unhex(re, 32, V->resp_ephemeral);
		noise_hs *I = noise_hs_new_raw(true, pro, pn, is, ie, NULL);
		noise_hs *R = noise_hs_new_raw(false, pro, pn, rs, re, NULL);
		noise_chan *ci = NULL, *cr = NULL;
		for (int i = 0; i < V->n; i++) {
			size_t pln = unhex(pl, sizeof pl, V->payload[i]);
			size_t ctn = unhex(ct, sizeof ct, V->ciphertext[i]);
			buf w, r;
			buf_init(&w, 1024);
			buf_init(&r, 1024);
			bool from_init = i % 2 == 0;
			if (i < 3) {
				assert_int_equal(noise_hs_write_msg(from_init ? I : R, pl, pln, &w, NULL), 0);
				assert_int_equal(noise_hs_read_msg(from_init ? R : I, w.data, w.len, &r, NULL), 0);
			} else {
				if (!ci) {
					assert_true(noise_hs_done(I) && noise_hs_done(R));
					uint8_t hi[32], hr[32];
					noise_hs_hash(I, hi);
					noise_hs_hash(R, hr);
					assert_memory_equal(hi, hr, 32);
					if (V->hash) {
						uint8_t want[32];
						unhex(want, 32, V->hash);
						assert_memory_equal(hi, want, 32);
					}
					ci = noise_hs_split(I, NULL);
					cr = noise_hs_split(R, NULL);
					assert_non_null(ci);
					assert_non_null(cr);
				}
				assert_int_equal(noise_chan_seal(from_init ? ci : cr, pl, pln, &w, NULL), 0);
				assert_int_equal(noise_chan_open(from_init ? cr : ci, w.data, w.len, &r, NULL), 0);
			}
			assert_int_equal(w.len, ctn);
			assert_memory_equal(w.data, ct, ctn);
			assert_int_equal(r.len, pln);
			assert_memory_equal(r.data, pl, pln);
			buf_done(&w);
			buf_done(&r);
		}
		noise_chan_free(ci);
		noise_chan_free(cr);
		noise_hs_free(I);
		noise_hs_free(R);
	}
}

/* ---- libp2p handshake harness ---- */

struct end {
	noise_hs *hs;
	buf out, in;
	int rc;
	cg_err e;
};

static void end_init(struct end *x, noise_hs *hs)
{
	memset(x, 0, sizeof *x);
	x->hs = hs;
	buf_init(&x->out, 1 << 17);
	buf_init(&x->in, 1 << 17);
}

static void end_done(struct end *x)
{
	noise_hs_free(x->hs);
	buf_done(&x->out);
	buf_done(&x->in);
}

static void pump(struct end *from, struct end *to, size_t step)
{
	while (from->out.len && to->rc == NOISE_CONTINUE) {
		size_t k = from->out.len < step ? from->out.len : step;
		assert_int_equal(buf_append(&to->in, from->out.data, k), 0);
		buf_consume(&from->out, k);
		size_t used;
		to->rc = noise_hs_feed(to->hs, to->in.data, to->in.len, &used, &to->out, &to->e);
		buf_consume(&to->in, used);
	}
}

static void handshake(struct end *a, struct end *b, size_t step)
{
	a->rc = b->rc = NOISE_CONTINUE;
	assert_int_equal(noise_hs_start(a->hs, &a->out, NULL), 0);
	assert_int_equal(noise_hs_start(b->hs, &b->out, NULL), 0);
	assert_int_equal(b->out.len, 0); /* the responder speaks second */
	for (int i = 0; i < 10 && (a->out.len || b->out.len) && a->rc >= 0 && b->rc >= 0; i++) {
		pump(a, b, step);
		pump(b, a, step);
	}
}

struct ident {
	uint8_t pk[32], sk[64];
	peerid id;
};

static void ident_new(struct ident *k)
{
	crypto_sign_keypair(k->pk, k->sk);
	peerid_from_ed25519(&k->id, k->pk);
}

static void t_libp2p_handshake(void **s)
{
	(void)s;
	struct ident A, B;
	ident_new(&A);
	ident_new(&B);
	const char *muxers[] = {"/yamux/1.0.0", "/mplex/6.7.0"};
	for (size_t step = 1; step <= 4096; step *= 8) {
		struct noise_cfg ca = {.initiator = true, .identity_sk = A.sk, .expect = &B.id};
		struct noise_cfg cb = {.initiator = false, .identity_sk = B.sk, .muxers = muxers, .n_muxers = 2};
		struct end a, b;
		end_init(&a, noise_hs_new(&ca, NULL));
		end_init(&b, noise_hs_new(&cb, NULL));
		handshake(&a, &b, step);
		assert_int_equal(a.rc, NOISE_DONE);
		assert_int_equal(b.rc, NOISE_DONE);
		assert_true(peerid_equal(noise_hs_remote_peer(a.hs), &B.id));
		assert_true(peerid_equal(noise_hs_remote_peer(b.hs), &A.id));
		size_t kl;
		const uint8_t *k = noise_hs_remote_key(b.hs, &kl);
		assert_int_equal(kl, 36);
		assert_memory_equal(k + 4, A.pk, 32);
		/* Extensions: B advertised its muxers, A none. */
		assert_int_equal(noise_hs_remote_muxer_count(a.hs), 2);
		assert_string_equal(noise_hs_remote_muxer(a.hs, 0), "/yamux/1.0.0");
		assert_string_equal(noise_hs_remote_muxer(a.hs, 1), "/mplex/6.7.0");
		assert_int_equal(noise_hs_remote_muxer_count(b.hs), 0);
		uint8_t ha[32], hb[32];
		noise_hs_hash(a.hs, ha);
		noise_hs_hash(b.hs, hb);
		assert_memory_equal(ha, hb, 32);

		noise_chan *x = noise_hs_split(a.hs, NULL), *y = noise_hs_split(b.hs, NULL);
		assert_non_null(x);
		assert_non_null(y);
		assert_null(noise_hs_split(a.hs, NULL)); /* only once */
		/* A message bigger than one frame, both ways, delivered in odd chunks. */
		size_t big = 3 * NOISE_MAX_PLAINTEXT + 17;
		uint8_t *pt = malloc(big);
		randombytes_buf(pt, big);
		buf wire, got;
		buf_init(&wire, 1 << 20);
		buf_init(&got, 1 << 20);
		assert_int_equal(noise_chan_encrypt(x, pt, big, &wire, NULL), 0);
		assert_int_equal(wire.len, big + 4 * (2 + NOISE_TAG_LEN));
		size_t fed = 0, pending = 0;
		while (fed < wire.len) {
			size_t k2 = wire.len - fed < 1000 + step ? wire.len - fed : 1000 + step;
			pending += k2;
			fed += k2;
			size_t used;
			assert_int_equal(noise_chan_decrypt(y, wire.data + fed - pending, pending, &used, &got, NULL), 0);
			pending -= used;
		}
		assert_int_equal(pending, 0);
		assert_int_equal(got.len, big);
		assert_memory_equal(got.data, pt, big);
		buf_reset(&wire);
		buf_reset(&got);
		assert_int_equal(noise_chan_encrypt(y, (const uint8_t *)"pong", 4, &wire, NULL), 0);
		size_t used;
		assert_int_equal(noise_chan_decrypt(x, wire.data, wire.len, &used, &got, NULL), 0);
		assert_int_equal(used, wire.len);
		assert_memory_equal(got.data, "pong", 4);
		free(pt);
		buf_done(&wire);
		buf_done(&got);
		noise_chan_free(x);
		noise_chan_free(y);
		end_done(&a);
		end_done(&b);
	}
}

static void t_leftover_after_handshake(void **s)
{
	(void)s;
	/* The initiator sends msg3 and its first transport frame together: the responder must stop after msg3. */
	struct ident A, B;
	ident_new(&A);
	ident_new(&B);
	struct noise_cfg ca = {.initiator = true, .identity_sk = A.sk};
	struct noise_cfg cb = {.initiator = false, .identity_sk = B.sk};
	struct end a, b;
	end_init(&a, noise_hs_new(&ca, NULL));
	end_init(&b, noise_hs_new(&cb, NULL));
	a.rc = b.rc = NOISE_CONTINUE;
	size_t used;
	assert_int_equal(noise_hs_start(a.hs, &a.out, NULL), 0);
	assert_int_equal(noise_hs_feed(b.hs, a.out.data, a.out.len, &used, &b.out, NULL), NOISE_CONTINUE);
	buf_reset(&a.out);
	assert_int_equal(noise_hs_feed(a.hs, b.out.data, b.out.len, &used, &a.out, NULL), NOISE_DONE);
	noise_chan *x = noise_hs_split(a.hs, NULL);
	assert_int_equal(noise_chan_encrypt(x, (const uint8_t *)"early", 5, &a.out, NULL), 0);
	size_t msg3 = a.out.len - (2 + 5 + NOISE_TAG_LEN);
	assert_int_equal(noise_hs_feed(b.hs, a.out.data, a.out.len, &used, &b.out, NULL), NOISE_DONE);
	assert_int_equal(used, msg3);
	noise_chan *y = noise_hs_split(b.hs, NULL);
	buf got;
	buf_init(&got, 1 << 17);
	size_t u2;
	assert_int_equal(noise_chan_decrypt(y, a.out.data + used, a.out.len - used, &u2, &got, NULL), 0);
	assert_int_equal(got.len, 5);
	assert_memory_equal(got.data, "early", 5);
	buf_done(&got);
	noise_chan_free(x);
	noise_chan_free(y);
	end_done(&a);
	end_done(&b);
}

static void t_wrong_peer_id(void **s)
{
	(void)s;
	struct ident A, B, C;
	ident_new(&A);
	ident_new(&B);
	ident_new(&C);
	/* A dials expecting C but B answers. */
	struct noise_cfg ca = {.initiator = true, .identity_sk = A.sk, .expect = &C.id};
	struct noise_cfg cb = {.initiator = false, .identity_sk = B.sk};
	struct end a, b;
	end_init(&a, noise_hs_new(&ca, NULL));
	end_init(&b, noise_hs_new(&cb, NULL));
	handshake(&a, &b, 4096);
	assert_int_equal(a.rc, -CG_E_FORBIDDEN);
	assert_non_null(strstr(a.e.msg, "differs"));
	assert_false(noise_hs_done(a.hs));
	assert_null(noise_hs_remote_peer(a.hs));
	assert_null(noise_hs_split(a.hs, NULL));
	assert_int_equal(b.rc, NOISE_CONTINUE); /* never got msg3 */
	/* The failed handshake stays failed. */
	size_t used;
	assert_true(noise_hs_feed(a.hs, (const uint8_t *)"\x00\x00", 2, &used, &a.out, NULL) < 0);
	end_done(&a);
	end_done(&b);
}

/* A responder speaking raw Noise with a hand-made payload, to forge what an honest peer never sends. */
static int forged_msg2(const uint8_t *msg1, size_t n1, const uint8_t *payload, size_t pn, buf *out,
		       const uint8_t s_sk[32])
{
	noise_hs *r = noise_hs_new_raw(false, NULL, 0, s_sk, NULL, NULL);
	buf pl;
	buf_init(&pl, 1024);
	int rc = noise_hs_read_msg(r, msg1 + 2, n1 - 2, &pl, NULL);
	assert_int_equal(rc, 0);
	size_t start = out->len;
	assert_int_equal(buf_append(out, "\0\0", 2), 0);
	assert_int_equal(noise_hs_write_msg(r, payload, pn, out, NULL), 0);
	size_t len = out->len - start - 2;
	out->data[start] = (uint8_t)(len >> 8);
	out->data[start + 1] = (uint8_t)len;
	buf_done(&pl);
	noise_hs_free(r);
	return 0;
}

static void t_forged_payloads(void **s)
{
	(void)s;
	struct ident A, B;
	ident_new(&A);
	ident_new(&B);
	uint8_t s_sk[32], s_pk[32], other_pk[32], tmp[32];
	randombytes_buf(s_sk, 32);
	crypto_scalarmult_base(s_pk, s_sk);
	randombytes_buf(tmp, 32);
	crypto_scalarmult_base(other_pk, tmp);
	uint8_t keypb[36] = {0x08, 0x01, 0x12, 0x20};
	memcpy(keypb + 4, B.pk, 32);

	for (int kind = 0; kind < 5; kind++) {
		uint8_t msg[24 + 32], sig[64];
		memcpy(msg, "noise-libp2p-static-key:", 24);
		/* kind 0: signature over another static key; 1: signature by another identity; 2: no signature;
		 * 3: garbage protobuf; 4: a secp256k1 identity key (unsupported for signatures). */
		memcpy(msg + 24, kind == 0 ? other_pk : s_pk, 32);
		crypto_sign_detached(sig, NULL, msg, sizeof msg, kind == 1 ? A.sk : B.sk);
		buf pl;
		buf_init(&pl, 1024);
		if (kind == 3) {
			assert_int_equal(buf_append(&pl, "\x0a\x50\x01", 3), 0);
		} else if (kind == 4) {
			uint8_t k2[37] = {0x08, 0x02, 0x12, 0x21, 0x02};
			assert_int_equal(pb_put_bytes(&pl, 1, k2, sizeof k2), 0);
			assert_int_equal(pb_put_bytes(&pl, 2, sig, 64), 0);
		} else {
			assert_int_equal(pb_put_bytes(&pl, 1, keypb, sizeof keypb), 0);
			if (kind != 2)
				assert_int_equal(pb_put_bytes(&pl, 2, sig, 64), 0);
		}
		struct noise_cfg ca = {.initiator = true, .identity_sk = A.sk};
		noise_hs *a = noise_hs_new(&ca, NULL);
		buf m1, m2, m3;
		buf_init(&m1, 1 << 16);
		buf_init(&m2, 1 << 16);
		buf_init(&m3, 1 << 16);
		assert_int_equal(noise_hs_start(a, &m1, NULL), 0);
		forged_msg2(m1.data, m1.len, pl.data, pl.len, &m2, s_sk);
		size_t used;
		cg_err e = {0};
		int rc = noise_hs_feed(a, m2.data, m2.len, &used, &m3, &e);
		if (kind <= 1)
			assert_int_equal(rc, -CG_E_FORBIDDEN);
		else
			assert_int_equal(rc, -CG_E_INVALID_ARGUMENT);
		assert_int_equal(m3.len, 0); /* nothing sent back */
		noise_hs_free(a);
		buf_done(&m1);
		buf_done(&m2);
		buf_done(&m3);
		buf_done(&pl);
	}
}

static void t_tampered_handshake(void **s)
{
	(void)s;
	struct ident A, B;
	ident_new(&A);
	ident_new(&B);
	/* Flip one byte in each position class of msg2 and msg3 (ephemeral, static ciphertext, payload tag). */
	for (int which = 2; which <= 3; which++) {
		for (int pos = 0; pos < 3; pos++) {
			struct noise_cfg ca = {.initiator = true, .identity_sk = A.sk};
			struct noise_cfg cb = {.initiator = false, .identity_sk = B.sk};
			noise_hs *a = noise_hs_new(&ca, NULL), *b = noise_hs_new(&cb, NULL);
			buf m1, m2, m3, none;
			buf_init(&m1, 1 << 16);
			buf_init(&m2, 1 << 16);
			buf_init(&m3, 1 << 16);
			buf_init(&none, 1 << 16);
			size_t used;
			assert_int_equal(noise_hs_start(a, &m1, NULL), 0);
			assert_int_equal(noise_hs_feed(b, m1.data, m1.len, &used, &m2, NULL), NOISE_CONTINUE);
			buf *victim = which == 2 ? &m2 : &m3;
			if (which == 3)
				assert_int_equal(noise_hs_feed(a, m2.data, m2.len, &used, &m3, NULL), NOISE_DONE);
			size_t at = pos == 0 ? 2 + 5 : pos == 1 ? (which == 2 ? 2 + 40 : 2 + 5) : victim->len - 1;
			victim->data[at] ^= 0x40;
			cg_err e = {0};
			int rc = which == 2 ? noise_hs_feed(a, m2.data, m2.len, &used, &m3, &e)
					    : noise_hs_feed(b, m3.data, m3.len, &used, &none, &e);
			assert_true(rc < 0);
			assert_true(strlen(e.msg) > 0);
			noise_hs_free(a);
			noise_hs_free(b);
			buf_done(&m1);
			buf_done(&m2);
			buf_done(&m3);
			buf_done(&none);
		}
	}
	/* Truncated and oversize-claimed first messages. */
	struct noise_cfg cb = {.initiator = false, .identity_sk = B.sk};
	noise_hs *b = noise_hs_new(&cb, NULL);
	buf out;
	buf_init(&out, 1 << 16);
	size_t used;
	assert_int_equal(noise_hs_feed(b, (const uint8_t *)"\x00\x10 short message ", 18, &used, &out, NULL),
			 -CG_E_INVALID_ARGUMENT);
	noise_hs_free(b);
	b = noise_hs_new(&cb, NULL);
	/* A length prefix promising more than was sent is just "need more". */
	assert_int_equal(noise_hs_feed(b, (const uint8_t *)"\xff\xff\x01", 3, &used, &out, NULL), NOISE_CONTINUE);
	assert_int_equal(used, 0);
	noise_hs_free(b);
	buf_done(&out);
	/* Bad configurations. */
	struct noise_cfg none = {.initiator = true};
	assert_null(noise_hs_new(&none, NULL));
}

static void chan_pair(noise_chan **x, noise_chan **y)
{
	struct ident A, B;
	ident_new(&A);
	ident_new(&B);
	struct noise_cfg ca = {.initiator = true, .identity_sk = A.sk};
	struct noise_cfg cb = {.initiator = false, .identity_sk = B.sk};
	struct end a, b;
	end_init(&a, noise_hs_new(&ca, NULL));
	end_init(&b, noise_hs_new(&cb, NULL));
	handshake(&a, &b, 1 << 16);
	assert_int_equal(a.rc, NOISE_DONE);
	assert_int_equal(b.rc, NOISE_DONE);
	*x = noise_hs_split(a.hs, NULL);
	*y = noise_hs_split(b.hs, NULL);
	end_done(&a);
	end_done(&b);
}

static void t_channel_errors(void **s)
{
	(void)s;
	noise_chan *x, *y;
	buf wire, got;
	size_t used;
	cg_err e;
	buf_init(&wire, 1 << 17);
	buf_init(&got, 1 << 17);
	/* Tampered frame: fatal, and the channel stays dead. */
	chan_pair(&x, &y);
	assert_int_equal(noise_chan_encrypt(x, (const uint8_t *)"hello", 5, &wire, NULL), 0);
	wire.data[4] ^= 1;
	assert_int_equal(noise_chan_decrypt(y, wire.data, wire.len, &used, &got, &e), -CG_E_INVALID_ARGUMENT);
	assert_int_equal(got.len, 0);
	wire.data[4] ^= 1;
	assert_int_equal(noise_chan_decrypt(y, wire.data, wire.len, &used, &got, NULL), -CG_E_UNAVAILABLE);
	noise_chan_free(x);
	noise_chan_free(y);
	/* Replayed / reordered frames fail (nonces). */
	chan_pair(&x, &y);
	buf_reset(&wire);
	assert_int_equal(noise_chan_encrypt(x, (const uint8_t *)"one", 3, &wire, NULL), 0);
	assert_int_equal(noise_chan_decrypt(y, wire.data, wire.len, &used, &got, NULL), 0);
	assert_int_equal(noise_chan_decrypt(y, wire.data, wire.len, &used, &got, NULL), -CG_E_INVALID_ARGUMENT);
	noise_chan_free(x);
	noise_chan_free(y);
	/* A frame shorter than a tag. */
	chan_pair(&x, &y);
	assert_int_equal(noise_chan_decrypt(y, (const uint8_t *)"\x00\x05hello", 7, &used, &got, NULL),
			 -CG_E_INVALID_ARGUMENT);
	noise_chan_free(x);
	noise_chan_free(y);
	/* Output room: a frame that does not fit waits, without consuming. */
	chan_pair(&y, &x);
	buf small;
	buf_init(&small, 10);
	buf_reset(&wire);
	assert_int_equal(noise_chan_encrypt(y, (const uint8_t *)"0123456789abcdef", 16, &wire, NULL), 0);
	assert_int_equal(noise_chan_encrypt(y, (const uint8_t *)"x", 1, &small, NULL), -CG_E_QUOTA_EXCEEDED);
	assert_int_equal(noise_chan_decrypt(x, wire.data, wire.len, &used, &small, NULL), 0);
	assert_int_equal(used, 0);
	buf_reset(&got);
	assert_int_equal(noise_chan_decrypt(x, wire.data, wire.len - 1, &used, &got, NULL), 0);
	assert_int_equal(used, 0);
	assert_int_equal(noise_chan_decrypt(x, wire.data, wire.len, &used, &got, NULL), 0);
	assert_int_equal(used, wire.len);
	assert_int_equal(got.len, 16);
	buf_done(&small);
	/* Nonce exhaustion: 2^64-1 is reserved, so the last usable nonce is 2^64-2. */
	x->rx.n = y->tx.n = UINT64_MAX - 1;
	buf_reset(&wire);
	buf_reset(&got);
	assert_int_equal(noise_chan_encrypt(y, (const uint8_t *)"last", 4, &wire, NULL), 0);
	assert_int_equal(noise_chan_decrypt(x, wire.data, wire.len, &used, &got, NULL), 0);
	assert_int_equal(noise_chan_encrypt(y, (const uint8_t *)"more", 4, &wire, &e), -CG_E_UNAVAILABLE);
	assert_non_null(strstr(e.msg, "nonce"));
	assert_int_equal(noise_chan_decrypt(x, wire.data, wire.len, &used, &got, NULL), -CG_E_UNAVAILABLE);
	noise_chan_free(x);
	noise_chan_free(y);
	buf_done(&wire);
	buf_done(&got);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_vectors),		  cmocka_unit_test(t_libp2p_handshake),
		cmocka_unit_test(t_leftover_after_handshake), cmocka_unit_test(t_wrong_peer_id),
		cmocka_unit_test(t_forged_payloads),	  cmocka_unit_test(t_tampered_handshake),
		cmocka_unit_test(t_channel_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
