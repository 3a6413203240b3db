/*
 * The nftables rules clbsd wants, what its table holds, and the commands
 * between the two. Pure: the Linux driver lists the table (libnftables,
 * JSON), calls net_rules_diff() and runs the script in one transaction.
 *
 * Layout (docs/network.md):
 *
 *   table inet clbsd
 *     set bridges      type ifname; one element per network (its bridge)
 *     chain raw-pre    filter prerouting, priority raw:  jump n-NET-pre
 *     chain nat-pre    nat prerouting, dstnat:           fib daddr type local jump ports
 *     chain nat-out    nat output, -100:                 fib daddr type local jump ports
 *     chain nat-post   nat postrouting, srcnat:          jump n-NET-post
 *     chain filter-fwd filter forward, filter:           jump n-NET-fwd
 *     chain ports      the published ports' DNAT rules, one or two per port
 *     chain n-NET-pre  drop 127.0.0.0/8 arriving on the bridge
 *     chain n-NET-fwd  isolation from other networks; internal: nothing leaves
 *     chain n-NET-post outbound masquerade, host-loopback and bridge hairpin
 *
 * Every value rendered here comes from a state that passed net_state_check()
 * (names are DNS labels, bridges interface names, addresses parsed), so the
 * text cannot carry anything but what it says.
 */
#include "net/net.h"
#include "util/hash.h"
#include "util/json.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define T "inet " NET_NFT_TABLE

char *net_owner_network(const char *name)
{
	return xasprintf("clbsd/n/%s/", name);
}

char *net_owner_container(const char *name)
{
	return xasprintf("clbsd/c/%s/", name);
}

void net_ruleset_release(struct net_ruleset *rs)
{
	for (size_t i = 0; i < rs->n_chains; i++) {
		free(rs->chains[i].name);
		free(rs->chains[i].base);
		free(rs->chains[i].owner);
	}
	for (size_t i = 0; i < rs->n_rules; i++) {
		free(rs->rules[i].chain);
		free(rs->rules[i].body);
		free(rs->rules[i].comment);
		free(rs->rules[i].desc);
	}
	for (size_t i = 0; i < rs->n_elems; i++) {
		free(rs->elems[i].set);
		free(rs->elems[i].value);
		free(rs->elems[i].comment);
	}
	free(rs->chains);
	free(rs->rules);
	free(rs->elems);
	memset(rs, 0, sizeof(*rs));
}

static void add_chain(struct net_ruleset *rs, const char *name, const char *base, const char *owner,
		      bool ordered)
{
	for (size_t i = 0; i < rs->n_chains; i++)
		if (strcmp(rs->chains[i].name, name) == 0)
			return;
	rs->chains = xrealloc(rs->chains, (rs->n_chains + 1) * sizeof(rs->chains[0]));
	struct net_chain *c = &rs->chains[rs->n_chains++];
	c->name = xstrdup(name);
	c->base = base ? xstrdup(base) : NULL;
	c->owner = xstrdup(owner);
	c->ordered = ordered;
}

