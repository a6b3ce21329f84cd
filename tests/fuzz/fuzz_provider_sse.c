/* libFuzzer target: the SSE parser (http/sse.h). The first byte picks a split point; parsing in two
 * pieces must give exactly the events of parsing in one, and every event stays under the cap. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "http/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CAP 4096

static int collect(void *arg, const char *event, const char *d, size_t len)
{
	buf *b = arg;
	if (len > CAP || strlen(d) != len || strlen(event) > SSE_EVENT_NAME_MAX)
		abort();
	if (buf_printf(b, "%zu:%s|", len, event) < 0 || buf_append(b, d, len) < 0)
		return -1;
	return 0;
}

static int run(const uint8_t *p, size_t n, size_t cut, buf *out)
{
	struct sse_parser s;
	cg_err e;
	sse_init(&s, CAP, collect, out);
	int r = sse_feed(&s, p, cut, &e);
	if (r == 0)
		r = sse_feed(&s, p + cut, n - cut, &e);
	sse_finish(&s);
	sse_done(&s);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 65536)
		return 0;
	size_t cut = data[0] % size;
	buf a, b;
	buf_init(&a, 1u << 24);
	buf_init(&b, 1u << 24);
	int ra = run(data + 1, size - 1, 0, &a);
	int rb = run(data + 1, size - 1, cut > size - 1 ? size - 1 : cut, &b);
	if (ra == 0 && rb == 0 && (a.len != b.len || (a.len && memcmp(a.data, b.data, a.len) != 0)))
		abort();
	/* Framing any data and parsing it back gives the same data (CR is a line end, so leave it out). */
	if (!memchr(data + 1, '\r', size - 1) && !memchr(data + 1, 0, size - 1) && size - 1 < CAP) {
		buf f, got;
		buf_init(&f, 1u << 20);
		buf_init(&got, 1u << 20);
		if (sse_frame(&f, NULL, (const char *)data + 1, size - 1) == 0) {
			struct sse_parser s;
			cg_err e;
			sse_init(&s, CAP + 16, collect, &got);
			if (sse_feed(&s, f.data, f.len, &e) != 0)
				abort();
			sse_done(&s);
			char head[32];
			int hl = snprintf(head, sizeof head, "%zu:|", size - 1);
			if (got.len != (size_t)hl + size - 1 || memcmp(got.data, head, (size_t)hl) != 0 ||
			    memcmp(got.data + hl, data + 1, size - 1) != 0)
				abort();
		}
		buf_done(&f);
		buf_done(&got);
	}
	buf_done(&a);
	buf_done(&b);
	return 0;
}
