/*
 * What a container reads to find names: /etc/hosts (itself and its peers
 * on shared networks) and resolv.conf (the host's resolvers that it can
 * reach, or explicit ones). Pure: the caller reads the host's file and
 * writes the results.
 */
#include "net/net.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* ---- /etc/hosts ---- */

/* Names already on a line; each name appears once, the first line wins. */
static bool seen(struct strv *names, const char *n)
{
	for (size_t i = 0; i < names->n; i++)
		if (strcmp(names->v[i], n) == 0)
			return true;
	strv_push(names, n);
	return false;
}

/* One line per address family the endpoint has: "ADDR\tname alias...". */
static void add_lines(struct buf *b, struct strv *names, const struct net_endpoint *e,
		      const char *const *first, size_t n_first)
{
	const struct net_addr *ips[2] = {&e->ip4, &e->ip6};
	struct strv line = STRV_INIT;
	for (size_t k = 0; first && k < n_first; k++)
		if (first[k] && !seen(names, first[k]))
			strv_push(&line, first[k]);
	for (size_t k = 0; k < e->n_aliases; k++)
		if (!seen(names, e->aliases[k]))
			strv_push(&line, e->aliases[k]);
	for (size_t f = 0; f < 2 && line.n; f++) {
		char a[NET_ADDR_STRLEN];
		if (!ips[f]->family)
			continue;
		buf_addf(b, "%s\t", net_addr_fmt(ips[f], a));
		for (size_t k = 0; k < line.n; k++)
			buf_addf(b, "%s%s", k ? " " : "", line.v[k]);
		buf_addc(b, '\n');
	}
	strv_release(&line);
}

static int by_name(const void *a, const void *b)
{
	const struct net_container *x = *(const struct net_container *const *)a;
	const struct net_container *y = *(const struct net_container *const *)b;
	return strcmp(x->name, y->name);
}

static const struct net_endpoint *endpoint_on(const struct net_container *c, const char *net)
{
	for (size_t i = 0; i < c->n_eps; i++)
		if (strcmp(c->eps[i].network, net) == 0)
			return &c->eps[i];
	return NULL;
}

int net_hosts_render(const struct net_state *st, const char *self, const char *hostname, char **out,
		     struct clbsd_err *err)
{
	const struct net_container *me = net_state_container(st, self);
	if (!me)
		return clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT,
					"/etc/hosts for %s: not in the network state", self);
	if (hostname && !valid_hostname(hostname))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"/etc/hosts for %s: \"%s\" is not a host name", self,
					hostname);
	if (net_state_check(st, err) < 0)
		return clbsd_err_prefix(err, "/etc/hosts for %s", self);
	struct buf b = BUF_INIT;
	struct strv names = STRV_INIT;
	buf_addf(&b, "# Written by clbsd for container %s; changes are overwritten.\n", self);
	buf_adds(&b, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
	seen(&names, "localhost");
	/* Itself: every endpoint's address; the names go on the first lines. */
	const char *mine[2] = {hostname, self};
	for (size_t i = 0; i < me->n_eps; i++)
		add_lines(&b, &names, &me->eps[i], i == 0 ? mine : NULL, i == 0 ? 2 : 0);
	if (me->n_eps == 0 && hostname)
		buf_addf(&b, "127.0.1.1\t%s%s%s\n", hostname, strcmp(hostname, self) ? " " : "",
			 strcmp(hostname, self) ? self : "");
	/* Peers by name, each with its address on the first network shared with self. */
	const struct net_container **peers = xcalloc(st->n_ctrs + 1, sizeof(*peers));
	size_t n = 0;
	for (size_t i = 0; i < st->n_ctrs; i++)
		if (&st->ctrs[i] != me)
			peers[n++] = &st->ctrs[i];
	qsort(peers, n, sizeof(*peers), by_name);
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < me->n_eps; k++) {
			const struct net_endpoint *e = endpoint_on(peers[i], me->eps[k].network);
			if (!e)
				continue;
			const char *nm[1] = {peers[i]->name};
			add_lines(&b, &names, e, nm, 1);
			break;
		}
	}
	free(peers);
	strv_release(&names);
	*out = buf_detach(&b, NULL);
	return 0;
}

/* ---- resolv.conf ---- */

/* The first whitespace-separated word after the keyword, or NULL. */
static char *word_after(const char *line, const char *kw)
{
	size_t k = strlen(kw);
	if (strncmp(line, kw, k) != 0 || (line[k] != ' ' && line[k] != '\t'))
		return NULL;
	const char *s = line + k;
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strcspn(s, " \t\r#;");
	return n ? xstrndup(s, n) : NULL;
}

int net_resolv_render(const char *host_conf, const char *const *dns, size_t n_dns, bool want_v6,
		      char **out, struct clbsd_err *err)
{
	struct buf b = BUF_INIT;
	struct strv servers = STRV_INIT, skipped = STRV_INIT;
	char *search = NULL;
	struct strv options = STRV_INIT;
	for (size_t i = 0; i < n_dns; i++) {
		struct net_addr a;
		if (net_addr_parse(dns[i], &a, err) < 0) {
			strv_release(&servers);
			return clbsd_err_prefix(err, ":dns");
		}
		strv_push(&servers, dns[i]);
	}
	/* The host's file: nameservers (unless explicit ones), search/domain, options. */
	const char *p = host_conf ? host_conf : "";
	while (*p) {
		size_t len = strcspn(p, "\n");
		autofree char *line = xstrndup(p, len);
		p += len + (p[len] == '\n');
		autofree char *ns = word_after(line, "nameserver");
		if (ns && n_dns == 0) {
			struct net_addr a;
			struct clbsd_err e2;
			bool zoned = strchr(ns, '%') != NULL;
			if (zoned || net_addr_parse(ns, &a, &e2) < 0 || net_addr_is_loopback(&a) ||
			    (a.family == AF_INET6 && !want_v6))
				strv_push(&skipped, ns);
			else
				strv_push(&servers, ns);
			continue;
		}
		autofree char *srch = word_after(line, "search");
		autofree char *dom = word_after(line, "domain");
		if (srch || dom) {
			/* The resolver honours the last of these; so do we. */
			free(search);
			search = xstrdup(line);
			continue;
		}
		autofree char *opt = word_after(line, "options");
		if (opt)
			strv_push(&options, line);
	}
	int r = 0;
	if (servers.n == 0) {
		struct buf s = BUF_INIT;
		for (size_t i = 0; i < skipped.n; i++)
			buf_addf(&s, "%s%s", i ? ", " : "", skipped.v[i]);
		r = clbsd_err_setmsg(err, CLBSD_E_UNAVAIL, ENOENT,
				     "resolv.conf: the host has no nameserver a container can "
				     "reach%s%s%s; set :dns (e.g. :dns (\"192.168.1.1\")), or "
				     "point the host at its upstream resolvers",
				     s.len ? " (skipped: " : "", s.len ? s.data : "",
				     s.len ? ", loopback or not reachable)" : "");
		buf_release(&s);
		goto out;
	}
	buf_adds(&b, "# Written by clbsd; changes are overwritten.\n");
	/* The resolver uses three at most. */
	for (size_t i = 0; i < servers.n && i < 3; i++)
		buf_addf(&b, "nameserver %s\n", servers.v[i]);
	if (search)
		buf_addf(&b, "%s\n", search);
	for (size_t i = 0; i < options.n; i++)
		buf_addf(&b, "%s\n", options.v[i]);
	*out = buf_detach(&b, NULL);
out:
	buf_release(&b);
	free(search);
	strv_release(&servers);
	strv_release(&skipped);
	strv_release(&options);
	return r;
}
