/*
 * The zfs storage driver against real zfs: a file-backed pool made for this
 * run (its name carries the pid) under zfs-fuse, started here when it is not
 * running. The cases run in a child process; the parent destroys the pool,
 * its file and the mount directories afterwards whatever happened, and stops
 * zfs-fuse when it started it. Without zfs-fuse every case is skipped with
 * the reason.
 */
#include "storage/storage.h"
#include "storage/tree.h"
#include "test.h"
#include "util/util.h"

#include <jansson.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>

static char pool[64], img[256], base[128], mnt[256], mnt2[256];
static char ds[96], ds2[96];
static char rootfs_small[256], rootfs_big[256];
static struct storage st;

/* Run zfs with the given arguments (NULL-terminated); its first output line. */
static __attribute__((sentinel)) char *zfs_out(const char *arg, ...)
{
	struct clbsd_err err;
	struct strv v = STRV_INIT;
	strv_push(&v, "zfs");
	va_list ap;
	va_start(ap, arg);
	for (const char *a = arg; a; a = va_arg(ap, const char *))
		strv_push(&v, a);
	va_end(ap);
	char *out = NULL;
	int r = proc_run(v.v, &out, &err);
	strv_release(&v);
	if (r < 0)
		return NULL;
	out[strcspn(out, "\n")] = '\0';
	return out;
}

/* The value of a property, or NULL when the dataset is missing. */
static char *getprop(const char *p, const char *dataset)
{
	return zfs_out("get", "-H", "-p", "-o", "value", p, dataset, NULL);
}

static bool ds_exists(const char *dataset)
{
	char *v = getprop("type", dataset);
	free(v);
	return v != NULL;
}

static bool fuse_running(void);

/* Where the image store keeps image id's tree: <dir>/<id>/rootfs. */
static char *store_rootfs(const char *id)
{
	return xasprintf("%s/store/images/%s/rootfs", base, id);
}

/*
 * Container `name` from image `id`, made the way the daemon makes one:
 * create() by the paths of the image's tree and the container's directory
 * (which prepares the image when it is not), then its tunables; undone when
 * they are refused.
 */
static int ctr_make(const char *name, const char *id, const struct storage_props *p,
		    struct rt_rootfs *r, struct clbsd_err *err)
{
	char *tree = store_rootfs(id);
	char *dir = storage_ctr_dir(&st, name);
	int rc = st.ops->create(&st, tree, dir, r, err);
	if (rc == 0 && p && (rc = st.ops->ctr_set_props(&st, name, p, err)) < 0) {
		struct clbsd_err ignore;
		st.ops->remove(&st, dir, &ignore);
		rt_rootfs_release(r);
	}
	free(tree), free(dir);
	return rc;
}

/* *r for container `name` of storage s, as the daemon finds it after a restart. */
static int ctr_find(struct storage *s, const char *name, struct rt_rootfs *r, struct clbsd_err *err)
{
	char *dir = storage_ctr_dir(s, name);
	int rc = s->ops->describe(s, NULL, dir, r, err);
	free(dir);
	return rc;
}

static double now_s(void)
{
	return (double)time_mono_ns() / 1e9;
}

