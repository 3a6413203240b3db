/*
 * GET /v1/containers/{name}/logs: the shim's CRI-format log files, oldest
 * rotation first, optionally only the last N lines, those since a time
 * and those before a time (tail first, then the times, as docker does),
 * optionally followed until the container stops or the until time passes.
 * Only whole lines are sent.
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
/* While a slow reader drains what it was sent, before reading more. */
#define DRAIN_MS 20

/*
 * One log file: rotations (complete, read to their size) or the current
 * file (read to its size, or to its end for as long as it is followed).
 */
struct logsrc {
	int fd;
	off_t pos, size;
};

/*
 * Files are read only while the reader keeps up: when what is queued for it
 * passes API_STREAM_HIGH_WATER, reading stops until it is back under the low
 * mark. The files are the buffer; the daemon holds at most about the high
 * mark per reader, however fast the container writes.
 */
struct logstream {
	struct daemon *d;
	struct evhttp_request *req;
	struct evhttp_connection *conn;
	char *name;
	char *path;
	char *since, *until; /* RFC 3339 with nanoseconds, as the lines start, or NULL */
	int64_t until_ns;
	struct logsrc src[LOG_FILES_MAX + 1]; /* oldest first; the last is the current file */
	size_t nsrc, cur;
	bool follow;
	bool full; /* stopped at the high mark, waiting for the low one */
	ino_t ino;
	struct buf partial;
	struct event *timer;
};

static void ls_free(struct logstream *ls)
{
	if (ls->timer)
		event_free(ls->timer);
	for (size_t i = 0; i < ls->nsrc; i++)
		if (ls->src[i].fd >= 0)
			close(ls->src[i].fd);
	buf_release(&ls->partial);
	free(ls->name);
	free(ls->path);
	free(ls->since);
	free(ls->until);
	free(ls);
}

/*
 * Whether a line is inside since..until. Its time (RFC 3339 with nanoseconds,
 * the same width as the bounds) compares as text.
 */
static bool in_window(const struct logstream *ls, const char *line, size_t len)
{
	if (ls->since) {
		size_t sl = strlen(ls->since);
		if (len <= sl || strncmp(line, ls->since, sl) < 0)
			return false;
	}
	if (ls->until) {
		size_t ul = strlen(ls->until);
		if (len <= ul || strncmp(line, ls->until, ul) >= 0)
			return false;
	}
	return true;
}

/* Send the whole lines of data (filtered by since and until) as one chunk. */
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
	if (!ls->since && !ls->until) {
		evbuffer_add(out, ls->partial.data, n);
	} else {
		for (char *p = ls->partial.data; p < last;) {
			char *nl = memchr(p, '\n', (size_t)(last - p));
			size_t ll = (size_t)(nl - p) + 1;
			if (in_window(ls, p, ll))
				evbuffer_add(out, p, ll);
			p = nl + 1;
		}
	}
	if (evbuffer_get_length(out) && ls->req)
		evhttp_send_reply_chunk(ls->req, out);
	evbuffer_free(out);
	buf_consume(&ls->partial, n);
}

/*
 * Read the files on from where the stream is, until they end or the reader
 * has enough queued. Returns false when it stopped for the reader.
 */
static bool pump(struct logstream *ls, bool *any)
{
	char b[65536];
	size_t queued = api_output_pending(ls->req);
	if (ls->full && queued > API_STREAM_LOW_WATER)
		return false;
	ls->full = false;
	while (ls->cur < ls->nsrc) {
		if (api_output_pending(ls->req) > API_STREAM_HIGH_WATER) {
			ls->full = true;
			return false;
		}
		struct logsrc *s = &ls->src[ls->cur];
		bool live = ls->follow && ls->cur + 1 == ls->nsrc;
		size_t want = sizeof(b);
		if (!live && s->size - s->pos < (off_t)want)
			want = (size_t)(s->size - s->pos);
		ssize_t n = want && s->fd >= 0 ? read(s->fd, b, want) : 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (ls->cur + 1 == ls->nsrc)
				return true;
			ls->cur++;
			continue;
		}
		s->pos += n;
		send_lines(ls, b, (size_t)n);
		*any = true;
		if (!ls->req)
			return true;
	}
	return true;
}

