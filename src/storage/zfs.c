/*
 * The zfs storage driver: one dataset per image, container and volume, made
 * and changed with the zfs(8) command (argv, never a shell; output read with
 * -H and, for numbers, -p). Layout below the root dataset <ds>:
 *
 *   <ds>/images/<id>@base            the image below rootfs/ (mountpoint none
 *                                    once filled; clbsd:layout=tree)
 *   <ds>/containers/<name>           a clone of the image's @base: rootfs/
 *                                    and, beside it, the state (container.json,
 *                                    logs), mounted at <root>/containers/<name>
 *   <ds>/volumes/<name>/<vol>        named volumes, mounted at
 *                                    <root>/volumes/<name>/<vol>
 *
 * One `zfs clone` makes a container. Images made before the tree layout
 * ("flat", the tree at the top of the dataset) are remade when nothing
 * was cloned from them, and else still give containers the older shape:
 * a state dataset with the rootfs clone as its child <name>/rootfs. Every
 * operation below handles both shapes.
 *
 * Mount points are inherited from <ds>/containers and <ds>/volumes, so
 * received and cloned datasets land in the right place without setting
 * anything. Every dataset made here carries clbsd:managed=1 (set locally);
 * nothing without it is changed or destroyed. The commands and the quirks of
 * zfs-fuse they work around are in docs/storage.md; snapshots, rollback and
 * clones are in zfs_snap.c, send and receive in zfs_stream.c.
 */
#include "storage.h"
#include "internal.h"
#include "sys/sys.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- running zfs ---- */

/*
 * At debug level every zfs command is logged with its time: on zfs-fuse
 * they are most of what a migration's downtime is made of (docs/storage.md,
 * "Live migration").
 */
void zfs_log_cmd(char *const *argv, int64_t t0, int r)
{
	if (log_get_level() < LOG_DEBUG)
		return;
	struct buf b = BUF_INIT;
	for (size_t i = 0; argv[i]; i++)
		buf_addf(&b, "%s%s", i ? " " : "", argv[i]);
	autofree char *line = buf_detach(&b, NULL);
	log_debug("zfs", NULL, "%s: %.1f ms%s", line, (double)(time_mono_ns() - t0) / 1e6,
		  r < 0 ? " (failed)" : "");
}

/* Run v (v->v[0] is the program) and release it. */
static int run_v(struct strv *v, char **out, struct clbsd_err *err)
{
	int64_t t0 = time_mono_ns();
	int r = proc_run(v->v, out, err);
	zfs_log_cmd(v->v, t0, r);
	strv_release(v);
	return r;
}

int zfs_run(char **out, struct clbsd_err *err, const char *arg, ...)
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
char *zfs_next_line(char **p)
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
int zfs_fields(char *line, char **f, int max)
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

char *zfs_ds_ctr(const struct storage *st, const char *name)
{
	return xasprintf("%s/containers/%s", st->dataset, name);
}

char *zfs_ds_vols(const struct storage *st, const char *ctr)
{
	return xasprintf("%s/volumes/%s", st->dataset, ctr);
}

static char *ds_img(const struct storage *st, const char *id)
{
	return xasprintf("%s/images/%s", st->dataset, id);
}

/* ---- ownership ---- */

/* Filesystems must have clbsd:managed=1 set locally; snapshots inherit it. */
static bool managed(const char *name, const char *value, const char *source)
{
	if (strcmp(value, "1") != 0)
		return false;
	return strchr(name, '@') || strcmp(source, "local") == 0;
}

int zfs_ds_state(const char *ds, enum zfs_dstate *out, struct clbsd_err *err)
{
	autofree char *o = NULL;
	struct clbsd_err e;
	if (zfs_run(&o, &e, "get", "-H", "-o", "value,source", PROP_MANAGED, ds, NULL) < 0) {
		if (no_such(&e)) {
			*out = ZFS_DS_ABSENT;
			return 0;
		}
		*err = e;
		return clbsd_err_prefix(err, "zfs dataset %s", ds);
	}
	char *p = o, *f[2] = {"", ""};
	char *l = zfs_next_line(&p);
	if (l)
		zfs_fields(l, f, 2);
	*out = l && managed(ds, f[0], f[1]) ? ZFS_DS_MANAGED : ZFS_DS_FOREIGN;
	return 0;
}

static int foreign(const char *ds, struct clbsd_err *err)
{
	return clbsd_err_setmsg(
		err, CLBSD_E_CONFLICT, EPERM,
		"zfs dataset %s exists but is not clbsd's (no %s=1); clbsd will not "
		"change it: rename or destroy it yourself",
		ds, PROP_MANAGED);
}

/* Every dataset and snapshot at and below ds is managed. */
static int check_tree(const char *ds, struct clbsd_err *err)
{
	autofree char *o = NULL;
	if (zfs_run(&o, err, "get", "-r", "-H", "-o", "name,value,source", PROP_MANAGED, ds, NULL) <
	    0)
		return clbsd_err_prefix(err, "zfs dataset %s", ds);
	char *p = o, *l;
	while ((l = zfs_next_line(&p))) {
		char *f[3] = {"", "", ""};
		if (zfs_fields(l, f, 3) == 3 && !managed(f[0], f[1], f[2]))
			return foreign(f[0], err);
	}
	return 0;
}

/* ---- one look at several trees ---- */

