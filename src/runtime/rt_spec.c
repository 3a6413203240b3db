/*
 * The runtime spec as JSON: the daemon writes it, the shim reads it back and
 * hands it to the runtime driver. Parsing validates everything the driver
 * relies on (clean absolute paths, a non-empty argv, a known rootfs mode), so
 * the driver never has to second-guess a spec that came through here.
 *
 * Unknown keys are rejected: the daemon and the shim ship together, and a key
 * silently ignored would be a setting silently not applied.
 */
#include "runtime/runtime.h"
#include "util/json.h"
#include "util/util.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rt_rootfs_release(struct rt_rootfs *r)
{
	free(r->mode);
	free(r->lower);
	free(r->upper);
	free(r->work);
	free(r->target);
	memset(r, 0, sizeof(*r));
}

void rt_spec_release(struct rt_spec *spec)
{
	free(spec->name);
	free(spec->hostname);
	strv_free(spec->argv);
	strv_free(spec->env);
	free(spec->cwd);
	rt_rootfs_release(&spec->rootfs);
	for (size_t i = 0; i < spec->n_mounts; i++) {
		free(spec->mounts[i].source);
		free(spec->mounts[i].dest);
	}
	free(spec->mounts);
	free(spec->cgroup);
	strv_free(spec->sysctls);
	for (size_t i = 0; i < spec->n_devices; i++) {
		free(spec->devices[i].source);
		free(spec->devices[i].path);
	}
	free(spec->devices);
	strv_free(spec->volume_dirs);
	memset(spec, 0, sizeof(*spec));
}

static int bad(struct clbsd_err *err, const char *key, const char *what)
{
	return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "runtime spec: \"%s\": %s", key,
				what);
}

/* Reject keys of obj not listed in the NULL-terminated `known`. */
static int check_keys(json_t *obj, const char *where, const char *const *known,
		      struct clbsd_err *err)
{
	const char *k;
	json_t *v;
	json_object_foreach(obj, k, v)
	{
		bool ok = false;
		for (size_t i = 0; known[i] && !ok; i++)
			ok = strcmp(k, known[i]) == 0;
		if (!ok)
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"runtime spec: unknown key \"%s%s\"", where, k);
	}
	return 0;
}

/* Optional string: absent or null leaves *out NULL. */
static int get_str(json_t *obj, const char *key, const char *name, bool required, char **out,
		   struct clbsd_err *err)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v)) {
		if (required)
			return bad(err, name, "missing (expected a string)");
		*out = NULL;
		return 0;
	}
	if (!json_is_string(v))
		return bad(err, name, "expected a string");
	const char *s = json_string_value(v);
	if (strlen(s) != json_string_length(v))
		return bad(err, name, "contains a NUL byte");
	*out = xstrdup(s);
	return 0;
}

static int get_bool(json_t *obj, const char *key, bool *out, struct clbsd_err *err)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v)) {
		*out = false;
		return 0;
	}
	if (!json_is_boolean(v))
		return bad(err, key, "expected true or false");
	*out = json_is_true(v);
	return 0;
}

static int get_int(json_t *obj, const char *key, const char *name, long long max, long long *out,
		   struct clbsd_err *err)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v)) {
		*out = 0;
		return 0;
	}
	if (!json_is_integer(v))
		return bad(err, name, "expected an integer");
	long long n = json_integer_value(v);
	if (n < 0 || n > max) {
		char msg[80];
		snprintf(msg, sizeof(msg), "out of range (0..%lld)", max);
		return bad(err, name, msg);
	}
	*out = n;
	return 0;
}

