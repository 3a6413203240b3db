/*
 * The zfs storage driver: one dataset per image, container and volume, made
 * and changed with the zfs(8) command (argv, never a shell; output read with
 * -H and, for numbers, -p). Layout below the root dataset <ds>:
 *
 *   <ds>/images/<id>@base            image tree (mountpoint none once filled)
 *   <ds>/containers/<name>           state (container.json, logs), mounted at
 *                                    <root>/containers/<name>
 *   <ds>/containers/<name>/rootfs    a clone of the image's @base
 *   <ds>/volumes/<name>/<vol>        named volumes, mounted at
 *                                    <root>/volumes/<name>/<vol>
 *
 * Mount points are inherited from <ds>/containers and <ds>/volumes, so
 * received and cloned datasets land in the right place without setting
 * anything. Every dataset made here carries clbsd:managed=1 (set locally);
 * nothing without it is changed or destroyed. The commands and the quirks of
 * zfs-fuse they work around are in docs/storage.md.
 */
#include "driver.h"
#include "util/json.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROP_MANAGED "clbsd:managed"
#define PROP_HASH    "clbsd:spec-hash"
#define OPT_MANAGED  PROP_MANAGED "=1"
/* The properties a container or volume carries across clone and send. */
#define LOCAL_PROPS "quota,reservation,compression,recordsize," PROP_HASH

#define STREAM_MAGIC     "CLBSD-ZFS-SEND 1\n"
#define STREAM_MAGIC_LEN (sizeof(STREAM_MAGIC) - 1)
#define FRAME_MAX        (1u << 20)
#define FUSE_SUPER_MAGIC 0x65735546

/* ---- running zfs ---- */

/* Run v (v->v[0] is the program) and release it. */
static int run_v(struct strv *v, char **out, struct clbsd_err *err)
{
	int r = proc_run(v->v, out, err);
	strv_release(v);
	return r;
}

static __attribute__((sentinel)) int zfs(char **out, struct clbsd_err *err, const char *arg, ...)
{
	struct strv v = STRV_INIT;
	strv_push(&v, "zfs");
	va_list ap;
	va_start(ap, arg);
	for (const char *a = arg; a; a = va_arg(ap, const char *))
		strv_push(&v, a);
	va_end(ap);
	return run_v(&v, out, err);
}

/* Next line of *p (modified in place), NULL at the end. */
static char *next_line(char **p)
{
	while (**p == '\n')
		(*p)++;
	if (!**p)
		return NULL;
	char *l = *p;
	char *nl = strchr(l, '\n');
	if (nl) {
		*nl = '\0';
		*p = nl + 1;
	} else {
		*p = l + strlen(l);
	}
	return l;
}

/* Split a -H line at tabs; returns the number of fields. */
static int fields(char *line, char **f, int max)
{
	int n = 0;
	while (n < max) {
		f[n++] = line;
		char *t = strchr(line, '\t');
		if (!t)
			break;
		*t = '\0';
		line = t + 1;
	}
	return n;
}

static bool no_such(const struct clbsd_err *e)
{
	return strstr(e->msg, "does not exist") != NULL;
}

/* ---- dataset names ---- */

static char *ds_ctr(const struct storage *st, const char *name)
{
	return xasprintf("%s/containers/%s", st->dataset, name);
}

static char *ds_vols(const struct storage *st, const char *ctr)
{
	return xasprintf("%s/volumes/%s", st->dataset, ctr);
}

static char *ds_img(const struct storage *st, const char *id)
{
	return xasprintf("%s/images/%s", st->dataset, id);
}

/* ---- ownership ---- */

enum dstate { DS_ABSENT, DS_MANAGED, DS_FOREIGN };

/* Filesystems must have clbsd:managed=1 set locally; snapshots inherit it. */
static bool managed(const char *name, const char *value, const char *source)
{
	if (strcmp(value, "1") != 0)
		return false;
	return strchr(name, '@') || strcmp(source, "local") == 0;
}

static int ds_state(const char *ds, enum dstate *out, struct clbsd_err *err)
{
	autofree char *o = NULL;
	struct clbsd_err e;
	if (zfs(&o, &e, "get", "-H", "-o", "value,source", PROP_MANAGED, ds, NULL) < 0) {
		if (no_such(&e)) {
			*out = DS_ABSENT;
			return 0;
		}
		*err = e;
		return clbsd_err_prefix(err, "zfs dataset %s", ds);
	}
	char *p = o, *f[2] = {"", ""};
	char *l = next_line(&p);
	if (l)
		fields(l, f, 2);
	*out = l && managed(ds, f[0], f[1]) ? DS_MANAGED : DS_FOREIGN;
	return 0;
}

static int foreign(const char *ds, struct clbsd_err *err)
{
	return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EPERM,
				"zfs dataset %s exists but is not clbsd's (no %s=1); clbsd will not "
				"change it: rename or destroy it yourself",
				ds, PROP_MANAGED);
}

/* Every dataset and snapshot at and below ds is managed. */
static int check_tree(const char *ds, struct clbsd_err *err)
{
	autofree char *o = NULL;
	if (zfs(&o, err, "get", "-r", "-H", "-o", "name,value,source", PROP_MANAGED, ds, NULL) <
	    0)
		return clbsd_err_prefix(err, "zfs dataset %s", ds);
	char *p = o, *l;
	while ((l = next_line(&p))) {
		char *f[3] = {"", "", ""};
		if (fields(l, f, 3) == 3 && !managed(f[0], f[1], f[2]))
			return foreign(f[0], err);
	}
	return 0;
}

/* Make ds as managed: it must be absent (CONFLICT otherwise). */
static int need_absent(const char *what, const char *ds, struct clbsd_err *err)
{
	enum dstate s;
	if (ds_state(ds, &s, err) < 0)
		return -err->code;
	if (s == DS_FOREIGN)
		return foreign(ds, err);
	if (s == DS_MANAGED)
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EEXIST,
					"%s already exists (zfs dataset %s)", what, ds);
	return 0;
}

static int need_managed(const char *what, const char *ds, struct clbsd_err *err)
{
	enum dstate s;
	if (ds_state(ds, &s, err) < 0)
		return -err->code;
	if (s == DS_FOREIGN)
		return foreign(ds, err);
	if (s == DS_ABSENT)
		return clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
					"%s does not exist (no zfs dataset %s)", what, ds);
	return 0;
}

/* ---- mounting ---- */

/* Filesystems at and below ds, parents first, with whether they are mounted. */
static int list_fs(const char *ds, struct strv *names, struct strv *mounted,
		   struct clbsd_err *err)
{
	autofree char *o = NULL;
	if (zfs(&o, err, "list", "-H", "-o", "name,mounted", "-r", "-t", "filesystem", ds, NULL) <
	    0)
		return clbsd_err_prefix(err, "list zfs datasets below %s", ds);
	char *p = o, *l;
	while ((l = next_line(&p))) {
		char *f[2] = {"", ""};
		fields(l, f, 2);
		strv_push(names, f[0]);
		if (mounted && strcmp(f[1], "yes") == 0)
			strv_push(mounted, f[0]);
	}
	return 0;
}

/*
 * Unmount ds and everything below it, children first. zfs-fuse serves a
 * mounted dataset's pages from the kernel's cache, which `zfs recv` does not
 * invalidate, so datasets are unmounted around a receive.
 */
static int unmount_tree(const char *ds, struct clbsd_err *err)
{
	struct strv names = STRV_INIT, mounted = STRV_INIT;
	int r = list_fs(ds, &names, &mounted, err);
	for (size_t i = mounted.n; r == 0 && i > 0; i--) {
		r = zfs(NULL, err, "umount", mounted.v[i - 1], NULL);
		if (r < 0) {
			err->kind = CLBSD_E_CONFLICT;
			clbsd_err_prefix(err, "unmount %s (is a container using it?)",
					 mounted.v[i - 1]);
		}
	}
	strv_release(&names);
	strv_release(&mounted);
	return r;
}

