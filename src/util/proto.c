#include "proto.h"
#include "util.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

int proto_write_frame(int fd, char type, const void *data, size_t len)
{
	unsigned char hdr[PROTO_HDR_LEN];
	proto_hdr(hdr, type, (uint32_t)len);
	int r = write_all(fd, hdr, sizeof(hdr));
	if (r == 0 && len)
		r = write_all(fd, data, len);
	return r;
}

int proto_read_line(int fd, char **line, struct clbsd_err *err)
{
	struct buf b = BUF_INIT;
	for (;;) {
		char c;
		ssize_t n = read(fd, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			buf_release(&b);
			return clbsd_err_set(err, CLBSD_E_INTERNAL, e, "read from shim");
		}
		if (n == 0) {
			buf_release(&b);
			return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EPIPE,
						"shim closed the connection");
		}
		if (c == '\n')
			break;
		if (b.len >= PROTO_LINE_MAX) {
			buf_release(&b);
			return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, E2BIG, "shim line too long");
		}
		buf_addc(&b, c);
	}
	*line = buf_detach(&b, NULL);
	return 0;
}

int proto_request(const char *sock_path, const char *request_json, int *fd, char **reply,
		  struct clbsd_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(sock_path) >= sizeof(sa.sun_path))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, ENAMETOOLONG,
					"socket path %s is too long", sock_path);
	strcpy(sa.sun_path, sock_path);
	autoclose int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "socket");
	/* A hung shim must not hang its caller: bound the request/reply exchange. */
	struct timeval tv = {.tv_sec = 10};
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return clbsd_err_set(err, CLBSD_E_UNAVAIL, errno, "connect to shim %s", sock_path);
	int r = write_all(s, request_json, strlen(request_json));
	if (r == 0)
		r = write_all(s, "\n", 1);
	if (r < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, r, "send to shim %s", sock_path);
	char *line;
	r = proto_read_line(s, &line, err);
	if (r < 0)
		return r;
	struct timeval none = {0};
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof(none));
	*reply = line;
	*fd = steal_fd(&s);
	return 0;
}
