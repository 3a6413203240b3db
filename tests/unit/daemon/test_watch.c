/*
 * The configuration watch on a real temporary directory and a real
 * event_base: what an operator and an editor do to the files, and how many
 * reload triggers that gives. The unit test rule links only libclbsd.a, so
 * the watch is compiled in here; the poll interval is shortened so the
 * "directory appears later" case does not wait 2 s.
 */
#define WATCH_POLL_MS 200
#include "../../../src/daemon/watch.c"

#include "test.h"

#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

struct fix {
	char dir[64];
	char *main_file, *confd;
	struct event_base *base;
	struct conf_watch *w;
	int calls;
};

static void on_changed(void *ctx)
{
	((struct fix *)ctx)->calls++;
}

static char *path_in(const struct fix *f, const char *rel)
{
	return xasprintf("%s/%s", f->dir, rel);
}

/* A temporary directory; `etc` and `confd` say which of etc/ and etc/conf.d/ exist. */
static void fix_init(struct fix *f, bool etc, bool confd)
{
	memset(f, 0, sizeof(*f));
	strcpy(f->dir, "/tmp/clbsd-test-watch.XXXXXX");
	if (!mkdtemp(f->dir))
		abort();
	f->main_file = path_in(f, "etc/clbsd.conf");
	f->confd = path_in(f, "etc/conf.d");
	if (etc || confd) {
		autofree char *e = path_in(f, "etc");
		mkdir(e, 0755);
	}
	if (confd)
		mkdir(f->confd, 0755);
	f->base = event_base_new();
}

static int fix_watch(struct fix *f)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	f->w = conf_watch_new(f->base, f->main_file, f->confd, on_changed, f, &err);
	if (!f->w)
		printf("# conf_watch_new: %s\n", err.msg);
	return f->w ? 0 : -1;
}

static void fix_release(struct fix *f)
{
	conf_watch_free(f->w);
	event_base_free(f->base);
	struct clbsd_err err;
	fs_rm_rf(f->dir, &err);
	free(f->main_file);
	free(f->confd);
}

/* Run the loop for `ms` milliseconds. */
static void run_ms(struct fix *f, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	event_base_loopexit(f->base, &tv);
	event_base_dispatch(f->base);
}

/*
 * Run until at least `want` calls were made (at most `max_ms`), then long
 * enough for a second, unwanted call to show. Returns the calls seen.
 */
static int settle(struct fix *f, int want, int max_ms)
{
	for (int t = 0; t < max_ms && f->calls < want; t += 20)
		run_ms(f, 20);
	run_ms(f, 2 * WATCH_DEBOUNCE_MS);
	return f->calls;
}

/* Write a file in place: open with O_TRUNC, write, close. */
static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		abort();
	if (write_all(fd, text, strlen(text)) < 0)
		abort();
	close(fd);
}

static void write_rel(const struct fix *f, const char *rel, const char *text)
{
	autofree char *p = path_in(f, rel);
	write_file(p, text);
}

TEST(write_in_place)
{
	struct fix f;
	fix_init(&f, true, true);
	write_file(f.main_file, "; empty\n");
	CHECK_INT(fix_watch(&f), 0);
	run_ms(&f, 50);
	CHECK_INT(f.calls, 0); /* no call at creation */
	write_file(f.main_file, "(container web :image \"forge\")\n");
	CHECK_INT(settle(&f, 1, 2000), 1);
	/* A mode change counts too (the daemon may lose read access). */
	chmod(f.main_file, 0600);
	CHECK_INT(settle(&f, 2, 2000), 2);
	fix_release(&f);
}

TEST(rename_over_save)
{
	struct fix f;
	fix_init(&f, true, false);
	write_file(f.main_file, "; v1\n");
	CHECK_INT(fix_watch(&f), 0);
	/* The editor's temporary file alone triggers nothing... */
	write_rel(&f, "etc/clbsd.conf.tmp", "; v2\n");
	CHECK_INT(settle(&f, 1, 300), 0);
	/* ...its rename over the main file does, once. */
	autofree char *tmp = path_in(&f, "etc/clbsd.conf.tmp");
	CHECK_INT(rename(tmp, f.main_file), 0);
	CHECK_INT(settle(&f, 1, 2000), 1);
	/* The watch is on the directory, so the new inode is watched too. */
	write_file(f.main_file, "; v3\n");
	CHECK_INT(settle(&f, 2, 2000), 2);
	/* Removing the main file is a change (it reads as empty). */
	unlink(f.main_file);
	CHECK_INT(settle(&f, 3, 2000), 3);
	fix_release(&f);
}