/* Mount whatever at and below ds is not mounted, parents first. */
static int mount_tree(const char *ds, struct clbsd_err *err)
{
	struct strv names = STRV_INIT, mounted = STRV_INIT;
	int r = list_fs(ds, &names, &mounted, err);
	for (size_t i = 0; r == 0 && i < names.n; i++) {
		bool is = false;
		for (size_t j = 0; j < mounted.n && !is; j++)
			is = strcmp(mounted.v[j], names.v[i]) == 0;
		if (!is && zfs(NULL, err, "mount", names.v[i], NULL) < 0)
			r = clbsd_err_prefix(err, "mount zfs dataset %s", names.v[i]);
	}
	strv_release(&names);
	strv_release(&mounted);
	return r;
}

/* ---- destroying, with the retries zfs-fuse needs ---- */

/*
 * Destroy a dataset or snapshot (recursively when asked). zfs-fuse often
 * answers "dataset is busy" right after an unmount, or fails to unmount a
 * dataset whose FUSE mount is still being released: unmount and retry with a
 * backoff (about 4 s in all) before giving up.
 */
static int destroy(const char *target, bool recursive, struct clbsd_err *err)
{
	useconds_t delay = 25000;
	for (int attempt = 0;; attempt++) {
		struct clbsd_err e;
		int r = recursive ? zfs(NULL, &e, "destroy", "-r", target, NULL)
				  : zfs(NULL, &e, "destroy", target, NULL);
		if (r == 0 || no_such(&e))
			return 0;
		if (strstr(e.msg, "dependent clones") || strstr(e.msg, "is cloned"))
			return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EBUSY,
						"destroy %s: a clone depends on it (a container "
						"cloned from it); remove that first",
						target);
		bool busy = strstr(e.msg, "busy") || strstr(e.msg, "mount");
		if (!busy || attempt >= 8) {
			*err = e;
			return clbsd_err_prefix(err, "destroy zfs dataset %s", target);
		}
		if (!strchr(target, '@')) {
			struct clbsd_err ignore;
			unmount_tree(target, &ignore);
		}
		usleep(delay);
		if (delay < 1000000)
			delay *= 2;
	}
}

/* Destroy a managed dataset and all below it; absent is fine. */
static int destroy_tree(const char *ds, struct clbsd_err *err)
{
	enum dstate s;
	if (ds_state(ds, &s, err) < 0)
		return -err->code;
	if (s == DS_ABSENT)
		return 0;
	if (s == DS_FOREIGN)
		return foreign(ds, err);
	if (check_tree(ds, err) < 0)
		return -err->code;
	struct clbsd_err ignore;
	unmount_tree(ds, &ignore);
	return destroy(ds, true, err);
}

/* ---- properties ---- */

/*
 * props as "k=v" settings, and the names to reset (zfs inherit). In create
 * mode 0 and NULL are simply left out.
 */
static int props_kv(const struct storage *st, const struct storage_props *p, struct strv *set,
		    struct strv *reset, struct clbsd_err *err)
{
	if (!p)
		return 0;
	/*
	 * zfs-fuse asserts and dies when a write crosses a quota part-way
	 * through a FUSE write request (128K), which a recordsize below that
	 * makes possible. The daemon's death unmounts every dataset.
	 */
	if (st->fuse && p->recordsize > 0 && p->recordsize < 131072)
		return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, ENOTSUP,
					"recordsize %lld: zfs-fuse crashes when a quota is reached "
					"with records smaller than 128K; use 128K or run OpenZFS",
					(long long)p->recordsize);
	const struct {
		const char *name;
		int64_t v;
		const char *none; /* what resets it */
	} sizes[] = {{"quota", p->quota, "none"},
		     {"reservation", p->reservation, "none"},
		     {"recordsize", p->recordsize, NULL}};
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		if (sizes[i].v > 0)
			strv_push_owned(set, xasprintf("%s=%lld", sizes[i].name,
						       (long long)sizes[i].v));
		else if (sizes[i].v == STORAGE_PROP_RESET && sizes[i].none)
			strv_push_owned(set, xasprintf("%s=%s", sizes[i].name, sizes[i].none));
		else if (sizes[i].v == STORAGE_PROP_RESET && reset)
			strv_push(reset, sizes[i].name);
		else if (sizes[i].v < 0)
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"%s %lld is negative", sizes[i].name,
						(long long)sizes[i].v);
	}
	const struct {
		const char *name;
		const char *v;
	} strs[] = {{"compression", p->compression}, {PROP_HASH, p->spec_hash}};
	for (size_t i = 0; i < ARRAY_SIZE(strs); i++) {
		const char *v = strs[i].v;
		if (!v)
			continue;
		if (!*v) {
			if (reset)
				strv_push(reset, strs[i].name);
			continue;
		}
		for (const char *c = v; *c; c++)
			if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-'))
				return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
							"%s \"%s\": expected [a-z0-9-]",
							strs[i].name, v);
		strv_push_owned(set, xasprintf("%s=%s", strs[i].name, v));
	}
	return 0;
}

/* Apply props to an existing managed dataset (ctr_set_props mode). */
static int set_props(const struct storage *st, const char *ds, const struct storage_props *p,
		     struct clbsd_err *err)
{
	struct strv set = STRV_INIT, reset = STRV_INIT;
	int r = props_kv(st, p, &set, &reset, err);
	for (size_t i = 0; r == 0 && i < set.n; i++)
		if ((r = zfs(NULL, err, "set", set.v[i], ds, NULL)) < 0)
			clbsd_err_prefix(err, "zfs set %s on %s", set.v[i], ds);
	for (size_t i = 0; r == 0 && i < reset.n; i++)
		if ((r = zfs(NULL, err, "inherit", reset.v[i], ds, NULL)) < 0)
			clbsd_err_prefix(err, "zfs inherit %s on %s", reset.v[i], ds);
	strv_release(&set);
	strv_release(&reset);
	return r;
}

/* `zfs create` or `zfs clone` of a managed dataset with settings kv ("k=v"). */
static int make_ds(const char *origin, const char *ds, const struct strv *kv,
		   struct clbsd_err *err)
{
	struct strv v = STRV_INIT;
	strv_push(&v, "zfs");
	strv_push(&v, origin ? "clone" : "create");
	strv_push(&v, "-o");
	strv_push(&v, OPT_MANAGED);
	for (size_t i = 0; kv && i < kv->n; i++) {
		strv_push(&v, "-o");
		strv_push(&v, kv->v[i]);
	}
	if (origin)
		strv_push(&v, origin);
	strv_push(&v, ds);
	if (run_v(&v, NULL, err) < 0)
		return clbsd_err_prefix(err, "%s zfs dataset %s", origin ? "clone" : "create", ds);
	return 0;
}

/* The settings of LOCAL_PROPS made locally on ds, as "k=v". */
static int local_props(const char *ds, struct strv *kv, struct clbsd_err *err)
{
	autofree char *o = NULL;
	if (zfs(&o, err, "get", "-H", "-p", "-o", "property,value", "-s", "local", LOCAL_PROPS,
		ds, NULL) < 0)
		return clbsd_err_prefix(err, "properties of %s", ds);
	char *p = o, *l;
	while ((l = next_line(&p))) {
		char *f[2] = {"", ""};
		if (fields(l, f, 2) == 2)
			strv_push_owned(kv, xasprintf("%s=%s", f[0], f[1]));
	}
	return 0;
}

/* ---- small file-system helpers ---- */

/* A directory that is absent or holds nothing can become a mount point. */
static int need_empty_dir(const char *path, struct clbsd_err *err)
{
	DIR *d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0
				       : clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open %s", path);
	struct dirent *de;
	bool empty = true;
	while (empty && (de = readdir(d)))
		empty = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..");
	closedir(d);
	if (!empty)
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, ENOTEMPTY,
					"%s is not empty, so a zfs dataset cannot be mounted there; "
					"move its contents away",
					path);
	return 0;
}

