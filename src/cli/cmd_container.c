/*
 * Container commands: run, create, start, stop, kill, restart, rm, ps,
 * inspect, stats.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

/* Validate every NAME before anything is sent, so a typo changes nothing. */
static int check_names(int argc, char **argv, int first)
{
	if (first >= argc)
		return cli_usage("missing container NAME");
	for (int i = first; i < argc; i++)
		if (!valid_name(argv[i]))
			return cli_usage("invalid container name \"%s\": expected a DNS label "
					 "(lowercase letters, digits and '-')",
					 argv[i]);
	return 0;
}

/* Report one failed item of a multi-name command; returns the exit status it earns. */
static int item_fail(const struct clbsd_err *err)
{
	fflush(stdout);
	fprintf(stderr, "clbsd: %s\n", err->msg);
	return err->kind == CLBSD_E_INVALID ? EXIT_USAGE : 1;
}

static int worse(int a, int b)
{
	return a > b ? a : b;
}

/* Parse options that only consist of -h, --json (when `json`) and -a (when `all`). */
static int simple_opts(int argc, char **argv, bool *all, bool json)
{
	static const struct option lo[] = {
		{"help", no_argument, NULL, 'h'},
		{"json", no_argument, NULL, 'j'},
		{"all", no_argument, NULL, 'a'},
		{NULL, 0, NULL, 0},
	};
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, all ? "+:ha" : "+:h", lo, NULL)) != -1) {
		switch (c) {
		case 'h':
			cli_help();
			return -1;
		case 'j':
			if (!json)
				return cli_bad_opt(c, argv);
			cli.json = true;
			break;
		case 'a':
			if (all) {
				*all = true;
				break;
			}
			/* fall through */
		default:
			return cli_bad_opt(c, argv);
		}
	}
	return 0;
}

/* -h (and --json when `json`): returns 1 after printing help, 0 to go on, else 2. */
static int help_only(int argc, char **argv, bool json)
{
	int r = simple_opts(argc, argv, NULL, json);
	if (r < 0)
		return 1;
	if (r > 0)
		return EXIT_USAGE;
	return 0;
}

static int do_create(struct run_opts *o, json_t **ctr, struct clbsd_err *err)
{
	return cli_call("POST", "/v1/containers", o->req, ctr, err);
}

int cmd_create(int argc, char **argv)
{
	struct run_opts o;
	struct clbsd_err err;
	clbsd_err_init(&err);
	int r = cli_parse_run(argc, argv, false, &o, &err);
	if (r == 1)
		return cli_help();
	if (r < 0)
		return cli_fail(&err);
	json_t *ctr = NULL;
	r = do_create(&o, &ctr, &err);
	run_opts_release(&o);
	if (r < 0)
		return cli_fail(&err);
	if (cli.json)
		cli_print_json(ctr);
	else
		printf("%s\n", json_string_value(json_object_get(ctr, "name")));
	json_decref(ctr);
	return 0;
}

struct sigfwd {
	const char *name;
};

/* run without a raw terminal: pass Ctrl-C and friends on to the container. */
static void forward_signal(int sig, void *ctx)
{
	const struct sigfwd *f = ctx;
	struct clbsd_err err;
	clbsd_err_init(&err);
	autofree char *path = xasprintf("/v1/containers/%s/kill?signal=%d", f->name, sig);
	if (cli_call("POST", path, NULL, NULL, &err) < 0)
		fprintf(stderr, "clbsd: forwarding signal %s: %s\r\n", signal_name(sig), err.msg);
}

/* Why the container's last start failed (waiting for one in progress), or NULL. */
static char *start_error_of(const char *name)
{
	struct clbsd_err err;
	autofree char *path = xasprintf("/v1/containers/%s?wait_start=1", name);
	json_t *c = NULL;
	if (cli_call("GET", path, NULL, &c, &err) < 0)
		return NULL;
	const char *e = json_string_value(json_object_get(c, "start_error"));
	char *why = e && *e ? xstrdup(e) : NULL;
	json_decref(c);
	return why;
}

