/*
 * The Prometheus metrics (docs/metrics.md), shared by the two files that
 * make them: metrics.c on the loop thread (the counters' writers, the
 * snapshot of the containers, the listener's configuration) and
 * metrics_serve.c on a thread of its own (the listener, GET /metrics).
 *
 * Invariants:
 * - The loop thread is the only writer of everything here. The listener's
 *   thread reads the counters with atomic loads, and the containers
 *   through a snapshot: an immutable struct msnap the loop builds after
 *   events (coalesced) and publishes by swapping an atomic pointer. No
 *   lock: the listener's thread (the one reader, a scrape at a time)
 *   announces the snapshot it reads in a hazard pointer and checks that it
 *   is still the current one; the loop frees a replaced snapshot only when
 *   the hazard does not name it, else at a later swap (msnap_get()).
 * - The runtime's table of kept cgroup files (cgroup.c, struct
 *   cg_stat_cache) has a lock both sides take, but nobody waits for it:
 *   every taker uses trylock. A scrape that finds it taken reads that
 *   cgroup by path (open, pread, close); the loop's GET /v1/stats does the
 *   same; cg_destroy() (the loop removing a container) leaves its forget
 *   on a lock-free list the holder works off before letting go. The
 *   host's hierarchies (cg_sys_get()) are one atomic load once read. So
 *   the loop never waits for a scrape, nor a scrape for the loop.
 * - A label table only grows: an entry's labels are written before the
 *   count that makes it visible is stored (release), the reader loads the
 *   count first (acquire). Past its capacity, new labels count as "other".
 * - The kernel's numbers (CPU, memory, pids, I/O, OOM kills, network) are
 *   read by the scrape itself from the cgroup (kept-open files, pread) and
 *   /proc; the loop never reads them for metrics.
 */
#ifndef CLBSD_DAEMON_METRICS_H
#define CLBSD_DAEMON_METRICS_H

#include "daemon.h"
#include "util/util.h"

#include <pthread.h>
#include <stdatomic.h>

#define MTAB_CAP 256

struct mtab_ent {
	const char *a, *b; /* labels; owned when the table's own is set */
	int k;		   /* a numeric label (an HTTP status), 0 when none */
	_Atomic uint64_t v, v2;
};

struct mtab {
	struct mtab_ent e[MTAB_CAP];
	_Atomic size_t n;
	bool own; /* labels are copied (and freed at release) */
};

/* Reconcile pass durations, seconds: the histogram's upper bounds. */
#define MPASS_NB 12
extern const double metrics_pass_bounds[MPASS_NB];

/* One container as the snapshot keeps it. */
struct msnap_ctr {
	char *name, *kind, *image;
	enum ctr_state state;
	int restarts;
	int exit_code;
	bool ran;	    /* it has a last exit (exit_code means something) */
	const char *health; /* "starting", "healthy", "unhealthy"; NULL: no check */
	int64_t started_ns; /* of the current run; 0 when not running */
	pid_t pid;	    /* its init (running), for /proc/PID/net/dev */
	bool own_net;	    /* its own network namespace (not the host's) */
	bool docker;
	char *cgroup;
	struct rt_limits limits; /* native: what its cgroup was given */
	/* Snapshots, from the cache (-1: not known yet). */
	int64_t snapshots, snapshot_bytes;
};

/* One container's backups as backup_status() reports them (docs/backup.md). */
struct msnap_bk {
	char *name;
	bool enabled, running;
	int64_t last_ok_ns, last_try_ns, next_ns; /* 0: none */
	int64_t bytes, duration_ms;		  /* of the last good one */
	int64_t failures;			  /* in a row */
};

struct msnap {
	struct msnap *retired_next; /* the loop's list of replaced ones not freed yet */
	struct msnap_ctr *c;
	size_t n;
	struct msnap_bk *bk;
	size_t nbk;
	size_t images;
	int64_t image_bytes;
	int64_t snaps_at_ns; /* when the snapshot cache was last filled (0: never) */
	int64_t built_ns;
};

/* A source of more samples (the backup state, say): called on the listener's thread. */
struct msource {
	metrics_source_fn *fn;
	void *arg;
	struct msource *next;
};

struct dmetrics {
	struct daemon *d;
	/* Counters: written on the loop, read by scrapes. */
	_Atomic uint64_t passes, pass_sum_ns, pass_bucket[MPASS_NB + 1];
	struct mtab actions;		/* a: action, b: result */
	struct mtab events;		/* a: type */
	struct mtab hooks;		/* a: event; v: runs, v2: failures */
	struct mtab api;		/* a: method, b: route, k: status */
	_Atomic uint64_t scrape_ns;	/* the last scrape's duration */
	_Atomic uint64_t scrape_cpu_ns; /* and the CPU time its thread spent on it */
	_Atomic uint64_t scrapes;

	/* The snapshot: published by the loop, read by the listener's thread. */
	_Atomic(struct msnap *) cur;
	_Atomic(struct msnap *) hazard; /* the one the listener's thread reads, or NULL */
	struct msnap *retired;		/* replaced, still named by hazard when replaced (loop) */
	struct event *rebuild_ev;
	struct event *refresh_ev; /* a rebuild every REFRESH_S, events or not */
	struct events_sub *sub;

	/* Snapshot sizes per container (loop): refreshed on a worker. */
	json_t *snaps; /* name -> [count, bytes] */
	int64_t snaps_at_ns;
	bool snaps_busy, snaps_again;
	struct event *snaps_ev;

	struct msource *sources;

	/* The listener (metrics_serve.c); NULL when off. */
	struct mserver *srv;
	char *listen; /* the address it serves, NULL when off */
	char *error;  /* why the configured listener is not serving, or NULL */
};

/*
 * The listener's thread only, one scrape at a time: the current snapshot
 * (NULL before the first), kept from being freed until msnap_put(). Never
 * waits: the loop may publish a new one meanwhile, and frees this one at
 * a later swap.
 */
struct msnap *msnap_get(struct dmetrics *m);
void msnap_put(struct dmetrics *m, struct msnap *s);

/*
 * metrics_serve.c: start serving GET /metrics on addr ("IP:PORT") on a
 * thread of its own; the socket is bound before this returns, so a port
 * in use is an error here (CLBSD_E_CONFLICT). Stop joins the thread.
 */
int mserver_start(struct dmetrics *m, const char *addr, struct mserver **out,
		  struct clbsd_err *err);
void mserver_stop(struct mserver *s);
/*
 * The whole exposition (on the listener's thread; the unit of a scrape).
 * t: the listener's kept /proc/PID/net/dev files (metrics_serve.c).
 */
struct netfds;
void metrics_render(struct dmetrics *m, struct netfds *t, struct buf *b);

#endif
