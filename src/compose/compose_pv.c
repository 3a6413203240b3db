/*
 * A service's ports (ports, expose) and volumes (named, bind, tmpfs; short
 * and long syntax): the two keys whose values are small languages of their
 * own. Called from the service key table in compose_svc.c.
 */
#include "compose/compose_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- ports ---- */

static bool port_range(const char *s, long long *a, long long *b)
{
	const char *dash = strchr(s, '-');
	if (!dash)
		return parse_int(s, 1, 65535, a) == 0 && (*b = *a, true);
	autofree char *lo = xstrndup(s, (size_t)(dash - s));
	return parse_int(lo, 1, 65535, a) == 0 && parse_int(dash + 1, 1, 65535, b) == 0 && *b >= *a;
}

static void publish_one(struct ctx *c, const yaml_node_t *at, const char *key, const char *ip,
			long long host, long long ctr, bool udp, struct strv *out)
{
	if (ip && strchr(ip, ':')) {
		cx_warn(c, at, key,
			"host address %s: the configuration publishes on IPv4 addresses; "
			"left out",
			ip);
		return;
	}
	autofree char *s = xasprintf("%s%s%lld:%lld/%s", ip ? ip : "", ip ? ":" : "", host, ctr,
				     udp ? "udp" : "tcp");
	struct net_port np;
	struct clbsd_err err;
	if (net_port_parse(s, &np, &err) < 0) {
		cx_warn(c, at, key, "%s: %s; left out", s, err.msg);
		return;
	}
	autofree char *pp = xasprintf("%lld/%s", host, udp ? "udp" : "tcp");
	for (size_t i = 0; i < c->published.n; i++) {
		const char *bar = strchr(c->published.v[i], '|');
		bool wild = !strncmp(c->published.v[i], "*|", 2);
		bool same_ip = ip &&
			       !strncmp(c->published.v[i], ip, (size_t)(bar - c->published.v[i])) &&
			       strlen(ip) == (size_t)(bar - c->published.v[i]);
		if (!strcmp(bar + 1, pp) && (wild || !ip || same_ip)) {
			cx_warn(c, at, key, "host port %s is published twice; this one is left out",
				pp);
			return;
		}
	}
	autofree char *id = xasprintf("%s|%s", ip ? ip : "*", pp);
	strv_push(&c->published, id);
	strv_push(out, s);
}

static void port_entry(struct ctx *c, const yaml_node_t *at, const char *key, const char *ip,
		       const char *hostp, const char *ctrp, const char *proto, struct strv *out)
{
	bool udp = proto && !strcmp(proto, "udp");
	if (proto && strcmp(proto, "udp") && strcmp(proto, "tcp")) {
		cx_warn(c, at, key, "protocol %s: clbsd publishes tcp and udp; left out", proto);
		return;
	}
	long long c0, c1, h0, h1;
	if (!port_range(ctrp, &c0, &c1)) {
		cx_warn(c, at, key, "\"%s\" is not a port or a range of them; left out", ctrp);
		return;
	}
	if (!hostp || !*hostp) {
		cx_warn(c, at, key,
			"container port %s has no host port (Compose picks a free one; clbsd needs "
			"HOST:CONTAINER); not published, other services still reach it",
			ctrp);
		return;
	}
	if (!port_range(hostp, &h0, &h1)) {
		cx_warn(c, at, key, "\"%s\" is not a port or a range of them; left out", hostp);
		return;
	}
	if (h1 - h0 != c1 - c0) {
		if (c0 == c1) {
			cx_warn(c, at, key, "host range %s for one port: %lld is used", hostp, h0);
			h1 = h0;
		} else {
			cx_warn(c, at, key, "ranges %s and %s differ in length; left out", hostp,
				ctrp);
			return;
		}
	}
	for (long long i = 0; i <= c1 - c0; i++)
		publish_one(c, at, key, ip, h0 + i, c0 + i, udp, out);
}

