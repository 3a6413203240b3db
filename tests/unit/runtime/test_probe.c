/*
 * The network health probe (rt_ops.probe) for real: a forked child plays the
 * container's init, alone in a new network namespace with loopback up,
 * serving canned answers on a few ports. The probe must join that namespace
 * (the host itself has nothing on those ports), report what it found in one
 * line, exit 0 only when healthy, honour its timeout, and never make the
 * caller wait. Needs root for the namespace; without it only the input
 * checks run and the rest print "skip".
 */
#include "runtime/runtime.h"
#include "test.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MS(n) ((int64_t)(n)*1000000LL)

/* What the fake container serves on each port. */
enum { P_OK = 47811, P_FAIL, P_SILENT, P_HANGUP, P_REDIRECT, P_GARBAGE, P_CLOSED };

static const struct {
	int port;
	const char *answer; /* NULL: accept and never answer */
	bool hangup;	    /* accept and close at once */
} serve[] = {
	{P_OK, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false},
	{P_FAIL, "HTTP/1.0 503 Service Unavailable\r\n\r\ndown", false},
	{P_SILENT, NULL, false},
	{P_HANGUP, NULL, true},
	{P_REDIRECT, "HTTP/1.1 302 Found\r\nLocation: /login\r\n\r\n", false},
	{P_GARBAGE, "SSH-2.0-OpenSSH_9.2\r\n", false},
};

static pid_t server = -1;
static int requests_fd = -1; /* the requests P_OK received, each ending in a NUL */

static int lo_up(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	int rc = s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0 ? -1 : 0;
	ifr.ifr_flags |= IFF_UP;
	if (rc == 0 && ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		rc = -1;
	if (s >= 0)
		close(s);
	return rc;
}

static int listen_on(int port)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 64) < 0)
		return -1;
	return s;
}

/* The fake container's init: never returns. */
static void serve_forever(int ready, int requests)
{
	int ls[ARRAY_SIZE(serve)];
	int e = 0;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (unshare(CLONE_NEWNET) < 0 || lo_up() < 0)
		e = errno ? errno : EIO;
	for (size_t i = 0; !e && i < ARRAY_SIZE(serve); i++)
		if ((ls[i] = listen_on(serve[i].port)) < 0)
			e = errno;
	if (write(ready, &e, sizeof(e)) != sizeof(e) || e)
		_exit(1);
	close(ready);

	for (;;) {
		struct pollfd pfd[ARRAY_SIZE(serve)];
		for (size_t i = 0; i < ARRAY_SIZE(serve); i++)
			pfd[i] = (struct pollfd){.fd = ls[i], .events = POLLIN};
		if (poll(pfd, ARRAY_SIZE(serve), -1) < 0)
			continue;
		for (size_t i = 0; i < ARRAY_SIZE(serve); i++) {
			if (!(pfd[i].revents & POLLIN))
				continue;
			int c = accept4(ls[i], NULL, NULL, SOCK_CLOEXEC);
			if (c < 0)
				continue;
			if (!serve[i].answer) {
				/* Silent: hold the connection open, never read or answer. */
				if (serve[i].hangup)
					close(c);
				continue;
			}
			char req[4096];
			size_t n = 0;
			ssize_t r;
			while (n < sizeof(req) - 1 &&
			       (r = read(c, req + n, sizeof(req) - 1 - n)) > 0) {
				n += (size_t)r;
				req[n] = '\0';
				if (strstr(req, "\r\n\r\n"))
					break;
			}
			if (n > 0) {
				if (serve[i].port == P_OK)
					write_all(requests, req, n + 1);
				write_all(c, serve[i].answer, strlen(serve[i].answer));
			}
			close(c);
		}
	}
}

