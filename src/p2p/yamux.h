/* yamux — the yamux stream multiplexer (hashicorp/yamux spec.md; libp2p specs: yamux), as a muxer.h session.
 *
 * Frame header, 12 bytes big-endian: version (0) | type (0 Data, 1 WindowUpdate, 2 Ping, 3 GoAway) |
 * flags (SYN 1, ACK 2, FIN 4, RST 8) | stream id (32 bits) | length (32 bits: data length, window delta,
 * ping opaque or go-away code). Clients open odd stream ids, servers even ones; id 0 is the session.
 * Each stream starts with a 256 KiB window each way; the reader's window is reopened (WindowUpdate) as the
 * application reads, and doubles (up to 16 MiB, within limits.window_budget per session) while the
 * application consumes half a window within four round trips (the RTT comes from muxer_set_rtt). A peer sending more than the window, a bad version or type, a SYN with the wrong id
 * parity or an id in use is a protocol violation: the session sends GoAway(protocol error) and fails.
 * Pings are answered; GoAway is reported and blocks new outbound streams. */
#ifndef CG_P2P_YAMUX_H
#define CG_P2P_YAMUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "p2p/muxer.h"

#define YAMUX_PROTOCOL "/yamux/1.0.0"
#define YAMUX_HDR_LEN 12
#define YAMUX_INITIAL_WINDOW (256u * 1024u)

enum yamux_type { YAMUX_DATA = 0, YAMUX_WINDOW_UPDATE = 1, YAMUX_PING = 2, YAMUX_GO_AWAY = 3 };
enum yamux_flag { YAMUX_SYN = 1, YAMUX_ACK = 2, YAMUX_FIN = 4, YAMUX_RST = 8 };
enum yamux_goaway { YAMUX_GOAWAY_NORMAL = 0, YAMUX_GOAWAY_PROTOCOL = 1, YAMUX_GOAWAY_INTERNAL = 2 };

struct yamux_hdr {
	uint8_t version;
	uint8_t type;
	uint16_t flags;
	uint32_t stream;
	uint32_t length;
};

void yamux_hdr_encode(uint8_t out[static YAMUX_HDR_LEN], const struct yamux_hdr *h);
/* Decodes a header: 12 consumed, 0 need more, -CG_E_INVALID_ARGUMENT for version != 0 or type > 3. */
int yamux_hdr_decode(const uint8_t *p, size_t n, struct yamux_hdr *h, cg_err *e);

/* New session. client=true for the dialer of the connection (odd stream ids). limits NULL = defaults.
 * Never returns NULL except on allocation failure. */
muxer *yamux_new(bool client, const struct muxer_limits *limits);

#endif