/* A JSON array of strings as a NULL-terminated vector (empty when absent). */
static int get_strv(json_t *obj, const char *key, bool env, char ***out, struct clbsd_err *err)
{
	json_t *arr = json_object_get(obj, key);
	struct strv sv = STRV_INIT;
	if (arr && !json_is_null(arr)) {
		if (!json_is_array(arr))
			return bad(err, key, "expected an array of strings");
		size_t i;
		json_t *v;
		json_array_foreach(arr, i, v)
		{
			char name[64];
			snprintf(name, sizeof(name), "%s[%zu]", key, i);
			if (!json_is_string(v) ||
			    strlen(json_string_value(v)) != json_string_length(v)) {
				strv_release(&sv);
				return bad(err, name, "expected a string without NUL bytes");
			}
			const char *s = json_string_value(v);
			if (env && (s[0] == '=' || !strchr(s, '='))) {
				strv_release(&sv);
				return bad(err, name, "expected \"NAME=value\"");
			}
			strv_push(&sv, s);
		}
	}
	if (!sv.v)
		sv.v = xcalloc(1, sizeof(char *));
	*out = sv.v;
	return 0;
}

/* cgroup paths are joined below every hierarchy's mount point. */
static bool clean_rel(const char *p)
{
	if (!p || !*p || p[0] == '/' || p[strlen(p) - 1] == '/' || strstr(p, "//"))
		return false;
	autofree char *abs = xasprintf("/%s", p);
	return fs_path_is_clean_abs(abs);
}

static int parse_rootfs(json_t *r, struct rt_rootfs *out, struct clbsd_err *err)
{
	static const char *const keys[] = {"mode",   "lower",	 "upper", "work",
					   "target", "readonly", NULL};
	int rc;
	if (!r || !json_is_object(r))
		return bad(err, "rootfs", "missing (expected an object)");
	if ((rc = check_keys(r, "rootfs.", keys, err)) < 0)
		return rc;
	if ((rc = get_str(r, "mode", "rootfs.mode", true, &out->mode, err)) < 0 ||
	    (rc = get_str(r, "lower", "rootfs.lower", true, &out->lower, err)) < 0 ||
	    (rc = get_str(r, "upper", "rootfs.upper", false, &out->upper, err)) < 0 ||
	    (rc = get_str(r, "work", "rootfs.work", false, &out->work, err)) < 0 ||
	    (rc = get_str(r, "target", "rootfs.target", true, &out->target, err)) < 0)
		return rc;
	json_t *ro = json_object_get(r, "readonly");
	if (ro && !json_is_null(ro) && !json_is_boolean(ro))
		return bad(err, "rootfs.readonly", "expected true or false");
	out->readonly = ro && json_is_true(ro);

	bool overlay = strcmp(out->mode, "overlay") == 0;
	if (!overlay && strcmp(out->mode, "bind") != 0)
		return bad(err, "rootfs.mode", "expected \"overlay\" or \"bind\"");
	if (out->lower[0] != '/')
		return bad(err, "rootfs.lower", "expected an absolute path");
	if (out->target[0] != '/')
		return bad(err, "rootfs.target", "expected an absolute path");
	if (overlay) {
		if (!out->upper || out->upper[0] != '/')
			return bad(err, "rootfs.upper", "overlay needs an absolute upper dir");
		if (!out->work || out->work[0] != '/')
			return bad(err, "rootfs.work", "overlay needs an absolute work dir");
		/* These strings go into the overlay option string unescaped. */
		const char *const opts[] = {out->lower, out->upper, out->work};
		const char *const names[] = {"rootfs.lower", "rootfs.upper", "rootfs.work"};
		for (size_t i = 0; i < 3; i++)
			if (strpbrk(opts[i], ",:\\"))
				return bad(err, names[i],
					   "must not contain ',', ':' or '\\' (overlay options)");
	}
	return 0;
}

