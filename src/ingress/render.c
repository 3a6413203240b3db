/*
 * The nginx.conf renderer: a pure function of the routes and the settings.
 *
 * Scaling is the point of the layout. nginx builds a hash for a `map`, so ten
 * thousand names in `map $host $clbsd_backend` cost little at `nginx -t` and
 * at run time, while a server block per name costs thirty to sixty times more
 * (bench/ingress). Names that need something a map cannot give (a location
 * per :path, a client_max_body_size, which takes no variables) get a server
 * block of their own; they are expected to be few.
 *
 * Everything is sorted before it is written, so the output does not depend
 * on the order of the input, and "did the configuration change" is a byte
 * compare of the text.
 */
#include "ingress/ingress.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The pages nginx answers itself. Kept short: they are sent from memory. */
#define PAGE_HEAD     "<!doctype html><meta charset=utf-8><title>%s</title><h1>%s</h1><p>%s</p>"
#define BACKEND_MAX   64 /* "[" IPv6 "]:" port */
#define PAGE_404_TEXT "No service is routed for this name."

/* One (domain, route) pair. */
struct ent {
	const char *domain;
	const char *path; /* "/" for the whole name */
	const struct ingress_route *r;
};

/* One name and everything routed under it. */
struct host {
	const char *domain;
	struct ent *ents; /* sorted by path */
	size_t n;
	const char *special; /* why it has a server block of its own; NULL: none */
	char *cert, *key;    /* NULL: no TLS for this name */
};

static int ent_cmp(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;
	int c = strcmp(x->domain, y->domain);
	return c ? c : strcmp(x->path, y->path);
}

/*
 * The backend of a route, "10.88.0.2:8080" or "[fd00::2]:8080". No upstream
 * blocks: ten thousand of them make `nginx -t` twenty times slower, and an
 * address in proxy_pass needs no resolver.
 */
static void backend(const struct ingress_route *r, char *buf, size_t n)
{
	bool v6 = strchr(r->address, ':') != NULL;
	snprintf(buf, n, "%s%s%s:%u", v6 ? "[" : "", r->address, v6 ? "]" : "", (unsigned)r->port);
}

static const char *state_word(enum ingress_state st)
{
	return st == INGRESS_STARTING ? "starting" : "down";
}

static size_t pow2_at_least(size_t v, size_t min)
{
	size_t p = min;
	while (p < v)
		p <<= 1;
	return p;
}

static void add_listens(struct buf *b, const char *const *addrs, size_t n, const char *extra)
{
	for (size_t i = 0; i < n; i++)
		buf_addf(b, "\t\tlisten %s%s;\n", addrs[i], extra);
}

/*
 * Proxy headers. In the map-driven location the websocket headers come from
 * the maps; in a route's own location they are literal.
 */
enum ws_mode { WS_MAP, WS_ON, WS_OFF };
static void add_proxy_headers(struct buf *b, enum ws_mode ws, const char *ind)
{
	buf_addf(b, "%sproxy_set_header Host $host;\n", ind);
	buf_addf(b, "%sproxy_set_header X-Real-IP $remote_addr;\n", ind);
	buf_addf(b, "%sproxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n", ind);
	buf_addf(b, "%sproxy_set_header X-Forwarded-Proto $scheme;\n", ind);
	buf_addf(b, "%sproxy_set_header X-Forwarded-Host $host;\n", ind);
	switch (ws) {
	case WS_MAP:
		buf_addf(b, "%sproxy_set_header Upgrade $clbsd_upgrade;\n", ind);
		buf_addf(b, "%sproxy_set_header Connection $clbsd_connection;\n", ind);
		break;
	case WS_ON:
		buf_addf(b, "%sproxy_set_header Upgrade $http_upgrade;\n", ind);
		buf_addf(b, "%sproxy_set_header Connection $clbsd_ws_connection;\n", ind);
		buf_addf(b, "%sproxy_read_timeout 1h;\n", ind);
		break;
	case WS_OFF:
		buf_addf(b, "%sproxy_set_header Connection close;\n", ind);
		break;
	}
}

