/*
 * Prometheus metrics, the listener's side (see metrics.h): a thread of its
 * own with its own event base and evhttp, serving GET /metrics (404
 * elsewhere) in the text format 0.0.4 (core/prom_text.h). A scrape reads
 * the counters (atomics), the loop's latest snapshot of the containers,
 * and the kernel's numbers of each running container: its cgroup through
 * the runtime's stats (the kept-open files, pread) and its network
 * namespace's /proc/PID/net/dev. Nothing here waits for the loop but the
 * runtime's lock of kept cgroup files, one cgroup's read at a time
 * (metrics.h).
 */
#include "metrics.h"
#include "core/prom_text.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/*
 * The /proc/PID/net/dev files of the running containers, kept open between
 * scrapes like the cgroup files (a pread at 0 shows them afresh): an open
 * addressing table by pid, owned by the listener's thread. An entry not
 * used by a scrape is closed after it.
 */
struct netfd {
	pid_t pid; /* 0: free */
	int fd;
	uint64_t gen; /* the scrape that last used it */
};

struct netfds {
	struct netfd *v;
	size_t cap; /* a power of two, or 0 */
	size_t n;
	uint64_t gen;
};

#define MSERVER_NICE 10
/*
 * Connections the listener keeps at once: a Prometheus server or two needs
 * one each. Past it the oldest idle one gives way (the API's rule, see
 * src/api/server.c), so the fds a LAN peer can make the daemon hold are
 * bounded whatever it opens.
 */
#define MSERVER_CONN_MAX 32
/* A connection without a request in flight is closed after this. */
#define MSERVER_IDLE_S 5
/* accept() failed (EMFILE...): it pauses this long instead of spinning. */
#define MSERVER_BACKOFF_MS 200

/*
 * An admitted connection. evhttp tells nobody when it frees one, so a
 * record is alive while its fd names the same socket and its bufferevent's
 * callbacks still point at its evhttp connection (as in src/api/server.c).
 */
struct mconn {
	struct evhttp_connection *evcon;
	struct bufferevent *bev;
	int fd;
	dev_t dev;
	ino_t ino;
	bool busy;	 /* a request is being answered */
	int64_t idle_ns; /* when it was accepted or its last reply was done */
};

struct mserver {
	struct dmetrics *m;
	struct netfds net;
	struct event_base *base;
	struct evhttp *http;
	struct evconnlistener *lev;
	pthread_t thread;
	struct event *stop_ev; /* activated by the loop thread to end this one */
	struct event *check_ev, *sweep_ev, *resume_ev;
	struct mconn conn[MSERVER_CONN_MAX];
	size_t nconn;
	struct bufferevent **fresh; /* made by evhttp for connections not yet admitted */
	size_t nfresh, capfresh;
	int64_t last_warn_ns;
	int fd;
};

/* ---- what a container's kernel counters say ---- */

/*
 * Interfaces of a container's network namespace exported, one series each:
 * the namespace's root makes and deletes them, so a sum over them could go
 * down (deleting one would forge a counter reset); each interface's own
 * counters only grow. Bounded, so that a container making thousands of
 * interfaces cannot swell the scrape; the first ones /proc lists count.
 */
#define MNET_IF_MAX 16

struct mif {
	char name[16]; /* IFNAMSIZ */
	uint64_t rx_bytes, rx_packets, tx_bytes, tx_packets;
};

struct mread {
	bool stats, net;
	struct rt_stats st;
	struct mif ifs[MNET_IF_MAX];
	size_t nif;
};

static struct netfd *net_slot(struct netfds *t, pid_t pid)
{
	size_t i = (size_t)pid * 2654435761u & (t->cap - 1);
	while (t->v[i].pid && t->v[i].pid != pid)
		i = (i + 1) & (t->cap - 1);
	return &t->v[i];
}

/* Room for n entries at most half full; entries move over. */
static void net_reserve(struct netfds *t, size_t n)
{
	if (t->cap >= 2 * n && t->cap)
		return;
	struct netfds nt = {.cap = 64, .gen = t->gen};
	while (nt.cap < 2 * n)
		nt.cap *= 2;
	nt.v = xcalloc(nt.cap, sizeof(*nt.v));
	for (size_t i = 0; i < t->cap; i++)
		if (t->v[i].pid) {
			*net_slot(&nt, t->v[i].pid) = t->v[i];
			nt.n++;
		}
	free(t->v);
	*t = nt;
}

/* Close what the last scrape did not use (a table rebuilt without them). */
static void net_sweep(struct netfds *t)
{
	struct netfds nt = {.cap = t->cap, .gen = t->gen};
	if (!t->cap)
		return;
	nt.v = xcalloc(nt.cap, sizeof(*nt.v));
	for (size_t i = 0; i < t->cap; i++) {
		if (!t->v[i].pid)
			continue;
		if (t->v[i].gen == t->gen) {
			*net_slot(&nt, t->v[i].pid) = t->v[i];
			nt.n++;
		} else if (t->v[i].fd >= 0) {
			close(t->v[i].fd);
		}
	}
	free(t->v);
	*t = nt;
}

static void net_release(struct netfds *t)
{
	for (size_t i = 0; i < t->cap; i++)
		if (t->v[i].pid && t->v[i].fd >= 0)
			close(t->v[i].fd);
	free(t->v);
	memset(t, 0, sizeof(*t));
}

