#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t time_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t time_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void time_fmt_rfc3339(int64_t ns, char *buf, size_t len)
{
	time_t sec = (time_t)(ns / 1000000000LL);
	long frac = (long)(ns % 1000000000LL);
	struct tm tm;
	gmtime_r(&sec, &tm);
	/* Not strftime: it loads the local time zone (/etc/localtime) first. */
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

int time_parse_rfc3339(const char *s, int64_t *ns)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return -EINVAL;
	long frac = 0;
	if (*p == '.') {
		p++;
		int digits = 0;
		while (*p >= '0' && *p <= '9') {
			if (digits < 9) {
				frac = frac * 10 + (*p - '0');
				digits++;
			}
			p++;
		}
		while (digits++ < 9)
			frac *= 10;
	}
	if (*p != 'Z' || p[1])
		return -EINVAL;
	/* Nanoseconds in an int64_t reach from 1677 to 2262: refuse beyond (a header's date). */
	int64_t secs = (int64_t)timegm(&tm);
	if (secs >= INT64_MAX / 1000000000LL || secs <= INT64_MIN / 1000000000LL)
		return -ERANGE;
	*ns = secs * 1000000000LL + frac;
	return 0;
}
