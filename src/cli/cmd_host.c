/*
 * A whole host (docs/host.md): `clbsd host diff FILE|unix:SOCKET|ssh://...`
 * and `clbsd host state` (what diff compares, as JSON, for a diff over
 * ssh), and what host export (host_export.c) and import (host_import.c)
 * share: the staging directory, the manifest's checksum, messages.
 *
 * The CLI assembles the archive from what the daemon already makes: one
 * snapshot of every container at one moment (POST /v1/host/snapshot, zfs),
 * the per-container exports of that snapshot, the image exports, and the
 * configuration files, which it reads and installs itself (it runs as root
 * on the daemon's host, as `export -o -` already requires). The archive
 * is a ustar file (host_tar.c) whose last member, manifest.json, lists
 * every other member with its size and XXH3-128 and carries its own
 * checksum; import checks all of it before it makes anything.
 */
#include "cli.h"
#include "core/backup_plan.h"
#include "core/config.h"
#include "util/json.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SUM_TAG "{\"manifest_xxh3\":\""

/* What a signal must remove: the staging directory and the unfinished archive. */
char host_stage_dir[4096], host_tmp_out[4096];

void host_stage_rm(void)
{
	struct clbsd_err ignore;
	if (host_stage_dir[0])
		fs_rm_rf(host_stage_dir, &ignore);
	if (host_tmp_out[0])
		unlink(host_tmp_out);
	host_stage_dir[0] = host_tmp_out[0] = 0;
}

static void on_signal(int sig)
{
	host_stage_rm();
	signal(sig, SIG_DFL);
	raise(sig);
}

void host_catch_signals(void)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		signal(sigs[i], on_signal);
}

/*
 * A private directory beside path for the pieces (same file system:
 * renames, no copies across); with no path (a stream), in $TMPDIR or
 * /var/tmp (not /tmp, often a tmpfs: a container's archive may be large).
 */
int host_stage_make(const char *path, struct clbsd_err *err)
{
	autofree char *copy = path ? xstrdup(path) : NULL;
	const char *tmp = getenv("TMPDIR");
	const char *dir = path ? dirname(copy) : tmp && tmp[0] == '/' ? tmp : "/var/tmp";
	snprintf(host_stage_dir, sizeof(host_stage_dir), "%s/.clbsd-host-XXXXXX", dir);
	if (!mkdtemp(host_stage_dir)) {
		int e = errno;
		host_stage_dir[0] = 0;
		return clbsd_err_set(err, CLBSD_E_INTERNAL, e, "make a directory in %s", dir);
	}
	return 0;
}

void host_say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	autofree char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	/* One write: imports on two threads say things at once. */
	fprintf(stderr, "clbsd: host: %s\n", msg ? msg : fmt);
}

bool host_valid_label(const char *s)
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

/* ---- the manifest's own checksum (as the per-container header's) ---- */

/* The manifest's text: its members after "manifest_xxh3", summed with the digits as '0'. */
char *host_manifest_text(const json_t *m)
{
	autofree char *body = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS);
	char *t = xasprintf(SUM_TAG "%032d\",%s\n", 0, body + 1);
	char hex[33];
	host_xxh3_hex(t, strlen(t), hex);
	memcpy(t + strlen(SUM_TAG), hex, 32);
	return t;
}

int host_manifest_check(char *text, size_t len, json_t **out, const char *path,
			struct clbsd_err *err)
{
	size_t off = strlen(SUM_TAG);
	if (len < off + 34 || strncmp(text, SUM_TAG, off) != 0)
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL,
					"%s is not a clbsd host archive (its manifest has no "
					"checksum)",
					path);
	char want[33];
	memcpy(want, text + off, 32);
	want[32] = 0;
	memset(text + off, '0', 32);
	char hex[33];
	host_xxh3_hex(text, len, hex);
	if (strcmp(hex, want) != 0)
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL,
					"%s is damaged: its manifest's checksum does not match",
					path);
	json_error_t je;
	json_t *m = json_loadb(text, len, 0, &je);
	if (!json_is_object(m) ||
	    strcmp(json_string_value(json_object_get(m, "format")) ?: "", "clbsd-host") != 0) {
		json_decref(m);
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL,
					"%s: its manifest is not a clbsd host manifest", path);
	}
	if (json_integer_value(json_object_get(m, "version")) != 1) {
		json_decref(m);
		return clbsd_err_setmsg(
			err, CLBSD_E_CONFLICT, EINVAL,
			"%s: host archive version %lld; this clbsd reads version 1", path,
			(long long)json_integer_value(json_object_get(m, "version")));
	}
	*out = m;
	return 0;
}

