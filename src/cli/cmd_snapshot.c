/*
 * Snapshots, rollback and clones: `clbsd snapshot NAME [LABEL]`,
 * `clbsd snapshots [--rm LABEL] NAME`, `clbsd rollback [-f] [-t SECS] NAME LABEL`,
 * `clbsd clone SRC[@LABEL] NEW`.
 */
#include "cli.h"
#include "util/json.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* A snapshot label as the storage drivers accept it. */
static bool valid_label(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum =
			(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || !strchr("_.:-", c)))
			return false;
	}
	return true;
}

static int check_name(const char *name)
{
	if (!valid_name(name))
		return cli_usage("invalid container name \"%s\"", name);
	return 0;
}

static int check_label(const char *label)
{
	if (!valid_label(label))
		return cli_usage("invalid snapshot label \"%s\": letters, digits and _.:- "
				 "(64 at most, starting with a letter or digit)",
				 label);
	return 0;
}

/*
 * The option loop these commands share: -h/--help and --json are handled
 * here, every other option goes to opt(). Returns 0 to go on, -1 after the
 * help was shown, or the usage status to exit with.
 */
typedef int (*opt_fn)(int c, const char *arg, void *ctx);
static int parse_opts(int argc, char **argv, const char *shortopts, const struct option *extra,
		      opt_fn opt, void *ctx)
{
	struct option lo[8] = {
		{"help", no_argument, NULL, 'h'},
		{"json", no_argument, NULL, 'j'},
	};
	size_t n = 2;
	for (; extra && extra->name && n < ARRAY_SIZE(lo) - 1; extra++)
		lo[n++] = *extra;
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, shortopts, lo, NULL)) != -1) {
		int r;
		switch (c) {
		case 'h':
			cli_help();
			return -1;
		case 'j':
			cli.json = true;
			break;
		case ':':
		case '?':
			return cli_bad_opt(c, argv);
		default:
			if ((r = opt(c, optarg, ctx)) != 0)
				return r;
			break;
		}
	}
	return 0;
}

/* -t SECS for the commands that stop a container. */
static int opt_secs(const char *arg, const char **out)
{
	long long v;
	if (parse_int(arg, 0, 86400, &v) < 0)
		return cli_usage("-t %s: want seconds from 0 to 86400", arg);
	*out = arg;
	return 0;
}

/* For a command whose one option takes a value: keep it. */
static int store_arg(int c, const char *arg, void *ctx)
{
	*(const char **)ctx = arg;
	return 0;
}

/* Exactly one operand left, a valid container name: *name. Else the usage status. */
static int one_name(int argc, char **argv, const char **name)
{
	if (argc - optind < 1)
		return cli_usage("missing container NAME");
	if (argc - optind > 1)
		return cli_usage("unexpected argument \"%s\"", argv[optind + 1]);
	*name = argv[optind];
	return check_name(*name);
}

static void print_snapshots(const json_t *list)
{
	if (cli.json) {
		cli_print_json(list);
		return;
	}
	static const char *const hdr[] = {"LABEL", "CREATED", "USED"};
	struct table t;
	table_init(&t, ARRAY_SIZE(hdr), hdr);
	int64_t now = time_now_ns();
	size_t i;
	json_t *s;
	json_array_foreach(list, i, s)
	{
		char created[64] = "", used[32];
		int64_t ct = json_time_get(s, "created_at");
		if (ct)
			fmt_ago(ct, now, created, sizeof(created));
		fmt_size(json_integer_value(json_object_get(s, "used")), used, sizeof(used));
		const char *row[] = {json_string_value(json_object_get(s, "label")), created, used};
		table_add(&t, row);
	}
	autofree char *text = table_render(&t);
	fputs(text, stdout);
	table_release(&t);
}

