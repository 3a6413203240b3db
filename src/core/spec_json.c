/*
 * The API's JSON form of a container spec: the body of POST /v1/containers
 * (what `clbsd run` and `clbsd create` send), decoded into a struct
 * ctr_spec by the key table's JSON column (spec_keys.c), and encoded back.
 *
 * The messages are the ones the API has always given. Checks that need
 * the host (the image exists, a bind source exists, the CPU count, the
 * storage driver's abilities, the networks) are the daemon's (ctr_create).
 */
#include "core/spec_keys.h"
#include "conf/live.h"
#include "util/json.h"
#include "util/netaddr.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static void strv_cleanup(char ***p)
{
	strv_free(*p);
}
#define autostrv __attribute__((cleanup(strv_cleanup)))

static int bad(struct clbsd_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(struct clbsd_err *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	autofree char *m = xvasprintf(fmt, ap);
	va_end(ap);
	return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "%s", m);
}

/* A string, or null (*out NULL); false for anything else. */
static bool opt_string(json_t *v, const char **out)
{
	*out = json_is_string(v) ? json_string_value(v) : NULL;
	return json_is_string(v) || json_is_null(v);
}

/* An array of strings or (where `one` allows it) a single string; null is NULL. */
static bool opt_strv(json_t *v, bool one, char ***out)
{
	*out = NULL;
	if (json_is_null(v))
		return true;
	if (one && json_is_string(v)) {
		*out = xcalloc(2, sizeof(char *));
		(*out)[0] = xstrdup(json_string_value(v));
		return true;
	}
	*out = json_to_strv(v);
	return *out != NULL;
}

static int opt_bool(const char *key, json_t *v, bool *out, struct clbsd_err *err)
{
	if (json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return bad(err, "\"%s\" must be true or false", key);
	*out = json_is_true(v);
	return 0;
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : NULL;
}

/* ---- one pair of functions per key ---- */

int spec_j_name(const char *key, json_t *v, struct ctr_spec *s, struct clbsd_err *err)
{
	const char *n;
	if (!opt_string(v, &n))
		return bad(err, "\"name\" must be a string");
	if (n && *n)
		s->name = xstrdup(n);
	return 0;
}

json_t *spec_w_name(const struct ctr_spec *s)
{
	return str_or_null(s->name);
}

int spec_j_image(const char *key, json_t *v, struct ctr_spec *s, struct clbsd_err *err)
{
	const char *n;
	if (!opt_string(v, &n))
		return bad(err, "\"image\" must be a string");
	if (n && *n)
		s->image = xstrdup(n);
	return 0;
}

json_t *spec_w_image(const struct ctr_spec *s)
{
	return str_or_null(s->image);
}

int spec_j_command(const char *key, json_t *v, struct ctr_spec *s, struct clbsd_err *err)
{
	if (!opt_strv(v, false, &s->command))
		return bad(err, "\"command\" must be an array of strings");
	return 0;
}

json_t *spec_w_command(const struct ctr_spec *s)
{
	return s->command ? json_strv(s->command) : NULL;
}

/* "K=V" entries; a repeated K keeps its first place and takes the last value. */
int spec_j_env(const char *key, json_t *v, struct ctr_spec *s, struct clbsd_err *err)
{
	autostrv char **env = NULL;
	if (!opt_strv(v, false, &env))
		return bad(err, "\"env\" must be an array of \"KEY=VALUE\" strings");
	size_t n = strv_len(env);
	s->env = xcalloc(n + 1, sizeof(*s->env));
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(env[i], '=');
		if (!eq || eq == env[i])
			return bad(err, "environment entry \"%s\" is not KEY=VALUE", env[i]);
		autofree char *k = xstrndup(env[i], (size_t)(eq - env[i]));
		size_t j = 0;
		while (j < s->nenv && strcmp(s->env[j].key, k) != 0)
			j++;
		if (j < s->nenv) {
			free(s->env[j].value);
		} else {
			s->env[j].key = steal_ptr(&k);
			s->nenv++;
		}
		s->env[j].value = xstrdup(eq + 1);
	}
	return 0;
}

json_t *spec_w_env(const struct ctr_spec *s)
{
	if (!s->nenv)
		return NULL;
	json_t *a = json_array();
	for (size_t i = 0; i < s->nenv; i++)
		json_array_append_new(a, json_sprintf("%s=%s", s->env[i].key, s->env[i].value));
	return a;
}

int spec_j_workdir(const char *key, json_t *v, struct ctr_spec *s, struct clbsd_err *err)
{
	const char *wd;
	if (!opt_string(v, &wd))
		return bad(err, "\"workdir\" must be a string");
	if (wd && !fs_path_is_clean_abs(wd))
		return bad(err, "workdir \"%s\" must be an absolute path without . or ..", wd);
	s->workdir = wd ? xstrdup(wd) : NULL;
	return 0;
}

json_t *spec_w_workdir(const struct ctr_spec *s)
{
	return str_or_null(s->workdir);
}

int spec_j_user(const char *key, json_t *v, struct ctr_spec *s, struct clbsd_err *err)
{
	const char *u;
	if (!opt_string(v, &u))
		return bad(err, "\"user\" must be a string");
	s->user = u ? xstrdup(u) : NULL;
	return 0;
}

json_t *spec_w_user(const struct ctr_spec *s)
{
	return str_or_null(s->user);
}