/* Copy what is in dir src into the existing directory dst, and src's owner and mode. */
static int copy_into(const char *src, const char *dst, struct clbsd_err *err)
{
	DIR *d = opendir(src);
	if (!d)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open %s", src);
	int r = 0;
	struct dirent *de;
	while (r == 0 && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		autofree char *s = xasprintf("%s/%s", src, de->d_name);
		autofree char *t = xasprintf("%s/%s", dst, de->d_name);
		r = fs_copy_tree(s, t, err);
	}
	closedir(d);
	struct stat sb;
	if (r == 0 && (stat(src, &sb) < 0 || chown(dst, sb.st_uid, sb.st_gid) < 0 ||
		       chmod(dst, sb.st_mode & 07777) < 0))
		r = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "copy owner and mode of %s", src);
	return r;
}

/* ---- the driver ---- */

static void fill(const struct storage *st, const char *name, struct rt_rootfs *out)
{
	memset(out, 0, sizeof(*out));
	out->mode = xstrdup("bind");
	out->target = xasprintf("%s/containers/%s/rootfs", st->root, name);
	out->lower = xstrdup(out->target);
}

static int z_image_prepare(struct storage *st, const char *id, const char *rootfs,
			   struct clbsd_err *err)
{
	if (storage_check_image_id(id, err) < 0)
		return -err->code;
	if (!fs_path_is_clean_abs(rootfs) || !fs_is_dir(rootfs))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"image %s: rootfs %s is not an absolute path to a directory",
					id, rootfs ? rootfs : "(null)");
	autofree char *ds = ds_img(st, id);
	autofree char *base = xasprintf("%s@base", ds);
	enum dstate s;
	if (ds_state(base, &s, err) < 0)
		return clbsd_err_prefix(err, "image %s", id);
	if (s == DS_MANAGED)
		return 0;
	/* A dataset without @base is what an interrupted prepare left: start over. */
	if (destroy_tree(ds, err) < 0)
		return clbsd_err_prefix(err, "image %s", id);
	autofree char *mp = xasprintf("%s/tmp/zfs-image-%s", st->root, id);
	if (fs_mkdir_p(mp, 0700, err) < 0 || need_empty_dir(mp, err) < 0)
		return clbsd_err_prefix(err, "image %s", id);
	struct strv kv = STRV_INIT;
	strv_push_owned(&kv, xasprintf("mountpoint=%s", mp));
	int r = make_ds(NULL, ds, &kv, err);
	strv_release(&kv);
	if (r == 0 && (r = copy_into(rootfs, mp, err)) < 0)
		clbsd_err_prefix(err, "fill %s from %s", ds, rootfs);
	if (r == 0 && (r = zfs(NULL, err, "snapshot", base, NULL)) < 0)
		clbsd_err_prefix(err, "snapshot %s", base);
	/* Nobody needs the image mounted: containers get clones of @base. */
	if (r == 0 && (r = zfs(NULL, err, "set", "mountpoint=none", ds, NULL)) < 0)
		clbsd_err_prefix(err, "unmount %s", ds);
	if (r < 0) {
		struct clbsd_err ignore;
		destroy_tree(ds, &ignore);
	}
	rmdir(mp);
	return r < 0 ? clbsd_err_prefix(err, "prepare image %s", id) : 0;
}

static int z_image_remove(struct storage *st, const char *id, struct clbsd_err *err)
{
	if (storage_check_image_id(id, err) < 0)
		return -err->code;
	autofree char *ds = ds_img(st, id);
	if (destroy_tree(ds, err) < 0)
		return clbsd_err_prefix(err, "remove image %s", id);
	return 0;
}

static int z_ctr_create(struct storage *st, const char *name, const char *image_id,
			const struct storage_props *props, struct rt_rootfs *out,
			struct clbsd_err *err)
{
	if (storage_check_name("container", name, err) < 0 ||
	    storage_check_image_id(image_id, err) < 0)
		return -err->code;
	autofree char *img = ds_img(st, image_id);
	autofree char *base = xasprintf("%s@base", img);
	autofree char *ds = ds_ctr(st, name);
	autofree char *rootfs = xasprintf("%s/rootfs", ds);
	autofree char *dir = storage_ctr_dir(st, name);
	autofree char *what = xasprintf("container %s", name);
	enum dstate s;
	if (ds_state(base, &s, err) < 0)
		return clbsd_err_prefix(err, "container %s", name);
	if (s != DS_MANAGED)
		return clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
					"container %s: image %s is not prepared for zfs (no %s); "
					"prepare it first",
					name, image_id, base);
	if (need_absent(what, ds, err) < 0 || need_empty_dir(dir, err) < 0)
		return clbsd_err_prefix(err, "create container %s", name);
	struct strv kv = STRV_INIT;
	int r = props_kv(st, props, &kv, NULL, err);
	if (r == 0)
		r = make_ds(NULL, ds, &kv, err);
	strv_release(&kv);
	if (r < 0)
		return clbsd_err_prefix(err, "create container %s", name);
	if (make_ds(base, rootfs, NULL, err) < 0) {
		struct clbsd_err ignore;
		destroy_tree(ds, &ignore);
		return clbsd_err_prefix(err, "create container %s", name);
	}
	fill(st, name, out);
	return 0;
}

static int z_ctr_describe(struct storage *st, const char *name, struct rt_rootfs *out,
			  struct clbsd_err *err)
{
	if (storage_check_name("container", name, err) < 0)
		return -err->code;
	autofree char *ds = ds_ctr(st, name);
	autofree char *rootfs = xasprintf("%s/rootfs", ds);
	autofree char *what = xasprintf("container %s's rootfs", name);
	if (need_managed(what, rootfs, err) < 0)
		return -err->code;
	/* After a reboot zfs-fuse may import the pool without mounting everything. */
	if (mount_tree(ds, err) < 0)
		return clbsd_err_prefix(err, "container %s", name);
	fill(st, name, out);
	return 0;
}

static int z_ctr_set_props(struct storage *st, const char *name,
			   const struct storage_props *props, struct clbsd_err *err)
{
	if (storage_check_name("container", name, err) < 0)
		return -err->code;
	autofree char *ds = ds_ctr(st, name);
	autofree char *what = xasprintf("container %s", name);
	if (need_managed(what, ds, err) < 0 || set_props(st, ds, props, err) < 0)
		return clbsd_err_prefix(err, "container %s", name);
	return 0;
}

static int z_ctr_remove(struct storage *st, const char *name, bool volumes,
			struct clbsd_err *err)
{
	if (storage_check_name("container", name, err) < 0)
		return -err->code;
	autofree char *ds = ds_ctr(st, name);
	autofree char *dir = storage_ctr_dir(st, name);
	if (destroy_tree(ds, err) < 0)
		return clbsd_err_prefix(err, "remove container %s", name);
	rmdir(dir); /* the mount point zfs leaves behind */
	if (!volumes)
		return 0;
	autofree char *vols = ds_vols(st, name);
	autofree char *vdir = xasprintf("%s/volumes/%s", st->root, name);
	if (destroy_tree(vols, err) < 0)
		return clbsd_err_prefix(err, "remove volumes of container %s", name);
	rmdir(vdir);
	return 0;
}

/* Make <ds>/volumes/<ctr> if missing; *made says whether it was. */
static int ensure_vols(const struct storage *st, const char *ctr, bool *made,
		       struct clbsd_err *err)
{
	autofree char *vols = ds_vols(st, ctr);
	enum dstate s;
	*made = false;
	if (ds_state(vols, &s, err) < 0)
		return -err->code;
	if (s == DS_FOREIGN)
		return foreign(vols, err);
	if (s == DS_MANAGED)
		return 0;
	autofree char *dir = xasprintf("%s/volumes/%s", st->root, ctr);
	if (need_empty_dir(dir, err) < 0 || make_ds(NULL, vols, NULL, err) < 0)
		return -err->code;
	*made = true;
	return 0;
}

