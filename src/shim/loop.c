/*
 * The shim's life: create the container, report readiness, then one poll()
 * loop over the listening socket, the clients, the container's PTY or pipes,
 * exec'd processes, a signal descriptor (sys_sigfd) for SIGCHLD and the OOM
 * fd, until the init exits; then drain, record the exit, tell the clients,
 * clean up and leave.
 *
 * Invariants: nothing in the loop blocks on a client (client sockets are
 * non-blocking with per-client output buffers, and a console viewer that
 * falls too far behind is dropped); the container's output is always read,
 * so a container never stalls on its stdout because of the shim. The one
 * exception is an exec'd process, whose output is held back while its own
 * client is slow: that output has one reader and must not be lost.
 */
#include "shim/shim.h"
#include "sys/sys.h"
#include "util/proto.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define MAX_CLIENTS    128
#define VIEWER_OUT_MAX (1u << 20)   /* drop a console viewer past this backlog */
#define EXEC_OUT_HIGH  (256u << 10) /* stop reading an exec's output past this */
#define STDIN_HIGH     (64u << 10)  /* stop reading client input past this */
#define READ_CHUNK     16384
#define HOLD_NS	       (10 * 1000000000LL)
#define EXIT_DRAIN_NS  (2 * 1000000000LL)
#define EXEC_QUIET_NS  (100 * 1000000LL)
#define REQ_TIMEOUT_NS (30 * 1000000000LL)
#define FINAL_FLUSH_NS (2 * 1000000000LL)
#define TRIM_IDLE_NS   (5 * 1000000000LL)
#define TRIM_START_NS  (1 * 1000000000LL)

struct client;

/* A process whose stdio the shim holds: the init, or one exec'd process. */
struct proc {
	pid_t pid;
	bool tty;
	int master; /* PTY master, -1 without a TTY */
	int in;	    /* stdin pipe (write end), -1 with a TTY or when closed */
	int out[2]; /* output per stream, -1 at EOF; tty: out[0] is master */
	struct buf inbuf;
	bool close_in; /* a 'C' frame came: close stdin once inbuf is written */
	bool reaped;
	int status;
	int64_t quiet_until;  /* after the reap: give up waiting for output then */
	struct client *owner; /* exec: the client that started it */
	struct proc *next;
};

enum ckind { C_REQ, C_WAIT, C_ATTACH, C_EXEC };

struct client {
	int fd;
	enum ckind kind;
	struct buf in; /* the request line while kind == C_REQ */
	struct buf out;
	size_t out_off;
	bool in_ok;   /* its 'I' frames go to the process */
	bool rd_eof;  /* it shut down its sending side */
	bool closing; /* close once out is sent */
	bool dead;
	struct proc *proc; /* attach: the init; exec: its process */
	int64_t since;
	/* attach: who it is (the kernel's word), for the daemon's audit log */
	struct sys_peer peer;
	bool peer_known;
	int64_t attached; /* monotonic ns */
	/* frame parser */
	unsigned char hdr[PROTO_HDR_LEN];
	size_t hdr_len;
	uint32_t left;
	unsigned char rs[4];
	size_t rs_len;
	struct client *next;
};

static struct {
	const struct shim_opts *o;
	const struct rt_ops *rt;
	struct rt_spec spec;
	bool created;
	int listen_fd;
	bool sock_bound;
	struct rt_prepared *prep; /* a pool init to use instead of creating one */
	int sig_fd;
	int oom_fd;
	struct proc init;
	struct proc *execs;
	struct client *clients;
	unsigned n_clients;
	struct shim_ring ring;
	struct shim_log log;
	bool running; /* setup is over: the loop owns the state file */
	bool held;
	/*
	 * With --net-hold the init also waits for the daemon's net-ready;
	 * a release asked for meanwhile is remembered in release_wanted.
	 */
	bool net_held;
	bool release_wanted;
	int release_fd;
	int64_t hold_until;
	int64_t trim_at; /* give unused memory back after a quiet spell; -1: nothing to do */
	int64_t started_at, finished_at;
	int64_t exit_deadline;
	uint64_t oom_kills;
	char *release_error;
	sigset_t chld;
	/*
	 * The init's mount namespace, held open so that its exit does not
	 * unmount the container's file systems (and wait for RCU grace periods)
	 * before we learn of it: they go when we close this, after the exit is
	 * reported.
	 */
	int mnt_hold;
	int side_rc; /* what side_setup() found */
	struct clbsd_err side_err;
} S;

/* ---- small helpers ---- */

static void xclose(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static int exit_code_of(int status, int *sig)
{
	*sig = 0;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status)) {
		*sig = WTERMSIG(status);
		return 128 + *sig;
	}
	return 255;
}

static void fmt_time(int64_t ns, char *buf, size_t len)
{
	time_fmt_rfc3339(ns, buf, len);
}

/* A JSON value as one line; steals the reference. */
static char *json_line(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!s)
		abort();
	char *line = xasprintf("%s\n", s);
	free(s);
	return line;
}

/* ---- clients ---- */

static size_t pending(const struct client *c)
{
	return c->out.len - c->out_off;
}

static void tell_console(struct client *c, const char *what);

static void client_drop(struct client *c, const char *why)
{
	if (c->dead)
		return;
	if (c->kind == C_ATTACH)
		tell_console(c, "closed");
	if (why)
		log_info("shim", S.o->name, "client dropped: %s", why);
	c->dead = true;
	xclose(&c->fd);
	struct proc *p = c->proc;
	if (c->kind == C_EXEC && p) {
		p->owner = NULL;
		/* Nobody can write to it any more: let it see end of input. */
		if (!p->tty)
			xclose(&p->in);
		buf_release(&p->inbuf);
	}
	c->proc = NULL;
}

