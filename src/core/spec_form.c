/*
 * Reading the (container NAME :key value ...) form into a struct ctr_spec:
 * every key's type and range, one function per key (the key table's read
 * column, spec_keys.c; the form's own sub-keys have small tables here).
 * Cross-container checks (duplicates, :depends-on targets and cycles,
 * :network names) are in config.c, which sees the whole configuration.
 */
#include "conf/value_check.h"
#include "core/spec.h"
#include "core/spec_keys.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- :volumes ---- */

static const char *const vol_keys[] = {"bind",	      "dataset",     "path",	   "ro", "quota",
				       "reservation", "compression", "recordsize", NULL};

struct vol_parse {
	struct ctr_volume *v;
	const struct sexp *bind, *dataset, *path, *zfs_opt;
	bool bad;
};

static void vol_key(struct vctx *c, void *obj, int key, const struct sexp *v, const struct sexp *k)
{
	struct vol_parse *p = obj;
	struct ctr_volume *vol = p->v;
	bool ok = true;
	switch (key) {
	case 0:
		p->bind = k;
		free(vol->source); /* both :bind and :dataset: reported below */
		vol->source = NULL;
		ok = chk_abs_path(c, ":volumes :bind", v, &vol->source);
		break;
	case 1:
		p->dataset = k;
		free(vol->source);
		vol->source = NULL;
		ok = chk_name(c, ":volumes :dataset", v, &vol->source);
		break;
	case 2: {
		p->path = k;
		ok = chk_abs_path(c, ":volumes :path", v, &vol->path);
		const char *why;
		if (ok && !valid_volume_dest(vol->path, &why)) {
			verr(c, v, ":volumes :path: \"%s\" %s", vol->path, why);
			ok = false;
		}
		break;
	}
	case 3:
		ok = chk_bool(c, ":volumes :ro", v, &vol->ro);
		break;
	case 4:
		p->zfs_opt = k;
		ok = chk_size(c, ":volumes :quota", v, &vol->quota);
		break;
	case 5:
		p->zfs_opt = k;
		ok = chk_size(c, ":volumes :reservation", v, &vol->reservation);
		break;
	case 6:
		p->zfs_opt = k;
		if (v->type != SEXP_SYMBOL || !ctr_compression_ok(v->str)) {
			vexpect(c, ":volumes :compression", v,
				"a compression symbol: on, off, lz4, zstd, zstd-N, gzip, gzip-N, "
				"zle or lzjb");
			ok = false;
		} else {
			vol->compression = xstrdup(v->str);
		}
		break;
	case 7:
		p->zfs_opt = k;
		ok = chk_size(c, ":volumes :recordsize", v, &vol->recordsize);
		if (ok && (vol->recordsize < 512 || vol->recordsize > (16 << 20) ||
			   (vol->recordsize & (vol->recordsize - 1)))) {
			verr(c, v, ":volumes :recordsize: expected a power of two from 512 to 16M");
			ok = false;
		}
		break;
	}
	if (!ok)
		p->bad = true;
}

void spec_r_volumes(struct vctx *c, struct ctr_parse *cp, const struct sexp *x)
{
	struct ctr_spec *ct = cp->ct;
	if (!chk_list(c, ":volumes", x,
		      "a list of volumes like ((:dataset \"data\" :path \"/srv\"))")) {
		cp->bad = true;
		return;
	}
	size_t n = x->type == SEXP_LIST ? x->n : 0;
	ct->volumes = xcalloc(n + 1, sizeof(*ct->volumes));
	for (size_t i = 0; i < n; i++) {
		const struct sexp *item = x->items[i];
		if (item->type != SEXP_LIST || item->tail) {
			vexpect(c, ":volumes", item,
				"a volume: (:bind \"/host/dir\" :path \"/dir\") or (:dataset "
				"\"name\" :path \"/dir\")");
			cp->bad = true;
			continue;
		}
		struct ctr_volume vol = {0};
		struct vol_parse p = {.v = &vol};
		walk_plist(c, item, 0, vol_keys, ":volumes", vol_key, &p);
		if (!p.bad) {
			if (!p.bind == !p.dataset) {
				verr(c, item,
				     ":volumes: expected exactly one of :bind or :dataset");
				p.bad = true;
			} else if (!p.path) {
				verr(c, item,
				     ":volumes: missing :path (where the volume is mounted "
				     "in the container)");
				p.bad = true;
			} else if (p.bind && p.zfs_opt) {
				verr(c, p.zfs_opt, ":volumes :%s: only a :dataset volume takes it",
				     p.zfs_opt->str);
				p.bad = true;
			}
		}
		if (!p.bad) {
			vol.type = p.bind ? CTR_VOL_BIND : CTR_VOL_DATASET;
			for (size_t j = 0; j < ct->nvolumes; j++) {
				if (strcmp(ct->volumes[j].path, vol.path) == 0) {
					verr(c, item, ":volumes: two volumes mounted at %s",
					     vol.path);
					p.bad = true;
				} else if (vol.type == CTR_VOL_DATASET &&
					   ct->volumes[j].type == CTR_VOL_DATASET &&
					   strcmp(ct->volumes[j].source, vol.source) == 0) {
					verr(c, item, ":volumes: dataset \"%s\" is declared twice",
					     vol.source);
					p.bad = true;
				}
			}
		}
		if (p.bad) {
			ctr_volume_release(&vol);
			cp->bad = true;
			continue;
		}
		ct->volumes[ct->nvolumes++] = vol;
	}
}

/* ---- :limits ---- */

static const char *const limit_keys[] = {"memory", "cpus", "pids", NULL};

static void limit_key(struct vctx *c, void *obj, int key, const struct sexp *v,
		      const struct sexp *k)
{
	struct ctr_parse *cp = obj;
	struct ctr_spec *ct = cp->ct;
	long long n;
	switch (key) {
	case 0:
		if (!chk_size(c, ":limits :memory", v, &ct->memory))
			cp->bad = true;
		else if (ct->memory < (4 << 20)) {
			/* The API's minimum too: below it not even a shell starts reliably. */
			verr(c, v, ":limits :memory: %lld bytes is too small; expected at least 4M",
			     (long long)ct->memory);
			cp->bad = true;
		}
		break;
	case 1:
		if (v->type == SEXP_INT)
			ct->cpus = (double)v->i;
		else if (v->type == SEXP_FLOAT)
			ct->cpus = v->f;
		else {
			vexpect(c, ":limits :cpus", v, "a number of CPUs like 0.5 or 2");
			cp->bad = true;
			break;
		}
		if (!(ct->cpus >= 0.01 && ct->cpus <= 1024)) {
			verr(c, v, ":limits :cpus: out of range; expected 0.01 to 1024");
			cp->bad = true;
		}
		break;
	case 2:
		if (!chk_int(c, ":limits :pids", v, 1, 4194304, &n))
			cp->bad = true;
		else
			ct->pids = n;
		break;
	}
}

