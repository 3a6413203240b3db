/*
 * Host id ranges of containers with a user namespace ("userns": "auto").
 *
 * A container's range is chosen at create (core/idrange.c) from the pool:
 * the host config's (:userns (:start N :count N)), else /etc/subuid's and
 * /etc/subgid's entry for "clbsd" (or "root"), else 100000000 upwards. It
 * is recorded in container.json (config.userns), so restarts, daemon
 * restarts and exports keep it. <root>/userns.json remembers which range
 * each name had: a name that comes back (a declared container recreated
 * after a change, a re-import) gets the same range while it is free, and a
 * new name takes a range nobody had, so files a former container left in a
 * shared place never belong to a new one.
 *
 * The container's files keep their on-disk ids (idmapped mounts, see
 * runtime/linux/userns.c), so a storage that cannot be idmapped is refused
 * here, at create, with the reason, rather than at the first start.
 */
#include "core/config.h"
#include "core/idrange.h"
#include "daemon.h"
#include "util/json.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The pool for uids (gids: the same slot offset in the gid pool). */
static void pools(struct daemon *d, struct idrange_pool *up, struct idrange_pool *gp)
{
	if (d->decl.conf && d->decl.conf->host.userns_start) {
		up->start = gp->start = (uint32_t)d->decl.conf->host.userns_start;
		up->count = gp->count = (uint32_t)d->decl.conf->host.userns_count;
		return;
	}
	static const char *const users[] = {"clbsd", "root"};
	autofree char *su = NULL, *sg = NULL;
	struct clbsd_err err;
	if (fs_read_file("/etc/subuid", &su, NULL, &err) == 0 &&
	    fs_read_file("/etc/subgid", &sg, NULL, &err) == 0) {
		for (size_t i = 0; i < ARRAY_SIZE(users); i++)
			if (idrange_subid_find(su, users[i], up) &&
			    idrange_subid_find(sg, users[i], gp) && idrange_pool_ok(up) &&
			    idrange_pool_ok(gp))
				return;
	}
	up->start = gp->start = IDRANGE_DEFAULT_START;
	up->count = gp->count = IDRANGE_DEFAULT_COUNT;
}

static json_t *hints_load(struct daemon *d)
{
	autofree char *path = xasprintf("%s/userns.json", d->root);
	autofree char *text = NULL;
	struct clbsd_err err;
	json_t *j = fs_read_file(path, &text, NULL, &err) == 0 ? json_loads(text, 0, NULL) : NULL;
	if (!json_is_object(j)) {
		json_decref(j);
		j = json_object();
	}
	return j;
}

json_t *usermap_json(const struct rt_userns *u)
{
	if (!u->count)
		return json_null();
	return json_pack("{s:I,s:I,s:I}", "uid", (json_int_t)u->uid, "gid", (json_int_t)u->gid,
			 "count", (json_int_t)u->count);
}

void usermap_from_json(const json_t *j, struct rt_userns *u)
{
	memset(u, 0, sizeof(*u));
	int64_t uid = json_int(j, "uid", 0), gid = json_int(j, "gid", 0),
		n = json_int(j, "count", 0);
	if (uid > 0 && gid > 0 && n > 0 && uid + n <= UINT32_MAX && gid + n <= UINT32_MAX) {
		u->uid = (uint32_t)uid;
		u->gid = (uint32_t)gid;
		u->count = (uint32_t)n;
	}
}

int usermap_assign(struct daemon *d, const char *name, uint32_t prefer, struct rt_userns *out,
		   struct clbsd_err *err)
{
	struct idrange_pool up, gp;
	pools(d, &up, &gp);
	size_t n = 0;
	for (struct container *o = d->ctrs; o; o = o->next)
		n++;
	uint32_t *used = xcalloc(n ? n : 1, sizeof(uint32_t));
	size_t nu = 0;
	for (struct container *o = d->ctrs; o; o = o->next)
		if (o->cfg.userns.count && strcmp(o->name, name) != 0)
			used[nu++] = o->cfg.userns.uid;
	json_t *hints = hints_load(d);
	uint32_t *hinted = xcalloc(json_object_size(hints) + 1, sizeof(uint32_t));
	size_t nh = 0;
	const char *k;
	json_t *v;
	json_object_foreach(hints, k, v)
	{
		if (strcmp(k, name) == 0) {
			if (!prefer && json_is_integer(v))
				prefer = (uint32_t)json_integer_value(v);
		} else if (json_is_integer(v)) {
			hinted[nh++] = (uint32_t)json_integer_value(v);
		}
	}
	json_decref(hints);
	uint32_t base;
	int rc = idrange_pick(&up, used, nu, hinted, nh, prefer, &base);
	free(used);
	free(hinted);
	if (rc < 0)
		return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, ENOSPC,
					"userns auto: every range of %u host ids from %u (%zu "
					"ranges) is taken; remove a container or widen the pool "
					"(:userns (:start N :count N) in the host form)",
					IDRANGE_SIZE, up.start, idrange_slots(&up));
	out->uid = base;
	out->gid = gp.start + (base - up.start);
	out->count = IDRANGE_SIZE;
	return 0;
}

