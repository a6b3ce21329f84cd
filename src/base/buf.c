#include "base/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

void buf_init(buf *b, size_t cap)
{
	memset(b, 0, sizeof *b);
	b->cap = cap;
}

void buf_done(buf *b)
{
	free(b->data);
	size_t cap = b->cap;
	memset(b, 0, sizeof *b);
	b->cap = cap;
}

void buf_wipe(buf *b)
{
	if (b->data)
		sodium_memzero(b->data, b->alloc);
	buf_done(b);
}

static int grow(buf *b, size_t need)
{
	if (need > b->cap)
		return -1;
	if (need + 1 <= b->alloc)
		return 0;
	size_t na = b->alloc ? b->alloc : 64;
	while (na < need + 1)
		na *= 2;
	if (na > b->cap + 1)
		na = b->cap + 1;
	uint8_t *p = realloc(b->data, na);
	if (!p)
		return -1;
	b->data = p;
	b->alloc = na;
	return 0;
}

int buf_append(buf *b, const void *p, size_t n)
{
	if (n > b->cap - b->len || grow(b, b->len + n) != 0)
		return -1;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = 0;
	return 0;
}

int buf_putc(buf *b, uint8_t c)
{
	return buf_append(b, &c, 1);
}

int buf_printf(buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n > b->cap - b->len || grow(b, b->len + (size_t)n) != 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void buf_consume(buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
	} else {
		memmove(b->data, b->data + n, b->len - n);
		b->len -= n;
	}
	if (b->data)
		b->data[b->len] = 0;
}

void buf_reset(buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = 0;
}

char *buf_cstr(buf *b)
{
	return b->data ? (char *)b->data : (char *)"";
}

uint8_t *buf_steal(buf *b, size_t *len)
{
	uint8_t *p = b->data;
	if (len)
		*len = b->len;
	size_t cap = b->cap;
	memset(b, 0, sizeof *b);
	b->cap = cap;
	return p;
}