int spec_j_hostname(const char *key, json_t *v, struct ctr_spec *s, struct clbsd_err *err)
{
	const char *hn;
	if (!opt_string(v, &hn))
		return bad(err, "\"hostname\" must be a string");
	if (hn && !valid_hostname(hn))
		return bad(err,
			   "hostname \"%s\" is not a DNS name (lowercase letters, digits, "
			   "hyphens, dots)",
			   hn);
	s->hostname = hn ? xstrdup(hn) : NULL;
	return 0;
}

json_t *spec_w_hostname(const struct ctr_spec *s)
{
	return str_or_null(s->hostname);
}

int spec_j_kind(const char *key, json_t *v, struct ctr_spec *s, struct clbsd_err *err)
{
	const char *k;
	if (!opt_string(v, &k))
		return bad(err, "\"%s\" must be \"native\" or \"docker\"", key);
	if (!k || strcmp(k, "native") == 0)
		s->kind = CTR_KIND_NATIVE;
	else if (strcmp(k, "docker") == 0)
		s->kind = CTR_KIND_DOCKER;
	else
		return bad(err, "\"%s\" must be \"native\" or \"docker\", not \"%s\"", key, k);
	return 0;
}

/* Left out for native: create requests of native containers stay as they were. */
json_t *spec_w_kind(const struct ctr_spec *s)
{
	return s->kind == CTR_KIND_DOCKER ? json_string("docker") : NULL;
}

int spec_j_tty(const char *key, json_t *v, struct ctr_spec *s, struct clbsd_err *err)
{
	return opt_bool(key, v, &s->tty, err);
}

json_t *spec_w_tty(const struct ctr_spec *s)
{
	return s->tty ? json_true() : NULL;
}

int spec_j_stdin(const char *key, json_t *v, struct ctr_spec *s, struct clbsd_err *err)
{
	return opt_bool(key, v, &s->stdin_open, err);
}

json_t *spec_w_stdin(const struct ctr_spec *s)
{
	return s->stdin_open ? json_true() : NULL;
}

int spec_j_auto_remove(const char *key, json_t *v, struct ctr_spec *s, struct clbsd_err *err)
{
	return opt_bool(key, v, &s->auto_remove, err);
}

json_t *spec_w_auto_remove(const struct ctr_spec *s)
{
	return s->auto_remove ? json_true() : NULL;
}

int spec_j_stop_signal(const char *key, json_t *v, struct ctr_spec *s, struct clbsd_err *err)
{
	if (json_is_null(v))
		return 0;
	autofree char *num =
		json_is_integer(v) ? xasprintf("%lld", (long long)json_integer_value(v)) : NULL;
	const char *str = json_is_string(v) ? json_string_value(v) : num;
	int sig;
	if (!str || ctr_signal_parse(str, &sig) < 0)
		return bad(err,
			   "\"stop_signal\" must be a signal like \"SIGTERM\", \"TERM\" or 15");
	s->stop_signal = sig == 15 ? 0 : sig;
	return 0;
}

json_t *spec_w_stop_signal(const struct ctr_spec *s)
{
	char buf[16];
	return s->stop_signal ? json_string(ctr_signal_name(s->stop_signal, buf)) : NULL;
}

/* "auto", "host", or an import's recorded range {"uid": N, ...} (auto, keeping N). */
int spec_j_userns(const char *key, json_t *v, struct ctr_spec *s, struct clbsd_err *err)
{
	if (json_is_null(v))
		return 0;
	const char *m = json_string_value(v);
	if (m && strcmp(m, "auto") == 0) {
		s->userns = CTR_USERNS_AUTO;
		return 0;
	}
	if (m && strcmp(m, "host") == 0) {
		s->userns = CTR_USERNS_HOST;
		return 0;
	}
	if (json_is_object(v) && json_is_integer(json_object_get(v, "uid"))) {
		json_int_t u = json_integer_value(json_object_get(v, "uid"));
		s->userns = CTR_USERNS_AUTO;
		s->userns_prefer = u > 0 && u < UINT32_MAX ? (uint32_t)u : 0;
		return 0;
	}
	return bad(err, "\"userns\" must be \"auto\" (a private range of host ids) or \"host\"");
}

json_t *spec_w_userns(const struct ctr_spec *s)
{
	if (s->userns == CTR_USERNS_UNSET)
		return NULL;
	if (s->userns_prefer)
		return json_pack("{s:I}", "uid", (json_int_t)s->userns_prefer);
	return json_string(s->userns == CTR_USERNS_AUTO ? "auto" : "host");
}

/*
 * One volume: {"source", "dest", "readonly"} or "SOURCE:/dest[:ro]". A
 * source that is a name (a DNS label) is a named volume, made or reused as
 * the configuration's (:dataset NAME ...) is; else an absolute host path.
 */