static void client_flush(struct client *c)
{
	while (!c->dead && pending(c) > 0) {
		ssize_t n = send(c->fd, c->out.data + c->out_off, pending(c),
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			client_drop(c, n < 0 ? strerror(errno) : "closed");
			return;
		}
		c->out_off += (size_t)n;
	}
	if (pending(c) == 0) {
		/* Do not keep a burst's worth of memory around. */
		if (c->out.cap > 65536)
			buf_release(&c->out);
		else
			buf_reset(&c->out);
		c->out_off = 0;
		if (c->closing)
			client_drop(c, NULL);
	} else if (c->out_off > 65536 && c->out_off * 2 > c->out.len) {
		buf_consume(&c->out, c->out_off);
		c->out_off = 0;
	}
}

static void client_send(struct client *c, const void *data, size_t len)
{
	if (c->dead)
		return;
	buf_add(&c->out, data, len);
	client_flush(c);
}

static void client_line(struct client *c, json_t *o)
{
	autofree char *line = json_line(o);
	client_send(c, line, strlen(line));
}

static void client_error(struct client *c, const char *msg)
{
	client_line(c, json_pack("{s:b,s:s}", "ok", 0, "error", msg));
	c->closing = true;
	client_flush(c);
}

static void client_frame(struct client *c, char type, const void *data, size_t len)
{
	if (c->dead)
		return;
	if (c->kind == C_ATTACH && pending(c) + len > VIEWER_OUT_MAX) {
		client_drop(c, "console viewer too slow (more than 1 MiB behind)");
		return;
	}
	unsigned char hdr[PROTO_HDR_LEN];
	proto_hdr(hdr, type, (uint32_t)len);
	buf_add(&c->out, hdr, sizeof(hdr));
	buf_add(&c->out, data, len);
	client_flush(c);
}

static void client_exit_frame(struct client *c, int code, int sig, bool oom)
{
	autofree char *line = json_line(
		json_pack("{s:i,s:i,s:b}", "exit_code", code, "signal", sig, "oom_killed", oom));
	client_frame(c, PROTO_EXIT, line, strlen(line) - 1);
	c->closing = true;
	client_flush(c);
}

/* ---- process stdio ---- */

static void proc_init(struct proc *p)
{
	memset(p, 0, sizeof(*p));
	p->master = p->in = p->out[0] = p->out[1] = -1;
	buf_init(&p->inbuf);
}

static void proc_close(struct proc *p)
{
	if (p->out[0] == p->master)
		p->out[0] = -1;
	xclose(&p->master);
	xclose(&p->in);
	xclose(&p->out[0]);
	xclose(&p->out[1]);
	buf_release(&p->inbuf);
}

/* Child ends are returned in io (to close after the start); parent ends go to p. */
static int proc_stdio(struct proc *p, bool tty, bool want_in, uint16_t rows, uint16_t cols,
		      struct rt_stdio *io, struct clbsd_err *err)
{
	io->in = io->out = io->err = -1;
	p->tty = tty;
	if (tty) {
		int s = -1;
		int r = sys_pty_open(&p->master, &s, rows, cols, err);
		if (r < 0)
			return r;
		p->out[0] = p->master;
		io->in = s;
		io->out = dup(s);
		io->err = dup(s);
		if (io->out < 0 || io->err < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "dup PTY slave");
		fd_set_cloexec(io->out);
		fd_set_cloexec(io->err);
		return 0;
	}
	int fds[2];
	if (want_in) {
		if (pipe2(fds, O_CLOEXEC) < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "stdin pipe");
		io->in = fds[0];
		p->in = fds[1];
		fd_set_nonblock(p->in, true);
	} else {
		io->in = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (io->in < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open /dev/null");
	}
	for (int i = 0; i < 2; i++) {
		if (pipe2(fds, O_CLOEXEC) < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "output pipe");
		p->out[i] = fds[0];
		fd_set_nonblock(fds[0], true);
		if (i == 0)
			io->out = fds[1];
		else
			io->err = fds[1];
	}
	return 0;
}

static void stdio_close(struct rt_stdio *io)
{
	xclose(&io->in);
	xclose(&io->out);
	xclose(&io->err);
}

static int proc_in_fd(const struct proc *p)
{
	return p->tty ? p->master : p->in;
}

static void proc_write_in(struct proc *p)
{
	int fd = proc_in_fd(p);
	while (fd >= 0 && p->inbuf.len > 0) {
		ssize_t n = write(fd, p->inbuf.data, p->inbuf.len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) {
			/* The reader went away: input has nowhere to go. */
			buf_release(&p->inbuf);
			if (!p->tty)
				xclose(&p->in);
			return;
		}
		buf_consume(&p->inbuf, (size_t)n);
	}
	if (p->inbuf.len == 0) {
		buf_release(&p->inbuf);
		if (p->close_in && !p->tty)
			xclose(&p->in);
	}
}

static void proc_input(struct proc *p, const void *data, size_t len)
{
	if (proc_in_fd(p) < 0 || p->close_in || p->reaped)
		return;
	buf_add(&p->inbuf, data, len);
	proc_write_in(p);
}

static void proc_resize(struct proc *p, uint16_t rows, uint16_t cols)
{
	if (p->master < 0 || !rows || !cols)
		return;
	struct winsize ws = {.ws_row = rows, .ws_col = cols};
	if (ioctl(p->master, TIOCSWINSZ, &ws) < 0)
		log_debug("shim", S.o->name, "resize PTY: %s", strerror(errno));
}

/* Output of the container goes to the log, the ring and every console viewer. */
static void init_output(int stream, const char *data, size_t len)
{
	shim_log_write(&S.log, stream, data, len);
	shim_ring_write(&S.ring, stream, data, len);
	char type = stream == SHIM_STDERR ? PROTO_STDERR : PROTO_STDOUT;
	for (struct client *c = S.clients; c; c = c->next)
		if (c->kind == C_ATTACH && !c->dead)
			client_frame(c, type, data, len);
}

static void proc_read(struct proc *p, int stream)
{
	char buf[READ_CHUNK];
	ssize_t n;
	do
		n = read(p->out[stream], buf, sizeof(buf));
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		/* EOF, or EIO from a PTY master whose slave is closed everywhere. */
		if (p->out[stream] == p->master)
			p->out[stream] = -1;
		else
			xclose(&p->out[stream]);
		return;
	}
	if (p->reaped)
		p->quiet_until = time_mono_ns() + EXEC_QUIET_NS;
	if (p == &S.init)
		init_output(stream, buf, (size_t)n);
	else if (p->owner)
		client_frame(p->owner, stream == SHIM_STDERR ? PROTO_STDERR : PROTO_STDOUT, buf,
			     (size_t)n);
}

