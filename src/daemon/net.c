/*
 * The daemon's side of networking (docs/network.md): which networks exist,
 * which addresses containers hold, and when the driver (src/net) plumbs or
 * unplumbs them.
 *
 * - Networks come from the configuration (the host's :network is the
 *   network "default", each (network ...) form another) and from the API
 *   (`clbsd network create`, kept in <root>/net/networks.json). A name
 *   declared in both is the configuration's.
 * - Addresses come from one IPAM pool per network, kept in
 *   <root>/net/ipam/NETWORK.json and written after every change; a container
 *   records its addresses in container.json too, for inspect.
 * - A container on networks starts with its init held (the shim's
 *   --net-hold): once the init exists, a job attaches it (veths, addresses,
 *   routes, published ports), writes its /etc/hosts and resolv.conf (bind
 *   mounted from its directory), and tells the shim to go on.
 * - Driver calls run on a worker thread, one at a time and in order (a
 *   detach of a run that ended must not overtake the attach of the next).
 *   A job sees a snapshot of the state taken on the loop when it was queued.
 */
#include "daemon.h"
#include "core/config.h"
#include "net/net.h"
#include "util/json.h"
#include "util/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct dnet_network {
	char *name;
	char *bridge;
	struct net_prefix subnet4;
	struct net_prefix subnet6; /* addr.family 0: no IPv6 */
	bool internal;
	bool from_conf;
	bool implicit; /* the daemon's default bridge: the configuration declares no :network */
	struct ipam ipam;
	struct ipam ipam6;
};

struct net_job {
	void (*run)(struct net_job *j);
	void (*done)(struct net_job *j);
	struct daemon *d;
	struct dnet_snap *snap;
	char *name;	     /* the container (or NULL) */
	pid_t pid;	     /* attach: the held init */
	struct container *c; /* attach: whom to answer (checked against name) */
	dnet_done_fn fn;     /* attach */
	dnet_doctor_fn doctor_fn;
	void *arg;
	struct clbsd_err err;
	int rc;
	struct net_report rep;
	struct strv lines; /* doctor */
	size_t n_bad;
	struct net_job *next;
};

struct dnet {
	const struct net_ops *ops;
	char *dir; /* <root>/net */
	struct dnet_network *nets;
	size_t n;
	json_t *api_nets; /* array of {name, subnet, subnet6, internal} from networks.json */
	json_t *alloc;	  /* object: network name -> subnet the daemon chose (allocated.json) */
	struct net_job *queue, *queue_tail;
	struct net_job *running; /* the job on a worker, while busy */
	bool busy;
	bool synced; /* the first sync ran (it repairs) */
};

/* ---- snapshots: a net_state owning its strings, for a worker ---- */

struct dnet_snap {
	struct net_state st;
	struct net_network *nets;
	struct net_container *ctrs;
	struct strv strings; /* everything the state points at */
	void **blocks;	     /* arrays it points at */
	size_t n_blocks;
};

static const char *snap_str(struct dnet_snap *s, const char *v)
{
	if (!v)
		return NULL;
	strv_push(&s->strings, v);
	return s->strings.v[s->strings.n - 1];
}

static void *snap_block(struct dnet_snap *s, size_t n, size_t size)
{
	s->blocks = xrealloc(s->blocks, (s->n_blocks + 1) * sizeof(void *));
	void *p = xcalloc(n ? n : 1, size);
	s->blocks[s->n_blocks++] = p;
	return p;
}

static void snap_free(struct dnet_snap *s)
{
	if (!s)
		return;
	strv_release(&s->strings);
	for (size_t i = 0; i < s->n_blocks; i++)
		free(s->blocks[i]);
	free(s->blocks);
	free(s->nets);
	free(s->ctrs);
	free(s);
}

static struct dnet_network *find_net(const struct dnet *n, const char *name)
{
	for (size_t i = 0; i < n->n; i++)
		if (strcmp(n->nets[i].name, name) == 0)
			return &n->nets[i];
	return NULL;
}

bool ctr_net_attached(const struct container *c)
{
	return c->net.mode == NET_MODE_NETWORKS && c->net.networks && c->net.networks[0];
}

/* The container as the driver sees it; pid 0 when not running. */
static void snap_container(struct dnet_snap *s, const struct container *c, pid_t pid,
			   struct net_container *out)
{
	size_t n = strv_len(c->net.networks);
	struct net_endpoint *eps = snap_block(s, n, sizeof(*eps));
	size_t na = strv_len(c->net.aliases);
	const char **aliases = snap_block(s, na + 1, sizeof(char *));
	for (size_t i = 0; i < na; i++)
		aliases[i] = snap_str(s, c->net.aliases[i]);
	for (size_t i = 0; i < n; i++) {
		eps[i].network = snap_str(s, c->net.networks[i]);
		const char *a = c->net.addrs && i < strv_len(c->net.addrs) ? c->net.addrs[i] : NULL;
		const char *a6 =
			c->net.addrs6 && i < strv_len(c->net.addrs6) ? c->net.addrs6[i] : NULL;
		struct clbsd_err ignore;
		if (a && *a)
			net_addr_parse(a, &eps[i].ip4, &ignore);
		if (a6 && *a6)
			net_addr_parse(a6, &eps[i].ip6, &ignore);
		eps[i].aliases = aliases;
		eps[i].n_aliases = na;
	}
	size_t np = strv_len(c->net.publish);
	struct net_port *ports = snap_block(s, np, sizeof(*ports));
	size_t k = 0;
	for (size_t i = 0; i < np; i++) {
		struct clbsd_err ignore;
		if (net_port_parse(c->net.publish[i], &ports[k], &ignore) == 0)
			k++;
	}
	*out = (struct net_container){.name = snap_str(s, c->name),
				      .pid = pid,
				      .netns_fd = -1,
				      .external = c->docker.on,
				      .eps = eps,
				      .n_eps = n,
				      .ports = ports,
				      .n_ports = k};
}

/*
 * Every network and every container on one. Running containers carry their
 * init's pid; `extra` (with extra_pid) is one not yet marked running.
 */
static bool net_used(struct daemon *d, const char *name, const struct container *extra,
		     const struct container *except);

