/*
 * The requests of run, create and exec from their parsed command lines (the
 * options are declared in the command table, cli_table.c; cli_args.c parses
 * them). Pure: no I/O, so the unit tests can check that what the user typed
 * becomes the JSON the daemon expects, and that bad input never reaches the
 * daemon.
 */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define INVALID(err, ...) clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, __VA_ARGS__)

/* run and create: what the container is made of. run adds -d. */
#define RUN_OPTS                                                                                    \
	{"tty", 't', NULL, "give the container a terminal", CLI_K_NONE, NULL, 0},                   \
		{"interactive", 'i', NULL, "keep stdin open and forward it", CLI_K_NONE, NULL, 0},  \
		{"name",     0,	   "NAME", "container name (a DNS label; default: generated)",      \
		 CLI_K_NONE, NULL, 0},                                                              \
		{"env",                                                                             \
		 'e',                                                                               \
		 "K=V",                                                                             \
		 "set an environment variable; a bare K passes\nthis shell's value (repeatable)",   \
		 CLI_K_NONE,                                                                        \
		 NULL,                                                                              \
		 CLI_OPT_REPEAT},                                                                   \
		{"volume",                                                                          \
		 'v',                                                                               \
		 "SRC:DST[:ro]",                                                                    \
		 "bind the host directory SRC (absolute) at DST, or\n"                              \
		 "mount the named volume SRC there, made on first\n"                                \
		 "use (repeatable; :ro makes it read-only)",                                        \
		 CLI_K_FILE,                                                                        \
		 NULL,                                                                              \
		 CLI_OPT_REPEAT},                                                                   \
		{"workdir",  'w',  "DIR", "working directory inside the container (absolute)",      \
		 CLI_K_NONE, NULL, 0},                                                              \
		{"user",                                                                            \
		 'u',                                                                               \
		 "UID[:GID]",                                                                       \
		 "user (and group) to run as; a name from the image works",                         \
		 CLI_K_NONE,                                                                        \
		 NULL,                                                                              \
		 0},                                                                                \
		{"hostname", 0, "H", "host name inside the container", CLI_K_NONE, NULL, 0},        \
		{"memory", 0, "SIZE", "memory limit, like 256M or 1G", CLI_K_NONE, NULL, 0},        \
		{"pids", 0, "N", "maximum number of processes", CLI_K_NONE, NULL, 0},               \
		{"cpus", 0, "F", "CPU limit in CPUs, like 0.5", CLI_K_NONE, NULL, 0},               \
		{"restart", 0, "POLICY", "no, on-failure[:N] or always", CLI_K_NONE, NULL, 0},      \
		{"kind",     0,	   "KIND", "native (default) or docker (run by dockerd)",           \
		 CLI_K_NONE, NULL, 0},                                                              \
		{"stop-signal", 0,    "SIG", "signal that stops the container (default TERM)",      \
		 CLI_K_SIGNAL,	NULL, 0},                                                           \
		{"network",                                                                         \
		 0,                                                                                 \
		 "NET",                                                                             \
		 "bridge, host, none or network names (repeatable or\n"                             \
		 "a,b); default bridge when the host has a :network",                               \
		 CLI_K_NETWORK,                                                                     \
		 "net",                                                                             \
		 CLI_OPT_REPEAT},                                                                   \
		{"publish",                                                                         \
		 'p',                                                                               \
		 "[IP:]HOST:CTR[/udp]",                                                             \
		 "publish a container port on the host (repeatable)",                               \
		 CLI_K_NONE,                                                                        \
		 NULL,                                                                              \
		 CLI_OPT_REPEAT},                                                                   \
		{"ip", 0, "ADDR", "pin the address on the first network", CLI_K_NONE, NULL, 0},     \
		{"dns",	     0,	   "ADDR",	  "nameserver for /etc/resolv.conf (repeatable)",   \
		 CLI_K_NONE, NULL, CLI_OPT_REPEAT},                                                 \
		{"network-alias",                                                                   \
		 0,                                                                                 \
		 "N",                                                                               \
		 "another name peers reach it by (repeatable)",                                     \
		 CLI_K_NONE,                                                                        \
		 NULL,                                                                              \
		 CLI_OPT_REPEAT},                                                                   \
		{"entrypoint", 0,    "CMD", "replace the image's ENTRYPOINT (\"\" for none)",       \
		 CLI_K_NONE,   NULL, 0},                                                            \
		{"label", 0, "K=V", "a label (repeatable)", CLI_K_NONE, NULL, CLI_OPT_REPEAT},      \
		{"cap-add",	0,                                                                  \
		 "CAP",		"add a capability, like NET_ADMIN, or ALL (repeatable)",            \
		 CLI_K_NONE,	NULL,                                                               \
		 CLI_OPT_REPEAT},                                                                   \
		{"cap-drop", 0,	   "CAP",	  "drop a capability, or ALL (repeatable)",         \
		 CLI_K_NONE, NULL, CLI_OPT_REPEAT},                                                 \
		{"sysctl",                                                                          \
		 0,                                                                                 \
		 "K=V",                                                                             \
		 "a namespaced sysctl, like net.ipv4.ip_forward=1\n"                                \
		 "(repeatable)",                                                                    \
		 CLI_K_NONE,                                                                        \
		 NULL,                                                                              \
		 CLI_OPT_REPEAT},                                                                   \
		{"device",   0,	   "HOST[:CTR][:RWM]", "make a host device available (repeatable)", \
		 CLI_K_NONE, NULL, CLI_OPT_REPEAT},                                                 \
		{"integrity-exclude",                                                               \
		 0,                                                                                 \
		 "PATH",                                                                            \
		 "leave PATH (absolute) out of clbsd verify\n"                                      \
		 "(repeatable; docs/integrity.md)",                                                 \
		 CLI_K_NONE,                                                                        \
		 NULL,                                                                              \
		 CLI_OPT_REPEAT},                                                                   \
		{"integrity-every",                                                                 \
		 0,                                                                                 \
		 "DURATION",                                                                        \
		 "check its files every DURATION (like 1h, at least\n"                              \
		 "1s): integrity.drift and integrity.ok events",                                    \
		 CLI_K_NONE,                                                                        \
		 NULL,                                                                              \
		 0},                                                                                \
		{"integrity-include",                                                               \
		 0,                                                                                 \
		 "PATH",                                                                            \
		 "check PATH although a default exclusion (a\n"                                     \
		 "volume's path, an image VOLUME) holds it (repeatable)",                           \
		 CLI_K_NONE,                                                                        \
		 NULL,                                                                              \
		 CLI_OPT_REPEAT},                                                                   \
		{"userns",                                                                          \
		 0,                                                                                 \
		 "MODE",                                                                            \
		 "auto: root inside is an unprivileged host uid (a\n"                               \
		 "private id range); host: the host's ids (default:\n"                              \
		 "the host config's :userns, else host)",                                           \
		 CLI_K_NONE,                                                                        \
		 NULL,                                                                              \
		 0},                                                                                \
	{                                                                                           \
		"rm", 0, NULL, "remove the container when it exits", CLI_K_NONE, NULL, 0            \
	}