static bool proc_out_open(const struct proc *p)
{
	return p->out[0] >= 0 || p->out[1] >= 0;
}

static bool proc_throttled(const struct proc *p)
{
	return p != &S.init && p->owner && pending(p->owner) >= EXEC_OUT_HIGH;
}

/* ---- the container's life cycle ---- */

static json_t *exit_info(void)
{
	int sig;
	int code = exit_code_of(S.init.status, &sig);
	if (S.release_error)
		code = 127;
	char fin[48];
	fmt_time(S.finished_at, fin, sizeof(fin));
	json_t *o = json_pack("{s:i,s:i,s:b,s:I,s:s}", "exit_code", code, "signal", sig,
			      "oom_killed", S.oom_kills > 0, "oom_kills", (json_int_t)S.oom_kills,
			      "finished_at", fin);
	if (S.release_error)
		json_object_set_new(o, "error", json_string(S.release_error));
	return o;
}

static int write_state(struct clbsd_err *err)
{
	char started[48];
	fmt_time(S.started_at, started, sizeof(started));
	json_t *o;
	if (S.init.reaped) {
		o = exit_info();
		json_object_set_new(o, "status", json_string("exited"));
	} else {
		o = json_pack("{s:s,s:s,s:b}", "status", "running", "socket", S.o->sock_path, "tty",
			      S.spec.tty);
	}
	json_object_set_new(o, "shim_pid", json_integer(getpid()));
	json_object_set_new(o, "pid", json_integer(S.init.pid));
	json_object_set_new(o, "started_at", json_string(started));
	autofree char *line = json_line(o);
	/* Run-time state: meaningless after a reboot, so not worth two fsyncs. */
	int r = fs_replace(S.o->state_path, line, strlen(line), 0644, err);
	if (r < 0)
		return clbsd_err_prefix(err, "write state file");
	return 0;
}

static void read_oom(void)
{
	uint64_t kills;
	struct clbsd_err err;
	if (S.rt->oom_kills(&S.spec, &kills, &err) < 0) {
		log_debug("shim", S.o->name, "%s", err.msg);
		return;
	}
	if (kills > S.oom_kills) {
		S.oom_kills = kills;
		log_warn("shim", S.o->name, "out of memory: %llu OOM kill(s) so far",
			 (unsigned long long)S.oom_kills);
		autofree char *line = json_line(json_pack("{s:s,s:I}", "event", "oom", "oom_kills",
							  (json_int_t)S.oom_kills));
		for (struct client *c = S.clients; c; c = c->next)
			if (c->kind == C_WAIT)
				client_send(c, line, strlen(line));
	}
}

static void on_oom_fd(void)
{
	char buf[4096];
	while (read(S.oom_fd, buf, sizeof(buf)) > 0)
		;
	read_oom();
}

/*
 * Let a held init exec its command. A failure (the command does not exist)
 * is told to the console clients and recorded: the init exits, and its exit
 * is reported with code 127.
 */
static int do_release(struct clbsd_err *err)
{
	if (!S.held)
		return 0;
	if (S.net_held) {
		S.release_wanted = true;
		return 0;
	}
	S.held = false;
	int fd = steal_fd(&S.release_fd);
	int r = S.rt->release(fd, err);
	if (r == 0) {
		S.started_at = time_now_ns();
		/* What is left of a prepared init (its staging directory). */
		if (S.prep)
			S.rt->discard(S.prep);
		struct clbsd_err e2;
		if (S.running && write_state(&e2) < 0)
			log_warn("shim", S.o->name, "%s", e2.msg);
		return 0;
	}
	log_error("shim", S.o->name, "start: %s", err->msg);
	S.release_error = xstrdup(err->msg);
	autofree char *msg = xasprintf("clbsd: %s\n", err->msg);
	shim_log_write(&S.log, SHIM_STDERR, msg, strlen(msg));
	for (struct client *c = S.clients; c; c = c->next)
		if (c->kind == C_ATTACH)
			client_frame(c, PROTO_STDERR, msg, strlen(msg));
	/* The runtime says the init exits; make sure of it. */
	if (!S.init.reaped)
		kill(S.init.pid, SIGKILL);
	return r;
}

/* ---- requests ---- */

static void reap_children(void);

static void req_state(struct client *c)
{
	char started[48];
	fmt_time(S.started_at, started, sizeof(started));
	json_t *o;
	const char *status = S.init.reaped ? "exited" : S.held ? "created" : "running";
	if (S.init.reaped) {
		o = exit_info();
	} else {
		o = json_pack("{s:i,s:i,s:b,s:I,s:n}", "exit_code", 0, "signal", 0, "oom_killed",
			      S.oom_kills > 0, "oom_kills", (json_int_t)S.oom_kills, "finished_at");
	}
	json_object_set_new(o, "ok", json_true());
	json_object_set_new(o, "status", json_string(status));
	json_object_set_new(o, "pid", json_integer(S.init.pid));
	json_object_set_new(o, "shim_pid", json_integer(getpid()));
	json_object_set_new(o, "started_at", json_string(started));
	json_object_set_new(o, "tty", json_boolean(S.spec.tty));
	client_line(c, o);
	c->closing = true;
	client_flush(c);
}