/* ---- :restart ---- */

void spec_r_restart(struct vctx *c, struct ctr_parse *cp, const struct sexp *x)
{
	static const char *const expected = "no, always, on-failure or (on-failure N)";
	struct ctr_spec *ct = cp->ct;
	long long n;
	if (is_sym(x, "no") || is_sym(x, "nil"))
		ct->restart = CTR_RESTART_NO;
	else if (is_sym(x, "always"))
		ct->restart = CTR_RESTART_ALWAYS;
	else if (is_sym(x, "on-failure"))
		ct->restart = CTR_RESTART_ON_FAILURE;
	else if (x->type == SEXP_LIST && !x->tail && x->n == 2 &&
		 is_sym(x->items[0], "on-failure")) {
		if (!chk_int(c, ":restart (on-failure N)", x->items[1], 0, 1000000, &n)) {
			cp->bad = true;
			return;
		}
		ct->restart = CTR_RESTART_ON_FAILURE;
		ct->restart_max = (int)n;
	} else {
		vexpect(c, ":restart", x, expected);
		cp->bad = true;
	}
}

/* ---- :health ---- */

static const char *const health_keys[] = {"cmd",     "http",	     "tcp",
					  "port",    "interval",     "timeout",
					  "retries", "start-period", "restart-unhealthy",
					  NULL};

struct health_parse {
	struct ctr_parse *cp;
	const struct sexp *probe, *port;
	int nprobe;
};

static bool url_path_ok(const char *s)
{
	if (s[0] != '/' || strlen(s) > 1024)
		return false;
	for (; *s; s++) {
		char ch = *s;
		bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			     (ch >= '0' && ch <= '9');
		if (!alnum && !strchr("/-._~%!$&'()*+,=:@?", ch))
			return false;
	}
	return true;
}

static void health_key(struct vctx *c, void *obj, int key, const struct sexp *v,
		       const struct sexp *k)
{
	struct health_parse *hp = obj;
	struct ctr_health *h = &hp->cp->ct->health;
	bool ok = true;
	long long n;
	switch (key) {
	case 0:
		hp->probe = k, hp->nprobe++;
		h->type = CTR_HEALTH_CMD;
		ok = chk_strings(c, ":health :cmd", v, 1, &h->cmd);
		break;
	case 1:
		hp->probe = k, hp->nprobe++;
		h->type = CTR_HEALTH_HTTP;
		if (v->type != SEXP_STRING || !url_path_ok(v->str)) {
			vexpect(c, ":health :http", v, "a URL path like \"/healthz\"");
			ok = false;
		} else {
			h->http_path = xstrdup(v->str);
		}
		break;
	case 2:
		hp->probe = k, hp->nprobe++;
		h->type = CTR_HEALTH_TCP;
		ok = chk_port(c, ":health :tcp", v, &h->port);
		break;
	case 3:
		hp->port = v;
		break;
	case 4:
		ok = chk_duration(c, ":health :interval", v, &h->interval_ns);
		if (ok && h->interval_ns < 100000000) {
			verr(c, v, ":health :interval: expected at least 100ms");
			ok = false;
		}
		break;
	case 5:
		ok = chk_duration(c, ":health :timeout", v, &h->timeout_ns);
		if (ok && h->timeout_ns < 1000000) {
			verr(c, v, ":health :timeout: expected at least 1ms");
			ok = false;
		}
		break;
	case 6:
		ok = chk_int(c, ":health :retries", v, 1, 1000, &n);
		h->retries = (int)n;
		break;
	case 7:
		ok = chk_duration(c, ":health :start-period", v, &h->start_period_ns);
		break;
	case 8:
		ok = chk_bool(c, ":health :restart-unhealthy", v, &h->restart_unhealthy);
		break;
	}
	if (!ok)
		hp->cp->bad = true;
}

void spec_r_health(struct vctx *c, struct ctr_parse *cp, const struct sexp *x)
{
	struct ctr_health *h = &cp->ct->health;
	if (x->type != SEXP_LIST || x->tail || x->n == 0) {
		vexpect(c, ":health", x,
			"a health check like (:http \"/healthz\" :interval \"10s\")");
		cp->bad = true;
		return;
	}
	h->interval_ns = 30LL * 1000000000;
	h->timeout_ns = 5LL * 1000000000;
	h->retries = 3;
	struct health_parse hp = {.cp = cp};
	walk_plist(c, x, 0, health_keys, ":health", health_key, &hp);
	if (hp.nprobe != 1) {
		verr(c, hp.nprobe ? hp.probe : x,
		     ":health: expected exactly one of :cmd, :http or :tcp");
		cp->bad = true;
		return;
	}
	if (hp.port) {
		if (h->type != CTR_HEALTH_HTTP) {
			verr(c, hp.port, ":health :port: only an :http check takes a port");
			cp->bad = true;
		} else if (!chk_port(c, ":health :port", hp.port, &h->port)) {
			cp->bad = true;
		}
	} else if (h->type == CTR_HEALTH_HTTP) {
		cp->health_http_port = x; /* resolved from :port once all keys are read */
	}
	if (h->timeout_ns > h->interval_ns) {
		verr(c, x, ":health: :timeout is longer than :interval");
		cp->bad = true;
	}
}

/* ---- :on ---- */

static const char *const hook_events[] = {"start",	 "exit",  "oom", "health",
					  "file-change", "every", NULL};

static bool parse_cmd(struct vctx *c, const char *key, const struct sexp *x, struct ctr_cmd *out)
{
	static const char *const expected =
		"a command: a string (run by /bin/sh -c on the host), a list of strings (argv "
		"on the host) or (:exec \"cmd\" \"arg\" ...) (inside the container)";
	if (x->type == SEXP_STRING) {
		if (x->len == 0) {
			verr(c, x, "%s: the command is empty", key);
			return false;
		}
		out->type = CTR_CMD_SHELL;
		out->argv = xcalloc(2, sizeof(char *));
		out->argv[0] = xstrdup(x->str);
		return true;
	}
	if (x->type != SEXP_LIST || x->tail || x->n == 0) {
		vexpect(c, key, x, expected);
		return false;
	}
	size_t first = 0;
	out->type = CTR_CMD_ARGV;
	if (x->items[0]->type == SEXP_KEYWORD) {
		if (strcmp(x->items[0]->str, "exec") != 0) {
			vexpect(c, key, x->items[0], ":exec");
			return false;
		}
		out->type = CTR_CMD_EXEC;
		first = 1;
	}
	if (x->n - first == 0) {
		verr(c, x, "%s: the command is empty", key);
		return false;
	}
	for (size_t i = first; i < x->n; i++) {
		if (x->items[i]->type != SEXP_STRING) {
			vexpect(c, key, x->items[i], "a string (each argument of a command)");
			return false;
		}
	}
	out->argv = xcalloc(x->n - first + 1, sizeof(char *));
	for (size_t i = first; i < x->n; i++)
		out->argv[i - first] = xstrdup(x->items[i]->str);
	return true;
}