static struct dnet_snap *snapshot(struct daemon *d, const struct container *extra, pid_t extra_pid)
{
	struct dnet *n = d->net;
	struct dnet_snap *s = xcalloc(1, sizeof(*s));
	s->nets = xcalloc(n->n ? n->n : 1, sizeof(*s->nets));
	size_t nn = 0;
	for (size_t i = 0; i < n->n; i++) {
		/* The default bridge exists on the host only while a container uses it. */
		if (n->nets[i].implicit && !net_used(d, n->nets[i].name, extra, NULL))
			continue;
		s->nets[nn++] = (struct net_network){.name = snap_str(s, n->nets[i].name),
						     .bridge = snap_str(s, n->nets[i].bridge),
						     .subnet4 = n->nets[i].subnet4,
						     .subnet6 = n->nets[i].subnet6,
						     .internal = n->nets[i].internal};
	}
	/* Every container, and `extra` when it is not in the list yet (a create). */
	size_t nc = 1;
	for (struct container *c = d->ctrs; c; c = c->next)
		nc++;
	const struct container **all = xcalloc(nc, sizeof(*all));
	size_t na = 0;
	bool extra_listed = false;
	for (struct container *c = d->ctrs; c; c = c->next) {
		all[na++] = c;
		extra_listed |= c == extra;
	}
	if (extra && !extra_listed)
		all[na++] = extra;
	s->ctrs = xcalloc(nc, sizeof(*s->ctrs));
	size_t k = 0;
	for (size_t x = 0; x < na; x++) {
		const struct container *c = all[x];
		if (!ctr_net_attached(c) || c->run.removed)
			continue;
		/* A container whose network is gone is left out (its start fails). */
		bool known = true;
		for (size_t i = 0; c->net.networks[i]; i++)
			known &= find_net(n, c->net.networks[i]) != NULL;
		if (!known)
			continue;
		pid_t pid = c == extra					     ? extra_pid
			    : c->run.state == CTR_RUNNING && c->net_attached ? c->run.pid
									     : 0;
		snap_container(s, c, pid, &s->ctrs[k++]);
	}
	free(all);
	s->st = (struct net_state){.nets = s->nets, .n_nets = nn, .ctrs = s->ctrs, .n_ctrs = k};
	return s;
}

/* ---- the job queue ---- */

static void job_start(struct daemon *d);

static void job_run(void *p)
{
	struct net_job *j = p;
	j->run(j);
}

static void job_free(struct net_job *j)
{
	snap_free(j->snap);
	free(j->name);
	net_report_release(&j->rep);
	strv_release(&j->lines);
	free(j);
}

static void job_done(void *p)
{
	struct net_job *j = p;
	struct daemon *d = j->d;
	for (size_t i = 0; i < j->rep.changes.n; i++)
		log_info("net", j->name, "%s", j->rep.changes.v[i]);
	if (j->rep.forwarding_enabled)
		log_info("net", NULL, "turned IP forwarding on (containers on bridges need it)");
	if (j->done)
		j->done(j);
	job_free(j);
	d->net->running = NULL;
	d->net->busy = false;
	job_start(d);
}

static void job_start(struct daemon *d)
{
	struct dnet *n = d->net;
	if (n->busy || !n->queue)
		return;
	struct net_job *j = n->queue;
	n->queue = j->next;
	if (!n->queue)
		n->queue_tail = NULL;
	n->busy = true;
	n->running = j;
	work_submit(d, job_run, job_done, j);
}

static struct net_job *job_new(struct daemon *d, void (*run)(struct net_job *),
			       void (*done)(struct net_job *), const char *name)
{
	struct net_job *j = xcalloc(1, sizeof(*j));
	j->run = run;
	j->done = done;
	j->d = d;
	j->name = name ? xstrdup(name) : NULL;
	clbsd_err_init(&j->err);
	net_report_init(&j->rep);
	return j;
}

static void job_queue(struct daemon *d, struct net_job *j)
{
	struct dnet *n = d->net;
	if (n->queue_tail)
		n->queue_tail->next = j;
	else
		n->queue = j;
	n->queue_tail = j;
	job_start(d);
}

/* A no-op job: fn runs once everything queued before it is done. */
static void barrier_run(struct net_job *j)
{
}

static void barrier_done(struct net_job *j)
{
	j->fn(NULL, NULL, j->arg);
}

void dnet_after_queue(struct daemon *d, dnet_done_fn fn, void *arg)
{
	struct net_job *j = job_new(d, barrier_run, barrier_done, NULL);
	j->fn = fn;
	j->arg = arg;
	job_queue(d, j);
}

/* ---- persistence ---- */

/* <root>/net/ipam/NAME.json (IPv4) and NAME.v6.json. */
static char *ipam_path(const struct dnet *n, const char *name, bool v6)
{
	return xasprintf("%s/ipam/%s%s.json", n->dir, name, v6 ? ".v6" : "");
}

static void ipam_save1(struct daemon *d, const char *name, const struct ipam *p, bool v6)
{
	autofree char *dir = xasprintf("%s/ipam", d->net->dir);
	autofree char *path = ipam_path(d->net, name, v6);
	autofree char *json = ipam_to_json(p);
	struct clbsd_err err;
	if (fs_mkdir_p(dir, 0700, &err) < 0 ||
	    fs_write_atomic(path, json, strlen(json), 0600, &err) < 0)
		log_error("net", NULL, "network %s: cannot save its addresses: %s", name, err.msg);
}

static void ipam_save(struct daemon *d, const struct dnet_network *nw)
{
	ipam_save1(d, nw->name, &nw->ipam, false);
	if (nw->subnet6.addr.family)
		ipam_save1(d, nw->name, &nw->ipam6, true);
}

static void ipam_load1(struct daemon *d, const char *name, const struct net_prefix *subnet,
		       struct ipam *p, bool v6)
{
	autofree char *path = ipam_path(d->net, name, v6);
	autofree char *json = NULL;
	struct clbsd_err err;
	if (fs_read_file(path, &json, NULL, &err) == 0 &&
	    ipam_from_json(json, subnet, p, &err) == 0)
		return;
	if (json)
		log_warn("net", NULL, "network %s: %s unreadable (%s); starting a new pool", name,
			 path, err.msg);
	if (ipam_init(p, subnet, &err) < 0)
		log_error("net", NULL, "network %s: %s", name, err.msg);
}

static void ipam_load(struct daemon *d, struct dnet_network *nw)
{
	ipam_load1(d, nw->name, &nw->subnet4, &nw->ipam, false);
	if (nw->subnet6.addr.family)
		ipam_load1(d, nw->name, &nw->subnet6, &nw->ipam6, true);
}

static void api_nets_save(struct daemon *d)
{
	struct dnet *n = d->net;
	autofree char *path = xasprintf("%s/networks.json", n->dir);
	autofree char *text = json_dumps(n->api_nets, JSON_INDENT(2));
	struct clbsd_err err;
	if (fs_mkdir_p(n->dir, 0700, &err) < 0 ||
	    fs_write_atomic(path, text, strlen(text), 0600, &err) < 0)
		log_error("net", NULL, "cannot save %s: %s", path, err.msg);
}

/* ---- the set of networks ---- */

static void cidr_prefix(const struct conf_cidr *c, struct net_prefix *p)
{
	memset(p, 0, sizeof(*p));
	p->addr.family = AF_INET;
	uint32_t be = htonl(c->addr);
	memcpy(p->addr.b, &be, 4);
	p->len = (unsigned)c->prefix;
}

