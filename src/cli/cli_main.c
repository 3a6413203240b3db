/*
 * clbsd: the command-line client. Global options, dispatch through the
 * command table (cli_table.c), and what every command shares: error
 * reporting, the daemon connection, and the "call, then print JSON or for
 * people" body.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct cli cli;

static int vusage(const char *cmd, const char *fmt, va_list ap)
{
	fflush(stdout);
	fprintf(stderr, "clbsd: ");
	if (cmd)
		fprintf(stderr, "%s: ", cmd);
	vfprintf(stderr, fmt, ap);
	if (cmd)
		fprintf(stderr, "\nTry 'clbsd %s --help'.\n", cmd);
	else
		fprintf(stderr, "\nTry 'clbsd --help'.\n");
	return EXIT_USAGE;
}

int cli_usage(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vusage(cli.cmd, fmt, ap);
	va_end(ap);
	return r;
}

int cli_fail(const struct clbsd_err *err)
{
	if (err->kind == CLBSD_E_INVALID)
		return cli_usage("%s", err->msg);
	fflush(stdout);
	fprintf(stderr, "clbsd: %s\n", err->msg);
	return 1;
}

struct clbsd_client *cli_client(void)
{
	if (!cli.client)
		cli.client = clbsd_client_new(cli.socket);
	return cli.client;
}

int cli_call(const char *method, const char *path, const json_t *body, json_t **out,
	     struct clbsd_err *err)
{
	autofree char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	autofree char *resp = NULL;
	int r = clbsd_client_request(cli_client(), method, path, text, out ? &resp : NULL, NULL,
				     err);
	if (r < 0 || !out)
		return r;
	json_error_t je;
	json_t *j = json_loads(resp, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	if (!j)
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EPROTO,
					"%s %s: clbsdd answered with invalid JSON: %s", method,
					path, je.text);
	*out = j;
	return 0;
}

void cli_print_json(const json_t *j)
{
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
	fputc('\n', stdout);
}

int cli_send(const char *method, const char *path, json_t *body, const char *text,
	     const char *field)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *res = NULL;
	int r = cli_call(method, path, body, &res, &err);
	json_decref(body);
	if (r < 0)
		return cli_fail(&err);
	const char *v = field ? json_string_value(json_object_get(res, field)) : NULL;
	if (cli.json)
		cli_print_json(res);
	else if (text || v)
		printf("%s\n", text ? text : v);
	json_decref(res);
	return 0;
}

int cli_show(const struct cli_args *a, const char *method, const char *path,
	     int (*show)(const struct cli_args *a, const json_t *res))
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *res = NULL;
	if (cli_call(method, path, NULL, &res, &err) < 0)
		return cli_fail(&err);
	int rc = 0;
	bool formatted = cli_declares(a->cmd, "format") && cli_has(a, "format");
	if (cli.json && !formatted)
		cli_print_json(res);
	else
		rc = show(a, res);
	json_decref(res);
	return rc;
}

int cli_copy_fd(int in, int out, const char *what, struct clbsd_err *err)
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

int cli_spool_stdin(const char *cmd, char **path)
{
	if (isatty(STDIN_FILENO))
		return cli_usage("-: standard input is a terminal; pipe an archive into it");
	char dir[] = "/tmp/clbsd-stdin.XXXXXX";
	if (!mkdtemp(dir)) {
		fprintf(stderr, "clbsd: %s: mkdtemp %s: %s\n", cmd, dir, strerror(errno));
		return 1;
	}
	char *p = xasprintf("%s/in", dir);
	struct clbsd_err err;
	clbsd_err_init(&err);
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int r = fd < 0 ? clbsd_err_set(&err, CLBSD_E_INTERNAL, errno, "create %s", p)
		       : cli_copy_fd(STDIN_FILENO, fd, "standard input", &err);
	if (fd >= 0 && close(fd) < 0 && r == 0)
		r = clbsd_err_set(&err, CLBSD_E_INTERNAL, errno, "write %s", p);
	if (r < 0) {
		cli_spool_drop(p);
		return cli_fail(&err);
	}
	*path = p;
	return 0;
}

void cli_spool_drop(char *path)
{
	if (!path)
		return;
	unlink(path);
	char *slash = strrchr(path, '/');
	if (slash && slash != path) {
		*slash = '\0';
		rmdir(path);
	}
	free(path);
}

/* Split a rendered row at its tabs into cells. */
static void split_cells(const char *row, struct strv *cells)
{
	const char *p = row;
	for (;;) {
		const char *tab = strchr(p, '\t');
		strv_push_owned(cells, tab ? xstrndup(p, (size_t)(tab - p)) : xstrdup(p));
		if (!tab)
			break;
		p = tab + 1;
	}
}

