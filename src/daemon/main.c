/*
 * clbsdd: the clbsd daemon. It keeps the state of containers and images,
 * serves the API on a Unix socket, and starts one clbsd-shim per running
 * container. Containers outlive the daemon: a starting daemon re-adopts the
 * shims it finds.
 */
#include "api/api.h"
#include "conf/conf.h"
#include "daemon.h"
#include "util/json.h"
#include "util/util.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
	"Usage: clbsdd [OPTIONS]\n"
	"\n"
	"The clbsd daemon: runs containers and serves the API on a Unix socket.\n"
	"\n"
	"Options:\n"
	"  --root DIR          state: images, containers, logs (default /var/lib/clbsd)\n"
	"  --run DIR           runtime files: shim sockets (default /run/clbsd)\n"
	"  --socket PATH       API socket (default RUN/clbsd.sock)\n"
	"  --config FILE       declarative configuration (default /etc/clbsd/clbsd.conf)\n"
	"  -n                  check the settings and the configuration, print them, exit\n"
	"                      0 when good and 1 when not\n"
	"  --log-level LEVEL   error, warn, info (default) or debug\n"
	"  --shim PATH         the clbsd-shim binary (default: beside clbsdd)\n"
	"  --busybox PATH      busybox-static for 'clbsd forge' (default /bin/busybox)\n"
	"  --cgroup-parent N   cgroup below which containers are placed (default clbsd)\n"
	"  --pool N            keep N shims with namespaces and a cgroup ready for the\n"
	"                      next starts (default 2; 0 turns the pool off)\n"
	"  -h, --help          show this help\n"
	"  --version           print the version\n";

static void usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "clbsdd: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'clbsdd --help'.\n");
	exit(2);
}

void daemon_event(struct daemon *d, const char *type, const char *container, json_t *attrs)
{
	events_publish(&d->events, type, container, attrs);
}

void daemon_track_child(struct daemon *d, pid_t pid)
{
	if (pid <= 0)
		return;
	for (size_t i = 0; i < d->n_reap; i++)
		if (d->reap[i] == pid)
			return;
	d->reap = xrealloc(d->reap, (d->n_reap + 1) * sizeof(pid_t));
	d->reap[d->n_reap++] = pid;
}

/*
 * Only the shims we track are reaped: a blanket waitpid(-1) could steal the
 * child a worker thread is waiting for.
 */
void daemon_reap(struct daemon *d)
{
	size_t j = 0;
	for (size_t i = 0; i < d->n_reap; i++) {
		pid_t r = waitpid(d->reap[i], NULL, WNOHANG);
		if (r == 0)
			d->reap[j++] = d->reap[i];
	}
	d->n_reap = j;
}

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

/* Whether our / is a shared mount (mountinfo's optional field "shared:N"). */
static bool root_is_shared(void)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return false;
	char line[4096];
	bool shared = false;
	while (fgets(line, sizeof(line), f)) {
		char mnt[4096];
		if (sscanf(line, "%*d %*d %*s %*s %4095s", mnt) == 1 && strcmp(mnt, "/") == 0) {
			char *sep = strstr(line, " - ");
			char *sh = strstr(line, " shared:");
			shared =
				sh && sep && sh < sep; /* the last "/" entry is the one in effect */
		}
	}
	fclose(f);
	return shared;
}

static char *default_shim(void)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
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

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	if (sig == SIGCHLD) {
		daemon_reap(d);
		return;
	}
	if (sig == SIGHUP) {
		struct clbsd_err err;
		log_info("daemon", NULL, "SIGHUP: reloading %s", d->config);
		if (config_reload(d, &err) == 0)
			reconcile_trigger(d);
		return;
	}
	log_info("daemon", NULL, "%s: shutting down; containers keep running",
		 sig == SIGTERM ? "SIGTERM" : "SIGINT");
	d->shutting_down = true;
	event_base_loopexit(d->base, NULL);
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

static int check_only(struct daemon *d)
{
	int bad = 0;
	/* stdout carries only the normalised configuration, so it can be saved and re-read. */
	fprintf(stderr, "root %s\nrun %s\nsocket %s\nshim %s\nconfig %s\n", d->root, d->run,
		d->socket, d->shim_path, d->config);
	if (access(d->shim_path, X_OK) < 0) {
		fprintf(stderr, "clbsdd: shim %s: %s\n", d->shim_path, strerror(errno));
		bad = 1;
	}
	if (strlen(d->socket) >= 108) {
		fprintf(stderr, "clbsdd: socket path %s is too long\n", d->socket);
		bad = 1;
	}
	if (access(d->config, R_OK) < 0 && errno != ENOENT) {
		fprintf(stderr, "clbsdd: config %s: %s\n", d->config, strerror(errno));
		bad = 1;
	}
	/* The configuration: the main file, then conf.d/ *.conf next to it. */
	struct conf_diags diags = CONF_DIAGS_INIT;
	struct conf *conf = NULL;
	if (conf_load(d->config, d->confd, &conf, &diags) == 0) {
		autofree char *text = conf_print(conf);
		fputs(text, stdout);
		conf_free(conf);
	} else {
		autofree char *text = conf_diags_format(&diags);
		fputs(text, stderr);
		bad = 1;
	}
	conf_diags_release(&diags);
	return bad;
}