/* Names remembered at most; the oldest go first (jansson keeps insertion order). */
#define HINTS_MAX 4096

void usermap_remember(struct daemon *d, const char *name, const struct ctr_config *cfg)
{
	/*
	 * A --rm container never comes back under its name (usually a
	 * generated one), and remembering it would cost a synced write on
	 * every `clbsd run --rm`.
	 */
	const struct rt_userns *u = &cfg->userns;
	if (!u->count || cfg->auto_remove)
		return;
	json_t *hints = hints_load(d);
	json_t *old = json_object_get(hints, name);
	if (json_is_integer(old) && json_integer_value(old) == (json_int_t)u->uid) {
		json_decref(hints);
		return;
	}
	json_object_del(hints, name);
	while (json_object_size(hints) >= HINTS_MAX)
		json_object_del(hints, json_object_iter_key(json_object_iter(hints)));
	json_object_set_new(hints, name, json_integer(u->uid));
	autofree char *text = json_dumps(hints, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(hints);
	autofree char *path = xasprintf("%s/userns.json", d->root);
	struct clbsd_err err;
	if (fs_write_atomic(path, text, strlen(text), 0600, &err) < 0)
		log_warn("container", name, "remember its id range: %s", err.msg);
}

int usermap_adopt(struct daemon *d, json_t *rec, const char *name, struct clbsd_err *err)
{
	json_t *cf = json_object_get(rec, "config");
	struct rt_userns u;
	usermap_from_json(json_object_get(cf, "userns"), &u);
	if (!u.count || !json_is_object(cf))
		return 0;
	bool taken = false;
	for (struct container *o = d->ctrs; o && !taken; o = o->next)
		taken = o->cfg.userns.count && o->cfg.userns.uid == u.uid &&
			strcmp(o->name, name) != 0;
	if (taken) {
		int rc = usermap_assign(d, name, 0, &u, err);
		if (rc < 0)
			return rc;
		json_object_set_new(cf, "userns", usermap_json(&u));
	}
	struct ctr_config cfg = {.userns = u};
	usermap_remember(d, name, &cfg);
	return 0;
}

/* Whether path is d->root or below it. */
static bool in_root(const struct daemon *d, const char *path)
{
	size_t n = strlen(d->root);
	return strncmp(path, d->root, n) == 0 && (path[n] == '/' || !path[n]);
}

void usermap_spec_mounts(const struct daemon *d, struct rt_spec *spec)
{
	for (size_t i = 0; i < spec->n_mounts; i++)
		spec->mounts[i].idmap = spec->userns.count && in_root(d, spec->mounts[i].source);
}

int usermap_check_storage(struct daemon *d, const char *img_rootfs, const struct ctr_config *cfg,
			  struct clbsd_err *err)
{
	if (!d->rt->idmap_check)
		return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, ENOTSUP,
					"userns auto: the %s runtime has no user namespaces",
					d->rt->name);
	autofree char *ctrs = xasprintf("%s/containers", d->root);
	const char *storage[] = {img_rootfs, ctrs};
	const char *driver = d->storage.pool ? "zfs" : "dir";
	struct clbsd_err e;
	for (size_t i = 0; i < ARRAY_SIZE(storage); i++) {
		if (d->rt->idmap_check(storage[i], &e) == 0)
			continue;
		if (e.kind != CLBSD_E_UNAVAIL) {
			*err = e;
			return clbsd_err_prefix(err, "userns auto");
		}
		return clbsd_err_setmsg(
			err, CLBSD_E_UNAVAIL, e.code,
			"userns auto: the %s storage cannot be idmapped%s (%s); use --userns host "
			"(:userns host) or the dir driver on a local file system",
			driver, d->storage.pool ? " on zfs-fuse (FUSE without idmap support)" : "",
			e.msg);
	}
	for (size_t i = 0; i < cfg->n_volumes; i++) {
		const char *src = cfg->volumes[i].source;
		/*
		 * Only clbsd's own volumes are idmapped (a host path is bound as
		 * it is); one made later is checked by its first start.
		 */
		if (!in_root(d, src) || access(src, F_OK) < 0)
			continue;
		if (d->rt->idmap_check(src, &e) < 0)
			return clbsd_err_setmsg(
				err, e.kind, e.code,
				"userns auto: volume %s cannot be idmapped (%s); use "
				"--userns host (:userns host) or a volume on a local "
				"file system",
				src, e.msg);
	}
	return 0;
}