static int net_open(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/net/dev", (int)pid);
	return open(path, O_RDONLY | O_CLOEXEC);
}

/* All of fd from offset 0 into buf (NUL-terminated); its length, or -1. */
static ssize_t pread_whole(int fd, char *buf, size_t size)
{
	size_t len = 0;
	ssize_t k;
	while (len < size - 1 && (k = pread(fd, buf + len, size - 1 - len, (off_t)len)) > 0)
		len += (size_t)k;
	if (len == 0)
		return -1;
	buf[len] = '\0';
	return (ssize_t)len;
}

/* The interfaces of pid's network namespace but lo (MNET_IF_MAX at most). */
static bool read_net(struct netfds *t, pid_t pid, struct mread *r)
{
	char buf[8192];
	struct netfd *e = net_slot(t, pid);
	if (!e->pid) {
		int fd = net_open(pid);
		if (fd < 0)
			return false;
		*e = (struct netfd){.pid = pid, .fd = fd};
		t->n++;
	}
	e->gen = t->gen;
	if (pread_whole(e->fd, buf, sizeof(buf)) < 0) {
		/* The pid was another process's, gone since: open it again. */
		close(e->fd);
		e->fd = net_open(pid);
		if (e->fd < 0 || pread_whole(e->fd, buf, sizeof(buf)) < 0) {
			if (e->fd >= 0)
				close(e->fd);
			e->fd = -1;
			e->gen = 0; /* swept after this scrape */
			return false;
		}
	}
	/* Two lines of headings, then "  eth0: rxbytes rxpackets ... txbytes txpackets ...". */
	char *line = strchr(buf, '\n');
	line = line ? strchr(line + 1, '\n') : NULL;
	while (line && *++line) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		char *colon = strchr(line, ':');
		if (colon) {
			*colon = '\0';
			const char *ifname = line + strspn(line, " ");
			unsigned long long v[10];
			if (strcmp(ifname, "lo") != 0 && r->nif < MNET_IF_MAX &&
			    strlen(ifname) < sizeof(r->ifs[0].name) &&
			    sscanf(colon + 1, "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
				   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8],
				   &v[9]) == 10) {
				struct mif *f = &r->ifs[r->nif++];
				strcpy(f->name, ifname);
				f->rx_bytes = v[0];
				f->rx_packets = v[1];
				f->tx_bytes = v[8];
				f->tx_packets = v[9];
			}
		}
		if (!nl)
			break;
		line = nl;
	}
	return true;
}

static void read_ctr(struct daemon *d, struct netfds *t, const struct msnap_ctr *c, struct mread *r)
{
	if (c->state != CTR_RUNNING || !c->cgroup)
		return;
	struct rt_spec spec = {0};
	spec.name = c->name;
	spec.cgroup = c->cgroup;
	spec.limits = c->limits;
	struct clbsd_err err;
	/* As GET /v1/stats: a native cgroup has its record's limits, dockerd's are read. */
	r->stats = d->rt->stats(&spec, c->docker ? NULL : &c->limits, &r->st, &err) == 0;
	if (c->own_net && c->pid > 0)
		r->net = read_net(t, c->pid, r);
}

/* ---- the exposition ---- */

static const char *const state_names[] = {"created", "running", "restarting", "exited"};

struct render {
	struct buf *b;
	const struct msnap *s;
	const struct mread *r;
};

/* The labels every container sample carries, and room for one more. */
static size_t ctr_labels(const struct msnap_ctr *c, struct prom_label *l)
{
	l[0] = (struct prom_label){"name", c->name};
	l[1] = (struct prom_label){"kind", c->kind};
	l[2] = (struct prom_label){"image", c->image};
	return 3;
}

enum mfield {
	F_CPU,
	F_MEM,
	F_MEM_LIMIT,
	F_PIDS,
	F_PIDS_LIMIT,
	F_OOM,
	F_IO_READ,
	F_IO_WRITE,
	F_RX_BYTES,
	F_RX_PACKETS,
	F_TX_BYTES,
	F_TX_PACKETS,
};

