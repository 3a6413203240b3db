/*
 * Docker containers on clbsd's networks (docs/docker.md, "Networks").
 *
 * The arrangement: for each clbsd network a docker container joins, clbsd
 * makes a Docker bridge network "clbsd-NETWORK" on the SAME Linux bridge
 * (com.docker.network.bridge.name) with the same subnet and gateway, and
 * creates the container on it with the address clbsd's IPAM gave it
 * (EndpointConfig.IPAMConfig). So dockerd plumbs the container before its
 * process starts (no window without a network, as for native containers),
 * while addresses, names, published ports, ingress and doctor stay
 * clbsd's:
 *
 * - Addresses come from clbsd's IPAM (stable across restarts and
 *   recreates). dockerd's own allocator gets an ip-range of one address,
 *   the broadcast, so it never hands one out: a container joined by hand
 *   (`docker run --network clbsd-x` without --ip) is refused, not given an
 *   address clbsd may give another.
 * - Names: the container's /etc/hosts and /etc/resolv.conf are clbsd's
 *   files (its directory's hosts and resolv.conf, written and rewritten in
 *   place as for native ones), bound over dockerd's (HostConfig.Binds);
 *   dockerd's embedded DNS is not used.
 * - Outbound NAT, isolation and published ports are clbsd's nftables
 *   rules (the network's masquerade option is off in dockerd); a docker
 *   container is in the network state with net_container.external set, so
 *   the driver makes its bridges and port rules and leaves its interfaces
 *   to dockerd.
 * - Order: clbsd's bridge exists before the Docker network is made (else
 *   dockerd would make a bridge of the name without clbsd's mark); so a
 *   create or start first queues an attach without a pid (bridges and
 *   network rules), then asks dockerd.
 * - Ownership: the Docker networks carry org.clbsd.managed, .instance and
 *   .network labels; one of the name without ours is a conflict. When no
 *   docker container of this daemon is left on a clbsd network, its Docker
 *   network is removed (dockerd 20.10 leaves a bridge it did not make in
 *   place).
 * - Only with a local dockerd (a unix:// endpoint): a remote one's
 *   containers are on another host's bridges.
 */
#include "daemon.h"
#include "net/net.h"
#include "docker/docker.h"
#include "util/json.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NET_CALL_TIMEOUT_S 60
#define DK_LABEL_NETWORK   "org.clbsd.network"

static char *dk_net_name(const char *network)
{
	return xasprintf("clbsd-%s", network);
}

/* ---- the spec ---- */

int docker_spec_net(struct daemon *d, const struct ctr_spec *s, struct ctr_net *out,
		    struct clbsd_err *err)
{
	if (docker_local(d))
		return dnet_spec_net(d, s, out, err);
	memset(out, 0, sizeof(*out));
	out->mode = NET_MODE_NONE;
	const char *what = s->netmode_given && s->netmode == CTR_NET_NAMED    ? ":network NAME"
			   : s->netmode_given && s->netmode == CTR_NET_BRIDGE ? ":network bridge"
			   : s->npublish				      ? ":publish"
			   : s->ip && *s->ip				      ? ":ip"
			   : s->aliases && s->aliases[0]		      ? ":aliases"
			   : s->dns && s->dns[0]			      ? ":dns"
									      : NULL;
	if (what)
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"%s: clbsd's networks are on this host, and the docker "
					"endpoint is another's; a docker container there has "
					":network none, host, or none given (dockerd's default)",
					what);
	return 0;
}

/* ---- before a create or start (the loop) ---- */

struct before {
	struct container *c;
	docker_net_go_fn go;
	void *arg;
};

static void before_attached(struct container *c, const struct clbsd_err *err, void *arg)
{
	struct before *b = arg;
	if (!c || err) {
		b->go(c, NULL, err, b->arg);
		free(b);
		return;
	}
	json_t *plan = json_pack("{s:s,s:o}", "dir", c->dir, "endpoints", dnet_endpoints_json(c));
	b->go(c, plan, NULL, b->arg);
	json_decref(plan);
	free(b);
}