static int z_volume_ensure(struct storage *st, const char *ctr, const char *vol,
			   const struct storage_props *props, char **path, struct clbsd_err *err)
{
	if (storage_check_name("container", ctr, err) < 0 ||
	    storage_check_name("volume", vol, err) < 0)
		return -err->code;
	autofree char *vols = ds_vols(st, ctr);
	autofree char *ds = xasprintf("%s/%s", vols, vol);
	autofree char *dir = xasprintf("%s/volumes/%s/%s", st->root, ctr, vol);
	bool made_parent;
	enum dstate s;
	int r = ensure_vols(st, ctr, &made_parent, err);
	if (r == 0)
		r = ds_state(ds, &s, err);
	if (r == 0 && s == DS_FOREIGN)
		r = foreign(ds, err);
	if (r == 0 && s == DS_MANAGED)
		r = set_props(st, ds, props, err);
	if (r == 0 && s == DS_MANAGED)
		r = mount_tree(ds, err);
	if (r == 0 && s == DS_ABSENT) {
		struct strv kv = STRV_INIT;
		r = props_kv(st, props, &kv, NULL, err);
		if (r == 0)
			r = need_empty_dir(dir, err);
		if (r == 0)
			r = make_ds(NULL, ds, &kv, err);
		strv_release(&kv);
	}
	if (r < 0) {
		struct clbsd_err ignore;
		if (made_parent)
			destroy_tree(vols, &ignore);
		return clbsd_err_prefix(err, "volume %s of container %s", vol, ctr);
	}
	*path = steal_ptr(&dir);
	return 0;
}

static int z_volume_remove(struct storage *st, const char *ctr, const char *vol,
			   struct clbsd_err *err)
{
	if (storage_check_name("container", ctr, err) < 0 ||
	    storage_check_name("volume", vol, err) < 0)
		return -err->code;
	autofree char *ds = xasprintf("%s/volumes/%s/%s", st->dataset, ctr, vol);
	autofree char *dir = xasprintf("%s/volumes/%s/%s", st->root, ctr, vol);
	if (destroy_tree(ds, err) < 0)
		return clbsd_err_prefix(err, "remove volume %s of container %s", vol, ctr);
	rmdir(dir);
	return 0;
}

/* ---- snapshots ---- */

static int has(const char *ds, enum dstate want, struct clbsd_err *err, bool *yes)
{
	enum dstate s;
	if (ds_state(ds, &s, err) < 0)
		return -err->code;
	*yes = s == want;
	return 0;
}

static int z_snapshot(struct storage *st, const char *name, const char *label,
		      struct clbsd_err *err)
{
	if (storage_check_name("container", name, err) < 0 || storage_check_label(label, err) < 0)
		return -err->code;
	autofree char *ds = ds_ctr(st, name);
	autofree char *vols = ds_vols(st, name);
	autofree char *snap = xasprintf("%s@%s", ds, label);
	autofree char *vsnap = xasprintf("%s@%s", vols, label);
	autofree char *what = xasprintf("container %s", name);
	autofree char *swhat = xasprintf("snapshot %s of container %s", label, name);
	bool with_vols = false;
	if (need_managed(what, ds, err) < 0 || need_absent(swhat, snap, err) < 0 ||
	    has(vols, DS_MANAGED, err, &with_vols) < 0)
		return -err->code;
	if (zfs(NULL, err, "snapshot", "-r", snap, NULL) < 0)
		return clbsd_err_prefix(err, "snapshot container %s", name);
	if (with_vols && zfs(NULL, err, "snapshot", "-r", vsnap, NULL) < 0) {
		struct clbsd_err ignore;
		destroy(snap, true, &ignore);
		destroy(vsnap, true, &ignore);
		return clbsd_err_prefix(err, "snapshot volumes of container %s", name);
	}
	return 0;
}

static int cmp_snap(const void *a, const void *b)
{
	const struct storage_snapshot *x = a, *y = b;
	if (x->created_ns != y->created_ns)
		return x->created_ns < y->created_ns ? -1 : 1;
	return strcmp(x->label, y->label);
}

/* Add the snapshots below ds (zfs get -r creation,used) to *s. */
static int collect_snaps(const char *ds, bool own, struct storage_snapshot **s, size_t *n,
			 struct clbsd_err *err)
{
	autofree char *o = NULL;
	if (zfs(&o, err, "get", "-r", "-H", "-p", "-o", "name,property,value", "creation,used",
		ds, NULL) < 0)
		return clbsd_err_prefix(err, "snapshots of %s", ds);
	size_t dl = strlen(ds);
	char *p = o, *l;
	while ((l = next_line(&p))) {
		char *f[3] = {"", "", ""};
		char *at = strchr(l, '@');
		if (fields(l, f, 3) != 3 || !at)
			continue;
		const char *label = at + 1;
		size_t i;
		for (i = 0; i < *n && strcmp((*s)[i].label, label) != 0; i++)
			;
		if (i == *n) {
			if (!own) /* a volume's label that the container does not have */
				continue;
			*s = xrealloc(*s, (*n + 1) * sizeof(**s));
			(*s)[i] = (struct storage_snapshot){xstrdup(label), 0, 0};
			(*n)++;
		}
		long long v = strtoll(f[2], NULL, 10);
		bool top = (size_t)(at - l) == dl && strncmp(l, ds, dl) == 0;
		if (strcmp(f[1], "used") == 0)
			(*s)[i].used += v;
		else if (strcmp(f[1], "creation") == 0 && own && top)
			(*s)[i].created_ns = (int64_t)v * 1000000000;
	}
	return 0;
}

static int z_snapshot_list(struct storage *st, const char *name, struct storage_snapshot **out,
			   size_t *n, struct clbsd_err *err)
{
	if (storage_check_name("container", name, err) < 0)
		return -err->code;
	autofree char *ds = ds_ctr(st, name);
	autofree char *vols = ds_vols(st, name);
	autofree char *what = xasprintf("container %s", name);
	struct storage_snapshot *s = NULL;
	size_t k = 0;
	bool with_vols = false;
	int r = need_managed(what, ds, err);
	if (r == 0)
		r = has(vols, DS_MANAGED, err, &with_vols);
	if (r == 0)
		r = collect_snaps(ds, true, &s, &k, err);
	if (r == 0 && with_vols)
		r = collect_snaps(vols, false, &s, &k, err);
	if (r < 0) {
		storage_snapshots_free(s, k);
		return clbsd_err_prefix(err, "list snapshots of container %s", name);
	}
	if (k)
		qsort(s, k, sizeof(*s), cmp_snap);
	*out = s;
	*n = k;
	return 0;
}

static int z_snapshot_destroy(struct storage *st, const char *name, const char *label,
			      struct clbsd_err *err)
{
	if (storage_check_name("container", name, err) < 0 || storage_check_label(label, err) < 0)
		return -err->code;
	autofree char *snap = xasprintf("%s/containers/%s@%s", st->dataset, name, label);
	autofree char *vsnap = xasprintf("%s/volumes/%s@%s", st->dataset, name, label);
	autofree char *what = xasprintf("snapshot %s of container %s", label, name);
	bool with_vols = false;
	if (need_managed(what, snap, err) < 0 || has(vsnap, DS_MANAGED, err, &with_vols) < 0)
		return -err->code;
	if (destroy(snap, true, err) < 0 || (with_vols && destroy(vsnap, true, err) < 0))
		return clbsd_err_prefix(err, "destroy snapshot %s of container %s", label, name);
	return 0;
}

/* Snapshots of ds (not below), oldest first. */
static int snap_names(const char *ds, struct strv *out, struct clbsd_err *err)
{
	autofree char *o = NULL;
	if (zfs(&o, err, "list", "-H", "-t", "snapshot", "-o", "name", "-s", "creation", "-d",
		"1", ds, NULL) < 0)
		return clbsd_err_prefix(err, "snapshots of %s", ds);
	char *p = o, *l;
	while ((l = next_line(&p)))
		if (strchr(l, '@'))
			strv_push(out, strchr(l, '@') + 1);
	return 0;
}

/*
 * The filesystems of a container that rollback, clone and send act on:
 * state, rootfs, then each volume (vol names in *vols when not NULL).
 */
