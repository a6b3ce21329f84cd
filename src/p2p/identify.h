/* identify — the libp2p identify protocol (libp2p specs: identify/README.md): on every new connection each
 * side opens /ipfs/id/1.0.0 and the other answers with one length-prefixed (unsigned varint) Identify
 * protobuf, then closes; /ipfs/id/push/1.0.0 carries the same message unasked when our addresses or
 * protocols change. What a peer says is checked (its publicKey must match the connection's peer id) and
 * recorded in the swarm's peer store.
 *
 *   message Identify { optional bytes publicKey = 1; repeated bytes listenAddrs = 2;
 *     repeated string protocols = 3; optional bytes observedAddr = 4; optional string protocolVersion = 5;
 *     optional string agentVersion = 6; optional bytes signedPeerRecord = 8; }
 *
 * Limits: messages above P2P_ID_MAX_MSG are refused (the stream is reset); at most P2P_ID_MAX_ADDRS
 * addresses and P2P_ID_MAX_PROTOS protocols are kept, longer strings are dropped. */
#ifndef CG_P2P_IDENTIFY_H
#define CG_P2P_IDENTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"

struct p2p_swarm;

#define P2P_ID_MAX_MSG 65536
#define P2P_ID_MAX_ADDRS 32
#define P2P_ID_MAX_PROTOS 128
#define P2P_ID_MAX_STR 256
#define P2P_ID_MAX_PUBKEY 1100 /* publicKey up to RSA-8192 (peerstore.h keeps the same) */
#define P2P_ID_TIMEOUT_MS 5000 /* our request must be answered within this (js-libp2p waits as long) */

/* A decoded Identify message: text forms, bounded copies (heap-allocate it: about 50 KiB). */
struct p2p_id_info {
	bool has_pubkey, has_observed, has_proto_version, has_agent;
	uint8_t pubkey[P2P_ID_MAX_PUBKEY];
	size_t pubkey_len;
	char protocol_version[P2P_ID_MAX_STR];
	char agent_version[P2P_ID_MAX_STR];
	char observed_addr[P2P_ID_MAX_STR];
	char addrs[P2P_ID_MAX_ADDRS][P2P_ID_MAX_STR];
	size_t n_addrs;
	char protos[P2P_ID_MAX_PROTOS][128];
	size_t n_protos;
	size_t dropped; /* entries dropped: malformed multiaddrs, over the caps, too long */
};

/* Decodes one Identify protobuf (without the length prefix). Unknown fields are skipped; malformed
 * addresses are counted in `dropped`. <0 (E_INVALID_ARGUMENT) only for a malformed protobuf or public key. */
int p2p_identify_decode(const uint8_t *p, size_t n, struct p2p_id_info *out, cg_err *e);
/* Appends the swarm's own Identify message for a connection whose remote address is observed_ma (text,
 * may be NULL), with the varint length prefix. */
int p2p_identify_encode(struct p2p_swarm *sw, const char *observed_ma, buf *out, cg_err *e)
	__attribute__((warn_unused_result));
/* Sends an identify push to every open connection (after our addresses or protocols changed). */
void p2p_identify_push_all(struct p2p_swarm *sw);

#endif