static void add_net(struct dnet_network **v, size_t *nv, const char *name, const char *bridge,
		    const struct net_prefix *subnet, const char *subnet6, bool internal,
		    bool from_conf)
{
	*v = xrealloc(*v, (*nv + 1) * sizeof(**v));
	struct dnet_network *nw = &(*v)[(*nv)++];
	memset(nw, 0, sizeof(*nw));
	nw->name = xstrdup(name);
	char br[NET_IFNAMSIZ];
	if (!bridge) {
		net_bridge_name(name, br);
		bridge = br;
	}
	nw->bridge = xstrdup(bridge);
	nw->subnet4 = *subnet;
	struct clbsd_err ignore;
	if (subnet6 && net_prefix_parse(subnet6, &nw->subnet6, &ignore) < 0)
		memset(&nw->subnet6, 0, sizeof(nw->subnet6));
	nw->internal = internal;
	nw->from_conf = from_conf;
}

static bool same_net(const struct dnet_network *a, const struct dnet_network *b)
{
	return strcmp(a->bridge, b->bridge) == 0 && a->internal == b->internal &&
	       a->subnet4.len == b->subnet4.len &&
	       net_addr_eq(&a->subnet4.addr, &b->subnet4.addr) &&
	       a->subnet6.len == b->subnet6.len && net_addr_eq(&a->subnet6.addr, &b->subnet6.addr);
}

static void net_release(struct dnet_network *nw)
{
	free(nw->name);
	free(nw->bridge);
	ipam_release_all(&nw->ipam);
	ipam_release_all(&nw->ipam6);
}

static void repair_run(struct net_job *j)
{
	const struct net_ops *ops = j->d->net->ops;
	j->rc = ops->repair(&j->snap->st, &j->rep, &j->err);
}

static void repair_done(struct net_job *j)
{
	if (j->rc < 0)
		log_error("net", NULL, "repair: %s", j->err.msg);
}

void dnet_repair(struct daemon *d)
{
	struct net_job *j = job_new(d, repair_run, repair_done, NULL);
	j->snap = snapshot(d, NULL, 0);
	job_queue(d, j);
}

/* A network left the configuration or was removed: take its bridge down. */
static void down_run(struct net_job *j)
{
	const struct net_network *nw = &j->snap->nets[0];
	j->rc = j->d->net->ops->network_down(nw, &j->err);
}

static void down_done(struct net_job *j)
{
	if (j->rc < 0)
		log_warn("net", NULL, "%s", j->err.msg);
	else
		log_info("net", NULL, "network %s removed", j->name);
}

static void queue_down(struct daemon *d, const struct dnet_network *nw)
{
	struct net_job *j = job_new(d, down_run, down_done, nw->name);
	j->snap = xcalloc(1, sizeof(*j->snap));
	j->snap->nets = xcalloc(1, sizeof(struct net_network));
	j->snap->nets[0] = (struct net_network){.name = snap_str(j->snap, nw->name),
						.bridge = snap_str(j->snap, nw->bridge),
						.subnet4 = nw->subnet4,
						.subnet6 = nw->subnet6,
						.internal = nw->internal};
	job_queue(d, j);
}

/*
 * A subnet for a declared network without :subnet: the one chosen before
 * (allocated.json), else the first free /24 from 10.89.0.0 on, remembered
 * so it stays the network's while it exists.
 */
static int allocate_subnet(struct daemon *d, const char *name, const struct dnet_network *v,
			   size_t nv, struct net_prefix *out)
{
	struct dnet *n = d->net;
	struct clbsd_err err;
	const char *had = json_str(n->alloc, name);
	if (had && net_prefix_parse(had, out, &err) == 0)
		return 0;
	for (unsigned k = 89 * 256; k < 255 * 256; k++) {
		memset(out, 0, sizeof(*out));
		out->addr.family = AF_INET;
		out->addr.b[0] = 10;
		out->addr.b[1] = (uint8_t)(k >> 8);
		out->addr.b[2] = (uint8_t)(k & 255);
		out->len = 24;
		bool free_ = true;
		for (size_t i = 0; i < nv && free_; i++)
			free_ = !net_prefix_overlaps(out, &v[i].subnet4);
		const char *key;
		json_t *val;
		json_object_foreach(n->alloc, key, val)
		{
			struct net_prefix q;
			if (free_ && strcmp(key, name) != 0 && json_is_string(val) &&
			    net_prefix_parse(json_string_value(val), &q, &err) == 0)
				free_ = !net_prefix_overlaps(out, &q);
		}
		if (!free_)
			continue;
		char buf[NET_PREFIX_STRLEN];
		json_object_set_new(n->alloc, name, json_string(net_prefix_fmt(out, buf)));
		autofree char *path = xasprintf("%s/allocated.json", n->dir);
		autofree char *text = json_dumps(n->alloc, JSON_INDENT(2) | JSON_SORT_KEYS);
		if (fs_mkdir_p(n->dir, 0700, &err) < 0 ||
		    fs_write_atomic(path, text, strlen(text), 0600, &err) < 0)
			log_error("net", NULL, "cannot save %s: %s", path, err.msg);
		log_info("net", NULL, "network %s: allocated subnet %s", name, buf);
		return 0;
	}
	log_error("net", NULL,
		  "network %s: no free /24 left in 10.89.0.0-10.254.255.0; give it "
		  ":subnet",
		  name);
	return -1;
}

/*
 * The daemon's default bridge, for a configuration that declares no
 * :network (Docker's docker0, Podman's podman0): the network "default"
 * (shown as bridge) on DNET_DEFAULT_BRIDGE with DNET_DEFAULT_SUBNET, the
 * values docs/network.md suggests for the host's :network, so adding them
 * to the configuration later changes nothing. It is listed always, but is
 * on the host only while a container uses it: snapshots leave it out
 * otherwise, so the first attach makes it and a repair or the removal of
 * its last container takes it down. Left out when another network already
 * holds its bridge or overlaps its subnet.
 */
#define DNET_DEFAULT_BRIDGE "clbsd0"
#define DNET_DEFAULT_SUBNET "10.88.0.0/24"

static void add_default_bridge(struct dnet_network **v, size_t *nv)
{
	struct net_prefix p;
	struct clbsd_err err;
	if (net_prefix_parse(DNET_DEFAULT_SUBNET, &p, &err) < 0)
		return;
	for (size_t i = 0; i < *nv; i++) {
		if (strcmp((*v)[i].bridge, DNET_DEFAULT_BRIDGE) == 0 ||
		    net_prefix_overlaps(&p, &(*v)[i].subnet4)) {
			log_warn("net", NULL,
				 "no default bridge: network %s holds %s or overlaps %s; declare "
				 "the host's :network to have one",
				 (*v)[i].name, DNET_DEFAULT_BRIDGE, DNET_DEFAULT_SUBNET);
			return;
		}
	}
	add_net(v, nv, NET_DEFAULT, DNET_DEFAULT_BRIDGE, &p, NULL, false, false);
	(*v)[*nv - 1].implicit = true;
}

/* Does a container other than except (and not removed) use network name? extra counts too. */
static bool net_used(struct daemon *d, const char *name, const struct container *extra,
		     const struct container *except)
{
	for (struct container *c = d->ctrs;; c = c->next) {
		const struct container *x = c ? c : extra;
		if (!x)
			return false;
		if (x != except && !x->run.removed && ctr_net_attached(x))
			for (size_t i = 0; x->net.networks[i]; i++)
				if (strcmp(x->net.networks[i], name) == 0)
					return true;
		if (!c)
			return false;
	}
}

