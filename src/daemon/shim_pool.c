/*
 * The shim pool: a few shims started ahead of any container, each holding an
 * init already in fresh namespaces and its own cgroup (clbsd-shim --pool,
 * see src/shim/pool_wait.c). A start takes one and claims it for the container,
 * which skips spawning the shim, making the cgroup and entering namespaces;
 * the pool is refilled once that start has been answered. An empty pool, a
 * failed claim or a disabled pool (--pool 0) fall back to the ordinary start.
 *
 * Each entry's ready pipe stays open while the entry lives: closing it (the
 * daemon exits, is killed, or drops the entry) makes the pool shim discard
 * its init and exit, so unused entries never outlive the daemon. Spawns that
 * keep failing back off (1 s doubling to 60 s) and are logged once a series.
 */
#include "core/backoff.h"
#include "daemon.h"
#include "util/json.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define POOL_BACKOFF_MAX_S 60

struct pool_entry {
	struct daemon *d;
	char *cgroup;	/* <cgroup parent>/<slot> */
	char *socket;	/* <run>/pool/<slot>.sock */
	pid_t shim_pid; /* once ready */
	int fd;		/* our end of the ready pipe */
	struct event *ev;
	struct buf line;
	bool ready;
	struct pool_entry *next;
};

struct pool {
	size_t want;
	struct pool_entry *entries;
	struct event *timer;
	int failures;	      /* consecutive failed entries */
	bool fill_due;	      /* refill once the current start is answered */
	int zygote;	      /* our end of the zygote's socket, or -1 */
	int64_t zygote_tried; /* when it was last started (monotonic ns) */
};

/*
 * The zygote (clbsd-shim --zygote, src/shim/zygote.c) forks the pool shims:
 * a fork of a running process instead of an exec of the binary, and no
 * vfork child holding the loop. Without it (it could not start, or died and
 * was restarted less than 10 s ago) entries are spawned as before.
 */
static void zygote_stop(struct pool *p)
{
	if (p->zygote >= 0)
		close(p->zygote);
	p->zygote = -1;
}

static void zygote_start(struct daemon *d)
{
	struct pool *p = d->pool;
	int64_t now = time_mono_ns();
	if (p->zygote >= 0 || (p->zygote_tried && now - p->zygote_tried < 10000000000LL))
		return;
	p->zygote_tried = now;
	int sv[2];
	struct clbsd_err err;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		log_warn("pool", NULL, "zygote: socketpair: %s", strerror(errno));
		return;
	}
	const char *argv[] = {d->shim_path, "--zygote", NULL};
	pid_t pid;
	int r = daemon_spawn_shim_fd(d, argv, sv[1], &pid, &err);
	close(sv[1]);
	if (r < 0) {
		log_warn("pool", NULL, "zygote: %s; pool shims are spawned one by one", err.msg);
		close(sv[0]);
		return;
	}
	daemon_track_child(d, pid);
	p->zygote = sv[0];
}

/* Have the zygote fork a shim with argv; its ready pipe (read end) in *ready_fd. */
static int zygote_spawn(struct daemon *d, const char *const *argv, int *ready_fd)
{
	struct pool *p = d->pool;
	zygote_start(d);
	if (p->zygote < 0)
		return -1;
	struct buf msg = BUF_INIT;
	autofree const char **args = daemon_shim_argv(d, argv);
	for (size_t i = 0; args[i]; i++)
		buf_add(&msg, args[i], strlen(args[i]) + 1);
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0) {
		buf_release(&msg);
		return -1;
	}
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(sizeof(int))];
	} cm;
	memset(&cm, 0, sizeof(cm));
	struct iovec iov = {.iov_base = msg.data, .iov_len = msg.len};
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cm.space,
		.msg_controllen = sizeof(cm.space),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fds[1], sizeof(int));
	ssize_t w;
	do
		w = sendmsg(p->zygote, &mh, MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	int e = errno;
	buf_release(&msg);
	close(fds[1]);
	if (w < 0) {
		close(fds[0]);
		log_warn("pool", NULL, "zygote gone (%s); starting another", strerror(e));
		zygote_stop(p);
		return -1;
	}
	fd_set_nonblock(fds[0], true);
	*ready_fd = fds[0];
	return 0;
}

