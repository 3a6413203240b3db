#include "core/backup_plan.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

#define DAY 86400

static const struct backup_keep gfs = {7, 4, 6};

/* Labels of daily backups at 03:00 UTC from t0, n days. */
static char **days(int64_t t0, int n)
{
	char **v = calloc((size_t)n, sizeof(char *));
	for (int i = 0; i < n; i++) {
		v[i] = malloc(BACKUP_LABEL_MAX);
		backup_label(t0 + (int64_t)i * DAY, v[i]);
	}
	return v;
}

/* 2026-01-01T03:00:00Z */
#define JAN1 ((int64_t)1767236400)

TEST(label_round_trip)
{
	char l[BACKUP_LABEL_MAX];
	backup_label(JAN1, l);
	CHECK_STR(l, "backup-20260101-030000");
	int64_t t;
	CHECK(backup_label_time(l, &t));
	CHECK(t == JAN1);
	CHECK(!backup_label_time("auto-20260101-030000", &t));
	CHECK(!backup_label_time("backup-20261301-030000", &t));
	CHECK(!backup_label_time("backup-20260101-0300", &t));
	CHECK(!backup_label_time("backup-20260101x030000", &t));
}

/*
 * A simulated year of daily backups, pruned after each one as the daemon
 * does: what is left is the last 7 days, the newest of the last 4 ISO
 * weeks and of the last 6 months, and the same as pruning once at the end.
 */
TEST(simulated_year)
{
	int n = 365;
	char **all = days(JAN1, n);
	const char **have = calloc((size_t)n, sizeof(char *));
	bool *keep = calloc((size_t)n, sizeof(bool));
	size_t m = 0;
	for (int d = 0; d < n; d++) {
		have[m++] = all[d];
		size_t drop = backup_prune(have, m, &gfs, keep);
		size_t k = 0;
		for (size_t i = 0; i < m; i++)
			if (keep[i])
				have[k++] = have[i];
		CHECK_INT((int)(m - k), (int)drop);
		m = k;
		/* Never more than the tiers' sum, and the newest is always there. */
		CHECK((int)m <= 7 + 4 + 6);
		CHECK_STR(have[m - 1], all[d]);
	}
	const char *want[] = {
		"backup-20260731-030000", "backup-20260831-030000", "backup-20260930-030000",
		"backup-20261031-030000", "backup-20261130-030000", "backup-20261213-030000",
		"backup-20261220-030000", "backup-20261225-030000", "backup-20261226-030000",
		"backup-20261227-030000", "backup-20261228-030000", "backup-20261229-030000",
		"backup-20261230-030000", "backup-20261231-030000",
	};
	CHECK_INT((int)m, 14);
	for (size_t i = 0; i < m && i < 14; i++)
		CHECK_STR(have[i], want[i]);
	/* Once at the end, from the whole year: the same. */
	bool *k1 = calloc((size_t)n, sizeof(bool));
	CHECK_INT((int)backup_prune((const char *const *)all, (size_t)n, &gfs, k1), n - 14);
	size_t j = 0;
	for (int i = 0; i < n; i++)
		if (k1[i])
			CHECK_STR(all[i], want[j++]);
	for (int i = 0; i < n; i++)
		free(all[i]);
	free(all);
	free(have);
	free(keep);
	free(k1);
}

/* Tiers count periods that have a backup: a gap of failed days keeps older ones. */
TEST(gap_keeps_older)
{
	char **a = days(JAN1, 3);
	char **b = days(JAN1 + 20 * DAY, 2);
	const char *l[] = {a[0], a[1], a[2], b[0], b[1]};
	bool keep[5];
	struct backup_keep k = {4, 0, 0};
	CHECK_INT((int)backup_prune(l, 5, &k, keep), 1);
	CHECK(!keep[0] && keep[1] && keep[2] && keep[3] && keep[4]);
	for (int i = 0; i < 3; i++)
		free(a[i]);
	for (int i = 0; i < 2; i++)
		free(b[i]);
	free(a);
	free(b);
}

/* Several a day: the newest of the day counts; others' labels are never touched. */
TEST(same_day_and_foreign)
{
	const char *l[] = {"backup-20260105-010000", "mine", "backup-20260105-020000",
			   "auto-20260101-000000", "backup-20260104-230000"};
	bool keep[5];
	struct backup_keep k = {1, 0, 0};
	CHECK_INT((int)backup_prune(l, 5, &k, keep), 2);
	CHECK(!keep[0] && keep[1] && keep[2] && keep[3] && !keep[4]);
	/* Nothing to keep by any tier: still the newest. */
	struct backup_keep none = {0, 0, 0};
	CHECK_INT((int)backup_prune(l, 5, &none, keep), 2);
	CHECK(keep[2]);
	CHECK_INT((int)backup_prune(NULL, 0, &gfs, keep), 0);
}

