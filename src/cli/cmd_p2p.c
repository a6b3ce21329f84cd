/* clawgrid p2p id|listen|dial|ping|peers — libp2p from the command line.
 *
 * Fixed interfaces other tools rely on:
 *   p2p listen MULTIADDR   prints each full listen address (…/p2p/<peer id>) on its own line, flushes, then
 *                          serves identify, ping and /clawgrid/echo/1.0.0 until SIGINT/SIGTERM;
 *   p2p ping MULTIADDR [-c N]   prints one round-trip time per line ("0.412 ms"), exit 0 on success.
 * listen/dial/ping run their own swarm (the node key when the data directory has one, else an ephemeral
 * key); peers asks the running node (p2p.peers). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>
#include <sodium.h>

#include "base/clock.h"
#include "base/log.h"
#include "cli/cli.h"
#include "cli/version.h"
#include "crypto/identity.h"
#include "p2p/mplex.h"
#include "p2p/peerstore.h"
#include "p2p/ping.h"
#include "p2p/swarm.h"
#include "p2p/yamux.h"

#define ECHO_CHUNK 65536
#define SMALL_ECHO 4096

struct sess {
	struct cli *cli;
	struct event_base *base;
	struct p2p_swarm *sw;
	struct p2p_conn *conn;
	struct event *deadline;
	const char *target;
	const char *more_targets[P2P_MAX_LISTEN - 1]; /* listen: further addresses */
	size_t n_more;
	int rc;
	bool identified;
	/* dial actions */
	int ping_count;
	uint64_t echo_bytes;
	int streams;
	const char *protocol;
	int jobs; /* echo jobs still running */
	bool listening;
	int64_t t_dial_us, t_conn_us;
};

static void finish(struct sess *ss, int rc)
{
	if (ss->rc == -1 || rc != EXIT_OK)
		ss->rc = rc;
	event_base_loopexit(ss->base, NULL);
}

static void fail(struct sess *ss, const char *what, const char *msg)
{
	if (ss->rc != -1)
		return; /* already finishing: the streams torn down at exit are not news */
	if (ss->cli->json) {
		json_t *o = json_pack("{s:s, s:s}", "error", what, "message", msg ? msg : "");
		cli_print(ss->cli, o);
		json_decref(o);
	} else {
		fprintf(stderr, "clawgrid: %s: %s\n", what, msg ? msg : "failed");
	}
	finish(ss, EXIT_FAIL);
}

/* The node key when the data directory has one (never created here), else a fresh ephemeral key. */
static int load_key(struct cli *c, struct node_key *k, bool *ephemeral, bool required)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/node.key", c->data_dir);
	cg_err e = {0};
	int rc = node_key_load(path, false, k, &e);
	if (rc == 0) {
		*ephemeral = false;
		return 0;
	}
	if (rc != -CG_E_NOT_FOUND || required) {
		fprintf(stderr, "clawgrid: node key: %s%s\n", e.msg,
			rc == -CG_E_NOT_FOUND ? " (run 'clawgrid init' first)" : "");
		return rc == -CG_E_NOT_FOUND ? EXIT_NONODE : EXIT_FAIL;
	}
	node_key_generate(k);
	*ephemeral = true;
	return 0;
}

static int parse_size(const char *s, uint64_t *out)
{
	const char *end = s;
	unsigned long long v = 0;
	for (; *end >= '0' && *end <= '9'; end++) {
		if (v > (1ull << 40))
			return -1;
		v = v * 10 + (unsigned)(*end - '0');
	}
	if (end == s)
		return -1;
	if (*end == 'K' || *end == 'k')
		v <<= 10, end++;
	else if (*end == 'M' || *end == 'm')
		v <<= 20, end++;
	else if (*end == 'G' || *end == 'g')
		v <<= 30, end++;
	if (*end || v > (1ull << 34))
		return -1;
	*out = v;
	return 0;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct sess *ss = arg;
	finish(ss, EXIT_OK);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	fail(arg, "timeout", "the operation did not finish in time");
}

/* ---- echo jobs: send random bytes on /clawgrid/echo/1.0.0, check that the same bytes come back ----
 * The bytes are a ChaCha20 keystream under a random key, so the receiver regenerates what was sent at any
 * offset and compares byte for byte, without keeping a copy or hashing in the hot path. */

struct echo_job {
	struct sess *ss;
	struct p2p_stream *s;
	uint64_t total, sent, recvd;
	uint8_t key[crypto_stream_chacha20_ietf_KEYBYTES];
	bool finished;
	int64_t t0;
	uint8_t chunk[ECHO_CHUNK + 64];
};