static const char *const hook_opt_keys[] = {"recursive", "timeout", NULL};

struct hook_parse {
	struct ctr_hook *h;
	const struct sexp *recursive;
	bool bad;
};

static void hook_opt(struct vctx *c, void *obj, int key, const struct sexp *v, const struct sexp *k)
{
	struct hook_parse *hp = obj;
	if (key == 0) {
		hp->recursive = k;
		if (!chk_bool(c, ":on :recursive", v, &hp->h->recursive))
			hp->bad = true;
	} else if (!chk_duration(c, ":on :timeout", v, &hp->h->timeout_ns)) {
		hp->bad = true;
	} else if (hp->h->timeout_ns < 1000000) {
		verr(c, v, ":on :timeout: expected at least 1ms");
		hp->bad = true;
	}
}

static bool parse_hook(struct vctx *c, const struct sexp *x, struct ctr_hook *h)
{
	static const char *const expected =
		"a hook like (:exit CMD), (:every \"1h\" CMD) or (:file-change \"/path\" CMD)";
	if (x->type != SEXP_LIST || x->tail || x->n == 0 || x->items[0]->type != SEXP_KEYWORD) {
		vexpect(c, ":on", x, expected);
		return false;
	}
	const struct sexp *ev = x->items[0];
	int e = 0;
	while (hook_events[e] && strcmp(hook_events[e], ev->str) != 0)
		e++;
	if (!hook_events[e]) {
		const char *m = did_you_mean(ev->str, hook_events);
		if (m)
			verr(c, ev, ":on: unknown event :%s; did you mean :%s?", ev->str, m);
		else
			verr(c, ev,
			     ":on: unknown event :%s; expected :start, :exit, :oom, :health, "
			     ":file-change or :every",
			     ev->str);
		return false;
	}
	h->event = (enum ctr_hook_event)e;
	h->timeout_ns = CTR_HOOK_TIMEOUT_DEFAULT;
	h->pos = (struct conf_pos){ev->file, ev->line, ev->col};
	size_t i = 1;
	if (h->event == CTR_HOOK_FILE_CHANGE) {
		if (x->n < 3) {
			verr(c, x, ":on :file-change: expected (:file-change \"/path\" CMD)");
			return false;
		}
		if (!chk_abs_path(c, ":on :file-change", x->items[i++], &h->path))
			return false;
	} else if (h->event == CTR_HOOK_EVERY) {
		if (x->n < 3) {
			verr(c, x, ":on :every: expected (:every \"1h\" CMD)");
			return false;
		}
		if (!chk_duration(c, ":on :every", x->items[i], &h->every_ns))
			return false;
		if (h->every_ns < 1000000000LL) {
			verr(c, x->items[i], ":on :every: expected at least 1s");
			return false;
		}
		i++;
	}
	if (i >= x->n) {
		autofree char *what = xasprintf(":on :%s", ev->str);
		verr(c, x, "%s: missing the command to run", what);
		return false;
	}
	autofree char *key = xasprintf(":on :%s", ev->str);
	if (!parse_cmd(c, key, x->items[i], &h->cmd))
		return false;
	i++;
	if (i < x->n) {
		/* Options after the command: a plist over the rest of the list. */
		struct hook_parse hp = {.h = h};
		walk_plist(c, x, i, hook_opt_keys, key, hook_opt, &hp);
		if (hp.bad)
			return false;
		if (hp.recursive && h->event != CTR_HOOK_FILE_CHANGE) {
			verr(c, hp.recursive, "%s: only :file-change takes :recursive", key);
			return false;
		}
	}
	return true;
}

void spec_r_on(struct vctx *c, struct ctr_parse *cp, const struct sexp *x)
{
	struct ctr_spec *ct = cp->ct;
	if (!chk_list(c, ":on", x, "a list of hooks like ((:exit \"logger exited\"))")) {
		cp->bad = true;
		return;
	}
	size_t n = x->type == SEXP_LIST ? x->n : 0;
	ct->hooks = xcalloc(n + 1, sizeof(*ct->hooks));
	for (size_t i = 0; i < n; i++) {
		struct ctr_hook h = {0};
		if (!parse_hook(c, x->items[i], &h)) {
			ctr_hook_release(&h);
			cp->bad = true;
			continue;
		}
		ct->hooks[ct->nhooks++] = h;
	}
}

