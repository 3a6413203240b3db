/*
 * The container log: CRI records ("TIME STREAM F|P DATA\n") appended to
 * DIR/container.log, with size-based rotation. The daemon serves these files
 * (GET /v1/containers/NAME/logs), so they outlive the shim.
 */
#include "shim/shim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static const char *const stream_names[] = {"stdout", "stderr"};

static int open_log(struct shim_log *l, bool truncate, struct clbsd_err *err)
{
	int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0);
	int fd = open(l->path, flags, 0640);
	if (fd < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open log %s", l->path);
	struct stat st;
	l->size = fstat(fd, &st) == 0 ? st.st_size : 0;
	l->fd = fd;
	return 0;
}

int shim_log_open(struct shim_log *l, const char *dir, int64_t max_size, int max_files,
		  struct clbsd_err *err)
{
	memset(l, 0, sizeof(*l));
	l->fd = -1;
	l->max_size = max_size;
	l->max_files = max_files < 1 ? 1 : max_files;
	l->clock = time_now_ns;
	buf_init(&l->part[0]);
	buf_init(&l->part[1]);
	l->path = xasprintf("%s/container.log", dir);
	int r = open_log(l, false, err);
	if (r < 0) {
		free(l->path);
		l->path = NULL;
	}
	return r;
}

static void warn_once(struct shim_log *l, const char *what, int e)
{
	if (l->warned)
		return;
	l->warned = true;
	log_warn("shim", NULL, "%s %s: %s (further log errors are not reported)", what, l->path,
		 strerror(e));
}

/* Shift container.log.(i-1) to .i, then the live file to .1, and start anew. */
static void rotate(struct shim_log *l)
{
	if (l->fd >= 0) {
		close(l->fd);
		l->fd = -1;
	}
	for (int i = l->max_files - 1; i >= 1; i--) {
		autofree char *to = xasprintf("%s.%d", l->path, i);
		autofree char *from =
			i == 1 ? xstrdup(l->path) : xasprintf("%s.%d", l->path, i - 1);
		if (rename(from, to) < 0 && errno != ENOENT)
			warn_once(l, "rotate", errno);
	}
	struct clbsd_err err;
	/* With one file in all (or a failed rename) the live file starts over. */
	if (open_log(l, true, &err) < 0)
		warn_once(l, "reopen", -err.code);
}

static int write_rec(int fd, struct iovec *iov, int n)
{
	for (;;) {
		ssize_t w = writev(fd, iov, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		/* A short write to a regular file: finish it piece by piece. */
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n == 0)
			return 0;
		iov->iov_base = (char *)iov->iov_base + w;
		iov->iov_len -= (size_t)w;
	}
}

static void emit(struct shim_log *l, int stream, char tag, const char *data, size_t len)
{
	char hdr[80];
	time_fmt_rfc3339(l->clock(), hdr, sizeof(hdr));
	size_t hl = strlen(hdr);
	snprintf(hdr + hl, sizeof(hdr) - hl, " %s %c ", stream_names[stream], tag);
	hl = strlen(hdr);
	int64_t total = (int64_t)(hl + len + 1);
	if (l->size > 0 && l->max_size > 0 && l->size + total > l->max_size)
		rotate(l);
	if (l->fd < 0)
		return;
	struct iovec iov[3] = {
		{hdr, hl},
		{(void *)(uintptr_t)data, len},
		{(void *)(uintptr_t) "\n", 1},
	};
	int r = write_rec(l->fd, iov, 3);
	if (r < 0)
		warn_once(l, "write", -r);
	else
		l->size += total;
}

void shim_log_flush(struct shim_log *l, int stream)
{
	struct buf *p = &l->part[stream];
	if (p->len == 0)
		return;
	emit(l, stream, 'P', p->data, p->len);
	buf_reset(p);
}

void shim_log_write(struct shim_log *l, int stream, const void *data, size_t len)
{
	const char *s = data;
	struct buf *p = &l->part[stream];
	while (len > 0) {
		const char *nl = memchr(s, '\n', len);
		size_t seg = nl ? (size_t)(nl - s) : len;
		while (seg > 0) {
			size_t room = SHIM_LOG_LINE_MAX - p->len;
			size_t take = seg < room ? seg : room;
			buf_add(p, s, take);
			s += take;
			len -= take;
			seg -= take;
			if (p->len == SHIM_LOG_LINE_MAX)
				shim_log_flush(l, stream);
		}
		if (!nl)
			break;
		size_t n = p->len;
		if (l->strip_cr && n > 0 && p->data[n - 1] == '\r')
			n--;
		emit(l, stream, 'F', p->len ? p->data : "", n);
		buf_reset(p);
		s++;
		len--;
	}
	if (p->len)
		l->part_at[stream] = time_mono_ns();
	/* A long idle pipe should not pin a grown buffer. */
	if (p->len == 0 && p->cap > 4096)
		buf_release(p);
}

void shim_log_tick(struct shim_log *l, int64_t mono_now)
{
	for (int i = 0; i < 2; i++)
		if (l->part[i].len && mono_now - l->part_at[i] >= SHIM_LOG_PAUSE_NS)
			shim_log_flush(l, i);
}

int64_t shim_log_deadline(const struct shim_log *l)
{
	int64_t d = -1;
	for (int i = 0; i < 2; i++) {
		if (!l->part[i].len)
			continue;
		int64_t t = l->part_at[i] + SHIM_LOG_PAUSE_NS;
		if (d < 0 || t < d)
			d = t;
	}
	return d;
}

void shim_log_close(struct shim_log *l)
{
	if (l->path) {
		shim_log_flush(l, SHIM_STDOUT);
		shim_log_flush(l, SHIM_STDERR);
	}
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	buf_release(&l->part[0]);
	buf_release(&l->part[1]);
	free(l->path);
	l->path = NULL;
}