static void req_kill(struct client *c, const struct shim_req *q)
{
	if (S.init.reaped) {
		client_error(c, "the container has exited; nothing to signal");
		return;
	}
	if (q->all) {
		struct clbsd_err err;
		if (S.rt->kill_all(&S.spec, q->signal, &err) < 0) {
			client_error(c, err.msg);
			return;
		}
	} else if (kill(S.init.pid, q->signal) < 0 && errno != ESRCH) {
		autofree char *m =
			xasprintf("signal %s to the init (pid %d): %s", signal_name(q->signal),
				  (int)S.init.pid, strerror(errno));
		client_error(c, m);
		return;
	}
	log_info("shim", S.o->name, "sent SIG%s to %s", signal_name(q->signal),
		 q->all ? "every process" : "the init");
	client_line(c, json_pack("{s:b}", "ok", 1));
	c->closing = true;
	client_flush(c);
}

static void replay_fn(int stream, const char *data, size_t len, void *ctx)
{
	client_frame(ctx, stream == SHIM_STDERR ? PROTO_STDERR : PROTO_STDOUT, data, len);
}

/*
 * A console session opened or closed: the daemon (its wait connection)
 * records it in the audit log, with the peer the kernel names.
 */
static void tell_console(struct client *c, const char *what)
{
	if (!c->peer_known)
		return;
	json_t *ev = json_pack("{s:s,s:s,s:I,s:I,s:I,s:b}", "event", "console", "what", what, "uid",
			       (json_int_t)c->peer.uid, "gid", (json_int_t)c->peer.gid, "pid",
			       (json_int_t)c->peer.pid, "stdin", c->in_ok);
	if (strcmp(what, "closed") == 0)
		json_object_set_new(ev, "duration_ms",
				    json_integer((time_mono_ns() - c->attached) / 1000000));
	autofree char *line = json_line(ev);
	for (struct client *w = S.clients; w; w = w->next)
		if (w->kind == C_WAIT)
			client_send(w, line, strlen(line));
}

static void req_attach(struct client *c, const struct shim_req *q)
{
	c->kind = C_ATTACH;
	c->proc = &S.init;
	c->in_ok = q->in;
	c->peer_known = sys_peer_cred(c->fd, &c->peer) == 0;
	c->attached = time_mono_ns();
	tell_console(c, "opened");
	client_line(c, json_pack("{s:b,s:b}", "ok", 1, "tty", S.spec.tty));
	if (S.spec.tty)
		proc_resize(&S.init, q->rows, q->cols);
	if (q->replay)
		shim_ring_visit(&S.ring, replay_fn, c);
	if (q->release && S.held) {
		struct clbsd_err err;
		do_release(&err);
	}
}

static void req_exec(struct client *c, const struct shim_req *q)
{
	if (S.init.reaped) {
		client_error(c, "the container has exited; cannot exec into it");
		return;
	}
	if (S.held) {
		client_error(c, "the container has not started yet (it waits for release)");
		return;
	}
	struct clbsd_err err;
	struct proc *p = xmalloc(sizeof(*p));
	proc_init(p);
	struct rt_stdio io;
	if (proc_stdio(p, q->tty, q->in, q->rows, q->cols, &io, &err) < 0) {
		stdio_close(&io);
		proc_close(p);
		free(p);
		client_error(c, err.msg);
		return;
	}
	char **env = shim_env_merge(S.spec.env, q->env);
	struct rt_exec ex = {
		.argv = q->argv,
		.env = env,
		.cwd = q->cwd	    ? q->cwd
		       : S.spec.cwd ? S.spec.cwd
				    : "/",
		.uid = q->has_uid ? q->uid : S.spec.uid,
		.gid = q->has_gid ? q->gid : S.spec.gid,
		.tty = q->tty,
	};
	/* The child must not inherit a blocked SIGCHLD. */
	sigprocmask(SIG_UNBLOCK, &S.chld, NULL);
	int r = S.rt->exec(&S.spec, S.init.pid, &ex, &io, &p->pid, &err);
	sigprocmask(SIG_BLOCK, &S.chld, NULL);
	strv_free(env);
	stdio_close(&io);
	if (r < 0) {
		proc_close(p);
		free(p);
		client_error(c, err.msg);
		return;
	}
	log_info("shim", S.o->name, "exec %s: pid %d", q->argv[0], (int)p->pid);
	p->owner = c;
	p->next = S.execs;
	S.execs = p;
	c->kind = C_EXEC;
	c->proc = p;
	c->in_ok = q->in;
	client_line(c, json_pack("{s:b,s:i}", "ok", 1, "pid", (int)p->pid));
	/*
	 * A SIGCHLD that came while it was unblocked went to the default
	 * action, not to the signal descriptor: a short process may already be a zombie.
	 */
	reap_children();
}

/*
 * The daemon made the container's network (or could not: q->error). The
 * init goes on once a release was also asked for (at once without --hold).
 */
static void req_net_ready(struct client *c, const struct shim_req *q)
{
	struct clbsd_err err;
	if (!S.net_held) {
		client_line(c, json_pack("{s:b}", "ok", 1));
	} else if (q->error) {
		S.net_held = false;
		S.held = false;
		xclose(&S.release_fd);
		log_error("shim", S.o->name, "start: %s", q->error);
		free(S.release_error);
		S.release_error = xasprintf("network: %s", q->error);
		autofree char *msg = xasprintf("clbsd: %s\n", S.release_error);
		shim_log_write(&S.log, SHIM_STDERR, msg, strlen(msg));
		for (struct client *a = S.clients; a; a = a->next)
			if (a->kind == C_ATTACH)
				client_frame(a, PROTO_STDERR, msg, strlen(msg));
		if (!S.init.reaped)
			kill(S.init.pid, SIGKILL);
		client_line(c, json_pack("{s:b}", "ok", 1));
	} else {
		S.net_held = false;
		if (S.release_wanted && do_release(&err) < 0) {
			client_error(c, err.msg);
			return;
		}
		client_line(c, json_pack("{s:b}", "ok", 1));
	}
	c->closing = true;
	client_flush(c);
}

