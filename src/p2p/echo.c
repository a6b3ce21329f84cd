/* echo — /clawgrid/echo/1.0.0: every byte received is sent back; when the peer closes its write side we
 * close ours once the last byte is out. Backpressure: reading pauses while our send buffer is more than
 * half full, so a peer that writes without reading is held back by the muxer's flow control (yamux) or by
 * TCP (mplex), never by our memory. */
#define P2P_SWARM_INTERNAL
#include "p2p/swarm_int.h"

static void on_data(struct p2p_stream *s, const uint8_t *p, size_t n, void *arg)
{
	cg_err e = {0};
	/* on_data chunks are at most 64 KiB and we pause above half the cap, so this fits unless the cap is
	 * configured below 128 KiB. */
	if (p2p_stream_write(s, p, n, &e) < 0) {
		p2p_stream_reset(s, "echo: send buffer full");
		return;
	}
	/* More than half the cap queued: the stream has armed on_writable, which resumes us. */
	if (p2p_stream_write_space(s) < p2p_stream_write_pending(s))
		p2p_stream_pause(s, true);
}

static void on_writable(struct p2p_stream *s, void *arg)
{
	p2p_stream_pause(s, false);
}

static void on_eof(struct p2p_stream *s, void *arg)
{
	p2p_stream_close_write(s);
}

static void on_close(struct p2p_stream *s, const char *reason, void *arg)
{
}

static const struct p2p_stream_cbs cbs = {on_data, on_eof, on_writable, on_close};

static void handler(struct p2p_stream *s, void *arg)
{
	p2p_stream_set_cbs(s, &cbs, NULL);
}

int p2p_echo_register(struct p2p_swarm *sw, cg_err *e)
{
	return p2p_swarm_handle(sw, P2P_ECHO_PROTOCOL, handler, NULL, e);
}