/* Whether path is dir or below it. */
static bool under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static int parse_mounts(json_t *arr, struct rt_spec *out, struct clbsd_err *err)
{
	static const char *const keys[] = {"source", "dest", "readonly", "idmap", NULL};
	if (!arr || json_is_null(arr))
		return 0;
	if (!json_is_array(arr))
		return bad(err, "mounts", "expected an array of objects");
	size_t n = json_array_size(arr);
	if (n == 0)
		return 0;
	out->mounts = xcalloc(n, sizeof(*out->mounts));
	for (size_t i = 0; i < n; i++) {
		json_t *m = json_array_get(arr, i);
		struct rt_mount *rm = &out->mounts[i];
		char where[64], name[80];
		int rc;
		snprintf(where, sizeof(where), "mounts[%zu].", i);
		if (!json_is_object(m)) {
			snprintf(name, sizeof(name), "mounts[%zu]", i);
			return bad(err, name, "expected an object");
		}
		out->n_mounts = i + 1;
		if ((rc = check_keys(m, where, keys, err)) < 0)
			return rc;
		snprintf(name, sizeof(name), "%ssource", where);
		if ((rc = get_str(m, "source", name, true, &rm->source, err)) < 0)
			return rc;
		if (rm->source[0] != '/')
			return bad(err, name, "expected an absolute host path");
		snprintf(name, sizeof(name), "%sdest", where);
		if ((rc = get_str(m, "dest", name, true, &rm->dest, err)) < 0)
			return rc;
		if (!fs_path_is_clean_abs(rm->dest) || strcmp(rm->dest, "/") == 0)
			return bad(err, name,
				   "expected an absolute path without \".\" or \"..\", not \"/\"");
		/* The runtime owns these; a volume there would undo /proc masks or the ro /sys. */
		if (under(rm->dest, "/proc") || under(rm->dest, "/sys") ||
		    !strcmp(rm->dest, "/dev"))
			return bad(err, name, "/proc, /sys and /dev are reserved for the runtime");
		json_t *ro = json_object_get(m, "readonly");
		if (ro && !json_is_null(ro) && !json_is_boolean(ro)) {
			snprintf(name, sizeof(name), "%sreadonly", where);
			return bad(err, name, "expected true or false");
		}
		rm->readonly = ro && json_is_true(ro);
		json_t *im = json_object_get(m, "idmap");
		if (im && !json_is_null(im) && !json_is_boolean(im)) {
			snprintf(name, sizeof(name), "%sidmap", where);
			return bad(err, name, "expected true or false");
		}
		rm->idmap = im && json_is_true(im);
	}
	return 0;
}

static int parse_limits(json_t *l, struct rt_limits *out, struct clbsd_err *err)
{
	static const char *const keys[] = {"memory", "pids", "cpus", NULL};
	int rc;
	long long n;
	memset(out, 0, sizeof(*out));
	if (!l || json_is_null(l))
		return 0;
	if (!json_is_object(l))
		return bad(err, "limits", "expected an object");
	if ((rc = check_keys(l, "limits.", keys, err)) < 0)
		return rc;
	if ((rc = get_int(l, "memory", "limits.memory", INT64_MAX, &n, err)) < 0)
		return rc;
	out->memory = n;
	if ((rc = get_int(l, "pids", "limits.pids", INT64_MAX, &n, err)) < 0)
		return rc;
	out->pids = n;
	json_t *c = json_object_get(l, "cpus");
	if (c && !json_is_null(c)) {
		if (!json_is_number(c))
			return bad(err, "limits.cpus", "expected a number of cores");
		double d = json_number_value(c);
		if (!isfinite(d) || d < 0 || d > 100000)
			return bad(err, "limits.cpus", "out of range (0..100000 cores)");
		out->cpus = d;
	}
	return 0;
}

/* "userns": {"uid": N, "gid": N, "count": N}, absent or null: none. */
static int parse_userns(json_t *u, struct rt_userns *out, struct clbsd_err *err)
{
	static const char *const keys[] = {"uid", "gid", "count", NULL};
	if (!u || json_is_null(u))
		return 0;
	if (!json_is_object(u))
		return bad(err, "userns", "expected an object {\"uid\", \"gid\", \"count\"}");
	int rc;
	if ((rc = check_keys(u, "userns.", keys, err)) < 0)
		return rc;
	long long uid, gid, count;
	if ((rc = get_int(u, "uid", "userns.uid", UINT32_MAX - 1, &uid, err)) < 0 ||
	    (rc = get_int(u, "gid", "userns.gid", UINT32_MAX - 1, &gid, err)) < 0 ||
	    (rc = get_int(u, "count", "userns.count", UINT32_MAX - 1, &count, err)) < 0)
		return rc;
	/* Host id 0 is never handed out, and a range must fit below 2^32 - 1. */
	if (count < 1 || uid < 1 || gid < 1 || uid + count > UINT32_MAX || gid + count > UINT32_MAX)
		return bad(err, "userns", "expected a range of host ids above 0 and below 2^32-1");
	out->uid = (uint32_t)uid;
	out->gid = (uint32_t)gid;
	out->count = (uint32_t)count;
	return 0;
}