static void print_table(const struct tmpl *t, const json_t *items, const json_t *extras)
{
	autofree char *header = tmpl_header(t);
	struct strv hdr = STRV_INIT;
	split_cells(header, &hdr);
	struct strv *rows = xcalloc(json_array_size(items) + 1, sizeof(*rows));
	size_t ncols = hdr.n;
	for (size_t i = 0; i < json_array_size(items); i++) {
		struct buf b = BUF_INIT;
		tmpl_render(t, json_array_get(items, i), json_array_get(extras, i), &b);
		split_cells(b.data ? b.data : "", &rows[i]);
		if (rows[i].n > ncols)
			ncols = rows[i].n;
		buf_release(&b);
	}
	const char **cells = xcalloc(ncols, sizeof(*cells));
	for (size_t c = 0; c < ncols; c++)
		cells[c] = c < hdr.n ? hdr.v[c] : "";
	struct table tab;
	table_init(&tab, ncols, cells);
	for (size_t i = 0; i < json_array_size(items); i++) {
		for (size_t c = 0; c < ncols; c++)
			cells[c] = c < rows[i].n ? rows[i].v[c] : "";
		table_add(&tab, cells);
		strv_release(&rows[i]);
	}
	autofree char *text = table_render(&tab);
	fputs(text, stdout);
	table_release(&tab);
	strv_release(&hdr);
	free(cells);
	free(rows);
}

int cli_print_format(const struct cli_args *a, const json_t *items, const json_t *extras)
{
	struct tmpl *t = NULL;
	struct clbsd_err err;
	clbsd_err_init(&err);
	if (tmpl_parse(cli_get(a, "format"), &t, &err) < 0 ||
	    tmpl_check(t, items, extras, &err) < 0) {
		tmpl_free(t);
		return cli_usage("%s", err.msg);
	}
	if (tmpl_is_table(t)) {
		print_table(t, items, extras);
	} else {
		struct buf b = BUF_INIT;
		for (size_t i = 0; i < json_array_size(items); i++) {
			tmpl_render(t, json_array_get(items, i), json_array_get(extras, i), &b);
			buf_addc(&b, '\n');
		}
		if (b.len)
			fwrite(b.data, 1, b.len, stdout);
		buf_release(&b);
	}
	tmpl_free(t);
	return 0;
}

int cmd_help(const struct cli_args *a)
{
	if (a->argc == 0) {
		autofree char *u = cli_main_usage();
		fputs(u, stdout);
		return 0;
	}
	autofree char *name =
		a->argc >= 2 ? xasprintf("%s %s", a->argv[0], a->argv[1]) : xstrdup(a->argv[0]);
	const struct cli_cmd *c = cli_cmd_find(name);
	if (!c)
		return cli_usage("unknown command \"%s\"", name);
	autofree char *u = cli_cmd_usage(c);
	fputs(u, stdout);
	return 0;
}

/* The commands of a group ("ls, inspect, create or rm"), for messages. */
static char *group_words(const struct cli_cmd *g)
{
	struct buf b = BUF_INIT;
	size_t n = strlen(g->name), count = 0, k = 0;
	for (size_t i = 0; i < cli_ncmds; i++)
		if (strncmp(cli_cmds[i].name, g->name, n) == 0 && cli_cmds[i].name[n] == ' ')
			count++;
	for (size_t i = 0; i < cli_ncmds; i++) {
		const char *c = cli_cmds[i].name;
		if (strncmp(c, g->name, n) != 0 || c[n] != ' ')
			continue;
		k++;
		buf_addf(&b, "%s%s", k == 1 ? "" : k == count ? " or " : ", ", c + n + 1);
	}
	return buf_detach(&b, NULL);
}

