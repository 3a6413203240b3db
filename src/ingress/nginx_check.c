/*
 * Validation of everything the renderer writes into nginx.conf. These are
 * allow-lists: a value is accepted only when every character is one the
 * nginx grammar cannot read as syntax (no quotes, spaces, ';', '{', '}',
 * '#' or '$'), so "a;b" or "x } server {" can never reach the file.
 */
#include "ingress/ingress.h"
#include "net/net.h"
#include "util/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool refuse(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool refuse(char *why, size_t n, const char *fmt, ...)
{
	if (why && n) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, n, fmt, ap);
		va_end(ap);
	}
	return false;
}

static bool lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool ingress_domain_check(const char *s, char *why, size_t n)
{
	return valid_domain_check(s, why, n);
}

bool ingress_path_check(const char *s, char *why, size_t n)
{
	return valid_url_path_check(s, why, n);
}

#define MAX_BODY_LIMIT (64LL << 30)

bool ingress_max_body_check(const char *s, int64_t *bytes, char *why, size_t n)
{
	struct clbsd_err err;
	int64_t v;
	if (!s || parse_size(s, &v, &err) < 0)
		return refuse(why, n,
			      "invalid size \"%.80s\": expected a size like \"100M\", "
			      "\"512k\" or \"1G\"",
			      s ? s : "");
	if (v < 1 || v > MAX_BODY_LIMIT)
		return refuse(why, n, "size \"%.80s\" is out of range: 1 byte to 64G", s);
	if (bytes)
		*bytes = v;
	return true;
}

bool ingress_address_check(const char *s, char *why, size_t n)
{
	struct net_addr a;
	struct clbsd_err err;
	if (!s || net_addr_parse(s, &a, &err) < 0)
		return refuse(why, n,
			      "invalid backend address \"%.80s\": expected an IP address "
			      "like \"10.88.0.2\" or \"fd00::2\"",
			      s ? s : "");
	/* Hex digits, dots and colons only: no zone, no brackets, no stray characters. */
	for (const char *p = s; *p; p++)
		if (!strchr("0123456789abcdefABCDEF.:", *p))
			return refuse(why, n, "invalid backend address \"%.80s\"", s);
	return true;
}

bool ingress_listen_check(const char *s, char *why, size_t n)
{
	static const char *const expected =
		"expected an address and port like \"0.0.0.0:80\" or \"[::]:443\"";
	if (!s)
		return refuse(why, n, "missing listen address; %s", expected);
	const char *colon = strrchr(s, ':');
	long long port;
	if (!colon || colon[1] < '0' || colon[1] > '9' || parse_int(colon + 1, 1, 65535, &port) < 0)
		return refuse(why, n, "invalid listen address \"%.80s\": %s", s, expected);
	autofree char *host = NULL;
	if (s[0] == '[') {
		if (colon < s + 2 || colon[-1] != ']')
			return refuse(why, n, "invalid listen address \"%.80s\": %s", s, expected);
		host = xstrndup(s + 1, (size_t)(colon - s - 2));
		struct net_addr a;
		struct clbsd_err err;
		if (net_addr_parse(host, &a, &err) < 0 || a.family == 0 || strchr(host, '.') ||
		    !ingress_address_check(host, NULL, 0) || !strchr(host, ':'))
			return refuse(why, n, "invalid listen address \"%.80s\": %s", s, expected);
		return true;
	}
	host = xstrndup(s, (size_t)(colon - s));
	if (strchr(host, ':') || !ingress_address_check(host, NULL, 0))
		return refuse(why, n, "invalid listen address \"%.80s\": %s", s, expected);
	return true;
}