static void add_page(struct buf *b, const char *ind, int code, const char *title, const char *text)
{
	buf_addf(b, "%sreturn %d \"" PAGE_HEAD "\\n\";\n", ind, code, title, title, text);
}

/* The location of the default server and of TLS servers of map-routed names. */
static void add_map_location(struct buf *b)
{
	buf_adds(b, "\t\tlocation / {\n");
	buf_adds(b, "\t\t\tif ($clbsd_down) {\n");
	add_page(b, "\t\t\t\t", 503, "503 Service Unavailable", "$clbsd_down.");
	buf_adds(b, "\t\t\t}\n");
	buf_adds(b, "\t\t\tif ($clbsd_backend = \"\") {\n");
	add_page(b, "\t\t\t\t", 404, "404 Not Found", PAGE_404_TEXT);
	buf_adds(b, "\t\t\t}\n");
	buf_adds(b, "\t\t\tproxy_pass http://$clbsd_backend;\n");
	add_proxy_headers(b, WS_MAP, "\t\t\t");
	buf_adds(b, "\t\t}\n");
}

/* What one route answers inside its own location. */
static void add_route_body(struct buf *b, const struct ingress_route *r, const char *ind)
{
	if (r->state != INGRESS_UP) {
		autofree char *text = xasprintf("%s is %s.", r->service, state_word(r->state));
		add_page(b, ind, 503, "503 Service Unavailable", text);
		return;
	}
	if (r->max_body > 0)
		buf_addf(b, "%sclient_max_body_size %lld;\n", ind, (long long)r->max_body);
	char be[BACKEND_MAX];
	backend(r, be, sizeof(be));
	buf_addf(b, "%sproxy_pass http://%s;\n", ind, be);
	add_proxy_headers(b, r->websocket ? WS_ON : WS_OFF, ind);
}

static void add_special_server(struct buf *b, const struct ingress_settings *s,
			       const struct host *h)
{
	buf_addf(b, "\t# %s: its own server block (%s)\n\tserver {\n", h->domain, h->special);
	add_listens(b, s->listen, s->n_listen, "");
	if (h->cert) {
		add_listens(b, s->tls_listen, s->n_tls_listen, " ssl");
		buf_addf(b, "\t\tssl_certificate %s;\n", h->cert);
		buf_addf(b, "\t\tssl_certificate_key %s;\n", h->key);
	}
	buf_addf(b, "\t\tserver_name %s;\n", h->domain);
	bool has_root = false;
	for (size_t i = 0; i < h->n; i++) {
		const struct ent *e = &h->ents[i];
		if (strcmp(e->path, "/") == 0) {
			has_root = true;
			buf_adds(b, "\t\tlocation / {\n");
			add_route_body(b, e->r, "\t\t\t");
			buf_adds(b, "\t\t}\n");
			continue;
		}
		/* "/app" serves "/app" and "/app/...", not "/application". */
		size_t l = strlen(e->path);
		bool slash = e->path[l - 1] == '/';
		if (!slash) {
			buf_addf(b, "\t\tlocation = %s {\n", e->path);
			add_route_body(b, e->r, "\t\t\t");
			buf_adds(b, "\t\t}\n");
		}
		buf_addf(b, "\t\tlocation %s%s {\n", e->path, slash ? "" : "/");
		add_route_body(b, e->r, "\t\t\t");
		buf_adds(b, "\t\t}\n");
	}
	if (!has_root) {
		buf_adds(b, "\t\tlocation / {\n");
		add_page(b, "\t\t\t", 404, "404 Not Found", PAGE_404_TEXT);
		buf_adds(b, "\t\t}\n");
	}
	buf_adds(b, "\t}\n");
}