static const char *net_source(const struct dnet_network *nw)
{
	return nw->implicit ? "default" : nw->from_conf ? "config" : "api";
}

void dnet_sync(struct daemon *d)
{
	struct dnet *n = d->net;
	/*
	 * Without a good configuration (a bad file at start) the networks the
	 * running containers use are unknown: touch nothing until one loads.
	 */
	bool have_conf = d->decl.conf != NULL;
	if (!have_conf && n->n)
		return;
	struct dnet_network *v = NULL;
	size_t nv = 0;
	const struct conf *c = d->decl.conf;
	if (c && c->host.network_set) {
		struct net_prefix p;
		cidr_prefix(&c->host.subnet, &p);
		add_net(&v, &nv, NET_DEFAULT, c->host.bridge, &p, c->host.subnet6, false, true);
	}
	/* Declared subnets first, so an allocated one avoids them all. */
	for (size_t i = 0; c && i < c->nnetworks; i++) {
		const struct conf_network *cn = c->networks[i];
		if (!cn->subnet.set)
			continue;
		struct net_prefix p;
		cidr_prefix(&cn->subnet, &p);
		add_net(&v, &nv, cn->name, NULL, &p, cn->subnet6, cn->internal, true);
	}
	size_t i;
	json_t *jn;
	json_array_foreach(n->api_nets, i, jn)
	{
		const char *name = json_str(jn, "name");
		struct net_prefix p;
		struct clbsd_err err;
		if (!name || net_prefix_parse(json_str(jn, "subnet"), &p, &err) < 0)
			continue;
		bool dup = false;
		for (size_t k = 0; k < nv; k++)
			dup |= strcmp(v[k].name, name) == 0;
		if (dup) {
			log_warn("net", NULL,
				 "network %s is declared in the configuration and was also made "
				 "with "
				 "'clbsd network create'; the configuration's wins",
				 name);
			continue;
		}
		add_net(&v, &nv, name, NULL, &p, json_str(jn, "subnet6"),
			json_bool(jn, "internal", false), false);
	}
	for (size_t k = 0; c && k < c->nnetworks; k++) {
		const struct conf_network *cn = c->networks[k];
		if (cn->subnet.set)
			continue;
		struct net_prefix p;
		if (allocate_subnet(d, cn->name, v, nv, &p) < 0)
			continue;
		add_net(&v, &nv, cn->name, NULL, &p, cn->subnet6, cn->internal, true);
	}
	if (!(c && c->host.network_set))
		add_default_bridge(&v, &nv);
	/* Keep the pools of networks that stay the same; load the others. */
	bool changed = nv != n->n;
	for (size_t k = 0; k < nv; k++) {
		struct dnet_network *old = find_net(n, v[k].name);
		if (old && same_net(old, &v[k])) {
			v[k].ipam = old->ipam;
			v[k].ipam6 = old->ipam6;
			memset(&old->ipam, 0, sizeof(old->ipam));
			memset(&old->ipam6, 0, sizeof(old->ipam6));
			continue;
		}
		changed = true;
		ipam_load(d, &v[k]);
		if (old)
			ipam_save(d, &v[k]); /* the subnet changed: addresses were re-fitted */
	}
	for (size_t k = 0; k < n->n; k++) {
		bool kept = false;
		for (size_t m = 0; m < nv; m++)
			kept |= strcmp(v[m].name, n->nets[k].name) == 0 &&
				strcmp(v[m].bridge, n->nets[k].bridge) == 0;
		if (!kept && have_conf)
			queue_down(d, &n->nets[k]);
		net_release(&n->nets[k]);
	}
	free(n->nets);
	n->nets = v;
	n->n = nv;
	if (have_conf && (changed || !n->synced)) {
		n->synced = true;
		dnet_repair(d);
	}
}

int dnet_init(struct daemon *d, struct clbsd_err *err)
{
	struct dnet *n = xcalloc(1, sizeof(*n));
	d->net = n;
	n->ops = net_default_ops();
	n->dir = xasprintf("%s/net", d->root);
	autofree char *path = xasprintf("%s/networks.json", n->dir);
	autofree char *text = NULL;
	if (fs_read_file(path, &text, NULL, err) == 0) {
		n->api_nets = json_loads(text, 0, NULL);
		if (!json_is_array(n->api_nets))
			return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
						"%s is not a JSON array of networks; fix or remove "
						"it",
						path);
	} else if (err->code != ENOENT) {
		return -err->code;
	} else {
		n->api_nets = json_array();
	}
	autofree char *apath = xasprintf("%s/allocated.json", n->dir);
	autofree char *atext = NULL;
	if (fs_read_file(apath, &atext, NULL, err) == 0)
		n->alloc = json_loads(atext, 0, NULL);
	if (!json_is_object(n->alloc)) {
		json_decref(n->alloc);
		n->alloc = json_object();
	}
	clbsd_err_init(err);
	return 0;
}

void dnet_release_daemon(struct daemon *d)
{
	struct dnet *n = d->net;
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++)
		net_release(&n->nets[i]);
	free(n->nets);
	json_decref(n->api_nets);
	json_decref(n->alloc);
	while (n->queue) {
		struct net_job *j = n->queue;
		n->queue = j->next;
		job_free(j);
	}
	free(n->dir);
	free(n);
	d->net = NULL;
}

/* ---- a container's network settings ---- */

void ctr_net_release(struct ctr_net *cn)
{
	strv_free(cn->networks);
	free(cn->ip);
	strv_free(cn->aliases);
	strv_free(cn->dns);
	strv_free(cn->publish);
	strv_free(cn->addrs);
	strv_free(cn->addrs6);
	memset(cn, 0, sizeof(*cn));
}

static int bad(struct clbsd_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(struct clbsd_err *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	autofree char *m = xvasprintf(fmt, ap);
	va_end(ap);
	return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "%s", m);
}

/*
 * The network of a container that names none: the host's bridge when the
 * configuration declares one (every such container joins it); else the
 * daemon's default bridge for a container that needs a network (published
 * ports, a pinned address, aliases); else loopback only, which costs a
 * start nothing and leaves the host's firewall alone.
 */
static enum net_mode default_mode(struct daemon *d, bool needs_network)
{
	const struct dnet_network *nw = find_net(d->net, NET_DEFAULT);
	if (nw && (!nw->implicit || needs_network))
		return NET_MODE_NETWORKS;
	return NET_MODE_NONE;
}

