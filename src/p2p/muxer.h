/* muxer — one interface over the stream multiplexers (yamux, mplex), so the swarm treats both the same.
 *
 * A session is a pure state machine over one secured connection: feed it the bytes received, take the bytes
 * it wants sent, poll its events; open, write, read, half-close and reset streams. No I/O and no clocks.
 *
 * Streams are named by a 64-bit id unique within the session (yamux: the stream id; mplex: the wire id
 * shifted left once, low bit set when the remote opened it). Inbound streams are accepted automatically
 * (up to limits.max_streams; beyond that they are refused with a reset) and announced by MUXER_EV_INBOUND.
 *
 * Stream lifetime: a stream exists from muxer_open / MUXER_EV_INBOUND until either
 *   - MUXER_EV_RESET (remote reset, refused open, or a protocol violation on that stream such as overflowing
 *     its receive buffer), or
 *   - MUXER_EV_CLOSED: both directions are closed and every received byte was read;
 * each is the stream's last event, carrying its user pointer, after which its id is invalid. muxer_reset by
 * the caller frees the stream at once, with no event. Events for a stream already gone are dropped.
 *
 * Time: the session reads no clock; its owner tells it the time (muxer_set_time, before feeding or reading)
 * and the connection's round-trip time when known (muxer_set_rtt), which yamux uses to grow the receive
 * windows of fast streams as go-yamux and js-yamux do.
 *
 * Boundedness: every stream's receive buffer is capped (yamux: by its window, which the peer must respect and
 * which grows only within limits.window_budget per session;
 * mplex: limits.max_stream_buffer, reset on overflow); the output buffer has a soft cap (writes return short
 * and control frames stop input processing above it); the event queue has a cap (input processing pauses
 * while it is full). So muxer_feed may consume less than it is given: drain output and events, then feed
 * the rest again (with more bytes appended when the tail is an incomplete frame header). */
#ifndef CG_P2P_MUXER_H
#define CG_P2P_MUXER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef struct muxer muxer;

struct muxer_limits {
	uint32_t max_streams;      /* open streams, both directions (default 1024) */
	uint32_t window;           /* yamux receive window per stream (default and minimum 256 KiB) */
	size_t window_budget;      /* yamux: receive window the session may add beyond `window`, over all its
				    * streams, to streams whose window limits a fast sender (0: windows stay fixed) */
	size_t max_stream_buffer;  /* mplex: received-but-unread bytes per stream (default 1 MiB) */
	size_t out_cap;            /* soft cap of the pending output (default 1 MiB) */
};

enum muxer_ev_type {
	MUXER_EV_INBOUND = 1, /* the remote opened stream id (already accepted) */
	MUXER_EV_READABLE,    /* stream id has bytes to read (coalesced: read until muxer_read returns 0) */
	MUXER_EV_EOF,         /* the remote closed its side of stream id (after its last bytes) */
	MUXER_EV_WRITABLE,    /* stream id can take bytes again after a short write */
	MUXER_EV_RESET,       /* stream id was reset (last event of the stream) */
	MUXER_EV_CLOSED,      /* stream id finished cleanly (last event of the stream) */
	MUXER_EV_GOAWAY,      /* the remote will accept no new streams; code = yamux go-away code */
	MUXER_EV_PONG,        /* yamux: answer to muxer_ping; code = the opaque value */
};

struct muxer_event {
	enum muxer_ev_type type;
	uint64_t id;   /* stream id (0 for session events) */
	void *user;    /* the stream's user pointer (muxer_set_user) */
	uint32_t code; /* MUXER_EV_GOAWAY / MUXER_EV_PONG */
	const char *reason; /* MUXER_EV_RESET: static text ("reset by remote", "receive buffer overflow"...) */
};

struct muxer_ops {
	const char *protocol; /* "/yamux/1.0.0", "/mplex/6.7.0" */
	int (*feed)(muxer *m, const uint8_t *in, size_t n, size_t *consumed, cg_err *e);
	const uint8_t *(*out_peek)(muxer *m, size_t *n);
	void (*out_consume)(muxer *m, size_t n);
	int (*poll)(muxer *m, struct muxer_event *ev);
	int (*open)(muxer *m, uint64_t *id, cg_err *e);
	long (*write)(muxer *m, uint64_t id, const uint8_t *p, size_t n, cg_err *e);
	long (*read)(muxer *m, uint64_t id, uint8_t *p, size_t cap, bool *eof, cg_err *e);
	int (*close)(muxer *m, uint64_t id, cg_err *e);
	int (*reset)(muxer *m, uint64_t id, cg_err *e);
	int (*set_user)(muxer *m, uint64_t id, void *user);
	void *(*get_user)(muxer *m, uint64_t id);
	int (*ping)(muxer *m, uint32_t opaque, cg_err *e);
	int (*goaway)(muxer *m, cg_err *e);
	size_t (*stream_count)(const muxer *m);
	void (*timing)(muxer *m, int64_t now_us, int64_t rtt_us); /* a negative value leaves it unchanged */
	void (*free)(muxer *m);
};