static const struct {
	const char *name;
	enum prom_type type;
	const char *help;
} kernel_fields[] = {
	[F_CPU] =
		{"clbsd_container_cpu_seconds_total", PROM_COUNTER,
		 "CPU time used by the container's cgroup (cpuacct.usage or cpu.stat usage_usec)."},
	[F_MEM] = {"clbsd_container_memory_usage_bytes", PROM_GAUGE,
		   "Memory charged to the container's cgroup (memory.usage_in_bytes or "
		   "memory.current)."},
	[F_MEM_LIMIT] = {"clbsd_container_memory_limit_bytes", PROM_GAUGE,
			 "The container's memory limit; absent when unlimited."},
	[F_PIDS] = {"clbsd_container_pids", PROM_GAUGE,
		    "Tasks in the container's cgroup (pids.current)."},
	[F_PIDS_LIMIT] = {"clbsd_container_pids_limit", PROM_GAUGE,
			  "The container's task limit; absent when unlimited."},
	[F_OOM] = {"clbsd_container_oom_kills_total", PROM_COUNTER,
		   "Processes of the container the kernel killed out of memory (memory.events or "
		   "memory.oom_control oom_kill)."},
	[F_IO_READ] = {"clbsd_container_block_read_bytes_total", PROM_COUNTER,
		       "Bytes read from block devices (io.stat rbytes or "
		       "blkio.throttle.io_service_bytes Read), where the cgroup has them."},
	[F_IO_WRITE] = {"clbsd_container_block_write_bytes_total", PROM_COUNTER,
			"Bytes written to block devices (io.stat wbytes or "
			"blkio.throttle.io_service_bytes Write), where the cgroup has them."},
	[F_RX_BYTES] = {"clbsd_container_network_receive_bytes_total", PROM_COUNTER,
			"Bytes received by an interface of the container's network namespace "
			"(label interface; all but lo, 16 at most; /proc/PID/net/dev)."},
	[F_RX_PACKETS] = {"clbsd_container_network_receive_packets_total", PROM_COUNTER,
			  "Packets received by an interface of the container's network "
			  "namespace (label interface)."},
	[F_TX_BYTES] = {"clbsd_container_network_transmit_bytes_total", PROM_COUNTER,
			"Bytes sent by an interface of the container's network namespace "
			"(label interface)."},
	[F_TX_PACKETS] = {"clbsd_container_network_transmit_packets_total", PROM_COUNTER,
			  "Packets sent by an interface of the container's network namespace "
			  "(label interface)."},
};

/* Whether field f of read r has a value, and which (F_CPU: nanoseconds). */
static bool field_value(const struct mread *r, enum mfield f, uint64_t *v)
{
	const struct rt_stats *st = &r->st;
	switch (f) {
	case F_CPU:
		*v = st->cpu_usage_ns;
		return r->stats;
	case F_MEM:
		*v = st->memory_usage;
		return r->stats;
	case F_MEM_LIMIT:
		*v = st->memory_limit;
		return r->stats && st->memory_limit;
	case F_PIDS:
		*v = st->pids_current;
		return r->stats;
	case F_PIDS_LIMIT:
		*v = st->pids_limit;
		return r->stats && st->pids_limit;
	case F_OOM:
		*v = st->oom_kills;
		return r->stats;
	case F_IO_READ:
		*v = st->io_read_bytes;
		return r->stats && st->io_known;
	case F_IO_WRITE:
		*v = st->io_write_bytes;
		return r->stats && st->io_known;
	case F_RX_BYTES:
	case F_RX_PACKETS:
	case F_TX_BYTES:
	case F_TX_PACKETS:
		break; /* per interface: if_value */
	}
	return false;
}

/* Network field f of an interface. */
static uint64_t if_value(const struct mif *i, enum mfield f)
{
	switch (f) {
	case F_RX_BYTES:
		return i->rx_bytes;
	case F_RX_PACKETS:
		return i->rx_packets;
	case F_TX_BYTES:
		return i->tx_bytes;
	default:
		return i->tx_packets;
	}
}

/*
 * Every container family, container by container. Each container's labels
 * (name, kind, image) are escaped once into pre and written as they are
 * into each of its samples.
 */
