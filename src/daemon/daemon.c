/*
 * The engine: open, start, run-loop hooks and close of a struct daemon, and
 * the services every part of it calls (events, the shims it reaps). The
 * program around it (src/clbsdd/main.c) parses the options, opens the engine,
 * lets the API listen and runs the loop; the engine never includes api/.
 */
#include "daemon.h"
#include "audit_log.h"
#include "core/audit_rec.h"
#include "core/config.h"
#include "sys/sys.h"
#include "util/json.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- services ---- */

/*
 * Publish an event. Whoever cares subscribes to the bus (hooks, health,
 * the ingress manager, the API's streams).
 */
void daemon_event(struct daemon *d, const char *type, const char *container, json_t *attrs)
{
	events_publish(&d->events, type, container, attrs);
}

void daemon_audit(struct daemon *d, json_t *fields)
{
	audit_log_append(d->audit, 0, fields);
	json_decref(fields);
}

unsigned ctr_audit_classes(struct daemon *d, const struct container *c)
{
	const struct image *img = c->image_id[0] ? image_by_id(&d->images, c->image_id) : NULL;
	unsigned mask = 0;
	char why[512];
	if (img && img->config.auditcfg &&
	    audit_classes_parse(img->config.auditcfg, &mask, why, sizeof(why)) != 0)
		log_debug("audit", c->name, "%s", why);
	return mask;
}

void ctr_audit_console(struct container *c, const json_t *ev)
{
	const char *what = json_str(ev, "what");
	bool opened = what && strcmp(what, "opened") == 0;
	/* An opened session is always recorded; its end under AUDITCFG lo (logout). */
	if (!opened && !(ctr_audit_classes(c->d, c) & AUDIT_C_LO))
		return;
	json_t *f = json_pack(
		"{s:s,s:s,s:I,s:I,s:I,s:b}", "event", opened ? "console.opened" : "console.closed",
		"container", c->name, "uid", (json_int_t)json_int(ev, "uid", -1), "gid",
		(json_int_t)json_int(ev, "gid", -1), "pid", (json_int_t)json_int(ev, "pid", 0),
		"stdin", json_bool(ev, "stdin", false));
	if (!opened)
		json_object_set_new(f, "duration_ms", json_integer(json_int(ev, "duration_ms", 0)));
	daemon_audit(c->d, f);
}

void daemon_track_child(struct daemon *d, pid_t pid)
{
	if (pid <= 0)
		return;
	for (size_t i = 0; i < d->children.n; i++)
		if (d->children.pids[i] == pid)
			return;
	d->children.pids = xrealloc(d->children.pids, (d->children.n + 1) * sizeof(pid_t));
	d->children.pids[d->children.n++] = pid;
}

/*
 * Only the shims we track are reaped: a blanket waitpid(-1) could steal the
 * child a worker thread is waiting for.
 */
void daemon_reap(struct daemon *d)
{
	size_t j = 0;
	for (size_t i = 0; i < d->children.n; i++) {
		pid_t r = waitpid(d->children.pids[i], NULL, WNOHANG);
		if (r == 0)
			d->children.pids[j++] = d->children.pids[i];
	}
	d->children.n = j;
}

/* ---- settings ---- */

static char *default_shim(void)
{
	autofree char *self = sys_self_exe();
	if (self) {
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			char *p = xasprintf("%s/clbsd-shim", self);
			if (access(p, X_OK) == 0)
				return p;
			free(p);
			p = xasprintf("%s/../libexec/clbsd/clbsd-shim", self);
			if (access(p, X_OK) == 0)
				return p;
			free(p);
		}
	}
	return xstrdup("/usr/local/libexec/clbsd/clbsd-shim");
}

static char *absolute(const char *p)
{
	if (p[0] == '/')
		return xstrdup(p);
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		return xstrdup(p);
	return xasprintf("%s/%s", cwd, p);
}

