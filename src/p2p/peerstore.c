#include "p2p/peerstore.h"

#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/enc.h"

struct p2p_peerstore {
	struct p2p_peer **peers;
	size_t n, max;
};

struct p2p_peerstore *p2p_peerstore_new(size_t max_peers)
{
	struct p2p_peerstore *ps = calloc(1, sizeof *ps);
	if (!ps)
		return NULL;
	ps->max = max_peers ? max_peers : 1;
	ps->peers = calloc(ps->max, sizeof *ps->peers);
	if (!ps->peers) {
		free(ps);
		return NULL;
	}
	return ps;
}

static void strs_free(char **v, size_t *n)
{
	for (size_t i = 0; i < *n; i++) {
		free(v[i]);
		v[i] = NULL;
	}
	*n = 0;
}

static void peer_free(struct p2p_peer *p)
{
	if (!p)
		return;
	strs_free(p->addrs, &p->n_addrs);
	strs_free(p->protos, &p->n_protos);
	free(p);
}

struct p2p_peerstore *p2p_peerstore_free(struct p2p_peerstore *ps)
{
	if (!ps)
		return NULL;
	for (size_t i = 0; i < ps->n; i++)
		peer_free(ps->peers[i]);
	free(ps->peers);
	free(ps);
	return NULL;
}

struct p2p_peer *p2p_peerstore_get(struct p2p_peerstore *ps, const char *id)
{
	for (size_t i = 0; i < ps->n; i++)
		if (strcmp(ps->peers[i]->id, id) == 0)
			return ps->peers[i];
	return NULL;
}

size_t p2p_peerstore_count(const struct p2p_peerstore *ps)
{
	return ps->n;
}

/* Evicts the least recently seen peer that has no live connection; 0 if one was evicted. */
static int evict_one(struct p2p_peerstore *ps)
{
	size_t victim = ps->n;
	for (size_t i = 0; i < ps->n; i++) {
		if (ps->peers[i]->connections > 0)
			continue;
		if (victim == ps->n || ps->peers[i]->last_seen_ms < ps->peers[victim]->last_seen_ms)
			victim = i;
	}
	if (victim == ps->n)
		return -1;
	peer_free(ps->peers[victim]);
	ps->peers[victim] = ps->peers[--ps->n];
	ps->peers[ps->n] = NULL;
	return 0;
}

struct p2p_peer *p2p_peerstore_upsert(struct p2p_peerstore *ps, const char *id)
{
	size_t len = strlen(id);
	if (len == 0 || len >= sizeof ps->peers[0]->id)
		return NULL;
	struct p2p_peer *p = p2p_peerstore_get(ps, id);
	if (p) {
		p->last_seen_ms = clock_mono_ms();
		return p;
	}
	if (ps->n == ps->max && evict_one(ps) != 0)
		return NULL;
	p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	memcpy(p->id, id, len + 1);
	p->rtt_us = -1;
	p->last_seen_ms = clock_mono_ms();
	ps->peers[ps->n++] = p;
	return p;
}

static size_t set_strs(char **dst, size_t *n, size_t cap, const char *const *src, size_t count)
{
	strs_free(dst, n);
	for (size_t i = 0; i < count && *n < cap; i++) {
		size_t len = strlen(src[i]);
		if (len == 0 || len >= P2P_PS_MAX_STR)
			continue; /* dropped: a peer does not get to grow our memory with long strings */
		int dup = 0;
		for (size_t j = 0; j < *n; j++)
			if (strcmp(dst[j], src[i]) == 0)
				dup = 1;
		if (dup)
			continue;
		char *s = strdup(src[i]);
		if (!s)
			break;
		dst[(*n)++] = s;
	}
	return *n;
}

size_t p2p_peer_set_addrs(struct p2p_peer *p, const char *const *addrs, size_t n)
{
	return set_strs(p->addrs, &p->n_addrs, P2P_PS_MAX_ADDRS, addrs, n);
}

size_t p2p_peer_set_protos(struct p2p_peer *p, const char *const *protos, size_t n)
{
	return set_strs(p->protos, &p->n_protos, P2P_PS_MAX_PROTOS, protos, n);
}

int p2p_peer_add_addr(struct p2p_peer *p, const char *addr)
{
	size_t len = strlen(addr);
	if (len == 0 || len >= P2P_PS_MAX_STR)
		return -1;
	for (size_t i = 0; i < p->n_addrs; i++)
		if (strcmp(p->addrs[i], addr) == 0)
			return 0;
	if (p->n_addrs == P2P_PS_MAX_ADDRS)
		return -1;
	char *s = strdup(addr);
	if (!s)
		return -1;
	p->addrs[p->n_addrs++] = s;
	return 0;
}

int p2p_peer_has_proto(const struct p2p_peer *p, const char *proto)
{
	for (size_t i = 0; i < p->n_protos; i++)
		if (strcmp(p->protos[i], proto) == 0)
			return 1;
	return 0;
}

void p2p_peer_set_str(char dst[P2P_PS_MAX_STR], const char *v, size_t len)
{
	if (len >= P2P_PS_MAX_STR)
		return;
	memcpy(dst, v, len);
	dst[len] = 0;
}

json_t *p2p_peer_json(const struct p2p_peer *p)
{
	json_t *addrs = json_array(), *protos = json_array();
	for (size_t i = 0; i < p->n_addrs; i++)
		json_array_append_new(addrs, json_string(p->addrs[i]));
	for (size_t i = 0; i < p->n_protos; i++)
		json_array_append_new(protos, json_string(p->protos[i]));
	char hex[2 * P2P_PS_MAX_PUBKEY + 1];
	hex_encode(hex, p->pubkey, p->pubkey_len);
	json_t *o = json_pack("{s:s, s:o, s:o, s:i, s:b}", "id", p->id, "addrs", addrs, "protocols", protos,
			      "connections", p->connections, "identified", p->identified);
	if (!o)
		return NULL;
	/* Strings from the peer may not be valid UTF-8: json_string() then returns NULL and nothing is set. */
	if (p->agent_version[0])
		json_object_set_new(o, "agentVersion", json_string(p->agent_version));
	if (p->protocol_version[0])
		json_object_set_new(o, "protocolVersion", json_string(p->protocol_version));
	if (p->observed_addr[0])
		json_object_set_new(o, "observedAddr", json_string(p->observed_addr));
	if (p->pubkey_len)
		json_object_set_new(o, "publicKey", json_string(hex));
	if (p->rtt_us >= 0)
		json_object_set_new(o, "rttMs", json_real((double)p->rtt_us / 1000.0));
	return o;
}

json_t *p2p_peerstore_json(const struct p2p_peerstore *ps, int all)
{
	json_t *a = json_array();
	for (size_t i = 0; i < ps->n; i++)
		if (all || ps->peers[i]->connections > 0)
			json_array_append_new(a, p2p_peer_json(ps->peers[i]));
	return a;
}