const struct cli_opt cli_run_opts[] = {
	{"detach", 'd', NULL, "start in the background and print the name", CLI_K_NONE, NULL, 0},
	RUN_OPTS,
	CLI_OPT_END,
};
const struct cli_opt cli_create_opts[] = {RUN_OPTS, CLI_OPT_JSON("print the container's JSON"),
					  CLI_OPT_END};
const struct cli_opt cli_exec_opts[] = {
	{"tty", 't', NULL, "give the command a terminal", CLI_K_NONE, NULL, 0},
	{"interactive", 'i', NULL, "forward stdin", CLI_K_NONE, NULL, 0},
	{"env", 'e', "K=V",
	 "set an environment variable; a bare K passes\nthis shell's value (repeatable)",
	 CLI_K_NONE, NULL, CLI_OPT_REPEAT},
	{"workdir", 'w', "DIR", "working directory (absolute)", CLI_K_NONE, NULL, 0},
	{"user", 'u', "UID[:GID]", "user (and group) to run as", CLI_K_NONE, NULL, 0},
	CLI_OPT_END,
};

int cli_env_add(json_t *env, const char *arg, struct clbsd_err *err)
{
	const char *eq = strchr(arg, '=');
	if (eq == arg || !*arg)
		return INVALID(
			err, "invalid environment variable \"%s\": expected KEY=VALUE or KEY", arg);
	const char *end = eq ? eq : arg + strlen(arg);
	for (const char *p = arg; p < end; p++)
		if (*p == ' ' || *p == '\t' || *p == '\n')
			return INVALID(err,
				       "invalid environment variable \"%s\": the key has blanks",
				       arg);
	if (eq) {
		json_array_append_new(env, json_string(arg));
		return 0;
	}
	/* A bare KEY passes the client's value along, as docker run -e KEY does. */
	const char *val = getenv(arg);
	if (val) {
		autofree char *kv = xasprintf("%s=%s", arg, val);
		json_array_append_new(env, json_string(kv));
	}
	return 0;
}

