/*
 * The cgroup code against fake hierarchies in a temporary directory: the
 * interface files are pre-created, so the tests see exactly which files the
 * driver writes and what it parses, for v1, v2 and the hybrid layout.
 */
#include "test.h"
#include "runtime/linux/rt_linux.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *mi_v2 =
	"22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
	"25 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:8 - cgroup2 cgroup2 "
	"rw,nsdelegate,memory_recursiveprot\n"
	"26 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n";

static const char *mi_v1 =
	"31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
	"32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup "
	"rw,cpu,cpuacct\n"
	"35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
	"34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children\n"
	"39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
	"40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup "
	"rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd\n"
	/* the same memory hierarchy bind-mounted elsewhere is listed once */
	"90 1 0:32 / /mnt/mem\\040cg rw,relatime - cgroup cgroup rw,memory\n";

/* This machine's layout: v1 controllers one per mount, plus cgroup2 at unified. */
static const char *mi_hybrid =
	"31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
	"32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
	"33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
	"35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
	"39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
	"40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
	"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

static char tmp[64];

static void mktmp(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/clbsd-cgtest-XXXXXX");
	if (!mkdtemp(tmp))
		abort();
}

static void rmtmp(void)
{
	struct clbsd_err err;
	fs_rm_rf(tmp, &err);
}

/* Create tmp/<rel> (and its parents) holding `content`. */
static void put(const char *rel, const char *content)
{
	struct clbsd_err err;
	autofree char *p = xasprintf("%s/%s", tmp, rel);
	autofree char *d = xstrdup(p);
	*strrchr(d, '/') = '\0';
	if (fs_mkdir_p(d, 0755, &err) < 0)
		abort();
	FILE *f = fopen(p, "w");
	if (!f)
		abort();
	fputs(content, f);
	fclose(f);
}

/* Contents of tmp/<rel> with trailing newlines cut, or "(missing)". */
static char *get(const char *rel)
{
	static char out[256];
	struct clbsd_err err;
	autofree char *p = xasprintf("%s/%s", tmp, rel);
	autofree char *s = NULL;
	if (fs_read_file(p, &s, NULL, &err) < 0)
		return strcpy(out, "(missing)");
	s[strcspn(s, "\n")] = '\0';
	snprintf(out, sizeof(out), "%s", s);
	return out;
}

static bool there(const char *rel)
{
	autofree char *p = xasprintf("%s/%s", tmp, rel);
	return fs_exists(p);
}

