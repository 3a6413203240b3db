/*
 * Container life cycle: starting a shim, watching it, exits, stop with
 * escalation, kill, the restart policy with capped exponential backoff,
 * removal, and re-adoption of live shims when the daemon starts.
 */
#include "core/backoff.h"
#include "daemon.h"
#include "net/net.h"
#include "util/json.h"
#include "util/proto.h"
#include "util/trace.h"
#include "util/util.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define START_TIMEOUT_S	 60
#define BACKOFF_BASE_MS	 100
#define BACKOFF_MAX_MS	 30000
#define BACKOFF_RESET_NS (10LL * 1000000000LL)

static void shim_gone(struct container *c);
static void schedule_restart(struct container *c);
static void on_exit_info(struct container *c, int code, int sig, bool oom, int64_t finished,
			 bool while_down);

bool ctr_is_active(const struct container *c)
{
	return c->run.state == CTR_RUNNING || c->run.starting;
}

void waiters_add(struct waiter **list, ctr_done_fn fn, void *arg)
{
	if (!fn)
		return;
	struct waiter *w = xcalloc(1, sizeof(*w));
	w->fn = fn;
	w->arg = arg;
	/* Keep request order: append. */
	while (*list)
		list = &(*list)->next;
	*list = w;
}

void waiters_fire(struct waiter **list, struct container *c, const struct clbsd_err *err)
{
	struct waiter *w = *list;
	*list = NULL;
	while (w) {
		struct waiter *n = w->next;
		w->fn(c, err, w->arg);
		free(w);
		w = n;
	}
}

int ctr_shim_call(struct container *c, json_t *req, json_t **reply, struct clbsd_err *err)
{
	autofree char *line = json_line(req);
	autofree char *rep = NULL;
	autoclose int fd = -1;
	if (proto_request(c->shim.socket, line, &fd, &rep, err) < 0)
		return clbsd_err_prefix(err, "container %s", c->name);
	json_t *j = json_loads(rep, 0, NULL);
	if (!json_is_object(j) || !json_bool(j, "ok", false)) {
		const char *m = json_str(j, "error");
		int r = clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EIO, "container %s: shim: %s",
					 c->name, m ? m : rep);
		json_decref(j);
		return r;
	}
	if (reply)
		*reply = j;
	else
		json_decref(j);
	return 0;
}

/* ---- watching a running shim ---- */

static void watch_close(struct container *c)
{
	if (c->shim.watch) {
		bufferevent_free(c->shim.watch);
		c->shim.watch = NULL;
	}
}

static void on_watch_read(struct bufferevent *bev, void *arg)
{
	struct container *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char *line;
	while ((line = evbuffer_readln(in, NULL, EVBUFFER_EOL_LF))) {
		json_t *j = json_loads(line, 0, NULL);
		if (!c->shim.watch_acked) {
			/* The answer to the wait request comes first. */
			bool ok = json_bool(j, "ok", false);
			if (!ok)
				log_error("container", c->name, "shim refused wait: %s", line);
			free(line);
			json_decref(j);
			if (!ok) {
				watch_close(c);
				shim_gone(c);
				return;
			}
			c->shim.watch_acked = true;
			continue;
		}
		free(line);
		const char *ev = json_str(j, "event");
		if (ev && strcmp(ev, "oom") == 0) {
			c->run.oom_reported = true;
			TRACE1(container__oom, c->name);
			daemon_event(c->d, "container.oom", c->name,
				     json_pack("{s:I}", "oom_kills",
					       (json_int_t)json_int(j, "oom_kills", 1)));
		} else if (ev && strcmp(ev, "console") == 0) {
			ctr_audit_console(c, j);
		} else if (ev && strcmp(ev, "exit") == 0) {
			int code = (int)json_int(j, "exit_code", 255);
			int sig = (int)json_int(j, "signal", 0);
			bool oom = json_bool(j, "oom_killed", false);
			int64_t fin = json_time_get(j, "finished_at");
			/* The shim removed the cgroup before telling us: nothing left to do there. */
			c->run.cgroup_gone = json_bool(j, "cgroup_removed", false);
			json_decref(j);
			watch_close(c);
			on_exit_info(c, code, sig, oom, fin ? fin : time_now_ns(), false);
			return;
		}
		json_decref(j);
	}
}

static void on_watch_event(struct bufferevent *bev, short what, void *arg)
{
	struct container *c = arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		watch_close(c);
		shim_gone(c);
	}
}

/*
 * Ask the shim to tell us of the exit. Only the connection is made here: a
 * shim that is still starting its container answers when it gets to it, and
 * the daemon does not wait for that (on_watch_read reads the answer first).
 */
static int watch_connect(struct container *c, struct clbsd_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(c->shim.socket) >= sizeof(sa.sun_path))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, ENAMETOOLONG,
					"socket path %s is too long", c->shim.socket);
	strcpy(sa.sun_path, c->shim.socket);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "socket");
	static const char req[] = "{\"op\":\"wait\"}\n";
	/* A Unix socket connects at once (or not at all); the request fits its buffer. */
	int e = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? errno : 0;
	if (!e)
		e = -write_all(fd, req, sizeof(req) - 1);
	if (e) {
		close(fd);
		return clbsd_err_set(err, CLBSD_E_UNAVAIL, e, "connect to shim %s", c->shim.socket);
	}
	fd_set_nonblock(fd, true);
	c->shim.watch_acked = false;
	c->shim.watch = bufferevent_socket_new(c->d->base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(c->shim.watch, on_watch_read, NULL, on_watch_event, c);
	bufferevent_enable(c->shim.watch, EV_READ);
	return 0;
}

