/*
 * The translator: a compose file's YAML document (libyaml) walked key by
 * key into (network ...), (image ...) and (container ...) forms. Each key a
 * service may have is one function in the `skeys` table below; a key not in
 * it, or a value that does not translate, is a warning line naming the
 * file, line and column (libyaml's marks), the service and the key.
 *
 * Choices (docs/compose.md says them to the user):
 * - Every service joins the project's networks as Compose's do: the ones
 *   it names, or a network "<project>-default" made for those that name
 *   none, so services reach each other by name without a host :network.
 * - Named volumes are clbsd named volumes (datasets on zfs) owned by the
 *   container; one a file shares between services becomes one per service,
 *   said on a warning.
 * - The container's name is the service's (or its container_name), as a
 *   DNS label.
 */
#include "compose/compose_int.h"
#include "core/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* ---- the file ---- */

/* The service (its name in the file) whose container is called name, or NULL. */
static const char *name_taken(struct ctx *c, const char *name)
{
	if (!strcmp(name, "ingress"))
		return "clbsd's routing container (a reserved name)";
	for (size_t j = 0; j < c->nsvcs; j++)
		if (!strcmp(c->svcs[j].name, name))
			return c->svcs[j].yname;
	return NULL;
}

/* First pass: the services' container names (unique labels) and health. */
static void names(struct ctx *c, const yaml_node_t *services)
{
	autofree struct kvp *p = NULL;
	size_t n = cx_map_pairs(c, services, &p);
	c->svcs = xcalloc(n + 1, sizeof(*c->svcs));
	for (size_t i = 0; i < n; i++) {
		const char *yn = cx_raw(p[i].k);
		if (!yn)
			continue;
		c->svc = yn;
		const yaml_node_t *cn = cx_map_get(c, p[i].v, "container_name");
		autofree char *given = cn ? cx_str(c, cn, "container_name") : NULL;
		char *l = cx_label(given ? given : yn);
		if (!l) {
			cx_warn(c, p[i].k, NULL,
				"the name has no letter or digit; the service is left out");
			continue;
		}
		if (strcmp(l, given ? given : yn) != 0)
			cx_warn(c, cn ? cn : p[i].k, cn ? "container_name" : NULL,
				"\"%s\" is not a DNS label; the container is named %s",
				given ? given : yn, l);
		const char *taken_by = name_taken(c, l);
		if (taken_by) {
			char *l2 = NULL;
			for (size_t k = i + 1; !l2 || name_taken(c, l2); k++) {
				free(l2);
				l2 = xasprintf("%.56s-%zu", l, k);
			}
			bool svc = strchr(taken_by, ' ') == NULL;
			cx_warn(c, p[i].k, NULL, "the name %s is taken by %s%s; this one is %s", l,
				svc ? "service " : "", taken_by, l2);
			free(l);
			l = l2;
		}
		c->svcs[c->nsvcs++] = (struct svc_info){
			.yname = xstrdup(yn),
			.name = l,
			.node = p[i].v,
			.has_health = cx_health_on(c, cx_map_get(c, p[i].v, "healthcheck")),
			.usable = cx_svc_usable(c, p[i].v)};
	}
	c->svc = NULL;
}

