/* The nftables model: the rules a state wants, the listing parse, the diff. */
#include "net/net.h"
#include "nettest.h"
#include "test.h"
#include "util/json.h"

#include <errno.h>
#include <sys/socket.h>

struct fixture {
	struct net_network nets[2];
	struct net_endpoint web_eps[1], db_eps[1];
	struct net_port ports[2];
	struct net_container ctrs[2];
	struct net_state st;
};

static void fixture(struct fixture *f)
{
	struct clbsd_err err;
	memset(f, 0, sizeof(*f));
	f->nets[0] = (struct net_network){"default", "clbsd0", pfx("10.88.0.0/24"),
					  pfx("fd00:88::/64"), false};
	f->nets[1] = (struct net_network){"back", "cbr-back", pfx("10.89.0.0/24"), {{0}, 0}, true};
	f->web_eps[0] =
		(struct net_endpoint){"default", ip("10.88.0.2"), ip("fd00:88::2"), NULL, 0};
	f->db_eps[0] = (struct net_endpoint){"back", ip("10.89.0.2"), {0, {0}}, NULL, 0};
	net_port_parse("8080:80", &f->ports[0], &err);
	net_port_parse("127.0.0.1:5353:53/udp", &f->ports[1], &err);
	f->ctrs[0] = (struct net_container){"web", 100, -1, f->web_eps, 1, f->ports, 2, false};
	f->ctrs[1] = (struct net_container){"db", 101, -1, f->db_eps, 1, NULL, 0, false};
	f->st = (struct net_state){f->nets, 2, f->ctrs, 2};
}

/* The JSON `nft -j -a list table inet clbsd` would print if the table held rs. */
static char *listing(const struct net_ruleset *rs)
{
	json_t *items = json_array();
	json_array_append_new(items, json_pack("{s:{s:s}}", "metainfo", "version", "1.0.6"));
	json_array_append_new(items, json_pack("{s:{s:s,s:s,s:i}}", "table", "family", "inet",
					       "name", "clbsd", "handle", 1));
	int handle = 2;
	for (size_t i = 0; i < rs->n_chains; i++)
		json_array_append_new(items, json_pack("{s:{s:s,s:s,s:s,s:i}}", "chain", "family",
						       "inet", "table", "clbsd", "name",
						       rs->chains[i].name, "handle", handle++));
	json_t *elems = json_array();
	for (size_t i = 0; i < rs->n_elems; i++)
		json_array_append_new(elems,
				      json_pack("{s:{s:s,s:s}}", "elem", "val", rs->elems[i].value,
						"comment", rs->elems[i].comment));
	json_array_append_new(items, json_pack("{s:{s:s,s:s,s:o}}", "set", "name", "bridges",
					       "type", "ifname", "elem", elems));
	for (size_t i = 0; i < rs->n_rules; i++)
		json_array_append_new(items, json_pack("{s:{s:s,s:s,s:i,s:s,s:[]}}", "rule",
						       "table", "clbsd", "chain",
						       rs->rules[i].chain, "handle", 100 + (int)i,
						       "comment", rs->rules[i].comment, "expr"));
	json_t *root = json_pack("{s:o}", "nftables", items);
	char *s = json_dumps(root, 0);
	json_decref(root);
	return s;
}

static char *diff(const struct net_ruleset *want, const char *json, const char *const *scope)
{
	struct net_nft have;
	struct clbsd_err err;
	if (net_nft_parse(json, &have, &err) < 0)
		return xstrdup(err.msg);
	struct buf b = BUF_INIT;
	net_rules_diff(want, &have, scope, &b, NULL);
	net_nft_release(&have);
	return buf_detach(&b, NULL);
}

static const struct net_rule *find_rule(const struct net_ruleset *rs, const char *body)
{
	for (size_t i = 0; i < rs->n_rules; i++)
		if (strcmp(rs->rules[i].body, body) == 0)
			return &rs->rules[i];
	return NULL;
}

