/*
 * Image commands (images, image import|export|load|pull|tag|prune|rm|inspect|ls,
 * forge, pull, load) and the daemon facts (info, version).
 */
#include "cli.h"
#include "util/json.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* -h and --json only; returns -1 after help, 0 to go on, else an exit status. */
static int opts_json(int argc, char **argv)
{
	return cli_opts_json(argc, argv, NULL);
}

static int check_refs(int argc, char **argv, int first)
{
	if (first >= argc)
		return cli_usage("missing image REF");
	for (int i = first; i < argc; i++)
		if (!valid_image_ref(argv[i]))
			return cli_usage(
				"invalid image reference \"%s\": expected NAME[:TAG] or an id",
				argv[i]);
	return 0;
}

int cmd_images(int argc, char **argv)
{
	int r = cli_opts_noargs(argc, argv, NULL);
	if (r)
		return r < 0 ? 0 : r;
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *list = NULL;
	if (cli_call("GET", "/v1/images", NULL, &list, &err) < 0)
		return cli_fail(&err);
	if (cli.json) {
		cli_print_json(list);
	} else {
		autofree char *t = fmt_images(list, time_now_ns());
		fputs(t, stdout);
	}
	json_decref(list);
	return 0;
}

static void print_image_id(const json_t *img)
{
	if (cli.json)
		cli_print_json(img);
	else
		printf("%s\n", json_string_value(json_object_get(img, "id")));
}

static int image_import(int argc, char **argv)
{
	int r = opts_json(argc, argv);
	if (r)
		return r < 0 ? 0 : r;
	if (argc - optind < 2)
		return cli_usage(argc - optind < 1 ? "missing DIR and NAME[:TAG]"
						   : "missing NAME[:TAG]");
	if (argc - optind > 2)
		return cli_usage("unexpected argument \"%s\"", argv[optind + 2]);
	const char *dir = argv[optind], *ref = argv[optind + 1];
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
	r = cli_call("POST", "/v1/images/import", req, &img, &err);
	json_decref(req);
	if (r < 0)
		return cli_fail(&err);
	print_image_id(img);
	json_decref(img);
	return 0;
}

static int image_rm(int argc, char **argv)
{
	static const struct option lo[] = {
		{"help", no_argument, NULL, 'h'},
		{"force", no_argument, NULL, 'f'},
		{NULL, 0, NULL, 0},
	};
	bool force = false;
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:hf", lo, NULL)) != -1) {
		switch (c) {
		case 'h':
			return cli_help();
		case 'f':
			force = true;
			break;
		default:
			return cli_bad_opt(c, argv);
		}
	}
	int r = check_refs(argc, argv, optind);
	if (r)
		return r;
	int rc = 0;
	for (int i = optind; i < argc; i++) {
		struct clbsd_err err;
		clbsd_err_init(&err);
		autofree char *ref = clbsd_client_escape(argv[i]);
		autofree char *path = xasprintf("/v1/images/%s%s", ref, force ? "?force=1" : "");
		if (cli_call("DELETE", path, NULL, NULL, &err) < 0) {
			fprintf(stderr, "clbsd: %s\n", err.msg);
			rc = err.kind == CLBSD_E_INVALID ? EXIT_USAGE : (rc ? rc : 1);
		} else {
			printf("Deleted: %s\n", argv[i]);
		}
		fflush(stdout);
	}
	return rc;
}

static int image_inspect(int argc, char **argv)
{
	int r = opts_json(argc, argv);
	if (r)
		return r < 0 ? 0 : r;
	if ((r = check_refs(argc, argv, optind)))
		return r;
	json_t *arr = json_array();
	int rc = 0;
	for (int i = optind; i < argc; i++) {
		struct clbsd_err err;
		clbsd_err_init(&err);
		autofree char *ref = clbsd_client_escape(argv[i]);
		autofree char *path = xasprintf("/v1/images/%s", ref);
		json_t *img = NULL;
		if (cli_call("GET", path, NULL, &img, &err) < 0) {
			fprintf(stderr, "clbsd: %s\n", err.msg);
			rc = 1;
		} else {
			json_array_append_new(arr, img);
		}
	}
	cli_print_json(arr);
	json_decref(arr);
	return rc;
}

/* The flags of export, load and pull: -o FILE, -i FILE, --name NAME. */
struct img_opts {
	const char *out, *in, *name;
};