/* conf.d beside the main configuration file. */
static char *confd_of(const char *config)
{
	autofree char *dir = xstrdup(config);
	char *slash = strrchr(dir, '/');
	if (!slash)
		return xstrdup("conf.d");
	if (slash == dir)
		return xstrdup("/conf.d");
	*slash = '\0';
	return xasprintf("%s/conf.d", dir);
}

void daemon_init(struct daemon *d, const struct daemon_opts *o)
{
	memset(d, 0, sizeof(*d));
	d->lock_fd = -1;
	d->api.listen_fd = -1;
	d->filter_fd = -1;
	d->root = absolute(o->root);
	d->run = absolute(o->run);
	d->socket = o->socket ? absolute(o->socket) : xasprintf("%s/clbsd.sock", d->run);
	d->config = absolute(o->config);
	d->shim_path = o->shim ? absolute(o->shim) : default_shim();
	d->busybox = absolute(o->busybox);
	d->cgroup_parent = xstrdup(o->cgroup_parent);
	d->confd = confd_of(d->config);
}

void daemon_init_release(struct daemon *d)
{
	free(d->root), free(d->run), free(d->socket), free(d->config), free(d->shim_path);
	free(d->busybox), free(d->cgroup_parent), free(d->confd);
}

/* ---- open ---- */

/*
 * <run> and <run>/shims are 0710 root:clbsd when a group clbsd exists: its
 * members reach the API socket and the shims' console sockets by name (both
 * 0660 root:clbsd) and can list neither directory; without the group they are
 * 0700. Everything else below <run> (containers/, pool/, ...) is root's:
 * directories 0700, files without bits for others. Run at every start, so an
 * older install is tightened too, and the sockets of running shims follow a
 * group made or removed since they started.
 */
static int secure_entries(const char *dir, const struct group *gr, bool shims,
			  struct clbsd_err *err)
{
	DIR *dh = opendir(dir);
	if (!dh)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open %s", dir);
	struct dirent *de;
	int r = 0;
	while (r == 0 && (de = readdir(dh))) {
		struct stat st;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    (!shims && !strcmp(de->d_name, "shims")) ||
		    fstatat(dirfd(dh), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    S_ISLNK(st.st_mode))
			continue;
		mode_t want = S_ISDIR(st.st_mode) ? 0700 : st.st_mode & 07770;
		/* A shim made before the group was (or was removed) gets the current model. */
		if (shims && S_ISSOCK(st.st_mode)) {
			want = gr ? 0660 : 0600;
			if (gr && st.st_gid != gr->gr_gid &&
			    fchownat(dirfd(dh), de->d_name, (uid_t)-1, gr->gr_gid, 0) < 0)
				r = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "chown %s/%s", dir,
						  de->d_name);
		}
		if (r == 0 && (st.st_mode & 07777) != want &&
		    fchmodat(dirfd(dh), de->d_name, want, 0) < 0)
			r = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "chmod %s/%s", dir,
					  de->d_name);
	}
	closedir(dh);
	return r;
}

static int secure_run(const char *run, struct clbsd_err *err)
{
	struct group *gr = getgrnam("clbsd");
	mode_t open_mode = gr ? 0710 : 0700;
	autofree char *shims = xasprintf("%s/shims", run);
	const char *const shared[] = {run, shims};
	for (size_t i = 0; i < ARRAY_SIZE(shared); i++)
		if ((gr && chown(shared[i], (uid_t)-1, gr->gr_gid) < 0) ||
		    chmod(shared[i], open_mode) < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "secure %s", shared[i]);
	int r = secure_entries(run, gr, false, err);
	return r < 0 ? r : secure_entries(shims, gr, true, err);
}

/*
 * Every API connection, container log and shim socket is an fd: raise the
 * soft RLIMIT_NOFILE to the hard limit (at least API_NOFILE_MIN, which root
 * may set above a low hard limit), so clients run out of the API's own
 * connection limits long before the daemon runs out of fds.
 */