static int volume1(size_t i, json_t *v, struct ctr_volume *out, struct clbsd_err *err)
{
	autofree char *src = NULL, *dst = NULL;
	bool ro = false;
	if (json_is_string(v)) {
		const char *t = json_string_value(v);
		const char *c1 = strchr(t, ':');
		const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c1 || (c2 && strcmp(c2, ":ro") != 0 && strcmp(c2, ":rw") != 0))
			return bad(err,
				   "volume \"%s\": expected NAME:/dir or /host/dir:/dir, "
				   "optionally with :ro",
				   t);
		src = xstrndup(t, (size_t)(c1 - t));
		dst = c2 ? xstrndup(c1 + 1, (size_t)(c2 - c1 - 1)) : xstrdup(c1 + 1);
		ro = c2 && strcmp(c2, ":ro") == 0;
	} else {
		const char *s = json_str(v, "source"), *d = json_str(v, "dest");
		if (!s || !d)
			return bad(err, "volume %zu needs \"source\" and \"dest\" strings", i + 1);
		src = xstrdup(s);
		dst = xstrdup(d);
		json_t *r = json_object_get(v, "readonly");
		if (r && !json_is_null(r) && !json_is_boolean(r))
			return bad(err, "volume %zu: \"readonly\" must be true or false", i + 1);
		ro = json_is_true(r);
		const char *k;
		json_t *x;
		json_object_foreach(v, k, x)
		{
			if (strcmp(k, "source") && strcmp(k, "dest") && strcmp(k, "readonly"))
				return bad(err,
					   "unknown key \"%s\" in volume %zu (source, dest, "
					   "readonly)",
					   k, i + 1);
		}
	}
	bool named = src[0] != '/' && valid_name(src);
	if (!named && !fs_path_is_clean_abs(src))
		return bad(err,
			   "volume source \"%s\" must be an absolute path without . or .. "
			   "(relative paths are refused) or a volume name (a DNS label)",
			   src);
	const char *why;
	if (!valid_volume_dest(dst, &why))
		return bad(err, "volume destination \"%s\" %s", dst, why);
	out->type = named ? CTR_VOL_DATASET : CTR_VOL_BIND;
	out->source = steal_ptr(&src);
	out->path = steal_ptr(&dst);
	out->ro = ro;
	return 0;
}

int spec_j_volumes(const char *key, json_t *v, struct ctr_spec *s, struct clbsd_err *err)
{
	if (json_is_null(v))
		return 0;
	if (!json_is_array(v))
		return bad(err, "\"volumes\" must be an array of {source, dest, readonly}");
	size_t n = json_array_size(v);
	s->volumes = xcalloc(n + 1, sizeof(*s->volumes));
	for (size_t i = 0; i < n; i++) {
		struct ctr_volume vol = {0};
		if (volume1(i, json_array_get(v, i), &vol, err) < 0)
			return -err->code;
		for (size_t j = 0; j < s->nvolumes; j++)
			if (vol.type == CTR_VOL_DATASET && s->volumes[j].type == CTR_VOL_DATASET &&
			    strcmp(s->volumes[j].source, vol.source) == 0) {
				ctr_volume_release(&vol);
				return bad(err, "volume %s is given twice", s->volumes[j].source);
			}
		s->volumes[s->nvolumes++] = vol;
	}
	return 0;
}

json_t *spec_w_volumes(const struct ctr_spec *s)
{
	if (!s->nvolumes)
		return NULL;
	json_t *a = json_array();
	for (size_t i = 0; i < s->nvolumes; i++)
		json_array_append_new(a, json_pack("{s:s,s:s,s:b}", "source", s->volumes[i].source,
						   "dest", s->volumes[i].path, "readonly",
						   s->volumes[i].ro));
	return a;
}

int spec_j_memory(const char *key, json_t *v, struct ctr_spec *s, struct clbsd_err *err)
{
	if (json_is_string(v)) {
		if (parse_size(json_string_value(v), &s->memory, err) < 0)
			return clbsd_err_prefix(err, "memory");
	} else if (json_is_integer(v)) {
		s->memory = json_integer_value(v);
	} else if (!json_is_null(v)) {
		return bad(err, "\"memory\" must be a size like \"256M\" or a number of bytes");
	}
	if (s->memory < 0 || (s->memory != 0 && s->memory < (4LL << 20)))
		return bad(err, "memory limit %lld bytes is below the minimum of 4M",
			   (long long)s->memory);
	return 0;
}

json_t *spec_w_memory(const struct ctr_spec *s)
{
	return s->memory ? json_integer(s->memory) : NULL;
}

int spec_j_pids(const char *key, json_t *v, struct ctr_spec *s, struct clbsd_err *err)
{
	if (json_is_integer(v) && json_integer_value(v) >= 1)
		s->pids = json_integer_value(v);
	else if (!json_is_null(v))
		return bad(err, "\"pids\" must be a positive integer");
	return 0;
}

json_t *spec_w_pids(const struct ctr_spec *s)
{
	return s->pids ? json_integer(s->pids) : NULL;
}

/* The range (more than 0, at most the host's CPUs) is checked by the daemon. */
int spec_j_cpus(const char *key, json_t *v, struct ctr_spec *s, struct clbsd_err *err)
{
	if (json_is_number(v))
		s->cpus = json_number_value(v);
	else if (!json_is_null(v))
		return bad(err, "\"cpus\" must be a number like 0.5");
	if (json_is_number(v) && !(s->cpus > 0.0))
		return bad(err,
			   "\"cpus\" %.2f is out of range: expected more than 0 and at most the "
			   "host's CPUs",
			   s->cpus);
	return 0;
}

json_t *spec_w_cpus(const struct ctr_spec *s)
{
	return s->cpus > 0 ? json_real(s->cpus) : NULL;
}

/*
 * "bridge", "host", "none", a network name or an array of names. The
 * daemon checks the names and that host and none stand alone.
 */
int spec_j_network(const char *key, json_t *v, struct ctr_spec *s, struct clbsd_err *err)
{
	autostrv char **words = NULL;
	if (!opt_strv(v, true, &words))
		return bad(err, "\"network\" must be a string (bridge, host, none or a network "
				"name) or an array of network names");
	size_t n = strv_len(words);
	if (n == 0)
		return 0;
	s->netmode_given = true;
	if (n == 1 && strcmp(words[0], "bridge") == 0)
		s->netmode = CTR_NET_BRIDGE;
	else if (n == 1 && strcmp(words[0], "host") == 0)
		s->netmode = CTR_NET_HOST;
	else if (n == 1 && strcmp(words[0], "none") == 0)
		s->netmode = CTR_NET_NONE;
	else {
		s->netmode = CTR_NET_NAMED;
		s->networks = steal_ptr(&words);
	}
	return 0;
}

