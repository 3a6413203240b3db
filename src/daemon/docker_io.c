/*
 * Interactive exec in docker containers (`clbsd exec -it`), wired to the
 * CLI the way a native container's is: the API answers with a socket and a
 * request line, and the CLI speaks the shim protocol there (src/util/
 * proto.h: 'I' stdin, 'C' close stdin, 'R' resize in; 'O', 'E' output and
 * 'X' the exit status out). Here that socket is a session of clbsdd's
 * own, <run>/docker-exec-RANDOM.sock (mode 0600, one client, gone after
 * it), served by a thread of its own that bridges it to dockerd's hijacked
 * POST /exec/ID/start (src/docker/hijack.c): raw bytes with a TTY,
 * stdcopy-framed without one; resizes go to POST /exec/ID/resize; at the
 * end GET /exec/ID/json gives the exit code. All its I/O blocks on that
 * thread, never on the loop; the loop only makes the socket and answers.
 * A client that does not come within 30 s ends the session.
 */
#include "daemon.h"
#include "docker/docker.h"
#include "util/json.h"
#include "util/proto.h"
#include "util/util.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define ACCEPT_WAIT_MS 30000

struct session {
	struct dk_client *cl;
	char *path; /* the socket */
	int listener, fd;
	char *ctr_id;
	bool attach;	/* the container's own stream, not an exec */
	json_t *create; /* exec: the POST /containers/ID/exec body */
	bool tty, stdin_open;
	char *exec_id;
	struct dk_hijack *k;
	struct dk_demux demux;
	struct buf in; /* frames from the client, not whole yet */
};

static void session_free(struct session *s)
{
	if (s->listener >= 0)
		close(s->listener);
	if (s->fd >= 0)
		close(s->fd);
	unlink(s->path);
	dk_hijack_free(s->k);
	dk_client_free(s->cl);
	json_decref(s->create);
	buf_release(&s->in);
	free(s->exec_id);
	free(s->ctr_id);
	free(s->path);
	free(s);
}

static int send_frame(struct session *s, char type, const char *data, size_t n)
{
	unsigned char h[PROTO_HDR_LEN];
	proto_hdr(h, type, (uint32_t)n);
	if (write_all(s->fd, h, sizeof(h)) < 0 || (n && write_all(s->fd, data, n) < 0))
		return -EPIPE;
	return 0;
}

static void on_stdcopy(int stream, const char *data, size_t n, void *arg)
{
	struct session *s = arg;
	send_frame(s, stream == 2 ? PROTO_STDERR : PROTO_STDOUT, data, n);
}

/* A line from the client: the request (rows and cols). */
static json_t *read_line(int fd)
{
	char line[PROTO_LINE_MAX];
	size_t n = 0;
	while (n < sizeof(line) - 1) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, ACCEPT_WAIT_MS) <= 0)
			return NULL;
		ssize_t r = read(fd, line + n, 1);
		if (r <= 0)
			return NULL;
		if (line[n] == '\n')
			break;
		n++;
	}
	return json_loadb(line, n, 0, NULL);
}

static void resize(struct session *s, unsigned rows, unsigned cols)
{
	if (!rows || !cols)
		return;
	autofree char *path =
		s->attach ? xasprintf("/containers/%s/resize?h=%u&w=%u", s->ctr_id, rows, cols)
			  : xasprintf("/exec/%s/resize?h=%u&w=%u", s->exec_id, rows, cols);
	struct clbsd_err err;
	if (dk_call(s->cl, "POST", path, NULL, 10, NULL, NULL, &err) < 0)
		log_debug("docker", NULL, "exec resize: %s", err.msg);
}

/* Whole frames from the client; false when the session should end. */
static bool client_frames(struct session *s)
{
	size_t off = 0;
	bool ok = true;
	while (ok && s->in.len - off >= PROTO_HDR_LEN) {
		const unsigned char *h = (const unsigned char *)s->in.data + off;
		uint32_t len = proto_hdr_len(h);
		if (len > PROTO_FRAME_MAX)
			return false;
		if (s->in.len - off - PROTO_HDR_LEN < len)
			break;
		const char *p = s->in.data + off + PROTO_HDR_LEN;
		switch (h[0]) {
		case PROTO_STDIN:
			ok = dk_hijack_write(s->k, p, len) == 0;
			break;
		case PROTO_RESIZE:
			if (len == 4)
				resize(s,
				       (unsigned)((unsigned char)p[0] << 8 | (unsigned char)p[1]),
				       (unsigned)((unsigned char)p[2] << 8 | (unsigned char)p[3]));
			break;
		case PROTO_STDIN_CLOSE: {
			/* End of stdin: half close, where the transport is plain (not TLS). */
			const struct dk_endpoint *ep = dk_client_endpoint(s->cl);
			if (!ep->tls_ca && !ep->tls_cert)
				shutdown(dk_hijack_fd(s->k), SHUT_WR);
			break;
		}
		default:
			break;
		}
		off += PROTO_HDR_LEN + len;
	}
	buf_consume(&s->in, off);
	return ok;
}

