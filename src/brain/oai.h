/* brain/oai — the OpenAI chat-completions wire format as the gateway needs it, pure (no I/O, no clocks):
 * the request validator, the upstream stream-chunk parser, the chunk accumulator that turns a stream into a
 * non-streamed `chat.completion`, upstream error classification, and OpenAI-shaped error bodies.
 *
 * Everything here parses bytes a client or an upstream controls: sizes are capped, nothing aborts on bad
 * input, and each parser has a libFuzzer target (tests/fuzz/fuzz_brain_*.c). */
#ifndef CG_BRAIN_OAI_H
#define CG_BRAIN_OAI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/buf.h"
#include "base/err.h"

#define OAI_BODY_MAX (4u << 20)     /* a chat request */
#define OAI_MAX_MESSAGES 4096
#define OAI_MAX_TOOLS 128
#define OAI_MAX_CHOICES 8
#define OAI_ACC_MAX (16u << 20)     /* assembled non-streamed answer */

/* A validated client request. root is owned; the strings are borrowed from it. */
struct oai_req {
	json_t *root;
	const char *model;     /* "" when absent (the gateway's default then applies) */
	bool stream;
	bool include_usage;    /* the client asked for stream_options.include_usage */
	int64_t max_tokens;    /* max_completion_tokens or max_tokens; 0 when absent */
	size_t prompt_bytes;   /* bytes of text in the messages and tools (a prompt-token upper bound) */
	size_t nmessages;
	bool has_tools;
};

/* Parses and checks a request body (len bytes; more than OAI_BODY_MAX is refused). Unknown fields are kept
 * and passed upstream untouched. E_INVALID_ARGUMENT naming the field on bad input. */
int oai_req_parse(const char *body, size_t len, struct oai_req *out, cg_err *e);
void oai_req_done(struct oai_req *r);

enum oai_chunk_kind {
	OAI_CHUNK_DATA = 0, /* a chat.completion.chunk */
	OAI_CHUNK_DONE,     /* "[DONE]" */
	OAI_CHUNK_ERROR,    /* {"error": ...} sent in-band by the upstream */
	OAI_CHUNK_BAD,      /* not JSON / not a chunk: the stream is broken */
};

/* One upstream SSE data payload, classified. json is owned (NULL for DONE and BAD). */
struct oai_chunk {
	enum oai_chunk_kind kind;
	bool content;    /* carries output: text, refusal, reasoning, or tool-call deltas */
	bool finish;     /* some choice has a finish_reason */
	bool usage;      /* has a usage object with token counts */
	bool usage_only; /* no choices, only usage (the include_usage chunk) */
	int64_t prompt_tokens, completion_tokens;
	char error[200]; /* for ERROR and BAD: what was wrong (from the upstream, redacted later) */
	json_t *json;
};

int oai_chunk_parse(const char *data, size_t len, struct oai_chunk *c);
void oai_chunk_done(struct oai_chunk *c);

/* Accumulates chunks into one chat.completion (non-streamed clients). Capped at OAI_ACC_MAX bytes. */
struct oai_acc {
	json_t *head;                    /* id, created, model, system_fingerprint of the first chunk */
	json_t *choice[OAI_MAX_CHOICES]; /* {index, message{role,content,tool_calls...}, finish_reason} */
	size_t bytes;
};
void oai_acc_init(struct oai_acc *a);
void oai_acc_done(struct oai_acc *a);
/* Adds a DATA chunk's choices. -1 when over the cap or the chunk is malformed. */
int oai_acc_add(struct oai_acc *a, json_t *chunk);
/* The final object (caller frees) with "usage" set from the counts. */
json_t *oai_acc_result(struct oai_acc *a, int64_t prompt_tokens, int64_t completion_tokens);

/* What a failed upstream answer means for failover. */
enum oai_fail {
	OAI_FAIL_RETRY = 0,  /* try the next upstream and count it against this one (5xx, 429, auth, ...) */
	OAI_FAIL_CONTEXT,    /* context length exceeded: try the next upstream, no penalty */
	OAI_FAIL_CLIENT,     /* the request itself is wrong (400/422): answer the client, no failover */
};
/* Classifies an upstream HTTP status and its (possibly JSON) error body; msg gets the upstream's own text. */
enum oai_fail oai_classify(long status, const char *body, size_t n, char *msg, size_t cap);

/* {"error":{"message","type","param":null,"code"}} (caller frees). code may be NULL. */
json_t *oai_error_json(const char *message, const char *type, const char *code);
/* The OpenAI type and code for one of our errors (static strings; code may be NULL). */
void oai_error_kind(const cg_err *e, const char **type, const char **code);

/* True when p[0..n) is exactly one JSON object (RFC 8259 syntax, nesting at most 64 deep; surrounding
 * whitespace allowed). No allocation: the gateway's fast path for chunks it only relays. */
bool oai_json_object_valid(const char *p, size_t n);
/* True when a chunk may carry something the relay fast path must not skip: a usage object or an error. */
bool oai_chunk_needs_parse(const char *p, size_t n);

/* Appends "data: <json>\n\n" (one SSE data frame) to out. 0 or -1 (cap). */
int oai_sse_data(buf *out, const char *json, size_t len) __attribute__((warn_unused_result));

#endif