static void handle_request(struct client *c, const char *line)
{
	struct shim_req q;
	struct clbsd_err err;
	if (shim_req_parse(line, &q, &err) < 0) {
		client_error(c, err.msg);
		return;
	}
	switch (q.op) {
	case SHIM_OP_STATE:
		req_state(c);
		break;
	case SHIM_OP_WAIT:
		c->kind = C_WAIT;
		client_line(c, json_pack("{s:b}", "ok", 1));
		break;
	case SHIM_OP_RELEASE:
		if (do_release(&err) < 0) {
			client_error(c, err.msg);
		} else {
			client_line(c, json_pack("{s:b}", "ok", 1));
			c->closing = true;
			client_flush(c);
		}
		break;
	case SHIM_OP_KILL:
		req_kill(c, &q);
		break;
	case SHIM_OP_ATTACH:
		req_attach(c, &q);
		break;
	case SHIM_OP_EXEC:
		req_exec(c, &q);
		break;
	case SHIM_OP_NET_READY:
		req_net_ready(c, &q);
		break;
	}
	shim_req_release(&q);
}

/* ---- client input: the request line, then frames ---- */

static void frame_done(struct client *c)
{
	struct proc *p = c->proc;
	switch (c->hdr[0]) {
	case PROTO_STDIN_CLOSE:
		if (p && c->in_ok && !p->tty) {
			p->close_in = true;
			proc_write_in(p);
		}
		break;
	case PROTO_RESIZE:
		if (p && c->rs_len == 4)
			proc_resize(p, (uint16_t)(c->rs[0] << 8 | c->rs[1]),
				    (uint16_t)(c->rs[2] << 8 | c->rs[3]));
		break;
	}
	c->hdr_len = 0;
	c->rs_len = 0;
}

static void feed_frames(struct client *c, const char *data, size_t len)
{
	while (len > 0 && !c->dead) {
		if (c->hdr_len < PROTO_HDR_LEN) {
			size_t take = PROTO_HDR_LEN - c->hdr_len;
			if (take > len)
				take = len;
			memcpy(c->hdr + c->hdr_len, data, take);
			c->hdr_len += take;
			data += take;
			len -= take;
			if (c->hdr_len < PROTO_HDR_LEN)
				return;
			c->left = proto_hdr_len(c->hdr);
			char t = (char)c->hdr[0];
			if ((t != PROTO_STDIN && t != PROTO_STDIN_CLOSE && t != PROTO_RESIZE) ||
			    c->left > PROTO_FRAME_MAX || (t == PROTO_RESIZE && c->left != 4)) {
				client_drop(c, "protocol error: bad frame from client");
				return;
			}
			if (c->left == 0)
				frame_done(c);
			continue;
		}
		size_t take = c->left < len ? c->left : len;
		if (c->hdr[0] == PROTO_STDIN && c->in_ok && c->proc)
			proc_input(c->proc, data, take);
		else if (c->hdr[0] == PROTO_RESIZE) {
			memcpy(c->rs + c->rs_len, data, take);
			c->rs_len += take;
		}
		c->left -= (uint32_t)take;
		data += take;
		len -= take;
		if (c->left == 0)
			frame_done(c);
	}
}

static void client_read(struct client *c)
{
	char buf[READ_CHUNK];
	ssize_t n;
	do
		n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n < 0) {
		client_drop(c, strerror(errno));
		return;
	}
	if (n == 0) {
		c->rd_eof = true;
		if (c->kind == C_REQ) {
			client_drop(c, NULL);
		} else if (c->kind == C_EXEC && c->proc && !c->proc->tty && c->in_ok) {
			/* A half-close ends the exec'd process's input. */
			c->proc->close_in = true;
			proc_write_in(c->proc);
		}
		return;
	}
	if (c->kind != C_REQ) {
		if (c->kind == C_ATTACH || c->kind == C_EXEC)
			feed_frames(c, buf, (size_t)n);
		return;
	}
	buf_add(&c->in, buf, (size_t)n);
	char *nl = memchr(c->in.data, '\n', c->in.len);
	if (!nl) {
		if (c->in.len > PROTO_LINE_MAX)
			client_error(c, "request line too long (the limit is 64 KiB)");
		return;
	}
	*nl = '\0';
	size_t rest_off = (size_t)(nl + 1 - c->in.data);
	struct buf rest = BUF_INIT;
	buf_add(&rest, c->in.data + rest_off, c->in.len - rest_off);
	handle_request(c, c->in.data);
	buf_release(&c->in);
	if (!c->dead && (c->kind == C_ATTACH || c->kind == C_EXEC) && rest.len)
		feed_frames(c, rest.data, rest.len);
	buf_release(&rest);
}

static void on_accept(void)
{
	for (;;) {
		int fd = accept4(S.listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn("shim", S.o->name, "accept: %s", strerror(errno));
			return;
		}
		if (S.n_clients >= MAX_CLIENTS) {
			static const char msg[] =
				"{\"ok\":false,\"error\":\"too many clients of this shim\"}\n";
			send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			close(fd);
			continue;
		}
		struct client *c = xcalloc(1, sizeof(*c));
		c->fd = fd;
		c->kind = C_REQ;
		c->since = time_mono_ns();
		buf_init(&c->in);
		buf_init(&c->out);
		c->next = S.clients;
		S.clients = c;
		S.n_clients++;
	}
}

static void reap_clients(void)
{
	struct client **pp = &S.clients;
	while (*pp) {
		struct client *c = *pp;
		if (!c->dead) {
			pp = &c->next;
			continue;
		}
		*pp = c->next;
		buf_release(&c->in);
		buf_release(&c->out);
		free(c);
		S.n_clients--;
	}
}

/* ---- children ---- */

