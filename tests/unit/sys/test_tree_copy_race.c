/*
 * sys_copy_tree() and fs_open_reg_at() on a tree someone else changes while
 * it is read (a running container's files during a snapshot or an export):
 * a FIFO or a device is never opened, a symlink is never followed, and an
 * entry that changes type between its stat and its open is left out, not
 * an error and never a hang. The race case swaps a regular file with a FIFO
 * and a directory with a symlink to the "host" as fast as a thread can,
 * while the tree is copied again and again. A tree 1500 directories deep is
 * refused by the copy (which recursed once per level, and crashed the
 * daemon) and removed with few fds (the removal held one per level).
 */
#include "test.h"
#include "sys/sys.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

static char top[64];  /* scratch: the "host" canary lives here */
static char tree[96]; /* what the container controls */
static char host[96]; /* a host directory with a canary */

#define CANARY "host-canary-5f1e\n"

static void path(char *out, size_t n, const char *rel)
{
	snprintf(out, n, "%s/%s", tree, rel);
}

static void put(const char *rel, const char *text)
{
	char p[256];
	path(p, sizeof(p), rel);
	FILE *f = fopen(p, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

/* Whether any file below dir holds the canary. */
static bool holds_canary(const char *dir)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "grep -rqsF '%s' '%s'", "host-canary-5f1e", dir);
	return system(cmd) == 0;
}

