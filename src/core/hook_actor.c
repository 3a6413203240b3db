#include "hook_actor.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* ---- hooks ---- */

struct hook {
	struct event_base *base;
	pid_t pid;
	int out_fd;
	struct event *out_ev;
	struct event *timer;
	struct event *poll; /* waits for the exit once output is done */
	struct buf output;
	bool truncated;
	bool timed_out;
	bool eof;
	int64_t started;
	hook_done_fn done;
	void *arg;
	struct hook *next, *prev; /* among those running, for hook_forget_all() */
};

static struct hook *running;

static void hook_free(struct hook *h)
{
	if (h->prev)
		h->prev->next = h->next;
	else
		running = h->next;
	if (h->next)
		h->next->prev = h->prev;
	if (h->out_ev)
		event_free(h->out_ev);
	if (h->timer)
		event_free(h->timer);
	if (h->poll)
		event_free(h->poll);
	if (h->out_fd >= 0)
		close(h->out_fd);
	buf_release(&h->output);
	free(h);
}

static void hook_finish(struct hook *h, int status)
{
	struct hook_result r = {0};
	if (WIFEXITED(status))
		r.exit_code = WEXITSTATUS(status);
	else if (WIFSIGNALED(status))
		r.exit_code = 128 + WTERMSIG(status);
	else
		r.exit_code = 255;
	r.timed_out = h->timed_out;
	r.output = h->output.data ? h->output.data : (char *)(uintptr_t) "";
	r.output_len = h->output.len;
	r.truncated = h->truncated;
	r.duration_ns = time_mono_ns() - h->started;
	h->done(&r, h->arg);
	hook_free(h);
}

/* The hook's process is polled for its exit once its output has ended. */
static void on_poll(evutil_socket_t fd, short what, void *arg)
{
	struct hook *h = arg;
	int status;
	pid_t r = waitpid(h->pid, &status, WNOHANG);
	if (r == h->pid || (r < 0 && errno == ECHILD)) {
		hook_finish(h, r == h->pid ? status : 255 << 8);
		return;
	}
	struct timeval tv = {0, 5000};
	evtimer_add(h->poll, &tv);
}

static void on_output(evutil_socket_t fd, short what, void *arg)
{
	struct hook *h = arg;
	char b[8192];
	ssize_t n = read(fd, b, sizeof(b));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0) {
		size_t room = HOOK_OUTPUT_MAX - h->output.len;
		if ((size_t)n > room) {
			h->truncated = true;
			n = (ssize_t)room;
		}
		buf_add(&h->output, b, (size_t)n);
		return;
	}
	/* EOF (or an error): every writer closed; now wait for the exit. */
	event_del(h->out_ev);
	h->eof = true;
	on_poll(-1, 0, h);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct hook *h = arg;
	h->timed_out = true;
	/* The hook leads its own process group: take its children too. */
	kill(-h->pid, SIGKILL);
	kill(h->pid, SIGKILL);
}

int hook_run(struct event_base *base, char *const argv[], char *const env[], int64_t timeout_ns,
	     hook_done_fn done, void *arg, struct clbsd_err *err)
{
	if (!argv || !argv[0] || !argv[0][0])
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "hook: empty command");
	/*
	 * The environment is built before fork: the daemon has threads, and a
	 * child of a threaded process must not allocate before exec.
	 */
	struct strv envp = STRV_INIT;
	for (size_t i = 0; env && env[i]; i++)
		strv_push(&envp, env[i]);
	for (char **e = environ; e && *e; e++) {
		size_t kl = strcspn(*e, "=");
		bool overridden = false;
		for (size_t i = 0; env && env[i]; i++)
			if (strncmp(env[i], *e, kl) == 0 && env[i][kl] == '=')
				overridden = true;
		if (!overridden)
			strv_push(&envp, *e);
	}
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		strv_release(&envp);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "hook: pipe");
	}
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		strv_release(&envp);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, e, "hook %s: fork", argv[0]);
	}
	if (pid == 0) {
		setpgid(0, 0);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		for (int s = 1; s < NSIG; s++)
			signal(s, SIG_DFL);
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(p[1], 1);
		dup2(p[1], 2);
		execvpe(argv[0], argv, envp.v);
		dprintf(2, "hook: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(p[1]);
	strv_release(&envp);
	struct hook *h = xcalloc(1, sizeof(*h));
	h->base = base;
	h->pid = pid;
	h->out_fd = p[0];
	h->started = time_mono_ns();
	h->done = done;
	h->arg = arg;
	h->next = running;
	if (running)
		running->prev = h;
	running = h;
	fd_set_nonblock(p[0], true);
	h->out_ev = event_new(base, p[0], EV_READ | EV_PERSIST, on_output, h);
	event_add(h->out_ev, NULL);
	h->poll = evtimer_new(base, on_poll, h);
	if (timeout_ns > 0) {
		h->timer = evtimer_new(base, on_timeout, h);
		struct timeval tv = {.tv_sec = (time_t)(timeout_ns / 1000000000LL),
				     .tv_usec = (suseconds_t)((timeout_ns % 1000000000LL) / 1000)};
		evtimer_add(h->timer, &tv);
	}
	return 0;
}

void hook_forget_all(struct event_base *base, void (*free_arg)(void *arg))
{
	for (struct hook *h = running, *next; h; h = next) {
		next = h->next;
		if (h->base != base)
			continue;
		if (free_arg)
			free_arg(h->arg);
		hook_free(h);
	}
}

/* ---- actors ---- */

struct job {
	actor_job_fn fn;
	void *arg;
	struct job *next;
};

struct actor {
	char *name;
	struct job *head, *tail;
	size_t n;
	bool busy;
	bool in_run; /* jobs finishing synchronously run iteratively, not recursively */
};

struct actor *actor_new(const char *name)
{
	struct actor *a = xcalloc(1, sizeof(*a));
	a->name = xstrdup(name);
	return a;
}

static void run_next(struct actor *a)
{
	if (a->in_run)
		return;
	a->in_run = true;
	while (!a->busy && a->head) {
		struct job *j = a->head;
		a->head = j->next;
		if (!a->head)
			a->tail = NULL;
		a->n--;
		a->busy = true;
		actor_job_fn fn = j->fn;
		void *arg = j->arg;
		free(j);
		fn(a, arg);
	}
	a->in_run = false;
}

void actor_post(struct actor *a, actor_job_fn fn, void *arg)
{
	struct job *j = xcalloc(1, sizeof(*j));
	j->fn = fn;
	j->arg = arg;
	if (a->tail)
		a->tail->next = j;
	else
		a->head = j;
	a->tail = j;
	a->n++;
	run_next(a);
}

void actor_done(struct actor *a)
{
	a->busy = false;
	run_next(a);
}

size_t actor_pending(const struct actor *a)
{
	return a->n;
}

bool actor_busy(const struct actor *a)
{
	return a->busy;
}

const char *actor_name(const struct actor *a)
{
	return a->name;
}

void actor_free(struct actor *a)
{
	actor_free_with(a, NULL);
}

void actor_free_with(struct actor *a, void (*free_arg)(void *arg))
{
	if (!a)
		return;
	while (a->head) {
		struct job *j = a->head;
		a->head = j->next;
		if (free_arg)
			free_arg(j->arg);
		free(j);
	}
	free(a->name);
	free(a);
}
