/* Shared by the escape suite's hostile programs: each tries one escape and prints exactly one line,
 *   RESULT blocked:<ERRNO-NAME or word>   the attempt failed in the way the test expects to check, or
 *   RESULT escaped:<what>                 the attempt worked (the test fails),
 * or is killed before printing (the test then checks how: seccomp, memory, timeout). */
#ifndef HOSTILE_H
#define HOSTILE_H
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline const char *errname(int e)
{
	switch (e) {
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case ESRCH: return "ESRCH";
	case EACCES: return "EACCES";
	case EROFS: return "EROFS";
	case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM";
	case EMFILE: return "EMFILE";
	case ENFILE: return "ENFILE";
	case ENOSPC: return "ENOSPC";
	case EFBIG: return "EFBIG";
	case ENOSYS: return "ENOSYS";
	case EINVAL: return "EINVAL";
	case ENOTTY: return "ENOTTY";
	case ETXTBSY: return "ETXTBSY";
	case ECONNREFUSED: return "ECONNREFUSED";
	case ENETUNREACH: return "ENETUNREACH";
	case EHOSTUNREACH: return "EHOSTUNREACH";
	case EAFNOSUPPORT: return "EAFNOSUPPORT";
	case ENXIO: return "ENXIO";
	case EIO: return "EIO";
	case EBADF: return "EBADF";
	case EXDEV: return "EXDEV";
	case EISDIR: return "EISDIR";
	case ENODEV: return "ENODEV";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
	default: return "EOTHER";
	}
}

static inline void blocked(int e)
{
	printf("RESULT blocked:%s\n", errname(e));
	fflush(stdout);
	exit(0);
}

static inline void blocked_word(const char *w)
{
	printf("RESULT blocked:%s\n", w);
	fflush(stdout);
	exit(0);
}

static inline void escaped(const char *what)
{
	printf("RESULT escaped:%s\n", what);
	fflush(stdout);
	exit(0);
}
#endif
