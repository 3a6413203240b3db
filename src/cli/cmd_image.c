/*
 * Image commands (images, image import|export|load|pull|tag|prune|rm|inspect|ls,
 * forge, pull, load) and the daemon facts (info, version).
 */
#include "cli.h"
#include "util/json.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* --format and -q for images and image ls; else the table. */
int show_images(const struct cli_args *a, const json_t *list)
{
	bool quiet = cli_has(a, "quiet"), format = cli_has(a, "format");
	if (!quiet && !format) {
		autofree char *t = fmt_images(list, time_now_ns());
		fputs(t, stdout);
		return 0;
	}
	json_t *items, *extras;
	fmt_image_rows(list, time_now_ns(), false, &items, &extras);
	int rc = 0;
	if (format) {
		rc = cli_print_format(a, items, extras);
	} else {
		/* One id per image, as docker images -q prints them. */
		size_t i;
		json_t *img;
		json_array_foreach(list, i, img)
		{
			autofree char *id =
				fmt_short_id(json_string_value(json_object_get(img, "id")));
			printf("%s\n", id);
		}
	}
	json_decref(items);
	json_decref(extras);
	return rc;
}

int cmd_images(const struct cli_args *a)
{
	const char *kind = cli_get(a, "kind");
	if (kind && strcmp(kind, "docker") != 0 && strcmp(kind, "native") != 0)
		return cli_usage("--kind %s: want native or docker", kind);
	bool docker = kind && strcmp(kind, "docker") == 0;
	return cli_show(a, "GET", docker ? "/v1/images?kind=docker" : "/v1/images", show_images);
}

static void print_image_id(const json_t *img)
{
	if (cli.json)
		cli_print_json(img);
	else
		printf("%s\n", json_string_value(json_object_get(img, "id")));
}

int cmd_image_import(const struct cli_args *a)
{
	const char *dir = a->argv[0], *ref = a->argv[1];
	if (!valid_image_ref(ref))
		return cli_usage("invalid image name \"%s\": expected NAME[:TAG]", ref);
	/* The daemon runs on this host and wants an absolute path. */
	char abs[PATH_MAX];
	if (!realpath(dir, abs))
		return cli_usage("cannot use directory \"%s\": %s", dir, strerror(errno));
	if (!fs_is_dir(abs))
		return cli_usage("\"%s\" is not a directory", dir);
	json_t *req = json_pack("{s:s, s:s}", "path", abs, "name", ref);
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *img = NULL;
	int r = cli_call("POST", "/v1/images/import", req, &img, &err);
	json_decref(req);
	if (r < 0)
		return cli_fail(&err);
	print_image_id(img);
	json_decref(img);
	return 0;
}

int cmd_image_rm(const struct cli_args *a)
{
	bool force = cli_has(a, "force");
	int rc = 0;
	for (int i = 0; i < a->argc; i++) {
		struct clbsd_err err;
		clbsd_err_init(&err);
		autofree char *ref = clbsd_client_escape(a->argv[i]);
		autofree char *path = xasprintf("/v1/images/%s%s", ref, force ? "?force=1" : "");
		if (cli_call("DELETE", path, NULL, NULL, &err) < 0) {
			fprintf(stderr, "clbsd: %s\n", err.msg);
			rc = err.kind == CLBSD_E_INVALID ? EXIT_USAGE : (rc ? rc : 1);
		} else {
			printf("Deleted: %s\n", a->argv[i]);
		}
		fflush(stdout);
	}
	return rc;
}

int cmd_image_inspect(const struct cli_args *a)
{
	json_t *arr = json_array();
	int rc = 0;
	for (int i = 0; i < a->argc; i++) {
		struct clbsd_err err;
		clbsd_err_init(&err);
		autofree char *ref = clbsd_client_escape(a->argv[i]);
		autofree char *path = xasprintf("/v1/images/%s", ref);
		json_t *img = NULL;
		if (cli_call("GET", path, NULL, &img, &err) < 0) {
			fprintf(stderr, "clbsd: %s\n", err.msg);
			rc = 1;
		} else {
			json_array_append_new(arr, img);
		}
	}
	if (cli_has(a, "format")) {
		json_t *items, *extras;
		fmt_image_rows(arr, time_now_ns(), true, &items, &extras);
		int fr = cli_print_format(a, items, extras);
		rc = fr ? fr : rc;
		json_decref(items);
		json_decref(extras);
	} else {
		cli_print_json(arr);
	}
	json_decref(arr);
	return rc;
}

int cmd_image_export(const struct cli_args *a)
{
	const char *out = cli_get(a, "output");
	if (!out)
		return cli_usage("missing -o FILE (where the OCI archive goes)");
	const char *ref = a->argv[0];
	autofree char *path = cli_abs_target(out);
	if (!path)
		return cli_usage("cannot write \"%s\": its directory does not exist", out);
	autofree char *eref = clbsd_client_escape(ref);
	autofree char *api = xasprintf("/v1/images/%s/export", eref);
	return cli_send("POST", api, json_pack("{s:s}", "path", path), NULL, "digest");
}

