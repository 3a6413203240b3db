/*
 * Network health probes (rt_ops.probe): a TCP connect or an HTTP GET to
 * 127.0.0.1:port inside a container's network namespace.
 *
 * The caller is the daemon's event loop, which must never block, and may be
 * multi-threaded. So the probe runs in a forked child: the parent opens the
 * namespace, formats the request and every fixed message, creates the pipe
 * and forks; the child uses only async-signal-safe calls (no malloc, no
 * stdio), joins the network namespace (only that one: a socket belongs to
 * the namespace it is created in, and nothing else of the container is
 * needed), runs the probe against a deadline with non-blocking sockets and
 * poll(), writes one line and exits 0 (healthy) or 1.
 *
 * An alarm() one to two seconds after the deadline is the backstop should
 * anything block regardless; its handler writes the time-out line, so the caller
 * always gets a line unless it kills the child itself. The child closes
 * every inherited fd but its pipe, so it does not hold another pipe's write
 * end open (which would delay that pipe's end-of-file) while it runs.
 */
#include "runtime/linux/rt_linux.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PATH_MAX_LEN 1024 /* longest HTTP path accepted */
#define LINE_MAX_LEN 256  /* longest result line, '\n' included */
#define STATUS_MAX   256  /* bytes of the response read for the status line */
#define REASON_MAX   100  /* bytes of the reason phrase reported */

/* Everything the child needs, prepared before fork so that it never allocates. */
struct job {
	enum rt_probe_kind kind;
	struct sockaddr_in addr;
	char req[PATH_MAX_LEN + 128];
	size_t req_len;
	char connected[48]; /* "connected to 127.0.0.1:8080" */
	char timed_out[48]; /* "timed out after 2s" */
	int64_t timeout_ns;
	int nsfd, out;
};

/* ---- parent ---- */

static bool path_ok(const char *path)
{
	if (!path || path[0] != '/' || strlen(path) > PATH_MAX_LEN)
		return false;
	for (const char *c = path; *c; c++)
		if (*c <= ' ' || *c >= 0x7f)
			return false;
	return true;
}

static void fmt_duration(char *buf, size_t len, int64_t ns)
{
	if (ns % 1000000000 == 0)
		snprintf(buf, len, "%llds", (long long)(ns / 1000000000));
	else
		snprintf(buf, len, "%lldms", (long long)((ns + 999999) / 1000000));
}

static int prepare(const struct rt_probe *p, struct job *j, struct clbsd_err *err)
{
	if (p->kind != RT_PROBE_TCP && p->kind != RT_PROBE_HTTP)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"health probe: unknown kind %d", (int)p->kind);
	if (p->port < 1 || p->port > 65535)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"health probe: port %d is out of range (use 1-65535)",
					p->port);
	if (p->timeout_ns <= 0)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"health probe: the timeout must be positive");
	if (p->kind == RT_PROBE_HTTP && !path_ok(p->path))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"health probe: HTTP path \"%.64s\" must start with '/' and "
					"be at most %d printable ASCII characters without spaces "
					"(percent-encode the others)",
					p->path ? p->path : "", PATH_MAX_LEN);

	memset(j, 0, sizeof(*j));
	j->kind = p->kind;
	j->addr.sin_family = AF_INET;
	j->addr.sin_port = htons((uint16_t)p->port);
	j->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	j->timeout_ns = p->timeout_ns;
	if (p->kind == RT_PROBE_HTTP) {
		int n = snprintf(j->req, sizeof(j->req),
				 "GET %s HTTP/1.0\r\nHost: localhost\r\nUser-Agent: "
				 "clbsd-health\r\n\r\n",
				 p->path);
		j->req_len = (size_t)n;
	}
	snprintf(j->connected, sizeof(j->connected), "connected to 127.0.0.1:%d", p->port);
	char d[24];
	fmt_duration(d, sizeof(d), p->timeout_ns);
	snprintf(j->timed_out, sizeof(j->timed_out), "timed out after %s", d);
	j->nsfd = j->out = -1;
	return 0;
}

/* ---- child: async-signal-safe only from here on ---- */

struct line {
	char s[LINE_MAX_LEN];
	size_t n;
};

static void add(struct line *l, const char *s)
{
	while (*s && l->n < sizeof(l->s) - 1)
		l->s[l->n++] = *s++;
}

static void add_uint(struct line *l, unsigned v)
{
	char d[12];
	size_t n = 0;
	do
		d[n++] = (char)('0' + v % 10);
	while ((v /= 10) && n < sizeof(d));
	while (n && l->n < sizeof(l->s) - 1)
		l->s[l->n++] = d[--n];
}

