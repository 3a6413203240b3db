/*
 * GET /v1/containers/{name}/logs: the shim's CRI-format log files, oldest
 * rotation first, optionally only the last N lines or those since a time,
 * optionally followed until the container stops. Only whole lines are sent.
 */
#include "api.h"
#include "util/util.h"

#include <errno.h>
#include <event2/buffer.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_FILES_MAX 16
#define FOLLOW_MS     100

struct logstream {
	struct daemon *d;
	struct evhttp_request *req;
	struct evhttp_connection *conn;
	char *name;
	char *path;
	char *since;
	int fd;
	ino_t ino;
	struct buf partial;
	struct event *timer;
};

static void ls_free(struct logstream *ls)
{
	if (ls->timer)
		event_free(ls->timer);
	if (ls->fd >= 0)
		close(ls->fd);
	buf_release(&ls->partial);
	free(ls->name);
	free(ls->path);
	free(ls->since);
	free(ls);
}

/* Send the whole lines of data (filtered by since) as one chunk. */
static void send_lines(struct logstream *ls, const char *data, size_t len)
{
	buf_add(&ls->partial, data, len);
	char *last = NULL;
	for (size_t i = ls->partial.len; i > 0; i--) {
		if (ls->partial.data[i - 1] == '\n') {
			last = ls->partial.data + i;
			break;
		}
	}
	if (!last)
		return;
	size_t n = (size_t)(last - ls->partial.data);
	struct evbuffer *out = evbuffer_new();
	if (!ls->since) {
		evbuffer_add(out, ls->partial.data, n);
	} else {
		size_t sl = strlen(ls->since);
		for (char *p = ls->partial.data; p < last;) {
			char *nl = memchr(p, '\n', (size_t)(last - p));
			size_t ll = (size_t)(nl - p) + 1;
			if (ll > sl && strncmp(p, ls->since, sl) >= 0)
				evbuffer_add(out, p, ll);
			p = nl + 1;
		}
	}
	if (evbuffer_get_length(out) && ls->req)
		evhttp_send_reply_chunk(ls->req, out);
	evbuffer_free(out);
	buf_consume(&ls->partial, n);
}

static bool read_more(struct logstream *ls)
{
	bool any = false;
	char b[65536];
	for (;;) {
		ssize_t n = read(ls->fd, b, sizeof(b));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		send_lines(ls, b, (size_t)n);
		any = true;
	}
	return any;
}

static void ls_end(struct logstream *ls)
{
	if (ls->req) {
		evhttp_connection_set_closecb(ls->conn, NULL, NULL);
		evhttp_send_reply_end(ls->req);
	}
	ls_free(ls);
}

static void ls_closed(struct evhttp_connection *conn, void *arg)
{
	struct logstream *ls = arg;
	ls->req = NULL;
	ls_free(ls);
}

static void ls_tick(evutil_socket_t fd, short what, void *arg)
{
	struct logstream *ls = arg;
	bool any = read_more(ls);
	struct stat st;
	if (stat(ls->path, &st) == 0 && st.st_ino != ls->ino) {
		/* Rotated: the old file is complete, continue with the new one. */
		read_more(ls);
		int nfd = open(ls->path, O_RDONLY | O_CLOEXEC);
		if (nfd >= 0) {
			close(ls->fd);
			ls->fd = nfd;
			ls->ino = st.st_ino;
			any |= read_more(ls);
		}
	}
	struct container *c = ctr_find(ls->d, ls->name);
	bool live = c && !c->removed && (c->state == CTR_RUNNING || c->state == CTR_RESTARTING ||
					 c->starting);
	if (!live && !any) {
		read_more(ls);
		ls_end(ls);
		return;
	}
	struct timeval tv = {0, FOLLOW_MS * 1000};
	evtimer_add(ls->timer, &tv);
}

static char *tail_lines(struct buf *all, long long n)
{
	if (n < 0)
		return NULL;
	size_t end = all->len;
	long long seen = 0;
	size_t i = end;
	/* The text ends with '\n'; count n+1 newlines from the end. */
	while (i > 0) {
		if (all->data[i - 1] == '\n' && i != end) {
			if (++seen == n)
				break;
		}
		i--;
	}
	if (n == 0)
		i = end;
	return all->data + i;
}

void api_container_logs(struct daemon *d, struct evhttp_request *req, struct container *c)
{
	autofree char *tail = api_query(req, "tail");
	long long ntail = -1;
	if (tail && strcmp(tail, "all") != 0 && parse_int(tail, 0, 100000000, &ntail) < 0) {
		api_reply_error(req, 400, "invalid_argument",
				"tail=%s is not a number of lines (or \"all\")", tail);
		return;
	}
	autofree char *since = api_query(req, "since");
	int64_t since_ns;
	if (since && time_parse_rfc3339(since, &since_ns) < 0) {
		api_reply_error(req, 400, "invalid_argument",
				"since=%s is not an RFC 3339 time like 2026-11-22T20:07:46Z", since);
		return;
	}
	bool follow = api_query_bool(req, "follow");

	struct logstream *ls = xcalloc(1, sizeof(*ls));
	ls->d = d;
	ls->req = req;
	ls->conn = evhttp_request_get_connection(req);
	ls->name = xstrdup(c->name);
	ls->path = xasprintf("%s/logs/container.log", c->dir);
	ls->fd = open(ls->path, O_RDONLY | O_CLOEXEC);
	if (since) {
		char norm[48];
		time_fmt_rfc3339(since_ns, norm, sizeof(norm));
		ls->since = xstrdup(norm);
	}
	struct stat st;
	off_t cur_size = 0;
	if (ls->fd >= 0 && fstat(ls->fd, &st) == 0) {
		ls->ino = st.st_ino;
		cur_size = st.st_size;
	}
	/* Everything up to now: rotations oldest first, then the current file. */
	struct buf all = BUF_INIT;
	for (int i = LOG_FILES_MAX; i >= 1; i--) {
		autofree char *p = xasprintf("%s.%d", ls->path, i);
		autofree char *text = NULL;
		size_t len;
		struct clbsd_err e2;
		if (fs_read_file(p, &text, &len, &e2) == 0)
			buf_add(&all, text, len);
	}
	if (ls->fd >= 0 && cur_size > 0) {
		buf_grow(&all, (size_t)cur_size);
		ssize_t n = pread(ls->fd, all.data + all.len, (size_t)cur_size, 0);
		if (n > 0) {
			all.len += (size_t)n;
			all.data[all.len] = '\0';
		}
		lseek(ls->fd, n > 0 ? n : 0, SEEK_SET);
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "text/plain; charset=utf-8");
	evhttp_send_reply_start(req, 200, "OK");
	const char *from = all.data ? all.data : "";
	if (ntail >= 0 && all.data)
		from = tail_lines(&all, ntail);
	size_t n = all.data ? all.len - (size_t)(from - all.data) : 0;
	if (n)
		send_lines(ls, from, n);
	buf_release(&all);
	if (!follow || ls->fd < 0) {
		ls_end(ls);
		return;
	}
	evhttp_connection_set_closecb(ls->conn, ls_closed, ls);
	ls->timer = evtimer_new(d->base, ls_tick, ls);
	struct timeval tv = {0, FOLLOW_MS * 1000};
	evtimer_add(ls->timer, &tv);
}
