/*
 * Container commands: run, create, start, wait, stop, kill, restart, rm,
 * undo, ps, inspect, stats.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

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

static int do_create(struct run_opts *o, json_t **ctr, struct clbsd_err *err)
{
	return cli_call("POST", "/v1/containers", o->req, ctr, err);
}

int cmd_create(const struct cli_args *a)
{
	struct run_opts o;
	struct clbsd_err err;
	clbsd_err_init(&err);
	int r = cli_run_request(a, false, &o, &err);
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

/*
 * `run` of a docker container without -d: its output through its logs
 * (dockerd's follow, which ends when the container stops), then its exit
 * status. The wait for the exit is asked first, as docker's CLI does, so
 * its answer is on its way when the output ends.
 */
static int run_docker_attached(const char *name, bool rm)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	int code = 1;
	autofree char *wpath = xasprintf("/v1/containers/%s/wait?condition=not-running", name);
	struct clbsd_err we;
	clbsd_err_init(&we);
	int wfd = clbsd_client_send(cli_client(), "POST", wpath, NULL, &we);
	autofree char *resp = NULL;
	if (cli_follow_logs(name, &err) < 0) {
		fprintf(stderr, "clbsd: run %s: %s\n", name, err.msg);
		if (wfd >= 0)
			close(wfd);
	} else if (wfd >= 0 && clbsd_client_finish(cli_client(), wfd, &resp, NULL, &we) == 0) {
		json_t *j = resp ? json_loads(resp, 0, NULL) : NULL;
		code = (int)json_integer_value(json_object_get(j, "exit_code"));
		json_decref(j);
	} else if (exit_status_of(name, &code) < 0) {
		fprintf(stderr, "clbsd: run %s: it did not stop\n", name);
	}
	if (rm) {
		struct clbsd_err e2;
		clbsd_err_init(&e2);
		autofree char *del = xasprintf("/v1/containers/%s?force=1", name);
		if (cli_call("DELETE", del, NULL, NULL, &e2) < 0)
			fprintf(stderr, "clbsd: run %s: remove: %s\n", name, e2.msg);
	}
	return code;
}