json_t *spec_w_network(const struct ctr_spec *s)
{
	if (!s->netmode_given)
		return NULL;
	switch (s->netmode) {
	case CTR_NET_BRIDGE:
		return json_string("bridge");
	case CTR_NET_HOST:
		return json_string("host");
	case CTR_NET_NONE:
		return json_string("none");
	case CTR_NET_NAMED:
		break;
	}
	return json_strv(s->networks);
}

int spec_j_ip(const char *key, json_t *v, struct ctr_spec *s, struct clbsd_err *err)
{
	const char *ip;
	if (!opt_string(v, &ip))
		return bad(err, "\"ip\" must be a string");
	s->ip = ip ? xstrdup(ip) : NULL;
	return 0;
}

json_t *spec_w_ip(const struct ctr_spec *s)
{
	return str_or_null(s->ip);
}

int spec_j_aliases(const char *key, json_t *v, struct ctr_spec *s, struct clbsd_err *err)
{
	if (!opt_strv(v, true, &s->aliases))
		return bad(err, "\"aliases\" must be an array of names");
	return 0;
}

json_t *spec_w_aliases(const struct ctr_spec *s)
{
	return s->aliases ? json_strv(s->aliases) : NULL;
}

int spec_j_dns(const char *key, json_t *v, struct ctr_spec *s, struct clbsd_err *err)
{
	if (!opt_strv(v, true, &s->dns))
		return bad(err, "\"dns\" must be an array of addresses");
	return 0;
}

json_t *spec_w_dns(const struct ctr_spec *s)
{
	return s->dns ? json_strv(s->dns) : NULL;
}

int spec_j_publish(const char *key, json_t *v, struct ctr_spec *s, struct clbsd_err *err)
{
	autostrv char **pub = NULL;
	if (!opt_strv(v, true, &pub))
		return bad(err, "\"publish\" must be an array of \"[IP:]HOST:CONTAINER[/udp]\" "
				"strings");
	size_t n = strv_len(pub);
	s->publish = xcalloc(n + 1, sizeof(*s->publish));
	for (size_t i = 0; i < n; i++) {
		struct net_port p;
		if (net_port_parse(pub[i], &p, err) < 0)
			return clbsd_err_prefix(err, "publish");
		char a[NET_ADDR_STRLEN];
		struct ctr_publish *o = &s->publish[s->npublish++];
		o->ip = p.host_ip.family ? xstrdup(net_addr_fmt(&p.host_ip, a)) : NULL;
		o->host_port = p.host_port;
		o->ctr_port = p.port;
		o->udp = strcmp(net_proto_name(p.proto), "udp") == 0;
	}
	return 0;
}

json_t *spec_w_publish(const struct ctr_spec *s)
{
	if (!s->npublish)
		return NULL;
	json_t *a = json_array();
	for (size_t i = 0; i < s->npublish; i++) {
		autofree char *p = ctr_publish_str(&s->publish[i]);
		json_array_append_new(a, json_string(p));
	}
	return a;
}

int spec_j_restart(const char *key, json_t *v, struct ctr_spec *s, struct clbsd_err *err)
{
	const char *r;
	if (!opt_string(v, &r))
		return bad(err, "\"restart\" must be a string");
	if (ctr_restart_parse(r, &s->restart, &s->restart_max) < 0)
		return bad(err,
			   "invalid restart policy \"%s\": expected no, always, on-failure or "
			   "on-failure:N",
			   r);
	return 0;
}

json_t *spec_w_restart(const struct ctr_spec *s)
{
	if (s->restart == CTR_RESTART_ON_FAILURE && s->restart_max)
		return json_sprintf("on-failure:%d", s->restart_max);
	return json_string(ctr_restart_name(s->restart));
}

