/* Bad input against a real swarm listener on loopback. The listener runs in a child process (its own
 * libevent loop); the parent is a hostile peer built from the codecs with blocking sockets. Each attack
 * must end with the connection or stream closed, the listener alive and still completing handshakes, and
 * its memory bounded:
 *   garbage instead of multistream-select, an oversize multistream message, a truncated noise frame,
 *   garbage noise handshake messages, an invalid identity signature in the noise payload, a yamux writer
 *   that overflows its window, a bad yamux header, an oversize mplex frame, a stream flood, a writer that
 *   never reads its echo (mplex: no flow control), stalled handshakes, and more connections than allowed. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <sodium.h>

#include "crypto/identity.h"
#include "p2p/mplex.h"
#include "p2p/mss.h"
#include "p2p/noise.h"
#include "p2p/swarm.h"
#include "p2p/yamux.h"

static pid_t child;
static int port;
static peerid server_id;

/* ---- the listener (child) ---------------------------------------------------------------------------- */

static void on_term(evutil_socket_t s, short w, void *arg)
{
	event_base_loopexit(arg, NULL);
}

static void run_listener(int wfd)
{
	struct event_base *b = event_base_new();
	struct node_key k;
	node_key_generate(&k);
	struct p2p_swarm_cfg cfg;
	p2p_swarm_cfg_default(&cfg);
	cfg.limits.max_streams_per_conn = 16;
	cfg.limits.stream_buf_cap = 256 * 1024;
	cfg.limits.conn_buf_cap = 1 << 20;
	cfg.limits.handshake_ms = 1500;
	cfg.limits.max_conns = 32;
	cg_err e = {0};
	struct p2p_swarm *sw = p2p_swarm_new(b, k.sk, &cfg, &e);
	if (!sw || p2p_swarm_listen(sw, "/ip4/127.0.0.1/tcp/0", &e) < 0)
		_exit(3);
	const char *addr;
	p2p_swarm_listen_addrs(sw, &addr, 1);
	if (write(wfd, addr, strlen(addr) + 1) < 0)
		_exit(3);
	close(wfd);
	struct event *t = evsignal_new(b, SIGTERM, on_term, b);
	evsignal_add(t, NULL);
	event_base_dispatch(b);
	event_free(t);
	p2p_swarm_free(sw);
	event_base_free(b);
	exit(0); /* not _exit: LeakSanitizer checks the listener at exit */
}

static int setup(void **st)
{
	int p[2];
	if (pipe(p) != 0)
		return -1;
	child = fork();
	if (child == 0) {
		close(p[0]);
		run_listener(p[1]);
	}
	close(p[1]);
	char addr[256] = {0};
	size_t got = 0;
	ssize_t n;
	while (got < sizeof addr - 1 && (n = read(p[0], addr + got, sizeof addr - 1 - got)) > 0)
		got += (size_t)n;
	close(p[0]);
	const char *t = strstr(addr, "/tcp/"), *id = strstr(addr, "/p2p/");
	if (!t || !id)
		return -1;
	port = 0;
	for (const char *d = t + 5; *d >= '0' && *d <= '9'; d++)
		port = port * 10 + (*d - '0');
	cg_err e = {0};
	return peerid_parse(&server_id, id + 5, strlen(id + 5), &e);
}

static int teardown(void **st)
{
	kill(child, SIGTERM);
	int status = 0;
	waitpid(child, &status, 0);
	/* The listener must exit cleanly (no crash, no sanitizer report). */
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* ---- blocking hostile client ------------------------------------------------------------------------- */

static int connect_raw(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct timeval tv = {10, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	return fd;
}

static void send_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		if (w <= 0)
			return; /* the listener may close on us mid-attack: that is the expected outcome */
		b += w;
		n -= (size_t)w;
	}
}