int zfs_view_load(struct zfs_view *v, const char *root1, const char *root2, struct clbsd_err *err)
{
	*v = (struct zfs_view){0};
	/*
	 * Only the user property: a recursive get of native ones (quota,
	 * compression) opens the snapshots, and zfs-fuse then fails a rollback
	 * to one of them right after with "I/O error".
	 */
	static const char *const head[] = {
		"zfs", "get", "-H", "-r", "-o", "name,property,value,source", PROP_MANAGED};
	struct strv argv = STRV_INIT;
	for (size_t i = 0; i < ARRAY_SIZE(head); i++)
		strv_push(&argv, head[i]);
	strv_push(&argv, root1);
	if (root2)
		strv_push(&argv, root2);
	autofree char *e = NULL;
	int status = 0;
	int64_t t0 = time_mono_ns();
	int r = proc_run_full(argv.v, -1, &v->text, &e, &status, err);
	zfs_log_cmd(argv.v, t0, r);
	strv_release(&argv);
	if (r < 0)
		return clbsd_err_prefix(err, "zfs get");
	/* A missing root is an answer ("absent"); any other complaint is not. */
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char *p = e, *l;
		while ((l = zfs_next_line(&p))) {
			if (strstr(l, "does not exist"))
				continue;
			clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EIO, "zfs get %s: %s", root1, l);
			zfs_view_release(v);
			return -err->code;
		}
	}
	size_t cap = 0;
	char *p = v->text, *l;
	while ((l = zfs_next_line(&p))) {
		char *f[4] = {"", "", "", ""};
		if (zfs_fields(l, f, 4) != 4)
			continue;
		if (v->n == cap) {
			cap = cap ? 2 * cap : 32;
			v->f = xrealloc(v->f, cap * 4 * sizeof(char *));
		}
		memcpy(v->f + 4 * v->n++, f, sizeof(f));
	}
	return 0;
}

void zfs_view_release(struct zfs_view *v)
{
	free(v->text);
	free(v->f);
	*v = (struct zfs_view){0};
}

enum zfs_dstate zfs_view_state(const struct zfs_view *v, const char *name)
{
	for (size_t i = 0; i < v->n; i++) {
		char **f = v->f + 4 * i;
		if (strcmp(f[0], name) == 0 && strcmp(f[1], PROP_MANAGED) == 0)
			return managed(name, f[2], f[3]) ? ZFS_DS_MANAGED : ZFS_DS_FOREIGN;
	}
	return ZFS_DS_ABSENT;
}

void zfs_view_parts(const struct zfs_view *v, const struct storage *st, const char *name,
		    struct strv *ds_out, struct strv *vols_out, size_t *nctr)
{
	autofree char *ds = zfs_ds_ctr(st, name);
	autofree char *vols = zfs_ds_vols(st, name);
	autofree char *child = xasprintf("%s/rootfs", ds);
	bool flat = zfs_view_state(v, child) != ZFS_DS_ABSENT;
	strv_push(ds_out, ds);
	if (flat)
		strv_push(ds_out, child);
	*nctr = flat ? 2 : 1;
	if (zfs_view_state(v, vols) != ZFS_DS_MANAGED)
		return;
	size_t vl = strlen(vols);
	for (size_t i = 0; i < v->n; i++) {
		char **f = v->f + 4 * i;
		/* Only direct children, <vols>/<vol>, once (their managed line). */
		const char *rest = f[0] + vl;
		if (strncmp(f[0], vols, vl) != 0 || rest[0] != '/' || strpbrk(rest + 1, "/@") ||
		    strcmp(f[1], PROP_MANAGED) != 0)
			continue;
		strv_push(ds_out, f[0]);
		if (vols_out)
			strv_push(vols_out, rest + 1);
	}
}

int zfs_need_absent_as(const char *what, const char *ds, enum zfs_dstate s, struct clbsd_err *err)
{
	if (s == ZFS_DS_FOREIGN)
		return foreign(ds, err);
	if (s == ZFS_DS_MANAGED)
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EEXIST,
					"%s already exists (zfs dataset %s)", what, ds);
	return 0;
}

int zfs_need_managed_as(const char *what, const char *ds, enum zfs_dstate s, struct clbsd_err *err)
{
	if (s == ZFS_DS_FOREIGN)
		return foreign(ds, err);
	if (s == ZFS_DS_ABSENT)
		return clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
					"%s does not exist (no zfs dataset %s)", what, ds);
	return 0;
}

/* Make ds as managed: it must be absent (CONFLICT otherwise). */
int zfs_need_absent(const char *what, const char *ds, struct clbsd_err *err)
{
	enum zfs_dstate s;
	if (zfs_ds_state(ds, &s, err) < 0)
		return -err->code;
	return zfs_need_absent_as(what, ds, s, err);
}

int zfs_need_managed(const char *what, const char *ds, struct clbsd_err *err)
{
	enum zfs_dstate s;
	if (zfs_ds_state(ds, &s, err) < 0)
		return -err->code;
	return zfs_need_managed_as(what, ds, s, err);
}

/* ---- mounting ---- */

/*
 * Filesystems at and below ds and ds2 (NULL: none), each tree parents
 * first, with whether they are mounted: one `zfs list` for both. ds must
 * exist; ds2 missing is an empty tree (a container without volumes).
 */
