/*
 * The Linux networking driver against a real kernel, inside namespaces this
 * test makes and nothing else:
 *
 *   this process  unshare(CLONE_NEWNET) at start: the "host", with the
 *                 bridges, the nft table and an "out0" veth to the outside
 *   a, b, c, s    child processes, each in a network namespace of its own
 *                 (the containers), serving TCP :80 and UDP :53
 *   outside       a child in its own namespace behind out0 (198.18.0.2,
 *                 fd00:198::2) with no route back to the containers, so
 *                 only masquerading lets them reach it; it is also the
 *                 "second namespace" that reaches published ports
 *
 * Traffic goes only between these namespaces and loopback. Children die
 * with the test (PR_SET_PDEATHSIG) and are killed by pid at the end; the
 * namespaces, bridges and nft table vanish with the processes. Every
 * server answers "NAME PEER-ADDRESS", so a test sees who answered and
 * from where the connection seemed to come.
 */
#include "net/linux/net_linux.h"
#include "net/net.h"
#include "nettest.h"
#include "test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- namespaces with a tiny server ---- */

static void fmt_peer(const struct sockaddr_storage *ss, char *out, size_t len)
{
	if (ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, out,
			  (socklen_t)len);
		return;
	}
	const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
	if (IN6_IS_ADDR_V4MAPPED(a))
		inet_ntop(AF_INET, &a->s6_addr[12], out, (socklen_t)len);
	else
		inet_ntop(AF_INET6, a, out, (socklen_t)len);
}

/* A dual-stack socket on port (IPv4 only when the kernel has no IPv6). */
static int server_socket(int type, unsigned port)
{
	int one = 1, zero = 0;
	int s = socket(AF_INET6, type, 0);
	if (s >= 0) {
		struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
		setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(s, (struct sockaddr *)&a, sizeof(a)) == 0)
			return s;
		close(s);
	}
	s = socket(AF_INET, type, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0)
		_exit(3);
	return s;
}

static __attribute__((noreturn)) void serve(const char *name)
{
	int t = server_socket(SOCK_STREAM, 80), u = server_socket(SOCK_DGRAM, 53);
	listen(t, 16);
	for (;;) {
		struct pollfd p[2] = {{t, POLLIN, 0}, {u, POLLIN, 0}};
		if (poll(p, 2, -1) < 0)
			continue;
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char peer[INET6_ADDRSTRLEN], msg[128], buf[256];
		if (p[0].revents & POLLIN) {
			int c = accept(t, (struct sockaddr *)&ss, &sl);
			if (c >= 0) {
				fmt_peer(&ss, peer, sizeof(peer));
				int n = snprintf(msg, sizeof(msg), "%s %s\n", name, peer);
				if (write(c, msg, (size_t)n) < 0) {
					/* the client went away; nothing to do */
				}
				close(c);
			}
		}
		if (p[1].revents & POLLIN) {
			sl = sizeof(ss);
			if (recvfrom(u, buf, sizeof(buf), 0, (struct sockaddr *)&ss, &sl) >= 0) {
				fmt_peer(&ss, peer, sizeof(peer));
				int n = snprintf(msg, sizeof(msg), "%s %s\n", name, peer);
				sendto(u, msg, (size_t)n, 0, (struct sockaddr *)&ss, sl);
			}
		}
	}
}

/* A child in a new network namespace serving as `name`; its pid, or -1. */
static pid_t spawn(const char *name)
{
	int p[2];
	if (pipe(p) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(p[0]);
		if (unshare(CLONE_NEWNET) < 0)
			_exit(2);
		if (write(p[1], "x", 1) != 1)
			_exit(2);
		close(p[1]);
		serve(name);
	}
	close(p[1]);
	char c;
	ssize_t n = pid > 0 ? read(p[0], &c, 1) : -1;
	close(p[0]);
	if (n != 1) {
		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		return -1;
	}
	return pid;
}

static void reap(pid_t *pid)
{
	if (*pid > 0) {
		kill(*pid, SIGKILL);
		waitpid(*pid, NULL, 0);
	}
	*pid = 0;
}

/*
 * Ask addr:port over TCP or UDP from the network namespace of ns_pid (0:
 * this one), in a child, within timeout_ms. The reply's first line, or
 * "error: ..." / "timeout".
 */
