/* libFuzzer target: the gateway's chat request validator (brain/oai.h) on arbitrary bytes, then the
 * upstream body it would build from an accepted request. Must never crash, leak or read out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "brain/oai.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct oai_req q;
	cg_err e;
	if (oai_req_parse((const char *)data, size, &q, &e) == 0) {
		/* An accepted request must come with a usable shape. */
		if (!q.root || q.nmessages == 0 || !q.model)
			abort();
		json_t *copy = json_copy(q.root);
		json_object_set_new(copy, "stream", json_true());
		char *s = json_dumps(copy, JSON_COMPACT);
		free(s);
		json_decref(copy);
		oai_req_done(&q);
	} else if (e.msg[0] == 0) {
		abort(); /* every refusal says why */
	}
	return 0;
}
