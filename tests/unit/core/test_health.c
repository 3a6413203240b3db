/*
 * The health state machine: what ps shows after a sequence of probe results,
 * when the daemon is told to act (the returned change), when it probes next,
 * and what the log keeps.
 */
#include "core/health_state.h"
#include "test.h"

#include <string.h>

#define S(n) ((int64_t)(n)*1000000000LL)

static struct ctr_health cfg(int64_t interval, int retries)
{
	struct ctr_health c;
	memset(&c, 0, sizeof(c));
	c.type = CTR_HEALTH_TCP;
	c.port = 80;
	c.interval_ns = interval;
	c.timeout_ns = S(5);
	c.retries = retries;
	return c;
}

static enum health_change fail(struct health_state *st, const struct ctr_health *c, int64_t t)
{
	return health_record(st, c, t, false, 1, "connection refused", 18);
}

static enum health_change pass(struct health_state *st, const struct ctr_health *c, int64_t t)
{
	return health_record(st, c, t, true, 0, "HTTP 200 OK", 11);
}

TEST(starts_starting)
{
	struct health_state st;
	health_init(&st, S(100), 0);
	CHECK_INT(st.status, HEALTH_STARTING);
	CHECK_STR(health_status_name(st.status), "starting");
	CHECK_INT(st.failures, 0);
	CHECK_INT(st.log_len, 0);
	CHECK(health_log_at(&st, 0) == NULL);
}

TEST(first_success_is_healthy)
{
	struct ctr_health c = cfg(S(30), 3);
	struct health_state st;
	health_init(&st, 0, 0);
	CHECK_INT(pass(&st, &c, S(30)), HEALTH_BECAME_HEALTHY);
	CHECK_STR(health_status_name(st.status), "healthy");
	CHECK_INT(pass(&st, &c, S(60)), HEALTH_SAME);
	CHECK_INT(st.last.exit_code, 0);
	CHECK_STR(st.last.output, "HTTP 200 OK");
	CHECK_INT(st.last.time_ns, S(60));
}

TEST(retries_consecutive_failures_make_unhealthy)
{
	struct ctr_health c = cfg(S(30), 3);
	struct health_state st;
	health_init(&st, 0, 0);
	CHECK_INT(pass(&st, &c, S(1)), HEALTH_BECAME_HEALTHY);
	CHECK_INT(fail(&st, &c, S(2)), HEALTH_SAME);
	CHECK_INT(fail(&st, &c, S(3)), HEALTH_SAME);
	CHECK_INT(st.status, HEALTH_HEALTHY);
	CHECK_INT(st.failures, 2);
	CHECK_INT(fail(&st, &c, S(4)), HEALTH_BECAME_UNHEALTHY);
	CHECK_STR(health_status_name(st.status), "unhealthy");
	CHECK_INT(st.failures, 3);
	/* Further failures change nothing the daemon must act on. */
	CHECK_INT(fail(&st, &c, S(5)), HEALTH_SAME);
	CHECK_INT(st.status, HEALTH_UNHEALTHY);
	CHECK_INT(st.failures, 4);
}

TEST(success_resets_the_failure_count)
{
	struct ctr_health c = cfg(S(30), 3);
	struct health_state st;
	health_init(&st, 0, 0);
	CHECK_INT(fail(&st, &c, S(1)), HEALTH_SAME);
	CHECK_INT(fail(&st, &c, S(2)), HEALTH_SAME);
	CHECK_INT(pass(&st, &c, S(3)), HEALTH_BECAME_HEALTHY);
	CHECK_INT(st.failures, 0);
	/* Not consecutive: two more failures are not yet three. */
	CHECK_INT(fail(&st, &c, S(4)), HEALTH_SAME);
	CHECK_INT(fail(&st, &c, S(5)), HEALTH_SAME);
	CHECK_INT(st.status, HEALTH_HEALTHY);
}

TEST(unhealthy_recovers_on_success)
{
	struct ctr_health c = cfg(S(30), 1);
	struct health_state st;
	health_init(&st, 0, 0);
	CHECK_INT(fail(&st, &c, S(1)), HEALTH_BECAME_UNHEALTHY);
	CHECK_INT(pass(&st, &c, S(2)), HEALTH_BECAME_HEALTHY);
	CHECK_INT(st.failures, 0);
	CHECK_INT(fail(&st, &c, S(3)), HEALTH_BECAME_UNHEALTHY);
}

TEST(failures_in_the_start_period_do_not_count)
{
	struct ctr_health c = cfg(S(5), 2);
	struct health_state st;
	health_init(&st, S(100), S(60));
	for (int i = 1; i <= 11; i++)
		CHECK_INT(fail(&st, &c, S(100 + 5 * i)), HEALTH_SAME);
	CHECK_INT(st.status, HEALTH_STARTING);
	CHECK_INT(st.failures, 0);
	CHECK(!st.last.counted);
	/* At the end of the period (100 + 60) failures count. */
	CHECK_INT(fail(&st, &c, S(160)), HEALTH_SAME);
	CHECK(st.last.counted);
	CHECK_INT(st.failures, 1);
	CHECK_INT(fail(&st, &c, S(165)), HEALTH_BECAME_UNHEALTHY);
	/* Uncounted results are still logged. */
	CHECK_INT(st.log_len, HEALTH_LOG_MAX);
	CHECK(!health_log_at(&st, 0)->counted);
	CHECK(health_log_at(&st, HEALTH_LOG_MAX - 1)->counted);
}

