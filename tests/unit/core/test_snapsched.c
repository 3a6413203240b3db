#include "core/snapsched.h"
#include "test.h"

#include <string.h>

TEST(keeps_newest_scheduled)
{
	const char *l[] = {"auto-20260101-000000", "mine", "auto-20260101-010000",
			   "auto-20260101-020000", "auto-20260101-030000"};
	const char *out[5];
	size_t k = snap_prune_select(l, 5, 2, out);
	CHECK_INT((int)k, 2);
	CHECK_STR(out[0], "auto-20260101-000000");
	CHECK_STR(out[1], "auto-20260101-010000");
}

TEST(hand_made_never_pruned)
{
	const char *l[] = {"before-upgrade", "s1", "auto-x"};
	const char *out[3];
	CHECK_INT((int)snap_prune_select(l, 3, 0, out), 1);
	CHECK_STR(out[0], "auto-x");
	CHECK_INT((int)snap_prune_select(l, 3, 5, out), 0);
}

TEST(empty_list)
{
	const char *out[1];
	CHECK_INT((int)snap_prune_select(NULL, 0, 3, out), 0);
}

TEST_MAIN_BEGIN("snapsched")
RUN(keeps_newest_scheduled);
RUN(hand_made_never_pruned);
RUN(empty_list);
TEST_MAIN_END
