/*
 * A terminal session with a shim: the request line, then frames both ways
 * (src/util/proto.h). Used by run, console and interactive exec.
 *
 * The terminal is put into raw mode only while a session runs and is
 * restored on every way out: normal return, error, a terminating signal
 * (caught and turned into a loop event through a self-pipe) and exit().
 */
#include "cli.h"

#include "util/proto.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#define DETACH_KEY 0x11 /* Ctrl-Q */

static struct termios saved_tio;
static int tio_saved;
static int sig_pipe[2] = {-1, -1};

static void term_restore(void)
{
	if (tio_saved) {
		tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_tio);
		tio_saved = 0;
	}
}

static int term_raw(void)
{
	if (tcgetattr(STDIN_FILENO, &saved_tio) < 0)
		return -errno;
	struct termios raw = saved_tio;
	cfmakeraw(&raw);
	/* Keep output post-processing off as well: the container's PTY already did it. */
	if (tcsetattr(STDIN_FILENO, TCSADRAIN, &raw) < 0)
		return -errno;
	tio_saved = 1;
	static int registered;
	if (!registered) {
		atexit(term_restore);
		registered = 1;
	}
	return 0;
}

void cli_term_size(unsigned *rows, unsigned *cols)
{
	struct winsize ws = {0};
	*rows = *cols = 0;
	if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0 ||
	    ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0) {
		*rows = ws.ws_row;
		*cols = ws.ws_col;
	}
}

static void on_sig(int sig)
{
	int e = errno;
	unsigned char b = (unsigned char)sig;
	if (sig_pipe[1] >= 0)
		(void)!write(sig_pipe[1], &b, 1);
	errno = e;
}

static const int caught[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH};

static void sigs_install(struct sigaction *old)
{
	if (sig_pipe[0] < 0) {
		if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
			abort();
	}
	struct sigaction sa = {.sa_handler = on_sig};
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	for (size_t i = 0; i < ARRAY_SIZE(caught); i++)
		sigaction(caught[i], &sa, &old[i]);
}

static void sigs_restore(const struct sigaction *old)
{
	for (size_t i = 0; i < ARRAY_SIZE(caught); i++)
		sigaction(caught[i], &old[i], NULL);
}

static int send_resize(int fd)
{
	unsigned rows, cols;
	cli_term_size(&rows, &cols);
	if (!rows || !cols)
		return 0;
	unsigned char p[4] = {(unsigned char)(rows >> 8), (unsigned char)rows,
			      (unsigned char)(cols >> 8), (unsigned char)cols};
	return proto_write_frame(fd, PROTO_RESIZE, p, sizeof(p));
}

/* Decode the 'X' payload {"exit_code":N,...}. */
static int exit_frame(const char *data, size_t len)
{
	json_t *j = json_loadb(data, len, 0, NULL);
	int code = 1;
	if (j && json_is_integer(json_object_get(j, "exit_code")))
		code = (int)json_integer_value(json_object_get(j, "exit_code"));
	json_decref(j);
	return code;
}

struct session {
	const struct attach_opts *o;
	int fd;
	bool stdin_open;
	bool out_broken;
	int exit_code;
	bool exited;
	bool detached;
	int ints; /* SIGINTs forwarded */
	struct buf in;
};

/* Handle every whole frame in s->in. */
static void frames(struct session *s)
{
	size_t off = 0;
	while (s->in.len - off >= PROTO_HDR_LEN) {
		const unsigned char *h = (const unsigned char *)s->in.data + off;
		uint32_t len = proto_hdr_len(h);
		if (s->in.len - off - PROTO_HDR_LEN < len)
			break;
		const char *p = s->in.data + off + PROTO_HDR_LEN;
		switch (h[0]) {
		case PROTO_STDOUT:
		case PROTO_STDERR:
			if (!s->out_broken &&
			    write_all(h[0] == PROTO_STDOUT ? STDOUT_FILENO : STDERR_FILENO, p,
				      len) < 0 &&
			    h[0] == PROTO_STDOUT)
				s->out_broken = true;
			break;
		case PROTO_EXIT:
			s->exit_code = exit_frame(p, len);
			s->exited = true;
			break;
		default:
			break; /* unknown frames are skipped for compatibility */
		}
		off += PROTO_HDR_LEN + len;
	}
	buf_consume(&s->in, off);
}