/*
 * Load FILE ("-": standard input, kept in a private file meanwhile).
 * keep_created: with the archive's creation time, so the image has the id
 * it had where it was saved (ids are content addresses of a config that
 * holds that time): what clbsd migrate asks of a target over ssh.
 */
static int do_load(const char *file, const char *name, bool keep_created)
{
	char *path = NULL;
	bool from_stdin = strcmp(file, "-") == 0;
	int r;
	if (from_stdin && (r = cli_spool_stdin("load", &path)))
		return r;
	char abs[PATH_MAX];
	if (!from_stdin && !realpath(file, abs))
		return cli_usage("cannot read \"%s\": %s", file, strerror(errno));
	json_t *req = json_pack("{s:s,s:s?}", "path", from_stdin ? path : abs, "name", name);
	if (keep_created)
		json_object_set_new(req, "keep_created", json_true());
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *img = NULL;
	r = cli_call("POST", "/v1/images/load", req, &img, &err);
	json_decref(req);
	cli_spool_drop(path);
	if (r < 0)
		return cli_fail(&err);
	if (cli.json) {
		cli_print_json(img);
	} else {
		json_t *names = json_object_get(img, "names");
		printf("Loaded image: %s\n", json_string_value(json_array_get(names, 0)));
		printf("%s\n", json_string_value(json_object_get(img, "id")));
	}
	json_decref(img);
	return 0;
}

int cmd_load(const struct cli_args *a)
{
	const char *in = cli_get(a, "input"), *name = cli_get(a, "name");
	if (in && a->argc)
		return cli_usage("unexpected argument \"%s\" (the archive is -i %s)", a->argv[0],
				 in);
	const char *file = in ? in : a->argc ? a->argv[0] : NULL;
	if (!file)
		return cli_usage("missing FILE (an OCI archive or layout, or a docker save "
				 "archive; - reads standard input)");
	if (name && !valid_image_ref(name))
		return cli_usage("invalid image name \"%s\": expected NAME[:TAG]", name);
	return do_load(file, name, cli_has(a, "keep-created"));
}

/* Prints the daemon's image.progress lines of one pull while it runs. */
struct pull_watch {
	const char *ref;
	struct buf line;
	char path[128];
};

static int pull_events(const char *data, size_t len, void *ctx)
{
	struct pull_watch *w = ctx;
	buf_add(&w->line, data, len);
	char *nl;
	while (w->line.len && (nl = memchr(w->line.data, '\n', w->line.len))) {
		size_t n = (size_t)(nl - w->line.data);
		json_t *ev = json_loadb(w->line.data, n, 0, NULL);
		json_t *at = json_object_get(ev, "attrs");
		const char *ref = json_str(at, "ref"), *st = json_str(at, "status");
		const char *type = json_str(ev, "type");
		bool mine = ref && strcmp(ref, w->ref) == 0;
		if (mine && type && strcmp(type, "image.progress") == 0 && st) {
			fprintf(stderr, "%s\n", st);
			if (strncmp(st, "done", 4) == 0 || strncmp(st, "failed", 6) == 0) {
				json_decref(ev);
				return 1;
			}
		}
		json_decref(ev);
		memmove(w->line.data, nl + 1, w->line.len - n - 1);
		w->line.len -= n + 1;
	}
	return 0;
}

/*
 * Follow the progress events from the last one there is now, so none of
 * this pull's is missed however fast it starts. The follower is a child
 * process: it ends by itself on the last line ("done" or "failed"), and the
 * parent stops it by its pid when the request was refused before any.
 */
static pid_t watch_start(struct pull_watch *w)
{
	struct clbsd_client *c = clbsd_client_new(cli.socket);
	struct clbsd_err err;
	clbsd_err_init(&err);
	char *resp = NULL;
	int r = clbsd_client_request(c, "GET", "/v1/events?type=image.progress", NULL, &resp, NULL,
				     &err);
	clbsd_client_free(c);
	if (r < 0)
		return -1;
	long long seq = 0;
	for (char *line = resp; line && *line;) {
		char *nl = strchr(line, '\n');
		json_t *ev = json_loadb(line, nl ? (size_t)(nl - line) : strlen(line), 0, NULL);
		seq = json_int(ev, "seq", seq);
		json_decref(ev);
		line = nl ? nl + 1 : NULL;
	}
	free(resp);
	snprintf(w->path, sizeof(w->path), "/v1/events?follow=1&type=image.progress&since=%lld",
		 seq);
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	c = clbsd_client_new(cli.socket);
	clbsd_client_stream(c, w->path, pull_events, w, NULL, &err);
	clbsd_client_free(c);
	_exit(0);
}