/* A named volume's name, as the daemon keeps them: one DNS label. */
static bool volume_name_ok(const char *s)
{
	return valid_name(s);
}

int cli_parse_volume(const char *spec, json_t **out, struct clbsd_err *err)
{
	autofree char *s = xstrdup(spec);
	char *src = s;
	char *dst = strchr(s, ':');
	if (!dst)
		return INVALID(err, "invalid volume \"%s\": expected SRC:DST[:ro]", spec);
	*dst++ = '\0';
	char *mode = strchr(dst, ':');
	if (mode)
		*mode++ = '\0';
	bool ro = false;
	if (mode) {
		if (strcmp(mode, "ro") == 0)
			ro = true;
		else if (strcmp(mode, "rw") != 0)
			return INVALID(err, "invalid volume \"%s\": mode \"%s\" is not ro or rw",
				       spec, mode);
	}
	/* SRC is a host directory (absolute) or a named volume, made on first use. */
	if (src[0] == '/' && !fs_path_is_clean_abs(src))
		return INVALID(err,
			       "invalid volume \"%s\": source \"%s\" must be an absolute path "
			       "without . or .. components",
			       spec, src);
	if (src[0] != '/' && !volume_name_ok(src))
		return INVALID(err,
			       "invalid volume \"%s\": source \"%s\" must be an absolute host path "
			       "or a volume name (a DNS label)",
			       spec, src);
	if (!fs_path_is_clean_abs(dst))
		return INVALID(err,
			       "invalid volume \"%s\": destination \"%s\" must be an absolute path "
			       "without . or .. components",
			       spec, dst);
	*out = json_pack("{s:s, s:s, s:b}", "source", src, "dest", dst, "readonly", ro);
	return 0;
}

int cli_check_restart(const char *s, struct clbsd_err *err)
{
	if (strcmp(s, "no") == 0 || strcmp(s, "always") == 0 || strcmp(s, "on-failure") == 0)
		return 0;
	long long n;
	if (strncmp(s, "on-failure:", 11) == 0 && parse_int(s + 11, 0, 1000000, &n) == 0)
		return 0;
	return INVALID(err,
		       "invalid restart policy \"%s\": expected no, always, on-failure or "
		       "on-failure:N",
		       s);
}

static bool user_part_ok(const char *p, size_t n)
{
	if (n == 0 || n > 32)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.' || (c == '$' && i == n - 1)))
			return false;
	}
	return p[0] != '-';
}

int cli_check_user(const char *s, struct clbsd_err *err)
{
	const char *colon = strchr(s, ':');
	size_t n = colon ? (size_t)(colon - s) : strlen(s);
	if (!user_part_ok(s, n) || (colon && !user_part_ok(colon + 1, strlen(colon + 1))))
		return INVALID(err, "invalid user \"%s\": expected UID[:GID] or a user name", s);
	return 0;
}

int cli_parse_secs(const char *s, long long *out, struct clbsd_err *err)
{
	if (parse_int(s, 0, 86400 * 365, out) < 0)
		return INVALID(err, "invalid timeout \"%s\": expected a number of seconds", s);
	return 0;
}

void run_opts_release(struct run_opts *o)
{
	json_decref(o->req);
	o->req = NULL;
}

/* The request a run or create command line makes, filled option by option. */
struct run_req {
	json_t *req;					   /* the object itself */
	json_t *env, *vols, *nets, *ports, *dns, *aliases; /* its arrays, set when not empty */
};

#define BAD_VALUE(err, what, v, expect)                                                            \
	INVALID(err, "invalid %s \"%s\": expected %s", what, v, expect)

static int set_workdir(json_t *req, const char *v, struct clbsd_err *err)
{
	if (!fs_path_is_clean_abs(v))
		return BAD_VALUE(err, "working directory", v,
				 "an absolute path without . or .. components");
	json_object_set_new(req, "workdir", json_string(v));
	return 0;
}