static int parts_of(const struct storage *st, const char *name, struct strv *ds_out,
		    struct strv *vols_out, struct clbsd_err *err)
{
	autofree char *ds = ds_ctr(st, name);
	autofree char *vols = ds_vols(st, name);
	strv_push(ds_out, ds);
	strv_push_owned(ds_out, xasprintf("%s/rootfs", ds));
	bool with_vols = false;
	if (has(vols, DS_MANAGED, err, &with_vols) < 0)
		return -err->code;
	if (!with_vols)
		return 0;
	struct strv all = STRV_INIT;
	int r = list_fs(vols, &all, NULL, err);
	size_t vl = strlen(vols);
	for (size_t i = 0; r == 0 && i < all.n; i++) {
		/* Only direct children: <vols>/<vol>. */
		const char *rest = all.v[i] + vl;
		if (rest[0] != '/' || strchr(rest + 1, '/'))
			continue;
		strv_push(ds_out, all.v[i]);
		if (vols_out)
			strv_push(vols_out, rest + 1);
	}
	strv_release(&all);
	return r;
}

static int z_rollback(struct storage *st, const char *name, const char *label, unsigned flags,
		      struct clbsd_err *err)
{
	if (storage_check_name("container", name, err) < 0 || storage_check_label(label, err) < 0)
		return -err->code;
	autofree char *top = ds_ctr(st, name);
	autofree char *vols = ds_vols(st, name);
	autofree char *what = xasprintf("container %s", name);
	struct strv all = STRV_INIT, todo = STRV_INIT;
	int r = need_managed(what, top, err);
	if (r == 0)
		r = parts_of(st, name, &all, NULL, err);
	/* Check everything before changing anything. */
	for (size_t i = 0; r == 0 && i < all.n; i++) {
		bool is_state = i == 0, is_vol = i >= 2;
		if ((is_state && !(flags & STORAGE_PART_STATE)) ||
		    (is_vol && !(flags & STORAGE_PART_VOLUMES)))
			continue;
		struct strv snaps = STRV_INIT;
		r = snap_names(all.v[i], &snaps, err);
		size_t at = snaps.n;
		for (size_t j = 0; r == 0 && j < snaps.n && at == snaps.n; j++)
			if (strcmp(snaps.v[j], label) == 0)
				at = j;
		if (r == 0 && at == snaps.n && !is_vol)
			r = clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
					     "no snapshot %s of %s", label, all.v[i]);
		if (r == 0 && at + 1 < snaps.n && !(flags & STORAGE_DISCARD_NEWER))
			r = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EEXIST,
					     "%s has snapshots newer than %s (%s%s); destroy "
					     "them or ask to discard them",
					     all.v[i], label, snaps.v[at + 1],
					     at + 2 < snaps.n ? ", ..." : "");
		if (r == 0 && at < snaps.n) /* a volume made after the snapshot stays */
			strv_push_owned(&todo, xasprintf("%s@%s", all.v[i], label));
		strv_release(&snaps);
	}
	bool with_vols = all.n > 2;
	if (r == 0)
		r = unmount_tree(top, err);
	if (r == 0 && with_vols)
		r = unmount_tree(vols, err);
	for (size_t i = 0; r == 0 && i < todo.n; i++) {
		if (flags & STORAGE_DISCARD_NEWER)
			r = zfs(NULL, err, "rollback", "-r", todo.v[i], NULL);
		else
			r = zfs(NULL, err, "rollback", todo.v[i], NULL);
		if (r < 0)
			clbsd_err_prefix(err, "zfs rollback %s", todo.v[i]);
	}
	/* Mount again whatever happened: the container needs its files. */
	struct clbsd_err e2;
	if (all.n && mount_tree(top, &e2) < 0 && r == 0)
		r = -(*err = e2).code;
	if (with_vols && mount_tree(vols, &e2) < 0 && r == 0)
		r = -(*err = e2).code;
	strv_release(&all);
	strv_release(&todo);
	if (r < 0)
		return clbsd_err_prefix(err, "roll container %s back to %s", name, label);
	return 0;
}

static int z_clone(struct storage *st, const char *src, const char *label, const char *dst,
		   unsigned parts, struct rt_rootfs *out, struct clbsd_err *err)
{
	if (storage_check_name("container", src, err) < 0 ||
	    storage_check_name("container", dst, err) < 0 ||
	    (label && storage_check_label(label, err) < 0))
		return -err->code;
	autofree char *auto_label = label ? NULL : xasprintf("clone-%s", dst);
	if (!label)
		label = auto_label;
	autofree char *sds = ds_ctr(st, src);
	autofree char *dds = ds_ctr(st, dst);
	autofree char *dvols = ds_vols(st, dst);
	autofree char *ddir = storage_ctr_dir(st, dst);
	autofree char *swhat = xasprintf("container %s", src);
	autofree char *dwhat = xasprintf("container %s", dst);
	autofree char *snap = xasprintf("%s@%s", sds, label);
	autofree char *rsnap = xasprintf("%s/rootfs@%s", sds, label);
	autofree char *drootfs = xasprintf("%s/rootfs", dds);
	if (need_managed(swhat, sds, err) < 0 || need_absent(dwhat, dds, err) < 0 ||
	    need_empty_dir(ddir, err) < 0)
		return clbsd_err_prefix(err, "clone %s to %s", src, dst);
	bool made_snap = false, made_dvols = false;
	struct strv kv = STRV_INIT, ds = STRV_INIT, vols = STRV_INIT;
	int r = 0;
	if (auto_label) {
		r = z_snapshot(st, src, label, err);
		made_snap = r == 0;
	} else {
		autofree char *what = xasprintf("snapshot %s of container %s", label, src);
		r = need_managed(what, snap, err);
	}
	if (r == 0)
		r = local_props(sds, &kv, err);
	if (r == 0)
		r = make_ds(parts & STORAGE_PART_STATE ? snap : NULL, dds, &kv, err);
	if (r == 0)
		r = make_ds(rsnap, drootfs, NULL, err);
	if (r == 0 && (parts & STORAGE_PART_VOLUMES))
		r = parts_of(st, src, &ds, &vols, err);
	for (size_t i = 0; r == 0 && i < vols.n; i++) {
		autofree char *vsnap = xasprintf("%s@%s", ds.v[i + 2], label);
		autofree char *target = xasprintf("%s/%s", dvols, vols.v[i]);
		bool present = false;
		r = has(vsnap, DS_MANAGED, err, &present);
		if (r == 0 && present && !made_dvols) {
			autofree char *vwhat = xasprintf("volumes of container %s", dst);
			r = need_absent(vwhat, dvols, err);
			if (r == 0)
				r = ensure_vols(st, dst, &made_dvols, err);
		}
		if (r == 0 && present) {
			struct strv vkv = STRV_INIT;
			r = local_props(ds.v[i + 2], &vkv, err);
			if (r == 0)
				r = make_ds(vsnap, target, &vkv, err);
			strv_release(&vkv);
		}
	}
	strv_release(&kv);
	strv_release(&ds);
	strv_release(&vols);
	if (r < 0) {
		struct clbsd_err ignore;
		destroy_tree(dds, &ignore);
		if (made_dvols)
			destroy_tree(dvols, &ignore);
		if (made_snap)
			z_snapshot_destroy(st, src, label, &ignore);
		rmdir(ddir);
		return clbsd_err_prefix(err, "clone %s@%s to %s", src, label, dst);
	}
	fill(st, dst, out);
	return 0;
}

/* ---- send and receive ---- */

/*
 * The stream: STREAM_MAGIC, then frames (a 4-byte big-endian length and
 * that many bytes). The first frame is a JSON header naming the parts; each
 * part is the output of one `zfs send` cut into frames and ended by an empty
 * frame; the last frame is a JSON trailer {"end":N}. A reader that does not
 * find the trailer knows the stream was cut short.
 */
static int put_frame(int fd, const void *data, uint32_t len)
{
	unsigned char h[4] = {len >> 24, len >> 16, len >> 8, len};
	int r = write_all(fd, h, 4);
	if (r == 0 && len)
		r = write_all(fd, data, len);
	return r;
}