/* Keystream bytes [off, off+n) into out (n <= ECHO_CHUNK). */
static void keystream(const struct echo_job *j, uint64_t off, uint8_t *out, size_t n)
{
	static const uint8_t nonce[crypto_stream_chacha20_ietf_NONCEBYTES];
	static uint8_t zero[ECHO_CHUNK + 64];
	uint8_t tmp[ECHO_CHUNK + 64];
	size_t skip = (size_t)(off % 64);
	crypto_stream_chacha20_ietf_xor_ic(tmp, zero, skip + n, nonce, (uint32_t)(off / 64), j->key);
	memcpy(out, tmp + skip, n);
}

static void job_done(struct echo_job *j, const char *err)
{
	if (j->finished)
		return;
	j->finished = true;
	struct sess *ss = j->ss;
	if (err) {
		fail(ss, "echo", err);
		return;
	}
	if (j->recvd != j->total) {
		fail(ss, "echo", "fewer bytes came back than were sent");
		return;
	}
	if (j->total > SMALL_ECHO || ss->streams == 0) {
		double ms = (double)(clock_mono_us() - j->t0) / 1000.0;
		json_t *o = json_pack("{s:s, s:I, s:s, s:b, s:f, s:f}", "event", "echo", "bytes", (json_int_t)j->total,
				      "verified", "byte-for-byte", "ok", 1, "ms", ms,
				      "mbps", ms > 0 ? (double)j->total / 1048576.0 / (ms / 1000.0) : 0.0);
		char *txt = json_dumps(o, JSON_COMPACT);
		puts(txt);
		free(txt);
		json_decref(o);
	}
	if (--ss->jobs == 0) {
		if (ss->streams) {
			printf("{\"event\":\"streams\",\"count\":%d,\"ok\":true}\n", ss->streams);
		}
		fflush(stdout);
		finish(ss, EXIT_OK);
	}
}

static void job_pump(struct echo_job *j)
{
	while (j->sent < j->total) {
		size_t n = j->total - j->sent < ECHO_CHUNK ? (size_t)(j->total - j->sent) : ECHO_CHUNK;
		if (p2p_stream_write_space(j->s) < n)
			return; /* on_writable resumes */
		keystream(j, j->sent, j->chunk, n);
		cg_err e = {0};
		if (p2p_stream_write(j->s, j->chunk, n, &e) < 0) {
			job_done(j, e.msg);
			return;
		}
		j->sent += n;
	}
	p2p_stream_close_write(j->s);
}

static void job_data(struct p2p_stream *s, const uint8_t *p, size_t n, void *arg)
{
	struct echo_job *j = arg;
	if (j->finished)
		return;
	if (j->recvd + n > j->total) {
		job_done(j, "more bytes came back than were sent");
		return;
	}
	uint8_t want[ECHO_CHUNK];
	for (size_t off = 0; off < n;) {
		size_t k = n - off < ECHO_CHUNK ? n - off : ECHO_CHUNK;
		keystream(j, j->recvd + off, want, k);
		if (memcmp(want, p + off, k) != 0) {
			job_done(j, "the bytes that came back differ from the bytes sent");
			return;
		}
		off += k;
	}
	j->recvd += n;
}

static void job_writable(struct p2p_stream *s, void *arg)
{
	job_pump(arg);
}

static void job_eof(struct p2p_stream *s, void *arg)
{
	job_done(arg, NULL);
}

static void job_close(struct p2p_stream *s, const char *reason, void *arg)
{
	struct echo_job *j = arg;
	job_done(j, reason ? reason : "stream closed before the echo finished");
	free(j);
}

static const struct p2p_stream_cbs job_cbs = {job_data, job_eof, job_writable, job_close};

static void job_opened(struct p2p_stream *s, const cg_err *err, void *arg)
{
	struct echo_job *j = arg;
	if (!s) {
		job_done(j, err ? err->msg : "cannot open echo stream");
		free(j);
		return;
	}
	j->s = s;
	j->t0 = clock_mono_us();
	p2p_stream_set_cbs(s, &job_cbs, j);
	job_pump(j);
}

static int start_echo(struct sess *ss, uint64_t bytes)
{
	struct echo_job *j = calloc(1, sizeof *j);
	if (!j)
		return -1;
	j->ss = ss;
	j->total = bytes;
	crypto_stream_chacha20_ietf_keygen(j->key);
	cg_err e = {0};
	if (p2p_conn_open_stream(ss->conn, P2P_ECHO_PROTOCOL, job_opened, j, &e) < 0) {
		free(j);
		fail(ss, "echo", e.msg);
		return -1;
	}
	ss->jobs++;
	return 0;
}