/* ---- :depends-on, :domain, :aliases, :dns ---- */

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void spec_r_depends(struct vctx *c, struct ctr_parse *cp, const struct sexp *x)
{
	struct ctr_spec *ct = cp->ct;
	if (!chk_list(c, ":depends-on", x, "a list of container names like (db cache)")) {
		cp->bad = true;
		return;
	}
	size_t n = x->type == SEXP_LIST ? x->n : 0;
	struct {
		char *name;
		struct conf_pos pos;
	} *v = xcalloc(n + 1, sizeof(*v));
	size_t got = 0;
	for (size_t i = 0; i < n; i++) {
		char *name;
		const struct sexp *it = x->items[i];
		if (!chk_name(c, ":depends-on", it, &name)) {
			cp->bad = true;
			continue;
		}
		bool dup = false;
		for (size_t j = 0; j < got; j++)
			dup |= strcmp(v[j].name, name) == 0;
		if (dup) {
			verr(c, it, ":depends-on: %s is listed twice", name);
			free(name);
			cp->bad = true;
			continue;
		}
		v[got].name = name;
		v[got].pos = (struct conf_pos){it->file, it->line, it->col};
		got++;
	}
	/* Sorted by name: the order of the list carries no meaning. */
	for (size_t i = 1; i < got; i++)
		for (size_t j = i; j > 0 && strcmp(v[j - 1].name, v[j].name) > 0; j--) {
			__typeof__(*v) t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	ct->depends_on = xcalloc(got + 1, sizeof(char *));
	ct->depends_pos = xcalloc(got + 1, sizeof(struct conf_pos));
	for (size_t i = 0; i < got; i++) {
		ct->depends_on[i] = v[i].name;
		ct->depends_pos[i] = v[i].pos;
	}
	free(v);
}

/* One DNS name or a list of them; `bare` allows a single label too. */
static void parse_names(struct vctx *c, struct ctr_parse *cp, const char *key, const struct sexp *x,
			bool sort, char ***out)
{
	struct strv sv = STRV_INIT;
	const struct sexp *const *items = &x;
	size_t n = 1;
	if (x->type == SEXP_LIST) {
		if (!chk_list(c, key, x, "a DNS name or a list of them")) {
			cp->bad = true;
			return;
		}
		items = (const struct sexp *const *)x->items;
		n = x->n;
	}
	bool domain = strcmp(key, ":domain") == 0;
	for (size_t i = 0; i < n; i++) {
		char *s;
		if (domain) {
			/* What the ingress renderer accepts: DNS names, "*." wildcards. */
			char why[200];
			const struct sexp *it = items[i];
			bool str = it->type == SEXP_STRING || it->type == SEXP_SYMBOL;
			if (!str || !valid_domain_check(it->str, why, sizeof(why))) {
				if (str)
					verr(c, it, "%s: %s", key, why);
				else
					vexpect(c, key, it,
						"a DNS name like \"web\" or \"web.home.lan\"");
				cp->bad = true;
				continue;
			}
			s = xstrdup(it->str);
		} else if (!chk_hostname(c, key, items[i], &s)) {
			cp->bad = true;
			continue;
		}
		bool dup = false;
		for (size_t j = 0; j < sv.n; j++)
			dup |= strcmp(sv.v[j], s) == 0;
		if (dup) {
			verr(c, items[i], "%s: %s is listed twice", key, s);
			free(s);
			cp->bad = true;
			continue;
		}
		strv_push_owned(&sv, s);
	}
	if (sv.n == 0) {
		strv_release(&sv);
		return;
	}
	if (sort)
		qsort(sv.v, sv.n, sizeof(char *), str_cmp);
	*out = sv.v;
}

void spec_r_dns(struct vctx *c, struct ctr_parse *cp, const struct sexp *x)
{
	if (!chk_list(c, ":dns", x, "a list of IPv4 addresses like (\"10.88.0.1\")")) {
		cp->bad = true;
		return;
	}
	struct strv sv = STRV_INIT;
	for (size_t i = 0; x->type == SEXP_LIST && i < x->n; i++) {
		uint32_t a;
		const struct sexp *it = x->items[i];
		if (it->type != SEXP_STRING || !parse_ipv4(it->str, &a)) {
			vexpect(c, ":dns", it, "an IPv4 address like \"10.88.0.1\"");
			cp->bad = true;
			continue;
		}
		strv_push(&sv, it->str);
	}
	if (sv.n)
		cp->ct->dns = sv.v;
	else
		strv_release(&sv);
}

/* ---- :network, :publish ---- */

void spec_r_network(struct vctx *c, struct ctr_parse *cp, const struct sexp *x)
{
	struct ctr_spec *ct = cp->ct;
	ct->netmode_given = true;
	if (is_sym(x, "bridge")) {
		ct->netmode = CTR_NET_BRIDGE;
		return;
	}
	if (is_sym(x, "host")) {
		ct->netmode = CTR_NET_HOST;
		return;
	}
	if (is_sym(x, "none")) {
		ct->netmode = CTR_NET_NONE;
		return;
	}
	const struct sexp *const *items = &x;
	size_t n = 1;
	if (x->type == SEXP_LIST && !x->tail && x->n > 0) {
		items = (const struct sexp *const *)x->items;
		n = x->n;
	} else if (x->type == SEXP_LIST) {
		vexpect(c, ":network", x, "bridge, host, none, a network name or a list of them");
		cp->bad = true;
		return;
	}
	struct strv sv = STRV_INIT;
	for (size_t i = 0; i < n; i++) {
		char *s;
		if (!chk_name(c, ":network", items[i], &s)) {
			cp->bad = true;
			continue;
		}
		if (n > 1 && (!strcmp(s, "host") || !strcmp(s, "none"))) {
			verr(c, items[i], ":network: %s cannot be combined with other networks", s);
			free(s);
			cp->bad = true;
			continue;
		}
		strv_push_owned(&sv, s);
	}
	ct->netmode = CTR_NET_NAMED;
	ct->networks = sv.v ? sv.v : xcalloc(1, sizeof(char *));
}

static bool parse_publish1(const char *s, struct ctr_publish *p)
{
	autofree char *cp = xstrdup(s);
	char *proto = strchr(cp, '/');
	if (proto) {
		*proto++ = '\0';
		if (strcmp(proto, "udp") == 0)
			p->udp = true;
		else if (strcmp(proto, "tcp") != 0)
			return false;
	}
	char *parts[3];
	int np = 0;
	for (char *q = cp; np < 3;) {
		parts[np++] = q;
		char *col = strchr(q, ':');
		if (!col)
			break;
		*col = '\0';
		q = col + 1;
		if (np == 3)
			return false;
	}
	if (np < 2)
		return false;
	long long hp, cport;
	const char *hs = parts[np - 2], *cs = parts[np - 1];
	if (*hs < '0' || *hs > '9' || *cs < '0' || *cs > '9' || parse_int(hs, 1, 65535, &hp) < 0 ||
	    parse_int(cs, 1, 65535, &cport) < 0)
		return false;
	if (np == 3) {
		uint32_t a;
		if (!parse_ipv4(parts[0], &a))
			return false;
		p->ip = xstrdup(parts[0]);
	}
	p->host_port = (int)hp;
	p->ctr_port = (int)cport;
	return true;
}

void spec_r_publish(struct vctx *c, struct ctr_parse *cp, const struct sexp *x)
{
	struct ctr_spec *ct = cp->ct;
	if (!chk_list(c, ":publish", x, "a list of \"HOST:CONTAINER\" port strings")) {
		cp->bad = true;
		return;
	}
	size_t n = x->type == SEXP_LIST ? x->n : 0;
	ct->publish = xcalloc(n + 1, sizeof(*ct->publish));
	for (size_t i = 0; i < n; i++) {
		const struct sexp *it = x->items[i];
		struct ctr_publish p = {0};
		if (it->type != SEXP_STRING || !parse_publish1(it->str, &p)) {
			ctr_publish_release(&p);
			vexpect(c, ":publish", it,
				"a port mapping \"HOST:CONTAINER\" or \"IP:HOST:CONTAINER\", "
				"optionally with /tcp or /udp, like \"8080:80\"");
			cp->bad = true;
			continue;
		}
		bool dup = false;
		for (size_t j = 0; j < ct->npublish; j++) {
			const struct ctr_publish *o = &ct->publish[j];
			if (o->host_port == p.host_port && o->udp == p.udp &&
			    (!o->ip || !p.ip || strcmp(o->ip, p.ip) == 0))
				dup = true;
		}
		if (dup) {
			verr(c, it, ":publish: host port %d/%s is published twice", p.host_port,
			     p.udp ? "udp" : "tcp");
			ctr_publish_release(&p);
			cp->bad = true;
			continue;
		}
		ct->publish[ct->npublish++] = p;
	}
}

/* ---- :storage, :snapshots, :ingress, :tls ---- */

static const char *const storage_keys[] = {"quota", "reservation", "compression", "recordsize",
					   NULL};

static void storage_key(struct vctx *c, void *obj, int key, const struct sexp *v,
			const struct sexp *k)
{
	struct ctr_parse *cp = obj;
	struct ctr_spec *ct = cp->ct;
	bool ok = true;
	switch (key) {
	case 0:
		ok = chk_size(c, ":storage :quota", v, &ct->storage_quota);
		break;
	case 1:
		ok = chk_size(c, ":storage :reservation", v, &ct->storage_reservation);
		break;
	case 2:
		if (v->type != SEXP_SYMBOL || !ctr_compression_ok(v->str)) {
			vexpect(c, ":storage :compression", v,
				"a compression symbol: on, off, lz4, zstd, zstd-N, gzip, gzip-N, "
				"zle or lzjb");
			ok = false;
		} else {
			ct->storage_compression = xstrdup(v->str);
		}
		break;
	case 3:
		ok = chk_size(c, ":storage :recordsize", v, &ct->storage_recordsize);
		if (ok && (ct->storage_recordsize < 512 || ct->storage_recordsize > (16 << 20) ||
			   (ct->storage_recordsize & (ct->storage_recordsize - 1)))) {
			verr(c, v, ":storage :recordsize: expected a power of two from 512 to 16M");
			ok = false;
		}
		break;
	}
	if (!ok)
		cp->bad = true;
}

static const char *const snap_keys[] = {"every", "keep", NULL};

static void snap_key(struct vctx *c, void *obj, int key, const struct sexp *v, const struct sexp *k)
{
	struct ctr_parse *cp = obj;
	long long n;
	if (key == 0) {
		if (!chk_duration(c, ":snapshots :every", v, &cp->ct->snap_every_ns))
			cp->bad = true;
		else if (cp->ct->snap_every_ns < 10LL * 1000000000) {
			verr(c, v, ":snapshots :every: expected at least 10s");
			cp->bad = true;
		}
	} else if (!chk_int(c, ":snapshots :keep", v, 1, 10000, &n)) {
		cp->bad = true;
	} else {
		cp->ct->snap_keep = (int)n;
	}
}

static const char *const ingress_keys[] = {"websocket", "max-body", NULL};

static void ingress_key(struct vctx *c, void *obj, int key, const struct sexp *v,
			const struct sexp *k)
{
	struct ctr_parse *cp = obj;
	bool ok = key == 0 ? chk_bool(c, ":ingress :websocket", v, &cp->ct->ingress_websocket)
			   : chk_size(c, ":ingress :max-body", v, &cp->ct->ingress_max_body);
	if (!ok)
		cp->bad = true;
}

static const char *const tls_keys[] = {"cert", "key", NULL};

static void tls_key(struct vctx *c, void *obj, int key, const struct sexp *v, const struct sexp *k)
{
	struct ctr_parse *cp = obj;
	bool ok = key == 0 ? chk_abs_path(c, ":tls :cert", v, &cp->ct->tls_cert)
			   : chk_abs_path(c, ":tls :key", v, &cp->ct->tls_key);
	if (!ok)
		cp->bad = true;
}

static bool sub_plist(struct vctx *c, struct ctr_parse *cp, const char *key, const struct sexp *x,
		      const char *example)
{
	if (x->type != SEXP_LIST || x->tail) {
		vexpect(c, key, x, example);
		cp->bad = true;
		return false;
	}
	return true;
}

/* ---- :entrypoint, :labels, :cap-add, :cap-drop, :sysctls, :devices ---- */

void spec_r_entrypoint(struct vctx *c, struct ctr_parse *cp, const struct sexp *v)
{
	/* "" or () clears the image's ENTRYPOINT, as docker --entrypoint "" does. */
	if (v->type == SEXP_STRING && !*v->str) {
		cp->ct->entrypoint = xcalloc(1, sizeof(char *));
		return;
	}
	if (!chk_strings(c, ":entrypoint", v, 0, &cp->ct->entrypoint))
		cp->bad = true;
}

static int kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct conf_kv *)a)->key, ((const struct conf_kv *)b)->key);
}

