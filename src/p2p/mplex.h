/* mplex — the mplex stream multiplexer (libp2p specs: mplex/README.md), as a muxer.h session.
 *
 * Frame: <varint header = stream id << 3 | flag><varint length><data>. Flags: 0 NewStream (data = stream
 * name), 1 MessageReceiver, 2 MessageInitiator, 3 CloseReceiver, 4 CloseInitiator, 5 ResetReceiver,
 * 6 ResetInitiator; "Initiator" flags are sent by the side that opened the stream. A stream is named by its
 * id together with which side opened it, so both sides may use the same id.
 * mplex has no flow control: each stream's unread bytes are capped (limits.max_stream_buffer) and a stream
 * that overflows is reset. Frames longer than MPLEX_MAX_FRAME or with an unknown flag fail the session. */
#ifndef CG_P2P_MPLEX_H
#define CG_P2P_MPLEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "p2p/muxer.h"

#define MPLEX_PROTOCOL "/mplex/6.7.0"
#define MPLEX_MAX_FRAME (1024u * 1024u)
#define MPLEX_MAX_ID ((UINT64_C(1) << 60) - 1)

enum mplex_flag {
	MPLEX_NEW_STREAM = 0,
	MPLEX_MSG_RECEIVER = 1,
	MPLEX_MSG_INITIATOR = 2,
	MPLEX_CLOSE_RECEIVER = 3,
	MPLEX_CLOSE_INITIATOR = 4,
	MPLEX_RESET_RECEIVER = 5,
	MPLEX_RESET_INITIATOR = 6,
};

struct mplex_hdr {
	uint64_t id;
	uint8_t flag;
	uint32_t length;
};

/* Decodes a frame header (both varints): >0 consumed, 0 need more, -CG_E_INVALID_ARGUMENT for a bad
 * varint, an unknown flag or a length above MPLEX_MAX_FRAME. */
int mplex_hdr_decode(const uint8_t *p, size_t n, struct mplex_hdr *h, cg_err *e);
/* Encodes a header into out (<= 18 bytes); returns its length. */
size_t mplex_hdr_encode(uint8_t out[static 18], const struct mplex_hdr *h);

/* New session. initiator=true for the dialer of the connection (mplex ids do not depend on it; the flag is
 * kept for symmetry with yamux). limits NULL = defaults. NULL only on allocation failure. */
muxer *mplex_new(bool initiator, const struct muxer_limits *limits);

#endif