TEST(open_makes_layout)
{
	struct clbsd_err err;
	CHECK_INT(storage_zfs_open(pool, ds, mnt, &st, &err), 0);
	CHECK_STR(st.ops->name, "zfs");
	CHECK(st.caps & STORAGE_CAP_CHEAP_CLONE);
	CHECK(st.fuse == fuse_running());
	char *d = xasprintf("%s/containers", ds);
	char *m = getprop("clbsd:managed", d);
	CHECK_STR(m, "1");
	free(m);
	m = getprop("mountpoint", d);
	char *want = xasprintf("%s/containers", mnt);
	CHECK_STR(m, want);
	free(m), free(want), free(d);
	/* Opening again changes nothing and works. */
	struct storage again;
	CHECK_INT(storage_zfs_open(pool, ds, mnt, &again, &err), 0);
	storage_release(&again);
	/* Bad names never reach zfs. */
	CHECK(storage_zfs_open(pool, "other/x", mnt, &again, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_INVALID);
	CHECK(storage_zfs_open("nosuchpool", "nosuchpool/x", mnt, &again, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_UNAVAIL);
}

TEST(image_prepare_idempotent)
{
	struct clbsd_err err;
	CHECK_INT(st.ops->image_prepare(&st, "small", rootfs_small, &err), 0);
	CHECK_INT(st.ops->image_prepare(&st, "small", rootfs_small, &err), 0);
	char *snap = xasprintf("%s/images/small@base", ds);
	CHECK(ds_exists(snap));
	free(snap);
	char *d = xasprintf("%s/images/small", ds);
	char *m = getprop("mounted", d);
	CHECK_STR(m, "no");
	free(m), free(d);
	CHECK(st.ops->image_prepare(&st, "../x", rootfs_small, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_INVALID);
	struct rt_rootfs r;
	/* An image with no tree cannot be prepared, so no container is made from it. */
	CHECK(ctr_make("nope", "missing", NULL, &r, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_INVALID);
}

TEST(clone_cost_independent_of_image_size)
{
	struct clbsd_err err;
	CHECK_INT(st.ops->image_prepare(&st, "big", rootfs_big, &err), 0);
	struct rt_rootfs r1, r2;
	double t0 = now_s();
	CHECK_INT(ctr_make("small1", "small", NULL, &r1, &err), 0);
	double t1 = now_s();
	CHECK_INT(ctr_make("big1", "big", NULL, &r2, &err), 0);
	double t2 = now_s();
	printf("# create: 1 MB image %.3f s, 64 MB image %.3f s (ratio %.2f)\n", t1 - t0, t2 - t1,
	       (t2 - t1) / (t1 - t0));
	/* Not a benchmark: only a copy of the image would miss this bound. */
	CHECK(t2 - t1 <= 4 * (t1 - t0) + 0.5);
	char *big = xasprintf("%s/data/bulk.bin", r2.lower);
	struct stat sb;
	CHECK(stat(big, &sb) == 0 && sb.st_size == (64 << 20));
	free(big);
	CHECK_STR(r1.mode, "bind");
	char *want = xasprintf("%s/containers/small1/rootfs", mnt);
	CHECK_STR(r1.target, want);
	free(want);
	/* One clone is the whole container: rootfs/ is a directory in it. */
	char *cds = xasprintf("%s/containers/small1", ds);
	char *origin = getprop("origin", cds);
	want = xasprintf("%s/images/small@base", ds);
	CHECK_STR(origin, want);
	free(want), free(origin);
	char *child = xasprintf("%s/rootfs", cds);
	CHECK(!ds_exists(child));
	free(child), free(cds);
	char *hn = tree_get(r1.lower, "etc/hostname");
	CHECK_STR(hn, "image\n");
	free(hn);
	rt_rootfs_release(&r1);
	rt_rootfs_release(&r2);
	CHECK_INT(st.ops->ctr_remove(&st, "big1", true, &err), 0);
	/* An image in use is not removed. */
	CHECK(st.ops->image_remove(&st, "small", &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_CONFLICT);
	CHECK_INT(st.ops->image_remove(&st, "big", &err), 0);
	CHECK_INT(st.ops->ctr_remove(&st, "small1", true, &err), 0);
	CHECK_INT(st.ops->ctr_remove(&st, "small1", true, &err), 0);
}

TEST(snapshot_rollback_restores_files)
{
	struct clbsd_err err;
	struct rt_rootfs r;
	CHECK_INT(ctr_make("web", "small", NULL, &r, &err), 0);
	char *dir = storage_ctr_dir(&st, "web");
	CHECK_INT(tree_put(dir, "container.json", "{\"v\":1}\n"), 0);
	CHECK_INT(tree_put(r.lower, "etc/motd", "first\n"), 0);
	char *before = tree_digest(r.lower);
	CHECK_INT(st.ops->snapshot(&st, "web", "s1", &err), 0);
	CHECK(st.ops->snapshot(&st, "web", "s1", &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_CONFLICT);
	CHECK_INT(tree_put(r.lower, "etc/motd", "second, longer than before\n"), 0);
	CHECK_INT(tree_put(r.lower, "etc/new", "new\n"), 0);
	char *pw = xasprintf("%s/etc/passwd", r.lower);
	unlink(pw);
	free(pw);
	CHECK_INT(tree_put(dir, "container.json", "{\"v\":2}\n"), 0);
	/* Without the state part container.json stays as it is now. */
	if (st.ops->rollback(&st, "web", "s1", 0, &err) < 0)
		FAILF("rollback: %s", err.msg);
	char *after = tree_digest(r.lower);
	CHECK_STR(after, before);
	char *cj = tree_get(dir, "container.json");
	CHECK_STR(cj, "{\"v\":2}\n");
	free(cj);
	CHECK_INT(st.ops->rollback(&st, "web", "s1", STORAGE_PART_STATE, &err), 0);
	cj = tree_get(dir, "container.json");
	CHECK_STR(cj, "{\"v\":1}\n");
	free(cj);
	/* A newer snapshot blocks rolling back further unless discarded. */
	CHECK_INT(st.ops->snapshot(&st, "web", "s2", &err), 0);
	struct storage_snapshot *s;
	size_t n;
	CHECK_INT(st.ops->snapshot_list(&st, "web", &s, &n, &err), 0);
	CHECK_INT(n, 2);
	CHECK_STR(s[0].label, "s1");
	CHECK_STR(s[1].label, "s2");
	CHECK(s[0].created_ns > 0 && s[0].created_ns <= s[1].created_ns);
	CHECK(s[0].used >= 0);
	storage_snapshots_free(s, n);
	CHECK(st.ops->rollback(&st, "web", "s1", STORAGE_PART_ALL, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_CONFLICT);
	CHECK(strstr(err.msg, "s2") != NULL);
	CHECK_INT(
		st.ops->rollback(&st, "web", "s1", STORAGE_PART_ALL | STORAGE_DISCARD_NEWER, &err),
		0);
	CHECK_INT(st.ops->snapshot_list(&st, "web", &s, &n, &err), 0);
	CHECK_INT(n, 1);
	storage_snapshots_free(s, n);
	CHECK(st.ops->rollback(&st, "web", "nosuch", 0, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_NOTFOUND);
	CHECK(st.ops->snapshot(&st, "web", "bad label", &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_INVALID);
	CHECK_INT(st.ops->snapshot_destroy(&st, "web", "s1", &err), 0);
	CHECK_INT(st.ops->snapshot_list(&st, "web", &s, &n, &err), 0);
	CHECK_INT(n, 0);
	storage_snapshots_free(s, n);
	free(before), free(after), free(dir);
	rt_rootfs_release(&r);
}

TEST(volume_survives_recreate)
{
	struct clbsd_err err;
	char *path = NULL, *again = NULL;
	CHECK_INT(st.ops->volume_ensure(&st, "web", "data", NULL, &path, &err), 0);
	CHECK_INT(tree_put(path, "db", "precious\n"), 0);
	/* Recreate the container: new rootfs, same volume. */
	CHECK_INT(st.ops->ctr_remove(&st, "web", false, &err), 0);
	struct rt_rootfs r;
	CHECK_INT(ctr_make("web", "small", NULL, &r, &err), 0);
	char *motd = tree_get(r.lower, "etc/motd");
	CHECK(motd == NULL);
	free(motd);
	CHECK_INT(st.ops->volume_ensure(&st, "web", "data", NULL, &again, &err), 0);
	CHECK_STR(again, path);
	char *db = tree_get(again, "db");
	CHECK_STR(db, "precious\n");
	free(db);
	CHECK(st.ops->volume_ensure(&st, "web", "Bad/Name", NULL, &again, &err) < 0);
	rt_rootfs_release(&r);
	free(path), free(again);
}

TEST(quota_and_props)
{
	struct clbsd_err err;
	/* zfs-fuse dies when a quota is hit with small records (docs/storage.md). */
	struct storage_props small = {.recordsize = 16384};
	struct rt_rootfs r;
	if (st.fuse) {
		CHECK(ctr_make("tight", "small", &small, &r, &err) < 0);
		CHECK_INT(err.kind, CLBSD_E_UNAVAIL);
	}
	struct storage_props p = {.quota = 8 << 20,
				  .compression = "gzip",
				  .recordsize = 131072,
				  .spec_hash = "abc123"};
	CHECK_INT(ctr_make("tight", "small", &p, &r, &err), 0);
	char *d = xasprintf("%s/containers/tight", ds);
	char *v = getprop("quota", d);
	CHECK_STR(v, "8388608");
	free(v);
	v = getprop("compression", d); /* state and rootfs/ share it */
	CHECK_STR(v, "gzip");
	free(v);
	v = getprop("clbsd:spec-hash", d);
	CHECK_STR(v, "abc123");
	free(v);
	/* Writing past the quota fails the way a full disk does. */
	char *f = xasprintf("%s/fill", r.lower);
	int fd = open(f, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	char *b = malloc(1 << 20);
	unsigned x = 12345;
	int werr = 0;
	for (int i = 0; i < 64 && !werr; i++) {
		for (size_t k = 0; k < (1 << 20); k++) { /* incompressible */
			x ^= x << 13, x ^= x >> 17, x ^= x << 5;
			b[k] = (char)x;
		}
		if (write(fd, b, 1 << 20) < 0)
			werr = errno;
		else if (i % 4 == 3 && fsync(fd) < 0)
			werr = errno;
	}
	close(fd);
	free(b);
	printf("# write past an 8 MB quota: %s\n", werr ? strerror(werr) : "no error");
	CHECK(werr == EDQUOT || werr == ENOSPC);
	unlink(f);
	free(f);
	/* Props change and reset. */
	struct storage_props q = {
		.quota = STORAGE_PROP_RESET, .reservation = 1 << 20, .compression = ""};
	CHECK_INT(st.ops->ctr_set_props(&st, "tight", &q, &err), 0);
	v = getprop("quota", d);
	CHECK_STR(v, "0");
	free(v);
	v = getprop("reservation", d);
	CHECK_STR(v, "1048576");
	free(v);
	v = getprop("compression", d);
	CHECK_STR(v, "off");
	free(v);
	struct storage_props bad = {.compression = "gzip;rm"};
	CHECK(st.ops->ctr_set_props(&st, "tight", &bad, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_INVALID);
	/* Volume quota. */
	struct storage_props vq = {.quota = 4 << 20};
	char *path = NULL;
	CHECK_INT(st.ops->volume_ensure(&st, "tight", "logs", &vq, &path, &err), 0);
	char *vd = xasprintf("%s/volumes/tight/logs", ds);
	v = getprop("quota", vd);
	CHECK_STR(v, "4194304");
	free(v), free(vd), free(path);
	CHECK_INT(st.ops->ctr_remove(&st, "tight", true, &err), 0);
	CHECK(!ds_exists(d));
	free(d);
	rt_rootfs_release(&r);
}

/* Send web@label (from `from`) into a new file; returns its path. */
static char *send_to_file(const char *name, const char *label, const char *from,
			  struct clbsd_err *err)
{
	char *path = xasprintf("%s/%s-%s.stream", base, name, label);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int r = st.ops->send(&st, name, label, from, NULL, fd, err);
	close(fd);
	if (r < 0) {
		free(path);
		return NULL;
	}
	return path;
}

TEST(send_receive_reproduces_files)
{
	struct clbsd_err err;
	struct rt_rootfs r;
	CHECK_INT(ctr_find(&st, "web", &r, &err), 0);
	char *dir = storage_ctr_dir(&st, "web");
	char *vol = xasprintf("%s/volumes/web/data", mnt);
	CHECK_INT(tree_put(dir, "container.json", "{\"name\":\"web\"}\n"), 0);
	CHECK_INT(tree_put(r.lower, "etc/motd", "sent\n"), 0);
	struct storage_props vp = {.quota = 32 << 20};
	char *path = NULL;
	CHECK_INT(st.ops->volume_ensure(&st, "web", "data", &vp, &path, &err), 0);
	free(path);
	CHECK_INT(st.ops->snapshot(&st, "web", "m1", &err), 0);
	char *file = send_to_file("web", "m1", NULL, &err);
	CHECK(file != NULL);

	/* A fresh root in the same pool stands in for another host. */
	struct storage st2;
	CHECK_INT(storage_zfs_open(pool, ds2, mnt2, &st2, &err), 0);
	int fd = open(file, O_RDONLY);
	CHECK_INT(st2.ops->receive(&st2, "copy", fd, &err), 0);
	close(fd);
	struct rt_rootfs r2;
	CHECK_INT(ctr_find(&st2, "copy", &r2, &err), 0);
	char *a = tree_digest(r.lower), *b = tree_digest(r2.lower);
	CHECK_STR(b, a);
	free(a), free(b);
	char *dir2 = storage_ctr_dir(&st2, "copy");
	char *cj = tree_get(dir2, "container.json");
	CHECK_STR(cj, "{\"name\":\"web\"}\n");
	free(cj);
	char *vol2 = xasprintf("%s/volumes/copy/data", mnt2);
	a = tree_digest(vol), b = tree_digest(vol2);
	CHECK_STR(b, a);
	free(a), free(b);
	char *vds = xasprintf("%s/volumes/copy/data", ds2);
	char *v = getprop("quota", vds);
	CHECK_STR(v, "33554432");
	free(v);
	v = getprop("clbsd:managed", vds);
	CHECK_STR(v, "1");
	free(v), free(vds);

	/* An incremental stream carries only the changes since m1. */
	CHECK_INT(tree_put(r.lower, "etc/motd", "changed after m1\n"), 0);
	CHECK_INT(tree_put(vol, "db", "v2\n"), 0);
	CHECK_INT(st.ops->snapshot(&st, "web", "m2", &err), 0);
	char *inc = send_to_file("web", "m2", "m1", &err);
	CHECK(inc != NULL);
	struct stat full_sb, inc_sb;
	stat(file, &full_sb), stat(inc, &inc_sb);
	printf("# stream sizes: full %lld bytes, incremental %lld bytes\n",
	       (long long)full_sb.st_size, (long long)inc_sb.st_size);
	fd = open(inc, O_RDONLY);
	CHECK_INT(st2.ops->receive(&st2, "copy", fd, &err), 0);
	close(fd);
	a = tree_digest(r.lower), b = tree_digest(r2.lower);
	CHECK_STR(b, a);
	free(a), free(b);
	char *db = tree_get(vol2, "db");
	CHECK_STR(db, "v2\n");
	free(db);
	struct storage_snapshot *s;
	size_t n;
	CHECK_INT(st2.ops->snapshot_list(&st2, "copy", &s, &n, &err), 0);
	CHECK_INT(n, 2);
	storage_snapshots_free(s, n);
	/* The same incremental again is refused and changes nothing. */
	fd = open(inc, O_RDONLY);
	CHECK(st2.ops->receive(&st2, "copy", fd, &err) < 0);
	close(fd);
	CHECK_INT(st2.ops->ctr_remove(&st2, "copy", true, &err), 0);

	/* Through a pipe (no file to write parts into raw): framed, same result. */
	int pp[2];
	CHECK_INT(pipe(pp), 0);
	pid_t sender = fork();
	if (sender == 0) {
		close(pp[0]);
		struct clbsd_err e;
		_exit(st.ops->send(&st, "web", "m2", NULL, NULL, pp[1], &e) == 0 ? 0 : 1);
	}
	close(pp[1]);
	int rr = st2.ops->receive(&st2, "piped", pp[0], &err);
	close(pp[0]);
	int ws = 0;
	waitpid(sender, &ws, 0);
	if (rr < 0)
		FAILF("receive from a pipe: %s", err.msg);
	CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	struct rt_rootfs r3;
	CHECK_INT(ctr_find(&st2, "piped", &r3, &err), 0);
	a = tree_digest(r.lower), b = tree_digest(r3.lower);
	CHECK_STR(b, a);
	free(a), free(b);
	rt_rootfs_release(&r3);
	CHECK_INT(st2.ops->ctr_remove(&st2, "piped", true, &err), 0);
	storage_release(&st2);
	unlink(file), unlink(inc);
	free(file), free(inc), free(dir), free(dir2), free(vol), free(vol2);
	rt_rootfs_release(&r);
	rt_rootfs_release(&r2);
}

TEST(truncated_receive_leaves_nothing)
{
	struct clbsd_err err;
	char *file = send_to_file("web", "m2", NULL, &err);
	CHECK(file != NULL);
	struct stat sb;
	CHECK(stat(file, &sb) == 0);
	/* Cut inside the rootfs part, then right before the end mark. */
	off_t cuts[] = {sb.st_size / 2, sb.st_size - 4, 40};
	for (size_t i = 0; i < ARRAY_SIZE(cuts); i++) {
		char *cut = xasprintf("%s.cut", file);
		char *data = NULL;
		size_t len = 0;
		CHECK_INT(fs_read_file(file, &data, &len, &err), 0);
		CHECK_INT(fs_write_atomic(cut, data, (size_t)cuts[i], 0600, &err), 0);
		free(data);
		int fd = open(cut, O_RDONLY);
		int r = st.ops->receive(&st, "half", fd, &err);
		close(fd);
		CHECK(r < 0);
		char *d = xasprintf("%s/containers/half", ds);
		char *vd = xasprintf("%s/volumes/half", ds);
		char *dir = storage_ctr_dir(&st, "half");
		CHECK(!ds_exists(d));
		CHECK(!ds_exists(vd));
		CHECK(!fs_exists(dir));
		free(d), free(vd), free(dir);
		unlink(cut);
		free(cut);
	}
	/* Garbage is refused before anything is made. */
	int p[2];
	CHECK(pipe(p) == 0);
	CHECK(write(p[1], "hello, world\n", 13) == 13);
	close(p[1]);
	CHECK(st.ops->receive(&st, "half", p[0], &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_INVALID);
	close(p[0]);
	unlink(file);
	free(file);
}

/* Send name@label with the older snapshots snaps through a pipe (framed) into a new file. */
static char *send_framed(const char *name, const char *label, char *const *snaps)
{
	char *path = xasprintf("%s/%s-%s.framed", base, name, label);
	int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int pp[2];
	if (out < 0 || pipe(pp) < 0) {
		free(path);
		return NULL;
	}
	pid_t sender = fork();
	if (sender == 0) {
		close(pp[0]);
		struct clbsd_err e;
		_exit(st.ops->send(&st, name, label, NULL, snaps, pp[1], &e) == 0 ? 0 : 1);
	}
	close(pp[1]);
	char buf[65536];
	ssize_t n;
	bool ok = true;
	while ((n = read(pp[0], buf, sizeof(buf))) > 0)
		ok = ok && write(out, buf, (size_t)n) == n;
	close(pp[0]);
	close(out);
	int ws = 0;
	waitpid(sender, &ws, 0);
	if (!ok || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
		unlink(path);
		free(path);
		return NULL;
	}
	return path;
}

/* Receive file (its first len bytes) into "half": refused, and nothing of it left. */
static void refused_leaves_nothing(const char *file, size_t len, const char *why)
{
	struct clbsd_err err;
	char *cut = xasprintf("%s.cut", file);
	char *data = NULL;
	size_t n = 0;
	CHECK_INT(fs_read_file(file, &data, &n, &err), 0);
	CHECK_INT(fs_write_atomic(cut, data, len < n ? len : n, 0600, &err), 0);
	free(data);
	int fd = open(cut, O_RDONLY);
	int r = st.ops->receive(&st, "half", fd, &err);
	close(fd);
	if (r == 0)
		FAILF("%s: received", why);
	char *d = xasprintf("%s/containers/half", ds);
	char *vd = xasprintf("%s/volumes/half", ds);
	char *dir = storage_ctr_dir(&st, "half");
	if (ds_exists(d) || ds_exists(vd) || fs_exists(dir))
		FAILF("%s: left %s", why, d);
	free(d), free(vd), free(dir);
	unlink(cut);
	free(cut);
}

/*
 * web's snapshots m1 and m2 travel with m3 as a chain: the receiver has
 * the three, each with its files. A chain cut short, or whose header does
 * not match the zfs streams (they do not connect), is refused and leaves
 * nothing.
 */
TEST(send_receive_snapshot_chain)
{
	struct clbsd_err err;
	struct rt_rootfs r, r2;
	CHECK_INT(ctr_find(&st, "web", &r, &err), 0);
	char *vol = xasprintf("%s/volumes/web/data", mnt);
	CHECK_INT(tree_put(r.lower, "etc/motd", "m3\n"), 0);
	CHECK_INT(tree_put(vol, "chain", "3\n"), 0);
	CHECK_INT(st.ops->snapshot(&st, "web", "m3", &err), 0);
	char *snaps[] = {"m2", "m1", NULL}; /* the driver orders them */
	char *path = xasprintf("%s/web-chain.stream", base);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK_INT(st.ops->send(&st, "web", "m3", NULL, snaps, fd, &err), 0);
	close(fd);
	/* Not with the changes since a snapshot. */
	CHECK(st.ops->send(&st, "web", "m3", "m1", snaps, -1, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_INVALID);

	struct storage st2;
	CHECK_INT(storage_zfs_open(pool, ds2, mnt2, &st2, &err), 0);
	fd = open(path, O_RDONLY);
	CHECK_INT(st2.ops->receive(&st2, "chain", fd, &err), 0);
	close(fd);
	struct storage_snapshot *s = NULL;
	size_t n = 0;
	CHECK_INT(st2.ops->snapshot_list(&st2, "chain", &s, &n, &err), 0);
	CHECK_INT(n, 3);
	for (size_t i = 0; i < n && i < 3; i++) {
		static const char *const want[] = {"m1", "m2", "m3"};
		CHECK_STR(s[i].label, want[i]);
	}
	storage_snapshots_free(s, n);
	CHECK_INT(ctr_find(&st2, "chain", &r2, &err), 0);
	char *a = tree_digest(r.lower), *b = tree_digest(r2.lower);
	CHECK_STR(b, a);
	free(a), free(b);
	char *vol2 = xasprintf("%s/volumes/chain/data", mnt2);
	char *c3 = tree_get(vol2, "chain");
	CHECK_STR(c3, "3\n");
	free(c3);
	CHECK_INT(st2.ops->rollback(&st2, "chain", "m2", STORAGE_PART_ALL | STORAGE_DISCARD_NEWER,
				    &err),
		  0);
	char *motd = tree_get(r2.lower, "etc/motd");
	CHECK_STR(motd, "changed after m1\n");
	free(motd);
	char *db = tree_get(vol2, "db");
	CHECK_STR(db, "v2\n");
	free(db);
	c3 = tree_get(vol2, "chain");
	CHECK(c3 == NULL);
	free(c3);
	CHECK_INT(st2.ops->rollback(&st2, "chain", "m1", STORAGE_PART_ALL | STORAGE_DISCARD_NEWER,
				    &err),
		  0);
	motd = tree_get(r2.lower, "etc/motd");
	CHECK_STR(motd, "sent\n");
	free(motd);
	rt_rootfs_release(&r2);
	CHECK_INT(st2.ops->ctr_remove(&st2, "chain", true, &err), 0);
	storage_release(&st2);
	free(vol2);

	/* Framed (through a pipe), cut anywhere in the chain. */
	char *framed = send_framed("web", "m3", snaps);
	CHECK(framed != NULL);
	struct stat sb;
	CHECK(framed && stat(framed, &sb) == 0);
	off_t cuts[] = {sb.st_size / 4, sb.st_size / 2, sb.st_size * 3 / 4, sb.st_size - 4};
	for (size_t i = 0; framed && i < ARRAY_SIZE(cuts); i++)
		refused_leaves_nothing(framed, (size_t)cuts[i], "cut short");

	/*
	 * Its header rewritten to say the chain is m2 alone: the streams no
	 * longer follow it (the m2 increment comes where m3's is said to
	 * be, then a part gets another's), so zfs recv refuses one.
	 */
	char *data = NULL;
	size_t len = 0;
	CHECK(framed && fs_read_file(framed, &data, &len, &err) == 0);
	const size_t ml = strlen("CLBSD-ZFS-SEND 1\n");
	if (data && len > ml + 4) {
		const unsigned char *h = (const unsigned char *)data + ml;
		uint32_t hl =
			(uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
		json_t *hj = json_loadb(data + ml + 4, hl, 0, NULL);
		CHECK(hj != NULL);
		json_object_set_new(hj, "snapshots", json_pack("[s]", "m2"));
		size_t i;
		json_t *pj;
		json_array_foreach(json_object_get(hj, "parts"), i, pj)
		{
			if (json_object_get(pj, "chain"))
				json_object_set_new(pj, "chain", json_pack("[s]", "m2"));
		}
		char *line = json_dumps(hj, JSON_COMPACT);
		json_decref(hj);
		uint32_t nl = (uint32_t)strlen(line);
		unsigned char nh[4] = {nl >> 24, nl >> 16, nl >> 8, nl};
		struct buf nb = BUF_INIT;
		buf_add(&nb, data, ml);
		buf_add(&nb, nh, 4);
		buf_add(&nb, line, nl);
		buf_add(&nb, data + ml + 4 + hl, len - ml - 4 - hl);
		char *bad = xasprintf("%s.bad", framed);
		CHECK_INT(fs_write_atomic(bad, nb.data, nb.len, 0600, &err), 0);
		refused_leaves_nothing(bad, nb.len, "a chain that does not connect");
		unlink(bad);
		free(bad), free(line);
		buf_release(&nb);
	}
	free(data);
	/* web as the cases after this one expect it. */
	CHECK_INT(st.ops->snapshot_destroy(&st, "web", "m3", &err), 0);
	CHECK_INT(tree_put(r.lower, "etc/motd", "changed after m1\n"), 0);
	char *cf = xasprintf("%s/chain", vol);
	unlink(cf);
	free(cf), free(vol);
	if (framed)
		unlink(framed);
	unlink(path);
	free(framed), free(path);
	rt_rootfs_release(&r);
}

TEST(clone_container)
{
	struct clbsd_err err;
	struct rt_rootfs r, c;
	CHECK_INT(ctr_find(&st, "web", &r, &err), 0);
	CHECK_INT(st.ops->clone(&st, "web", "m1", "web2", STORAGE_PART_ALL, &c, &err), 0);
	char *motd = tree_get(c.lower, "etc/motd");
	CHECK_STR(motd, "sent\n");
	free(motd);
	char *db = tree_get(c.lower, "etc/hostname");
	CHECK_STR(db, "image\n");
	free(db);
	char *vol = xasprintf("%s/volumes/web2/data", mnt);
	CHECK(fs_is_dir(vol));
	free(vol);
	/* A clone's origin cannot go while the clone lives. */
	CHECK(st.ops->snapshot_destroy(&st, "web", "m1", &err) < 0);
	if (err.kind != CLBSD_E_CONFLICT)
		FAILF("%s", err.msg);
	/* Without a label the clone is of now. */
	struct rt_rootfs c3;
	CHECK_INT(st.ops->clone(&st, "web", NULL, "web3", 0, &c3, &err), 0);
	motd = tree_get(c3.lower, "etc/motd");
	CHECK_STR(motd, "changed after m1\n");
	free(motd);
	CHECK(st.ops->clone(&st, "web", "m1", "web2", 0, &c3, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_CONFLICT);
	CHECK_INT(st.ops->ctr_remove(&st, "web2", true, &err), 0);
	CHECK_INT(st.ops->ctr_remove(&st, "web3", true, &err), 0);
	CHECK_INT(st.ops->snapshot_destroy(&st, "web", "clone-web3", &err), 0);
	rt_rootfs_release(&r);
	rt_rootfs_release(&c);
	rt_rootfs_release(&c3);
}

TEST(unmanaged_refused)
{
	struct clbsd_err err;
	char *foreign = xasprintf("%s/containers/foreign", ds);
	char *out = zfs_out("create", foreign, NULL);
	CHECK(out != NULL);
	free(out);
	CHECK(st.ops->ctr_remove(&st, "foreign", true, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_CONFLICT);
	CHECK(strstr(err.msg, "not clbsd's") != NULL);
	CHECK(ds_exists(foreign));
	struct rt_rootfs r;
	CHECK(ctr_make("foreign", "small", NULL, &r, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_CONFLICT);
	CHECK(st.ops->snapshot(&st, "foreign", "x", &err) < 0);
	CHECK(ds_exists(foreign));
	/* A dataset someone made inside a managed one inherits clbsd:managed, but
	 * not locally: removing the container is refused rather than taking it. */
	char *inner = xasprintf("%s/containers/web/mine", ds);
	out = zfs_out("create", inner, NULL);
	CHECK(out != NULL);
	free(out);
	CHECK(st.ops->ctr_remove(&st, "web", false, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_CONFLICT);
	CHECK(ds_exists(inner));
	/* zfs-fuse: "dataset is busy" right after a mount; retry. */
	for (int i = 0; i < 20 && ds_exists(inner); i++) {
		free(zfs_out("destroy", inner, NULL));
		usleep(100000 * i);
	}
	for (int i = 0; i < 20 && ds_exists(foreign); i++) {
		free(zfs_out("destroy", foreign, NULL));
		usleep(100000 * i);
	}
	CHECK(!ds_exists(inner) && !ds_exists(foreign));
	free(foreign), free(inner);
}

TEST(path_entry_points_and_busy_remove)
{
	struct clbsd_err err;
	/* The image store's layout: <root>/images/<id>/rootfs. */
	char *store = xasprintf("%s/store/images/legacy/rootfs", base);
	CHECK_INT(fs_mkdir_p(store, 0755, &err), 0);
	CHECK_INT(tree_make_rootfs(store, 0), 0);
	char *dir = storage_ctr_dir(&st, "old");
	struct rt_rootfs r;
	CHECK_INT(st.ops->create(&st, store, dir, &r, &err), 0);
	rt_rootfs_release(&r);
	CHECK_INT(st.ops->describe(&st, store, dir, &r, &err), 0);
	char *written = xasprintf("%s/written", r.lower);
	CHECK_INT(tree_write(written, 3 << 20, 3), 0);
	free(written);
	/*
	 * Space is accounted when the transaction group syncs (up to 30 s on
	 * zfs-fuse); a property change waits for a sync, so make one.
	 */
	int64_t used = 0;
	for (int i = 0; i < 20 && used < (2 << 20); i++) {
		sync();
		free(zfs_out("set", "clbsd:test-sync=1", pool, NULL));
		used = st.ops->usage(&st, dir);
		if (used < (2 << 20))
			usleep(100000);
	}
	char *ods = xasprintf("%s/containers/old", ds);
	char *u = getprop("used", ods);
	printf("# usage after writing 3 MB: %lld bytes (%s)\n", (long long)used, u);
	free(u), free(ods);
	CHECK(used >= (2 << 20));
	/* Something holding the rootfs busy for a moment: remove retries. */
	pid_t pid = fork();
	if (pid == 0) {
		if (chdir(r.lower) < 0)
			_exit(1);
		usleep(700000);
		_exit(0);
	}
	usleep(100000);
	CHECK_INT(st.ops->remove(&st, dir, &err), 0);
	waitpid(pid, NULL, 0);
	CHECK(!fs_exists(r.lower));
	CHECK_INT(st.ops->remove(&st, dir, &err), 0);
	char *elsewhere = xasprintf("%s/elsewhere/old", base);
	CHECK(st.ops->describe(&st, store, elsewhere, &r, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_INVALID);
	CHECK_INT(st.ops->image_remove(&st, "legacy", &err), 0);
	rt_rootfs_release(&r);
	free(store), free(dir), free(elsewhere);
}

/*
 * Pools made before the tree layout: an image with its tree at the top of
 * its dataset (no clbsd:layout) and a container made from it as a state
 * dataset with the rootfs clone as its child. Both keep working: create,
 * rollback (state kept), send and receive, clone. A flat image nothing was
 * cloned from is remade in the tree layout.
 */
static char *flat_image(const char *id, const char *with_ctr)
{
	char *ids = xasprintf("%s/images/%s", ds, id);
	char *mp = xasprintf("%s/flat-%s", base, id);
	char *opt = xasprintf("mountpoint=%s", mp);
	char *snap = xasprintf("%s@base", ids);
	free(zfs_out("create", "-o", "clbsd:managed=1", "-o", opt, ids, NULL));
	if (tree_make_rootfs(mp, 0) < 0)
		printf("# flat image %s: cannot fill %s\n", id, mp);
	free(zfs_out("snapshot", snap, NULL));
	free(zfs_out("set", "mountpoint=none", ids, NULL));
	rmdir(mp);
	if (with_ctr) {
		char *c = xasprintf("%s/containers/%s", ds, with_ctr);
		char *cr = xasprintf("%s/rootfs", c);
		free(zfs_out("create", "-o", "clbsd:managed=1", c, NULL));
		free(zfs_out("clone", "-o", "clbsd:managed=1", snap, cr, NULL));
		free(c), free(cr);
	}
	free(mp), free(opt), free(snap);
	return ids;
}

TEST(flat_layout_still_served)
{
	struct clbsd_err err;
	char *ids = flat_image("flat", "oldc");
	char *oldc = xasprintf("%s/containers/oldc", ds);
	char *oldr = xasprintf("%s/rootfs", oldc);
	CHECK(ds_exists(oldr));
	/* Its image has a clone: it stays flat, and containers from it are flat too. */
	char *flat_tree = store_rootfs("flat");
	CHECK_INT(fs_mkdir_p(flat_tree, 0755, &err), 0);
	CHECK_INT(tree_make_rootfs(flat_tree, 0), 0);
	CHECK_INT(st.ops->image_prepare(&st, "flat", flat_tree, &err), 0);
	free(flat_tree);
	char *layout = getprop("clbsd:layout", ids);
	CHECK_STR(layout, "-");
	free(layout);
	struct rt_rootfs r, c;
	CHECK_INT(ctr_make("flatc", "flat", NULL, &r, &err), 0);
	char *fr = xasprintf("%s/containers/flatc/rootfs", ds);
	CHECK(ds_exists(fr));
	char *hn = tree_get(r.lower, "etc/hostname");
	CHECK_STR(hn, "image\n");
	free(hn), free(fr);
	rt_rootfs_release(&r);
	/* The hand-made one: describe, snapshot, rollback keeps its state. */
	CHECK_INT(ctr_find(&st, "oldc", &r, &err), 0);
	char *dir = storage_ctr_dir(&st, "oldc");
	CHECK_INT(tree_put(dir, "container.json", "{\"v\":1}\n"), 0);
	CHECK_INT(tree_put(r.lower, "etc/motd", "old\n"), 0);
	CHECK_INT(st.ops->snapshot(&st, "oldc", "f1", &err), 0);
	CHECK_INT(tree_put(r.lower, "etc/motd", "changed\n"), 0);
	CHECK_INT(tree_put(dir, "container.json", "{\"v\":2}\n"), 0);
	CHECK_INT(st.ops->rollback(&st, "oldc", "f1", 0, &err), 0);
	char *motd = tree_get(r.lower, "etc/motd");
	CHECK_STR(motd, "old\n");
	free(motd);
	char *cj = tree_get(dir, "container.json");
	CHECK_STR(cj, "{\"v\":2}\n");
	free(cj);
	/* Send and receive keep its shape; a clone of it is flat as well. */
	char *file = send_to_file("oldc", "f1", NULL, &err);
	CHECK(file != NULL);
	int fd = file ? open(file, O_RDONLY) : -1;
	CHECK_INT(st.ops->receive(&st, "oldc2", fd, &err), 0);
	if (fd >= 0)
		close(fd);
	CHECK_INT(ctr_find(&st, "oldc2", &c, &err), 0);
	motd = tree_get(c.lower, "etc/motd");
	CHECK_STR(motd, "old\n");
	free(motd);
	rt_rootfs_release(&c);
	char *r2 = xasprintf("%s/containers/oldc2/rootfs", ds);
	CHECK(ds_exists(r2));
	free(r2);
	CHECK_INT(st.ops->clone(&st, "oldc", "f1", "oldc3", 0, &c, &err), 0);
	motd = tree_get(c.lower, "etc/motd");
	CHECK_STR(motd, "old\n");
	free(motd);
	rt_rootfs_release(&c);
	CHECK_INT(st.ops->ctr_remove(&st, "oldc3", true, &err), 0);
	CHECK_INT(st.ops->ctr_remove(&st, "oldc2", true, &err), 0);
	CHECK_INT(st.ops->ctr_remove(&st, "flatc", true, &err), 0);
	CHECK_INT(st.ops->ctr_remove(&st, "oldc", true, &err), 0);
	CHECK_INT(st.ops->image_remove(&st, "flat", &err), 0);
	rt_rootfs_release(&r);
	if (file)
		unlink(file);
	free(file), free(dir), free(ids), free(oldc), free(oldr);

	/* Nothing cloned from it: the next prepare remakes it as a tree. */
	ids = flat_image("flat2", NULL);
	char *flat2_tree = store_rootfs("flat2");
	CHECK_INT(fs_mkdir_p(flat2_tree, 0755, &err), 0);
	CHECK_INT(tree_make_rootfs(flat2_tree, 0), 0);
	CHECK_INT(st.ops->image_prepare(&st, "flat2", flat2_tree, &err), 0);
	free(flat2_tree);
	layout = getprop("clbsd:layout", ids);
	CHECK_STR(layout, "tree");
	free(layout);
	CHECK_INT(ctr_make("treec", "flat2", NULL, &r, &err), 0);
	fr = xasprintf("%s/containers/treec/rootfs", ds);
	CHECK(!ds_exists(fr));
	free(fr);
	hn = tree_get(r.lower, "etc/hostname");
	CHECK_STR(hn, "image\n");
	free(hn);
	rt_rootfs_release(&r);
	CHECK_INT(st.ops->ctr_remove(&st, "treec", true, &err), 0);
	CHECK_INT(st.ops->image_remove(&st, "flat2", &err), 0);
	free(ids);
}

TEST(remove_all)
{
	struct clbsd_err err;
	if (st.ops->ctr_remove(&st, "web", true, &err) < 0)
		FAILF("%s", err.msg);
	CHECK_INT(st.ops->image_remove(&st, "small", &err), 0);
	char *d = xasprintf("%s/volumes/web", ds);
	CHECK(!ds_exists(d));
	free(d);
	storage_release(&st);
}

/* ---- the pool around the cases ---- */

static pid_t fuse_pid = -1;

static bool zfs_answers(void)
{
	struct clbsd_err err;
	char *const argv[] = {"zpool", "list", "-H", NULL};
	return proc_run(argv, NULL, &err) == 0;
}

static bool fuse_running(void)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	bool found = false;
	while (d && !found && (de = readdir(d))) {
		char *p = xasprintf("/proc/%s/comm", de->d_name);
		char *comm = NULL;
		struct clbsd_err err;
		if (fs_read_file(p, &comm, NULL, &err) == 0)
			found = strcmp(comm, "zfs-fuse\n") == 0;
		free(comm);
		free(p);
	}
	if (d)
		closedir(d);
	return found;
}

/*
 * Test runs may overlap and share the one zfs-fuse, as tests/lib.sh says:
 * each registers its pid under ZFS_SHARE/users, a zfs-fuse a test starts
 * has its pid in ZFS_SHARE/pid, and the last user to leave stops it; the
 * lock keeps those steps apart. The same files as lib.sh's.
 */
#define ZFS_SHARE "/run/clbsd-tests/zfs"
static int share_lock = -1;

static void share_enter(void)
{
	mkdir("/run/clbsd-tests", 0755);
	mkdir(ZFS_SHARE, 0755);
	mkdir(ZFS_SHARE "/users", 0755);
	share_lock = open(ZFS_SHARE "/lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (share_lock >= 0)
		flock(share_lock, LOCK_EX);
}

static void share_leave(void)
{
	if (share_lock >= 0)
		close(share_lock);
	share_lock = -1;
}

/* A zfs-fuse this run started: its pid, or -1. */
static pid_t share_started(void)
{
	char *text = NULL;
	struct clbsd_err err;
	pid_t pid = -1;
	if (fs_read_file(ZFS_SHARE "/pid", &text, NULL, &err) == 0)
		pid = (pid_t)atoi(text);
	free(text);
	return pid > 0 ? pid : -1;
}

/* Start zfs-fuse when nobody runs it; a reason in *why when zfs is unusable. */
static bool zfs_up_locked(const char **why);
static bool zfs_up(const char **why)
{
	share_enter();
	char *me = xasprintf(ZFS_SHARE "/users/%d", (int)getpid());
	int fd = open(me, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
	free(me);
	bool ok = zfs_up_locked(why);
	share_leave();
	return ok;
}

static bool zfs_up_locked(const char **why)
{
	if (zfs_answers())
		return true;
	if (fuse_running()) {
		/* Starting, or stopping: give it the time either takes. */
		for (int i = 0; i < 100 && fuse_running(); i++) {
			usleep(100000);
			if (zfs_answers())
				return true;
		}
		if (fuse_running()) {
			*why = "zfs-fuse runs but zpool does not answer within 10 s";
			return false;
		}
	}
	if (access("/usr/sbin/zfs-fuse", X_OK) != 0 && access("/usr/bin/zfs-fuse", X_OK) != 0) {
		*why = "zfs-fuse is not installed (scripts/deps.sh check installs it)";
		return false;
	}
	if (access("/dev/fuse", R_OK | W_OK) != 0) {
		*why = "/dev/fuse is not usable here";
		return false;
	}
	fuse_pid = fork();
	if (fuse_pid == 0) {
		setsid();
		/* Not the lock: a zfs-fuse holding it would hold it forever. */
		close(share_lock);
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0), dup2(null, 1), dup2(null, 2);
		mkdir("/run/zfs", 0755);
		execlp("zfs-fuse", "zfs-fuse", "--no-daemon", "--no-kstat-mount", (char *)NULL);
		_exit(127);
	}
	char pid_text[16];
	int n = snprintf(pid_text, sizeof(pid_text), "%d\n", (int)fuse_pid);
	struct clbsd_err werr;
	fs_write_atomic(ZFS_SHARE "/pid", pid_text, (size_t)n, 0644, &werr);
	for (int i = 0; i < 100; i++) {
		usleep(100000);
		if (zfs_answers())
			return true;
		if (waitpid(fuse_pid, NULL, WNOHANG) == fuse_pid) {
			fuse_pid = -1;
			*why = "zfs-fuse exited at start";
			return false;
		}
	}
	*why = "zfs-fuse did not answer within 10 s";
	return false;
}

static bool pid_gone(pid_t pid)
{
	char *p = xasprintf("/proc/%d/stat", (int)pid);
	char *text = NULL;
	struct clbsd_err err;
	bool gone = fs_read_file(p, &text, NULL, &err) < 0;
	/* A zombie its parent has not reaped yet is gone too. */
	const char *close_paren = text ? strrchr(text, ')') : NULL;
	if (close_paren && close_paren[1] == ' ' && close_paren[2] == 'Z')
		gone = true;
	free(text);
	free(p);
	return gone;
}

/* Leave the shared zfs-fuse; the last user stops the one a test started. */
static void zfs_down(void)
{
	share_enter();
	char *me = xasprintf(ZFS_SHARE "/users/%d", (int)getpid());
	unlink(me);
	free(me);
	bool others = false;
	DIR *d = opendir(ZFS_SHARE "/users");
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		pid_t u = (pid_t)atoi(de->d_name);
		if (u > 0 && kill(u, 0) == 0) {
			others = true;
		} else {
			char *f = xasprintf(ZFS_SHARE "/users/%s", de->d_name);
			unlink(f);
			free(f);
		}
	}
	if (d)
		closedir(d);
	pid_t pid = share_started();
	if (!others && pid > 0) {
		kill(pid, SIGTERM);
		for (int i = 0; i < 100 && !pid_gone(pid); i++) {
			if (pid == fuse_pid)
				waitpid(fuse_pid, NULL, WNOHANG);
			usleep(100000);
		}
		if (!pid_gone(pid))
			kill(pid, SIGKILL);
		if (pid == fuse_pid)
			waitpid(fuse_pid, NULL, 0);
		unlink(ZFS_SHARE "/pid");
	}
	share_leave();
}

/* Detach whatever is still mounted below dir (a zfs-fuse that died leaves its mounts). */
static void detach_mounts(const char *dir)
{
	struct clbsd_err err;
	char *text = NULL;
	if (fs_read_file("/proc/self/mountinfo", &text, NULL, &err) < 0)
		return;
	struct strv mps = STRV_INIT;
	size_t dl = strlen(dir);
	for (char *l = strtok(text, "\n"); l; l = strtok(NULL, "\n")) {
		char mp[4096];
		if (sscanf(l, "%*s %*s %*s %*s %4095s", mp) == 1 && strncmp(mp, dir, dl) == 0 &&
		    mp[dl] == '/')
			strv_push(&mps, mp);
	}
	for (size_t i = mps.n; i > 0; i--)
		umount2(mps.v[i - 1], MNT_DETACH);
	strv_release(&mps);
	free(text);
}

static const char *const cases[] = {
	"open_makes_layout",
	"image_prepare_idempotent",
	"clone_cost_independent_of_image_size",
	"snapshot_rollback_restores_files",
	"volume_survives_recreate",
	"quota_and_props",
	"send_receive_reproduces_files",
	"truncated_receive_leaves_nothing",
	"send_receive_snapshot_chain",
	"clone_container",
	"unmanaged_refused",
	"path_entry_points_and_busy_remove",
	"flat_layout_still_served",
	"remove_all",
};

static void run_cases(void)
{
	RUN(open_makes_layout);
	if (test_failed_cases)
		return;
	RUN(image_prepare_idempotent);
	RUN(clone_cost_independent_of_image_size);
	RUN(snapshot_rollback_restores_files);
	RUN(volume_survives_recreate);
	RUN(quota_and_props);
	RUN(send_receive_reproduces_files);
	RUN(truncated_receive_leaves_nothing);
	RUN(send_receive_snapshot_chain);
	RUN(clone_container);
	RUN(unmanaged_refused);
	RUN(path_entry_points_and_busy_remove);
	RUN(flat_layout_still_served);
	RUN(remove_all);
}

int main(void)
{
	test_prog = "zfs";
	signal(SIGPIPE, SIG_IGN);
	const char *why = NULL;
	if (geteuid() != 0)
		why = "needs root (zfs-fuse and zpool)";
	if (!why && !zfs_up(&why)) {
		zfs_down();
	}
	if (why) {
		for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
			printf("skip zfs.%s: %s\n", cases[i], why);
		return 0;
	}
	pid_t me = getpid();
	snprintf(pool, sizeof(pool), "clbsdt%d", (int)me);
	snprintf(base, sizeof(base), "/tmp/clbsd-zfs-%d", (int)me);
	snprintf(img, sizeof(img), "%s/pool.img", base);
	snprintf(mnt, sizeof(mnt), "%s/root", base);
	snprintf(mnt2, sizeof(mnt2), "%s/root2", base);
	snprintf(ds, sizeof(ds), "%s/clbsd", pool);
	snprintf(ds2, sizeof(ds2), "%s/other", pool);
	snprintf(rootfs_small, sizeof(rootfs_small), "%s/store/images/small/rootfs", base);
	snprintf(rootfs_big, sizeof(rootfs_big), "%s/store/images/big/rootfs", base);
	struct clbsd_err err;
	int status = 1;
	int fd = fs_mkdir_p(base, 0700, &err) < 0 ? -1
						  : open(img, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	bool ok = fd >= 0 && ftruncate(fd, 768 << 20) == 0;
	if (fd >= 0)
		close(fd);
	char *const create[] = {"zpool", "create", "-m", "none", pool, img, NULL};
	if (ok && proc_run(create, NULL, &err) < 0) {
		printf("FAIL zfs.setup: %s\n", err.msg);
		ok = false;
	}
	if (ok && (fs_mkdir_p(rootfs_small, 0755, &err) < 0 ||
		   tree_make_rootfs(rootfs_small, 1 << 20) < 0 ||
		   fs_mkdir_p(rootfs_big, 0755, &err) < 0 ||
		   tree_make_rootfs(rootfs_big, 64 << 20) < 0)) {
		printf("FAIL zfs.setup: cannot make the image trees\n");
		ok = false;
	}
	if (ok) {
		fflush(stdout);
		pid_t child = fork();
		if (child == 0) {
			alarm(400);
			run_cases();
			fflush(stdout);
			_exit(test_failed_cases ? 1 : 0);
		}
		int ws = 0;
		waitpid(child, &ws, 0);
		status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 1;
		if (!WIFEXITED(ws))
			printf("FAIL zfs.cases: killed by signal %d\n", WTERMSIG(ws));
	}
	/* Whatever happened: no pool, no mounts, no file, no daemon left. */
	char *const destroy[] = {"zpool", "destroy", "-f", pool, NULL};
	for (int i = 0; i < 10 && ok; i++) {
		if (proc_run(destroy, NULL, &err) == 0)
			break;
		if (i == 9)
			printf("FAIL zfs.cleanup: %s\n", err.msg), status = 1;
		usleep(300000);
	}
	zfs_down();
	detach_mounts(base);
	fs_rm_rf(base, &err);
	return status;
}