static size_t pool_count(const struct pool *p)
{
	size_t n = 0;
	for (const struct pool_entry *e = p->entries; e; e = e->next)
		n++;
	return n;
}

static void entry_unlink(struct pool *p, struct pool_entry *e)
{
	for (struct pool_entry **pp = &p->entries; *pp; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			return;
		}
}

/* Forget an entry; closing the pipe tells its shim (if any) to go. */
static void entry_free(struct pool_entry *e)
{
	if (e->ev)
		event_free(e->ev);
	if (e->fd >= 0)
		close(e->fd);
	buf_release(&e->line);
	free(e->cgroup);
	free(e->socket);
	free(e);
}

static void schedule(struct daemon *d, int delay_s)
{
	struct timeval tv = {.tv_sec = delay_s};
	evtimer_add(d->pool->timer, &tv);
}

/* An entry failed or its shim died: drop it and refill, backing off on repeats. */
static void entry_failed(struct pool_entry *e, const char *why)
{
	struct daemon *d = e->d;
	struct pool *p = d->pool;
	if (p->failures == 0)
		log_warn("pool", NULL, "pool shim failed: %s (retrying with backoff)", why);
	else
		log_debug("pool", NULL, "pool shim failed again: %s", why);
	entry_unlink(p, e);
	entry_free(e);
	int delay = (int)backoff_delay(1, POOL_BACKOFF_MAX_S, (unsigned)p->failures);
	p->failures++;
	if (!d->shutting_down)
		schedule(d, delay);
}

static void on_entry(evutil_socket_t fd, short what, void *arg)
{
	struct pool_entry *e = arg;
	char b[1024];
	ssize_t n = read(fd, b, sizeof(b));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		entry_failed(e,
			     e->ready ? "it exited while waiting" : "it exited before reporting");
		return;
	}
	if (e->ready)
		return; /* nothing more is expected; ignore */
	buf_add(&e->line, b, (size_t)n);
	char *nl = memchr(e->line.data, '\n', e->line.len);
	if (!nl)
		return;
	*nl = '\0';
	json_t *j = json_loads(e->line.data, 0, NULL);
	if (!json_bool(j, "ok", false) || !json_bool(j, "pool", false)) {
		const char *m = json_str(j, "error");
		autofree char *why = xstrdup(m ? m : e->line.data);
		json_decref(j);
		entry_failed(e, why);
		return;
	}
	e->shim_pid = (pid_t)json_int(j, "shim_pid", 0);
	json_decref(j);
	e->ready = true;
	e->d->pool->failures = 0;
	daemon_track_child(e->d, e->shim_pid);
	log_debug("pool", NULL, "pool shim %d ready (cgroup %s)", (int)e->shim_pid, e->cgroup);
}

static int entry_spawn(struct daemon *d, struct clbsd_err *err)
{
	char hex[13], slot[32];
	random_hex(hex, 6);
	snprintf(slot, sizeof(slot), "pool-%s", hex);
	struct pool_entry *e = xcalloc(1, sizeof(*e));
	e->d = d;
	e->fd = -1;
	e->cgroup = xasprintf("%s/%s", d->cgroup_parent, slot);
	e->socket = xasprintf("%s/pool/%s.sock", d->run, slot);
	const char *argv[] = {d->shim_path,  "--pool",
			      "--cgroup",    e->cgroup,
			      "--socket",    e->socket,
			      "--ready-fd",  "3",
			      "--log-level", log_level_name(log_get_level()),
			      NULL};
	if (zygote_spawn(d, argv, &e->fd) < 0) {
		pid_t first;
		if (daemon_spawn_shim(d, argv, &e->fd, &first, err) < 0) {
			entry_free(e);
			return -err->code;
		}
		/* Its first process exits at once (it detaches); reaped with the others. */
		daemon_track_child(d, first);
	}
	e->ev = event_new(d->base, e->fd, EV_READ | EV_PERSIST, on_entry, e);
	event_add(e->ev, NULL);
	e->next = d->pool->entries;
	d->pool->entries = e;
	return 0;
}

