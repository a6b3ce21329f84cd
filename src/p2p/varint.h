/* varint — multiformats unsigned varint (github.com/multiformats/unsigned-varint).
 *
 * LEB128, 7 bits per byte, least significant group first, high bit = "more bytes follow". The multiformats
 * rules are stricter than protobuf's: at most 9 bytes (so values < 2^63) and minimal encoding only (no
 * trailing 0x80 ... 0x00 padding). Used by multiaddr, multihash/CID, multistream-select and mplex.
 * Pure functions; decoders never read past n. */
#ifndef CG_P2P_VARINT_H
#define CG_P2P_VARINT_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"

#define VARINT_MAX_LEN 9
#define VARINT_MAX_VALUE ((UINT64_C(1) << 63) - 1)

/* Number of bytes varint_encode writes for v (v <= VARINT_MAX_VALUE). */
size_t varint_len(uint64_t v);
/* Writes v into out and returns the length (1..9). v must be <= VARINT_MAX_VALUE (asserted: a caller bug). */
size_t varint_encode(uint8_t out[static VARINT_MAX_LEN], uint64_t v);
/* Appends v to b. 0, or -CG_E_QUOTA_EXCEEDED when b's cap is reached (b unchanged). */
int varint_put(buf *b, uint64_t v) __attribute__((warn_unused_result));
/* Decodes one varint from p[0..n).
 * Returns >0: bytes consumed and *out set; 0: truncated, need more bytes (*out untouched);
 * <0: -CG_E_INVALID_ARGUMENT for a non-minimal encoding or more than 9 bytes (e says which). */
int varint_decode(const uint8_t *p, size_t n, uint64_t *out, cg_err *e);

#endif