static void add_rule(struct net_ruleset *rs, const char *chain, const char *owner, const char *desc,
		     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void add_rule(struct net_ruleset *rs, const char *chain, const char *owner, const char *desc,
		     const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *body = xvasprintf(fmt, ap);
	va_end(ap);
	autofree char *key = xasprintf("%s %s", chain, body);
	char h[65];
	hash_sha256_hex(key, strlen(key), h);
	autofree char *comment = xasprintf("%s%.12s", owner, h);
	/* The same rule twice is one rule. */
	for (size_t i = 0; i < rs->n_rules; i++)
		if (strcmp(rs->rules[i].comment, comment) == 0) {
			free(body);
			return;
		}
	rs->rules = xrealloc(rs->rules, (rs->n_rules + 1) * sizeof(rs->rules[0]));
	struct net_rule *r = &rs->rules[rs->n_rules++];
	r->chain = xstrdup(chain);
	r->body = body;
	r->comment = steal_ptr(&comment);
	r->desc = xstrdup(desc);
}

static void add_elem(struct net_ruleset *rs, const char *set, const char *value, const char *owner)
{
	rs->elems = xrealloc(rs->elems, (rs->n_elems + 1) * sizeof(rs->elems[0]));
	struct net_elem *e = &rs->elems[rs->n_elems++];
	e->set = xstrdup(set);
	e->value = xstrdup(value);
	e->comment = xstrdup(owner);
}

void net_rules_base(struct net_ruleset *rs)
{
	const char *o = NET_OWNER_BASE;
	add_chain(rs, "raw-pre", "type filter hook prerouting priority raw; policy accept;", o,
		  false);
	add_chain(rs, "nat-pre", "type nat hook prerouting priority dstnat; policy accept;", o,
		  false);
	add_chain(rs, "nat-out", "type nat hook output priority -100; policy accept;", o, false);
	add_chain(rs, "nat-post", "type nat hook postrouting priority srcnat; policy accept;", o,
		  false);
	add_chain(rs, "filter-fwd", "type filter hook forward priority filter; policy accept;", o,
		  false);
	add_chain(rs, "ports", NULL, o, false);
	add_rule(rs, "nat-pre", o, "published ports for traffic to this host",
		 "fib daddr type local jump ports");
	add_rule(rs, "nat-out", o, "published ports for the host's own connections (hairpin)",
		 "fib daddr type local jump ports");
}

void net_rules_network(struct net_ruleset *rs, const struct net_network *n)
{
	autofree char *o = net_owner_network(n->name);
	autofree char *pre = xasprintf("n-%s-pre", n->name);
	autofree char *fwd = xasprintf("n-%s-fwd", n->name);
	autofree char *post = xasprintf("n-%s-post", n->name);
	const char *br = n->bridge;
	char s4[NET_PREFIX_STRLEN], s6[NET_PREFIX_STRLEN];
	net_prefix_fmt(&n->subnet4, s4);
	net_prefix_fmt(&n->subnet6, s6);
	add_chain(rs, pre, NULL, o, true);
	add_chain(rs, fwd, NULL, o, true);
	add_chain(rs, post, NULL, o, true);
	add_rule(rs, "raw-pre", o, "jump to the network's prerouting chain", "jump %s", pre);
	add_rule(rs, "filter-fwd", o, "jump to the network's forward chain", "jump %s", fwd);
	add_rule(rs, "nat-post", o, "jump to the network's postrouting chain", "jump %s", post);
	add_elem(rs, "bridges", br, o);

	/*
	 * route_localnet on the bridge lets host-loopback connections to a
	 * published port leave through it; these keep containers from using
	 * it to reach the host's 127.0.0.1 services.
	 */
	if (n->subnet4.addr.family) {
		add_rule(rs, pre, o, "no loopback destinations from the bridge",
			 "iifname \"%s\" ip daddr 127.0.0.0/8 drop", br);
		add_rule(rs, pre, o, "no loopback sources from the bridge",
			 "iifname \"%s\" ip saddr 127.0.0.0/8 drop", br);
	}
	if (n->internal) {
		add_rule(rs, fwd, o, "internal: nothing leaves the bridge",
			 "iifname \"%s\" oifname != \"%s\" drop", br, br);
		add_rule(rs, fwd, o, "internal: nothing enters the bridge",
			 "oifname \"%s\" iifname != \"%s\" drop", br, br);
	} else {
		add_rule(rs, fwd, o, "published ports of other networks stay reachable",
			 "iifname \"%s\" oifname != \"%s\" oifname @bridges ct status dnat accept",
			 br, br);
		add_rule(rs, fwd, o, "no traffic to other clbsd networks",
			 "iifname \"%s\" oifname != \"%s\" oifname @bridges drop", br, br);
	}
	if (n->subnet4.addr.family) {
		if (!n->internal)
			add_rule(rs, post, o, "outbound NAT (IPv4)",
				 "ip saddr %s oifname != \"%s\" masquerade", s4, br);
		add_rule(rs, post, o, "host-loopback connections to published ports",
			 "ip saddr 127.0.0.0/8 oifname \"%s\" masquerade", br);
	}
	if (n->subnet6.addr.family && !n->internal)
		add_rule(rs, post, o, "outbound NAT (IPv6)",
			 "ip6 saddr %s oifname != \"%s\" masquerade", s6, br);
	/*
	 * Hairpin: a container reaching a published port of its own network
	 * through the host. Without this the reply would go straight back
	 * over the bridge from an address the client never asked. The input
	 * interface is unknown in postrouting, so the source subnet says it.
	 */
	if (n->subnet4.addr.family)
		add_rule(rs, post, o,
			 "hairpin (IPv4): a container reaching a published port "
			 "of its network",
			 "ip saddr %s oifname \"%s\" ct status dnat masquerade", s4, br);
	if (n->subnet6.addr.family)
		add_rule(rs, post, o,
			 "hairpin (IPv6): a container reaching a published port "
			 "of its network",
			 "ip6 saddr %s oifname \"%s\" ct status dnat masquerade", s6, br);
}

void net_rules_container(struct net_ruleset *rs, const struct net_state *st,
			 const struct net_container *c)
{
	const struct net_endpoint *ep = net_primary_endpoint(st, c);
	if (!net_container_running(c) || !ep)
		return;
	autofree char *o = net_owner_container(c->name);
	for (size_t i = 0; i < c->n_ports; i++) {
		const struct net_port *p = &c->ports[i];
		const char *proto = net_proto_name(p->proto);
		const struct net_addr *to[2] = {&ep->ip4, &ep->ip6};
		char pb[96], ha[NET_ADDR_STRLEN], ta[NET_ADDR_STRLEN];
		net_port_fmt(p, pb);
		net_addr_fmt(&p->host_ip, ha);
		for (size_t f = 0; f < 2; f++) {
			bool v4 = f == 0;
			if (!to[f]->family ||
			    (p->host_ip.family && p->host_ip.family != to[f]->family))
				continue;
			net_addr_fmt(to[f], ta);
			autofree char *desc = xasprintf("publish %s to %s", pb, ta);
			autofree char *match =
				p->host_ip.family
					? xasprintf("%s daddr %s", v4 ? "ip" : "ip6", ha)
					: xasprintf("meta nfproto %s", v4 ? "ipv4" : "ipv6");
			add_rule(rs, "ports", o, desc, "%s %s dport %u dnat %s to %s%s%s:%u", match,
				 proto, p->host_port, v4 ? "ip" : "ip6", v4 ? "" : "[", ta,
				 v4 ? "" : "]", p->port);
		}
	}
}

int net_rules_build(const struct net_state *st, struct net_ruleset *out, struct clbsd_err *err)
{
	if (net_state_check(st, err) < 0)
		return -err->code;
	struct net_ruleset rs = {0};
	if (st->n_nets) {
		net_rules_base(&rs);
		for (size_t i = 0; i < st->n_nets; i++)
			net_rules_network(&rs, &st->nets[i]);
		for (size_t i = 0; i < st->n_ctrs; i++)
			net_rules_container(&rs, st, &st->ctrs[i]);
	}
	*out = rs;
	return 0;
}

/* ---- what the table holds ---- */

void net_nft_release(struct net_nft *h)
{
	strv_release(&h->chains);
	strv_release(&h->sets);
	for (size_t i = 0; i < h->n_rules; i++) {
		free(h->rules[i].chain);
		free(h->rules[i].comment);
	}
	for (size_t i = 0; i < h->n_elems; i++) {
		free(h->elems[i].set);
		free(h->elems[i].value);
		free(h->elems[i].comment);
	}
	free(h->rules);
	free(h->elems);
	memset(h, 0, sizeof(*h));
}

static void parse_elems(struct net_nft *h, const char *set, json_t *arr)
{
	size_t i;
	json_t *e;
	json_array_foreach(arr, i, e)
	{
		const char *val = NULL, *comment = NULL;
		if (json_is_string(e)) {
			val = json_string_value(e);
		} else {
			json_t *in = json_object_get(e, "elem");
			val = json_str(in, "val");
			comment = json_str(in, "comment");
		}
		if (!val)
			continue;
		h->elems = xrealloc(h->elems, (h->n_elems + 1) * sizeof(h->elems[0]));
		struct net_nft_elem *x = &h->elems[h->n_elems++];
		x->set = xstrdup(set);
		x->value = xstrdup(val);
		x->comment = comment ? xstrdup(comment) : NULL;
	}
}

int net_nft_parse(const char *text, struct net_nft *out, struct clbsd_err *err)
{
	struct net_nft h = {0};
	if (!text || !*text) {
		*out = h;
		return 0;
	}
	json_error_t je;
	json_t *root = json_loads(text, 0, &je);
	json_t *items = json_object_get(root, "nftables");
	if (!json_is_array(items)) {
		json_decref(root);
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EINVAL,
					"nft listing: not the JSON nft writes (%s)",
					root ? "no \"nftables\" array" : je.text);
	}
	size_t i;
	json_t *it;
	json_array_foreach(items, i, it)
	{
		json_t *o;
		if ((o = json_object_get(it, "table"))) {
			h.table = true;
		} else if ((o = json_object_get(it, "chain"))) {
			if (json_str(o, "name"))
				strv_push(&h.chains, json_str(o, "name"));
		} else if ((o = json_object_get(it, "set"))) {
			const char *name = json_str(o, "name");
			if (!name)
				continue;
			strv_push(&h.sets, name);
			parse_elems(&h, name, json_object_get(o, "elem"));
		} else if ((o = json_object_get(it, "rule"))) {
			const char *chain = json_str(o, "chain");
			if (!chain)
				continue;
			h.rules = xrealloc(h.rules, (h.n_rules + 1) * sizeof(h.rules[0]));
			struct net_nft_rule *r = &h.rules[h.n_rules++];
			r->chain = xstrdup(chain);
			r->handle = (uint64_t)json_int(o, "handle", 0);
			r->comment =
				json_str(o, "comment") ? xstrdup(json_str(o, "comment")) : NULL;
		}
	}
	json_decref(root);
	*out = h;
	return 0;
}

