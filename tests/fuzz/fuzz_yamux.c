/* libFuzzer target for yamux: a script of peer bytes and local operations on one session (mux_fuzz.h). */
#include "mux_fuzz.h"
#include "p2p/yamux.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 1 << 20)
		return 0;
	struct muxer_limits lim = {.max_streams = (data[0] & 2) ? 4 : 64, .out_cap = (data[0] & 4) ? 256 : 0,
				   .window_budget = (data[0] & 8) ? 1u << 20 : 0};
	muxer *m = yamux_new(data[0] & 1, &lim);
	if (!m)
		abort();
	mux_fuzz_run(m, lim.max_streams, data + 1, size - 1);
	muxer_free(m);
	return 0;
}