/* :network words: the mode and, for networks, their names (bridge is "default"). */
static int parse_words(struct daemon *d, char **words, bool needs_network, struct ctr_net *out,
		       struct clbsd_err *err)
{
	size_t nw = strv_len(words);
	enum net_mode mode;
	if (nw == 0) {
		mode = default_mode(d, needs_network);
	} else if (net_mode_parse((const char *const *)words, nw, &mode, err) < 0) {
		return -err->code;
	}
	out->mode = mode;
	if (mode == NET_MODE_NETWORKS) {
		struct strv names = STRV_INIT;
		for (size_t i = 0; i < (nw ? nw : 1); i++) {
			const char *w = nw ? words[i] : NET_DEFAULT;
			const char *name = strcmp(w, "bridge") == 0 ? NET_DEFAULT : w;
			if (!find_net(d->net, name)) {
				strv_release(&names);
				if (strcmp(name, NET_DEFAULT) == 0)
					return bad(
						err,
						"network bridge: this host has no bridge; add "
						":network (:bridge \"clbsd0\" :subnet "
						"\"10.88.0.0/24\") to the (host ...) form of the "
						"configuration");
				return bad(err,
					   "no network named %s ('clbsd network ls' lists them)",
					   name);
			}
			for (size_t k = 0; k < names.n; k++)
				if (strcmp(names.v[k], name) == 0) {
					strv_release(&names);
					return bad(err, "network %s is listed twice", name);
				}
			strv_push(&names, name);
		}
		if (names.n > NET_MAX_ENDPOINTS) {
			strv_release(&names);
			return bad(err, "a container joins at most %d networks", NET_MAX_ENDPOINTS);
		}
		out->networks = names.v;
	}
	return 0;
}

/* ip, aliases, dns and publish of a create request, once the mode is known. */
static int parse_rest(struct ctr_net *out, const char *ip, char **pub, struct clbsd_err *err)
{
	const char *need = pub && pub[0]		     ? "publishing ports"
			   : ip				     ? "\"ip\""
			   : out->aliases && out->aliases[0] ? "aliases"
							     : NULL;
	if (need && out->mode != NET_MODE_NETWORKS)
		return bad(err, "%s needs a network, but the container's network is %s", need,
			   out->mode == NET_MODE_HOST ? "host" : "none");
	if (ip) {
		struct net_addr a;
		if (net_addr_parse(ip, &a, err) < 0)
			return clbsd_err_prefix(err, "ip");
		if (a.family != AF_INET)
			return bad(err, "ip %s: only IPv4 addresses can be pinned", ip);
		out->ip = xstrdup(ip);
	}
	for (size_t i = 0; out->aliases && out->aliases[i]; i++)
		if (!valid_name(out->aliases[i]))
			return bad(err,
				   "alias \"%s\" is not a DNS label (lowercase letters, digits, "
				   "inner hyphens)",
				   out->aliases[i]);
	for (size_t i = 0; out->dns && out->dns[i]; i++) {
		struct net_addr a;
		if (net_addr_parse(out->dns[i], &a, err) < 0)
			return clbsd_err_prefix(err, "dns");
	}
	struct strv ports = STRV_INIT;
	for (size_t i = 0; pub && pub[i]; i++) {
		struct net_port p;
		if (net_port_parse(pub[i], &p, err) < 0) {
			strv_release(&ports);
			return clbsd_err_prefix(err, "publish");
		}
		char buf[96];
		strv_push(&ports, net_port_fmt(&p, buf));
	}
	out->publish = ports.v;
	return 0;
}

int dnet_spec_net(struct daemon *d, const struct ctr_spec *s, struct ctr_net *out,
		  struct clbsd_err *err)
{
	memset(out, 0, sizeof(*out));
	static const char *const modes[] = {"bridge", "host", "none"};
	char *one[2] = {NULL, NULL};
	char **words = NULL; /* none given: the daemon's default */
	if (s->netmode_given && s->netmode == CTR_NET_NAMED) {
		words = s->networks;
	} else if (s->netmode_given) {
		one[0] = (char *)(uintptr_t)modes[s->netmode];
		words = one;
	}
	/* A member only a network can give. */
	bool needs =
		s->npublish || (s->ip && *s->ip) || (s->aliases && s->aliases[0] && *s->aliases[0]);
	int r = parse_words(d, words, needs, out, err);
	if (r < 0)
		return r;
	out->aliases = s->aliases ? strv_dup(s->aliases) : NULL;
	out->dns = s->dns ? strv_dup(s->dns) : NULL;
	struct strv pub = STRV_INIT;
	for (size_t i = 0; i < s->npublish; i++)
		strv_push_owned(&pub, ctr_publish_str(&s->publish[i]));
	r = parse_rest(out, s->ip, pub.v, err);
	strv_release(&pub);
	return r;
}

/* Undo dnet_assign for names[0..n). */
static void unassign(struct daemon *d, const char *name, char *const *nets, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct dnet_network *nw = find_net(d->net, nets[i]);
		if (nw) {
			ipam_release(&nw->ipam, name);
			ipam_release(&nw->ipam6, name);
			ipam_save(d, nw);
		}
	}
}

int dnet_assign(struct daemon *d, struct container *c, struct clbsd_err *err)
{
	if (!ctr_net_attached(c))
		return 0;
	struct strv addrs = STRV_INIT, addrs6 = STRV_INIT;
	size_t i;
	for (i = 0; c->net.networks[i]; i++) {
		struct dnet_network *nw = find_net(d->net, c->net.networks[i]);
		if (!nw) {
			bad(err, "no network named %s", c->net.networks[i]);
			goto fail;
		}
		struct net_addr want, got;
		bool pin = i == 0 && c->net.ip;
		if (pin && net_addr_parse(c->net.ip, &want, err) < 0)
			goto fail;
		if (ipam_assign(&nw->ipam, c->name, pin ? &want : NULL, &got, err) < 0) {
			clbsd_err_prefix(err, "network %s", nw->name);
			goto fail;
		}
		char buf[NET_ADDR_STRLEN];
		strv_push(&addrs, net_addr_fmt(&got, buf));
		if (nw->subnet6.addr.family) {
			if (ipam_assign(&nw->ipam6, c->name, NULL, &got, err) < 0) {
				ipam_release(&nw->ipam, c->name);
				clbsd_err_prefix(err, "network %s", nw->name);
				goto fail;
			}
			strv_push(&addrs6, net_addr_fmt(&got, buf));
		} else {
			strv_push(&addrs6, "");
		}
		ipam_save(d, nw);
	}
	strv_free(c->net.addrs);
	c->net.addrs = addrs.v;
	strv_free(c->net.addrs6);
	c->net.addrs6 = addrs6.v;
	/* Published ports that collide with another container's, and the like. */
	struct dnet_snap *s = snapshot(d, c, 0);
	int r = net_state_check(&s->st, err);
	snap_free(s);
	if (r < 0) {
		i = strv_len(c->net.networks);
		goto fail_nosave;
	}
	return 0;
fail:
	strv_release(&addrs);
	strv_release(&addrs6);
fail_nosave:
	unassign(d, c->name, c->net.networks, i);
	strv_free(c->net.addrs);
	c->net.addrs = NULL;
	strv_free(c->net.addrs6);
	c->net.addrs6 = NULL;
	return -err->code;
}

/* ---- /etc/hosts and resolv.conf ---- */

/* Rewrite a file in place: it is bind-mounted, so a rename would not be seen. */
static int write_in_place(const char *path, const char *text, struct clbsd_err *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "open %s", path);
	int r = write_all(fd, text, strlen(text));
	close(fd);
	if (r < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, -r, "write %s", path);
	return 0;
}