/* The shim went away without telling us: its state file says what happened. */
static void shim_gone(struct container *c)
{
	if (c->run.state != CTR_RUNNING)
		return;
	autofree char *text = NULL;
	struct clbsd_err err;
	json_t *j = NULL;
	/* The shim writes its state before it tells waiters and exits. */
	if (ctr_rfile_read(c, "shim.json", &text) == 0)
		j = json_loads(text, 0, NULL);
	const char *status = json_str(j, "status");
	if (status && strcmp(status, "exited") == 0) {
		int code = (int)json_int(j, "exit_code", 255);
		int sig = (int)json_int(j, "signal", 0);
		bool oom = json_bool(j, "oom_killed", false);
		int64_t fin = json_time_get(j, "finished_at");
		json_decref(j);
		on_exit_info(c, code, sig, oom, fin ? fin : time_now_ns(), true);
		return;
	}
	json_decref(j);
	log_error("container", c->name,
		  "shim (pid %d) died without recording an exit; killing what is left of the "
		  "container (see %s/logs/shim.log)",
		  (int)c->run.shim_pid, c->dir);
	struct rt_spec spec = {0};
	spec.name = c->name;
	spec.cgroup = ctr_cgroup(c);
	c->d->rt->kill_all(&spec, SIGKILL, &err);
	c->d->rt->destroy(&spec, &err);
	free(spec.cgroup);
	on_exit_info(c, 255, 0, false, time_now_ns(), true);
}

/* ---- start ---- */

static void start_finish(struct container *c, const struct clbsd_err *err)
{
	c->run.starting = false;
	/* Refill the pool now that the start is answered, not while it runs. */
	pool_started(c->d);
	if (c->shim.ready_ev) {
		event_free(c->shim.ready_ev);
		c->shim.ready_ev = NULL;
	}
	if (c->shim.ready_fd >= 0) {
		close(c->shim.ready_fd);
		c->shim.ready_fd = -1;
	}
	if (c->shim.ready_buf) {
		buf_release(c->shim.ready_buf);
		free(c->shim.ready_buf);
		c->shim.ready_buf = NULL;
	}
	free(c->run.start_error);
	c->run.start_error = err ? xstrdup(err->msg) : NULL;
	waiters_fire(&c->waiters.start, c, err);
}

void ctr_wait(struct container *c, bool removed, ctr_done_fn fn, void *arg)
{
	if (removed)
		waiters_add(&c->waiters.remove, fn, arg);
	else if (ctr_is_active(c))
		waiters_add(&c->waiters.exit, fn, arg);
	else
		fn(c, NULL, arg);
}

void ctr_on_started(struct container *c, ctr_done_fn fn, void *arg)
{
	if (!c->run.starting) {
		fn(c, NULL, arg);
		return;
	}
	waiters_add(&c->waiters.start, fn, arg);
}

static void started(struct container *c);
static void net_attached(struct container *c, const struct clbsd_err *aerr, void *arg);

static void ready_line(struct container *c, const char *line)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *j = json_loads(line, 0, NULL);
	if (!json_is_object(j)) {
		clbsd_err_setmsg(&err, CLBSD_E_INTERNAL, EIO,
				 "container %s: shim reported nonsense: %s", c->name, line);
		json_decref(j);
		start_finish(c, &err);
		return;
	}
	if (!json_bool(j, "ok", false)) {
		const char *m = json_str(j, "error");
		clbsd_err_setmsg(&err, CLBSD_E_INTERNAL, EIO, "container %s: %s", c->name,
				 m ? m : "start failed");
		json_decref(j);
		log_error("container", c->name, "start failed: %s", err.msg);
		start_finish(c, &err);
		return;
	}
	c->run.pid = (pid_t)json_int(j, "pid", 0);
	c->run.shim_pid = (pid_t)json_int(j, "shim_pid", 0);
	json_decref(j);
	log_debug("container", c->name, "start: its init is set up after %.1f ms",
		  (double)(time_mono_ns() - c->run.start_mono_ns) / 1e6);
	daemon_track_child(c->d, c->run.shim_pid);
	if (ctr_net_attached(c)) {
		/* The init waits (--net-hold) until its network is made. */
		if (c->shim.ready_ev)
			event_del(
				c->shim.ready_ev); /* the report is in; the pipe's end is not news */
		dnet_attach(c, c->run.pid, net_attached, NULL);
		return;
	}
	started(c);
}

/* The init is plumbed (or could not be): let it go on, or have it killed. */
static void net_attached(struct container *c, const struct clbsd_err *aerr, void *arg)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *req = json_pack("{s:s}", "op", "net-ready");
	if (aerr)
		json_object_set_new(req, "error", json_string(aerr->msg));
	json_t *reply = NULL;
	int r = ctr_shim_call(c, req, &reply, &err);
	json_decref(req);
	json_decref(reply);
	if (aerr || r < 0) {
		if (aerr)
			clbsd_err_setmsg(&err, aerr->kind, 0, "container %s: network: %s", c->name,
					 aerr->msg);
		else
			clbsd_err_prefix(&err, "container %s", c->name);
		log_error("container", c->name, "start failed: %s", err.msg);
		dnet_detach(c);
		c->run.pid = 0;
		c->run.shim_pid = 0;
		start_finish(c, &err);
		return;
	}
	started(c);
}