/* Start the fake container; 0, or a reason to skip. */
static const char *start_server(void)
{
	if (geteuid() != 0)
		return "needs root (network namespaces)";
	int rp[2], qp[2];
	if (pipe2(rp, O_CLOEXEC) < 0 || pipe2(qp, O_CLOEXEC) < 0)
		return "pipe failed";
	server = fork();
	if (server < 0)
		return "fork failed";
	if (server == 0) {
		close(rp[0]);
		close(qp[0]);
		serve_forever(rp[1], qp[1]);
	}
	close(rp[1]);
	close(qp[1]);
	requests_fd = qp[0];
	fd_set_nonblock(requests_fd, true);
	int e = -1;
	if (read(rp[0], &e, sizeof(e)) != sizeof(e) || e != 0) {
		static char why[128];
		snprintf(why, sizeof(why), "cannot make a network namespace: %s",
			 e > 0 ? strerror(e) : "server died");
		close(rp[0]);
		kill(server, SIGKILL);
		waitpid(server, NULL, 0);
		server = -1;
		return why;
	}
	close(rp[0]);
	return NULL;
}

struct outcome {
	int rc;
	struct clbsd_err err;
	bool cloexec, nonblock;
	int status;	/* from waitpid */
	char line[512]; /* without its newline */
	int lines;	/* newline-terminated lines received */
	int64_t call_ns, total_ns;
};

static void probe_start(pid_t pid, enum rt_probe_kind kind, int port, const char *path,
			int64_t timeout_ns, struct outcome *o, int *fd, pid_t *child)
{
	memset(o, 0, sizeof(*o));
	struct rt_probe p = {.kind = kind, .port = port, .path = path, .timeout_ns = timeout_ns};
	int64_t t0 = time_mono_ns();
	o->rc = rt_default_ops()->probe(pid, &p, fd, child, &o->err);
	o->call_ns = time_mono_ns() - t0;
	if (o->rc == 0) {
		o->cloexec = fcntl(*fd, F_GETFD) & FD_CLOEXEC;
		o->nonblock = fcntl(*fd, F_GETFL) & O_NONBLOCK;
	}
}

/* What the caller does: watch the fd until end-of-file, then reap the child. */
static void probe_finish(int fd, pid_t child, int64_t t0, struct outcome *o)
{
	size_t n = 0;
	char buf[sizeof(o->line)];
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (poll(&pfd, 1, 10000) <= 0)
			break; /* a hung probe: the checks below fail */
		ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
		if (r < 0 && errno == EAGAIN)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	for (size_t i = 0; i < n; i++)
		o->lines += buf[i] == '\n';
	if (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	snprintf(o->line, sizeof(o->line), "%s", buf);
	waitpid(child, &o->status, 0);
	o->total_ns = time_mono_ns() - t0;
}

static void probe(enum rt_probe_kind kind, int port, const char *path, int64_t timeout_ns,
		  struct outcome *o)
{
	int fd = -1;
	pid_t child = -1;
	int64_t t0 = time_mono_ns();
	probe_start(server, kind, port, path, timeout_ns, o, &fd, &child);
	if (o->rc == 0)
		probe_finish(fd, child, t0, o);
}

static bool exited(const struct outcome *o, int code)
{
	return WIFEXITED(o->status) && WEXITSTATUS(o->status) == code;
}

/* Whether the host (this process's namespace) accepts connections on port. */
static bool host_accepts(int port)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bool ok = connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(s);
	return ok;
}

TEST(tcp_open_port_connects_in_the_container)
{
	struct outcome o;
	probe(RT_PROBE_TCP, P_OK, NULL, MS(2000), &o);
	CHECK_INT(o.rc, 0);
	CHECK(o.cloexec);
	CHECK(o.nonblock);
	CHECK_STR(o.line, "connected to 127.0.0.1:47811");
	CHECK_INT(o.lines, 1);
	CHECK(exited(&o, 0));
	/* The port exists only in the container's namespace: the probe joined it. */
	CHECK(!host_accepts(P_OK));
}

TEST(tcp_closed_port_is_refused)
{
	struct outcome o;
	probe(RT_PROBE_TCP, P_CLOSED, NULL, MS(2000), &o);
	CHECK_INT(o.rc, 0);
	CHECK_STR(o.line, "connection refused");
	CHECK(exited(&o, 1));
}

