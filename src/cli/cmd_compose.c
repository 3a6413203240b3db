/*
 * clbsd import-compose FILE [-o OUT] [--native|--docker]: a compose file
 * translated into configuration forms (src/compose/). No daemon is needed;
 * when one answers, the images its store holds make their services native
 * (unless --docker or --native says for all).
 */
#include "cli.h"
#include "compose/compose.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The daemon's image names ("NAME:TAG"), or NULL when it does not answer. */
static json_t *store_names(void)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *res = NULL;
	if (access(cli.socket, F_OK) != 0 || cli_call("GET", "/v1/images", NULL, &res, &err) < 0)
		return NULL;
	json_t *names = json_array();
	size_t i;
	json_t *img;
	json_array_foreach(res, i, img)
	{
		size_t k;
		json_t *n;
		json_array_foreach(json_object_get(img, "names"), k, n) json_array_append(names, n);
	}
	json_decref(res);
	return names;
}

static bool in_store(const char *image, void *arg)
{
	const json_t *names = arg;
	/* A reference without a tag means :latest, as in the store. */
	const char *slash = strrchr(image, '/');
	bool tagged = strchr(slash ? slash : image, ':') != NULL;
	autofree char *ref = tagged ? xstrdup(image) : xasprintf("%s:latest", image);
	size_t i;
	json_t *n;
	json_array_foreach(names, i, n) if (json_string_value(n) &&
					    !strcmp(json_string_value(n), ref)) return true;
	return false;
}

static const char *env_of(const char *name, void *arg)
{
	return getenv(name);
}

int cmd_import_compose(const struct cli_args *a)
{
	const char *file = a->argv[0];
	if (cli_has(a, "native") && cli_has(a, "docker"))
		return cli_usage("import-compose: --native and --docker exclude each other");
	autofree char *text = NULL;
	size_t len = 0;
	struct clbsd_err err;
	clbsd_err_init(&err);
	if (fs_read_file(file, &text, &len, &err) < 0) {
		fprintf(stderr, "clbsd: import-compose: %s\n", err.msg);
		return 1;
	}
	autofree char *copy = xstrdup(file);
	autofree char *dir = realpath(dirname(copy), NULL);
	struct compose_opts o = {
		.file = file,
		.text = text,
		.len = len,
		.dir = dir,
		.project = cli_get(a, "project"),
		.kind = cli_has(a, "native")   ? COMPOSE_KIND_NATIVE
			: cli_has(a, "docker") ? COMPOSE_KIND_DOCKER
					       : COMPOSE_KIND_AUTO,
		.getenv = env_of,
	};
	json_t *names = o.kind == COMPOSE_KIND_AUTO ? store_names() : NULL;
	if (o.kind == COMPOSE_KIND_AUTO && !names)
		o.kind = COMPOSE_KIND_DOCKER; /* no daemon: nothing is in a store */
	o.is_native = in_store;
	o.native_arg = names;
	struct compose_result r;
	int rc = compose_translate(&o, &r);
	json_decref(names);
	fputs(r.warnings, stderr);
	if (rc < 0) {
		compose_result_release(&r);
		return 1;
	}
	const char *out = cli_get(a, "output");
	int ret = 0;
	if (out && strcmp(out, "-") != 0) {
		if (fs_replace(out, r.text, strlen(r.text), 0644, &err) < 0) {
			fprintf(stderr, "clbsd: import-compose: %s\n", err.msg);
			ret = 1;
		}
	} else {
		fputs(r.text, stdout);
	}
	compose_result_release(&r);
	return ret;
}