/*
 * Bridge until dockerd ends the stream (the process exited) or the client
 * goes (true: it detached, and the process is not touched).
 */
static bool bridge(struct session *s)
{
	char buf[65536];
	for (;;) {
		if (!dk_hijack_pending(s->k)) {
			struct pollfd p[2] = {{.fd = dk_hijack_fd(s->k), .events = POLLIN},
					      {.fd = s->fd, .events = POLLIN}};
			if (poll(p, 2, -1) < 0) {
				if (errno == EINTR)
					continue;
				return false;
			}
			if (p[1].revents) {
				ssize_t n = read(s->fd, buf, sizeof(buf));
				if (n <= 0)
					return true;
				buf_add(&s->in, buf, (size_t)n);
				if (!client_frames(s))
					return true;
			}
			if (!p[0].revents)
				continue;
		}
		ssize_t n = dk_hijack_read(s->k, buf, sizeof(buf));
		if (n == -EAGAIN)
			continue;
		if (n <= 0)
			return false;
		if (s->tty)
			send_frame(s, PROTO_STDOUT, buf, (size_t)n);
		else if (dk_demux_feed(&s->demux, buf, (size_t)n, on_stdcopy, s) < 0)
			send_frame(s, PROTO_STDOUT, buf, (size_t)n);
	}
}

/* An answer line {"ok":false,"error":...} to the client. */
static void refuse(struct session *s, const char *msg)
{
	json_t *j = json_pack("{s:b,s:s}", "ok", 0, "error", msg);
	autofree char *line = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	write_all(s->fd, line, strlen(line));
	write_all(s->fd, "\n", 1);
}

/* The session from the client's request line to the exit frame (returns at every end). */
static void serve(struct session *s)
{
	struct pollfd p = {.fd = s->listener, .events = POLLIN};
	if (poll(&p, 1, ACCEPT_WAIT_MS) <= 0)
		return;
	s->fd = accept4(s->listener, NULL, NULL, SOCK_CLOEXEC);
	close(s->listener);
	s->listener = -1;
	unlink(s->path);
	if (s->fd < 0)
		return;
	json_t *req = read_line(s->fd);
	struct clbsd_err err;
	clbsd_err_init(&err);
	autofree char *spath = NULL, *sbody = NULL;
	if (s->attach) {
		spath = xasprintf("/containers/%s/attach?stream=1&stdin=1&stdout=1&stderr=1",
				  s->ctr_id);
		sbody = xstrdup("");
	} else {
		autofree char *cpath = xasprintf("/containers/%s/exec", s->ctr_id);
		json_t *ans = NULL;
		if (dk_call(s->cl, "POST", cpath, s->create, 30, &ans, NULL, &err) < 0) {
			json_decref(req);
			refuse(s, err.msg);
			return;
		}
		s->exec_id = xstrdup(json_str(ans, "Id") ? json_str(ans, "Id") : "");
		json_decref(ans);
		spath = xasprintf("/exec/%s/start", s->exec_id);
		sbody = xasprintf("{\"Detach\":false,\"Tty\":%s}", s->tty ? "true" : "false");
	}
	if (dk_hijack_open(s->cl, spath, sbody, &s->k, &err) < 0) {
		json_decref(req);
		refuse(s, err.msg);
		return;
	}
	static const char okline[] = "{\"ok\":true,\"pid\":0}\n";
	write_all(s->fd, okline, strlen(okline));
	if (s->tty)
		resize(s, (unsigned)json_int(req, "rows", 0), (unsigned)json_int(req, "cols", 0));
	json_decref(req);
	if (bridge(s))
		return;
	/* The stream ended with the process: its exit code (the container's for attach). */
	autofree char *ipath = s->attach ? xasprintf("/containers/%s/json", s->ctr_id)
					 : xasprintf("/exec/%s/json", s->exec_id);
	json_t *ins = NULL;
	int code = 255;
	for (int i = 0; i < 100; i++) {
		json_decref(ins);
		ins = NULL;
		if (dk_call(s->cl, "GET", ipath, NULL, 10, &ins, NULL, &err) < 0)
			break;
		json_t *st = s->attach ? json_object_get(ins, "State") : ins;
		if (!json_bool(st, "Running", false)) {
			code = (int)json_int(st, "ExitCode", 255);
			break;
		}
		usleep(20000);
	}
	json_decref(ins);
	autofree char *x = xasprintf("{\"exit_code\":%d,\"signal\":0,\"oom_killed\":false}", code);
	send_frame(s, PROTO_EXIT, x, strlen(x));
}