static int list_fs(const char *ds, const char *ds2, struct strv *names, struct strv *mounted,
		   struct clbsd_err *err)
{
	static const char *const head[] = {"zfs",	   "list", "-H", "-o",
					   "name,mounted", "-r",   "-t", "filesystem"};
	struct strv argv = STRV_INIT;
	for (size_t i = 0; i < ARRAY_SIZE(head); i++)
		strv_push(&argv, head[i]);
	strv_push(&argv, ds);
	if (ds2)
		strv_push(&argv, ds2);
	autofree char *o = NULL, *e = NULL;
	int status = 0;
	int64_t t0 = time_mono_ns();
	int r = proc_run_full(argv.v, -1, &o, &e, &status, err);
	zfs_log_cmd(argv.v, t0, r);
	strv_release(&argv);
	if (r < 0)
		return clbsd_err_prefix(err, "list zfs datasets below %s", ds);
	/* ds2 missing is an empty tree; any other complaint is an error. */
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		autofree char *quoted = ds2 ? xasprintf("'%s'", ds2) : NULL;
		char *p = e, *l;
		while ((l = zfs_next_line(&p)) && quoted && strstr(l, quoted) &&
		       strstr(l, "does not exist"))
			;
		if (l || !quoted)
			return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EIO,
						"list zfs datasets below %s: %s", ds,
						l ? l : "zfs list failed");
	}
	char *p = o, *l;
	while ((l = zfs_next_line(&p))) {
		char *f[2] = {"", ""};
		zfs_fields(l, f, 2);
		strv_push(names, f[0]);
		if (mounted && strcmp(f[1], "yes") == 0)
			strv_push(mounted, f[0]);
	}
	return 0;
}

/*
 * Unmount ds, ds2 (NULL: none) and everything below them, children first,
 * but keep (NULL: none; its children are unmounted). zfs-fuse serves a
 * mounted dataset's pages from the kernel's cache, which `zfs recv` does
 * not invalidate, so datasets are unmounted around a receive.
 */
int zfs_unmount_trees(const char *ds, const char *ds2, const char *keep, struct clbsd_err *err)
{
	struct strv names = STRV_INIT, mounted = STRV_INIT;
	int r = list_fs(ds, ds2, &names, &mounted, err);
	for (size_t i = mounted.n; r == 0 && i > 0; i--) {
		if (keep && strcmp(mounted.v[i - 1], keep) == 0)
			continue;
		r = zfs_run(NULL, err, "umount", mounted.v[i - 1], NULL);
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

int zfs_unmount_tree(const char *ds, struct clbsd_err *err)
{
	return zfs_unmount_trees(ds, NULL, NULL, err);
}

/* Mount whatever at and below ds and ds2 (NULL: none) is not mounted, parents first. */
int zfs_mount_trees(const char *ds, const char *ds2, struct clbsd_err *err)
{
	struct strv names = STRV_INIT, mounted = STRV_INIT;
	int r = list_fs(ds, ds2, &names, &mounted, err);
	for (size_t i = 0; r == 0 && i < names.n; i++) {
		bool is = false;
		for (size_t j = 0; j < mounted.n && !is; j++)
			is = strcmp(mounted.v[j], names.v[i]) == 0;
		if (!is && zfs_run(NULL, err, "mount", names.v[i], NULL) < 0)
			r = clbsd_err_prefix(err, "mount zfs dataset %s", names.v[i]);
	}
	strv_release(&names);
	strv_release(&mounted);
	return r;
}

int zfs_mount_tree(const char *ds, struct clbsd_err *err)
{
	return zfs_mount_trees(ds, NULL, err);
}

/* ---- destroying, with the retries zfs-fuse needs ---- */

/*
 * Before the next try of a zfs-fuse command that failed for a passing
 * reason: sleep 25 ms, doubling up to 1 s. False once `tries` have failed.
 */
bool zfs_retry_wait(int attempt, int tries, useconds_t *delay)
{
	if (attempt + 1 >= tries)
		return false;
	usleep(*delay);
	if (*delay < 1000000)
		*delay *= 2;
	return true;
}

/*
 * Destroy a dataset or snapshot (recursively when asked). zfs-fuse often
 * answers "dataset is busy" right after an unmount, or fails to unmount a
 * dataset whose FUSE mount is still being released: unmount and retry with a
 * backoff (about 10 s in all; 4 s was seen to fall short under load) before
 * giving up.
 */
int zfs_destroy(const char *target, bool recursive, struct clbsd_err *err)
{
	useconds_t delay = 25000;
	for (int attempt = 0;; attempt++) {
		struct clbsd_err e;
		int r = recursive ? zfs_run(NULL, &e, "destroy", "-r", target, NULL)
				  : zfs_run(NULL, &e, "destroy", target, NULL);
		if (r == 0 || no_such(&e))
			return 0;
		if (strstr(e.msg, "dependent clones") || strstr(e.msg, "is cloned"))
			return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EBUSY,
						"destroy %s: a clone depends on it (a container "
						"cloned from it); remove that first",
						target);
		bool busy = strstr(e.msg, "busy") || strstr(e.msg, "mount");
		if (busy && !strchr(target, '@')) {
			struct clbsd_err ignore;
			zfs_unmount_tree(target, &ignore);
		}
		if (!busy || !zfs_retry_wait(attempt, 15, &delay)) {
			*err = e;
			return clbsd_err_prefix(err, "destroy zfs dataset %s", target);
		}
	}
}

/* Destroy a managed dataset and all below it; absent is fine. */
int zfs_destroy_tree(const char *ds, struct clbsd_err *err)
{
	enum zfs_dstate s;
	if (zfs_ds_state(ds, &s, err) < 0)
		return -err->code;
	if (s == ZFS_DS_ABSENT)
		return 0;
	if (s == ZFS_DS_FOREIGN)
		return foreign(ds, err);
	if (check_tree(ds, err) < 0)
		return -err->code;
	struct clbsd_err ignore;
	zfs_unmount_tree(ds, &ignore);
	return zfs_destroy(ds, true, err);
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
			strv_push_owned(set,
					xasprintf("%s=%lld", sizes[i].name, (long long)sizes[i].v));
		else if (sizes[i].v == STORAGE_PROP_RESET && sizes[i].none)
			strv_push_owned(set, xasprintf("%s=%s", sizes[i].name, sizes[i].none));
		else if (sizes[i].v == STORAGE_PROP_RESET && reset)
			strv_push(reset, sizes[i].name);
		else if (sizes[i].v < 0)
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "%s %lld is negative",
						sizes[i].name, (long long)sizes[i].v);
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
		if ((r = zfs_run(NULL, err, "set", set.v[i], ds, NULL)) < 0)
			clbsd_err_prefix(err, "zfs set %s on %s", set.v[i], ds);
	for (size_t i = 0; r == 0 && i < reset.n; i++)
		if ((r = zfs_run(NULL, err, "inherit", reset.v[i], ds, NULL)) < 0)
			clbsd_err_prefix(err, "zfs inherit %s on %s", reset.v[i], ds);
	strv_release(&set);
	strv_release(&reset);
	return r;
}