/* The init runs its command: the container is up. */
static void started(struct container *c)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	c->run.state = CTR_RUNNING;
	c->run.cgroup_gone = false;
	c->run.started_ns = time_now_ns();
	c->run.finished_ns = 0;
	c->run.exit_code = 0;
	c->run.signal = 0;
	c->run.oom_killed = false;
	c->run.oom_reported = false;
	if (ctr_save(c, &err) < 0)
		log_error("container", c->name, "%s", err.msg);
	daemon_event(c->d, "container.started", c->name,
		     json_pack("{s:i,s:i}", "pid", (int)c->run.pid, "restart_count",
			       c->run.restart_count));
	log_info("container", c->name, "started (pid %d)", (int)c->run.pid);
	if (c->run.starting)
		log_debug("container", c->name, "start: running after %.1f ms",
			  (double)(time_mono_ns() - c->run.start_mono_ns) / 1e6);
	/* 0: started behind our back (docker start), not by a ctr_start() of ours. */
	TRACE3(container__start, c->name, (int)c->run.pid,
	       c->run.starting ? time_mono_ns() - c->run.start_mono_ns : 0);
	start_finish(c, NULL);
	ctr_ops_of(c)->watch(c);
}

/* The shim's watch: exits come through it; a shim already gone is an exit too. */
static void native_watch(struct container *c)
{
	struct clbsd_err err;
	if (c->run.state != CTR_RUNNING)
		return;
	if (watch_connect(c, &err) < 0)
		log_error("container", c->name, "cannot watch its shim: %s", err.msg);
	if (!c->shim.watch)
		shim_gone(c);
}

void ctr_run_started(struct container *c, pid_t pid, int64_t started_ns)
{
	c->run.pid = pid;
	c->run.shim_pid = 0;
	started(c);
	if (started_ns && c->run.state == CTR_RUNNING) {
		c->run.started_ns = started_ns;
		struct clbsd_err err;
		if (ctr_save(c, &err) < 0)
			log_error("container", c->name, "%s", err.msg);
	}
}

void ctr_run_restart_later(struct container *c)
{
	schedule_restart(c);
}

void ctr_run_failed(struct container *c, const struct clbsd_err *err)
{
	log_error("container", c->name, "start failed: %s", err->msg);
	start_finish(c, err);
}

static void on_ready(evutil_socket_t fd, short what, void *arg)
{
	struct container *c = arg;
	struct clbsd_err err;
	if (what & EV_TIMEOUT) {
		clbsd_err_setmsg(&err, CLBSD_E_TIMEOUT, ETIMEDOUT,
				 "container %s: the shim did not report within %d s (see "
				 "%s/logs/shim.log)",
				 c->name, START_TIMEOUT_S, c->dir);
		start_finish(c, &err);
		return;
	}
	char b[4096];
	ssize_t n = read(fd, b, sizeof(b));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0) {
		buf_add(c->shim.ready_buf, b, (size_t)n);
		char *nl = memchr(c->shim.ready_buf->data, '\n', c->shim.ready_buf->len);
		if (!nl)
			return;
		*nl = '\0';
		autofree char *line = xstrdup(c->shim.ready_buf->data);
		ready_line(c, line);
		return;
	}
	clbsd_err_setmsg(&err, CLBSD_E_INTERNAL, EIO,
			 "container %s: the shim exited before reporting (see %s/logs/shim.log)",
			 c->name, c->dir);
	start_finish(c, &err);
}

/* The signals the daemon ignores (SIGPIPE), read once: it sets them up at start. */
static const sigset_t *ignored_signals(void)
{
	static sigset_t set;
	static bool done;
	if (!done) {
		sigemptyset(&set);
		for (int s = 1; s < NSIG; s++) {
			struct sigaction sa;
			if (sigaction(s, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
				sigaddset(&set, s);
		}
		done = true;
	}
	return &set;
}

int daemon_spawn_shim(struct daemon *d, const char *const *argv, int *ready_fd, pid_t *pid,
		      struct clbsd_err *err)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "pipe");
	int r = daemon_spawn_shim_fd(d, argv, fds[1], pid, err);
	close(fds[1]);
	if (r < 0) {
		close(fds[0]);
		return r;
	}
	fd_set_nonblock(fds[0], true);
	*ready_fd = fds[0];
	return 0;
}

const char **daemon_shim_argv(struct daemon *d, const char *const *argv)
{
	size_t n = 0;
	while (argv[n])
		n++;
	const char **args = xcalloc(n + 3, sizeof(*args));
	memcpy(args, argv, n * sizeof(*args));
	if (d->filter_fd >= 0) {
		args[n++] = "--filter-fd";
		args[n++] = "4";
	}
	return args;
}