typedef bool (*pair_ok_fn)(const char *key, const char *value, char *why, size_t n);

/*
 * A list of ("KEY" . "VALUE") or ("KEY" "VALUE") pairs (the second is what
 * a compose file's list reads as), each checked by ok; sorted by key.
 */
static void read_pairs(struct vctx *c, struct ctr_parse *cp, const char *key, const struct sexp *x,
		       pair_ok_fn ok, struct conf_kv **out, size_t *nout)
{
	if (!chk_list(c, key, x, "a list of (\"KEY\" . \"value\") pairs")) {
		cp->bad = true;
		return;
	}
	size_t cnt = x->type == SEXP_LIST ? x->n : 0;
	struct conf_kv *v = xcalloc(cnt + 1, sizeof(*v));
	const struct sexp **where = xcalloc(cnt + 1, sizeof(*where));
	size_t got = 0;
	bool bad = false;
	for (size_t i = 0; i < cnt; i++) {
		const struct sexp *p = x->items[i];
		const struct sexp *val = NULL;
		if (p->type == SEXP_LIST && p->n == 1 && p->tail)
			val = p->tail;
		else if (p->type == SEXP_LIST && p->n == 2 && !p->tail)
			val = p->items[1];
		if (!val || p->items[0]->type != SEXP_STRING ||
		    (val->type != SEXP_STRING && val->type != SEXP_INT)) {
			vexpect(c, key, p, "a (\"KEY\" . \"value\") pair of strings");
			bad = true;
			continue;
		}
		const char *k = p->items[0]->str;
		autofree char *value = val->type == SEXP_INT ? xasprintf("%lld", (long long)val->i)
							     : xstrdup(val->str);
		char why[300];
		if (!ok(k, value, why, sizeof(why))) {
			verr(c, p->items[0], "%s: %s", key, why);
			bad = true;
			continue;
		}
		bool dup = false;
		for (size_t j = 0; j < got && !dup; j++)
			if (strcmp(v[j].key, k) == 0) {
				verr(c, p->items[0],
				     "%s: duplicate name \"%s\"; first given at %d:%d", key, k,
				     where[j]->line, where[j]->col);
				dup = true;
			}
		if (dup) {
			bad = true;
			continue;
		}
		where[got] = p->items[0];
		v[got].key = xstrdup(k);
		v[got].value = steal_ptr(&value);
		got++;
	}
	free(where);
	if (bad || !got) {
		conf_kvs_free(v, got);
		cp->bad |= bad;
		return;
	}
	qsort(v, got, sizeof(*v), kv_cmp);
	*out = v;
	*nout = got;
}

