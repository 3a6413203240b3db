#include "health_state.h"

#include <string.h>

void health_init(struct health_state *st, int64_t now_ns, int64_t start_period_ns)
{
	memset(st, 0, sizeof(*st));
	st->status = HEALTH_STARTING;
	st->started_ns = now_ns;
	st->start_period_ns = start_period_ns > 0 ? start_period_ns : 0;
}

/*
 * How many bytes of s[0..len) to keep in at most max bytes without cutting a
 * UTF-8 sequence in two: a cut part of a character would make the snippet
 * invalid UTF-8, which the daemon's JSON encoder refuses.
 */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	size_t n = max;
	/* Back off over at most three continuation bytes (10xxxxxx). */
	for (int i = 0; i < 3 && n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80; i++)
		n--;
	/* s[n] did not start a character: the input was not UTF-8; cut at max. */
	if (((unsigned char)s[n] & 0xC0) == 0x80)
		n = max;
	return n;
}

static void fill_result(struct health_result *r, int64_t now_ns, bool ok, int exit_code,
			const char *output, size_t len)
{
	memset(r, 0, sizeof(*r));
	r->time_ns = now_ns;
	r->ok = ok;
	r->exit_code = exit_code;
	if (!output)
		len = 0;
	size_t n = utf8_cut(output, len, HEALTH_OUTPUT_MAX);
	if (n)
		memcpy(r->output, output, n);
	r->output[n] = '\0';
	r->output_len = n;
	r->truncated = n < len;
}

enum health_change health_record(struct health_state *st, const struct ctr_health *cfg,
				 int64_t now_ns, bool ok, int exit_code, const char *output,
				 size_t len)
{
	int retries = cfg->retries >= 1 ? cfg->retries : HEALTH_DEFAULT_RETRIES;
	enum health_status before = st->status;
	struct health_result *r = &st->last;

	fill_result(r, now_ns, ok, exit_code, output, len);
	if (ok) {
		st->failures = 0;
		st->status = HEALTH_HEALTHY;
	} else if (st->status == HEALTH_STARTING && now_ns - st->started_ns < st->start_period_ns) {
		/* Still starting up: Docker does not count this failure either. */
	} else {
		r->counted = true;
		st->failures++;
		if (st->failures >= retries)
			st->status = HEALTH_UNHEALTHY;
	}
	st->checks++;

	size_t slot = (st->log_head + st->log_len) % HEALTH_LOG_MAX;
	if (st->log_len == HEALTH_LOG_MAX)
		st->log_head = (st->log_head + 1) % HEALTH_LOG_MAX;
	else
		st->log_len++;
	st->log[slot] = *r;

	if (st->status == before)
		return HEALTH_SAME;
	return st->status == HEALTH_HEALTHY ? HEALTH_BECAME_HEALTHY : HEALTH_BECAME_UNHEALTHY;
}

int64_t health_next_check(const struct health_state *st, const struct ctr_health *cfg,
			  int64_t now_ns)
{
	int64_t interval = cfg->interval_ns > 0 ? cfg->interval_ns : HEALTH_DEFAULT_INTERVAL_NS;
	int64_t from = st->checks > 0 ? st->last.time_ns : st->started_ns;
	int64_t next = from > INT64_MAX - interval ? INT64_MAX : from + interval;
	return next > now_ns ? next : now_ns;
}

const struct health_result *health_log_at(const struct health_state *st, size_t i)
{
	if (i >= st->log_len)
		return NULL;
	return &st->log[(st->log_head + i) % HEALTH_LOG_MAX];
}

const char *health_status_name(enum health_status s)
{
	switch (s) {
	case HEALTH_STARTING:
		return "starting";
	case HEALTH_HEALTHY:
		return "healthy";
	case HEALTH_UNHEALTHY:
		return "unhealthy";
	}
	return "unknown";
}