static int set_user(json_t *req, const char *v, struct clbsd_err *err)
{
	int r = cli_check_user(v, err);
	if (r == 0)
		json_object_set_new(req, "user", json_string(v));
	return r;
}

static int opt_env(struct run_req *b, const char *v, struct clbsd_err *err)
{
	return cli_env_add(b->env, v, err);
}

static int opt_volume(struct run_req *b, const char *v, struct clbsd_err *err)
{
	json_t *vol;
	int r = cli_parse_volume(v, &vol, err);
	if (r == 0)
		json_array_append_new(b->vols, vol);
	return r;
}

static int opt_workdir(struct run_req *b, const char *v, struct clbsd_err *err)
{
	return set_workdir(b->req, v, err);
}

static int opt_user(struct run_req *b, const char *v, struct clbsd_err *err)
{
	return set_user(b->req, v, err);
}

static int opt_name(struct run_req *b, const char *v, struct clbsd_err *err)
{
	if (!valid_name(v))
		return BAD_VALUE(
			err, "container name", v,
			"a DNS label (lowercase letters, digits and '-', 1-63 characters)");
	json_object_set_new(b->req, "name", json_string(v));
	return 0;
}

static int opt_userns(struct run_req *b, const char *v, struct clbsd_err *err)
{
	if (strcmp(v, "auto") != 0 && strcmp(v, "host") != 0)
		return BAD_VALUE(err, "--userns", v, "auto (a private range of host ids) or host");
	json_object_set_new(b->req, "userns", json_string(v));
	return 0;
}

static int opt_hostname(struct run_req *b, const char *v, struct clbsd_err *err)
{
	if (!valid_hostname(v))
		return BAD_VALUE(err, "hostname", v, "DNS labels joined by dots");
	json_object_set_new(b->req, "hostname", json_string(v));
	return 0;
}

static int opt_memory(struct run_req *b, const char *v, struct clbsd_err *err)
{
	int64_t bytes;
	int r = parse_size(v, &bytes, err);
	if (r < 0)
		return r;
	if (bytes <= 0)
		return INVALID(err, "invalid memory limit \"%s\": must be more than 0", v);
	json_object_set_new(b->req, "memory", json_integer(bytes));
	return 0;
}

static int opt_pids(struct run_req *b, const char *v, struct clbsd_err *err)
{
	long long n;
	if (parse_int(v, 1, 4194304, &n) < 0)
		return BAD_VALUE(err, "pids limit", v, "a whole number from 1 to 4194304");
	json_object_set_new(b->req, "pids", json_integer(n));
	return 0;
}

static int opt_cpus(struct run_req *b, const char *v, struct clbsd_err *err)
{
	char *end;
	errno = 0;
	double f = strtod(v, &end);
	if (errno || end == v || *end || !isfinite(f) || f <= 0 || f > 4096)
		return BAD_VALUE(err, "cpus", v, "a number of CPUs above 0, like 0.5 or 2");
	json_object_set_new(b->req, "cpus", json_real(f));
	return 0;
}

static int opt_restart(struct run_req *b, const char *v, struct clbsd_err *err)
{
	int r = cli_check_restart(v, err);
	if (r == 0)
		json_object_set_new(b->req, "restart", json_string(v));
	return r;
}

static int opt_kind(struct run_req *b, const char *v, struct clbsd_err *err)
{
	if (strcmp(v, "native") != 0 && strcmp(v, "docker") != 0)
		return BAD_VALUE(err, "--kind", v, "native or docker");
	json_object_set_new(b->req, "kind", json_string(v));
	return 0;
}

/* The daemon takes the name as the user wrote it ("TERM", "SIGHUP", "15"). */
static int opt_stop_signal(struct run_req *b, const char *v, struct clbsd_err *err)
{
	int sig;
	if (parse_signal(v, &sig) < 0)
		return BAD_VALUE(err, "--stop-signal", v,
				 "a name like TERM or SIGQUIT, or a number");
	json_object_set_new(b->req, "stop_signal", json_string(v));
	return 0;
}

/* Repeatable, and a comma list: --network a,b */
static int opt_network(struct run_req *b, const char *v, struct clbsd_err *err)
{
	autofree char *copy = xstrdup(v);
	char *save = NULL;
	for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save))
		json_array_append_new(b->nets, json_string(w));
	if (!json_array_size(b->nets))
		return INVALID(err, "--network needs bridge, host, none or network names");
	return 0;
}

