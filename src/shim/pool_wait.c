/*
 * Pool mode: a shim started ahead of any container. It prepares an init in
 * fresh namespaces and its own cgroup, then waits on a socket for the daemon
 * to claim it for a container. Starting a container then skips spawning the
 * shim, making the cgroup and cloning into new namespaces (about 2 ms here).
 *
 * Lifetime: the shim keeps the write end of the daemon's ready pipe. When the
 * daemon goes away (or drops the entry) the pipe breaks and the shim discards
 * its init and exits, so an unused pool never outlives its daemon. SIGTERM
 * does the same. If the init dies, the shim exits too; the daemon makes a new
 * entry.
 *
 * The claim is one JSON line: {"op":"claim","name":N,"spec":FILE,
 * "socket":PATH,"state":FILE,"log_dir":DIR,"hold":B,"log_level":L}. The
 * daemon has moved the listening socket to PATH before connecting (the shim
 * moves it itself otherwise); the shim answers the claim connection with the
 * usual ready line and from then on is that container's shim.
 */
#include "shim/shim.h"
#include "sys/sys.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CLAIM_MAX     (64 * 1024)
#define CLAIM_WAIT_MS 2000

/* What a claim names; lives as long as the process. */
static struct {
	char *name, *spec, *socket, *state, *log_dir;
} claimed;

int shim_log_to(const char *log_dir, struct clbsd_err *err)
{
	if (fs_mkdir_p(log_dir, 0755, err) < 0)
		return clbsd_err_prefix(err, "log dir");
	autofree char *path = xasprintf("%s/shim.log", log_dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (fd < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open %s", path);
	FILE *f = fdopen(fd, "a");
	if (!f) {
		close(fd);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "fdopen %s", path);
	}
	log_set_sink(log_sink_stderr, f);
	return 0;
}

static void say(int fd, json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!s)
		return;
	write_all(fd, s, strlen(s));
	write_all(fd, "\n", 1);
	free(s);
}

static bool abs_path(const char *p)
{
	return p && p[0] == '/' && strlen(p) < 4096;
}

/* Read one line (the claim) from a fresh connection, waiting at most CLAIM_WAIT_MS. */
static char *read_line(int fd)
{
	struct buf b = BUF_INIT;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int n = poll(&p, 1, CLAIM_WAIT_MS);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		char chunk[4096];
		ssize_t r = read(fd, chunk, sizeof(chunk));
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0)
			break;
		buf_add(&b, chunk, (size_t)r);
		char *nl = memchr(b.data, '\n', b.len);
		if (nl) {
			*nl = '\0';
			return buf_detach(&b, NULL);
		}
		if (b.len > CLAIM_MAX)
			break;
	}
	buf_release(&b);
	return NULL;
}

/* Parse and check a claim into o. Returns 0, or -1 with *why set. */
static int parse_claim(const char *line, struct shim_opts *o, const char **why)
{
	json_t *j = json_loads(line, 0, NULL);
	const char *op = json_string_value(json_object_get(j, "op"));
	if (!json_is_object(j) || !op || strcmp(op, "claim") != 0) {
		json_decref(j);
		*why = "expected {\"op\":\"claim\",...}";
		return -1;
	}
	const char *name = json_string_value(json_object_get(j, "name"));
	const char *spec = json_string_value(json_object_get(j, "spec"));
	const char *sock = json_string_value(json_object_get(j, "socket"));
	const char *state = json_string_value(json_object_get(j, "state"));
	const char *logd = json_string_value(json_object_get(j, "log_dir"));
	const char *lvl = json_string_value(json_object_get(j, "log_level"));
	if (!name || !valid_name(name)) {
		json_decref(j);
		*why = "claim: name is missing or not a valid container name";
		return -1;
	}
	if (!abs_path(spec) || !abs_path(sock) || !abs_path(state) || !abs_path(logd)) {
		json_decref(j);
		*why = "claim: spec, socket, state and log_dir must be absolute paths";
		return -1;
	}
	enum log_level level;
	if (lvl && log_parse_level(lvl, &level) == 0)
		log_set_level(level);
	claimed.name = xstrdup(name);
	claimed.spec = xstrdup(spec);
	claimed.socket = xstrdup(sock);
	claimed.state = xstrdup(state);
	claimed.log_dir = xstrdup(logd);
	o->name = claimed.name;
	o->spec_path = claimed.spec;
	o->sock_path = claimed.socket;
	o->state_path = claimed.state;
	o->log_dir = claimed.log_dir;
	o->hold = json_is_true(json_object_get(j, "hold"));
	o->net_hold = json_is_true(json_object_get(j, "net_hold"));
	json_decref(j);
	return 0;
}