TEST(http_200_is_healthy_and_the_request_is_plain)
{
	char drain[4096];
	while (read(requests_fd, drain, sizeof(drain)) > 0)
		;
	struct outcome o;
	probe(RT_PROBE_HTTP, P_OK, "/healthz?full=1", MS(2000), &o);
	CHECK_INT(o.rc, 0);
	CHECK_STR(o.line, "HTTP 200 OK");
	CHECK_INT(o.lines, 1);
	CHECK(exited(&o, 0));
	char req[4096];
	ssize_t n = read(requests_fd, req, sizeof(req) - 1);
	CHECK(n > 0);
	req[n] = '\0';
	CHECK_STR(req, "GET /healthz?full=1 HTTP/1.0\r\nHost: localhost\r\n"
		       "User-Agent: clbsd-health\r\n\r\n");
}

TEST(http_503_is_unhealthy_with_the_status)
{
	struct outcome o;
	probe(RT_PROBE_HTTP, P_FAIL, "/", MS(2000), &o);
	CHECK_INT(o.rc, 0);
	CHECK_STR(o.line, "HTTP 503 Service Unavailable");
	CHECK(exited(&o, 1));
}

TEST(http_redirect_is_healthy)
{
	struct outcome o;
	probe(RT_PROBE_HTTP, P_REDIRECT, "/", MS(2000), &o);
	CHECK_STR(o.line, "HTTP 302 Found");
	CHECK(exited(&o, 0));
}

TEST(http_closed_port_is_refused)
{
	struct outcome o;
	probe(RT_PROBE_HTTP, P_CLOSED, "/", MS(2000), &o);
	CHECK_STR(o.line, "connection refused");
	CHECK(exited(&o, 1));
}

TEST(http_hangup_and_garbage_are_unhealthy)
{
	struct outcome o;
	probe(RT_PROBE_HTTP, P_HANGUP, "/", MS(2000), &o);
	CHECK(strstr(o.line, "connection") != NULL);
	CHECK(exited(&o, 1));
	probe(RT_PROBE_HTTP, P_GARBAGE, "/", MS(2000), &o);
	CHECK_STR(o.line, "not an HTTP response: \"SSH-2.0-OpenSSH_9.2\"");
	CHECK(exited(&o, 1));
}

TEST(silent_server_times_out_without_blocking_the_caller)
{
	struct outcome o;
	probe(RT_PROBE_HTTP, P_SILENT, "/", MS(500), &o);
	CHECK_INT(o.rc, 0);
	/* The op only forks: the caller's loop is not held up by the probe. */
	CHECK(o.call_ns < MS(200));
	CHECK_STR(o.line, "timed out after 500ms waiting for the HTTP response");
	CHECK_INT(o.lines, 1);
	CHECK(exited(&o, 1));
	CHECK(o.total_ns >= MS(450));
	CHECK(o.total_ns < MS(1500));
}

TEST(probe_does_not_hold_the_callers_other_fds)
{
	/*
	 * A pipe of the caller's (a hook's output, say) must see end-of-file when
	 * the caller closes its write end, even while a probe is running.
	 */
	int p[2];
	CHECK(pipe(p) == 0);
	struct outcome o;
	int fd = -1;
	pid_t child = -1;
	int64_t t0 = time_mono_ns();
	probe_start(server, RT_PROBE_HTTP, P_SILENT, "/", MS(1000), &o, &fd, &child);
	CHECK_INT(o.rc, 0);
	usleep(100000); /* let the child close what it inherited */
	close(p[1]);
	struct pollfd pfd = {.fd = p[0], .events = POLLIN};
	int r = poll(&pfd, 1, 300);
	char c;
	ssize_t got = r == 1 ? read(p[0], &c, 1) : -1;
	close(p[0]);
	probe_finish(fd, child, t0, &o);
	CHECK_INT(r, 1);
	CHECK_INT(got, 0);
	CHECK(exited(&o, 1));
}