/* The exit status of a finished container, when the attach could not tell. */
static int exit_status_of(const char *name, int *code)
{
	struct clbsd_err err;
	autofree char *path = xasprintf("/v1/containers/%s", name);
	for (int i = 0; i < 50; i++) {
		json_t *c = NULL;
		if (cli_call("GET", path, NULL, &c, &err) < 0)
			return -1;
		const char *st = json_string_value(json_object_get(c, "state"));
		if (st && strcmp(st, "exited") == 0) {
			*code = (int)json_integer_value(json_object_get(c, "exit_code"));
			json_decref(c);
			return 0;
		}
		json_decref(c);
		usleep(100 * 1000);
	}
	return -1;
}

int cmd_run(int argc, char **argv)
{
	struct run_opts o;
	struct clbsd_err err;
	clbsd_err_init(&err);
	int r = cli_parse_run(argc, argv, true, &o, &err);
	if (r == 1)
		return cli_help();
	if (r < 0)
		return cli_fail(&err);
	/*
	 * Create and start in one request (a failed start of a --rm container
	 * is removed by the daemon; a failed create made nothing). A usage
	 * error (exit 2) can only come from the create.
	 */
	json_t *ctr = NULL;
	r = cli_call("POST", o.detach ? "/v1/containers?start=1" : "/v1/containers?start=1&hold=1",
		     o.req, &ctr, &err);
	if (r < 0) {
		run_opts_release(&o);
		return cli_fail(&err);
	}
	autofree char *name = xstrdup(json_string_value(json_object_get(ctr, "name")));
	if (o.detach) {
		printf("%s\n", name);
		json_decref(ctr);
		run_opts_release(&o);
		return 0;
	}

	const char *sock = json_string_value(json_object_get(ctr, "shim_socket"));
	if (!sock || !*sock) {
		json_decref(ctr);
		run_opts_release(&o);
		fprintf(stderr, "clbsd: container %s has no shim socket to attach to\n", name);
		return 1;
	}
	autofree char *sockpath = xstrdup(sock);
	json_decref(ctr);

	unsigned rows, cols;
	cli_term_size(&rows, &cols);
	json_t *req =
		json_pack("{s:s, s:b, s:b, s:i, s:i, s:b}", "op", "attach", "stdin", o.interactive,
			  "replay", 1, "rows", (int)rows, "cols", (int)cols, "release", 1);
	autofree char *line = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	/*
	 * As docker does, `run` returns once the daemon has recorded the exit
	 * (so a `clbsd start` right after works) and, with --rm, removed the
	 * container (so its image is free again). Asked now, before attaching,
	 * so that the answer is on its way when the container is done.
	 */
	autofree char *wpath = xasprintf("/v1/containers/%s/wait?condition=%s", name,
					 o.rm ? "removed" : "not-running");
	struct clbsd_err we;
	clbsd_err_init(&we);
	int wfd = clbsd_client_send(cli_client(), "POST", wpath, NULL, &we);
	struct sigfwd fwd = {.name = name};
	bool raw = o.tty && o.interactive;
	struct attach_opts ao = {
		.socket = sockpath,
		.request = line,
		.fwd_stdin = o.interactive,
		.raw = raw,
		.detach_key = false,
		.on_signal = raw ? NULL : forward_signal,
		.ctx = &fwd,
	};
	bool rm = o.rm;
	run_opts_release(&o);
	int code = 0;
	r = cli_attach(&ao, &code, &err);
	if (r < 0) {
		if (wfd >= 0)
			close(wfd);
		/* The start may have failed after it was answered (a pooled start). */
		autofree char *why = start_error_of(name);
		if (why) {
			fprintf(stderr, "clbsd: %s\n", why);
			if (rm) {
				struct clbsd_err e2;
				autofree char *del = xasprintf("/v1/containers/%s?force=1", name);
				cli_call("DELETE", del, NULL, NULL, &e2);
			}
			return 1;
		}
		if (exit_status_of(name, &code) == 0)
			return code;
		fprintf(stderr, "clbsd: run %s: %s\n", name, err.msg);
		return 1;
	}
	/*
	 * The answer to the wait asked above. Gone already is fine. The daemon
	 * closes requests after an hour, and may have restarted meanwhile:
	 * then ask again.
	 */
	if (wfd >= 0 && clbsd_client_finish(cli_client(), wfd, NULL, NULL, &we) == 0)
		return code;
	if (wfd >= 0 && we.kind == CLBSD_E_NOTFOUND)
		return code;
	clbsd_err_init(&we);
	if (cli_call("POST", wpath, NULL, NULL, &we) < 0 && we.kind != CLBSD_E_NOTFOUND)
		fprintf(stderr, "clbsd: run %s: %s\n", name, we.msg);
	return code;
}