int main(int argc, char **argv)
{
	struct daemon d = {0};
	d.lock_fd = -1;
	d.listen_fd = -1;
	const char *root = "/var/lib/clbsd", *run = "/run/clbsd", *sock = NULL;
	const char *config = "/etc/clbsd/clbsd.conf", *shim = NULL;
	const char *busybox = "/bin/busybox", *cgparent = "clbsd";
	bool check = false;
	enum {
		O_ROOT = 256,
		O_RUN,
		O_SOCKET,
		O_CONFIG,
		O_LOGLEVEL,
		O_SHIM,
		O_BUSYBOX,
		O_CGPARENT,
		O_POOL,
		O_VERSION
	};
	long long pool = 2;
	static const struct option opts[] = {
		{"root", required_argument, NULL, O_ROOT},
		{"run", required_argument, NULL, O_RUN},
		{"socket", required_argument, NULL, O_SOCKET},
		{"config", required_argument, NULL, O_CONFIG},
		{"log-level", required_argument, NULL, O_LOGLEVEL},
		{"shim", required_argument, NULL, O_SHIM},
		{"busybox", required_argument, NULL, O_BUSYBOX},
		{"cgroup-parent", required_argument, NULL, O_CGPARENT},
		{"pool", required_argument, NULL, O_POOL},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, O_VERSION},
		{NULL, 0, NULL, 0},
	};
	log_set_sink(log_sink_stderr, stderr);
	opterr = 0;
	int o;
	while ((o = getopt_long(argc, argv, ":nh", opts, NULL)) != -1) {
		switch (o) {
		case O_ROOT:
			root = optarg;
			break;
		case O_RUN:
			run = optarg;
			break;
		case O_SOCKET:
			sock = optarg;
			break;
		case O_CONFIG:
			config = optarg;
			break;
		case O_LOGLEVEL: {
			enum log_level l;
			if (log_parse_level(optarg, &l) < 0)
				usage_error("--log-level %s: expected error, warn, info or debug",
					    optarg);
			log_set_level(l);
			break;
		}
		case O_SHIM:
			shim = optarg;
			break;
		case O_BUSYBOX:
			busybox = optarg;
			break;
		case O_CGPARENT:
			if (!valid_name(cgparent = optarg))
				usage_error("--cgroup-parent %s: expected a DNS label", optarg);
			break;
		case O_POOL:
			if (parse_int(optarg, 0, 64, &pool) < 0)
				usage_error("--pool %s: expected a number from 0 to 64", optarg);
			break;
		case 'n':
			check = true;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		case O_VERSION:
			printf("clbsdd %s\n", CLBSD_VERSION);
			return 0;
		case ':':
			usage_error("%s needs an argument", argv[optind - 1]);
			break;
		default:
			usage_error("unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument %s", argv[optind]);

	d.root = absolute(root);
	d.run = absolute(run);
	d.socket = sock ? absolute(sock) : xasprintf("%s/clbsd.sock", d.run);
	d.config = absolute(config);
	d.shim_path = shim ? absolute(shim) : default_shim();
	d.busybox = absolute(busybox);
	d.cgroup_parent = xstrdup(cgparent);
	d.confd = confd_of(d.config);
	if (check)
		return check_only(&d);

	struct clbsd_err err;
	clbsd_err_init(&err);
	autofree char *shims = xasprintf("%s/shims", d.run);
	if (fs_mkdir_p(d.root, 0711, &err) < 0 || fs_mkdir_p(shims, 0700, &err) < 0 ||
	    secure_run(d.run, &err) < 0) {
		fprintf(stderr, "clbsdd: %s\n", err.msg);
		return 1;
	}
	autofree char *lock = xasprintf("%s/clbsdd.lock", d.root);
	d.lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (d.lock_fd < 0 || flock(d.lock_fd, LOCK_EX | LOCK_NB) < 0) {
		fprintf(stderr, "clbsdd: %s: another clbsdd already uses root %s\n", lock, d.root);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	evthread_use_pthreads();
	d.base = event_base_new();
	if (!d.base) {
		fprintf(stderr, "clbsdd: cannot create the event loop\n");
		return 1;
	}
	d.rt = rt_default_ops();
	d.filter_fd = -1;
	if (d.rt->filter_export && d.rt->filter_export(&d.filter_fd, &err) < 0) {
		log_warn("runtime", NULL, "%s; each shim compiles its own", err.msg);
		d.filter_fd = -1;
	}
	/* Clear of fds 0-4, which a spawned shim's own are moved onto. */
	if (d.filter_fd >= 0 && d.filter_fd < 5) {
		int fd = fcntl(d.filter_fd, F_DUPFD_CLOEXEC, 5);
		close(d.filter_fd);
		d.filter_fd = fd;
	}
	if (storage_open(&d, &err) < 0 || image_store_open(d.root, &d.images, &err) < 0 ||
	    storage_secure_root(d.root, &err) < 0) {
		fprintf(stderr, "clbsdd: %s\n", err.msg);
		return 1;
	}
	if (!d.storage.pool && !d.storage.have_overlay)
		log_warn("storage", NULL,
			 "overlayfs is not usable under %s; container roots will be full copies",
			 d.root);
	autofree char *journal = xasprintf("%s/events.jsonl", d.root);
	events_init(&d.events, journal);
	d.started_ns = time_now_ns();
	if (dnet_init(&d, &err) < 0 || ctr_load_all(&d, &err) < 0) {
		fprintf(stderr, "clbsdd: %s\n", err.msg);
		return 1;
	}
	undo_init(&d);
	transfer_cleanup_stale(&d);
	build_cleanup_stale(&d);
	ingress_init(&d);
	image_gc(&d.images, ctr_image_in_use, &d);
	if (api_listen(&d, &err) < 0) {
		fprintf(stderr, "clbsdd: %s\n", err.msg);
		return 1;
	}
	/*
	 * Shims double-fork to detach; as subreaper the daemon becomes their
	 * parent while it runs, and reaps them, instead of leaving zombies to
	 * an init that may be slow to collect them.
	 */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		log_warn("daemon", NULL, "cannot become a subreaper: %s", strerror(errno));
	static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGCHLD};
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++) {
		d.sig_ev[i] = evsignal_new(d.base, sigs[i], on_signal, &d);
		evsignal_add(d.sig_ev[i], NULL);
	}
	d.root_shared = root_is_shared();
	if (!d.root_shared && pool)
		log_info("pool", NULL,
			 "/ is not a shared mount here: containers on zfs or with volumes start "
			 "without the pool (its inits would not see mounts made after them)");
	pool_init(&d, (size_t)pool);
	daemon_event(&d, "daemon.started", NULL,
		     json_pack("{s:i,s:s}", "pid", (int)getpid(), "version", CLBSD_VERSION));
	/* Adopt after the socket is up so clients can watch it happen. */
	struct container *next;
	for (struct container *c = d.ctrs; c; c = next) {
		next = c->next;
		ctr_adopt(c);
	}
	/* The first pass is the boot: declared containers start in dependency order. */
	reconcile_init(&d);
	autofree char *pidfile = xasprintf("%s/clbsdd.pid", d.run);
	char pidtext[32];
	snprintf(pidtext, sizeof(pidtext), "%d\n", (int)getpid());
	if (fs_replace(pidfile, pidtext, strlen(pidtext), 0644, &err) < 0)
		log_warn("daemon", NULL, "%s", err.msg);
	log_info("daemon", NULL, "clbsdd %s serving %s (root %s, storage %s%s%s)", CLBSD_VERSION,
		 d.socket, d.root, d.storage.ops->name,
		 d.storage.pool		  ? " on "
		 : d.storage.have_overlay ? " with overlayfs"
					  : " by copy",
		 d.storage.pool ? d.storage.dataset : "");

	event_base_dispatch(d.base);

	api_close(&d);
	d.shutting_down = true;
	pool_release(&d);
	work_release(&d);
	unlink(pidfile);
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		event_free(d.sig_ev[i]);
	/* Containers keep running: only the daemon's view of them goes. */
	while (d.ctrs) {
		struct container *c = d.ctrs;
		d.ctrs = c->next;
		ctr_forget(c);
	}
	reconcile_release(&d);
	dnet_release_daemon(&d);
	undo_release(&d);
	ingress_release(&d);
	json_decref(d.decl_builds);
	image_store_release(&d.images);
	storage_release(&d.storage);
	events_release(&d.events);
	/* Replies still owed (a waiter list dropped unfired): their clients went with evhttp. */
	api_pending_release_all();
	event_base_free(d.base);
	free(d.reap);
	for (size_t i = 0; i < d.n_spares; i++)
		free(d.spares[i]);
	free(d.spares);
	free(d.root), free(d.run), free(d.socket), free(d.config), free(d.shim_path);
	free(d.busybox), free(d.cgroup_parent), free(d.confd);
	close(d.lock_fd);
	return 0;
}