void spec_r_labels(struct vctx *c, struct ctr_parse *cp, const struct sexp *v)
{
	read_pairs(c, cp, ":labels", v, ctr_label_ok, &cp->ct->labels, &cp->ct->nlabels);
}

void spec_r_sysctls(struct vctx *c, struct ctr_parse *cp, const struct sexp *v)
{
	cp->sysctls_at = v;
	read_pairs(c, cp, ":sysctls", v, ctr_sysctl_ok, &cp->ct->sysctls, &cp->ct->nsysctls);
}

static void read_caps(struct vctx *c, struct ctr_parse *cp, const char *key, const struct sexp *x,
		      char ***out)
{
	const struct sexp *const *items = &x;
	size_t n = 1;
	if (x->type == SEXP_LIST) {
		if (!chk_list(c, key, x, "a list of capability names like (net_admin)")) {
			cp->bad = true;
			return;
		}
		items = (const struct sexp *const *)x->items;
		n = x->n;
	}
	struct strv sv = STRV_INIT;
	for (size_t i = 0; i < n; i++) {
		const struct sexp *it = items[i];
		char *name = NULL;
		bool str = it->type == SEXP_STRING || it->type == SEXP_SYMBOL;
		if (!str || ctr_cap_parse(it->str, &name) < 0) {
			if (str)
				verr(c, it,
				     "%s: unknown capability \"%.80s\"; expected a name like "
				     "net_admin or sys_time (capabilities(7), without CAP_), or "
				     "all",
				     key, it->str);
			else
				vexpect(c, key, it, "a capability name like net_admin");
			cp->bad = true;
			continue;
		}
		bool dup = false;
		for (size_t j = 0; j < sv.n; j++)
			dup |= strcmp(sv.v[j], name) == 0;
		if (dup)
			free(name);
		else
			strv_push_owned(&sv, name);
	}
	if (!sv.n || cp->bad) {
		strv_release(&sv);
		return;
	}
	qsort(sv.v, sv.n, sizeof(char *), str_cmp);
	*out = sv.v;
}

void spec_r_cap_add(struct vctx *c, struct ctr_parse *cp, const struct sexp *v)
{
	read_caps(c, cp, ":cap-add", v, &cp->ct->cap_add);
}

void spec_r_cap_drop(struct vctx *c, struct ctr_parse *cp, const struct sexp *v)
{
	read_caps(c, cp, ":cap-drop", v, &cp->ct->cap_drop);
}

void spec_r_devices(struct vctx *c, struct ctr_parse *cp, const struct sexp *x)
{
	if (!chk_list(c, ":devices", x, "a list of devices like (\"/dev/net/tun\")")) {
		cp->bad = true;
		return;
	}
	struct ctr_spec *ct = cp->ct;
	size_t n = x->type == SEXP_LIST ? x->n : 0;
	if (!n)
		return;
	struct ctr_device *d = xcalloc(n, sizeof(*d));
	size_t got = 0;
	for (size_t i = 0; i < n; i++) {
		const struct sexp *it = x->items[i];
		char why[300];
		if (it->type != SEXP_STRING) {
			vexpect(c, ":devices", it, "a device like \"/dev/net/tun\"");
			cp->bad = true;
			continue;
		}
		if (ctr_device_parse(it->str, &d[got], why, sizeof(why)) < 0) {
			verr(c, it, ":devices: %s", why);
			cp->bad = true;
			continue;
		}
		bool dup = false;
		for (size_t j = 0; j < got && !dup; j++)
			dup = strcmp(d[j].path, d[got].path) == 0;
		if (dup) {
			verr(c, it, ":devices: %s is given twice inside the container",
			     d[got].path);
			ctr_device_release(&d[got]);
			cp->bad = true;
			continue;
		}
		got++;
	}
	ct->devices = d;
	ct->ndevices = got;
}

/* ---- the form ---- */

/* A POSIX portable user or group name, or a number: the n bytes at p. */
static bool portable_name(const char *p, size_t n)
{
	if (n == 0 || n > 32)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = p[i];
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' ||
			  (i > 0 && ch == '-');
		if (!ok)
			return false;
	}
	return true;
}

bool ctr_user_ok(const char *s)
{
	/* "UID[:GID]" or "name[:group]" with POSIX portable names. */
	if (!*s || strlen(s) > 65)
		return false;
	const char *colon = strchr(s, ':');
	if (!colon)
		return portable_name(s, strlen(s));
	return portable_name(s, (size_t)(colon - s)) && portable_name(colon + 1, strlen(colon + 1));
}

/* ---- one function per key (the table's read column, spec_keys.c) ---- */

void spec_r_kind(struct vctx *c, struct ctr_parse *cp, const struct sexp *v)
{
	if (is_sym(v, "native"))
		cp->ct->kind = CTR_KIND_NATIVE;
	else if (is_sym(v, "docker"))
		cp->ct->kind = CTR_KIND_DOCKER;
	else {
		vexpect(c, ":kind", v, "native or docker");
		cp->bad = true;
	}
}

void spec_r_image(struct vctx *c, struct ctr_parse *cp, const struct sexp *v)
{
	cp->image_seen = true;
	if (v->type != SEXP_STRING && v->type != SEXP_SYMBOL) {
		vexpect(c, ":image", v, "an image reference like \"web\" or \"forge:latest\"");
		cp->bad = true;
	} else if (!valid_image_ref(v->str)) {
		verr(c, v,
		     ":image: invalid image reference \"%.80s\"; expected name[:tag] with a "
		     "lowercase name, like \"forge:latest\"",
		     v->str);
		cp->bad = true;
	} else {
		cp->ct->image = xstrdup(v->str);
	}
}