bool ingress_file_path_check(const char *s, char *why, size_t n)
{
	if (!s || !fs_path_is_clean_abs(s))
		return refuse(why, n,
			      "invalid file path \"%.80s\": expected a clean absolute "
			      "path",
			      s ? s : "");
	if (strlen(s) > 1024)
		return refuse(why, n, "file path \"%.40s...\" is too long (at most 1024)", s);
	for (const char *p = s; *p; p++) {
		char c = *p;
		bool alnum = lower_alnum(c) || (c >= 'A' && c <= 'Z');
		if (!alnum && !strchr("._/+@-", c))
			return refuse(why, n,
				      "invalid file path \"%.80s\": character '%c' is not "
				      "allowed (letters, digits and ._/+@-)",
				      s, c);
	}
	if (strstr(s, "//"))
		return refuse(why, n, "invalid file path \"%.80s\": empty component", s);
	return true;
}

int ingress_domain_normalise(const char *s, const char *default_domain, char **out,
			     struct clbsd_err *err)
{
	char why[256];
	if (!ingress_domain_check(s, why, sizeof(why)))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "%s", why);
	char *full;
	/* "*.apps" is a bare label too, under a wildcard. */
	const char *base = s[0] == '*' ? s + 2 : s;
	if (!strchr(base, '.') && default_domain && *default_domain) {
		full = xasprintf("%s.%s", s, default_domain);
		if (!ingress_domain_check(full, why, sizeof(why))) {
			free(full);
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"%s (with the default domain)", why);
		}
	} else {
		full = xstrdup(s);
	}
	*out = full;
	return 0;
}

static bool route_path_is_root(const struct ingress_route *r)
{
	return !r->path || strcmp(r->path, "/") == 0;
}

static int check_settings(const struct ingress_settings *s, struct clbsd_err *err)
{
	char why[256];
	if (!s->dir || !ingress_file_path_check(s->dir, why, sizeof(why)))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "ingress directory: %s",
					s->dir ? why : "not set");
	if (s->n_listen == 0)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					":ingress :listen: at least one address is needed, like "
					"(\"0.0.0.0:80\")");
	for (size_t i = 0; i < s->n_listen; i++)
		if (!ingress_listen_check(s->listen[i], why, sizeof(why)))
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						":ingress :listen: %s", why);
	for (size_t i = 0; i < s->n_tls_listen; i++)
		if (!ingress_listen_check(s->tls_listen[i], why, sizeof(why)))
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						":ingress :tls-listen: %s", why);
	/* One address in both lists would have nginx listen twice on it. */
	for (size_t i = 0; i < s->n_listen + s->n_tls_listen; i++)
		for (size_t j = i + 1; j < s->n_listen + s->n_tls_listen; j++) {
			const char *a =
				i < s->n_listen ? s->listen[i] : s->tls_listen[i - s->n_listen];
			const char *b =
				j < s->n_listen ? s->listen[j] : s->tls_listen[j - s->n_listen];
			if (strcmp(a, b) == 0)
				return clbsd_err_setmsg(
					err, CLBSD_E_INVALID, EINVAL,
					":ingress: listen address %s is given twice", a);
		}
	if (s->default_domain && !ingress_domain_check(s->default_domain, why, sizeof(why)))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					":ingress :default-domain: %s", why);
	if (s->tls_mode == INGRESS_TLS_AUTO) {
		if (s->n_tls_listen == 0)
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						":ingress :tls (:ca auto) needs :tls-listen, like "
						"(\"0.0.0.0:443\")");
		if (!s->ca_dir || !ingress_file_path_check(s->ca_dir, why, sizeof(why)))
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "CA directory: %s",
						s->ca_dir ? why : "not set");
	}
	return 0;
}