/* The daemon parses and checks it, and names what is wrong. */
static int opt_publish(struct run_req *b, const char *v, struct clbsd_err *err)
{
	json_array_append_new(b->ports, json_string(v));
	return 0;
}

static int opt_ip(struct run_req *b, const char *v, struct clbsd_err *err)
{
	json_object_set_new(b->req, "ip", json_string(v));
	return 0;
}

static int opt_dns(struct run_req *b, const char *v, struct clbsd_err *err)
{
	json_array_append_new(b->dns, json_string(v));
	return 0;
}

static int opt_alias(struct run_req *b, const char *v, struct clbsd_err *err)
{
	if (!valid_name(v))
		return BAD_VALUE(err, "network alias", v, "a DNS label");
	json_array_append_new(b->aliases, json_string(v));
	return 0;
}

/* Append v to the request's array `key`, made on first use; the daemon checks the values. */
static void push(struct run_req *b, const char *key, const char *v)
{
	json_t *a = json_object_get(b->req, key);
	if (!a) {
		a = json_array();
		json_object_set_new(b->req, key, a);
	}
	json_array_append_new(a, json_string(v));
}

static int opt_entrypoint(struct run_req *b, const char *v, struct clbsd_err *err)
{
	/* One program, as docker run --entrypoint; the arguments follow IMAGE. */
	json_object_set_new(b->req, "entrypoint", *v ? json_pack("[s]", v) : json_string(""));
	return 0;
}

static int opt_label(struct run_req *b, const char *v, struct clbsd_err *err)
{
	/* docker run --label K (no value) is K="". */
	autofree char *kv = strchr(v, '=') ? xstrdup(v) : xasprintf("%s=", v);
	push(b, "labels", kv);
	return 0;
}

static int opt_cap_add(struct run_req *b, const char *v, struct clbsd_err *err)
{
	push(b, "cap_add", v);
	return 0;
}

static int opt_cap_drop(struct run_req *b, const char *v, struct clbsd_err *err)
{
	push(b, "cap_drop", v);
	return 0;
}

static int opt_sysctl(struct run_req *b, const char *v, struct clbsd_err *err)
{
	if (!strchr(v, '='))
		return BAD_VALUE(err, "--sysctl", v, "KEY=VALUE, like net.ipv4.ip_forward=1");
	push(b, "sysctls", v);
	return 0;
}

static int opt_device(struct run_req *b, const char *v, struct clbsd_err *err)
{
	push(b, "devices", v);
	return 0;
}

/* --integrity-exclude, --integrity-include: into "integrity"'s list `key`. */
static int integrity_path(struct run_req *b, const char *opt, const char *key, const char *v,
			  struct clbsd_err *err)
{
	if (!fs_path_is_clean_abs(v))
		return BAD_VALUE(err, opt, v, "an absolute path without . or .., like /var/log");
	json_t *in = json_object_get(b->req, "integrity");
	if (!in) {
		in = json_object();
		json_object_set_new(b->req, "integrity", in);
	}
	json_t *a = json_object_get(in, key);
	if (!a) {
		a = json_array();
		json_object_set_new(in, key, a);
	}
	json_array_append_new(a, json_string(v));
	return 0;
}

static int opt_integrity_every(struct run_req *b, const char *v, struct clbsd_err *err)
{
	int64_t ns;
	struct clbsd_err e2;
	if (parse_duration(v, &ns, &e2) < 0 || ns < 1000000000LL)
		return BAD_VALUE(err, "--integrity-every", v, "a duration of at least 1s, like 1h");
	json_t *in = json_object_get(b->req, "integrity");
	if (!in) {
		in = json_object();
		json_object_set_new(b->req, "integrity", in);
	}
	json_object_set_new(in, "every", json_string(v));
	return 0;
}

static int opt_integrity_exclude(struct run_req *b, const char *v, struct clbsd_err *err)
{
	return integrity_path(b, "--integrity-exclude", "exclude", v, err);
}

static int opt_integrity_include(struct run_req *b, const char *v, struct clbsd_err *err)
{
	return integrity_path(b, "--integrity-include", "include", v, err);
}

