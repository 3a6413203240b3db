/*
 * Which snapshots travel with an export (--snapshots) and in which order a
 * dataset sends them (src/storage/snap_pick.c).
 */
#include "storage/storage.h"
#include "test.h"
#include "util/util.h"

#include <clbsd/error.h>
#include <string.h>

static struct storage_snapshot have[] = {{"daily-1", 1, 0, 0},
					 {"before-upgrade", 2, 0, 0},
					 {"daily-2", 3, 0, 0},
					 {"export-ab12", 4, 0, 0}};
#define NHAVE (sizeof(have) / sizeof(have[0]))

/* v joined by ',' (a new string; "" when empty). */
static char *joined(const struct strv *v)
{
	struct buf b = BUF_INIT;
	buf_addf(&b, "%s", "");
	for (size_t i = 0; i < v->n; i++)
		buf_addf(&b, "%s%s", i ? "," : "", v->v[i]);
	return buf_detach(&b, NULL);
}

TEST(spec_syntax)
{
	struct clbsd_err err;
	CHECK(storage_snaps_check(NULL, &err) == 0);
	CHECK(storage_snaps_check("none", &err) == 0);
	CHECK(storage_snaps_check("all", &err) == 0);
	CHECK(storage_snaps_check("daily-1", &err) == 0);
	CHECK(storage_snaps_check("daily-1,before-upgrade", &err) == 0);
	CHECK(storage_snaps_check("", &err) < 0);
	CHECK(storage_snaps_check("a,,b", &err) < 0);
	CHECK(storage_snaps_check("a,", &err) < 0);
	CHECK(storage_snaps_check(",a", &err) < 0);
	CHECK(storage_snaps_check("a/b", &err) < 0);
	CHECK(storage_snaps_check("-a", &err) < 0);
	CHECK(err.kind == CLBSD_E_INVALID);
	CHECK(strstr(err.msg, "-a") != NULL);
	CHECK(storage_snaps_none(NULL) && storage_snaps_none("none"));
	CHECK(!storage_snaps_none("all") && !storage_snaps_none("x"));
}

TEST(select_all_keeps_order_and_drops_own_label)
{
	struct clbsd_err err;
	struct strv out = STRV_INIT;
	CHECK(storage_snaps_select("all", have, NHAVE, "export-ab12", &out, &err) == 0);
	autofree char *s = joined(&out);
	CHECK(strcmp(s, "daily-1,before-upgrade,daily-2") == 0);
	strv_release(&out);
	CHECK(storage_snaps_select("none", have, NHAVE, "export-ab12", &out, &err) == 0);
	CHECK(out.n == 0);
}

TEST(select_labels_in_snapshot_order)
{
	struct clbsd_err err;
	struct strv out = STRV_INIT;
	/* Asked newest first, and one twice: sent oldest first, once. */
	CHECK(storage_snaps_select("daily-2,daily-1,daily-2", have, NHAVE, "export-ab12", &out,
				   &err) == 0);
	autofree char *s = joined(&out);
	CHECK(strcmp(s, "daily-1,daily-2") == 0);
	strv_release(&out);
	/* The export's own label travels anyway: asking for it adds nothing. */
	CHECK(storage_snaps_select("export-ab12", have, NHAVE, "export-ab12", &out, &err) == 0);
	CHECK(out.n == 0);
}

TEST(select_unknown_label_refused)
{
	struct clbsd_err err;
	struct strv out = STRV_INIT;
	CHECK(storage_snaps_select("daily-1,nope", have, NHAVE, "x", &out, &err) < 0);
	CHECK(err.kind == CLBSD_E_NOTFOUND);
	CHECK(strstr(err.msg, "nope") != NULL);
	CHECK(out.n == 0);
	CHECK(storage_snaps_select("bad/label", have, NHAVE, "x", &out, &err) < 0);
	CHECK(err.kind == CLBSD_E_INVALID);
	CHECK(storage_snaps_select("", have, NHAVE, "x", &out, &err) < 0);
}

TEST(chain_follows_the_dataset)
{
	/* One dataset's snapshots in the order zfs took them. */
	char *names[] = {"a", "b", "c", "lab", "d", NULL};
	char *chosen[] = {"c", "a", "d", NULL};
	struct strv out = STRV_INIT;
	storage_snaps_chain(names, 5, chosen, "lab", &out);
	autofree char *s = joined(&out);
	/* Oldest first; d, taken after the export's snapshot, cannot precede it. */
	CHECK(strcmp(s, "a,c") == 0);
	strv_release(&out);
	/* A volume made after "a" has only the later ones. */
	char *vol[] = {"c", "lab", NULL};
	storage_snaps_chain(vol, 2, chosen, "lab", &out);
	autofree char *v = joined(&out);
	CHECK(strcmp(v, "c") == 0);
	strv_release(&out);
	storage_snaps_chain(names, 5, NULL, "lab", &out);
	CHECK(out.n == 0);
}

TEST_MAIN_BEGIN("snap_pick")
RUN(spec_syntax);
RUN(select_all_keeps_order_and_drops_own_label);
RUN(select_labels_in_snapshot_order);
RUN(select_unknown_label_refused);
RUN(chain_follows_the_dataset);
TEST_MAIN_END