/* Every session starts with this header (the implementations embed it first). */
struct muxer {
	const struct muxer_ops *ops;
};

/* Feeds received bytes. 0 (see *consumed), or <0 when the session failed (protocol violation by the peer:
 * -CG_E_INVALID_ARGUMENT; e says why). After a failure only out_peek (a go-away may be pending) and free are
 * meaningful; the connection should be closed once the output is flushed. */
static inline int muxer_feed(muxer *m, const uint8_t *in, size_t n, size_t *consumed, cg_err *e)
{ return m->ops->feed(m, in, n, consumed, e); }
/* Pending output (borrowed until the next call on m); *n = 0 when none. Consume what was sent. */
static inline const uint8_t *muxer_out_peek(muxer *m, size_t *n) { return m->ops->out_peek(m, n); }
static inline void muxer_out_consume(muxer *m, size_t n) { m->ops->out_consume(m, n); }
/* 1 and *ev, or 0 when no event is pending. */
static inline int muxer_poll(muxer *m, struct muxer_event *ev) { return m->ops->poll(m, ev); }
/* Opens a stream. -CG_E_QUOTA_EXCEEDED at max_streams, -CG_E_UNAVAILABLE after a go-away either way. */
static inline int muxer_open(muxer *m, uint64_t *id, cg_err *e) { return m->ops->open(m, id, e); }
/* Queues up to n bytes; returns how many were taken (0..n; short when the yamux send window or the output
 * cap is reached: MUXER_EV_WRITABLE follows), or <0: -CG_E_NOT_FOUND (no such stream),
 * -CG_E_CONFLICT (already closed for writing). */
static inline long muxer_write(muxer *m, uint64_t id, const uint8_t *p, size_t n, cg_err *e)
{ return m->ops->write(m, id, p, n, e); }
/* Reads up to cap bytes; returns the count (0 when nothing is buffered; *eof tells whether the remote has
 * closed and everything was read). Reading opens the yamux window again. <0: -CG_E_NOT_FOUND. */
static inline long muxer_read(muxer *m, uint64_t id, uint8_t *p, size_t cap, bool *eof, cg_err *e)
{ return m->ops->read(m, id, p, cap, eof, e); }
/* Half-close: no more writes from us; reading goes on. Idempotent while the stream exists. */
static inline int muxer_close(muxer *m, uint64_t id, cg_err *e) { return m->ops->close(m, id, e); }
/* Aborts the stream both ways and frees it at once (no event). */
static inline int muxer_reset(muxer *m, uint64_t id, cg_err *e) { return m->ops->reset(m, id, e); }
static inline int muxer_set_user(muxer *m, uint64_t id, void *user) { return m->ops->set_user(m, id, user); }
static inline void *muxer_get_user(muxer *m, uint64_t id) { return m->ops->get_user(m, id); }
/* yamux: sends a ping (MUXER_EV_PONG with the same opaque follows). mplex: -CG_E_UNAVAILABLE. */
static inline int muxer_ping(muxer *m, uint32_t opaque, cg_err *e) { return m->ops->ping(m, opaque, e); }
/* Announces that we accept no new streams (yamux go-away "normal"; mplex: local only). */
static inline int muxer_goaway(muxer *m, cg_err *e) { return m->ops->goaway(m, e); }
static inline size_t muxer_stream_count(const muxer *m) { return m->ops->stream_count(m); }
/* The current time (any monotonic microseconds), and the connection's round-trip time once measured. */
static inline void muxer_set_time(muxer *m, int64_t now_us) { m->ops->timing(m, now_us, -1); }
static inline void muxer_set_rtt(muxer *m, int64_t rtt_us) { m->ops->timing(m, -1, rtt_us); }
static inline const char *muxer_protocol(const muxer *m) { return m->ops->protocol; }
/* Frees the session and all its streams (no events). NULL ok. */
static inline void muxer_free(muxer *m) { if (m) m->ops->free(m); }

#endif