TEST(open_reg_at_opens_only_regular_files)
{
	char p[256];
	put("reg", "data\n");
	path(p, sizeof(p), "fifo");
	CHECK_INT(mkfifo(p, 0644), 0);
	path(p, sizeof(p), "null");
	bool dev = mknod(p, S_IFCHR | 0644, makedev(1, 3)) == 0;
	path(p, sizeof(p), "link");
	CHECK_INT(symlink("reg", p), 0);
	path(p, sizeof(p), "dir");
	CHECK_INT(mkdir(p, 0755), 0);
	autoclose int dfd = open(tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(dfd >= 0);

	struct stat st;
	int fd = fs_open_reg_at(dfd, "reg", &st);
	CHECK(fd >= 0);
	CHECK(S_ISREG(st.st_mode));
	CHECK_INT((int)st.st_size, 5);
	if (fd >= 0) {
		CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
		close(fd);
	}
	alarm(5); /* a blocking open of the FIFO would hang here: fail instead */
	CHECK_INT(fs_open_reg_at(dfd, "fifo", &st), -EINVAL);
	alarm(0);
	if (dev)
		CHECK_INT(fs_open_reg_at(dfd, "null", &st), -EINVAL);
	/* A symlink is refused even to a regular file: nothing is followed. */
	CHECK_INT(fs_open_reg_at(dfd, "link", &st), -EINVAL);
	CHECK_INT(fs_open_reg_at(dfd, "dir", &st), -EINVAL);
	CHECK_INT(fs_open_reg_at(dfd, "absent", &st), -ENOENT);
}

TEST(copy_keeps_nodes_and_links_as_they_are)
{
	char p[256], dst[128];
	put("f", "container data\n");
	path(p, sizeof(p), "pipe");
	CHECK_INT(mkfifo(p, 0600), 0);
	path(p, sizeof(p), "tohost");
	CHECK_INT(symlink(host, p), 0);
	snprintf(dst, sizeof(dst), "%s/copy1", top);
	struct clbsd_err err;
	alarm(5);
	CHECK_INT(sys_copy_tree(tree, dst, &err), 0);
	alarm(0);
	struct stat st;
	snprintf(p, sizeof(p), "%s/pipe", dst);
	CHECK(lstat(p, &st) == 0 && S_ISFIFO(st.st_mode));
	snprintf(p, sizeof(p), "%s/tohost", dst);
	CHECK(lstat(p, &st) == 0 && S_ISLNK(st.st_mode));
	CHECK(!holds_canary(dst));
	fs_rm_rf(dst, &err);
}

struct flipper {
	int dfd;
	atomic_bool stop;
	unsigned long flips;
};

static void *flip(void *arg)
{
	struct flipper *f = arg;
	while (!atomic_load(&f->stop)) {
		for (int i = 0; i < 8; i++) {
			char a[16], b[16];
			snprintf(a, sizeof(a), "r%d", i);
			snprintf(b, sizeof(b), "p%d", i);
			if (renameat2(f->dfd, a, f->dfd, b, RENAME_EXCHANGE) == 0)
				f->flips++;
			snprintf(a, sizeof(a), "d%d", i);
			snprintf(b, sizeof(b), "l%d", i);
			if (renameat2(f->dfd, a, f->dfd, b, RENAME_EXCHANGE) == 0)
				f->flips++;
		}
	}
	return NULL;
}

TEST(copy_of_a_tree_changing_under_it)
{
	char p[256];
	path(p, sizeof(p), "race");
	CHECK_INT(mkdir(p, 0755), 0);
	for (int i = 0; i < 8; i++) {
		char rel[64];
		snprintf(rel, sizeof(rel), "race/r%d", i);
		put(rel, "a file of the container\n");
		snprintf(rel, sizeof(rel), "race/p%d", i);
		path(p, sizeof(p), rel);
		CHECK_INT(mkfifo(p, 0644), 0);
		snprintf(rel, sizeof(rel), "race/d%d", i);
		path(p, sizeof(p), rel);
		CHECK_INT(mkdir(p, 0755), 0);
		snprintf(rel, sizeof(rel), "race/d%d/inner", i);
		put(rel, "inner\n");
		snprintf(rel, sizeof(rel), "race/l%d", i);
		path(p, sizeof(p), rel);
		CHECK_INT(symlink(host, p), 0);
	}
	path(p, sizeof(p), "race");
	struct flipper f = {.dfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
	CHECK(f.dfd >= 0);
	pthread_t th;
	CHECK_INT(pthread_create(&th, NULL, flip, &f), 0);
	int copies = 0, failures = 0;
	char last[1100] = "";
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* A copy that hangs on a FIFO ends the binary here. */
	alarm(15);
	do {
		char dst[128];
		snprintf(dst, sizeof(dst), "%s/rc%d", top, copies++);
		struct clbsd_err err;
		if (sys_copy_tree(tree, dst, &err) < 0) {
			failures++;
			snprintf(last, sizeof(last), "%s", err.msg);
		}
		if (holds_canary(dst))
			failures += 1000;
		fs_rm_rf(dst, &err);
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec - t0.tv_sec < 2);
	alarm(0);
	atomic_store(&f.stop, true);
	pthread_join(th, NULL);
	close(f.dfd);
	printf("# %d copies while %lu swaps; failures %d %s\n", copies, f.flips, failures, last);
	CHECK(f.flips > 0);
	CHECK_INT(failures, 0);
}

/* A chain of n directories "d" below rel; 0 when made. */
static int nest(const char *rel, int n)
{
	char p[256];
	path(p, sizeof(p), rel);
	if (mkdir(p, 0755) < 0)
		return -1;
	int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (int i = 0; fd >= 0 && i < n; i++) {
		if (mkdirat(fd, "d", 0755) < 0)
			break;
		int next = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		close(fd);
		fd = next;
		if (i == n - 1 && fd >= 0) {
			close(fd);
			return 0;
		}
	}
	if (fd >= 0)
		close(fd);
	return -1;
}

TEST(deep_trees_are_refused_or_removed_within_bounds)
{
	/* Few fds: a removal that held one per level could not go 1500 deep. */
	struct rlimit was, few = {256, 256};
	getrlimit(RLIMIT_NOFILE, &was);
	CHECK_INT(nest("deep", 1500), 0);
	char p[256], dst[128];
	path(p, sizeof(p), "deep");
	snprintf(dst, sizeof(dst), "%s/deepcopy", top);
	struct clbsd_err err;
	CHECK_INT(sys_copy_tree(p, dst, &err), -ELOOP);
	CHECK(strstr(err.msg, "nests too deep") != NULL);
	fs_rm_rf(dst, &err);
	setrlimit(RLIMIT_NOFILE, &few);
	/* Emptied, the directory stays; removed, it goes. */
	CHECK_INT(fs_empty_dir(p, &err), 0);
	struct stat st;
	CHECK(lstat(p, &st) == 0 && S_ISDIR(st.st_mode));
	CHECK_INT(nest("deep/again", 1500), 0);
	CHECK_INT(fs_rm_rf(p, &err), 0);
	CHECK(lstat(p, &st) < 0 && errno == ENOENT);
	setrlimit(RLIMIT_NOFILE, &was);
}

int main(void)
{
	test_prog = "sys.tree_copy_race";
	snprintf(top, sizeof(top), "/tmp/clbsd-copyrace-XXXXXX");
	if (!mkdtemp(top))
		return 1;
	snprintf(tree, sizeof(tree), "%s/tree", top);
	snprintf(host, sizeof(host), "%s/host", top);
	struct clbsd_err err;
	fs_mkdir_p(tree, 0755, &err);
	fs_mkdir_p(host, 0755, &err);
	char p[160];
	snprintf(p, sizeof(p), "%s/canary", host);
	fs_write_atomic(p, CANARY, strlen(CANARY), 0644, &err);
	RUN(open_reg_at_opens_only_regular_files);
	RUN(copy_keeps_nodes_and_links_as_they_are);
	RUN(copy_of_a_tree_changing_under_it);
	RUN(deep_trees_are_refused_or_removed_within_bounds);
	fs_rm_rf(top, &err);
	return test_failed_cases ? 1 : 0;
}
