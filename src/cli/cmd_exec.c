/*
 * exec and console: commands that speak to a container's shim.
 */
#include "cli.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/*
 * A session the daemon opened (exec -it, a docker console): its answer's
 * "socket" and "request", the request given the terminal's size when sized
 * (only the client knows it). 0 with *sock and *line set, or 1 after
 * saying what the answer lacks.
 */
static int session_of(json_t *resp, const char *cmd, const char *name, bool sized, char **sock,
		      char **line)
{
	const char *s = json_string_value(json_object_get(resp, "socket"));
	json_t *req = json_object_get(resp, "request");
	if (!s || !(json_is_string(req) || json_is_object(req))) {
		fprintf(stderr,
			"clbsd: %s %s: the daemon's answer lacks \"socket\" or \"request\"\n", cmd,
			name);
		return 1;
	}
	*sock = xstrdup(s);
	if (json_is_string(req)) {
		*line = xstrdup(json_string_value(req));
		return 0;
	}
	unsigned rows, cols;
	cli_term_size(&rows, &cols);
	if (sized && rows && cols) {
		json_object_set_new(req, "rows", json_integer(rows));
		json_object_set_new(req, "cols", json_integer(cols));
	}
	*line = json_dumps(req, JSON_COMPACT);
	return 0;
}

int cmd_exec(const struct cli_args *a)
{
	struct exec_opts o;
	struct clbsd_err err;
	clbsd_err_init(&err);
	int r = cli_exec_request(a, &o, &err);
	if (r < 0)
		return cli_fail(&err);
	autofree char *name = xstrdup(o.name);
	autofree char *path = xasprintf("/v1/containers/%s/exec", name);
	json_t *resp = NULL;
	r = cli_call("POST", path, o.req, &resp, &err);
	bool interactive = o.tty || o.interactive;
	bool tty = o.tty, fwd = o.interactive;
	exec_opts_release(&o);
	if (r < 0)
		return cli_fail(&err);

	if (!interactive) {
		const char *out = json_string_value(json_object_get(resp, "stdout"));
		const char *errs = json_string_value(json_object_get(resp, "stderr"));
		size_t olen = json_string_length(json_object_get(resp, "stdout"));
		size_t elen = json_string_length(json_object_get(resp, "stderr"));
		if (out && olen)
			write_all(STDOUT_FILENO, out, olen);
		if (errs && elen)
			write_all(STDERR_FILENO, errs, elen);
		int code = (int)json_integer_value(json_object_get(resp, "exit_code"));
		json_decref(resp);
		return code;
	}

	autofree char *sockpath = NULL;
	autofree char *line = NULL;
	r = session_of(resp, "exec", name, tty, &sockpath, &line);
	json_decref(resp);
	if (r)
		return r;
	struct attach_opts ao = {
		.socket = sockpath,
		.request = line,
		.fwd_stdin = fwd,
		.raw = tty && fwd,
	};
	int code = 0;
	r = cli_attach(&ao, &code, &err);
	if (r < 0) {
		fprintf(stderr, "clbsd: exec %s: %s\n", name, err.msg);
		return 1;
	}
	return code;
}

/* The attach of a console session, for both kinds: Ctrl-Q detaches. */
static int console_session(const char *name, const char *sockpath, const char *line)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	struct attach_opts ao = {
		.socket = sockpath,
		.request = line,
		.fwd_stdin = true,
		.raw = true,
		.detach_key = true,
	};
	if (isatty(STDERR_FILENO))
		fprintf(stderr, "[attached to %s; Ctrl-Q detaches]\r\n", name);
	int code = 0;
	int r = cli_attach(&ao, &code, &err);
	if (r < 0) {
		fprintf(stderr, "clbsd: console %s: %s\n", name, err.msg);
		return 1;
	}
	if (r == 1) {
		fprintf(stderr, "%s[detached from %s]\n", isatty(STDERR_FILENO) ? "\n" : "", name);
		return code ? code : 0;
	}
	return code;
}

/* A docker container's console: a session socket clbsdd makes for it. */
static int docker_console(const char *name)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	autofree char *path = xasprintf("/v1/containers/%s/attach", name);
	json_t *resp = NULL;
	if (cli_call("POST", path, NULL, &resp, &err) < 0)
		return cli_fail(&err);
	autofree char *sockpath = NULL;
	autofree char *line = NULL;
	int r = session_of(resp, "console", name, true, &sockpath, &line);
	json_decref(resp);
	if (r)
		return r;
	return console_session(name, sockpath, line);
}

int cmd_console(const struct cli_args *a)
{
	const char *name = a->argv[0];
	struct clbsd_err err;
	clbsd_err_init(&err);
	autofree char *path = xasprintf("/v1/containers/%s", name);
	json_t *ctr = NULL;
	if (cli_call("GET", path, NULL, &ctr, &err) < 0)
		return cli_fail(&err);
	const char *state = json_string_value(json_object_get(ctr, "state"));
	const char *kind = json_string_value(json_object_get(ctr, "kind"));
	if (kind && strcmp(kind, "docker") == 0) {
		json_decref(ctr);
		return docker_console(name);
	}
	const char *sock = json_string_value(json_object_get(ctr, "shim_socket"));
	if (!state || strcmp(state, "running") != 0 || !sock || !*sock) {
		fprintf(stderr,
			"clbsd: container %s is %s, not running; start it with 'clbsd start %s'\n",
			name, state ? state : "in an unknown state", name);
		json_decref(ctr);
		return 1;
	}
	autofree char *sockpath = xstrdup(sock);
	json_decref(ctr);

	unsigned rows, cols;
	cli_term_size(&rows, &cols);
	json_t *req = json_pack("{s:s, s:b, s:b, s:i, s:i, s:b}", "op", "attach", "stdin", 1,
				"replay", 1, "rows", (int)rows, "cols", (int)cols, "release", 0);
	autofree char *line = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	return console_session(name, sockpath, line);
}