#define API_NOFILE_MIN 65536
static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	rlim_t was = rl.rlim_cur;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < API_NOFILE_MIN) {
		struct rlimit up = {API_NOFILE_MIN, API_NOFILE_MIN};
		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			rl = up;
	}
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? 1 << 20 : rl.rlim_max;
	if (rl.rlim_cur != was && setrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_warn("daemon", NULL, "cannot raise the open file limit above %llu: %s",
			 (unsigned long long)was, strerror(errno));
}

/* <root>, <run> and <run>/shims made and secured, and <root> locked for us. */
static int claim_dirs(struct daemon *d, struct clbsd_err *err)
{
	autofree char *shims = xasprintf("%s/shims", d->run);
	if (fs_mkdir_p(d->root, 0711, err) < 0 || fs_mkdir_p(shims, 0700, err) < 0 ||
	    secure_run(d->run, err) < 0)
		return -err->code;
	autofree char *lock = xasprintf("%s/clbsdd.lock", d->root);
	d->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (d->lock_fd < 0 || flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0)
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EBUSY,
					"%s: another clbsdd already uses root %s", lock, d->root);
	return 0;
}

/* The process and its loop: SIGPIPE ignored, fds raised, libevent for threads. */
static int open_loop(struct daemon *d, struct clbsd_err *err)
{
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	evthread_use_pthreads();
	d->base = event_base_new();
	if (!d->base)
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, ENOMEM,
					"cannot create the event loop");
	return 0;
}

/* The runtime, and the syscall filter it compiles once for every shim. */
static void open_runtime(struct daemon *d)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	d->rt = rt_default_ops();
	d->filter_fd = -1;
	if (d->rt->filter_export && d->rt->filter_export(&d->filter_fd, &err) < 0) {
		log_warn("runtime", NULL, "%s; each shim compiles its own", err.msg);
		d->filter_fd = -1;
	}
	/* Clear of fds 0-4, which a spawned shim's own are moved onto. */
	if (d->filter_fd >= 0 && d->filter_fd < 5) {
		int fd = fcntl(d->filter_fd, F_DUPFD_CLOEXEC, 5);
		close(d->filter_fd);
		d->filter_fd = fd;
	}
}

/*
 * The storage driver comes from the configuration's (host :storage ...) and
 * is recorded in <root>/storage.json at the first start: containers made on
 * one driver cannot be read through another, so a later start whose
 * configuration names a different one refuses to run, and a start whose
 * configuration cannot be read uses the recorded one.
 */