int daemon_spawn_shim_fd(struct daemon *d, const char *const *argv, int fd3, pid_t *pid,
			 struct clbsd_err *err)
{
	/*
	 * posix_spawn, not fork: glibc spawns with CLONE_VM|CLONE_VFORK, so a
	 * daemon holding a thousand containers does not copy its page tables
	 * for every start. The shim gets /dev/null as stdio, the ready pipe as
	 * fd 3, default signal handling and an empty signal mask.
	 */
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDWR, 0);
	posix_spawn_file_actions_adddup2(&fa, 0, 1);
	posix_spawn_file_actions_adddup2(&fa, 0, 2);
	/* dup2 onto itself clears close-on-exec (glibc >= 2.29, POSIX 2024). */
	posix_spawn_file_actions_adddup2(&fa, fd3, 3);
	if (d->filter_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, d->filter_fd, 4);
	posix_spawnattr_init(&attr);
	sigset_t none;
	sigemptyset(&none);
	posix_spawnattr_setsigmask(&attr, &none);
	/*
	 * glibc resets the signals we catch by itself; only the ignored ones
	 * need naming (a full set costs the spawned child 64 system calls,
	 * while the daemon's loop waits for it).
	 */
	posix_spawnattr_setsigdefault(&attr, ignored_signals());
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	const char **args = daemon_shim_argv(d, argv);
	/* The sealed copy, not the file (see shimexe.c); argv[0] still names the file. */
	int exe = daemon_shim_exe(d, err);
	int se = 0;
	if (exe >= 0) {
		char path[32];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", exe);
		se = posix_spawn(pid, path, &fa, &attr, (char *const *)(uintptr_t)args, environ);
		close(exe);
	}
	free(args);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (exe < 0)
		return exe;
	if (se != 0)
		return clbsd_err_set(err, CLBSD_E_UNAVAIL, se,
				     "cannot run the shim %s (install clbsd-shim beside clbsdd or "
				     "pass --shim)",
				     d->shim_path);
	return 0;
}

/* Write runtime.json for this start, with the cgroup the start will use. */
static int write_spec(struct container *c, const char *spec_path, struct clbsd_err *err)
{
	struct rt_spec spec;
	if (ctr_runtime_spec(c, &spec, err) < 0)
		return -err->code;
	autofree char *json = rt_spec_to_json(&spec);
	rt_spec_release(&spec);
	/* Rewritten before every start: no need to wait for the disk. */
	if (fs_replace(spec_path, json, strlen(json), 0600, err) < 0)
		return clbsd_err_prefix(err, "container %s", c->name);
	return 0;
}

/* Start with a pool shim: 0 and *fd on success, <0 when the caller should start cold. */
static int claim_pooled(struct container *c, bool hold, const char *spec_path,
			const char *state_path, const char *log_dir, int *fd)
{
	struct daemon *d = c->d;
	/*
	 * A prepared init sees mounts made after it only through propagation
	 * (its / is a slave of ours). Where our / is not shared, a zfs dataset
	 * or a volume's source mounted since would be missing: start cold.
	 */
	if (!d->root_shared && (d->storage.pool || c->cfg.n_volumes > 0))
		return -1;
	/* A prepared init has a network namespace of its own already. */
	if (c->net.mode == NET_MODE_HOST)
		return -1;
	/* ...and namespaces owned by the host's user namespace (see docs/runtime.md). */
	if (c->cfg.userns.count)
		return -1;
	/* ...and the default bounding set and device list (nsspawn.c). */
	if ((c->cfg.caps_set && (c->cfg.caps & ~ctr_caps_default())) || c->cfg.n_devices)
		return -1;
	struct pool_entry *e = pool_take(d);
	if (!e)
		return -1;
	struct clbsd_err err;
	clbsd_err_init(&err);
	free(c->run.cgroup);
	c->run.cgroup = xstrdup(pool_entry_cgroup(e));
	if (write_spec(c, spec_path, &err) < 0) {
		pool_drop(e);
		return -1;
	}
	json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:b,s:s}", "op", "claim", "name",
			      c->name, "spec", spec_path, "socket", c->shim.socket, "state",
			      state_path, "log_dir", log_dir, "hold", hold, "net_hold",
			      ctr_net_attached(c), "log_level", log_level_name(log_get_level()));
	autofree char *claim = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (pool_claim(e, c->shim.socket, claim, fd, &err) < 0) {
		log_warn("container", c->name, "pool shim unusable (%s); starting without it",
			 err.msg);
		return -1;
	}
	return 0;
}

static int spawn_shim(struct container *c, bool hold, bool *pooled, struct clbsd_err *err)
{
	*pooled = false;
	struct daemon *d = c->d;
	autofree char *spec_path = ctr_rfile(c, "runtime.json");
	autofree char *state_path = ctr_rfile(c, "shim.json");
	autofree char *log_dir = xasprintf("%s/logs", c->dir);
	autofree char *shims = xasprintf("%s/shims", d->run);
	if (fs_mkdir_p(shims, 0700, err) < 0 || fs_mkdir_p(log_dir, 0700, err) < 0)
		return clbsd_err_prefix(err, "container %s", c->name);
	/* Never start a second shim over a live one (it would be orphaned). */
	int probe = -1;
	autofree char *rep = NULL;
	struct clbsd_err perr;
	if (proto_request(c->shim.socket, "{\"op\":\"state\"}", &probe, &rep, &perr) == 0) {
		close(probe);
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EBUSY,
					"container %s: a shim already serves %s", c->name,
					c->shim.socket);
	}
	unlink(state_path);
	unlink(c->shim.socket);
	/* An older version's, which ctr_rfile_read() would find (see move_legacy_rfiles). */
	if (c->legacy_rfiles) {
		static const char *const legacy[] = {"shim.json", "runtime.json"};
		for (size_t i = 0; i < ARRAY_SIZE(legacy); i++) {
			autofree char *f = xasprintf("%s/%s", c->dir, legacy[i]);
			unlink(f);
		}
		c->legacy_rfiles = false;
	}
	if (dnet_prepare_files(c, err) < 0)
		return clbsd_err_prefix(err, "container %s", c->name);

	int fd = -1;
	if (claim_pooled(c, hold, spec_path, state_path, log_dir, &fd) == 0) {
		*pooled = true;
	} else {
		free(c->run.cgroup);
		c->run.cgroup = xasprintf("%s/%s", d->cgroup_parent, c->name);
		if (write_spec(c, spec_path, err) < 0)
			return -err->code;
		const char *argv[] = {d->shim_path,
				      "--name",
				      c->name,
				      "--spec",
				      spec_path,
				      "--socket",
				      c->shim.socket,
				      "--state",
				      state_path,
				      "--log-dir",
				      log_dir,
				      "--ready-fd",
				      "3",
				      "--log-level",
				      log_level_name(log_get_level()),
				      NULL,
				      NULL,
				      NULL};
		size_t k = 15;
		if (hold)
			argv[k++] = "--hold";
		if (ctr_net_attached(c))
			argv[k++] = "--net-hold";
		pid_t pid;
		if (daemon_spawn_shim(d, argv, &fd, &pid, err) < 0)
			return -err->code;
		/* The shim forks once more and its first process exits at once. */
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	c->shim.ready_fd = fd;
	c->shim.ready_buf = xcalloc(1, sizeof(struct buf));
	c->shim.ready_ev = event_new(d->base, fd, EV_READ | EV_PERSIST, on_ready, c);
	struct timeval tv = {.tv_sec = START_TIMEOUT_S};
	event_add(c->shim.ready_ev, &tv);
	return 0;
}