static void ls_arm(struct logstream *ls, int ms)
{
	struct timeval tv = {0, ms * 1000};
	evtimer_add(ls->timer, &tv);
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
	api_request_abandon(ls->req);
	ls->req = NULL;
	ls_free(ls);
}

static void ls_tick(evutil_socket_t fd, short what, void *arg)
{
	struct logstream *ls = arg;
	bool any = false;
	if (!pump(ls, &any)) {
		ls_arm(ls, DRAIN_MS);
		return;
	}
	/* Following ends once the until time has passed and what came before it is sent. */
	if (!ls->follow || (ls->until && time_now_ns() >= ls->until_ns)) {
		ls_end(ls);
		return;
	}
	struct logsrc *cur = &ls->src[ls->nsrc - 1];
	struct stat st;
	if (stat(ls->path, &st) == 0 && st.st_ino != ls->ino) {
		/* Rotated: the old file is complete once read to its end again. */
		if (!pump(ls, &any)) {
			ls_arm(ls, DRAIN_MS);
			return;
		}
		int nfd = open(ls->path, O_RDONLY | O_CLOEXEC);
		if (nfd >= 0) {
			close(cur->fd);
			cur->fd = nfd;
			cur->pos = 0;
			ls->ino = st.st_ino;
			ls_arm(ls, 0);
			return;
		}
	}
	struct container *c = ctr_find(ls->d, ls->name);
	bool live =
		c && !c->run.removed &&
		(c->run.state == CTR_RUNNING || c->run.state == CTR_RESTARTING || c->run.starting);
	if (!live && !any) {
		ls_end(ls);
		return;
	}
	ls_arm(ls, FOLLOW_MS);
}

/*
 * Start the stream at the last n lines of all files taken as one text (the
 * final newline does not count), reading backwards a block at a time.
 */
static void seek_tail(struct logstream *ls, long long n)
{
	char b[65536];
	bool last = true;
	long long seen = 0;
	for (size_t k = ls->nsrc; k-- > 0;) {
		struct logsrc *s = &ls->src[k];
		off_t pos = s->fd >= 0 ? s->size : 0;
		if (n == 0) {
			ls->cur = ls->nsrc - 1;
			s->pos = pos;
			break;
		}
		while (pos > 0) {
			size_t len = pos < (off_t)sizeof(b) ? (size_t)pos : sizeof(b);
			ssize_t r = pread(s->fd, b, len, pos - (off_t)len);
			if (r != (ssize_t)len)
				break;
			for (size_t j = len; j > 0; j--) {
				if (b[j - 1] == '\n' && !last && ++seen == n) {
					ls->cur = k;
					s->pos = pos - (off_t)len + (off_t)j;
					lseek(s->fd, s->pos, SEEK_SET);
					return;
				}
				last = false;
			}
			pos -= (off_t)len;
		}
	}
	if (n == 0)
		lseek(ls->src[ls->cur].fd, ls->src[ls->cur].pos, SEEK_SET);
}

/*
 * A docker container's logs come from dockerd. With follow, one answer of
 * dockerd's stays open and its lines are passed on as they come, until
 * the container stops (dockerd then ends it) or the client goes
 * (docker_follow_logs). With follow and an until time, dockerd is asked
 * again every DOCKER_FOLLOW_MS for what came after the last line sent
 * (lines carry nanosecond times), until the container stops (then once
 * more, for its last lines), the until time passes or the client goes.
 */
#define DOCKER_FOLLOW_MS 300
/* The first asks come sooner (doubling up to DOCKER_FOLLOW_MS): a short run ends without a wait. */
#define DOCKER_FOLLOW_FIRST_MS 20

struct dlogs {
	struct api_pending *p;
	char *name;
	bool follow, started, final;
	int interval_ms;
	int64_t until_ns;
	int64_t last_ns;
	struct event *timer;
	struct docker_follow *stream; /* follow without until: dockerd's own follow */
};