const struct net_nft_rule *net_nft_find(const struct net_nft *have, const char *chain,
					const char *comment)
{
	for (size_t i = 0; i < have->n_rules; i++)
		if (strcmp(have->rules[i].chain, chain) == 0 && have->rules[i].comment &&
		    strcmp(have->rules[i].comment, comment) == 0)
			return &have->rules[i];
	return NULL;
}

/* ---- the diff ---- */

static bool in_scope(const char *owner, const char *const *scope)
{
	if (!scope)
		return true;
	for (size_t i = 0; scope[i]; i++)
		if (owner && strncmp(owner, scope[i], strlen(scope[i])) == 0)
			return true;
	return false;
}

/*
 * Names from the kernel's listing are rendered into commands only when they
 * are plain words; something else in clbsd's table is left for the operator.
 */
static bool safe(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 200)
		return false;
	for (const char *c = name; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '_' || *c == '-' || *c == '.'))
			return false;
	return true;
}

static bool has_str(const struct strv *v, const char *s)
{
	for (size_t i = 0; i < v->n; i++)
		if (strcmp(v->v[i], s) == 0)
			return true;
	return false;
}

static const struct net_chain *want_chain(const struct net_ruleset *w, const char *name)
{
	for (size_t i = 0; i < w->n_chains; i++)
		if (strcmp(w->chains[i].name, name) == 0)
			return &w->chains[i];
	return NULL;
}

