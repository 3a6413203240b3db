/*
 * Flag parsing for run, create and exec into the API request bodies. Pure:
 * no I/O, so the unit tests can check that what the user typed becomes the
 * JSON the daemon expects, and that bad input never reaches the daemon.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define INVALID(err, ...) clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, __VA_ARGS__)

int cli_getopt_err(int c, char **argv, struct clbsd_err *err)
{
	/* optind already moved past the offending word. */
	const char *word = optind > 0 ? argv[optind - 1] : "";
	char opt[64];
	if (word && strncmp(word, "--", 2) == 0) {
		size_t n = strcspn(word, "=");
		snprintf(opt, sizeof(opt), "%.*s", (int)(n < 60 ? n : 60), word);
	} else if (optopt > 0 && optopt < 256) {
		snprintf(opt, sizeof(opt), "-%c", optopt);
	} else {
		snprintf(opt, sizeof(opt), "%.60s", word ? word : "?");
	}
	if (c == ':')
		return INVALID(err, "option '%s' needs a value", opt);
	return INVALID(err, "unknown option '%s'", opt);
}

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
	if (!fs_path_is_clean_abs(src))
		return INVALID(err,
			       "invalid volume \"%s\": source \"%s\" must be an absolute path "
			       "without . or .. components",
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

enum {
	OPT_RM = 256,
	OPT_NAME,
	OPT_HOSTNAME,
	OPT_MEMORY,
	OPT_PIDS,
	OPT_CPUS,
	OPT_RESTART,
	OPT_NETWORK,
	OPT_IP,
	OPT_DNS,
	OPT_ALIAS,
	OPT_USERNS,
};

int cli_parse_run(int argc, char **argv, bool is_run, struct run_opts *o, struct clbsd_err *err)
{
	static const struct option lo[] = {
		{"help", no_argument, NULL, 'h'},
		{"detach", no_argument, NULL, 'd'},
		{"tty", no_argument, NULL, 't'},
		{"interactive", no_argument, NULL, 'i'},
		{"env", required_argument, NULL, 'e'},
		{"volume", required_argument, NULL, 'v'},
		{"workdir", required_argument, NULL, 'w'},
		{"user", required_argument, NULL, 'u'},
		{"rm", no_argument, NULL, OPT_RM},
		{"name", required_argument, NULL, OPT_NAME},
		{"hostname", required_argument, NULL, OPT_HOSTNAME},
		{"memory", required_argument, NULL, OPT_MEMORY},
		{"pids", required_argument, NULL, OPT_PIDS},
		{"cpus", required_argument, NULL, OPT_CPUS},
		{"restart", required_argument, NULL, OPT_RESTART},
		{"network", required_argument, NULL, OPT_NETWORK},
		{"net", required_argument, NULL, OPT_NETWORK},
		{"publish", required_argument, NULL, 'p'},
		{"ip", required_argument, NULL, OPT_IP},
		{"dns", required_argument, NULL, OPT_DNS},
		{"network-alias", required_argument, NULL, OPT_ALIAS},
		{"userns", required_argument, NULL, OPT_USERNS},
		{NULL, 0, NULL, 0},
	};
	/* create has no -d; dropping it from both tables makes it an unknown option. */
	const struct option *opts = lo;
	struct option lo_create[ARRAY_SIZE(lo)];
	if (!is_run) {
		size_t n = 0;
		for (size_t i = 0; i < ARRAY_SIZE(lo); i++)
			if (lo[i].val != 'd')
				lo_create[n++] = lo[i];
		opts = lo_create;
	}
	const char *optstring = is_run ? "+:hdtie:v:w:u:p:" : "+:htie:v:w:u:p:";

	memset(o, 0, sizeof(*o));
	json_t *req = json_object();
	json_t *env = json_array();
	json_t *vols = json_array();
	json_t *nets = json_array(), *ports = json_array(), *dns = json_array(),
	       *aliases = json_array();
	int r = 0;
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, optstring, opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			r = 1;
			goto out;
		case 'd':
			o->detach = true;
			break;
		case 't':
			o->tty = true;
			break;
		case 'i':
			o->interactive = true;
			break;
		case 'e':
			if ((r = cli_env_add(env, optarg, err)) < 0)
				goto out;
			break;
		case 'v': {
			json_t *v;
			if ((r = cli_parse_volume(optarg, &v, err)) < 0)
				goto out;
			json_array_append_new(vols, v);
			break;
		}
		case 'w':
			if (!fs_path_is_clean_abs(optarg)) {
				r = INVALID(
					err,
					"invalid working directory \"%s\": expected an absolute "
					"path without . or .. components",
					optarg);
				goto out;
			}
			json_object_set_new(req, "workdir", json_string(optarg));
			break;
		case 'u':
			if ((r = cli_check_user(optarg, err)) < 0)
				goto out;
			json_object_set_new(req, "user", json_string(optarg));
			break;
		case OPT_RM:
			o->rm = true;
			break;
		case OPT_NAME:
			if (!valid_name(optarg)) {
				r = INVALID(err,
					    "invalid container name \"%s\": expected a DNS label "
					    "(lowercase letters, digits and '-', 1-63 characters)",
					    optarg);
				goto out;
			}
			json_object_set_new(req, "name", json_string(optarg));
			break;
		case OPT_USERNS:
			if (strcmp(optarg, "auto") != 0 && strcmp(optarg, "host") != 0) {
				r = INVALID(err,
					    "invalid --userns \"%s\": expected auto (a private "
					    "range of host ids) or host",
					    optarg);
				goto out;
			}
			json_object_set_new(req, "userns", json_string(optarg));
			break;
		case OPT_HOSTNAME:
			if (!valid_hostname(optarg)) {
				r = INVALID(err,
					    "invalid hostname \"%s\": expected DNS labels "
					    "joined by dots",
					    optarg);
				goto out;
			}
			json_object_set_new(req, "hostname", json_string(optarg));
			break;
		case OPT_MEMORY: {
			int64_t bytes;
			if ((r = parse_size(optarg, &bytes, err)) < 0)
				goto out;
			if (bytes <= 0) {
				r = INVALID(err, "invalid memory limit \"%s\": must be more than 0",
					    optarg);
				goto out;
			}
			json_object_set_new(req, "memory", json_integer(bytes));
			break;
		}
		case OPT_PIDS: {
			long long n;
			if (parse_int(optarg, 1, 4194304, &n) < 0) {
				r = INVALID(
					err,
					"invalid pids limit \"%s\": expected a whole number from 1 "
					"to 4194304",
					optarg);
				goto out;
			}
			json_object_set_new(req, "pids", json_integer(n));
			break;
		}
		case OPT_CPUS: {
			char *end;
			errno = 0;
			double f = strtod(optarg, &end);
			if (errno || end == optarg || *end || !isfinite(f) || f <= 0 || f > 4096) {
				r = INVALID(
					err,
					"invalid cpus \"%s\": expected a number of CPUs above 0, "
					"like 0.5 or 2",
					optarg);
				goto out;
			}
			json_object_set_new(req, "cpus", json_real(f));
			break;
		}
		case OPT_RESTART:
			if ((r = cli_check_restart(optarg, err)) < 0)
				goto out;
			json_object_set_new(req, "restart", json_string(optarg));
			break;
		case OPT_NETWORK: {
			/* Repeatable, and a comma list: --network a,b */
			autofree char *copy = xstrdup(optarg);
			char *save = NULL;
			for (char *w = strtok_r(copy, ",", &save); w;
			     w = strtok_r(NULL, ",", &save))
				json_array_append_new(nets, json_string(w));
			if (!json_array_size(nets)) {
				r = INVALID(err,
					    "--network needs bridge, host, none or network names");
				goto out;
			}
			break;
		}
		case 'p':
			/* The daemon parses and checks it, and names what is wrong. */
			json_array_append_new(ports, json_string(optarg));
			break;
		case OPT_IP:
			json_object_set_new(req, "ip", json_string(optarg));
			break;
		case OPT_DNS:
			json_array_append_new(dns, json_string(optarg));
			break;
		case OPT_ALIAS:
			if (!valid_name(optarg)) {
				r = INVALID(err,
					    "invalid network alias \"%s\": expected a DNS label",
					    optarg);
				goto out;
			}
			json_array_append_new(aliases, json_string(optarg));
			break;
		default:
			r = cli_getopt_err(c, argv, err);
			goto out;
		}
	}
	if (optind >= argc) {
		r = INVALID(err, "missing IMAGE");
		goto out;
	}
	const char *image = argv[optind++];
	if (!valid_image_ref(image)) {
		r = INVALID(err, "invalid image reference \"%s\": expected NAME[:TAG] or an id",
			    image);
		goto out;
	}
	json_object_set_new(req, "image", json_string(image));
	if (optind < argc) {
		json_t *cmd = json_array();
		for (int i = optind; i < argc; i++)
			json_array_append_new(cmd, json_string(argv[i]));
		json_object_set_new(req, "command", cmd);
	}
	if (json_array_size(env))
		json_object_set(req, "env", env);
	if (json_array_size(vols))
		json_object_set(req, "volumes", vols);
	if (json_array_size(nets))
		json_object_set(req, "network", nets);
	if (json_array_size(ports))
		json_object_set(req, "publish", ports);
	if (json_array_size(dns))
		json_object_set(req, "dns", dns);
	if (json_array_size(aliases))
		json_object_set(req, "aliases", aliases);
	json_object_set_new(req, "tty", json_boolean(o->tty));
	json_object_set_new(req, "stdin", json_boolean(o->interactive));
	json_object_set_new(req, "auto_remove", json_boolean(o->rm));
	o->req = steal_ptr(&req);