/* What each option of run and create with a value does to the request. */
static const struct {
	const char *opt;
	int (*set)(struct run_req *b, const char *v, struct clbsd_err *err);
} run_setters[] = {
	{"env", opt_env},
	{"volume", opt_volume},
	{"workdir", opt_workdir},
	{"user", opt_user},
	{"name", opt_name},
	{"userns", opt_userns},
	{"hostname", opt_hostname},
	{"memory", opt_memory},
	{"pids", opt_pids},
	{"cpus", opt_cpus},
	{"restart", opt_restart},
	{"stop-signal", opt_stop_signal},
	{"network", opt_network},
	{"publish", opt_publish},
	{"ip", opt_ip},
	{"dns", opt_dns},
	{"network-alias", opt_alias},
	{"entrypoint", opt_entrypoint},
	{"label", opt_label},
	{"cap-add", opt_cap_add},
	{"cap-drop", opt_cap_drop},
	{"sysctl", opt_sysctl},
	{"device", opt_device},
	{"kind", opt_kind},
	{"integrity-every", opt_integrity_every},
	{"integrity-exclude", opt_integrity_exclude},
	{"integrity-include", opt_integrity_include},
};

/* Apply the options in the order given, so the arrays keep the user's order. */
static int run_apply_opts(const struct cli_args *a, struct run_req *b, struct clbsd_err *err)
{
	for (size_t i = 0; i < a->ngiven; i++) {
		const struct cli_given *g = &a->given[i];
		for (size_t k = 0; g->val && k < ARRAY_SIZE(run_setters); k++) {
			if (strcmp(run_setters[k].opt, g->opt->name) != 0)
				continue;
			int r = run_setters[k].set(b, g->val, err);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* IMAGE and the command after it. */
static int run_set_image(const struct cli_args *a, json_t *req, struct clbsd_err *err)
{
	if (a->argc < 1)
		return INVALID(err, "missing IMAGE");
	const char *image = a->argv[0];
	if (!valid_image_ref(image))
		return BAD_VALUE(err, "image reference", image, "NAME[:TAG] or an id");
	json_object_set_new(req, "image", json_string(image));
	if (a->argc > 1) {
		json_t *cmd = json_array();
		for (int i = 1; i < a->argc; i++)
			json_array_append_new(cmd, json_string(a->argv[i]));
		json_object_set_new(req, "command", cmd);
	}
	return 0;
}

static void set_array(json_t *req, const char *key, json_t *arr)
{
	if (json_array_size(arr))
		json_object_set(req, key, arr);
	json_decref(arr);
}

int cli_run_request(const struct cli_args *a, bool is_run, struct run_opts *o,
		    struct clbsd_err *err)
{
	memset(o, 0, sizeof(*o));
	struct run_req b = {
		.req = json_object(),
		.env = json_array(),
		.vols = json_array(),
		.nets = json_array(),
		.ports = json_array(),
		.dns = json_array(),
		.aliases = json_array(),
	};
	int r = run_apply_opts(a, &b, err);
	if (r == 0)
		r = run_set_image(a, b.req, err);
	set_array(b.req, "env", b.env);
	set_array(b.req, "volumes", b.vols);
	set_array(b.req, "network", b.nets);
	set_array(b.req, "publish", b.ports);
	set_array(b.req, "dns", b.dns);
	set_array(b.req, "aliases", b.aliases);
	if (r < 0) {
		json_decref(b.req);
		return r;
	}
	o->detach = is_run && cli_has(a, "detach");
	o->rm = cli_has(a, "rm");
	o->tty = cli_has(a, "tty");
	o->interactive = cli_has(a, "interactive");
	json_object_set_new(b.req, "tty", json_boolean(o->tty));
	json_object_set_new(b.req, "stdin", json_boolean(o->interactive));
	json_object_set_new(b.req, "auto_remove", json_boolean(o->rm));
	o->req = b.req;
	return 0;
}

/* The shape of run, create and exec for the parser (the table has the same). */
static const struct cli_cmd run_shape = {.name = "run",
					 .opts = cli_run_opts,
					 .args = "IMAGE",
					 .min_args = 1,
					 .max_args = -1,
					 .stop_at = 1};
static const struct cli_cmd create_shape = {.name = "create",
					    .opts = cli_create_opts,
					    .args = "IMAGE",
					    .min_args = 1,
					    .max_args = -1,
					    .stop_at = 1};
static const struct cli_cmd exec_shape = {.name = "exec",
					  .opts = cli_exec_opts,
					  .args = "NAME CMD",
					  .min_args = 1,
					  .max_args = -1,
					  .stop_at = 1};

int cli_parse_run(int argc, char **argv, bool is_run, struct run_opts *o, struct clbsd_err *err)
{
	struct cli_args a;
	int r = cli_args_parse(is_run ? &run_shape : &create_shape, argc, argv, &a, err);
	if (r == 0)
		r = cli_run_request(&a, is_run, o, err);
	cli_args_release(&a);
	return r;
}

void exec_opts_release(struct exec_opts *o)
{
	json_decref(o->req);
	o->req = NULL;
}

int cli_exec_request(const struct cli_args *a, struct exec_opts *o, struct clbsd_err *err)
{
	memset(o, 0, sizeof(*o));
	if (a->argc < 1)
		return INVALID(err, "missing container NAME");
	o->name = a->argv[0];
	if (!valid_name(o->name))
		return BAD_VALUE(err, "container name", o->name, "a DNS label");
	if (a->argc < 2)
		return INVALID(err, "missing CMD to run in %s", o->name);
	json_t *req = json_object();
	json_t *env = json_array();
	int r = 0;
	for (size_t i = 0; r == 0 && i < a->ngiven; i++) {
		const struct cli_given *g = &a->given[i];
		if (strcmp(g->opt->name, "env") == 0)
			r = cli_env_add(env, g->val, err);
		else if (strcmp(g->opt->name, "workdir") == 0)
			r = set_workdir(req, g->val, err);
		else if (strcmp(g->opt->name, "user") == 0)
			r = set_user(req, g->val, err);
	}
	if (r < 0) {
		json_decref(req);
		json_decref(env);
		return r;
	}
	o->tty = cli_has(a, "tty");
	o->interactive = cli_has(a, "interactive");
	json_t *cmd = json_array();
	for (int i = 1; i < a->argc; i++)
		json_array_append_new(cmd, json_string(a->argv[i]));
	json_object_set_new(req, "command", cmd);
	set_array(req, "env", env);
	json_object_set_new(req, "tty", json_boolean(o->tty));
	json_object_set_new(req, "stdin", json_boolean(o->interactive));
	json_object_set_new(req, "interactive", json_boolean(o->tty || o->interactive));
	o->req = req;
	return 0;
}

int cli_parse_exec(int argc, char **argv, struct exec_opts *o, struct clbsd_err *err)
{
	struct cli_args a;
	int r = cli_args_parse(&exec_shape, argc, argv, &a, err);
	if (r == 0)
		r = cli_exec_request(&a, o, err);
	cli_args_release(&a);
	return r;
}

int cli_log_time(const char *opt, const char *v, int64_t now_ns, char *out, size_t len,
		 struct clbsd_err *err)
{
	int64_t ns, d;
	long long secs;
	struct clbsd_err ignored;
	if (time_parse_rfc3339(v, &ns) == 0) {
		/* Normalised: the daemon compares it with the log's own times. */
	} else if (parse_int(v, 0, INT64_MAX / 1000000000LL, &secs) == 0) {
		ns = (int64_t)secs * 1000000000LL; /* seconds since the epoch, as docker takes */
	} else if (parse_duration(v, &d, &ignored) == 0 && d <= now_ns) {
		ns = now_ns - d;
	} else {
		return INVALID(err,
			       "invalid --%s \"%s\": expected an RFC 3339 time like "
			       "2026-11-22T20:07:46Z, seconds since the epoch, or a duration ago "
			       "like 10m or 1h30m",
			       opt, v);
	}
	time_fmt_rfc3339(ns, out, len);
	return 0;
}

/* An absolute, clean path for a file that may not exist yet (its directory must). */
char *cli_abs_target(const char *path)
{
	autofree char *copy = xstrdup(path);
	char *slash = strrchr(copy, '/');
	const char *base = slash ? slash + 1 : copy;
	const char *dir = slash ? (slash == copy ? "/" : copy) : ".";
	if (slash)
		*slash = '\0';
	if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
		return NULL;
	char abs[PATH_MAX];
	if (!realpath(dir, abs))
		return NULL;
	return xasprintf("%s/%s", strcmp(abs, "/") == 0 ? "" : abs, base);
}
