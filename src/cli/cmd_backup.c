/*
 * Backups (docs/backup.md): `clbsd backup NAME` runs one now, `clbsd
 * backups` shows each container's state, and `clbsd restore NAME --from
 * DEST [--at TIME]` brings one back: from a directory, the chain of the
 * chosen archive (its full, then each incremental) is imported here; from
 * another clbsd, the chosen snapshot of its copy is cloned there, exported
 * and imported here, and the clone removed.
 */
#include "cli.h"
#include "core/backup_plan.h"
#include "util/json.h"
#include "util/util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* TIME: a backup's label, seconds since the epoch, or a UTC date [and time]. */
static bool parse_when(const char *s, int64_t *out)
{
	if (backup_label_time(s, out))
		return true;
	long long v;
	if (parse_int(s, 0, 253402300799LL, &v) == 0) {
		*out = v;
		return true;
	}
	static const char *const fmts[] = {"%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S",
					   "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%MZ", "%Y-%m-%d"};
	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		struct tm tm = {0};
		const char *end = strptime(s, fmts[i], &tm);
		if (end && !*end) {
			*out = (int64_t)timegm(&tm);
			/* A day alone means all of it: the newest backup of that day. */
			if (i == 4)
				*out += 86399;
			return true;
		}
	}
	return false;
}

int cmd_backup(const struct cli_args *a)
{
	const char *name = a->argv[0], *at = cli_get(a, "at");
	autofree char *path = NULL;
	if (at) {
		int64_t t;
		if (!parse_when(at, &t))
			return cli_usage("--at %s: expected seconds since the epoch or "
					 "YYYY-mm-ddTHH:MM:SSZ",
					 at);
		path = xasprintf("/v1/containers/%s/backup?at=%lld", name, (long long)t);
	} else {
		path = xasprintf("/v1/containers/%s/backup", name);
	}
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *res = NULL;
	if (cli_call("POST", path, NULL, &res, &err) < 0)
		return cli_fail(&err);
	if (cli.json) {
		cli_print_json(res);
	} else {
		char size[32];
		fmt_size(json_int(res, "size", 0), size, sizeof(size));
		printf("%s %s: %s, %s, %lld ms, pruned %lld\n", name, json_str(res, "label"),
		       json_str(res, "base") ? "incremental" : "full", size,
		       (long long)json_int(res, "duration_ms", 0),
		       (long long)json_int(res, "pruned", 0));
	}
	json_decref(res);
	return 0;
}

/* One line per container: NAME LAST SIZE DURATION NEXT TO ERROR. */
void print_backups(const json_t *list, bool header)
{
	if (!json_array_size(list))
		return;
	if (header)
		printf("%-16s %-24s %-10s %-8s %-31s %s\n", "NAME", "LAST BACKUP", "SIZE", "TOOK",
		       "NEXT RUN", "TO / ERROR");
	size_t i;
	json_t *b;
	json_array_foreach(list, i, b)
	{
		char size[32], took[32];
		fmt_size(json_int(b, "size", 0), size, sizeof(size));
		snprintf(took, sizeof(took), "%lld ms", (long long)json_int(b, "duration_ms", 0));
		const char *last = json_str(b, "last_label"), *next = json_str(b, "next_run");
		const char *error = json_str(b, "error");
		printf("%-16s %-24s %-10s %-8s %-31s %s", json_str(b, "name"),
		       last ? last : "never", last ? size : "-", last ? took : "-",
		       next ? next : (json_bool(b, "running", false) ? "running now" : "-"),
		       json_str(b, "to") ? json_str(b, "to") : "(not declared)");
		if (error)
			printf("  FAILED %lld time%s: %s", (long long)json_int(b, "failures", 0),
			       json_int(b, "failures", 0) == 1 ? "" : "s", error);
		printf("\n");
	}
}

int show_backups(const struct cli_args *a, const json_t *list)
{
	if (!json_array_size(list))
		printf("no container has :backup\n");
	print_backups(list, true);
	return 0;
}

/* ---- restore ---- */

struct restore {
	const char *name;   /* the backed-up container */
	const char *target; /* the name here */
	struct backup_dest dest;
	int64_t at;
	bool allow_host, replace;
	char *label;   /* the backup chosen */
	json_t *files; /* what the daemon imports, in order */
};

/* The daemon imports the chain (POST /v1/restore). */
static int import_files(const struct restore *rs, struct clbsd_err *err)
{
	json_t *body = json_pack("{s:s,s:O,s:b,s:b}", "name", rs->target, "files", rs->files,
				 "replace", rs->replace, "allow_host_access", rs->allow_host);
	fprintf(stderr, "restore %s: importing %s (%zu file%s)\n", rs->target, rs->label,
		json_array_size(rs->files), json_array_size(rs->files) == 1 ? "" : "s");
	int r = cli_call("POST", "/v1/restore", body, NULL, err);
	json_decref(body);
	return r;
}