static void render_containers(struct render *x, int64_t now)
{
	struct buf *b = x->b;
	const struct msnap *s = x->s;
	struct buf all = BUF_INIT;
	size_t *at = xcalloc(s->n ? s->n : 1, sizeof(*at));
	for (size_t i = 0; i < s->n; i++) {
		struct prom_label l[3];
		at[i] = all.len;
		prom_labels(&all, l, ctr_labels(&s->c[i], l));
		buf_addc(&all, '\0');
	}
#define PRE(i) (all.data + at[i])
	struct prom_label one;

	prom_family(b, "clbsd_container_state", PROM_GAUGE,
		    "1, with the state the container is in as a label (created, running, "
		    "restarting, exited).");
	for (size_t i = 0; i < s->n; i++) {
		one = (struct prom_label){"state", state_names[s->c[i].state]};
		prom_sample_pre_u64(b, "clbsd_container_state", PRE(i), &one, 1, 1);
	}
	prom_family(b, "clbsd_container_restarts_total", PROM_COUNTER,
		    "Restarts by the restart policy (the daemon's record, as clbsd ps shows it; "
		    "back to 0 when the container is recreated).");
	for (size_t i = 0; i < s->n; i++)
		prom_sample_pre_u64(b, "clbsd_container_restarts_total", PRE(i), NULL, 0,
				    (uint64_t)s->c[i].restarts);
	prom_family(b, "clbsd_container_exit_code", PROM_GAUGE,
		    "Exit code of the container's last run while it is down (exited, or waiting to "
		    "restart).");
	for (size_t i = 0; i < s->n; i++)
		if (s->c[i].ran)
			prom_sample_pre(b, "clbsd_container_exit_code", PRE(i), NULL, 0,
					s->c[i].exit_code);
	prom_family(b, "clbsd_container_health", PROM_GAUGE,
		    "1, with the container's health status as a label (starting, healthy, "
		    "unhealthy); containers with a check only.");
	for (size_t i = 0; i < s->n; i++)
		if (s->c[i].health) {
			one = (struct prom_label){"status", s->c[i].health};
			prom_sample_pre_u64(b, "clbsd_container_health", PRE(i), &one, 1, 1);
		}
	prom_family(b, "clbsd_container_start_time_seconds", PROM_GAUGE,
		    "When the container's current run started (Unix time), running containers.");
	for (size_t i = 0; i < s->n; i++)
		if (s->c[i].started_ns)
			prom_sample_pre_ns(b, "clbsd_container_start_time_seconds", PRE(i), NULL, 0,
					   s->c[i].started_ns);
	prom_family(b, "clbsd_container_uptime_seconds", PROM_GAUGE,
		    "Seconds since the container's current run started, running containers.");
	for (size_t i = 0; i < s->n; i++)
		if (s->c[i].started_ns)
			prom_sample_pre_ns(b, "clbsd_container_uptime_seconds", PRE(i), NULL, 0,
					   now - s->c[i].started_ns);
	for (size_t f = 0; f < ARRAY_SIZE(kernel_fields); f++) {
		prom_family(b, kernel_fields[f].name, kernel_fields[f].type, kernel_fields[f].help);
		for (size_t i = 0; i < s->n; i++) {
			uint64_t v;
			if (f >= F_RX_BYTES) {
				for (size_t k = 0; x->r[i].net && k < x->r[i].nif; k++) {
					one = (struct prom_label){"interface", x->r[i].ifs[k].name};
					prom_sample_pre_u64(
						b, kernel_fields[f].name, PRE(i), &one, 1,
						if_value(&x->r[i].ifs[k], (enum mfield)f));
				}
				continue;
			}
			if (!field_value(&x->r[i], (enum mfield)f, &v))
				continue;
			if (f == F_CPU)
				prom_sample_pre_ns(b, kernel_fields[f].name, PRE(i), NULL, 0,
						   (int64_t)v);
			else
				prom_sample_pre_u64(b, kernel_fields[f].name, PRE(i), NULL, 0, v);
		}
	}
	prom_family(b, "clbsd_container_snapshots", PROM_GAUGE,
		    "Snapshots of the container's storage (cached: refreshed every 10 minutes and "
		    "after a snapshot changes).");
	for (size_t i = 0; i < s->n; i++)
		if (s->c[i].snapshots >= 0)
			prom_sample_pre_u64(b, "clbsd_container_snapshots", PRE(i), NULL, 0,
					    (uint64_t)s->c[i].snapshots);
	prom_family(b, "clbsd_container_snapshot_bytes", PROM_GAUGE,
		    "Bytes held only by the container's snapshots (cached like "
		    "clbsd_container_snapshots).");
	for (size_t i = 0; i < s->n; i++)
		if (s->c[i].snapshots >= 0)
			prom_sample_pre_u64(b, "clbsd_container_snapshot_bytes", PRE(i), NULL, 0,
					    (uint64_t)s->c[i].snapshot_bytes);
#undef PRE
	free(at);
	buf_release(&all);
}

