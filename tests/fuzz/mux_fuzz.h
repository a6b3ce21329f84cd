/* Shared driver for the muxer fuzz targets: the input is a script of operations on one session, mixing
 * peer bytes with local API calls, so the fuzzer explores the state machine and not only the parser.
 * Byte 0: session options. Then ops: opcode byte, argument bytes as each op needs. */
#ifndef FUZZ_MUX_FUZZ_H
#define FUZZ_MUX_FUZZ_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "p2p/muxer.h"

#define MAX_IDS 64

static void mux_fuzz_run(muxer *m, uint32_t max_streams, const uint8_t *p, size_t n)
{
	uint64_t ids[MAX_IDS];
	size_t nids = 0, off = 0;
	uint8_t scratch[4096];
	memset(scratch, 0x5a, sizeof scratch);
	int64_t now = 1;
	bool failed = false;
	while (off < n) {
		uint8_t op = p[off++];
		uint8_t arg = off < n ? p[off] : 0;
		uint64_t id = nids ? ids[arg % nids] : arg;
		cg_err e;
		struct muxer_event ev;
		switch (op % 12) {
		case 0:
		case 1:
		case 2:
		case 3: { /* feed the next arg+1 bytes (op 3: all the rest) */
			off++;
			if (off >= n)
				break;
			size_t k = op % 12 == 3 ? n - off : (size_t)arg + 1;
			if (k > n - off)
				k = n - off;
			size_t used = 0;
			int rc = muxer_feed(m, p + off, k, &used, &e);
			if (used > k)
				abort();
			if (rc < 0) {
				if (!e.msg[0])
					abort();
				failed = true;
			}
			off += k; /* what was not consumed is dropped: the next feed starts on a fresh boundary */
			break;
		}
		case 4:
			if (muxer_open(m, &id, NULL) == 0) {
				if (nids < MAX_IDS)
					ids[nids++] = id;
				else
					ids[arg % MAX_IDS] = id;
			}
			break;
		case 5: {
			off++;
			long w = muxer_write(m, id, scratch, (size_t)arg * 16, NULL);
			if (w > (long)arg * 16)
				abort();
			break;
		}
		case 6: {
			off++;
			bool eof;
			long r = muxer_read(m, id, scratch, (size_t)arg * 16 + 1, &eof, NULL);
			if (r > (long)arg * 16 + 1)
				abort();
			break;
		}
		case 7:
			off++;
			muxer_close(m, id, NULL);
			break;
		case 8:
			off++;
			muxer_reset(m, id, NULL);
			break;
		case 9:
			while (muxer_poll(m, &ev) == 1) {
				if (ev.type == MUXER_EV_INBOUND && nids < MAX_IDS)
					ids[nids++] = ev.id;
			}
			break;
		case 10: {
			size_t k;
			muxer_out_peek(m, &k);
			muxer_out_consume(m, arg & 1 ? k : k / 2);
			off++;
			break;
		}
		default:
			off++;
			if (arg & 1) {
				muxer_ping(m, arg, NULL);
			} else if (arg & 2) { /* time passes (0..63 ms); the RTT is known (yamux window growth) */
				muxer_set_time(m, now += (int64_t)(arg >> 2) * 1000);
				muxer_set_rtt(m, 5000);
			} else {
				muxer_goaway(m, NULL);
			}
			break;
		}
		if (muxer_stream_count(m) > max_streams)
			abort();
		if (failed && muxer_feed(m, p, n, &(size_t){0}, NULL) >= 0)
			abort(); /* a failed session stays failed */
	}
}

#endif
