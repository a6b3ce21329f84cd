/* libFuzzer target: the GGUF header reader on arbitrary bytes (as a whole file and as a prefix of a larger
 * one). It must never crash, read out of bounds or allocate without bound, and a success must describe
 * tensor data that lies inside the stated file size. */
#include <stdint.h>
#include <stdlib.h>

#include "model/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gguf_info gi;
	cg_err e;
	if (gguf_parse(data, size, size, &gi, &e) == 0) {
		/* No tensor data (a vocabulary-only file): its empty data section may lie past the end. */
		if ((gi.data_size && gi.data_offset + gi.data_size > size) || gi.data_offset % gi.alignment)
			abort();
		gguf_info_done(&gi);
	}
	/* Only a prefix mapped, the file said to be larger: bounds are checked against the file size. */
	if (gguf_parse(data, size, (uint64_t)size * 2 + 4096, &gi, &e) == 0)
		gguf_info_done(&gi);
	return 0;
}