/* ---- dial / ping -------------------------------------------------------------------------------------- */

static json_t *conn_info(struct sess *ss)
{
	struct p2p_peer *p = p2p_peerstore_get(p2p_swarm_peerstore(ss->sw), p2p_conn_peer_id(ss->conn));
	json_t *o = p ? p2p_peer_json(p) : json_object();
	json_object_set_new(o, "event", json_string("identify"));
	json_object_set_new(o, "peerId", json_string(p2p_conn_peer_id(ss->conn)));
	json_object_set_new(o, "remoteAddr", json_string(p2p_conn_remote_addr(ss->conn)));
	json_object_set_new(o, "muxer", json_string(p2p_conn_muxer(ss->conn)));
	json_object_set_new(o, "handshakeMs", json_real((double)(ss->t_conn_us - ss->t_dial_us) / 1000.0));
	return o;
}

static void print_identify(struct sess *ss)
{
	json_t *o = conn_info(ss);
	if (ss->cli->json) {
		char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
		puts(s);
		free(s);
	} else {
		const char *k;
		json_t *v;
		json_object_foreach(o, k, v)
		{
			if (json_is_array(v)) {
				size_t i;
				json_t *x;
				json_array_foreach(v, i, x) printf("%-16s %s\n", k, json_string_value(x));
			} else if (json_is_string(v)) {
				printf("%-16s %s\n", k, json_string_value(v));
			} else if (json_is_number(v)) {
				printf("%-16s %g\n", k, json_number_value(v));
			}
		}
	}
	fflush(stdout);
	json_decref(o);
}

static void proto_opened(struct p2p_stream *s, const cg_err *err, void *arg)
{
	struct sess *ss = arg;
	if (!s) {
		fail(ss, "protocol", err ? err->msg : "refused");
		return;
	}
	printf("{\"event\":\"protocol\",\"protocol\":\"%s\",\"supported\":true}\n", p2p_stream_protocol(s));
	p2p_stream_reset(s, "probe done");
	if (ss->jobs == 0)
		finish(ss, EXIT_OK);
}

static void run_actions(struct sess *ss)
{
	if (ss->protocol) {
		cg_err e = {0};
		if (p2p_conn_open_stream(ss->conn, ss->protocol, proto_opened, ss, &e) < 0)
			fail(ss, "protocol", e.msg);
		return;
	}
	if (ss->echo_bytes && start_echo(ss, ss->echo_bytes) < 0)
		return;
	for (int i = 0; i < ss->streams; i++)
		if (start_echo(ss, SMALL_ECHO) < 0)
			return;
	if (ss->jobs == 0)
		finish(ss, EXIT_OK);
}

static void on_event(struct p2p_swarm *sw, enum p2p_event ev, struct p2p_conn *c, const char *reason, void *arg)
{
	struct sess *ss = arg;
	if (ss->listening) {
		/* The listener reports what each peer told us (on stderr, logfmt). */
		struct p2p_peer *p = p2p_peerstore_get(p2p_swarm_peerstore(sw), p2p_conn_peer_id(c));
		if (ev == P2P_EV_IDENTIFIED && p) {
			char agent[128], pv[128], obs[128];
			log_info("p2p", "peer identified",
				 "peer=%s agent=%s protocol_version=%s protocols=%zu addrs=%zu observed=%s echo=%d", p->id,
				 log_quote(agent, sizeof agent, p->agent_version),
				 log_quote(pv, sizeof pv, p->protocol_version), p->n_protos, p->n_addrs,
				 log_quote(obs, sizeof obs, p->observed_addr), p2p_peer_has_proto(p, P2P_ECHO_PROTOCOL));
		}
		return;
	}
	if (c != ss->conn)
		return;
	if (ev == P2P_EV_CONN_DOWN && ss->rc == -1)
		fail(ss, "connection", reason);
	else if ((ev == P2P_EV_IDENTIFIED || ev == P2P_EV_IDENTIFY_FAILED) && !ss->identified && !ss->ping_count) {
		/* A peer without identify is still usable: print what the connection tells, then go on. */
		ss->identified = true;
		if (ev == P2P_EV_IDENTIFY_FAILED)
			log_info("p2p", "peer did not identify itself", "peer=%s reason=\"%s\"", p2p_conn_peer_id(c),
				 reason ? reason : "");
		print_identify(ss);
		run_actions(ss);
	}
}