int cmd_snapshot(int argc, char **argv)
{
	int r = cli_opts_json(argc, argv, NULL);
	if (r)
		return r < 0 ? 0 : r;
	int n = argc - optind;
	if (n < 1)
		return cli_usage("missing container NAME");
	if (n > 2)
		return cli_usage("unexpected argument \"%s\"", argv[optind + 2]);
	const char *name = argv[optind], *label = n > 1 ? argv[optind + 1] : NULL;
	if ((r = check_name(name)) || (label && (r = check_label(label))))
		return r;
	json_t *body = label ? json_pack("{s:s}", "label", label) : json_object();
	autofree char *path = xasprintf("/v1/containers/%s/snapshots", name);
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *list = NULL;
	r = cli_call("POST", path, body, &list, &err);
	json_decref(body);
	if (r < 0)
		return cli_fail(&err);
	/* The list comes back oldest first; a made-up label is the newest. */
	json_t *made = label ? NULL : json_array_get(list, json_array_size(list) - 1);
	printf("%s\n", label ? label : json_string_value(json_object_get(made, "label")));
	json_decref(list);
	return 0;
}

int cmd_snapshots(int argc, char **argv)
{
	static const struct option lo[] = {
		{"rm", required_argument, NULL, 'r'},
		{NULL, 0, NULL, 0},
	};
	const char *rm = NULL;
	int pr = parse_opts(argc, argv, "+:h", lo, store_arg, &rm);
	if (pr)
		return pr < 0 ? 0 : pr;
	const char *name;
	int r;
	if ((r = one_name(argc, argv, &name)) || (rm && (r = check_label(rm))))
		return r;
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *list = NULL;
	autofree char *path = rm ? xasprintf("/v1/containers/%s/snapshots/%s", name, rm)
				 : xasprintf("/v1/containers/%s/snapshots", name);
	if (cli_call(rm ? "DELETE" : "GET", path, NULL, &list, &err) < 0)
		return cli_fail(&err);
	print_snapshots(list);
	json_decref(list);
	return 0;
}

struct rollback_opts {
	bool force;
	const char *t;
};

static int rollback_opt(int c, const char *arg, void *ctx)
{
	struct rollback_opts *o = ctx;
	if (c == 'f') {
		o->force = true;
		return 0;
	}
	return opt_secs(arg, &o->t);
}

int cmd_rollback(int argc, char **argv)
{
	static const struct option lo[] = {
		{"force", no_argument, NULL, 'f'},
		{"time", required_argument, NULL, 't'},
		{NULL, 0, NULL, 0},
	};
	struct rollback_opts o = {.t = "10"};
	int pr = parse_opts(argc, argv, "+:hft:", lo, rollback_opt, &o);
	if (pr)
		return pr < 0 ? 0 : pr;
	bool force = o.force;
	const char *t = o.t;
	if (argc - optind < 2)
		return cli_usage(argc - optind < 1 ? "missing container NAME and LABEL"
						   : "missing snapshot LABEL");
	if (argc - optind > 2)
		return cli_usage("unexpected argument \"%s\"", argv[optind + 2]);
	const char *name = argv[optind], *label = argv[optind + 1];
	int r;
	if ((r = check_name(name)) || (r = check_label(label)))
		return r;
	autofree char *path = xasprintf("/v1/containers/%s/rollback?label=%s&t=%s%s", name, label,
					t, force ? "&force=1" : "");
	return cli_send("POST", path, NULL, name, NULL);
}

int cmd_clone(int argc, char **argv)
{
	int r = cli_opts_json(argc, argv, NULL);
	if (r)
		return r < 0 ? 0 : r;
	if (argc - optind < 2)
		return cli_usage(argc - optind < 1 ? "missing SRC[@LABEL] and NEW" : "missing NEW");
	if (argc - optind > 2)
		return cli_usage("unexpected argument \"%s\"", argv[optind + 2]);
	autofree char *src = xstrdup(argv[optind]);
	const char *dst = argv[optind + 1];
	char *at = strchr(src, '@');
	const char *label = NULL;
	if (at) {
		*at = '\0';
		label = at + 1;
	}
	if ((r = check_name(src)) || (label && (r = check_label(label))) || (r = check_name(dst)))
		return r;
	json_t *body = label ? json_pack("{s:s,s:s}", "name", dst, "label", label)
			     : json_pack("{s:s}", "name", dst);
	autofree char *path = xasprintf("/v1/containers/%s/clone", src);
	return cli_send("POST", path, body, dst, NULL);
}