static uint64_t load(_Atomic uint64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

/* A label table's entries (a: label an, b: bn, k: kn; NULL names are left out). */
static void render_tab(struct buf *b, struct mtab *t, const char *name, const char *an,
		       const char *bn, const char *kn, bool second)
{
	size_t n = atomic_load_explicit(&t->n, memory_order_acquire);
	for (size_t i = 0; i < n; i++) {
		struct prom_label l[3];
		size_t k = 0;
		char code[16];
		if (an)
			l[k++] = (struct prom_label){an, t->e[i].a ? t->e[i].a : ""};
		if (bn)
			l[k++] = (struct prom_label){bn, t->e[i].b ? t->e[i].b : ""};
		if (kn) {
			snprintf(code, sizeof(code), "%d", t->e[i].k);
			l[k++] = (struct prom_label){kn, code};
		}
		prom_sample_u64(b, name, l, k, load(second ? &t->e[i].v2 : &t->e[i].v));
	}
}

static void render_daemon(struct dmetrics *m, struct buf *b, const struct msnap *s)
{
	struct daemon *d = m->d;
	struct prom_label ver = {"version", CLBSD_VERSION};
	prom_family(b, "clbsd_build_info", PROM_GAUGE, "1, with the daemon's version as a label.");
	prom_sample(b, "clbsd_build_info", &ver, 1, 1);
	prom_family(b, "process_start_time_seconds", PROM_GAUGE,
		    "When clbsdd started (Unix time): its own counters count from then.");
	prom_sample(b, "process_start_time_seconds", NULL, 0, (double)(d->started_ns / 1000000000));

	prom_family(b, "clbsd_reconcile_passes_total", PROM_COUNTER,
		    "Reconcile passes finished (not dry runs).");
	prom_sample_u64(b, "clbsd_reconcile_passes_total", NULL, 0, load(&m->passes));
	prom_family(b, "clbsd_reconcile_duration_seconds", PROM_HISTOGRAM,
		    "How long reconcile passes took, from plan to the last action's end.");
	uint64_t counts[MPASS_NB + 1];
	for (size_t i = 0; i <= MPASS_NB; i++)
		counts[i] = load(&m->pass_bucket[i]);
	prom_histogram(b, "clbsd_reconcile_duration_seconds", NULL, 0, metrics_pass_bounds,
		       MPASS_NB, counts, (double)load(&m->pass_sum_ns) / 1e9);
	prom_family(
		b, "clbsd_reconcile_actions_total", PROM_COUNTER,
		"Actions of reconcile passes by kind (create, start, stop, ...) and result (ok, "
		"failed, waiting).");
	render_tab(b, &m->actions, "clbsd_reconcile_actions_total", "action", "result", NULL,
		   false);
	prom_family(b, "clbsd_events_total", PROM_COUNTER,
		    "Events published, by type (clbsd events shows them).");
	render_tab(b, &m->events, "clbsd_events_total", "type", NULL, NULL, false);
	prom_family(b, "clbsd_hook_runs_total", PROM_COUNTER,
		    "Hooks (:on ...) run, by the event that ran them.");
	render_tab(b, &m->hooks, "clbsd_hook_runs_total", "event", NULL, NULL, false);
	prom_family(b, "clbsd_hook_failures_total", PROM_COUNTER,
		    "Hooks that failed, timed out or exited non-zero, by event.");
	render_tab(b, &m->hooks, "clbsd_hook_failures_total", "event", NULL, NULL, true);
	prom_family(b, "clbsd_api_requests_total", PROM_COUNTER,
		    "API requests answered, by method, route (the route table's pattern, "
		    "\"unmatched\" for none) and status code.");
	render_tab(b, &m->api, "clbsd_api_requests_total", "method", "route", "code", false);

	prom_family(b, "clbsd_images", PROM_GAUGE, "Images in clbsd's image store.");
	prom_sample(b, "clbsd_images", NULL, 0, s ? (double)s->images : 0);
	prom_family(b, "clbsd_image_store_bytes", PROM_GAUGE,
		    "Bytes of the images in clbsd's image store (their recorded sizes).");
	prom_sample(b, "clbsd_image_store_bytes", NULL, 0, s ? (double)s->image_bytes : 0);
	prom_family(b, "clbsd_containers", PROM_GAUGE, "Containers clbsd knows.");
	prom_sample(b, "clbsd_containers", NULL, 0, s ? (double)s->n : 0);
	if (s && s->snaps_at_ns) {
		prom_family(b, "clbsd_snapshots_refreshed_timestamp_seconds", PROM_GAUGE,
			    "When the cache of snapshot counts and sizes was last filled.");
		prom_sample(b, "clbsd_snapshots_refreshed_timestamp_seconds", NULL, 0,
			    (double)(s->snaps_at_ns / 1000000000));
	}
	prom_family(b, "clbsd_metrics_scrapes_total", PROM_COUNTER,
		    "Scrapes of this endpoint answered.");
	prom_sample_u64(b, "clbsd_metrics_scrapes_total", NULL, 0, load(&m->scrapes));
	prom_family(b, "clbsd_metrics_last_scrape_duration_seconds", PROM_GAUGE,
		    "How long the previous scrape took to make.");
	prom_sample_pre_ns(b, "clbsd_metrics_last_scrape_duration_seconds", "", NULL, 0,
			   (int64_t)load(&m->scrape_ns));
	prom_family(b, "clbsd_metrics_last_scrape_cpu_seconds", PROM_GAUGE,
		    "CPU time the previous scrape took (its thread's, so without waiting for a "
		    "CPU on a busy host).");
	prom_sample_pre_ns(b, "clbsd_metrics_last_scrape_cpu_seconds", "", NULL, 0,
			   (int64_t)load(&m->scrape_cpu_ns));
}

/* CPU time of the calling thread: a scrape's cost on a busy host, apart from its waits. */
static int64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Backups of declared containers (backup.c's state, from the snapshot), labelled by name. */
static void render_backups(struct buf *b, const struct msnap *s)
{
	if (!s->nbk)
		return;
	struct prom_label l;
	prom_family(b, "clbsd_backup_enabled", PROM_GAUGE,
		    "1 when the container's :backup is on (0: declared off).");
	for (size_t i = 0; i < s->nbk; i++) {
		l = (struct prom_label){"name", s->bk[i].name};
		prom_sample_u64(b, "clbsd_backup_enabled", &l, 1, s->bk[i].enabled);
	}
	prom_family(b, "clbsd_backup_running", PROM_GAUGE, "1 while a backup of it runs.");
	for (size_t i = 0; i < s->nbk; i++) {
		l = (struct prom_label){"name", s->bk[i].name};
		prom_sample_u64(b, "clbsd_backup_running", &l, 1, s->bk[i].running);
	}
	prom_family(b, "clbsd_backup_last_success_timestamp_seconds", PROM_GAUGE,
		    "When its last good backup was taken (Unix time); absent before the first.");
	for (size_t i = 0; i < s->nbk; i++)
		if (s->bk[i].last_ok_ns) {
			l = (struct prom_label){"name", s->bk[i].name};
			prom_sample_pre_ns(b, "clbsd_backup_last_success_timestamp_seconds", "", &l,
					   1, s->bk[i].last_ok_ns);
		}
	prom_family(b, "clbsd_backup_last_attempt_timestamp_seconds", PROM_GAUGE,
		    "When its last backup, good or not, began (Unix time).");
	for (size_t i = 0; i < s->nbk; i++)
		if (s->bk[i].last_try_ns) {
			l = (struct prom_label){"name", s->bk[i].name};
			prom_sample_pre_ns(b, "clbsd_backup_last_attempt_timestamp_seconds", "", &l,
					   1, s->bk[i].last_try_ns);
		}
	prom_family(b, "clbsd_backup_next_run_timestamp_seconds", PROM_GAUGE,
		    "When its next scheduled backup is due (Unix time).");
	for (size_t i = 0; i < s->nbk; i++)
		if (s->bk[i].next_ns) {
			l = (struct prom_label){"name", s->bk[i].name};
			prom_sample_pre_ns(b, "clbsd_backup_next_run_timestamp_seconds", "", &l, 1,
					   s->bk[i].next_ns);
		}
	prom_family(b, "clbsd_backup_last_size_bytes", PROM_GAUGE,
		    "Bytes its last good backup sent (an increment's, when incremental).");
	for (size_t i = 0; i < s->nbk; i++)
		if (s->bk[i].last_ok_ns) {
			l = (struct prom_label){"name", s->bk[i].name};
			prom_sample_u64(b, "clbsd_backup_last_size_bytes", &l, 1,
					(uint64_t)s->bk[i].bytes);
		}
	prom_family(b, "clbsd_backup_last_duration_seconds", PROM_GAUGE,
		    "How long its last good backup took.");
	for (size_t i = 0; i < s->nbk; i++)
		if (s->bk[i].last_ok_ns) {
			l = (struct prom_label){"name", s->bk[i].name};
			prom_sample_pre_ns(b, "clbsd_backup_last_duration_seconds", "", &l, 1,
					   s->bk[i].duration_ms * 1000000);
		}
	prom_family(b, "clbsd_backup_consecutive_failures", PROM_GAUGE,
		    "Backups of it that failed in a row (0 after a good one).");
	for (size_t i = 0; i < s->nbk; i++) {
		l = (struct prom_label){"name", s->bk[i].name};
		prom_sample_u64(b, "clbsd_backup_consecutive_failures", &l, 1,
				(uint64_t)s->bk[i].failures);
	}
}

void metrics_render(struct dmetrics *m, struct netfds *t, struct buf *b)
{
	int64_t t0 = time_mono_ns(), c0 = thread_cpu_ns();
	struct msnap *s = msnap_get(m);
	struct mread *r = xcalloc(s && s->n ? s->n : 1, sizeof(*r));
	if (s)
		net_reserve(t, s->n + 1);
	t->gen++;
	for (size_t i = 0; s && i < s->n; i++)
		read_ctr(m->d, t, &s->c[i], &r[i]);
	net_sweep(t);
	render_daemon(m, b, s);
	if (s) {
		struct render x = {.b = b, .s = s, .r = r};
		render_containers(&x, time_now_ns());
		render_backups(b, s);
	}
	for (struct msource *src = __atomic_load_n(&m->sources, __ATOMIC_ACQUIRE); src;
	     src = __atomic_load_n(&src->next, __ATOMIC_ACQUIRE))
		src->fn(b, src->arg);
	free(r);
	msnap_put(m, s);
	atomic_store_explicit(&m->scrape_ns, (uint64_t)(time_mono_ns() - t0), memory_order_relaxed);
	atomic_store_explicit(&m->scrape_cpu_ns, (uint64_t)(thread_cpu_ns() - c0),
			      memory_order_relaxed);
	atomic_fetch_add_explicit(&m->scrapes, 1, memory_order_relaxed);
}

/* ---- the listener's connections: admission, limit, idle deadline ---- */

static bool conn_alive(const struct mconn *c)
{
	struct stat st;
	if (fstat(c->fd, &st) < 0 || st.st_dev != c->dev || st.st_ino != c->ino)
		return false;
	void *arg = NULL;
	bufferevent_getcb(c->bev, NULL, NULL, NULL, &arg);
	return arg == c->evcon;
}

static void conn_drop(struct mserver *srv, size_t i)
{
	srv->conn[i] = srv->conn[--srv->nconn];
}

/* Close the connection of record i unless evhttp has already; forget the record. */
static void conn_close(struct mserver *srv, size_t i)
{
	struct mconn c = srv->conn[i];
	conn_drop(srv, i);
	if (conn_alive(&c))
		evhttp_connection_free(c.evcon);
}

static struct mconn *conn_of(struct mserver *srv, struct evhttp_connection *evcon)
{
	for (size_t i = 0; i < srv->nconn; i++)
		if (srv->conn[i].evcon == evcon && conn_alive(&srv->conn[i]))
			return &srv->conn[i];
	return NULL;
}

/* Forget the records evhttp has closed since; then the oldest idle one, or -1. */
static ssize_t conn_oldest_idle(struct mserver *srv)
{
	ssize_t best = -1;
	for (size_t i = 0; i < srv->nconn;) {
		if (!conn_alive(&srv->conn[i])) {
			conn_drop(srv, i);
			continue;
		}
		if (!srv->conn[i].busy &&
		    (best < 0 || srv->conn[i].idle_ns < srv->conn[(size_t)best].idle_ns))
			best = (ssize_t)i;
		i++;
	}
	return best;
}

static void admit(struct mserver *srv, struct bufferevent *bev)
{
	int fd = bufferevent_getfd(bev);
	void *arg = NULL;
	bufferevent_getcb(bev, NULL, NULL, NULL, &arg);
	struct evhttp_connection *evcon = arg;
	if (fd < 0 || !evcon || evhttp_connection_get_bufferevent(evcon) != bev)
		return; /* not (or no longer) an evhttp connection */
	struct stat st;
	if (fstat(fd, &st) < 0) {
		evhttp_connection_free(evcon);
		return;
	}
	if (srv->nconn == MSERVER_CONN_MAX) {
		ssize_t i = conn_oldest_idle(srv);
		if (srv->nconn == MSERVER_CONN_MAX) {
			if (i < 0) {
				/* All busy being answered: this one waits for none. */
				evhttp_connection_free(evcon);
				return;
			}
			conn_close(srv, (size_t)i);
		}
	}
	srv->conn[srv->nconn++] = (struct mconn){
		.evcon = evcon,
		.bev = bev,
		.fd = fd,
		.dev = st.st_dev,
		.ino = st.st_ino,
		.idle_ns = time_mono_ns(),
	};
	if (!evtimer_pending(srv->sweep_ev, NULL)) {
		struct timeval tv = {1, 0};
		evtimer_add(srv->sweep_ev, &tv);
	}
}

/*
 * evhttp reads a request as soon as it accepts a connection and has no
 * hook that sees the new fd: the bufferevent it asks for (new_bev) is
 * noted and this event, activated there, runs in the same loop pass after
 * the accept, before a byte of the connection is read.
 */
static void on_check(evutil_socket_t fd, short what, void *arg)
{
	struct mserver *srv = arg;
	for (size_t i = 0; i < srv->nfresh; i++)
		admit(srv, srv->fresh[i]);
	srv->nfresh = 0;
}

static struct bufferevent *new_bev(struct event_base *base, void *arg)
{
	struct mserver *srv = arg;
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!bev)
		return NULL;
	if (srv->nfresh == srv->capfresh) {
		srv->capfresh = srv->capfresh ? 2 * srv->capfresh : 64;
		srv->fresh = xrealloc(srv->fresh, srv->capfresh * sizeof(*srv->fresh));
	}
	srv->fresh[srv->nfresh++] = bev;
	event_active(srv->check_ev, EV_TIMEOUT, 0);
	return bev;
}

/* Connections idle (or sending a request) longer than MSERVER_IDLE_S are closed. */
static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct mserver *srv = arg;
	int64_t now = time_mono_ns();
	for (size_t i = 0; i < srv->nconn;) {
		if (!conn_alive(&srv->conn[i]))
			conn_drop(srv, i);
		else if (!srv->conn[i].busy &&
			 now - srv->conn[i].idle_ns > (int64_t)MSERVER_IDLE_S * 1000000000LL)
			conn_close(srv, i);
		else
			i++;
	}
	if (srv->nconn) {
		struct timeval tv = {1, 0};
		evtimer_add(srv->sweep_ev, &tv);
	}
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
	evconnlistener_enable(((struct mserver *)arg)->lev);
}

