/*
 * Containers as requests: the checks of a create (name, image, user,
 * volumes, limits, security, command and environment) and the config
 * they resolve into, shared by a create, an import's record and the
 * reconciler's declared containers.
 */
#include "daemon.h"
#include "core/config.h"
#include "net/net.h"
#include "util/json.h"
#include "util/util.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

int ctr_bad(struct clbsd_err *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	autofree char *m = xvasprintf(fmt, ap);
	va_end(ap);
	return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "%s", m);
}

static bool env_ok(const char *kv)
{
	const char *eq = strchr(kv, '=');
	return eq && eq != kv;
}

/* Set or replace K in env (strv). */
void ctr_env_set(struct strv *env, const char *kv)
{
	size_t klen = (size_t)(strchr(kv, '=') - kv);
	for (size_t i = 0; i < env->n; i++) {
		if (strncmp(env->v[i], kv, klen) == 0 && env->v[i][klen] == '=') {
			free(env->v[i]);
			env->v[i] = xstrdup(kv);
			return;
		}
	}
	strv_push(env, kv);
}

static bool env_has(const struct strv *env, const char *key)
{
	size_t klen = strlen(key);
	for (size_t i = 0; i < env->n; i++)
		if (strncmp(env->v[i], key, klen) == 0 && env->v[i][klen] == '=')
			return true;
	return false;
}

int ctr_lookup_db(const char *text, const char *name, uint32_t *id, uint32_t *gid)
{
	autofree char *copy = xstrdup(text);
	char *save = NULL;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[4] = {0};
		char *p = line;
		for (int i = 0; i < 4 && p; i++) {
			f[i] = p;
			p = strchr(p, ':');
			if (p)
				*p++ = '\0';
		}
		if (!f[0] || !f[2] || strcmp(f[0], name) != 0)
			continue;
		long long v;
		if (parse_int(f[2], 0, UINT32_MAX, &v) < 0)
			return -EINVAL;
		*id = (uint32_t)v;
		if (gid && f[3] && parse_int(f[3], 0, UINT32_MAX, &v) == 0)
			*gid = (uint32_t)v;
		return 0;
	}
	return -ENOENT;
}

int ctr_read_tree_file(const char *const *roots, size_t n, const char *rel, char **text,
		       struct clbsd_err *err)
{
	for (size_t i = 0; i < n; i++) {
		if (!roots[i])
			continue;
		int r = fs_read_in_rootdir(roots[i], rel, CTR_DB_MAX, text, NULL, err);
		if (r == 0 || err->kind != CLBSD_E_NOTFOUND)
			return r;
	}
	return clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT, "there is no /%s", rel);
}

/*
 * The container's view of /etc/passwd or /etc/group, read on the host from
 * its layers: its own layer first (overlay upper, or the copy), then the
 * image's. The tree is the container's to change, so it is read with
 * fs_read_in_rootdir(): no symlink leaves the layer, and a FIFO, a device
 * node or a huge file is refused at once, which is why this may run on the
 * event loop. A symlink in the upper layer to a file only the image has is
 * not found there, and the image's file is read instead.
 */
static int ctr_read_db(struct daemon *d, const char *image_id, const char *ctr_dir, const char *rel,
		       char **text, struct clbsd_err *err)
{
	autofree char *upper = ctr_dir ? xasprintf("%s/upper", ctr_dir) : NULL;
	autofree char *copy = ctr_dir ? xasprintf("%s/fs", ctr_dir) : NULL;
	autofree char *image = image_id ? xasprintf("%s/%s/rootfs", d->images.dir, image_id) : NULL;
	const char *roots[] = {upper, copy, image};
	return ctr_read_tree_file(roots, ARRAY_SIZE(roots), rel, text, err);
}

/* A name is asked for and the file to look it up in cannot be read: the caller's input. */
static int db_unreadable(struct clbsd_err *err, const char *what, const char *name,
			 const char *numeric)
{
	clbsd_err_prefix(err, "%s \"%s\" cannot be looked up (give a numeric %s)", what, name,
			 numeric);
	err->kind = CLBSD_E_INVALID;
	return -err->code;
}