void cx_k_ports(struct ctx *c, const yaml_node_t *v, const char *key)
{
	if (!cx_is_seq(v)) {
		cx_warn(c, v, key, "expected a list; not translated");
		return;
	}
	struct strv out = STRV_INIT;
	for (size_t i = 0; i < cx_seq_len(v); i++) {
		const yaml_node_t *it = cx_seq_at(c, v, i);
		if (c->netmode_host || c->netmode_none) {
			cx_warn(c, it, key, "%s",
				c->netmode_host
					? "network_mode is host: the ports are the host's; left out"
					: "network_mode is none: nothing to publish; left out");
			continue;
		}
		if (cx_is_map(it)) {
			/* mode host is what clbsd does (ingress is Swarm's routing mesh). */
			static const char *const pk[] = {"target",   "published", "host_ip",
							 "protocol", "mode",	  NULL};
			cx_unknown_keys(c, it, "ports", pk);
			const yaml_node_t *t = cx_map_get(c, it, "target"),
					  *p = cx_map_get(c, it, "published");
			const yaml_node_t *h = cx_map_get(c, it, "host_ip"),
					  *pr = cx_map_get(c, it, "protocol");
			autofree char *ts = t ? cx_str(c, t, key) : NULL;
			autofree char *ps = p ? cx_str(c, p, key) : NULL;
			autofree char *hs = h ? cx_str(c, h, key) : NULL;
			autofree char *prs = pr ? cx_str(c, pr, key) : NULL;
			if (!ts) {
				cx_warn(c, it, key, "no target port; left out");
				continue;
			}
			/* 0.0.0.0 is every address, what no address says. */
			bool any = !hs || !*hs || !strcmp(hs, "0.0.0.0");
			port_entry(c, it, key, any ? NULL : hs, ps, ts, prs, &out);
			continue;
		}
		autofree char *s = cx_str(c, it, key);
		if (!s)
			continue;
		char *proto = strchr(s, '/');
		if (proto)
			*proto++ = '\0';
		char *ip = NULL, *rest = s;
		if (*s == '[') {
			char *e = strstr(s, "]:");
			if (!e) {
				cx_warn(c, it, key,
					"\"%s\": expected [IPv6]:HOST:CONTAINER; left out", s);
				continue;
			}
			*e = '\0';
			ip = s + 1;
			rest = e + 2;
		}
		char *parts[3] = {0};
		size_t np = 0;
		for (char *p = rest, *q; np < 3; p = q + 1) {
			parts[np++] = p;
			if (!(q = strchr(p, ':')))
				break;
			*q = '\0';
		}
		if (np == 3 && ip) {
			cx_warn(c, it, key, "\"%s\": too many parts; left out", cx_raw(it));
			continue;
		}
		if (np == 3)
			port_entry(c, it, key,
				   *parts[0] && strcmp(parts[0], "0.0.0.0") ? parts[0] : NULL,
				   parts[1], parts[2], proto, &out);
		else if (np == 2)
			port_entry(c, it, key, ip, parts[0], parts[1], proto, &out);
		else
			port_entry(c, it, key, ip, NULL, parts[0], proto, &out);
	}
	if (out.n)
		cx_key_strs(c, ":publish", out.v);
	strv_release(&out);
}

void cx_k_expose(struct ctx *c, const yaml_node_t *v, const char *key)
{
	char **l = cx_strs(c, v, key);
	buf_adds(&c->notes, ";; ");
	cx_comment(&c->notes, c->svc);
	buf_adds(&c->notes, ": expose");
	for (size_t i = 0; l && l[i]; i++) {
		buf_addc(&c->notes, ' ');
		cx_comment(&c->notes, l[i]);
	}
	buf_adds(&c->notes,
		 ": nothing to translate, containers on its networks reach every port\n");
	strv_free(l);
}

/* ---- volumes ---- */