static char *query_from(pid_t ns_pid, int proto, const char *addr, unsigned port, int timeout_ms)
{
	int p[2];
	int nsfd = -1;
	if (ns_pid > 0) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)ns_pid);
		nsfd = open(path, O_RDONLY | O_CLOEXEC);
		if (nsfd < 0)
			return xasprintf("error: open %s", path);
	}
	if (pipe(p) < 0)
		return xstrdup("error: pipe");
	pid_t pid = fork();
	if (pid == 0) {
		char out[256] = "timeout";
		close(p[0]);
		alarm((unsigned)(timeout_ms / 1000 + 2));
		if (nsfd >= 0 && setns(nsfd, CLONE_NEWNET) < 0)
			_exit(1);
		struct sockaddr_storage ss;
		socklen_t sl;
		memset(&ss, 0, sizeof(ss));
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
			s4->sin_family = AF_INET;
			s4->sin_port = htons(port);
			sl = sizeof(*s4);
		} else {
			inet_pton(AF_INET6, addr, &s6->sin6_addr);
			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons(port);
			sl = sizeof(*s6);
		}
		int s = socket(ss.ss_family, proto == IPPROTO_TCP ? SOCK_STREAM : SOCK_DGRAM, 0);
		fcntl(s, F_SETFL, O_NONBLOCK);
		int r = connect(s, (struct sockaddr *)&ss, sl);
		if (r < 0 && errno != EINPROGRESS) {
			snprintf(out, sizeof(out), "error: connect: %s", strerror(errno));
		} else {
			if (proto == IPPROTO_UDP && send(s, "?", 1, 0) < 0)
				snprintf(out, sizeof(out), "error: send: %s", strerror(errno));
			struct pollfd pf = {s, POLLIN, 0};
			int n = poll(&pf, 1, timeout_ms);
			if (n == 1) {
				ssize_t k = recv(s, out, sizeof(out) - 1, 0);
				if (k > 0) {
					out[k] = '\0';
					out[strcspn(out, "\n")] = '\0';
				} else {
					snprintf(out, sizeof(out), "error: recv: %s",
						 k == 0 ? "closed" : strerror(errno));
				}
			}
		}
		if (write(p[1], out, strlen(out)) < 0)
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	if (nsfd >= 0)
		close(nsfd);
	char buf[256];
	ssize_t n = pid > 0 ? read(p[0], buf, sizeof(buf) - 1) : -1;
	close(p[0]);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	buf[n > 0 ? n : 0] = '\0';
	return n > 0 ? xstrdup(buf) : xstrdup("error: no answer from the query process");
}

static char *query(pid_t ns_pid, int proto, const char *addr, unsigned port)
{
	return query_from(ns_pid, proto, addr, port, 3000);
}

/* ---- the world ---- */

static struct {
	const struct net_ops *ops;
	pid_t a, b, c, s, outside;
	struct net_network nets[3]; /* default (v4+v6), iso (internal), small (/28) */
	struct net_endpoint a_eps[1], b_eps[1], c_eps[1], s_eps[1];
	struct net_port a_ports[3];
	struct net_container ctrs[4];
	struct net_state st;
	bool ready;
} W;

static const char *const b_alias[] = {"bee"};

static void world_init(void)
{
	struct clbsd_err err;
	W.ops = net_default_ops();
	W.nets[0] = (struct net_network){"default", "clbsd0", pfx("10.250.0.0/24"),
					 pfx("fd00:250::/64"), false};
	W.nets[1] = (struct net_network){"iso", "cbr-iso", pfx("10.251.0.0/24"), {{0}, 0}, true};
	W.nets[2] =
		(struct net_network){"small", "cbr-small", pfx("10.252.0.0/28"), {{0}, 0}, false};
	W.a_eps[0] = (struct net_endpoint){"default", ip("10.250.0.2"), ip("fd00:250::2"), NULL, 0};
	W.b_eps[0] =
		(struct net_endpoint){"default", ip("10.250.0.3"), ip("fd00:250::3"), b_alias, 1};
	W.c_eps[0] = (struct net_endpoint){"iso", ip("10.251.0.2"), {0, {0}}, NULL, 0};
	net_port_parse("8080:80", &W.a_ports[0], &err);
	net_port_parse("5353:53/udp", &W.a_ports[1], &err);
	net_port_parse("127.0.0.1:5354:53/udp", &W.a_ports[2], &err);
	W.ctrs[0] = (struct net_container){"a", W.a, -1, W.a_eps, 1, W.a_ports, 3, false};
	W.ctrs[1] = (struct net_container){"b", W.b, -1, W.b_eps, 1, NULL, 0, false};
	W.ctrs[2] = (struct net_container){"c", W.c, -1, W.c_eps, 1, NULL, 0, false};
	/* s's address comes from IPAM in the exhaustion test. */
	W.ctrs[3] = (struct net_container){"s", W.s, -1, W.s_eps, 0, NULL, 0, false};
	W.st = (struct net_state){W.nets, 3, W.ctrs, 4};
}

