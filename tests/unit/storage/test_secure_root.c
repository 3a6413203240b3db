/*
 * storage_secure_root(): what another local user can reach below <root>
 * after it ran, on a tree an older version left with loose modes, and that
 * it follows no symlink and changes nothing the second time.
 */
#include "storage/storage.h"
#include "test.h"
#include "util/util.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[64];

static unsigned mode_of(const char *rel)
{
	autofree char *p = xasprintf("%s/%s", root, rel);
	struct stat st;
	return lstat(p, &st) == 0 ? st.st_mode & 07777 : 01;
}

static void mk(const char *rel, mode_t mode, bool dir)
{
	autofree char *p = xasprintf("%s/%s", root, rel);
	if (dir) {
		if (mkdir(p, mode) < 0)
			abort();
	} else {
		int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, mode);
		if (fd < 0)
			abort();
		close(fd);
	}
	if (chmod(p, mode) < 0)
		abort();
}

TEST(tightens_an_old_tree)
{
	struct clbsd_err err;
	snprintf(root, sizeof(root), "/tmp/clbsd-secroot-XXXXXX");
	if (!mkdtemp(root))
		abort();
	chmod(root, 0755);
	mk("volumes", 0755, true);
	mk("volumes/web", 0755, true);
	mk("volumes/web/data", 0755, true);
	mk("containers", 0755, true);
	mk("images", 0755, true);
	mk("ingress", 0755, true);
	mk("ingress/tmp", 0755, true);
	mk("events.jsonl", 0644, false);
	mk("storage.json", 0600, false);
	/* A symlink to a file outside: neither it nor its target may change. */
	autofree char *outside = xasprintf("%s.outside", root);
	int fd = open(outside, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	CHECK(fd >= 0);
	close(fd);
	chmod(outside, 0644);
	autofree char *link = xasprintf("%s/link", root);
	CHECK_INT(symlink(outside, link), 0);

	int n = storage_secure_root(root, &err);
	if (n < 0)
		FAILF("%s", err.msg);
	CHECK_INT(mode_of(""), 0711);
	CHECK_INT(mode_of("volumes"), 0700);
	CHECK_INT(mode_of("volumes/web"), 0700);
	CHECK_INT(mode_of("volumes/web/data"), 0755); /* what the container sees */
	CHECK_INT(mode_of("containers"), 0700);
	CHECK_INT(mode_of("images"), 0700);
	CHECK_INT(mode_of("ingress"), 0711);
	CHECK_INT(mode_of("ingress/tmp"), 0755);
	CHECK_INT(mode_of("events.jsonl"), 0640);
	CHECK_INT(mode_of("storage.json"), 0600);
	struct stat st;
	CHECK_INT(stat(outside, &st), 0);
	CHECK_INT(st.st_mode & 07777, 0644);
	CHECK_INT(n, 7);
	/* Idempotent: nothing left to change. */
	CHECK_INT(storage_secure_root(root, &err), 0);

	unlink(outside);
	fs_rm_rf(root, &err);
}

TEST(missing_root_is_an_error)
{
	struct clbsd_err err;
	CHECK(storage_secure_root("/nonexistent/clbsd-root", &err) < 0);
	CHECK(strstr(err.msg, "/nonexistent/clbsd-root") != NULL);
}

TEST_MAIN_BEGIN("storage_secure_root")
RUN(tightens_an_old_tree);
RUN(missing_root_is_an_error);
TEST_MAIN_END
