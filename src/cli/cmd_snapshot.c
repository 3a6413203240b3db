/*
 * Snapshots, rollback and clones: `clbsd snapshot NAME [LABEL]`,
 * `clbsd snapshots [--rm LABEL] NAME`, `clbsd rollback [-f] [-t SECS] NAME LABEL`,
 * `clbsd clone SRC[@LABEL] NEW`.
 */
#include "cli.h"
#include "core/backup_plan.h"
#include "util/json.h"

#include <errno.h>
#include <fcntl.h>
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

int cli_check_snapshots(const char *spec)
{
	if (!spec || !strcmp(spec, "none") || !strcmp(spec, "all"))
		return 0;
	autofree char *copy = xstrdup(spec);
	char *save = NULL;
	bool ok = *spec && spec[strlen(spec) - 1] != ',' && !strstr(spec, ",,");
	for (char *l = strtok_r(copy, ",", &save); ok && l; l = strtok_r(NULL, ",", &save))
		ok = valid_label(l);
	if (!ok)
		return cli_usage("--snapshots \"%s\": want none, all, or snapshot labels separated "
				 "by commas (letters, digits and _.:-, each starting with a letter "
				 "or digit)",
				 spec);
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

/* -t SECS for the commands that stop a container (default 10). */
static int opt_secs(const struct cli_args *a, const char **out)
{
	const char *arg = cli_get(a, "time");
	long long v;
	*out = arg ? arg : "10";
	if (arg && parse_int(arg, 0, 86400, &v) < 0)
		return cli_usage("-t %s: want seconds from 0 to 86400", arg);
	return 0;
}

static int show_snapshots(const struct cli_args *a, const json_t *list)
{
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
	return 0;
}

int cmd_snapshot(const struct cli_args *a)
{
	const char *name = a->argv[0], *label = a->argc > 1 ? a->argv[1] : NULL;
	int r;
	if (label && (r = check_label(label)))
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

int cmd_snapshots(const struct cli_args *a)
{
	const char *name = a->argv[0], *rm = cli_get(a, "rm");
	int r;
	if (rm && (r = check_label(rm)))
		return r;
	autofree char *path = rm ? xasprintf("/v1/containers/%s/snapshots/%s", name, rm)
				 : xasprintf("/v1/containers/%s/snapshots", name);
	return cli_show(a, rm ? "DELETE" : "GET", path, show_snapshots);
}

int cmd_rollback(const struct cli_args *a)
{
	const char *name = a->argv[0], *label = a->argv[1], *t;
	bool force = cli_has(a, "force");
	int r;
	if ((r = opt_secs(a, &t)) || (r = check_label(label)))
		return r;
	autofree char *path = xasprintf("/v1/containers/%s/rollback?label=%s&t=%s%s", name, label,
					t, force ? "&force=1" : "");
	return cli_send("POST", path, NULL, name, NULL);
}

/* A container name, checked here where the table cannot (SRC[@LABEL]). */
static int check_name(const char *name)
{
	if (!valid_name(name))
		return cli_usage("invalid container name \"%s\"", name);
	return 0;
}

int cmd_clone(const struct cli_args *a)
{
	int r;
	autofree char *src = xstrdup(a->argv[0]);
	const char *dst = a->argv[1];
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

/* A file the daemon wrote, to fd. */
static int copy_file_to(const char *path, int out, struct clbsd_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno,
				     "open %s (the daemon wrote it; exporting to standard output "
				     "needs the same user as the daemon)",
				     path);
	int r = cli_copy_fd(fd, out, path, err);
	close(fd);
	return r;
}

int cmd_export(const struct cli_args *a)
{
	const char *out = cli_get(a, "output"), *snapshot = cli_get(a, "snapshot");
	const char *since = cli_get(a, "since"), *name = a->argv[0];
	int r;
	const char *snaps = cli_get(a, "snapshots");
	if ((snapshot && (r = check_label(snapshot))) || (since && (r = check_label(since))) ||
	    (r = cli_check_snapshots(snaps)))
		return r;
	if (since && snaps && strcmp(snaps, "none") != 0)
		return cli_usage("--snapshots goes with a whole export, not with --since (the "
				 "changes since a snapshot hold no older ones)");
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
	if (snapshot)
		json_object_set_new(body, "label", json_string(snapshot));
	if (since)
		json_object_set_new(body, "from", json_string(since));
	if (cli_has(a, "with-image"))
		json_object_set_new(body, "with_image", json_true());
	/* cli_check_snapshots let only [A-Za-z0-9_.:,-] through: nothing to escape. */
	autofree char *url = snaps ? xasprintf("/v1/containers/%s/export?snapshots=%s", name, snaps)
				   : xasprintf("/v1/containers/%s/export", name);
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

int cmd_import(const struct cli_args *a)
{
	const char *name = cli_get(a, "name"), *file = a->argv[0];
	bool allow_host = cli_has(a, "allow-host-access"), declared = cli_has(a, "declared");
	const char *declaration = cli_get(a, "declaration");
	bool pending = cli_has(a, "pending");
	int r;
	if (cli_has(a, "commit") || cli_has(a, "abort")) {
		if ((r = check_name(file)))
			return r;
		autofree char *p = cli_has(a, "commit") ? xasprintf("/v1/imports/%s/commit", file)
							: xasprintf("/v1/imports/%s", file);
		return cli_send(cli_has(a, "commit") ? "POST" : "DELETE", p, NULL, file, NULL);
	}
	if (allow_host && declared)
		return cli_usage("--declared takes the container's record from this host's "
				 "declaration: --allow-host-access has nothing to allow");
	if ((declaration && !declared) || (pending && !declaration))
		return cli_usage(
			"--declaration goes with --declared, --pending with --declaration");
	if (name && (r = check_name(name)))
		return r;
	/* From standard input: kept in a private file for the daemon to read. */
	bool from_stdin = strcmp(file, "-") == 0;
	char *path = NULL;
	if (from_stdin && (r = cli_spool_stdin("import", &path)))
		return r;
	if (!from_stdin)
		path = cli_abs_target(file);
	if (!path)
		return cli_usage("cannot read \"%s\": its directory does not exist", file);
	json_t *body = name ? json_pack("{s:s,s:s}", "path", path, "name", name)
			    : json_pack("{s:s}", "path", path);
	if (declaration)
		json_object_set_new(body, "declaration", json_string(declaration));
	if (pending)
		json_object_set_new(body, "pending", json_true());
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *ctr = NULL;
	/* Without the flag the daemon refuses host binds and host networking, listing them. */
	r = cli_call("POST",
		     declared	  ? "/v1/import?declared=1"
		     : allow_host ? "/v1/import?allow_host_access=1"
				  : "/v1/import",
		     body, &ctr, &err);
	json_decref(body);
	if (from_stdin)
		cli_spool_drop(path);
	else
		free(path);
	if (r < 0)
		return cli_fail(&err);
	if (allow_host)
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
	struct backup_dest ssh_to; /* ssh: host, port, socket (core/backup_plan.h) */
};

/* "ssh://[user@]host[:port][/path/to/socket]", parsed as a backup's destination is. */
static int parse_ssh(const char *to, struct target *t)
{
	char why[160];
	if (!backup_dest_parse(to, &t->ssh_to, why, sizeof(why)))
		return -1;
	if (t->ssh_to.kind != BACKUP_DEST_SSH) {
		backup_dest_release(&t->ssh_to);
		return -1;
	}
	t->ssh = true;
	return 0;
}

/* Run `clbsd [--socket S] ARGS...` on the target over ssh; stdin from in_fd. */
static int remote(struct target *t, const char *const *args, int in_fd, char **out,
		  struct clbsd_err *err)
{
	struct strv argv = STRV_INIT;
	backup_dest_ssh_argv(&t->ssh_to, args, NULL, &argv);
	int r = proc_run_in(argv.v, in_fd, out, err);
	strv_release(&argv);
	if (r < 0)
		return clbsd_err_prefix(err, "on %s", t->ssh_to.host);
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
		     bool with_image, int64_t *bytes, struct clbsd_err *err)
{
	json_t *body = json_pack("{s:s}", "path", file);
	if (with_image)
		json_object_set_new(body, "with_image", json_true());
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

/*
 * Import the archive there. decl (a declared container's effective form):
 * into that declaration, recorded in the target's live layer, provisional
 * until target_commit() (an incremental archive updates it).
 */
static int target_import(struct target *t, const char *file, const char *decl, bool incremental,
			 struct clbsd_err *err)
{
	if (!t->ssh) {
		/*
		 * The archive is of a container the operator runs here, just
		 * made: what it reaches of the host was allowed when it was
		 * created, and moves with it.
		 */
		json_t *body = json_pack("{s:s}", "path", file);
		if (decl && !incremental) {
			json_object_set_new(body, "declaration", json_string(decl));
			json_object_set_new(body, "pending", json_true());
		}
		int r = call_other(t->cl, "POST",
				   decl ? "/v1/import?declared=1"
					: "/v1/import?allow_host_access=1",
				   body, NULL, err);
		json_decref(body);
		return r;
	}
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open %s", file);
	const char *plain[] = {"import", "--allow-host-access", "-", NULL};
	const char *declared[] = {
		"import", "--declared", "--declaration", decl ? decl : "", "--pending", "-", NULL};
	const char *update[] = {"import", "--declared", "-", NULL};
	autofree char *out = NULL;
	int r = remote(t, !decl ? plain : incremental ? update : declared, fd, &out, err);
	close(fd);
	return r;
}

/* Keep (commit) or undo (abort) the provisional import of name there. */
static int target_settle(struct target *t, const char *name, bool commit, struct clbsd_err *err)
{
	if (!t->ssh) {
		autofree char *p = commit ? xasprintf("/v1/imports/%s/commit", name)
					  : xasprintf("/v1/imports/%s", name);
		return call_other(t->cl, commit ? "POST" : "DELETE", p, NULL, NULL, err);
	}
	const char *args[] = {"import", commit ? "--commit" : "--abort", name, NULL};
	return remote(t, args, -1, NULL, err);
}

/* Start it there; *running says whether it then runs. */
static int target_start(struct target *t, const char *name, bool *running, struct clbsd_err *err)
{
	json_t *res = NULL;
	if (!t->ssh) {
		/* Not the operator's word on its :state: the declaration it came with says it. */
		autofree char *p = xasprintf("/v1/containers/%s/start?record=0", name);
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

/* Remove it there, with the volumes its archive brought. */
static int target_remove(struct target *t, const char *name, struct clbsd_err *err)
{
	if (!t->ssh) {
		autofree char *p = xasprintf("/v1/containers/%s?force=1&volumes=1", name);
		return call_other(t->cl, "DELETE", p, NULL, NULL, err);
	}
	const char *args[] = {"rm", "-f", "-v", name, NULL};
	return remote(t, args, -1, NULL, err);
}

static void target_release(struct target *t)
{
	if (t->cl)
		clbsd_client_free(t->cl);
	if (t->ssh)
		backup_dest_release(&t->ssh_to);
}

/* The images there (a JSON array of image objects), asked as `clbsd images` asks. */
static int target_images(struct target *t, json_t **out, struct clbsd_err *err)
{
	json_t *list = NULL;
	if (!t->ssh) {
		if (call_other(t->cl, "GET", "/v1/images", NULL, &list, err) < 0)
			return -err->code;
	} else {
		const char *args[] = {"--json", "images", NULL};
		autofree char *text = NULL;
		if (remote(t, args, -1, &text, err) < 0)
			return -err->code;
		list = json_loads(text ? text : "", 0, NULL);
	}
	if (!json_is_array(list)) {
		json_decref(list);
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EPROTO,
					"its image list is not a JSON array");
	}
	*out = list;
	return 0;
}

static bool has_image(const json_t *list, const char *id)
{
	size_t i;
	json_t *img;
	json_array_foreach(list, i, img)
	{
		if (json_str(img, "id") && strcmp(json_str(img, "id"), id) == 0)
			return true;
	}
	return false;
}

/*
 * Load the archive file there keeping its creation time; *id (caller
 * frees) is the id it got. Over ssh the archive is piped into `clbsd
 * image load --keep-created -` there, which keeps it in a private file
 * for its daemon and removes that file, whether the load works or not.
 */
static int target_load_image(struct target *t, const char *file, const char *as, char **id,
			     struct clbsd_err *err)
{
	json_t *got = NULL;
	if (!t->ssh) {
		json_t *body =
			json_pack("{s:s,s:b,s:s?}", "path", file, "keep_created", 1, "name", as);
		int r = call_other(t->cl, "POST", "/v1/images/load", body, &got, err);
		json_decref(body);
		if (r < 0)
			return r;
	} else {
		int fd = open(file, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open %s", file);
		const char *args[] = {"--json", "image", "load", "--keep-created",
				      "-",	NULL,	 NULL,	 NULL};
		if (as) {
			args[4] = "--name";
			args[5] = as;
			args[6] = "-";
		}
		autofree char *text = NULL;
		int r = remote(t, args, fd, &text, err);
		close(fd);
		if (r < 0)
			return r;
		got = json_loads(text ? text : "", 0, NULL);
	}
	const char *gid = json_str(got, "id");
	*id = gid ? xstrdup(gid) : NULL;
	json_decref(got);
	return 0;
}

/* Remove the image id there (never one a container uses: no force). */
static int target_image_rm(struct target *t, const char *id, struct clbsd_err *err)
{
	if (!t->ssh) {
		autofree char *ref = clbsd_client_escape(id);
		autofree char *p = xasprintf("/v1/images/%s", ref);
		return call_other(t->cl, "DELETE", p, NULL, NULL, err);
	}
	const char *args[] = {"image", "rm", id, NULL};
	return remote(t, args, -1, NULL, err);
}

/*
 * A failed send: the images among ids (NULL ends it; an entry may be
 * NULL) that are there now and were not before go again. Best effort,
 * said on stderr when it fails: the error that matters is the send's.
 */
static void unsend_image(struct target *t, const json_t *before, const char *const *ids, size_t n)
{
	struct clbsd_err e2;
	clbsd_err_init(&e2);
	json_t *now = NULL;
	if (target_images(t, &now, &e2) < 0) {
		fprintf(stderr,
			"clbsd: migrate: could not list the images there to undo the load: %s\n",
			e2.msg);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (!ids[i] || has_image(before, ids[i]) || !has_image(now, ids[i]))
			continue;
		if (target_image_rm(t, ids[i], &e2) < 0)
			fprintf(stderr, "clbsd: migrate: removing image %s there failed: %s\n",
				ids[i], e2.msg);
	}
	json_decref(now);
}

/* Whether an image other than id holds name in list. */
static bool name_taken(const json_t *list, const char *name, const char *id)
{
	size_t i, k;
	json_t *img, *n;
	json_array_foreach(list, i, img)
	{
		const char *other = json_str(img, "id");
		if (!other || strcmp(other, id) == 0)
			continue;
		json_array_foreach(json_object_get(img, "names"), k, n)
		{
			if (json_is_string(n) && strcmp(json_string_value(n), name) == 0)
				return true;
		}
	}
	return false;
}

/*
 * The name the sent image is loaded under there: NULL (its own) unless an
 * image there holds one of its names already (both hosts built
 * "myapp:latest", say). A load would take that name from it, and the
 * image left without one could be dropped; so the sent one is named
 * REPO:migrated-ID12 instead (the container refers to it by id).
 */
static char *load_name(const json_t *before, const char *image_id)
{
	json_t *mine = NULL;
	struct clbsd_err e;
	autofree char *p = xasprintf("/v1/images/%s", image_id);
	if (cli_call("GET", p, NULL, &mine, &e) < 0)
		return NULL;
	char *as = NULL;
	size_t i;
	json_t *n;
	json_array_foreach(json_object_get(mine, "names"), i, n)
	{
		const char *ref = json_string_value(n);
		if (as || !ref || !name_taken(before, ref, image_id))
			continue;
		/* The repository: up to a ':' after the last '/' (a tag), if any. */
		const char *slash = strrchr(ref, '/');
		const char *colon = strrchr(slash ? slash : ref, ':');
		size_t len = colon ? (size_t)(colon - ref) : strlen(ref);
		as = xasprintf("%.*s:migrated-%.12s", (int)len, ref, image_id);
	}
	json_decref(mine);
	return as;
}

/*
 * A native container's image, sent when the target lacks it: exported
 * here (an OCI layout archive) and loaded there keeping its creation time,
 * so that it has the same id (ids are content addresses of a config that
 * holds that time), which is checked there afterwards. Over ssh the
 * archive goes through the same ssh transport as the container's. A
 * failure removes what the load made there and says which step failed.
 * *sent says whether it was sent.
 */
static int send_image(struct target *t, const char *image_id, const char *dir, bool *sent,
		      struct clbsd_err *err)
{
	*sent = false;
	json_t *before = NULL;
	if (target_images(t, &before, err) < 0)
		return clbsd_err_prefix(err, "list the images there");
	if (has_image(before, image_id)) {
		json_decref(before);
		return 0;
	}
	autofree char *file = xasprintf("%s/image.tar", dir);
	autofree char *p = xasprintf("/v1/images/%s/export", image_id);
	json_t *body = json_pack("{s:s}", "path", file);
	int r = cli_call("POST", p, body, NULL, err);
	json_decref(body);
	if (r < 0) {
		unlink(file);
		json_decref(before);
		return clbsd_err_prefix(err, "export its image %s", image_id);
	}
	autofree char *loaded = NULL;
	autofree char *as = load_name(before, image_id);
	if (as)
		fprintf(stderr,
			"clbsd: migrate: its image's name is another image's there: loaded as %s\n",
			as);
	r = target_load_image(t, file, as, &loaded, err);
	unlink(file);
	if (r < 0) {
		clbsd_err_prefix(err, "load its image %s there", image_id);
	} else if (!loaded || strcmp(loaded, image_id) != 0) {
		r = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL,
				     "load its image %s there: it was loaded as %s, another id",
				     image_id, loaded ? loaded : "?");
	} else {
		/* Asked again, as anyone there would: the image is there under its id. */
		json_t *after = NULL;
		r = target_images(t, &after, err);
		if (r == 0 && !has_image(after, image_id))
			r = clbsd_err_setmsg(err, CLBSD_E_INTERNAL, ENOENT,
					     "it is not listed there after the load");
		json_decref(after);
		if (r < 0)
			clbsd_err_prefix(err, "check its image %s there", image_id);
	}
	if (r < 0) {
		const char *ids[] = {image_id, loaded};
		unsend_image(t, before, ids, ARRAY_SIZE(ids));
	}
	json_decref(before);
	*sent = r == 0;
	return r;
}

/* One migration under way: what it moves where, and how far it got. */
struct migration {
	const char *name, *to, *t;
	struct target dst;
	bool was_running;
	bool live;	 /* zfs on both ends: most of it is sent while it runs */
	bool with_image; /* a docker container's image goes with the full export */
	char *decl;	 /* a declared container: its effective form, which moves too */
	char *image_id;	 /* native: its image, sent when the target lacks it */
	bool image_sent; /* it was: an undo removes it there again */
	bool docker;
	char *l1, *lm, *l2; /* live: the snapshots of the three sends */
	char dir[32];	    /* a private directory for the archives */
	char *file, *file2; /* the whole archive; live, that of changes (unlinked once in) */
	bool stopped, imported, moved, committed;
	json_t *live_before;	      /* the source's live file before (moved ...), to put back */
	int64_t down_ns;	      /* from the stop here to running there */
	int64_t export_ns, import_ns; /* of the last send, within down_ns */
};

/* --to: ssh://... or unix:/path, not this daemon. Returns 0 or the usage status. */
static int migrate_target(const char *to, struct target *dst)
{
	dst->label = to;
	if (strncmp(to, "ssh://", 6) == 0) {
		if (parse_ssh(to, dst) < 0)
			return cli_usage("%s: want ssh://[user@]host[:port][/path/to/socket]", to);
		return 0;
	}
	if (strncmp(to, "unix:", 5) == 0 && to[5] == '/') {
		if (strcmp(to + 5, clbsd_client_socket(cli_client())) == 0)
			return cli_usage("%s is this daemon", to);
		dst->cl = clbsd_client_new(to + 5);
		return 0;
	}
	return cli_usage("%s: want ssh://[user@]host[:port][/path/to/socket] or "
			 "unix:/absolute/path/to/clbsd.sock",
			 to);
}

/*
 * Whether it runs here, whether it is declared (then its declaration
 * moves with it), and whether both ends are zfs: then the bulk is sent
 * while it runs, and it is down for the last changes only.
 */
static int migrate_survey(struct migration *m, const char *dst_driver, struct clbsd_err *err)
{
	autofree char *self = xasprintf("/v1/containers/%s", m->name);
	json_t *ctr = NULL;
	if (cli_call("GET", self, NULL, &ctr, err) < 0)
		return -err->code;
	const char *st = json_string_value(json_object_get(ctr, "state"));
	m->was_running = st && strcmp(st, "running") == 0;
	const char *decl = json_str(ctr, "declaration");
	m->decl = decl ? xstrdup(decl) : NULL;
	m->docker = json_str(ctr, "kind") && strcmp(json_str(ctr, "kind"), "docker") == 0;
	const char *iid = json_str(ctr, "image_id");
	m->image_id = iid && !m->docker ? xstrdup(iid) : NULL;
	json_decref(ctr);
	json_t *info = NULL;
	if (m->was_running && strcmp(dst_driver, "zfs") == 0 &&
	    cli_call("GET", "/v1/info", NULL, &info, err) == 0) {
		const char *drv = json_string_value(
			json_object_get(json_object_get(info, "storage"), "driver"));
		m->live = drv && strcmp(drv, "zfs") == 0;
	}
	json_decref(info);
	if (m->live) {
		char tag[9];
		random_hex(tag, 4);
		m->l1 = xasprintf("migrate-%s-1", tag);
		m->lm = xasprintf("migrate-%s-m", tag);
		m->l2 = xasprintf("migrate-%s-2", tag);
	}
	return 0;
}

/*
 * CLBSD_MIGRATE_HOOK, when set, runs (through /bin/sh, like
 * CLBSD_SSH_COMMAND) after each step with the step and the container as
 * $1 and $2, and the migration waits for it: the tests stop a daemon
 * between two steps with it.
 */
static void step_hook(const char *step, const char *name)
{
	const char *hook = getenv("CLBSD_MIGRATE_HOOK");
	if (!hook || !*hook)
		return;
	struct strv argv = STRV_INIT;
	const char *words[] = {"/bin/sh", "-c", hook, "sh", step, name};
	for (size_t i = 0; i < ARRAY_SIZE(words); i++)
		strv_push(&argv, words[i]);
	struct clbsd_err e;
	autofree char *out = NULL;
	if (proc_run(argv.v, &out, &e) < 0)
		fprintf(stderr, "clbsd: migrate %s: CLBSD_MIGRATE_HOOK: %s\n", name, e.msg);
	strv_release(&argv);
}

/* Export (since `from`, keeping `label`) to file and import it on the target. */
static int migrate_send(struct migration *m, const char *file, const char *label, const char *from,
			struct clbsd_err *err)
{
	int64_t bytes = 0, t0 = time_mono_ns();
	/* The image once, with the full export (an incremental one updates what is there). */
	if (export_to(m->name, file, label, from, m->with_image && !from, &bytes, err) < 0)
		return -err->code;
	int64_t t1 = time_mono_ns();
	char msg[160];
	snprintf(msg, sizeof(msg), "exported %.1f MB; importing on %s%s", (double)bytes / 1e6,
		 m->to, m->decl && !from ? " into its declaration" : "");
	progress(m->name, msg);
	int r = target_import(&m->dst, file, m->decl, from != NULL, err);
	/* In (or not): the next send writes a new file, and a whole one is large. */
	unlink(file);
	if (r < 0)
		return -err->code;
	m->export_ns = t1 - t0;
	m->import_ns = time_mono_ns() - t1;
	m->imported = true;
	step_hook("imported", m->name);
	return 0;
}

/* The move itself, up to a container running there when it ran here. */
static int migrate_move(struct migration *m, struct clbsd_err *err)
{
	if (m->image_id) {
		bool sent = false;
		if (send_image(&m->dst, m->image_id, m->dir, &sent, err) < 0)
			return -err->code;
		m->image_sent = sent;
		if (sent)
			progress(m->name, "sent its image, which the target lacked");
	}
	if (m->live) {
		progress(m->name, "exporting while it runs");
		if (migrate_send(m, m->file, m->l1, NULL, err) < 0)
			return -err->code;
		/*
		 * What it changed during that send goes too, still while it runs:
		 * the send after its stop, in its downtime, then carries only
		 * what changed in the moments since.
		 */
		progress(m->name, "exporting what changed meanwhile, while it runs");
		if (migrate_send(m, m->file2, m->lm, m->l1, err) < 0)
			return -err->code;
	}
	int64_t t0 = time_mono_ns();
	if (m->was_running) {
		progress(m->name, "stopping");
		/* Not the operator's word on its :state: it moves, with the state it has. */
		autofree char *p =
			xasprintf("/v1/containers/%s/stop?t=%s%s", m->name, m->t, "&record=0");
		if (cli_call("POST", p, NULL, NULL, err) < 0)
			return -err->code;
		m->stopped = true;
		int64_t t_stop = t0;
		t0 = time_mono_ns();
		char msg[64];
		snprintf(msg, sizeof(msg), "stopped in %.3f s", (double)(t0 - t_stop) / 1e9);
		progress(m->name, msg);
		step_hook("stopped", m->name);
	}
	progress(m->name, m->live ? "exporting what changed since" : "exporting");
	if (migrate_send(m, m->live ? m->file2 : m->file, m->l2, m->lm, err) < 0)
		return -err->code;
	bool running = false;
	if (m->was_running) {
		progress(m->name, "starting on the target");
		if (target_start(&m->dst, m->name, &running, err) < 0)
			return -err->code;
		if (!running)
			return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EIO,
						"it does not run on the target");
		m->down_ns = time_mono_ns() - t0;
		char msg[200];
		snprintf(msg, sizeof(msg),
			 "runs there; down %.3f s (from its stop here to running there: export "
			 "%.3f, import %.3f, start %.3f s)",
			 (double)m->down_ns / 1e9, (double)m->export_ns / 1e9,
			 (double)m->import_ns / 1e9,
			 (double)(m->down_ns - m->export_ns - m->import_ns) / 1e9);
		progress(m->name, msg);
		step_hook("started", m->name);
	}
	/* Its snapshots of the move go there once it runs: not part of its downtime. */
	if (m->live) {
		target_drop_snapshot(&m->dst, m->name, m->l1);
		target_drop_snapshot(&m->dst, m->name, m->lm);
		target_drop_snapshot(&m->dst, m->name, m->l2);
	}
	return 0;
}

/*
 * A declared container: the source records that it moved (so its
 * reconciler lets the name be), then the target keeps the import. When
 * the target cannot keep it, the source's record goes again.
 */
static int migrate_settle(struct migration *m, struct clbsd_err *err)
{
	if (!m->decl)
		return 0;
	autofree char *p = xasprintf("/v1/declarations/%s/moved", m->name);
	json_t *body = json_pack("{s:s}", "to", m->to);
	json_t *res = NULL;
	int r = cli_call("POST", p, body, &res, err);
	json_decref(body);
	if (r < 0)
		return clbsd_err_prefix(err, "record that it moved");
	m->moved = true;
	m->live_before = json_incref(json_object_get(res, "live_before"));
	json_decref(res);
	step_hook("moved", m->name);
	if (target_settle(&m->dst, m->name, true, err) < 0)
		return clbsd_err_prefix(err, "keep it on %s", m->to);
	m->committed = true;
	return 0;
}

/* Put things back as they were: nothing on the target, the source running again. */
static void migrate_undo(struct migration *m)
{
	struct clbsd_err e2;
	if (m->moved) {
		autofree char *p = xasprintf("/v1/declarations/%s/moved", m->name);
		json_t *body = json_pack("{s:O}", "live_before",
					 m->live_before ? m->live_before : json_null());
		if (cli_call("DELETE", p, body, NULL, &e2) < 0)
			fprintf(stderr,
				"clbsd: migrate %s: removing the (moved ...) record here failed: "
				"%s\n",
				m->name, e2.msg);
		json_decref(body);
	}
	/*
	 * A provisional import goes with its declaration; a target that does
	 * not answer undoes it itself when it starts again.
	 */
	if (m->imported && m->decl && target_settle(&m->dst, m->name, false, &e2) < 0)
		fprintf(stderr,
			"clbsd: migrate %s: undoing the import on %s failed: %s (a daemon "
			"that starts with a provisional import undoes it)\n",
			m->name, m->to, e2.msg);
	if (m->imported && !m->decl && target_remove(&m->dst, m->name, &e2) < 0)
		fprintf(stderr, "clbsd: migrate %s: removing it from %s failed: %s\n", m->name,
			m->to, e2.msg);
	/* The image it sent, once nothing there uses it. */
	if (m->image_sent && target_image_rm(&m->dst, m->image_id, &e2) < 0)
		fprintf(stderr, "clbsd: migrate %s: removing its image %s from %s failed: %s\n",
			m->name, m->image_id, m->to, e2.msg);
	else if (m->image_sent)
		progress(m->name, "removed the image it sent there");
	if (!m->stopped)
		return;
	autofree char *p = xasprintf("/v1/containers/%s/start?record=0", m->name);
	if (cli_call("POST", p, NULL, NULL, &e2) < 0)
		fprintf(stderr, "clbsd: migrate %s: starting it again here failed: %s\n", m->name,
			e2.msg);
	else
		progress(m->name, "started again here");
}

/* Moved: the container goes from here (unless --keep), with its volumes when declared. */
static int migrate_remove_here(struct migration *m, struct clbsd_err *err)
{
	progress(m->name, "removing it here");
	autofree char *p =
		xasprintf("/v1/containers/%s?force=1%s", m->name, m->decl ? "&volumes=1" : "");
	return cli_call("DELETE", p, NULL, NULL, err);
}

/* The source keeps no trace of the migration (when it is kept, or put back). */
static void migrate_release(struct migration *m)
{
	if (m->live) {
		struct clbsd_err e2;
		const char *labels[] = {m->l1, m->lm, m->l2};
		for (size_t i = 0; i < ARRAY_SIZE(labels); i++) {
			autofree char *p =
				xasprintf("/v1/containers/%s/snapshots/%s", m->name, labels[i]);
			cli_call("DELETE", p, NULL, NULL, &e2);
		}
	}
	if (m->file) {
		unlink(m->file);
		unlink(m->file2);
		rmdir(m->dir);
	}
	free(m->file);
	free(m->file2);
	free(m->l1);
	free(m->lm);
	free(m->l2);
	free(m->decl);
	free(m->image_id);
	json_decref(m->live_before);
}

/* One container to dst (dst_driver: its storage driver). 0, or 1 after saying why. */
static int migrate_one(const struct cli_args *a, const char *name, const char *to,
		       struct target *dst, const char *dst_driver)
{
	struct migration m = {
		.name = name, .to = to, .with_image = cli_has(a, "with-image"), .dst = *dst};
	int r;
	if ((r = opt_secs(a, &m.t)))
		return r;
	struct clbsd_err err;
	clbsd_err_init(&err);
	if (migrate_survey(&m, dst_driver, &err) < 0) {
		migrate_release(&m);
		return cli_fail(&err);
	}
	snprintf(m.dir, sizeof(m.dir), "/tmp/clbsd-migrate.XXXXXX");
	if (!mkdtemp(m.dir)) {
		migrate_release(&m);
		fprintf(stderr, "clbsd: migrate: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	m.file = xasprintf("%s/%s.clbsd", m.dir, m.name);
	m.file2 = xasprintf("%s/%s.2.clbsd", m.dir, m.name);
	int rc = 1;
	if (migrate_move(&m, &err) < 0 || migrate_settle(&m, &err) < 0) {
		fprintf(stderr, "clbsd: migrate %s: %s\n", m.name, err.msg);
		migrate_undo(&m);
	} else if (!cli_has(a, "keep") && migrate_remove_here(&m, &err) < 0) {
		fprintf(stderr, "clbsd: migrate %s: moved, but removing it here failed: %s\n",
			m.name, err.msg);
	} else {
		progress(m.name, "done");
		printf("%s\n", m.name);
		rc = 0;
	}
	migrate_release(&m);
	return rc;
}

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Visit name's dependencies (from deps, an object name -> array) before it. */
static void dep_order(const json_t *deps, const char *name, json_t *seen, struct strv *out)
{
	if (json_object_get(seen, name))
		return;
	json_object_set_new(seen, name, json_true());
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(deps, name), i, v)
	{
		if (json_is_string(v) && json_object_get(deps, json_string_value(v)))
			dep_order(deps, json_string_value(v), seen, out);
	}
	strv_push(out, name);
}

/* Every container here, dependencies first (the declared :depends-on). */
static int all_in_order(struct strv *out, struct clbsd_err *err)
{
	json_t *list = NULL;
	if (cli_call("GET", "/v1/containers?all=1", NULL, &list, err) < 0)
		return -err->code;
	json_t *deps = json_object();
	size_t i;
	json_t *c;
	json_array_foreach(list, i, c)
	{
		const char *n = json_str(c, "name");
		if (!n || strcmp(n, "ingress") == 0)
			continue;
		autofree char *p = xasprintf("/v1/containers/%s", n);
		json_t *one = NULL;
		if (cli_call("GET", p, NULL, &one, err) < 0) {
			json_decref(deps);
			json_decref(list);
			return -err->code;
		}
		json_t *d = json_object_get(one, "depends_on");
		json_object_set_new(deps, n, d ? json_incref(d) : json_array());
		json_decref(one);
	}
	json_decref(list);
	/* By name, so the order is the same on every run; dependencies first. */
	const char **names = xcalloc(json_object_size(deps) + 1, sizeof(*names));
	size_t n = 0;
	const char *k;
	json_object_foreach(deps, k, c) names[n++] = k;
	qsort(names, n, sizeof(*names), cmp_strp);
	json_t *seen = json_object();
	for (size_t j = 0; j < n; j++)
		dep_order(deps, names[j], seen, out);
	free(names);
	json_decref(seen);
	json_decref(deps);
	return 0;
}

int cmd_migrate(const struct cli_args *a)
{
	bool all = cli_has(a, "all");
	const char *to = cli_get(a, "to");
	const char *name = all ? NULL : a->argc > 0 ? a->argv[0] : NULL;
	int want = (all ? 0 : 1) + (to ? 0 : 1);
	if (a->argc != want || (!all && !name))
		return cli_usage(all ? "usage: clbsd migrate --all DEST"
				     : "usage: clbsd migrate NAME DEST");
	if (!to)
		to = a->argv[a->argc - 1];
	int r;
	if (name && (r = check_name(name)))
		return r;
	if (all && cli_has(a, "keep"))
		return cli_usage("--all moves the host: --keep is for one container");
	struct target dst = {0};
	if ((r = migrate_target(to, &dst))) {
		target_release(&dst);
		return r;
	}
	struct clbsd_err err;
	clbsd_err_init(&err);
	autofree char *dst_driver = NULL;
	if (target_check(&dst, &dst_driver, &err) < 0) {
		target_release(&dst);
		return cli_fail(&err);
	}
	if (!all) {
		int rc = migrate_one(a, name, to, &dst, dst_driver);
		target_release(&dst);
		return rc;
	}
	struct strv names = STRV_INIT;
	if (all_in_order(&names, &err) < 0) {
		target_release(&dst);
		return cli_fail(&err);
	}
	int rc = 0;
	size_t i = 0;
	for (; i < names.n && rc == 0; i++)
		rc = migrate_one(a, names.v[i], to, &dst, dst_driver);
	if (rc != 0) {
		fprintf(stderr, "clbsd: migrate --all: stopped at %s; moved:", names.v[i - 1]);
		for (size_t k = 0; k + 1 < i; k++)
			fprintf(stderr, " %s", names.v[k]);
		fprintf(stderr, "%s; not moved:", i > 1 ? "" : " none");
		for (size_t k = i - 1; k < names.n; k++)
			fprintf(stderr, " %s", names.v[k]);
		fprintf(stderr, "\n");
	}
	strv_release(&names);
	target_release(&dst);
	return rc;
}