/*
 * accept() failed: out of fds or memory, the socket stays readable and a
 * retry at once would spin. Pause, and let the idle connections go.
 */
static void on_accept_error(struct evconnlistener *lev, void *arg)
{
	struct mserver *srv = arg;
	int e = errno;
	int64_t now = time_mono_ns();
	if (now - srv->last_warn_ns > 1000000000LL) {
		log_warn("metrics", NULL, "accept: %s; pausing new connections for %d ms",
			 strerror(e), MSERVER_BACKOFF_MS);
		srv->last_warn_ns = now;
	}
	evconnlistener_disable(lev);
	ssize_t i;
	while ((i = conn_oldest_idle(srv)) >= 0)
		conn_close(srv, (size_t)i);
	struct timeval tv = {0, MSERVER_BACKOFF_MS * 1000};
	evtimer_add(srv->resume_ev, &tv);
}

/* ---- the listener ---- */

static void free_text(const void *data, size_t len, void *arg)
{
	free((void *)(uintptr_t)data);
}

static void on_reply_done(struct evhttp_request *req, void *arg)
{
	struct mconn *c = conn_of(arg, evhttp_request_get_connection(req));
	if (c) {
		c->busy = false;
		c->idle_ns = time_mono_ns();
	}
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct mserver *srv = arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *out = evbuffer_new();
	struct mconn *c = conn_of(srv, evhttp_request_get_connection(req));
	if (c)
		c->busy = true;
	evhttp_request_set_on_complete_cb(req, on_reply_done, srv);
	if (!path || strcmp(path, "/metrics") != 0) {
		evhttp_add_header(h, "Content-Type", "text/plain; charset=utf-8");
		evbuffer_add_printf(out, "404 not found: this listener serves only GET /metrics\n");
		evhttp_send_reply(req, 404, "Not Found", out);
		evbuffer_free(out);
		return;
	}
	struct buf b = BUF_INIT;
	metrics_render(srv->m, &srv->net, &b);
	evhttp_add_header(h, "Content-Type", PROM_CONTENT_TYPE);
	/* The text goes out as it is, not copied: the buffer frees it once sent. */
	size_t len = 0;
	char *text = buf_detach(&b, &len);
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD ||
	    evbuffer_add_reference(out, text, len, free_text, NULL) < 0)
		free(text);
	evhttp_send_reply(req, 200, "OK", out);
	evbuffer_free(out);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(((struct mserver *)arg)->base);
}