static int storage_open(struct daemon *d, struct clbsd_err *err)
{
	autofree char *rec_path = xasprintf("%s/storage.json", d->root);
	json_t *rec = json_load_file(rec_path, 0, NULL);
	const char *rd = json_string_value(json_object_get(rec, "driver"));
	autofree char *rdriver = rd ? xstrdup(rd) : NULL; /* recorded; NULL at the first start */
	autofree char *driver = xstrdup(rd ? rd : "dir");
	autofree char *pool = json_str(rec, "pool") ? xstrdup(json_str(rec, "pool")) : NULL;
	autofree char *ds = json_str(rec, "root") ? xstrdup(json_str(rec, "root")) : NULL;
	json_decref(rec);

	struct conf *conf = NULL;
	struct conf_diags diags;
	conf_diags_init(&diags);
	if (conf_load(d->config, d->confd, &conf, &diags) == 0) {
		const struct conf_host *h = &conf->host;
		const char *want = h->driver == CONF_STORAGE_ZFS ? "zfs" : "dir";
		if (h->dir_path && strcmp(h->dir_path, d->root) != 0) {
			int r = clbsd_err_setmsg(
				err, CLBSD_E_INVALID, EINVAL,
				"%s: (host :storage (:driver dir :path \"%s\")) is not "
				"the daemon's root %s; start clbsdd with --root %s",
				d->config, h->dir_path, d->root, h->dir_path);
			conf_free(conf);
			conf_diags_release(&diags);
			return r;
		}
		if (rdriver &&
		    (strcmp(rdriver, want) != 0 ||
		     (h->driver == CONF_STORAGE_ZFS && (strcmp(pool ? pool : "", h->pool) != 0 ||
							strcmp(ds ? ds : "", h->root) != 0)))) {
			int r = clbsd_err_setmsg(
				err, CLBSD_E_CONFLICT, EEXIST,
				"%s asks for %s storage%s%s, but the containers under %s live on "
				"%s "
				"storage%s%s (recorded in %s); moving them between drivers is done "
				"with export and import, not by editing the configuration",
				d->config, want, h->driver == CONF_STORAGE_ZFS ? " on " : "",
				h->driver == CONF_STORAGE_ZFS ? h->root : "", d->root, rdriver,
				ds ? " on " : "", ds ? ds : "", rec_path);
			conf_free(conf);
			conf_diags_release(&diags);
			return r;
		}
		free(driver);
		driver = xstrdup(want);
		if (h->driver == CONF_STORAGE_ZFS) {
			free(pool);
			free(ds);
			pool = xstrdup(h->pool);
			ds = xstrdup(h->root);
		}
		conf_free(conf);
	} else if (!rdriver) {
		log_warn("storage", NULL, "%s cannot be read; using dir storage until it can",
			 d->config);
	}
	conf_diags_release(&diags);

	int r = strcmp(driver, "zfs") == 0 ? storage_zfs_open(pool, ds, d->root, &d->storage, err)
					   : storage_dir_open(d->root, &d->storage, err);
	if (r < 0)
		return clbsd_err_prefix(err, "%s storage", driver);
	if (!rdriver) {
		json_t *j = strcmp(driver, "zfs") == 0 ? json_pack("{s:s,s:s,s:s}", "driver",
								   driver, "pool", pool, "root", ds)
						       : json_pack("{s:s}", "driver", driver);
		autofree char *text = json_dumps(j, JSON_COMPACT);
		json_decref(j);
		if (fs_write_atomic(rec_path, text, strlen(text), 0600, err) < 0) {
			storage_release(&d->storage);
			return clbsd_err_prefix(err, "record the storage driver");
		}
	}
	return 0;
}

/* Storage, the image store and the root's modes. */
static int open_stores(struct daemon *d, struct clbsd_err *err)
{
	if (storage_open(d, err) < 0 || image_store_open(d->root, &d->images, err) < 0 ||
	    storage_secure_root(d->root, err) < 0)
		return -err->code;
	if (!d->storage.pool && !d->storage.have_overlay)
		log_warn("storage", NULL,
			 "overlayfs is not usable under %s; container roots will be full copies",
			 d->root);
	return 0;
}

/* The state a previous run left: networks, containers, and what to tidy. */
static int load_state(struct daemon *d, struct clbsd_err *err)
{
	autofree char *journal = xasprintf("%s/events.jsonl", d->root);
	events_init(&d->events, journal);
	/* Before anything that changes something: every change has its record. */
	autofree char *audit_dir = xasprintf("%s/audit", d->root);
	const struct audit_settings set = {AUDIT_MAX_SIZE_DEFAULT, AUDIT_KEEP_DEFAULT, true};
	struct clbsd_err aerr;
	if (audit_log_open(audit_dir, &set, &d->audit, &aerr) < 0)
		log_error("audit", NULL, "%s; changes are not audited", aerr.msg);
	d->started_ns = time_now_ns();
	/* Before the containers load: a receive cut short leaves the exporter's record. */
	transfer_recover_receives(d);
	if (docker_init(d, err) < 0 || dnet_init(d, err) < 0 || ctr_load_all(d, err) < 0)
		return -err->code;
	undo_init(d);
	transfer_cleanup_stale(d);
	build_cleanup_stale(d);
	ingress_init(d);
	image_gc(&d->images, ctr_image_in_use, d);
	return 0;
}

int daemon_open(struct daemon *d, struct clbsd_err *err)
{
	if (claim_dirs(d, err) < 0 || open_loop(d, err) < 0)
		return -err->code;
	open_runtime(d);
	if (open_stores(d, err) < 0 || load_state(d, err) < 0)
		return -err->code;
	return 0;
}