/* A command for the host's nft, run through libnftables. */
static int nft(const char *script)
{
	struct clbsd_err err;
	int r = nftx_run(script, &err);
	if (r < 0)
		printf("# nft: %s\n", err.msg);
	return r;
}

/* The outside: out0 here (198.18.0.1, fd00:198::1) to eth0 there (.2, ::2). */
static int outside_link(struct clbsd_err *err)
{
	autonl struct nl_sock *sk = NULL, *ns = NULL;
	autoclose int nsfd = -1;
	struct net_container o = {"outside", W.outside, -1, NULL, 0, NULL, 0, false};
	static const uint8_t mac[6] = {0x02, 0xee, 0, 0, 0, 1};
	autolink struct rtnl_link *l = NULL, *lo = NULL, *pl = NULL, *plo = NULL;
	if (nlx_open(-1, &sk, err) < 0 || nlx_netns_open(&o, &nsfd, err) < 0 ||
	    nlx_open(nsfd, &ns, err) < 0)
		return -1;
	if (nlx_link_get(sk, "lo", &lo, err) < 0 || nlx_link_up(sk, lo, err) < 0)
		return -1;
	if (nlx_veth_add(sk, "out0", 0, "eth0", nsfd, mac, err) < 0 ||
	    nlx_link_get(sk, "out0", &l, err) < 0 || nlx_link_get(ns, "eth0", &pl, err) < 0 ||
	    nlx_link_get(ns, "lo", &plo, err) < 0)
		return -1;
	struct net_addr h4 = ip("198.18.0.1"), o4 = ip("198.18.0.2");
	struct net_addr h6 = ip("fd00:198::1"), o6 = ip("fd00:198::2");
	if (nlx_addr_add(sk, rtnl_link_get_ifindex(l), &h4, 24, err) < 0 ||
	    nlx_addr_add(sk, rtnl_link_get_ifindex(l), &h6, 64, err) < 0 ||
	    nlx_addr_add(ns, rtnl_link_get_ifindex(pl), &o4, 24, err) < 0 ||
	    nlx_addr_add(ns, rtnl_link_get_ifindex(pl), &o6, 64, err) < 0 ||
	    nlx_link_up(ns, pl, err) < 0 || nlx_link_up(ns, plo, err) < 0)
		return -1;
	return 0;
}

/* Does s start with prefix? */
static bool starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The doctor's verdict for a container: its lines joined, and the bad count. */
static char *doctor(const char *name, size_t *n_bad)
{
	struct strv lines = STRV_INIT;
	struct clbsd_err err;
	if (W.ops->doctor(&W.st, name, &lines, n_bad, &err) < 0) {
		strv_release(&lines);
		*n_bad = 999;
		return xasprintf("doctor failed: %s", err.msg);
	}
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < lines.n; i++)
		buf_addf(&b, "%s\n", lines.v[i]);
	strv_release(&lines);
	return buf_detach(&b, NULL);
}

/* Is any link of this namespace marked as clbsd's, or called name? */
static bool link_left(const char *name)
{
	struct clbsd_err err;
	autonl struct nl_sock *sk = NULL;
	struct nl_cache *c = NULL;
	if (nlx_open(-1, &sk, &err) < 0 || nlx_link_cache(sk, &c, &err) < 0)
		return true;
	bool found = false;
	for (struct nl_object *o = nl_cache_get_first(c); o; o = nl_cache_get_next(o)) {
		struct rtnl_link *l = (struct rtnl_link *)o;
		if ((name && strcmp(rtnl_link_get_name(l), name) == 0) ||
		    (!name && starts(nlx_link_alias(l), "clbsd:")))
			found = true;
	}
	nl_cache_free(c);
	return found;
}

/* ---- the cases, in order; each builds on the previous ---- */

#define NEED_WORLD()                                                                               \
	do {                                                                                       \
		if (!W.ready)                                                                      \
			FAILF("the test world could not be set up");                               \
	} while (0)

