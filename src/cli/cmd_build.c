/*
 * `clbsd build -t NAME[:TAG] [-f FILE] [--no-cache] [--build-arg K=V]...
 * [--network host|none] DIR`: the daemon builds, this prints its progress.
 */
#include "cli.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct progress {
	struct buf line;
	json_t *image;
	char *error;
	int64_t started_ms;
};

static void show(struct progress *p, json_t *j)
{
	if (cli.json) {
		autofree char *l = json_line(j);
		printf("%s\n", l);
		fflush(stdout);
	}
	json_t *o = json_object_get(j, "output");
	json_t *img = json_object_get(j, "image");
	json_t *e = json_object_get(j, "error");
	if (img) {
		/* A Cblockfile built for dockerd reports clbsd's image, then the loaded one. */
		json_decref(p->image);
		p->image = json_incref(img);
		return;
	}
	if (e) {
		free(p->error);
		p->error =
			xstrdup(json_str(e, "message") ? json_str(e, "message") : "build failed");
		return;
	}
	if (cli.json)
		return;
	if (o) {
		fputs(json_string_value(o), stdout);
	} else if (json_object_get(j, "stage")) {
		printf("stage %d: FROM %s\n", (int)json_int(j, "stage", 0), json_str(j, "from"));
	} else {
		const char *st = json_str(j, "status");
		if (st && strcmp(st, "done") == 0)
			printf("step %d: done in %.2f s\n", (int)json_int(j, "step", 0),
			       (double)json_int(j, "elapsed_ms", 0) / 1000.0);
		else if (st)
			printf("step %d/%d: %s%s\n", (int)json_int(j, "step", 0),
			       (int)json_int(j, "of", 0), json_str(j, "instruction"),
			       strcmp(st, "cached") == 0    ? " (cached)"
			       : strcmp(st, "running") == 0 ? " (running)"
							    : "");
	}
	fflush(stdout);
}

static int on_chunk(const char *data, size_t len, void *ctx)
{
	struct progress *p = ctx;
	buf_add(&p->line, data, len);
	for (;;) {
		char *nl = p->line.data ? memchr(p->line.data, '\n', p->line.len) : NULL;
		if (!nl)
			break;
		size_t n = (size_t)(nl - p->line.data);
		json_t *j = json_loadb(p->line.data, n, 0, NULL);
		if (j)
			show(p, j);
		json_decref(j);
		buf_consume(&p->line, n + 1);
	}
	return 0;
}

/* The --build-arg values, checked: NAME=VALUE each. NULL after a usage error. */
static json_t *build_args(const struct cli_args *a, int *rc)
{
	json_t *args = json_array();
	const char *v;
	for (size_t i = 0; (v = cli_get_nth(a, "build-arg", i)); i++) {
		if (!strchr(v, '=') || v[0] == '=') {
			json_decref(args);
			*rc = cli_usage("--build-arg %s: want NAME=VALUE", v);
			return NULL;
		}
		json_array_append_new(args, json_string(v));
	}
	return args;
}

int cmd_build(const struct cli_args *a)
{
	const char *tag = cli_get(a, "tag"), *file = cli_get(a, "file");
	const char *network = cli_get(a, "network"), *kind = cli_get(a, "kind");
	if (kind && strcmp(kind, "docker") != 0 && strcmp(kind, "native") != 0)
		return cli_usage("--kind %s: want native or docker", kind);
	bool no_cache = cli_has(a, "no-cache");
	int rc = 0;
	if (network && strcmp(network, "host") != 0 && strcmp(network, "none") != 0)
		return cli_usage("--network %s: want host or none", network);
	if (!tag)
		return cli_usage("missing -t NAME[:TAG]");
	if (!valid_image_ref(tag))
		return cli_usage("invalid image name \"%s\": expected NAME[:TAG]", tag);
	json_t *args = build_args(a, &rc);
	if (!args)
		return rc;
	char *ctx = realpath(a->argv[0], NULL);
	if (!ctx) {
		json_decref(args);
		return cli_usage("build context %s: not found", a->argv[0]);
	}
	autofree char *fpath = NULL;
	if (file) {
		char *f = realpath(file, NULL);
		if (!f) {
			free(ctx);
			json_decref(args);
			return cli_usage("-f %s: not found", file);
		}
		fpath = f;
	}
	json_t *body = json_pack("{s:s,s:s,s:o,s:b}", "context", ctx, "tag", tag, "args", args,
				 "no_cache", no_cache);
	free(ctx);
	if (fpath)
		json_object_set_new(body, "file", json_string(fpath));
	if (network)
		json_object_set_new(body, "network", json_string(network));
	if (kind)
		json_object_set_new(body, "kind", json_string(kind));
	autofree char *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	struct progress p = {.line = BUF_INIT};
	struct clbsd_err err;
	clbsd_err_init(&err);
	int r = clbsd_client_stream_req(cli_client(), "POST", "/v1/build", text, on_chunk, &p, NULL,
					&err);
	if (r < 0) {
		rc = cli_fail(&err);
	} else if (p.error) {
		fprintf(stderr, "clbsd: build: %s\n", p.error);
		rc = 1;
	} else if (p.image) {
		if (!cli.json)
			printf("built %s (%s)\n", tag, json_str(p.image, "id"));
	} else {
		fprintf(stderr, "clbsd: build: the daemon ended the build without a result\n");
		rc = 1;
	}
	json_decref(p.image);
	free(p.error);
	buf_release(&p.line);
	return rc;
}
