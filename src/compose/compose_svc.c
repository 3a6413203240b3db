/*
 * One service, key by key: each key a service may have is a function in
 * the `skeys` table (at the end); a key not in it, or a value that does not
 * translate, is a warning naming the file, line, column, service and key.
 */
#include "compose/compose_int.h"
#include "conf/value_check.h"
#include "core/spec.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* ---- service keys ---- */

typedef void (*skey_fn)(struct ctx *c, const yaml_node_t *v, const char *key);

static void k_image(struct ctx *c, const yaml_node_t *v, const char *key)
{
	/* Written by the caller, with build and the kind. */
}

/* A command or entrypoint: a list as it is, a string split as sh would. */
static char **command(struct ctx *c, const yaml_node_t *v, const char *key)
{
	if (cx_is_seq(v))
		return cx_strs(c, v, key);
	autofree char *s = cx_str(c, v, key);
	if (!s)
		return NULL;
	char why[200];
	char **w = compose_shell_split(s, why, sizeof(why));
	if (!w)
		cx_warn(c, v, key, "%s; not translated", why);
	return w;
}

static void k_command(struct ctx *c, const yaml_node_t *v, const char *key)
{
	if (cx_is_null(v))
		return;
	char **w = command(c, v, key);
	if (w && !w[0])
		cx_warn(c, v, key, "an empty command means the image's; left out");
	else if (w)
		cx_key_strs(c, ":command", w);
	strv_free(w);
}

static void k_entrypoint(struct ctx *c, const yaml_node_t *v, const char *key)
{
	if (cx_is_null(v))
		return;
	char **w = command(c, v, key);
	if (w)
		cx_key_strs(c, ":entrypoint", w);
	strv_free(w);
}

static void env_bare(struct ctx *c, const yaml_node_t *at, const char *k, struct conf_kv **v,
		     size_t *nv)
{
	/* Compose passes the variable from the environment, or leaves it unset. */
	const char *val = cx_dotenv_get(k, c);
	if (val)
		cx_kv_set(v, nv, k, val);
	else
		cx_warn(c, at, "environment",
			"%s has no value and is not set in the environment; left out", k);
}

static void read_env_file(struct ctx *c, const yaml_node_t *at, const char *path, bool required,
			  struct conf_kv **v, size_t *nv)
{
	autofree char *full = path[0] == '/'
				      ? xstrdup(path)
				      : xasprintf("%s/%s", c->o->dir ? c->o->dir : ".", path);
	autofree char *text = NULL;
	struct clbsd_err err;
	clbsd_err_init(&err);
	if (fs_read_file(full, &text, NULL, &err) < 0) {
		if (required)
			cx_warn(c, at, "env_file", "%s: %s; its variables are left out", path,
				err.msg);
		return;
	}
	int line = 0;
	for (char *l = text, *e; l && *l; l = e ? e + 1 : NULL) {
		e = strchr(l, '\n');
		if (e)
			*e = '\0';
		line++;
		char *k = NULL, *val = NULL;
		int r = compose_env_line(l, &k, &val);
		if (r < 0)
			cx_warn(c, at, "env_file", "%s:%d: not KEY=VALUE; left out", path, line);
		else if (r > 0 && val)
			cx_kv_set(v, nv, k, val);
		else if (r > 0)
			env_bare(c, at, k, v, nv);
		free(k);
		free(val);
	}
}

static void k_env_file(struct ctx *c, const yaml_node_t *v, const char *key)
{
	size_t n = cx_is_seq(v) ? cx_seq_len(v) : 1;
	for (size_t i = 0; i < n; i++) {
		const yaml_node_t *it = cx_is_seq(v) ? cx_seq_at(c, v, i) : v;
		bool required = true;
		const yaml_node_t *pn = it;
		if (cx_is_map(it)) {
			pn = cx_map_get(c, it, "path");
			const yaml_node_t *rq = cx_map_get(c, it, "required");
			required = !(rq && cx_is_scalar(rq) && !strcmp(cx_raw(rq), "false"));
		}
		autofree char *path = pn ? cx_str(c, pn, key) : NULL;
		if (path)
			read_env_file(c, it, path, required, &c->env_acc, &c->env_n);
	}
}

static void k_environment(struct ctx *c, const yaml_node_t *v, const char *key)
{
	cx_pairs(c, v, key, &c->env_acc, &c->env_n, env_bare);
}

/* Finish :env once env_file and environment are both read (environment wins). */
static void env_finish(struct ctx *c, const yaml_node_t *at)
{
	struct conf_kv *ok = NULL;
	size_t nok = 0;
	for (size_t i = 0; i < c->env_n; i++) {
		if (!cx_env_name_ok(c->env_acc[i].key))
			cx_warn(c, at, "environment",
				"\"%s\" is not a variable name clbsd passes (letters, digits, "
				"'_'); "
				"left out",
				c->env_acc[i].key);
		else
			cx_kv_set(&ok, &nok, c->env_acc[i].key, c->env_acc[i].value);
	}
	cx_key_pairs(c, ":env", ok, nok);
	conf_kvs_free(ok, nok);
	conf_kvs_free(c->env_acc, c->env_n);
	c->env_acc = NULL;
	c->env_n = 0;
}

static void k_labels(struct ctx *c, const yaml_node_t *v, const char *key)
{
	struct conf_kv *l = NULL, *ok = NULL;
	size_t n = 0, nok = 0;
	cx_pairs(c, v, key, &l, &n, NULL);
	for (size_t i = 0; i < n; i++) {
		char why[300];
		if (ctr_label_ok(l[i].key, l[i].value, why, sizeof(why)))
			cx_kv_set(&ok, &nok, l[i].key, l[i].value);
		else
			cx_warn(c, v, key, "%s; left out", why);
	}
	cx_key_pairs(c, ":labels", ok, nok);
	conf_kvs_free(l, n);
	conf_kvs_free(ok, nok);
}