TEST(network_up_makes_bridge_and_enables_forwarding)
{
	NEED_WORLD();
	struct clbsd_err err;
	struct net_report rep;
	CHECK_INT(nlx_sysctl_set("net/ipv4/ip_forward", "0", &err), 0);
	net_report_init(&rep);
	if (W.ops->network_up(&W.nets[0], &rep, &err) < 0)
		FAILF("network_up: %s", err.msg);
	CHECK(rep.forwarding_enabled);
	bool created = false;
	for (size_t i = 0; i < rep.changes.n; i++)
		created |=
			strcmp(rep.changes.v[i], "created bridge clbsd0 for network default") == 0;
	CHECK(created);
	net_report_release(&rep);
	/* Again: nothing to do. */
	net_report_init(&rep);
	CHECK_INT(W.ops->network_up(&W.nets[0], &rep, &err), 0);
	if (rep.changes.n)
		FAILF("a second network_up changed things: %s", rep.changes.v[0]);
	CHECK(!rep.forwarding_enabled);
	net_report_release(&rep);
	CHECK_INT(W.ops->network_up(&W.nets[1], NULL, &err), 0);
	CHECK_INT(W.ops->network_up(&W.nets[2], NULL, &err), 0);
}

TEST(attach_two_containers_that_reach_each_other)
{
	NEED_WORLD();
	struct clbsd_err err;
	struct net_report rep;
	net_report_init(&rep);
	if (W.ops->attach(&W.st, "a", &rep, &err) < 0)
		FAILF("attach a: %s", err.msg);
	if (W.ops->attach(&W.st, "b", &rep, &err) < 0)
		FAILF("attach b: %s", err.msg);
	net_report_release(&rep);
	/* Attaching again changes nothing. */
	net_report_init(&rep);
	CHECK_INT(W.ops->attach(&W.st, "a", &rep, &err), 0);
	if (rep.changes.n)
		FAILF("a second attach changed things: %s", rep.changes.v[0]);
	net_report_release(&rep);
	autofree char *ab = query(W.b, IPPROTO_TCP, "10.250.0.2", 80);
	CHECK_STR(ab, "a 10.250.0.3");
	autofree char *ba = query(W.a, IPPROTO_TCP, "10.250.0.3", 80);
	CHECK_STR(ba, "b 10.250.0.2");
	autofree char *ab6 = query(W.b, IPPROTO_TCP, "fd00:250::2", 80);
	CHECK_STR(ab6, "a fd00:250::3");
	autofree char *udp = query(W.b, IPPROTO_UDP, "10.250.0.2", 53);
	CHECK_STR(udp, "a 10.250.0.3");
}

TEST(published_ports_answer_from_the_host)
{
	NEED_WORLD();
	/* 127.0.0.1: the output-chain DNAT, route_localnet and the loopback masquerade. */
	autofree char *lo = query(0, IPPROTO_TCP, "127.0.0.1", 8080);
	CHECK_STR(lo, "a 10.250.0.1");
	autofree char *lu = query(0, IPPROTO_UDP, "127.0.0.1", 5353);
	CHECK_STR(lu, "a 10.250.0.1");
	autofree char *lu2 = query(0, IPPROTO_UDP, "127.0.0.1", 5354);
	CHECK_STR(lu2, "a 10.250.0.1");
	/* A host address: no masquerade needed, the host routes the reply. */
	autofree char *ho = query(0, IPPROTO_TCP, "198.18.0.1", 8080);
	CHECK_STR(ho, "a 198.18.0.1");
	autofree char *h6 = query(0, IPPROTO_TCP, "fd00:198::1", 8080);
	CHECK_STR(h6, "a fd00:198::1");
}

TEST(published_ports_answer_from_another_namespace)
{
	NEED_WORLD();
	/* The client's address is kept. */
	autofree char *t4 = query(W.outside, IPPROTO_TCP, "198.18.0.1", 8080);
	CHECK_STR(t4, "a 198.18.0.2");
	autofree char *u4 = query(W.outside, IPPROTO_UDP, "198.18.0.1", 5353);
	CHECK_STR(u4, "a 198.18.0.2");
	autofree char *t6 = query(W.outside, IPPROTO_TCP, "fd00:198::1", 8080);
	CHECK_STR(t6, "a fd00:198::2");
	/* 127.0.0.1:5354 is published on loopback only. */
	autofree char *no = query_from(W.outside, IPPROTO_UDP, "198.18.0.1", 5354, 700);
	CHECK(!starts(no, "a "));
}

