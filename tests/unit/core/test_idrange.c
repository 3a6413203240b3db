/* The host id range allocator for user namespaces (src/core/idrange.c). */
#include "core/idrange.h"
#include "test.h"

#include <errno.h>

static const struct idrange_pool def = {IDRANGE_DEFAULT_START, IDRANGE_DEFAULT_COUNT};

TEST(first_is_pool_start)
{
	uint32_t b = 0;
	CHECK(idrange_pick(&def, NULL, 0, NULL, 0, 0, &b) == 0);
	CHECK(b == 100000000u);
}

TEST(used_slots_are_skipped_and_ranges_disjoint)
{
	uint32_t used[] = {100000000u, 100000000u + 65536u};
	uint32_t b = 0;
	CHECK(idrange_pick(&def, used, 2, NULL, 0, 0, &b) == 0);
	CHECK(b == 100000000u + 2 * 65536u);
	/* A freed slot in the middle is taken again. */
	uint32_t used2[] = {100000000u, 100000000u + 2 * 65536u};
	CHECK(idrange_pick(&def, used2, 2, NULL, 0, 0, &b) == 0);
	CHECK(b == 100000000u + 65536u);
}

TEST(prefer_keeps_a_free_range)
{
	uint32_t used[] = {100000000u};
	uint32_t b = 0;
	uint32_t want = 100000000u + 7 * 65536u;
	CHECK(idrange_pick(&def, used, 1, NULL, 0, want, &b) == 0);
	CHECK(b == want);
}

TEST(prefer_taken_or_foreign_allocates_anew)
{
	uint32_t used[] = {100000000u};
	uint32_t b = 0;
	CHECK(idrange_pick(&def, used, 1, NULL, 0, 100000000u, &b) == 0);
	CHECK(b == 100000000u + 65536u);
	/* Not a slot base of this pool (another host's layout). */
	CHECK(idrange_pick(&def, used, 1, NULL, 0, 100000001u, &b) == 0);
	CHECK(b == 100000000u + 65536u);
	CHECK(idrange_pick(&def, used, 1, NULL, 0, 5000u, &b) == 0);
	CHECK(b == 100000000u + 65536u);
}

TEST(hinted_slots_are_avoided_while_others_are_free)
{
	uint32_t hinted[] = {100000000u, 100000000u + 65536u};
	uint32_t b = 0;
	CHECK(idrange_pick(&def, NULL, 0, hinted, 2, 0, &b) == 0);
	CHECK(b == 100000000u + 2 * 65536u);
}

TEST(hinted_slots_are_used_when_nothing_else_is_free)
{
	struct idrange_pool p = {200000, 3 * 65536u};
	uint32_t used[] = {200000, 200000 + 2 * 65536u};
	uint32_t hinted[] = {200000 + 65536u};
	uint32_t b = 0;
	CHECK(idrange_pick(&p, used, 2, hinted, 1, 0, &b) == 0);
	CHECK(b == 200000 + 65536u);
}

TEST(full_pool_is_enospc)
{
	struct idrange_pool p = {200000, 2 * 65536u + 100};
	CHECK(idrange_slots(&p) == 2);
	uint32_t used[] = {200000 + 65536u, 200000};
	uint32_t b = 7;
	CHECK(idrange_pick(&p, used, 2, NULL, 0, 0, &b) == -ENOSPC);
	CHECK(b == 7);
}

TEST(pool_checks)
{
	struct idrange_pool zero = {0, 1u << 20};
	struct idrange_pool small = {100000, 1000};
	struct idrange_pool wrap = {4294900000u, 1u << 20};
	CHECK(!idrange_pool_ok(&zero));
	CHECK(!idrange_pool_ok(&small));
	CHECK(!idrange_pool_ok(&wrap));
	CHECK(idrange_pool_ok(&def));
	CHECK(idrange_slots(&def) == (size_t)(IDRANGE_DEFAULT_COUNT / 65536u));
	CHECK(idrange_is_slot(&def, 100000000u + 3 * 65536u));
	CHECK(!idrange_is_slot(&def, 100000000u + 3 * 65536u + 1));
	CHECK(!idrange_is_slot(&def, 99999999u));
	/* The last whole slot still ends below 2^32 - 1. */
	uint64_t last = (uint64_t)def.start + (idrange_slots(&def) - 1) * 65536u;
	CHECK(idrange_is_slot(&def, (uint32_t)last));
	CHECK(last + 65536u <= 4294967295u);
}

TEST(subid_entries)
{
	const char *t = "# comment\nalice:100000:65536\nclbsdx:1:2\nclbsd:300000:131072\nroot:9:9";
	struct idrange_pool p;
	CHECK(idrange_subid_find(t, "clbsd", &p));
	CHECK(p.start == 300000 && p.count == 131072);
	CHECK(idrange_subid_find(t, "root", &p));
	CHECK(p.start == 9 && p.count == 9);
	CHECK(!idrange_subid_find(t, "bob", &p));
	CHECK(!idrange_subid_find("clbsd:x:1\nclbsd:5", "clbsd", &p));
	CHECK(!idrange_subid_find("clbsd:1:99999999999", "clbsd", &p));
	CHECK(!idrange_subid_find("", "clbsd", &p));
}

int main(void)
{
	test_prog = "idrange";
	RUN(first_is_pool_start);
	RUN(used_slots_are_skipped_and_ranges_disjoint);
	RUN(prefer_keeps_a_free_range);
	RUN(prefer_taken_or_foreign_allocates_anew);
	RUN(hinted_slots_are_avoided_while_others_are_free);
	RUN(hinted_slots_are_used_when_nothing_else_is_free);
	RUN(full_pool_is_enospc);
	RUN(pool_checks);
	RUN(subid_entries);
	return test_failed_cases ? 1 : 0;
}