/* Let the follower print the last lines (up to `ms`), then stop it. */
static void watch_stop(pid_t pid, int ms)
{
	for (int waited = 0;; waited += 20) {
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return;
		if (waited >= ms)
			break;
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

int cmd_pull(const struct cli_args *a)
{
	const char *ref = a->argv[0], *name = cli_get(a, "name"), *kind = cli_get(a, "kind");
	if (name && !valid_image_ref(name))
		return cli_usage("invalid image name \"%s\": expected NAME[:TAG]", name);
	if (kind && strcmp(kind, "docker") != 0 && strcmp(kind, "native") != 0)
		return cli_usage("--kind %s: want native or docker", kind);
	bool docker = kind && strcmp(kind, "docker") == 0;
	if (docker && name)
		return cli_usage(
			"--name does not go with --kind docker (dockerd keeps REF's name)");
	int r;
	json_t *req = json_pack("{s:s,s:s?,s:s?}", "ref", ref, "name", name, "kind", kind);
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *img = NULL;
	struct pull_watch w = {.ref = ref, .line = BUF_INIT};
	pid_t watcher = cli.json ? -1 : watch_start(&w);
	r = cli_call("POST", "/v1/images/pull", req, &img, &err);
	json_decref(req);
	/* A pull that ran ends its progress with a last line; a refused one has none. */
	if (watcher > 0)
		watch_stop(watcher, r < 0 && err.kind == CLBSD_E_INVALID ? 300 : 2000);
	buf_release(&w.line);
	if (r < 0)
		return cli_fail(&err);
	if (cli.json) {
		cli_print_json(img);
	} else {
		json_t *names = json_object_get(img, "names");
		if (docker)
			printf("Pulled %s into dockerd\n", ref);
		else
			printf("Pulled %s as %s\n", ref,
			       json_string_value(json_array_get(names, 0)));
		const char *dg = json_str(img, "digest");
		if (dg)
			printf("Digest: %s\n", dg);
		printf("%s\n", json_string_value(json_object_get(img, "id")));
	}
	json_decref(img);
	return 0;
}

int cmd_image_tag(const struct cli_args *a)
{
	const char *src = a->argv[0], *dst = a->argv[1];
	if (!valid_image_ref(dst))
		return cli_usage("invalid image name \"%s\": expected NAME[:TAG]", dst);
	autofree char *esrc = clbsd_client_escape(src);
	autofree char *api = xasprintf("/v1/images/%s/tag", esrc);
	return cli_send("POST", api, json_pack("{s:s}", "name", dst), NULL, NULL);
}

static int show_pruned(const struct cli_args *a, const json_t *res)
{
	size_t i;
	json_t *id;
	json_array_foreach(json_object_get(res, "removed"), i, id)
		printf("Deleted: %s\n", json_string_value(id));
	char size[32];
	fmt_size(json_integer_value(json_object_get(res, "reclaimed")), size, sizeof(size));
	printf("Total reclaimed space: %s\n", size);
	return 0;
}

int cmd_image_prune(const struct cli_args *a)
{
	return cli_show(a, "POST", "/v1/images/prune", show_pruned);
}

int cmd_forge(const struct cli_args *a)
{
	bool from_host = cli_has(a, "from-host");
	const char *name = cli_get(a, "name");
	const char *ref = name ? name : "forge:latest";
	json_t *bins = NULL;
	if (from_host) {
		/* forge --from-host [--name N] BIN...: the binaries, resolved on PATH here. */
		if (a->argc == 0)
			return cli_usage(
				"--from-host needs the programs to copy, like /usr/sbin/nginx");
		if (!name)
			return cli_usage("--from-host needs --name NAME[:TAG]");
		bins = json_array();
		for (int i = 0; i < a->argc; i++) {
			char *p = realpath(a->argv[i], NULL);
			if (!p) {
				json_decref(bins);
				return cli_usage("%s: not found (give a path to the program)",
						 a->argv[i]);
			}
			json_array_append_new(bins, json_string(p));
			free(p);
		}
	} else {
		if (a->argc > (name ? 0 : 1))
			return cli_usage("unexpected argument \"%s\"", a->argv[name ? 0 : 1]);
		if (!name && a->argc)
			ref = a->argv[0];
	}
	if (!valid_image_ref(ref)) {
		json_decref(bins);
		return cli_usage("invalid image name \"%s\": expected NAME[:TAG]", ref);
	}
	int r;
	json_t *req = json_pack("{s:s}", "name", ref);
	if (bins)
		json_object_set_new(req, "from_host", bins);
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *img = NULL;
	r = cli_call("POST", "/v1/images/forge", req, &img, &err);
	json_decref(req);
	if (r < 0)
		return cli_fail(&err);
	print_image_id(img);
	json_decref(img);
	return 0;
}

int show_info(const struct cli_args *a, const json_t *info)
{
	autofree char *s = fmt_info(info);
	fputs(s, stdout);
	return 0;
}

int cmd_version(const struct cli_args *a)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *info = NULL;
	int rc = cli_call("GET", "/v1/info", NULL, &info, &err);
	const char *dv = rc == 0 ? json_string_value(json_object_get(info, "version")) : NULL;
	if (cli.json) {
		json_t *v = json_pack("{s:s, s:s?}", "client", CLBSD_VERSION, "daemon", dv);
		cli_print_json(v);
		json_decref(v);
	} else {
		printf("client: %s\n", CLBSD_VERSION);
		if (dv)
			printf("daemon: %s\n", dv);
	}
	json_decref(info);
	if (rc < 0) {
		fflush(stdout);
		fprintf(stderr, "clbsd: %s\n", err.msg);
		return 1;
	}
	return 0;
}