TEST(hairpin_from_containers)
{
	NEED_WORLD();
	/*
	 * b reaches a's published port through the host; a reaches itself.
	 * Both with and without br_netfilter (Docker's hosts load it), which
	 * would un-NAT bridged replies and hide a missing masquerade.
	 */
	const char *brnf[] = {"net/bridge/bridge-nf-call-iptables",
			      "net/bridge/bridge-nf-call-ip6tables"};
	char was[2][16] = {"", ""};
	struct clbsd_err err;
	for (int i = 0; i < 2; i++)
		nlx_sysctl_get(brnf[i], was[i], sizeof(was[i]), &err);
	/* The sysctls are put back before any failure is reported. */
	char *why = NULL;
	for (int on = 0; on < 2 && !why; on++) {
		if (!was[0][0] && on)
			break; /* no br_netfilter here: the plain case is the only one */
		for (int i = 0; i < 2 && was[0][0]; i++)
			if (nlx_sysctl_set(brnf[i], on ? "1" : "0", &err) < 0)
				why = xasprintf("set %s: %s", brnf[i], err.msg);
		static const struct {
			bool from_b;
			const char *addr, *want;
		} q[] = {
			{true, "10.250.0.1", "a 10.250.0.1"},
			{false, "198.18.0.1", "a 10.250.0.1"},
			{true, "fd00:198::1", "a fd00:250::1"},
		};
		for (size_t k = 0; k < ARRAY_SIZE(q) && !why; k++) {
			pid_t from = q[k].from_b ? W.b : W.a;
			autofree char *got = query(from, IPPROTO_TCP, q[k].addr, 8080);
			if (strcmp(got, q[k].want) != 0)
				why = xasprintf("br_netfilter %s: %s to %s:8080: %s, expected %s",
						on ? "on" : "off", q[k].from_b ? "b" : "a",
						q[k].addr, got, q[k].want);
		}
	}
	for (int i = 0; i < 2 && was[0][0]; i++)
		nlx_sysctl_set(brnf[i], was[i], &err);
	if (why) {
		autofree char *msg = why;
		FAILF("%s", msg);
	}
}

TEST(outbound_nat_reaches_the_outside)
{
	NEED_WORLD();
	/* The outside has no route to 10.250.0.0/24: only masquerading gets an answer back. */
	autofree char *t4 = query(W.a, IPPROTO_TCP, "198.18.0.2", 80);
	CHECK_STR(t4, "outside 198.18.0.1");
	autofree char *u4 = query(W.b, IPPROTO_UDP, "198.18.0.2", 53);
	CHECK_STR(u4, "outside 198.18.0.1");
	autofree char *t6 = query(W.a, IPPROTO_TCP, "fd00:198::2", 80);
	CHECK_STR(t6, "outside fd00:198::1");
}

TEST(internal_network_stays_inside)
{
	NEED_WORLD();
	struct clbsd_err err;
	if (W.ops->attach(&W.st, "c", NULL, &err) < 0)
		FAILF("attach c: %s", err.msg);
	/* The host sees c; c sees nothing beyond the host, nor other networks. */
	autofree char *hc = query(0, IPPROTO_TCP, "10.251.0.2", 80);
	CHECK_STR(hc, "c 10.251.0.1");
	autofree char *out = query_from(W.c, IPPROTO_TCP, "198.18.0.2", 80, 700);
	CHECK(!starts(out, "outside"));
	autofree char *ca = query_from(W.c, IPPROTO_TCP, "10.250.0.2", 80, 700);
	CHECK(!starts(ca, "a "));
	/* a's network cannot reach into c's either. */
	autofree char *ac = query_from(W.a, IPPROTO_TCP, "10.251.0.2", 80, 700);
	CHECK(!starts(ac, "c "));
}

