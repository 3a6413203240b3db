/*
 * clbsd update NAME --key VALUE ...: Docker's `update`, for a declared
 * container: PATCH /v1/containers/NAME with the keys given, which the
 * daemon checks, records in its live layer and applies. One option per
 * declarable key of the key table (core/spec_keys.c); the unit test
 * tests/unit/cli/test_update.c fails when a key has no option here.
 */
#include "cli.h"
#include "util/json.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>

#define U(name, sh, arg, help)                                                                     \
	{                                                                                          \
		name, sh, arg, help, CLI_K_NONE, NULL, 0                                           \
	}
#define UR(name, sh, arg, help)                                                                    \
	{                                                                                          \
		name, sh, arg, help, CLI_K_NONE, NULL, CLI_OPT_REPEAT                              \
	}

const struct cli_opt cli_update_opts[] = {
	U("memory", 'm', "SIZE", "memory limit (256M); 0 for none"),
	U("cpus", 0, "N", "CPU limit (0.5)"),
	U("pids", 0, "N", "process limit"),
	U("restart", 0, "POLICY", "no, always, on-failure or on-failure:N"),
	UR("env", 'e', "K=V", "the whole environment, one K=V per option (repeatable)"),
	U("stop-signal", 0, "SIG", "the signal stop sends first (TERM, SIGINT, 2)"),
	UR("domain", 0, "NAME", "ingress domain (repeatable)"),
	U("port", 0, "PORT", "port the service listens on (routing, :http checks)"),
	U("path", 0, "PATH", "URL path to route"),
	U("image", 0, "IMAGE", "image reference"),
	UR("command", 0, "ARG", "the command, one argument per option (repeatable)"),
	UR("entrypoint", 0, "ARG", "the entrypoint, one argument per option (repeatable)"),
	UR("labels", 0, "K=V", "the whole set of labels, one K=V per option (repeatable)"),
	UR("cap-add", 0, "CAP", "a capability to add (repeatable)"),
	UR("cap-drop", 0, "CAP", "a capability to drop (repeatable)"),
	UR("sysctls", 0, "K=V", "the whole set of sysctls, one K=V per option (repeatable)"),
	UR("devices", 0, "HOST[:CTR][:PERMS]", "a device to give it (repeatable)"),
	U("workdir", 'w', "DIR", "working directory"),
	U("user", 'u', "USER", "UID[:GID] or name[:group]"),
	U("hostname", 0, "NAME", "host name"),
	U("tty", 0, "BOOL", "true or false"),
	U("userns", 0, "MODE", "auto or host"),
	U("volumes", 'v', "JSON", "the volumes as the API takes them (a JSON array)"),
	U("network", 0, "NET", "bridge, host, none or a network's name"),
	U("ip", 0, "ADDR", "pinned IPv4 address on the first network"),
	UR("aliases", 0, "NAME", "DNS alias (repeatable)"),
	UR("dns", 0, "ADDR", "DNS server (repeatable)"),
	UR("publish", 'p', "[IP:]HOST:CTR", "published port (repeatable)"),
	U("state", 0, "STATE", "running or stopped"),
	UR("depends-on", 0, "NAME", "a container it depends on (repeatable)"),
	U("health", 0, "FORM",
	  "a health check as the configuration writes it: '(:cmd (\"true\"))'"),
	U("on", 0, "FORM", "the hooks as the configuration writes them: '((:exit \"cmd\"))'"),
	U("ingress", 0, "FORM", "'(:websocket t :max-body \"10M\")'"),
	U("tls", 0, "FORM", "'(:cert \"PATH\" :key \"PATH\")'"),
	U("storage", 0, "JSON", "the dataset's properties as the API takes them (a JSON object)"),
	U("snapshots", 0, "FORM", "'(:every \"1h\" :keep 24)'"),
	U("backup", 0, "FORM", "'(:every \"1d\" :to \"/srv/backup\")' or nil"),
	U("snapshot-before-change", 0, "BOOL", "true or false"),
	U("integrity", 0, "FORM", "'(:every \"1h\" :exclude (\"/var/log\") :on-drift CMD)'"),
	U("kind", 0, "KIND", "native or docker"),
	U("limits", 0, "FORM", "'(:memory \"256M\" :cpus 1)': the whole :limits"),
	CLI_OPT_JSON("print the container's JSON"),
	CLI_OPT_END,
};

/* A value: JSON when it starts like JSON, a number or boolean when it is one, else a string. */
static json_t *value_of(const char *v)
{
	if (*v == '[' || *v == '{') {
		json_t *j = json_loads(v, JSON_DECODE_ANY, NULL);
		if (j)
			return j;
	}
	if (strcmp(v, "true") == 0 || strcmp(v, "false") == 0)
		return json_boolean(*v == 't');
	char *end;
	if (*v && strspn(v, "0123456789") == strlen(v)) {
		long long n = strtoll(v, &end, 10);
		return json_integer(n);
	}
	if (*v && strspn(v, "0123456789.") == strlen(v) && strchr(v, '.')) {
		double f = strtod(v, &end);
		if (!*end)
			return json_real(f);
	}
	return json_string(v);
}

/* The body of update and declare: the options given, by their API key. */
static json_t *keys_body(const struct cli_args *a)
{
	json_t *body = json_object();
	for (const struct cli_opt *o = cli_update_opts; o->name; o++) {
		if (strcmp(o->name, "json") == 0 || !cli_get(a, o->name))
			continue;
		autofree char *key = xstrdup(o->name);
		for (char *p = key; *p; p++)
			if (*p == '-')
				*p = '_';
		json_t *v;
		if (o->flags & CLI_OPT_REPEAT) {
			v = json_array();
			const char *s;
			for (size_t i = 0; (s = cli_get_nth(a, o->name, i)); i++)
				json_array_append_new(v, json_string(s));
		} else {
			v = value_of(cli_get(a, o->name));
		}
		json_object_set_new(body, key, v);
	}
	return body;
}

int cmd_update(const struct cli_args *a)
{
	json_t *body = keys_body(a);
	if (!json_object_size(body)) {
		json_decref(body);
		return cli_usage("nothing to change: give the keys to set, like --memory 256M "
				 "--restart always");
	}
	autofree char *path = xasprintf("/v1/containers/%s", a->argv[0]);
	return cli_send("PATCH", path, body, a->argv[0], NULL);
}

int cmd_declare(const struct cli_args *a)
{
	json_t *body = keys_body(a);
	json_object_set_new(body, "name", json_string(a->argv[0]));
	return cli_send("POST", "/v1/declarations", body, a->argv[0], NULL);
}

int cmd_undeclare(const struct cli_args *a)
{
	autofree char *path = xasprintf("/v1/declarations/%s", a->argv[0]);
	return cli_send("DELETE", path, NULL, a->argv[0], NULL);
}