/* `zfs create` or `zfs clone` of a managed dataset with settings kv ("k=v"). */
int zfs_make_ds(const char *origin, const char *ds, const struct strv *kv, struct clbsd_err *err)
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
int zfs_local_props(const char *ds, struct strv *kv, struct clbsd_err *err)
{
	autofree char *o = NULL;
	if (zfs_run(&o, err, "get", "-H", "-p", "-o", "property,value", "-s", "local", LOCAL_PROPS,
		    ds, NULL) < 0)
		return clbsd_err_prefix(err, "properties of %s", ds);
	char *p = o, *l;
	while ((l = zfs_next_line(&p))) {
		char *f[2] = {"", ""};
		if (zfs_fields(l, f, 2) == 2)
			strv_push_owned(kv, xasprintf("%s=%s", f[0], f[1]));
	}
	return 0;
}

/* ---- small file-system helpers ---- */

/* A directory that is absent or holds nothing can become a mount point. */
int zfs_need_empty_dir(const char *path, struct clbsd_err *err)
{
	DIR *d = opendir(path);
	if (!d)
		return errno == ENOENT
			       ? 0
			       : clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open %s", path);
	struct dirent *de;
	bool empty = true;
	while (empty && (de = readdir(d)))
		empty = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..");
	closedir(d);
	if (!empty)
		return clbsd_err_setmsg(
			err, CLBSD_E_CONFLICT, ENOTEMPTY,
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
		r = sys_copy_tree(s, t, err);
	}
	closedir(d);
	struct stat sb;
	if (r == 0 && (stat(src, &sb) < 0 || chown(dst, sb.st_uid, sb.st_gid) < 0 ||
		       chmod(dst, sb.st_mode & 07777) < 0))
		r = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "copy owner and mode of %s", src);
	return r;
}

/* ---- the driver ---- */

void zfs_fill(const struct storage *st, const char *name, struct rt_rootfs *out)
{
	memset(out, 0, sizeof(*out));
	out->mode = xstrdup("bind");
	out->target = xasprintf("%s/containers/%s/rootfs", st->root, name);
	out->lower = xstrdup(out->target);
}

/* An image's @base: absent, not ours, or ours in the tree or the flat layout. */
enum img_state { IMG_ABSENT, IMG_FOREIGN, IMG_TREE, IMG_FLAT };

static int image_state(const char *base, enum img_state *out, struct clbsd_err *err)
{
	autofree char *o = NULL;
	struct clbsd_err e;
	if (zfs_run(&o, &e, "get", "-H", "-o", "property,value,source",
		    PROP_MANAGED "," PROP_LAYOUT, base, NULL) < 0) {
		if (no_such(&e)) {
			*out = IMG_ABSENT;
			return 0;
		}
		*err = e;
		return clbsd_err_prefix(err, "zfs snapshot %s", base);
	}
	bool ours = false, tree = false;
	char *p = o, *l;
	while ((l = zfs_next_line(&p))) {
		char *f[3] = {"", "", ""};
		zfs_fields(l, f, 3);
		if (strcmp(f[0], PROP_MANAGED) == 0)
			ours = managed(base, f[1], f[2]);
		else if (strcmp(f[0], PROP_LAYOUT) == 0)
			tree = strcmp(f[1], "tree") == 0;
	}
	*out = !ours ? IMG_FOREIGN : tree ? IMG_TREE : IMG_FLAT;
	return 0;
}

/*
 * Images whose @base this process has seen made or checked, with their
 * layout: a create from one skips the check (a zfs command, ~10 ms on
 * zfs-fuse). Dropped when the image is removed here; one destroyed behind
 * our back makes the clone fail with zfs's own message. Ops run on the loop
 * and on workers: a lock.
 */
static pthread_mutex_t prepared_lock = PTHREAD_MUTEX_INITIALIZER;
static struct strv prepared = STRV_INIT; /* "<base> tree" or "<base> flat" */