int ctr_resolve_user(struct daemon *d, const char *image_id, const char *ctr_dir, const char *user,
		     uint32_t *uid, uint32_t *gid, struct clbsd_err *err)
{
	if (!user || !*user) {
		*uid = 0;
		*gid = 0;
		return 0;
	}
	autofree char *u = xstrdup(user);
	char *g = strchr(u, ':');
	if (g)
		*g++ = '\0';
	long long v;
	uint32_t ruid, rgid = 0;
	if (parse_int(u, 0, UINT32_MAX - 1, &v) == 0) {
		ruid = (uint32_t)v;
		rgid = ruid == 0 ? 0 : ruid;
		/* A numeric uid takes its group from passwd when listed there. */
		autofree char *text = NULL;
		struct clbsd_err e2;
		if (ctr_read_db(d, image_id, ctr_dir, "etc/passwd", &text, &e2) == 0) {
			char *save = NULL;
			for (char *line = strtok_r(text, "\n", &save); line;
			     line = strtok_r(NULL, "\n", &save)) {
				char *f[4] = {0};
				char *p = line;
				for (int i = 0; i < 4 && p; i++) {
					f[i] = p;
					p = strchr(p, ':');
					if (p)
						*p++ = '\0';
				}
				long long pu, pg;
				if (f[2] && f[3] && parse_int(f[2], 0, UINT32_MAX, &pu) == 0 &&
				    (uint32_t)pu == ruid &&
				    parse_int(f[3], 0, UINT32_MAX, &pg) == 0) {
					rgid = (uint32_t)pg;
					break;
				}
			}
		}
	} else {
		if (!valid_name(u) &&
		    strspn(u, "abcdefghijklmnopqrstuvwxyz0123456789_-.") != strlen(u))
			return ctr_bad(err,
				       "invalid user \"%s\": expected UID[:GID] or a user name",
				       user);
		autofree char *passwd = NULL;
		if (ctr_read_db(d, image_id, ctr_dir, "etc/passwd", &passwd, err) < 0)
			return db_unreadable(err, "user", u, "UID[:GID]");
		if (ctr_lookup_db(passwd, u, &ruid, &rgid) < 0)
			return ctr_bad(err,
				       "user \"%s\" not found in the image's /etc/passwd; use a "
				       "numeric UID[:GID]",
				       u);
	}
	if (g) {
		if (parse_int(g, 0, UINT32_MAX - 1, &v) == 0) {
			rgid = (uint32_t)v;
		} else {
			autofree char *group = NULL;
			if (ctr_read_db(d, image_id, ctr_dir, "etc/group", &group, err) < 0)
				return db_unreadable(err, "group", g, "GID");
			if (ctr_lookup_db(group, g, &rgid, NULL) < 0)
				return ctr_bad(
					err,
					"group \"%s\" not found in the image's /etc/group; use "
					"a numeric GID",
					g);
		}
	}
	*uid = ruid;
	*gid = rgid;
	return 0;
}

/*
 * "QUOTA/RESERVATION/RECORDSIZE/COMPRESSION": the container's own
 * dataset's properties (drivers with STORAGE_CAP_PROPS), as recorded.
 */
char *ctr_storage_text(const struct storage_props *p)
{
	return xasprintf("%lld/%lld/%lld/%s", (long long)p->quota, (long long)p->reservation,
			 (long long)p->recordsize, p->compression ? p->compression : "");
}

/* The spec's :storage, on a driver that can set it. *any says whether one was given. */
static int storage_props_of(struct daemon *d, const struct ctr_spec *s, struct storage_props *p,
			    bool *any, struct clbsd_err *err)
{
	*p = (struct storage_props){.quota = s->storage_quota,
				    .reservation = s->storage_reservation,
				    .recordsize = s->storage_recordsize,
				    .compression = s->storage_compression};
	*any = p->quota || p->reservation || p->recordsize || p->compression;
	if (*any && !(d->storage.caps & STORAGE_CAP_PROPS))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, ENOTSUP,
					"storage properties need zfs storage; this daemon uses %s "
					"storage (see docs/storage.md)",
					d->storage.ops->name);
	return 0;
}

