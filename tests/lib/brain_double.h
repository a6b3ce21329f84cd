/* brain_double — a TEST DOUBLE for the brain gateway's upstreams: an OpenAI-compatible streaming chat server
 * (C, libevent, on its own thread) whose behaviour is set per instance at run time, so two doubles can play
 * "the market fails, the centralized API works" at once. With provider mode on it also impersonates a market
 * provider node: GET /web3/resources/list (one model resource, a fixed identity), POST /web3/market/lease
 * (a lease for any well-formed request: signatures are the real provider's business, not the gateway's) and
 * POST /web3/resources/model/chat (needs the leased token).
 *
 * Answers: one word per chunk ("w1 ", "w2 ", ...), a role chunk first, usage when asked (or never), then
 * [DONE]. A request with tools gets a tool call to the first tool, its arguments split over chunks.
 * Failure modes (bd_set):
 *   BD_OK          normal answers
 *   BD_STATUS      reply `n` with an OpenAI error body (429 adds Retry-After: `ms`/1000 seconds when ms > 0)
 *   BD_CONTEXT     400 {"error":{"code":"context_length_exceeded"}}
 *   BD_SLOW_FIRST  wait `ms` before the first content token
 *   BD_STALL       send `n` content chunks, then nothing (connection stays open)
 *   BD_CUT         send `n` content chunks, then drop the connection (no terminating chunk, no [DONE])
 *   BD_MALFORMED   send `n` content chunks, then a chunk that is not JSON
 *   BD_ERROR_EVENT send `n` content chunks, then an in-band {"error":...} event
 *   BD_NO_USAGE    answer normally but never send usage
 * Connection refused is not a mode: point the gateway at a closed port instead. */
#ifndef CG_TESTS_BRAIN_DOUBLE_H
#define CG_TESTS_BRAIN_DOUBLE_H

#include <stdbool.h>

enum bd_mode { BD_OK = 0, BD_STATUS, BD_CONTEXT, BD_SLOW_FIRST, BD_STALL, BD_CUT, BD_MALFORMED, BD_ERROR_EVENT, BD_NO_USAGE };

struct bd_opts {
	int tokens;            /* words per answer (0 = 6), capped by max_tokens */
	int delay_ms;          /* between chunks */
	const char *api_key;   /* when set, chat needs "Authorization: Bearer <key>" */
	bool provider;         /* also impersonate a market provider node */
	const char *model;     /* provider mode: the resource's model (label); default "market-model" */
	const char *price;     /* provider mode: price per token; default "1" */
};

struct brain_double;

struct brain_double *bd_start(const struct bd_opts *o); /* NULL on failure (printed) */
void bd_stop(struct brain_double *d);
void bd_set(struct brain_double *d, enum bd_mode mode, int n, int ms);
int bd_port(const struct brain_double *d);
const char *bd_url(const struct brain_double *d); /* "http://127.0.0.1:PORT" */

int bd_requests(struct brain_double *d);  /* chat requests received */
int bd_leases(struct brain_double *d);    /* leases granted (provider mode) */
int bd_abandoned(struct brain_double *d); /* streams the client closed before the end */
int bd_open_streams(struct brain_double *d);
char *bd_last_body(struct brain_double *d); /* caller frees */
char *bd_last_auth(struct brain_double *d); /* caller frees */
void bd_reset_stats(struct brain_double *d);

#endif