/* {"quota": BYTES, "reservation": BYTES, "recordsize": BYTES, "compression": NAME} */
int spec_j_storage(const char *key, json_t *v, struct ctr_spec *s, struct clbsd_err *err)
{
	if (json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return bad(err, "\"storage\" must be an object like {\"quota\": 1073741824}");
	const char *k;
	json_t *x;
	json_object_foreach(v, k, x)
	{
		int64_t *size = strcmp(k, "quota") == 0		? &s->storage_quota
				: strcmp(k, "reservation") == 0 ? &s->storage_reservation
				: strcmp(k, "recordsize") == 0	? &s->storage_recordsize
								: NULL;
		if (size) {
			if (!json_is_integer(x) || json_integer_value(x) <= 0)
				return bad(err, "storage %s: want a positive number of bytes", k);
			*size = json_integer_value(x);
		} else if (strcmp(k, "compression") == 0) {
			if (!json_is_string(x))
				return bad(err, "storage compression: want a name like \"lzjb\"");
			free(s->storage_compression);
			s->storage_compression = xstrdup(json_string_value(x));
		} else {
			return bad(err,
				   "unknown storage property \"%s\" (quota, reservation, "
				   "recordsize, compression)",
				   k);
		}
	}
	return 0;
}

json_t *spec_w_storage(const struct ctr_spec *s)
{
	if (!s->storage_quota && !s->storage_reservation && !s->storage_recordsize &&
	    !s->storage_compression)
		return NULL;
	json_t *o = json_object();
	if (s->storage_quota)
		json_object_set_new(o, "quota", json_integer(s->storage_quota));
	if (s->storage_reservation)
		json_object_set_new(o, "reservation", json_integer(s->storage_reservation));
	if (s->storage_recordsize)
		json_object_set_new(o, "recordsize", json_integer(s->storage_recordsize));
	if (s->storage_compression)
		json_object_set_new(o, "compression", json_string(s->storage_compression));
	return o;
}

/* ---- integrity ---- */

static int path_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "integrity"'s "exclude" or "include": absolute paths, sorted and unique (NULL: none). */
static int integrity_paths(const char *what, json_t *x, char ***out, struct clbsd_err *err)
{
	if (json_is_null(x))
		return 0;
	size_t n = json_array_size(x);
	if (!json_is_array(x))
		return bad(err,
			   "\"integrity\": \"%s\" must be an array of absolute paths like "
			   "[\"/var/log\"]",
			   what);
	autostrv char **v = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		const char *p = json_string_value(json_array_get(x, i));
		if (!p || !fs_path_is_clean_abs(p))
			return bad(err,
				   "\"integrity\": \"%s\" item %zu must be an absolute path "
				   "without . or .. (like \"/var/log\")",
				   what, i + 1);
		/* As the form writes it: "/var/log/" is "/var/log". */
		size_t len = strlen(p);
		while (len > 1 && p[len - 1] == '/')
			len--;
		v[i] = xstrndup(p, len);
	}
	qsort(v, n, sizeof(char *), path_cmp);
	char **uniq = xcalloc(n + 1, sizeof(char *));
	size_t u = 0;
	for (size_t i = 0; i < n; i++)
		if (!u || strcmp(uniq[u - 1], v[i]) != 0)
			uniq[u++] = xstrdup(v[i]);
	strv_free(*out);
	*out = NULL;
	if (u)
		*out = uniq;
	else
		free(uniq);
	return 0;
}

/* "integrity"'s "every": a duration string ("1h", as the form's), at least 1s. */
static int integrity_every(json_t *x, int64_t *out, struct clbsd_err *err)
{
	struct clbsd_err e2;
	int64_t ns;
	if (json_is_null(x)) {
		*out = 0;
		return 0;
	}
	if (!json_is_string(x) || parse_duration(json_string_value(x), &ns, &e2) < 0 ||
	    ns < 1000000000LL)
		return bad(err, "\"integrity\": \"every\" must be a duration of at least 1s, "
				"like \"1h\" or \"30m\"");
	*out = ns;
	return 0;
}

/*
 * {"every": DURATION, "exclude": [PATH...], "include": [PATH...]}: the
 * form's :integrity without its :on-drift hook (a host command), which
 * only a declared container has.
 */
int spec_j_integrity(const char *key, json_t *v, struct ctr_spec *s, struct clbsd_err *err)
{
	if (json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return bad(err,
			   "\"integrity\" must be an object like {\"exclude\": [\"/var/log\"], "
			   "\"include\": [\"/data\"]}");
	const char *k;
	json_t *x;
	json_object_foreach(v, k, x)
	{
		int r;
		if (strcmp(k, "exclude") == 0)
			r = integrity_paths(k, x, &s->integrity_exclude, err);
		else if (strcmp(k, "include") == 0)
			r = integrity_paths(k, x, &s->integrity_include, err);
		else if (strcmp(k, "every") == 0)
			r = integrity_every(x, &s->integrity_every_ns, err);
		else if (strcmp(k, "on_drift") == 0 || strcmp(k, "on-drift") == 0)
			r = bad(err,
				"\"integrity\": \"%s\" is the configuration's: a hook runs a "
				"host command, which only a declared container has "
				"(docs/integrity.md); follow the integrity.drift events instead",
				k);
		else
			r = bad(err, "\"integrity\": unknown key \"%s\" (every, exclude, include)",
				k);
		if (r < 0)
			return r;
	}
	const char *both = ctr_integrity_both(s);
	if (both)
		return bad(err,
			   "\"integrity\": %s is in both \"exclude\" and \"include\"; name it in "
			   "one of them",
			   both);
	s->integrity_set = true;
	return 0;
}

json_t *spec_w_integrity(const struct ctr_spec *s)
{
	if (!s->integrity_set)
		return NULL;
	json_t *o = json_object();
	if (s->integrity_every_ns) {
		autofree char *every = conf_duration_str(s->integrity_every_ns);
		json_object_set_new(o, "every", json_string(every));
	}
	if (s->integrity_exclude)
		json_object_set_new(o, "exclude", json_strv(s->integrity_exclude));
	if (s->integrity_include)
		json_object_set_new(o, "include", json_strv(s->integrity_include));
	return o;
}

/* ---- the request ---- */

int ctr_spec_from_json(json_t *req, struct ctr_spec **out, struct clbsd_err *err)
{
	if (!json_is_object(req))
		return bad(err, "the create request must be a JSON object");
	struct ctr_spec *s = xcalloc(1, sizeof(*s));
	const char *key;
	json_t *val;
	json_object_foreach(req, key, val)
	{
		const struct ctr_key *k = NULL;
		for (size_t i = 0; i < ctr_nkeys && !k; i++)
			if (ctr_keys[i].json && strcmp(ctr_keys[i].json, key) == 0)
				k = &ctr_keys[i];
		int r = k ? k->jread(key, val, s, err)
			  : bad(err, "unknown key \"%s\" in the create request", key);
		if (r < 0) {
			ctr_spec_free(s);
			return r;
		}
	}
	if (ctr_spec_check(s, err) < 0) {
		ctr_spec_free(s);
		return -err->code;
	}
	*out = s;
	return 0;
}

json_t *ctr_spec_to_json(const struct ctr_spec *s)
{
	json_t *j = json_object();
	for (size_t i = 0; i < ctr_nkeys; i++) {
		if (!ctr_keys[i].json)
			continue;
		json_t *v = ctr_keys[i].jwrite(s);
		if (v)
			json_object_set_new(j, ctr_keys[i].json, v);
	}
	return j;
}

/* ---- PATCH: a JSON body of keys to change, as override pairs ---- */

/* The form-only key `json` names ("stop_signal" style: the form's, '-' as '_'), or NULL. */
static const struct ctr_key *form_key_named(const char *json)
{
	for (size_t i = 0; i < ctr_nkeys; i++) {
		const char *f = ctr_keys[i].form;
		if (!f || ctr_keys[i].json)
			continue;
		size_t j = 0;
		for (f++; f[j] && (f[j] == '-' ? '_' : f[j]) == json[j]; j++)
			;
		if (!f[j] && !json[j])
			return &ctr_keys[i];
	}
	return NULL;
}

/* A JSON value as the configuration writes it (see ctr_spec_patch_json()). */
static bool json_as_form(struct buf *b, json_t *v)
{
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		bool word = *s != '\0';
		for (const char *p = s; *p; p++)
			word &= (*p >= 'a' && *p <= 'z') || *p == '-';
		if (*s == '(' || word)
			buf_adds(b, s);
		else
			sexp_print_string(b, s);
	} else if (json_is_integer(v)) {
		buf_addf(b, "%lld", (long long)json_integer_value(v));
	} else if (json_is_real(v)) {
		buf_addf(b, "%.17g", json_real_value(v));
	} else if (json_is_boolean(v)) {
		buf_adds(b, json_is_true(v) ? "t" : "nil");
	} else if (json_is_null(v)) {
		buf_adds(b, "nil");
	} else if (json_is_array(v)) {
		size_t i;
		json_t *x;
		buf_addc(b, '(');
		json_array_foreach(v, i, x)
		{
			if (i)
				buf_addc(b, ' ');
			if (!json_as_form(b, x))
				return false;
		}
		buf_addc(b, ')');
	} else {
		return false;
	}
	return true;
}