TEST(rules_for_a_state)
{
	struct fixture f;
	struct net_ruleset rs;
	struct clbsd_err err;
	fixture(&f);
	CHECK_INT(net_rules_build(&f.st, &rs, &err), 0);
	const struct net_rule *r;
	r = find_rule(&rs, "meta nfproto ipv4 tcp dport 8080 dnat ip to 10.88.0.2:80");
	CHECK(r && strcmp(r->chain, "ports") == 0 && strncmp(r->comment, "clbsd/c/web/", 12) == 0);
	CHECK(find_rule(&rs, "meta nfproto ipv6 tcp dport 8080 dnat ip6 to [fd00:88::2]:80"));
	r = find_rule(&rs, "ip daddr 127.0.0.1 udp dport 5353 dnat ip to 10.88.0.2:53");
	CHECK(r && strcmp(r->desc, "publish 127.0.0.1:5353:53/udp to 10.88.0.2") == 0);
	CHECK(find_rule(&rs, "ip saddr 10.88.0.0/24 oifname != \"clbsd0\" masquerade"));
	CHECK(find_rule(&rs, "ip6 saddr fd00:88::/64 oifname != \"clbsd0\" masquerade"));
	CHECK(find_rule(&rs, "ip saddr 127.0.0.0/8 oifname \"clbsd0\" masquerade"));
	CHECK(find_rule(&rs, "iifname \"clbsd0\" ip daddr 127.0.0.0/8 drop"));
	/* Hairpin by source: postrouting knows no input interface. */
	CHECK(find_rule(&rs, "ip saddr 10.88.0.0/24 oifname \"clbsd0\" ct status dnat masquerade"));
	CHECK(find_rule(&rs, "ip6 saddr fd00:88::/64 oifname \"clbsd0\" "
			     "ct status dnat masquerade"));
	for (size_t i = 0; i < rs.n_rules; i++)
		if (strstr(rs.rules[i].chain, "-post") && strstr(rs.rules[i].body, "iifname"))
			FAILF("postrouting rule matches iifname: %s", rs.rules[i].body);
	/* The internal network: no NAT out, nothing crosses its bridge. */
	CHECK(!find_rule(&rs, "ip saddr 10.89.0.0/24 oifname != \"cbr-back\" masquerade"));
	CHECK(find_rule(&rs, "iifname \"cbr-back\" oifname != \"cbr-back\" drop"));
	CHECK(find_rule(&rs, "oifname \"cbr-back\" iifname != \"cbr-back\" drop"));
	CHECK_INT(rs.n_elems, 2);
	/* Every comment is unique and fits nft's 128-byte limit. */
	for (size_t i = 0; i < rs.n_rules; i++) {
		CHECK(strlen(rs.rules[i].comment) < 128);
		for (size_t k = 0; k < i; k++)
			CHECK(strcmp(rs.rules[i].comment, rs.rules[k].comment) != 0);
	}
	net_ruleset_release(&rs);
	/* A stopped container has no port rules. */
	f.ctrs[0].pid = 0;
	CHECK_INT(net_rules_build(&f.st, &rs, &err), 0);
	CHECK(!find_rule(&rs, "meta nfproto ipv4 tcp dport 8080 dnat ip to 10.88.0.2:80"));
	net_ruleset_release(&rs);
	/* Nothing declared: nothing wanted. */
	struct net_state none = {NULL, 0, NULL, 0};
	CHECK_INT(net_rules_build(&none, &rs, &err), 0);
	CHECK_INT(rs.n_chains + rs.n_rules + rs.n_elems, 0);
	net_ruleset_release(&rs);
}

TEST(diff_from_nothing_then_converged)
{
	struct fixture f;
	struct net_ruleset rs;
	struct clbsd_err err;
	fixture(&f);
	CHECK_INT(net_rules_build(&f.st, &rs, &err), 0);
	char *s = diff(&rs, NULL, NULL);
	const char *head = "add table inet clbsd\nadd set inet clbsd bridges { type ifname; }\n";
	CHECK(strncmp(s, head, strlen(head)) == 0);
	CHECK(strstr(s, "add chain inet clbsd nat-pre { type nat hook prerouting priority "
			"dstnat; policy accept; }\n") != NULL);
	CHECK(strstr(s, "add element inet clbsd bridges { \"clbsd0\" comment \"clbsd/n/default/\" "
			"}\n") != NULL);
	/* The set and chains come before the rules that use them. */
	CHECK(strstr(s, "add chain inet clbsd ports") < strstr(s, "jump ports"));
	CHECK(strstr(s, "add chain inet clbsd n-default-post") < strstr(s, "jump n-default-post"));
	free(s);
	char *j = listing(&rs);
	s = diff(&rs, j, NULL);
	CHECK_STR(s, "");
	free(s);
	free(j);
	net_ruleset_release(&rs);
}

