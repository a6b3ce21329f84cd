/* libFuzzer target: the upstream side of the gateway. The input is split on blank lines into SSE data
 * payloads that go through the stream-chunk parser and the non-streamed accumulator (brain/oai.h), and
 * the whole input also through the SSE parser the gateway feeds (http/sse.h) and the upstream error
 * classifier. Must never crash, leak or grow past its caps. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "brain/oai.h"
#include "http/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct st {
	struct oai_acc acc;
	int events;
};

static int on_event(void *arg, const char *event, const char *d, size_t len)
{
	struct st *s = arg;
	struct oai_chunk c;
	oai_chunk_parse(d, len, &c);
	if (c.kind == OAI_CHUNK_DATA && !c.usage_only)
		(void)oai_acc_add(&s->acc, c.json);
	if ((c.kind == OAI_CHUNK_BAD || c.kind == OAI_CHUNK_ERROR) && !c.error[0])
		abort(); /* a broken stream always says why */
	oai_chunk_done(&c);
	return ++s->events > 10000 ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct st s = {.events = 0};
	oai_acc_init(&s.acc);
	struct sse_parser p;
	sse_init(&p, 1u << 16, on_event, &s);
	cg_err e;
	/* In two pieces, as bytes arrive from a socket. */
	size_t half = size / 2;
	if (sse_feed(&p, data, half, &e) == 0)
		(void)sse_feed(&p, data + half, size - half, &e);
	(void)sse_finish(&p);
	sse_done(&p);
	json_t *res = oai_acc_result(&s.acc, 1, 2);
	json_decref(res);
	oai_acc_done(&s.acc);
	/* The same bytes as one chunk payload and as an upstream error body. */
	struct oai_chunk c;
	oai_chunk_parse((const char *)data, size, &c);
	oai_chunk_done(&c);
	/* The relay fast path's validator never passes what jansson refuses, except for what it leaves to the
	 * client on purpose (UTF-8 details, \u0000). */
	if (oai_json_object_valid((const char *)data, size)) {
		bool high = false, nul = memmem(data, size, "\\u0000", 6) != NULL;
		for (size_t i = 0; i < size && !high; i++)
			high = data[i] >= 0x80;
		json_error_t je;
		json_t *j = high || nul ? NULL : json_loadb((const char *)data, size, 0, &je);
		if (!high && !nul && !json_is_object(j))
			abort();
		json_decref(j);
	}
	(void)oai_chunk_needs_parse((const char *)data, size);
	char msg[200];
	(void)oai_classify(size % 2 ? 400 : 503, (const char *)data, size, msg, sizeof msg);
	return 0;
}
