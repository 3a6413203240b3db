/*
 * fs_open_in_root()/fs_read_in_root(): the daemon reads files a container or
 * an image controls (/etc/passwd, /etc/group) without leaving the tree and
 * without opening what is not a regular file. Each case plants what a hostile
 * image would plant and checks that nothing outside the tree was read.
 */
#include "test.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static char top[64];  /* the test's scratch dir: holds the "host" canary */
static char root[96]; /* the tree a container controls */

#define CANARY "canary:x:4242:4242::/:/bin/sh\n"

static void put(const char *rel, const char *text)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	FILE *f = fopen(p, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void link_at(const char *target, const char *rel)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	unlink(p);
	rmdir(p);
	if (symlink(target, p) < 0)
		printf("# symlink %s: %s\n", p, strerror(errno));
}

static int rd(const char *rel, size_t max, char **out, struct clbsd_err *err)
{
	*out = NULL;
	return fs_read_in_rootdir(root, rel, max, out, NULL, err);
}

TEST(reads_a_regular_file)
{
	struct clbsd_err err;
	put("etc/passwd", "root:x:0:0::/root:/bin/sh\n");
	autofree char *t = NULL;
	CHECK_INT(rd("/etc/passwd", 1 << 20, &t, &err), 0);
	CHECK_STR(t, "root:x:0:0::/root:/bin/sh\n");
	/* A symlink that stays inside the tree is followed, as in the container. */
	put("etc/passwd.real", "app:x:1000:1000::/:/bin/sh\n");
	link_at("passwd.real", "etc/passwd");
	autofree char *t2 = NULL;
	CHECK_INT(rd("etc/passwd", 1 << 20, &t2, &err), 0);
	CHECK_STR(t2, "app:x:1000:1000::/:/bin/sh\n");
}

TEST(absolute_symlink_stays_inside)
{
	struct clbsd_err err;
	char target[128];
	snprintf(target, sizeof(target), "%s/canary", top);
	link_at(target, "etc/passwd");
	autofree char *t = NULL;
	int r = rd("etc/passwd", 1 << 20, &t, &err);
	CHECK(r < 0);
	CHECK_INT(err.kind, CLBSD_E_NOTFOUND);
	CHECK(t == NULL);
	/* The same target planted inside the tree is what is read. */
	char inside[160];
	snprintf(inside, sizeof(inside), "%s%s", root, top);
	struct clbsd_err e2;
	CHECK_INT(fs_mkdir_p(inside, 0755, &e2), 0);
	snprintf(inside, sizeof(inside), "%s/canary", top + 1);
	put(inside, "inside:x:1:1::/:/bin/sh\n");
	autofree char *t2 = NULL;
	CHECK_INT(rd("etc/passwd", 1 << 20, &t2, &err), 0);
	CHECK_STR(t2, "inside:x:1:1::/:/bin/sh\n");
	snprintf(inside, sizeof(inside), "%s/tmp", root); /* top is /tmp/... */
	fs_rm_rf(inside, &e2);
}

