/*
 * Following a docker container's output as dockerd produces it: one
 * GET /containers/ID/logs?follow=1 held open on a worker, whose answer
 * dockerd ends when the container stops. The worker turns dockerd's
 * frames into CRI lines and hands them to the loop through an event; the
 * loop passes them on (the API's logs -f, `clbsd run` of a docker
 * container). No polling: a line reaches the client as dockerd writes it,
 * and the follow ends as soon as the container has stopped.
 *
 * Threads: the worker owns the demuxer and its partial lines; `ready`
 * (under `lock`) is the hand-over; everything else is the loop's.
 */
#include "daemon.h"
#include "docker/docker.h"
#include "util/util.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

void docker_log_lines(struct buf *pending, int stream, const char *data, size_t n, struct buf *out)
{
	buf_add(pending, data, n);
	char *nl;
	while (pending->len && (nl = memchr(pending->data, '\n', pending->len))) {
		size_t len = (size_t)(nl - pending->data);
		char *sp = memchr(pending->data, ' ', len);
		if (sp) {
			buf_add(out, pending->data, (size_t)(sp - pending->data));
			buf_addf(out, " %s F ", stream == 2 ? "stderr" : "stdout");
			buf_add(out, sp + 1, len - (size_t)(sp + 1 - pending->data));
			buf_addc(out, '\n');
		}
		buf_consume(pending, len + 1);
	}
}

struct docker_follow {
	struct daemon *d;
	char *name;
	struct dk_client *cl;
	char *path;
	bool tty;
	/* the worker's */
	struct dk_demux m;
	struct buf pend_out, pend_err, lines;
	int rc;
	struct clbsd_err err;
	atomic_bool stop;
	/* worker -> loop */
	pthread_mutex_t lock;
	struct buf ready;
	struct event *ev;
	/* the loop's */
	docker_follow_fn fn;
	void *arg;
	bool cancelled;
};

static void frame(int stream, const char *data, size_t n, void *arg)
{
	struct docker_follow *f = arg;
	docker_log_lines(stream == 2 ? &f->pend_err : &f->pend_out, stream, data, n, &f->lines);
}

/* On the worker: a piece of dockerd's answer. */
static bool on_chunk(const char *data, size_t n, void *arg)
{
	struct docker_follow *f = arg;
	if (atomic_load(&f->stop))
		return false;
	if (f->tty || dk_demux_feed(&f->m, data, n, frame, f) < 0)
		frame(1, data, n, f);
	if (!f->lines.len)
		return true;
	pthread_mutex_lock(&f->lock);
	buf_add(&f->ready, f->lines.data, f->lines.len);
	pthread_mutex_unlock(&f->lock);
	buf_reset(&f->lines);
	event_active(f->ev, EV_READ, 0);
	return true;
}

static bool stopping(void *arg)
{
	struct docker_follow *f = arg;
	return atomic_load(&f->stop);
}

static void follow_run(void *arg)
{
	struct docker_follow *f = arg;
	clbsd_err_init(&f->err);
	f->rc = dk_stream(f->cl, f->path, on_chunk, stopping, f, &f->err);
}

/* On the loop: what the worker has handed over. */
static void flush(struct docker_follow *f)
{
	pthread_mutex_lock(&f->lock);
	struct buf b = f->ready;
	buf_init(&f->ready);
	pthread_mutex_unlock(&f->lock);
	if (b.len && !f->cancelled)
		f->fn(b.data, b.len, NULL, false, f->arg);
	buf_release(&b);
}

static void on_ready(evutil_socket_t fd, short what, void *arg)
{
	flush(arg);
}

static void follow_done(void *arg)
{
	struct docker_follow *f = arg;
	flush(f);
	if (!f->cancelled)
		f->fn(NULL, 0, f->rc < 0 ? &f->err : NULL, true, f->arg);
	event_free(f->ev);
	pthread_mutex_destroy(&f->lock);
	dk_client_free(f->cl);
	buf_release(&f->pend_out);
	buf_release(&f->pend_err);
	buf_release(&f->lines);
	buf_release(&f->ready);
	free(f->path);
	free(f->name);
	free(f);
}

struct docker_follow *docker_follow_logs(struct container *c, long long tail, int64_t since_ns,
					 docker_follow_fn fn, void *arg, struct clbsd_err *err)
{
	if (!c->docker.id) {
		clbsd_err_setmsg(err, CLBSD_E_CONFLICT, ESRCH,
				 "container %s is not created in dockerd", c->name);
		return NULL;
	}
	struct dk_client *cl = docker_client_new(c->d, err);
	if (!cl)
		return NULL;
	struct docker_follow *f = xcalloc(1, sizeof(*f));
	f->d = c->d;
	f->name = xstrdup(c->name);
	f->cl = cl;
	f->tty = c->cfg.tty;
	f->fn = fn;
	f->arg = arg;
	buf_init(&f->pend_out);
	buf_init(&f->pend_err);
	buf_init(&f->lines);
	buf_init(&f->ready);
	pthread_mutex_init(&f->lock, NULL);
	atomic_init(&f->stop, false);
	struct buf q = BUF_INIT;
	buf_addf(&q, "/containers/%s/logs?follow=1&stdout=1&stderr=1&timestamps=1", c->docker.id);
	if (tail >= 0)
		buf_addf(&q, "&tail=%lld", tail);
	if (since_ns)
		buf_addf(&q, "&since=%lld.%09lld", (long long)(since_ns / 1000000000LL),
			 (long long)(since_ns % 1000000000LL));
	f->path = buf_detach(&q, NULL);
	f->ev = event_new(c->d->base, -1, 0, on_ready, f);
	work_submit(c->d, follow_run, follow_done, f);
	return f;
}

void docker_follow_cancel(struct docker_follow *f)
{
	if (!f)
		return;
	f->cancelled = true;
	atomic_store(&f->stop, true);
}
