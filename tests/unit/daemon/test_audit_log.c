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

/* A record far bigger than the old 64 KiB tail read: written by hand. */
static void write_file(const char *name, const char *text)
{
	autofree char *p = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	if (!f)
		abort();
	fputs(text, f);
	fclose(f);
}

TEST(seq_goes_on_after_a_huge_record)
{
	fresh_dir();
	write_file("audit.log.1",
		   "{\"time\":\"2026-12-07T17:00:00.000Z\",\"seq\":5,\"event\":\"x\"}\n");
	/* seq 6 is normal, seq 7 is 300 KiB long (and half a line after it). */
	struct buf b = BUF_INIT;
	buf_adds(&b, "{\"time\":\"2026-12-07T17:00:01.000Z\",\"seq\":6,\"event\":\"x\"}\n");
	buf_adds(&b, "{\"time\":\"2026-12-07T17:00:02.000Z\",\"seq\":7,\"argv\":\"");
	for (int i = 0; i < 300 * 1024; i++)
		buf_adds(&b, "a");
	buf_adds(&b, "\"}\n{\"time\":\"2026-12-07T17:00:0");
	autofree char *text = buf_detach(&b, NULL);
	write_file("audit.log", text);
	autofree char *p = xasprintf("%s/audit.log", dir);
	CHECK_INT(audit_last_seq_of(p), 7);
	struct clbsd_err err;
	struct audit_log *log;
	const struct audit_settings set = {10 << 20, 3, false};
	CHECK_INT(audit_log_open(dir, &set, &log, &err), 0);
	CHECK_INT(audit_log_last_seq(log), 7);
	append_n(log, 1, "next");
	audit_log_close(log);
	CHECK_INT(audit_last_seq_of(p), 8);
	autofree char *rm = xasprintf("rm -rf '%s'", dir);
	CHECK_INT(system(rm), 0);
}

TEST(records_are_bounded)
{
	/* 256 strings of 1 KiB of control bytes (6 bytes each escaped), long keys. */
	json_t *argv = json_array();
	char s[1025];
	memset(s, 0x1b, 1024);
	s[1024] = '\0';
	for (int i = 0; i < 300; i++)
		json_array_append_new(argv, json_string(s));
	json_t *f = json_pack("{s:s,s:o}", "event", "api", "argv", argv);
	json_t *obj = json_object();
	for (int i = 0; i < 1000; i++) {
		char k[300];
		memset(k, 'k', sizeof(k) - 12);
		snprintf(k + sizeof(k) - 12, 12, "%d", i);
		json_object_set_new(obj, k, json_string(s));
	}
	json_object_set_new(f, "more", obj);
	for (int i = 0; i < 100; i++) {
		char k[32];
		snprintf(k, sizeof(k), "top%d", i);
		json_object_set_new(f, k, json_string(s));
	}
	autofree char *line = audit_rec_line(time_now_ns(), 42, f);
	CHECK(strlen(line) <= AUDIT_REC_MAX);
	json_t *j = json_loads(line, 0, NULL);
	CHECK(j != NULL);
	CHECK_INT(json_int(j, "seq", 0), 42);
	CHECK_STR(json_str(j, "event"), "api");
	/* The cut shows: argv ends in the marker. */
	json_t *a = json_object_get(j, "argv");
	CHECK(json_array_size(a) > 0 && json_array_size(a) < 300);
	CHECK_STR(json_string_value(json_array_get(a, json_array_size(a) - 1)), "...");
	json_decref(j);
	json_decref(f);
}

TEST(lowering_files_removes_the_extra)
{
	fresh_dir();
	for (int i = 1; i <= 7; i++) {
		char name[32], rec[128];
		snprintf(name, sizeof(name), "audit.log.%d", i);
		snprintf(rec, sizeof(rec),
			 "{\"time\":\"2026-12-07T17:00:00.000Z\",\"seq\":%d,\"event\":\"x\"}\n",
			 10 - i);
		write_file(name, rec);
	}
	struct clbsd_err err;
	struct audit_log *log;
	/* Opened with :files 2: .3 to .7 go at once. */
	struct audit_settings set = {1 << 20, 2, false};
	CHECK_INT(audit_log_open(dir, &set, &log, &err), 0);
	CHECK_INT(audit_log_last_seq(log), 9);
	struct stat st;
	for (int i = 1; i <= 7; i++) {
		autofree char *p = xasprintf("%s/audit.log.%d", dir, i);
		CHECK(i <= 2 ? stat(p, &st) == 0 : stat(p, &st) < 0);
	}
	/* Lowered to 1 while running: at the next rotation .2 goes too. */
	append_n(log, 1, "a");
	audit_log_flush(log);
	set = (struct audit_settings){1, 1, false};
	audit_log_configure(log, &set);
	append_n(log, 1, "b");
	audit_log_flush(log);
	audit_log_close(log);
	autofree char *p1 = xasprintf("%s/audit.log.1", dir);
	autofree char *p2 = xasprintf("%s/audit.log.2", dir);
	CHECK(stat(p1, &st) == 0);
	CHECK(stat(p2, &st) < 0);
	autofree char *rm = xasprintf("rm -rf '%s'", dir);
	CHECK_INT(system(rm), 0);
}

TEST_MAIN_BEGIN("daemon.audit_log")
RUN(rotates_in_order);
RUN(full_ring_is_counted);
RUN(failed_writes_are_counted);
RUN(seq_goes_on_after_a_huge_record);
RUN(records_are_bounded);
RUN(lowering_files_removes_the_extra);
TEST_MAIN_END