static const char *vol_name(struct ctx *c, const char *yname, const yaml_node_t *at)
{
	/* A top-level `name:` of the volume wins, as in Compose. */
	const yaml_node_t *decl = c->top_vols ? cx_map_get(c, c->top_vols, yname) : NULL;
	const yaml_node_t *nn = cx_is_map(decl) ? cx_map_get(c, decl, "name") : NULL;
	autofree char *given = nn ? cx_str(c, nn, "volumes.name") : NULL;
	autofree char *l = cx_label(given ? given : yname);
	if (!l)
		return NULL;
	for (size_t i = 0; i < c->nvols; i++)
		if (!strcmp(c->vols[i].name, l))
			return c->vols[i].name;
	c->vols = xrealloc(c->vols, (c->nvols + 1) * sizeof(*c->vols));
	c->vols[c->nvols] = (struct vol_use){.name = steal_ptr(&l), .at = at};
	strv_init(&c->vols[c->nvols].svcs);
	return c->vols[c->nvols++].name;
}

static void vol_used(struct ctx *c, const char *name)
{
	for (size_t i = 0; i < c->nvols; i++)
		if (!strcmp(c->vols[i].name, name)) {
			struct strv *s = &c->vols[i].svcs;
			for (size_t j = 0; j < s->n; j++)
				if (!strcmp(s->v[j], c->svc))
					return;
			strv_push(s, c->svc);
		}
}

static bool target_ok(const char *p)
{
	static const char *const kernel[] = {"/proc", "/sys", "/dev"};
	if (!cx_path_ok(p) || !strcmp(p, "/"))
		return false;
	for (size_t i = 0; i < 3; i++) {
		size_t n = strlen(kernel[i]);
		if (!strncmp(p, kernel[i], n) && (p[n] == '/' || !p[n]))
			return false;
	}
	return true;
}

struct vol_acc {
	struct buf b;
	struct strv paths, datasets;
	int anon;
};

static void vol_add(struct ctx *c, struct vol_acc *a, const yaml_node_t *at, const char *key,
		    const char *type, const char *src, const char *dst, bool ro, bool count)
{
	autofree char *target = dst && dst[0] == '/' ? cx_abs_path("/", dst) : NULL;
	if (!target || !target_ok(target)) {
		cx_warn(c, at, key,
			"target \"%s\" must be an absolute path, not /, /proc, /sys or /dev (the "
			"runtime's); left out",
			dst ? dst : "");
		return;
	}
	for (size_t i = 0; i < a->paths.n; i++)
		if (!strcmp(a->paths.v[i], target)) {
			cx_warn(c, at, key, "%s is mounted twice; the first is kept", target);
			return;
		}
	autofree char *source = NULL;
	if (!strcmp(type, "bind")) {
		if (src[0] == '~' && (src[1] == '/' || !src[1])) {
			const char *home = cx_dotenv_get("HOME", c);
			source = cx_abs_path(home ? home : "/root", src[1] ? src + 2 : ".");
		} else {
			source = cx_abs_path(cx_base_dir(c), src);
		}
		if (!cx_path_ok(source)) {
			cx_warn(c, at, key, "source \"%s\" is not a path clbsd takes; left out",
				src);
			return;
		}
	} else {
		const char *n = NULL;
		if (src && *src)
			n = vol_name(c, src, at);
		else {
			autofree char *anon = xasprintf("anon-%d", ++a->anon);
			n = vol_name(c, anon, at);
			cx_warn(c, at, key,
				"an anonymous volume at %s becomes the named volume %s (it "
				"survives a "
				"recreate, unlike Compose's)",
				target, n);
		}
		if (!n) {
			cx_warn(c, at, key, "volume name \"%s\" has no letter or digit; left out",
				src);
			return;
		}
		for (size_t i = 0; i < a->datasets.n; i++)
			if (!strcmp(a->datasets.v[i], n)) {
				cx_warn(c, at, key,
					"volume %s is mounted twice in one service; clbsd mounts a "
					"named "
					"volume once; the first is kept",
					n);
				return;
			}
		strv_push(&a->datasets, n);
		if (count)
			vol_used(c, n);
		source = xstrdup(n);
	}
	strv_push(&a->paths, target);
	buf_adds(&a->b, a->b.len ? "\n    " : "");
	buf_addf(&a->b, "(:%s ", !strcmp(type, "bind") ? "bind" : "dataset");
	sexp_print_string(&a->b, source);
	buf_adds(&a->b, " :path ");
	sexp_print_string(&a->b, target);
	if (ro)
		buf_adds(&a->b, " :ro t");
	buf_addc(&a->b, ')');
}