void ctr_start(struct container *c, bool hold, ctr_done_fn fn, void *arg)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	if (c->run.removing) {
		clbsd_err_setmsg(&err, CLBSD_E_CONFLICT, EBUSY, "container %s is being removed",
				 c->name);
		if (fn)
			fn(c, &err, arg);
		return;
	}
	if (c->storage.busy && c->run.state != CTR_RUNNING) {
		clbsd_err_setmsg(&err, CLBSD_E_CONFLICT, EBUSY,
				 "container %s: a rollback or clone is changing its files; start "
				 "it when that is done",
				 c->name);
		if (fn)
			fn(c, &err, arg);
		return;
	}
	if (c->run.starting) {
		waiters_add(&c->waiters.start, fn, arg);
		return;
	}
	if (c->run.state == CTR_RUNNING) {
		if (fn)
			fn(c, NULL, arg);
		return;
	}
	if (c->run.restart_ev) {
		event_free(c->run.restart_ev);
		c->run.restart_ev = NULL;
	}
	c->run.stop_requested = false;
	c->run.starting = true;
	c->run.start_mono_ns = time_mono_ns();
	bool pooled = false;
	int r = ctr_ops_of(c)->start(c, hold, &pooled, &err);
	log_debug("container", c->name, "start: %s shim spawned after %.1f ms",
		  pooled ? "a pool" : "its", (double)(time_mono_ns() - c->run.start_mono_ns) / 1e6);
	if (r < 0) {
		waiters_add(&c->waiters.start, fn, arg);
		log_error("container", c->name, "start failed: %s", err.msg);
		start_finish(c, &err);
		return;
	}
	/*
	 * A held start that took a pool shim: the shim already listens on the
	 * container's socket, so the caller can attach while the init sets up.
	 */
	if (hold && pooled && fn)
		fn(c, NULL, arg);
	else
		waiters_add(&c->waiters.start, fn, arg);
}

/* ---- exit, restart policy ---- */

static bool should_restart(const struct container *c)
{
	if (c->run.stop_requested || c->run.removing || c->d->shutting_down)
		return false;
	switch (c->cfg.restart) {
	case CTR_RESTART_ALWAYS:
		return true;
	case CTR_RESTART_ON_FAILURE:
		return c->run.exit_code != 0 &&
		       (c->cfg.max_retries == 0 || c->run.restart_count < c->cfg.max_retries);
	case CTR_RESTART_NO:
		break;
	}
	return false;
}

static void restart_started(struct container *c, const struct clbsd_err *err, void *arg);

static void on_restart_timer(evutil_socket_t fd, short what, void *arg)
{
	struct container *c = arg;
	event_free(c->run.restart_ev);
	c->run.restart_ev = NULL;
	if (c->run.state != CTR_RESTARTING)
		return;
	c->run.restart_count++;
	ctr_start(c, false, restart_started, NULL);
}

static void schedule_restart(struct container *c)
{
	int64_t delay = backoff_delay(BACKOFF_BASE_MS, BACKOFF_MAX_MS, (unsigned)c->run.backoff_n);
	c->run.backoff_n++;
	c->run.state = CTR_RESTARTING;
	struct clbsd_err err;
	if (ctr_save(c, &err) < 0)
		log_error("container", c->name, "%s", err.msg);
	daemon_event(c->d, "container.restarting", c->name,
		     json_pack("{s:i,s:I}", "restart_count", c->run.restart_count + 1, "delay_ms",
			       (json_int_t)delay));
	log_info("container", c->name, "restarting in %lld ms (restart %d)", (long long)delay,
		 c->run.restart_count + 1);
	c->run.restart_ev = evtimer_new(c->d->base, on_restart_timer, c);
	struct timeval tv = {.tv_sec = delay / 1000, .tv_usec = (delay % 1000) * 1000};
	evtimer_add(c->run.restart_ev, &tv);
}

static void restart_started(struct container *c, const struct clbsd_err *err, void *arg)
{
	if (!err)
		return;
	/* A failed restart counts as a failed run: try again, later. */
	c->run.state = CTR_EXITED;
	c->run.exit_code = 127;
	c->run.finished_ns = time_now_ns();
	if (should_restart(c)) {
		schedule_restart(c);
	} else {
		struct clbsd_err e2;
		ctr_save(c, &e2);
	}
}