TEST(parallel_probes_are_independent)
{
	enum { N = 16 };
	struct outcome o[N];
	int fd[N];
	pid_t child[N];
	int64_t t0 = time_mono_ns();
	for (int i = 0; i < N; i++)
		probe_start(server, RT_PROBE_TCP, i % 2 ? P_CLOSED : P_OK, NULL, MS(2000), &o[i],
			    &fd[i], &child[i]);
	for (int i = 0; i < N; i++) {
		CHECK_INT(o[i].rc, 0);
		probe_finish(fd[i], child[i], t0, &o[i]);
	}
	for (int i = 0; i < N; i++) {
		CHECK_STR(o[i].line, i % 2 ? "connection refused" : "connected to 127.0.0.1:47811");
		CHECK(exited(&o[i], i % 2));
	}
}

TEST(invalid_input_is_refused)
{
	const struct rt_probe bad[] = {
		{.kind = RT_PROBE_TCP, .port = 0, .timeout_ns = MS(1000)},
		{.kind = RT_PROBE_TCP, .port = 70000, .timeout_ns = MS(1000)},
		{.kind = RT_PROBE_TCP, .port = 80, .timeout_ns = 0},
		{.kind = RT_PROBE_HTTP, .port = 80, .path = NULL, .timeout_ns = MS(1000)},
		{.kind = RT_PROBE_HTTP, .port = 80, .path = "healthz", .timeout_ns = MS(1000)},
		{.kind = RT_PROBE_HTTP, .port = 80, .path = "/a b", .timeout_ns = MS(1000)},
		{.kind = RT_PROBE_HTTP,
		 .port = 80,
		 .path = "/x HTTP/1.0\r\nX-Evil: 1",
		 .timeout_ns = MS(1000)},
		{.kind = (enum rt_probe_kind)7, .port = 80, .timeout_ns = MS(1000)},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct clbsd_err err;
		clbsd_err_init(&err);
		int fd = 1234;
		pid_t pid = 4321;
		CHECK_INT(rt_default_ops()->probe(getpid(), &bad[i], &fd, &pid, &err), -EINVAL);
		CHECK_INT(err.kind, CLBSD_E_INVALID);
		CHECK(strstr(err.msg, "health probe") != NULL);
		/* Out-parameters are written only on success. */
		CHECK_INT(fd, 1234);
		CHECK_INT(pid, 4321);
	}
}

TEST(gone_container_is_a_conflict)
{
	pid_t dead = fork();
	if (dead == 0)
		_exit(0);
	CHECK(dead > 0);
	waitpid(dead, NULL, 0);
	struct rt_probe p = {.kind = RT_PROBE_TCP, .port = 80, .timeout_ns = MS(1000)};
	struct clbsd_err err;
	clbsd_err_init(&err);
	int fd = -1;
	pid_t pid = -1;
	CHECK_INT(rt_default_ops()->probe(dead, &p, &fd, &pid, &err), -ENOENT);
	CHECK_INT(err.kind, CLBSD_E_CONFLICT);
	CHECK(strstr(err.msg, "is the container running?") != NULL);
	CHECK_INT(fd, -1);
}

#define RUN_ROOT(name)                                                                             \
	do {                                                                                       \
		if (skip)                                                                          \
			printf("skip %s.%s: %s\n", test_prog, #name, skip);                        \
		else                                                                               \
			RUN(name);                                                                 \
	} while (0)

TEST_MAIN_BEGIN("probe")
signal(SIGPIPE, SIG_IGN);
RUN(invalid_input_is_refused);
RUN(gone_container_is_a_conflict);
const char *skip = start_server();
RUN_ROOT(tcp_open_port_connects_in_the_container);
RUN_ROOT(tcp_closed_port_is_refused);
RUN_ROOT(http_200_is_healthy_and_the_request_is_plain);
RUN_ROOT(http_503_is_unhealthy_with_the_status);
RUN_ROOT(http_redirect_is_healthy);
RUN_ROOT(http_closed_port_is_refused);
RUN_ROOT(http_hangup_and_garbage_are_unhealthy);
RUN_ROOT(silent_server_times_out_without_blocking_the_caller);
RUN_ROOT(probe_does_not_hold_the_callers_other_fds);
RUN_ROOT(parallel_probes_are_independent);
if (server > 0) {
	kill(server, SIGKILL);
	waitpid(server, NULL, 0);
}
TEST_MAIN_END
