/* common/log.h - leveled logging to stderr.
 * Owns: the process-wide log level and the message format.
 * Does not own: captured data, which never goes to the log. */
#ifndef ECV_LOG_H
#define ECV_LOG_H

#include <stdarg.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* Sets the lowest level printed (default LOG_INFO). */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Sets the program name printed before every line (default "ecv"). */
void log_set_ident(const char *ident);

/* Prints "<ident>: <level>: <message>\n" to stderr when level is enabled. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

#define log_err(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