/* Read one frame into b (reset first). -EPIPE when the stream ends early. */
static int get_frame(int fd, struct buf *b, struct clbsd_err *err)
{
	unsigned char h[4];
	buf_reset(b);
	int r = read_exact(fd, h, 4);
	if (r < 0)
		return clbsd_err_set(err, CLBSD_E_INVALID, r, "read stream");
	uint32_t len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
	if (len > FRAME_MAX)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"damaged stream: a frame of %u bytes", len);
	buf_grow(b, len);
	if (len && (r = read_exact(fd, b->data, len)) < 0)
		return clbsd_err_set(err, CLBSD_E_INVALID, r, "read stream");
	b->len = len;
	b->data[len] = '\0';
	return 0;
}

/* Fork argv with stdin/stdout as given (-1: /dev/null) and stderr to errfd. */
static pid_t spawn(char *const argv[], int in, int out, int errfd)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	int null = open("/dev/null", O_RDWR);
	dup2(in >= 0 ? in : null, 0);
	dup2(out >= 0 ? out : null, 1);
	dup2(errfd, 2);
	signal(SIGPIPE, SIG_DFL);
	execvp(argv[0], argv);
	dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* Wait for pid; on failure the message holds the first line of its stderr (errfd). */
static int reap(pid_t pid, const char *what, int errfd, struct clbsd_err *err)
{
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	char msg[512] = "";
	ssize_t n = pread(errfd, msg, sizeof(msg) - 1, 0);
	msg[n > 0 ? n : 0] = '\0';
	msg[strcspn(msg, "\n")] = '\0';
	if (WIFEXITED(status))
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EIO, "%s exited with %d%s%s", what,
					WEXITSTATUS(status), *msg ? ": " : "", msg);
	return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EIO, "%s killed by signal %d", what,
				WTERMSIG(status));
}

/* zfs send [-i @from] snap, framed onto fd. */
static int send_one(const char *snap, const char *from, int fd, struct clbsd_err *err)
{
	struct strv v = STRV_INIT;
	strv_push(&v, "zfs");
	strv_push(&v, "send");
	if (from) {
		strv_push(&v, "-i");
		strv_push_owned(&v, xasprintf("@%s", from));
	}
	strv_push(&v, snap);
	int p[2];
	autoclose int efd = memfd_create("zfs-send-stderr", MFD_CLOEXEC);
	if (efd < 0 || pipe2(p, O_CLOEXEC) < 0) {
		strv_release(&v);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "zfs send %s: pipe", snap);
	}
	pid_t pid = spawn(v.v, -1, p[1], efd);
	close(p[1]);
	strv_release(&v);
	if (pid < 0) {
		close(p[0]);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "zfs send %s: fork", snap);
	}
	autofree char *b = xmalloc(FRAME_MAX);
	int werr = 0;
	for (;;) {
		ssize_t n = read(p[0], b, FRAME_MAX);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if ((werr = put_frame(fd, b, (uint32_t)n)) < 0) {
			kill(pid, SIGTERM);
			break;
		}
	}
	close(p[0]);
	int r = reap(pid, "zfs send", efd, err);
	if (werr < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, werr, "send %s: write stream", snap);
	if (r < 0)
		return clbsd_err_prefix(err, "send %s", snap);
	if ((werr = put_frame(fd, NULL, 0)) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, werr, "send %s: write stream", snap);
	return 0;
}

/* Frames from fd until the empty one, into `zfs recv [-F] target`. */
static int recv_one(int fd, const char *target, bool force, struct clbsd_err *err)
{
	struct strv v = STRV_INIT;
	strv_push(&v, "zfs");
	strv_push(&v, "recv");
	if (force) /* the target changed since @from (zfs-fuse updates atimes) */
		strv_push(&v, "-F");
	strv_push(&v, target);
	int p[2];
	autoclose int efd = memfd_create("zfs-recv-stderr", MFD_CLOEXEC);
	if (efd < 0 || pipe2(p, O_CLOEXEC) < 0) {
		strv_release(&v);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "zfs recv %s: pipe", target);
	}
	pid_t pid = spawn(v.v, p[0], -1, efd);
	close(p[0]);
	strv_release(&v);
	if (pid < 0) {
		close(p[1]);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "zfs recv %s: fork", target);
	}
	struct buf b = BUF_INIT;
	struct clbsd_err rerr;
	int r = 0, werr = 0;
	for (;;) {
		if ((r = get_frame(fd, &b, &rerr)) < 0 || b.len == 0)
			break;
		/* A dead zfs recv (EPIPE) says why when it is reaped. */
		if (werr == 0)
			werr = write_all(p[1], b.data, b.len);
	}
	buf_release(&b);
	/* Closing the pipe early makes zfs recv see a short stream: it keeps nothing. */
	close(p[1]);
	int w = reap(pid, "zfs recv", efd, err);
	if (r < 0) {
		*err = rerr;
		return clbsd_err_prefix(err, "receive %s: the stream ends early or is damaged",
					target);
	}
	if (w < 0)
		return clbsd_err_prefix(err, "receive %s", target);
	if (werr < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, werr, "receive %s", target);
	return 0;
}

static int z_send(struct storage *st, const char *name, const char *label, const char *from,
		  int fd, struct clbsd_err *err)
{
	if (storage_check_name("container", name, err) < 0 || storage_check_label(label, err) < 0 ||
	    (from && storage_check_label(from, err) < 0))
		return -err->code;
	autofree char *top = ds_ctr(st, name);
	autofree char *swhat = xasprintf("snapshot %s of container %s", label, name);
	autofree char *snap = xasprintf("%s@%s", top, label);
	struct strv ds = STRV_INIT, vols = STRV_INIT;
	json_t *hdr = json_object(), *parts = json_array();
	json_object_set_new(hdr, "format", json_string("clbsd-zfs-send"));
	json_object_set_new(hdr, "name", json_string(name));
	json_object_set_new(hdr, "label", json_string(label));
	json_object_set_new(hdr, "from", from ? json_string(from) : json_null());
	int r = need_managed(swhat, snap, err);
	if (r == 0)
		r = parts_of(st, name, &ds, &vols, err);
	/* Decide every part first, so a missing snapshot fails before any byte is sent. */
	bool *incr = xcalloc(ds.n + 1, sizeof(bool));
	bool *skip = xcalloc(ds.n + 1, sizeof(bool));
	for (size_t i = 0; r == 0 && i < ds.n; i++) {
		autofree char *s = xasprintf("%s@%s", ds.v[i], label);
		autofree char *f = from ? xasprintf("%s@%s", ds.v[i], from) : NULL;
		bool here = false, base = false;
		r = has(s, DS_MANAGED, err, &here);
		if (r == 0 && f)
			r = has(f, DS_MANAGED, err, &base);
		if (r < 0)
			break;
		if (!here) { /* a volume made after the snapshot */
			skip[i] = true;
			continue;
		}
		if (f && !base && i < 2) {
			r = clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
					     "no snapshot %s of %s to send changes from", from,
					     ds.v[i]);
			break;
		}
		incr[i] = base;
		struct strv kv = STRV_INIT;
		r = local_props(ds.v[i], &kv, err);
		json_t *pj = json_object(), *props = json_object();
		json_object_set_new(pj, "kind",
				    json_string(i == 0 ? "state" : i == 1 ? "rootfs" : "volume"));
		if (i >= 2)
			json_object_set_new(pj, "volume", json_string(vols.v[i - 2]));
		json_object_set_new(pj, "incremental", json_boolean(base));
		for (size_t k = 0; k < kv.n; k++) {
			char *eq = strchr(kv.v[k], '=');
			*eq = '\0';
			json_object_set_new(props, kv.v[k], json_string(eq + 1));
		}
		json_object_set_new(pj, "props", props);
		json_array_append_new(parts, pj);
		strv_release(&kv);
	}
	json_object_set_new(hdr, "parts", parts);
	size_t sent = 0;
	if (r == 0) {
		autofree char *line = json_line(hdr);
		int w = write_all(fd, STREAM_MAGIC, STREAM_MAGIC_LEN);
		if (w == 0)
			w = put_frame(fd, line, (uint32_t)strlen(line));
		if (w < 0)
			r = clbsd_err_set(err, CLBSD_E_INTERNAL, w, "write stream");
	}
	for (size_t i = 0; r == 0 && i < ds.n; i++) {
		if (skip[i])
			continue;
		autofree char *s = xasprintf("%s@%s", ds.v[i], label);
		r = send_one(s, incr[i] ? from : NULL, fd, err);
		sent++;
	}
	if (r == 0) {
		autofree char *end = xasprintf("{\"end\":%zu}", sent);
		int w = put_frame(fd, end, (uint32_t)strlen(end));
		if (w < 0)
			r = clbsd_err_set(err, CLBSD_E_INTERNAL, w, "write stream");
	}
	json_decref(hdr);
	free(incr);
	free(skip);
	strv_release(&ds);
	strv_release(&vols);
	if (r < 0)
		return clbsd_err_prefix(err, "send container %s@%s", name, label);
	return 0;
}