static void free_later(evutil_socket_t fd, short what, void *arg)
{
	struct container *c = arg;
	if (c->run.holds)
		c->run.free_pending = true;
	else
		ctr_free(c);
}

/* A hold taken for a callback to come ends: a removed container is freed with the last. */
static void ctr_let_go(struct container *c)
{
	if (--c->run.holds == 0 && c->run.free_pending)
		ctr_free(c);
}

/* The rest of a removal once the files are out of the way (or it failed). */
static void remove_finish(struct container *c, const struct clbsd_err *ferr, ctr_done_fn fn,
			  void *arg)
{
	struct daemon *d = c->d;
	if (ferr) {
		c->run.removing = false;
		c->undo.aside = false;
		log_error("container", c->name, "%s", ferr->msg);
		if (fn)
			fn(c, ferr, arg);
		waiters_fire(&c->waiters.remove, c, ferr);
		return;
	}
	for (struct container **p = &d->ctrs; *p; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			break;
		}
	}
	c->run.removed = true;
	transfer_forget(d, c->name);
	dnet_forget(c);
	watch_close(c);
	if (c->run.restart_ev) {
		event_free(c->run.restart_ev);
		c->run.restart_ev = NULL;
	}
	if (c->run.kill_ev) {
		event_free(c->run.kill_ev);
		c->run.kill_ev = NULL;
	}
	if (c->undo.aside) {
		undo_recorded(c);
		daemon_event(d, "container.removed", c->name, json_pack("{s:b}", "set_aside", 1));
		log_info("container", c->name, "set aside (clbsd undo %s brings it back)", c->name);
	} else {
		daemon_event(d, "container.removed", c->name, NULL);
		log_info("container", c->name, "removed");
	}
	TRACE2(container__remove, c->name, time_mono_ns() - c->run.remove_mono_ns);
	/* Its image may have been kept only for it (image rm --force). */
	image_gc(&d->images, ctr_image_in_use, d);
	if (fn)
		fn(c, NULL, arg);
	waiters_fire(&c->waiters.remove, c, NULL);
	/* Callers up the stack may still hold c during this loop turn. */
	event_base_once(d->base, -1, EV_TIMEOUT, free_later, c, NULL);
}

/* zfs: destroying datasets takes zfs commands (and retries while busy): on a worker. */
struct slow_remove {
	struct container *c;
	ctr_done_fn fn;
	void *arg;
	struct clbsd_err err;
	int rc;
};

static void slow_remove_run(void *p)
{
	struct slow_remove *r = p;
	clbsd_err_init(&r->err);
	r->rc = ctr_ops_of(r->c)->destroy_files(r->c, &r->err);
}

static void slow_remove_done(void *p)
{
	struct slow_remove *r = p;
	remove_finish(r->c, r->rc < 0 ? &r->err : NULL, r->fn, r->arg);
	free(r);
}

static void do_remove(struct container *c, ctr_done_fn fn, void *arg)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	int r = ctr_ops_of(c)->destroy(c, &err);
	if (r == CTR_DESTROY_SLOW) {
		struct slow_remove *sr = xcalloc(1, sizeof(*sr));
		sr->c = c;
		sr->fn = fn;
		sr->arg = arg;
		work_submit(c->d, slow_remove_run, slow_remove_done, sr);
		return;
	}
	remove_finish(c, r < 0 ? &err : NULL, fn, arg);
}

void ctr_run_exited(struct container *c, int code, int sig, bool oom, int64_t finished,
		    bool while_down)
{
	on_exit_info(c, code, sig, oom, finished, while_down);
}

static void on_exit_info(struct container *c, int code, int sig, bool oom, int64_t finished,
			 bool while_down)
{
	if (c->run.kill_ev) {
		event_free(c->run.kill_ev);
		c->run.kill_ev = NULL;
	}
	int64_t ran = finished - c->run.started_ns;
	c->run.state = CTR_EXITED;
	c->run.exit_code = code;
	c->run.signal = sig;
	c->run.oom_killed = oom;
	c->run.finished_ns = finished;
	c->run.pid = 0;
	c->run.shim_pid = 0;
	dnet_detach(c);
	if (ran > BACKOFF_RESET_NS)
		c->run.backoff_n = 0;
	daemon_reap(c->d);
	struct clbsd_err err;
	if (ctr_save(c, &err) < 0)
		log_error("container", c->name, "%s", err.msg);
	if (oom && !c->run.oom_reported) {
		TRACE1(container__oom, c->name);
		daemon_event(c->d, "container.oom", c->name, json_pack("{s:i}", "oom_kills", 1));
	}
	TRACE4(container__exit, c->name, code, sig, ran);
	json_t *attrs =
		json_pack("{s:i,s:i,s:b}", "exit_code", code, "signal", sig, "oom_killed", oom);
	if (while_down)
		json_object_set_new(attrs, "while_daemon_down", json_true());
	daemon_event(c->d, "container.exited", c->name, attrs);
	log_info("container", c->name, "exited with %d%s", code, oom ? " (OOM-killed)" : "");
	waiters_fire(&c->waiters.exit, c, NULL);
	if (c->run.removed || c->run.removing)
		return;
	if (c->cfg.auto_remove) {
		c->run.removing = true;
		c->run.remove_mono_ns = time_mono_ns();
		do_remove(c, NULL, NULL);
		return;
	}
	if (should_restart(c))
		schedule_restart(c);
}

/* ---- stop, kill, remove ---- */