static size_t prepared_find(const char *base)
{
	size_t bl = strlen(base), i;
	for (i = 0; i < prepared.n; i++)
		if (strncmp(prepared.v[i], base, bl) == 0 && prepared.v[i][bl] == ' ')
			break;
	return i;
}

/* IMG_TREE or IMG_FLAT when known, else IMG_ABSENT. */
static enum img_state prepared_get(const char *base)
{
	pthread_mutex_lock(&prepared_lock);
	size_t i = prepared_find(base);
	enum img_state s = i == prepared.n				      ? IMG_ABSENT
			   : strcmp(strchr(prepared.v[i], ' '), " tree") == 0 ? IMG_TREE
									      : IMG_FLAT;
	pthread_mutex_unlock(&prepared_lock);
	return s;
}

/* Remember base's layout (IMG_TREE, IMG_FLAT) or forget it (IMG_ABSENT). */
static void prepared_set(const char *base, enum img_state s)
{
	pthread_mutex_lock(&prepared_lock);
	size_t i = prepared_find(base);
	if (i < prepared.n) {
		free(prepared.v[i]);
		prepared.v[i] = prepared.v[prepared.n - 1];
		prepared.v[--prepared.n] = NULL;
	}
	if (s == IMG_TREE || s == IMG_FLAT)
		strv_push_owned(&prepared,
				xasprintf("%s %s", base, s == IMG_TREE ? "tree" : "flat"));
	pthread_mutex_unlock(&prepared_lock);
}

/* Make the image dataset ds in the tree layout from rootfs, and its @base. */
static int image_make(struct storage *st, const char *id, const char *ds, const char *base,
		      const char *rootfs, struct clbsd_err *err)
{
	autofree char *mp = xasprintf("%s/tmp/zfs-image-%s", st->root, id);
	autofree char *tree = xasprintf("%s/rootfs", mp);
	if (fs_mkdir_p(mp, 0700, err) < 0 || zfs_need_empty_dir(mp, err) < 0)
		return -err->code;
	struct strv kv = STRV_INIT;
	strv_push(&kv, OPT_LAYOUT);
	strv_push_owned(&kv, xasprintf("mountpoint=%s", mp));
	int r = zfs_make_ds(NULL, ds, &kv, err);
	strv_release(&kv);
	if (r == 0 && (r = fs_mkdir_p(tree, 0755, err)) == 0 &&
	    (r = copy_into(rootfs, tree, err)) < 0)
		clbsd_err_prefix(err, "fill %s from %s", ds, rootfs);
	if (r == 0 && (r = zfs_run(NULL, err, "snapshot", base, NULL)) < 0)
		clbsd_err_prefix(err, "snapshot %s", base);
	/* Nobody needs the image mounted: containers get clones of @base. */
	if (r == 0 && (r = zfs_run(NULL, err, "set", "mountpoint=none", ds, NULL)) < 0)
		clbsd_err_prefix(err, "unmount %s", ds);
	if (r < 0) {
		struct clbsd_err ignore;
		zfs_destroy_tree(ds, &ignore);
	}
	rmdir(mp);
	return r;
}

static int z_image_prepare(struct storage *st, const char *id, const char *rootfs,
			   struct clbsd_err *err)
{
	if (storage_check_image_id(id, err) < 0)
		return -err->code;
	if (!fs_path_is_clean_abs(rootfs) || !fs_is_dir(rootfs))
		return clbsd_err_setmsg(
			err, CLBSD_E_INVALID, EINVAL,
			"image %s: rootfs %s is not an absolute path to a directory", id,
			rootfs ? rootfs : "(null)");
	autofree char *ds = ds_img(st, id);
	autofree char *base = xasprintf("%s@base", ds);
	if (prepared_get(base) != IMG_ABSENT)
		return 0;
	enum img_state s;
	if (image_state(base, &s, err) < 0)
		return clbsd_err_prefix(err, "image %s", id);
	if (s == IMG_TREE) {
		prepared_set(base, s);
		return 0;
	}
	/*
	 * A dataset without @base is what an interrupted prepare left, and a
	 * flat one is remade in the tree layout: start over. A flat image
	 * that containers were cloned from stays as it is.
	 */
	if (zfs_destroy_tree(ds, err) < 0) {
		if (s == IMG_FLAT && err->kind == CLBSD_E_CONFLICT && err->code == EBUSY) {
			prepared_set(base, s);
			return 0;
		}
		return clbsd_err_prefix(err, "image %s", id);
	}
	if (image_make(st, id, ds, base, rootfs, err) < 0)
		return clbsd_err_prefix(err, "prepare image %s", id);
	prepared_set(base, IMG_TREE);
	return 0;
}

static int z_image_remove(struct storage *st, const char *id, struct clbsd_err *err)
{
	if (storage_check_image_id(id, err) < 0)
		return -err->code;
	autofree char *ds = ds_img(st, id);
	autofree char *base = xasprintf("%s@base", ds);
	prepared_set(base, IMG_ABSENT);
	if (zfs_destroy_tree(ds, err) < 0)
		return clbsd_err_prefix(err, "remove image %s", id);
	return 0;
}

/*
 * The container's dataset: one clone of a tree image's @base, or for a flat
 * image a state dataset and the rootfs clone below it. The caller has just
 * prepared the image (z_create), so its layout is known without a zfs
 * command (each costs ~10-15 ms on zfs-fuse) unless it was not noted.
 */