static int restore_dir(struct restore *rs, struct clbsd_err *err)
{
	autofree char *dir = xasprintf("%s/%s", rs->dest.path, rs->name);
	autofree char *ipath = xasprintf("%s/index.json", dir);
	autofree char *text = NULL;
	if (fs_read_file(ipath, &text, NULL, err) < 0)
		return clbsd_err_prefix(err, "no backups of %s in %s", rs->name, rs->dest.path);
	json_t *idx = json_loads(text, 0, NULL);
	json_t *list = json_object_get(idx, "backups");
	size_t n = json_array_size(list);
	struct backup_entry *e = xcalloc(n ? n : 1, sizeof(*e));
	const char **labels = xcalloc(n ? n : 1, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		json_t *x = json_array_get(list, i);
		labels[i] = e[i].label = json_str(x, "label") ? json_str(x, "label") : "";
		e[i].base = -1;
		const char *base = json_str(x, "base");
		for (size_t k = 0; base && k < n; k++)
			if (strcmp(json_str(json_array_get(list, k), "label") ?: "", base) == 0)
				e[i].base = (long)k;
	}
	long pick = backup_pick(labels, n, rs->at);
	int r = 0;
	if (pick < 0) {
		r = clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
				     "no backup of %s in %s at or before that time (the oldest is "
				     "%s)",
				     rs->name, rs->dest.path, n ? labels[0] : "none");
		goto out;
	}
	rs->label = xstrdup(labels[pick]);
	size_t *chain = xcalloc(n, sizeof(size_t));
	size_t k = backup_chain(e, n, (size_t)pick, chain);
	if (json_str(json_array_get(list, chain[0]), "base") != NULL)
		r = clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
				     "the chain of %s in %s lacks its full backup", rs->label,
				     rs->dest.path);
	for (size_t i = 0; r == 0 && i < k; i++) {
		const char *f = json_str(json_array_get(list, chain[i]), "file");
		if (!f || strchr(f, '/')) {
			r = clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "%s: a bad file name",
					     ipath);
			break;
		}
		json_array_append_new(rs->files, json_sprintf("%s/%s", dir, f));
	}
	free(chain);
	if (r == 0)
		r = import_files(rs, err);
out:
	free(e);
	free(labels);
	json_decref(idx);
	return r;
}

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

/* `clbsd ARGS` at the destination; its stdout to out_fd (-1: into *out). */
static int remote(const struct backup_dest *dst, const char *const *args, int out_fd, char **out,
		  struct clbsd_err *err)
{
	struct strv argv = STRV_INIT;
	struct buf cmd = BUF_INIT;
	if (dst->kind == BACKUP_DEST_UNIX) {
		strv_push(&argv, "/proc/self/exe");
		strv_push(&argv, "--socket");
		strv_push(&argv, dst->path);
		for (size_t i = 0; args[i]; i++)
			strv_push(&argv, args[i]);
	} else {
		const char *exe = getenv("CLBSD_REMOTE");
		sh_quote(&cmd, exe && *exe ? exe : "clbsd");
		if (dst->path) {
			buf_adds(&cmd, " --socket ");
			sh_quote(&cmd, dst->path);
		}
		for (size_t i = 0; args[i]; i++) {
			buf_addc(&cmd, ' ');
			sh_quote(&cmd, args[i]);
		}
		buf_addc(&cmd, '\0');
		const char *sshcmd = getenv("CLBSD_SSH_COMMAND");
		if (sshcmd && *sshcmd) {
			strv_push(&argv, "/bin/sh");
			strv_push(&argv, "-c");
			strv_push_owned(&argv, xasprintf("%s \"$@\"", sshcmd));
		}
		strv_push(&argv, "ssh");
		strv_push(&argv, "-o");
		strv_push(&argv, "BatchMode=yes");
		if (dst->port) {
			strv_push(&argv, "-p");
			strv_push(&argv, dst->port);
		}
		strv_push(&argv, "--");
		strv_push(&argv, dst->host);
		strv_push(&argv, cmd.data);
	}
	int r;
	if (out_fd < 0) {
		r = proc_run(argv.v, out, err);
	} else {
		/* A stream to a file: the child's stdout is the file. */
		pid_t pid = fork();
		if (pid == 0) {
			dup2(out_fd, STDOUT_FILENO);
			execvp(argv.v[0], argv.v);
			_exit(127);
		}
		int st = 0;
		while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		r = pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0
			    ? 0
			    : clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EIO, "%s failed (status %d)",
					       argv.v[0], st);
	}
	strv_release(&argv);
	buf_release(&cmd);
	return r;
}

