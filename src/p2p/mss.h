/* mss — multistream-select 1.0 (libp2p specs: connections/README.md#protocol-negotiation,
 * multiformats/multistream-select).
 *
 * Every message is <varint length><text>"\n", the length counting the newline. Both sides first send the
 * header "/multistream/1.0.0". The initiator then proposes protocols one at a time; the responder echoes a
 * supported one (agreement) or answers "na". The initiator may send "ls"; the responder answers with one
 * message whose body is a list of <varint len><protocol>"\n" entries followed by "\n".
 *
 * The negotiator is an incremental state machine, fed with bytes and producing bytes to send. It never
 * consumes past the message that ends the negotiation: after MSS_DONE, in[consumed..n) belongs to the next
 * layer (the selected protocol). Messages longer than MSS_MAX_MSG are an error. No I/O, no clocks. */
#ifndef CG_P2P_MSS_H
#define CG_P2P_MSS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"

#define MSS_PROTOCOL "/multistream/1.0.0"
#define MSS_MAX_MSG 1024   /* longest message (including the newline) sent or accepted */
#define MSS_MAX_PROTOS 64  /* protocols per negotiator */
#define MSS_MAX_LS 128     /* protocols kept from an "ls" answer */

typedef struct mss mss;

enum mss_result { MSS_CONTINUE = 0, MSS_DONE = 1 };

/* Initiator proposing protos[0..n) in order (copied). With ls=true it first sends "ls" and records the
 * answer (mss_ls_count/mss_ls_get) before proposing. NULL when n is 0 or > MSS_MAX_PROTOS, or a protocol is
 * empty, too long, or contains a newline (a caller bug, reported in e). Caller frees with mss_free. */
mss *mss_new_initiator(const char *const *protos, size_t n, bool ls, cg_err *e);
/* Responder accepting any of protos[0..n) (copied); answers "na" to others and the list to "ls". */
mss *mss_new_responder(const char *const *protos, size_t n, cg_err *e);
void mss_free(mss *m);

/* Writes the opening bytes into out: the header (and, for an initiator, "ls" or its first proposal,
 * pipelined as js-libp2p and go-libp2p do). Call once, before mss_feed. 0 or -CG_E_QUOTA_EXCEEDED. */
int mss_start(mss *m, buf *out) __attribute__((warn_unused_result));

/* Feeds received bytes. Writes replies into out and sets *consumed (<= n). Returns
 *   MSS_CONTINUE: need more bytes (everything up to *consumed was handled; keep the rest and feed it again
 *                 with more bytes appended),
 *   MSS_DONE:     agreed on mss_selected(m); in[*consumed..n) belongs to the next layer,
 *   <0:           failed: -CG_E_NOT_FOUND when no proposed protocol is supported (initiator), or
 *                 -CG_E_INVALID_ARGUMENT for a protocol violation (bad header, oversize message, bad
 *                 varint, missing newline); e has a static reason. After failure the negotiator is dead. */
int mss_feed(mss *m, const uint8_t *in, size_t n, size_t *consumed, buf *out, cg_err *e);

/* The agreed protocol (borrowed from m), or NULL before MSS_DONE. */
const char *mss_selected(const mss *m);
/* Index of the agreed protocol in the list given at creation, or -1. */
int mss_selected_index(const mss *m);
/* Initiator with ls=true: the protocols the responder listed (borrowed from m). */
size_t mss_ls_count(const mss *m);
const char *mss_ls_get(const mss *m, size_t i);

/* Appends one framed message <varint len><s>"\n" (s without the newline). For tests and simple senders. */
int mss_put_msg(buf *out, const char *s, size_t len) __attribute__((warn_unused_result));

#endif