int cmd_wait(int argc, char **argv)
{
	int r = help_only(argc, argv, false);
	if (r)
		return r == 1 ? 0 : r;
	if ((r = check_names(argc, argv, optind)))
		return r;
	int rc = 0;
	for (int i = optind; i < argc; i++) {
		struct clbsd_err err;
		clbsd_err_init(&err);
		autofree char *path = xasprintf("/v1/containers/%s/wait", argv[i]);
		json_t *j = NULL;
		if (cli_call("POST", path, NULL, &j, &err) < 0) {
			rc = worse(rc, item_fail(&err));
			continue;
		}
		if (cli.json)
			cli_print_json(j);
		else
			printf("%d\n", (int)json_integer_value(json_object_get(j, "exit_code")));
		fflush(stdout);
		json_decref(j);
	}
	return rc;
}

static int each(int argc, char **argv, int first, const char *method, const char *fmt,
		const char *query);

int cmd_undo(int argc, char **argv)
{
	int r = help_only(argc, argv, false);
	if (r)
		return r == 1 ? 0 : r;
	if ((r = check_names(argc, argv, optind)))
		return r;
	return each(argc, argv, optind, "POST", "/v1/containers/%s/undo", NULL);
}

/* The start/stop/kill/restart/rm loop: one request per name, report each. */
static int each(int argc, char **argv, int first, const char *method, const char *fmt,
		const char *query)
{
	int rc = 0;
	for (int i = first; i < argc; i++) {
		struct clbsd_err err;
		clbsd_err_init(&err);
		autofree char *path = xasprintf(fmt, argv[i]);
		autofree char *full = xasprintf("%s%s", path, query ? query : "");
		if (cli_call(method, full, NULL, NULL, &err) < 0)
			rc = worse(rc, item_fail(&err));
		else
			printf("%s\n", argv[i]);
		fflush(stdout);
	}
	return rc;
}

int cmd_start(int argc, char **argv)
{
	int r = help_only(argc, argv, false);
	if (r)
		return r == 1 ? 0 : r;
	if ((r = check_names(argc, argv, optind)))
		return r;
	return each(argc, argv, optind, "POST", "/v1/containers/%s/start", NULL);
}

static int stop_like(int argc, char **argv, const char *fmt)
{
	static const struct option lo[] = {
		{"help", no_argument, NULL, 'h'},
		{"time", required_argument, NULL, 't'},
		{"timeout", required_argument, NULL, 't'},
		{NULL, 0, NULL, 0},
	};
	autofree char *query = NULL;
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:ht:", lo, NULL)) != -1) {
		switch (c) {
		case 'h':
			return cli_help();
		case 't': {
			long long secs;
			struct clbsd_err err;
			if (cli_parse_secs(optarg, &secs, &err) < 0)
				return cli_fail(&err);
			free(query);
			query = xasprintf("?t=%lld", secs);
			break;
		}
		default:
			return cli_bad_opt(c, argv);
		}
	}
	int r = check_names(argc, argv, optind);
	if (r)
		return r;
	return each(argc, argv, optind, "POST", fmt, query);
}

int cmd_stop(int argc, char **argv)
{
	return stop_like(argc, argv, "/v1/containers/%s/stop");
}

int cmd_restart(int argc, char **argv)
{
	return stop_like(argc, argv, "/v1/containers/%s/restart");
}

int cmd_kill(int argc, char **argv)
{
	static const struct option lo[] = {
		{"help", no_argument, NULL, 'h'},
		{"signal", required_argument, NULL, 's'},
		{NULL, 0, NULL, 0},
	};
	autofree char *query = NULL;
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:hs:", lo, NULL)) != -1) {
		switch (c) {
		case 'h':
			return cli_help();
		case 's': {
			int sig;
			if (parse_signal(optarg, &sig) < 0)
				return cli_usage(
					"invalid signal \"%s\": expected a name like TERM or "
					"SIGHUP, or a number",
					optarg);
			free(query);
			query = xasprintf("?signal=%d", sig);
			break;
		}
		default:
			return cli_bad_opt(c, argv);
		}
	}
	int r = check_names(argc, argv, optind);
	if (r)
		return r;
	return each(argc, argv, optind, "POST", "/v1/containers/%s/kill", query);
}

