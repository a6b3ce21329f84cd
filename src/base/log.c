#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "base/redact.h"

static enum log_level cur_level = LOG_INFO;
static int log_fd = 2;

void log_set_level(enum log_level lvl) { cur_level = lvl; }
enum log_level log_get_level(void) { return cur_level; }
void log_set_fd(int fd) { log_fd = fd; }

int log_level_parse(const char *s)
{
	static const char *names[] = {"debug", "info", "warn", "error", "off"};
	for (int i = 0; i < 5; i++)
		if (strcasecmp(s, names[i]) == 0)
			return i;
	return -1;
}

const char *log_quote(char *buf, unsigned cap, const char *v)
{
	unsigned n = 0;
	if (cap < 3) {
		if (cap)
			buf[0] = 0;
		return buf;
	}
	buf[n++] = '"';
	for (; v && *v && n + 3 < cap; v++) {
		unsigned char c = (unsigned char)*v;
		if (c == '"' || c == '\\') {
			buf[n++] = '\\';
			buf[n++] = (char)c;
		} else if (c < 0x20) {
			buf[n++] = ' ';
		} else {
			buf[n++] = (char)c;
		}
	}
	buf[n++] = '"';
	buf[n] = 0;
	return buf;
}

void log_write(enum log_level lvl, const char *mod, const char *msg, const char *fields, ...)
{
	static const char *lv[] = {"debug", "info", "warn", "error"};
	if (lvl < cur_level || lvl >= LOG_OFF)
		return;
	char line[2048];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char q[512];
	int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s mod=%s msg=%s",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			 ts.tv_nsec / 1000000, lv[lvl], mod ? mod : "-", log_quote(q, sizeof q, msg));
	if (n < 0)
		return;
	if (fields && *fields && (size_t)n + 2 < sizeof line) {
		line[n++] = ' ';
		va_list ap;
		va_start(ap, fields);
		vsnprintf(line + n, sizeof line - (size_t)n, fields, ap);
		va_end(ap);
	}
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	redact_inplace(line, sizeof line - 1);
	size_t len = strlen(line);
	line[len++] = '\n';
	ssize_t w = write(log_fd, line, len);
	(void)w;
}