/*
 * The entry argv names (argv[0] a command, argv[1] the group's command for a
 * group); *used says how many words named it. NULL after a usage error
 * (*rc set) or for a group's own help (*rc 0).
 */
static const struct cli_cmd *find_entry(int argc, char **argv, int *used, int *rc)
{
	const struct cli_cmd *top = cli_cmd_find(argv[0]);
	if (!top || strchr(argv[0], ' ')) {
		*rc = cli_usage("unknown command \"%s\"", argv[0]);
		return NULL;
	}
	*used = 1;
	if (!(top->flags & CLI_GROUP))
		return top;
	cli.cmd = top->name;
	autofree char *words = group_words(top);
	if (argc < 2) {
		*rc = cli_usage("missing COMMAND (%s)", words);
		return NULL;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		autofree char *u = cli_cmd_usage(top);
		fputs(u, stdout);
		*rc = 0;
		return NULL;
	}
	autofree char *full = xasprintf("%s %s", top->name, argv[1]);
	const struct cli_cmd *sub = cli_cmd_find(full);
	if (!sub) {
		*rc = cli_usage("unknown command \"%s\" (expected %s)", argv[1], words);
		return NULL;
	}
	*used = 2;
	return sub;
}

/* Parse the command's argv from its entry and run it. */
static int run_command(int argc, char **argv)
{
	int used = 0, rc = EXIT_USAGE;
	const struct cli_cmd *cmd = find_entry(argc, argv, &used, &rc);
	if (!cmd)
		return rc;
	cli.cmd = cmd->name;
	struct cli_args a;
	struct clbsd_err err;
	clbsd_err_init(&err);
	int r = cli_args_parse(cmd, argc - used + 1, argv + used - 1, &a, &err);
	if (r == 1) {
		autofree char *u = cli_cmd_usage(cmd);
		fputs(u, stdout);
		rc = 0;
	} else if (r < 0) {
		rc = cli_usage("%s", err.msg);
	} else {
		if (cli_declares(cmd, "json") && cli_has(&a, "json"))
			cli.json = true;
		rc = cmd->fn ? cmd->fn(&a) : cli_show(&a, "GET", cmd->get, cmd->show);
	}
	cli_args_release(&a);
	return rc;
}

/* The options before the command: --socket, --json, --help, --version. */
static const struct cli_opt main_opts[] = {
	{"socket", 0, "PATH", "the daemon's API socket", CLI_K_FILE, NULL, 0},
	{"json", 0, NULL, "print JSON for scripts instead of tables", CLI_K_NONE, NULL, 0},
	{"version", 'V', NULL, "show the client's version", CLI_K_NONE, NULL, 0},
	CLI_OPT_END,
};
static const struct cli_cmd main_cmd = {
	.name = "clbsd", .args = "COMMAND", .opts = main_opts, .max_args = -1, .stop_at = 1};

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	const char *env = getenv("CLBSD_SOCKET");
	cli.socket = env && *env ? env : CLBSD_DEFAULT_SOCKET;
	cli.cmd = NULL;
	struct cli_args g;
	struct clbsd_err err;
	clbsd_err_init(&err);
	int r = cli_args_parse(&main_cmd, argc, argv, &g, &err);
	bool version = r == 0 && cli_has(&g, "version");
	if (r == 1 || version || (r == 0 && g.argc == 0)) {
		autofree char *u = cli_main_usage();
		if (version)
			printf("clbsd version %s\n", CLBSD_VERSION);
		else
			fputs(u, r == 1 ? stdout : stderr);
		cli_args_release(&g);
		return r == 1 || version ? 0 : EXIT_USAGE;
	}
	if (r < 0) {
		cli_args_release(&g);
		return cli_usage("%s", err.msg);
	}
	const char *sock = cli_get(&g, "socket");
	if (sock && !*sock) {
		cli_args_release(&g);
		return cli_usage("--socket needs a path");
	}
	if (sock)
		cli.socket = sock;
	cli.json = cli_has(&g, "json");
	int rc = run_command(g.argc, g.argv);
	cli_args_release(&g);
	fflush(stdout);
	clbsd_client_free(cli.client);
	return rc;
}