TEST(confd_add_remove)
{
	struct fix f;
	fix_init(&f, true, true);
	CHECK_INT(fix_watch(&f), 0);
	write_rel(&f, "etc/conf.d/10-a.conf", "; a\n");
	CHECK_INT(settle(&f, 1, 2000), 1);
	autofree char *a = path_in(&f, "etc/conf.d/10-a.conf");
	unlink(a);
	CHECK_INT(settle(&f, 2, 2000), 2);
	/* An atomic write (temp file, rename) as fs_write_atomic() does: one call. */
	struct clbsd_err err;
	autofree char *live = path_in(&f, "etc/conf.d/90-live.conf");
	CHECK_INT(fs_write_atomic(live, "; live\n", 7, 0644, &err), 0);
	CHECK_INT(settle(&f, 3, 2000), 3);
	fix_release(&f);
}

TEST(confd_created_after_start)
{
	struct fix f;
	fix_init(&f, true, false);
	CHECK_INT(fix_watch(&f), 0);
	/* conf.d appears with a file written right away: seen. */
	mkdir(f.confd, 0755);
	write_rel(&f, "etc/conf.d/10-a.conf", "; a\n");
	CHECK(settle(&f, 1, 2000) >= 1);
	/* And it is watched from then on. */
	int n = f.calls;
	write_rel(&f, "etc/conf.d/20-b.conf", "; b\n");
	CHECK_INT(settle(&f, n + 1, 2000), n + 1);
	/* Removed, then created again: both seen, and watched again. */
	struct clbsd_err err;
	CHECK_INT(fs_rm_rf(f.confd, &err), 0);
	CHECK_INT(settle(&f, n + 2, 2000), n + 2);
	mkdir(f.confd, 0755);
	CHECK_INT(settle(&f, n + 3, 2000), n + 3);
	write_rel(&f, "etc/conf.d/30-c.conf", "; c\n");
	CHECK_INT(settle(&f, n + 4, 2000), n + 4);
	fix_release(&f);
}

TEST(confd_renamed_into_place)
{
	struct fix f;
	fix_init(&f, true, false);
	CHECK_INT(fix_watch(&f), 0);
	/* Prepared elsewhere and renamed in (a deploy tool's way). */
	autofree char *staged = path_in(&f, "etc/conf.d.new");
	mkdir(staged, 0755);
	write_rel(&f, "etc/conf.d.new/10-a.conf", "; a\n");
	CHECK_INT(settle(&f, 1, 300), 0);
	CHECK_INT(rename(staged, f.confd), 0);
	CHECK_INT(settle(&f, 1, 2000), 1);
	write_rel(&f, "etc/conf.d/10-a.conf", "; a2\n");
	CHECK_INT(settle(&f, 2, 2000), 2);
	/* Renamed away: a change; writes in the old directory are not. */
	autofree char *old = path_in(&f, "etc/conf.d.old");
	CHECK_INT(rename(f.confd, old), 0);
	CHECK_INT(settle(&f, 3, 2000), 3);
	write_rel(&f, "etc/conf.d.old/10-a.conf", "; gone\n");
	CHECK_INT(settle(&f, 4, 300), 3);
	fix_release(&f);
}

TEST(burst_is_coalesced)
{
	struct fix f;
	fix_init(&f, true, true);
	CHECK_INT(fix_watch(&f), 0);
	/* 20 writes at once. */
	for (int i = 0; i < 20; i++)
		write_file(f.main_file, "; burst\n");
	int n = settle(&f, 1, 2000);
	if (n < 1 || n > 3)
		FAILF("20 writes at once gave %d calls, expected 1 to 3", n);
	/* 20 writes 20 ms apart, with the loop running in between. */
	f.calls = 0;
	for (int i = 0; i < 20; i++) {
		write_rel(&f, "etc/conf.d/10-a.conf", "; spaced\n");
		run_ms(&f, 20);
	}
	n = settle(&f, 1, 2000);
	if (n < 1 || n > 3)
		FAILF("20 writes 20 ms apart gave %d calls, expected 1 to 3", n);
	fix_release(&f);
}

TEST(editor_temp_files_are_ignored)
{
	struct fix f;
	fix_init(&f, true, true);
	write_file(f.main_file, "; v1\n");
	CHECK_INT(fix_watch(&f), 0);
	static const char *const names[] = {
		"etc/conf.d/.#10-a.conf",
		"etc/conf.d/10-a.conf~",
		"etc/conf.d/10-a.conf.swp",
		"etc/conf.d/.10-a.conf.swp",
		"etc/conf.d/4913",
		"etc/conf.d/#10-a.conf#",
		"etc/conf.d/README",
		"etc/conf.d/10-a.conf.tmp.0123",
		"etc/4913",
		"etc/clbsd.conf~",
		"etc/.clbsd.conf.swp",
		"etc/.#clbsd.conf",
		"etc/other.conf",
	};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		write_rel(&f, names[i], "; temp\n");
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		autofree char *p = path_in(&f, names[i]);
		unlink(p);
	}
	CHECK_INT(settle(&f, 1, 400), 0);
	fix_release(&f);
}

