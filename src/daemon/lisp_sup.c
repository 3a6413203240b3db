/*
 * The Lisp control plane under clbsdd: when the configuration says
 * (host :lisp (...)), the daemon runs clbsd-lisp, sends its output to the
 * daemon's log (component "lisp"), restarts it with backoff when it exits
 * (core/backoff.h: 1 s doubling up to 60 s, reset after a minute up), and
 * restarts it when its options change; without :lisp it is stopped.
 *
 * Invariants: one child at most; it is reaped here (waitpid on its own
 * pid, woken by a pidfd), never by the shims' reaper; everything runs on
 * the loop thread.
 */
#include "daemon.h"
#include "core/backoff.h"
#include "core/config.h"
#include "sys/sys.h"
#include "util/json.h"
#include "util/util.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define LISP_BACKOFF_BASE_MS 1000
#define LISP_BACKOFF_MAX_MS  60000
#define LISP_STABLE_NS	     (60LL * 1000000000LL)

struct lisp_sup {
	pid_t pid;
	int pidfd;
	struct event *exit_ev;
	struct bufferevent *out;
	struct event *timer; /* the restart after a backoff */
	unsigned attempt;
	int64_t started_ns;
	char **argv;  /* what runs (or ran last) */
	char **want;  /* what the configuration asks for; NULL: nothing */
	int restarts; /* starts after the first */
	int last_status;
	char *last_exit; /* "exited with 1", "killed by SIGKILL"; NULL before any exit */
};

static char **lisp_argv(struct daemon *d, const struct conf_host *h)
{
	struct strv v = STRV_INIT;
	if (h->lisp_command) {
		strv_push(&v, h->lisp_command);
	} else {
		autofree char *self = sys_self_exe();
		char *slash = self ? strrchr(self, '/') : NULL;
		autofree char *near =
			slash ? xasprintf("%.*s/clbsd-lisp", (int)(slash - self), self) : NULL;
		strv_push(&v, near && access(near, X_OK) == 0 ? near : "clbsd-lisp");
	}
	strv_push(&v, "--socket");
	strv_push(&v, d->socket);
	if (h->lisp_swank) {
		const char *colon = strrchr(h->lisp_swank, ':');
		autofree char *ip = xstrndup(h->lisp_swank, (size_t)(colon - h->lisp_swank));
		strv_push(&v, "--swank-interface");
		strv_push(&v, ip);
		strv_push(&v, "--swank-port");
		strv_push(&v, colon + 1);
	}
	if (h->lisp_init) {
		strv_push(&v, "--init");
		strv_push(&v, h->lisp_init);
	}
	return v.v;
}

static bool same_argv(char **a, char **b)
{
	if (!a || !b)
		return a == b;
	size_t i = 0;
	for (; a[i] && b[i]; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return !a[i] && !b[i];
}

static void spawn(struct daemon *d);

static char *join(char **v)
{
	struct buf b = BUF_INIT;
	for (size_t i = 0; v && v[i]; i++) {
		if (i)
			buf_addc(&b, ' ');
		buf_adds(&b, v[i]);
	}
	buf_adds(&b, "");
	return buf_detach(&b, NULL);
}

static void on_output(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	char *line;
	size_t n;
	while ((line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF))) {
		log_info("lisp", NULL, "%s", line);
		free(line);
	}
}

static void on_output_event(struct bufferevent *bev, short what, void *arg)
{
	struct lisp_sup *s = arg;
	on_output(bev, arg);
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		bufferevent_free(bev);
		s->out = NULL;
	}
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	if (d->lisp && d->lisp->want && !d->lisp->pid)
		spawn(d);
}

static void on_child_exit(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	struct lisp_sup *s = d->lisp;
	int st = 0;
	if (waitpid(s->pid, &st, WNOHANG) == 0)
		return; /* not yet */
	event_free(s->exit_ev);
	s->exit_ev = NULL;
	close(s->pidfd);
	s->pidfd = -1;
	s->pid = 0;
	s->last_status = st;
	free(s->last_exit);
	char sb[16];
	s->last_exit = WIFSIGNALED(st)
			       ? xasprintf("killed by %s", ctr_signal_name(WTERMSIG(st), sb))
			       : xasprintf("exited with %d", WEXITSTATUS(st));
	if (!s->want) {
		log_info("lisp", NULL, "control plane stopped (%s)", s->last_exit);
		return;
	}
	if (!same_argv(s->argv, s->want)) {
		log_info("lisp", NULL, "control plane %s; starting it with its new options",
			 s->last_exit);
		s->attempt = 0;
		spawn(d);
		return;
	}
	if (time_now_ns() - s->started_ns > LISP_STABLE_NS)
		s->attempt = 0;
	int64_t ms = backoff_delay(LISP_BACKOFF_BASE_MS, LISP_BACKOFF_MAX_MS, s->attempt++);
	log_warn("lisp", NULL, "control plane %s; restarting in %lld ms", s->last_exit,
		 (long long)ms);
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	evtimer_add(s->timer, &tv);
}