static void on_ping(struct p2p_conn *c, int seq, int64_t rtt_us, const cg_err *err, void *arg)
{
	struct sess *ss = arg;
	if (err) {
		fail(ss, "ping", err->msg);
		return;
	}
	printf("%.3f ms\n", (double)rtt_us / 1000.0);
	fflush(stdout);
	if (seq + 1 == ss->ping_count)
		finish(ss, EXIT_OK);
}

static void on_dial(struct p2p_conn *c, const cg_err *err, void *arg)
{
	struct sess *ss = arg;
	if (!c) {
		fail(ss, "dial", err ? err->msg : "failed");
		return;
	}
	ss->conn = c;
	ss->t_conn_us = clock_mono_us();
	if (ss->ping_count) {
		cg_err e = {0};
		if (p2p_ping(c, ss->ping_count, on_ping, ss, &e) < 0)
			fail(ss, "ping", e.msg);
	}
	/* dial: wait for the peer's identify (on_event). */
}

/* ---- the command ------------------------------------------------------------------------------------ */

static void usage(void)
{
	fprintf(stderr, "usage: clawgrid p2p id\n"
			"       clawgrid p2p listen MULTIADDR [MULTIADDR...] [--muxer yamux|mplex]\n"
			"       clawgrid p2p dial MULTIADDR [--muxer M] [--echo BYTES[K|M]] [--streams N] [--protocol P]\n"
			"       clawgrid p2p ping MULTIADDR [-c N] [--muxer M]\n"
			"       clawgrid p2p peers [--all]\n"
			"  --timeout SEC  give up after SEC seconds (dial, ping; default 30)\n");
}

static int cmd_id_p2p(struct cli *c)
{
	struct node_key k;
	bool eph;
	int rc = load_key(c, &k, &eph, true);
	if (rc)
		return rc;
	char id[PEERID_STR_MAX];
	peerid_string_from_ed25519(k.pk, id, sizeof id);
	node_key_wipe(&k);
	if (c->json)
		printf("{\"peerId\":\"%s\"}\n", id);
	else
		puts(id);
	return EXIT_OK;
}

static int cmd_peers(struct cli *c, bool all)
{
	json_t *params = json_pack("{s:b}", "all", all);
	json_t *res = NULL;
	int rc = cli_rpc(c, "p2p.peers", params, &res);
	json_decref(params);
	if (rc)
		return rc;
	cli_print(c, res);
	json_decref(res);
	return EXIT_OK;
}