/* What receive made or changed, to undo on failure. */
struct recv_undo {
	struct strv made;    /* datasets received whole: destroy */
	struct strv touched; /* datasets that got an increment: back to @from */
	bool made_vols;
};

static void recv_rollback(struct recv_undo *u, const char *vols, const char *label,
			  const char *from)
{
	struct clbsd_err ignore;
	for (size_t i = u->touched.n; i > 0; i--) {
		autofree char *s = xasprintf("%s@%s", u->touched.v[i - 1], label);
		autofree char *f = xasprintf("%s@%s", u->touched.v[i - 1], from);
		destroy(s, false, &ignore);
		zfs(NULL, &ignore, "rollback", f, NULL);
	}
	for (size_t i = u->made.n; i > 0; i--)
		destroy_tree(u->made.v[i - 1], &ignore);
	if (u->made_vols)
		destroy_tree(vols, &ignore);
}

/* Apply the props of a stream part ({"quota":"123",...}) to ds. */
static int apply_stream_props(const char *ds, json_t *props, struct clbsd_err *err)
{
	const char *k;
	json_t *v;
	json_object_foreach(props, k, v)
	{
		static const char *const ok[] = {"quota", "reservation", "compression",
						 "recordsize", PROP_HASH};
		bool known = false;
		for (size_t i = 0; i < ARRAY_SIZE(ok) && !known; i++)
			known = strcmp(k, ok[i]) == 0;
		if (!known || !json_is_string(v))
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"damaged stream: property \"%s\"", k);
		autofree char *kv = xasprintf("%s=%s", k, json_string_value(v));
		if (zfs(NULL, err, "set", kv, ds, NULL) < 0)
			return clbsd_err_prefix(err, "zfs set %s on %s", kv, ds);
	}
	return 0;
}

static int z_receive(struct storage *st, const char *name, int fd, struct clbsd_err *err)
{
	if (storage_check_name("container", name, err) < 0)
		return -err->code;
	char magic[STREAM_MAGIC_LEN];
	int r = read_exact(fd, magic, sizeof(magic));
	if (r < 0 || memcmp(magic, STREAM_MAGIC, sizeof(magic)) != 0)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"receive container %s: not a stream from the zfs driver's "
					"send (a dir driver stream is a tar archive)",
					name);
	struct buf b = BUF_INIT;
	json_t *hdr = NULL;
	if (get_frame(fd, &b, err) < 0) {
		buf_release(&b);
		return clbsd_err_prefix(err, "receive container %s", name);
	}
	hdr = json_loadb(b.data, b.len, 0, NULL);
	json_t *parts = json_object_get(hdr, "parts");
	const char *label = json_str(hdr, "label");
	const char *from = json_str(hdr, "from");
	size_t np = json_array_size(parts);
	autofree char *top = ds_ctr(st, name);
	autofree char *vols = ds_vols(st, name);
	autofree char *dir = storage_ctr_dir(st, name);
	autofree char *what = xasprintf("container %s", name);
	struct recv_undo u = {STRV_INIT, STRV_INIT, false};
	bool vols_there = false;
	if (!json_is_object(hdr) || !json_is_array(parts) || np < 2 || !label ||
	    storage_check_label(label, err) < 0 || (from && storage_check_label(from, err) < 0))
		r = clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "damaged stream header");
	else if (!from) {
		r = need_absent(what, top, err);
		if (r == 0)
			r = need_empty_dir(dir, err);
	} else {
		autofree char *f = xasprintf("%s@%s", top, from);
		autofree char *s = xasprintf("%s@%s", top, label);
		autofree char *fwhat = xasprintf("snapshot %s of container %s", from, name);
		autofree char *lwhat = xasprintf("snapshot %s of container %s", label, name);
		r = need_managed(fwhat, f, err);
		if (r == 0)
			r = need_absent(lwhat, s, err);
		/* Pages cached by the mounted FUSE file system would hide the update. */
		if (r == 0)
			r = unmount_tree(top, err);
	}
	if (r == 0)
		r = has(vols, DS_MANAGED, err, &vols_there);
	if (r == 0 && from && vols_there)
		r = unmount_tree(vols, err);
	for (size_t i = 0; r == 0 && i < np; i++) {
		json_t *pj = json_array_get(parts, i);
		const char *kind = json_str(pj, "kind");
		const char *vol = json_str(pj, "volume");
		bool incr = json_bool(pj, "incremental", false);
		autofree char *target = NULL;
		if (i == 0 && kind && !strcmp(kind, "state"))
			target = xstrdup(top);
		else if (i == 1 && kind && !strcmp(kind, "rootfs"))
			target = xasprintf("%s/rootfs", top);
		else if (i >= 2 && kind && !strcmp(kind, "volume") && vol && valid_name(vol))
			target = xasprintf("%s/%s", vols, vol);
		if (!target || (incr && !from)) {
			r = clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					     "damaged stream: part %zu", i + 1);
			break;
		}
		if (!incr && i >= 2) {
			autofree char *vwhat = xasprintf("volume %s of container %s", vol, name);
			bool made = false;
			r = need_absent(vwhat, target, err);
			if (r == 0 && !vols_there)
				r = ensure_vols(st, name, &made, err);
			vols_there = vols_there || made;
			u.made_vols = u.made_vols || made;
			if (r < 0)
				break;
		}
		r = recv_one(fd, target, incr, err);
		if (r == 0 && !incr) {
			strv_push(&u.made, target);
			r = zfs(NULL, err, "set", OPT_MANAGED, target, NULL);
			if (r == 0)
				r = apply_stream_props(target, json_object_get(pj, "props"), err);
		} else if (r == 0) {
			strv_push(&u.touched, target);
		}
	}
	if (r == 0) {
		json_t *end = NULL;
		r = get_frame(fd, &b, err);
		if (r == 0)
			end = json_loadb(b.data, b.len, 0, NULL);
		if (r == 0 && json_int(end, "end", -1) != (int64_t)np)
			r = clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					     "the stream has no end mark: cut short?");
		json_decref(end);
	}
	if (r < 0)
		recv_rollback(&u, vols, label ? label : "", from ? from : "");
	/* Mount again what was unmounted, and mount what arrived. */
	struct clbsd_err e2;
	bool vols_now = false;
	if (r == 0 || from)
		mount_tree(top, &e2);
	if (has(vols, DS_MANAGED, &e2, &vols_now) == 0 && vols_now)
		mount_tree(vols, &e2);
	if (r < 0 && !from)
		rmdir(dir);
	strv_release(&u.made);
	strv_release(&u.touched);
	json_decref(hdr);
	buf_release(&b);
	if (r < 0)
		return clbsd_err_prefix(err, "receive container %s", name);
	return 0;
}

/* ---- the path-based entry points the daemon uses today ---- */