static void dl_end(struct dlogs *dl, const struct clbsd_err *err)
{
	if (!dl->started && err) {
		api_pending_err(dl->p, err);
	} else {
		if (!dl->started && !dl->p->gone) {
			evhttp_add_header(evhttp_request_get_output_headers(dl->p->req),
					  "Content-Type", "text/plain; charset=utf-8");
			evhttp_send_reply_start(dl->p->req, 200, "OK");
		}
		if (!dl->p->gone)
			evhttp_send_reply_end(dl->p->req);
		api_pending_free(dl->p);
	}
	if (dl->timer)
		event_free(dl->timer);
	docker_follow_cancel(dl->stream);
	free(dl->name);
	free(dl);
}

static void dl_reply_start(struct dlogs *dl)
{
	if (dl->started)
		return;
	evhttp_add_header(evhttp_request_get_output_headers(dl->p->req), "Content-Type",
			  "text/plain; charset=utf-8");
	evhttp_send_reply_start(dl->p->req, 200, "OK");
	dl->started = true;
}

/* dockerd's follow: lines as they come, and its end when the container stops. */
static void dl_streamed(const char *text, size_t len, const struct clbsd_err *err, bool end,
			void *arg)
{
	struct dlogs *dl = arg;
	if (end) {
		dl->stream = NULL; /* over: nothing to cancel */
		if (err && dl->started)
			log_warn("api", dl->name, "logs: %s", err->msg);
		dl_end(dl, err);
		return;
	}
	if (dl->p->gone) {
		dl_end(dl, NULL);
		return;
	}
	dl_reply_start(dl);
	struct evbuffer *out = evbuffer_new();
	evbuffer_add(out, text, len);
	evhttp_send_reply_chunk(dl->p->req, out);
	evbuffer_free(out);
}

/* A quiet container's follower notices a client that went away. */
static void dl_check_gone(evutil_socket_t fd, short what, void *arg)
{
	struct dlogs *dl = arg;
	if (dl->p->gone) {
		dl_end(dl, NULL);
		return;
	}
	struct timeval tv = {1, 0};
	evtimer_add(dl->timer, &tv);
}

static void dl_fetched(json_t *result, const char *text, size_t len, const struct clbsd_err *err,
		       void *arg);

static void dl_fetch(struct dlogs *dl, long long tail, int64_t since_ns)
{
	struct clbsd_err err;
	struct container *c = ctr_find(dl->p->d, dl->name);
	if (!c) {
		dl_end(dl, NULL);
		return;
	}
	if (docker_ctr_logs(c, tail, since_ns, dl->until_ns, dl_fetched, dl, &err) < 0)
		dl_end(dl, &err);
}

static void dl_tick(evutil_socket_t fd, short what, void *arg)
{
	struct dlogs *dl = arg;
	dl_fetch(dl, -1, dl->last_ns ? dl->last_ns + 1 : 0);
}

static void dl_fetched(json_t *result, const char *text, size_t len, const struct clbsd_err *err,
		       void *arg)
{
	struct dlogs *dl = arg;
	if (dl->p->gone || err) {
		dl_end(dl, err);
		return;
	}
	if (!dl->started) {
		evhttp_add_header(evhttp_request_get_output_headers(dl->p->req), "Content-Type",
				  "text/plain; charset=utf-8");
		evhttp_send_reply_start(dl->p->req, 200, "OK");
		dl->started = true;
	}
	if (len) {
		struct evbuffer *out = evbuffer_new();
		evbuffer_add(out, text, len);
		evhttp_send_reply_chunk(dl->p->req, out);
		evbuffer_free(out);
		/* The last line's time: the next ask starts after it. */
		const char *last = text + len - 1;
		while (last > text && last[-1] != '\n')
			last--;
		const char *sp = memchr(last, ' ', (size_t)(text + len - last));
		if (sp) {
			autofree char *ts = xstrndup(last, (size_t)(sp - last));
			int64_t ns;
			if (time_parse_rfc3339(ts, &ns) == 0)
				dl->last_ns = ns;
		}
	}
	struct container *c = ctr_find(dl->p->d, dl->name);
	bool live = c && (c->run.state == CTR_RUNNING || c->run.starting);
	if (!dl->follow || dl->final || !c || (dl->until_ns && time_now_ns() >= dl->until_ns)) {
		dl_end(dl, NULL);
		return;
	}
	int ms = dl->interval_ms ? dl->interval_ms : DOCKER_FOLLOW_FIRST_MS;
	dl->interval_ms = ms * 2 > DOCKER_FOLLOW_MS ? DOCKER_FOLLOW_MS : ms * 2;
	if (!live) {
		dl->final = true; /* one more ask, now: the lines of its last moments */
		ms = 0;
	}
	if (!dl->timer)
		dl->timer = evtimer_new(dl->p->d->base, dl_tick, dl);
	struct timeval tv = {0, ms * 1000};
	evtimer_add(dl->timer, &tv);
}