static int send_kill(struct container *c, int sig, bool all, struct clbsd_err *err)
{
	return ctr_ops_of(c)->signal(c, sig, all, err);
}

static int native_signal(struct container *c, int sig, bool all, struct clbsd_err *err)
{
	json_t *req = json_pack("{s:s,s:i,s:b}", "op", "kill", "signal", sig, "all", all);
	int r = ctr_shim_call(c, req, NULL, err);
	json_decref(req);
	return r;
}

static void on_kill_timer(evutil_socket_t fd, short what, void *arg)
{
	struct container *c = arg;
	event_free(c->run.kill_ev);
	c->run.kill_ev = NULL;
	if (c->run.state != CTR_RUNNING)
		return;
	struct clbsd_err err;
	log_info("container", c->name, "did not stop in time; sending SIGKILL");
	if (send_kill(c, SIGKILL, true, &err) < 0)
		log_warn("container", c->name, "%s", err.msg);
}

struct stop_args {
	int timeout_s;
	ctr_done_fn fn;
	void *arg;
};

/*
 * A stop answers once the container's network is down too: its exit queued
 * the detach (published ports, addresses), and the answer waits behind it,
 * as `docker stop` returns with the port mappings gone.
 */
struct stop_wait {
	struct container *c;
	ctr_done_fn fn;
	void *arg;
};

static void stop_net_done(struct container *unused, const struct clbsd_err *err, void *arg)
{
	struct stop_wait *w = arg;
	struct container *c = w->c;
	w->fn(c, NULL, w->arg);
	free(w);
	ctr_let_go(c);
}

static void stop_exited(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct stop_wait *w = arg;
	if (err || !c->d->net) {
		w->fn(c, err, w->arg);
		free(w);
		return;
	}
	w->c = c;
	c->run.holds++;
	dnet_after_queue(c->d, stop_net_done, w);
}

static void stop_after_start(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct stop_args *a = arg;
	if (err && a->fn)
		a->fn(c, NULL, a->arg);
	else
		ctr_stop(c, a->timeout_s, a->fn, a->arg);
	free(a);
}

void ctr_stop(struct container *c, int timeout_s, ctr_done_fn fn, void *arg)
{
	struct clbsd_err err;
	if (c->run.starting) {
		struct stop_args *a = xcalloc(1, sizeof(*a));
		*a = (struct stop_args){timeout_s, fn, arg};
		waiters_add(&c->waiters.start, stop_after_start, a);
		return;
	}
	if (c->run.state == CTR_RESTARTING) {
		if (c->run.restart_ev) {
			event_free(c->run.restart_ev);
			c->run.restart_ev = NULL;
		}
		c->run.stop_requested = true;
		c->run.state = CTR_EXITED;
		if (ctr_save(c, &err) < 0)
			log_error("container", c->name, "%s", err.msg);
		daemon_event(c->d, "container.stopped", c->name, NULL);
	}
	if (c->run.state != CTR_RUNNING) {
		/*
		 * Stopped already, its detach (port rules, addresses) perhaps
		 * not done yet (`clbsd kill web; clbsd stop web`): the answer
		 * waits behind it then, as a stop that sees the exit does.
		 */
		if (fn && dnet_detach_pending(c->d, c->name)) {
			struct stop_wait *w = xcalloc(1, sizeof(*w));
			*w = (struct stop_wait){NULL, fn, arg};
			stop_exited(c, NULL, w);
		} else if (fn) {
			fn(c, NULL, arg);
		}
		return;
	}
	c->run.stop_requested = true;
	if (fn) {
		struct stop_wait *w = xcalloc(1, sizeof(*w));
		*w = (struct stop_wait){NULL, fn, arg};
		waiters_add(&c->waiters.exit, stop_exited, w);
	}
	if (c->run.kill_ev)
		return; /* a stop is already under way */
	bool now = timeout_s <= 0;
	/* The container's stop signal (SIGTERM unless its spec says), SIGKILL after the timeout. */
	int sig = c->cfg.stop_signal > 0 ? c->cfg.stop_signal : SIGTERM;
	if (!now && send_kill(c, sig, sig == SIGKILL, &err) < 0) {
		log_warn("container", c->name, "%s", err.msg);
		now = true;
	}
	if (now) {
		if (send_kill(c, SIGKILL, true, &err) < 0)
			log_warn("container", c->name, "%s", err.msg);
		return;
	}
	c->run.kill_ev = evtimer_new(c->d->base, on_kill_timer, c);
	struct timeval tv = {.tv_sec = timeout_s};
	evtimer_add(c->run.kill_ev, &tv);
}

int ctr_kill(struct container *c, int sig, struct clbsd_err *err)
{
	if (c->run.state != CTR_RUNNING)
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, ESRCH, "container %s is not running",
					c->name);
	if (sig == SIGKILL)
		c->run.stop_requested = true;
	return send_kill(c, sig, sig == SIGKILL, err);
}

struct remove_args {
	ctr_done_fn fn;
	void *arg;
};

static void remove_after_exit(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct remove_args *a = arg;
	ctr_done_fn fn = a->fn;
	void *farg = a->arg;
	free(a);
	if (!c->run.removed)
		do_remove(c, fn, farg);
}

static void remove_after_start(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct remove_args *a = arg;
	ctr_done_fn fn = a->fn;
	void *farg = a->arg;
	free(a);
	ctr_remove(c, true, fn, farg);
}