/* ctr_dir must be <root>/containers/<name>. */
static int name_of(const struct storage *st, const char *ctr_dir, char **name,
		   struct clbsd_err *err)
{
	autofree char *prefix = xasprintf("%s/containers/", st->root);
	size_t pl = strlen(prefix);
	if (strncmp(ctr_dir, prefix, pl) != 0 || !valid_name(ctr_dir + pl))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"%s is not a container directory of the zfs driver (%s<name>)",
					ctr_dir, prefix);
	*name = xstrdup(ctr_dir + pl);
	return 0;
}

static int z_create(struct storage *st, const char *image_rootfs, const char *ctr_dir,
		    struct rt_rootfs *out, struct clbsd_err *err)
{
	autofree char *name = NULL;
	if (name_of(st, ctr_dir, &name, err) < 0)
		return -err->code;
	/* image_rootfs is <anything>/<id>/rootfs, as the image store lays it out. */
	autofree char *id = xstrdup(image_rootfs);
	size_t n = strlen(id);
	char *slash = NULL;
	if (n > 7 && strcmp(id + n - 7, "/rootfs") == 0) {
		id[n - 7] = '\0';
		slash = strrchr(id, '/');
	}
	if (!slash || storage_check_image_id(slash + 1, err) < 0)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"%s is not an image rootfs (<dir>/<id>/rootfs)",
					image_rootfs);
	if (z_image_prepare(st, slash + 1, image_rootfs, err) < 0)
		return -err->code;
	return z_ctr_create(st, name, slash + 1, NULL, out, err);
}

static int z_describe(struct storage *st, const char *image_rootfs, const char *ctr_dir,
		      struct rt_rootfs *out, struct clbsd_err *err)
{
	autofree char *name = NULL;
	if (name_of(st, ctr_dir, &name, err) < 0)
		return -err->code;
	return z_ctr_describe(st, name, out, err);
}

static int z_remove(struct storage *st, const char *ctr_dir, struct clbsd_err *err)
{
	autofree char *name = NULL;
	if (name_of(st, ctr_dir, &name, err) < 0)
		return -err->code;
	return z_ctr_remove(st, name, false, err);
}

static int64_t z_usage(struct storage *st, const char *ctr_dir)
{
	struct clbsd_err err;
	autofree char *name = NULL;
	autofree char *o = NULL;
	if (name_of(st, ctr_dir, &name, &err) < 0)
		return 0;
	autofree char *ds = xasprintf("%s/containers/%s/rootfs", st->dataset, name);
	if (zfs(&o, &err, "get", "-H", "-p", "-o", "value", "used", ds, NULL) < 0)
		return 0;
	return strtoll(o, NULL, 10);
}

static const struct storage_ops zfs_ops = {
	.name = "zfs",
	.create = z_create,
	.describe = z_describe,
	.remove = z_remove,
	.usage = z_usage,
	.image_prepare = z_image_prepare,
	.image_remove = z_image_remove,
	.ctr_create = z_ctr_create,
	.ctr_describe = z_ctr_describe,
	.ctr_set_props = z_ctr_set_props,
	.ctr_remove = z_ctr_remove,
	.volume_ensure = z_volume_ensure,
	.volume_remove = z_volume_remove,
	.snapshot = z_snapshot,
	.snapshot_list = z_snapshot_list,
	.snapshot_destroy = z_snapshot_destroy,
	.rollback = z_rollback,
	.clone = z_clone,
	.send = z_send,
	.receive = z_receive,
};

/* ---- opening ---- */

static bool ds_name_ok(const char *s)
{
	if (!s || !*s || *s == '/' || strstr(s, "//") || s[strlen(s) - 1] == '/')
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr("_.:-/", *s)))
			return false;
	return true;
}

/* Make <dataset>/<sub> managed, mounted at mp (NULL: not mounted). */
static int ensure_sub(const struct storage *st, const char *sub, const char *mp,
		      struct clbsd_err *err)
{
	autofree char *ds = xasprintf("%s/%s", st->dataset, sub);
	autofree char *want = xstrdup(mp ? mp : "none");
	autofree char *mpopt = xasprintf("mountpoint=%s", want);
	enum dstate s;
	if (ds_state(ds, &s, err) < 0)
		return -err->code;
	if (s == DS_FOREIGN)
		return foreign(ds, err);
	if (mp && (fs_mkdir_p(mp, 0755, err) < 0))
		return -err->code;
	if (s == DS_ABSENT) {
		if (mp && need_empty_dir(mp, err) < 0)
			return -err->code;
		struct strv kv = STRV_INIT;
		strv_push(&kv, mpopt);
		int r = make_ds(NULL, ds, &kv, err);
		strv_release(&kv);
		return r;
	}
	autofree char *o = NULL;
	if (zfs(&o, err, "get", "-H", "-o", "value", "mountpoint", ds, NULL) < 0)
		return clbsd_err_prefix(err, "zfs dataset %s", ds);
	o[strcspn(o, "\n")] = '\0';
	if (strcmp(o, want) != 0) {
		if (mp && need_empty_dir(mp, err) < 0)
			return -err->code;
		if (zfs(NULL, err, "set", mpopt, ds, NULL) < 0)
			return clbsd_err_prefix(err, "zfs dataset %s", ds);
	}
	return mp ? mount_tree(ds, err) : 0;
}

int storage_zfs_open(const char *pool, const char *dataset, const char *mnt, struct storage *out,
		     struct clbsd_err *err)
{
	size_t pl = pool ? strlen(pool) : 0;
	if (!ds_name_ok(pool) || strchr(pool, '/'))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "zfs pool name \"%s\" is not valid",
					pool ? pool : "(null)");
	if (!ds_name_ok(dataset) || strncmp(dataset, pool, pl) != 0 ||
	    (dataset[pl] != '\0' && dataset[pl] != '/'))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"zfs dataset \"%s\" is not a valid name in pool %s",
					dataset ? dataset : "(null)", pool);
	if (!fs_path_is_clean_abs(mnt))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"zfs mount root \"%s\" is not a clean absolute path",
					mnt ? mnt : "(null)");
	struct strv zpool = STRV_INIT;
	strv_push(&zpool, "zpool");
	strv_push(&zpool, "list");
	strv_push(&zpool, "-H");
	strv_push(&zpool, pool);
	if (run_v(&zpool, NULL, err) < 0) {
		err->kind = CLBSD_E_UNAVAIL;
		return clbsd_err_prefix(err, "zfs pool %s is not available (is zfs or zfs-fuse "
					     "running and the pool imported?)",
					pool);
	}
	struct storage st = {.ops = &zfs_ops,
			     .caps = STORAGE_CAP_PROPS | STORAGE_CAP_CHEAP_CLONE |
				     STORAGE_CAP_INCREMENTAL,
			     .root = xstrdup(mnt),
			     .pool = xstrdup(pool),
			     .dataset = xstrdup(dataset)};
	autofree char *containers = xasprintf("%s/containers", mnt);
	autofree char *volumes = xasprintf("%s/volumes", mnt);
	autofree char *tmp = xasprintf("%s/tmp", mnt);
	enum dstate s;
	int r = ds_state(dataset, &s, err);
	/* A root the operator made is used as it is; only its children are clbsd's. */
	if (r == 0 && s == DS_ABSENT) {
		struct strv kv = STRV_INIT;
		strv_push(&kv, "mountpoint=none");
		r = make_ds(NULL, dataset, &kv, err);
		strv_release(&kv);
	}
	if (r == 0)
		r = ensure_sub(&st, "images", NULL, err);
	if (r == 0)
		r = ensure_sub(&st, "containers", containers, err);
	if (r == 0)
		r = ensure_sub(&st, "volumes", volumes, err);
	if (r == 0)
		r = fs_mkdir_p(tmp, 0700, err);
	struct statfs sf;
	if (r == 0 && statfs(containers, &sf) == 0 && sf.f_type == FUSE_SUPER_MAGIC)
		st.fuse = true;
	if (r < 0) {
		storage_release(&st);
		return clbsd_err_prefix(err, "open zfs storage %s", dataset);
	}
	*out = st;
	return 0;
}