static int parse_img_opts(int argc, char **argv, struct img_opts *o)
{
	static const struct option lo[] = {
		{"help", no_argument, NULL, 'h'},	  {"json", no_argument, NULL, 'j'},
		{"output", required_argument, NULL, 'o'}, {"input", required_argument, NULL, 'i'},
		{"name", required_argument, NULL, 'n'},	  {NULL, 0, NULL, 0},
	};
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":ho:i:", lo, NULL)) != -1) {
		switch (c) {
		case 'h':
			cli_help();
			return -1;
		case 'j':
			cli.json = true;
			break;
		case 'o':
			o->out = optarg;
			break;
		case 'i':
			o->in = optarg;
			break;
		case 'n':
			if (!valid_image_ref(optarg))
				return cli_usage("invalid image name \"%s\": expected NAME[:TAG]",
						 optarg);
			o->name = optarg;
			break;
		default:
			return cli_bad_opt(c, argv);
		}
	}
	return 0;
}

static int image_export(int argc, char **argv)
{
	struct img_opts o = {0};
	int r = parse_img_opts(argc, argv, &o);
	if (r)
		return r < 0 ? 0 : r;
	if (o.in || o.name)
		return cli_usage("unknown option '%s'", o.in ? "-i" : "--name");
	if (argc - optind < 1)
		return cli_usage("missing image NAME");
	if (argc - optind > 1)
		return cli_usage("unexpected argument \"%s\"", argv[optind + 1]);
	if (!o.out)
		return cli_usage("missing -o FILE (where the OCI archive goes)");
	const char *ref = argv[optind];
	if (!valid_image_ref(ref))
		return cli_usage("invalid image reference \"%s\": expected NAME[:TAG] or an id",
				 ref);
	autofree char *path = cli_abs_target(o.out);
	if (!path)
		return cli_usage("cannot write \"%s\": its directory does not exist", o.out);
	autofree char *eref = clbsd_client_escape(ref);
	autofree char *api = xasprintf("/v1/images/%s/export", eref);
	return cli_send("POST", api, json_pack("{s:s}", "path", path), NULL, "digest");
}

static int do_load(const char *file, const char *name)
{
	char abs[PATH_MAX];
	if (!realpath(file, abs))
		return cli_usage("cannot read \"%s\": %s", file, strerror(errno));
	json_t *req = json_pack("{s:s,s:s?}", "path", abs, "name", name);
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *img = NULL;
	int r = cli_call("POST", "/v1/images/load", req, &img, &err);
	json_decref(req);
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

static int image_load(int argc, char **argv)
{
	struct img_opts o = {0};
	int r = parse_img_opts(argc, argv, &o);
	if (r)
		return r < 0 ? 0 : r;
	if (o.out)
		return cli_usage("unknown option '-o'");
	const char *file = o.in;
	if (!file && optind < argc)
		file = argv[optind++];
	if (!file)
		return cli_usage(
			"missing FILE (an OCI archive or layout, or a docker save archive)");
	if (optind < argc)
		return cli_usage("unexpected argument \"%s\"", argv[optind]);
	return do_load(file, o.name);
}

int cmd_load(int argc, char **argv)
{
	return image_load(argc, argv);
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

static int image_pull(int argc, char **argv)
{
	struct img_opts o = {0};
	int r = parse_img_opts(argc, argv, &o);
	if (r)
		return r < 0 ? 0 : r;
	if (o.out || o.in)
		return cli_usage("unknown option '%s'", o.out ? "-o" : "-i");
	if (argc - optind < 1)
		return cli_usage("missing REF, like 127.0.0.1:5000/test/forge:1");
	if (argc - optind > 1)
		return cli_usage("unexpected argument \"%s\"", argv[optind + 1]);
	const char *ref = argv[optind];
	json_t *req = json_pack("{s:s,s:s?}", "ref", ref, "name", o.name);
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
		printf("Pulled %s as %s\n", ref, json_string_value(json_array_get(names, 0)));
		const char *dg = json_str(img, "digest");
		if (dg)
			printf("Digest: %s\n", dg);
		printf("%s\n", json_string_value(json_object_get(img, "id")));
	}
	json_decref(img);
	return 0;
}

int cmd_pull(int argc, char **argv)
{
	return image_pull(argc, argv);
}

static int image_tag(int argc, char **argv)
{
	int r = opts_json(argc, argv);
	if (r)
		return r < 0 ? 0 : r;
	if (argc - optind != 2)
		return cli_usage(argc - optind < 2 ? "missing SOURCE and NEW name"
						   : "unexpected argument \"%s\"",
				 argv[optind + 2]);
	const char *src = argv[optind], *dst = argv[optind + 1];
	if (!valid_image_ref(src))
		return cli_usage("invalid image reference \"%s\": expected NAME[:TAG] or an id",
				 src);
	if (!valid_image_ref(dst))
		return cli_usage("invalid image name \"%s\": expected NAME[:TAG]", dst);
	autofree char *esrc = clbsd_client_escape(src);
	autofree char *api = xasprintf("/v1/images/%s/tag", esrc);
	return cli_send("POST", api, json_pack("{s:s}", "name", dst), NULL, NULL);
}

static int image_prune(int argc, char **argv)
{
	int r = cli_opts_noargs(argc, argv, NULL);
	if (r)
		return r < 0 ? 0 : r;
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *res = NULL;
	if (cli_call("POST", "/v1/images/prune", NULL, &res, &err) < 0)
		return cli_fail(&err);
	if (cli.json) {
		cli_print_json(res);
	} else {
		size_t i;
		json_t *id;
		json_array_foreach(json_object_get(res, "removed"), i, id)
			printf("Deleted: %s\n", json_string_value(id));
		char size[32];
		fmt_size(json_integer_value(json_object_get(res, "reclaimed")), size, sizeof(size));
		printf("Total reclaimed space: %s\n", size);
	}
	json_decref(res);
	return 0;
}

int cmd_image(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
		{"import", "image import", image_import},
		{"export", "image export", image_export},
		{"save", "image export", image_export},
		{"load", "image load", image_load},
		{"pull", "image pull", image_pull},
		{"tag", "image tag", image_tag},
		{"prune", "image prune", image_prune},
		{"rm", "image rm", image_rm},
		{"remove", "image rm", image_rm},
		{"inspect", "image inspect", image_inspect},
		{"ls", "image ls", cmd_images},
		{"list", "image ls", cmd_images},
	};
	return cli_dispatch(argc, argv, subs, ARRAY_SIZE(subs),
			    "import, export, load, pull, tag, prune, rm, inspect or ls");
}

