/* pb — a tiny protobuf wire-format writer and reader (developers.google.com/protocol-buffers/docs/encoding).
 *
 * Enough for libp2p's messages (PublicKey, NoiseHandshakePayload, identify, kad, relay): the writer appends
 * fields to a capped buf in the order called (libp2p requires deterministic encoding: callers write fields
 * in field-number order); the reader is an iterator over the fields of one message, bounds-checked, which
 * points into the input (no copies, no allocation). Wire types: 0 varint, 1 fixed64, 2 length-delimited,
 * 5 fixed32; groups (3, 4) are rejected. Protobuf varints are up to 10 bytes and need not be minimal. */
#ifndef CG_P2P_PB_H
#define CG_P2P_PB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"

enum pb_wire { PB_VARINT = 0, PB_FIXED64 = 1, PB_LEN = 2, PB_FIXED32 = 5 };
#define PB_MAX_FIELD ((UINT32_C(1) << 29) - 1)

/* Writers: 0, or -CG_E_QUOTA_EXCEEDED when b's cap is reached (b may then hold a partial field: callers
 * discard the buffer on failure). field must be 1..PB_MAX_FIELD (asserted). */
int pb_put_varint(buf *b, uint32_t field, uint64_t v) __attribute__((warn_unused_result));
int pb_put_bytes(buf *b, uint32_t field, const void *p, size_t n) __attribute__((warn_unused_result));
int pb_put_str(buf *b, uint32_t field, const char *s) __attribute__((warn_unused_result));
int pb_put_fixed32(buf *b, uint32_t field, uint32_t v) __attribute__((warn_unused_result));
int pb_put_fixed64(buf *b, uint32_t field, uint64_t v) __attribute__((warn_unused_result));
/* Raw protobuf varint (no tag), e.g. for length-prefixed message streams. */
int pb_put_raw_varint(buf *b, uint64_t v) __attribute__((warn_unused_result));

/* Reader. The iterator borrows the input until it is done. */
typedef struct pb_reader {
	const uint8_t *p, *end;
} pb_reader;

typedef struct pb_field {
	uint32_t num;       /* field number, >= 1 */
	enum pb_wire wire;  /* wire type */
	uint64_t u;         /* PB_VARINT, PB_FIXED64, PB_FIXED32: the value */
	const uint8_t *data;/* PB_LEN: the bytes (borrowed from the input), NULL otherwise */
	size_t len;         /* PB_LEN: their length */
} pb_field;

void pb_reader_init(pb_reader *r, const uint8_t *p, size_t n);
/* Reads the next field. Returns 1 and fills *f; 0 at the end of the message; -CG_E_INVALID_ARGUMENT when
 * the message is malformed (truncated field, bad wire type, field number 0, overlong varint). A protobuf
 * message has no length of its own, so truncation inside a field is an error, never "need more". */
int pb_next(pb_reader *r, pb_field *f, cg_err *e);
/* Decodes a raw protobuf varint: >0 consumed, 0 need more, <0 malformed (more than 10 bytes / overflow). */
int pb_get_raw_varint(const uint8_t *p, size_t n, uint64_t *out, cg_err *e);

#endif