static int check_route(const struct ingress_settings *s, const struct ingress_route *r,
		       struct clbsd_err *err)
{
	char why[256];
	if (!r->service || !valid_name(r->service))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"ingress route: invalid service name \"%.80s\": expected a "
					"DNS label",
					r->service ? r->service : "");
	const char *svc = r->service;
	if (r->n_domains == 0)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"container %s: a route needs at least one :domain", svc);
	for (size_t i = 0; i < r->n_domains; i++)
		if (!ingress_domain_check(r->domains[i], why, sizeof(why)))
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"container %s: :domain: %s", svc, why);
	if (r->path && !ingress_path_check(r->path, why, sizeof(why)))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "container %s: :path: %s",
					svc, why);
	if ((r->address || r->state == INGRESS_UP) &&
	    !ingress_address_check(r->address, why, sizeof(why)))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "container %s: %s", svc, why);
	if (r->port == 0)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"container %s: :port must be 1-65535", svc);
	if (r->max_body < 0 || r->max_body > MAX_BODY_LIMIT)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"container %s: :ingress :max-body is out of range (1 byte "
					"to 64G)",
					svc);
	if (!r->tls_cert != !r->tls_key)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"container %s: :tls needs both :cert and :key", svc);
	if (r->tls_cert) {
		if (!ingress_file_path_check(r->tls_cert, why, sizeof(why)))
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"container %s: :tls :cert: %s", svc, why);
		if (!ingress_file_path_check(r->tls_key, why, sizeof(why)))
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"container %s: :tls :key: %s", svc, why);
		if (s->n_tls_listen == 0)
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"container %s: :tls needs the host's :ingress "
						":tls-listen, like (\"0.0.0.0:443\")",
						svc);
	}
	return 0;
}

/* One (domain, route) pair, for the duplicate checks. */
struct dom_ref {
	const char *domain;
	const struct ingress_route *r;
};

/* A path without its trailing '/' ("" for the root): "/app" and "/app/" overlap. */
static size_t path_key_len(const struct ingress_route *r)
{
	if (route_path_is_root(r))
		return 0;
	size_t l = strlen(r->path);
	return r->path[l - 1] == '/' ? l - 1 : l;
}

static int dom_ref_cmp(const void *a, const void *b)
{
	const struct dom_ref *x = a, *y = b;
	int c = strcmp(x->domain, y->domain);
	if (c)
		return c;
	size_t lx = path_key_len(x->r), ly = path_key_len(y->r);
	c = strncmp(lx ? x->r->path : "", ly ? y->r->path : "", lx < ly ? lx : ly);
	if (c)
		return c;
	return lx < ly ? -1 : lx > ly;
}

int ingress_routes_check(const struct ingress_settings *s, const struct ingress_route *routes,
			 size_t n, struct clbsd_err *err)
{
	int r = check_settings(s, err);
	if (r < 0)
		return r;
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		r = check_route(s, &routes[i], err);
		if (r < 0)
			return r;
		total += routes[i].n_domains;
	}
	struct dom_ref *v = xcalloc(total + 1, sizeof(*v));
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < routes[i].n_domains; j++)
			v[k++] = (struct dom_ref){routes[i].domains[j], &routes[i]};
	qsort(v, k, sizeof(*v), dom_ref_cmp);
	for (size_t i = 1; i < k; i++) {
		if (strcmp(v[i - 1].domain, v[i].domain) != 0)
			continue;
		const struct ingress_route *a = v[i - 1].r, *b = v[i].r;
		if (dom_ref_cmp(&v[i - 1], &v[i]) == 0) {
			r = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EEXIST,
					     "%s%s is routed to both %s and %s: give one of them "
					     "another :domain or :path",
					     v[i].domain, route_path_is_root(b) ? "" : b->path,
					     a->service, b->service);
			break;
		}
		/* One name, one certificate: TLS is chosen before the path is known. */
		const char *ca = a->tls_cert ? a->tls_cert : "",
			   *cb = b->tls_cert ? b->tls_cert : "";
		const char *ka = a->tls_key ? a->tls_key : "", *kb = b->tls_key ? b->tls_key : "";
		if (strcmp(ca, cb) != 0 || strcmp(ka, kb) != 0) {
			r = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EINVAL,
					     "%s has different :tls certificates in %s and %s: "
					     "routes of one name share one certificate",
					     v[i].domain, a->service, b->service);
			break;
		}
	}
	free(v);
	return r;
}