TEST(detect_v2)
{
	struct clbsd_err err;
	struct cg_sys cg;
	mktmp();
	put("sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
	CHECK_INT(cg_sys_parse(mi_v2, tmp, &cg, &err), 0);
	CHECK_INT(cg.layout, CG_LAYOUT_V2);
	CHECK_INT(cg.n, 1);
	CHECK(cg.h[0].v2);
	autofree char *want = xasprintf("%s/sys/fs/cgroup", tmp);
	CHECK_STR(cg.h[0].mnt, want);
	CHECK_STR(cg.h[0].ctrls, "cpuset cpu io memory hugetlb pids rdma misc");
	cg_sys_release(&cg);
	rmtmp();
}

TEST(detect_v1)
{
	struct clbsd_err err;
	struct cg_sys cg;
	CHECK_INT(cg_sys_parse(mi_v1, "", &cg, &err), 0);
	CHECK_INT(cg.layout, CG_LAYOUT_V1);
	CHECK_INT(cg.n, 5);
	CHECK_STR(cg.h[0].mnt, "/sys/fs/cgroup/cpu,cpuacct");
	CHECK_STR(cg.h[0].ctrls, "cpu,cpuacct");
	CHECK_STR(cg.h[2].ctrls, "cpuset");
	CHECK_STR(cg.h[4].ctrls, "name=systemd");
	for (size_t i = 0; i < cg.n; i++)
		CHECK(!cg.h[i].v2);
	/* Containers get cgroups where clbsd has a use for them (and for tracking). */
	CHECK(cg.h[0].used && cg.h[1].used && cg.h[3].used && cg.h[4].used);
	CHECK(!cg.h[2].used);
	cg_sys_release(&cg);
}

TEST(detect_hybrid)
{
	struct clbsd_err err;
	struct cg_sys cg;
	CHECK_INT(cg_sys_parse(mi_hybrid, "/nonexistent", &cg, &err), 0);
	CHECK_INT(cg.layout, CG_LAYOUT_HYBRID);
	CHECK_INT(cg.n, 6);
	CHECK(cg.h[5].v2);
	CHECK_STR(cg.h[5].mnt, "/nonexistent/sys/fs/cgroup/unified");
	CHECK_STR(cg.h[5].ctrls, "");
	CHECK_STR(cg_layout_name(cg.layout), "hybrid");
	cg_sys_release(&cg);
}

TEST(detect_none)
{
	struct clbsd_err err;
	struct cg_sys cg;
	CHECK(cg_sys_parse(
		      "26 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
		      "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n",
		      "", &cg, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_UNAVAIL);
	CHECK(cg_sys_parse("", "", &cg, &err) < 0);
	CHECK(cg_sys_parse("garbage\nmore garbage - x\n", "", &cg, &err) < 0);
}

static const char *v2_leaf[] = {"memory.max", "memory.swap.max", "pids.max",
				"cpu.max",    "cgroup.procs",	 "cgroup.kill"};

static void v2_tree(void)
{
	put("sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids\n");
	put("sys/fs/cgroup/cgroup.subtree_control", "");
	put("sys/fs/cgroup/clbsd/cgroup.subtree_control", "");
	for (size_t i = 0; i < ARRAY_SIZE(v2_leaf); i++) {
		autofree char *p = xasprintf("sys/fs/cgroup/clbsd/web/%s", v2_leaf[i]);
		put(p, "");
	}
}

TEST(v2_limits)
{
	struct clbsd_err err;
	struct cg_sys cg;
	mktmp();
	v2_tree();
	CHECK_INT(cg_sys_parse(mi_v2, tmp, &cg, &err), 0);
	struct rt_limits lim = {.memory = 32 << 20, .pids = 64, .cpus = 0.5};
	CHECK_INT(cg_create(&cg, "clbsd/web", &lim, &err), 0);
	CHECK_STR(get("sys/fs/cgroup/cgroup.subtree_control"), "+cpu +memory +pids");
	CHECK_STR(get("sys/fs/cgroup/clbsd/cgroup.subtree_control"), "+cpu +memory +pids");
	CHECK_STR(get("sys/fs/cgroup/clbsd/web/memory.max"), "33554432");
	CHECK_STR(get("sys/fs/cgroup/clbsd/web/memory.swap.max"), "0");
	CHECK_STR(get("sys/fs/cgroup/clbsd/web/pids.max"), "64");
	CHECK_STR(get("sys/fs/cgroup/clbsd/web/cpu.max"), "50000 100000");

	CHECK_INT(cg_join(&cg, "clbsd/web", 4242, &err), 0);
	CHECK_STR(get("sys/fs/cgroup/clbsd/web/cgroup.procs"), "4242");
	CHECK(cg_has_pid(&cg, "clbsd/web", 4242));
	CHECK(!cg_has_pid(&cg, "clbsd/web", 424));
	size_t n;
	CHECK_INT(cg_count(&cg, "clbsd/web", &n, &err), 0);
	CHECK_INT(n, 1);

	/* A cgroup that still has processes is not taken over. */
	CHECK_INT(cg_create(&cg, "clbsd/web", &lim, &err), -EBUSY);
	CHECK_INT(err.kind, CLBSD_E_CONFLICT);
	CHECK(strstr(err.msg, "cgroup clbsd/web: 1 processes still run") != NULL);
	CHECK(there("sys/fs/cgroup/clbsd/web"));

	/* SIGKILL goes through cgroup.kill on v2. */
	CHECK_INT(cg_kill(&cg, "clbsd/web", SIGKILL, &err), 0);
	CHECK_STR(get("sys/fs/cgroup/clbsd/web/cgroup.kill"), "1");
	cg_sys_release(&cg);
	rmtmp();
}

TEST(v2_unlimited_resets)
{
	struct clbsd_err err;
	struct cg_sys cg;
	mktmp();
	v2_tree();
	CHECK_INT(cg_sys_parse(mi_v2, tmp, &cg, &err), 0);
	struct rt_limits lim = {0};
	CHECK_INT(cg_create(&cg, "clbsd/web", &lim, &err), 0);
	CHECK_STR(get("sys/fs/cgroup/clbsd/web/memory.max"), "max");
	CHECK_STR(get("sys/fs/cgroup/clbsd/web/memory.swap.max"), "max");
	CHECK_STR(get("sys/fs/cgroup/clbsd/web/pids.max"), "max");
	CHECK_STR(get("sys/fs/cgroup/clbsd/web/cpu.max"), "max 100000");
	/* The minimum quota is 1 ms. */
	lim.cpus = 0.001;
	put("sys/fs/cgroup/clbsd/web/cpu.max", "");
	CHECK_INT(cg_create(&cg, "clbsd/web", &lim, &err), 0);
	CHECK_STR(get("sys/fs/cgroup/clbsd/web/cpu.max"), "1000 100000");
	cg_sys_release(&cg);
	rmtmp();
}

/*
 * A pool cgroup is made without limits: at the claim, "no limit" needs no
 * write, a limit does; an older cgroup gets every limit reset.
 */
TEST(fresh_cgroup_writes_only_limits)
{
	struct clbsd_err err;
	struct cg_sys cg;
	mktmp();
	v2_tree();
	CHECK_INT(cg_sys_parse(mi_v2, tmp, &cg, &err), 0);
	put("sys/fs/cgroup/clbsd/web/memory.max", "");
	put("sys/fs/cgroup/clbsd/web/pids.max", "");
	put("sys/fs/cgroup/clbsd/web/cpu.max", "");
	struct rt_limits none = {0};
	CHECK_INT(cg_set_limits(&cg, "clbsd/web", &none, true, &err), 0);
	CHECK_STR(get("sys/fs/cgroup/clbsd/web/memory.max"), "");
	CHECK_STR(get("sys/fs/cgroup/clbsd/web/pids.max"), "");
	CHECK_STR(get("sys/fs/cgroup/clbsd/web/cpu.max"), "");
	struct rt_limits pids = {.pids = 10};
	CHECK_INT(cg_set_limits(&cg, "clbsd/web", &pids, true, &err), 0);
	CHECK_STR(get("sys/fs/cgroup/clbsd/web/pids.max"), "10");
	CHECK_STR(get("sys/fs/cgroup/clbsd/web/memory.max"), "");
	CHECK_INT(cg_set_limits(&cg, "clbsd/web", &none, false, &err), 0);
	CHECK_STR(get("sys/fs/cgroup/clbsd/web/pids.max"), "max");
	CHECK_STR(get("sys/fs/cgroup/clbsd/web/memory.max"), "max");
	CHECK_STR(get("sys/fs/cgroup/clbsd/web/cpu.max"), "max 100000");
	cg_sys_release(&cg);
	rmtmp();
}

TEST(v2_stats_and_oom)
{
	struct clbsd_err err;
	struct cg_sys cg;
	struct rt_stats st;
	mktmp();
	v2_tree();
	put("sys/fs/cgroup/clbsd/web/cpu.stat",
	    "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 0\n");
	put("sys/fs/cgroup/clbsd/web/memory.current", "1234567\n");
	put("sys/fs/cgroup/clbsd/web/memory.max", "33554432\n");
	put("sys/fs/cgroup/clbsd/web/memory.events",
	    "low 0\nhigh 0\nmax 9\noom 3\noom_kill 2\noom_group_kill 0\n");
	put("sys/fs/cgroup/clbsd/web/pids.current", "3\n");
	put("sys/fs/cgroup/clbsd/web/pids.max", "max\n");
	CHECK_INT(cg_sys_parse(mi_v2, tmp, &cg, &err), 0);
	CHECK_INT(cg_stats(&cg, "clbsd/web", NULL, &st, &err), 0);
	CHECK_INT(st.cpu_usage_ns, 1500000);
	CHECK_INT(st.memory_usage, 1234567);
	CHECK_INT(st.memory_limit, 33554432);
	CHECK_INT(st.oom_kills, 2);
	CHECK_INT(st.pids_current, 3);
	CHECK_INT(st.pids_limit, 0);
	uint64_t kills = 0;
	CHECK_INT(cg_oom_kills(&cg, "clbsd/web", &kills, &err), 0);
	CHECK_INT(kills, 2);

	/* The OOM fd is an inotify watch on memory.events. */
	int fd = -1;
	CHECK_INT(cg_oom_fd(&cg, "clbsd/web", &fd, &err), 0);
	struct pollfd p = {fd, POLLIN, 0};
	CHECK_INT(poll(&p, 1, 0), 0);
	put("sys/fs/cgroup/clbsd/web/memory.events", "oom_kill 3\n");
	CHECK_INT(poll(&p, 1, 1000), 1);
	close(fd);

	CHECK_INT(cg_stats(&cg, "clbsd/nope", NULL, &st, &err), -ENOENT);
	CHECK(strstr(err.msg, "stats of cgroup clbsd/nope") != NULL);
	struct rt_limits set = {.memory = 32 << 20};
	CHECK_INT(cg_stats(&cg, "clbsd/nope", &set, &st, &err), -ENOENT);
	CHECK(strstr(err.msg, "stats of cgroup clbsd/nope") != NULL);
	cg_sys_release(&cg);
	rmtmp();
}

/* The limits the daemon set are the ones the files hold, without opening them. */
TEST(v2_stats_known_limits)
{
	struct clbsd_err err;
	struct cg_sys cg;
	struct rt_stats st, known;
	mktmp();
	v2_tree();
	put("sys/fs/cgroup/clbsd/web/cpu.stat", "usage_usec 1500\nuser_usec 1000\n");
	put("sys/fs/cgroup/clbsd/web/memory.current", "1234567\n");
	put("sys/fs/cgroup/clbsd/web/memory.max", "33554432\n");
	put("sys/fs/cgroup/clbsd/web/memory.events", "oom 3\noom_kill 2\n");
	put("sys/fs/cgroup/clbsd/web/pids.current", "3\n");
	put("sys/fs/cgroup/clbsd/web/pids.max", "16\n");
	CHECK_INT(cg_sys_parse(mi_v2, tmp, &cg, &err), 0);
	CHECK_INT(cg_stats(&cg, "clbsd/web", NULL, &st, &err), 0);
	CHECK_INT(st.memory_limit, 33554432);
	CHECK_INT(st.pids_limit, 16);

	/* The same values with the limit files gone: they are not read. */
	struct rt_limits set = {.memory = 32 << 20, .pids = 16};
	autofree char *mmax = xasprintf("%s/sys/fs/cgroup/clbsd/web/memory.max", tmp);
	autofree char *pmax = xasprintf("%s/sys/fs/cgroup/clbsd/web/pids.max", tmp);
	CHECK_INT(unlink(mmax), 0);
	CHECK_INT(unlink(pmax), 0);
	CHECK_INT(cg_stats(&cg, "clbsd/web", &set, &known, &err), 0);
	CHECK(memcmp(&st, &known, sizeof(st)) == 0);

	/* Memory as the kernel keeps it: whole pages; none set is unlimited (0). */
	set.memory = (32 << 20) + 100;
	CHECK_INT(cg_stats(&cg, "clbsd/web", &set, &known, &err), 0);
	CHECK_INT(known.memory_limit, 33554432);
	set = (struct rt_limits){0};
	CHECK_INT(cg_stats(&cg, "clbsd/web", &set, &known, &err), 0);
	CHECK_INT(known.memory_limit, 0);
	CHECK_INT(known.pids_limit, 0);
	CHECK_INT(known.memory_usage, 1234567);
	CHECK_INT(known.oom_kills, 2);
	CHECK_INT(known.cpu_usage_ns, 1500000);
	/* Files are opened from the mount point held open: a leading '/' is the same cgroup. */
	CHECK(cg.h[0].fd >= 0);
	CHECK_INT(cg_stats(&cg, "/clbsd/web", &set, &st, &err), 0);
	CHECK(memcmp(&st, &known, sizeof(st)) == 0);
	cg_sys_release(&cg);
	rmtmp();
}

/* The fds this process has open. */
static int nfds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		abort();
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own */
}

static void v2_stat_files(const char *cgroup, const char *cpu, const char *mem, const char *events,
			  const char *pids)
{
	const char *name[] = {"cpu.stat", "memory.current", "memory.events", "pids.current"};
	const char *val[] = {cpu, mem, events, pids};
	for (size_t i = 0; i < ARRAY_SIZE(name); i++) {
		autofree char *p = xasprintf("sys/fs/cgroup/%s/%s", cgroup, name[i]);
		put(p, val[i]);
	}
}

/*
 * A cgroup's stats files stay open and are read again from the start: the
 * values change as the files do, without one more open; a removal closes
 * them.
 */
TEST(v2_stats_kept_files)
{
	struct clbsd_err err;
	struct cg_sys cg;
	struct rt_stats st;
	struct rt_limits set = {.memory = 32 << 20, .pids = 16};
	mktmp();
	v2_tree();
	v2_stat_files("clbsd/web", "usage_usec 1500\n", "1234567\n", "oom_kill 2\n", "3\n");
	CHECK_INT(cg_sys_parse(mi_v2, tmp, &cg, &err), 0);
	int before = nfds();
	CHECK_INT(cg_stats(&cg, "clbsd/web", &set, &st, &err), 0);
	CHECK_INT(st.cpu_usage_ns, 1500000);
	CHECK_INT(st.memory_usage, 1234567);
	CHECK_INT(nfds(), before + 4);

	/* Written in place, as the kernel shows new values: read afresh. */
	v2_stat_files("clbsd/web", "usage_usec 2500\nuser_usec 1\n", "2345678\n", "oom_kill 5\n",
		      "7\n");
	CHECK_INT(cg_stats(&cg, "/clbsd/web", &set, &st, &err), 0);
	CHECK_INT(st.cpu_usage_ns, 2500000);
	CHECK_INT(st.memory_usage, 2345678);
	CHECK_INT(st.oom_kills, 5);
	CHECK_INT(st.pids_current, 7);
	CHECK_INT(st.memory_limit, 32 << 20);
	CHECK_INT(st.pids_limit, 16);
	CHECK_INT(nfds(), before + 4);

	/* Removing the cgroup closes them (the fake one stays: it holds files). */
	cg_destroy(&cg, "clbsd/web", 0, &err);
	CHECK_INT(nfds(), before);
	/* A cgroup that is not there keeps nothing either. */
	CHECK_INT(cg_stats(&cg, "clbsd/nope", &set, &st, &err), -ENOENT);
	CHECK_INT(nfds(), before);
	cg_sys_release(&cg);
	rmtmp();
}

/* At most a quarter of RLIMIT_NOFILE is kept; past it, stats open and close. */
TEST(v2_stats_fd_budget)
{
	struct clbsd_err err;
	struct cg_sys cg;
	struct rt_stats st;
	struct rt_limits set = {.memory = 32 << 20, .pids = 16};
	mktmp();
	v2_tree();
	v2_stat_files("clbsd/web", "usage_usec 1500\n", "1234567\n", "oom_kill 2\n", "3\n");
	v2_stat_files("clbsd/db", "usage_usec 9\n", "4096\n", "oom_kill 0\n", "1\n");
	CHECK_INT(cg_sys_parse(mi_v2, tmp, &cg, &err), 0);
	int before = nfds();
	CHECK(before <= 10);
	struct rlimit rl, low;
	CHECK_INT(getrlimit(RLIMIT_NOFILE, &rl), 0);
	low = rl;
	low.rlim_cur = 16; /* 4 may be kept */
	CHECK_INT(setrlimit(RLIMIT_NOFILE, &low), 0);
	CHECK_INT(cg_stats(&cg, "clbsd/web", &set, &st, &err), 0);
	CHECK_INT(cg_stats(&cg, "clbsd/db", &set, &st, &err), 0);
	CHECK_INT(nfds(), before + 4);
	CHECK_INT(st.cpu_usage_ns, 9000);
	CHECK_INT(st.memory_usage, 4096);
	CHECK_INT(st.pids_current, 1);
	v2_stat_files("clbsd/db", "usage_usec 10\n", "8192\n", "oom_kill 1\n", "2\n");
	CHECK_INT(cg_stats(&cg, "clbsd/db", &set, &st, &err), 0);
	CHECK_INT(st.cpu_usage_ns, 10000);
	CHECK_INT(st.memory_usage, 8192);
	CHECK_INT(st.oom_kills, 1);
	CHECK_INT(nfds(), before + 4);
	CHECK_INT(setrlimit(RLIMIT_NOFILE, &rl), 0);
	cg_sys_release(&cg);
	CHECK_INT(nfds(), before - 1); /* and the mount point's */
	rmtmp();
}

static void v1_tree(void)
{
	put("sys/fs/cgroup/memory/clbsd/web/memory.limit_in_bytes", "");
	put("sys/fs/cgroup/memory/clbsd/web/memory.memsw.limit_in_bytes", "");
	put("sys/fs/cgroup/memory/clbsd/web/cgroup.procs", "");
	put("sys/fs/cgroup/pids/clbsd/web/pids.max", "");
	put("sys/fs/cgroup/pids/clbsd/web/cgroup.procs", "");
	put("sys/fs/cgroup/cpu,cpuacct/clbsd/web/cpu.cfs_period_us", "");
	put("sys/fs/cgroup/cpu,cpuacct/clbsd/web/cpu.cfs_quota_us", "");
	put("sys/fs/cgroup/cpu,cpuacct/clbsd/web/cgroup.procs", "");
	put("sys/fs/cgroup/cpuset/cpuset.cpus", "0-1\n");
	put("sys/fs/cgroup/cpuset/cpuset.mems", "0\n");
	put("sys/fs/cgroup/systemd/cgroup.procs", "");
}

TEST(v1_limits)
{
	struct clbsd_err err;
	struct cg_sys cg;
	mktmp();
	v1_tree();
	CHECK_INT(cg_sys_parse(mi_v1, tmp, &cg, &err), 0);
	struct rt_limits lim = {.memory = 32 << 20, .pids = 64, .cpus = 1.5};
	CHECK_INT(cg_create(&cg, "clbsd/web", &lim, &err), 0);
	CHECK_STR(get("sys/fs/cgroup/memory/clbsd/web/memory.limit_in_bytes"), "33554432");
	CHECK_STR(get("sys/fs/cgroup/memory/clbsd/web/memory.memsw.limit_in_bytes"), "33554432");
	CHECK_STR(get("sys/fs/cgroup/pids/clbsd/web/pids.max"), "64");
	CHECK_STR(get("sys/fs/cgroup/cpu,cpuacct/clbsd/web/cpu.cfs_period_us"), "100000");
	CHECK_STR(get("sys/fs/cgroup/cpu,cpuacct/clbsd/web/cpu.cfs_quota_us"), "150000");
	/* The named hierarchy tracks it; cpuset, which clbsd does not use, is left alone. */
	CHECK(there("sys/fs/cgroup/systemd/clbsd/web"));
	CHECK(!there("sys/fs/cgroup/cpuset/clbsd"));

	put("sys/fs/cgroup/systemd/clbsd/web/cgroup.procs", "");
	CHECK_INT(cg_join(&cg, "clbsd/web", 77, &err), 0);
	CHECK_STR(get("sys/fs/cgroup/memory/clbsd/web/cgroup.procs"), "77");
	CHECK_STR(get("sys/fs/cgroup/pids/clbsd/web/cgroup.procs"), "77");
	cg_sys_release(&cg);
	rmtmp();
}

/* cpuset mounted together with a controller clbsd uses. */
static const char *mi_v1_cpuset =
	"31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
	"34 31 0:31 / /sys/fs/cgroup/cpuset,pids rw,relatime - cgroup cgroup rw,cpuset,pids\n";

TEST(v1_cpuset_inherits)
{
	struct clbsd_err err;
	struct cg_sys cg;
	mktmp();
	put("sys/fs/cgroup/cpuset,pids/cpuset.cpus", "0-1\n");
	put("sys/fs/cgroup/cpuset,pids/cpuset.mems", "0\n");
	/* Emulate the kernel: a new cpuset cgroup has empty cpus and mems. */
	put("sys/fs/cgroup/cpuset,pids/clbsd/cpuset.cpus", "\n");
	put("sys/fs/cgroup/cpuset,pids/clbsd/cpuset.mems", "\n");
	CHECK_INT(cg_sys_parse(mi_v1_cpuset, tmp, &cg, &err), 0);
	CHECK(cg.h[0].used);
	struct rt_limits lim = {0};
	CHECK_INT(cg_create(&cg, "clbsd/web", &lim, &err), 0);
	/*
	 * clbsd existed already, but without cpus and mems (made by another
	 * process a moment ago): it gets its parent's, or no child of it could
	 * take a task (ENOSPC).
	 */
	CHECK_STR(get("sys/fs/cgroup/cpuset,pids/clbsd/cpuset.cpus"), "0-1");
	CHECK_STR(get("sys/fs/cgroup/cpuset,pids/clbsd/cpuset.mems"), "0");
	CHECK(there("sys/fs/cgroup/cpuset,pids/clbsd/web"));
	cg_sys_release(&cg);
	rmtmp();
}

/* A cgroup left from before (a crash) is reused with its old limits reset. */
TEST(v1_reused_cgroup_reset)
{
	struct clbsd_err err;
	struct cg_sys cg;
	mktmp();
	v1_tree();
	CHECK_INT(cg_sys_parse(mi_v1, tmp, &cg, &err), 0);
	struct rt_limits lim = {0};
	CHECK_INT(cg_create(&cg, "clbsd/web", &lim, &err), 0);
	CHECK_STR(get("sys/fs/cgroup/memory/clbsd/web/memory.limit_in_bytes"), "-1");
	CHECK_STR(get("sys/fs/cgroup/pids/clbsd/web/pids.max"), "max");
	CHECK_STR(get("sys/fs/cgroup/cpu,cpuacct/clbsd/web/cpu.cfs_quota_us"), "-1");
	cg_sys_release(&cg);
	rmtmp();
}

TEST(v1_stats_and_oom_control)
{
	struct clbsd_err err;
	struct cg_sys cg;
	struct rt_stats st;
	mktmp();
	v1_tree();
	put("sys/fs/cgroup/cpu,cpuacct/clbsd/web/cpuacct.usage", "123456789\n");
	put("sys/fs/cgroup/memory/clbsd/web/memory.usage_in_bytes", "4096\n");
	put("sys/fs/cgroup/memory/clbsd/web/memory.limit_in_bytes", "9223372036854771712\n");
	put("sys/fs/cgroup/memory/clbsd/web/memory.oom_control",
	    "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n");
	put("sys/fs/cgroup/pids/clbsd/web/pids.current", "5\n");
	put("sys/fs/cgroup/pids/clbsd/web/pids.max", "100\n");
	put("sys/fs/cgroup/memory/clbsd/web/cgroup.event_control", "");
	CHECK_INT(cg_sys_parse(mi_v1, tmp, &cg, &err), 0);
	CHECK_INT(cg_stats(&cg, "clbsd/web", NULL, &st, &err), 0);
	CHECK_INT(st.cpu_usage_ns, 123456789);
	CHECK_INT(st.memory_usage, 4096);
	CHECK_INT(st.memory_limit, 0);
	CHECK_INT(st.oom_kills, 4);
	CHECK_INT(st.pids_current, 5);
	CHECK_INT(st.pids_limit, 100);

	/* Known limits: the same values, the limit files left unread. */
	struct rt_stats known;
	struct rt_limits set = {.memory = 0, .pids = 100};
	autofree char *mlim =
		xasprintf("%s/sys/fs/cgroup/memory/clbsd/web/memory.limit_in_bytes", tmp);
	autofree char *pmax = xasprintf("%s/sys/fs/cgroup/pids/clbsd/web/pids.max", tmp);
	CHECK_INT(unlink(mlim), 0);
	CHECK_INT(unlink(pmax), 0);
	CHECK_INT(cg_stats(&cg, "clbsd/web", &set, &known, &err), 0);
	CHECK(memcmp(&st, &known, sizeof(st)) == 0);
	put("sys/fs/cgroup/memory/clbsd/web/memory.limit_in_bytes", "9223372036854771712\n");
	put("sys/fs/cgroup/pids/clbsd/web/pids.max", "100\n");

	/* v1 OOM notification: "<eventfd> <fd of memory.oom_control>" to cgroup.event_control. */
	int fd = -1;
	CHECK_INT(cg_oom_fd(&cg, "clbsd/web", &fd, &err), 0);
	int efd = -1, ofd = -1;
	CHECK_INT(sscanf(get("sys/fs/cgroup/memory/clbsd/web/cgroup.event_control"), "%d %d", &efd,
			 &ofd),
		  2);
	CHECK_INT(efd, fd);
	close(fd);
	cg_sys_release(&cg);
	rmtmp();
}

TEST(failure_leaves_nothing)
{
	struct clbsd_err err;
	struct cg_sys cg;
	mktmp();
	v1_tree();
	/* No pids.max: the pids limit cannot be applied. */
	autofree char *p = xasprintf("%s/sys/fs/cgroup/pids/clbsd/web/pids.max", tmp);
	unlink(p);
	CHECK_INT(cg_sys_parse(mi_v1, tmp, &cg, &err), 0);
	struct rt_limits lim = {.pids = 10};
	CHECK(cg_create(&cg, "clbsd/web", &lim, &err) < 0);
	CHECK(strstr(err.msg, "cgroup clbsd/web: open ") != NULL);
	CHECK(strstr(err.msg, "pids.max") != NULL);
	CHECK(!there("sys/fs/cgroup/cpuset/clbsd/web"));
	CHECK(!there("sys/fs/cgroup/systemd/clbsd/web"));
	cg_sys_release(&cg);
	rmtmp();
}

TEST(missing_controller)
{
	struct clbsd_err err;
	struct cg_sys cg;
	mktmp();
	put("sys/fs/cgroup/cgroup.controllers", "cpu\n");
	put("sys/fs/cgroup/cgroup.subtree_control", "");
	put("sys/fs/cgroup/clbsd/cgroup.subtree_control", "");
	CHECK_INT(cg_sys_parse(mi_v2, tmp, &cg, &err), 0);
	struct rt_limits lim = {.memory = 1 << 20};
	CHECK_INT(cg_create(&cg, "clbsd/web", &lim, &err), -ENOTSUP);
	CHECK_INT(err.kind, CLBSD_E_UNAVAIL);
	CHECK(strstr(err.msg, "no memory cgroup controller") != NULL);
	CHECK_STR(get("sys/fs/cgroup/cgroup.subtree_control"), "+cpu");
	CHECK(!there("sys/fs/cgroup/clbsd/web"));
	cg_sys_release(&cg);
	rmtmp();
}

TEST(destroy_idempotent)
{
	struct clbsd_err err;
	struct cg_sys cg;
	mktmp();
	const char *roots[] = {"cpu", "cpuacct", "memory", "pids", "systemd", "unified"};
	for (size_t i = 0; i < ARRAY_SIZE(roots); i++) {
		autofree char *p = xasprintf("sys/fs/cgroup/%s/cgroup.procs", roots[i]);
		put(p, "");
	}
	CHECK_INT(cg_sys_parse(mi_hybrid, tmp, &cg, &err), 0);
	struct rt_limits lim = {0};
	int rc = cg_create(&cg, "clbsd/db", &lim, &err);
	if (rc)
		FAILF("%s", err.msg);
	CHECK(there("sys/fs/cgroup/unified/clbsd/db"));
	CHECK(there("sys/fs/cgroup/memory/clbsd/db"));
	CHECK_INT(cg_destroy(&cg, "clbsd/db", 100, &err), 0);
	CHECK(!there("sys/fs/cgroup/unified/clbsd/db"));
	CHECK(!there("sys/fs/cgroup/memory/clbsd/db"));
	CHECK(there("sys/fs/cgroup/memory/clbsd"));
	CHECK_INT(cg_destroy(&cg, "clbsd/db", 100, &err), 0);
	/* Nothing to kill in a cgroup that is gone. */
	CHECK_INT(cg_kill(&cg, "clbsd/db", SIGTERM, &err), 0);
	cg_sys_release(&cg);
	rmtmp();
}

/* Make tmp/<rel> a directory, so that writing it fails as the kernel's refusal would. */
static void refuse(const char *rel)
{
	autofree char *p = xasprintf("%s/%s", tmp, rel);
	unlink(p);
	if (mkdir(p, 0755) < 0)
		abort();
}

/* A running container's limits change in place; a refusal puts back every file. */
TEST(v1_update_in_place_all_or_nothing)
{
	struct clbsd_err err;
	struct cg_sys cg;
	mktmp();
	v1_tree();
	CHECK_INT(cg_sys_parse(mi_v1, tmp, &cg, &err), 0);
	struct rt_limits lim = {.memory = 64 << 20, .pids = 64, .cpus = 1};
	CHECK_INT(cg_create(&cg, "clbsd/web", &lim, &err), 0);
	struct rt_limits up = {.memory = 128 << 20, .pids = 100, .cpus = 1.5};
	CHECK_INT(cg_update_limits(&cg, "clbsd/web", &up, &err), 0);
	CHECK_STR(get("sys/fs/cgroup/memory/clbsd/web/memory.limit_in_bytes"), "134217728");
	CHECK_STR(get("sys/fs/cgroup/memory/clbsd/web/memory.memsw.limit_in_bytes"), "134217728");
	CHECK_STR(get("sys/fs/cgroup/pids/clbsd/web/pids.max"), "100");
	CHECK_STR(get("sys/fs/cgroup/cpu,cpuacct/clbsd/web/cpu.cfs_quota_us"), "150000");
	/* The pids limit is refused after memory was written: memory goes back. */
	refuse("sys/fs/cgroup/pids/clbsd/web/pids.max");
	struct rt_limits down = {.memory = 32 << 20, .pids = 10, .cpus = 0.25};
	CHECK(cg_update_limits(&cg, "clbsd/web", &down, &err) < 0);
	CHECK(strstr(err.msg, "cgroup clbsd/web: the kernel refused the new limits") != NULL);
	CHECK(strstr(err.msg, "pids.max") != NULL);
	CHECK(strstr(err.msg, "nothing was changed") != NULL);
	CHECK_STR(get("sys/fs/cgroup/memory/clbsd/web/memory.limit_in_bytes"), "134217728");
	CHECK_STR(get("sys/fs/cgroup/memory/clbsd/web/memory.memsw.limit_in_bytes"), "134217728");
	CHECK_STR(get("sys/fs/cgroup/cpu,cpuacct/clbsd/web/cpu.cfs_quota_us"), "150000");
	/* No cgroup (not running): a conflict, nothing made. */
	CHECK(cg_update_limits(&cg, "clbsd/gone", &up, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_CONFLICT);
	CHECK(!there("sys/fs/cgroup/memory/clbsd/gone"));
	cg_sys_release(&cg);
	rmtmp();
}

TEST(v2_update_in_place_all_or_nothing)
{
	struct clbsd_err err;
	struct cg_sys cg;
	mktmp();
	v2_tree();
	CHECK_INT(cg_sys_parse(mi_v2, tmp, &cg, &err), 0);
	struct rt_limits lim = {.memory = 64 << 20, .pids = 64};
	CHECK_INT(cg_create(&cg, "clbsd/web", &lim, &err), 0);
	put("sys/fs/cgroup/clbsd/web/cpu.max", "max 100000");
	struct rt_limits up = {.memory = 256 << 20, .cpus = 2};
	CHECK_INT(cg_update_limits(&cg, "clbsd/web", &up, &err), 0);
	CHECK_STR(get("sys/fs/cgroup/clbsd/web/memory.max"), "268435456");
	CHECK_STR(get("sys/fs/cgroup/clbsd/web/memory.swap.max"), "0");
	CHECK_STR(get("sys/fs/cgroup/clbsd/web/pids.max"), "max");
	CHECK_STR(get("sys/fs/cgroup/clbsd/web/cpu.max"), "200000 100000");
	/* cpu.max is refused last: memory and pids go back. */
	refuse("sys/fs/cgroup/clbsd/web/cpu.max");
	struct rt_limits down = {.memory = 16 << 20, .pids = 5, .cpus = 1};
	CHECK(cg_update_limits(&cg, "clbsd/web", &down, &err) < 0);
	CHECK(strstr(err.msg, "cpu.max") != NULL);
	CHECK_STR(get("sys/fs/cgroup/clbsd/web/memory.max"), "268435456");
	CHECK_STR(get("sys/fs/cgroup/clbsd/web/memory.swap.max"), "0");
	CHECK_STR(get("sys/fs/cgroup/clbsd/web/pids.max"), "max");
	cg_sys_release(&cg);
	rmtmp();
}

TEST_MAIN_BEGIN("runtime_cgroup")
RUN(detect_v2);
RUN(detect_v1);
RUN(detect_hybrid);
RUN(detect_none);
RUN(v2_limits);
RUN(v2_unlimited_resets);
RUN(fresh_cgroup_writes_only_limits);
RUN(v2_stats_and_oom);
RUN(v2_stats_known_limits);
RUN(v2_stats_kept_files);
RUN(v2_stats_fd_budget);
RUN(v1_limits);
RUN(v1_cpuset_inherits);
RUN(v1_reused_cgroup_reset);
RUN(v1_stats_and_oom_control);
RUN(failure_leaves_nothing);
RUN(missing_controller);
RUN(destroy_idempotent);
RUN(v1_update_in_place_all_or_nothing);
RUN(v2_update_in_place_all_or_nothing);
TEST_MAIN_END