static void k_sysctls(struct ctx *c, const yaml_node_t *v, const char *key)
{
	struct conf_kv *l = NULL, *ok = NULL;
	size_t n = 0, nok = 0;
	cx_pairs(c, v, key, &l, &n, NULL);
	for (size_t i = 0; i < n; i++) {
		char why[300];
		if (!ctr_sysctl_ok(l[i].key, l[i].value, why, sizeof(why)))
			cx_warn(c, v, key, "%s; left out", why);
		else if (c->netmode_host && !strncmp(l[i].key, "net.", 4))
			cx_warn(c, v, key,
				"%s: net.* sysctls need the container's own network namespace, and "
				"network_mode is host; left out",
				l[i].key);
		else
			cx_kv_set(&ok, &nok, l[i].key, l[i].value);
	}
	cx_key_pairs(c, ":sysctls", ok, nok);
	conf_kvs_free(l, n);
	conf_kvs_free(ok, nok);
}

static void caps(struct ctx *c, const yaml_node_t *v, const char *key, const char *form)
{
	char **l = cx_strs(c, v, key);
	struct strv ok = STRV_INIT;
	for (size_t i = 0; l && l[i]; i++) {
		char *canon;
		if (ctr_cap_parse(l[i], &canon) < 0) {
			cx_warn(c, v, key, "unknown capability \"%s\"; left out", l[i]);
			continue;
		}
		strv_push_owned(&ok, canon);
	}
	strv_free(l);
	if (ok.n) {
		buf_addf(&c->f, "\n  %s (", form);
		for (size_t i = 0; i < ok.n; i++)
			buf_addf(&c->f, "%s%s", i ? " " : "", ok.v[i]);
		buf_addc(&c->f, ')');
	}
	strv_release(&ok);
}

static void k_cap_add(struct ctx *c, const yaml_node_t *v, const char *key)
{
	caps(c, v, key, ":cap-add");
}

static void k_cap_drop(struct ctx *c, const yaml_node_t *v, const char *key)
{
	caps(c, v, key, ":cap-drop");
}

static void k_devices(struct ctx *c, const yaml_node_t *v, const char *key)
{
	struct strv ok = STRV_INIT, paths = STRV_INIT;
	for (size_t i = 0; i < cx_seq_len(v); i++) {
		const yaml_node_t *it = cx_seq_at(c, v, i);
		autofree char *s = NULL;
		if (cx_is_map(it)) {
			/* The long syntax: source, target, permissions. */
			autofree char *src = cx_map_get(c, it, "source")
						     ? cx_str(c, cx_map_get(c, it, "source"), key)
						     : NULL;
			autofree char *dst = cx_map_get(c, it, "target")
						     ? cx_str(c, cx_map_get(c, it, "target"), key)
						     : NULL;
			autofree char *perm =
				cx_map_get(c, it, "permissions")
					? cx_str(c, cx_map_get(c, it, "permissions"), key)
					: NULL;
			if (src)
				s = xasprintf("%s:%s:%s", src, dst ? dst : src,
					      perm ? perm : "rwm");
		} else {
			s = cx_str(c, it, key);
		}
		if (!s)
			continue;
		struct ctr_device d;
		char why[300];
		if (ctr_device_parse(s, &d, why, sizeof(why)) < 0) {
			cx_warn(c, it, key, "%s; left out", why);
			continue;
		}
		bool dup = false;
		autofree char *canon = ctr_device_str(&d);
		for (size_t j = 0; j < paths.n && !dup; j++)
			dup = !strcmp(paths.v[j], d.path);
		if (!dup) {
			strv_push(&ok, canon);
			strv_push(&paths, d.path);
		} else
			cx_warn(c, it, key, "%s is given twice; the first is kept", d.path);
		ctr_device_release(&d);
	}
	if (!cx_is_seq(v))
		cx_warn(c, v, key, "expected a list of devices; not translated");
	if (ok.n)
		cx_key_strs(c, ":devices", ok.v);
	strv_release(&ok);
	strv_release(&paths);
}

static void k_simple_str(struct ctx *c, const yaml_node_t *v, const char *key, const char *form,
			 bool (*check)(const char *), const char *expect)
{
	autofree char *s = cx_str(c, v, key);
	if (!s)
		return;
	if (check && !check(s)) {
		cx_warn(c, v, key, "\"%s\" is not %s; left out", s, expect);
		return;
	}
	cx_key_str(c, form, s);
}

static void k_user(struct ctx *c, const yaml_node_t *v, const char *key)
{
	k_simple_str(c, v, key, ":user", ctr_user_ok, "a user (\"UID[:GID]\" or \"name[:group]\")");
}

static bool workdir_ok(const char *s)
{
	return cx_path_ok(s);
}

static void k_working_dir(struct ctx *c, const yaml_node_t *v, const char *key)
{
	autofree char *s = cx_str(c, v, key);
	if (!s)
		return;
	autofree char *clean = s[0] == '/' ? cx_abs_path("/", s) : NULL;
	if (!clean || !workdir_ok(clean)) {
		cx_warn(c, v, key, "\"%s\" is not an absolute path; left out", s);
		return;
	}
	cx_key_str(c, ":workdir", clean);
}

static bool hostname_ok(const char *s)
{
	return valid_hostname(s);
}

static void k_hostname(struct ctx *c, const yaml_node_t *v, const char *key)
{
	k_simple_str(c, v, key, ":hostname", hostname_ok, "a DNS name");
}

static void k_tty(struct ctx *c, const yaml_node_t *v, const char *key)
{
	autofree char *s = cx_str(c, v, key);
	if (s && (!strcmp(s, "true") || !strcmp(s, "yes")))
		buf_adds(&c->f, "\n  :tty t");
}

static bool signal_ok(const char *s)
{
	int sig;
	return ctr_signal_parse(s, &sig) == 0;
}