TEST(doctor_is_happy_then_names_what_broke)
{
	NEED_WORLD();
	size_t n_bad;
	autofree char *d = doctor("a", &n_bad);
	if (n_bad)
		FAILF("doctor found %zu problems on a healthy container:\n%s", n_bad, d);
	CHECK(strstr(d, "ok bridge clbsd0 of network default exists and is up\n") != NULL);
	CHECK(strstr(d, "ok published port 8080:80/tcp: DNAT rules in place\n") != NULL);
	CHECK(strstr(d, "ok the container's default route goes via 10.250.0.1\n") != NULL);

	/* Delete the IPv4 DNAT rule of 8080/tcp behind clbsd's back. */
	struct net_ruleset rs = {0};
	struct net_nft have;
	struct clbsd_err err;
	net_rules_container(&rs, &W.st, &W.ctrs[0]);
	const struct net_rule *victim = NULL;
	for (size_t i = 0; i < rs.n_rules; i++)
		if (strstr(rs.rules[i].body, "tcp dport 8080 dnat ip to"))
			victim = &rs.rules[i];
	CHECK(victim != NULL);
	CHECK_INT(nftx_list(&have, &err), 0);
	const struct net_nft_rule *r = net_nft_find(&have, "ports", victim->comment);
	CHECK(r != NULL);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "delete rule inet clbsd ports handle %llu\n",
		 (unsigned long long)r->handle);
	net_nft_release(&have);
	CHECK_INT(nft(cmd), 0);
	free(d);
	d = doctor("a", &n_bad);
	CHECK_INT(n_bad, 1);
	autofree char *want = xasprintf("bad published port 8080:80/tcp: its nft rule \"%s\" is "
					"missing from chain ports (comment %s); fix: ",
					victim->body, victim->comment);
	if (!strstr(d, want))
		FAILF("doctor does not name the deleted rule:\n%s", d);
	net_ruleset_release(&rs);

	/* And the traffic it carried is gone until repair. */
	autofree char *gone = query_from(W.outside, IPPROTO_TCP, "198.18.0.1", 8080, 700);
	CHECK(!starts(gone, "a "));
	struct net_report rep;
	net_report_init(&rep);
	if (W.ops->repair(&W.st, &rep, &err) < 0)
		FAILF("repair: %s", err.msg);
	CHECK_INT(rep.changes.n, 1);
	const char *readded = "added nft rule in ports: publish 8080:80/tcp to 10.250.0.2";
	CHECK(strstr(rep.changes.v[0], readded) != NULL);
	net_report_release(&rep);
	free(d);
	d = doctor("a", &n_bad);
	if (n_bad)
		FAILF("still %zu problems after repair:\n%s", n_bad, d);
	autofree char *back = query(W.outside, IPPROTO_TCP, "198.18.0.1", 8080);
	CHECK_STR(back, "a 198.18.0.2");
}

TEST(doctor_names_a_port_held_on_the_host)
{
	NEED_WORLD();
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(8080)};
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	CHECK_INT(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	CHECK_INT(listen(s, 1), 0);
	size_t n_bad;
	autofree char *d = doctor("a", &n_bad);
	close(s);
	CHECK_INT(n_bad, 1);
	autofree char *want = xasprintf("bad published port 8080:80/tcp: pid %d (test_linux) also "
					"holds 0.0.0.0:8080/tcp on the host",
					(int)getpid());
	if (!strstr(d, want))
		FAILF("doctor does not name the socket holding 8080:\n%s", d);
}

TEST(repair_restores_links_and_removes_stale_things)
{
	NEED_WORLD();
	struct clbsd_err err;
	autonl struct nl_sock *sk = NULL;
	CHECK_INT(nlx_open(-1, &sk, &err), 0);
	/* a loses its veth (and so eth0); leftovers of a container that is gone appear. */
	CHECK_INT(nlx_link_del(sk, "cb0-a", &err), 0);
	autofree char *lost = query_from(W.b, IPPROTO_TCP, "10.250.0.2", 80, 700);
	CHECK(!starts(lost, "a "));
	CHECK_INT(nft("add rule inet clbsd ports tcp dport 9999 dnat ip to 10.250.0.99:1 comment "
		      "\"clbsd/c/gone/0123456789ab\"\nadd chain inet clbsd n-gone-post\n"),
		  0);
	struct net_container gone = {"gone", W.b, -1, NULL, 0, NULL, 0, false};
	autoclose int nsfd = -1;
	static const uint8_t mac[6] = {0x02, 0xee, 0, 0, 0, 9};
	autolink struct rtnl_link *l = NULL;
	CHECK_INT(nlx_netns_open(&gone, &nsfd, &err), 0);
	CHECK_INT(nlx_veth_add(sk, "cb0-gone", 0, "gone0", nsfd, mac, &err), 0);
	CHECK_INT(nlx_link_get(sk, "cb0-gone", &l, &err), 0);
	CHECK_INT(nlx_link_set_alias(sk, l, "clbsd:ctr=gone:net=default", &err), 0);

	struct net_report rep;
	net_report_init(&rep);
	if (W.ops->repair(&W.st, &rep, &err) < 0)
		FAILF("repair: %s", err.msg);
	struct buf all = BUF_INIT;
	for (size_t i = 0; i < rep.changes.n; i++)
		buf_addf(&all, "%s\n", rep.changes.v[i]);
	net_report_release(&rep);
	autofree char *changes = buf_detach(&all, NULL);
	CHECK(strstr(changes, "removed stale veth cb0-gone\n") != NULL);
	CHECK(strstr(changes, "created veth cb0-a (eth0 of container a) on network default\n"));
	CHECK(strstr(changes, "removed stale nft rule clbsd/c/gone/0123456789ab in ports\n"));
	CHECK(strstr(changes, "removed nft chain n-gone-post\n") != NULL);
	CHECK(!link_left("cb0-gone"));
	autofree char *again = query(W.b, IPPROTO_TCP, "10.250.0.2", 80);
	CHECK_STR(again, "a 10.250.0.3");
	/* Converged: a second repair has nothing to do. */
	net_report_init(&rep);
	CHECK_INT(W.ops->repair(&W.st, &rep, &err), 0);
	if (rep.changes.n)
		FAILF("a second repair changed things: %s", rep.changes.v[0]);
	net_report_release(&rep);
}