static int write_hosts(struct daemon *d, struct dnet_snap *s, struct container *c,
		       struct clbsd_err *err)
{
	autofree char *text = NULL;
	if (net_hosts_render(&s->st, c->name, c->cfg.hostname, &text, err) < 0)
		return clbsd_err_prefix(err, "container %s: /etc/hosts", c->name);
	autofree char *path = xasprintf("%s/hosts", c->dir);
	return write_in_place(path, text, err);
}

static int write_resolv(struct container *c, struct clbsd_err *err)
{
	autofree char *host = NULL;
	struct clbsd_err e2;
	if (fs_read_file("/etc/resolv.conf", &host, NULL, &e2) < 0)
		host = xstrdup("");
	autofree char *text = NULL;
	const char *const *dns = (const char *const *)c->net.dns;
	bool v6 = false;
	for (size_t i = 0; c->net.addrs6 && c->net.addrs6[i]; i++)
		v6 |= c->net.addrs6[i][0] != '\0';
	if (net_resolv_render(host, dns, strv_len(c->net.dns), v6, &text, err) < 0) {
		log_warn("net", c->name, "%s; the container gets no DNS server", err->msg);
		free(text);
		text = xstrdup("# clbsd: the host has no nameserver a container can reach; set "
			       ":dns\n");
	}
	autofree char *path = xasprintf("%s/resolv.conf", c->dir);
	return write_in_place(path, text, err);
}

/* Host mode: the host's own files, as they are. */
static int write_host_files(struct container *c, struct clbsd_err *err)
{
	static const char *const files[] = {"hosts", "resolv.conf"};
	for (size_t i = 0; i < 2; i++) {
		autofree char *src = xasprintf("/etc/%s", files[i]);
		autofree char *text = NULL;
		struct clbsd_err e2;
		if (fs_read_file(src, &text, NULL, &e2) < 0)
			text = xstrdup("");
		autofree char *path = xasprintf("%s/%s", c->dir, files[i]);
		if (write_in_place(path, text, err) < 0)
			return -err->code;
	}
	return 0;
}

int dnet_prepare_files(struct container *c, struct clbsd_err *err)
{
	struct daemon *d = c->d;
	if (c->net.mode == NET_MODE_HOST)
		return write_host_files(c, err);
	if (!ctr_net_attached(c))
		return 0;
	struct dnet_snap *s = snapshot(d, c, 0);
	int r = write_hosts(d, s, c, err);
	snap_free(s);
	if (r == 0)
		r = write_resolv(c, err);
	return r;
}

void dnet_spec(const struct container *c, struct rt_spec *spec)
{
	spec->host_network = c->net.mode == NET_MODE_HOST;
	if (c->net.mode == NET_MODE_NONE)
		return;
	static const char *const files[] = {"hosts", "resolv.conf"};
	spec->mounts = xrealloc(spec->mounts, (spec->n_mounts + 2) * sizeof(struct rt_mount));
	for (size_t i = 0; i < 2; i++) {
		struct rt_mount *m = &spec->mounts[spec->n_mounts++];
		m->source = xasprintf("%s/%s", c->dir, files[i]);
		m->dest = xasprintf("/etc/%s", files[i]);
		m->readonly = false;
	}
}

/* Containers sharing a network with c get a new /etc/hosts. */
void dnet_peers_changed(struct daemon *d, const struct container *c)
{
	if (!ctr_net_attached(c))
		return;
	struct dnet_snap *s = NULL;
	for (struct container *o = d->ctrs; o; o = o->next) {
		if (o == c || o->run.removed || !ctr_net_attached(o))
			continue;
		bool shared = false;
		for (size_t i = 0; o->net.networks[i] && !shared; i++)
			for (size_t k = 0; c->net.networks[k]; k++)
				shared |= strcmp(o->net.networks[i], c->net.networks[k]) == 0;
		if (!shared)
			continue;
		if (!s)
			s = snapshot(d, NULL, 0);
		struct clbsd_err err;
		if (write_hosts(d, s, o, &err) < 0)
			log_warn("net", o->name, "%s", err.msg);
	}
	snap_free(s);
}

/* ---- attach, detach ---- */

static void attach_run(struct net_job *j)
{
	j->rc = j->d->net->ops->attach(&j->snap->st, j->name, &j->rep, &j->err);
}

static void attach_done(struct net_job *j)
{
	struct container *c = NULL;
	for (struct container *o = j->d->ctrs; o; o = o->next)
		if (o == j->c && strcmp(o->name, j->name) == 0)
			c = o;
	if (!c) {
		/* Gone while the job ran: undo it. */
		dnet_detach_name(j->d, j->name);
		if (j->pid == 0) {
			/* A docker container's create waits for this answer (docker_net.c). */
			struct clbsd_err e;
			clbsd_err_setmsg(&e, CLBSD_E_CONFLICT, ENOENT,
					 "container %s was removed meanwhile", j->name);
			j->fn(NULL, &e, j->arg);
		}
		return;
	}
	/* pid 0 (a docker container before its start): its networks are up, nothing more. */
	if (j->rc == 0 && j->pid > 0)
		c->net_attached = true;
	j->fn(c, j->rc < 0 ? &j->err : NULL, j->arg);
}

void dnet_attach(struct container *c, pid_t pid, dnet_done_fn fn, void *arg)
{
	struct daemon *d = c->d;
	struct net_job *j = job_new(d, attach_run, attach_done, c->name);
	j->c = c;
	j->pid = pid;
	j->fn = fn;
	j->arg = arg;
	j->snap = snapshot(d, c, pid);
	job_queue(d, j);
}

static void detach_run(struct net_job *j)
{
	j->rc = j->d->net->ops->detach(j->name, &j->err);
}

static void detach_done(struct net_job *j)
{
	if (j->rc < 0)
		log_warn("net", j->name, "detach: %s", j->err.msg);
}

void dnet_detach_name(struct daemon *d, const char *name)
{
	job_queue(d, job_new(d, detach_run, detach_done, name));
}

bool dnet_detach_pending(const struct daemon *d, const char *name)
{
	const struct dnet *n = d->net;
	if (!n)
		return false;
	if (n->running && n->running->run == detach_run && n->running->name &&
	    strcmp(n->running->name, name) == 0)
		return true;
	for (const struct net_job *j = n->queue; j; j = j->next)
		if (j->run == detach_run && j->name && strcmp(j->name, name) == 0)
			return true;
	return false;
}

void dnet_detach(struct container *c)
{
	if (!c->net_attached)
		return;
	c->net_attached = false;
	dnet_detach_name(c->d, c->name);
}

/* c leaves: the default bridge goes with its last container (after c's detach). */
static void dnet_default_release(struct daemon *d, const struct container *c)
{
	struct dnet_network *nw = find_net(d->net, NET_DEFAULT);
	if (!nw || !nw->implicit || net_used(d, nw->name, NULL, c))
		return;
	for (size_t i = 0; c->net.networks[i]; i++)
		if (strcmp(c->net.networks[i], nw->name) == 0) {
			queue_down(d, nw);
			return;
		}
}