static void k_stop_signal(struct ctx *c, const yaml_node_t *v, const char *key)
{
	k_simple_str(c, v, key, ":stop-signal", signal_ok, "a signal");
}

static bool ipv4_ok(const char *s)
{
	uint32_t a;
	return parse_ipv4(s, &a);
}

static void k_dns(struct ctx *c, const yaml_node_t *v, const char *key)
{
	char **l = cx_strs(c, v, key);
	struct strv ok = STRV_INIT;
	for (size_t i = 0; l && l[i]; i++) {
		if (ipv4_ok(l[i]))
			strv_push(&ok, l[i]);
		else
			cx_warn(c, v, key, "\"%s\": clbsd takes IPv4 nameservers only; left out",
				l[i]);
	}
	if (ok.n)
		cx_key_strs(c, ":dns", ok.v);
	strv_release(&ok);
	strv_free(l);
}

/* restart: no, always, on-failure[:N], unless-stopped. */
static void restart_policy(struct ctx *c, const yaml_node_t *at, const char *key, const char *s,
			   long long max)
{
	if (!strcmp(s, "no") || !strcmp(s, "none"))
		buf_adds(&c->f, "\n  :restart no");
	else if (!strcmp(s, "always") || !strcmp(s, "any"))
		buf_adds(&c->f, "\n  :restart always");
	else if (!strcmp(s, "unless-stopped")) {
		/* A container stopped by hand stays stopped in clbsd too (`clbsd stop`). */
		buf_adds(&c->f, "\n  :restart always");
	} else if (!strncmp(s, "on-failure", 10)) {
		long long n = max;
		if (s[10] == ':' && parse_int(s + 11, 0, 1000000, &n) < 0) {
			cx_warn(c, at, key, "\"%s\": expected on-failure[:N]; left out", s);
			return;
		}
		if (s[10] && s[10] != ':') {
			cx_warn(c, at, key, "\"%s\": expected on-failure[:N]; left out", s);
			return;
		}
		if (n > 0)
			buf_addf(&c->f, "\n  :restart (on-failure %lld)", n);
		else
			buf_adds(&c->f, "\n  :restart on-failure");
	} else {
		cx_warn(c, at, key,
			"\"%s\": expected no, always, on-failure[:N] or unless-stopped; "
			"left out",
			s);
	}
}

static void k_restart(struct ctx *c, const yaml_node_t *v, const char *key)
{
	autofree char *s = cx_str(c, v, key);
	if (s)
		restart_policy(c, v, key, s, 0);
}

/* ---- limits ---- */

static void memory(struct ctx *c, const yaml_node_t *v, const char *key)
{
	autofree char *s = cx_str(c, v, key);
	if (!s)
		return;
	int64_t b;
	struct clbsd_err err;
	clbsd_err_init(&err);
	if (parse_size(s, &b, &err) < 0) {
		cx_warn(c, v, key, "\"%s\" is not a size; left out", s);
		return;
	}
	if (b < 4LL * 1024 * 1024) {
		cx_warn(c, v, key, "%s is below clbsd's minimum of 4M; left out", s);
		return;
	}
	c->lim.memory = b;
	c->lim.at = v;
}

static void cpus(struct ctx *c, const yaml_node_t *v, const char *key)
{
	autofree char *s = cx_str(c, v, key);
	if (!s)
		return;
	char *end;
	double f = strtod(s, &end);
	if (end == s || *end || !(f >= 0.01 && f <= 1024)) {
		cx_warn(c, v, key, "\"%s\": expected a number of CPUs from 0.01 to 1024; left out",
			s);
		return;
	}
	c->lim.cpus = f;
	c->lim.at = v;
}

static void pids(struct ctx *c, const yaml_node_t *v, const char *key)
{
	autofree char *s = cx_str(c, v, key);
	long long n;
	if (!s)
		return;
	if (parse_int(s, -1, 4194304, &n) < 0 || n == 0) {
		cx_warn(c, v, key, "\"%s\": expected 1-4194304 (or -1, unlimited); left out", s);
		return;
	}
	if (n > 0) {
		c->lim.pids = n;
		c->lim.at = v;
	}
}

static void k_mem_limit(struct ctx *c, const yaml_node_t *v, const char *key)
{
	memory(c, v, key);
}

static void k_cpus(struct ctx *c, const yaml_node_t *v, const char *key)
{
	cpus(c, v, key);
}

static void k_pids_limit(struct ctx *c, const yaml_node_t *v, const char *key)
{
	pids(c, v, key);
}

void cx_unknown_keys(struct ctx *c, const yaml_node_t *m, const char *where,
		     const char *const *known)
{
	autofree struct kvp *p = NULL;
	size_t n = cx_map_pairs(c, m, &p);
	for (size_t i = 0; i < n; i++) {
		const char *k = cx_raw(p[i].k);
		bool ok = !k || !strncmp(k, "x-", 2);
		for (size_t j = 0; known[j] && !ok; j++)
			ok = !strcmp(k, known[j]);
		if (!ok) {
			autofree char *full = xasprintf("%s.%s", where, k);
			cx_warn(c, p[i].k, full, "no translation; left out");
		}
	}
}

