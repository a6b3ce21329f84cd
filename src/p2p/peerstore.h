/* peerstore — what this node knows about other peers, keyed by peer id string (12D3KooW…): listen
 * addresses, supported protocols, agent and protocol versions, public key (libp2p PublicKey protobuf), the
 * address the peer observed for us, the last ping RTT and how many live connections we have to it.
 *
 * Bounded everywhere a peer could grow it: at most `max_peers` entries (when full, the least recently seen
 * peer without a live connection is evicted; if every peer is connected the insert fails), at most
 * P2P_PS_MAX_ADDRS addresses and P2P_PS_MAX_PROTOS protocols per peer, each string at most
 * P2P_PS_MAX_STR bytes (longer ones are dropped, not truncated). Loop-thread only. */
#ifndef CG_P2P_PEERSTORE_H
#define CG_P2P_PEERSTORE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define P2P_PS_MAX_ADDRS 32
#define P2P_PS_MAX_PROTOS 128
#define P2P_PS_MAX_STR 256
#define P2P_PS_MAX_PUBKEY 1100 /* PublicKey protobuf: fits RSA-8192 (Ed25519 36, Secp256k1 37 bytes) */

struct p2p_peer {
	char id[64];
	char agent_version[P2P_PS_MAX_STR];
	char protocol_version[P2P_PS_MAX_STR];
	char observed_addr[P2P_PS_MAX_STR]; /* what this peer saw as our address ("" if unknown) */
	uint8_t pubkey[P2P_PS_MAX_PUBKEY];
	size_t pubkey_len;
	char *addrs[P2P_PS_MAX_ADDRS];
	size_t n_addrs;
	char *protos[P2P_PS_MAX_PROTOS];
	size_t n_protos;
	int64_t last_seen_ms; /* clock_mono_ms of the last update */
	int64_t rtt_us;       /* last ping round trip, -1 if never pinged */
	int connections;      /* live connections (maintained by the swarm) */
	int identified;       /* identify (or push) received at least once */
};

struct p2p_peerstore;

struct p2p_peerstore *p2p_peerstore_new(size_t max_peers);
struct p2p_peerstore *p2p_peerstore_free(struct p2p_peerstore *ps); /* accepts NULL, returns NULL */

/* Borrowed until the next call that may insert or evict; NULL when unknown. */
struct p2p_peer *p2p_peerstore_get(struct p2p_peerstore *ps, const char *id);
/* Finds or creates the entry for id (updates last_seen). NULL when id is too long or the store is full of
 * connected peers. */
struct p2p_peer *p2p_peerstore_upsert(struct p2p_peerstore *ps, const char *id);
size_t p2p_peerstore_count(const struct p2p_peerstore *ps);

/* Replace the address / protocol lists (strings are copied; entries over the caps are dropped).
 * Returns the number kept. */
size_t p2p_peer_set_addrs(struct p2p_peer *p, const char *const *addrs, size_t n);
size_t p2p_peer_set_protos(struct p2p_peer *p, const char *const *protos, size_t n);
/* Adds one address if absent; 0 added or present, -1 full or too long. */
int p2p_peer_add_addr(struct p2p_peer *p, const char *addr);
int p2p_peer_has_proto(const struct p2p_peer *p, const char *proto);
/* Copies a bounded string field (dropped when longer than P2P_PS_MAX_STR-1). */
void p2p_peer_set_str(char dst[P2P_PS_MAX_STR], const char *v, size_t len);

/* JSON for RPC/CLI: {"id","agentVersion","protocolVersion","addrs":[],"protocols":[],"observedAddr",
 * "connections","rttMs"} (new reference). all=0 lists only peers with a live connection. */
json_t *p2p_peer_json(const struct p2p_peer *p);
json_t *p2p_peerstore_json(const struct p2p_peerstore *ps, int all);

#endif