void docker_net_before(struct container *c, docker_net_go_fn go, void *arg)
{
	if (!ctr_net_attached(c)) {
		go(c, NULL, NULL, arg);
		return;
	}
	struct clbsd_err err;
	if (dnet_prepare_files(c, &err) < 0) {
		go(c, NULL, &err, arg);
		return;
	}
	struct before *b = xcalloc(1, sizeof(*b));
	b->c = c;
	b->go = go;
	b->arg = arg;
	/* No pid: its bridges and their rules, before dockerd looks for them. */
	dnet_attach(c, 0, before_attached, b);
}

/* ---- Docker networks (workers) ---- */

static json_t *endpoint_config(json_t *ep)
{
	json_t *ipam = json_pack("{s:s}", "IPv4Address", json_str(ep, "ip"));
	if (json_str(ep, "ip6"))
		json_object_set_new(ipam, "IPv6Address", json_string(json_str(ep, "ip6")));
	return json_pack("{s:o,s:O}", "IPAMConfig", ipam, "Aliases",
			 json_object_get(ep, "aliases"));
}

/* The broadcast address of a v4 subnet "A.B.C.D/N" as "A.B.C.D/32" (dockerd's ip-range). */
static char *broadcast_range(const char *subnet)
{
	unsigned a, b, c, d, n;
	if (sscanf(subnet, "%u.%u.%u.%u/%u", &a, &b, &c, &d, &n) != 5 || n > 32)
		return NULL;
	uint32_t v = (a << 24) | (b << 16) | (c << 8) | d;
	uint32_t host = n == 32 ? 0 : (0xffffffffu >> n);
	v |= host;
	return xasprintf("%u.%u.%u.%u/32", v >> 24, (v >> 16) & 255, (v >> 8) & 255, v & 255);
}

/* Does dockerd's network (inspect) say what ep wants? */
static bool net_matches(json_t *net, json_t *ep)
{
	json_t *opts = json_object_get(net, "Options");
	const char *br = json_str(opts, "com.docker.network.bridge.name");
	json_t *cfg = json_array_get(json_object_get(json_object_get(net, "IPAM"), "Config"), 0);
	const char *sub = json_str(cfg, "Subnet");
	bool internal = json_bool(net, "Internal", false);
	bool v6 = json_bool(net, "EnableIPv6", false);
	return br && strcmp(br, json_str(ep, "bridge")) == 0 && sub &&
	       strcmp(sub, json_str(ep, "subnet")) == 0 &&
	       internal == json_bool(ep, "internal", false) && v6 == (json_str(ep, "ip6") != NULL);
}

static bool net_ours(json_t *net, const char *instance)
{
	json_t *l = json_object_get(net, "Labels");
	const char *m = json_str(l, DK_LABEL_MANAGED), *i = json_str(l, DK_LABEL_INSTANCE);
	return m && strcmp(m, "true") == 0 && i && strcmp(i, instance) == 0;
}

static int net_create(struct dk_client *cl, const char *instance, const char *name, json_t *ep,
		      long *status, struct clbsd_err *err)
{
	autofree char *range = broadcast_range(json_str(ep, "subnet"));
	json_t *cfg = json_pack("{s:s,s:s}", "Subnet", json_str(ep, "subnet"), "Gateway",
				json_str(ep, "gateway"));
	if (range)
		json_object_set_new(cfg, "IPRange", json_string(range));
	json_t *cfgs = json_pack("[o]", cfg);
	bool v6 = json_str(ep, "ip6") != NULL;
	if (v6)
		json_array_append_new(cfgs,
				      json_pack("{s:s,s:s}", "Subnet", json_str(ep, "subnet6"),
						"Gateway", json_str(ep, "gateway6")));
	json_t *body = json_pack(
		"{s:s,s:b,s:s,s:b,s:b,s:{s:s,s:o},s:{s:s,s:s,s:s},s:{s:s,s:s,s:s}}", "Name", name,
		"CheckDuplicate", 1, "Driver", "bridge", "Internal",
		json_bool(ep, "internal", false), "EnableIPv6", v6, "IPAM", "Driver", "default",
		"Config", cfgs, "Options", "com.docker.network.bridge.name", json_str(ep, "bridge"),
		"com.docker.network.bridge.enable_ip_masquerade", "false",
		"com.docker.network.bridge.enable_icc", "true", "Labels", DK_LABEL_MANAGED, "true",
		DK_LABEL_INSTANCE, instance, DK_LABEL_NETWORK, json_str(ep, "network"));
	int r = dk_call(cl, "POST", "/networks/create", body, NET_CALL_TIMEOUT_S, NULL, status,
			err);
	json_decref(body);
	return r;
}