static void k_deploy(struct ctx *c, const yaml_node_t *v, const char *key)
{
	static const char *const dk[] = {"resources", "restart_policy", NULL};
	if (!cx_is_map(v)) {
		cx_warn(c, v, key, "expected a mapping; not translated");
		return;
	}
	cx_unknown_keys(c, v, "deploy", dk);
	const yaml_node_t *res = cx_map_get(c, v, "resources");
	if (res) {
		static const char *const rk[] = {"limits", NULL};
		cx_unknown_keys(c, res, "deploy.resources", rk);
		const yaml_node_t *l = cx_map_get(c, res, "limits");
		static const char *const lk[] = {"memory", "cpus", "pids", NULL};
		if (l) {
			cx_unknown_keys(c, l, "deploy.resources.limits", lk);
			if (cx_map_get(c, l, "memory"))
				memory(c, cx_map_get(c, l, "memory"),
				       "deploy.resources.limits.memory");
			if (cx_map_get(c, l, "cpus"))
				cpus(c, cx_map_get(c, l, "cpus"), "deploy.resources.limits.cpus");
			if (cx_map_get(c, l, "pids"))
				pids(c, cx_map_get(c, l, "pids"), "deploy.resources.limits.pids");
		}
	}
	const yaml_node_t *rp = cx_map_get(c, v, "restart_policy");
	if (rp && c->restart_given) {
		cx_warn(c, rp, "deploy.restart_policy", "restart: is given too and wins; left out");
		rp = NULL;
	}
	if (rp) {
		static const char *const pk[] = {"condition", "max_attempts", NULL};
		cx_unknown_keys(c, rp, "deploy.restart_policy", pk);
		const yaml_node_t *cond = cx_map_get(c, rp, "condition");
		const yaml_node_t *max = cx_map_get(c, rp, "max_attempts");
		autofree char *cs =
			cond ? cx_str(c, cond, "deploy.restart_policy.condition") : xstrdup("any");
		autofree char *ms =
			max ? cx_str(c, max, "deploy.restart_policy.max_attempts") : NULL;
		long long m = 0;
		if (ms && parse_int(ms, 0, 1000000, &m) < 0)
			cx_warn(c, max, "deploy.restart_policy.max_attempts",
				"\"%s\" is not a count; no limit", ms);
		if (cs)
			restart_policy(c, cond ? cond : rp, "deploy.restart_policy.condition", cs,
				       m);
	}
}

static void limits_finish(struct ctx *c)
{
	if (!c->lim.memory && !c->lim.cpus && !c->lim.pids)
		return;
	buf_adds(&c->f, "\n  :limits (");
	const char *sep = "";
	if (c->lim.memory) {
		autofree char *s = conf_size_str(c->lim.memory);
		buf_adds(&c->f, ":memory ");
		sexp_print_string(&c->f, s);
		sep = " ";
	}
	if (c->lim.cpus) {
		buf_addf(&c->f, "%s:cpus %.2f", sep, c->lim.cpus);
		sep = " ";
	}
	if (c->lim.pids)
		buf_addf(&c->f, "%s:pids %lld", sep, c->lim.pids);
	buf_addc(&c->f, ')');
	memset(&c->lim, 0, sizeof(c->lim));
}

/* ---- health and dependencies ---- */

const struct svc_info *cx_svc_find(struct ctx *c, const char *yname)
{
	for (size_t i = 0; i < c->nsvcs; i++)
		if (!strcmp(c->svcs[i].yname, yname))
			return &c->svcs[i];
	return NULL;
}

/* Whether a healthcheck: mapping says to check (a test, not NONE, not disabled). */
bool cx_health_on(struct ctx *c, const yaml_node_t *h)
{
	if (!cx_is_map(h))
		return false;
	const yaml_node_t *d = cx_map_get(c, h, "disable");
	if (d && cx_is_scalar(d) && !strcmp(cx_raw(d), "true"))
		return false;
	const yaml_node_t *t = cx_map_get(c, h, "test");
	if (!t || cx_is_null(t))
		return false;
	if (cx_is_seq(t) && cx_seq_len(t) > 0 && cx_is_scalar(cx_seq_at(c, t, 0)) &&
	    !strcmp(cx_raw(cx_seq_at(c, t, 0)), "NONE"))
		return false;
	return true;
}

static int64_t duration(struct ctx *c, const yaml_node_t *v, const char *key)
{
	autofree char *s = cx_str(c, v, key);
	int64_t ns;
	struct clbsd_err err;
	if (!s)
		return -1;
	if (parse_duration(s, &ns, &err) < 0 || ns <= 0) {
		cx_warn(c, v, key,
			"\"%s\" is not a duration clbsd reads (like 10s or 1m30s); "
			"the default is kept",
			s);
		return -1;
	}
	return ns;
}

static void add_duration(struct buf *b, const char *k, int64_t ns)
{
	autofree char *s = conf_duration_str(ns);
	buf_addf(b, " %s ", k);
	sexp_print_string(b, s);
}