static void *serve(void *arg)
{
	struct mserver *srv = arg;
	/*
	 * Below the loop on a busy host: a scraper hammering the endpoint
	 * takes the CPU the loop leaves, not the loop's (Linux keeps a nice
	 * value per thread).
	 */
	(void)setpriority(PRIO_PROCESS, (id_t)gettid(), MSERVER_NICE);
	event_base_dispatch(srv->base);
	return NULL;
}

/* "IP:PORT" or "[IPv6]:PORT" (the configuration checked it) as a socket address. */
static int parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *len,
		      struct clbsd_err *err)
{
	const char *colon = strrchr(addr, ':');
	memset(ss, 0, sizeof(*ss));
	if (!colon)
		goto bad;
	int port = atoi(colon + 1);
	if (addr[0] == '[') {
		char ip[64];
		size_t n = (size_t)(colon - addr) - 2;
		if (n >= sizeof(ip) || colon[-1] != ']')
			goto bad;
		memcpy(ip, addr + 1, n);
		ip[n] = '\0';
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, ip, &s6->sin6_addr) != 1)
			goto bad;
		*len = sizeof(*s6);
		return 0;
	}
	char ip[32];
	size_t n = (size_t)(colon - addr);
	if (n >= sizeof(ip))
		goto bad;
	memcpy(ip, addr, n);
	ip[n] = '\0';
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	s4->sin_family = AF_INET;
	s4->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, ip, &s4->sin_addr) != 1)
		goto bad;
	*len = sizeof(*s4);
	return 0;