/* Reap every child that has exited, and note the ones we care about. */
static void reap_children(void)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0)
			return;
		int sig;
		int code = exit_code_of(status, &sig);
		if (pid == S.init.pid && !S.init.reaped) {
			S.init.reaped = true;
			S.init.status = status;
			S.finished_at = time_now_ns();
			S.exit_deadline = time_mono_ns() + EXIT_DRAIN_NS;
			log_info("shim", S.o->name, "init (pid %d) exited with code %d", (int)pid,
				 code);
			buf_release(&S.init.inbuf);
			if (!S.init.tty)
				xclose(&S.init.in);
			continue;
		}
		struct proc *p;
		for (p = S.execs; p; p = p->next)
			if (p->pid == pid && !p->reaped)
				break;
		if (!p) {
			log_debug("shim", S.o->name, "reaped pid %d (code %d)", (int)pid, code);
			continue;
		}
		log_debug("shim", S.o->name, "exec pid %d exited with code %d", (int)pid, code);
		p->reaped = true;
		p->status = status;
		p->quiet_until = time_mono_ns() + EXEC_QUIET_NS;
	}
}

static void on_sigchld(void)
{
	while (sys_sigfd_next(S.sig_fd) > 0)
		;
	reap_children();
}

/* An exec'd process is done once it is reaped and its output drained. */
static void finish_execs(int64_t now)
{
	struct proc **pp = &S.execs;
	while (*pp) {
		struct proc *p = *pp;
		if (proc_throttled(p) && p->reaped)
			p->quiet_until = now + EXEC_QUIET_NS;
		if (!p->reaped || (proc_out_open(p) && now < p->quiet_until)) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		if (p->owner) {
			int sig;
			int code = exit_code_of(p->status, &sig);
			p->owner->proc = NULL;
			client_exit_frame(p->owner, code, sig, false);
		}
		proc_close(p);
		free(p);
	}
}

/* ---- poll set ---- */

enum ptype { P_LISTEN, P_SIG, P_OOM, P_PROC, P_CLIENT };

struct pref {
	enum ptype type;
	void *ptr;
	int stream;
};

struct pollset {
	struct pollfd *fds;
	struct pref *refs;
	size_t n, cap;
};

static void ps_add(struct pollset *ps, int fd, short events, enum ptype type, void *ptr, int stream)
{
	if (ps->n == ps->cap) {
		ps->cap = ps->cap ? ps->cap * 2 : 16;
		ps->fds = xrealloc(ps->fds, ps->cap * sizeof(*ps->fds));
		ps->refs = xrealloc(ps->refs, ps->cap * sizeof(*ps->refs));
	}
	ps->fds[ps->n] = (struct pollfd){.fd = fd, .events = events};
	ps->refs[ps->n] = (struct pref){type, ptr, stream};
	ps->n++;
}

static void ps_add_proc(struct pollset *ps, struct proc *p)
{
	bool rd = !proc_throttled(p);
	if (p->tty) {
		short ev = 0;
		if (rd && p->out[0] >= 0)
			ev |= POLLIN;
		if (p->inbuf.len)
			ev |= POLLOUT;
		if (ev)
			ps_add(ps, p->master, ev, P_PROC, p, 0);
		return;
	}
	for (int i = 0; i < 2; i++)
		if (rd && p->out[i] >= 0)
			ps_add(ps, p->out[i], POLLIN, P_PROC, p, i);
	if (p->in >= 0 && p->inbuf.len)
		ps_add(ps, p->in, POLLOUT, P_PROC, p, -1);
}

static void ps_build(struct pollset *ps)
{
	ps->n = 0;
	if (S.listen_fd >= 0)
		ps_add(ps, S.listen_fd, POLLIN, P_LISTEN, NULL, 0);
	ps_add(ps, S.sig_fd, POLLIN, P_SIG, NULL, 0);
	if (S.oom_fd >= 0 && !S.init.reaped)
		ps_add(ps, S.oom_fd, POLLIN, P_OOM, NULL, 0);
	ps_add_proc(ps, &S.init);
	for (struct proc *p = S.execs; p; p = p->next)
		ps_add_proc(ps, p);
	for (struct client *c = S.clients; c; c = c->next) {
		if (c->dead)
			continue;
		short ev = 0;
		bool throttled = c->proc && c->proc->inbuf.len >= STDIN_HIGH;
		if (!c->rd_eof && !c->closing && !throttled)
			ev |= POLLIN;
		if (pending(c))
			ev |= POLLOUT;
		ps_add(ps, c->fd, ev, P_CLIENT, c, 0);
	}
}

static void ps_dispatch(struct pollset *ps)
{
	for (size_t i = 0; i < ps->n; i++) {
		short re = ps->fds[i].revents;
		if (!re)
			continue;
		struct pref *ref = &ps->refs[i];
		switch (ref->type) {
		case P_LISTEN:
			on_accept();
			break;
		case P_SIG:
			on_sigchld();
			break;
		case P_OOM:
			on_oom_fd();
			break;
		case P_PROC: {
			struct proc *p = ref->ptr;
			if (re & POLLOUT)
				proc_write_in(p);
			if (ref->stream >= 0 && (re & (POLLIN | POLLHUP | POLLERR))) {
				if (p->out[ref->stream] >= 0)
					proc_read(p, ref->stream);
			} else if (ref->stream < 0 && (re & (POLLHUP | POLLERR))) {
				/* The stdin reader is gone. */
				buf_release(&p->inbuf);
				xclose(&p->in);
			}
			break;
		}
		case P_CLIENT: {
			struct client *c = ref->ptr;
			if (c->dead)
				break;
			if (re & POLLIN)
				client_read(c);
			if (!c->dead && (re & POLLOUT))
				client_flush(c);
			if (!c->dead && (re & (POLLHUP | POLLERR)) && !(re & POLLIN))
				client_drop(c, NULL);
			break;
		}
		}
	}
}

/* ---- exit ---- */