static int ctr_create_ds(struct storage *st, const char *name, const char *image_id,
			 struct rt_rootfs *out, struct clbsd_err *err)
{
	if (storage_check_name("container", name, err) < 0 ||
	    storage_check_image_id(image_id, err) < 0)
		return -err->code;
	autofree char *img = ds_img(st, image_id);
	autofree char *base = xasprintf("%s@base", img);
	autofree char *ds = zfs_ds_ctr(st, name);
	autofree char *rootfs = xasprintf("%s/rootfs", ds);
	autofree char *dir = storage_ctr_dir(st, name);
	autofree char *what = xasprintf("container %s", name);
	enum img_state layout = prepared_get(base);
	if (layout == IMG_ABSENT) {
		if (image_state(base, &layout, err) < 0)
			return clbsd_err_prefix(err, "container %s", name);
		if (layout != IMG_TREE && layout != IMG_FLAT)
			return clbsd_err_setmsg(
				err, CLBSD_E_NOTFOUND, ENOENT,
				"container %s: image %s is not prepared for zfs (no "
				"%s); prepare it first",
				name, image_id, base);
	}
	if (zfs_need_empty_dir(dir, err) < 0)
		return clbsd_err_prefix(err, "create container %s", name);
	int r = zfs_make_ds(layout == IMG_TREE ? base : NULL, ds, NULL, err);
	/*
	 * zfs refuses an existing dataset and changes nothing, so that check
	 * costs no command of its own; only the message is made here.
	 */
	if (r < 0 && strstr(err->msg, "already exists")) {
		struct clbsd_err e2;
		enum zfs_dstate s;
		bool ours = zfs_ds_state(ds, &s, &e2) == 0 && s == ZFS_DS_MANAGED;
		if (ours)
			return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EEXIST,
						"%s already exists (zfs dataset %s)", what, ds);
		return foreign(ds, err);
	}
	if (r < 0)
		return clbsd_err_prefix(err, "create container %s", name);
	if (layout == IMG_FLAT && zfs_make_ds(base, rootfs, NULL, err) < 0) {
		struct clbsd_err ignore;
		zfs_destroy_tree(ds, &ignore);
		return clbsd_err_prefix(err, "create container %s", name);
	}
	zfs_fill(st, name, out);
	return 0;
}

/* *out for container `name` (its datasets mounted again where they are not). */
static int ctr_describe_ds(struct storage *st, const char *name, struct rt_rootfs *out,
			   struct clbsd_err *err)
{
	if (storage_check_name("container", name, err) < 0)
		return -err->code;
	autofree char *ds = zfs_ds_ctr(st, name);
	autofree char *what = xasprintf("container %s", name);
	if (zfs_need_managed(what, ds, err) < 0)
		return -err->code;
	/* After a reboot zfs-fuse may import the pool without mounting everything. */
	if (zfs_mount_tree(ds, err) < 0)
		return clbsd_err_prefix(err, "container %s", name);
	zfs_fill(st, name, out);
	return 0;
}

static int z_ctr_set_props(struct storage *st, const char *name, const struct storage_props *props,
			   struct clbsd_err *err)
{
	if (storage_check_name("container", name, err) < 0)
		return -err->code;
	autofree char *ds = zfs_ds_ctr(st, name);
	autofree char *what = xasprintf("container %s", name);
	if (zfs_need_managed(what, ds, err) < 0 || set_props(st, ds, props, err) < 0)
		return clbsd_err_prefix(err, "container %s", name);
	return 0;
}

static int z_ctr_remove(struct storage *st, const char *name, bool volumes, struct clbsd_err *err)
{
	if (storage_check_name("container", name, err) < 0)
		return -err->code;
	autofree char *ds = zfs_ds_ctr(st, name);
	autofree char *dir = storage_ctr_dir(st, name);
	if (zfs_destroy_tree(ds, err) < 0)
		return clbsd_err_prefix(err, "remove container %s", name);
	rmdir(dir); /* the mount point zfs leaves behind */
	if (!volumes)
		return 0;
	autofree char *vols = zfs_ds_vols(st, name);
	autofree char *vdir = xasprintf("%s/volumes/%s", st->root, name);
	if (zfs_destroy_tree(vols, err) < 0)
		return clbsd_err_prefix(err, "remove volumes of container %s", name);
	rmdir(vdir);
	return 0;
}

static int ensure_sub(const struct storage *st, const char *sub, const char *mp,
		      struct clbsd_err *err);

/*
 * zfs rename of a tree, unmounted first: zfs-fuse answers "busy" for a
 * mounted one now and then, so a busy answer is retried with backoff, as
 * zfs_destroy() does.
 */
static int rename_tree(const char *from, const char *to, struct clbsd_err *err)
{
	useconds_t delay = 25000;
	for (int attempt = 0;; attempt++) {
		struct clbsd_err e;
		zfs_unmount_tree(from, &e);
		if (zfs_run(NULL, &e, "rename", from, to, NULL) == 0)
			return 0;
		bool busy = strstr(e.msg, "busy") || strstr(e.msg, "mount");
		if (!busy || !zfs_retry_wait(attempt, 15, &delay)) {
			*err = e;
			return -err->code;
		}
	}
}

/*
 * Set aside: rename <ds>/containers/<name> (with its rootfs and snapshots)
 * to <ds>/undo/<name>, mounted at <mnt>/undo/<name> (inherited).
 */
