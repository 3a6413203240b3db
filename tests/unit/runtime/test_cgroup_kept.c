/*
 * cg_stats()'s kept files against the host's own cgroups (root only; the
 * test says so and passes elsewhere): what the fake hierarchies of
 * test_cgroup.c cannot show is the kernel's side. A kept file read again
 * from offset 0 shows the new value; one of a cgroup removed behind
 * cg_destroy()'s back reads ENODEV, and the cgroup made again at the same
 * path is read, not the old one.
 */
#include "test.h"
#include "runtime/linux/rt_linux.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* A child sleeping in cgroup path, or -1. */
static pid_t child_in(const struct cg_sys *cg, const char *path)
{
	pid_t pid = fork();
	if (pid == 0) {
		pause();
		_exit(0);
	}
	struct clbsd_err err;
	if (pid > 0 && cg_join(cg, path, pid, &err) < 0) {
		printf("# join: %s\n", err.msg);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -1;
	}
	return pid;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* rmdir path in every hierarchy, as a process other than cg_destroy() would. */
static void rmdir_behind(const struct cg_sys *cg, const char *path)
{
	for (size_t i = 0; i < cg->n; i++) {
		autofree char *d = xasprintf("%s/%s", cg->h[i].mnt, path);
		rmdir(d);
	}
}

TEST(host_kept_files_follow_the_kernel)
{
	struct clbsd_err err;
	const struct cg_sys *cg = getuid() == 0 ? cg_sys_get(&err) : NULL;
	bool pids = false;
	for (size_t i = 0; cg && i < cg->n; i++)
		pids = pids || strstr(cg->h[i].ctrls, "pids") != NULL;
	if (!cg || !pids) {
		printf("# host_kept_files_follow_the_kernel: not root or no pids controller; "
		       "not run\n");
		return;
	}
	autofree char *path = xasprintf("clbsd-kepttest-%d", (int)getpid());
	struct rt_limits lim = {.pids = 16};
	if (cg_create(cg, path, &lim, &err) < 0) {
		printf("# host_kept_files_follow_the_kernel: %s; not run\n", err.msg);
		return;
	}
	struct rt_stats st;
	CHECK_INT(cg_stats(cg, path, &lim, &st, &err), 0);
	CHECK_INT(st.pids_current, 0);

	/* The same kept files, read again: the kernel shows the process. */
	pid_t a = child_in(cg, path);
	CHECK(a > 0);
	CHECK_INT(cg_stats(cg, path, &lim, &st, &err), 0);
	CHECK_INT(st.pids_current, 1);
	reap(a);
	CHECK_INT(cg_stats(cg, path, &lim, &st, &err), 0);
	CHECK_INT(st.pids_current, 0);

	/* Removed behind its back: the kept files read ENODEV, the path is gone. */
	rmdir_behind(cg, path);
	CHECK_INT(cg_stats(cg, path, &lim, &st, &err), -ENOENT);

	/* Made again at the same path: this one is read, not the removed one. */
	CHECK_INT(cg_stats(cg, path, &lim, &st, &err), -ENOENT);
	CHECK_INT(cg_create(cg, path, &lim, &err), 0);
	CHECK_INT(cg_stats(cg, path, &lim, &st, &err), 0);
	rmdir_behind(cg, path);
	CHECK_INT(cg_create(cg, path, &lim, &err), 0);
	pid_t b = child_in(cg, path);
	CHECK(b > 0);
	CHECK_INT(cg_stats(cg, path, &lim, &st, &err), 0);
	CHECK_INT(st.pids_current, 1);
	reap(b);
	CHECK_INT(cg_destroy(cg, path, 2000, &err), 0);
}

static int nfds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	while (d && readdir(d))
		n++;
	if (d)
		closedir(d);
	return n;
}

/*
 * At the fd budget, a read sweeps the kept files of cgroups removed behind
 * cg_destroy()'s back (their fds read ENODEV; the sweep reads them after
 * letting the table's lock go) and the entries keeping nothing.
 */
TEST(host_budget_sweeps_removed_cgroups)
{
	struct clbsd_err err;
	const struct cg_sys *cg = getuid() == 0 ? cg_sys_get(&err) : NULL;
	if (!cg) {
		printf("# host_budget_sweeps_removed_cgroups: not root; not run\n");
		return;
	}
	autofree char *a = xasprintf("clbsd-sweeptest-a-%d", (int)getpid());
	autofree char *b = xasprintf("clbsd-sweeptest-b-%d", (int)getpid());
	autofree char *c = xasprintf("clbsd-sweeptest-c-%d", (int)getpid());
	struct rt_limits lim = {.pids = 16};
	if (cg_create(cg, a, &lim, &err) < 0 || cg_create(cg, b, &lim, &err) < 0 ||
	    cg_create(cg, c, &lim, &err) < 0) {
		printf("# host_budget_sweeps_removed_cgroups: %s; not run\n", err.msg);
		cg_destroy(cg, a, 0, &err);
		cg_destroy(cg, b, 0, &err);
		return;
	}
	struct rt_stats st;
	int before = nfds();
	CHECK_INT(cg_stats(cg, a, &lim, &st, &err), 0);
	int per = nfds() - before; /* the files one cgroup keeps */
	CHECK(per > 0);
	CHECK_INT(cg_stats(cg, b, &lim, &st, &err), 0);
	CHECK_INT(nfds(), before + 2 * per);

	/* The budget (a quarter of the limit) is what a and b keep. */
	struct rlimit rl, low;
	CHECK_INT(getrlimit(RLIMIT_NOFILE, &rl), 0);
	low = rl;
	low.rlim_cur = (rlim_t)(8 * per);
	CHECK_INT(setrlimit(RLIMIT_NOFILE, &low), 0);
	rmdir_behind(cg, b);
	/* c keeps nothing, and its refusals sweep b's files away. */
	CHECK_INT(cg_stats(cg, c, &lim, &st, &err), 0);
	CHECK_INT(nfds(), before + per);
	/* Room again: c's files are kept now. */
	CHECK_INT(cg_stats(cg, c, &lim, &st, &err), 0);
	CHECK_INT(nfds(), before + 2 * per);
	CHECK_INT(setrlimit(RLIMIT_NOFILE, &rl), 0);
	CHECK_INT(cg_stats(cg, a, &lim, &st, &err), 0);
	CHECK_INT(cg_destroy(cg, a, 2000, &err), 0);
	CHECK_INT(cg_destroy(cg, c, 2000, &err), 0);
	CHECK_INT(nfds(), before);
}

TEST_MAIN_BEGIN("runtime_cgroup_kept")
RUN(host_kept_files_follow_the_kernel);
RUN(host_budget_sweeps_removed_cgroups);
TEST_MAIN_END