void ctr_remove(struct container *c, bool force, ctr_done_fn fn, void *arg)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	if (c->run.removing) {
		clbsd_err_setmsg(&err, CLBSD_E_CONFLICT, EBUSY,
				 "container %s is already being removed", c->name);
		if (fn)
			fn(c, &err, arg);
		return;
	}
	if (c->storage.busy) {
		clbsd_err_setmsg(
			&err, CLBSD_E_CONFLICT, EBUSY,
			"container %s: a snapshot, rollback or clone is running; remove it "
			"when that is done",
			c->name);
		if (fn)
			fn(c, &err, arg);
		return;
	}
	if (ctr_is_active(c) && !force) {
		clbsd_err_setmsg(&err, CLBSD_E_CONFLICT, EBUSY,
				 "container %s is running; stop it first or use rm -f", c->name);
		if (fn)
			fn(c, &err, arg);
		return;
	}
	if (c->run.starting) {
		/* Let the start finish (or fail), then remove. */
		struct remove_args *a = xcalloc(1, sizeof(*a));
		a->fn = fn;
		a->arg = arg;
		waiters_add(&c->waiters.start, remove_after_start, a);
		return;
	}
	c->run.removing = true;
	c->run.stop_requested = true;
	c->run.remove_mono_ns = time_mono_ns();
	if (c->run.state == CTR_RUNNING) {
		struct remove_args *a = xcalloc(1, sizeof(*a));
		a->fn = fn;
		a->arg = arg;
		waiters_add(&c->waiters.exit, remove_after_exit, a);
		if (send_kill(c, SIGKILL, true, &err) < 0)
			log_warn("container", c->name, "%s", err.msg);
		return;
	}
	if (c->run.restart_ev) {
		event_free(c->run.restart_ev);
		c->run.restart_ev = NULL;
	}
	do_remove(c, fn, arg);
}

void ctr_forget(struct container *c)
{
	watch_close(c);
	if (c->run.restart_ev)
		event_free(c->run.restart_ev);
	if (c->run.kill_ev)
		event_free(c->run.kill_ev);
	if (c->shim.ready_ev)
		event_free(c->shim.ready_ev);
	if (c->shim.ready_fd >= 0)
		close(c->shim.ready_fd);
	if (c->shim.ready_buf) {
		buf_release(c->shim.ready_buf);
		free(c->shim.ready_buf);
	}
	for (struct waiter *w = c->waiters.start, *n; w; w = n) {
		n = w->next;
		free(w);
	}
	for (struct waiter *w = c->waiters.exit, *n; w; w = n) {
		n = w->next;
		free(w);
	}
	for (struct waiter *w = c->waiters.remove, *n; w; w = n) {
		n = w->next;
		free(w);
	}
	ctr_free(c);
}

/* ---- adoption at daemon start ---- */

/*
 * A start may have been in flight when the previous daemon died: the shim
 * runs (its record says so) but our state never learned of it. Adopt it
 * rather than starting a second one over it.
 */
static bool adopt_unannounced(struct container *c)
{
	autofree char *text = NULL;
	struct clbsd_err err;
	if (ctr_rfile_read(c, "shim.json", &text) < 0)
		return false;
	json_t *j = json_loads(text, 0, NULL);
	const char *status = json_str(j, "status");
	pid_t pid = (pid_t)json_int(j, "pid", 0);
	pid_t shim = (pid_t)json_int(j, "shim_pid", 0);
	int64_t started = json_time_get(j, "started_at");
	bool running = status && strcmp(status, "running") == 0 && pid > 0;
	json_decref(j);
	if (!running || watch_connect(c, &err) < 0)
		return false;
	c->run.state = CTR_RUNNING;
	c->run.pid = pid;
	c->run.shim_pid = shim;
	c->run.started_ns = started ? started : time_now_ns();
	c->run.finished_ns = 0;
	c->run.exit_code = 0;
	if (ctr_save(c, &err) < 0)
		log_error("container", c->name, "%s", err.msg);
	log_info("container", c->name,
		 "adopted a shim whose start the previous daemon did not see "
		 "finish (pid %d)",
		 (int)pid);
	daemon_event(c->d, "container.adopted", c->name, json_pack("{s:i}", "pid", (int)pid));
	return true;
}

void ctr_adopt(struct container *c)
{
	ctr_ops_of(c)->adopt(c);
}

static void native_adopt(struct container *c)
{
	struct clbsd_err err;
	if (c->run.state != CTR_RUNNING && adopt_unannounced(c))
		return;
	if (c->run.state == CTR_RESTARTING) {
		schedule_restart(c);
		return;
	}
	if (c->run.state != CTR_RUNNING)
		return;
	if (watch_connect(c, &err) == 0) {
		log_info("container", c->name, "re-adopted running container (pid %d)",
			 (int)c->run.pid);
		daemon_event(c->d, "container.adopted", c->name,
			     json_pack("{s:i}", "pid", (int)c->run.pid));
		return;
	}
	shim_gone(c);
}

/* ---- the kinds ---- */

static int native_start(struct container *c, bool hold, bool *answered, struct clbsd_err *err)
{
	return spawn_shim(c, hold, answered, err);
}

const struct ctr_ops ctr_native_ops = {
	.kind = "native",
	.start = native_start,
	.watch = native_watch,
	.signal = native_signal,
	.destroy = ctr_destroy,
	.destroy_files = ctr_destroy_files,
	.adopt = native_adopt,
	.exec = ctr_native_exec,
};

const struct ctr_ops *ctr_ops_of(const struct container *c)
{
	return c->docker.on ? &ctr_docker_ops : &ctr_native_ops;
}