/* Copy a file to fd, or fd to a new file (mode 0600). */
static int copy_fd(int in, int out, const char *what, struct clbsd_err *err)
{
	char buf[1 << 16];
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "read %s", what);
		if (n == 0)
			return 0;
		int r = write_all(out, buf, (size_t)n);
		if (r < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, -r, "write %s", what);
	}
}

static int copy_file_to(const char *path, int out, struct clbsd_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno,
				     "open %s (the daemon wrote it; exporting to standard output "
				     "needs the same user as the daemon)",
				     path);
	int r = copy_fd(fd, out, path, err);
	close(fd);
	return r;
}

struct export_cli {
	const char *out, *snapshot, *since;
};

static int export_opt(int c, const char *arg, void *ctx)
{
	struct export_cli *o = ctx;
	if (c == 'o')
		o->out = arg;
	else if (c == 'S')
		o->snapshot = arg;
	else
		o->since = arg;
	return 0;
}

int cmd_export(int argc, char **argv)
{
	static const struct option lo[] = {
		{"output", required_argument, NULL, 'o'},
		{"snapshot", required_argument, NULL, 'S'},
		{"since", required_argument, NULL, 'I'},
		{NULL, 0, NULL, 0},
	};
	struct export_cli eo = {0};
	int pr = parse_opts(argc, argv, "+:ho:", lo, export_opt, &eo);
	if (pr)
		return pr < 0 ? 0 : pr;
	const char *out = eo.out;
	if (eo.snapshot && check_label(eo.snapshot))
		return EXIT_USAGE;
	if (eo.since && check_label(eo.since))
		return EXIT_USAGE;
	const char *name;
	int r;
	if ((r = one_name(argc, argv, &name)))
		return r;
	bool to_stdout = out && strcmp(out, "-") == 0;
	if (to_stdout && isatty(STDOUT_FILENO))
		return cli_usage("-o -: standard output is a terminal; redirect it or give a FILE");
	/* To standard output: the daemon writes a file in a private directory, streamed here. */
	char tmpdir[] = "/tmp/clbsd-export.XXXXXX";
	if (to_stdout && !mkdtemp(tmpdir)) {
		fprintf(stderr, "clbsd: export: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	autofree char *dflt = xasprintf("%s.clbsd", name);
	autofree char *path = to_stdout ? xasprintf("%s/%s.clbsd", tmpdir, name)
					: cli_abs_target(out ? out : dflt);
	if (!path)
		return cli_usage("cannot write \"%s\": its directory does not exist",
				 out ? out : dflt);
	json_t *body = json_pack("{s:s}", "path", path);
	if (eo.snapshot)
		json_object_set_new(body, "label", json_string(eo.snapshot));
	if (eo.since)
		json_object_set_new(body, "from", json_string(eo.since));
	autofree char *url = xasprintf("/v1/containers/%s/export", name);
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *res = NULL;
	r = cli_call("POST", url, body, &res, &err);
	json_decref(body);
	if (r == 0 && to_stdout)
		r = copy_file_to(path, STDOUT_FILENO, &err);
	if (to_stdout) {
		unlink(path);
		rmdir(tmpdir);
	}
	if (r < 0) {
		json_decref(res);
		return cli_fail(&err);
	}
	if (cli.json && !to_stdout)
		cli_print_json(res);
	else if (!to_stdout)
		printf("%s\n", path);
	json_decref(res);
	return 0;
}

struct import_cli {
	const char *name;
	bool allow_host;
};

static int import_opt(int c, const char *arg, void *ctx)
{
	struct import_cli *o = ctx;
	if (c == 'n')
		o->name = arg;
	else
		o->allow_host = true;
	return 0;
}

/* What an imported container reaches of the host, said on stderr. */
static void say_host_access(const json_t *ctr)
{
	const char *name = json_string_value(json_object_get(ctr, "name"));
	const json_t *cf = json_object_get(ctr, "config");
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(cf, "volumes"), i, v)
		fprintf(stderr, "clbsd: import: %s has volume %s at %s%s\n", name ? name : "?",
			json_string_value(json_object_get(v, "source")),
			json_string_value(json_object_get(v, "dest")),
			json_is_true(json_object_get(v, "readonly")) ? " (read-only)" : "");
	const char *mode =
		json_string_value(json_object_get(json_object_get(ctr, "network"), "mode"));
	if (mode && strcmp(mode, "host") == 0)
		fprintf(stderr, "clbsd: import: %s uses the host's network\n", name ? name : "?");
}

int cmd_import(int argc, char **argv)
{
	static const struct option lo[] = {
		{"name", required_argument, NULL, 'n'},
		{"allow-host-access", no_argument, NULL, 'H'},
		{NULL, 0, NULL, 0},
	};
	struct import_cli io = {0};
	int pr = parse_opts(argc, argv, "+:h", lo, import_opt, &io);
	if (pr)
		return pr < 0 ? 0 : pr;
	const char *name = io.name;
	if (argc - optind < 1)
		return cli_usage("missing FILE");
	if (argc - optind > 1)
		return cli_usage("unexpected argument \"%s\"", argv[optind + 1]);
	int r;
	if (name && (r = check_name(name)))
		return r;
	/* From standard input: kept in a private file for the daemon to read. */
	bool from_stdin = strcmp(argv[optind], "-") == 0;
	char tmpdir[] = "/tmp/clbsd-import.XXXXXX";
	autofree char *path = NULL;
	if (from_stdin) {
		if (isatty(STDIN_FILENO))
			return cli_usage("-: standard input is a terminal; pipe an export into it");
		if (!mkdtemp(tmpdir)) {
			fprintf(stderr, "clbsd: import: mkdtemp: %s\n", strerror(errno));
			return 1;
		}
		path = xasprintf("%s/in.clbsd", tmpdir);
		struct clbsd_err e;
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 || copy_fd(STDIN_FILENO, fd, "standard input", &e) < 0) {
			if (fd < 0)
				clbsd_err_set(&e, CLBSD_E_INTERNAL, errno, "create %s", path);
			else
				close(fd);
			unlink(path);
			rmdir(tmpdir);
			return cli_fail(&e);
		}
		close(fd);
	} else {
		path = cli_abs_target(argv[optind]);
	}
	if (!path)
		return cli_usage("cannot read \"%s\": its directory does not exist", argv[optind]);
	json_t *body = name ? json_pack("{s:s,s:s}", "path", path, "name", name)
			    : json_pack("{s:s}", "path", path);
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *ctr = NULL;
	/* Without the flag the daemon refuses host binds and host networking, listing them. */
	r = cli_call("POST", io.allow_host ? "/v1/import?allow_host_access=1" : "/v1/import", body,
		     &ctr, &err);
	json_decref(body);
	if (from_stdin) {
		unlink(path);
		rmdir(tmpdir);
	}
	if (r < 0)
		return cli_fail(&err);
	if (io.allow_host)
		say_host_access(ctr);
	if (cli.json)
		cli_print_json(ctr);
	else
		printf("%s\n", json_string_value(json_object_get(ctr, "name")));
	json_decref(ctr);
	return 0;
}