static int z_ctr_aside(struct storage *st, const char *name, int how, struct clbsd_err *err)
{
	if (storage_check_name("container", name, err) < 0)
		return -err->code;
	autofree char *ds = zfs_ds_ctr(st, name);
	autofree char *undo = xasprintf("%s/undo", st->dataset);
	autofree char *aside = xasprintf("%s/%s", undo, name);
	autofree char *aside_dir = xasprintf("%s/undo/%s", st->root, name);
	bool have = false;
	if (zfs_has(aside, ZFS_DS_MANAGED, err, &have) < 0)
		return clbsd_err_prefix(err, "set-aside copy of %s", name);
	if (how == STORAGE_ASIDE_DROP) {
		if (have && zfs_destroy_tree(aside, err) < 0)
			return clbsd_err_prefix(err, "drop the set-aside copy of %s", name);
		rmdir(aside_dir);
		return 0;
	}
	if (how == STORAGE_ASIDE_RESTORE) {
		if (!have)
			return clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
						"container %s has nothing set aside to go back to",
						name);
		if (zfs_need_absent("container", ds, err) < 0)
			return -err->code;
		autofree char *dir = storage_ctr_dir(st, name);
		rmdir(dir); /* an empty mount point left by the last removal */
		if (rename_tree(aside, ds, err) < 0) {
			struct clbsd_err e2;
			zfs_mount_tree(aside, &e2);
			return clbsd_err_prefix(err, "restore %s", name);
		}
		rmdir(aside_dir);
		return zfs_mount_tree(ds, err);
	}
	if (zfs_need_managed("container", ds, err) < 0)
		return -err->code;
	bool parent = false;
	if (zfs_has(undo, ZFS_DS_MANAGED, err, &parent) < 0)
		return -err->code;
	if (!parent) {
		/* Mounted, so the daemon can read what is set aside (container.json). */
		autofree char *mp = xasprintf("%s/undo", st->root);
		if (ensure_sub(st, "undo", mp, err) < 0)
			return clbsd_err_prefix(err, "set %s aside", name);
	}
	if (have && zfs_destroy_tree(aside, err) < 0)
		return clbsd_err_prefix(err, "drop the older set-aside copy of %s", name);
	if (rename_tree(ds, aside, err) < 0) {
		struct clbsd_err e2;
		zfs_mount_tree(ds, &e2); /* it stays where it was: mounted again */
		return clbsd_err_prefix(err, "set %s aside", name);
	}
	autofree char *dir = storage_ctr_dir(st, name);
	rmdir(dir);
	return zfs_mount_tree(aside, err);
}

/*
 * chmod 0700 the mounted root of a dataset (or its mount point while it is
 * not mounted). zfs gives a new file system's root 0755, and the mode is
 * the dataset's own, so it travels with it (send, clone) once set.
 */
static int private_root(const char *dir, struct clbsd_err *err)
{
	if (chmod(dir, 0700) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "chmod 0700 %s", dir);
	return 0;
}

/* Make <ds>/volumes/<ctr> if missing; *made says whether it was. */
int zfs_ensure_vols(const struct storage *st, const char *ctr, bool *made, struct clbsd_err *err)
{
	autofree char *vols = zfs_ds_vols(st, ctr);
	enum zfs_dstate s;
	*made = false;
	if (zfs_ds_state(vols, &s, err) < 0)
		return -err->code;
	if (s == ZFS_DS_FOREIGN)
		return foreign(vols, err);
	if (s == ZFS_DS_MANAGED)
		return 0;
	autofree char *dir = xasprintf("%s/volumes/%s", st->root, ctr);
	if (zfs_need_empty_dir(dir, err) < 0 || zfs_make_ds(NULL, vols, NULL, err) < 0)
		return -err->code;
	*made = true;
	/* A new dataset's root is 0755; volumes/ is the guard, this one is a second. */
	return private_root(dir, err);
}

