/*
 * Streaming commands: logs (CRI lines -> the container's stdout and stderr)
 * and events (NDJSON -> one line per event).
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
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

int cmd_logs(int argc, char **argv)
{
	static const struct option lo[] = {
		{"help", no_argument, NULL, 'h'},
		{"follow", no_argument, NULL, 'f'},
		{"tail", required_argument, NULL, 'n'},
		{"timestamps", no_argument, NULL, 'T'},
		{NULL, 0, NULL, 0},
	};
	bool follow = false, ts = false;
	long long tail = -1;
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:hfn:T", lo, NULL)) != -1) {
		switch (c) {
		case 'h':
			return cli_help();
		case 'f':
			follow = true;
			break;
		case 'T':
			ts = true;
			break;
		case 'n':
			if (strcmp(optarg, "all") == 0)
				tail = -1;
			else if (parse_int(optarg, 0, 1LL << 40, &tail) < 0)
				return cli_usage(
					"invalid --tail \"%s\": expected a number of lines "
					"or \"all\"",
					optarg);
			break;
		default:
			return cli_bad_opt(c, argv);
		}
	}
	if (optind >= argc)
		return cli_usage("missing container NAME");
	const char *name = argv[optind++];
	if (!valid_name(name))
		return cli_usage("invalid container name \"%s\": expected a DNS label", name);
	if (optind < argc)
		return cli_usage("unexpected argument \"%s\"", argv[optind]);

	struct buf path = BUF_INIT;
	buf_addf(&path, "/v1/containers/%s/logs", name);
	char sep = '?';
	if (follow) {
		buf_addf(&path, "%cfollow=1", sep);
		sep = '&';
	}
	if (tail >= 0)
		buf_addf(&path, "%ctail=%lld", sep, tail);

	struct logs_ctx x = {.out = BUF_INIT, .err = BUF_INIT};
	logw_init(&x.w, ts);
	struct clbsd_err err;
	clbsd_err_init(&err);
	int r = clbsd_client_stream(cli_client(), path.data, on_logs, &x, NULL, &err);
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

int cmd_events(int argc, char **argv)
{
	static const struct option lo[] = {
		{"help", no_argument, NULL, 'h'},
		{"follow", no_argument, NULL, 'f'},
		{"since", required_argument, NULL, 's'},
		{"container", required_argument, NULL, 'c'},
		{"type", required_argument, NULL, 't'},
		{"json", no_argument, NULL, 'j'},
		{NULL, 0, NULL, 0},
	};
	long long since = -1;
	bool follow = false;
	const char *ctr = NULL, *type = NULL;
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:hf", lo, NULL)) != -1) {
		switch (c) {
		case 'h':
			return cli_help();
		case 'f':
			follow = true;
			break;
		case 's':
			if (parse_int(optarg, 0, INT64_MAX, &since) < 0)
				return cli_usage(
					"invalid --since \"%s\": expected an event sequence "
					"number",
					optarg);
			break;
		case 'c':
			if (!valid_name(optarg))
				return cli_usage("invalid --container \"%s\": expected a container "
						 "name",
						 optarg);
			ctr = optarg;
			break;
		case 't':
			if (!*optarg ||
			    strspn(optarg, "abcdefghijklmnopqrstuvwxyz.-_") != strlen(optarg))
				return cli_usage(
					"invalid --type \"%s\": expected an event type like "
					"container.exited or a prefix like container",
					optarg);
			type = optarg;
			break;
		case 'j':
			cli.json = true;
			break;
		default:
			return cli_bad_opt(c, argv);
		}
	}
	if (optind < argc)
		return cli_usage("unexpected argument \"%s\"", argv[optind]);
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
