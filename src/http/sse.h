/* sse — Server-Sent Events (WHATWG HTML "event stream" format): an incremental parser for streams that
 * arrive in arbitrary pieces (upstream model servers, a remote provider) and a frame writer.
 *
 * The parser is pure: bytes in, events out through a callback. Lines may end with CRLF, LF or CR (also split
 * across pieces); "data:" lines of one event are joined with '\n'; "event:" names it; comments (":") and
 * unknown fields are ignored; a blank line dispatches. Every event is capped (max_event bytes, set at init):
 * a longer one is an error, never an unbounded buffer. A NUL byte is an error too. */
#ifndef CG_HTTP_SSE_H
#define CG_HTTP_SSE_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "base/err.h"

#define SSE_EVENT_NAME_MAX 64

/* One event: name ("" when none was given, i.e. "message"), data (NUL-terminated, len bytes, borrowed for the
 * call). Returning < 0 stops the parser: sse_feed returns that value. */
typedef int (*sse_event_fn)(void *arg, const char *event, const char *data, size_t len);

struct sse_parser {
	buf line, data;
	char event[SSE_EVENT_NAME_MAX + 1];
	bool have_data, last_cr, bom_checked;
	unsigned bom_len;
	size_t max_event;
	sse_event_fn on_event;
	void *arg;
};

void sse_init(struct sse_parser *p, size_t max_event, sse_event_fn fn, void *arg);
void sse_done(struct sse_parser *p);
/* Feeds n bytes. Returns 0, a negative callback result, or -CG_E_INVALID_ARGUMENT (e set) when an event or
 * line exceeds the cap or a NUL byte arrives. */
int sse_feed(struct sse_parser *p, const void *bytes, size_t n, cg_err *e);
/* End of stream: a pending event without its blank line is discarded (the spec's rule); true if there was
 * one, so a caller can tell a cut stream from a clean end. */
bool sse_finish(struct sse_parser *p);

/* Appends one event frame: "event: NAME\n" (when name is non-NULL) and one "data: " line per line of data,
 * then a blank line. Returns 0 or -1 (buffer cap). */
int sse_frame(buf *out, const char *name, const char *data, size_t len) __attribute__((warn_unused_result));

#endif