/* One request to another daemon (migrate's target); the answer parsed as JSON. */
static int call_other(struct clbsd_client *cl, const char *method, const char *path,
		      const json_t *body, json_t **out, struct clbsd_err *err)
{
	autofree char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	autofree char *resp = NULL;
	int r = clbsd_client_request(cl, method, path, text, out ? &resp : NULL, NULL, err);
	if (r < 0 || !out)
		return r;
	*out = json_loads(resp, 0, NULL);
	return 0;
}

static void progress(const char *name, const char *what)
{
	fprintf(stderr, "migrate %s: %s\n", name, what);
}

/*
 * Where migrate sends the container: another daemon's socket on this host,
 * or one on another host reached by ssh, where `clbsd` (CLBSD_REMOTE, or
 * "clbsd" on the remote PATH) runs each step. ssh runs non-interactively
 * (BatchMode); CLBSD_SSH_COMMAND replaces "ssh" (like GIT_SSH_COMMAND).
 */
struct target {
	const char *label;
	struct clbsd_client *cl; /* unix */
	bool ssh;
	char *dest, *port, *socket; /* ssh: [user@]host, port or NULL, socket or NULL */
};

/* "ssh://[user@]host[:port][/path/to/socket]" */
static int parse_ssh(const char *to, struct target *t)
{
	const char *p = to + 6;
	const char *slash = strchr(p, '/');
	autofree char *hostpart = slash ? xstrndup(p, (size_t)(slash - p)) : xstrdup(p);
	if (!*hostpart)
		return -1;
	char *at = strrchr(hostpart, '@');
	char *colon = strrchr(at ? at : hostpart, ':');
	if (colon && !strchr(colon, ']')) {
		*colon = '\0';
		long long port;
		if (parse_int(colon + 1, 1, 65535, &port) < 0)
			return -1;
		t->port = xstrdup(colon + 1);
	}
	for (const char *c = hostpart; *c; c++)
		if (!(isalnum((unsigned char)*c) || strchr("@.-_[]:", *c)))
			return -1;
	if (hostpart[0] == '-' || hostpart[strlen(hostpart) - 1] == '@')
		return -1;
	t->dest = xstrdup(hostpart);
	t->socket = slash && slash[1] ? xstrdup(slash) : NULL;
	if (t->socket && !fs_path_is_clean_abs(t->socket))
		return -1;
	t->ssh = true;
	return 0;
}