static int restore_remote(struct restore *rs, struct clbsd_err *err)
{
	const char *sn[] = {"--json", "snapshots", rs->name, NULL};
	autofree char *out = NULL;
	if (remote(&rs->dest, sn, -1, &out, err) < 0)
		return clbsd_err_prefix(err, "list the backups of %s there", rs->name);
	json_t *a = json_loads(out ? out : "", 0, NULL);
	size_t n = json_array_size(a);
	const char **labels = xcalloc(n ? n : 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		labels[i] = json_str(json_array_get(a, i), "label") ?: "";
	long pick = backup_pick(labels, n, rs->at);
	if (pick < 0) {
		free(labels);
		json_decref(a);
		return clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
					"no backup of %s there at or before that time", rs->name);
	}
	rs->label = xstrdup(labels[pick]);
	free(labels);
	json_decref(a);
	/* That snapshot there, as a container of its own for the export. */
	char hex[9];
	random_hex(hex, 4);
	autofree char *tmp = xasprintf("restore-%s", hex);
	autofree char *src = xasprintf("%s@%s", rs->name, rs->label);
	const char *clone[] = {"clone", src, tmp, NULL};
	if (remote(&rs->dest, clone, -1, NULL, err) < 0)
		return clbsd_err_prefix(err, "clone %s there", src);
	char dir[] = "/tmp/clbsd-restore.XXXXXX";
	int r = 0;
	autofree char *file = NULL;
	if (!mkdtemp(dir)) {
		r = clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "mkdtemp");
		goto out;
	}
	file = xasprintf("%s/%s.clbsd", dir, rs->name);
	if (rs->dest.kind == BACKUP_DEST_UNIX) {
		/* The other daemon is on this host: it writes the file itself. */
		const char *ex[] = {"export", "-o", file, tmp, NULL};
		r = remote(&rs->dest, ex, -1, NULL, err);
	} else {
		int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		const char *ex[] = {"export", "-o", "-", tmp, NULL};
		r = fd < 0 ? clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "create %s", file)
			   : remote(&rs->dest, ex, fd, NULL, err);
		if (fd >= 0)
			close(fd);
	}
	if (r < 0)
		clbsd_err_prefix(err, "export %s there", src);
	else {
		json_array_append_new(rs->files, json_string(file));
		r = import_files(rs, err);
	}
	unlink(file);
	rmdir(dir);
out:;
	const char *rm[] = {"rm", "-f", tmp, NULL};
	struct clbsd_err e2;
	if (remote(&rs->dest, rm, -1, NULL, &e2) < 0)
		fprintf(stderr, "clbsd: restore: remove %s there: %s\n", tmp, e2.msg);
	return r;
}

int cmd_restore(const struct cli_args *a)
{
	struct restore rs = {.name = a->argv[0], .at = INT64_MAX};
	rs.replace = cli_has(a, "replace");
	const char *from = cli_get(a, "from"), *at = cli_get(a, "at"), *as = cli_get(a, "as");
	rs.target = as ? as : rs.name;
	rs.allow_host = cli_has(a, "allow-host-access");
	if (!valid_name(rs.name) || !valid_name(rs.target))
		return cli_usage("invalid container name \"%s\"",
				 valid_name(rs.name) ? rs.target : rs.name);
	if (!from)
		return cli_usage("missing --from DEST: a directory, unix:/path/to/socket or "
				 "ssh://[user@]host[:port][/socket]");
	char why[200];
	if (!backup_dest_parse(from, &rs.dest, why, sizeof(why)))
		return cli_usage("--from %s: expected %s", from, why);
	if (at && !parse_when(at, &rs.at)) {
		backup_dest_release(&rs.dest);
		return cli_usage(
			"--at %s: expected YYYY-mm-dd[THH:MM:SSZ], seconds since the epoch "
			"or a backup's label",
			at);
	}
	struct clbsd_err err;
	clbsd_err_init(&err);
	/* Refused before anything is fetched when it would be refused at the end. */
	autofree char *self = xasprintf("/v1/containers/%s", rs.target);
	json_t *here = NULL;
	if (!rs.replace && cli_call("GET", self, NULL, &here, &err) == 0) {
		json_decref(here);
		backup_dest_release(&rs.dest);
		return cli_usage(
			"container %s exists here: --replace replaces it (it is set aside: "
			"clbsd undo %s brings it back), or restore beside it with --as NEW",
			rs.target, rs.target);
	}
	clbsd_err_init(&err);
	rs.files = json_array();
	int r = rs.dest.kind == BACKUP_DEST_DIR ? restore_dir(&rs, &err)
						: restore_remote(&rs, &err);
	backup_dest_release(&rs.dest);
	json_decref(rs.files);
	if (r < 0) {
		free(rs.label);
		return cli_fail(&err);
	}
	if (cli.json) {
		json_t *j = json_pack("{s:s,s:s}", "name", rs.target, "label", rs.label);
		cli_print_json(j);
		json_decref(j);
	} else {
		printf("%s restored from %s\n", rs.target, rs.label);
	}
	free(rs.label);
	return 0;
}