/* Docker network `name` exists, is ours and matches ep. */
static int net_ensure(struct dk_client *cl, const char *instance, json_t *ep, struct clbsd_err *err)
{
	autofree char *name = dk_net_name(json_str(ep, "network"));
	autofree char *path = xasprintf("/networks/%s", name);
	for (int attempt = 0; attempt < 3; attempt++) {
		json_t *net = NULL;
		long st = 0;
		int r = dk_call(cl, "GET", path, NULL, NET_CALL_TIMEOUT_S, &net, &st, err);
		if (r < 0 && st != 404)
			return clbsd_err_prefix(err, "docker network %s", name);
		if (r == 0) {
			if (!net_ours(net, instance)) {
				json_decref(net);
				return clbsd_err_setmsg(
					err, CLBSD_E_CONFLICT, EEXIST,
					"dockerd already has a network named %s that clbsd did not "
					"make (no org.clbsd labels of this daemon); clbsd leaves "
					"it "
					"alone: remove or rename it",
					name);
			}
			bool same = net_matches(net, ep);
			json_decref(net);
			if (same)
				return 0;
			/* Made for an older subnet or bridge: made again, when nothing uses it. */
			if (dk_call(cl, "DELETE", path, NULL, NET_CALL_TIMEOUT_S, NULL, &st, err) <
				    0 &&
			    st != 404)
				return clbsd_err_prefix(err,
							"docker network %s no longer matches clbsd "
							"network %s and cannot be made again",
							name, json_str(ep, "network"));
		}
		r = net_create(cl, instance, name, ep, &st, err);
		if (r == 0)
			return 0;
		if (st != 409)
			return clbsd_err_prefix(err, "docker network %s", name);
		/* Made meanwhile by another start: look again. */
	}
	return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EAGAIN,
				"docker network %s: could not be made (it kept changing)", name);
}

int docker_net_prepare(struct dk_client *cl, const char *instance, json_t *plan, json_t *body,
		       struct clbsd_err *err)
{
	json_t *eps = json_object_get(plan, "endpoints");
	size_t i;
	json_t *ep;
	json_array_foreach(eps, i, ep)
	{
		if (net_ensure(cl, instance, ep, err) < 0)
			return -err->code;
	}
	json_t *first = json_array_get(eps, 0);
	if (!first)
		return 0;
	json_t *hc = json_object_get(body, "HostConfig");
	autofree char *name = dk_net_name(json_str(first, "network"));
	json_object_set_new(hc, "NetworkMode", json_string(name));
	json_object_set_new(
		body, "NetworkingConfig",
		json_pack("{s:{s:o}}", "EndpointsConfig", name, endpoint_config(first)));
	/* clbsd's /etc/hosts and resolv.conf, as native containers have them. */
	json_t *binds = json_object_get(hc, "Binds");
	if (!json_is_array(binds)) {
		binds = json_array();
		json_object_set_new(hc, "Binds", binds);
	}
	const char *dir = json_str(plan, "dir");
	json_array_append_new(binds, json_sprintf("%s/hosts:/etc/hosts", dir));
	json_array_append_new(binds, json_sprintf("%s/resolv.conf:/etc/resolv.conf", dir));
	return 0;
}

/* The container's endpoint on docker network `name`, from its inspect. */
static json_t *ctr_endpoint(json_t *ins, const char *name)
{
	return json_object_get(json_object_get(json_object_get(ins, "NetworkSettings"), "Networks"),
			       name);
}

static bool ep_matches(json_t *have, json_t *ep)
{
	const char *ip = json_str(json_object_get(have, "IPAMConfig"), "IPv4Address");
	return have && ip && strcmp(ip, json_str(ep, "ip")) == 0;
}

bool docker_net_matches(json_t *ins, json_t *plan)
{
	json_t *first = json_array_get(json_object_get(plan, "endpoints"), 0);
	if (!first)
		return true;
	autofree char *name = dk_net_name(json_str(first, "network"));
	const char *mode = json_str(json_object_get(ins, "HostConfig"), "NetworkMode");
	return mode && strcmp(mode, name) == 0 && ep_matches(ctr_endpoint(ins, name), first);
}