/* ---- start ---- */

/*
 * Shims double-fork to detach; as subreaper the daemon becomes their
 * parent while it runs, and reaps them, instead of leaving zombies to
 * an init that may be slow to collect them.
 */
static void become_subreaper(void)
{
	int r = sys_set_subreaper();
	if (r < 0)
		log_warn("daemon", NULL, "cannot become a subreaper: %s", strerror(-r));
}

static void write_pidfile(struct daemon *d)
{
	struct clbsd_err err;
	autofree char *pidfile = xasprintf("%s/clbsdd.pid", d->run);
	char pidtext[32];
	snprintf(pidtext, sizeof(pidtext), "%d\n", (int)getpid());
	if (fs_replace(pidfile, pidtext, strlen(pidtext), 0644, &err) < 0)
		log_warn("daemon", NULL, "%s", err.msg);
}

void daemon_start(struct daemon *d, size_t pool)
{
	become_subreaper();
	d->root_shared = sys_root_is_shared();
	if (!d->root_shared && pool)
		log_info("pool", NULL,
			 "/ is not a shared mount here: containers on zfs or with volumes start "
			 "without the pool (its inits would not see mounts made after them)");
	pool_init(d, pool);
	daemon_event(d, "daemon.started", NULL,
		     json_pack("{s:i,s:s}", "pid", (int)getpid(), "version", CLBSD_VERSION));
	/* Before the first load of the configuration (reconcile_init), which may start its listener. */
	metrics_init(d);
	/* Adopt after the socket is up so clients can watch it happen. */
	struct container *next;
	for (struct container *c = d->ctrs; c; c = next) {
		next = c->next;
		ctr_adopt(c);
	}
	/* Provisional imports (a migration cut short) are undone before the reconciler looks. */
	transfer_abort_pending(d);
	/* The first pass is the boot: declared containers start in dependency order. */
	reconcile_init(d);
	/* Docker containers learn their truth when their endpoint answers. */
	docker_sync(d);
	write_pidfile(d);
	log_info("daemon", NULL, "clbsdd %s serving %s (root %s, storage %s%s%s)", CLBSD_VERSION,
		 d->socket, d->root, d->storage.ops->name,
		 d->storage.pool	   ? " on "
		 : d->storage.have_overlay ? " with overlayfs"
					   : " by copy",
		 d->storage.pool ? d->storage.dataset : "");
}

/* ---- run-loop hooks ---- */

void daemon_reload(struct daemon *d)
{
	struct clbsd_err err;
	log_info("daemon", NULL, "SIGHUP: reloading %s", d->config);
	if (config_reload_by(d, "sighup", &err) == 0)
		reconcile_trigger(d);
}

void daemon_stop(struct daemon *d)
{
	d->shutting_down = true;
	event_base_loopexit(d->base, NULL);
}

/* ---- close ---- */

void daemon_close(struct daemon *d)
{
	d->shutting_down = true;
	exec_release_daemon(d);
	pool_release(d);
	work_release(d);
	metrics_release(d);
	autofree char *pidfile = xasprintf("%s/clbsdd.pid", d->run);
	unlink(pidfile);
	/* Containers keep running: only the daemon's view of them goes. */
	while (d->ctrs) {
		struct container *c = d->ctrs;
		d->ctrs = c->next;
		ctr_forget(c);
	}
	docker_release(d);
	reconcile_release(d);
	dnet_release_daemon(d);
	undo_release(d);
	ingress_release(d);
	json_decref(d->decl_builds);
	json_decref(d->docker_builds);
	strv_release(&d->importing);
	image_store_release(&d->images);
	storage_release(&d->storage);
	events_release(&d->events);
	audit_log_close(d->audit);
	d->audit = NULL;
	event_base_free(d->base);
	free(d->children.pids);
	for (size_t i = 0; i < d->spare.n; i++)
		free(d->spare.dirs[i]);
	free(d->spare.dirs);
	daemon_init_release(d);
	close(d->lock_fd);
}