static bool bind_like(const char *s)
{
	return s[0] == '/' || s[0] == '.' || s[0] == '~';
}

void cx_k_volumes(struct ctx *c, const yaml_node_t *v, const char *key)
{
	if (!cx_is_seq(v)) {
		cx_warn(c, v, key, "expected a list; not translated");
		return;
	}
	struct vol_acc a = {.b = BUF_INIT, .paths = STRV_INIT, .datasets = STRV_INIT};
	for (size_t i = 0; i < cx_seq_len(v); i++) {
		const yaml_node_t *it = cx_seq_at(c, v, i);
		if (cx_is_map(it)) {
			static const char *const vk[] = {"type", "source", "target", "read_only",
							 NULL};
			cx_unknown_keys(c, it, "volumes", vk);
			const yaml_node_t *tn = cx_map_get(c, it, "type");
			autofree char *type = tn ? cx_str(c, tn, key) : xstrdup("volume");
			autofree char *src = cx_map_get(c, it, "source")
						     ? cx_str(c, cx_map_get(c, it, "source"), key)
						     : NULL;
			autofree char *dst = cx_map_get(c, it, "target")
						     ? cx_str(c, cx_map_get(c, it, "target"), key)
						     : NULL;
			const yaml_node_t *ron = cx_map_get(c, it, "read_only");
			bool ro = ron && cx_is_scalar(ron) && !strcmp(cx_raw(ron), "true");
			if (!type)
				continue;
			if (strcmp(type, "bind") && strcmp(type, "volume")) {
				cx_warn(c, it, key,
					"type %s has no translation (bind and volume do); left out",
					type);
				continue;
			}
			if (!strcmp(type, "bind") && (!src || !*src)) {
				cx_warn(c, it, key, "a bind needs a source; left out");
				continue;
			}
			vol_add(c, &a, it, key, type, src, dst, ro, true);
			continue;
		}
		autofree char *s = cx_str(c, it, key);
		if (!s)
			continue;
		char *parts[4] = {0};
		size_t np = 0;
		for (char *p = s, *q; np < 4; p = q + 1) {
			parts[np++] = p;
			if (!(q = strchr(p, ':')))
				break;
			*q = '\0';
		}
		if (np > 3) {
			cx_warn(c, it, key, "expected SOURCE:TARGET[:MODE]; left out");
			continue;
		}
		bool ro = false;
		if (np == 3) {
			autofree char *modes = xstrdup(parts[2]);
			char *save = NULL;
			for (char *m = strtok_r(modes, ",", &save); m;
			     m = strtok_r(NULL, ",", &save)) {
				if (!strcmp(m, "ro"))
					ro = true;
				else if (strcmp(m, "rw") != 0)
					cx_warn(c, it, key, "mode %s has no translation; ignored",
						m);
			}
		}
		if (np == 1)
			vol_add(c, &a, it, key, "volume", NULL, parts[0], ro, true);
		else
			vol_add(c, &a, it, key, bind_like(parts[0]) ? "bind" : "volume", parts[0],
				parts[1], ro, true);
	}
	if (a.b.len)
		buf_addf(&c->f, "\n  :volumes (%s)", a.b.data);
	buf_release(&a.b);
	strv_release(&a.paths);
	strv_release(&a.datasets);
}
