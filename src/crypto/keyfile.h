/* keyfile — private helper of crypto/: reading and atomically creating small secret files (mode 0600).
 * Only identity.c and wallet.c include it. */
#ifndef CG_CRYPTO_KEYFILE_H
#define CG_CRYPTO_KEYFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define KEYFILE_MAX 512

/* Reads the whole file into buf (at most cap-1 bytes, NUL-terminated) after checking that it is a regular
 * file owned by the effective user with no group/other permission bits. what names the file in errors
 * ("node key file"); the path never appears in messages. E_NOT_FOUND when missing, E_FORBIDDEN for unsafe
 * permissions, E_INVALID_ARGUMENT when larger than cap-1, E_INTERNAL for I/O errors. */
int keyfile_read(const char *path, const char *what, char *buf, size_t cap, size_t *len, cg_err *e);
/* Creates the file with content, never replacing an existing one: temp file (0600, O_CLOEXEC) in the same
 * directory, fsync, link() into place, fsync of the directory. E_CONFLICT when the file appeared
 * meanwhile (the caller then reads the winner's key). */
int keyfile_create(const char *path, const char *what, const void *content, size_t n, cg_err *e);
/* Parses "<tag><64 hex>" with an optional trailing "\n" into 32 bytes. 0 or -1. */
int keyfile_parse_hex32(const char *text, size_t n, const char *tag, uint8_t out[static 32]);

#endif
