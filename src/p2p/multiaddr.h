/* multiaddr — binary and text forms of multiaddrs (libp2p specs: addressing; multiformats multiaddr and
 * its protocols.csv table).
 *
 * Binary form: a sequence of components <varint code><value>, where the value has a fixed size (ip4: 4,
 * ip6: 16, tcp/udp: 2 big-endian, zero for p2p-circuit, ws, quic-v1, ...) or is <varint length><bytes>
 * (dns*, p2p, unix, sni, certhash...). Text form: "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...".
 * Example from the spec: /ip4/127.0.0.1/tcp/4001 <-> 04 7f 00 00 01 06 0f a1.
 *
 * Text <-> binary works for: ip4, ip6, dns, dns4, dns6, dnsaddr, tcp, udp, p2p (alias ipfs; base58btc or
 * CIDv1 peer id in text, multihash bytes in binary), p2p-circuit, and the zero-length protocols of the
 * table (ws, wss, tls, noise, quic, quic-v1, webtransport, webrtc, webrtc-direct, http, https), plus sni,
 * ip6zone and certhash (multibase text: 'u' base64url written, 'u' or 'b' base32 read). Binary validation and iteration also accept every other
 * protocol in the table whose value size is known ("tolerant skipping"); a code that is not in the table
 * cannot be skipped (its size is unknown) and is an error.
 *
 * All functions are pure; inputs are bounded by MA_MAX_BYTES / MA_MAX_TEXT. Errors are
 * -CG_E_INVALID_ARGUMENT with a static description in e (never echoing the input). */
#ifndef CG_P2P_MULTIADDR_H
#define CG_P2P_MULTIADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"

#define MA_MAX_BYTES 1024 /* longest binary multiaddr accepted */
#define MA_MAX_TEXT 2048  /* longest text multiaddr accepted (and produced) */

/* Protocol codes (multicodec table). */
enum {
	MA_IP4 = 4,
	MA_TCP = 6,
	MA_IP6 = 41,
	MA_IP6ZONE = 42,
	MA_DNS = 53,
	MA_DNS4 = 54,
	MA_DNS6 = 55,
	MA_DNSADDR = 56,
	MA_UDP = 273,
	MA_P2P_CIRCUIT = 290,
	MA_UNIX = 400,
	MA_P2P = 421,
	MA_TLS = 448,
	MA_SNI = 449,
	MA_NOISE = 454,
	MA_QUIC = 460,
	MA_QUIC_V1 = 461,
	MA_WEBTRANSPORT = 465,
	MA_CERTHASH = 466,
	MA_WS = 477,
	MA_WSS = 478,
	MA_HTTP = 480,
};

/* One component of a binary multiaddr; value points into the input (borrowed). */
typedef struct ma_comp {
	uint32_t code;
	const char *name; /* "ip4", "tcp", ... (static) */
	const uint8_t *value;
	size_t len;
} ma_comp;

/* Iterator over a binary multiaddr: init, then ma_next until it returns 0. */
typedef struct ma_iter {
	const uint8_t *p, *end;
} ma_iter;
void ma_iter_init(ma_iter *it, const uint8_t *ma, size_t n);
/* 1: *c filled; 0: end; <0: malformed (truncated, unknown code, bad value such as a bad p2p multihash). */
int ma_next(ma_iter *it, ma_comp *c, cg_err *e);

/* Checks a whole binary multiaddr (non-empty, <= MA_MAX_BYTES, every component well formed). 0 or <0. */
int ma_validate(const uint8_t *ma, size_t n, cg_err *e);

/* Text -> binary, appended to out (len bytes of text, no NUL needed). On error out is restored. */
int ma_from_string(buf *out, const char *s, size_t len, cg_err *e) __attribute__((warn_unused_result));
/* Binary -> text, appended to out (NUL-terminated by buf). Every component must have a text form. */
int ma_to_string(buf *out, const uint8_t *ma, size_t n, cg_err *e) __attribute__((warn_unused_result));

/* What a TCP dialer needs: the first host component (ip4/ip6/dns/dns4/dns6) followed by tcp.
 * host is text: dotted ip4, ip6 without brackets, or the DNS name. */
enum ma_host_kind { MA_HOST_IP4 = 1, MA_HOST_IP6, MA_HOST_DNS, MA_HOST_DNS4, MA_HOST_DNS6 };
struct ma_dial {
	enum ma_host_kind kind;
	char host[256];
	uint16_t port;
	bool circuit; /* the address contains /p2p-circuit (a relayed address) */
};
/* 0 and *out, -CG_E_INVALID_ARGUMENT when malformed, -CG_E_NOT_FOUND when there is no host+tcp pair. */
int ma_dial_target(const uint8_t *ma, size_t n, struct ma_dial *out, cg_err *e);

/* The peer id (binary multihash) of the LAST /p2p component, borrowed from ma.
 * 0 and *id, *idlen; -CG_E_NOT_FOUND when none; <0 when malformed. */
int ma_get_p2p(const uint8_t *ma, size_t n, const uint8_t **id, size_t *idlen, cg_err *e);
/* Length of ma without a trailing /p2p/<id> component (n itself when it has none, or when malformed). */
size_t ma_without_p2p(const uint8_t *ma, size_t n);
/* Appends /p2p/<id> (id = binary multihash peer id, validated) to the binary multiaddr in out. */
int ma_append_p2p(buf *out, const uint8_t *id, size_t idlen, cg_err *e) __attribute__((warn_unused_result));

/* Builders for listeners: /ip4/a.b.c.d/tcp/port or /ip6/.../tcp/port from network-order bytes. */
int ma_put_ip_tcp(buf *out, bool ip6, const uint8_t *addr, uint16_t port) __attribute__((warn_unused_result));

#endif
