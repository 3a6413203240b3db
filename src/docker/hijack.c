/*
 * A hijacked connection (POST /exec/ID/start with "Upgrade: tcp"): the HTTP
 * request is written by hand on a connection libcurl only opens
 * (CURLOPT_CONNECT_ONLY: the endpoint's transport, TLS and ssh as for every
 * request), the answer's headers are read, and what follows is the
 * process's raw stream both ways (stdcopy-framed without a TTY) until
 * dockerd closes it. Blocking; for a worker or a thread of its own.
 */
#include "docker/dk_internal.h"
#include "util/util.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#define HEAD_MAX 16384

struct dk_hijack {
	CURL *h;
	struct dk_conn conn;
	int fd;
	struct buf early; /* stream bytes that came with the headers */
};

int dk_hijack_fd(const struct dk_hijack *k)
{
	return k->fd;
}

void dk_hijack_free(struct dk_hijack *k)
{
	if (!k)
		return;
	CL(curl_easy_cleanup)(k->h);
	buf_release(&k->early);
	free(k);
}

static int wait_fd(int fd, short ev, int ms)
{
	struct pollfd p = {.fd = fd, .events = ev};
	int r;
	do
		r = poll(&p, 1, ms);
	while (r < 0 && errno == EINTR);
	return r;
}

int dk_hijack_write(struct dk_hijack *k, const char *data, size_t n)
{
	while (n) {
		size_t sent = 0;
		CURLcode rc = CL(curl_easy_send)(k->h, data, n, &sent);
		if (rc == CURLE_AGAIN) {
			if (wait_fd(k->fd, POLLOUT, 30000) <= 0)
				return -ETIMEDOUT;
			continue;
		}
		if (rc != CURLE_OK)
			return -EIO;
		data += sent;
		n -= sent;
	}
	return 0;
}

ssize_t dk_hijack_read(struct dk_hijack *k, char *buf, size_t n)
{
	if (k->early.len) {
		size_t m = n < k->early.len ? n : k->early.len;
		memcpy(buf, k->early.data, m);
		buf_consume(&k->early, m);
		return (ssize_t)m;
	}
	size_t got = 0;
	CURLcode rc = CL(curl_easy_recv)(k->h, buf, n, &got);
	if (rc == CURLE_AGAIN)
		return -EAGAIN;
	if (rc != CURLE_OK)
		return -EIO;
	return (ssize_t)got; /* 0: dockerd closed it */
}

bool dk_hijack_pending(const struct dk_hijack *k)
{
	return k->early.len > 0;
}

int dk_hijack_open(const struct dk_client *c, const char *path, const char *body,
		   struct dk_hijack **out, struct clbsd_err *err)
{
	struct dk_hijack *k = xcalloc(1, sizeof(*k));
	k->early = (struct buf)BUF_INIT;
	k->h = dk_handle(c, &k->conn, err);
	if (!k->h) {
		free(k);
		return -err->code;
	}
	const struct dk_endpoint *ep = dk_client_endpoint(c);
	char errbuf[CURL_ERROR_SIZE] = "";
	CL(curl_easy_setopt)(k->h, CURLOPT_URL, dk_client_base(c));
	CL(curl_easy_setopt)(k->h, CURLOPT_CONNECT_ONLY, 1L);
	CL(curl_easy_setopt)(k->h, CURLOPT_ERRORBUFFER, errbuf);
	CURLcode rc = CL(curl_easy_perform)(k->h);
	curl_socket_t sock = CURL_SOCKET_BAD;
	if (rc == CURLE_OK)
		CL(curl_easy_getinfo)(k->h, CURLINFO_ACTIVESOCKET, &sock);
	/* errbuf is this frame's: libcurl must not write there later. */
	CL(curl_easy_setopt)(k->h, CURLOPT_ERRORBUFFER, NULL);
	if (rc != CURLE_OK || sock == CURL_SOCKET_BAD || dk_conn_spawn(&k->conn) < 0) {
		int r = clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, ECONNREFUSED,
					 "docker endpoint %s does not answer: %s", ep->text,
					 *errbuf ? errbuf : CL(curl_easy_strerror)(rc));
		dk_hijack_free(k);
		return r;
	}
	k->fd = (int)sock;
	/* Host as client.c sends it: Go's server refuses a socket path there. */
	const char *base = dk_client_base(c);
	const char *host = strstr(base, "://") + 3;
	const char *slash = strchr(host, '/');
	autofree char *hosthdr = xstrndup(host, (size_t)(slash - host));
	autofree char *req = xasprintf("POST /%s%s HTTP/1.1\r\nHost: %s\r\nContent-Type: "
				       "application/json\r\nConnection: Upgrade\r\nUpgrade: "
				       "tcp\r\nContent-Length: %zu\r\n\r\n%s",
				       DK_API_VERSION, path, hosthdr, strlen(body), body);
	if (dk_hijack_write(k, req, strlen(req)) < 0) {
		dk_hijack_free(k);
		return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, EIO, "docker POST %s: write failed",
					path);
	}
	struct buf head = BUF_INIT;
	char *end = NULL;
	while (!end) {
		char tmp[4096];
		ssize_t n = dk_hijack_read(k, tmp, sizeof(tmp));
		if (n == -EAGAIN) {
			if (wait_fd(k->fd, POLLIN, 30000) <= 0)
				n = -ETIMEDOUT;
			else
				continue;
		}
		if (n <= 0 || head.len + (size_t)n > HEAD_MAX) {
			buf_release(&head);
			dk_hijack_free(k);
			return clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, EIO,
						"docker POST %s: no answer from dockerd", path);
		}
		buf_add(&head, tmp, (size_t)n);
		end = strstr(head.data, "\r\n\r\n");
	}
	size_t hlen = (size_t)(end - head.data) + 4;
	long status = 0;
	if (sscanf(head.data, "HTTP/1.%*d %ld", &status) != 1)
		status = 0;
	if (status != 101 && status != 200) {
		int r = dk_err_status(status, head.data + hlen, head.len - hlen,
				      "docker POST /exec/start", err);
		buf_release(&head);
		dk_hijack_free(k);
		return r;
	}
	if (head.len > hlen)
		buf_add(&k->early, head.data + hlen, head.len - hlen);
	buf_release(&head);
	*out = k;
	return 0;
}
