/*
 * Nobody waits for the kept stats files' lock (cgroup.c, struct
 * cg_stat_cache): while another thread holds it (a scrape reading a
 * cgroup), a read goes by path and keeps nothing, and a forget (a cgroup
 * being removed) returns at once and is done by the holder as it lets go.
 * The file is included whole to reach the lock; a fake v2 hierarchy in a
 * temporary directory stands for the kernel's. An alarm turns a wait
 * (the code before this rule) into a failure instead of a hang.
 */
#include "../../../src/runtime/linux/cgroup.c"

#include "test.h"

#include <dirent.h>
#include <stdio.h>

static const char *mi_v2 =
	"25 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:8 - cgroup2 cgroup2 "
	"rw,nsdelegate,memory_recursiveprot\n";

static char tmp[64];

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

static int nfds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		abort();
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1;
}

static void fake_tree(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/clbsd-cglock-XXXXXX");
	if (!mkdtemp(tmp))
		abort();
	put("sys/fs/cgroup/cgroup.controllers", "cpu memory pids\n");
	put("sys/fs/cgroup/clbsd/web/cpu.stat", "usage_usec 1500\n");
	put("sys/fs/cgroup/clbsd/web/memory.current", "1234567\n");
	put("sys/fs/cgroup/clbsd/web/memory.events", "oom_kill 2\n");
	put("sys/fs/cgroup/clbsd/web/pids.current", "3\n");
}

/* The holder: another thread, as the metrics thread would be. */
struct holder {
	struct cg_stat_cache *sc;
	pthread_mutex_t m;
	pthread_cond_t cv;
	int phase; /* 0 start, 1 holding, 2 let go (asked), 3 done */
};

static void *hold(void *arg)
{
	struct holder *h = arg;
	pthread_mutex_lock(&h->sc->lock);
	pthread_mutex_lock(&h->m);
	h->phase = 1;
	pthread_cond_broadcast(&h->cv);
	while (h->phase != 2)
		pthread_cond_wait(&h->cv, &h->m);
	pthread_mutex_unlock(&h->m);
	stat_unlock(h->sc);
	pthread_mutex_lock(&h->m);
	h->phase = 3;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->m);
	return NULL;
}

static void wait_phase(struct holder *h, int phase)
{
	pthread_mutex_lock(&h->m);
	while (h->phase != phase)
		pthread_cond_wait(&h->cv, &h->m);
	pthread_mutex_unlock(&h->m);
}

TEST(held_lock_waits_for_nobody)
{
	struct clbsd_err err;
	struct cg_sys cg;
	struct rt_stats st;
	struct rt_limits set = {.memory = 32 << 20, .pids = 16};
	fake_tree();
	CHECK_INT(cg_sys_parse(mi_v2, tmp, &cg, &err), 0);
	int before = nfds();
	CHECK_INT(cg_stats(&cg, "clbsd/web", &set, &st, &err), 0);
	CHECK_INT(nfds(), before + 4);
	CHECK_INT(cg.stats->n, 1);

	alarm(10);
	struct holder h = {
		.sc = cg.stats, .m = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	pthread_t t;
	CHECK_INT(pthread_create(&t, NULL, hold, &h), 0);
	wait_phase(&h, 1);

	/* A read while it is held: the right values, by path, nothing kept. */
	put("sys/fs/cgroup/clbsd/web/pids.current", "5\n");
	CHECK_INT(cg_stats(&cg, "clbsd/web", &set, &st, &err), 0);
	CHECK_INT(st.pids_current, 5);
	CHECK_INT(st.cpu_usage_ns, 1500000);
	CHECK_INT(nfds(), before + 4);

	/* A removal while it is held returns; its files go when the holder lets go. */
	/* (The fake cgroup is not removed: it holds files. Its stats are forgotten first.) */
	cg_destroy(&cg, "clbsd/web", 0, &err);
	CHECK_INT(cg.stats->n, 1);
	CHECK_INT(nfds(), before + 4);
	pthread_mutex_lock(&h.m);
	h.phase = 2;
	pthread_cond_broadcast(&h.cv);
	pthread_mutex_unlock(&h.m);
	wait_phase(&h, 3);
	pthread_join(t, NULL);
	alarm(0);
	CHECK_INT(cg.stats->n, 0);
	CHECK_INT(nfds(), before);

	cg_sys_release(&cg);
	fs_rm_rf(tmp, &err);
}

TEST_MAIN_BEGIN("runtime_cgroup_lock")
RUN(held_lock_waits_for_nobody);
TEST_MAIN_END
