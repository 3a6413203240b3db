/*
 * The audit log's writer (src/daemon/audit_log.c) on a real temporary
 * directory: rotation keeps order and the number of files, numbering goes on
 * after a reopen, and records that find the ring full or the disk failing
 * are counted in an "audit.lost" record, never dropped silently. The ring
 * is made small (the unit test rule links only libclbsd.a, so the writer is
 * compiled in here).
 */
#define AUDIT_RING 8
#include "../../../src/daemon/audit_log.c"

#include "test.h"

#include <dirent.h>
#include <sys/stat.h>

static char dir[64];

static void fresh_dir(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test_audit_log.XXXXXX");
	if (!mkdtemp(dir))
		abort();
}

static void append_n(struct audit_log *log, int n, const char *what)
{
	for (int i = 0; i < n; i++) {
		json_t *f = json_pack("{s:s,s:i,s:s}", "event", what, "i", i, "pad",
				      "0123456789012345678901234567890123456789");
		audit_log_append(log, 0, f);
		json_decref(f);
	}
}

/* Every record of the files, oldest first, into recs (an array); file count. */
static int read_all(int keep, json_t *recs)
{
	int files = 0;
	for (int i = keep + 1; i >= 0; i--) {
		autofree char *base = xasprintf("%s/audit.log", dir);
		autofree char *p = audit_file_path(base, i);
		FILE *f = fopen(p, "r");
		if (!f)
			continue;
		files++;
		char line[4096];
		while (fgets(line, sizeof(line), f))
			json_array_append_new(recs, json_loads(line, 0, NULL));
		fclose(f);
	}
	return files;
}

static bool seq_contiguous(const json_t *recs)
{
	for (size_t i = 1; i < json_array_size(recs); i++)
		if (json_int(json_array_get(recs, i), "seq", 0) !=
		    json_int(json_array_get(recs, i - 1), "seq", 0) + 1)
			return false;
	return json_array_size(recs) > 0;
}

TEST(rotates_in_order)
{
	fresh_dir();
	struct clbsd_err err;
	struct audit_log *log;
	const struct audit_settings set = {1024, 3, true};
	CHECK_INT(audit_log_open(dir, &set, &log, &err), 0);
	/* ~120 bytes a record: 60 of them fill 7 files of 1K; 4 are kept. */
	for (int k = 0; k < 10; k++) {
		append_n(log, 6, "r");
		audit_log_flush(log);
	}
	audit_log_close(log);
	json_t *recs = json_array();
	int files = read_all(3, recs);
	CHECK_INT(files, 4);
	CHECK(seq_contiguous(recs));
	/* The newest survive: the last one written is seq 60. */
	CHECK_INT(json_int(json_array_get(recs, json_array_size(recs) - 1), "seq", 0), 60);
	autofree char *p = xasprintf("%s/audit.log.3", dir);
	struct stat st;
	CHECK(stat(p, &st) == 0 && st.st_size <= 1024 && (st.st_mode & 0777) == 0600);
	autofree char *gone = xasprintf("%s/audit.log.4", dir);
	CHECK(stat(gone, &st) < 0);
	json_decref(recs);
	/* Reopened, numbering goes on. */
	CHECK_INT(audit_log_open(dir, &set, &log, &err), 0);
	append_n(log, 1, "again");
	audit_log_close(log);
	recs = json_array();
	read_all(3, recs);
	CHECK(seq_contiguous(recs));
	CHECK_INT(json_int(json_array_get(recs, json_array_size(recs) - 1), "seq", 0), 61);
	json_decref(recs);
	autofree char *rm = xasprintf("rm -rf '%s'", dir);
	CHECK_INT(system(rm), 0);
}

TEST(full_ring_is_counted)
{
	fresh_dir();
	struct clbsd_err err;
	struct audit_log *log;
	const struct audit_settings set = {1 << 20, 2, false};
	CHECK_INT(audit_log_open(dir, &set, &log, &err), 0);
	/* Stop the writer, as a disk that does not answer would. */
	pthread_mutex_lock(&log->mu);
	log->stop = true;
	pthread_cond_signal(&log->wake);
	pthread_mutex_unlock(&log->mu);
	pthread_join(log->thread, NULL);
	append_n(log, AUDIT_RING + 3, "r");
	CHECK_INT(log->dropped, 3);
	/* The ring keeps what was queued for readers; seq 1 .. 8. */
	CHECK_INT(audit_log_last_seq(log), AUDIT_RING);
	log->stop = false;
	CHECK_INT(pthread_create(&log->thread, NULL, writer, log), 0);
	audit_log_flush(log);
	audit_log_close(log);
	json_t *recs = json_array();
	read_all(2, recs);
	CHECK_INT(json_array_size(recs), AUDIT_RING + 1);
	CHECK(seq_contiguous(recs));
	json_t *last = json_array_get(recs, AUDIT_RING);
	CHECK_STR(json_str(last, "event"), "audit.lost");
	CHECK_INT(json_int(last, "lost", 0), 3);
	json_decref(recs);
	autofree char *rm = xasprintf("rm -rf '%s'", dir);
	CHECK_INT(system(rm), 0);
}

TEST(failed_writes_are_counted)
{
	fresh_dir();
	struct clbsd_err err;
	struct audit_log *log;
	/* Every record rotates; with the directory gone, none can be written. */
	const struct audit_settings set = {4096, 1, false};
	CHECK_INT(audit_log_open(dir, &set, &log, &err), 0);
	append_n(log, 1, "first");
	audit_log_flush(log);
	autofree char *away = xasprintf("%s.away", dir);
	CHECK_INT(rename(dir, away), 0);
	const struct audit_settings tiny = {1, 1, false};
	audit_log_configure(log, &tiny);
	append_n(log, 2, "lost");
	audit_log_flush(log);
	CHECK_INT(rename(away, dir), 0);
	audit_log_configure(log, &set);
	append_n(log, 1, "after");
	audit_log_flush(log);
	audit_log_close(log);
	json_t *recs = json_array();
	read_all(1, recs);
	/* first (rotated away), then the lost record and "after". */
	bool found = false;
	size_t i;
	json_t *r;
	json_array_foreach(recs, i, r) if (strcmp(json_str(r, "event"), "audit.lost") == 0 &&
					   json_int(r, "lost", 0) == 2 &&
					   strstr(json_str(r, "reason"), "audit.log")) found = true;
	CHECK(found);
	CHECK_STR(json_str(json_array_get(recs, json_array_size(recs) - 1), "event"), "after");
	json_decref(recs);
	autofree char *rm = xasprintf("rm -rf '%s'", dir);
	CHECK_INT(system(rm), 0);
}

TEST_MAIN_BEGIN("daemon.audit_log")
RUN(rotates_in_order);
RUN(full_ring_is_counted);
RUN(failed_writes_are_counted);
TEST_MAIN_END
