/*
 * Health checks: the state machine that turns probe results into a
 * container's health status (issue 3), with Docker's semantics.
 *
 * It is pure: no I/O, no clock reads and no allocation. The daemon runs the
 * probes (rt_ops.probe for :http and :tcp, an exec for :cmd), reads the
 * clock, and feeds each result in with health_record(); the returned change
 * tells it when to emit an event or to restart an unhealthy container. The
 * module does not serialise either: the daemon builds the JSON for ps and
 * inspect from the fields below (health_status_name(), health_log_at()), so
 * the core stays free of jansson here.
 *
 * Rules:
 * - A container starts STARTING. The first success makes it HEALTHY, and any
 *   success resets the count of consecutive failures.
 * - A failure while the container is still STARTING and within its start
 *   period (now < started + start_period) does not count, so a slow service
 *   has time to come up. Once a check has succeeded, or the start period is
 *   over, every failure counts.
 * - After `retries` consecutive counted failures the container is UNHEALTHY
 *   (from STARTING or HEALTHY). It stays UNHEALTHY until a check succeeds.
 * - Every result, counted or not, is kept in a log of the last
 *   HEALTH_LOG_MAX results, and the latest is also health_state.last.
 * - Checks run `interval` after the container started and then `interval`
 *   after the previous check completed (health_next_check()).
 *
 * Invariants: 0 <= log_len <= HEALTH_LOG_MAX; failures is 0 whenever the
 * last result was a success; the status becomes UNHEALTHY only when a counted
 * failure brings failures to retries, and leaves UNHEALTHY only on a success.
 */
#ifndef CLBSD_HEALTH_H
#define CLBSD_HEALTH_H

#include "core/spec.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of a probe's output kept per result (plus a terminating NUL). */
#define HEALTH_OUTPUT_MAX 512
/* Results kept in the log. */
#define HEALTH_LOG_MAX 5
/* Used when the configuration gives no positive interval or retries. */
#define HEALTH_DEFAULT_INTERVAL_NS (30 * INT64_C(1000000000))
#define HEALTH_DEFAULT_RETRIES	   3

enum health_status { HEALTH_STARTING, HEALTH_HEALTHY, HEALTH_UNHEALTHY };

enum health_change {
	HEALTH_SAME,		 /* the status did not change */
	HEALTH_BECAME_HEALTHY,	 /* from STARTING or UNHEALTHY */
	HEALTH_BECAME_UNHEALTHY, /* from STARTING or HEALTHY */
};

/* One probe result. */
struct health_result {
	int64_t time_ns; /* when it completed (the now_ns given to health_record) */
	bool ok;
	int exit_code; /* the probe's or command's exit code, as the caller gave it */
	/*
	 * The first HEALTH_OUTPUT_MAX bytes of the output, NUL-terminated. A cut
	 * never splits a UTF-8 sequence; other bytes are kept as they came.
	 */
	char output[HEALTH_OUTPUT_MAX + 1];
	size_t output_len;
	bool truncated; /* the output was longer than what is kept */
	bool counted;	/* a failure that counted towards retries */
};

struct health_state {
	enum health_status status;
	int failures;		   /* consecutive counted failures */
	int64_t started_ns;	   /* health_init()'s now_ns */
	int64_t start_period_ns;   /* health_init()'s start_period_ns */
	int64_t checks;		   /* results recorded so far */
	struct health_result last; /* valid when checks > 0 */
	/* Ring of the last results: log[(log_head + i) % HEALTH_LOG_MAX], oldest first. */
	struct health_result log[HEALTH_LOG_MAX];
	size_t log_head, log_len;
};

/*
 * Start tracking a container that started at now_ns: status STARTING, no
 * failures, an empty log. start_period_ns (<= 0: none) is fixed here, so a
 * configuration reload does not move the start of a running container.
 */
void health_init(struct health_state *st, int64_t now_ns, int64_t start_period_ns);

/*
 * Record one probe result that completed at now_ns and return how the status
 * changed. ok decides the outcome; exit_code and output (len bytes, need not
 * be NUL-terminated, may be NULL when len is 0) are kept for display.
 * cfg->retries below 1 means HEALTH_DEFAULT_RETRIES.
 */
enum health_change health_record(struct health_state *st, const struct ctr_health *cfg,
				 int64_t now_ns, bool ok, int exit_code, const char *output,
				 size_t len);

/*
 * When the next probe should start: cfg->interval_ns (<= 0:
 * HEALTH_DEFAULT_INTERVAL_NS) after the last result, or after the start when
 * there is none yet; never earlier than now_ns (a check that is overdue is
 * due now).
 */
int64_t health_next_check(const struct health_state *st, const struct ctr_health *cfg,
			  int64_t now_ns);

/* The i-th kept result, oldest first (i < st->log_len), or NULL. */
const struct health_result *health_log_at(const struct health_state *st, size_t i);

/* "starting", "healthy" or "unhealthy" (as shown by ps and inspect). */
const char *health_status_name(enum health_status s);

#endif