static bool want_rule(const struct net_ruleset *w, const char *chain, const char *comment)
{
	for (size_t i = 0; i < w->n_rules; i++)
		if (strcmp(w->rules[i].chain, chain) == 0 &&
		    strcmp(w->rules[i].comment, comment) == 0)
			return true;
	return false;
}

/*
 * The owner of a chain in the table: base chains are the table's,
 * "n-NET-{pre,fwd,post}" the network's; anything else belongs to nobody
 * and goes only in a full repair.
 */
static char *chain_owner(const char *name)
{
	static const char *const base[] = {"raw-pre",  "nat-pre",    "nat-out",
					   "nat-post", "filter-fwd", "ports"};
	for (size_t i = 0; i < ARRAY_SIZE(base); i++)
		if (strcmp(name, base[i]) == 0)
			return xstrdup(NET_OWNER_BASE);
	static const char *const sfx[] = {"-pre", "-fwd", "-post"};
	size_t n = strlen(name);
	if (strncmp(name, "n-", 2) == 0)
		for (size_t i = 0; i < ARRAY_SIZE(sfx); i++) {
			size_t k = strlen(sfx[i]);
			if (n > 2 + k && strcmp(name + n - k, sfx[i]) == 0) {
				autofree char *net = xstrndup(name + 2, n - 2 - k);
				return net_owner_network(net);
			}
		}
	return xstrdup("");
}