void api_container_logs(struct daemon *d, struct evhttp_request *req, const struct api_args *a)
{
	struct container *c = a->c;
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
				"since=%s is not an RFC 3339 time like 2026-11-22T20:07:46Z",
				since);
		return;
	}
	autofree char *until = api_query(req, "until");
	int64_t until_ns;
	if (until && time_parse_rfc3339(until, &until_ns) < 0) {
		api_reply_error(req, 400, "invalid_argument",
				"until=%s is not an RFC 3339 time like 2026-11-22T20:07:46Z",
				until);
		return;
	}
	bool follow = api_query_bool(req, "follow");
	if (c->docker.on) {
		struct dlogs *dl = xcalloc(1, sizeof(*dl));
		dl->p = api_pending_new(d, req);
		dl->name = xstrdup(c->name);
		dl->follow = follow;
		dl->until_ns = until ? until_ns : 0;
		if (follow && !until && c->docker.id) {
			struct clbsd_err err;
			dl->stream = docker_follow_logs(c, ntail, since ? since_ns : 0, dl_streamed,
							dl, &err);
			if (!dl->stream) {
				dl_end(dl, &err);
				return;
			}
			/* The headers now: the client knows the follow is on. */
			dl_reply_start(dl);
			dl->timer = evtimer_new(d->base, dl_check_gone, dl);
			struct timeval tv = {1, 0};
			evtimer_add(dl->timer, &tv);
			return;
		}
		dl_fetch(dl, ntail, since ? since_ns : 0);
		return;
	}

	struct logstream *ls = xcalloc(1, sizeof(*ls));
	ls->d = d;
	ls->req = req;
	ls->conn = evhttp_request_get_connection(req);
	ls->name = xstrdup(c->name);
	ls->path = xasprintf("%s/logs/container.log", c->dir);
	if (since) {
		char norm[48];
		time_fmt_rfc3339(since_ns, norm, sizeof(norm));
		ls->since = xstrdup(norm);
	}
	if (until) {
		char norm[48];
		time_fmt_rfc3339(until_ns, norm, sizeof(norm));
		ls->until = xstrdup(norm);
		ls->until_ns = until_ns;
	}
	/* Rotations oldest first, then the current file, each up to its size now. */
	for (int i = LOG_FILES_MAX; i >= 0; i--) {
		autofree char *p = i ? xasprintf("%s.%d", ls->path, i) : xstrdup(ls->path);
		int fd = open(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		struct stat st;
		if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
			close(fd);
			fd = -1;
		}
		if (fd < 0 && i)
			continue;
		ls->src[ls->nsrc++] = (struct logsrc){.fd = fd, .size = fd >= 0 ? st.st_size : 0};
		if (!i && fd >= 0)
			ls->ino = st.st_ino;
	}
	ls->follow = follow && ls->src[ls->nsrc - 1].fd >= 0;
	if (ntail >= 0)
		seek_tail(ls, ntail);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "text/plain; charset=utf-8");
	evhttp_send_reply_start(req, 200, "OK");
	evhttp_connection_set_closecb(ls->conn, ls_closed, ls);
	ls->timer = evtimer_new(d->base, ls_tick, ls);
	ls_tick(-1, 0, ls);
}