static void top_networks(struct ctx *c, const yaml_node_t *nets)
{
	autofree struct kvp *p = NULL;
	size_t n = cx_map_pairs(c, nets, &p);
	if (nets && !cx_is_map(nets))
		cx_warn(c, nets, "networks", "expected a mapping; not translated");
	c->nets = xcalloc(n + 1, sizeof(*c->nets));
	for (size_t i = 0; i < n; i++) {
		const char *yn = cx_raw(p[i].k);
		if (!yn)
			continue;
		struct net_out *no = &c->nets[c->nnets];
		const yaml_node_t *d = p[i].v;
		const yaml_node_t *nn = cx_is_map(d) ? cx_map_get(c, d, "name") : NULL;
		autofree char *given = nn ? cx_str(c, nn, "networks.name") : NULL;
		autofree char *l = cx_label(given ? given : yn);
		if (!l) {
			cx_warn(c, p[i].k, "networks", "\"%s\" has no letter or digit; left out",
				yn);
			continue;
		}
		/* Names are the host's: the project's prefix keeps two stacks apart, as in Compose. */
		no->name = given ? steal_ptr(&l) : xasprintf("%.30s-%.32s", c->project, l);
		if (!strcmp(no->name, "bridge") || !strcmp(no->name, "host") ||
		    !strcmp(no->name, "none")) {
			char *x = xasprintf("%s-net", no->name);
			free(no->name);
			no->name = x;
		}
		no->yname = xstrdup(yn);
		c->nnets++;
		if (!cx_is_map(d))
			continue;
		static const char *const nk[] = {"driver", "ipam",     "internal",
						 "name",   "external", NULL};
		autofree char *where = xasprintf("networks.%s", yn);
		autofree char *where_ipam = xasprintf("networks.%s.ipam", yn);
		autofree char *where_cfg = xasprintf("networks.%s.ipam.config", yn);
		cx_unknown_keys(c, d, where, nk);
		const yaml_node_t *drv = cx_map_get(c, d, "driver");
		autofree char *ds = drv ? cx_str(c, drv, "networks.driver") : NULL;
		if (ds && strcmp(ds, "bridge") != 0)
			cx_warn(c, drv, "networks.driver", "driver %s: clbsd networks are bridges",
				ds);
		const yaml_node_t *ext = cx_map_get(c, d, "external");
		if (ext && !(cx_is_scalar(ext) && !strcmp(cx_raw(ext), "false")))
			cx_warn(c, ext, "networks.external",
				"an external network is declared here as %s; clbsd makes it",
				no->name);
		const yaml_node_t *ipam = cx_map_get(c, d, "ipam");
		static const char *const ik[] = {"config", NULL}, *const ck[] = {"subnet", NULL};
		if (ipam)
			cx_unknown_keys(c, ipam, where_ipam, ik);
		const yaml_node_t *cfg = cx_is_map(ipam) ? cx_map_get(c, ipam, "config") : NULL;
		for (size_t j = 0; j < cx_seq_len(cfg); j++)
			cx_unknown_keys(c, cx_seq_at(c, cfg, j), where_cfg, ck);
		for (size_t j = 0; j < cx_seq_len(cfg); j++) {
			const yaml_node_t *sn = cx_map_get(c, cx_seq_at(c, cfg, j), "subnet");
			autofree char *ss =
				sn ? cx_str(c, sn, "networks.ipam.config.subnet") : NULL;
			struct net_prefix pf;
			struct clbsd_err err;
			if (!ss)
				continue;
			bool parsed = net_prefix_parse(ss, &pf, &err) == 0;
			if (parsed && pf.addr.family == AF_INET6 && pf.len >= 64 && pf.len <= 120 &&
			    !no->v6.addr.family) {
				no->v6 = pf;
				continue;
			}
			if (!parsed || pf.addr.family != AF_INET || pf.len < 8 || pf.len > 30) {
				cx_warn(c, sn, "networks.ipam.config.subnet",
					"%s: clbsd takes one IPv4 subnet /8 to /30 and one IPv6 "
					"subnet /64 "
					"to /120; left out",
					ss);
				continue;
			}
			bool clash = no->v4.addr.family != 0;
			for (size_t k = 0; k + 1 < c->nnets && !clash; k++)
				clash = c->nets[k].v4.addr.family &&
					net_prefix_overlaps(&c->nets[k].v4, &pf);
			if (clash) {
				cx_warn(c, sn, "networks.ipam.config.subnet",
					"%s overlaps another subnet of the file (or is a second "
					"one); left "
					"out",
					ss);
				continue;
			}
			no->v4 = pf;
		}
	}
}

static void write_networks(struct ctx *c, struct buf *b)
{
	for (size_t i = 0; i < c->nnets; i++) {
		const struct net_out *no = &c->nets[i];
		if (!no->used)
			continue;
		buf_adds(b, "(network ");
		sexp_print_name(b, no->name);
		if (no->v4.addr.family) {
			char s[64];
			buf_adds(b, " :subnet ");
			sexp_print_string(b, net_prefix_fmt(&no->v4, s));
		}
		if (no->v6.addr.family) {
			char s[80];
			buf_adds(b, " :subnet6 ");
			sexp_print_string(b, net_prefix_fmt(&no->v6, s));
		}
		const yaml_node_t *d = cx_map_get(
			c, cx_map_get(c, c->doc.nodes.start ? cx_node(c, 1) : NULL, "networks"),
			no->yname);
		const yaml_node_t *in = cx_is_map(d) ? cx_map_get(c, d, "internal") : NULL;
		if (in && cx_is_scalar(in) && !strcmp(cx_raw(in), "true"))
			buf_adds(b, " :internal t");
		buf_adds(b, ")\n\n");
	}
	if (c->need_default_net) {
		buf_adds(b, "(network ");
		autofree char *dn = xasprintf("%s-default", c->project);
		sexp_print_name(b, dn);
		buf_adds(b, ")\n\n");
	}
}