int cmd_rm(int argc, char **argv)
{
	static const struct option lo[] = {
		{"help", no_argument, NULL, 'h'},
		{"force", no_argument, NULL, 'f'},
		{"volumes", no_argument, NULL, 'v'},
		{NULL, 0, NULL, 0},
	};
	bool force = false, volumes = false;
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:hfv", lo, NULL)) != -1) {
		switch (c) {
		case 'h':
			return cli_help();
		case 'f':
			force = true;
			break;
		case 'v':
			volumes = true;
			break;
		default:
			return cli_bad_opt(c, argv);
		}
	}
	int r = check_names(argc, argv, optind);
	if (r)
		return r;
	const char *q = force && volumes ? "?force=1&volumes=1"
			: force		 ? "?force=1"
			: volumes	 ? "?volumes=1"
					 : NULL;
	return each(argc, argv, optind, "DELETE", "/v1/containers/%s", q);
}

int cmd_ps(int argc, char **argv)
{
	bool all = false;
	int r = simple_opts(argc, argv, &all, true);
	if (r)
		return r < 0 ? 0 : r;
	if (optind < argc)
		return cli_usage("unexpected argument \"%s\"", argv[optind]);
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *list = NULL;
	if (cli_call("GET", all ? "/v1/containers?all=1" : "/v1/containers", NULL, &list, &err) < 0)
		return cli_fail(&err);
	if (cli.json) {
		cli_print_json(list);
	} else {
		autofree char *t = fmt_ps(list, time_now_ns());
		fputs(t, stdout);
	}
	json_decref(list);
	return 0;
}

int cmd_inspect(int argc, char **argv)
{
	int r = help_only(argc, argv, true);
	if (r)
		return r == 1 ? 0 : r;
	if ((r = check_names(argc, argv, optind)))
		return r;
	json_t *arr = json_array();
	int rc = 0;
	for (int i = optind; i < argc; i++) {
		struct clbsd_err err;
		clbsd_err_init(&err);
		autofree char *path = xasprintf("/v1/containers/%s", argv[i]);
		json_t *c = NULL;
		if (cli_call("GET", path, NULL, &c, &err) < 0)
			rc = worse(rc, item_fail(&err));
		else
			json_array_append_new(arr, c);
	}
	cli_print_json(arr);
	json_decref(arr);
	return rc;
}

static int64_t host_memory(void)
{
	struct sysinfo si;
	if (sysinfo(&si) < 0)
		return 0;
	return (int64_t)si.totalram * (int64_t)si.mem_unit;
}

static int stats_sample(const char *path, bool single, json_t **out, struct clbsd_err *err)
{
	json_t *j = NULL;
	int r = cli_call("GET", path, NULL, &j, err);
	if (r < 0)
		return r;
	if (single) {
		json_t *a = json_array();
		json_array_append_new(a, j);
		j = a;
	}
	*out = j;
	return 0;
}

int cmd_stats(int argc, char **argv)
{
	int r = help_only(argc, argv, true);
	if (r)
		return r == 1 ? 0 : r;
	const char *name = NULL;
	if (optind < argc) {
		name = argv[optind++];
		if (!valid_name(name))
			return cli_usage("invalid container name \"%s\": expected a DNS label",
					 name);
	}
	if (optind < argc)
		return cli_usage("unexpected argument \"%s\"", argv[optind]);
	autofree char *path =
		name ? xasprintf("/v1/containers/%s/stats", name) : xstrdup("/v1/stats");
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *a = NULL, *b = NULL;
	if (stats_sample(path, name != NULL, &a, &err) < 0)
		return cli_fail(&err);
	if (cli.json) {
		cli_print_json(name ? json_array_get(a, 0) : a);
		json_decref(a);
		return 0;
	}
	int64_t t0 = time_mono_ns();
	struct timespec ts = {0, 500 * 1000 * 1000};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	if (stats_sample(path, name != NULL, &b, &err) < 0) {
		json_decref(a);
		return cli_fail(&err);
	}
	autofree char *t = fmt_stats(a, b, time_mono_ns() - t0, host_memory());
	fputs(t, stdout);
	json_decref(a);
	json_decref(b);
	return 0;
}