out:
	json_decref(req);
	json_decref(env);
	json_decref(vols);
	json_decref(nets);
	json_decref(ports);
	json_decref(dns);
	json_decref(aliases);
	return r;
}

void exec_opts_release(struct exec_opts *o)
{
	json_decref(o->req);
	o->req = NULL;
}

int cli_parse_exec(int argc, char **argv, struct exec_opts *o, struct clbsd_err *err)
{
	static const struct option lo[] = {
		{"help", no_argument, NULL, 'h'},
		{"tty", no_argument, NULL, 't'},
		{"interactive", no_argument, NULL, 'i'},
		{"env", required_argument, NULL, 'e'},
		{"workdir", required_argument, NULL, 'w'},
		{"user", required_argument, NULL, 'u'},
		{NULL, 0, NULL, 0},
	};
	memset(o, 0, sizeof(*o));
	json_t *req = json_object();
	json_t *env = json_array();
	int r = 0;
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:htie:w:u:", lo, NULL)) != -1) {
		switch (c) {
		case 'h':
			r = 1;
			goto out;
		case 't':
			o->tty = true;
			break;
		case 'i':
			o->interactive = true;
			break;
		case 'e':
			if ((r = cli_env_add(env, optarg, err)) < 0)
				goto out;
			break;
		case 'w':
			if (!fs_path_is_clean_abs(optarg)) {
				r = INVALID(
					err,
					"invalid working directory \"%s\": expected an absolute "
					"path without . or .. components",
					optarg);
				goto out;
			}
			json_object_set_new(req, "workdir", json_string(optarg));
			break;
		case 'u':
			if ((r = cli_check_user(optarg, err)) < 0)
				goto out;
			json_object_set_new(req, "user", json_string(optarg));
			break;
		default:
			r = cli_getopt_err(c, argv, err);
			goto out;
		}
	}
	if (optind >= argc) {
		r = INVALID(err, "missing container NAME");
		goto out;
	}
	o->name = argv[optind++];
	if (!valid_name(o->name)) {
		r = INVALID(err, "invalid container name \"%s\": expected a DNS label", o->name);
		goto out;
	}
	if (optind >= argc) {
		r = INVALID(err, "missing CMD to run in %s", o->name);
		goto out;
	}
	json_t *cmd = json_array();
	for (int i = optind; i < argc; i++)
		json_array_append_new(cmd, json_string(argv[i]));
	json_object_set_new(req, "command", cmd);
	if (json_array_size(env))
		json_object_set(req, "env", env);
	json_object_set_new(req, "tty", json_boolean(o->tty));
	json_object_set_new(req, "stdin", json_boolean(o->interactive));
	json_object_set_new(req, "interactive", json_boolean(o->tty || o->interactive));
	o->req = steal_ptr(&req);
out:
	json_decref(req);
	json_decref(env);
	return r;
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