TEST(filling_a_28_gives_the_exhaustion_error)
{
	NEED_WORLD();
	struct ipam pool;
	struct clbsd_err err;
	struct net_addr got;
	CHECK_INT(ipam_init(&pool, &W.nets[2].subnet4, &err), 0);
	/* s first, then twelve more: 13 usable addresses in a /28. */
	CHECK_INT(ipam_assign(&pool, "s", NULL, &got, &err), 0);
	for (int i = 0; i < 12; i++) {
		char name[16];
		struct net_addr x;
		snprintf(name, sizeof(name), "filler%d", i);
		CHECK_INT(ipam_assign(&pool, name, NULL, &x, &err), 0);
	}
	struct net_addr x;
	CHECK_INT(ipam_assign(&pool, "late", NULL, &x, &err), -ENOSPC);
	CHECK(strstr(err.msg, "no free address in 10.252.0.0/28") != NULL);
	ipam_release_all(&pool);
	/* s runs on the small network with the address IPAM gave it. */
	W.s_eps[0] = (struct net_endpoint){"small", got, {0, {0}}, NULL, 0};
	W.ctrs[3].n_eps = 1;
	if (W.ops->attach(&W.st, "s", NULL, &err) < 0)
		FAILF("attach s: %s", err.msg);
	autofree char *hs = query(0, IPPROTO_TCP, "10.252.0.2", 80);
	CHECK_STR(hs, "s 10.252.0.1");
}

TEST(network_down_refuses_while_attached)
{
	NEED_WORLD();
	struct clbsd_err err;
	CHECK(W.ops->network_down(&W.nets[2], &err) < 0);
	CHECK_INT(err.kind, CLBSD_E_CONFLICT);
	CHECK(strstr(err.msg, "still in use by cb0-s (s:net=small)") != NULL);
}