/* ISO weeks start on Monday: Sunday 2026-01-04 and Monday 2026-01-05 are two weeks. */
TEST(iso_weeks)
{
	const char *l[] = {"backup-20260103-120000", "backup-20260104-120000",
			   "backup-20260105-120000"};
	bool keep[3];
	struct backup_keep k = {0, 2, 0};
	CHECK_INT((int)backup_prune(l, 3, &k, keep), 1);
	CHECK(!keep[0] && keep[1] && keep[2]);
}

TEST(pick_at)
{
	const char *l[] = {"backup-20260103-120000", "x", "backup-20260101-120000",
			   "backup-20260102-120000"};
	int64_t t;
	CHECK(backup_label_time("backup-20260102-130000", &t));
	CHECK_INT((int)backup_pick(l, 4, t), 3);
	CHECK_INT((int)backup_pick(l, 4, INT64_MAX), 0);
	CHECK(backup_label_time("backup-20251231-000000", &t));
	CHECK_INT((int)backup_pick(l, 4, t), -1);
}

TEST(chains)
{
	/* full a, b<-a, c<-b, full d, e<-d */
	struct backup_entry e[] = {{"a", -1}, {"b", 0}, {"c", 1}, {"d", -1}, {"e", 3}};
	bool keep[5] = {false, false, true, false, false}, need[5];
	backup_chain_needed(e, 5, keep, need);
	CHECK(need[0] && need[1] && need[2] && !need[3] && !need[4]);
	size_t out[5];
	CHECK_INT((int)backup_chain(e, 5, 2, out), 3);
	CHECK(out[0] == 0 && out[1] == 1 && out[2] == 2);
	CHECK_INT((int)backup_chain(e, 5, 3, out), 1);
	/* A damaged index (a cycle) ends. */
	struct backup_entry cyc[] = {{"a", 1}, {"b", 0}};
	bool k2[2] = {true, false}, n2[2];
	backup_chain_needed(cyc, 2, k2, n2);
	CHECK(n2[0] && n2[1]);
	CHECK((int)backup_chain(cyc, 2, 0, out) <= 2);
}

TEST(dests)
{
	struct backup_dest d;
	char why[200];
	CHECK(backup_dest_parse("ssh://backup@nas:2222/run/clbsd/clbsd.sock", &d, why,
				sizeof(why)));
	CHECK(d.kind == BACKUP_DEST_SSH);
	CHECK_STR(d.host, "backup@nas");
	CHECK_STR(d.port, "2222");
	CHECK_STR(d.path, "/run/clbsd/clbsd.sock");
	backup_dest_release(&d);
	CHECK(backup_dest_parse("ssh://nas", &d, why, sizeof(why)));
	CHECK(d.path == NULL && d.port == NULL);
	backup_dest_release(&d);
	CHECK(backup_dest_parse("unix:/run/b.sock", &d, why, sizeof(why)));
	CHECK(d.kind == BACKUP_DEST_UNIX);
	backup_dest_release(&d);
	CHECK(backup_dest_parse("file:///srv/backup", &d, why, sizeof(why)));
	CHECK(d.kind == BACKUP_DEST_DIR);
	CHECK_STR(d.path, "/srv/backup");
	backup_dest_release(&d);
	CHECK(!backup_dest_parse("ssh://-oProxyCommand=x", &d, why, sizeof(why)));
	CHECK(!backup_dest_parse("ssh://nas:0", &d, why, sizeof(why)));
	CHECK(!backup_dest_parse("ssh://nas/../x", &d, why, sizeof(why)));
	CHECK(!backup_dest_parse("unix:rel.sock", &d, why, sizeof(why)));
	CHECK(!backup_dest_parse("backups", &d, why, sizeof(why)));
	CHECK(!backup_dest_parse("/", &d, why, sizeof(why)));
	CHECK(!backup_dest_parse("/srv/../etc", &d, why, sizeof(why)));
	CHECK(!backup_dest_parse("http://nas/", &d, why, sizeof(why)));
}

TEST_MAIN_BEGIN("backup_plan")
RUN(label_round_trip);
RUN(simulated_year);
RUN(gap_keeps_older);
RUN(same_day_and_foreign);
RUN(iso_weeks);
RUN(pick_at);
RUN(chains);
RUN(dests);
TEST_MAIN_END