TEST(a_success_ends_the_start_period)
{
	struct ctr_health c = cfg(S(5), 2);
	struct health_state st;
	health_init(&st, 0, S(60));
	CHECK_INT(fail(&st, &c, S(5)), HEALTH_SAME);
	CHECK_INT(pass(&st, &c, S(10)), HEALTH_BECAME_HEALTHY);
	/* Still within 60 s, but the service is up: failures now count. */
	CHECK_INT(fail(&st, &c, S(15)), HEALTH_SAME);
	CHECK_INT(fail(&st, &c, S(20)), HEALTH_BECAME_UNHEALTHY);
}

TEST(zero_retries_means_the_default)
{
	struct ctr_health c = cfg(S(5), 0);
	struct health_state st;
	health_init(&st, 0, 0);
	for (int i = 1; i < HEALTH_DEFAULT_RETRIES; i++)
		CHECK_INT(fail(&st, &c, S(i)), HEALTH_SAME);
	CHECK_INT(fail(&st, &c, S(10)), HEALTH_BECAME_UNHEALTHY);
}

TEST(log_keeps_the_last_five_oldest_first)
{
	struct ctr_health c = cfg(S(30), 3);
	struct health_state st;
	health_init(&st, 0, 0);
	for (int i = 0; i < 12; i++) {
		char out[16];
		int n = snprintf(out, sizeof(out), "run %d", i);
		health_record(&st, &c, S(i), i % 2 == 0, i, out, (size_t)n);
		CHECK_INT(st.log_len, i + 1 < HEALTH_LOG_MAX ? i + 1 : HEALTH_LOG_MAX);
	}
	CHECK_INT(st.checks, 12);
	for (size_t i = 0; i < HEALTH_LOG_MAX; i++) {
		const struct health_result *r = health_log_at(&st, i);
		char want[16];
		snprintf(want, sizeof(want), "run %d", (int)(7 + i));
		CHECK(r != NULL);
		CHECK_STR(r->output, want);
		CHECK_INT(r->exit_code, 7 + i);
		CHECK_INT(r->time_ns, S(7 + i));
		CHECK_INT(r->ok, (7 + i) % 2 == 0);
	}
	CHECK(health_log_at(&st, HEALTH_LOG_MAX) == NULL);
	CHECK_STR(health_log_at(&st, HEALTH_LOG_MAX - 1)->output, st.last.output);
}

TEST(output_is_bounded_and_keeps_utf8_whole)
{
	struct ctr_health c = cfg(S(30), 3);
	struct health_state st;
	health_init(&st, 0, 0);
	char big[2000];
	memset(big, 'x', sizeof(big));
	health_record(&st, &c, S(1), false, 1, big, sizeof(big));
	CHECK_INT(st.last.output_len, HEALTH_OUTPUT_MAX);
	CHECK(st.last.truncated);
	CHECK_INT(strlen(st.last.output), HEALTH_OUTPUT_MAX);

	/* A 3-byte character ("€", e2 82 ac) straddling the limit is dropped whole. */
	memcpy(big + HEALTH_OUTPUT_MAX - 1, "\xe2\x82\xac", 3);
	health_record(&st, &c, S(2), false, 1, big, sizeof(big));
	CHECK_INT(st.last.output_len, HEALTH_OUTPUT_MAX - 1);
	CHECK(st.last.output[HEALTH_OUTPUT_MAX - 2] == 'x');

	/* Exactly the limit is kept whole and is not truncated. */
	memset(big, 'y', sizeof(big));
	health_record(&st, &c, S(3), true, 0, big, HEALTH_OUTPUT_MAX);
	CHECK(!st.last.truncated);
	CHECK_INT(st.last.output_len, HEALTH_OUTPUT_MAX);

	/* Binary output with a NUL is kept by length; NULL output is empty. */
	health_record(&st, &c, S(4), false, 2, "a\0b", 3);
	CHECK_INT(st.last.output_len, 3);
	CHECK(memcmp(st.last.output, "a\0b", 4) == 0);
	health_record(&st, &c, S(5), false, 2, NULL, 10);
	CHECK_INT(st.last.output_len, 0);
	CHECK_STR(st.last.output, "");
}

TEST(next_check_every_interval_after_the_last)
{
	struct ctr_health c = cfg(S(10), 3);
	struct health_state st;
	health_init(&st, S(100), S(60));
	/* The first check comes one interval after the start, start period or not. */
	CHECK_INT(health_next_check(&st, &c, S(100)), S(110));
	/* Then one interval after the previous check completed. */
	pass(&st, &c, S(112));
	CHECK_INT(health_next_check(&st, &c, S(112)), S(122));
	/* An overdue check is due now, never in the past. */
	CHECK_INT(health_next_check(&st, &c, S(150)), S(150));
	/* No interval configured: the default. */
	c.interval_ns = 0;
	CHECK_INT(health_next_check(&st, &c, S(112)), S(112) + HEALTH_DEFAULT_INTERVAL_NS);
}

TEST(status_names)
{
	CHECK_STR(health_status_name(HEALTH_STARTING), "starting");
	CHECK_STR(health_status_name(HEALTH_HEALTHY), "healthy");
	CHECK_STR(health_status_name(HEALTH_UNHEALTHY), "unhealthy");
}

TEST_MAIN_BEGIN("health")
RUN(starts_starting);
RUN(first_success_is_healthy);
RUN(retries_consecutive_failures_make_unhealthy);
RUN(success_resets_the_failure_count);
RUN(unhealthy_recovers_on_success);
RUN(failures_in_the_start_period_do_not_count);
RUN(a_success_ends_the_start_period);
RUN(zero_retries_means_the_default);
RUN(log_keeps_the_last_five_oldest_first);
RUN(output_is_bounded_and_keeps_utf8_whole);
RUN(next_check_every_interval_after_the_last);
RUN(status_names);
TEST_MAIN_END
