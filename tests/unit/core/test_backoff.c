/* The daemon's one backoff rule (src/core/backoff.c), with each caller's bounds. */
#include "core/backoff.h"
#include "test.h"

#include <stdint.h>

TEST(restart_policy)
{
	/* lifecycle.c: 100 ms doubling up to 30 s. */
	static const int64_t want[] = {100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000};
	for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		CHECK_INT(backoff_delay(100, 30000, i), want[i]);
	CHECK_INT(backoff_delay(100, 30000, 16), 30000);
	CHECK_INT(backoff_delay(100, 30000, 1000), 30000);
}

TEST(reconcile_passes)
{
	/* reconcile.c: the first failed pass waits 1 s, then 2, 4, 8, 16, 30 s. */
	static const int64_t want[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000};
	for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		CHECK_INT(backoff_delay(1000, 30000, i), want[i]);
}

TEST(pool_refill)
{
	/* shim_pool.c: seconds, 1 doubling up to 60. */
	static const int64_t want[] = {1, 2, 4, 8, 16, 32, 60, 60};
	for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		CHECK_INT(backoff_delay(1, 60, i), want[i]);
}

TEST(no_overflow)
{
	CHECK_INT(backoff_delay(1, INT64_MAX, 62), (int64_t)1 << 62);
	CHECK_INT(backoff_delay(1, INT64_MAX, 63), INT64_MAX);
	CHECK_INT(backoff_delay(3, INT64_MAX / 2, 4000000000u), INT64_MAX / 2);
	CHECK_INT(backoff_delay(5, 5, 0), 5);
	CHECK_INT(backoff_delay(5, 5, 9), 5);
}

TEST_MAIN_BEGIN("core.backoff")
RUN(restart_policy);
RUN(reconcile_passes);
RUN(pool_refill);
RUN(no_overflow);
TEST_MAIN_END