/* Does wildcard "*.suffix" cover name (one or more labels before suffix)? */
static bool wildcard_covers(const char *wild, const char *name)
{
	if (wild[0] != '*' || name[0] == '*')
		return false;
	const char *suffix = wild + 1; /* ".home.lan" */
	size_t ls = strlen(suffix), ln = strlen(name);
	return ln > ls && strcmp(name + ln - ls, suffix) == 0;
}

static void add_map(struct buf *b, const char *var, struct host *hosts, size_t nh,
		    const char *(*value)(const struct host *h, char *tmp, size_t n))
{
	buf_addf(b, "\tmap $host $%s {\n\t\thostnames;\n\t\tdefault \"\";\n", var);
	char tmp[512];
	for (size_t i = 0; i < nh; i++) {
		if (hosts[i].special)
			continue;
		const char *v = value(&hosts[i], tmp, sizeof(tmp));
		if (v)
			buf_addf(b, "\t\t%s %s;\n", hosts[i].domain, v);
	}
	buf_adds(b, "\t}\n");
}

static const char *backend_value(const struct host *h, char *tmp, size_t n)
{
	const struct ingress_route *r = h->ents[0].r;
	if (r->state != INGRESS_UP)
		return NULL;
	backend(r, tmp, n);
	return tmp;
}

static const char *down_value(const struct host *h, char *tmp, size_t n)
{
	const struct ingress_route *r = h->ents[0].r;
	if (r->state == INGRESS_UP)
		return NULL;
	snprintf(tmp, n, "\"%s is %s\"", r->service, state_word(r->state));
	return tmp;
}

static const char *ws_value(const struct host *h, char *tmp, size_t n)
{
	const struct ingress_route *r = h->ents[0].r;
	return r->state == INGRESS_UP && r->websocket ? "1" : NULL;
}

static void hosts_release(struct host *hosts, size_t nh)
{
	for (size_t i = 0; i < nh; i++) {
		free(hosts[i].cert);
		free(hosts[i].key);
	}
	free(hosts);
}

/* Pick each name's certificate: the route's own, or the CA's leaf. */
static void choose_tls(const struct ingress_settings *s, struct host *h)
{
	if (s->n_tls_listen == 0)
		return;
	for (size_t i = 0; i < h->n; i++) {
		const struct ingress_route *r = h->ents[i].r;
		if (r->tls_cert) {
			h->cert = xstrdup(r->tls_cert);
			h->key = xstrdup(r->tls_key);
			return;
		}
	}
	if (s->tls_mode == INGRESS_TLS_AUTO)
		ingress_ca_leaf_paths(s->ca_dir, h->domain, &h->cert, &h->key);
}

/* TLS names routed through the maps, grouped by certificate. */
struct tls_ref {
	const char *cert, *key, *domain;
};

static int tls_ref_cmp(const void *a, const void *b)
{
	const struct tls_ref *x = a, *y = b;
	int c = strcmp(x->cert, y->cert);
	if (c)
		return c;
	c = strcmp(x->key, y->key);
	return c ? c : strcmp(x->domain, y->domain);
}

/*
 * Every (name, path) pair, sorted, grouped into hosts (one per name). The
 * hosts point into *ents; *maxlen is the longest name.
 */