/*
 * The spec's volumes as mounts. A host directory must exist; a named
 * volume (the form's :dataset, the API's "NAME:/dir") lives beside, not
 * in, the container, so it outlives recreation: made or reused here (zfs: a
 * dataset of its own, with the volume's properties) when `make`, else left
 * as its name (a check that makes nothing).
 */
int ctr_volumes_of(struct daemon *d, const struct ctr_spec *s, const char *name, bool make,
		   struct ctr_config *cfg, struct clbsd_err *err)
{
	cfg->volumes = xcalloc(s->nvolumes ? s->nvolumes : 1, sizeof(struct rt_mount));
	for (size_t i = 0; i < s->nvolumes; i++) {
		const struct ctr_volume *v = &s->volumes[i];
		char *src = NULL;
		if (v->type == CTR_VOL_BIND) {
			if (!fs_exists(v->source))
				return ctr_bad(err, "volume source %s does not exist on the host",
					       v->source);
			src = xstrdup(v->source);
		} else if (!make) {
			src = xstrdup(v->source);
		} else {
			struct storage_props props = {.quota = v->quota,
						      .reservation = v->reservation,
						      .recordsize = v->recordsize,
						      .compression = v->compression};
			bool any = v->quota || v->reservation || v->recordsize || v->compression;
			if (any && !(d->storage.caps & STORAGE_CAP_PROPS)) {
				log_warn("container", name,
					 "volume %s: :quota, :reservation, :recordsize and "
					 ":compression need zfs storage; ignored on %s",
					 v->source, d->storage.ops->name);
				any = false;
			}
			if (d->storage.ops->volume_ensure(&d->storage, name, v->source,
							  any ? &props : NULL, &src, err) < 0)
				return clbsd_err_prefix(err, "volume %s", v->source);
		}
		cfg->volumes[i].source = src;
		cfg->volumes[i].dest = xstrdup(v->path);
		cfg->volumes[i].readonly = v->ro;
		cfg->n_volumes = i + 1;
	}
	return 0;
}

static int limits_of(const struct ctr_spec *s, struct ctr_config *cfg, struct clbsd_err *err)
{
	cfg->limits.memory = s->memory;
	cfg->limits.pids = s->pids;
	if (s->cpus) {
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		if (s->cpus <= 0.0 || s->cpus > (double)(ncpu > 0 ? ncpu : 1024))
			return ctr_bad(err,
				       "\"cpus\" %.2f is out of range: expected more than 0 and at "
				       "most %ld (this host's CPUs)",
				       s->cpus, ncpu);
		cfg->limits.cpus = s->cpus;
	}
	return 0;
}

/*
 * Capabilities, sysctls, devices and labels: the capability set resolved
 * by Docker's rules, the sysctls checked again (the API's body may come
 * from anywhere), each device looked up on the host (a character or block
 * node, at create: its numbers go into the cgroup's allow-list).
 */
static int security_of(const struct ctr_spec *s, struct ctr_config *cfg, struct clbsd_err *err)
{
	if (s->cap_add || s->cap_drop) {
		cfg->caps_set = true;
		cfg->caps = ctr_caps_mask(s->cap_add, s->cap_drop);
	}
	if (ctr_sysctls_need_netns(s->sysctls, s->nsysctls) && s->netmode_given &&
	    s->netmode == CTR_NET_HOST)
		return ctr_bad(err, "net.* sysctls need the container's own network namespace, but "
				    "its network is host");
	struct strv sv = STRV_INIT;
	for (size_t i = 0; i < s->nsysctls; i++) {
		char why[300];
		if (!ctr_sysctl_ok(s->sysctls[i].key, s->sysctls[i].value, why, sizeof(why))) {
			strv_release(&sv);
			return ctr_bad(err, "%s", why);
		}
		strv_push_owned(&sv, xasprintf("%s=%s", s->sysctls[i].key, s->sysctls[i].value));
	}
	cfg->sysctls = sv.v;
	struct strv lv = STRV_INIT;
	for (size_t i = 0; i < s->nlabels; i++)
		strv_push_owned(&lv, xasprintf("%s=%s", s->labels[i].key, s->labels[i].value));
	cfg->labels = lv.v;
	cfg->devices = xcalloc(s->ndevices + 1, sizeof(struct rt_device));
	for (size_t i = 0; i < s->ndevices; i++) {
		const struct ctr_device *dv = &s->devices[i];
		struct stat st;
		if (stat(dv->host, &st) < 0)
			return clbsd_err_set(
				err, errno == ENOENT ? CLBSD_E_INVALID : CLBSD_E_INTERNAL, errno,
				"device %s: not on this host (load its module, e.g. "
				"modprobe tun, or remove it from :devices)",
				dv->host);
		if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode))
			return ctr_bad(err, "device %s is not a character or block device node",
				       dv->host);
		struct rt_device *o = &cfg->devices[cfg->n_devices++];
		o->source = xstrdup(dv->host);
		o->path = xstrdup(dv->path);
		o->type = S_ISCHR(st.st_mode) ? 'c' : 'b';
		o->major = (int)major(st.st_rdev);
		o->minor = (int)minor(st.st_rdev);
		snprintf(o->access, sizeof(o->access), "%s", dv->perms);
	}
	return 0;
}