static void final_flush(void)
{
	int64_t until = time_mono_ns() + FINAL_FLUSH_NS;
	for (;;) {
		struct pollset ps = {0};
		for (struct client *c = S.clients; c; c = c->next)
			if (!c->dead && pending(c))
				ps_add(&ps, c->fd, POLLOUT, P_CLIENT, c, 0);
		int64_t left = until - time_mono_ns();
		if (ps.n == 0 || left <= 0) {
			free(ps.fds);
			free(ps.refs);
			return;
		}
		int r = poll(ps.fds, ps.n, (int)(left / 1000000) + 1);
		for (size_t i = 0; r > 0 && i < ps.n; i++) {
			struct client *c = ps.refs[i].ptr;
			if (ps.fds[i].revents & POLLOUT)
				client_flush(c);
			else if (ps.fds[i].revents)
				client_drop(c, NULL);
		}
		free(ps.fds);
		free(ps.refs);
	}
}

/*
 * The init has exited and its output is drained. Order matters: the state
 * file comes first (a daemon that restarts later learns the exit from it),
 * then the cgroup and the socket go, and only then are the waiters told, so
 * a daemon that restarts the container at once finds its name free.
 */
static void finalize(void)
{
	struct clbsd_err err;
	shim_log_close(&S.log);
	read_oom();
	int sig;
	int code = exit_code_of(S.init.status, &sig);
	if (S.release_error)
		code = 127;
	bool oom = S.oom_kills > 0;
	if (write_state(&err) < 0)
		log_error("shim", S.o->name, "%s", err.msg);
	/*
	 * Attached clients (an attached `clbsd run`) learn the exit code now;
	 * removing the cgroup need not delay them. Waiters (the daemon) hear
	 * only after the cleanup below, so a restart cannot race it.
	 */
	for (struct client *c = S.clients; c; c = c->next)
		if (!c->dead && c->kind == C_ATTACH)
			client_exit_frame(c, code, sig, oom);
	xclose(&S.oom_fd);
	if (S.prep)
		S.rt->discard(S.prep);
	bool cg_removed = S.rt->destroy(&S.spec, &err) == 0;
	if (!cg_removed)
		log_warn("shim", S.o->name, "remove cgroup: %s", err.msg);
	xclose(&S.listen_fd);
	unlink(S.o->sock_path);

	json_t *ev = exit_info();
	json_object_del(ev, "oom_kills");
	json_object_set_new(ev, "event", json_string("exit"));
	json_object_set_new(ev, "cgroup_removed", json_boolean(cg_removed));
	autofree char *line = json_line(ev);
	for (struct client *c = S.clients; c; c = c->next) {
		if (c->dead)
			continue;
		if (c->kind == C_WAIT) {
			client_send(c, line, strlen(line));
			c->closing = true;
			client_flush(c);
		} else if (c->kind == C_ATTACH) {
			continue; /* told above */
		} else {
			/* Exec sessions whose process outlived the drain, and idle
			 * connections: nothing more will come. */
			c->closing = true;
			client_flush(c);
		}
	}
	final_flush();
	/* Everyone knows: now the kernel may take the mounts down. */
	xclose(&S.mnt_hold);
	log_info("shim", S.o->name, "exited with code %d%s; shim done", code,
		 oom ? " (OOM killed)" : "");
}

/* ---- start ---- */

static int listen_on(const char *path, struct clbsd_err *err)
{
	int fd = shim_listen(path, err);
	if (fd < 0)
		return fd;
	S.sock_bound = true;
	S.listen_fd = fd;
	return 0;
}

static void ready(const char *line)
{
	int fd = S.o->ready_fd;
	if (fd < 0)
		return;
	int r = write_all(fd, line, strlen(line));
	if (r < 0)
		log_warn("shim", S.o->name, "write ready report: %s", strerror(-r));
	close(fd);
}