static struct host *group_hosts(const struct ingress_route *routes, size_t n, struct ent **ents,
				size_t *nh_out, size_t *maxlen)
{
	size_t ne = 0;
	for (size_t i = 0; i < n; i++)
		ne += routes[i].n_domains;
	struct ent *e = xcalloc(ne + 1, sizeof(*e));
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < routes[i].n_domains; j++) {
			const char *p = routes[i].path ? routes[i].path : "/";
			e[k++] = (struct ent){routes[i].domains[j], p, &routes[i]};
		}
	qsort(e, ne, sizeof(*e), ent_cmp);
	struct host *hosts = xcalloc(ne + 1, sizeof(*hosts));
	size_t nh = 0;
	*maxlen = 0;
	for (size_t i = 0; i < ne; i++) {
		if (nh == 0 || strcmp(hosts[nh - 1].domain, e[i].domain) != 0) {
			hosts[nh++] = (struct host){e[i].domain, &e[i], 0, NULL, NULL, NULL};
			size_t l = strlen(e[i].domain);
			if (l > *maxlen)
				*maxlen = l;
		}
		struct host *h = &hosts[nh - 1];
		h->n++;
		if (strcmp(e[i].path, "/") != 0)
			h->special = "path routes";
		else if (e[i].r->max_body > 0 && !h->special)
			h->special = ":max-body";
	}
	/*
	 * A wildcard server block would catch the names it covers before the
	 * default server's map sees them, so those get their own blocks too.
	 */
	for (size_t i = 0; i < nh; i++) {
		if (!hosts[i].special || hosts[i].domain[0] != '*')
			continue;
		for (size_t j = 0; j < nh; j++)
			if (!hosts[j].special && wildcard_covers(hosts[i].domain, hosts[j].domain))
				hosts[j].special = "under a wildcard with a server block";
	}
	*ents = e;
	*nh_out = nh;
	return hosts;
}

/* The file's top: the counts, the process settings and the http block's own. */
static void add_head(struct buf *b, const struct ingress_settings *s, size_t n, size_t nh,
		     size_t n_special, size_t n_tls, size_t maxlen)
{
	buf_adds(b, "# Written by clbsd (ingress); changes are overwritten.\n");
	buf_addf(b,
		 "# %zu routes, %zu names: %zu in the host map, %zu with a server block, "
		 "%zu with TLS.\n",
		 n, nh, nh - n_special, n_special, n_tls);
	buf_adds(b, "worker_processes auto;\n");
	/*
	 * A reload leaves old workers running until their connections end; a
	 * websocket may never end, and every container start reloads. An hour
	 * bounds how many generations can pile up.
	 */
	buf_adds(b, "worker_shutdown_timeout 1h;\n");
	buf_addf(b, "pid %s/nginx.pid;\n", s->dir);
	buf_addf(b, "error_log %s/logs/error.log warn;\n", s->dir);
	buf_adds(b, "events {\n\tworker_connections 4096;\n}\n");
	buf_adds(b, "http {\n");
	buf_adds(b, "\taccess_log off;\n");
	buf_adds(b, "\tserver_tokens off;\n");
	buf_adds(b, "\tdefault_type text/html;\n");
	static const char *const temps[] = {"client_body", "proxy", "fastcgi", "uwsgi", "scgi"};
	for (size_t i = 0; i < ARRAY_SIZE(temps); i++)
		buf_addf(b, "\t%s_temp_path %s/tmp/%s;\n", temps[i], s->dir, temps[i]);
	/* Hashes sized to the names, so a large map never fails to build. */
	size_t bucket = pow2_at_least(maxlen + 32, 64);
	size_t hsize = pow2_at_least(nh * 2, 2048);
	buf_addf(b, "\tmap_hash_bucket_size %zu;\n\tmap_hash_max_size %zu;\n", bucket, hsize);
	buf_addf(b, "\tserver_names_hash_bucket_size %zu;\n\tserver_names_hash_max_size %zu;\n",
		 bucket, hsize);
	buf_adds(b, "\tproxy_http_version 1.1;\n");
	if (s->n_tls_listen) {
		buf_adds(b, "\tssl_protocols TLSv1.2 TLSv1.3;\n");
		buf_adds(b, "\tssl_session_cache shared:clbsd_tls:10m;\n");
	}
}