int docker_net_connect(struct dk_client *cl, const char *id, json_t *ins, json_t *plan,
		       struct clbsd_err *err)
{
	json_t *eps = json_object_get(plan, "endpoints");
	for (size_t i = 1; i < json_array_size(eps); i++) {
		json_t *ep = json_array_get(eps, i);
		autofree char *name = dk_net_name(json_str(ep, "network"));
		json_t *have = ctr_endpoint(ins, name);
		if (ep_matches(have, ep))
			continue;
		autofree char *dpath = xasprintf("/networks/%s/disconnect", name);
		autofree char *cpath = xasprintf("/networks/%s/connect", name);
		if (have) {
			json_t *b = json_pack("{s:s,s:b}", "Container", id, "Force", 1);
			int r = dk_call(cl, "POST", dpath, b, NET_CALL_TIMEOUT_S, NULL, NULL, err);
			json_decref(b);
			if (r < 0)
				return clbsd_err_prefix(err, "docker network %s", name);
		}
		json_t *b = json_pack("{s:s,s:o}", "Container", id, "EndpointConfig",
				      endpoint_config(ep));
		int r = dk_call(cl, "POST", cpath, b, NET_CALL_TIMEOUT_S, NULL, NULL, err);
		json_decref(b);
		if (r < 0)
			return clbsd_err_prefix(err, "docker network %s", name);
	}
	return 0;
}

/* ---- after the start (the loop) ---- */

void docker_net_started(struct container *c, pid_t pid, ctr_done_fn fn, void *arg)
{
	/* Its bridges again (idempotent) and its published ports, now that it runs. */
	dnet_attach(c, pid, fn, arg);
}

/* ---- Docker networks nobody uses any more ---- */

struct gc {
	struct daemon *d;
	struct dk_client *cl;
	char *instance;
	json_t *keep; /* object: clbsd network names still used by docker containers */
};

static void gc_run(void *arg)
{
	struct gc *g = arg;
	struct clbsd_err err;
	autofree char *lbl = xasprintf(DK_LABEL_INSTANCE "=%s", g->instance);
	char *labels[] = {lbl, NULL};
	autofree char *filters = dk_label_filters(labels);
	autofree char *esc = dk_query_escape(filters);
	autofree char *path = xasprintf("/networks?filters=%s", esc);
	json_t *nets = NULL;
	if (dk_call(g->cl, "GET", path, NULL, NET_CALL_TIMEOUT_S, &nets, NULL, &err) < 0) {
		log_warn("docker", NULL, "networks: %s", err.msg);
		return;
	}
	size_t i;
	json_t *n;
	json_array_foreach(nets, i, n)
	{
		const char *net = json_str(json_object_get(n, "Labels"), DK_LABEL_NETWORK);
		const char *id = json_str(n, "Id");
		if (!net || !id || !net_ours(n, g->instance) || json_object_get(g->keep, net))
			continue;
		autofree char *dpath = xasprintf("/networks/%s", id);
		long st = 0;
		if (dk_call(g->cl, "DELETE", dpath, NULL, NET_CALL_TIMEOUT_S, NULL, &st, &err) <
			    0 &&
		    st != 404)
			log_warn("docker", NULL, "removing docker network %s: %s",
				 json_str(n, "Name"), err.msg);
		else
			log_info("docker", NULL, "removed docker network %s (no container uses it)",
				 json_str(n, "Name"));
	}
	json_decref(nets);
}

static void gc_done(void *arg)
{
	struct gc *g = arg;
	dk_client_free(g->cl);
	free(g->instance);
	json_decref(g->keep);
	free(g);
}

/* A docker container was removed: drop the Docker networks no docker container needs. */
void docker_net_gc(struct daemon *d, struct dk_client *cl, const char *instance)
{
	if (!cl)
		return;
	struct gc *g = xcalloc(1, sizeof(*g));
	g->d = d;
	g->cl = cl;
	g->instance = xstrdup(instance);
	g->keep = json_object();
	for (struct container *c = d->ctrs; c; c = c->next) {
		if (!c->docker.on || c->run.removed || !ctr_net_attached(c))
			continue;
		for (size_t i = 0; c->net.networks[i]; i++)
			json_object_set_new(g->keep, c->net.networks[i], json_true());
	}
	work_submit(d, gc_run, gc_done, g);
}