/* "sysctls": ["key=value"]: a key of [a-z0-9_.-] without "..", a value on one line. */
static int parse_sysctls(json_t *a, struct rt_spec *s, struct clbsd_err *err)
{
	if (!a || json_is_null(a))
		return 0;
	char **v = json_is_array(a) ? json_to_strv(a) : NULL;
	if (!v)
		return bad(err, "sysctls", "expected an array of \"key=value\" strings");
	s->sysctls = v;
	for (size_t i = 0; v[i]; i++) {
		const char *eq = strchr(v[i], '=');
		bool ok = eq && eq != v[i] && v[i][0] != '.' && eq[-1] != '.';
		for (const char *p = v[i]; ok && p < eq; p++)
			ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' ||
			     *p == '-' || (*p == '.' && p[1] != '.');
		for (const char *p = eq ? eq + 1 : ""; ok && *p; p++)
			ok = (unsigned char)*p >= 0x20;
		if (!ok)
			return bad(err, "sysctls", "expected \"key=value\" with a sysctl name");
	}
	return 0;
}

/* "devices": [{"source", "path", "type", "major", "minor", "access"}]. */
static int parse_devices(json_t *a, struct rt_spec *s, struct clbsd_err *err)
{
	if (!a || json_is_null(a))
		return 0;
	if (!json_is_array(a))
		return bad(err, "devices", "expected an array");
	size_t n = json_array_size(a);
	s->devices = xcalloc(n ? n : 1, sizeof(*s->devices));
	for (size_t i = 0; i < n; i++) {
		json_t *d = json_array_get(a, i);
		struct rt_device *o = &s->devices[s->n_devices];
		const char *type = json_string_value(json_object_get(d, "type"));
		const char *acc = json_string_value(json_object_get(d, "access"));
		json_t *ma = json_object_get(d, "major"), *mi = json_object_get(d, "minor");
		int rc;
		if ((rc = get_str(d, "source", "devices.source", true, &o->source, err)) < 0 ||
		    (rc = get_str(d, "path", "devices.path", true, &o->path, err)) < 0) {
			s->n_devices++;
			return rc;
		}
		s->n_devices++;
		if (!fs_path_is_clean_abs(o->source) || !fs_path_is_clean_abs(o->path) ||
		    strncmp(o->path, "/dev/", 5) != 0 || !type ||
		    (strcmp(type, "c") != 0 && strcmp(type, "b") != 0) || !json_is_integer(ma) ||
		    !json_is_integer(mi) || json_integer_value(ma) < 0 ||
		    json_integer_value(ma) > 4095 || json_integer_value(mi) < 0 ||
		    json_integer_value(mi) > 1048575 || !acc || !*acc ||
		    strspn(acc, "rwm") != strlen(acc) || strlen(acc) > 3)
			return bad(err, "devices",
				   "expected {source, path below /dev, type c|b, major, minor, "
				   "access of rwm}");
		o->type = type[0];
		o->major = (int)json_integer_value(ma);
		o->minor = (int)json_integer_value(mi);
		snprintf(o->access, sizeof(o->access), "%s", acc);
	}
	return 0;
}