/* True when the listener closed the connection (EOF or reset) within the receive timeout. */
static bool closed_by_peer(int fd)
{
	uint8_t tmp[4096];
	for (;;) {
		ssize_t n = recv(fd, tmp, sizeof tmp, 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return true;
		if (n < 0)
			return false; /* timeout: still open */
	}
}

static long rss_kb(void)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)child);
	FILE *f = fopen(path, "re");
	long kb = -1;
	while (f && fgets(line, sizeof line, f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			kb = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return kb;
}

/* Reads until the negotiator is done; leftover bytes are kept in *rest. */
static void mss_client(int fd, const char *proto)
{
	const char *list[] = {proto};
	mss *m = mss_new_initiator(list, 1, false, NULL);
	buf out, in;
	buf_init(&out, 4096);
	buf_init(&in, 4096);
	assert_int_equal(mss_start(m, &out), 0);
	send_all(fd, out.data, out.len);
	int rc = MSS_CONTINUE;
	while (rc == MSS_CONTINUE) {
		uint8_t tmp[512];
		ssize_t n = recv(fd, tmp, sizeof tmp, 0);
		assert_true(n > 0);
		assert_int_equal(buf_append(&in, tmp, (size_t)n), 0);
		size_t used = 0;
		buf_reset(&out);
		rc = mss_feed(m, in.data, in.len, &used, &out, NULL);
		assert_true(rc >= 0);
		buf_consume(&in, used);
	}
	mss_free(m);
	buf_done(&out);
	buf_done(&in);
}

struct sconn {
	int fd;
	noise_chan *chan;
	buf cipher, plain;
};

/* tcp + mss /noise + noise XX (+ mss muxer): a secured connection, like any honest dialer. identity_sk
 * may be forged by the caller. Returns -1 when the listener refused the handshake (closed). */
static int secure_connect(struct sconn *sc, const uint8_t *identity_sk, const char *muxer)
{
	memset(sc, 0, sizeof *sc);
	sc->fd = connect_raw();
	mss_client(sc->fd, NOISE_PROTOCOL);
	struct noise_cfg cfg = {.initiator = true, .identity_sk = identity_sk, .expect = &server_id};
	noise_hs *hs = noise_hs_new(&cfg, NULL);
	assert_non_null(hs);
	buf out, in;
	buf_init(&out, 1 << 17);
	buf_init(&in, 1 << 17);
	assert_int_equal(noise_hs_start(hs, &out, NULL), 0);
	send_all(sc->fd, out.data, out.len);
	int rc = NOISE_CONTINUE;
	while (rc == NOISE_CONTINUE) {
		uint8_t tmp[4096];
		ssize_t n = recv(sc->fd, tmp, sizeof tmp, 0);
		assert_true(n > 0);
		assert_int_equal(buf_append(&in, tmp, (size_t)n), 0);
		size_t used = 0;
		buf_reset(&out);
		rc = noise_hs_feed(hs, in.data, in.len, &used, &out, NULL);
		assert_true(rc >= 0);
		buf_consume(&in, used);
		send_all(sc->fd, out.data, out.len);
	}
	sc->chan = noise_hs_split(hs, NULL);
	noise_hs_free(hs);
	buf_init(&sc->cipher, 1 << 20);
	buf_init(&sc->plain, 1 << 22);
	assert_int_equal(buf_append(&sc->cipher, in.data, in.len), 0);
	buf_done(&out);
	buf_done(&in);
	if (!muxer)
		return 0;
	/* multistream-select for the muxer, through the channel */
	const char *list[] = {muxer};
	mss *m = mss_new_initiator(list, 1, false, NULL);
	buf o;
	buf_init(&o, 4096);
	assert_int_equal(mss_start(m, &o), 0);
	buf ct;
	buf_init(&ct, 1 << 17);
	assert_int_equal(noise_chan_encrypt(sc->chan, o.data, o.len, &ct, NULL), 0);
	send_all(sc->fd, ct.data, ct.len);
	rc = MSS_CONTINUE;
	while (rc == MSS_CONTINUE) {
		size_t used = 0;
		assert_int_equal(noise_chan_decrypt(sc->chan, sc->cipher.data, sc->cipher.len, &used, &sc->plain, NULL), 0);
		buf_consume(&sc->cipher, used);
		buf_reset(&o);
		size_t took = 0;
		rc = mss_feed(m, sc->plain.data, sc->plain.len, &took, &o, NULL);
		assert_true(rc >= 0);
		buf_consume(&sc->plain, took);
		if (rc == MSS_CONTINUE) {
			uint8_t tmp[4096];
			ssize_t n = recv(sc->fd, tmp, sizeof tmp, 0);
			assert_true(n > 0);
			assert_int_equal(buf_append(&sc->cipher, tmp, (size_t)n), 0);
		}
	}
	mss_free(m);
	buf_done(&o);
	buf_done(&ct);
	return 0;
}

static void sc_send(struct sconn *sc, const void *p, size_t n)
{
	buf ct;
	buf_init(&ct, n + n / 1000 + 1024);
	assert_int_equal(noise_chan_encrypt(sc->chan, p, n, &ct, NULL), 0);
	send_all(sc->fd, ct.data, ct.len);
	buf_done(&ct);
}

static void sc_close(struct sconn *sc)
{
	close(sc->fd);
	noise_chan_free(sc->chan);
	buf_done(&sc->cipher);
	buf_done(&sc->plain);
}

static void yamux_frame(struct sconn *sc, uint8_t type, uint16_t flags, uint32_t stream, uint32_t len,
			const void *data, size_t n)
{
	struct yamux_hdr h = {.version = 0, .type = type, .flags = flags, .stream = stream, .length = len};
	uint8_t *f = malloc(YAMUX_HDR_LEN + n);
	yamux_hdr_encode(f, &h);
	if (n)
		memcpy(f + YAMUX_HDR_LEN, data, n);
	sc_send(sc, f, YAMUX_HDR_LEN + n);
	free(f);
}

/* Reads yamux frames until a ping ACK with `opaque` arrives: proof the session is alive and answering. */
static bool yamux_pong(struct sconn *sc, uint32_t opaque)
{
	for (int rounds = 0; rounds < 10000; rounds++) {
		while (sc->plain.len >= YAMUX_HDR_LEN) {
			struct yamux_hdr h;
			assert_int_equal(yamux_hdr_decode(sc->plain.data, sc->plain.len, &h, NULL), YAMUX_HDR_LEN);
			size_t body = h.type == YAMUX_DATA ? h.length : 0;
			if (sc->plain.len < YAMUX_HDR_LEN + body)
				break;
			buf_consume(&sc->plain, YAMUX_HDR_LEN + body);
			if (h.type == YAMUX_PING && (h.flags & YAMUX_ACK) && h.length == opaque)
				return true;
		}
		size_t used = 0;
		if (sc->cipher.len) {
			if (noise_chan_decrypt(sc->chan, sc->cipher.data, sc->cipher.len, &used, &sc->plain, NULL) < 0)
				return false;
			buf_consume(&sc->cipher, used);
			if (used)
				continue;
		}
		uint8_t tmp[65536];
		ssize_t n = recv(sc->fd, tmp, sizeof tmp, 0);
		if (n <= 0)
			return false;
		assert_int_equal(buf_append(&sc->cipher, tmp, (size_t)n), 0);
	}
	return false;
}

/* The listener still completes a full handshake and answers a yamux ping. */
static void assert_healthy(void)
{
	assert_int_equal(waitpid(child, NULL, WNOHANG), 0);
	struct node_key k;
	node_key_generate(&k);
	struct sconn sc;
	assert_int_equal(secure_connect(&sc, k.sk, YAMUX_PROTOCOL), 0);
	yamux_frame(&sc, YAMUX_PING, YAMUX_SYN, 0, 777, NULL, 0);
	assert_true(yamux_pong(&sc, 777));
	sc_close(&sc);
}

/* ---- attacks ----------------------------------------------------------------------------------------- */

static void t_garbage_before_mss(void **st)
{
	int fd = connect_raw();
	const char junk[] = "\x13GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	send_all(fd, junk, sizeof junk - 1);
	assert_true(closed_by_peer(fd));
	close(fd);
	/* an oversize multistream message: length prefix 5000 */
	fd = connect_raw();
	uint8_t big[2 + 5000];
	big[0] = 0x88;
	big[1] = 0x27;
	memset(big + 2, 'a', 5000);
	send_all(fd, big, sizeof big);
	assert_true(closed_by_peer(fd));
	close(fd);
	assert_healthy();
}

static void t_truncated_noise(void **st)
{
	int fd = connect_raw();
	mss_client(fd, NOISE_PROTOCOL);
	/* a frame that announces 1000 bytes, 10 sent, then the writer stops and half-closes */
	uint8_t part[12] = {0x03, 0xe8};
	send_all(fd, part, sizeof part);
	shutdown(fd, SHUT_WR);
	assert_true(closed_by_peer(fd));
	close(fd);
	/* garbage handshake messages: a random "ephemeral key", then random bytes as message 3 */
	fd = connect_raw();
	mss_client(fd, NOISE_PROTOCOL);
	uint8_t m1[2 + 32] = {0x00, 0x20};
	randombytes_buf(m1 + 2, 32);
	send_all(fd, m1, sizeof m1);
	uint8_t tmp[4096];
	assert_true(recv(fd, tmp, sizeof tmp, 0) > 0); /* message 2 */
	uint8_t m3[2 + 200] = {0x00, 0xc8};
	randombytes_buf(m3 + 2, 200);
	send_all(fd, m3, sizeof m3);
	assert_true(closed_by_peer(fd));
	close(fd);
	assert_healthy();
}

static void t_bad_signature(void **st)
{
	/* An identity secret key whose public half belongs to another key: the payload carries a public
	 * key and a signature that does not verify under it. */
	struct node_key a, b;
	node_key_generate(&a);
	node_key_generate(&b);
	uint8_t forged[64];
	memcpy(forged, a.sk, 32);
	memcpy(forged + 32, b.pk, 32);
	int fd = connect_raw();
	mss_client(fd, NOISE_PROTOCOL);
	struct noise_cfg cfg = {.initiator = true, .identity_sk = forged, .expect = &server_id};
	noise_hs *hs = noise_hs_new(&cfg, NULL);
	buf out, in;
	buf_init(&out, 1 << 17);
	buf_init(&in, 1 << 17);
	assert_int_equal(noise_hs_start(hs, &out, NULL), 0);
	send_all(fd, out.data, out.len);
	int rc = NOISE_CONTINUE;
	while (rc == NOISE_CONTINUE) {
		uint8_t tmp[4096];
		ssize_t n = recv(fd, tmp, sizeof tmp, 0);
		assert_true(n > 0);
		assert_int_equal(buf_append(&in, tmp, (size_t)n), 0);
		size_t used = 0;
		buf_reset(&out);
		rc = noise_hs_feed(hs, in.data, in.len, &used, &out, NULL);
		buf_consume(&in, used);
		send_all(fd, out.data, out.len);
	}
	assert_int_equal(rc, NOISE_DONE); /* our side is done; the listener must refuse message 3 */
	assert_true(closed_by_peer(fd));
	close(fd);
	noise_hs_free(hs);
	buf_done(&out);
	buf_done(&in);
	assert_healthy();
}

static void t_yamux_violations(void **st)
{
	struct node_key k;
	node_key_generate(&k);
	struct sconn sc;
	/* a writer that ignores the 256 KiB window */
	assert_int_equal(secure_connect(&sc, k.sk, YAMUX_PROTOCOL), 0);
	size_t n = 300 * 1024;
	uint8_t *junk = calloc(1, n);
	yamux_frame(&sc, YAMUX_DATA, YAMUX_SYN, 1, (uint32_t)n, junk, n);
	free(junk);
	assert_true(closed_by_peer(sc.fd));
	sc_close(&sc);
	/* a header with an unknown version */
	assert_int_equal(secure_connect(&sc, k.sk, YAMUX_PROTOCOL), 0);
	uint8_t bad[YAMUX_HDR_LEN] = {7, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0};
	sc_send(&sc, bad, sizeof bad);
	assert_true(closed_by_peer(sc.fd));
	sc_close(&sc);
	/* a truncated header, then the peer goes away */
	assert_int_equal(secure_connect(&sc, k.sk, YAMUX_PROTOCOL), 0);
	sc_send(&sc, bad + 1, 5);
	shutdown(sc.fd, SHUT_WR);
	assert_true(closed_by_peer(sc.fd));
	sc_close(&sc);
	assert_healthy();
}

static void t_mplex_oversize(void **st)
{
	struct node_key k;
	node_key_generate(&k);
	struct sconn sc;
	assert_int_equal(secure_connect(&sc, k.sk, MPLEX_PROTOCOL), 0);
	/* NewStream on id 1, then a message frame announcing 2 MiB (above the 1 MiB frame limit) */
	uint8_t f[32];
	struct mplex_hdr h = {.id = 1, .flag = MPLEX_NEW_STREAM, .length = 1};
	size_t k0 = mplex_hdr_encode(f, &h);
	f[k0++] = 'x';
	h.flag = MPLEX_MSG_INITIATOR;
	h.length = 2u << 20;
	k0 += mplex_hdr_encode(f + k0, &h);
	sc_send(&sc, f, k0);
	assert_true(closed_by_peer(sc.fd));
	sc_close(&sc);
	assert_healthy();
}

static void t_stream_flood(void **st)
{
	struct node_key k;
	node_key_generate(&k);
	struct sconn sc;
	assert_int_equal(secure_connect(&sc, k.sk, YAMUX_PROTOCOL), 0);
	long before = rss_kb();
	/* 5000 new streams (odd ids, SYN): the listener keeps 16 and resets the rest */
	for (uint32_t i = 0; i < 5000; i++)
		yamux_frame(&sc, YAMUX_WINDOW_UPDATE, YAMUX_SYN, 2 * i + 1, 0, NULL, 0);
	yamux_frame(&sc, YAMUX_PING, YAMUX_SYN, 0, 4242, NULL, 0);
	assert_true(yamux_pong(&sc, 4242)); /* the connection survived the flood */
	long after = rss_kb();
	assert_true(before > 0 && after > 0);
	assert_true(after - before < 16 * 1024); /* bounded: far less than a buffer per flooded stream */
	sc_close(&sc);
	assert_healthy();
}

static void t_writer_never_reads(void **st)
{
	/* mplex (no flow control): an echo stream whose writer never reads the echo. The listener must stop
	 * reading (TCP backpressure) instead of buffering: our sends stall, its memory stays bounded. */
	struct node_key k;
	node_key_generate(&k);
	struct sconn sc;
	assert_int_equal(secure_connect(&sc, k.sk, MPLEX_PROTOCOL), 0);
	struct timeval tv = {1, 0};
	setsockopt(sc.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	long before = rss_kb();
	uint8_t f[64];
	struct mplex_hdr h = {.id = 5, .flag = MPLEX_NEW_STREAM, .length = 0};
	size_t n = mplex_hdr_encode(f, &h);
	buf o;
	buf_init(&o, 4096);
	assert_int_equal(mss_put_msg(&o, MSS_PROTOCOL, strlen(MSS_PROTOCOL)), 0);
	assert_int_equal(mss_put_msg(&o, P2P_ECHO_PROTOCOL, strlen(P2P_ECHO_PROTOCOL)), 0);
	h.flag = MPLEX_MSG_INITIATOR;
	h.length = (uint32_t)o.len;
	n += mplex_hdr_encode(f + n, &h);
	sc_send(&sc, f, n);
	sc_send(&sc, o.data, o.len);
	buf_done(&o);
	/* up to 64 MiB offered, 64 KiB per frame, stop at the first stalled send */
	size_t chunk = 65536, offered = 0;
	uint8_t *data = calloc(1, chunk + 32);
	buf ct;
	buf_init(&ct, chunk + 4096);
	while (offered < (64u << 20)) {
		h.length = (uint32_t)chunk;
		size_t hl = mplex_hdr_encode(data, &h);
		buf_reset(&ct);
		assert_int_equal(noise_chan_encrypt(sc.chan, data, hl + chunk, &ct, NULL), 0);
		ssize_t w = send(sc.fd, ct.data, ct.len, MSG_NOSIGNAL);
		if (w < (ssize_t)ct.len)
			break; /* stalled: the listener stopped reading */
		offered += chunk;
	}
	assert_true(offered < (64u << 20));
	long after = rss_kb();
	assert_true(after - before < 32 * 1024);
	free(data);
	buf_done(&ct);
	sc_close(&sc);
	assert_healthy();
}

static void t_stalled_handshake(void **st)
{
	/* A peer that connects and then says nothing is closed at the handshake deadline. */
	int fd = connect_raw();
	assert_true(closed_by_peer(fd));
	close(fd);
	/* One that stops in the middle of the noise handshake too. */
	fd = connect_raw();
	mss_client(fd, NOISE_PROTOCOL);
	assert_true(closed_by_peer(fd));
	close(fd);
	assert_healthy();
}

static void t_connection_limit(void **st)
{
	/* 40 connections against a limit of 32: the excess is closed at accept, the rest stay until the
	 * handshake deadline; afterwards the listener accepts again. */
	int fds[40];
	for (int i = 0; i < 40; i++)
		fds[i] = connect_raw();
	int closed = 0;
	for (int i = 0; i < 40; i++) {
		struct timeval tv = {0, 300000};
		setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		uint8_t b;
		ssize_t n = recv(fds[i], &b, 1, 0);
		closed += n == 0 || (n < 0 && errno == ECONNRESET);
	}
	assert_true(closed >= 8);
	for (int i = 0; i < 40; i++)
		close(fds[i]);
	assert_healthy();
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_garbage_before_mss), cmocka_unit_test(t_truncated_noise),
		cmocka_unit_test(t_bad_signature),	cmocka_unit_test(t_yamux_violations),
		cmocka_unit_test(t_mplex_oversize),	cmocka_unit_test(t_stream_flood),
		cmocka_unit_test(t_writer_never_reads), cmocka_unit_test(t_stalled_handshake),
		cmocka_unit_test(t_connection_limit),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