static void *session_run(void *arg)
{
	struct session *s = arg;
	serve(s);
	session_free(s);
	return NULL;
}

/* The POST /containers/ID/exec body: as docker_ctr.c's exec, the container's workdir and user unless asked otherwise. */
static json_t *exec_body(const struct container *c, json_t *shimreq, bool tty, bool stdin_open)
{
	json_t *b =
		json_pack("{s:b,s:b,s:b,s:b,s:O,s:O}", "AttachStdin", stdin_open, "AttachStdout", 1,
			  "AttachStderr", 1, "Tty", tty, "Cmd", json_object_get(shimreq, "argv"),
			  "Env", json_object_get(shimreq, "env"));
	const char *cwd = json_str(shimreq, "cwd");
	if (cwd && *cwd)
		json_object_set_new(b, "WorkingDir", json_string(cwd));
	uint32_t uid = (uint32_t)json_int(shimreq, "uid", 0);
	uint32_t gid = (uint32_t)json_int(shimreq, "gid", 0);
	if (uid != c->cfg.uid || gid != c->cfg.gid)
		json_object_set_new(b, "User", json_sprintf("%u:%u", uid, gid));
	return b;
}

/* A session for c: an exec (shimreq) or, shimreq NULL, the container's own stream. */
static int session_start(struct container *c, json_t *shimreq, bool tty, bool stdin_open,
			 json_t **answer, struct clbsd_err *err)
{
	struct daemon *d = c->d;
	if (!c->docker.id)
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL,
					"container %s is not made in dockerd yet", c->name);
	struct dk_client *cl = docker_client_new(d, err);
	if (!cl)
		return -err->code;
	struct session *s = xcalloc(1, sizeof(*s));
	s->cl = cl;
	s->listener = s->fd = -1;
	s->in = (struct buf)BUF_INIT;
	s->tty = tty;
	s->stdin_open = stdin_open;
	s->ctr_id = xstrdup(c->docker.id);
	s->attach = shimreq == NULL;
	char rnd[17];
	random_hex(rnd, 8);
	s->path = xasprintf("%s/docker-%s-%s.sock", d->run, s->attach ? "attach" : "exec", rnd);
	if (!s->attach)
		s->create = exec_body(c, shimreq, tty, stdin_open);
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	if (strlen(s->path) >= sizeof(un.sun_path)) {
		session_free(s);
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, ENAMETOOLONG,
					"exec session socket path too long");
	}
	strcpy(un.sun_path, s->path);
	s->listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/*
	 * As a native container's console socket: members of group clbsd reach
	 * it (0660 root:clbsd, docs/operations.md), nobody else.
	 */
	if (s->listener < 0 || bind(s->listener, (struct sockaddr *)&un, sizeof(un)) < 0 ||
	    (d->api.have_gid && chown(s->path, (uid_t)-1, d->api.gid) < 0) ||
	    chmod(s->path, d->api.have_gid ? 0660 : 0600) < 0 || listen(s->listener, 1) < 0) {
		int e = errno;
		session_free(s);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, e, "exec session socket");
	}
	*answer = json_pack("{s:s,s:{s:s,s:b,s:b}}", "socket", s->path, "request", "op",
			    s->attach ? "attach" : "exec", "tty", tty, "stdin", stdin_open);
	pthread_t t;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	int r = pthread_create(&t, &at, session_run, s);
	pthread_attr_destroy(&at);
	if (r != 0) {
		json_decref(*answer);
		*answer = NULL;
		session_free(s);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, r, "exec session thread");
	}
	return 0;
}

int docker_exec_session(struct container *c, json_t *shimreq, bool tty, bool stdin_open,
			json_t **answer, struct clbsd_err *err)
{
	return session_start(c, shimreq, tty, stdin_open, answer, err);
}

int docker_attach_session(struct container *c, json_t **answer, struct clbsd_err *err)
{
	if (c->run.state != CTR_RUNNING)
		return clbsd_err_setmsg(
			err, CLBSD_E_CONFLICT, EINVAL,
			"container %s is not running; start it with 'clbsd start %s'", c->name,
			c->name);
	return session_start(c, NULL, c->cfg.tty, c->cfg.stdin_open, answer, err);
}