TEST(diff_readds_a_missing_rule_only)
{
	struct fixture f;
	struct net_ruleset rs, less;
	struct clbsd_err err;
	fixture(&f);
	CHECK_INT(net_rules_build(&f.st, &rs, &err), 0);
	CHECK_INT(net_rules_build(&f.st, &less, &err), 0);
	/* Drop the TCP v4 DNAT from what the table holds. */
	for (size_t i = 0; i < less.n_rules; i++)
		if (strstr(less.rules[i].body, "tcp dport 8080 dnat ip to")) {
			free(less.rules[i].chain);
			less.rules[i].chain = xstrdup("elsewhere");
		}
	char *j = listing(&less);
	char *s = diff(&rs, j, NULL);
	const struct net_rule *r =
		find_rule(&rs, "meta nfproto ipv4 tcp dport 8080 dnat ip to 10.88.0.2:80");
	char *want =
		xasprintf("add rule inet clbsd ports %s comment \"%s\"\n", r->body, r->comment);
	CHECK(strstr(s, want) != NULL);
	/* The same comment in a chain where it does not belong is stale there. */
	CHECK(strstr(s, "delete rule inet clbsd elsewhere handle ") != NULL);
	CHECK(strstr(s, "add rule inet clbsd n-") == NULL);
	free(want);
	free(s);
	free(j);
	net_ruleset_release(&rs);
	net_ruleset_release(&less);
}

TEST(diff_removes_stale_and_duplicates_by_handle)
{
	struct fixture f;
	struct net_ruleset rs;
	struct clbsd_err err;
	fixture(&f);
	CHECK_INT(net_rules_build(&f.st, &rs, &err), 0);
	char *j = listing(&rs);
	/* A rule of a container that is gone, one without comment, and a duplicate. */
	json_t *root = json_loads(j, 0, NULL);
	json_t *items = json_object_get(root, "nftables");
	json_array_append_new(items, json_pack("{s:{s:s,s:i,s:s}}", "rule", "chain", "ports",
					       "handle", 900, "comment", "clbsd/c/gone/abc"));
	json_array_append_new(items,
			      json_pack("{s:{s:s,s:i}}", "rule", "chain", "ports", "handle", 901));
	const struct net_rule *tcp4 =
		find_rule(&rs, "meta nfproto ipv4 tcp dport 8080 dnat ip to 10.88.0.2:80");
	json_array_append_new(items, json_pack("{s:{s:s,s:i,s:s}}", "rule", "chain", "ports",
					       "handle", 902, "comment", tcp4->comment));
	free(j);
	j = json_dumps(root, 0);
	json_decref(root);
	char *s = diff(&rs, j, NULL);
	CHECK_STR(s, "delete rule inet clbsd ports handle 900\n"
		     "delete rule inet clbsd ports handle 901\ndelete rule inet clbsd ports handle "
		     "902\n");
	free(s);
	/* Scoped to web: only web's rules are candidates. */
	const char *web[] = {"clbsd/c/web/", NULL};
	s = diff(&rs, j, web);
	CHECK_STR(s, "delete rule inet clbsd ports handle 902\n");
	free(s);
	free(j);
	net_ruleset_release(&rs);
}

TEST(diff_detach_scope)
{
	struct fixture f;
	struct net_ruleset all, without;
	struct clbsd_err err;
	fixture(&f);
	CHECK_INT(net_rules_build(&f.st, &all, &err), 0);
	char *j = listing(&all);
	/* Detach web: the want without web's rules, scoped to web. */
	f.ctrs[0].pid = 0;
	CHECK_INT(net_rules_build(&f.st, &without, &err), 0);
	const char *web[] = {"clbsd/c/web/", NULL};
	char *s = diff(&without, j, web);
	size_t dels = 0;
	for (const char *p = s; (p = strstr(p, "delete rule inet clbsd ports handle ")); p++)
		dels++;
	CHECK_INT(dels, 3); /* tcp v4, tcp v6, udp on 127.0.0.1 */
	CHECK(strstr(s, "add ") == NULL);
	free(s);
	free(j);
	net_ruleset_release(&all);
	net_ruleset_release(&without);
}