static const char *errno_text(int e)
{
	switch (e) {
	case ECONNREFUSED:
		return "connection refused";
	case ECONNRESET:
		return "connection reset by peer";
	case EPIPE:
		return "connection closed by peer";
	case ETIMEDOUT:
		return "connection timed out";
	case ENETUNREACH:
		return "network is unreachable";
	case EHOSTUNREACH:
		return "no route to host";
	case EADDRNOTAVAIL:
		return "address not available";
	}
	/* A static string from glibc's table: no locale, no allocation. */
	const char *s = strerrordesc_np(e);
	return s ? s : "unknown error";
}

/* For the SIGALRM backstop: the child's copy of the pipe and the line. */
static int alarm_fd = -1;
static const char *alarm_line;
static size_t alarm_len;

static void on_alarm(int sig)
{
	(void)sig;
	if (write(alarm_fd, alarm_line, alarm_len) < 0) {
		/* Nothing more to do: exit with the failure status anyway. */
	}
	_exit(1);
}

static __attribute__((noreturn)) void finish(int out, struct line *l, int code)
{
	/* The line is final: the alarm must not add a second one. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGALRM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	l->s[l->n++] = '\n';
	ssize_t w;
	do
		w = write(out, l->s, l->n);
	while (w < 0 && errno == EINTR);
	_exit(code);
}

static __attribute__((noreturn)) void fail(int out, const char *what, int e)
{
	struct line l = {.n = 0};
	add(&l, what);
	if (e) {
		if (*what)
			add(&l, ": ");
		add(&l, errno_text(e));
	}
	finish(out, &l, 1);
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Wait for events on fd until the deadline: 1 ready, 0 timed out, -errno. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - mono_ns();
		if (left <= 0)
			return 0;
		struct pollfd pfd = {.fd = fd, .events = events};
		int64_t ms = (left + 999999) / 1000000;
		int r = poll(&pfd, 1, ms > 1000000000 ? 1000000000 : (int)ms);
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

/*
 * Default dispositions and an empty mask: the parent's handlers (libevent's
 * write to its own signal pipe, say) must not run in the child, and the
 * alarm must get through whatever the parent blocked.
 */
static void reset_signals(void)
{
	for (int sig = 1; sig < NSIG; sig++) {
		struct sigaction sa;
		if (sigaction(sig, NULL, &sa) < 0)
			continue;
		if (sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN)
			continue;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_DFL;
		sigaction(sig, &sa, NULL);
	}
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Keep only `out` (moved to fd 3) and 0-2. Returns the new fd. */
static int close_others(int out)
{
	if (out != 3) {
		if (dup2(out, 3) < 0)
			return out; /* keep what we have; closing the rest matters less */
		out = 3;
	}
	if (close_range(4, ~0U, 0) < 0) {
		struct rlimit rl;
		int max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536
				  ? (int)rl.rlim_cur
				  : 65536;
		for (int fd = 4; fd < max; fd++)
			close(fd);
	}
	return out;
}

/* Read up to the end of the status line; returns the bytes read. */
static size_t read_status(int s, char *buf, size_t cap, int out, const struct job *j,
			  int64_t deadline)
{
	size_t n = 0;
	while (n < cap && (n == 0 || !memchr(buf, '\n', n))) {
		int r = wait_fd(s, POLLIN, deadline);
		if (r == 0) {
			struct line l = {.n = 0};
			add(&l, j->timed_out);
			add(&l, " waiting for the HTTP response");
			finish(out, &l, 1);
		}
		if (r < 0)
			fail(out, "wait for the HTTP response", -r);
		ssize_t got = read(s, buf + n, cap - n);
		if (got == 0)
			break;
		if (got < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			fail(out, "read the HTTP response", errno);
		}
		n += (size_t)got;
	}
	return n;
}

static __attribute__((noreturn)) void http_verdict(int out, const char *buf, size_t n)
{
	struct line l = {.n = 0};
	if (n == 0) {
		add(&l, "connection closed without an HTTP response");
		finish(out, &l, 1);
	}
	size_t end = 0;
	while (end < n && buf[end] != '\r' && buf[end] != '\n')
		end++;
	/* "HTTP/" digit "." digit SP 3DIGIT [SP reason] */
	size_t i = 5;
	bool ok = end >= 12 && memcmp(buf, "HTTP/", 5) == 0;
	while (ok && i < end && (buf[i] == '.' || (buf[i] >= '0' && buf[i] <= '9')))
		i++;
	ok = ok && i > 5 && i + 4 <= end && buf[i] == ' ';
	unsigned code = 0;
	for (size_t k = i + 1; ok && k < i + 4; k++) {
		if (buf[k] < '0' || buf[k] > '9')
			ok = false;
		else
			code = code * 10 + (unsigned)(buf[k] - '0');
	}
	ok = ok && code >= 100 && (i + 4 == end || buf[i + 4] == ' ');
	if (!ok) {
		add(&l, "not an HTTP response: \"");
		for (size_t k = 0; k < end && k < 40 && l.n < sizeof(l.s) - 3; k++)
			l.s[l.n++] = buf[k] >= ' ' && buf[k] < 0x7f ? buf[k] : '?';
		add(&l, "\"");
		finish(out, &l, 1);
	}
	add(&l, "HTTP ");
	add_uint(&l, code);
	size_t r = i + 5;
	if (r < end) {
		l.s[l.n++] = ' ';
		for (size_t k = r; k < end && k < r + REASON_MAX && l.n < sizeof(l.s) - 1; k++)
			l.s[l.n++] = buf[k] >= ' ' && buf[k] < 0x7f ? buf[k] : '?';
	}
	finish(out, &l, code >= 200 && code < 400 ? 0 : 1);
}

static __attribute__((noreturn)) void child(const struct job *j)
{
	int64_t deadline = mono_ns() + j->timeout_ns;
	int out = j->out;
	reset_signals();
	if (setns(j->nsfd, CLONE_NEWNET) < 0)
		fail(out, "cannot enter the container's network namespace", errno);
	out = close_others(out);

	/* The backstop's line, complete with its newline, for one write(). */
	static char tl[sizeof(j->timed_out) + 1];
	alarm_len = strlen(j->timed_out);
	memcpy(tl, j->timed_out, alarm_len);
	tl[alarm_len++] = '\n';
	alarm_line = tl;
	alarm_fd = out;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	int64_t secs = j->timeout_ns / 1000000000 + 2;
	alarm(secs > 1000000 ? 1000000 : (unsigned)secs);

	int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0)
		fail(out, "socket", errno);
	if (connect(s, (const struct sockaddr *)&j->addr, sizeof(j->addr)) < 0) {
		if (errno != EINPROGRESS)
			fail(out, "", errno);
		int r = wait_fd(s, POLLOUT, deadline);
		if (r == 0)
			fail(out, j->timed_out, 0);
		if (r < 0)
			fail(out, "wait for the connection", -r);
		int e = 0;
		socklen_t len = sizeof(e);
		if (getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
			e = errno;
		if (e)
			fail(out, "", e);
	}
	if (j->kind == RT_PROBE_TCP) {
		struct line l = {.n = 0};
		add(&l, j->connected);
		finish(out, &l, 0);
	}

	size_t sent = 0;
	while (sent < j->req_len) {
		ssize_t w = send(s, j->req + sent, j->req_len - sent, MSG_NOSIGNAL);
		if (w >= 0) {
			sent += (size_t)w;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			fail(out, "send the HTTP request", errno);
		int r = wait_fd(s, POLLOUT, deadline);
		if (r == 0)
			fail(out, j->timed_out, 0);
		if (r < 0)
			fail(out, "wait to send the HTTP request", -r);
	}
	char buf[STATUS_MAX];
	size_t n = read_status(s, buf, sizeof(buf), out, j, deadline);
	http_verdict(out, buf, n);
}

int lx_probe(pid_t init_pid, const struct rt_probe *p, int *fd_out, pid_t *pid_out,
	     struct clbsd_err *err)
{
	struct job j;
	int rc = prepare(p, &j, err);
	if (rc < 0)
		return rc;
	if (init_pid <= 0)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"health probe: invalid init pid %d", (int)init_pid);

	char ns[64];
	snprintf(ns, sizeof(ns), "/proc/%d/ns/net", (int)init_pid);
	autoclose int nsfd = open(ns, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0)
		return clbsd_err_set(err, errno == ENOENT ? CLBSD_E_CONFLICT : CLBSD_E_INTERNAL,
				     errno, "health probe: open %s (is the container running?)",
				     ns);
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "health probe: pipe");
	autoclose int rd = pfd[0];
	autoclose int wr = pfd[1];
	if ((rc = fd_set_nonblock(rd, true)) < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, rc, "health probe: set O_NONBLOCK");

	pid_t pid = fork();
	if (pid < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "health probe: fork");
	if (pid == 0) {
		j.nsfd = nsfd;
		j.out = wr;
		child(&j);
	}
	*fd_out = steal_fd(&rd);
	*pid_out = pid;
	return 0;
}
