/*
 * The dir storage driver: containers (made and found by their paths, as the
 * daemon does), volumes, volumes, snapshots (copies),
 * rollback, clones and the tar stream. Runs once with overlayfs (when the
 * host has it) and once with copies (CLBSD_NO_OVERLAY).
 */
#include "storage/storage.h"
#include "storage/tree.h"
#include "test.h"
#include "util/util.h"

#include <signal.h>
#include <sys/stat.h>

static char base[64];
static char root[128], root2[128], image_src[128];
static struct storage st;

/* Where image_prepare keeps image id: the image store's layout. */
static char *img_rootfs(const struct storage *s, const char *id)
{
	return xasprintf("%s/images/%s/rootfs", s->root, id);
}

/*
 * Container `name` from prepared image `id`, made the way the daemon makes
 * one: its directory, create() by paths, then its tunables; undone when a
 * step fails.
 */
static int ctr_make(struct storage *s, const char *name, const char *id,
		    const struct storage_props *p, struct rt_rootfs *r, struct clbsd_err *err)
{
	autofree char *img = img_rootfs(s, id);
	autofree char *dir = storage_ctr_dir(s, name);
	struct clbsd_err ignore;
	if (fs_mkdir_p(dir, 0700, err) < 0)
		return -err->code;
	int rc = s->ops->create(s, img, dir, r, err);
	if (rc == 0 && p && (rc = s->ops->ctr_set_props(s, name, p, err)) < 0) {
		s->ops->remove(s, dir, &ignore);
		rt_rootfs_release(r);
	}
	if (rc < 0)
		fs_rm_rf(dir, &ignore);
	return rc;
}

/* *r for container `name` made from image `id`, as the daemon finds it after a restart. */
static int ctr_find(struct storage *s, const char *name, const char *id, struct rt_rootfs *r,
		    struct clbsd_err *err)
{
	autofree char *img = img_rootfs(s, id);
	autofree char *dir = storage_ctr_dir(s, name);
	return s->ops->describe(s, img, dir, r, err);
}

/* Where the container's own writes go: the overlay upper or the copy. */
static const char *layer(const struct rt_rootfs *r)
{
	return r->upper ? r->upper : r->lower;
}