static int parse(json_t *root, struct rt_spec *s, struct clbsd_err *err)
{
	static const char *const keys[] = {"name",	 "hostname",	 "argv",	"env",
					   "cwd",	 "uid",		 "gid",		"tty",
					   "stdin_open", "host_network", "rootfs",	"mounts",
					   "limits",	 "cgroup",	 "userns",	"caps",
					   "sysctls",	 "devices",	 "volume_dirs", NULL};
	int rc;
	long long n;
	if (!json_is_object(root))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"runtime spec: expected a JSON object");
	if ((rc = check_keys(root, "", keys, err)) < 0)
		return rc;

	if ((rc = get_str(root, "name", "name", true, &s->name, err)) < 0)
		return rc;
	if (!valid_name(s->name))
		return bad(err, "name", "expected a DNS label ([a-z0-9-], at most 63 chars)");
	if ((rc = get_str(root, "hostname", "hostname", false, &s->hostname, err)) < 0)
		return rc;
	if (!s->hostname)
		s->hostname = xstrdup(s->name);
	if (!valid_hostname(s->hostname) || strlen(s->hostname) > 64)
		return bad(err, "hostname", "expected a host name of at most 64 chars");

	if ((rc = get_strv(root, "argv", false, &s->argv, err)) < 0)
		return rc;
	if (!s->argv[0] || !s->argv[0][0])
		return bad(err, "argv", "expected a non-empty command");
	if ((rc = get_strv(root, "env", true, &s->env, err)) < 0)
		return rc;

	if ((rc = get_str(root, "cwd", "cwd", false, &s->cwd, err)) < 0)
		return rc;
	if (!s->cwd)
		s->cwd = xstrdup("/");
	if (!fs_path_is_clean_abs(s->cwd))
		return bad(err, "cwd", "expected an absolute path without \".\" or \"..\"");

	if ((rc = get_int(root, "uid", "uid", UINT32_MAX - 1, &n, err)) < 0)
		return rc;
	s->uid = (uint32_t)n;
	if ((rc = get_int(root, "gid", "gid", UINT32_MAX - 1, &n, err)) < 0)
		return rc;
	s->gid = (uint32_t)n;
	if ((rc = get_bool(root, "tty", &s->tty, err)) < 0 ||
	    (rc = get_bool(root, "stdin_open", &s->stdin_open, err)) < 0 ||
	    (rc = get_bool(root, "host_network", &s->host_network, err)) < 0)
		return rc;

	if ((rc = parse_rootfs(json_object_get(root, "rootfs"), &s->rootfs, err)) < 0)
		return rc;
	if ((rc = parse_mounts(json_object_get(root, "mounts"), s, err)) < 0)
		return rc;
	if ((rc = parse_limits(json_object_get(root, "limits"), &s->limits, err)) < 0)
		return rc;

	if ((rc = parse_userns(json_object_get(root, "userns"), &s->userns, err)) < 0)
		return rc;
	if ((rc = get_str(root, "cgroup", "cgroup", true, &s->cgroup, err)) < 0)
		return rc;
	if (!clean_rel(s->cgroup))
		return bad(
			err, "cgroup",
			"expected a relative path such as \"clbsd/web\" without \".\" or \"..\"");
	json_t *caps = json_object_get(root, "caps");
	if (caps && !json_is_null(caps)) {
		if (!json_is_integer(caps) || json_integer_value(caps) < 0)
			return bad(err, "caps", "expected a capability mask (an integer)");
		s->caps_set = true;
		s->caps = (uint64_t)json_integer_value(caps);
	}
	if ((rc = parse_sysctls(json_object_get(root, "sysctls"), s, err)) < 0 ||
	    (rc = parse_devices(json_object_get(root, "devices"), s, err)) < 0)
		return rc;
	json_t *vd = json_object_get(root, "volume_dirs");
	if (vd && !json_is_null(vd)) {
		s->volume_dirs = json_to_strv(vd);
		for (size_t i = 0; s->volume_dirs && s->volume_dirs[i]; i++)
			if (!fs_path_is_clean_abs(s->volume_dirs[i]) ||
			    strcmp(s->volume_dirs[i], "/") == 0) {
				strv_free(s->volume_dirs);
				s->volume_dirs = NULL;
				break;
			}
		if (!s->volume_dirs)
			return bad(err, "volume_dirs",
				   "expected an array of absolute paths without \".\" or \"..\" "
				   "(not /)");
	}
	return 0;
}