/* ---- the order of the containers ---- */

/* Whether every container c depends on is done (or is not in the archive). */
static bool deps_done(const json_t *c, const json_t *all, const json_t *done)
{
	size_t i, j;
	json_t *d, *o;
	json_array_foreach(json_object_get(c, "depends_on"), i, d)
	{
		json_array_foreach(all, j, o)
		{
			if (json_equal(json_object_get(o, "name"), d) &&
			    !json_object_get(done, json_string_value(d)))
				return false;
		}
	}
	return true;
}

bool host_entry_declared(const json_t *c)
{
	return json_is_true(json_object_get(c, "managed")) &&
	       json_is_string(json_object_get(c, "declaration"));
}

json_t *host_import_order(const json_t *all)
{
	json_t *out = json_array(), *done = json_object();
	size_t n = json_array_size(all);
	for (int pass_declared = 0; pass_declared < 2; pass_declared++) {
		for (size_t pass = 0; pass <= n; pass++) {
			size_t i, left = 0;
			json_t *c;
			json_array_foreach(all, i, c)
			{
				const char *name = json_string_value(json_object_get(c, "name"));
				if (!name || host_entry_declared(c) != (pass_declared == 1) ||
				    json_object_get(done, name))
					continue;
				/* A cycle: after n passes the rest go in their listed order. */
				if (!deps_done(c, all, done) && pass < n) {
					left++;
					continue;
				}
				json_array_append(out, c);
				json_object_set_new(done, name, json_true());
			}
			if (!left)
				break;
		}
	}
	json_decref(done);
	return out;
}

/* ---- diff and state ---- */

/*
 * The state of ssh://[user@]host[:port][/socket]: `clbsd host state` run
 * there, parsed and quoted as a backup's destination is (backup_plan.c).
 */
static json_t *remote_state(const char *to, struct clbsd_err *err)
{
	struct backup_dest d;
	char why[200];
	if (!backup_dest_parse(to, &d, why, sizeof(why)) || d.kind != BACKUP_DEST_SSH) {
		clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "%s: expected %s", to, why);
		return NULL;
	}
	static const char *const args[] = {"host", "state", NULL};
	struct strv v = STRV_INIT;
	backup_dest_ssh_argv(&d, args, NULL, &v);
	autofree char *text = NULL;
	int r = proc_run_in(v.v, -1, &text, err);
	strv_release(&v);
	backup_dest_release(&d);
	if (r < 0) {
		clbsd_err_prefix(err, "%s: `clbsd host state` there failed", to);
		return NULL;
	}
	json_t *s = json_loads(text ? text : "", 0, NULL);
	if (!s)
		clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, EIO,
				 "%s: `clbsd host state` there printed no state", to);
	return s;
}

int cmd_host_diff(const struct cli_args *a)
{
	const char *what = a->argv[0];
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *there = NULL;
	autofree char *label = NULL;
	if (strncmp(what, "ssh://", 6) == 0) {
		there = remote_state(what, &err);
		label = xstrdup(what);
	} else if (strncmp(what, "unix:", 5) == 0 && what[5] == '/') {
		struct clbsd_client *cl = clbsd_client_new(what + 5);
		there = host_state(cl, &err);
		clbsd_client_free(cl);
		label = xstrdup(what);
	} else {
		autofree char *path = cli_abs_target(what);
		if (!path)
			return cli_usage("cannot read \"%s\"", what);
		there = host_archive_state(path, &err);
		label = xstrdup(what);
	}
	json_t *here = there ? host_state(NULL, &err) : NULL;
	if (!here) {
		json_decref(there);
		return cli_fail(&err);
	}
	struct strv lines = STRV_INIT;
	size_t n = host_state_diff(here, there, label, &lines);
	if (cli.json) {
		json_t *j =
			json_pack("{s:I,s:o}", "differences", (json_int_t)n, "lines", json_array());
		for (size_t i = 0; i < lines.n; i++)
			json_array_append_new(json_object_get(j, "lines"), json_string(lines.v[i]));
		cli_print_json(j);
		json_decref(j);
	} else {
		for (size_t i = 0; i < lines.n; i++)
			printf("%s\n", lines.v[i]);
	}
	strv_release(&lines);
	json_decref(here);
	json_decref(there);
	return n ? 1 : 0;
}

int cmd_host_state(const struct cli_args *a)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *s = host_state(NULL, &err);
	if (!s)
		return cli_fail(&err);
	cli_print_json(s);
	json_decref(s);
	return 0;
}