static void top_volumes(struct ctx *c, const yaml_node_t *vols)
{
	if (vols && !cx_is_map(vols)) {
		cx_warn(c, vols, "volumes", "expected a mapping; not translated");
		return;
	}
	c->top_vols = vols;
	autofree struct kvp *p = NULL;
	size_t n = cx_map_pairs(c, vols, &p);
	for (size_t i = 0; i < n; i++) {
		if (!cx_is_map(p[i].v))
			continue;
		static const char *const vk[] = {"name", NULL};
		autofree char *where = xasprintf("volumes.%s", cx_raw(p[i].k));
		cx_unknown_keys(c, p[i].v, where, vk);
	}
}

static void shared_volumes(struct ctx *c)
{
	for (size_t i = 0; i < c->nvols; i++) {
		const struct vol_use *u = &c->vols[i];
		if (u->svcs.n < 2)
			continue;
		struct buf b = BUF_INIT;
		for (size_t j = 0; j < u->svcs.n; j++)
			buf_addf(&b, "%s%s", j ? ", " : "", u->svcs.v[j]);
		cx_warn(c, u->at, "volumes",
			"volume %s is shared by services %s: a clbsd named volume belongs to one "
			"container, so each of them gets its own",
			u->name, b.data);
		buf_release(&b);
	}
}

static void load_dotenv(struct ctx *c)
{
	if (!c->o->dir)
		return;
	autofree char *path = xasprintf("%s/.env", c->o->dir);
	autofree char *text = NULL;
	struct clbsd_err err;
	if (fs_read_file(path, &text, NULL, &err) < 0)
		return;
	for (char *l = text, *e; l && *l; l = e ? e + 1 : NULL) {
		e = strchr(l, '\n');
		if (e)
			*e = '\0';
		char *k = NULL, *v = NULL;
		if (compose_env_line(l, &k, &v) > 0 && v)
			cx_kv_set(&c->dotenv, &c->ndotenv, k, v);
		free(k);
		free(v);
	}
}

static void project_name(struct ctx *c, const yaml_node_t *root)
{
	const yaml_node_t *nn = cx_map_get(c, root, "name");
	autofree char *given = c->o->project ? xstrdup(c->o->project)
			       : nn	     ? cx_str(c, nn, "name")
					     : NULL;
	if (!given && c->o->dir) {
		const char *slash = strrchr(c->o->dir, '/');
		given = xstrdup(slash ? slash + 1 : c->o->dir);
	}
	c->project = given ? cx_label(given) : NULL;
	if (c->project && strlen(c->project) > 30)
		c->project[30] = '\0';
	while (c->project && *c->project && c->project[strlen(c->project) - 1] == '-')
		c->project[strlen(c->project) - 1] = '\0';
	if (!c->project || !*c->project) {
		free(c->project);
		c->project = xstrdup("compose");
	}
}

/* The same check as `clbsdd -n`: a translation is never handed out unusable. */
static bool check(struct ctx *c, const char *text)
{
	struct conf_diags d = CONF_DIAGS_INIT;
	struct conf_source src = {"(translation)", text, strlen(text)};
	struct conf *cf = NULL;
	int r = conf_build(&src, 1, &cf, &d);
	if (r < 0) {
		autofree char *m = conf_diags_format(&d);
		buf_addf(&c->warn,
			 "%s: the translation does not pass clbsdd -n (a bug in "
			 "import-compose; please report it):\n%s",
			 c->o->file, m);
	}
	conf_diags_release(&d);
	conf_free(cf);
	return r == 0;
}

