#include "http/sse.h"

#include <string.h>

void sse_init(struct sse_parser *p, size_t max_event, sse_event_fn fn, void *arg)
{
	memset(p, 0, sizeof *p);
	p->max_event = max_event;
	buf_init(&p->line, max_event + 16);
	buf_init(&p->data, max_event);
	p->on_event = fn;
	p->arg = arg;
}

void sse_done(struct sse_parser *p)
{
	buf_done(&p->line);
	buf_done(&p->data);
}

static int too_big(cg_err *e)
{
	return cg_fail(e, CG_E_INVALID_ARGUMENT, "event stream: event larger than the limit");
}

static int dispatch(struct sse_parser *p)
{
	int r = 0;
	if (p->have_data) {
		/* The data buffer holds "line\n" per data line: drop the final newline. */
		if (p->data.len && p->data.data[p->data.len - 1] == '\n')
			p->data.data[--p->data.len] = 0;
		r = p->on_event(p->arg, p->event, buf_cstr(&p->data), p->data.len);
	}
	buf_reset(&p->data);
	p->event[0] = 0;
	p->have_data = false;
	return r;
}

static int line(struct sse_parser *p, const char *s, size_t n, cg_err *e)
{
	if (n == 0)
		return dispatch(p);
	if (s[0] == ':')
		return 0;
	const char *colon = memchr(s, ':', n);
	size_t flen = colon ? (size_t)(colon - s) : n;
	const char *v = colon ? colon + 1 : s + n;
	size_t vlen = colon ? n - flen - 1 : 0;
	if (vlen && *v == ' ')
		v++, vlen--;
	if (flen == 4 && memcmp(s, "data", 4) == 0) {
		if (buf_append(&p->data, v, vlen) < 0 || buf_putc(&p->data, '\n') < 0)
			return too_big(e);
		p->have_data = true;
	} else if (flen == 5 && memcmp(s, "event", 5) == 0) {
		if (vlen > SSE_EVENT_NAME_MAX)
			vlen = SSE_EVENT_NAME_MAX;
		memcpy(p->event, v, vlen);
		p->event[vlen] = 0;
	}
	return 0;
}

int sse_feed(struct sse_parser *p, const void *bytes, size_t n, cg_err *e)
{
	const char *s = bytes;
	size_t i = 0;
	/* A UTF-8 BOM may open the stream (and only there), possibly split across pieces: bytes that start
	 * like a BOM and then differ were data after all and go to the line buffer. */
	static const unsigned char bom[3] = {0xef, 0xbb, 0xbf};
	while (!p->bom_checked && i < n) {
		if ((unsigned char)s[i] == bom[p->bom_len]) {
			i++;
			if (++p->bom_len == 3)
				p->bom_checked = true;
			continue;
		}
		if (buf_append(&p->line, bom, p->bom_len) < 0)
			return too_big(e);
		p->bom_checked = true;
	}
	while (i < n) {
		if (p->last_cr) {
			p->last_cr = false;
			if (s[i] == '\n') {
				i++;
				continue;
			}
		}
		/* Find the next line end in this piece. A NUL never belongs in the text streams we read (JSON
		 * data): refusing it keeps every event a plain C string. */
		size_t j = i;
		while (j < n && s[j] != '\n' && s[j] != '\r') {
			if (s[j] == 0)
				return cg_fail(e, CG_E_INVALID_ARGUMENT, "event stream: NUL byte");
			j++;
		}
		if (j == n) {
			if (buf_append(&p->line, s + i, n - i) < 0)
				return too_big(e);
			break;
		}
		int r;
		if (p->line.len) {
			if (buf_append(&p->line, s + i, j - i) < 0)
				return too_big(e);
			r = line(p, (const char *)p->line.data, p->line.len, e);
			buf_reset(&p->line);
		} else {
			r = line(p, s + i, j - i, e);
		}
		if (r < 0)
			return r;
		if (s[j] == '\r')
			p->last_cr = true;
		i = j + 1;
	}
	return 0;
}

bool sse_finish(struct sse_parser *p)
{
	bool pending = p->have_data || p->line.len;
	buf_reset(&p->line);
	buf_reset(&p->data);
	p->have_data = false;
	p->event[0] = 0;
	return pending;
}

int sse_frame(buf *out, const char *name, const char *data, size_t len)
{
	if (name && buf_printf(out, "event: %s\n", name) < 0)
		return -1;
	size_t i = 0;
	for (;;) {
		const char *nl = memchr(data + i, '\n', len - i);
		size_t l = nl ? (size_t)(nl - (data + i)) : len - i;
		if (buf_append(out, "data: ", 6) < 0 || buf_append(out, data + i, l) < 0 || buf_putc(out, '\n') < 0)
			return -1;
		if (!nl)
			break;
		i += l + 1;
	}
	return buf_putc(out, '\n');
}