static void note(struct strv *changes, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct strv *changes, const char *fmt, ...)
{
	if (!changes)
		return;
	va_list ap;
	va_start(ap, fmt);
	strv_push_owned(changes, xvasprintf(fmt, ap));
	va_end(ap);
}

static void emit_rule(struct buf *s, const struct net_rule *r)
{
	buf_addf(s, "add rule " T " %s %s comment \"%s\"\n", r->chain, r->body, r->comment);
}

/* The chain's rules in `have` match `want`'s, in order, by comment. */
static bool same_order(const struct net_ruleset *want, const struct net_nft *have,
		       const char *chain)
{
	size_t wi = 0;
	for (size_t i = 0; i < have->n_rules; i++) {
		if (strcmp(have->rules[i].chain, chain) != 0)
			continue;
		while (wi < want->n_rules && strcmp(want->rules[wi].chain, chain) != 0)
			wi++;
		if (wi == want->n_rules || !have->rules[i].comment ||
		    strcmp(have->rules[i].comment, want->rules[wi].comment) != 0)
			return false;
		wi++;
	}
	while (wi < want->n_rules && strcmp(want->rules[wi].chain, chain) != 0)
		wi++;
	return wi == want->n_rules;
}

void net_rules_diff(const struct net_ruleset *want, const struct net_nft *have,
		    const char *const *scope, struct buf *script, struct strv *changes)
{
	bool empty = want->n_chains == 0 && want->n_rules == 0 && want->n_elems == 0;
	if (!scope && empty) {
		if (have->table) {
			buf_adds(script, "delete table " T "\n");
			note(changes, "removed nft table " T);
		}
		return;
	}
	/* Containers: table, set, chains. */
	if (!empty && !have->table) {
		buf_adds(script, "add table " T "\n");
		note(changes, "created nft table " T);
	}
	/* The networks' rules refer to @bridges, so it comes first. */
	if (!empty && !has_str(&have->sets, "bridges"))
		buf_adds(script, "add set " T " bridges { type ifname; }\n");
	for (size_t i = 0; i < want->n_chains; i++) {
		const struct net_chain *c = &want->chains[i];
		if (has_str(&have->chains, c->name))
			continue;
		if (c->base)
			buf_addf(script, "add chain " T " %s { %s }\n", c->name, c->base);
		else
			buf_addf(script, "add chain " T " %s\n", c->name);
		note(changes, "created nft chain %s", c->name);
	}

	/* Stale chains (in scope, not wanted) go whole; their rules need no deleting. */
	struct strv dead = STRV_INIT;
	for (size_t i = 0; i < have->chains.n; i++) {
		const char *name = have->chains.v[i];
		autofree char *owner = chain_owner(name);
		if (!want_chain(want, name) && in_scope(owner, scope) && safe(name))
			strv_push(&dead, name);
	}
	/* Rules in unordered chains: delete the stale and the duplicates. */
	for (size_t i = 0; i < have->n_rules; i++) {
		const struct net_nft_rule *r = &have->rules[i];
		const struct net_chain *c = want_chain(want, r->chain);
		if (has_str(&dead, r->chain) || (c && c->ordered))
			continue;
		if (!in_scope(r->comment ? r->comment : "", scope) || !safe(r->chain))
			continue;
		bool dup = r->comment && net_nft_find(have, r->chain, r->comment) != r;
		if (!dup && r->comment && want_rule(want, r->chain, r->comment))
			continue;
		buf_addf(script, "delete rule " T " %s handle %llu\n", r->chain,
			 (unsigned long long)r->handle);
		note(changes, "removed %s nft rule %s in %s", dup ? "duplicate" : "stale",
		     r->comment ? r->comment : "(no comment)", r->chain);
	}
	/* Set elements. */
	for (size_t i = 0; i < want->n_elems; i++) {
		const struct net_elem *e = &want->elems[i];
		bool found = false;
		for (size_t k = 0; k < have->n_elems && !found; k++)
			found = strcmp(have->elems[k].set, e->set) == 0 &&
				strcmp(have->elems[k].value, e->value) == 0;
		if (found || !in_scope(e->comment, scope))
			continue;
		buf_addf(script, "add element " T " %s { \"%s\" comment \"%s\" }\n", e->set,
			 e->value, e->comment);
		note(changes, "added %s to nft set %s", e->value, e->set);
	}
	for (size_t k = 0; k < have->n_elems; k++) {
		const struct net_nft_elem *h = &have->elems[k];
		bool wanted = false;
		for (size_t i = 0; i < want->n_elems && !wanted; i++)
			wanted = strcmp(want->elems[i].set, h->set) == 0 &&
				 strcmp(want->elems[i].value, h->value) == 0;
		if (wanted || !in_scope(h->comment ? h->comment : "", scope) ||
		    !net_valid_ifname(h->value))
			continue;
		buf_addf(script, "delete element " T " %s { \"%s\" }\n", h->set, h->value);
		note(changes, "removed %s from nft set %s", h->value, h->set);
	}
	/* Ordered chains are rewritten whole when they differ; others get what is missing. */
	for (size_t i = 0; i < want->n_chains; i++) {
		const struct net_chain *c = &want->chains[i];
		if (!c->ordered || !in_scope(c->owner, scope) || same_order(want, have, c->name))
			continue;
		if (has_str(&have->chains, c->name))
			buf_addf(script, "flush chain " T " %s\n", c->name);
		for (size_t k = 0; k < want->n_rules; k++)
			if (strcmp(want->rules[k].chain, c->name) == 0)
				emit_rule(script, &want->rules[k]);
		note(changes, "wrote nft chain %s", c->name);
	}
	for (size_t k = 0; k < want->n_rules; k++) {
		const struct net_rule *r = &want->rules[k];
		const struct net_chain *c = want_chain(want, r->chain);
		if ((c && c->ordered) || !in_scope(r->comment, scope) ||
		    net_nft_find(have, r->chain, r->comment))
			continue;
		emit_rule(script, r);
		note(changes, "added nft rule in %s: %s", r->chain, r->desc);
	}
	for (size_t i = 0; i < dead.n; i++) {
		buf_addf(script, "flush chain " T " %s\ndelete chain " T " %s\n", dead.v[i],
			 dead.v[i]);
		note(changes, "removed nft chain %s", dead.v[i]);
	}
	strv_release(&dead);
}
