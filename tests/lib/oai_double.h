/* oai_double — a TEST DOUBLE of an OpenAI-compatible inference server (the streaming chat API as llama.cpp's
 * llama-server serves it), written in C on libevent so it is fast enough to sit under benchmarks.
 *
 * Serves POST /v1/chat/completions (stream or not), GET /v1/models and GET /health on 127.0.0.1:<free port>,
 * on its own thread and event loop (oai_double_start) or on a caller's loop (oai_double_attach).
 * Answers are deterministic: "w1 w2 w3 ..." one word per chunk; prompt tokens = words in the messages.
 *
 * Usage like llama-server: a final chunk {"choices":[],"usage":{...}} before "data: [DONE]" when the request
 * asks (stream_options.include_usage), always, or never (usage_mode). Failure injection by directives in
 * the last message's content (they travel through any proxy unchanged):
 *   [double:fail=CODE]   reply CODE with an OpenAI error body
 *   [double:cut=N]       send N content chunks, then drop the connection (no [DONE])
 *   [double:stall=N]     send N content chunks, then nothing (the connection stays open)
 *   [double:slow=MS]     wait MS between chunks
 *   [double:tokens=N]    answer with N words (also capped by max_tokens)
 * It records what it saw (requests, last body, Authorization header, streams the client abandoned). */
#ifndef CG_TESTS_OAI_DOUBLE_H
#define CG_TESTS_OAI_DOUBLE_H

#include <stdbool.h>

#include <event2/event.h>

enum oai_usage_mode { OAI_USAGE_ASKED = 0, OAI_USAGE_ALWAYS, OAI_USAGE_NEVER };

struct oai_double_opts {
	int tokens;              /* words per answer when the request does not say; 0 = 8 */
	enum oai_usage_mode usage;
	int token_delay_ms;      /* between chunks; 0 = all at once */
	const char *api_key;     /* when set, requests need "Authorization: Bearer <key>" (else 401) */
	int port;                /* 0 = any free port */
};

struct oai_double;

/* Starts on a thread of its own. NULL on failure (printed). */
struct oai_double *oai_double_start(const struct oai_double_opts *o);
/* Runs on base (the caller drives the loop). NULL on failure. */
struct oai_double *oai_double_attach(struct event_base *base, const struct oai_double_opts *o);
/* Stops (joins the thread when it owns one) and frees. NULL-safe. */
void oai_double_stop(struct oai_double *d);

int oai_double_port(const struct oai_double *d);
/* "http://127.0.0.1:PORT" (static per double). */
const char *oai_double_url(const struct oai_double *d);

/* Observations (thread-safe). */
int oai_double_requests(struct oai_double *d);        /* chat requests received */
int oai_double_abandoned(struct oai_double *d);       /* streams the client closed before the end */
int oai_double_open_streams(struct oai_double *d);    /* streams in progress */
char *oai_double_last_body(struct oai_double *d);     /* caller frees; NULL when none */
char *oai_double_last_auth(struct oai_double *d);     /* Authorization header of the last request; caller frees */
void oai_double_reset_stats(struct oai_double *d);

#endif