static void spawn(struct daemon *d)
{
	struct lisp_sup *s = d->lisp;
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		log_error("lisp", NULL, "cannot start the control plane: pipe: %s",
			  strerror(errno));
		return;
	}
	strv_free(s->argv);
	s->argv = strv_dup(s->want);
	pid_t pid = fork();
	if (pid < 0) {
		log_error("lisp", NULL, "cannot start the control plane: fork: %s",
			  strerror(errno));
		close(p[0]);
		close(p[1]);
		return;
	}
	if (pid == 0) {
		setsid();
		/* A daemon killed outright leaves no control plane behind to clash with the next. */
		sys_die_with_parent(SIGTERM);
		dup2(p[1], 1);
		dup2(p[1], 2);
		int null = open("/dev/null", O_RDONLY);
		if (null >= 0)
			dup2(null, 0);
		sigset_t all;
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		signal(SIGPIPE, SIG_DFL);
		execvp(s->argv[0], s->argv);
		static const char msg[] = "cannot run the control plane's command\n";
		ssize_t w = write(2, msg, sizeof(msg) - 1);
		(void)w;
		_exit(127);
	}
	close(p[1]);
	s->pid = pid;
	s->started_ns = time_now_ns();
	if (s->last_exit)
		s->restarts++;
	s->pidfd = sys_pid_watch_fd(pid);
	if (s->pidfd >= 0) {
		s->exit_ev = event_new(d->base, s->pidfd, EV_READ | EV_PERSIST, on_child_exit, d);
		event_add(s->exit_ev, NULL);
	}
	evutil_make_socket_nonblocking(p[0]);
	s->out = bufferevent_socket_new(d->base, p[0], BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(s->out, on_output, NULL, on_output_event, s);
	bufferevent_enable(s->out, EV_READ);
	autofree char *cmd = join(s->argv);
	log_info("lisp", NULL, "control plane started (pid %d): %s", (int)pid, cmd);
}

void lisp_sync(struct daemon *d)
{
	/* A pass in progress keeps its configuration; the new one is next. */
	const struct conf *c = d->decl.next ? d->decl.next : d->decl.conf;
	char **want = c && c->host.lisp_set ? lisp_argv(d, &c->host) : NULL;
	if (!d->lisp) {
		if (!want)
			return;
		d->lisp = xcalloc(1, sizeof(*d->lisp));
		d->lisp->pidfd = -1;
		d->lisp->timer = evtimer_new(d->base, on_timer, d);
	}
	struct lisp_sup *s = d->lisp;
	strv_free(s->want);
	s->want = want;
	if (s->pid) {
		if (!same_argv(s->argv, s->want))
			kill(s->pid, SIGTERM); /* on_child_exit starts the new one, or not */
		return;
	}
	if (s->want && !evtimer_pending(s->timer, NULL))
		spawn(d);
	else if (!s->want)
		evtimer_del(s->timer);
}

json_t *lisp_status(struct daemon *d)
{
	struct lisp_sup *s = d->lisp;
	if (!s || (!s->want && !s->pid))
		return json_null();
	autofree char *cmd = s->argv ? join(s->argv) : NULL;
	return json_pack("{s:s,s:i,s:s?,s:i,s:s?}", "state",
			 s->pid	   ? "running"
			 : s->want ? "restarting"
				   : "stopping",
			 "pid", (int)s->pid, "command", cmd, "restarts", s->restarts, "last_exit",
			 s->last_exit);
}

void lisp_release(struct daemon *d)
{
	struct lisp_sup *s = d->lisp;
	if (!s)
		return;
	if (s->pid) {
		kill(s->pid, SIGTERM);
		for (int i = 0; i < 50 && waitpid(s->pid, NULL, WNOHANG) == 0; i++)
			usleep(20000);
		if (waitpid(s->pid, NULL, WNOHANG) == 0) {
			kill(s->pid, SIGKILL);
			waitpid(s->pid, NULL, 0);
		}
	}
	if (s->exit_ev)
		event_free(s->exit_ev);
	if (s->pidfd >= 0)
		close(s->pidfd);
	if (s->out)
		bufferevent_free(s->out);
	event_free(s->timer);
	strv_free(s->argv);
	strv_free(s->want);
	free(s->last_exit);
	free(s);
	d->lisp = NULL;
}
