/*
 * Streaming commands: logs (CRI lines -> the container's stdout and stderr)
 * and events (NDJSON -> one line per event).
 */
#include "cli.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

struct logs_ctx {
	struct logw w;
	struct buf out, err;
	bool broken;
};

static int flush_logs(struct logs_ctx *x)
{
	if (x->out.len && write_all(STDOUT_FILENO, x->out.data, x->out.len) < 0)
		x->broken = true;
	if (x->err.len)
		write_all(STDERR_FILENO, x->err.data, x->err.len);
	buf_reset(&x->out);
	buf_reset(&x->err);
	return x->broken ? -1 : 0;
}

static int on_logs(const char *data, size_t len, void *ctx)
{
	struct logs_ctx *x = ctx;
	logw_feed(&x->w, data, len, &x->out, &x->err);
	return flush_logs(x);
}

/* --since/--until TIME as the daemon takes it (RFC 3339), appended to the query. */
static int add_time(struct buf *path, char *sep, const struct cli_args *a, const char *opt)
{
	const char *v = cli_get(a, opt);
	if (!v)
		return 0;
	char t[48];
	struct clbsd_err err;
	clbsd_err_init(&err);
	if (cli_log_time(opt, v, time_now_ns(), t, sizeof(t), &err) < 0)
		return cli_fail(&err);
	buf_addf(path, "%c%s=%s", *sep, opt, t);
	*sep = '&';
	return 0;
}

int cmd_logs(const struct cli_args *a)
{
	const char *name = a->argv[0];
	long long tail = -1;
	const char *tv = cli_get(a, "tail");
	if (tv && strcmp(tv, "all") != 0 && parse_int(tv, 0, 1LL << 40, &tail) < 0)
		return cli_usage("invalid --tail \"%s\": expected a number of lines or \"all\"",
				 tv);
	struct buf path = BUF_INIT;
	buf_addf(&path, "/v1/containers/%s/logs", name);
	char sep = '?';
	if (cli_has(a, "follow")) {
		buf_addf(&path, "%cfollow=1", sep);
		sep = '&';
	}
	if (tail >= 0) {
		buf_addf(&path, "%ctail=%lld", sep, tail);
		sep = '&';
	}
	int r;
	if ((r = add_time(&path, &sep, a, "since")) || (r = add_time(&path, &sep, a, "until"))) {
		buf_release(&path);
		return r;
	}
	bool ts = cli_has(a, "timestamps");
	struct logs_ctx x = {.out = BUF_INIT, .err = BUF_INIT};
	logw_init(&x.w, ts);
	struct clbsd_err err;
	clbsd_err_init(&err);
	r = clbsd_client_stream(cli_client(), path.data, on_logs, &x, NULL, &err);
	logw_finish(&x.w, &x.out, &x.err);
	flush_logs(&x);
	logw_release(&x.w);
	buf_release(&x.out);
	buf_release(&x.err);
	buf_release(&path);
	if (r < 0)
		return cli_fail(&err);
	return 0;
}

int cli_follow_logs(const char *name, struct clbsd_err *err)
{
	autofree char *path = xasprintf("/v1/containers/%s/logs?follow=1", name);
	struct logs_ctx x = {.out = BUF_INIT, .err = BUF_INIT};
	logw_init(&x.w, false);
	int r = clbsd_client_stream(cli_client(), path, on_logs, &x, NULL, err);
	logw_finish(&x.w, &x.out, &x.err);
	flush_logs(&x);
	logw_release(&x.w);
	buf_release(&x.out);
	buf_release(&x.err);
	return r;
}

struct events_ctx {
	struct buf line;
	bool broken;
};

static void event_line(struct events_ctx *x, const char *line, size_t len)
{
	if (!len)
		return;
	if (cli.json) {
		if (write_all(STDOUT_FILENO, line, len) < 0 ||
		    write_all(STDOUT_FILENO, "\n", 1) < 0)
			x->broken = true;
		return;
	}
	json_t *ev = json_loadb(line, len, 0, NULL);
	autofree char *s = ev ? fmt_event(ev) : xstrndup(line, len);
	json_decref(ev);
	if (write_all(STDOUT_FILENO, s, strlen(s)) < 0 || write_all(STDOUT_FILENO, "\n", 1) < 0)
		x->broken = true;
}

static int on_events(const char *data, size_t len, void *ctx)
{
	struct events_ctx *x = ctx;
	buf_add(&x->line, data, len);
	size_t start = 0;
	for (;;) {
		const char *nl = memchr(x->line.data + start, '\n', x->line.len - start);
		if (!nl)
			break;
		size_t n = (size_t)(nl - (x->line.data + start));
		event_line(x, x->line.data + start, n);
		start += n + 1;
	}
	buf_consume(&x->line, start);
	return x->broken ? -1 : 0;
}

int cmd_events(const struct cli_args *a)
{
	long long since = -1;
	bool follow = cli_has(a, "follow");
	const char *ctr = cli_get(a, "container"), *type = cli_get(a, "type");
	const char *sv = cli_get(a, "since");
	if (sv && parse_int(sv, 0, INT64_MAX, &since) < 0)
		return cli_usage("invalid --since \"%s\": expected an event sequence number", sv);
	if (ctr && !valid_name(ctr))
		return cli_usage("invalid --container \"%s\": expected a container name", ctr);
	if (type && (!*type || strspn(type, "abcdefghijklmnopqrstuvwxyz.-_") != strlen(type)))
		return cli_usage("invalid --type \"%s\": expected an event type like "
				 "container.exited or a prefix like container",
				 type);
	struct buf path = BUF_INIT;
	buf_adds(&path, "/v1/events?");
	if (since >= 0)
		buf_addf(&path, "since=%lld&", since);
	if (follow)
		buf_adds(&path, "follow=1&");
	if (ctr)
		buf_addf(&path, "container=%s&", ctr);
	if (type)
		buf_addf(&path, "type=%s&", type);
	path.data[--path.len] = '\0';
	struct events_ctx x = {.line = BUF_INIT};
	struct clbsd_err err;
	clbsd_err_init(&err);
	int r = clbsd_client_stream(cli_client(), path.data, on_events, &x, NULL, &err);
	buf_release(&path);
	if (x.line.len)
		event_line(&x, x.line.data, x.line.len);
	buf_release(&x.line);
	if (r < 0)
		return cli_fail(&err);
	return 0;
}
