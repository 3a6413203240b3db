/*
 * The client library behind <clbsd/client.h>: HTTP/1.1 over the daemon's Unix
 * socket, one connection per request. The request is written by hand (it is
 * a few fixed lines); the answer is parsed by http-parser, which also undoes
 * chunked transfer encoding for streams.
 *
 * Why not libcurl: the CLI is started once per command, and loading libcurl
 * with the ~30 libraries it links (TLS, HTTP/2, LDAP, SSH, ...) costs 4-5 ms
 * per start here, most of a container's start budget, for features a local
 * Unix-socket API never uses. libcurl stays the daemon's client for remote
 * HTTP (docs/architecture.md).
 */
#include <clbsd/client.h>

#include "util/util.h"

#include <errno.h>
#include <http_parser.h>
#include <jansson.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct clbsd_client {
	char *socket;
};

struct clbsd_client *clbsd_client_new(const char *socket_path)
{
	struct clbsd_client *c = xcalloc(1, sizeof(*c));
	c->socket = xstrdup(socket_path);
	return c;
}

void clbsd_client_free(struct clbsd_client *c)
{
	if (!c)
		return;
	free(c->socket);
	free(c);
}

const char *clbsd_client_socket(const struct clbsd_client *c)
{
	return c->socket;
}

char *clbsd_client_escape(const char *s)
{
	struct buf b = BUF_INIT;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("._~:-", *p))
			buf_addc(&b, (char)*p);
		else
			buf_addf(&b, "%%%02X", *p);
	}
	return buf_detach(&b, NULL);
}

static enum clbsd_err_kind status_kind(long status, int *code)
{
	switch (status) {
	case 400:
		*code = EINVAL;
		return CLBSD_E_INVALID;
	case 403:
		*code = EACCES;
		return CLBSD_E_FORBIDDEN;
	case 404:
		*code = ENOENT;
		return CLBSD_E_NOTFOUND;
	case 409:
		*code = EBUSY;
		return CLBSD_E_CONFLICT;
	case 503:
		*code = EAGAIN;
		return CLBSD_E_UNAVAIL;
	case 504:
		*code = ETIMEDOUT;
		return CLBSD_E_TIMEOUT;
	default:
		*code = EIO;
		return CLBSD_E_INTERNAL;
	}
}

/* Turn a non-2xx answer into an error, preferring the daemon's own message. */
static int http_error(long status, const char *body, size_t len, struct clbsd_err *err)
{
	int code;
	enum clbsd_err_kind kind = status_kind(status, &code);
	json_t *j = json_loadb(body, len, 0, NULL);
	const char *msg = NULL;
	if (j)
		msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
	int r;
	if (msg && *msg) {
		r = clbsd_err_setmsg(err, kind, code, "%s", msg);
	} else {
		/* Not our error format: show a short, printable prefix of the body. */
		char snip[201];
		size_t n = 0;
		for (size_t i = 0; i < len && n < sizeof(snip) - 1; i++)
			snip[n++] = (body[i] >= 0x20 && body[i] < 0x7f) ? body[i] : ' ';
		while (n && snip[n - 1] == ' ')
			n--;
		snip[n] = '\0';
		r = clbsd_err_setmsg(err, kind, code, "clbsdd answered HTTP %ld%s%s", status,
				     n ? ": " : "", snip);
	}
	json_decref(j);
	return r;
}

/* Connect to the daemon's socket; errors say which socket and what to check. */
static int dial(const struct clbsd_client *c, struct clbsd_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(c->socket) >= sizeof(sa.sun_path))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, ENAMETOOLONG,
					"socket path %s is longer than %zu bytes", c->socket,
					sizeof(sa.sun_path) - 1);
	memcpy(sa.sun_path, c->socket, strlen(c->socket) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, errno, "socket: %s",
					strerror(errno));
	int r;
	do
		r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return fd;
	int e = errno;
	close(fd);
	if (e == EACCES || e == EPERM)
		return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, e,
					"cannot connect to clbsdd at %s: %s; run as root "
					"or as a member of group clbsd",
					c->socket, strerror(e));
	return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, e,
				"cannot connect to clbsdd at %s: %s; is clbsdd running? "
				"(set --socket or CLBSD_SOCKET for another daemon)",
				c->socket, strerror(e));
}