bad:
	return clbsd_err_setmsg(err, CLBSD_E_INVALID, EINVAL, "metrics: bad listen address \"%s\"",
				addr);
}

int mserver_start(struct dmetrics *m, const char *addr, struct mserver **out, struct clbsd_err *err)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	if (parse_addr(addr, &ss, &len, err) < 0)
		return -err->code;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return clbsd_err_set(err, CLBSD_E_INTERNAL, errno, "metrics: socket for %s", addr);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 64) < 0) {
		int e = errno;
		close(fd);
		return clbsd_err_set(err, e == EADDRINUSE ? CLBSD_E_CONFLICT : CLBSD_E_INTERNAL, e,
				     "metrics: cannot listen on %s%s", addr,
				     e == EADDRINUSE ? " (another program has that port)" : "");
	}
	struct mserver *srv = xcalloc(1, sizeof(*srv));
	srv->m = m;
	srv->fd = fd;
	srv->base = event_base_new();
	srv->http = srv->base ? evhttp_new(srv->base) : NULL;
	struct evhttp_bound_socket *bound = NULL;
	if (srv->http) {
		evhttp_set_bevcb(srv->http, new_bev, srv);
		bound = evhttp_accept_socket_with_handle(srv->http, fd);
	}
	if (!bound) {
		if (srv->http)
			evhttp_free(srv->http);
		if (srv->base)
			event_base_free(srv->base);
		close(fd);
		free(srv);
		return clbsd_err_setmsg(err, CLBSD_E_INTERNAL, EIO, "metrics: cannot serve %s",
					addr);
	}
	srv->lev = evhttp_bound_socket_get_listener(bound);
	evconnlistener_set_error_cb(srv->lev, on_accept_error);
	srv->stop_ev = event_new(srv->base, -1, 0, on_stop, srv);
	srv->check_ev = event_new(srv->base, -1, 0, on_check, srv);
	srv->sweep_ev = evtimer_new(srv->base, on_sweep, srv);
	srv->resume_ev = evtimer_new(srv->base, on_resume, srv);
	evhttp_set_gencb(srv->http, on_request, srv);
	evhttp_set_allowed_methods(srv->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_max_headers_size(srv->http, 16 << 10);
	evhttp_set_max_body_size(srv->http, 0);
	/* Per read or write: a slow reader of a long reply; idle ones go sooner (on_sweep). */
	evhttp_set_timeout(srv->http, 10);
	if ((errno = pthread_create(&srv->thread, NULL, serve, srv)) != 0) {
		int e = errno;
		event_free(srv->stop_ev);
		event_free(srv->check_ev);
		event_free(srv->sweep_ev);
		event_free(srv->resume_ev);
		evhttp_free(srv->http);
		event_base_free(srv->base);
		free(srv);
		return clbsd_err_set(err, CLBSD_E_INTERNAL, e, "metrics: thread");
	}
	*out = srv;
	return 0;
}

void mserver_stop(struct mserver *srv)
{
	/*
	 * The base is made after evthread_use_pthreads(), so another thread
	 * may activate its events. An active event, unlike a loopbreak, is
	 * not lost when the thread has not entered its loop yet.
	 */
	event_active(srv->stop_ev, EV_TIMEOUT, 0);
	pthread_join(srv->thread, NULL);
	event_free(srv->stop_ev);
	net_release(&srv->net);
	/* Closes the listening socket and the connections left. */
	evhttp_free(srv->http);
	event_free(srv->check_ev);
	event_free(srv->sweep_ev);
	event_free(srv->resume_ev);
	event_base_free(srv->base);
	free(srv->fresh);
	free(srv);
}