/* Accept connections until one carries a valid claim; returns its fd or -1 (none yet). */
static int take_claim(int lfd, struct shim_opts *o)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			return -1;
		autofree char *line = read_line(fd);
		const char *why = "no claim line within 2 s";
		if (line && parse_claim(line, o, &why) == 0)
			return fd;
		say(fd, json_pack("{s:b,s:s}", "ok", 0, "error", why));
		close(fd);
	}
}

int shim_pool(struct shim_opts *o, const char *cgroup)
{
	const struct rt_ops *rt = rt_default_ops();
	struct rt_prepared prep = {.pid = -1, .sock = -1};
	struct clbsd_err err;
	clbsd_err_init(&err);
	const char *pool_sock = o->sock_path;
	autofree char *stage = NULL;
	/*
	 * Preparing is background work: at the lowest priority it does not slow
	 * down the start that made the pool refill. The init inherits it; both
	 * go back to 0 when claimed.
	 */
	setpriority(PRIO_PROCESS, 0, 19);

	sigset_t mask, old;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, &old);
	int sfd = sys_sigfd_open(&mask, &err);
	if (sfd < 0)
		goto fail;
	if (!rt->prepare) {
		clbsd_err_setmsg(&err, CLBSD_E_UNAVAIL, ENOTSUP,
				 "the %s runtime cannot prepare inits", rt->name);
		goto fail;
	}
	stage = xasprintf("%s.stage", pool_sock);
	if (mkdir(stage, 0700) < 0 && errno != EEXIST) {
		clbsd_err_set(&err, CLBSD_E_INTERNAL, errno, "mkdir %s", stage);
		goto fail;
	}
	if (rt->prepare(cgroup, stage, &prep, &err) < 0) {
		rmdir(stage);
		goto fail;
	}
	int lfd = shim_listen(pool_sock, &err);
	if (lfd < 0) {
		rt->discard(&prep);
		goto fail;
	}
	say(o->ready_fd, json_pack("{s:b,s:b,s:i,s:i}", "ok", 1, "pool", 1, "pid", (int)prep.pid,
				   "shim_pid", (int)getpid()));

	int conn = -1;
	for (;;) {
		/* A claim wins over everything else seen in the same round. */
		if ((conn = take_claim(lfd, o)) >= 0)
			break;
		struct pollfd p[3] = {
			{.fd = lfd, .events = POLLIN},
			{.fd = o->ready_fd, .events = 0}, /* POLLERR: the daemon let go */
			{.fd = sfd, .events = POLLIN},
		};
		int n = poll(p, 3, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		if (p[0].revents & POLLIN)
			continue;
		if (p[1].revents & (POLLERR | POLLHUP | POLLNVAL))
			break;
		if (p[2].revents & POLLIN) {
			bool stop = false;
			int sig;
			while ((sig = sys_sigfd_next(sfd)) > 0)
				if (sig != SIGCHLD)
					stop = true;
			int status;
			pid_t w;
			while ((w = waitpid(-1, &status, WNOHANG)) > 0)
				if (w == prep.pid) {
					prep.pid = -1; /* reaped: nothing left to kill */
					stop = true;
				}
			if (stop)
				break;
		}
	}
	if (conn < 0) {
		/* Discarded: leave nothing behind. */
		rt->discard(&prep);
		close(lfd);
		unlink(pool_sock);
		return 0;
	}

	/* Claimed: become the container's shim. */
	setpriority(PRIO_PROCESS, 0, 0);
	close(sfd);
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(o->ready_fd);
	o->ready_fd = conn;
	/* The daemon normally moved it already (see pool_claim in src/daemon/shim_pool.c). */
	if (rename(pool_sock, o->sock_path) < 0 &&
	    (errno != ENOENT || access(o->sock_path, F_OK) < 0)) {
		clbsd_err_set(&err, CLBSD_E_INTERNAL, errno, "move socket %s to %s", pool_sock,
			      o->sock_path);
		rt->discard(&prep);
		close(lfd);
		unlink(pool_sock);
		say(conn, json_pack("{s:b,s:s}", "ok", 0, "error", err.msg));
		return 1;
	}
	if (shim_log_to(o->log_dir, &err) < 0) {
		rt->discard(&prep);
		close(lfd);
		unlink(o->sock_path);
		say(conn, json_pack("{s:b,s:s}", "ok", 0, "error", err.msg));
		return 1;
	}
	return shim_run(o, &prep, lfd);

fail:
	if (sfd >= 0)
		close(sfd);
	say(o->ready_fd, json_pack("{s:b,s:s}", "ok", 0, "error", err.msg));
	return 1;
}