int cmd_p2p(struct cli *c, int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage();
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	const char *sub = argv[1];
	if (strcmp(sub, "id") == 0)
		return cmd_id_p2p(c);
	if (strcmp(sub, "peers") == 0) {
		bool all = false;
		for (int i = 2; i < argc; i++) {
			if (strcmp(argv[i], "--all") == 0)
				all = true;
			else if (strcmp(argv[i], "--json") != 0) { /* --json: taken by main */
				fprintf(stderr, "clawgrid p2p peers: unexpected argument %s\n", argv[i]);
				return EXIT_USAGE;
			}
		}
		return cmd_peers(c, all);
	}
	if (strcmp(sub, "listen") != 0 && strcmp(sub, "dial") != 0 && strcmp(sub, "ping") != 0) {
		fprintf(stderr, "clawgrid p2p: unknown subcommand '%s'\n", sub);
		usage();
		return EXIT_USAGE;
	}
	struct sess ss = {.cli = c, .rc = -1};
	struct p2p_swarm_cfg cfg;
	p2p_swarm_cfg_default(&cfg);
	cfg.agent_version = "clawgrid/" CLAWGRID_VERSION;
	long timeout_s = 30;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--json") == 0)
			continue; /* main already switched to JSON output */
		if (a[0] != '-') {
			/* listen takes several addresses (ip4 and ip6 at once); dial and ping one target */
			if (!ss.target) {
				ss.target = a;
			} else if (strcmp(sub, "listen") == 0 && ss.n_more < P2P_MAX_LISTEN - 1) {
				ss.more_targets[ss.n_more++] = a;
			} else {
				fprintf(stderr, "clawgrid p2p %s: unexpected argument %s\n", sub, a);
				usage();
				return EXIT_USAGE;
			}
			continue;
		}
		if (!v) {
			fprintf(stderr, "clawgrid p2p: %s needs a value\n", a);
			return EXIT_USAGE;
		}
		i++;
		uint64_t n;
		if (strcmp(a, "--muxer") == 0) {
			if (strcmp(v, "yamux") == 0)
				cfg.muxers[0] = YAMUX_PROTOCOL;
			else if (strcmp(v, "mplex") == 0)
				cfg.muxers[0] = MPLEX_PROTOCOL;
			else {
				fprintf(stderr, "clawgrid p2p: --muxer must be yamux or mplex\n");
				return EXIT_USAGE;
			}
			cfg.muxers[1] = NULL;
		} else if ((strcmp(a, "-c") == 0 || strcmp(a, "--count") == 0) && parse_size(v, &n) == 0 && n >= 1 &&
			   n <= 1000) {
			ss.ping_count = (int)n;
		} else if (strcmp(a, "--echo") == 0 && parse_size(v, &n) == 0 && n >= 1) {
			ss.echo_bytes = n;
		} else if (strcmp(a, "--streams") == 0 && parse_size(v, &n) == 0 && n >= 1 && n <= 10000) {
			ss.streams = (int)n;
		} else if (strcmp(a, "--protocol") == 0) {
			ss.protocol = v;
		} else if (strcmp(a, "--timeout") == 0 && parse_size(v, &n) == 0 && n >= 1 && n <= 86400) {
			timeout_s = (long)n;
		} else {
			fprintf(stderr, "clawgrid p2p: bad option %s %s\n", a, v);
			usage();
			return EXIT_USAGE;
		}
	}
	if (!ss.target) {
		usage();
		return EXIT_USAGE;
	}
	if (strcmp(sub, "ping") == 0 && !ss.ping_count)
		ss.ping_count = 1;
	if (strcmp(sub, "ping") != 0)
		ss.ping_count = 0;
	if (ss.streams + (ss.echo_bytes ? 1 : 0) > 0)
		cfg.limits.max_streams_per_conn = ss.streams + 16;
	if (cfg.limits.max_streams_per_conn < 512)
		cfg.limits.max_streams_per_conn = 512;

	struct node_key k;
	bool eph;
	int rc = load_key(c, &k, &eph, false);
	if (rc)
		return rc;
	ss.base = event_base_new();
	cg_err e = {0};
	ss.sw = ss.base ? p2p_swarm_new(ss.base, k.sk, &cfg, &e) : NULL;
	node_key_wipe(&k);
	struct event *sigint = NULL, *sigterm = NULL;
	if (!ss.sw) {
		fprintf(stderr, "clawgrid p2p: %s\n", e.msg[0] ? e.msg : "cannot start");
		rc = EXIT_FAIL;
		goto out;
	}
	p2p_swarm_subscribe(ss.sw, on_event, &ss, NULL);
	sigint = evsignal_new(ss.base, SIGINT, on_signal, &ss);
	sigterm = evsignal_new(ss.base, SIGTERM, on_signal, &ss);
	evsignal_add(sigint, NULL);
	evsignal_add(sigterm, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (strcmp(sub, "listen") == 0) {
		ss.listening = true;
		for (size_t i = 0; i <= ss.n_more; i++) {
			const char *ma = i == 0 ? ss.target : ss.more_targets[i - 1];
			if (p2p_swarm_listen(ss.sw, ma, &e) < 0) {
				fprintf(stderr, "clawgrid p2p listen: %s: %s\n", ma, e.msg);
				rc = e.code == CG_E_INVALID_ARGUMENT ? EXIT_USAGE : EXIT_FAIL;
				goto out;
			}
		}
		const char *addrs[64];
		size_t n = p2p_swarm_listen_addrs(ss.sw, addrs, 64);
		for (size_t i = 0; i < n; i++)
			puts(addrs[i]);
		fflush(stdout);
		if (eph)
			log_info("p2p", "using an ephemeral key (no initialized data directory)", NULL);
	} else {
		struct timeval tv = {timeout_s, 0};
		ss.deadline = evtimer_new(ss.base, on_deadline, &ss);
		evtimer_add(ss.deadline, &tv);
		ss.t_dial_us = clock_mono_us();
		if (p2p_swarm_dial(ss.sw, ss.target, on_dial, &ss, &e) < 0) {
			fprintf(stderr, "clawgrid p2p %s: %s\n", sub, e.msg);
			rc = e.code == CG_E_INVALID_ARGUMENT ? EXIT_USAGE : EXIT_FAIL;
			goto out;
		}
	}
	event_base_dispatch(ss.base);
	rc = ss.rc == -1 ? EXIT_OK : ss.rc;
out:
	if (sigint)
		event_free(sigint);
	if (sigterm)
		event_free(sigterm);
	if (ss.deadline)
		event_free(ss.deadline);
	p2p_swarm_free(ss.sw);
	if (ss.base)
		event_base_free(ss.base);
	return rc;
}