void spec_r_command(struct vctx *c, struct ctr_parse *cp, const struct sexp *v)
{
	if (!chk_strings(c, ":command", v, 1, &cp->ct->command))
		cp->bad = true;
}

void spec_r_env(struct vctx *c, struct ctr_parse *cp, const struct sexp *v)
{
	if (!chk_pairs(c, ":env", v, &cp->ct->env, &cp->ct->nenv))
		cp->bad = true;
}

void spec_r_workdir(struct vctx *c, struct ctr_parse *cp, const struct sexp *v)
{
	if (!chk_abs_path(c, ":workdir", v, &cp->ct->workdir))
		cp->bad = true;
}

void spec_r_user(struct vctx *c, struct ctr_parse *cp, const struct sexp *v)
{
	if (v->type == SEXP_INT && v->i >= 0 && v->i <= 4294967294LL) {
		cp->ct->user = xasprintf("%lld", (long long)v->i);
	} else if (v->type != SEXP_STRING || !ctr_user_ok(v->str)) {
		vexpect(c, ":user", v,
			"a user: \"UID[:GID]\" or a name, like \"1000:1000\" or \"www-data\"");
		cp->bad = true;
	} else {
		cp->ct->user = xstrdup(v->str);
	}
}

void spec_r_hostname(struct vctx *c, struct ctr_parse *cp, const struct sexp *v)
{
	free(cp->ct->hostname);
	cp->ct->hostname = NULL;
	if (!chk_hostname(c, ":hostname", v, &cp->ct->hostname))
		cp->bad = true;
}

void spec_r_tty(struct vctx *c, struct ctr_parse *cp, const struct sexp *v)
{
	if (!chk_bool(c, ":tty", v, &cp->ct->tty))
		cp->bad = true;
}

void spec_r_stop_signal(struct vctx *c, struct ctr_parse *cp, const struct sexp *v)
{
	int sig = 0;
	autofree char *num = v->type == SEXP_INT ? xasprintf("%lld", (long long)v->i) : NULL;
	const char *s = v->type == SEXP_INT				   ? num
			: v->type == SEXP_STRING || v->type == SEXP_SYMBOL ? v->str
									   : NULL;
	if (!s || ctr_signal_parse(s, &sig) < 0) {
		vexpect(c, ":stop-signal", v, "a signal like \"SIGTERM\", \"TERM\" or 15");
		cp->bad = true;
		return;
	}
	/* SIGTERM is the default: written or not, the same container. */
	cp->ct->stop_signal = sig == 15 ? 0 : sig;
}

void spec_r_userns(struct vctx *c, struct ctr_parse *cp, const struct sexp *v)
{
	if (is_sym(v, "auto")) {
		cp->ct->userns = CTR_USERNS_AUTO;
	} else if (is_sym(v, "host")) {
		cp->ct->userns = CTR_USERNS_HOST;
	} else {
		vexpect(c, ":userns", v,
			"auto (a private range of host ids) or host (the host's ids)");
		cp->bad = true;
	}
}

void spec_r_limits(struct vctx *c, struct ctr_parse *cp, const struct sexp *v)
{
	if (sub_plist(c, cp, ":limits", v, "limits like (:memory \"256M\" :cpus 0.5 :pids 128)"))
		walk_plist(c, v, 0, limit_keys, ":limits", limit_key, cp);
}

void spec_r_state(struct vctx *c, struct ctr_parse *cp, const struct sexp *v)
{
	if (is_sym(v, "running"))
		cp->ct->state = CTR_DESIRED_RUNNING;
	else if (is_sym(v, "stopped"))
		cp->ct->state = CTR_DESIRED_STOPPED;
	else {
		vexpect(c, ":state", v, "running or stopped");
		cp->bad = true;
	}
}

void spec_r_domain(struct vctx *c, struct ctr_parse *cp, const struct sexp *v)
{
	parse_names(c, cp, ":domain", v, false, &cp->ct->domains);
}

void spec_r_port(struct vctx *c, struct ctr_parse *cp, const struct sexp *v)
{
	if (!chk_port(c, ":port", v, &cp->ct->port))
		cp->bad = true;
}

void spec_r_path(struct vctx *c, struct ctr_parse *cp, const struct sexp *v)
{
	char why[200];
	if (v->type != SEXP_STRING) {
		vexpect(c, ":path", v, "a URL path like \"/\" or \"/app\"");
		cp->bad = true;
	} else if (!valid_url_path_check(v->str, why, sizeof(why))) {
		verr(c, v, ":path: %s", why);
		cp->bad = true;
	} else {
		free(cp->ct->path);
		cp->ct->path = xstrdup(v->str);
	}
}

void spec_r_ip(struct vctx *c, struct ctr_parse *cp, const struct sexp *v)
{
	uint32_t a;
	if (v->type != SEXP_STRING || !parse_ipv4(v->str, &a)) {
		vexpect(c, ":ip", v, "an IPv4 address like \"10.88.0.10\"");
		cp->bad = true;
	} else {
		cp->ct->ip = xstrdup(v->str);
	}
}

void spec_r_aliases(struct vctx *c, struct ctr_parse *cp, const struct sexp *v)
{
	parse_names(c, cp, ":aliases", v, true, &cp->ct->aliases);
}

void spec_r_storage(struct vctx *c, struct ctr_parse *cp, const struct sexp *v)
{
	if (sub_plist(c, cp, ":storage", v, "storage options like (:quota \"10G\")"))
		walk_plist(c, v, 0, storage_keys, ":storage", storage_key, cp);
}

void spec_r_snapshots(struct vctx *c, struct ctr_parse *cp, const struct sexp *v)
{
	if (!sub_plist(c, cp, ":snapshots", v, "a schedule like (:every \"1d\" :keep 7)"))
		return;
	walk_plist(c, v, 0, snap_keys, ":snapshots", snap_key, cp);
	if (!cp->bad && (!cp->ct->snap_every_ns || !cp->ct->snap_keep)) {
		verr(c, v, ":snapshots: expected both :every and :keep");
		cp->bad = true;
	}
}

void spec_r_backup(struct vctx *c, struct ctr_parse *cp, const struct sexp *v)
{
	if (!ctr_backup_read(c, ":backup", v, &cp->ct->backup))
		cp->bad = true;
}

void spec_r_snap_before(struct vctx *c, struct ctr_parse *cp, const struct sexp *v)
{
	if (!chk_bool(c, ":snapshot-before-change", v, &cp->ct->snapshot_before_change))
		cp->bad = true;
}

