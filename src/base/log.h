/* log — leveled logfmt lines on stderr (or a chosen fd), every line passed through redact.
 *
 *   log_info("http", "listening", "addr=%s", addr);
 *   -> ts=2026-11-25T21:30:00.123Z level=info mod=http msg="listening" addr=127.0.0.1:7878
 *
 * `fields` is a printf format producing logfmt key=value pairs (may be NULL). Thread-safe. */
#ifndef CG_BASE_LOG_H
#define CG_BASE_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };

void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
int log_level_parse(const char *s); /* "debug".."error"/"off" -> level, -1 if unknown */
void log_set_fd(int fd);

void log_write(enum log_level lvl, const char *mod, const char *msg, const char *fields, ...)
	__attribute__((format(printf, 4, 5)));

#define log_debug(mod, msg, ...) log_write(LOG_DEBUG, mod, msg, __VA_ARGS__)
#define log_info(mod, msg, ...) log_write(LOG_INFO, mod, msg, __VA_ARGS__)
#define log_warn(mod, msg, ...) log_write(LOG_WARN, mod, msg, __VA_ARGS__)
#define log_error(mod, msg, ...) log_write(LOG_ERROR, mod, msg, __VA_ARGS__)

/* Quotes v for a logfmt value into buf (always NUL-terminated); returns buf. */
const char *log_quote(char *buf, unsigned cap, const char *v);

#endif
