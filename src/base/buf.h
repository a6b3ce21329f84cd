/* buf — a growable byte buffer with a hard cap set at init (STYLE.md habit 10).
 * buf_init/buf_done for embedded buffers. Appends past the cap fail with -1 and leave the buffer unchanged.
 * The data is always followed by a NUL byte (not counted in len) so text can be used as a C string. */
#ifndef CG_BASE_BUF_H
#define CG_BASE_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef struct buf {
	uint8_t *data;
	size_t len, alloc, cap;
} buf;

void buf_init(buf *b, size_t cap);
void buf_done(buf *b); /* frees and zeroes; safe on a zeroed buf */
void buf_wipe(buf *b); /* zeroes the bytes (secrets), then buf_done */
int buf_append(buf *b, const void *p, size_t n) __attribute__((warn_unused_result));
int buf_putc(buf *b, uint8_t c) __attribute__((warn_unused_result));
int buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3), warn_unused_result));
void buf_consume(buf *b, size_t n); /* drop n bytes from the front */
void buf_reset(buf *b);             /* len = 0, keeps memory */
char *buf_cstr(buf *b);             /* never NULL */
/* Detaches the data (caller frees); the buffer is left empty. */
uint8_t *buf_steal(buf *b, size_t *len);

#endif