static void k_healthcheck(struct ctx *c, const yaml_node_t *v, const char *key)
{
	static const char *const hk[] = {"test",	 "interval", "timeout", "retries",
					 "start_period", "disable",  NULL};
	if (!cx_is_map(v)) {
		cx_warn(c, v, key, "expected a mapping; not translated");
		return;
	}
	cx_unknown_keys(c, v, "healthcheck", hk);
	if (!cx_health_on(c, v))
		return;
	const yaml_node_t *t = cx_map_get(c, v, "test");
	struct strv argv = STRV_INIT;
	if (cx_is_scalar(t)) {
		autofree char *s = cx_str(c, t, "healthcheck.test");
		if (!s)
			return;
		strv_push(&argv, "/bin/sh");
		strv_push(&argv, "-c");
		strv_push(&argv, s);
	} else {
		char **l = cx_strs(c, t, "healthcheck.test");
		if (!l || !l[0] || (strcmp(l[0], "CMD") && strcmp(l[0], "CMD-SHELL")) || !l[1]) {
			cx_warn(c, t, "healthcheck.test",
				"expected [\"CMD\", ...], [\"CMD-SHELL\", \"...\"], [\"NONE\"] or "
				"a "
				"string; not translated");
			strv_free(l);
			return;
		}
		if (!strcmp(l[0], "CMD-SHELL")) {
			strv_push(&argv, "/bin/sh");
			strv_push(&argv, "-c");
			/* Compose joins the rest with spaces. */
			struct buf j = BUF_INIT;
			for (size_t i = 1; l[i]; i++)
				buf_addf(&j, "%s%s", i > 1 ? " " : "", l[i]);
			strv_push_owned(&argv, buf_detach(&j, NULL));
		} else {
			for (size_t i = 1; l[i]; i++)
				strv_push(&argv, l[i]);
		}
		strv_free(l);
	}
	int64_t interval = -1, timeout = -1, start = -1;
	long long retries = 0;
	if (cx_map_get(c, v, "interval"))
		interval = duration(c, cx_map_get(c, v, "interval"), "healthcheck.interval");
	if (cx_map_get(c, v, "timeout"))
		timeout = duration(c, cx_map_get(c, v, "timeout"), "healthcheck.timeout");
	if (cx_map_get(c, v, "start_period"))
		start = duration(c, cx_map_get(c, v, "start_period"), "healthcheck.start_period");
	if (interval > 0 && interval < 100000000LL) {
		cx_warn(c, cx_map_get(c, v, "interval"), "healthcheck.interval",
			"below clbsd's minimum of 100ms; 100ms is used");
		interval = 100000000LL;
	}
	int64_t eff = interval > 0 ? interval : 30LL * 1000000000LL;
	if (timeout > eff) {
		cx_warn(c, cx_map_get(c, v, "timeout"), "healthcheck.timeout",
			"longer than the interval, which clbsd refuses; the interval is used");
		timeout = eff;
	} else if (timeout <= 0 && eff < 5LL * 1000000000LL) {
		/* clbsd's default timeout (5s) would be longer than this interval. */
		timeout = eff;
	}
	const yaml_node_t *r = cx_map_get(c, v, "retries");
	if (r) {
		autofree char *rs = cx_str(c, r, "healthcheck.retries");
		if (rs && parse_int(rs, 1, 1000, &retries) < 0) {
			cx_warn(c, r, "healthcheck.retries",
				"\"%s\": expected 1-1000; the default is kept", rs);
			retries = 0;
		}
	}
	buf_adds(&c->f, "\n  :health (:cmd (");
	for (size_t i = 0; i < argv.n; i++) {
		if (i)
			buf_addc(&c->f, ' ');
		sexp_print_string(&c->f, argv.v[i]);
	}
	buf_addc(&c->f, ')');
	if (interval > 0)
		add_duration(&c->f, ":interval", interval);
	if (timeout > 0)
		add_duration(&c->f, ":timeout", timeout);
	if (retries > 0)
		buf_addf(&c->f, " :retries %lld", retries);
	if (start > 0)
		add_duration(&c->f, ":start-period", start);
	buf_addc(&c->f, ')');
	strv_release(&argv);
}

/* Whether `from` depends on `to`, directly or not, by the dependencies written so far. */
static bool reaches(struct ctx *c, const char *from, const char *to, int depth)
{
	if (!strcmp(from, to))
		return true;
	if (depth > 64)
		return false;
	size_t fl = strlen(from);
	for (size_t i = 0; i < c->edges.n; i++) {
		const char *e = c->edges.v[i];
		if (!strncmp(e, from, fl) && e[fl] == '\t' && reaches(c, e + fl + 1, to, depth + 1))
			return true;
	}
	return false;
}

static void dep_add(struct ctx *c, const yaml_node_t *at, const char *key, const char *yname,
		    const char *cond)
{
	const struct svc_info *s = cx_svc_find(c, yname);
	if (!s) {
		cx_warn(c, at, key, "\"%s\" is not a service of this file; left out", yname);
		return;
	}
	if (!s->usable) {
		cx_warn(c, at, key,
			"service %s is left out (no usable image), so is this dependency", yname);
		return;
	}
	if (!strcmp(s->name, c->svc ? cx_svc_find(c, c->svc)->name : "")) {
		cx_warn(c, at, key, "a service cannot depend on itself; left out");
		return;
	}
	if (cond && !strcmp(cond, "service_healthy") && !s->has_health)
		cx_warn(c, at, key,
			"%s: service_healthy, but %s has no healthcheck in this file; clbsd "
			"waits until it runs, and until it is healthy if its image has a "
			"HEALTHCHECK",
			yname, yname);
	else if (cond && !strcmp(cond, "service_completed_successfully"))
		cx_warn(c, at, key,
			"%s: service_completed_successfully has no equivalent; clbsd waits until "
			"it "
			"runs",
			yname);
	else if (cond && strcmp(cond, "service_started") && strcmp(cond, "service_healthy"))
		cx_warn(c, at, key, "%s: unknown condition \"%s\"; clbsd waits until it runs",
			yname, cond);
	for (size_t i = 0; i < c->deps.n; i++)
		if (!strcmp(c->deps.v[i], s->name))
			return;
	const char *self = cx_svc_find(c, c->svc)->name;
	if (reaches(c, s->name, self, 0)) {
		cx_warn(c, at, key, "%s depends on this service already (a cycle); left out",
			yname);
		return;
	}
	strv_push(&c->deps, s->name);
	strv_push_owned(&c->edges, xasprintf("%s\t%s", self, s->name));
}

static void k_depends_on(struct ctx *c, const yaml_node_t *v, const char *key)
{
	if (cx_is_seq(v)) {
		for (size_t i = 0; i < cx_seq_len(v); i++) {
			autofree char *d = cx_str(c, cx_seq_at(c, v, i), key);
			if (d)
				dep_add(c, cx_seq_at(c, v, i), key, d, NULL);
		}
		return;
	}
	if (!cx_is_map(v)) {
		cx_warn(c, v, key, "expected a list or a mapping; not translated");
		return;
	}
	autofree struct kvp *p = NULL;
	size_t n = cx_map_pairs(c, v, &p);
	for (size_t i = 0; i < n; i++) {
		autofree char *d = cx_str(c, p[i].k, key);
		const yaml_node_t *cond = cx_map_get(c, p[i].v, "condition");
		static const char *const dk[] = {"condition", "required", NULL};
		if (cx_is_map(p[i].v))
			cx_unknown_keys(c, p[i].v, "depends_on", dk);
		autofree char *cs = cond ? cx_str(c, cond, "depends_on.condition") : NULL;
		const yaml_node_t *rq = cx_map_get(c, p[i].v, "required");
		if (rq && cx_is_scalar(rq) && !strcmp(cx_raw(rq), "false"))
			cx_warn(c, rq, "depends_on.required",
				"an optional dependency has no translation; clbsd waits for it");
		if (d)
			dep_add(c, p[i].k, key, d, cs);
	}
}