void dnet_forget(struct container *c)
{
	struct daemon *d = c->d;
	if (!ctr_net_attached(c))
		return;
	dnet_detach(c);
	unassign(d, c->name, c->net.networks, strv_len(c->net.networks));
	dnet_peers_changed(d, c);
	dnet_default_release(d, c);
}

/* ---- docker containers (docker_net.c plumbs them through dockerd) ---- */

json_t *dnet_endpoints_json(const struct container *c)
{
	json_t *a = json_array();
	for (size_t i = 0; ctr_net_attached(c) && c->net.networks[i]; i++) {
		const struct dnet_network *nw = find_net(c->d->net, c->net.networks[i]);
		if (!nw)
			continue;
		char sub[NET_PREFIX_STRLEN], gw[NET_ADDR_STRLEN];
		struct net_addr g;
		net_prefix_gateway(&nw->subnet4, &g);
		const char *ip = c->net.addrs && i < strv_len(c->net.addrs) ? c->net.addrs[i] : "";
		const char *ip6 =
			c->net.addrs6 && i < strv_len(c->net.addrs6) ? c->net.addrs6[i] : "";
		json_t *e =
			json_pack("{s:s,s:s,s:s,s:s,s:b,s:s,s:o}", "network", nw->name, "bridge",
				  nw->bridge, "subnet", net_prefix_fmt(&nw->subnet4, sub),
				  "gateway", net_addr_fmt(&g, gw), "internal", nw->internal, "ip",
				  ip, "aliases", json_strv(c->net.aliases));
		if (nw->subnet6.addr.family && ip6 && *ip6) {
			char s6[NET_PREFIX_STRLEN], g6[NET_ADDR_STRLEN];
			struct net_addr gw6;
			net_prefix_gateway(&nw->subnet6, &gw6);
			json_object_set_new(e, "subnet6",
					    json_string(net_prefix_fmt(&nw->subnet6, s6)));
			json_object_set_new(e, "gateway6", json_string(net_addr_fmt(&gw6, g6)));
			json_object_set_new(e, "ip6", json_string(ip6));
		}
		json_array_append_new(a, e);
	}
	return a;
}

/* ---- doctor ---- */

static void doctor_run(struct net_job *j)
{
	j->rc = j->d->net->ops->doctor(&j->snap->st, j->name, &j->lines, &j->n_bad, &j->err);
}

static void doctor_done(struct net_job *j)
{
	json_t *out = NULL;
	if (j->rc == 0)
		out = json_pack("{s:o,s:i}", "checks", json_strv(j->lines.v), "problems",
				(int)j->n_bad);
	j->doctor_fn(out, j->rc < 0 ? &j->err : NULL, j->arg);
}

int dnet_doctor(struct container *c, dnet_doctor_fn fn, void *arg, struct clbsd_err *err)
{
	struct daemon *d = c->d;
	if (!ctr_net_attached(c))
		return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL,
					"container %s is on no network (its network is %s): "
					"nothing to check",
					c->name, c->net.mode == NET_MODE_HOST ? "host" : "none");
	struct net_job *j = job_new(d, doctor_run, doctor_done, c->name);
	j->doctor_fn = fn;
	j->arg = arg;
	j->snap = snapshot(d, NULL, 0);
	job_queue(d, j);
	return 0;
}

/* ---- JSON ---- */

static const char *mode_name(int mode)
{
	return mode == NET_MODE_HOST ? "host" : mode == NET_MODE_NONE ? "none" : "networks";
}

json_t *ctr_net_to_json(const struct ctr_net *cn)
{
	json_t *nets = json_array();
	for (size_t i = 0; cn->networks && cn->networks[i]; i++) {
		const char *a = cn->addrs && i < strv_len(cn->addrs) ? cn->addrs[i] : NULL;
		const char *a6 = cn->addrs6 && i < strv_len(cn->addrs6) ? cn->addrs6[i] : NULL;
		json_t *e = json_pack("{s:s,s:s?}", "name", cn->networks[i], "ip", a);
		if (a6 && *a6)
			json_object_set_new(e, "ip6", json_string(a6));
		json_array_append_new(nets, e);
	}
	json_t *j = json_pack("{s:s,s:o}", "mode", mode_name(cn->mode), "networks", nets);
	if (cn->ip)
		json_object_set_new(j, "pinned_ip", json_string(cn->ip));
	json_object_set_new(j, "aliases", json_strv(cn->aliases));
	json_object_set_new(j, "dns", json_strv(cn->dns));
	json_object_set_new(j, "publish", json_strv(cn->publish));
	return j;
}

int ctr_net_from_json(const json_t *j, struct ctr_net *cn)
{
	memset(cn, 0, sizeof(*cn));
	if (!json_is_object(j)) {
		cn->mode = NET_MODE_NONE; /* made before networking: loopback only */
		return 0;
	}
	const char *m = json_str(j, "mode");
	cn->mode = m && strcmp(m, "host") == 0	     ? NET_MODE_HOST
		   : m && strcmp(m, "networks") == 0 ? NET_MODE_NETWORKS
						     : NET_MODE_NONE;
	json_t *nets = json_object_get(j, "networks");
	size_t i;
	json_t *e;
	struct strv names = STRV_INIT, addrs = STRV_INIT, addrs6 = STRV_INIT;
	json_array_foreach(nets, i, e)
	{
		const char *n = json_str(e, "name");
		if (!n)
			continue;
		strv_push(&names, n);
		strv_push(&addrs, json_str(e, "ip") ? json_str(e, "ip") : "");
		strv_push(&addrs6, json_str(e, "ip6") ? json_str(e, "ip6") : "");
	}
	cn->networks = names.v;
	cn->addrs = addrs.v;
	cn->addrs6 = addrs6.v;
	cn->ip = json_str(j, "pinned_ip") ? xstrdup(json_str(j, "pinned_ip")) : NULL;
	cn->aliases = json_to_strv(json_object_get(j, "aliases"));
	cn->dns = json_to_strv(json_object_get(j, "dns"));
	cn->publish = json_to_strv(json_object_get(j, "publish"));
	if (cn->mode == NET_MODE_NETWORKS && !cn->networks)
		cn->mode = NET_MODE_NONE;
	return 0;
}

/* ---- networks through the API ---- */

