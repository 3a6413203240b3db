#include "util.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static log_sink_fn sink;
static void *sink_ctx;
static enum log_level level = LOG_INFO;

void log_set_sink(log_sink_fn fn, void *ctx)
{
	sink = fn;
	sink_ctx = ctx;
}

void log_set_level(enum log_level lvl)
{
	level = lvl;
}

enum log_level log_get_level(void)
{
	return level;
}

static const char *const names[] = {"error", "warn", "info", "debug"};

const char *log_level_name(enum log_level lvl)
{
	return (unsigned)lvl < ARRAY_SIZE(names) ? names[lvl] : "info";
}

int log_parse_level(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (strcasecmp(s, names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcasecmp(s, "warning") == 0) {
		*out = LOG_WARN;
		return 0;
	}
	return -1;
}

void log_msg(enum log_level lvl, const char *subsys, const char *container, const char *fmt, ...)
{
	if (lvl > level || !sink)
		return;
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sink(lvl, subsys, container, msg, sink_ctx);
}

void log_sink_stderr(enum log_level lvl, const char *subsys, const char *container, const char *msg,
		     void *ctx)
{
	FILE *f = ctx ? ctx : stderr;
	char ts[48];
	time_fmt_rfc3339(time_now_ns(), ts, sizeof(ts));
	/* Millisecond precision is plenty for a log line. */
	if (strlen(ts) > 24) {
		ts[23] = 'Z';
		ts[24] = '\0';
	}
	if (container && *container)
		fprintf(f, "%s %-5s %s[%s]: %s\n", ts, log_level_name(lvl), subsys, container, msg);
	else
		fprintf(f, "%s %-5s %s: %s\n", ts, log_level_name(lvl), subsys, msg);
	fflush(f);
}