int rt_spec_from_json(const char *json, struct rt_spec *out, struct clbsd_err *err)
{
	json_error_t jerr;
	json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"runtime spec: line %d column %d: %s", jerr.line,
					jerr.column, jerr.text);
	struct rt_spec s;
	memset(&s, 0, sizeof(s));
	int rc = parse(root, &s, err);
	json_decref(root);
	if (rc < 0) {
		rt_spec_release(&s);
		return rc;
	}
	*out = s;
	return 0;
}

static json_t *strv_json(char *const *v)
{
	json_t *a = json_array();
	for (size_t i = 0; v && v[i]; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static void set_str(json_t *obj, const char *key, const char *s)
{
	if (s)
		json_object_set_new(obj, key, json_string(s));
}

char *rt_spec_to_json(const struct rt_spec *spec)
{
	json_t *o = json_object();
	set_str(o, "name", spec->name);
	set_str(o, "hostname", spec->hostname);
	json_object_set_new(o, "argv", strv_json(spec->argv));
	json_object_set_new(o, "env", strv_json(spec->env));
	set_str(o, "cwd", spec->cwd);
	json_object_set_new(o, "uid", json_integer(spec->uid));
	json_object_set_new(o, "gid", json_integer(spec->gid));
	json_object_set_new(o, "tty", json_boolean(spec->tty));
	json_object_set_new(o, "stdin_open", json_boolean(spec->stdin_open));
	if (spec->host_network)
		json_object_set_new(o, "host_network", json_true());

	json_t *r = json_object();
	set_str(r, "mode", spec->rootfs.mode);
	set_str(r, "lower", spec->rootfs.lower);
	set_str(r, "upper", spec->rootfs.upper);
	set_str(r, "work", spec->rootfs.work);
	set_str(r, "target", spec->rootfs.target);
	json_object_set_new(r, "readonly", json_boolean(spec->rootfs.readonly));
	json_object_set_new(o, "rootfs", r);

	json_t *ms = json_array();
	for (size_t i = 0; i < spec->n_mounts; i++) {
		json_t *m = json_object();
		set_str(m, "source", spec->mounts[i].source);
		set_str(m, "dest", spec->mounts[i].dest);
		json_object_set_new(m, "readonly", json_boolean(spec->mounts[i].readonly));
		if (spec->mounts[i].idmap)
			json_object_set_new(m, "idmap", json_true());
		json_array_append_new(ms, m);
	}
	json_object_set_new(o, "mounts", ms);

	json_t *l = json_object();
	json_object_set_new(l, "memory", json_integer(spec->limits.memory));
	json_object_set_new(l, "pids", json_integer(spec->limits.pids));
	json_object_set_new(l, "cpus", json_real(spec->limits.cpus));
	json_object_set_new(o, "limits", l);
	set_str(o, "cgroup", spec->cgroup);
	if (spec->userns.count)
		json_object_set_new(o, "userns",
				    json_pack("{s:I,s:I,s:I}", "uid", (json_int_t)spec->userns.uid,
					      "gid", (json_int_t)spec->userns.gid, "count",
					      (json_int_t)spec->userns.count));

	if (spec->caps_set)
		json_object_set_new(o, "caps", json_integer((json_int_t)spec->caps));
	if (spec->sysctls && spec->sysctls[0])
		json_object_set_new(o, "sysctls", strv_json(spec->sysctls));
	if (spec->volume_dirs && spec->volume_dirs[0])
		json_object_set_new(o, "volume_dirs", strv_json(spec->volume_dirs));
	if (spec->n_devices) {
		json_t *ds = json_array();
		for (size_t i = 0; i < spec->n_devices; i++) {
			const struct rt_device *d = &spec->devices[i];
			char t[2] = {d->type, '\0'};
			json_array_append_new(ds, json_pack("{s:s,s:s,s:s,s:i,s:i,s:s}", "source",
							    d->source, "path", d->path, "type", t,
							    "major", d->major, "minor", d->minor,
							    "access", d->access));
		}
		json_object_set_new(o, "devices", ds);
	}
	char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	if (!s)
		abort(); /* jansson only fails on allocation failure */
	char *ret = xstrdup(s);
	free(s);
	return ret;
}
