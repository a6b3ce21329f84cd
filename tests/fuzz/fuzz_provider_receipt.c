/* libFuzzer target: a receipt as the consumer receives it (header form, then strict verification). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "provider/receipt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *r = NULL;
	cg_err e;
	if (receipt_from_header((const char *)data, size, &r, &e) == 0) {
		if (!json_is_object(r))
			abort();
		(void)!receipt_verify(r, NULL, &e);
		json_decref(r);
	}
	/* The same bytes as a JSON receipt body (the SSE form). */
	r = json_loadb((const char *)data, size, 0, NULL);
	if (r) {
		(void)!receipt_verify(r, NULL, &e);
		json_decref(r);
	}
	return 0;
}