static void k_links(struct ctx *c, const yaml_node_t *v, const char *key)
{
	char **l = cx_strs(c, v, key);
	for (size_t i = 0; l && l[i]; i++) {
		char *colon = strchr(l[i], ':');
		if (colon) {
			cx_warn(c, v, key,
				"\"%s\": the alias is not made (services reach %.*s by its name); "
				"a "
				"dependency is",
				l[i], (int)(colon - l[i]), l[i]);
			*colon = '\0';
		}
		dep_add(c, v, key, l[i], NULL);
	}
	strv_free(l);
}

/* ---- networks ---- */

static struct net_out *net_find(struct ctx *c, const char *yname)
{
	for (size_t i = 0; i < c->nnets; i++)
		if (!strcmp(c->nets[i].yname, yname))
			return &c->nets[i];
	return NULL;
}

static void k_network_mode(struct ctx *c, const yaml_node_t *v, const char *key)
{
	/* Read ahead of the other keys (see cx_service()). */
}

static void k_networks(struct ctx *c, const yaml_node_t *v, const char *key)
{
	/* Read with network_mode (see service_network()). */
}

static void service_network(struct ctx *c, const yaml_node_t *svc)
{
	const yaml_node_t *mode = cx_map_get(c, svc, "network_mode");
	const yaml_node_t *nets = cx_map_get(c, svc, "networks");
	if (mode) {
		autofree char *m = cx_str(c, mode, "network_mode");
		if (m && (!strcmp(m, "host") || !strcmp(m, "none"))) {
			buf_addf(&c->f, "\n  :network %s", m);
			if (nets)
				cx_warn(c, nets, "networks",
					"network_mode is %s; the networks are left out", m);
			return;
		}
		if (m && strcmp(m, "bridge") != 0)
			cx_warn(c, mode, "network_mode",
				"\"%s\" has no translation (clbsd joins no other container's "
				"namespace); the project's default network is used",
				m);
	}
	struct strv names = STRV_INIT, aliases = STRV_INIT;
	autofree char *ip = NULL;
	if (nets && !mode) {
		size_t n = cx_is_seq(nets) ? cx_seq_len(nets) : 0;
		autofree struct kvp *p = NULL;
		if (cx_is_map(nets))
			n = cx_map_pairs(c, nets, &p);
		else if (!cx_is_seq(nets))
			cx_warn(c, nets, "networks",
				"expected a list or a mapping; not translated");
		for (size_t i = 0; i < n; i++) {
			const yaml_node_t *kn = p ? p[i].k : cx_seq_at(c, nets, i);
			autofree char *yn = cx_str(c, kn, "networks");
			if (!yn)
				continue;
			struct net_out *no = net_find(c, yn);
			if (!no && strcmp(yn, "default") != 0) {
				cx_warn(c, kn, "networks",
					"\"%s\" is not declared under networks:; left out", yn);
				continue;
			}
			const char *cn;
			if (!no) {
				c->need_default_net = true;
				cn = NULL;
			} else {
				no->used = true;
				cn = no->name;
			}
			autofree char *dflt = cn ? NULL : xasprintf("%s-default", c->project);
			strv_push(&names, cn ? cn : dflt);
			if (!p || !cx_is_map(p[i].v))
				continue;
			static const char *const nk[] = {"aliases", "ipv4_address", NULL};
			cx_unknown_keys(c, p[i].v, "networks", nk);
			const yaml_node_t *al = cx_map_get(c, p[i].v, "aliases");
			char **l = al ? cx_strs(c, al, "networks.aliases") : NULL;
			for (size_t j = 0; l && l[j]; j++) {
				autofree char *lab = cx_label(l[j]);
				if (!lab || strcmp(lab, l[j]) != 0)
					cx_warn(c, al, "networks.aliases",
						"\"%s\" is not a DNS label; left out", l[j]);
				else {
					bool dup = false;
					for (size_t k = 0; k < aliases.n; k++)
						dup |= !strcmp(aliases.v[k], lab);
					if (!dup)
						strv_push(&aliases, lab);
				}
			}
			strv_free(l);
			const yaml_node_t *a4 = cx_map_get(c, p[i].v, "ipv4_address");
			autofree char *as = a4 ? cx_str(c, a4, "networks.ipv4_address") : NULL;
			struct net_addr addr;
			struct clbsd_err err;
			if (!as)
				continue;
			if (names.n != 1)
				cx_warn(c, a4, "networks.ipv4_address",
					"clbsd pins an address on the first network only; left "
					"out");
			else if (!no || !no->v4.addr.family)
				cx_warn(c, a4, "networks.ipv4_address",
					"the network has no ipam subnet in the file; left out");
			else if (net_addr_parse(as, &addr, &err) < 0 || addr.family != AF_INET ||
				 !net_prefix_contains(&no->v4, &addr) ||
				 net_prefix_reserved(&no->v4, &addr))
				cx_warn(c, a4, "networks.ipv4_address",
					"%s is not a usable address of the network's subnet; left "
					"out",
					as);
			else
				ip = xstrdup(as);
		}
	}
	if (!names.n) {
		c->need_default_net = true;
		strv_push_owned(&names, xasprintf("%s-default", c->project));
	}
	buf_adds(&c->f, "\n  :network ");
	if (names.n == 1)
		sexp_print_name(&c->f, names.v[0]);
	else {
		buf_addc(&c->f, '(');
		for (size_t i = 0; i < names.n; i++) {
			if (i)
				buf_addc(&c->f, ' ');
			sexp_print_name(&c->f, names.v[i]);
		}
		buf_addc(&c->f, ')');
	}
	if (ip)
		cx_key_str(c, ":ip", ip);
	if (aliases.n) {
		buf_adds(&c->f, "\n  :aliases (");
		for (size_t i = 0; i < aliases.n; i++)
			buf_addf(&c->f, "%s%s", i ? " " : "", aliases.v[i]);
		buf_addc(&c->f, ')');
	}
	strv_release(&names);
	strv_release(&aliases);
}