/* Quote one word for the remote shell. */
static void sh_quote(struct buf *b, const char *w)
{
	buf_addc(b, '\'');
	for (; *w; w++) {
		if (*w == '\'')
			buf_adds(b, "'\\''");
		else
			buf_addc(b, *w);
	}
	buf_addc(b, '\'');
}

/* Run `clbsd [--socket S] ARGS...` on the target over ssh; stdin from in_fd. */
static int remote(struct target *t, const char *const *args, int in_fd, char **out,
		  struct clbsd_err *err)
{
	struct buf cmd = BUF_INIT;
	const char *exe = getenv("CLBSD_REMOTE");
	sh_quote(&cmd, exe && *exe ? exe : "clbsd");
	if (t->socket) {
		buf_adds(&cmd, " --socket ");
		sh_quote(&cmd, t->socket);
	}
	for (size_t i = 0; args[i]; i++) {
		buf_addc(&cmd, ' ');
		sh_quote(&cmd, args[i]);
	}
	buf_addc(&cmd, '\0');
	struct strv argv = STRV_INIT;
	const char *sshcmd = getenv("CLBSD_SSH_COMMAND");
	if (sshcmd && *sshcmd) {
		strv_push(&argv, "/bin/sh");
		strv_push(&argv, "-c");
		strv_push_owned(&argv, xasprintf("%s \"$@\"", sshcmd));
		strv_push(&argv, "ssh");
	} else {
		strv_push(&argv, "ssh");
	}
	strv_push(&argv, "-o");
	strv_push(&argv, "BatchMode=yes");
	if (t->port) {
		strv_push(&argv, "-p");
		strv_push(&argv, t->port);
	}
	strv_push(&argv, "--");
	strv_push(&argv, t->dest);
	strv_push(&argv, cmd.data);
	int r = proc_run_in(argv.v, in_fd, out, err);
	strv_release(&argv);
	buf_release(&cmd);
	if (r < 0)
		return clbsd_err_prefix(err, "on %s", t->dest);
	return 0;
}

