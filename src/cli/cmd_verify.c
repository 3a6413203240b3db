/* clbsd verify: a container's files against its manifest (docs/integrity.md). */
#include "cli.h"
#include "util/json.h"
#include "util/util.h"

#include <stdio.h>
#include <string.h>

/* Exit statuses: 0 clean (or updated), 1 the files differ, 2 usage, 3 the check failed. */
#define EXIT_DRIFT	  1
#define EXIT_CHECK_FAILED 3

/* A path from inside a container, with control bytes and backslashes escaped (\ooo). */
static void put_path(const char *p)
{
	struct buf b = BUF_INIT;
	fmt_add_safe(&b, p ? p : "", p ? strlen(p) : 0);
	fwrite(b.data ? b.data : "", 1, b.len, stdout);
	buf_release(&b);
}

static void put_change(const json_t *d)
{
	const json_t *what = json_object_get(d, "what");
	const json_t *was = json_object_get(d, "was"), *now = json_object_get(d, "now");
	size_t i;
	const json_t *w;
	printf(" (");
	json_array_foreach(what, i, w)
	{
		const char *k = json_string_value(w);
		printf("%s%s", i ? ", " : "", k);
		if (strcmp(k, "mode") == 0 || strcmp(k, "type") == 0) {
			printf(" %s -> %s", json_str(was, k), json_str(now, k));
		} else if (strcmp(k, "owner") == 0) {
			printf(" %lld:%lld -> %lld:%lld", (long long)json_int(was, "uid", 0),
			       (long long)json_int(was, "gid", 0),
			       (long long)json_int(now, "uid", 0),
			       (long long)json_int(now, "gid", 0));
		} else if (strcmp(k, "size") == 0) {
			printf(" %lld -> %lld", (long long)json_int(was, "size", 0),
			       (long long)json_int(now, "size", 0));
		} else if (strcmp(k, "target") == 0) {
			printf(" ");
			put_path(json_str(was, "link"));
			printf(" -> ");
			put_path(json_str(now, "link"));
		}
	}
	printf(")");
}

int cmd_verify(const struct cli_args *a)
{
	const char *name = a->argv[0];
	bool update = cli_has(a, "update");
	autofree char *path =
		xasprintf("/v1/containers/%s/verify%s", name, update ? "?update=1" : "");
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *res = NULL;
	if (cli_call("POST", path, NULL, &res, &err) < 0) {
		int r = cli_fail(&err);
		return r == EXIT_USAGE ? r : EXIT_CHECK_FAILED;
	}
	bool clean = json_bool(res, "clean", false);
	if (cli.json) {
		cli_print_json(res);
	} else {
		long long added = json_int(res, "added", 0), removed = json_int(res, "removed", 0),
			  changed = json_int(res, "changed", 0), files = json_int(res, "files", 0);
		size_t i;
		const json_t *d;
		json_array_foreach(json_object_get(res, "drift"), i, d)
		{
			const char *kind = json_str(d, "kind");
			if (!kind)
				continue;
			printf("%c ", kind[0] == 'a' ? 'A' : kind[0] == 'r' ? 'D' : 'M');
			put_path(json_str(d, "path"));
			if (kind[0] == 'c')
				put_change(d);
			putchar('\n');
		}
		if (json_bool(res, "truncated", false))
			printf("... (the first %zu listed; --json has the same list)\n", i);
		if (clean)
			printf("%s: clean (%lld files)\n", name, files);
		else
			printf("%s: %lld added, %lld removed, %lld changed (%lld files)\n", name,
			       added, removed, changed, files);
		if (update)
			printf("%s: manifest updated: the files as they are now are the new "
			       "baseline\n",
			       name);
	}
	json_decref(res);
	return clean || update ? 0 : EXIT_DRIFT;
}