int cmd_run(const struct cli_args *a)
{
	struct run_opts o;
	struct clbsd_err err;
	clbsd_err_init(&err);
	int r = cli_run_request(a, true, &o, &err);
	if (r < 0)
		return cli_fail(&err);
	/*
	 * Create and start in one request (a failed start of a --rm container
	 * is removed by the daemon; a failed create made nothing). A usage
	 * error (exit 2) can only come from the create.
	 */
	/*
	 * A docker container has no shim to attach to: its output is followed
	 * through its logs. Its --rm is done here, after the last lines are
	 * read (dockerd forgets the logs with the container).
	 */
	const char *kind = json_string_value(json_object_get(o.req, "kind"));
	bool docker = kind && strcmp(kind, "docker") == 0;
	if (docker && !o.detach && o.rm)
		json_object_set_new(o.req, "auto_remove", json_false());
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

	if (docker) {
		json_decref(ctr);
		bool rm = o.rm;
		run_opts_release(&o);
		return run_docker_attached(name, rm);
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

int cmd_wait(const struct cli_args *a)
{
	int rc = 0;
	for (int i = 0; i < a->argc; i++) {
		struct clbsd_err err;
		clbsd_err_init(&err);
		autofree char *path = xasprintf("/v1/containers/%s/wait", a->argv[i]);
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

/* The start/stop/kill/restart/rm/undo loop: one request per name, report each. */
static int each(const struct cli_args *a, const char *method, const char *fmt, const char *query)
{
	int rc = 0;
	for (int i = 0; i < a->argc; i++) {
		struct clbsd_err err;
		clbsd_err_init(&err);
		autofree char *path = xasprintf(fmt, a->argv[i]);
		autofree char *full = xasprintf("%s%s", path, query ? query : "");
		if (cli_call(method, full, NULL, NULL, &err) < 0)
			rc = worse(rc, item_fail(&err));
		else
			printf("%s\n", a->argv[i]);
		fflush(stdout);
	}
	return rc;
}

int cmd_undo(const struct cli_args *a)
{
	return each(a, "POST", "/v1/containers/%s/undo", NULL);
}

int cmd_start(const struct cli_args *a)
{
	return each(a, "POST", "/v1/containers/%s/start", NULL);
}

static int stop_like(const struct cli_args *a, const char *fmt)
{
	autofree char *query = NULL;
	const char *t = cli_get(a, "time");
	if (t) {
		long long secs;
		struct clbsd_err err;
		if (cli_parse_secs(t, &secs, &err) < 0)
			return cli_fail(&err);
		query = xasprintf("?t=%lld", secs);
	}
	return each(a, "POST", fmt, query);
}

int cmd_stop(const struct cli_args *a)
{
	return stop_like(a, "/v1/containers/%s/stop");
}

int cmd_restart(const struct cli_args *a)
{
	return stop_like(a, "/v1/containers/%s/restart");
}

int cmd_kill(const struct cli_args *a)
{
	autofree char *query = NULL;
	const char *s = cli_get(a, "signal");
	if (s) {
		int sig;
		if (parse_signal(s, &sig) < 0)
			return cli_usage("invalid signal \"%s\": expected a name like TERM or "
					 "SIGHUP, or a number",
					 s);
		query = xasprintf("?signal=%d", sig);
	}
	return each(a, "POST", "/v1/containers/%s/kill", query);
}

int cmd_rm(const struct cli_args *a)
{
	bool force = cli_has(a, "force"), volumes = cli_has(a, "volumes");
	const char *q = force && volumes ? "?force=1&volumes=1"
			: force		 ? "?force=1"
			: volumes	 ? "?volumes=1"
					 : NULL;
	return each(a, "DELETE", "/v1/containers/%s", q);
}

/* --format for ps (docker's short ids) and inspect (whole ones). */
static int print_format(const struct cli_args *a, const json_t *list, bool full_id)
{
	json_t *extras = json_array();
	int64_t now = time_now_ns();
	size_t i;
	json_t *c;
	json_array_foreach(list, i, c)
		json_array_append_new(extras, fmt_ps_fields(c, now, full_id));
	int rc = cli_print_format(a, list, extras);
	json_decref(extras);
	return rc;
}

static int show_ps(const struct cli_args *a, const json_t *list)
{
	if (cli_has(a, "quiet")) {
		size_t i;
		json_t *c;
		json_array_foreach(list, i, c)
			printf("%s\n", json_string_value(json_object_get(c, "name")));
		return 0;
	}
	if (cli_has(a, "format"))
		return print_format(a, list, false);
	autofree char *t = fmt_ps(list, time_now_ns());
	fputs(t, stdout);
	return 0;
}

/*
 * With -a, the declarations that moved away are rows too: the daemon's
 * status lists them (the same (moved NAME ...) records `clbsd status`
 * prints). -q prints names of containers here only.
 */
int cmd_ps(const struct cli_args *a)
{
	bool all = cli_has(a, "all");
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *list = NULL, *st = NULL;
	if (cli_call("GET", all ? "/v1/containers?all=1" : "/v1/containers", NULL, &list, &err) < 0)
		return cli_fail(&err);
	if (all && !cli_has(a, "quiet")) {
		if (cli_call("GET", "/v1/status", NULL, &st, &err) < 0) {
			json_decref(list);
			return cli_fail(&err);
		}
		fmt_ps_moved(list, json_object_get(st, "moved"));
		json_decref(st);
	}
	int rc = 0;
	if (cli.json && !cli_has(a, "format"))
		cli_print_json(list);
	else
		rc = show_ps(a, list);
	json_decref(list);
	return rc;
}

int cmd_inspect(const struct cli_args *a)
{
	json_t *arr = json_array();
	int rc = 0;
	for (int i = 0; i < a->argc; i++) {
		struct clbsd_err err;
		clbsd_err_init(&err);
		autofree char *path = xasprintf("/v1/containers/%s", a->argv[i]);
		json_t *c = NULL;
		if (cli_call("GET", path, NULL, &c, &err) < 0)
			rc = worse(rc, item_fail(&err));
		else
			json_array_append_new(arr, c);
	}
	if (cli_has(a, "format"))
		rc = worse(rc, print_format(a, arr, true));
	else
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

static void nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/*
 * One table from two samples; streaming (the default), a new one every
 * second from the last two, each replacing the one before on a terminal
 * (cursor home, clear) and following it otherwise, until interrupted.
 */
int cmd_stats(const struct cli_args *a)
{
	const char *name = a->argc ? a->argv[0] : NULL;
	autofree char *path =
		name ? xasprintf("/v1/containers/%s/stats", name) : xstrdup("/v1/stats");
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *s1 = NULL, *s2 = NULL;
	if (stats_sample(path, name != NULL, &s1, &err) < 0)
		return cli_fail(&err);
	if (cli.json) {
		cli_print_json(name ? json_array_get(s1, 0) : s1);
		json_decref(s1);
		return 0;
	}
	bool stream = !cli_has(a, "no-stream");
	bool tty = isatty(STDOUT_FILENO);
	int64_t t0 = time_mono_ns();
	nap_ms(500);
	for (bool first = true;; first = false) {
		if (stats_sample(path, name != NULL, &s2, &err) < 0) {
			json_decref(s1);
			return cli_fail(&err);
		}
		autofree char *t = fmt_stats(s1, s2, time_mono_ns() - t0, host_memory());
		if (stream && tty)
			fputs("\033[H\033[2J", stdout);
		else if (stream && !first)
			fputs("\n", stdout);
		fputs(t, stdout);
		fflush(stdout);
		json_decref(s1);
		s1 = s2;
		s2 = NULL;
		if (!stream)
			break;
		t0 = time_mono_ns();
		nap_ms(1000);
	}
	json_decref(s1);
	return 0;
}