static int z_volume_ensure(struct storage *st, const char *ctr, const char *vol,
			   const struct storage_props *props, char **path, struct clbsd_err *err)
{
	if (storage_check_name("container", ctr, err) < 0 ||
	    storage_check_name("volume", vol, err) < 0)
		return -err->code;
	autofree char *vols = zfs_ds_vols(st, ctr);
	autofree char *ds = xasprintf("%s/%s", vols, vol);
	autofree char *dir = xasprintf("%s/volumes/%s/%s", st->root, ctr, vol);
	bool made_parent;
	enum zfs_dstate s = ZFS_DS_ABSENT;
	int r = zfs_ensure_vols(st, ctr, &made_parent, err);
	if (r == 0)
		r = zfs_ds_state(ds, &s, err);
	if (r == 0 && s == ZFS_DS_FOREIGN)
		r = foreign(ds, err);
	if (r == 0 && s == ZFS_DS_MANAGED)
		r = set_props(st, ds, props, err);
	if (r == 0 && s == ZFS_DS_MANAGED)
		r = zfs_mount_tree(ds, err);
	if (r == 0 && s == ZFS_DS_ABSENT) {
		struct strv kv = STRV_INIT;
		r = props_kv(st, props, &kv, NULL, err);
		if (r == 0)
			r = zfs_need_empty_dir(dir, err);
		if (r == 0)
			r = zfs_make_ds(NULL, ds, &kv, err);
		strv_release(&kv);
	}
	if (r < 0) {
		struct clbsd_err ignore;
		if (made_parent)
			zfs_destroy_tree(vols, &ignore);
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
	if (zfs_destroy_tree(ds, err) < 0)
		return clbsd_err_prefix(err, "remove volume %s of container %s", vol, ctr);
	rmdir(dir);
	return 0;
}

/* ---- the entry points by path ---- */

/* ctr_dir must be <root>/containers/<name>. */
static int name_of(const struct storage *st, const char *ctr_dir, char **name,
		   struct clbsd_err *err)
{
	autofree char *prefix = xasprintf("%s/containers/", st->root);
	size_t pl = strlen(prefix);
	if (strncmp(ctr_dir, prefix, pl) != 0 || !valid_name(ctr_dir + pl))
		return clbsd_err_setmsg(
			err, CLBSD_E_INVALID, EINVAL,
			"%s is not a container directory of the zfs driver (%s<name>)", ctr_dir,
			prefix);
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
	return ctr_create_ds(st, name, slash + 1, out, err);
}

static int z_describe(struct storage *st, const char *image_rootfs, const char *ctr_dir,
		      struct rt_rootfs *out, struct clbsd_err *err)
{
	autofree char *name = NULL;
	if (name_of(st, ctr_dir, &name, err) < 0)
		return -err->code;
	return ctr_describe_ds(st, name, out, err);
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
	autofree char *ds = zfs_ds_ctr(st, name);
	if (zfs_run(&o, &err, "get", "-H", "-p", "-o", "value", "used", ds, NULL) < 0)
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
	.ctr_set_props = z_ctr_set_props,
	.ctr_aside = z_ctr_aside,
	.ctr_remove = z_ctr_remove,
	.volume_ensure = z_volume_ensure,
	.volume_remove = z_volume_remove,
	.snapshot = zfs_snapshot,
	.snapshot_list = zfs_snapshot_list,
	.snapshot_destroy = zfs_snapshot_destroy,
	.snapshot_all = zfs_snapshot_all,
	.rollback = zfs_rollback,
	.clone = zfs_clone,
	.send = zfs_send,
	.receive = zfs_receive,
	.receive_undo = zfs_receive_undo,
	.ctr_mount = zfs_ctr_mount,
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
	enum zfs_dstate s;
	if (zfs_ds_state(ds, &s, err) < 0)
		return -err->code;
	if (s == ZFS_DS_FOREIGN)
		return foreign(ds, err);
	if (mp && (fs_mkdir_p(mp, 0700, err) < 0 || private_root(mp, err) < 0))
		return -err->code;
	if (s == ZFS_DS_ABSENT) {
		if (mp && zfs_need_empty_dir(mp, err) < 0)
			return -err->code;
		struct strv kv = STRV_INIT;
		strv_push(&kv, mpopt);
		int r = zfs_make_ds(NULL, ds, &kv, err);
		strv_release(&kv);
		return r;
	}
	autofree char *o = NULL;
	if (zfs_run(&o, err, "get", "-H", "-o", "value", "mountpoint", ds, NULL) < 0)
		return clbsd_err_prefix(err, "zfs dataset %s", ds);
	o[strcspn(o, "\n")] = '\0';
	if (strcmp(o, want) != 0) {
		if (mp && zfs_need_empty_dir(mp, err) < 0)
			return -err->code;
		if (zfs_run(NULL, err, "set", mpopt, ds, NULL) < 0)
			return clbsd_err_prefix(err, "zfs dataset %s", ds);
	}
	return mp ? zfs_mount_tree(ds, err) : 0;
}

int storage_zfs_open(const char *pool, const char *dataset, const char *mnt, struct storage *out,
		     struct clbsd_err *err)
{
	size_t pl = pool ? strlen(pool) : 0;
	if (!ds_name_ok(pool) || strchr(pool, '/'))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"zfs pool name \"%s\" is not valid",
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
		return clbsd_err_prefix(err,
					"zfs pool %s is not available (is zfs or zfs-fuse "
					"running and the pool imported?)",
					pool);
	}
	struct storage st = {.ops = &zfs_ops,
			     .caps = STORAGE_CAP_PROPS | STORAGE_CAP_CHEAP_CLONE |
				     STORAGE_CAP_INCREMENTAL | STORAGE_CAP_ORDERED |
				     STORAGE_CAP_SELF_CHECKED | STORAGE_CAP_SEND_SNAPS,
			     .root = xstrdup(mnt),
			     .pool = xstrdup(pool),
			     .dataset = xstrdup(dataset)};
	autofree char *containers = xasprintf("%s/containers", mnt);
	autofree char *volumes = xasprintf("%s/volumes", mnt);
	autofree char *tmp = xasprintf("%s/tmp", mnt);
	enum zfs_dstate s;
	int r = zfs_ds_state(dataset, &s, err);
	/* A root the operator made is used as it is; only its children are clbsd's. */
	if (r == 0 && s == ZFS_DS_ABSENT) {
		struct strv kv = STRV_INIT;
		strv_push(&kv, "mountpoint=none");
		r = zfs_make_ds(NULL, dataset, &kv, err);
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
	/* Now the datasets' own roots (0755 when zfs made them), mounted on top. */
	if (r == 0)
		r = private_root(containers, err);
	if (r == 0)
		r = private_root(volumes, err);
	if (r == 0 && sys_is_fuse(containers))
		st.fuse = true;
	if (r < 0) {
		storage_release(&st);
		return clbsd_err_prefix(err, "open zfs storage %s", dataset);
	}
	*out = st;
	return 0;
}
