/* common/log.c - leveled logging to stderr. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

/* Process-wide by design (log.h owns it): set once by main() before threads start. */
static enum log_level log_level = LOG_INFO;
static char log_ident[32] = "ecv";

static const char *const level_names[] = {
	[LOG_ERROR] = "error",
	[LOG_WARN] = "warning",
	[LOG_INFO] = "info",
	[LOG_DEBUG] = "debug",
};

void log_set_level(enum log_level level)
{
	int l = (int)level; /* the enum may be unsigned: compare as int */

	if (l < LOG_ERROR)
		l = LOG_ERROR;
	if (l > LOG_DEBUG)
		l = LOG_DEBUG;
	log_level = (enum log_level)l;
}

enum log_level log_get_level(void)
{
	return log_level;
}

void log_set_ident(const char *ident)
{
	snprintf(log_ident, sizeof(log_ident), "%s", ident ? ident : "ecv");
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char line[1024];
	int saved = errno; /* callers often log and then return -errno */
	int n;

	if ((int)level > (int)log_level || (int)level < LOG_ERROR)
		goto out;
	n = snprintf(line, sizeof(line), "%s: %s: ", log_ident, level_names[level]);
	if (n < 0 || (size_t)n >= sizeof(line))
		goto out;
	vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	n = strlen(line);
	/* One write per line keeps lines from different threads whole. */
	if (n > 0 && line[n - 1] == '\n')
		line[n - 1] = '\0';
	fprintf(stderr, "%s\n", line);
out:
	errno = saved;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}