static void fill(struct daemon *d)
{
	struct pool *p = d->pool;
	while (!d->shutting_down && pool_count(p) < p->want) {
		struct clbsd_err err;
		clbsd_err_init(&err);
		if (entry_spawn(d, &err) < 0) {
			log_warn("pool", NULL, "cannot start a pool shim: %s", err.msg);
			p->failures++;
			schedule(d, POOL_BACKOFF_MAX_S);
			return;
		}
	}
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	fill(arg);
}

void pool_init(struct daemon *d, size_t want)
{
	struct pool *p = xcalloc(1, sizeof(*p));
	p->want = want;
	p->zygote = -1;
	d->pool = p;
	p->timer = evtimer_new(d->base, on_timer, d);
	/* Sockets of a previous daemon's pool: their shims went with it. */
	autofree char *dir = xasprintf("%s/pool", d->run);
	struct clbsd_err err;
	if (fs_rm_rf(dir, &err) < 0 || fs_mkdir_p(dir, 0700, &err) < 0) {
		log_warn("pool", NULL, "%s; starting without a pool", err.msg);
		p->want = 0;
	}
	if (p->want)
		fill(d);
}

struct pool_entry *pool_take(struct daemon *d)
{
	struct pool *p = d->pool;
	if (!p)
		return NULL;
	for (struct pool_entry *e = p->entries; e; e = e->next)
		if (e->ready) {
			entry_unlink(p, e);
			p->fill_due = true;
			return e;
		}
	return NULL;
}

const char *pool_entry_cgroup(const struct pool_entry *e)
{
	return e->cgroup;
}

int pool_claim(struct pool_entry *e, const char *target, const char *claim, int *fd_out,
	       struct clbsd_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int rc = 0;
	if (strlen(target) >= sizeof(sa.sun_path)) {
		rc = clbsd_err_setmsg(err, CLBSD_E_INTERNAL, ENAMETOOLONG,
				      "socket path %s is too long", target);
		goto out;
	}
	/*
	 * Move the shim's listening socket to the container's path first: the
	 * claim is then the first connection there, and an attach that comes
	 * right after the start is answered finds the socket.
	 */
	if (rename(e->socket, target) < 0) {
		rc = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "move pool socket %s to %s",
				   e->socket, target);
		goto out;
	}
	strcpy(sa.sun_path, target);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "socket");
		goto out;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    write_all(fd, claim, strlen(claim)) < 0 || write_all(fd, "\n", 1) < 0) {
		rc = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "claim pool shim at %s", target);
		close(fd);
		unlink(target);
		goto out;
	}
	fd_set_nonblock(fd, true);
	*fd_out = fd;
out:
	/* Claimed or not, the entry is used up: our end of its pipe closes now. */
	entry_free(e);
	return rc;
}

void pool_drop(struct pool_entry *e)
{
	entry_free(e);
}

void pool_started(struct daemon *d)
{
	struct pool *p = d->pool;
	if (p && p->fill_due && !d->shutting_down) {
		p->fill_due = false;
		if (!evtimer_pending(p->timer, NULL))
			fill(d);
	}
}

void pool_release(struct daemon *d)
{
	struct pool *p = d->pool;
	if (!p)
		return;
	/* Closing the pipes discards the entries; wait briefly so their cgroups go too. */
	pid_t *pids = xcalloc(pool_count(p) + 1, sizeof(pid_t));
	size_t n = 0;
	while (p->entries) {
		struct pool_entry *e = p->entries;
		p->entries = e->next;
		if (e->shim_pid > 0)
			pids[n++] = e->shim_pid;
		entry_free(e);
	}
	int64_t deadline = time_mono_ns() + 2 * 1000000000LL;
	for (size_t i = 0; i < n; i++)
		while (waitpid(pids[i], NULL, WNOHANG) == 0 && time_mono_ns() < deadline)
			usleep(2000);
	free(pids);
	event_free(p->timer);
	free(p);
	d->pool = NULL;
}