/* The command and environment the container runs with: the spec's over its image's. */
static int argv_env_of(const struct ctr_spec *s, const struct image *img, struct ctr_config *cfg,
		       struct clbsd_err *err)
{
	cfg->command = s->command ? strv_dup(s->command) : NULL;
	struct strv argv = STRV_INIT;
	/* A given entrypoint replaces the image's and drops its CMD (docker --entrypoint). */
	char *const *ep = s->entrypoint ? s->entrypoint : img->config.entrypoint;
	for (size_t i = 0; ep && ep[i]; i++)
		strv_push(&argv, ep[i]);
	char **cmd = cfg->command && cfg->command[0] ? cfg->command
		     : s->entrypoint		     ? NULL
						     : img->config.cmd;
	for (size_t i = 0; cmd && cmd[i]; i++)
		strv_push(&argv, cmd[i]);
	if (argv.n == 0)
		return ctr_bad(err,
			       "no command: the image has no CMD or ENTRYPOINT and none was given");
	cfg->argv = argv.v;
	struct strv env = STRV_INIT;
	for (size_t i = 0; img->config.env && img->config.env[i]; i++)
		if (env_ok(img->config.env[i]))
			ctr_env_set(&env, img->config.env[i]);
	if (!env_has(&env, "PATH"))
		ctr_env_set(&env,
			    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	autofree char *hostenv = xasprintf("HOSTNAME=%s", cfg->hostname);
	ctr_env_set(&env, hostenv);
	ctr_env_set(&env, "container=clbsd");
	if (cfg->tty)
		ctr_env_set(&env, "TERM=xterm");
	for (size_t i = 0; i < s->nenv; i++) {
		autofree char *kv = xasprintf("%s=%s", s->env[i].key, s->env[i].value);
		ctr_env_set(&env, kv);
	}
	if (!env.v)
		env.v = xcalloc(1, sizeof(char *));
	cfg->env = env.v;
	return 0;
}

/*
 * Resolve the container's config from its spec and its image: what runs,
 * as whom, with which mounts and limits. Named volumes are made when
 * `make`; nothing else is made on disk here.
 */
static int build_config(struct daemon *d, const struct ctr_spec *s, const struct image *img,
			const char *name, bool make, struct ctr_config *cfg, struct clbsd_err *err)
{
	cfg->hostname = xstrdup(s->hostname ? s->hostname : name);
	cfg->tty = s->tty;
	cfg->stdin_open = s->stdin_open;
	if (argv_env_of(s, img, cfg, err) < 0)
		return -err->code;
	cfg->workdir = xstrdup(s->workdir				     ? s->workdir
			       : img->config.workdir && *img->config.workdir ? img->config.workdir
									     : "/");
	cfg->user = xstrdup(s->user ? s->user : img->config.user ? img->config.user : "");
	if (ctr_resolve_user(d, img->id, NULL, cfg->user, &cfg->uid, &cfg->gid, err) < 0)
		return -err->code;
	if (ctr_volumes_of(d, s, name, make, cfg, err) < 0 || limits_of(s, cfg, err) < 0)
		return -err->code;
	cfg->restart = s->restart;
	cfg->max_retries = s->restart == CTR_RESTART_ON_FAILURE ? s->restart_max : 0;
	cfg->stop_signal = s->stop_signal ? s->stop_signal : SIGTERM;
	cfg->auto_remove = s->auto_remove;
	cfg->integrity_set = s->integrity_set;
	cfg->integrity_every_ns = s->integrity_every_ns;
	cfg->integrity_exclude = s->integrity_exclude ? strv_dup(s->integrity_exclude) : NULL;
	cfg->integrity_include = s->integrity_include ? strv_dup(s->integrity_include) : NULL;
	if (cfg->auto_remove && cfg->restart != CTR_RESTART_NO)
		return ctr_bad(err, "auto-remove (--rm) and a restart policy cannot be combined");
	return security_of(s, cfg, err);
}

/*
 * ctr_check_spec: everything POST /v1/containers checks once the name is chosen: the name
 * is free, the image is here, and the config, network and storage
 * properties resolve against it (into c->cfg, c->net). ctr_create and
 * ctr_check_create (an import's record) share it; only the first makes
 * (named volumes).
 */
int ctr_check_name(struct daemon *d, const char *name, struct clbsd_err *err)
{
	if (!valid_name(name))
		return ctr_bad(
			err,
			"container name \"%s\" is not a DNS label: use 1-63 lowercase letters, "
			"digits and inner hyphens",
			name);
	for (struct container *o = d->ctrs; o; o = o->next)
		if (strcmp(o->name, name) == 0)
			return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EEXIST,
						"a container named %s already exists; remove it or "
						"choose another --name",
						name);
	return 0;
}