/* ---- :integrity ---- */

static const char *const integrity_keys[] = {"every", "exclude", "include", "on-drift", NULL};

static int path_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* :exclude or :include (what): absolute paths, sorted and unique into *out (NULL: none). */
static bool read_paths(struct vctx *c, const char *what, const struct sexp *v, char ***out)
{
	if (!chk_list(c, what, v, "a list of absolute paths like (\"/var/log\")"))
		return false;
	size_t n = v->type == SEXP_LIST ? v->n : 0;
	char **paths = xcalloc(n + 1, sizeof(char *));
	size_t k = 0;
	bool ok = true;
	for (size_t i = 0; i < n; i++) {
		char *p = NULL;
		if (!chk_abs_path(c, what, v->items[i], &p)) {
			ok = false;
			continue;
		}
		paths[k++] = p;
	}
	qsort(paths, k, sizeof(char *), path_cmp);
	size_t u = 0;
	for (size_t i = 0; i < k; i++) {
		if (u && strcmp(paths[u - 1], paths[i]) == 0)
			free(paths[i]);
		else
			paths[u++] = paths[i];
	}
	paths[u] = NULL;
	strv_free(*out);
	*out = NULL;
	if (!ok || u == 0) {
		strv_free(paths);
		return ok;
	}
	*out = paths;
	return true;
}

static void integrity_key(struct vctx *c, void *obj, int key, const struct sexp *v,
			  const struct sexp *k)
{
	struct ctr_parse *cp = obj;
	struct ctr_spec *ct = cp->ct;
	bool ok = true;
	if (key == 0) {
		ok = chk_duration(c, ":integrity :every", v, &ct->integrity_every_ns);
		if (ok && ct->integrity_every_ns < 1000000000LL) {
			verr(c, v, ":integrity :every: expected at least 1s");
			ok = false;
		}
	} else if (key == 1) {
		ok = read_paths(c, ":integrity :exclude", v, &ct->integrity_exclude);
	} else if (key == 2) {
		ok = read_paths(c, ":integrity :include", v, &ct->integrity_include);
	} else {
		ok = parse_cmd(c, ":integrity :on-drift", v, &ct->integrity_on_drift);
	}
	if (!ok)
		cp->bad = true;
}

void spec_r_integrity(struct vctx *c, struct ctr_parse *cp, const struct sexp *v)
{
	if (!sub_plist(c, cp, ":integrity", v,
		       "integrity checks like (:every \"1h\" :exclude (\"/var/log\") :include "
		       "(\"/data\") :on-drift CMD)"))
		return;
	cp->ct->integrity_set = true;
	walk_plist(c, v, 0, integrity_keys, ":integrity", integrity_key, cp);
	const char *both = cp->bad ? NULL : ctr_integrity_both(cp->ct);
	if (both) {
		verr(c, v,
		     ":integrity: %s is in both :exclude and :include; name it in one of them",
		     both);
		cp->bad = true;
	}
	if (!cp->bad && cp->ct->integrity_on_drift.argv && !cp->ct->integrity_every_ns) {
		verr(c, v, ":integrity: :on-drift needs :every (a schedule to run it on)");
		cp->bad = true;
	}
}

void spec_r_ingress(struct vctx *c, struct ctr_parse *cp, const struct sexp *v)
{
	if (sub_plist(c, cp, ":ingress", v, "ingress options like (:websocket t)"))
		walk_plist(c, v, 0, ingress_keys, ":ingress", ingress_key, cp);
}

void spec_r_tls(struct vctx *c, struct ctr_parse *cp, const struct sexp *v)
{
	if (!sub_plist(c, cp, ":tls", v, "(:cert \"/path/cert.pem\" :key \"/path/key.pem\")"))
		return;
	walk_plist(c, v, 0, tls_keys, ":tls", tls_key, cp);
	if (!cp->bad && (!cp->ct->tls_cert || !cp->ct->tls_key)) {
		verr(c, v, ":tls: expected both :cert and :key");
		cp->bad = true;
	}
}

/* ---- the form ---- */

static void ctr_key(struct vctx *c, void *obj, int key, const struct sexp *v, const struct sexp *k)
{
	const size_t *rows;
	ctr_form_names(&rows);
	ctr_keys[rows[key]].read(c, obj, v);
}

/* What needs every key read: defaults that follow others, and checks across keys. */
static void finish(struct vctx *c, struct ctr_parse *cp, const struct sexp *name_node)
{
	struct ctr_spec *ct = cp->ct;
	if (!cp->image_seen) {
		verr(c, name_node, "missing :image (the image to run, like :image \"forge\")");
		cp->bad = true;
	}
	if (cp->health_http_port) {
		if (ct->port)
			ct->health.port = ct->port;
		else {
			verr(c, cp->health_http_port,
			     ":health :http: no port to probe; give :port in the check or the "
			     "container");
			cp->bad = true;
		}
	}
	if (cp->sysctls_at && ct->netmode_given && ct->netmode == CTR_NET_HOST &&
	    ctr_sysctls_need_netns(ct->sysctls, ct->nsysctls)) {
		verr(c, cp->sysctls_at,
		     ":sysctls: net.* sysctls need the container's own network namespace, but "
		     ":network is host");
		cp->bad = true;
	}
	if ((ct->ingress_websocket || ct->ingress_max_body || ct->tls_cert) && !ct->domains &&
	    !cp->bad) {
		verr(c, name_node, ":ingress and :tls need a :domain to route");
		cp->bad = true;
	}
}

struct ctr_spec *ctr_spec_read_form(struct vctx *c, const struct sexp *form,
				    const struct sexp *name_node, char *name)
{
	struct ctr_spec *ct = xcalloc(1, sizeof(*ct));
	ct->name = name;
	ct->snapshot_before_change = true; /* a bad change is one `clbsd undo` away */
	ct->pos = (struct conf_pos){name_node->file, name_node->line, name_node->col};
	struct ctr_parse cp = {.ct = ct};
	walk_plist(c, form, 2, ctr_form_names(NULL), "", ctr_key, &cp);
	finish(c, &cp, name_node);
	if (cp.bad) {
		ctr_spec_free(ct);
		return NULL;
	}
	if (!ct->hostname)
		ct->hostname = xstrdup(ct->name);
	if (!ct->path)
		ct->path = xstrdup("/");
	if (!ct->depends_on) {
		ct->depends_on = xcalloc(1, sizeof(char *));
		ct->depends_pos = xcalloc(1, sizeof(struct conf_pos));
	}
	return ct;
}