/* ---- build and image ---- */

static bool remote_context(const char *s)
{
	return strstr(s, "://") || !strncmp(s, "git@", 4);
}

static void k_build(struct ctx *c, const yaml_node_t *v, const char *key)
{
	/* Written by image_and_build(). */
}

static void k_container_name(struct ctx *c, const yaml_node_t *v, const char *key)
{
	/* Read in the first pass (names()). */
}

/*
 * The image the container runs: `image:`, or with `build:` an (image NAME
 * :build DIR) form (NAME: `image:`, else "<project>-<service>", as Compose
 * names it), written to imgs. Returns the reference, or NULL when the
 * service has neither that translates.
 */
static char *image_and_build(struct ctx *c, const yaml_node_t *svc, struct buf *imgs)
{
	const yaml_node_t *in = cx_map_get(c, svc, "image"), *bn = cx_map_get(c, svc, "build");
	autofree char *img = in ? cx_str(c, in, "image") : NULL;
	if (img && !valid_image_ref(img)) {
		cx_warn(c, in, "image",
			"\"%s\" is not an image reference clbsd takes (NAME[:TAG], lowercase; no "
			"registry port or digest)",
			img);
		free(img);
		img = NULL;
		if (!bn)
			return NULL;
	}
	if (!bn)
		return steal_ptr(&img);
	autofree char *ctxs = NULL, *file = NULL;
	struct conf_kv *args = NULL;
	size_t nargs = 0;
	if (cx_is_map(bn)) {
		static const char *const bk[] = {"context", "dockerfile", "args", NULL};
		cx_unknown_keys(c, bn, "build", bk);
		const yaml_node_t *cn = cx_map_get(c, bn, "context");
		ctxs = cn ? cx_str(c, cn, "build.context") : xstrdup(".");
		const yaml_node_t *fn = cx_map_get(c, bn, "dockerfile");
		file = fn ? cx_str(c, fn, "build.dockerfile") : NULL;
		const yaml_node_t *an = cx_map_get(c, bn, "args");
		if (an)
			cx_pairs(c, an, "build.args", &args, &nargs, NULL);
	} else {
		ctxs = cx_str(c, bn, "build");
	}
	if (!ctxs || remote_context(ctxs)) {
		if (ctxs)
			cx_warn(c, bn, "build", "a remote context (%s) has no translation; %s",
				ctxs,
				img ? "the image is used as it is" : "the service is left out");
		conf_kvs_free(args, nargs);
		return steal_ptr(&img);
	}
	autofree char *name = img ? xstrdup(img) : NULL;
	if (!name) {
		autofree char *svcl = cx_label(c->svc);
		name = xasprintf("%s-%s", c->project, svcl ? svcl : "svc");
	}
	autofree char *dir = cx_abs_path(cx_base_dir(c), ctxs);
	if (!cx_path_ok(dir)) {
		cx_warn(c, bn, "build", "context \"%s\" is not a path clbsd takes; %s", ctxs,
			img ? "the image is used as it is" : "the service is left out");
		conf_kvs_free(args, nargs);
		return steal_ptr(&img);
	}
	/* Two services may build one image (Compose builds it once too); "x" is "x:latest". */
	const char *slash = strrchr(name, '/');
	autofree char *full =
		strchr(slash ? slash : name, ':') ? xstrdup(name) : xasprintf("%s:latest", name);
	for (size_t i = 0; i < c->built.n; i++)
		if (!strcmp(c->built.v[i], full)) {
			cx_warn(c, bn, "build",
				"image %s is built by an earlier service already; its build is "
				"used",
				name);
			conf_kvs_free(args, nargs);
			return steal_ptr(&name);
		}
	strv_push(&c->built, full);
	buf_adds(imgs, "(image ");
	sexp_print_string(imgs, name);
	buf_adds(imgs, " :build ");
	sexp_print_string(imgs, dir);
	autofree char *fclean = file ? cx_abs_path("/", file) : NULL;
	if (file && (file[0] == '/' || strstr(file, "..") || !fclean[1] || !cx_path_ok(fclean))) {
		cx_warn(c, bn, "build.dockerfile",
			"\"%s\" must be inside the context; Dockerfile is used", file);
		buf_adds(imgs, " :file \"Dockerfile\"");
	} else if (file)
		buf_adds(imgs, " :file "), sexp_print_string(imgs, fclean + 1);
	else
		buf_adds(imgs, " :file \"Dockerfile\"");
	struct conf_kv *ok = NULL;
	size_t nok = 0;
	for (size_t i = 0; i < nargs; i++)
		if (cx_env_name_ok(args[i].key))
			cx_kv_set(&ok, &nok, args[i].key, args[i].value);
		else
			cx_warn(c, bn, "build.args",
				"\"%s\" is not a build argument name; left out", args[i].key);
	if (nok) {
		qsort(ok, nok, sizeof(*ok), cx_kv_cmp);
		buf_adds(imgs, " :args (");
		for (size_t i = 0; i < nok; i++) {
			if (i)
				buf_addc(imgs, ' ');
			cx_add_pair(imgs, ok[i].key, ok[i].value);
		}
		buf_addc(imgs, ')');
	}
	buf_adds(imgs, ")\n\n");
	conf_kvs_free(args, nargs);
	conf_kvs_free(ok, nok);
	return steal_ptr(&name);
}