int ctr_check_spec(struct daemon *d, const struct ctr_spec *s, struct container *c, bool make,
		   struct image **img_out, struct storage_props *props, bool *props_given,
		   struct clbsd_err *err)
{
	const char *name = c->name;
	if (ctr_check_name(d, name, err) < 0)
		return -err->code;
	if (!s->image || !*s->image)
		return ctr_bad(err, "\"image\" is required");
	struct image *img = image_lookup(&d->images, s->image);
	if (!img)
		return ctr_bad(err,
			       "image \"%s\" not found; 'clbsd images' lists images, 'clbsd "
			       "forge' builds forge:latest",
			       s->image);
	if (build_config(d, s, img, name, make, &c->cfg, err) < 0 ||
	    dnet_spec_net(d, s, &c->net, err) < 0)
		return -err->code;
	if (storage_props_of(d, s, props, props_given, err) < 0)
		return -err->code;
	bool userns =
		s->userns == CTR_USERNS_AUTO || (s->userns == CTR_USERNS_UNSET && d->decl.conf &&
						 d->decl.conf->host.userns == CTR_USERNS_AUTO);
	if (userns) {
		autofree char *img_rootfs = xasprintf("%s/rootfs", img->dir);
		if (usermap_assign(d, name, s->userns_prefer, &c->cfg.userns, err) < 0 ||
		    usermap_check_storage(d, img_rootfs, &c->cfg, err) < 0)
			return -err->code;
	}
	*img_out = img;
	return 0;
}

json_t *ctr_check_create(struct daemon *d, json_t *req, struct clbsd_err *err)
{
	struct ctr_spec *s;
	if (ctr_spec_from_json(req, &s, err) < 0)
		return NULL;
	if (!s->name) {
		ctr_spec_free(s);
		ctr_bad(err, "\"name\" must be a string");
		return NULL;
	}
	struct container *c = xcalloc(1, sizeof(*c));
	c->d = d;
	c->name = xstrdup(s->name);
	c->shim.ready_fd = -1;
	struct image *img;
	struct storage_props props;
	bool props_given;
	json_t *out = NULL;
	if (ctr_check_spec(d, s, c, false, &img, &props, &props_given, err) == 0)
		out = json_pack("{s:o,s:o,s:s}", "config", ctr_config_json(&c->cfg), "network",
				ctr_net_to_json(&c->net), "image_id", img->id);
	ctr_free(c);
	ctr_spec_free(s);
	return out;
}