static int warning_cmp(const void *a, const void *b)
{
	const struct warning *x = a, *y = b;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static const char *const top_keys[] = {"version", "name", "services", "networks", "volumes", NULL};

int compose_translate(const struct compose_opts *o, struct compose_result *r)
{
	memset(r, 0, sizeof(*r));
	struct ctx c = {.o = o,
			.out = BUF_INIT,
			.warn = BUF_INIT,
			.unset_seen = STRV_INIT,
			.published = STRV_INIT,
			.edges = STRV_INIT,
			.built = STRV_INIT};
	yaml_parser_t parser;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, (const unsigned char *)o->text, o->len);
	int rc = -EINVAL;
	char *vs = NULL; /* no autofree: the gotos below jump over declarations */
	bool loaded = yaml_parser_load(&parser, &c.doc);
	if (!loaded) {
		const yaml_mark_t *m = parser.problem_mark.line || parser.problem_mark.column
					       ? &parser.problem_mark
					       : &parser.context_mark;
		buf_addf(&c.warn, "%s:%d:%d: YAML: %s%s%s\n", o->file, (int)m->line + 1,
			 (int)m->column + 1, parser.problem ? parser.problem : "unreadable",
			 parser.context ? " " : "", parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		goto out;
	}
	yaml_parser_delete(&parser);
	yaml_node_t *root = yaml_document_get_root_node(&c.doc);
	if (!cx_is_map(root)) {
		buf_addf(&c.warn, "%s:1:1: expected a mapping with services:\n", o->file);
		goto out;
	}
	load_dotenv(&c);
	project_name(&c, root);
	cx_unknown_keys(&c, root, "", top_keys);
	const yaml_node_t *ver = cx_map_get(&c, root, "version");
	vs = ver ? cx_str(&c, ver, "version") : NULL;
	if (vs && vs[0] != '2' && vs[0] != '3')
		cx_warn(&c, ver, "version",
			"\"%s\": versions 2 and 3 and the unversioned "
			"specification are read; read as the specification",
			vs);
	const yaml_node_t *services = cx_map_get(&c, root, "services");
	if (!cx_is_map(services) || !services->data.mapping.pairs.top ||
	    services->data.mapping.pairs.top == services->data.mapping.pairs.start) {
		cx_fatal(&c, services ? services : root, "services", "no services to translate");
		goto out;
	}
	top_networks(&c, cx_map_get(&c, root, "networks"));
	top_volumes(&c, cx_map_get(&c, root, "volumes"));
	names(&c, services);
	struct buf imgs = BUF_INIT, ctrs = BUF_INIT, nets = BUF_INIT;
	for (size_t i = 0; i < c.nsvcs; i++)
		cx_service(&c, &c.svcs[i], &imgs, &ctrs);
	shared_volumes(&c);
	write_networks(&c, &nets);
	buf_adds(&c.out, ";;; Translated by `clbsd import-compose` from ");
	cx_comment(&c.out, o->file);
	buf_addf(&c.out,
		 " (project %s).\n"
		 ";;; What did not translate was listed on stderr, with its line.\n\n",
		 c.project);
	if (nets.len)
		buf_adds(&c.out, nets.data);
	if (imgs.len)
		buf_adds(&c.out, imgs.data);
	bool any = ctrs.len > 0;
	if (any)
		buf_adds(&c.out, ctrs.data);
	buf_release(&imgs);
	buf_release(&ctrs);
	buf_release(&nets);
	if (!any && !c.fatal)
		cx_fatal(&c, services, "services", "no service could be translated");
	if (!c.fatal && check(&c, c.out.data)) {
		r->text = buf_detach(&c.out, NULL);
		rc = 0;
	}
out:
	free(vs);
	if (loaded)
		yaml_document_delete(&c.doc);
	buf_release(&c.out);
	/* The YAML error and the check's report first (c.warn), then by position. */
	if (c.nwarn)
		qsort(c.w, c.nwarn, sizeof(*c.w), warning_cmp);
	for (size_t i = 0; i < c.nwarn; i++) {
		buf_adds(&c.warn, c.w[i].text);
		free(c.w[i].text);
	}
	free(c.w);
	if (!c.warn.data)
		buf_adds(&c.warn, "");
	r->warnings = buf_detach(&c.warn, NULL);
	r->nwarnings = c.nwarn;
	conf_kvs_free(c.dotenv, c.ndotenv);
	strv_release(&c.unset_seen);
	strv_release(&c.published);
	strv_release(&c.edges);
	strv_release(&c.built);
	for (size_t i = 0; i < c.nnets; i++) {
		free(c.nets[i].name);
		free(c.nets[i].yname);
	}
	free(c.nets);
	for (size_t i = 0; i < c.nsvcs; i++) {
		free(c.svcs[i].name);
		free(c.svcs[i].yname);
	}
	free(c.svcs);
	for (size_t i = 0; i < c.nvols; i++) {
		free(c.vols[i].name);
		strv_release(&c.vols[i].svcs);
	}
	free(c.vols);
	free(c.project);
	return rc;
}

void compose_result_release(struct compose_result *r)
{
	free(r->text);
	free(r->warnings);
	memset(r, 0, sizeof(*r));
}