/*
 * Why a key only the create request has is not a key a PATCH can change
 * (docs/api.md lists them): none is a key of the declaration.
 */
static const char *api_only_why(const char *key)
{
	if (strcmp(key, "stdin") == 0)
		return "whether standard input stays open is fixed when the container is "
		       "created, and a declaration has no such key (the reconciler's "
		       "containers have no one to read it); to have it open, remove the "
		       "container and run it again (clbsd run -i)";
	if (strcmp(key, "auto_remove") == 0)
		return "a declared container is kept by the reconciler, so it cannot remove "
		       "itself when it exits (the reconciler would make it again), and a "
		       "clbsd run container's --rm is fixed when it is created";
	if (strcmp(key, "name") == 0)
		return "a container is not renamed: declare the new name (POST "
		       "/v1/declarations, clbsd declare) and undeclare the old one";
	return "it is not a key of the declaration (the keys are the configuration's, "
	       "see docs/config.md)";
}

int ctr_spec_limits_json(json_t *body, struct ctr_live *live, struct clbsd_err *err)
{
	struct ctr_spec t = {.memory = live->memory, .cpus = live->cpus, .pids = live->pids};
	const char *key;
	json_t *val;
	json_object_foreach(body, key, val)
	{
		int r;
		if (strcmp(key, "memory") == 0)
			r = spec_j_memory(key, val, &t, err);
		else if (strcmp(key, "cpus") == 0)
			r = spec_j_cpus(key, val, &t, err);
		else if (strcmp(key, "pids") == 0)
			r = spec_j_pids(key, val, &t, err);
		else
			r = bad(err, "\"%s\" is not a limit (memory, cpus, pids)", key);
		if (r < 0)
			return r;
		/* null: no limit. */
		if (json_is_null(val) && strcmp(key, "memory") == 0)
			t.memory = 0;
		else if (json_is_null(val) && strcmp(key, "cpus") == 0)
			t.cpus = 0;
		else if (json_is_null(val))
			t.pids = 0;
	}
	*live = (struct ctr_live){.memory = t.memory, .cpus = t.cpus, .pids = t.pids};
	return 0;
}