TEST(create_describe_props)
{
	struct clbsd_err err;
	CHECK_STR(st.ops->name, "dir");
	CHECK_INT(st.caps, 0);
	CHECK_INT(st.ops->image_prepare(&st, "img1", image_src, &err), 0);
	CHECK_INT(st.ops->image_prepare(&st, "img1", image_src, &err), 0);
	struct rt_rootfs r, d;
	/* The dir driver has no tunables: a quota is refused, nothing is left. */
	struct storage_props p = {.quota = 1 << 20};
	CHECK(ctr_make(&st, "web", "img1", &p, &r, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_UNAVAIL);
	autofree char *wdir = storage_ctr_dir(&st, "web");
	CHECK(!fs_exists(wdir));
	struct storage_props h = {.spec_hash = "cafe"};
	CHECK_INT(ctr_make(&st, "web", "img1", &h, &r, &err), 0);
	CHECK_INT(ctr_find(&st, "web", "img1", &d, &err), 0);
	CHECK_STR(d.mode, r.mode);
	CHECK_STR(d.lower, r.lower);
	CHECK_STR(d.target, r.target);
	CHECK_STR(r.mode, st.have_overlay ? "overlay" : "bind");
	rt_rootfs_release(&d);
	rt_rootfs_release(&r);
	CHECK(st.ops->image_remove(&st, "img1", &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_CONFLICT);
}

TEST(snapshot_rollback_restores_files)
{
	struct clbsd_err err;
	struct rt_rootfs r;
	CHECK_INT(ctr_find(&st, "web", "img1", &r, &err), 0);
	char *dir = storage_ctr_dir(&st, "web");
	CHECK_INT(tree_put(dir, "container.json", "{\"v\":1}\n"), 0);
	CHECK_INT(tree_put(layer(&r), "motd", "first\n"), 0);
	char *before = tree_digest(layer(&r));
	CHECK_INT(st.ops->snapshot(&st, "web", "s1", &err), 0);
	CHECK(st.ops->snapshot(&st, "web", "s1", &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_CONFLICT);
	CHECK_INT(tree_put(layer(&r), "motd", "second\n"), 0);
	CHECK_INT(tree_put(layer(&r), "new", "new\n"), 0);
	CHECK_INT(tree_put(dir, "container.json", "{\"v\":2}\n"), 0);
	CHECK_INT(st.ops->rollback(&st, "web", "s1", 0, &err), 0);
	char *after = tree_digest(layer(&r));
	CHECK_STR(after, before);
	char *cj = tree_get(dir, "container.json");
	CHECK_STR(cj, "{\"v\":2}\n");
	free(cj);
	CHECK_INT(st.ops->rollback(&st, "web", "s1", STORAGE_PART_STATE, &err), 0);
	cj = tree_get(dir, "container.json");
	CHECK_STR(cj, "{\"v\":1}\n");
	free(cj);
	/* storage.json is not state: it survives a state rollback. */
	struct rt_rootfs d;
	CHECK_INT(ctr_find(&st, "web", "img1", &d, &err), 0);
	rt_rootfs_release(&d);
	CHECK_INT(st.ops->snapshot(&st, "web", "s2", &err), 0);
	struct storage_snapshot *s;
	size_t n;
	CHECK_INT(st.ops->snapshot_list(&st, "web", &s, &n, &err), 0);
	CHECK_INT(n, 2);
	CHECK_STR(s[0].label, "s1");
	CHECK_STR(s[1].label, "s2");
	CHECK(s[0].created_ns > 0 && s[0].created_ns <= s[1].created_ns);
	CHECK(s[0].used > 0);
	storage_snapshots_free(s, n);
	CHECK(st.ops->rollback(&st, "web", "s1", 0, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_CONFLICT);
	CHECK_INT(st.ops->rollback(&st, "web", "s1", STORAGE_DISCARD_NEWER, &err), 0);
	CHECK_INT(st.ops->snapshot_list(&st, "web", &s, &n, &err), 0);
	CHECK_INT(n, 1);
	storage_snapshots_free(s, n);
	CHECK(st.ops->rollback(&st, "web", "nope", 0, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_NOTFOUND);
	CHECK(st.ops->snapshot(&st, "web", "../x", &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_INVALID);
	free(before), free(after), free(dir);
	rt_rootfs_release(&r);
}

TEST(volume_survives_recreate)
{
	struct clbsd_err err;
	char *path = NULL, *again = NULL;
	CHECK_INT(st.ops->volume_ensure(&st, "web", "data", NULL, &path, &err), 0);
	CHECK_INT(tree_put(path, "db", "precious\n"), 0);
	struct storage_props p = {.compression = "gzip"};
	CHECK(st.ops->volume_ensure(&st, "web", "data", &p, &again, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_UNAVAIL);
	/* Snapshot now, so the stream test below carries the volume. */
	CHECK_INT(st.ops->ctr_remove(&st, "web", false, &err), 0);
	struct rt_rootfs r;
	CHECK_INT(ctr_make(&st, "web", "img1", NULL, &r, &err), 0);
	CHECK_INT(st.ops->volume_ensure(&st, "web", "data", NULL, &again, &err), 0);
	CHECK_STR(again, path);
	char *db = tree_get(again, "db");
	CHECK_STR(db, "precious\n");
	free(db);
	char *motd = tree_get(layer(&r), "motd");
	CHECK(motd == NULL);
	free(motd);
	rt_rootfs_release(&r);
	free(path), free(again);
}

TEST(clone_container)
{
	struct clbsd_err err;
	struct rt_rootfs r, c;
	char *dir = storage_ctr_dir(&st, "web");
	CHECK_INT(ctr_find(&st, "web", "img1", &r, &err), 0);
	CHECK_INT(tree_put(layer(&r), "motd", "at m1\n"), 0);
	CHECK_INT(tree_put(dir, "container.json", "{\"name\":\"web\"}\n"), 0);
	CHECK_INT(st.ops->snapshot(&st, "web", "m1", &err), 0);
	CHECK_INT(tree_put(layer(&r), "motd", "after m1\n"), 0);
	CHECK_INT(st.ops->clone(&st, "web", "m1", "web2", STORAGE_PART_ALL, &c, &err), 0);
	char *motd = tree_get(layer(&c), "motd");
	CHECK_STR(motd, "at m1\n");
	free(motd);
	char *dir2 = storage_ctr_dir(&st, "web2");
	char *cj = tree_get(dir2, "container.json");
	CHECK_STR(cj, "{\"name\":\"web\"}\n");
	free(cj);
	char *vol = xasprintf("%s/volumes/web2/data", root);
	char *db = tree_get(vol, "db");
	CHECK_STR(db, "precious\n");
	free(db);
	rt_rootfs_release(&c);
	/* Of now, without state or volumes. */
	CHECK_INT(st.ops->clone(&st, "web", NULL, "web3", 0, &c, &err), 0);
	motd = tree_get(layer(&c), "motd");
	CHECK_STR(motd, "after m1\n");
	free(motd);
	char *dir3 = storage_ctr_dir(&st, "web3");
	cj = tree_get(dir3, "container.json");
	CHECK(cj == NULL);
	free(cj);
	CHECK(st.ops->clone(&st, "web", NULL, "web3", 0, &c, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_CONFLICT);
	CHECK_INT(st.ops->ctr_remove(&st, "web2", true, &err), 0);
	CHECK_INT(st.ops->ctr_remove(&st, "web3", true, &err), 0);
	CHECK(!fs_exists(dir2) && !fs_exists(vol));
	rt_rootfs_release(&c);
	rt_rootfs_release(&r);
	free(dir), free(dir2), free(dir3), free(vol);
}

static char *send_to_file(const char *label, struct clbsd_err *err)
{
	char *path = xasprintf("%s/web-%s.tar", base, label);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int r = st.ops->send(&st, "web", label, NULL, NULL, fd, err);
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
	char *file = send_to_file("m1", &err);
	CHECK(file != NULL);
	struct storage st2;
	CHECK_INT(storage_dir_open(root2, &st2, &err), 0);
	/* An overlay layer needs its image on the receiving side. */
	CHECK_INT(st2.ops->image_prepare(&st2, "img1", image_src, &err), 0);
	int fd = open(file, O_RDONLY);
	CHECK_INT(st2.ops->receive(&st2, "copy", fd, &err), 0);
	close(fd);
	char *snap = xasprintf("%s/containers/web/snapshots/m1", root);
	char *snap2 = xasprintf("%s/containers/copy/snapshots/m1", root2);
	char *a = tree_digest(snap), *b = tree_digest(snap2);
	CHECK_STR(b, a);
	free(a), free(b);
	struct rt_rootfs r2;
	CHECK_INT(ctr_find(&st2, "copy", "img1", &r2, &err), 0);
	char *motd = tree_get(layer(&r2), "motd");
	CHECK_STR(motd, "at m1\n");
	free(motd);
	char *dir2 = storage_ctr_dir(&st2, "copy");
	char *cj = tree_get(dir2, "container.json");
	CHECK_STR(cj, "{\"name\":\"web\"}\n");
	free(cj);
	char *vol2 = xasprintf("%s/volumes/copy/data", root2);
	char *vol = xasprintf("%s/volumes/web/data", root);
	a = tree_digest(vol), b = tree_digest(vol2);
	CHECK_STR(b, a);
	free(a), free(b);
	/* Once more into the same name: refused, nothing changes. */
	fd = open(file, O_RDONLY);
	CHECK(st2.ops->receive(&st2, "copy", fd, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_CONFLICT);
	close(fd);
	/* Only whole snapshots. */
	fd = open(file, O_RDONLY);
	CHECK(st.ops->send(&st, "web", "m1", "m0", NULL, fd, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_UNAVAIL);
	close(fd);
	/* Its snapshots are copies: they do not travel (export --snapshots is zfs's). */
	char *older[] = {"m0", NULL};
	fd = open(file, O_RDONLY);
	CHECK(st.ops->send(&st, "web", "m1", NULL, older, fd, &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_UNAVAIL);
	CHECK(strstr(err.msg, "zfs") != NULL);
	close(fd);
	CHECK_INT(st2.ops->ctr_remove(&st2, "copy", true, &err), 0);
	storage_release(&st2);
	unlink(file);
	rt_rootfs_release(&r2);
	free(file), free(snap), free(snap2), free(dir2), free(vol), free(vol2);
}

TEST(truncated_receive_leaves_nothing)
{
	struct clbsd_err err;
	char *file = send_to_file("m1", &err);
	CHECK(file != NULL);
	char *data = NULL;
	size_t len = 0;
	CHECK_INT(fs_read_file(file, &data, &len, &err), 0);
	/* Inside the data, inside the end mark (before tar's own 1 KB trailer), in the header. */
	size_t cuts[] = {len / 2, len - 1024 - 256, 700};
	char *cut = xasprintf("%s.cut", file);
	for (size_t i = 0; i < ARRAY_SIZE(cuts); i++) {
		CHECK_INT(fs_write_atomic(cut, data, cuts[i], 0600, &err), 0);
		int fd = open(cut, O_RDONLY);
		CHECK(st.ops->receive(&st, "half", fd, &err) < 0);
		close(fd);
		char *dir = storage_ctr_dir(&st, "half");
		char *vols = xasprintf("%s/volumes/half", root);
		CHECK(!fs_exists(dir));
		CHECK(!fs_exists(vols));
		free(dir), free(vols);
	}
	/* Nothing is left in the staging area either. */
	char *tmp = xasprintf("%s/tmp", root);
	char *left = tree_digest(tmp);
	CHECK_STR(left, "");
	free(left), free(tmp);
	int p[2];
	CHECK(pipe(p) == 0);
	CHECK(write(p[1], "CLBSD-ZFS-SEND 1\n", 17) == 17);
	close(p[1]);
	CHECK(st.ops->receive(&st, "half", p[0], &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_INVALID);
	close(p[0]);
	unlink(cut), unlink(file);
	free(cut), free(file), free(data);
}

TEST(path_entry_points)
{
	struct clbsd_err err;
	char *dir = storage_ctr_dir(&st, "old");
	char *img = xasprintf("%s/images/img1/rootfs", root);
	CHECK_INT(fs_mkdir_p(dir, 0700, &err), 0);
	struct rt_rootfs r;
	CHECK_INT(st.ops->create(&st, img, dir, &r, &err), 0);
	rt_rootfs_release(&r);
	CHECK_INT(st.ops->describe(&st, img, dir, &r, &err), 0);
	CHECK_INT(tree_put(layer(&r), "written", "0123456789"), 0);
	CHECK(st.ops->usage(&st, dir) > 0);
	/* What create() made can be used by name too. */
	CHECK_INT(st.ops->snapshot(&st, "old", "x", &err), 0);
	CHECK_INT(st.ops->remove(&st, dir, &err), 0);
	CHECK(!fs_exists(r.target));
	CHECK_INT(st.ops->remove(&st, dir, &err), 0);
	rt_rootfs_release(&r);
	free(dir), free(img);
}

TEST(remove_all)
{
	struct clbsd_err err;
	CHECK_INT(st.ops->ctr_remove(&st, "web", true, &err), 0);
	CHECK_INT(st.ops->ctr_remove(&st, "web", true, &err), 0);
	char *vol = xasprintf("%s/volumes/web", root);
	CHECK(!fs_exists(vol));
	free(vol);
	CHECK_INT(st.ops->image_remove(&st, "img1", &err), 0);
}

static void run_all(const char *mode)
{
	struct clbsd_err err;
	snprintf(root, sizeof(root), "%s/%s/root", base, mode);
	snprintf(root2, sizeof(root2), "%s/%s/root2", base, mode);
	if (storage_dir_open(root, &st, &err) < 0) {
		printf("FAIL dir.%s.open: %s\n", mode, err.msg);
		test_failed_cases++;
		return;
	}
	printf("# %s: overlay %s\n", mode, st.have_overlay ? "yes" : "no");
	RUN(create_describe_props);
	RUN(snapshot_rollback_restores_files);
	RUN(volume_survives_recreate);
	RUN(clone_container);
	RUN(send_receive_reproduces_files);
	RUN(truncated_receive_leaves_nothing);
	RUN(path_entry_points);
	RUN(remove_all);
	storage_release(&st);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	snprintf(base, sizeof(base), "/tmp/clbsd-dir-XXXXXX");
	if (!mkdtemp(base))
		return 1;
	snprintf(image_src, sizeof(image_src), "%s/image", base);
	struct clbsd_err err;
	if (fs_mkdir_p(image_src, 0755, &err) < 0 || tree_make_rootfs(image_src, 256 << 10) < 0) {
		printf("FAIL dir.setup: cannot make the image tree\n");
		return 1;
	}
	test_prog = "dir";
	run_all("native");
	test_prog = "dir.copy";
	setenv("CLBSD_NO_OVERLAY", "1", 1);
	run_all("copy");
	fs_rm_rf(base, &err);
	return test_failed_cases ? 1 : 0;
}