TEST(diff_network_down_and_table_removal)
{
	struct fixture f;
	struct net_ruleset all, less;
	struct clbsd_err err;
	fixture(&f);
	CHECK_INT(net_rules_build(&f.st, &all, &err), 0);
	char *j = listing(&all);
	/* Remove network back (db goes with it). */
	f.st.n_nets = 1;
	f.st.n_ctrs = 1;
	CHECK_INT(net_rules_build(&f.st, &less, &err), 0);
	const char *back[] = {"clbsd/n/back/", NULL};
	char *s = diff(&less, j, back);
	CHECK(strstr(s, "delete element inet clbsd bridges { \"cbr-back\" }\n") != NULL);
	CHECK(strstr(s, "flush chain inet clbsd n-back-fwd\ndelete chain inet clbsd n-back-fwd\n"));
	CHECK(strstr(s, "n-default") == NULL);
	/* The jumps go before the chains they jump to. */
	CHECK(strstr(s, "delete rule inet clbsd raw-pre handle") <
	      strstr(s, "delete chain inet clbsd n-back-pre"));
	free(s);
	/* No networks at all: the table goes. */
	struct net_ruleset none = {0};
	s = diff(&none, j, NULL);
	CHECK_STR(s, "delete table inet clbsd\n");
	free(s);
	s = diff(&none, NULL, NULL);
	CHECK_STR(s, "");
	free(s);
	free(j);
	net_ruleset_release(&all);
	net_ruleset_release(&less);
}

TEST(diff_rewrites_an_ordered_chain)
{
	struct fixture f;
	struct net_ruleset rs;
	struct clbsd_err err;
	fixture(&f);
	CHECK_INT(net_rules_build(&f.st, &rs, &err), 0);
	/* Swap two rules of n-default-post in what the table holds. */
	size_t a = SIZE_MAX, b = SIZE_MAX;
	for (size_t i = 0; i < rs.n_rules; i++)
		if (strcmp(rs.rules[i].chain, "n-default-post") == 0) {
			if (a == SIZE_MAX)
				a = i;
			else if (b == SIZE_MAX)
				b = i;
		}
	struct net_rule t = rs.rules[a];
	rs.rules[a] = rs.rules[b];
	rs.rules[b] = t;
	char *j = listing(&rs);
	rs.rules[b] = rs.rules[a];
	rs.rules[a] = t;
	char *s = diff(&rs, j, NULL);
	const char *head =
		"flush chain inet clbsd n-default-post\nadd rule inet clbsd n-default-post ";
	CHECK(strncmp(s, head, strlen(head)) == 0);
	CHECK(strstr(s, "n-default-fwd") == NULL);
	free(s);
	free(j);
	net_ruleset_release(&rs);
}

TEST(parse_refuses_garbage)
{
	struct net_nft have;
	struct clbsd_err err;
	CHECK(net_nft_parse("{", &have, &err) < 0);
	CHECK(net_nft_parse("{\"x\":1}", &have, &err) < 0);
	CHECK_INT(net_nft_parse("{\"nftables\":[{\"rule\":{\"chain\":\"ports\",\"handle\":7}}]}",
				&have, &err),
		  0);
	CHECK_INT(have.n_rules, 1);
	CHECK_INT(have.rules[0].handle, 7);
	CHECK(have.rules[0].comment == NULL);
	net_nft_release(&have);
}

TEST_MAIN_BEGIN("net.rules")
RUN(rules_for_a_state);
RUN(diff_from_nothing_then_converged);
RUN(diff_readds_a_missing_rule_only);
RUN(diff_removes_stale_and_duplicates_by_handle);
RUN(diff_detach_scope);
RUN(diff_network_down_and_table_removal);
RUN(diff_rewrites_an_ordered_chain);
RUN(parse_refuses_garbage);
TEST_MAIN_END
