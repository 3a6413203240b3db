/*
 * The declarative commands: plan, apply, status.
 */
#include "cli.h"
#include "util/json.h"
#include "util/util.h"

#include <stdio.h>
#include <string.h>

/* One line per action: its reason, and for an applied one the outcome. */
static void print_actions(const json_t *actions, bool outcome)
{
	size_t i;
	const json_t *a;
	if (json_array_size(actions) == 0) {
		printf("nothing to do: the host matches the configuration\n");
		return;
	}
	json_array_foreach(actions, i, a)
	{
		const char *reason = json_str(a, "reason");
		const char *err = json_str(a, "error");
		if (!reason) {
			printf("error: %s\n", err ? err : "?");
			continue;
		}
		if (!outcome && json_bool(a, "waiting", false))
			printf("%s (%s)\n", reason, err ? err : "waits");
		else if (!outcome)
			printf("%s\n", reason);
		else if (json_bool(a, "waiting", false))
			printf("waiting %s (%s)\n", reason, err ? err : "?");
		else if (json_bool(a, "ok", false))
			printf("ok      %s\n", reason);
		else
			printf("FAILED  %s: %s\n", reason, err ? err : "?");
	}
}

int cmd_plan(const struct cli_args *a)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *out = NULL;
	if (cli_call("GET", "/v1/plan", NULL, &out, &err) < 0) {
		if (err.kind != CLBSD_E_INVALID)
			return cli_fail(&err);
		fprintf(stderr, "clbsd: the configuration has errors:\n%s", err.msg);
		return 1;
	}
	if (cli.json)
		cli_print_json(out);
	else
		print_actions(json_object_get(out, "actions"), false);
	json_decref(out);
	return 0;
}

int cmd_apply(const struct cli_args *a)
{
	bool dry = cli_has(a, "dry-run");
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *out = NULL;
	if (cli_call("POST", dry ? "/v1/apply?dry_run=1" : "/v1/apply", NULL, &out, &err) < 0) {
		if (err.kind != CLBSD_E_INVALID)
			return cli_fail(&err);
		/* Not a usage error: the files have errors, and nothing changed. */
		fprintf(stderr, "clbsd: the configuration has errors; nothing changed:\n%s",
			err.msg);
		return 1;
	}
	int failures = (int)json_int(out, "failures", 0);
	const char *error = json_str(out, "error");
	if (cli.json) {
		cli_print_json(out);
	} else if (error) {
		fprintf(stderr, "clbsd: %s\n", error);
	} else {
		print_actions(json_object_get(out, "actions"), !dry);
		if (failures)
			printf("%d action%s failed; the daemon retries with backoff\n", failures,
			       failures == 1 ? "" : "s");
	}
	json_decref(out);
	return error || failures ? 1 : 0;
}

int show_status(const struct cli_args *a, const json_t *st)
{
	printf("config:      %s (+ %s)\n", json_str(st, "config"), json_str(st, "confd"));
	printf("generation:  %lld, loaded %s\n", (long long)json_int(st, "generation", 0),
	       json_str(st, "loaded_at") ? json_str(st, "loaded_at") : "never");
	printf("declared:    %lld containers\n", (long long)json_int(st, "declared", 0));
	const char *cerr = json_str(st, "config_error");
	if (cerr)
		printf("config errors (the last good configuration stays in force):\n%s", cerr);
	const json_t *lp = json_object_get(st, "last_pass");
	if (json_is_object(lp))
		printf("last pass:   %s, %lld actions, %lld failed, %lld ms\n",
		       json_str(lp, "finished_at") ? json_str(lp, "finished_at") : "?",
		       (long long)json_array_size(json_object_get(lp, "actions")),
		       (long long)json_int(lp, "failures", 0),
		       (long long)json_int(lp, "duration_ms", 0));
	else
		printf("last pass:   none yet\n");
	if (json_bool(st, "pass_running", false))
		printf("a pass is running now\n");
	size_t i;
	json_t *m;
	json_array_foreach(json_object_get(st, "moved"), i, m)
		printf("moved:       %s to %s%s%s\n", json_str(m, "name"), json_str(m, "to"),
		       json_str(m, "at") ? " at " : "", json_str(m, "at") ? json_str(m, "at") : "");
	const json_t *lisp = json_object_get(st, "lisp");
	if (json_is_object(lisp)) {
		const char *state = json_str(lisp, "state"), *last = json_str(lisp, "last_exit");
		printf("lisp: %s", state ? state : "?");
		if (json_int(lisp, "pid", 0))
			printf(" (pid %lld)", (long long)json_int(lisp, "pid", 0));
		printf(", %lld restarts%s%s\n", (long long)json_int(lisp, "restarts", 0),
		       last ? ", last " : "", last ? last : "");
	}
	const json_t *bk = json_object_get(st, "backups");
	if (json_array_size(bk)) {
		printf("backups:\n");
		print_backups(bk, true);
	}
	return 0;
}

int cmd_config_diff(const struct cli_args *a)
{
	struct clbsd_err err;
	clbsd_err_init(&err);
	json_t *out = NULL;
	if (cli_call("GET", "/v1/config/diff", NULL, &out, &err) < 0)
		return cli_fail(&err);
	if (cli.json) {
		cli_print_json(out);
		json_decref(out);
		return 0;
	}
	bool fold = cli_has(a, "fold");
	json_t *list = json_object_get(out, "containers");
	size_t i;
	json_t *e;
	if (fold)
		printf(";;; The live layer (%s) folded: write these forms in %s in place of\n"
		       ";;; the containers' forms there, then delete the live file.\n",
		       json_str(out, "live_file"), json_str(out, "config"));
	else if (!json_array_size(list))
		printf("the live layer changes nothing\n");
	json_array_foreach(list, i, e)
	{
		const char *name = json_str(e, "name"), *change = json_str(e, "change");
		if (fold) {
			if (strcmp(change, "undeclared") == 0)
				printf("\n;; delete (container %s ...): undeclared live\n", name);
			else
				printf("\n%s\n", json_str(e, "form"));
			continue;
		}
		printf("%s %s\n", change, name);
		size_t k;
		json_t *kv;
		json_array_foreach(json_object_get(e, "keys"), k, kv)
		{
			const char *f = json_str(kv, "file"), *l = json_str(kv, "live");
			printf("  %s %s -> %s%s\n", json_str(kv, "key"), f ? f : "(unset)",
			       l ? l : "(unset)",
			       json_bool(kv, "recreate", false)	  ? " (recreate)"
			       : json_bool(kv, "in_place", false) ? " (in place)"
								  : "");
		}
	}
	json_decref(out);
	return 0;
}
