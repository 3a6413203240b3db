/*
 * Image commands (images, image import|rm|inspect|ls, forge) and the daemon
 * facts (info, version).
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

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
			return cli_usage("invalid image reference \"%s\": expected NAME[:TAG] or an id",
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

int cmd_image(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage("missing COMMAND (import, rm, inspect or ls)");
	const char *sub = argv[1];
	if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0)
		return cli_help();
	static const struct {
		const char *name;
		const char *full;
		int (*fn)(int, char **);
	} subs[] = {
		{"import", "image import", image_import},
		{"rm", "image rm", image_rm},
		{"remove", "image rm", image_rm},
		{"inspect", "image inspect", image_inspect},
		{"ls", "image ls", cmd_images},
		{"list", "image ls", cmd_images},
	};
	for (size_t i = 0; i < ARRAY_SIZE(subs); i++) {
		if (strcmp(subs[i].name, sub) == 0) {
			cli.cmd = subs[i].full;
			return subs[i].fn(argc - 1, argv + 1);
		}
	}
	return cli_usage("unknown command \"%s\" (expected import, rm, inspect or ls)", sub);
}

int cmd_forge(int argc, char **argv)
{
	int r = opts_json(argc, argv);
	if (r)
		return r < 0 ? 0 : r;
	const char *ref = "forge:latest";
	if (optind < argc)
		ref = argv[optind++];
	if (optind < argc)
		return cli_usage("unexpected argument \"%s\"", argv[optind]);
	if (!valid_image_ref(ref))
		return cli_usage("invalid image name \"%s\": expected NAME[:TAG]", ref);
	json_t *req = json_pack("{s:s}", "name", ref);
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