/* The target answers; *driver (caller frees) is its storage driver. */
static int target_check(struct target *t, char **driver, struct clbsd_err *err)
{
	json_t *info = NULL;
	if (!t->ssh) {
		if (call_other(t->cl, "GET", "/v1/info", NULL, &info, err) < 0)
			return -err->code;
	} else {
		const char *args[] = {"--json", "info", NULL};
		autofree char *out = NULL;
		if (remote(t, args, -1, &out, err) < 0)
			return -err->code;
		info = json_loads(out ? out : "", 0, NULL);
	}
	const char *drv =
		json_string_value(json_object_get(json_object_get(info, "storage"), "driver"));
	*driver = xstrdup(drv ? drv : "");
	json_decref(info);
	return 0;
}

/* Remove a snapshot there (best effort: they only hold space). */
static void target_drop_snapshot(struct target *t, const char *name, const char *label)
{
	struct clbsd_err err;
	if (!t->ssh) {
		autofree char *p = xasprintf("/v1/containers/%s/snapshots/%s", name, label);
		call_other(t->cl, "DELETE", p, NULL, NULL, &err);
		return;
	}
	const char *args[] = {"snapshots", "--rm", label, name, NULL};
	remote(t, args, -1, NULL, &err);
}

/* Export NAME to file (incremental since `from` when given, keeping `label`). */
static int export_to(const char *name, const char *file, const char *label, const char *from,
		     int64_t *bytes, struct clbsd_err *err)
{
	json_t *body = json_pack("{s:s}", "path", file);
	if (label)
		json_object_set_new(body, "label", json_string(label));
	if (from)
		json_object_set_new(body, "from", json_string(from));
	autofree char *p = xasprintf("/v1/containers/%s/export", name);
	json_t *res = NULL;
	int r = cli_call("POST", p, body, &res, err);
	json_decref(body);
	*bytes = json_integer_value(json_object_get(res, "stream_bytes"));
	json_decref(res);
	return r;
}

static int target_import(struct target *t, const char *file, struct clbsd_err *err)
{
	if (!t->ssh) {
		/*
		 * The archive is of a container the operator runs here, just
		 * made: what it reaches of the host was allowed when it was
		 * created, and moves with it.
		 */
		json_t *body = json_pack("{s:s}", "path", file);
		int r = call_other(t->cl, "POST", "/v1/import?allow_host_access=1", body, NULL,
				   err);
		json_decref(body);
		return r;
	}
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open %s", file);
	const char *args[] = {"import", "--allow-host-access", "-", NULL};
	autofree char *out = NULL;
	int r = remote(t, args, fd, &out, err);
	close(fd);
	return r;
}

/* Start it there; *running says whether it then runs. */
static int target_start(struct target *t, const char *name, bool *running, struct clbsd_err *err)
{
	json_t *res = NULL;
	if (!t->ssh) {
		autofree char *p = xasprintf("/v1/containers/%s/start", name);
		if (call_other(t->cl, "POST", p, NULL, &res, err) < 0)
			return -err->code;
	} else {
		const char *start[] = {"start", name, NULL};
		const char *inspect[] = {"--json", "inspect", name, NULL};
		autofree char *out = NULL;
		if (remote(t, start, -1, NULL, err) < 0 || remote(t, inspect, -1, &out, err) < 0)
			return -err->code;
		json_t *a = json_loads(out ? out : "", 0, NULL);
		res = json_incref(json_array_get(a, 0));
		json_decref(a);
	}
	const char *s2 = json_string_value(json_object_get(res, "state"));
	*running = s2 && strcmp(s2, "running") == 0;
	json_decref(res);
	return 0;
}