int ctr_spec_patch_json(json_t *body, const struct ctr_spec *base, struct live_kv **out,
			size_t *nout, struct clbsd_err *err)
{
	*out = NULL;
	*nout = 0;
	if (!json_is_object(body) || !json_object_size(body))
		return bad(err, "expected a JSON object of the keys to change, like "
				"{\"memory\": \"256M\", \"restart\": \"always\"}");
	struct ctr_spec *p = xcalloc(1, sizeof(*p));
	char **text = xcalloc(ctr_nkeys, sizeof(char *)); /* by row: a form-only key's value */
	bool *touched = xcalloc(ctr_nkeys, sizeof(bool));
	bool lim_mem = false, lim_cpus = false, lim_pids = false;
	int r = 0;
	const char *key;
	json_t *val;
	json_object_foreach(body, key, val)
	{
		const struct ctr_key *k = NULL;
		for (size_t i = 0; i < ctr_nkeys && !k; i++)
			if (ctr_keys[i].json && strcmp(ctr_keys[i].json, key) == 0)
				k = &ctr_keys[i];
		if (k && !k->form) {
			/* The flat limits are the form's :limits; the rest are the API's own. */
			bool mem = strcmp(key, "memory") == 0, cpus = strcmp(key, "cpus") == 0,
			     pids = strcmp(key, "pids") == 0;
			if (!mem && !cpus && !pids) {
				r = bad(err, "\"%s\" cannot be changed: %s", key,
					api_only_why(key));
				break;
			}
			lim_mem |= mem;
			lim_cpus |= cpus;
			lim_pids |= pids;
			r = k->jread(key, val, p, err);
			for (size_t i = 0; i < ctr_nkeys; i++)
				if (ctr_keys[i].form && strcmp(ctr_keys[i].form, ":limits") == 0)
					touched[i] = true;
		} else if (k && k->form && json_is_string(val) &&
			   json_string_value(val)[0] == '(' && k->jread(key, val, p, err) < 0) {
			/*
			 * A key both have whose JSON value is an object ("integrity"),
			 * given as the configuration writes it (`clbsd update
			 * --integrity FORM`): the form's, with what only it has.
			 */
			size_t i = (size_t)(k - ctr_keys);
			free(text[i]);
			text[i] = xstrdup(json_string_value(val));
			touched[i] = true;
		} else if (k) {
			r = k->jread(key, val, p, err);
			touched[k - ctr_keys] = true;
		} else if ((k = form_key_named(key))) {
			struct buf b = BUF_INIT;
			if (!json_as_form(&b, val)) {
				buf_release(&b);
				r = bad(err,
					"\"%s\": expected the value as the configuration writes "
					"it: a string, a number, a boolean or an array (a string "
					"starting with '(' is read as a form, e.g. \"(:cmd "
					"(\\\"true\\\"))\")",
					key);
				break;
			}
			size_t i = (size_t)(k - ctr_keys);
			free(text[i]);
			text[i] = buf_detach(&b, NULL);
			touched[i] = true;
		} else {
			r = bad(err,
				"unknown key \"%s\"; the keys are the create request's "
				"(docs/api.md) and the configuration's (docs/config.md)",
				key);
		}
		if (r < 0)
			break;
	}
	if (r == 0) {
		if (!lim_mem)
			p->memory = base ? base->memory : 0;
		if (!lim_cpus)
			p->cpus = base ? base->cpus : 0;
		if (!lim_pids)
			p->pids = base ? base->pids : 0;
		struct live_kv *kv = xcalloc(ctr_nkeys, sizeof(*kv));
		size_t n = 0;
		for (size_t i = 0; i < ctr_nkeys; i++) {
			if (!touched[i])
				continue;
			char *v = steal_ptr(&text[i]);
			if (!v) {
				struct buf b = BUF_INIT;
				if (!ctr_keys[i].print(&b, p))
					buf_adds(&b, "()"); /* unset: the empty value */
				v = buf_detach(&b, NULL);
			}
			kv[n++] = (struct live_kv){ctr_keys[i].form, v};
		}
		*out = kv;
		*nout = n;
	}
	for (size_t i = 0; i < ctr_nkeys; i++)
		free(text[i]);
	free(text);
	free(touched);
	ctr_spec_free(p);
	return r < 0 ? r : 0;
}

/* ---- entrypoint, labels, cap_add, cap_drop, sysctls, devices ---- */

/* An array of strings; "" or [] clears the image's ENTRYPOINT (docker --entrypoint ""). */
int spec_j_entrypoint(const char *key, json_t *v, struct ctr_spec *s, struct clbsd_err *err)
{
	if (json_is_null(v))
		return 0;
	if (json_is_string(v) && !*json_string_value(v)) {
		s->entrypoint = xcalloc(1, sizeof(char *));
		return 0;
	}
	if (!opt_strv(v, false, &s->entrypoint))
		return bad(err, "\"entrypoint\" must be an array of strings (\"\" or [] for none)");
	return 0;
}

json_t *spec_w_entrypoint(const struct ctr_spec *s)
{
	return s->entrypoint ? json_strv(s->entrypoint) : NULL;
}

static int kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct conf_kv *)a)->key, ((const struct conf_kv *)b)->key);
}

/*
 * An object {"KEY": "value"} (a number is taken as its text) or an array
 * of "KEY=value" strings, each checked by ok; a repeated key keeps the
 * last value. Sorted by key, as the form keeps them.
 */