TEST(main_directory_created_later)
{
	struct fix f;
	fix_init(&f, false, false);
	CHECK_INT(fix_watch(&f), 0);
	CHECK(f.w->polling);
	autofree char *etc = path_in(&f, "etc");
	mkdir(etc, 0755);
	write_file(f.main_file, "; first\n");
	/* Found by the poll, a change since the file may already be there. */
	CHECK(settle(&f, 1, 5 * WATCH_POLL_MS) >= 1);
	CHECK(!f.w->polling);
	int n = f.calls;
	write_file(f.main_file, "; second\n");
	CHECK_INT(settle(&f, n + 1, 2000), n + 1);
	/* conf.d next to it is reported by the same watch. */
	mkdir(f.confd, 0755);
	CHECK_INT(settle(&f, n + 2, 2000), n + 2);
	write_rel(&f, "etc/conf.d/10-a.conf", "; a\n");
	CHECK_INT(settle(&f, n + 3, 2000), n + 3);
	/* The whole directory removed: a change, and polled again. */
	struct clbsd_err err;
	CHECK_INT(fs_rm_rf(etc, &err), 0);
	CHECK(settle(&f, n + 4, 2000) >= n + 4);
	CHECK(f.w->polling);
	fix_release(&f);
}

TEST(free_with_a_pending_call)
{
	struct fix f;
	fix_init(&f, true, true);
	CHECK_INT(fix_watch(&f), 0);
	write_file(f.main_file, "; x\n");
	run_ms(&f, 20); /* read the event, arm the debounce timer */
	conf_watch_free(f.w);
	f.w = NULL;
	run_ms(&f, 3 * WATCH_DEBOUNCE_MS);
	CHECK_INT(f.calls, 0);
	fix_release(&f);
}

TEST(main_file_only_and_confd_only)
{
	struct fix f;
	fix_init(&f, true, true);
	struct clbsd_err err;
	clbsd_err_init(&err);
	f.w = conf_watch_new(f.base, NULL, f.confd, on_changed, &f, &err);
	CHECK(f.w);
	write_file(f.main_file, "; not watched\n");
	CHECK_INT(settle(&f, 1, 300), 0);
	write_rel(&f, "etc/conf.d/10-a.conf", "; a\n");
	CHECK_INT(settle(&f, 1, 2000), 1);
	conf_watch_free(f.w);
	f.w = conf_watch_new(f.base, f.main_file, NULL, on_changed, &f, &err);
	CHECK(f.w);
	write_rel(&f, "etc/conf.d/10-a.conf", "; not watched\n");
	CHECK_INT(settle(&f, 2, 300), 1);
	write_file(f.main_file, "; b\n");
	CHECK_INT(settle(&f, 2, 2000), 2);
	CHECK(!conf_watch_new(f.base, NULL, NULL, on_changed, &f, &err));
	CHECK(strstr(err.msg, "neither a main file nor conf.d"));
	fix_release(&f);
}

TEST(split_path)
{
	static const char *const cases[][3] = {
		{"/etc/clbsd/clbsd.conf", "/etc/clbsd", "clbsd.conf"},
		{"/etc/clbsd/conf.d/", "/etc/clbsd", "conf.d"},
		{"/clbsd.conf", "/", "clbsd.conf"},
		{"clbsd.conf", ".", "clbsd.conf"},
		{"etc//conf.d", "etc", "conf.d"},
		{"//x", "/", "x"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *d, *b;
		split_path(cases[i][0], &d, &b);
		int ok = strcmp(d, cases[i][1]) == 0 && strcmp(b, cases[i][2]) == 0;
		if (!ok)
			printf("# %s -> %s, %s\n", cases[i][0], d, b);
		free(d);
		free(b);
		CHECK(ok);
	}
}

TEST_MAIN_BEGIN("daemon.watch")
RUN(write_in_place);
RUN(rename_over_save);
RUN(confd_add_remove);
RUN(confd_created_after_start);
RUN(confd_renamed_into_place);
RUN(burst_is_coalesced);
RUN(editor_temp_files_are_ignored);
RUN(main_directory_created_later);
RUN(free_with_a_pending_call);
RUN(main_file_only_and_confd_only);
RUN(split_path);
TEST_MAIN_END
