/* mux_core — internal machinery shared by the yamux and mplex sessions: the stream table, byte queues,
 * the event queue with coalescing, the output queue. Not a public interface: only yamux.c and mplex.c
 * include it (they define CG_P2P_MUX_INTERNAL first). */
#ifndef CG_P2P_MUX_CORE_H
#define CG_P2P_MUX_CORE_H

#ifndef CG_P2P_MUX_INTERNAL
#error "mux_core.h is internal to the muxers; use p2p/muxer.h"
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "p2p/muxer.h"

/* A byte queue with a read offset (no memmove per read) and a hard cap on the bytes it holds. */
struct muxc_q {
	uint8_t *d;
	size_t off, len, alloc; /* bytes live in d[off..len) */
};
size_t muxc_q_size(const struct muxc_q *q);
int muxc_q_append(struct muxc_q *q, const uint8_t *p, size_t n, size_t cap); /* 0 or -1 (cap / memory) */
size_t muxc_q_read(struct muxc_q *q, uint8_t *p, size_t n);

struct muxc_stream {
	uint64_t id;
	uint64_t serial; /* unique per session: tells a stream from an earlier one with the same id */
	struct muxc_stream *hnext;
	void *user;
	struct muxc_q rq;   /* received, unread */
	bool local_closed;  /* we sent FIN / Close */
	bool remote_closed; /* we received FIN / Close */
	bool want_writable; /* a write was short */
	bool ev_readable, ev_writable; /* coalesced events already queued */
	bool outbound;      /* we opened it */
	/* yamux */
	bool acked;
	uint32_t send_window; /* bytes we may still send */
	uint32_t recv_window; /* bytes the peer may still send */
	uint32_t unacked;     /* bytes read by the application, not yet returned in a window update */
	uint32_t win;         /* current receive window (recv_window + unacked + unread bytes) */
	int64_t epoch_us;     /* when the last window update was sent (or the stream began) */
};

struct muxc_ev {
	struct muxer_event ev;
	uint64_t serial; /* of the stream the event is about; 0 for session events */
};

struct muxc {
	struct muxer base;
	struct muxer_limits lim;
	struct muxc_stream **buckets;
	size_t nbuckets, count;
	struct muxc_ev *ev;
	size_t ev_head, ev_len, ev_alloc, ev_soft;
	uint64_t next_serial;
	struct muxc_q out;
	size_t out_hard;
	size_t extra_window; /* yamux: sum over streams of win - lim.window (at most lim.window_budget) */
	int64_t now_us, rtt_us; /* as told by the owner (muxer_set_time / muxer_set_rtt); rtt 0 = unknown */
	bool failed, goaway_local, goaway_remote;
	bool out_blocked; /* a write was short for lack of output room */
};

/* Fills defaults, allocates the table and queues. -1 on allocation failure. */
int muxc_init(struct muxc *c, const struct muxer_limits *lim, uint32_t min_window);
void muxc_done(struct muxc *c); /* frees every stream and queue */

struct muxc_stream *muxc_find(struct muxc *c, uint64_t id);
struct muxc_stream *muxc_add(struct muxc *c, uint64_t id); /* NULL on allocation failure */
/* Unlinks and frees; window growth the stream held goes back to the session's budget. */
void muxc_remove(struct muxc *c, struct muxc_stream *s);

/* Events. Pushing never fails for the callers (the queue grows); READABLE/WRITABLE are coalesced per stream.
 * Terminal events (RESET, CLOSED) carry the user pointer of a stream that is already gone. */
void muxc_event(struct muxc *c, enum muxer_ev_type t, struct muxc_stream *s, uint32_t code, const char *why);
void muxc_event_session(struct muxc *c, enum muxer_ev_type t, uint32_t code);
int muxc_poll(struct muxc *c, struct muxer_event *ev);
/* True while input may be processed: events and output below their soft caps. */
bool muxc_can_feed(const struct muxc *c);

/* Output. out_put fails (-1) only beyond the hard cap; out_room is what writes may still add. */
int muxc_out_put(struct muxc *c, const uint8_t *p, size_t n);
/* Two pieces (a frame header and its payload) appended together or not at all. */
int muxc_out_put2(struct muxc *c, const uint8_t *a, size_t an, const uint8_t *b, size_t bn);
size_t muxc_out_room(const struct muxc *c);
const uint8_t *muxc_out_peek(struct muxc *c, size_t *n);
/* Consumes sent output; when room opens up again, streams whose writes were short and that can_write()
 * get MUXER_EV_WRITABLE. */
void muxc_out_consume(struct muxc *c, size_t n, bool (*can_write)(const struct muxc_stream *s));

/* The timing op shared by both sessions. */
void muxc_timing(muxer *m, int64_t now_us, int64_t rtt_us);

/* Frees the stream with MUXER_EV_CLOSED when both sides are closed and everything was read. */
void muxc_maybe_finish(struct muxc *c, struct muxc_stream *s);

#endif