static json_t *net_json(struct daemon *d, const struct dnet_network *nw)
{
	char sub[NET_PREFIX_STRLEN], gw[NET_ADDR_STRLEN];
	struct net_addr g;
	net_prefix_gateway(&nw->subnet4, &g);
	json_t *ctrs = json_array();
	for (struct container *c = d->ctrs; c; c = c->next) {
		if (!ctr_net_attached(c))
			continue;
		for (size_t i = 0; c->net.networks[i]; i++)
			if (strcmp(c->net.networks[i], nw->name) == 0) {
				const char *a = c->net.addrs && i < strv_len(c->net.addrs)
							? c->net.addrs[i]
							: "";
				json_array_append_new(
					ctrs, json_pack("{s:s,s:s,s:s}", "name", c->name, "ip", a,
							"state", ctr_state_name(c->run.state)));
			}
	}
	json_t *j = json_pack(
		"{s:s,s:s,s:s,s:s,s:b,s:s,s:I,s:I,s:o}", "name",
		strcmp(nw->name, NET_DEFAULT) == 0 ? "bridge" : nw->name, "id", nw->name, "bridge",
		nw->bridge, "subnet", net_prefix_fmt(&nw->subnet4, sub), "internal", nw->internal,
		"gateway", net_addr_fmt(&g, gw), "used", (json_int_t)ipam_used(&nw->ipam),
		"capacity", (json_int_t)ipam_capacity(&nw->ipam), "containers", ctrs);
	if (nw->subnet6.addr.family) {
		char s6[NET_PREFIX_STRLEN], g6[NET_ADDR_STRLEN];
		struct net_addr gw6;
		net_prefix_gateway(&nw->subnet6, &gw6);
		json_object_set_new(j, "subnet6", json_string(net_prefix_fmt(&nw->subnet6, s6)));
		json_object_set_new(j, "gateway6", json_string(net_addr_fmt(&gw6, g6)));
	}
	return j;
}

json_t *dnet_list(struct daemon *d)
{
	json_t *a = json_array();
	for (size_t i = 0; i < d->net->n; i++) {
		json_t *j = net_json(d, &d->net->nets[i]);
		json_object_set_new(j, "source", json_string(net_source(&d->net->nets[i])));
		json_array_append_new(a, j);
	}
	return a;
}

json_t *dnet_inspect(struct daemon *d, const char *name, struct clbsd_err *err)
{
	const char *key = strcmp(name, "bridge") == 0 ? NET_DEFAULT : name;
	struct dnet_network *nw = find_net(d->net, key);
	if (!nw) {
		clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT, "no network named %s", name);
		return NULL;
	}
	json_t *j = net_json(d, nw);
	json_object_set_new(j, "source", json_string(net_source(nw)));
	return j;
}

int dnet_create(struct daemon *d, json_t *req, json_t **out, struct clbsd_err *err)
{
	const char *name = json_str(req, "name");
	const char *subnet = json_str(req, "subnet");
	if (!name || !valid_name(name))
		return bad(err, "a network needs a \"name\" that is a DNS label (lowercase "
				"letters, digits, inner hyphens)");
	if (!strcmp(name, "bridge") || !strcmp(name, "host") || !strcmp(name, "none") ||
	    !strcmp(name, NET_DEFAULT))
		return bad(err, "%s is reserved; choose another name", name);
	if (find_net(d->net, name))
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EEXIST,
					"a network named %s already exists", name);
	if (!subnet)
		return bad(err, "network %s needs a \"subnet\" like \"10.89.0.0/24\"", name);
	struct net_prefix p;
	if (net_prefix_parse(subnet, &p, err) < 0)
		return clbsd_err_prefix(err, "subnet");
	if (p.addr.family != AF_INET)
		return bad(err, "subnet %s: networks have IPv4 subnets", subnet);
	if (p.len > 30)
		return bad(err, "subnet %s is too small: a network needs at least a /30", subnet);
	for (size_t i = 0; i < d->net->n; i++)
		if (net_prefix_overlaps(&p, &d->net->nets[i].subnet4)) {
			char b[NET_PREFIX_STRLEN];
			return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EEXIST,
						"subnet %s overlaps network %s's %s", subnet,
						d->net->nets[i].name,
						net_prefix_fmt(&d->net->nets[i].subnet4, b));
		}
	const char *subnet6 = json_str(req, "subnet6");
	struct net_prefix p6 = {0};
	if (subnet6) {
		if (net_prefix_parse(subnet6, &p6, err) < 0)
			return clbsd_err_prefix(err, "subnet6");
		if (p6.addr.family != AF_INET6 || p6.len < 64 || p6.len > 120)
			return bad(err, "subnet6 %s: expected an IPv6 subnet from /64 to /120",
				   subnet6);
		for (size_t i = 0; i < d->net->n; i++)
			if (d->net->nets[i].subnet6.addr.family &&
			    net_prefix_overlaps(&p6, &d->net->nets[i].subnet6))
				return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EEXIST,
							"subnet6 %s overlaps network %s's", subnet6,
							d->net->nets[i].name);
	}
	char norm[NET_PREFIX_STRLEN], norm6[NET_PREFIX_STRLEN];
	json_t *rec = json_pack("{s:s,s:s,s:b}", "name", name, "subnet", net_prefix_fmt(&p, norm),
				"internal", json_bool(req, "internal", false));
	if (subnet6)
		json_object_set_new(rec, "subnet6", json_string(net_prefix_fmt(&p6, norm6)));
	json_array_append_new(d->net->api_nets, rec);
	api_nets_save(d);
	dnet_sync(d);
	*out = dnet_inspect(d, name, err);
	return *out ? 0 : -err->code;
}

int dnet_remove(struct daemon *d, const char *name, struct clbsd_err *err)
{
	const char *asked = name;
	if (strcmp(name, "bridge") == 0)
		name = NET_DEFAULT; /* as inspect has it */
	struct dnet_network *nw = find_net(d->net, name);
	if (!nw)
		return clbsd_err_setmsg(err, CLBSD_E_NOTFOUND, ENOENT, "no network named %s",
					asked);
	if (nw->implicit)
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EBUSY,
					"network bridge is the daemon's default; it is taken down "
					"by itself when no container uses it");
	if (nw->from_conf)
		return clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EBUSY,
					"network %s is declared in the configuration; remove it "
					"there",
					strcmp(name, NET_DEFAULT) == 0 ? "bridge" : name);
	struct strv users = STRV_INIT;
	for (struct container *c = d->ctrs; c; c = c->next)
		for (size_t i = 0; ctr_net_attached(c) && c->net.networks[i]; i++)
			if (strcmp(c->net.networks[i], name) == 0)
				strv_push(&users, c->name);
	if (users.n) {
		struct buf b = {0};
		for (size_t i = 0; i < users.n; i++)
			buf_addf(&b, "%s%s", i ? ", " : "", users.v[i]);
		buf_addc(&b, '\0');
		int r = clbsd_err_setmsg(err, CLBSD_E_CONFLICT, EBUSY,
					 "network %s is used by container(s) %s; remove them first",
					 name, b.data);
		buf_release(&b);
		strv_release(&users);
		return r;
	}
	size_t i;
	json_t *jn;
	json_array_foreach(d->net->api_nets, i, jn)
	{
		if (strcmp(json_str(jn, "name"), name) == 0) {
			json_array_remove(d->net->api_nets, i);
			break;
		}
	}
	api_nets_save(d);
	autofree char *path = ipam_path(d->net, name, false);
	autofree char *path6 = ipam_path(d->net, name, true);
	unlink(path);
	unlink(path6);
	dnet_sync(d);
	return 0;
}