/* ---- a service ---- */

bool cx_svc_usable(struct ctx *c, const yaml_node_t *svc)
{
	const yaml_node_t *in = cx_map_get(c, svc, "image"), *bn = cx_map_get(c, svc, "build");
	autofree char *img = in && cx_is_scalar(in) ? cx_str(c, in, "image") : NULL;
	if (img && valid_image_ref(img))
		return true;
	if (!bn)
		return false;
	const yaml_node_t *cn = cx_is_map(bn) ? cx_map_get(c, bn, "context") : bn;
	autofree char *ctxs = !cn ? xstrdup(".") : cx_is_scalar(cn) ? cx_str(c, cn, "build") : NULL;
	return ctxs && !remote_context(ctxs);
}

static const struct {
	const char *name;
	skey_fn fn;
} skeys[] = {
	{"image", k_image},
	{"build", k_build},
	{"container_name", k_container_name},
	{"entrypoint", k_entrypoint},
	{"command", k_command},
	{"env_file", k_env_file},
	{"environment", k_environment},
	{"labels", k_labels},
	{"working_dir", k_working_dir},
	{"user", k_user},
	{"hostname", k_hostname},
	{"tty", k_tty},
	{"stop_signal", k_stop_signal},
	{"cap_add", k_cap_add},
	{"cap_drop", k_cap_drop},
	{"sysctls", k_sysctls},
	{"devices", k_devices},
	{"volumes", cx_k_volumes},
	{"mem_limit", k_mem_limit},
	{"cpus", k_cpus},
	{"pids_limit", k_pids_limit},
	{"deploy", k_deploy},
	{"network_mode", k_network_mode},
	{"networks", k_networks},
	{"dns", k_dns},
	{"ports", cx_k_ports},
	{"expose", cx_k_expose},
	{"restart", k_restart},
	{"depends_on", k_depends_on},
	{"links", k_links},
	{"healthcheck", k_healthcheck},
};

static bool native_image(struct ctx *c, const char *img, bool built)
{
	switch (c->o->kind) {
	case COMPOSE_KIND_NATIVE:
		return true;
	case COMPOSE_KIND_AUTO:
		return !built && c->o->is_native && c->o->is_native(img, c->o->native_arg);
	default:
		return false;
	}
}

void cx_service(struct ctx *c, const struct svc_info *si, struct buf *imgs, struct buf *ctrs)
{
	const yaml_node_t *svc = si->node;
	c->svc = si->yname;
	buf_init(&c->f);
	buf_init(&c->notes);
	strv_init(&c->deps);
	if (!cx_is_map(svc)) {
		cx_warn(c, svc, NULL, "expected a mapping of keys; left out");
		c->svc = NULL;
		return;
	}
	const yaml_node_t *mode = cx_map_get(c, svc, "network_mode");
	c->netmode_host = mode && cx_is_scalar(mode) && !strcmp(cx_raw(mode), "host");
	c->netmode_none = mode && cx_is_scalar(mode) && !strcmp(cx_raw(mode), "none");
	c->restart_given = cx_map_get(c, svc, "restart") != NULL;
	autofree char *img = image_and_build(c, svc, imgs);
	if (!img) {
		if (c->fatal)
			; /* said already */
		else if (!cx_map_get(c, svc, "image") && !cx_map_get(c, svc, "build"))
			cx_warn(c, svc, NULL, "neither image nor build; the service is left out");
		else
			cx_warn(c, svc, NULL, "no usable image; the service is left out");
		c->svc = NULL;
		buf_release(&c->notes);
		return;
	}
	bool built = cx_map_get(c, svc, "build") != NULL;
	bool native = native_image(c, img, built);
	buf_adds(&c->f, "(container ");
	sexp_print_name(&c->f, si->name);
	buf_addf(&c->f, "\n  :kind %s", native ? "native" : "docker");
	cx_key_str(c, ":image", img);
	/* The keys, in the table's order, each once. */
	autofree struct kvp *p = NULL;
	size_t n = cx_map_pairs(c, svc, &p);
	for (size_t i = 0; i < n; i++) {
		const char *k = cx_raw(p[i].k);
		bool known = !k || !strncmp(k, "x-", 2);
		for (size_t j = 0; j < ARRAY_SIZE(skeys) && !known; j++)
			known = !strcmp(skeys[j].name, k);
		if (!known)
			cx_warn(c, p[i].k, k, "no translation; left out");
	}
	for (size_t j = 0; j < ARRAY_SIZE(skeys); j++) {
		const yaml_node_t *v = cx_map_get(c, svc, skeys[j].name);
		if (!v)
			continue;
		skeys[j].fn(c, v, skeys[j].name);
		if (!strcmp(skeys[j].name, "environment") ||
		    (!strcmp(skeys[j].name, "env_file") && !cx_map_get(c, svc, "environment")))
			env_finish(c, v);
		if (!strcmp(skeys[j].name, "volumes"))
			service_network(c, svc);
	}
	if (!cx_map_get(c, svc, "volumes"))
		service_network(c, svc);
	limits_finish(c);
	if (c->deps.n) {
		buf_adds(&c->f, "\n  :depends-on (");
		for (size_t i = 0; i < c->deps.n; i++) {
			if (i)
				buf_addc(&c->f, ' ');
			sexp_print_name(&c->f, c->deps.v[i]);
		}
		buf_addc(&c->f, ')');
	}
	buf_adds(&c->f, ")\n\n");
	if (c->notes.len)
		buf_adds(ctrs, c->notes.data);
	buf_adds(ctrs, c->f.data);
	buf_release(&c->f);
	buf_release(&c->notes);
	strv_release(&c->deps);
	c->svc = NULL;
}