static int send_all(int fd, const char *data, size_t len)
{
	while (len) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

struct xfer {
	struct buf body;    /* whole body, or the error body of a stream */
	clbsd_stream_fn fn; /* NULL: collect into body */
	void *ctx;
	bool stopped; /* fn asked to stop */
	bool done;    /* the whole answer arrived */
};

static bool ok_status(unsigned status)
{
	return status >= 200 && status < 300;
}

static int on_body(http_parser *p, const char *data, size_t len)
{
	struct xfer *x = p->data;
	if (x->fn && ok_status(p->status_code)) {
		if (x->fn(data, len, x->ctx) != 0) {
			x->stopped = true;
			return 1; /* stops the parser */
		}
		return 0;
	}
	buf_add(&x->body, data, len);
	return 0;
}

static int on_complete(http_parser *p)
{
	struct xfer *x = p->data;
	x->done = true;
	return 0;
}

static const http_parser_settings parser_settings = {
	.on_body = on_body,
	.on_message_complete = on_complete,
};

/* Read and parse the answer until it is complete, the stream is stopped or the peer goes away. */
static int read_answer(const struct clbsd_client *c, int fd, http_parser *p, struct xfer *x,
		       struct clbsd_err *err)
{
	char chunk[65536];
	while (!x->done) {
		ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, errno,
						"talking to clbsdd at %s: %s", c->socket,
						strerror(errno));
		size_t used = http_parser_execute(p, &parser_settings, chunk, (size_t)n);
		if (x->stopped)
			return 0;
		enum http_errno he = HTTP_PARSER_ERRNO(p);
		if (he != HPE_OK || used != (size_t)n)
			return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, EPROTO,
						"talking to clbsdd at %s: malformed answer (%s)",
						c->socket, http_errno_description(he));
		if (n == 0)
			break;
	}
	if (!x->done)
		return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, ECONNRESET,
					"talking to clbsdd at %s: the connection closed before "
					"the answer was complete",
					c->socket);
	return 0;
}

/* Connect and send the request; returns the connection or <0. */
static int send_request(struct clbsd_client *c, const char *method, const char *path,
			const char *body, struct clbsd_err *err)
{
	struct buf req = BUF_INIT;
	buf_addf(&req,
		 "%s %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: clbsd\r\nX-Clbsd-Client: cli\r\n"
		 "Accept: application/json\r\nConnection: close\r\n",
		 method, path);
	if (body)
		buf_addf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			 strlen(body), body);
	else if (strcmp(method, "GET") != 0)
		buf_adds(&req, "Content-Length: 0\r\n\r\n");
	else
		buf_adds(&req, "\r\n");

	int fd = dial(c, err);
	if (fd < 0) {
		buf_release(&req);
		return fd;
	}
	int r = send_all(fd, req.data, req.len);
	buf_release(&req);
	/*
	 * A daemon that refuses this peer answers 403 at accept and closes
	 * without reading: the send may then fail, but the answer is already
	 * in our receive queue, so read it rather than report a broken pipe.
	 */
	if (r == -EPIPE || r == -ECONNRESET)
		r = 0;
	if (r < 0) {
		close(fd);
		return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, -r, "talking to clbsdd at %s: %s",
					c->socket, strerror(-r));
	}
	return fd;
}

/* Read the answer on fd (closed here). */
static int finish(struct clbsd_client *c, int fd, struct xfer *x, long *status,
		  struct clbsd_err *err)
{
	*status = 0;
	int r;
	http_parser p;
	http_parser_init(&p, HTTP_RESPONSE);
	p.data = x;
	r = read_answer(c, fd, &p, x, err);
	close(fd);
	if (r < 0)
		return r;
	*status = p.status_code;
	if (x->stopped)
		return 0;
	if (!ok_status(p.status_code))
		return http_error(*status, x->body.data ? x->body.data : "", x->body.len, err);
	return 0;
}

static int perform(struct clbsd_client *c, const char *method, const char *path, const char *body,
		   struct xfer *x, long *status, struct clbsd_err *err)
{
	*status = 0;
	int fd = send_request(c, method, path, body, err);
	if (fd < 0)
		return fd;
	return finish(c, fd, x, status, err);
}

int clbsd_client_send(struct clbsd_client *c, const char *method, const char *path,
		      const char *body, struct clbsd_err *err)
{
	return send_request(c, method, path, body, err);
}

int clbsd_client_finish(struct clbsd_client *c, int fd, char **resp, long *status,
			struct clbsd_err *err)
{
	struct xfer x = {.body = BUF_INIT};
	long st;
	int r = finish(c, fd, &x, &st, err);
	if (status)
		*status = st;
	if (r == 0 && resp)
		*resp = buf_detach(&x.body, NULL);
	buf_release(&x.body);
	return r;
}

int clbsd_client_request(struct clbsd_client *c, const char *method, const char *path,
			 const char *body, char **resp, long *status, struct clbsd_err *err)
{
	struct xfer x = {.body = BUF_INIT};
	long st;
	int r = perform(c, method, path, body, &x, &st, err);
	if (status)
		*status = st;
	if (r == 0 && resp)
		*resp = buf_detach(&x.body, NULL);
	buf_release(&x.body);
	return r;
}

int clbsd_client_stream(struct clbsd_client *c, const char *path, clbsd_stream_fn fn, void *ctx,
			long *status, struct clbsd_err *err)
{
	return clbsd_client_stream_req(c, "GET", path, NULL, fn, ctx, status, err);
}

int clbsd_client_stream_req(struct clbsd_client *c, const char *method, const char *path,
			    const char *body, clbsd_stream_fn fn, void *ctx, long *status,
			    struct clbsd_err *err)
{
	struct xfer x = {.body = BUF_INIT, .fn = fn, .ctx = ctx};
	long st;
	int r = perform(c, method, path, body, &x, &st, err);
	if (status)
		*status = st;
	buf_release(&x.body);
	return r;
}