TEST(relative_dotdot_chains_stay_inside)
{
	struct clbsd_err err;
	link_at("../../../../../../../../canary", "etc/passwd");
	autofree char *t = NULL;
	CHECK(rd("etc/passwd", 1 << 20, &t, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_NOTFOUND);
	/* ".." in the asked path itself stops at the root too. */
	autofree char *t2 = NULL;
	CHECK(rd("../canary", 1 << 20, &t2, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_NOTFOUND);
	autofree char *t3 = NULL;
	CHECK(rd("etc/../../../canary", 1 << 20, &t3, &err) < 0);
	/* A directory on the way that is a symlink out of the tree. */
	char hostetc[128];
	snprintf(hostetc, sizeof(hostetc), "%s/hostetc", top);
	link_at(hostetc, "etc2");
	autofree char *t4 = NULL;
	CHECK(rd("etc2/passwd", 1 << 20, &t4, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_NOTFOUND);
	link_at("../../hostetc", "etc3");
	autofree char *t5 = NULL;
	CHECK(rd("etc3/passwd", 1 << 20, &t5, &err) < 0);
	CHECK(t5 == NULL);
}

TEST(fifo_is_refused_without_waiting)
{
	struct clbsd_err err;
	char p[256];
	snprintf(p, sizeof(p), "%s/etc/passwd", root);
	unlink(p);
	CHECK_INT(mkfifo(p, 0644), 0);
	alarm(5); /* a blocking open would hang here: fail the binary instead */
	autofree char *t = NULL;
	int r = rd("etc/passwd", 1 << 20, &t, &err);
	alarm(0);
	CHECK(r < 0);
	CHECK_INT(err.kind, CLBSD_E_INVALID);
	CHECK(strstr(err.msg, "FIFO") != NULL);
	/* The same through a symlink. */
	link_at("passwd", "etc/group");
	alarm(5);
	autofree char *t2 = NULL;
	r = rd("etc/group", 1 << 20, &t2, &err);
	alarm(0);
	CHECK(r < 0);
	CHECK(strstr(err.msg, "FIFO") != NULL);
	unlink(p);
	snprintf(p, sizeof(p), "%s/etc/group", root);
	unlink(p);
}

TEST(device_node_is_never_opened)
{
	struct clbsd_err err;
	char p[256];
	snprintf(p, sizeof(p), "%s/etc/passwd", root);
	unlink(p);
	/* /dev/full: opening it would succeed; reading gives zeros. */
	if (mknod(p, S_IFCHR | 0644, makedev(1, 7)) < 0) {
		printf("# skip device node: mknod: %s\n", strerror(errno));
		return;
	}
	autofree char *t = NULL;
	CHECK(rd("etc/passwd", 1 << 20, &t, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_INVALID);
	CHECK(strstr(err.msg, "character device") != NULL);
	unlink(p);
}

TEST(directory_is_refused)
{
	struct clbsd_err err;
	char p[256];
	snprintf(p, sizeof(p), "%s/etc/passwd", root);
	unlink(p);
	CHECK_INT(mkdir(p, 0755), 0);
	autofree char *t = NULL;
	CHECK(rd("etc/passwd", 1 << 20, &t, &err) < 0);
	CHECK(strstr(err.msg, "directory") != NULL);
	rmdir(p);
}

TEST(oversize_is_refused)
{
	struct clbsd_err err;
	char p[256];
	snprintf(p, sizeof(p), "%s/etc/passwd", root);
	unlink(p);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK_INT(ftruncate(fd, (2 << 20)), 0);
	close(fd);
	autofree char *t = NULL;
	CHECK(rd("etc/passwd", 1 << 20, &t, &err) < 0);
	CHECK_INT(-err.code, -EFBIG);
	/* Exactly at the cap is fine. */
	put("etc/passwd", "12345");
	autofree char *t2 = NULL;
	CHECK_INT(rd("etc/passwd", 5, &t2, &err), 0);
	autofree char *t3 = NULL;
	CHECK(rd("etc/passwd", 4, &t3, &err) < 0);
}

TEST(magic_links_are_refused)
{
	struct clbsd_err err;
	/* /proc/self/root is a magic link: it must not be crossed. */
	autoclose int self = open("/proc/self", O_PATH | O_DIRECTORY | O_CLOEXEC);
	CHECK(self >= 0);
	autoclose int fd = fs_open_in_root(self, "root/etc/hostname", 1 << 20, &err);
	CHECK(fd < 0);
	CHECK_INT(err.kind, CLBSD_E_INVALID);
	/* A planted link to /proc/self/root/... resolves inside the tree. */
	link_at("/proc/self/root/canary", "etc/passwd");
	autofree char *t = NULL;
	CHECK(rd("etc/passwd", 1 << 20, &t, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_NOTFOUND);
}

int main(void)
{
	test_prog = "util.fs_inroot";
	snprintf(top, sizeof(top), "/tmp/clbsd-inroot-XXXXXX");
	if (!mkdtemp(top))
		return 1;
	snprintf(root, sizeof(root), "%s/root", top);
	struct clbsd_err err;
	char p[160];
	snprintf(p, sizeof(p), "%s/etc", root);
	fs_mkdir_p(p, 0755, &err);
	snprintf(p, sizeof(p), "%s/hostetc", top);
	fs_mkdir_p(p, 0755, &err);
	snprintf(p, sizeof(p), "%s/canary", top);
	fs_write_atomic(p, CANARY, strlen(CANARY), 0644, &err);
	snprintf(p, sizeof(p), "%s/hostetc/passwd", top);
	fs_write_atomic(p, CANARY, strlen(CANARY), 0644, &err);
	RUN(reads_a_regular_file);
	RUN(absolute_symlink_stays_inside);
	RUN(relative_dotdot_chains_stay_inside);
	RUN(fifo_is_refused_without_waiting);
	RUN(device_node_is_never_opened);
	RUN(directory_is_refused);
	RUN(oversize_is_refused);
	RUN(magic_links_are_refused);
	fs_rm_rf(top, &err);
	return test_failed_cases ? 1 : 0;
}