int cmd_forge(int argc, char **argv)
{
	static const struct option lo[] = {
		{"help", no_argument, NULL, 'h'},
		{"json", no_argument, NULL, 'j'},
		{"from-host", no_argument, NULL, 'H'},
		{"name", required_argument, NULL, 'n'},
		{NULL, 0, NULL, 0},
	};
	bool from_host = false;
	const char *name = NULL;
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:h", lo, NULL)) != -1) {
		switch (c) {
		case 'h':
			return cli_help();
		case 'j':
			cli.json = true;
			break;
		case 'H':
			from_host = true;
			break;
		case 'n':
			name = optarg;
			break;
		default:
			return cli_bad_opt(c, argv);
		}
	}
	const char *ref = name ? name : "forge:latest";
	json_t *bins = NULL;
	if (from_host) {
		/* forge --from-host [--name N] BIN...: the binaries, resolved on PATH here. */
		if (optind >= argc)
			return cli_usage(
				"--from-host needs the programs to copy, like /usr/sbin/nginx");
		if (!name)
			return cli_usage("--from-host needs --name NAME[:TAG]");
		bins = json_array();
		for (int i = optind; i < argc; i++) {
			char *p = realpath(argv[i], NULL);
			if (!p) {
				json_decref(bins);
				return cli_usage("%s: not found (give a path to the program)",
						 argv[i]);
			}
			json_array_append_new(bins, json_string(p));
			free(p);
		}
	} else {
		if (!name && optind < argc)
			ref = argv[optind++];
		if (optind < argc)
			return cli_usage("unexpected argument \"%s\"", argv[optind]);
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

int cmd_info(int argc, char **argv)
{
	int r = cli_opts_noargs(argc, argv, NULL);
	if (r)
		return r < 0 ? 0 : r;
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *info = NULL;
	if (cli_call("GET", "/v1/info", NULL, &info, &err) < 0)
		return cli_fail(&err);
	if (cli.json) {
		cli_print_json(info);
	} else {
		autofree char *s = fmt_info(info);
		fputs(s, stdout);
	}
	json_decref(info);
	return 0;
}

int cmd_version(int argc, char **argv)
{
	int r = cli_opts_noargs(argc, argv, NULL);
	if (r)
		return r < 0 ? 0 : r;
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