static int kv_json(const char *key, json_t *v,
		   bool (*ok)(const char *, const char *, char *, size_t), struct conf_kv **out,
		   size_t *nout, struct clbsd_err *err)
{
	if (json_is_null(v))
		return 0;
	struct strv keys = STRV_INIT, vals = STRV_INIT;
	int rc = 0;
	if (json_is_object(v)) {
		const char *k;
		json_t *x;
		json_object_foreach(v, k, x)
		{
			if (json_is_string(x))
				strv_push(&vals, json_string_value(x));
			else if (json_is_integer(x))
				strv_push_owned(
					&vals, xasprintf("%lld", (long long)json_integer_value(x)));
			else {
				rc = bad(err, "\"%s\": the value of \"%s\" must be a string", key,
					 k);
				break;
			}
			strv_push(&keys, k);
		}
	} else if (json_is_array(v)) {
		size_t i;
		json_t *x;
		json_array_foreach(v, i, x)
		{
			const char *t = json_string_value(x);
			const char *eq = t ? strchr(t, '=') : NULL;
			if (!eq || eq == t) {
				rc = bad(err, "\"%s\" entry %zu is not a \"KEY=value\" string", key,
					 i);
				break;
			}
			strv_push_owned(&keys, xstrndup(t, (size_t)(eq - t)));
			strv_push(&vals, eq + 1);
		}
	} else {
		rc = bad(err, "\"%s\" must be an object of strings or an array of \"KEY=value\"",
			 key);
	}
	struct conf_kv *kv = xcalloc(keys.n + 1, sizeof(*kv));
	size_t n = 0;
	for (size_t i = 0; rc == 0 && i < keys.n; i++) {
		char why[300];
		if (!ok(keys.v[i], vals.v[i], why, sizeof(why))) {
			rc = bad(err, "\"%s\": %s", key, why);
			break;
		}
		size_t j = 0;
		while (j < n && strcmp(kv[j].key, keys.v[i]) != 0)
			j++;
		if (j == n)
			kv[n++].key = xstrdup(keys.v[i]);
		else
			free(kv[j].value);
		kv[j].value = xstrdup(vals.v[i]);
	}
	strv_release(&keys);
	strv_release(&vals);
	if (rc < 0 || !n) {
		conf_kvs_free(kv, n);
		return rc;
	}
	qsort(kv, n, sizeof(*kv), kv_cmp);
	*out = kv;
	*nout = n;
	return 0;
}

static json_t *kv_obj(const struct conf_kv *v, size_t n)
{
	if (!n)
		return NULL;
	json_t *o = json_object();
	for (size_t i = 0; i < n; i++)
		json_object_set_new(o, v[i].key, json_string(v[i].value));
	return o;
}

int spec_j_labels(const char *key, json_t *v, struct ctr_spec *s, struct clbsd_err *err)
{
	return kv_json(key, v, ctr_label_ok, &s->labels, &s->nlabels, err);
}

json_t *spec_w_labels(const struct ctr_spec *s)
{
	return kv_obj(s->labels, s->nlabels);
}

int spec_j_sysctls(const char *key, json_t *v, struct ctr_spec *s, struct clbsd_err *err)
{
	return kv_json(key, v, ctr_sysctl_ok, &s->sysctls, &s->nsysctls, err);
}

json_t *spec_w_sysctls(const struct ctr_spec *s)
{
	return kv_obj(s->sysctls, s->nsysctls);
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int caps_json(const char *key, json_t *v, char ***out, struct clbsd_err *err)
{
	autostrv char **names = NULL;
	if (!opt_strv(v, true, &names))
		return bad(err, "\"%s\" must be an array of capability names", key);
	struct strv sv = STRV_INIT;
	for (size_t i = 0; names && names[i]; i++) {
		char *c;
		if (ctr_cap_parse(names[i], &c) < 0) {
			strv_release(&sv);
			return bad(err,
				   "\"%s\": unknown capability \"%s\"; expected a name like "
				   "NET_ADMIN (capabilities(7)) or ALL",
				   key, names[i]);
		}
		bool dup = false;
		for (size_t j = 0; j < sv.n; j++)
			dup |= strcmp(sv.v[j], c) == 0;
		if (dup)
			free(c);
		else
			strv_push_owned(&sv, c);
	}
	if (!sv.n)
		return 0;
	qsort(sv.v, sv.n, sizeof(char *), str_cmp);
	*out = sv.v;
	return 0;
}

int spec_j_cap_add(const char *key, json_t *v, struct ctr_spec *s, struct clbsd_err *err)
{
	return caps_json(key, v, &s->cap_add, err);
}

json_t *spec_w_cap_add(const struct ctr_spec *s)
{
	return s->cap_add ? json_strv(s->cap_add) : NULL;
}

int spec_j_cap_drop(const char *key, json_t *v, struct ctr_spec *s, struct clbsd_err *err)
{
	return caps_json(key, v, &s->cap_drop, err);
}

json_t *spec_w_cap_drop(const struct ctr_spec *s)
{
	return s->cap_drop ? json_strv(s->cap_drop) : NULL;
}

int spec_j_devices(const char *key, json_t *v, struct ctr_spec *s, struct clbsd_err *err)
{
	autostrv char **devs = NULL;
	if (!opt_strv(v, true, &devs))
		return bad(err, "\"devices\" must be an array of \"HOST[:CONTAINER][:PERMS]\"");
	size_t n = strv_len(devs);
	if (!n)
		return 0;
	s->devices = xcalloc(n, sizeof(*s->devices));
	for (size_t i = 0; i < n; i++) {
		char why[300];
		if (ctr_device_parse(devs[i], &s->devices[s->ndevices], why, sizeof(why)) < 0)
			return bad(err, "%s", why);
		for (size_t j = 0; j < s->ndevices; j++)
			if (strcmp(s->devices[j].path, s->devices[s->ndevices].path) == 0) {
				ctr_device_release(&s->devices[s->ndevices]);
				return bad(err, "device %s is given twice inside the container",
					   s->devices[j].path);
			}
		s->ndevices++;
	}
	return 0;
}

json_t *spec_w_devices(const struct ctr_spec *s)
{
	if (!s->ndevices)
		return NULL;
	json_t *a = json_array();
	for (size_t i = 0; i < s->ndevices; i++) {
		autofree char *d = ctr_device_str(&s->devices[i]);
		json_array_append_new(a, json_string(d));
	}
	return a;
}