static int start_failed(struct clbsd_err *err)
{
	log_error("shim", S.o->name, "start failed: %s", err->msg);
	autofree char *line = json_line(json_pack("{s:b,s:s}", "ok", 0, "error", err->msg));
	if (S.init.pid > 0 && !S.init.reaped) {
		kill(S.init.pid, SIGKILL);
		while (waitpid(S.init.pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	struct clbsd_err e2;
	if (S.created && S.rt->destroy(&S.spec, &e2) < 0)
		log_warn("shim", S.o->name, "remove cgroup: %s", e2.msg);
	if (S.prep)
		S.rt->discard(S.prep);
	xclose(&S.mnt_hold);
	if (S.sock_bound)
		unlink(S.o->sock_path);
	/* Clients that connected early (an attach after a pooled start) hear why. */
	if (S.listen_fd >= 0) {
		int fd;
		while ((fd = accept4(S.listen_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
			write_all(fd, line, strlen(line));
			close(fd);
		}
	}
	ready(line);
	return 1;
}

/*
 * The shim's own setup that needs the cgroup but not the init: the log
 * files, SIGCHLD and OOM notifications. With a prepared init it runs while
 * the init mounts its rootfs (see rt_ops.create_prepared).
 */
static void side_setup(void *arg)
{
	(void)arg;
	const struct shim_opts *o = S.o;
	clbsd_err_init(&S.side_err);
	S.side_rc =
		shim_log_open(&S.log, o->log_dir, o->log_max_size, o->log_max_files, &S.side_err);
	if (S.side_rc < 0)
		return;
	S.log.strip_cr = S.spec.tty;

	sigemptyset(&S.chld);
	sigaddset(&S.chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &S.chld, NULL);
	S.sig_fd = sys_sigfd_open(&S.chld, &S.side_err);
	if (S.sig_fd < 0) {
		S.side_rc = S.sig_fd;
		return;
	}

	struct clbsd_err oe;
	if (S.rt->oom_fd(&S.spec, &S.oom_fd, &oe) < 0) {
		S.oom_fd = -1;
		log_warn("shim", o->name, "no OOM notifications: %s", oe.msg);
	} else {
		fd_set_cloexec(S.oom_fd);
		fd_set_nonblock(S.oom_fd, true);
	}
}

static void hold_mounts(void)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/ns/mnt", (int)S.init.pid);
	S.mnt_hold = open(p, O_RDONLY | O_CLOEXEC);
	if (S.mnt_hold < 0)
		log_debug("shim", S.o->name, "hold the mount namespace: %s", strerror(errno));
}

static int setup(struct clbsd_err *err)
{
	const struct shim_opts *o = S.o;
	autofree char *json = NULL;
	int r = fs_read_file(o->spec_path, &json, NULL, err);
	if (r < 0)
		return clbsd_err_prefix(err, "read spec");
	r = rt_spec_from_json(json, &S.spec, err);
	if (r < 0)
		return clbsd_err_prefix(err, "spec %s", o->spec_path);
	S.log.fd = -1;
	if (S.listen_fd < 0 && (r = listen_on(o->sock_path, err)) < 0)
		return r;

	struct rt_stdio io;
	r = proc_stdio(&S.init, S.spec.tty, S.spec.stdin_open, 0, 0, &io, err);
	if (r < 0) {
		stdio_close(&io);
		return clbsd_err_prefix(err, "container %s", o->name);
	}
	bool prepared = S.prep && S.prep->pid > 0;
	if (prepared)
		r = S.rt->create_prepared(S.prep, o->spec_path, &S.spec, &io, side_setup, NULL,
					  &S.init.pid, &S.release_fd, err);
	else
		r = S.rt->create(&S.spec, &io, &S.init.pid, &S.release_fd, err);
	stdio_close(&io);
	if (r < 0)
		return clbsd_err_prefix(err, "container %s", o->name);
	S.created = true;
	S.started_at = time_now_ns();
	if (!prepared)
		side_setup(NULL);
	if (S.side_rc < 0) {
		*err = S.side_err;
		return S.side_rc;
	}
	hold_mounts();

	S.net_held = o->net_hold;
	if (o->hold) {
		S.held = true;
		S.hold_until = time_mono_ns() + HOLD_NS;
	} else {
		S.held = true;
		r = do_release(err);
		if (r < 0)
			return clbsd_err_prefix(err, "container %s", o->name);
	}
	r = write_state(err);
	if (r < 0)
		return r;
	return 0;
}

static int64_t next_deadline(void)
{
	int64_t d = -1;
#define CONSIDER(t)                                                                                \
	do {                                                                                       \
		int64_t _t = (t);                                                                  \
		if (_t >= 0 && (d < 0 || _t < d))                                                  \
			d = _t;                                                                    \
	} while (0)
	if (S.held && !S.release_wanted)
		CONSIDER(S.hold_until);
	CONSIDER(shim_log_deadline(&S.log));
	CONSIDER(S.trim_at);
	if (S.init.reaped)
		CONSIDER(S.exit_deadline);
	for (struct proc *p = S.execs; p; p = p->next)
		if (p->reaped)
			CONSIDER(p->quiet_until);
	for (struct client *c = S.clients; c; c = c->next)
		if (c->kind == C_REQ && !c->dead)
			CONSIDER(c->since + REQ_TIMEOUT_NS);
#undef CONSIDER
	return d;
}

static void timers(int64_t now)
{
	if (S.trim_at >= 0 && now >= S.trim_at) {
		sys_trim_memory();
		S.trim_at = -1;
	}
	if (S.held && !S.release_wanted && now >= S.hold_until) {
		struct clbsd_err err;
		log_info("shim", S.o->name, "no client released the container in 10 s; starting");
		do_release(&err);
	}
	shim_log_tick(&S.log, now);
	finish_execs(now);
	for (struct client *c = S.clients; c; c = c->next)
		if (c->kind == C_REQ && !c->dead && now - c->since >= REQ_TIMEOUT_NS)
			client_drop(c, "no request within 30 s");
}

static bool init_done(int64_t now)
{
	if (!S.init.reaped)
		return false;
	/* Exec'd processes die with the PID namespace: let their X frames go out first. */
	if (!proc_out_open(&S.init) && !S.execs)
		return true;
	if (now >= S.exit_deadline) {
		log_warn("shim", S.o->name,
			 "output or exec'd processes still open 2 s after the init exited; "
			 "finishing anyway");
		return true;
	}
	return false;
}

int shim_run(const struct shim_opts *o, struct rt_prepared *prep, int listen_fd)
{
	memset(&S, 0, sizeof(S));
	S.o = o;
	S.rt = rt_default_ops();
	S.sig_fd = S.oom_fd = S.release_fd = S.mnt_hold = -1;
	S.listen_fd = listen_fd;
	S.sock_bound = listen_fd >= 0;
	S.prep = prep;
	proc_init(&S.init);
	shim_ring_init(&S.ring, (size_t)o->scrollback);

	struct clbsd_err err;
	clbsd_err_init(&err);
	if (setup(&err) < 0)
		return start_failed(&err);

	autofree char *line = json_line(json_pack("{s:b,s:i,s:i}", "ok", 1, "pid", (int)S.init.pid,
						  "shim_pid", (int)getpid()));
	ready(line);
	S.running = true;
	log_info("shim", o->name, "container started: init pid %d%s", (int)S.init.pid,
		 S.held ? " (held until a client releases it)" : "");
	/* Off the start's critical path: the first trim comes a second later. */
	S.trim_at = time_mono_ns() + TRIM_START_NS;

	struct pollset ps = {0};
	/* Children may have exited before the signal descriptor existed. */
	reap_children();
	for (;;) {
		int64_t now = time_mono_ns();
		timers(now);
		reap_clients();
		if (init_done(now))
			break;
		ps_build(&ps);
		int64_t d = next_deadline();
		int timeout = -1;
		if (d >= 0)
			timeout = d <= now ? 0 : (int)((d - now + 999999) / 1000000);
		int n = poll(ps.fds, ps.n, timeout);
		if (n < 0 && errno != EINTR) {
			log_error("shim", o->name, "poll: %s", strerror(errno));
			sleep(1);
			continue;
		}
		if (n > 0)
			ps_dispatch(&ps);
		/* After work (an exec, a client, output), trim again once things are quiet. */
		if (n > 0 && S.trim_at < 0)
			S.trim_at = time_mono_ns() + TRIM_IDLE_NS;
	}
	free(ps.fds);
	free(ps.refs);
	finalize();
	return 0;
}