TEST(detach_and_network_down_leave_nothing)
{
	NEED_WORLD();
	struct clbsd_err err;
	const char *names[] = {"a", "b", "c", "s"};
	CHECK_INT(W.ops->detach("a", &err), 0);
	/* a's rules and veth went, b's did not. */
	struct net_nft have;
	CHECK_INT(nftx_list(&have, &err), 0);
	for (size_t i = 0; i < have.n_rules; i++)
		if (have.rules[i].comment && starts(have.rules[i].comment, "clbsd/c/a/"))
			FAILF("rule %s of a is left", have.rules[i].comment);
	net_nft_release(&have);
	CHECK(!link_left("cb0-a"));
	CHECK(link_left("cb0-b"));
	autofree char *gone = query_from(0, IPPROTO_TCP, "127.0.0.1", 8080, 700);
	CHECK(!starts(gone, "a "));
	CHECK_INT(W.ops->detach("a", &err), 0); /* idempotent */
	for (size_t i = 1; i < ARRAY_SIZE(names); i++)
		CHECK_INT(W.ops->detach(names[i], &err), 0);
	for (size_t i = 0; i < ARRAY_SIZE(W.nets); i++)
		if (W.ops->network_down(&W.nets[i], &err) < 0)
			FAILF("network_down %s: %s", W.nets[i].name, err.msg);
	CHECK_INT(W.ops->network_down(&W.nets[0], &err), 0); /* idempotent */
	/* No clbsd link, no address or route of the subnets, no table. */
	CHECK(!link_left(NULL));
	CHECK(!link_left("clbsd0"));
	autonl struct nl_sock *sk = NULL;
	CHECK_INT(nlx_open(-1, &sk, &err), 0);
	for (size_t i = 0; i < ARRAY_SIZE(W.nets); i++) {
		bool routed = true;
		CHECK_INT(nlx_has_route(sk, &W.nets[i].subnet4, 0, &routed, &err), 0);
		CHECK(!routed);
	}
	bool routed6 = true;
	CHECK_INT(nlx_has_route(sk, &W.nets[0].subnet6, 0, &routed6, &err), 0);
	CHECK(!routed6);
	struct nlx_addr *addrs;
	size_t n;
	struct nl_cache *links = NULL;
	CHECK_INT(nlx_link_cache(sk, &links, &err), 0);
	for (struct nl_object *o = nl_cache_get_first(links); o; o = nl_cache_get_next(o)) {
		int idx = rtnl_link_get_ifindex((struct rtnl_link *)o);
		CHECK_INT(nlx_addr_list(sk, idx, &addrs, &n, &err), 0);
		for (size_t k = 0; k < n; k++)
			for (size_t i = 0; i < ARRAY_SIZE(W.nets); i++)
				if (net_prefix_contains(&W.nets[i].subnet4, &addrs[k].a) ||
				    net_prefix_contains(&W.nets[i].subnet6, &addrs[k].a))
					FAILF("address of %s left", W.nets[i].name);
		free(addrs);
	}
	nl_cache_free(links);
	CHECK_INT(nftx_list(&have, &err), 0);
	CHECK(!have.table);
	net_nft_release(&have);
	/* a's namespace lost its eth0 with the veth. */
	autonl struct nl_sock *ns = NULL;
	autoclose int nsfd = -1;
	autolink struct rtnl_link *eth0 = NULL;
	CHECK_INT(nlx_netns_open(&W.ctrs[0], &nsfd, &err), 0);
	CHECK_INT(nlx_open(nsfd, &ns, &err), 0);
	CHECK_INT(nlx_link_get(ns, "eth0", &eth0, &err), -ENODEV);
}

/* ---- setup ---- */

static const char *setup(void)
{
	static char why[CLBSD_ERR_MSG_MAX + 64];
	struct clbsd_err err;
	if (geteuid() != 0)
		return "needs root (network namespaces, netlink and nftables)";
	if (unshare(CLONE_NEWNET) < 0) {
		snprintf(why, sizeof(why), "cannot make a network namespace: %s", strerror(errno));
		return why;
	}
	struct net_nft have;
	if (nftx_list(&have, &err) < 0) {
		snprintf(why, sizeof(why), "nftables does not work here: %s", err.msg);
		return why;
	}
	net_nft_release(&have);
	char v[16];
	if (nlx_sysctl_get("net/ipv6/conf/all/forwarding", v, sizeof(v), &err) < 0)
		return "the kernel has no IPv6";
	W.a = spawn("a");
	W.b = spawn("b");
	W.c = spawn("c");
	W.s = spawn("s");
	W.outside = spawn("outside");
	if (W.a < 0 || W.b < 0 || W.c < 0 || W.s < 0 || W.outside < 0)
		return "cannot start the namespace processes";
	if (outside_link(&err) < 0) {
		snprintf(why, sizeof(why), "cannot link the outside namespace: %s", err.msg);
		return why;
	}
	world_init();
	return NULL;
}

static void teardown(void)
{
	reap(&W.a);
	reap(&W.b);
	reap(&W.c);
	reap(&W.s);
	reap(&W.outside);
}

int main(void)
{
	test_prog = "net.linux";
	const char *why = setup();
	if (why) {
		teardown();
		printf("skip net.linux.all: %s\n", why);
		return 0;
	}
	W.ready = true;
	RUN(network_up_makes_bridge_and_enables_forwarding);
	RUN(attach_two_containers_that_reach_each_other);
	RUN(published_ports_answer_from_the_host);
	RUN(published_ports_answer_from_another_namespace);
	RUN(hairpin_from_containers);
	RUN(outbound_nat_reaches_the_outside);
	RUN(internal_network_stays_inside);
	RUN(doctor_is_happy_then_names_what_broke);
	RUN(doctor_names_a_port_held_on_the_host);
	RUN(repair_restores_links_and_removes_stale_things);
	RUN(filling_a_28_gives_the_exhaustion_error);
	RUN(network_down_refuses_while_attached);
	RUN(detach_and_network_down_leave_nothing);
	teardown();
	return test_failed_cases ? 1 : 0;
}