/* The maps from a name to its backend, its 503 text and its websocket use. */
static void add_maps(struct buf *b, struct host *hosts, size_t nh)
{
	buf_adds(b, "\n\t# Names routed to a whole port of a container: name -> address:port.\n");
	add_map(b, "clbsd_backend", hosts, nh, backend_value);
	buf_adds(b, "\t# Names whose container is not up: the 503 page's text.\n");
	add_map(b, "clbsd_down", hosts, nh, down_value);
	buf_adds(b, "\t# Names whose container takes websockets.\n");
	add_map(b, "clbsd_ws", hosts, nh, ws_value);
	buf_adds(b, "\tmap $clbsd_ws $clbsd_upgrade {\n\t\tdefault \"\";\n\t\t1 $http_upgrade;\n"
		    "\t}\n");
	buf_adds(b, "\tmap $clbsd_ws:$http_upgrade $clbsd_connection {\n\t\tdefault close;\n"
		    "\t\t\"~^1:.\" upgrade;\n\t}\n");
	buf_adds(b, "\tmap $http_upgrade $clbsd_ws_connection {\n\t\tdefault upgrade;\n"
		    "\t\t\"\" close;\n\t}\n");
}

/* TLS: refuse names without a certificate, one server block per certificate. */
static void add_tls_servers(struct buf *b, const struct ingress_settings *s, struct host *hosts,
			    size_t nh, size_t n_tls)
{
	buf_adds(b, "\t# TLS for a name without a certificate: no handshake.\n");
	buf_adds(b, "\tserver {\n");
	add_listens(b, s->tls_listen, s->n_tls_listen, " ssl default_server");
	buf_adds(b, "\t\tssl_reject_handshake on;\n\t}\n");
	/* Map-routed TLS names: one server block per certificate. */
	struct tls_ref *tr = xcalloc(n_tls + 1, sizeof(*tr));
	size_t nt = 0;
	for (size_t i = 0; i < nh; i++)
		if (hosts[i].cert && !hosts[i].special)
			tr[nt++] = (struct tls_ref){hosts[i].cert, hosts[i].key, hosts[i].domain};
	qsort(tr, nt, sizeof(*tr), tls_ref_cmp);
	for (size_t i = 0; i < nt;) {
		size_t j = i;
		buf_adds(b, "\tserver {\n");
		add_listens(b, s->tls_listen, s->n_tls_listen, " ssl");
		buf_adds(b, "\t\tserver_name");
		while (j < nt && strcmp(tr[j].cert, tr[i].cert) == 0 &&
		       strcmp(tr[j].key, tr[i].key) == 0)
			buf_addf(b, " %s", tr[j++].domain);
		buf_addf(b, ";\n\t\tssl_certificate %s;\n\t\tssl_certificate_key %s;\n", tr[i].cert,
			 tr[i].key);
		add_map_location(b);
		buf_adds(b, "\t}\n");
		i = j;
	}
	free(tr);
}

int ingress_render(const struct ingress_settings *s, const struct ingress_route *routes, size_t n,
		   char **out, struct clbsd_err *err)
{
	int r = ingress_routes_check(s, routes, n, err);
	if (r < 0)
		return r;
	struct ent *ents;
	size_t nh, maxlen;
	struct host *hosts = group_hosts(routes, n, &ents, &nh, &maxlen);
	size_t n_special = 0, n_tls = 0;
	for (size_t i = 0; i < nh; i++) {
		choose_tls(s, &hosts[i]);
		n_special += hosts[i].special != NULL;
		n_tls += hosts[i].cert != NULL;
	}

	struct buf b = BUF_INIT;
	add_head(&b, s, n, nh, n_special, n_tls, maxlen);
	add_maps(&b, hosts, nh);
	buf_adds(&b, "\n\t# Every name without a server block of its own: the maps decide.\n");
	buf_adds(&b, "\tserver {\n");
	add_listens(&b, s->listen, s->n_listen, " default_server");
	buf_adds(&b, "\t\tserver_name _;\n");
	add_map_location(&b);
	buf_adds(&b, "\t}\n");
	if (s->n_tls_listen)
		add_tls_servers(&b, s, hosts, nh, n_tls);
	for (size_t i = 0; i < nh; i++)
		if (hosts[i].special)
			add_special_server(&b, s, &hosts[i]);
	buf_adds(&b, "}\n");
	*out = buf_detach(&b, NULL);
	hosts_release(hosts, nh);
	free(ents);
	return r;
}