static int loop(struct session *s, struct clbsd_err *err)
{
	const struct attach_opts *o = s->o;
	char tmp[65536];
	while (!s->exited && !s->detached) {
		struct pollfd p[3] = {
			{.fd = s->fd, .events = POLLIN},
			{.fd = sig_pipe[0], .events = POLLIN},
			{.fd = s->stdin_open ? STDIN_FILENO : -1, .events = POLLIN},
		};
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "poll");
		}
		if (p[1].revents & POLLIN) {
			unsigned char sig;
			while (read(sig_pipe[0], &sig, 1) == 1) {
				if (sig == SIGWINCH) {
					send_resize(s->fd);
					continue;
				}
				if (o->on_signal && !(sig == SIGINT && ++s->ints >= 3)) {
					o->on_signal(sig, o->ctx);
					continue;
				}
				s->exit_code = 128 + sig;
				s->detached = true;
			}
			if (s->detached)
				break;
		}
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(s->fd, tmp, sizeof(tmp));
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return clbsd_err_set(err, CLBSD_E_INTERNAL, errno,
						     "read from shim %s", o->socket);
			if (n == 0)
				return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EPIPE,
							"shim %s closed the connection before the "
							"process exited",
							o->socket);
			buf_add(&s->in, tmp, (size_t)n);
			frames(s);
			if (s->out_broken) {
				/* Like a pipeline whose reader went away. */
				s->exit_code = 128 + SIGPIPE;
				s->detached = true;
			}
			continue;
		}
		if (p[2].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(STDIN_FILENO, tmp, sizeof(tmp));
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0) {
				s->stdin_open = false;
				proto_write_frame(s->fd, PROTO_STDIN_CLOSE, NULL, 0);
				continue;
			}
			size_t len = (size_t)n;
			if (o->detach_key) {
				char *k = memchr(tmp, DETACH_KEY, len);
				if (k) {
					len = (size_t)(k - tmp);
					s->detached = true;
				}
			}
			if (len && proto_write_frame(s->fd, PROTO_STDIN, tmp, len) < 0)
				return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EPIPE,
							"shim %s went away", o->socket);
		}
	}
	return 0;
}

int cli_attach(const struct attach_opts *o, int *exit_code, struct clbsd_err *err)
{
	autoclose int fd = -1;
	autofree char *reply = NULL;
	int r = proto_request(o->socket, o->request, &fd, &reply, err);
	if (r < 0)
		return r;
	json_t *rj = json_loads(reply, 0, NULL);
	if (!rj || !json_is_true(json_object_get(rj, "ok"))) {
		const char *msg = json_string_value(json_object_get(rj, "error"));
		r = clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EPROTO, "shim %s: %s", o->socket,
				     msg ? msg : reply);
		json_decref(rj);
		return r;
	}
	json_decref(rj);

	struct sigaction old[ARRAY_SIZE(caught)];
	sigs_install(old);
	bool raw = o->raw && isatty(STDIN_FILENO) && term_raw() == 0;
	struct session s = {
		.o = o,
		.fd = fd,
		.stdin_open = o->fwd_stdin,
		.in = BUF_INIT,
	};
	/* Set the size now; SIGWINCH keeps it in step afterwards. */
	if (isatty(STDIN_FILENO) || isatty(STDOUT_FILENO))
		send_resize(fd);
	r = loop(&s, err);
	if (raw)
		term_restore();
	sigs_restore(old);
	buf_release(&s.in);
	if (r < 0)
		return r;
	*exit_code = s.exit_code;
	return s.exited ? 0 : 1;
}