static int target_remove(struct target *t, const char *name, struct clbsd_err *err)
{
	if (!t->ssh) {
		autofree char *p = xasprintf("/v1/containers/%s?force=1", name);
		return call_other(t->cl, "DELETE", p, NULL, NULL, err);
	}
	const char *args[] = {"rm", "-f", name, NULL};
	return remote(t, args, -1, NULL, err);
}

static void target_release(struct target *t)
{
	if (t->cl)
		clbsd_client_free(t->cl);
	free(t->dest);
	free(t->port);
	free(t->socket);
}

struct migrate_opts {
	const char *to, *t;
	bool keep;
};

static int migrate_opt(int c, const char *arg, void *ctx)
{
	struct migrate_opts *o = ctx;
	if (c == 'T')
		o->to = arg;
	else if (c == 'k')
		o->keep = true;
	else
		return opt_secs(arg, &o->t);
	return 0;
}

int cmd_migrate(int argc, char **argv)
{
	static const struct option lo[] = {
		{"to", required_argument, NULL, 'T'},
		{"keep", no_argument, NULL, 'k'},
		{"time", required_argument, NULL, 't'},
		{NULL, 0, NULL, 0},
	};
	struct migrate_opts o = {.t = "10"};
	/* Options may follow NAME ("migrate web --to ..."): let getopt permute. */
	int pr = parse_opts(argc, argv, ":ht:", lo, migrate_opt, &o);
	if (pr)
		return pr < 0 ? 0 : pr;
	const char *to = o.to, *t = o.t;
	bool keep = o.keep;
	const char *name;
	int r;
	if ((r = one_name(argc, argv, &name)))
		return r;
	if (!to)
		return cli_usage("missing --to ssh://[user@]host[:port][/socket] or "
				 "unix:/path/to/clbsd.sock");
	struct target dst = {.label = to};
	if (strncmp(to, "ssh://", 6) == 0) {
		if (parse_ssh(to, &dst) < 0) {
			target_release(&dst);
			return cli_usage("--to %s: want ssh://[user@]host[:port][/path/to/socket]",
					 to);
		}
	} else if (strncmp(to, "unix:", 5) == 0 && to[5] == '/') {
		if (strcmp(to + 5, clbsd_client_socket(cli_client())) == 0)
			return cli_usage("--to %s is this daemon", to);
		dst.cl = clbsd_client_new(to + 5);
	} else {
		return cli_usage("--to %s: want ssh://[user@]host[:port][/path/to/socket] or "
				 "unix:/absolute/path/to/clbsd.sock",
				 to);
	}

	struct clbsd_err err;
	clbsd_err_init(&err);
	autofree char *self = xasprintf("/v1/containers/%s", name);
	json_t *ctr = NULL;
	if (cli_call("GET", self, NULL, &ctr, &err) < 0) {
		target_release(&dst);
		return cli_fail(&err);
	}
	const char *st = json_string_value(json_object_get(ctr, "state"));
	bool was_running = st && strcmp(st, "running") == 0;
	json_decref(ctr);

	autofree char *dst_driver = NULL;
	if (target_check(&dst, &dst_driver, &err) < 0) {
		target_release(&dst);
		return cli_fail(&err);
	}
	/*
	 * zfs on both ends: send the bulk while it runs, then stop and send
	 * only what changed since, so it is down for the last changes only.
	 */
	json_t *info = NULL;
	bool live = false;
	if (was_running && strcmp(dst_driver, "zfs") == 0 &&
	    cli_call("GET", "/v1/info", NULL, &info, &err) == 0) {
		const char *drv = json_string_value(
			json_object_get(json_object_get(info, "storage"), "driver"));
		live = drv && strcmp(drv, "zfs") == 0;
	}
	json_decref(info);
	char tag[9];
	random_hex(tag, 4);
	autofree char *l1 = live ? xasprintf("migrate-%s-1", tag) : NULL;
	autofree char *l2 = live ? xasprintf("migrate-%s-2", tag) : NULL;

	char dir[] = "/tmp/clbsd-migrate.XXXXXX";
	if (!mkdtemp(dir)) {
		target_release(&dst);
		fprintf(stderr, "clbsd: migrate: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	autofree char *file = xasprintf("%s/%s.clbsd", dir, name);
	autofree char *file2 = xasprintf("%s/%s.2.clbsd", dir, name);
	int rc = 1;
	bool stopped = false, imported = false;
	int64_t bytes = 0;
	char msg[160];
	if (live) {
		progress(name, "exporting while it runs");
		if (export_to(name, file, l1, NULL, &bytes, &err) < 0)
			goto fail;
		snprintf(msg, sizeof(msg), "exported %.1f MB; importing on %s", (double)bytes / 1e6,
			 to);
		progress(name, msg);
		if (target_import(&dst, file, &err) < 0)
			goto fail;
		imported = true;
	}
	if (was_running) {
		progress(name, "stopping");
		autofree char *p = xasprintf("/v1/containers/%s/stop?t=%s", name, t);
		if (cli_call("POST", p, NULL, NULL, &err) < 0)
			goto fail;
		stopped = true;
	}
	progress(name, live ? "exporting what changed since" : "exporting");
	if (export_to(name, live ? file2 : file, l2, l1, &bytes, &err) < 0)
		goto fail;
	snprintf(msg, sizeof(msg), "exported %.1f MB; importing on %s", (double)bytes / 1e6, to);
	progress(name, msg);
	if (target_import(&dst, live ? file2 : file, &err) < 0)
		goto fail;
	imported = true;
	if (live) {
		target_drop_snapshot(&dst, name, l1);
		target_drop_snapshot(&dst, name, l2);
	}
	if (was_running) {
		progress(name, "starting on the target");
		bool running = false;
		if (target_start(&dst, name, &running, &err) < 0)
			goto fail;
		if (!running) {
			clbsd_err_setmsg(&err, CLBSD_E_INTERNAL, EIO,
					 "it does not run on the target");
			goto fail;
		}
	}
	if (!keep) {
		progress(name, "removing it here");
		autofree char *p = xasprintf("/v1/containers/%s?force=1", name);
		if (cli_call("DELETE", p, NULL, NULL, &err) < 0) {
			fprintf(stderr,
				"clbsd: migrate %s: moved, but removing it here failed: %s\n", name,
				err.msg);
			goto done;
		}
	}
	progress(name, "done");
	printf("%s\n", name);
	rc = 0;
	goto done;
fail:
	fprintf(stderr, "clbsd: migrate %s: %s\n", name, err.msg);
	/* Put things back as they were: nothing on the target, the source running again. */
	if (imported) {
		struct clbsd_err e2;
		if (target_remove(&dst, name, &e2) < 0)
			fprintf(stderr, "clbsd: migrate %s: removing it from %s failed: %s\n", name,
				to, e2.msg);
	}
	if (stopped) {
		struct clbsd_err e2;
		autofree char *p = xasprintf("/v1/containers/%s/start", name);
		if (cli_call("POST", p, NULL, NULL, &e2) < 0)
			fprintf(stderr, "clbsd: migrate %s: starting it again here failed: %s\n",
				name, e2.msg);
		else
			progress(name, "started again here");
	}
done:
	if (live) {
		/* The source keeps no trace of the migration (when it is kept, or put back). */
		struct clbsd_err e2;
		const char *labels[] = {l1, l2};
		for (size_t i = 0; i < 2; i++) {
			autofree char *p =
				xasprintf("/v1/containers/%s/snapshots/%s", name, labels[i]);
			cli_call("DELETE", p, NULL, NULL, &e2);
		}
	}
	unlink(file);
	unlink(file2);
	rmdir(dir);
	target_release(&dst);
	return rc;
}
